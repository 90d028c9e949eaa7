"""Issue 9: a model file never runs code nobody asked for.

Attacks are planted in real model directories by the kit of
benchmarks/bench_security.py and loaded in fresh processes (forked from one
that imported MLflow and mgsk, or started afresh); the planted code would
create a marker file. Signing uses real OpenSSF model-signing with P-256
keys made by ``cryptography``; inspection reads real model directories of
mgsk and of mlflow.sklearn.
"""

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("model_signing")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402

import mgsk.mlflow as mg  # noqa: E402
from mgsk import LinearRegressor, LogisticRegressor  # noqa: E402
from mgsk.mlflow import MgskModelError  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "bench_security", Path(__file__).resolve().parents[1] / "benchmarks" / "bench_security.py"
)
kit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kit)

PICKLE_SWITCH = next(name for name in kit.ATTACKS if name.startswith("pickle switch"))


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return kit.write_key_pair(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory):
    return kit.write_key_pair(tmp_path_factory.mktemp("other-keys"))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    return X, X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=80)


@pytest.fixture(scope="module")
def signed_model(tmp_path_factory, keys, data):
    path = tmp_path_factory.mktemp("signed") / "model"
    mg.save_model(LinearRegressor().fit(*data), path, input_example=data[0][:2], signing_key=keys[0])
    return path


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    monkeypatch.delenv("MGSK_MODEL_PUBLIC_KEY", raising=False)


# ---------------------------------------------------------------- attacks, in fresh processes


def test_every_attack_through_both_loaders_with_the_variable_unset_false_and_true(tmp_path):
    results = kit.attack_matrix(tmp_path, kit.ATTACKS)
    assert len(results) == len(kit.ATTACKS) * 2 * 3
    for (name, loader, setting), result in results.items():
        case = f"{name} via {loader}, MLFLOW_ALLOW_PICKLE_DESERIALIZATION={setting}"
        if name == PICKLE_SWITCH and setting == "true":
            # The caller opted in to pickle: pickle then runs what the file says.
            assert result["marker"], case
            continue
        assert result["outcome"] == "refused" and not result["marker"], (case, result)
        if setting != "true":
            assert "model.pkl" in result["message"] and "allow_pickle=True" in result["message"], case
            assert ("is unset" if setting is None else "is 'false'") in result["message"], case
        else:  # a pickle model the caller allowed, with a shadowing code/: refused by name
            shadowed = "pickletools" if "pickletools" in name else "matplotlib"
            assert f"ships {shadowed}, which would shadow" in result["message"], case


def test_a_signature_requirement_refuses_every_attack_even_with_pickle_allowed(tmp_path, keys):
    results = kit.attack_matrix(tmp_path, kit.ATTACKS, env_settings=("true",), keys=keys)
    for (name, loader, _), result in results.items():
        assert result["outcome"] == "refused" and not result["marker"], (name, loader, result)
        assert "differ from what was signed" in result["message"], (name, result)


def test_what_mlflow_pyfunc_runs_before_mgsk_never_reaches_mgsk_load_model(tmp_path):
    """The documented limit: MLflow imports MLmodel's loader_module after putting code/ first."""
    results = kit.attack_matrix(tmp_path, kit.BEFORE_MGSK, env_settings=(None,), fresh=True)
    for (name, loader, _), result in results.items():
        if loader == "mgsk":
            assert result == {"outcome": "loaded", "message": "", "marker": False}, name
        else:
            assert result["marker"], name  # why the docs say: inspect or verify before mlflow.pyfunc
    for name, (fmt, planter) in kit.BEFORE_MGSK.items():
        model_dir, _, _ = kit.plant(kit.save_base_models(tmp_path / name[:8])[fmt], planter, tmp_path)
        kinds = {finding.kind for finding in mg.inspect_model(model_dir)}
        assert "code" in kinds, name


def test_skops_models_never_touch_sys_path(tmp_path, data, clean_env):
    model_dir = tmp_path / "m"
    mg.save_model(LinearRegressor().fit(*data), model_dir)
    kit.plant_code(model_dir, tmp_path / "MARKER", "mgsk_test_unlisted_helper")
    before = list(sys.path)
    for load in (mg.load_model, mlflow.pyfunc.load_model):
        load(str(model_dir))
        assert sys.path == before
    with pytest.raises(ModuleNotFoundError):
        import mgsk_test_unlisted_helper  # noqa: F401
    assert not (tmp_path / "MARKER").exists()


# ---------------------------------------------------------------- signing


