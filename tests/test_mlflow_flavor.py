"""The mgsk MLflow flavor against real MLflow on real sqlite stores.

Covers the user's guide (sections 2, 3, 5, 6) run with mgsk, the flavor API,
skops-only loading with a fixed trust list, pyfunc inputs and probabilities,
every model URI form, the registry (aliases and the deprecated stages) and
bit-identical round trips (hypothesis). Server tests are in
test_mlflow_serving.py.
"""

import hashlib
import json
import subprocess
import sys
import warnings
from pathlib import Path

import yaml

import numpy as np
import pandas as pd
import pytest

mlflow = pytest.importorskip("mlflow")
skops_io = pytest.importorskip("skops.io")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.models import infer_signature  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler  # noqa: E402

import mgsk  # noqa: E402
import mgsk.mlflow as mg  # noqa: E402
from mgsk.mlflow import _requirements  # noqa: E402
from mgsk import LinearRegressor, LogisticRegressor, PolynomialRegressor  # noqa: E402
from mgsk.mlflow import MgskModelError  # noqa: E402
from mgsk.mlflow._serialization import deserialize  # noqa: E402


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = X @ [1.5, -2.0, 0.5] + 1.0 + 0.1 * rng.normal(size=120)
    y[:10] += 30.0
    return X, y


@pytest.fixture(scope="module")
def classification():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 2))
    y = np.where(X[:, 0] - X[:, 1] > 0, "yes", "no")
    return X, y


@pytest.fixture(scope="module")
def regressor(regression):
    return LinearRegressor(gnostic_characteristics=True).fit(*regression)


@pytest.fixture(scope="module")
def classifier(classification):
    return LogisticRegressor(degree=2).fit(*classification)


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def same_state(a, b):
    """Exact equality of two estimators' attributes, arrays compared bit for bit."""
    return _same(vars(a), vars(b))


def _same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return same_bits(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if hasattr(a, "get_params"):
        return type(a) is type(b) and same_state(a, b)
    return type(a) is type(b) and (a == b or (a != a and b != b))


# ---------------------------------------------------------------- the guide


def test_guide_sections_2_and_3_log_then_load_as_pyfunc_and_native(mlflow_tracking, tmp_path, monkeypatch):
    from mgsk.integration import mlflow as mg_mlflow
    from mgsk.integration.mlflow_flavor import load_model

    monkeypatch.chdir(tmp_path)  # nothing may land in the checkout, whatever MLflow's defaults
    mlflow.create_experiment("Machine_Gnostics_Experiment", artifact_location=(tmp_path / "guide").as_uri())
    mlflow.set_experiment("Machine_Gnostics_Experiment")
    rng = np.random.default_rng(7)
    X_train = rng.random((100, 2))
    y_train = rng.integers(0, 2, 100)
    with mlflow.start_run(run_name="Gnostic_LogReg_v1") as run:
        model = LogisticRegressor(degree=2, gnostic_characteristics=True)
        model.fit(X_train, y_train)
        mlflow.log_param("degree", model.degree)
        mlflow.log_param("gnostic_characteristics", True)
        mlflow.log_param("model_type", "LogisticRegressor")
        mlflow.log_metric("rentropy", model.re)
        if hasattr(model, "_history") and isinstance(model._history, list):
            mlflow.log_metric("iterations", len(model._history))
        signature = infer_signature(X_train, model.predict(X_train))
        mg_mlflow.log_model(model, artifact_path="model", signature=signature, input_example=X_train[:3])
    run_id = run.info.run_id
    assert (tmp_path / "guide").is_dir() and not (tmp_path / "mlruns").exists()

    loaded_model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    predictions = loaded_model.predict(pd.DataFrame(X_train[:5]))
    assert same_bits(predictions, model.predict(X_train[:5]))

    local_path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model")
    native_model = load_model(local_path)
    assert native_model.degree == 2
    assert same_bits(native_model.weights, model.weights)
    assert native_model.re == model.re
    assert same_state(native_model, model)


def test_guide_section_5_register_stage_and_load_production(mlflow_tracking, classifier, classification):
    X, _ = classification
    with mlflow.start_run() as run:
        mg.log_model(classifier, name="model")
    model_name = "Production_Gnostic_Classifier"
    registered = mlflow.register_model(model_uri=f"runs:/{run.info.run_id}/model", name=model_name)
    assert int(registered.version) == 1
    client = MlflowClient()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated, still supported
        client.transition_model_version_stage(name=model_name, version=1, stage="Production")
    production_model = mlflow.pyfunc.load_model(f"models:/{model_name}/Production")
    assert same_bits(production_model.predict(X[:7]), classifier.predict(X[:7]))


def test_guide_section_6_artifacts_tags_and_notes(mlflow_tracking, regressor, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    model = regressor
    with mlflow.start_run() as run:
        # The guide plots ``model._history`` directly; mgsk's history is a list
        # of per-iteration records, so the trajectory is one of its keys.
        plt.plot([record["re"] for record in model._history])
        plt.title("Optimization Trajectory")
        plt.savefig("optimization_curve.png")
        plt.close("all")
        mlflow.log_artifact("optimization_curve.png")
        np.save("weights.npy", model.weights)
        mlflow.log_artifact("weights.npy")
        mlflow.set_tag("dataset", "sensor_data_v2")
        mlflow.set_tag("gnostic_type", "RobustRegression")
        mlflow.set_tag("mlflow.note.content", "Gnostic weighting handles outliers in the sensor stream.")
    artifacts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id)}
    assert {"optimization_curve.png", "weights.npy"} <= artifacts
    weights = np.load(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="weights.npy"))
    assert same_bits(weights, model.weights)
    assert mlflow.get_run(run.info.run_id).data.tags["gnostic_type"] == "RobustRegression"


