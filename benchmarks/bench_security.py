"""Attacks on an mgsk model directory through both loaders, and what signing costs.

    flock /tmp/mgsk-heavy.lock python benchmarks/bench_security.py [--quick]

``--quick`` (run by tests/test_benchmarks.py) measures the timings only;
tests/test_security.py runs the same attacks.

Part 1 plants each attack of issue 9 in a fresh copy of a saved model, as
someone with write access to the artifact store would, and loads it in a new
process with ``mgsk.mlflow.load_model`` and ``mlflow.pyfunc.load_model``,
with ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` unset, false and true, then
imports the module names the attack shadows (as later code would). An
attack succeeds if its code ran: it creates a marker file. Each row counts
attacks tried, refused (the load raised) and markers created. Attacks that
MLflow itself executes before mgsk runs are listed apart.

Part 2 times ``sign_model`` and ``verify_model`` on a 10-feature
LinearRegressor and on a fitted GridSearchCV, and the overhead of
``load_model(verify_key=...)`` over ``load_model`` (target at most 20 ms).
The script exits with status 1 if an attack in mgsk's reach created its
marker or a target is missed.
"""

import argparse
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

TARGET_VERIFY_OVERHEAD_MS = 20.0
LOADERS = ("mgsk", "pyfunc")
ENV_SETTINGS = (None, "false", "true")

# ---------------------------------------------------------------- the attacker's kit


class RunsCode:
    """Unpickling this runs ``code``: the classic malicious pickle."""

    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return exec, (self.code,)


def marker_code(marker):
    return f"open({str(marker)!r}, 'w').write('attacker code ran')\n"


def edit_mlmodel(model_dir, edit):
    path = Path(model_dir) / "MLmodel"
    meta = yaml.safe_load(path.read_text())
    edit(meta["flavors"])
    path.write_text(yaml.safe_dump(meta))


def plant_pickle_switch(model_dir, marker):
    """Switch MLmodel to cloudpickle, drop in a code-running model.pkl, rewrite its sha256."""
    payload = pickle.dumps(RunsCode(marker_code(marker)))
    (Path(model_dir) / "model.pkl").write_bytes(payload)
    (Path(model_dir) / "model.skops").unlink(missing_ok=True)

    def switch(flavors):
        flavors["mgsk"].update(
            serialization_format="cloudpickle", model_file="model.pkl", sha256=hashlib.sha256(payload).hexdigest()
        )
        flavors["python_function"]["model_path"] = "model.pkl"

    edit_mlmodel(model_dir, switch)
    return []


def plant_code(model_dir, marker, module, package=False, loader_module=None):
    """Add a code/ folder with ``module`` (a .py file or a package) and name it in MLmodel."""
    code = Path(model_dir) / "code"
    target = code / module / "__init__.py" if package else code / f"{module}.py"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(marker_code(marker) + "def _load_pyfunc(path):\n    raise RuntimeError('never reached')\n")

    def name_code(flavors):
        flavors["mgsk"]["code"] = "code"
        flavors["python_function"]["code"] = "code"
        if loader_module:
            flavors["python_function"]["loader_module"] = loader_module

    edit_mlmodel(model_dir, name_code)
    return [module]


#: Attacks mgsk's loaders must defeat: name -> (base model format, planter).
ATTACKS = {
    "pickle switch (MLmodel -> cloudpickle, model.pkl, new sha256)": ("skops", plant_pickle_switch),
    "code/pickletools.py shadows the standard library": (
        "cloudpickle", lambda d, m: plant_code(d, m, "pickletools")),
    "code/matplotlib/ shadows an installed package": (
        "cloudpickle", lambda d, m: plant_code(d, m, "matplotlib", package=True)),
}  # fmt: skip

#: What mlflow.pyfunc.load_model executes before it calls mgsk (mgsk's loader is immune).
BEFORE_MGSK = {
    "python_function loader_module -> code/evil_loader.py": (
        "skops", lambda d, m: plant_code(d, m, "evil_loader", loader_module="evil_loader")),
}  # fmt: skip

