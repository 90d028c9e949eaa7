"""Cost of the mgsk MLflow flavor, measured in one process on a fresh sqlite store.

    flock /tmp/mgsk-heavy.lock python benchmarks/bench_mlflow_flavor.py [--repeat 20]

Prints one table: log_model of a 10-feature mgsk model (median, target at
most 100 ms) against ``mlflow.sklearn.log_model`` with its defaults on a
scikit-learn LinearRegression (which infers requirements in a subprocess),
then load time and on-disk size against a pickle of the same model.
"""

import argparse
import logging
import os
import pickle
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

TARGET_LOG_MS = 100.0


def timed(func, repeat):
    """Median and all wall times of ``func()`` in milliseconds, after one warm-up call."""
    func()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), times


COLD_SCRIPT = """
import sys, tempfile, time, pathlib, numpy as np, mlflow
from mlflow.models import infer_signature
tmp = pathlib.Path(tempfile.mkdtemp())
mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
mlflow.set_experiment(experiment_id=mlflow.create_experiment("cold", artifact_location=(tmp / "a").as_uri()))
rng = np.random.default_rng(0)
X = rng.normal(size=(1000, 10))
y = X @ rng.normal(size=10)
if sys.argv[1] == "mgsk":
    import mgsk.mlflow
    from mgsk import LinearRegressor
    model = LinearRegressor().fit(X, y)
    log = lambda: mgsk.mlflow.log_model(model, name="model", signature=infer_signature(X, y), input_example=X[:5])
else:
    import mlflow.sklearn
    from sklearn.linear_model import LinearRegression
    model = LinearRegression().fit(X, y)
    log = lambda: mlflow.sklearn.log_model(model, name="model")
with mlflow.start_run():
    start = time.perf_counter()
    log()
    print((time.perf_counter() - start) * 1000)
"""


def cold_first_call_ms(flavor):
    """Wall time of the first log_model in a fresh process (one-time imports included)."""
    import subprocess
    import sys

    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run([sys.executable, "-c", COLD_SCRIPT, flavor], capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return float(done.stdout.strip().splitlines()[-1])


def directory_size(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="timed calls per mgsk measurement")
    parser.add_argument("--sklearn-repeat", type=int, default=3, help="timed calls of mlflow.sklearn.log_model")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")

    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression

    import mgsk.mlflow
    from mgsk import LinearRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 10))
    y = X @ rng.normal(size=10) + 0.1 * rng.normal(size=1000)
    y[:50] += 20.0
    model = LinearRegressor().fit(X, y)
    baseline = LinearRegression().fit(X, y)
    signature = infer_signature(X, model.predict(X))

    with tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
        mlflow.set_experiment(experiment_id=mlflow.create_experiment("bench", artifact_location=Path(tmp, "a").as_uri()))
        with mlflow.start_run():
            log_full, _ = timed(
                lambda: mgsk.mlflow.log_model(model, name="model", signature=signature, input_example=X[:5]),
                args.repeat,
            )
            log_bare, _ = timed(lambda: mgsk.mlflow.log_model(model, name="model"), args.repeat)
            log_sklearn, _ = timed(lambda: mlflow.sklearn.log_model(baseline, name="model"), args.sklearn_repeat)

        saved = Path(tmp, "saved")
        mgsk.mlflow.save_model(model, saved)
        pickled = Path(tmp, "model.pkl")
        pickled.write_bytes(pickle.dumps(model, protocol=pickle.DEFAULT_PROTOCOL))
        save_ms, _ = timed(lambda: mgsk.mlflow.save_model(model, Path(tempfile.mkdtemp(dir=tmp))), args.repeat)
        load_ms, _ = timed(lambda: mgsk.mlflow.load_model(str(saved)), args.repeat)
        pyfunc_ms, _ = timed(lambda: mlflow.pyfunc.load_model(str(saved)), args.repeat)
        unpickle_ms, _ = timed(lambda: pickle.loads(pickled.read_bytes()), args.repeat)
        skops_bytes = (saved / "model.skops").stat().st_size
        dir_bytes = directory_size(saved)
        pickle_bytes = pickled.stat().st_size

    cold_mgsk = cold_first_call_ms("mgsk")
    cold_sklearn = cold_first_call_ms("sklearn")

    rows = [
        ("mgsk.mlflow.log_model, signature + input example", f"{log_full:.1f} ms", f"{log_full / log_sklearn:.3f}"),
        ("mgsk.mlflow.log_model, defaults", f"{log_bare:.1f} ms", f"{log_bare / log_sklearn:.3f}"),
        ("mlflow.sklearn.log_model, defaults (LinearRegression)", f"{log_sklearn:.1f} ms", "1"),
        ("first mgsk log_model in a new process (signature + example)", f"{cold_mgsk:.0f} ms",
         f"{cold_mgsk / cold_sklearn:.3f}"),
        ("first mlflow.sklearn.log_model in a new process", f"{cold_sklearn:.0f} ms", "1"),
        ("mgsk.mlflow.save_model (local directory)", f"{save_ms:.1f} ms", ""),
        ("mgsk.mlflow.load_model (local directory)", f"{load_ms:.2f} ms", f"{load_ms / unpickle_ms:.0f} x pickle"),
        ("mlflow.pyfunc.load_model (local directory)", f"{pyfunc_ms:.2f} ms", f"{pyfunc_ms / unpickle_ms:.0f} x pickle"),
        ("pickle.loads of the same model", f"{unpickle_ms:.3f} ms", "1"),
        ("model.skops on disk", f"{skops_bytes:,} B", f"{skops_bytes / pickle_bytes:.2f} x pickle"),
        ("whole model directory on disk", f"{dir_bytes:,} B", f"{dir_bytes / pickle_bytes:.2f} x pickle"),
        ("pickle of the same model", f"{pickle_bytes:,} B", "1"),
    ]
    print(f"mgsk MLflow flavor, 10-feature LinearRegressor (n=1000), sqlite store, median of {args.repeat} "
          f"(mlflow.sklearn: {args.sklearn_repeat}); mlflow {mlflow.__version__}")
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>13}  ratio")
    for name, value, ratio in rows:
        print(f"{name:<{width}}  {value:>13}  {ratio}")
    verdict = "met" if log_full <= TARGET_LOG_MS else "MISSED"
    print(f"target: log_model median <= {TARGET_LOG_MS:.0f} ms with signature and example: {verdict}")


if __name__ == "__main__":
    main()