# ---------------------------------------------------------------- log_model API


def test_log_model_returns_model_info_and_saves_signature_and_examples(mlflow_tracking, regressor, regression):
    X, _ = regression
    signature = infer_signature(X, regressor.predict(X))
    with mlflow.start_run() as run:
        info = mg.log_model(regressor, name="robust", signature=signature, input_example=X[:3])
    assert info.model_id and info.model_uri == f"models:/{info.model_id}"
    assert info.run_id == run.info.run_id
    assert info.signature == signature
    assert info.flavors.keys() == {"mgsk", "python_function"}
    assert info.flavors["python_function"]["loader_module"] == "mgsk.mlflow"
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    files = {p.name for p in local.iterdir()}
    assert {"MLmodel", "model.skops", "input_example.json", "serving_input_example.json"} <= files
    assert {"requirements.txt", "python_env.yaml", "conda.yaml"} <= files
    assert "model.pkl" not in files
    serving = json.loads((local / "serving_input_example.json").read_text())
    assert np.allclose(serving["inputs"], X[:3])
    logged = MlflowClient().get_logged_model(info.model_id)
    assert logged.name == "robust" and logged.source_run_id == run.info.run_id


def test_signature_is_inferred_from_the_input_example(mlflow_tracking, regressor, classifier, classification):
    X, _ = classification
    with mlflow.start_run():
        info = mg.log_model(classifier, name="clf", input_example=X[:4])
        plain = mg.log_model(regressor, name="reg", input_example=X[:4, :1].repeat(3, axis=1))
    assert info.signature.inputs.inputs[0].shape == (-1, 2)
    # Classifiers get the predict_method inference parameter, defaulting to pyfunc_predict_fn.
    assert [(p.name, p.default) for p in info.signature.params] == [("predict_method", "predict")]
    assert plain.signature.params is None


def test_the_serving_check_can_be_skipped(mlflow_tracking, regressor, regression):
    X, _ = regression
    with mlflow.start_run():
        info = mg.log_model(regressor, name="model", input_example=X[:2], validate_serving_input=False)
    assert info.saved_input_example_info["serving_input_path"] == "serving_input_example.json"
    assert same_bits(mg.load_model(info.model_uri).predict(X), regressor.predict(X))


def test_artifact_path_is_the_older_spelling_of_name(mlflow_tracking, regressor):
    with mlflow.start_run() as run:
        old = mg.log_model(regressor, artifact_path="model")
        default = mg.log_model(regressor)
        with pytest.raises(MlflowException, match="Please only specify `name`"):
            mg.log_model(regressor, name="a", artifact_path="b")
    assert old.name == default.name == "model"
    assert isinstance(mg.load_model(f"runs:/{run.info.run_id}/model"), LinearRegressor)


def test_log_model_registers_with_metadata_params_and_tags(mlflow_tracking, regressor):
    with mlflow.start_run():
        info = mg.log_model(
            regressor,
            name="model",
            registered_model_name="gnostic",
            await_registration_for=5,
            metadata={"owner": "team-robust"},
            params={"degree": 1},
            tags={"stage": "candidate"},
        )
    assert info.registered_model_version == 1
    assert info.metadata == {"owner": "team-robust"}
    logged = MlflowClient().get_logged_model(info.model_id)
    assert logged.params["degree"] == "1" and logged.tags["stage"] == "candidate"
    assert isinstance(mg.load_model("models:/gnostic/1"), LinearRegressor)


def test_default_requirements_are_pinned_without_spawning_inference(mlflow_tracking, regressor):
    import sklearn
    import skops

    spawned = []
    watching = [False]

    def audit(event, args):
        if watching[0] and event in ("subprocess.Popen", "os.posix_spawn", "os.fork", "os.exec"):
            spawned.append(event)

    sys.addaudithook(audit)
    _requirements._default_environment_files.cache_clear()  # measure a first save, not a cached one
    with mlflow.start_run():
        watching[0] = True
        try:
            info = mg.log_model(regressor, name="model")
        finally:
            watching[0] = False
    assert spawned == []
    reqs = Path(mlflow.pyfunc.get_model_dependencies(info.model_uri)).read_text().splitlines()
    assert f"scikit-learn=={sklearn.__version__}" in reqs
    assert f"skops=={skops.__version__}" in reqs
    assert f"mlflow=={mlflow.__version__}" in reqs
    assert f"numpy=={np.__version__}" in reqs
    assert any(r.startswith("mgsk==") or r == f"wheels/mgsk-{mgsk.__version__}-py3-none-any.whl" for r in reqs)
    assert "cloudpickle" not in " ".join(reqs)