#: Loads each case in its own process: forked from a driver that imported MLflow
#: and mgsk once (as a serving process has), or started afresh with ``--fresh``.
LOAD_SCRIPT = """
import importlib, json, os, sys
cases = json.loads(sys.argv[1])
if "--fresh" not in sys.argv:
    import mlflow.pyfunc, mgsk.mlflow

def load(case):
    for name, value in case["env"].items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        if case["loader"] == "mgsk":
            import mgsk.mlflow
            mgsk.mlflow.load_model(case["path"])
        else:
            import mlflow.pyfunc
            mlflow.pyfunc.load_model(case["path"])
        outcome, message = "loaded", ""
    except Exception as exc:
        outcome, message = "refused", f"{type(exc).__name__}: {exc}"
    for name in case["probes"]:  # what the next import of that name runs
        try:
            importlib.import_module(name)
        except Exception:
            pass
    return {"outcome": outcome, "message": message}

def start(case):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.write(write, json.dumps(load(case)).encode())
        os._exit(0)
    os.close(write)
    return pid, read

results = []
for first in range(0, len(cases), 2):  # two children at a time: the machine has two cores
    for pid, read in [start(case) for case in cases[first:first + 2]]:
        with os.fdopen(read) as answer:
            results.append(json.loads(answer.read()))
        os.waitpid(pid, 0)
print(json.dumps(results))
"""


def write_key_pair(directory):
    """A P-256 key pair as PEM files; returns (private key path, public key path)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = Path(directory) / "signing-key.pem", Path(directory) / "signing-key.pub"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


def save_base_models(directory, private_key=None):
    """A skops and a cloudpickle mgsk model, signed when a key is given; returns {format: path}."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    import mgsk.mlflow
    from mgsk import LinearRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ [1.0, -1.0, 0.5] + 0.1 * rng.normal(size=60)
    models = {
        "skops": LinearRegressor().fit(X, y),
        "cloudpickle": make_pipeline(FunctionTransformer(np.tanh), LinearRegressor()).fit(X, y),
    }
    paths = {}
    for fmt, model in models.items():
        paths[fmt] = Path(directory) / f"base-{fmt}"
        mgsk.mlflow.save_model(model, paths[fmt], serialization_format=fmt, signing_key=private_key)
    return paths


def plant(base, planter, workdir):
    """A copy of the model ``base`` with an attack planted; returns (model dir, marker, probes)."""
    model_dir = Path(tempfile.mkdtemp(dir=workdir)) / "model"
    shutil.copytree(base, model_dir)
    marker = model_dir.parent / "MARKER"
    return model_dir, marker, planter(model_dir, marker)