def test_signing_round_trip_native_pyfunc_and_environment_key(signed_model, keys, data, monkeypatch, clean_env):
    X, _ = data
    assert (signed_model / "model.sig").is_file()
    assert mg.verify_model(signed_model, public_key=keys[1]) == str(signed_model)
    expected = mg.load_model(str(signed_model)).predict(X)
    assert np.array_equal(mg.load_model(str(signed_model), verify_key=keys[1]).predict(X), expected)
    monkeypatch.setenv("MGSK_MODEL_PUBLIC_KEY", str(keys[1]))
    assert np.array_equal(mg.load_model(str(signed_model)).predict(X), expected)
    assert np.array_equal(mlflow.pyfunc.load_model(str(signed_model)).predict(X), expected)
    assert mg.inspect_model(signed_model) == []


def test_a_different_key_a_missing_or_broken_signature_is_refused(signed_model, keys, other_keys, tmp_path, clean_env):
    with pytest.raises(MgskModelError, match="model.sig was not made with the private key matching"):
        mg.verify_model(signed_model, public_key=other_keys[1])
    unsigned = tmp_path / "unsigned"
    shutil.copytree(signed_model, unsigned)
    (unsigned / "model.sig").unlink()
    for call in (
        lambda: mg.verify_model(unsigned, public_key=keys[1]),
        lambda: mg.load_model(str(unsigned), verify_key=keys[1]),
    ):
        with pytest.raises(MgskModelError, match=r"is not signed: .*model.sig is missing"):
            call()
    (unsigned / "model.sig").write_text("{not json")
    with pytest.raises(MgskModelError, match="model.sig is not a valid signature"):
        mg.verify_model(unsigned, public_key=keys[1])
    with pytest.raises(MgskModelError, match="Cannot verify with the public key"):
        mg.verify_model(signed_model, public_key=keys[0].with_suffix(".missing"))
    with pytest.raises(MgskModelError, match="Cannot sign with"):
        mg.sign_model(unsigned, private_key=keys[1])  # a public key is no signing key


def _copy(signed_model, tmp_path, name):
    target = tmp_path / name
    shutil.copytree(signed_model, target)
    return target


@pytest.mark.parametrize(
    "tamper, named",
    [
        (lambda d: (d / "requirements.txt").write_text((d / "requirements.txt").read_text() + "\nevil==1.0"),
         "Hash mismatch for 'requirements.txt'"),
        (lambda d: (d / "notes.txt").write_text("added"), "Extra files found in model .*notes.txt"),
        (lambda d: kit.plant_code(d, d / "never", "pickletools"), "Extra files found in model .*code/pickletools.py"),
        (lambda d: (d / "input_example.json").unlink(), "Missing files in model .*input_example.json"),
        (lambda d: kit.plant_pickle_switch(d, d.parent / "MARKER"),
         "Hash mismatch for 'MLmodel'.*|Extra files.*model.pkl"),
        (lambda d: (d / ".gitignore").write_text("*"), "Extra files found in model .*\\.gitignore"),
    ],
    ids=["edited requirements.txt", "added file", "added code", "removed file", "switched format", "git file"],
)  # fmt: skip
def test_each_kind_of_tampering_is_refused_naming_the_file(signed_model, keys, tmp_path, tamper, named, clean_env):
    model_dir = _copy(signed_model, tmp_path, "tampered")
    tamper(model_dir)
    with pytest.raises(MgskModelError, match=named):
        mg.verify_model(model_dir, public_key=keys[1])
    # verify_key is checked before any byte of the model is read: the switched-in pickle never runs.
    with pytest.raises(MgskModelError, match=named):
        mg.load_model(str(model_dir), verify_key=keys[1], allow_pickle=True)
    assert not (tmp_path / "MARKER").exists()
    assert [f.kind for f in mg.inspect_model(model_dir, public_key=keys[1]) if f.kind == "signature"] == ["signature"]


def test_a_switched_format_names_every_changed_file(signed_model, keys, tmp_path, clean_env):
    model_dir = _copy(signed_model, tmp_path, "switched")
    kit.plant_pickle_switch(model_dir, tmp_path / "MARKER")
    with pytest.raises(MgskModelError) as caught:
        mg.verify_model(model_dir, public_key=keys[1])
    message = caught.value.message
    assert "'MLmodel'" in message and "model.pkl" in message and "model.skops" in message


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(choice=st.data())
def test_any_flipped_byte_in_any_file_is_refused_naming_that_file(signed_model, keys, tmp_path_factory, choice):
    files = sorted(p.relative_to(signed_model) for p in signed_model.rglob("*") if p.is_file() and p.name != "model.sig")
    model_dir = _copy(signed_model, tmp_path_factory.mktemp("flip"), "model")
    target = model_dir / choice.draw(st.sampled_from(files), label="file")
    content = bytearray(target.read_bytes())
    index = choice.draw(st.integers(0, len(content) - 1), label="byte")
    content[index] ^= choice.draw(st.integers(1, 255), label="xor mask")
    target.write_bytes(bytes(content))
    with pytest.raises(MgskModelError, match=f"Hash mismatch for '{target.relative_to(model_dir)}'"):
        mg.verify_model(model_dir, public_key=keys[1])