def test_a_model_carries_the_running_mgsk_when_no_index_has_it(tmp_path, regressor, monkeypatch):
    import zipfile

    from mgsk.mlflow import _requirements

    wheel = f"wheels/mgsk-{mgsk.__version__}-py3-none-any.whl"
    monkeypatch.setattr(_requirements, "mgsk_from_index", lambda: False)  # as in this source checkout
    mg.save_model(regressor, tmp_path / "carried")
    requirements = (tmp_path / "carried" / "requirements.txt").read_text().splitlines()
    assert wheel in requirements and not any(r.startswith("mgsk==") for r in requirements)
    assert f"- {wheel}" in (tmp_path / "carried" / "conda.yaml").read_text()
    with zipfile.ZipFile(tmp_path / "carried" / wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"mgsk-{mgsk.__version__}.dist-info/METADATA").decode()
    assert {"mgsk/__init__.py", "mgsk/mlflow/_flavor.py", "mgsk/datasets/data/stackloss.csv"} <= names
    assert "Requires-Dist: scikit-learn" in metadata
    mg.save_model(regressor, tmp_path / "again")  # the same code gives the same wheel, byte for byte
    assert (tmp_path / "again" / wheel).read_bytes() == (tmp_path / "carried" / wheel).read_bytes()

    monkeypatch.setattr(_requirements, "mgsk_from_index", lambda: True)
    mg.save_model(regressor, tmp_path / "pinned")
    assert f"mgsk=={mgsk.__version__}" in (tmp_path / "pinned" / "requirements.txt").read_text().splitlines()
    assert not (tmp_path / "pinned" / "wheels").exists()
    mg.save_model(regressor, tmp_path / "own", pip_requirements=["mgsk", "skops"])  # the user's list is kept
    assert not (tmp_path / "own" / "wheels").exists()


def test_environment_arguments(tmp_path, regressor):
    mg.save_model(regressor, tmp_path / "extra", extra_pip_requirements=["pandas"])
    assert "pandas" in (tmp_path / "extra" / "requirements.txt").read_text().splitlines()
    mg.save_model(regressor, tmp_path / "exact", pip_requirements=["mgsk", "skops"])
    assert (tmp_path / "exact" / "requirements.txt").read_text().splitlines()[1:] == ["mgsk", "skops"]
    conda_env = mg.get_default_conda_env()
    mg.save_model(regressor, tmp_path / "conda", conda_env=conda_env)
    assert "conda.yaml" in {p.name for p in (tmp_path / "conda").iterdir()}
    with pytest.raises(ValueError, match="pip_requirements"):
        mg.save_model(regressor, tmp_path / "both", pip_requirements=["a"], extra_pip_requirements=["b"])
    assert not (tmp_path / "both").exists()
    assert [r.split("==")[0] for r in mg.get_default_pip_requirements("cloudpickle")][-1] == "cloudpickle"


def test_shipped_code_is_appended_for_allowed_pickle_models_only(tmp_path, regression, monkeypatch):
    X, y = regression
    helper = tmp_path / "src" / "mgsk_test_helper_mod.py"
    helper.parent.mkdir()
    helper.write_text("def shift(X):\n    return X + 1\n")
    monkeypatch.setattr(sys, "path", [str(helper.parent), *sys.path])
    import mgsk_test_helper_mod

    model = make_pipeline(FunctionTransformer(mgsk_test_helper_mod.shift), LinearRegressor()).fit(X, y)
    mg.save_model(model, tmp_path / "pickled", serialization_format="cloudpickle", code_paths=[str(helper)])
    mg.save_model(LinearRegressor().fit(X, y), tmp_path / "skops", code_paths=[str(helper)])
    assert (tmp_path / "pickled" / "code" / "mgsk_test_helper_mod.py").exists()
    meta = yaml.safe_load((tmp_path / "pickled" / "MLmodel").read_text())
    assert meta["flavors"]["mgsk"]["code"] == "code" and meta["flavors"]["python_function"].get("code") is None
    sys.modules.pop("mgsk_test_helper_mod")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(helper.parent)])

    before = list(sys.path)
    mg.load_model(str(tmp_path / "skops"))
    assert sys.path == before  # a skops model never touches sys.path
    loaded = mg.load_model(str(tmp_path / "pickled"), allow_pickle=True)
    assert sys.path == [*before, str(tmp_path / "pickled" / "code")]  # appended, never first
    assert same_bits(loaded.predict(X), model.predict(X))
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    for _ in range(2):  # the helper imported from code/ by an allowed load is neither shadowing nor an attack
        assert same_bits(mlflow.pyfunc.load_model(str(tmp_path / "pickled")).predict(X), model.predict(X))
    sys.modules.pop("mgsk_test_helper_mod")