def run_loads(cases, workdir, fresh=False):
    """Load every case (dict with path, loader, probes, env) in its own process; return outcomes."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "MGSK_MODEL_PUBLIC_KEY")}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    command = [sys.executable, "-c", LOAD_SCRIPT, json.dumps(cases)] + (["--fresh"] if fresh else [])
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir, timeout=600)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def attack_matrix(workdir, attacks, loaders=LOADERS, env_settings=ENV_SETTINGS, keys=None, fresh=False):
    """{(attack, loader, env): outcome} for every combination; ``keys`` signs the models and sets
    MGSK_MODEL_PUBLIC_KEY; ``fresh`` starts one interpreter per case instead of forking."""
    workdir = Path(tempfile.mkdtemp(dir=workdir))
    bases = save_base_models(workdir, private_key=keys[0] if keys else None)
    combos, cases, markers = [], [], []
    for name, (fmt, planter) in attacks.items():
        for loader in loaders:
            for setting in env_settings:
                model_dir, marker, probes = plant(bases[fmt], planter, workdir)
                env = {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": setting, "MGSK_MODEL_PUBLIC_KEY": str(keys[1]) if keys else None}
                combos.append((name, loader, setting))
                cases.append({"path": str(model_dir), "loader": loader, "probes": probes, "env": env})
                markers.append(marker)
    outcomes = [r for case in cases for r in run_loads([case], workdir, fresh=True)] if fresh else run_loads(cases, workdir)
    for outcome, marker in zip(outcomes, markers):
        outcome["marker"] = marker.exists()
    return dict(zip(combos, outcomes))


# ---------------------------------------------------------------- timings


def signing_timings(workdir, repeat):
    """Rows (model, sign ms, verify ms, load ms, load with verify_key ms)."""
    from bench_mlflow_flavor import timed  # the script's folder is first on sys.path
    from sklearn.model_selection import GridSearchCV

    import mgsk.mlflow
    from mgsk import LinearRegressor, PolynomialRegressor

    def median_ms(func, repeat):
        return timed(func, repeat)[0]

    private, public = write_key_pair(workdir)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1000, 10))
    y = X @ rng.normal(size=10) + 0.1 * rng.normal(size=1000)
    y[:50] += 20.0
    models = {
        "10-feature LinearRegressor": LinearRegressor().fit(X, y),
        "GridSearchCV (PolynomialRegressor, 3 degrees x 5 folds)": GridSearchCV(
            PolynomialRegressor(), {"degree": [1, 2, 3]}, cv=5
        ).fit(X[:300, :3], y[:300]),
    }
    rows = []
    for name, model in models.items():
        path = Path(workdir) / name.split()[0]
        mgsk.mlflow.save_model(model, path)
        sign = median_ms(lambda: mgsk.mlflow.sign_model(path, private_key=private), repeat)
        verify = median_ms(lambda: mgsk.mlflow.verify_model(path, public_key=public), repeat)
        # Plain and verified loads alternate, so both see the same load of the shared machine;
        # the overhead is the median of the paired differences.
        pairs = [
            (timed(lambda: mgsk.mlflow.load_model(str(path)), 1)[1][0],
             timed(lambda: mgsk.mlflow.load_model(str(path), verify_key=public), 1)[1][0])
            for _ in range(repeat)
        ]  # fmt: skip
        load, load_verified = (statistics.median(times) for times in zip(*pairs))
        overhead = statistics.median(verified - plain for plain, verified in pairs)
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())  # files signed and verified
        rows.append((name, size, sign, verify, load, load_verified, overhead))
    return rows


# ---------------------------------------------------------------- report


def _env_label(value):
    return "unset" if value is None else value


def report_attacks(results, attacks, title):
    print(title)
    print(f"{'loader':<8} {'MLFLOW_ALLOW_PICKLE_DESERIALIZATION':<36} {'tried':>5} {'refused':>7} {'marker created':>14}")
    for loader in LOADERS:
        for env in ENV_SETTINGS:
            rows = [results[(name, loader, env)] for name in attacks if (name, loader, env) in results]
            if rows:
                refused = sum(r["outcome"] == "refused" for r in rows)
                markers = sum(r["marker"] for r in rows)
                print(f"{loader:<8} {_env_label(env):<36} {len(rows):>5} {refused:>7} {markers:>14}")
    for (name, loader, env), result in results.items():
        if result["marker"]:
            print(f"  marker created: {name} via {loader}, variable {_env_label(env)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="timings only, fewer repeats")
    parser.add_argument("--repeat", type=int, default=None, help="timed calls per measurement (default 30, quick 15)")
    args = parser.parse_args()
    repeat = args.repeat or (15 if args.quick else 30)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.quick:
            keys = write_key_pair(tmp)
            plain = attack_matrix(tmp, ATTACKS)
            signed = attack_matrix(tmp, ATTACKS, env_settings=("true",), keys=keys)
            before_mgsk = attack_matrix(tmp, BEFORE_MGSK, env_settings=(None,), fresh=True)
            report_attacks(plain, ATTACKS, "## Attacks in mgsk's reach (unsigned models)")
            expected = {case for case in plain if case[0].startswith("pickle switch") and case[2] == "true"}
            print("  (a marker with the variable true is the caller's opt-in to pickle doing what pickle does)")
            failures += [f"{case} created its marker" for case, r in plain.items() if r["marker"] and case not in expected]
            failures += [f"{case} loaded" for case, r in plain.items() if r["outcome"] != "refused" and case not in expected]
            print()
            report_attacks(signed, ATTACKS, "## The same on signed models, MGSK_MODEL_PUBLIC_KEY set")
            failures += [f"signed {case}: {r}" for case, r in signed.items() if r["marker"] or r["outcome"] != "refused"]
            print()
            report_attacks(before_mgsk, BEFORE_MGSK, "## Run by MLflow before mgsk (mlflow.pyfunc cannot be protected)")
            failures += [f"{case} reached mgsk's loader" for case, r in before_mgsk.items() if case[1] == "mgsk" and r["marker"]]
            print()
        rows = signing_timings(tmp, repeat)
    print(f"## Signing (model-signing, P-256 key), median of {repeat}")
    print(f"{'model':<56} {'bytes':>8} {'sign ms':>8} {'verify ms':>9} {'load ms':>8} {'verified load ms':>16} {'overhead ms':>11}")
    for name, size, sign, verify, load, load_verified, overhead in rows:
        print(f"{name:<56} {size:>8,} {sign:>8.1f} {verify:>9.1f} {load:>8.1f} {load_verified:>16.1f} {overhead:>11.1f}")
        verdict = "met" if overhead <= TARGET_VERIFY_OVERHEAD_MS else "MISSED"
        if verdict == "MISSED":
            failures.append(f"verify overhead {overhead:.1f} ms on {name}")
        print(f"target: load_model(verify_key=...) overhead <= {TARGET_VERIFY_OVERHEAD_MS:.0f} ms ({name}): {verdict}")
    if failures:
        print("FAILED: " + "; ".join(failures))
        sys.exit(1)
    print("all attacks in mgsk's reach defeated; all targets met")


if __name__ == "__main__":
    main()