def test_log_model_signs_and_every_uri_form_verifies(mlflow_tracking, keys, data, tmp_path, clean_env):
    X, y = data
    model = LinearRegressor().fit(X, y)
    with mlflow.start_run() as run:
        info = mg.log_model(model, name="model", signing_key=keys[0], registered_model_name="signed")
        plain = mg.log_model(model, name="plain")
    uris = [info.model_uri, f"runs:/{run.info.run_id}/model", "models:/signed/1"]  # the last adds registered_model_meta
    for uri in uris:
        assert np.array_equal(mg.load_model(uri, verify_key=keys[1]).predict(X), model.predict(X)), uri
        assert mg.inspect_model(uri, public_key=keys[1]) == [], uri
    with pytest.raises(MgskModelError, match="is not signed"):
        mg.load_model(plain.model_uri, verify_key=keys[1])
    signature_uri = mg.sign_model(plain.model_uri, private_key=keys[0])  # signs a logged model in its store
    assert signature_uri.endswith("/model.sig")
    assert np.array_equal(mg.load_model(plain.model_uri, verify_key=keys[1]).predict(X), model.predict(X))


def test_sign_and_verify_a_fitted_grid_search(tmp_path, keys, data, clean_env):
    X, y = data
    search = GridSearchCV(LinearRegressor(), {"degree": [1, 2]}, cv=3).fit(X, y)
    mg.save_model(search, tmp_path / "search", signing_key=keys[0])
    loaded = mg.load_model(str(tmp_path / "search"), verify_key=keys[1])
    assert np.array_equal(loaded.predict(X), search.predict(X))


# ---------------------------------------------------------------- inspection


def test_inspect_a_clean_model_reports_nothing(tmp_path, data):
    X, y = data
    mg.save_model(LogisticRegressor().fit(X, y > 0), tmp_path / "clean", input_example=X[:2])
    assert mg.inspect_model(tmp_path / "clean") == []
    assert mg.inspect_model(str(tmp_path / "clean")) == []


def test_inspect_reports_pickles_shadowing_code_and_hash_mismatch(tmp_path, data):
    X, y = data
    model = make_pipeline(FunctionTransformer(np.tanh), LinearRegressor()).fit(X, y)
    mg.save_model(model, tmp_path / "pickled", serialization_format="cloudpickle")
    findings = mg.inspect_model(tmp_path / "pickled")
    assert [(f.kind, f.path) for f in findings] == [("pickle", "model.pkl")]

    mg.save_model(LinearRegressor().fit(X, y), tmp_path / "shadow")
    kit.plant_code(tmp_path / "shadow", tmp_path / "MARKER", "pickletools")
    kit.plant_code(tmp_path / "shadow", tmp_path / "MARKER", "mgsk_private_helper")
    (code,) = [f for f in mg.inspect_model(tmp_path / "shadow") if f.kind == "code"]
    assert code.path == "code" and "mlflow.pyfunc.load_model puts it first on sys.path" in code.detail
    assert "ships modules ['mgsk_private_helper', 'pickletools']" in code.detail
    assert "would shadow installed or standard-library modules ['pickletools']" in code.detail
    assert not (tmp_path / "MARKER").exists()  # inspecting imports nothing

    mg.save_model(LinearRegressor().fit(X, y), tmp_path / "switched")
    kit.plant_pickle_switch(tmp_path / "switched", tmp_path / "MARKER")
    kinds = {(f.kind, f.path) for f in mg.inspect_model(tmp_path / "switched")}
    assert kinds == {("pickle", "model.pkl")}  # the attacker rewrote the sha256: only the pickle shows
    (tmp_path / "switched" / "model.pkl").write_bytes(b"\x80\x05N.")
    assert ("hash_mismatch", "model.pkl") in {(f.kind, f.path) for f in mg.inspect_model(tmp_path / "switched")}
    assert not (tmp_path / "MARKER").exists()