# ---------------------------------------------------------------- load_model URIs and registry


def test_load_model_accepts_every_uri_form(mlflow_tracking, classifier, classification, tmp_path):
    X, _ = classification
    with mlflow.start_run() as run:
        info = mg.log_model(classifier, name="model", registered_model_name="clf")
    client = MlflowClient()
    client.set_registered_model_alias("clf", "champion", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        client.transition_model_version_stage("clf", 1, "Staging")
    local = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "local"))
    dst = tmp_path / "dst"
    dst.mkdir()
    uris = [
        f"runs:/{run.info.run_id}/model",
        "models:/clf/1",
        "models:/clf@champion",
        "models:/clf/Staging",
        f"models:/{info.model_id}",
        local,
        Path(local).as_uri(),
    ]
    expected = classifier.predict_proba(X)
    for uri in uris:
        assert same_bits(mg.load_model(uri).predict_proba(X), expected), uri
        assert same_bits(mlflow.pyfunc.load_model(uri).predict(X), classifier.predict(X)), uri
    mg.load_model("models:/clf@champion", dst_path=str(dst))
    assert (dst / "model.skops").exists()


def test_aliases_move_between_versions(mlflow_tracking, regression):
    X, y = regression
    first = LinearRegressor(degree=1).fit(X, y)
    second = PolynomialRegressor(degree=2).fit(X, y)
    with mlflow.start_run():
        mg.log_model(first, name="model", registered_model_name="reg")
        mg.log_model(second, name="model", registered_model_name="reg")
    client = MlflowClient()
    client.set_registered_model_alias("reg", "champion", 1)
    assert same_bits(mg.load_model("models:/reg@champion").predict(X), first.predict(X))
    client.set_registered_model_alias("reg", "champion", 2)
    assert type(mg.load_model("models:/reg@champion")) is PolynomialRegressor
    assert int(client.get_model_version_by_alias("reg", "champion").version) == 2


def test_load_model_explains_a_model_of_another_flavor(tmp_path, regressor):
    import mlflow.sklearn

    mlflow.sklearn.save_model(regressor, tmp_path / "sk", serialization_format="cloudpickle")
    with pytest.raises(MgskModelError, match='does not have the "mgsk" flavor'):
        mg.load_model(str(tmp_path / "sk"))
    with pytest.raises(MgskModelError, match="no MLmodel file"):
        mg.load_model(str(tmp_path))


# ---------------------------------------------------------------- pyfunc


def test_pyfunc_accepts_dataframe_array_and_list(tmp_path, regressor, regression):
    X, _ = regression
    expected = regressor.predict(X[:6])
    mg.save_model(regressor, tmp_path / "plain")
    mg.save_model(regressor, tmp_path / "columns", signature=infer_signature(pd.DataFrame(X), expected))
    mg.save_model(regressor, tmp_path / "tensor", signature=infer_signature(X, expected))
    for name in ("plain", "columns", "tensor"):
        model = mlflow.pyfunc.load_model(str(tmp_path / name))
        for data in (X[:6], pd.DataFrame(X[:6]), X[:6].tolist()):
            if name == "tensor" and isinstance(data, list):
                # MLflow's own enforcement of a tensor signature takes arrays and DataFrames only.
                with pytest.raises(MlflowException, match="numpy array input or a pandas dataframe"):
                    model.predict(data)
                continue
            assert same_bits(model.predict(data), expected), (name, type(data))


def test_pyfunc_with_named_columns(tmp_path, regression):
    X, y = regression
    frame = pd.DataFrame(X, columns=["temp", "load", "speed"])
    model = LinearRegressor().fit(frame, y)
    mg.save_model(model, tmp_path / "named", input_example=frame.head(3))
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "named"))
    expected = model.predict(frame.head(4))
    assert same_bits(loaded.predict(frame.head(4)), expected)
    with pytest.raises(MlflowException, match="speed"):
        loaded.predict(frame.head(4).drop(columns="speed"))
    mg.save_model(model, tmp_path / "unsigned")
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "unsigned"))
    assert same_bits(loaded.predict(X[:4]), expected)
    assert same_bits(loaded.predict(frame.head(4).to_dict(orient="list")), expected)


def test_signature_enforces_the_input_schema(tmp_path, regressor, regression):
    X, _ = regression
    mg.save_model(regressor, tmp_path / "m", signature=infer_signature(X, regressor.predict(X)))
    model = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    with pytest.raises(MlflowException, match=r"[Ss]hape of input \(4, 2\) does not match expected shape \(-1, 3\)"):
        model.predict(X[:4, :2])
    with pytest.raises(MlflowException, match="Failed to enforce schema"):
        model.predict(np.array([["a", "b", "c"]]))


def test_pyfunc_without_signature_orders_dataframe_columns_by_name(tmp_path, regression):
    X, y = regression
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = LinearRegressor().fit(frame, y)
    mg.save_model(model, tmp_path / "m")  # no signature: nothing in MLflow reorders the columns
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    shuffled = frame[["c", "a", "b"]]
    assert same_bits(loaded.predict(shuffled), model.predict(frame))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "X does not have valid feature names"
        by_position = model.predict(shuffled.to_numpy())
    assert not np.allclose(by_position, model.predict(frame))  # matching by position would mispredict
    with pytest.raises(MgskModelError, match=r"lacks column\(s\) \['b'\]"):
        loaded.predict(frame[["a", "c"]].assign(d=1.0))


def test_pyfunc_without_signature_reports_bad_input_clearly(tmp_path, regressor, regression):
    X, _ = regression
    mg.save_model(regressor, tmp_path / "m")
    model = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    with pytest.raises(MgskModelError, match="LinearRegressor.predict cannot use this input.*3 features"):
        model.predict(X[:2, :2])


def test_probabilities_via_pyfunc_predict_fn(tmp_path, classifier, classification):
    X, _ = classification
    mg.save_model(classifier, tmp_path / "proba", pyfunc_predict_fn="predict_proba")
    model = mlflow.pyfunc.load_model(str(tmp_path / "proba"))
    assert same_bits(model.predict(X[:5]), classifier.predict_proba(X[:5]))


def test_data_analysis_estimators_save_load_and_serve_through_pyfunc(tmp_path, regression):
    X, _ = regression
    X = X.copy()
    X[:6] += 50.0  # gross outliers the detector must flag
    detector = mgsk.GnosticOutlierDetector().fit(X)
    mg.save_model(detector, tmp_path / "detector", input_example=X[:3])
    assert same_state(mg.load_model(str(tmp_path / "detector")), detector)
    served = mlflow.pyfunc.load_model(str(tmp_path / "detector")).predict(pd.DataFrame(X))
    assert same_bits(np.asarray(served).ravel(), detector.predict(X))
    assert set(np.unique(served)) == {-1, 1} and (np.asarray(served).ravel()[:6] == -1).all()

    distribution = mgsk.GnosticDistribution(kind="eldf").fit(X[6:, :2])
    with pytest.raises(MgskModelError, match="offers .*score_samples"):
        mg.save_model(distribution, tmp_path / "no-predict", pyfunc_predict_fn="predict")
    # No predict: the pyfunc serves the log density by default, as autolog logs it.
    mg.save_model(distribution, tmp_path / "default", input_example=X[:3, :2])
    default = mlflow.pyfunc.load_model(str(tmp_path / "default"))
    assert default.metadata.flavors["python_function"]["predict_fn"] == "score_samples"
    assert default.metadata.signature.params.to_dict()[0]["default"] == "score_samples"
    assert same_bits(default.predict(X[:5, :2]), distribution.score_samples(X[:5, :2]))
    for method in ("score_samples", "cdf", "pdf"):
        mg.save_model(distribution, tmp_path / method, pyfunc_predict_fn=method)
        served = mlflow.pyfunc.load_model(str(tmp_path / method)).predict(X[:5, :2])
        assert same_bits(served, getattr(distribution, method)(X[:5, :2])), method


def test_probabilities_via_a_declared_params_key(tmp_path, classifier, classification):
    X, _ = classification
    signature = infer_signature(X, classifier.predict(X), params={"predict_method": "predict"})
    mg.save_model(classifier, tmp_path / "params", signature=signature)
    model = mlflow.pyfunc.load_model(str(tmp_path / "params"))
    assert same_bits(model.predict(X[:5]), classifier.predict(X[:5]))
    assert same_bits(model.predict(X[:5], params={"predict_method": "predict_proba"}), classifier.predict_proba(X[:5]))
    assert same_bits(
        model.predict(X[:5], params={"predict_method": "decision_function"}), classifier.decision_function(X[:5])
    )
    with pytest.raises(MgskModelError, match="'predict_method'.*'transform' is not available"):
        model.predict(X[:5], params={"predict_method": "transform"})


def test_probabilities_via_both_must_agree(tmp_path, classifier, classification):
    X, _ = classification
    signature = infer_signature(X, classifier.predict_proba(X), params={"predict_method": "predict_proba"})
    mg.save_model(classifier, tmp_path / "both", signature=signature, pyfunc_predict_fn="predict_proba")
    model = mlflow.pyfunc.load_model(str(tmp_path / "both"))
    assert same_bits(model.predict(X[:3]), classifier.predict_proba(X[:3]))
    assert same_bits(model.predict(X[:3], params={"predict_method": "predict"}), classifier.predict(X[:3]))
    with pytest.raises(MgskModelError, match="make them agree"):
        mg.save_model(classifier, tmp_path / "disagree", signature=signature, pyfunc_predict_fn="predict")
    assert not (tmp_path / "disagree").exists()