def test_inspect_reports_a_wheel_that_is_not_the_running_mgsk(tmp_path, data, monkeypatch):
    from mgsk.mlflow import _requirements

    monkeypatch.setattr(_requirements, "mgsk_from_index", lambda: False)
    mg.save_model(LinearRegressor().fit(*data), tmp_path / "m")
    (wheel,) = (tmp_path / "m" / "wheels").iterdir()
    assert mg.inspect_model(tmp_path / "m") == []  # the running mgsk's own wheel, byte for byte
    content = bytearray(wheel.read_bytes())
    content[len(content) // 2] ^= 1
    wheel.write_bytes(bytes(content))
    assert [(f.kind, f.path) for f in mg.inspect_model(tmp_path / "m")] == [("wheel", f"wheels/{wheel.name}")]


def test_inspect_reports_untrusted_skops_types(tmp_path, data):
    import skops.io

    X, y = data
    mg.save_model(LinearRegressor().fit(X, y), tmp_path / "m")
    custom = make_pipeline(FunctionTransformer(kit.marker_code), LinearRegressor())
    (tmp_path / "m" / "model.skops").write_bytes(skops.io.dumps(custom))
    findings = {f.kind: f for f in mg.inspect_model(tmp_path / "m")}
    assert "bench_security.marker_code" in findings["untrusted_types"].detail
    assert "hash_mismatch" in findings


def test_inspect_a_foreign_flavor_model(tmp_path, data):
    from sklearn.linear_model import LinearRegression

    X, y = data
    pins = {"pip_requirements": ["scikit-learn"]}  # no requirement inference in a subprocess
    mlflow.sklearn.save_model(LinearRegression().fit(X, y), tmp_path / "sk", serialization_format="cloudpickle", **pins)
    found = {(f.kind, f.path) for f in mg.inspect_model(tmp_path / "sk")}
    assert found == {("loader_module", "MLmodel"), ("pickle", "model.pkl")}
    mlflow.sklearn.save_model(
        LinearRegression().fit(X, y), tmp_path / "sk-skops", serialization_format="skops",
        skops_trusted_types=["builtins.eval"], **pins,
    )  # fmt: skip
    findings = {(f.kind, f.path): f.detail for f in mg.inspect_model(tmp_path / "sk-skops")}
    assert findings.keys() == {("loader_module", "MLmodel"), ("untrusted_types", "MLmodel")}
    assert "builtins.eval" in findings[("untrusted_types", "MLmodel")]


def test_inspect_checks_the_signature_when_given_a_key(signed_model, keys, tmp_path, monkeypatch, clean_env):
    unsigned = _copy(signed_model, tmp_path, "unsigned")
    (unsigned / "model.sig").unlink()
    assert mg.inspect_model(unsigned) == []  # no key: signatures are not checked
    (finding,) = mg.inspect_model(unsigned, public_key=keys[1])
    assert (finding.kind, finding.path) == ("signature", "model.sig") and "is not signed" in finding.detail
    monkeypatch.setenv("MGSK_MODEL_PUBLIC_KEY", str(keys[1]))
    assert [f.kind for f in mg.inspect_model(unsigned)] == ["signature"]
    os.symlink("/etc/passwd", unsigned / "link")
    assert ("symlink", "link") in {(f.kind, f.path) for f in mg.inspect_model(unsigned)}


def test_trusted_types_is_public_and_serves_plain_skops(tmp_path, data):
    import skops.io

    X, y = data
    model = LogisticRegressor().fit(X, y > 0)
    mg.save_model(model, tmp_path / "m")
    loaded = skops.io.load(tmp_path / "m" / "model.skops", trusted=mg.trusted_types())
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert "mgsk._logistic.LogisticRegressor" in mg.trusted_types()
    with pytest.raises(Exception, match="Untrusted types"):
        skops.io.load(tmp_path / "m" / "model.skops")


def test_evaluation_model_loads_through_mgsks_rules(tmp_path, data, keys, clean_env):
    X, y = data
    clf = LogisticRegressor().fit(X, y > 0)
    mg.save_model(clf, tmp_path / "clf", signing_key=keys[0])
    wrapped = mg.evaluation_model(str(tmp_path / "clf"), verify_key=keys[1])
    assert wrapped.metadata.flavors["python_function"]["loader_module"] == "mlflow.sklearn"  # what MLflow unwraps
    assert np.array_equal(wrapped.get_raw_model().predict_proba(X), clf.predict_proba(X))
    model_mlmodel = yaml.safe_load((tmp_path / "clf" / "MLmodel").read_text())
    assert model_mlmodel["flavors"]["python_function"]["loader_module"] == "mgsk.mlflow"  # nothing on disk changed
    kit.plant_pickle_switch(tmp_path / "clf", tmp_path / "MARKER")
    with pytest.raises(MgskModelError, match="differ from what was signed"):
        mg.evaluation_model(str(tmp_path / "clf"), verify_key=keys[1])
    with pytest.raises(MgskModelError, match="Refusing to load .*model.pkl"):
        mg.evaluation_model(str(tmp_path / "clf"))
    assert not (tmp_path / "MARKER").exists()