# ---------------------------------------------------------------- skops, trust, tampering


def test_pipelines_column_transformers_and_searches_round_trip(tmp_path, regression, classification):
    from sklearn.metrics import make_scorer

    from mgsk.metrics import residual_entropy

    X, y = regression
    Xc, yc = classification
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(site=np.where(X[:, 0] > 0, "north", "south"))
    column_model = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), ["a", "b", "c"]), ("cat", OneHotEncoder(), ["site"])]),
        LinearRegressor(),
    ).fit(frame, y)
    search = GridSearchCV(
        LinearRegressor(), {"degree": [1, 2]}, cv=3, scoring=make_scorer(residual_entropy, greater_is_better=False)
    ).fit(X, y)
    classifier_search = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegressor()),
        {"logisticregressor__C": [0.1, 1.0]},
        cv=3,
        scoring=["neg_log_loss", "accuracy"],
        refit="accuracy",
    ).fit(Xc, yc)
    cases = {
        "columns": (column_model, frame),
        "search": (search, X),
        "best": (search.best_estimator_, X),
        "classifier_search": (classifier_search, Xc),
        "scaled": (make_pipeline(FunctionTransformer(np.log1p), LinearRegressor()).fit(np.abs(X), y), np.abs(X)),
    }
    for name, (model, data) in cases.items():
        mg.save_model(model, tmp_path / name)
        loaded = mg.load_model(str(tmp_path / name))
        assert type(loaded) is type(model)
        assert same_bits(loaded.predict(data), model.predict(data)), name
        assert same_bits(mlflow.pyfunc.load_model(str(tmp_path / name)).predict(data), model.predict(data)), name
    loaded = mg.load_model(str(tmp_path / "classifier_search"))
    assert same_bits(loaded.predict_proba(Xc), classifier_search.predict_proba(Xc))
    assert loaded.best_params_ == classifier_search.best_params_


def shift_by_one(X):
    """A user function: skops cannot know it is harmless."""
    return X + 1


def test_untrusted_content_is_refused_at_save_with_the_type_named(tmp_path, regression):
    X, y = regression
    model = make_pipeline(FunctionTransformer(shift_by_one), LinearRegressor()).fit(X, y)
    with pytest.raises(MgskModelError, match=r"test_mlflow_flavor\.shift_by_one.*serialization_format='cloudpickle'"):
        mg.save_model(model, tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_cloudpickle_loads_only_when_the_caller_opts_in(tmp_path, regression, monkeypatch):
    X, y = regression
    model = make_pipeline(FunctionTransformer(shift_by_one), LinearRegressor()).fit(X, y)
    mg.save_model(model, tmp_path / "m", serialization_format="cloudpickle")
    files = {p.name for p in (tmp_path / "m").iterdir()}
    assert "model.pkl" in files and "model.skops" not in files
    assert "cloudpickle==" in (tmp_path / "m" / "requirements.txt").read_text()
    model_file = str(tmp_path / "m" / "model.pkl")
    for value, why in ((None, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION is unset"), ("false", "is 'false'")):
        if value is None:
            monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
        else:
            monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", value)
        for load in (mg.load_model, mlflow.pyfunc.load_model):
            with pytest.raises(MgskModelError, match="Refusing to load (.*)model.pkl") as caught:
                load(str(tmp_path / "m"))
            assert model_file in caught.value.message and why in caught.value.message
            assert "allow_pickle=True" in caught.value.message
        assert same_bits(mg.load_model(str(tmp_path / "m"), allow_pickle=True).predict(X), model.predict(X))
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    assert same_bits(mg.load_model(str(tmp_path / "m")).predict(X), model.predict(X))
    assert same_bits(mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(X), model.predict(X))
    with pytest.raises(MgskModelError, match="allow_pickle=False was passed"):
        mg.load_model(str(tmp_path / "m"), allow_pickle=False)
    with pytest.raises(MgskModelError, match="allow_pickle must be True, False or None"):
        mg.load_model(str(tmp_path / "m"), allow_pickle="yes")


def test_skops_models_load_when_pickle_is_disallowed(tmp_path, regressor, regression, monkeypatch):
    X, _ = regression
    mg.save_model(regressor, tmp_path / "m")
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    assert same_bits(mg.load_model(str(tmp_path / "m")).predict(X), regressor.predict(X))


def _edit_mlmodel(model_dir, edit):
    import yaml

    path = Path(model_dir) / "MLmodel"
    meta = yaml.safe_load(path.read_text())
    edit(meta["flavors"]["mgsk"])
    path.write_text(yaml.safe_dump(meta))


def test_trust_list_is_never_read_from_the_mlmodel_file(tmp_path, regression):
    """An attacker who can write the model folder edits the file and the MLmodel."""
    X, y = regression
    mg.save_model(LinearRegressor().fit(X, y), tmp_path / "m")
    payload = skops_io.dumps(make_pipeline(FunctionTransformer(shift_by_one), LinearRegressor()).fit(X, y))
    (tmp_path / "m" / "model.skops").write_bytes(payload)
    named = skops_io.get_untrusted_types(data=payload)
    assert any(name.endswith("shift_by_one") for name in named)

    def widen_trust(conf):
        conf["sha256"] = hashlib.sha256(payload).hexdigest()
        conf["skops_trusted_types"] = named
        conf["trusted_types"] = named

    _edit_mlmodel(tmp_path / "m", widen_trust)
    for load in (mg.load_model, mlflow.pyfunc.load_model):
        with pytest.raises(MgskModelError, match=r"does not trust: .*shift_by_one"):
            load(str(tmp_path / "m"))


def _member_data_offset(data, name):
    """Where a zip member's (compressed) bytes start inside the archive."""
    import io
    import struct
    import zipfile

    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    return info.header_offset + 30 + name_len + extra_len, info.compress_size


def test_a_changed_model_file_is_refused(tmp_path, regressor):
    mg.save_model(regressor, tmp_path / "m")
    model_file = tmp_path / "m" / "model.skops"
    data = bytearray(model_file.read_bytes())
    # skops names its members after object ids, so the layout moves from save
    # to save: change a byte of the schema's own bytes, not a fixed offset.
    start, size = _member_data_offset(bytes(data), "schema.json")
    data[start + size // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))
    with pytest.raises(MgskModelError, match="does not match the sha256"):
        mg.load_model(str(tmp_path / "m"))
    _edit_mlmodel(tmp_path / "m", lambda conf: conf.update(sha256=hashlib.sha256(data).hexdigest()))
    with pytest.raises(MgskModelError, match="not a readable skops file"):
        mg.load_model(str(tmp_path / "m"))


def test_no_changed_byte_loads_a_different_model(tmp_path, regressor, regression):
    """With the sha256 rewritten too, a flipped byte is refused or changes nothing.

    Zip keeps some header fields twice (local and central) and reads one copy,
    so a flip there loads the same model; a flip anywhere in a member's data
    must be caught by its CRC. Every 37th byte of the file is tried.
    """
    mg.save_model(regressor, tmp_path / "m")
    original = (tmp_path / "m" / "model.skops").read_bytes()
    X, _ = regression
    refused = 0
    for position in range(0, len(original), 37):
        data = bytearray(original)
        data[position] ^= 0xFF
        try:
            loaded = deserialize(bytes(data), "skops", source="a flipped model file")
        except MgskModelError:
            refused += 1
            continue
        assert same_bits(loaded.coef_, regressor.coef_), position
        assert same_bits(loaded.predict(X), regressor.predict(X)), position
    assert refused > 0.9 * len(range(0, len(original), 37))


@pytest.mark.parametrize(
    "edit, match",
    [
        ({"serialization_format": "pickle"}, "serialization format 'pickle'"),
        ({"code": "../../elsewhere"}, "code directory '../../elsewhere'"),
    ],
)
def test_an_edited_flavor_configuration_is_refused(tmp_path, regressor, edit, match):
    mg.save_model(regressor, tmp_path / "m")
    _edit_mlmodel(tmp_path / "m", lambda conf: conf.update(edit))
    with pytest.raises(MgskModelError, match=match):
        mg.load_model(str(tmp_path / "m"))


def test_transient_callback_state_is_dropped_from_a_copy_only(tmp_path, regression, monkeypatch):
    """scikit-learn 1.9 sets _parent_callback_ctx while a Pipeline fits its last step.

    An autologger saves the model inside that fit; the attribute must neither
    break skops nor be removed from the user's estimator.
    """
    X, y = regression
    original_fit = LinearRegressor.fit
    seen = {}

    def fit_then_save(self, X, y, sample_weight=None):
        original_fit(self, X, y, sample_weight)
        seen["during"] = hasattr(self, "_parent_callback_ctx")
        mg.save_model(self, tmp_path / "inner")
        seen["after_save"] = hasattr(self, "_parent_callback_ctx")
        return self

    monkeypatch.setattr(LinearRegressor, "fit", fit_then_save)
    pipe = make_pipeline(StandardScaler(), LinearRegressor()).fit(X, y)
    assert seen == {"during": True, "after_save": True}
    loaded = mg.load_model(str(tmp_path / "inner"))
    assert not hasattr(loaded, "_parent_callback_ctx")
    Z = pipe[0].transform(X)
    assert same_bits(loaded.predict(Z), pipe[-1].predict(Z))


def test_saving_never_changes_the_model(tmp_path, classification):
    import copy

    X, y = classification
    model = LogisticRegressor(gnostic_characteristics=True).fit(X, y)
    before = copy.deepcopy(model)
    mg.save_model(model, tmp_path / "m", input_example=X[:3], pyfunc_predict_fn="predict_proba")
    assert same_state(model, before)


def test_save_model_refuses_a_non_empty_path_and_keeps_its_files(tmp_path, regressor):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(MlflowException, match="already exists and is not empty"):
        mg.save_model(regressor, target)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    mg.save_model(regressor, empty)
    assert (empty / "MLmodel").exists()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"model": LinearRegressor()}, "LinearRegressor is not fitted"),
        ({"model": np.zeros(3)}, "must be a fitted scikit-learn estimator.*ndarray"),
        ({"serialization_format": "pickle"}, r"serialization_format must be one of \['skops', 'cloudpickle'\]"),
        ({"pyfunc_predict_fn": "predict_proba"}, "offers \\['predict'\\]"),
        ({"pyfunc_predict_fn": "transform"}, "pyfunc_predict_fn must be one of"),
        ({"signature": "x:double"}, "signature must be an mlflow.models.ModelSignature"),
    ],
)
def test_bad_arguments_get_a_clear_error_and_write_nothing(tmp_path, regressor, kwargs, match):
    kwargs = {"model": regressor, **kwargs}
    with pytest.raises(MgskModelError, match=match):
        mg.save_model(path=tmp_path / "m", **kwargs)
    assert not (tmp_path / "m").exists()


def test_log_model_rejects_unknown_keywords_before_logging(mlflow_tracking, regressor):
    with mlflow.start_run() as run:
        with pytest.raises(TypeError, match="skops_trusted_types"):
            mg.log_model(regressor, name="m", skops_trusted_types=["builtins.eval"])
        with pytest.raises(MgskModelError, match="not fitted"):
            mg.log_model(LinearRegressor(), name="m")
    assert MlflowClient().search_logged_models(experiment_ids=[run.info.experiment_id]) == []


# ---------------------------------------------------------------- bit-identical round trips


@st.composite
def fitted_models(draw):
    kind = draw(st.sampled_from([LinearRegressor, PolynomialRegressor, LogisticRegressor]))
    n_features = draw(st.integers(1, 3))
    n_samples = draw(st.integers(12, 50))
    X = draw(
        hnp.arrays(
            np.float64,
            (n_samples, n_features),
            elements=st.floats(-100, 100, allow_nan=False, allow_subnormal=False),
            unique=False,
        )
    )
    params = {
        "degree": draw(st.integers(1, 3)),
        "fit_intercept": draw(st.booleans()),
        "scale": draw(st.one_of(st.just("auto"), st.floats(0.1, 1.9))),
        "max_iter": draw(st.integers(1, 30)),
        "gnostic_characteristics": draw(st.booleans()),
    }
    noise = draw(hnp.arrays(np.float64, n_samples, elements=st.floats(-3, 3)))
    if kind is LogisticRegressor:
        params["C"] = draw(st.floats(0.05, 20))
        labels = draw(st.sampled_from([np.array([0, 1, 2]), np.array(["ham", "spam"]), np.array([-1, 1])]))
        y = labels[(np.arange(n_samples) + (noise > 0)) % len(labels)]
    else:
        coef = draw(hnp.arrays(np.float64, n_features, elements=st.floats(-5, 5)))
        y = X @ coef + noise
    if kind is PolynomialRegressor and draw(st.booleans()):
        params.pop("degree")
    with warnings.catch_warnings():
        # The round trip is under test, not the fit: tiny max_iter and data near
        # the float limits make the estimators warn, and that is reported elsewhere.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return kind(**params).fit(X, y), X


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=fitted_models(), as_frame=st.booleans())
def test_round_trip_is_bit_identical(case, as_frame, tmp_path_factory):
    model, X = case
    path = tmp_path_factory.mktemp("roundtrip") / "model"
    mg.save_model(model, path)
    loaded = mg.load_model(str(path))
    assert type(loaded) is type(model)
    assert same_state(loaded, model)
    methods = ["predict"] + (["predict_proba", "decision_function"] if hasattr(model, "classes_") else [])
    for method in methods:
        assert same_bits(getattr(loaded, method)(X), getattr(model, method)(X)), method
    pyfunc_model = mlflow.pyfunc.load_model(str(path))
    assert same_bits(pyfunc_model.predict(pd.DataFrame(X) if as_frame else X), model.predict(X))


# ---------------------------------------------------------------- packaging


def test_import_mgsk_does_not_import_mlflow():
    code = (
        "import sys, mgsk, mgsk.integration, mgsk.models, mgsk.metrics; "
        "assert 'mlflow' not in sys.modules and 'skops' not in sys.modules; "
        "from mgsk.integration import mlflow as mg_mlflow; "
        "from mgsk.integration.mlflow_flavor import load_model; "
        "import mgsk.mlflow; "
        "assert mg_mlflow.log_model is mgsk.mlflow.log_model and load_model is mgsk.mlflow.load_model; "
        "assert mgsk.autolog is mgsk.mlflow.autolog"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_flavor_name():
    assert mg.FLAVOR_NAME == "mgsk"
