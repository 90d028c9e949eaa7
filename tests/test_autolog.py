"""mgsk.autolog on plain fits: what one fit logs, and what autolog must never change.

Real MLflow on a fresh sqlite store per test, with MLFLOW_AUTOLOGGING_TESTING
on (conftest), which makes MLflow's patch machinery re-raise any error in
autolog's own code and check that every run it starts is ended and tagged.
"""

import inspect
import json
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

mlflow = pytest.importorskip("mlflow")

import mlflow.sklearn  # noqa: E402
import sklearn.metrics  # noqa: E402
from mlflow.utils import gorilla  # noqa: E402
from sklearn.model_selection._search import BaseSearchCV  # noqa: E402

import mgsk  # noqa: E402
import mgsk.mlflow  # noqa: E402
from mgsk import LinearRegressor, LogisticRegressor, PolynomialRegressor  # noqa: E402

pytestmark = pytest.mark.usefixtures("mlflow_tracking", "autolog_reset")


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ [1.5, -2.0, 0.5] + 1.0 + 0.1 * rng.normal(size=200)
    y[:20] += 25.0  # 10 % gross outliers
    return X, y


@pytest.fixture(scope="module")
def classification():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 2))
    y = np.where(X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.normal(size=150) > 0, "yes", "no")
    return X, y


def all_runs():
    return mlflow.search_runs(search_all_experiments=True, output_format="list")


def logged_models():
    experiments = [e.experiment_id for e in mlflow.search_experiments()]
    return mlflow.search_logged_models(experiment_ids=experiments, output_format="list")


def metric_history(run_id, key):
    history = mlflow.MlflowClient().get_metric_history(run_id, key)
    return [(m.step, m.value) for m in sorted(history, key=lambda m: (m.timestamp, m.step))]


def patch_points():
    """Every attribute autolog may patch, as stored on its class or module."""
    classes = [LinearRegressor, PolynomialRegressor, LogisticRegressor]
    names = ["fit", "predict", "predict_proba", "predict_log_proba", "decision_function", "score"]
    points = [(cls, name) for cls in classes for name in names]
    points.append((BaseSearchCV, "fit"))
    points += [(sklearn.metrics, name) for name in ("r2_score", "accuracy_score", "mean_absolute_error", "f1_score")]
    return points


def raw_attributes():
    return {(owner, name): vars(owner).get(name) for owner, name in patch_points()}


# --------------------------------------------------------------------- API


def test_autolog_is_one_function_with_mlflow_sklearn_names():
    assert mgsk.autolog is mgsk.mlflow.autolog
    params = inspect.signature(mgsk.autolog).parameters
    documented = {
        "log_models": True, "log_input_examples": True, "log_model_signatures": True, "log_datasets": True,
        "log_post_training_metrics": True, "log_plots": True, "max_tuning_runs": 5,
        "registered_model_name": None, "extra_tags": None, "disable": False, "exclusive": False, "silent": False,
    }  # fmt: skip
    assert {name: params[name].default for name in documented} == documented
    shared = set(params) & set(inspect.signature(mlflow.sklearn.autolog).parameters)
    assert shared >= set(documented) - {"log_plots"}


def test_import_mgsk_does_not_import_mlflow():
    code = "import sys, mgsk; mgsk.LinearRegressor(); assert 'mlflow' not in sys.modules, 'mlflow imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_disable_restores_the_original_methods_exactly():
    before = raw_attributes()
    mgsk.autolog()
    patched = raw_attributes()
    assert all(patched[key] is not before[key] for key in [(LinearRegressor, "fit"), (BaseSearchCV, "fit")])
    assert patched[(sklearn.metrics, "r2_score")] is not before[(sklearn.metrics, "r2_score")]
    mgsk.autolog(disable=True)
    assert raw_attributes() == before
    leftovers = [name for owner, _ in patch_points() for name in vars(owner) if name.startswith("_gorilla_")]
    assert leftovers == []


def test_invalid_arguments_are_refused():
    with pytest.raises(mlflow.exceptions.MlflowException, match="max_tuning_runs"):
        mgsk.autolog(max_tuning_runs=-1)
    with pytest.raises(mlflow.exceptions.MlflowException, match="extra_tags"):
        mgsk.autolog(extra_tags=["not", "a", "dict"])


# ------------------------------------------------------- one standalone fit


def test_standalone_fit_logs_one_complete_run(regression, tmp_path):
    X, y = regression
    mgsk.autolog(extra_tags={"team": "gnostics"})
    model = LinearRegressor().fit(X, y)
    mgsk.autolog(disable=True)  # the checks below predict and score, which would be logged

    runs = all_runs()
    assert len(runs) == 1
    run = runs[0]
    run_id = run.info.run_id
    assert run.info.status == "FINISHED" and mlflow.active_run() is None
    assert run.data.params == {key: str(value) for key, value in model.get_params().items()}
    assert run.data.tags["estimator_name"] == "LinearRegressor"
    assert run.data.tags["estimator_class"] == "mgsk._linear.LinearRegressor"
    assert run.data.tags["mlflow.autologging"] == "mgsk" and run.data.tags["team"] == "gnostics"

    metrics = run.data.metrics
    assert metrics["re"] == model.re_ and metrics["n_iter"] == model.n_iter_ and metrics["scale"] == model.scale_
    predictions = model.predict(X)
    assert metrics["training_r2_score"] == pytest.approx(sklearn.metrics.r2_score(y, predictions))
    assert metrics["training_mean_squared_error"] == pytest.approx(sklearn.metrics.mean_squared_error(y, predictions))
    assert metrics["training_mean_absolute_error"] == pytest.approx(
        sklearn.metrics.mean_absolute_error(y, predictions)
    )

    iterations = [(record["iteration"], record["loss"]) for record in model.history_]
    assert metric_history(run_id, "loss") == iterations
    re_history = metric_history(run_id, "re")
    assert re_history == [(record["iteration"], record["re"]) for record in model.history_]
    assert re_history[-1] == (model.n_iter_, model.re_)  # the curve ends at the fitted model

    (dataset_input,) = run.inputs.dataset_inputs
    assert {tag.value for tag in dataset_input.tags} == {"train"}
    profile = json.loads(dataset_input.dataset.profile)
    assert profile["features_shape"] == [200, 3] and profile["targets_shape"] == [200]

    client = mlflow.MlflowClient()
    artifacts = sorted(artifact.path for artifact in client.list_artifacts(run_id))
    assert artifacts == ["gnostic_convergence.png", "gnostic_weights.png"]
    for name in artifacts:
        path = client.download_artifacts(run_id, name, str(tmp_path))
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"

    (logged,) = logged_models()
    assert logged.source_run_id == run_id
    assert {"re", "n_iter", "scale", "training_r2_score"} <= {m.key for m in logged.metrics}
    info = mlflow.models.get_model_info(f"models:/{logged.model_id}")
    assert "mgsk" in info.flavors and info.signature is not None and info.saved_input_example_info is not None
    loaded = mgsk.mlflow.load_model(f"models:/{logged.model_id}")
    assert np.array_equal(loaded.predict(X), predictions)


def test_classifier_logs_classification_scores(classification):
    X, y = classification
    mgsk.autolog(log_models=False, log_plots=False)
    model = LogisticRegressor().fit(X, y)
    mgsk.autolog(disable=True)
    (run,) = all_runs()
    proba = model.predict_proba(X)
    expected = {
        "training_accuracy_score": sklearn.metrics.accuracy_score(y, model.predict(X)),
        "training_f1_score": sklearn.metrics.f1_score(y, model.predict(X), average="weighted"),
        "training_log_loss": sklearn.metrics.log_loss(y, proba),
        "training_roc_auc": sklearn.metrics.roc_auc_score(y == "yes", proba[:, 1]),
    }
    assert {key: run.data.metrics[key] for key in expected} == pytest.approx(expected)
    assert run.data.params["C"] == "1.0" and run.data.metrics["re"] == model.re_
    assert logged_models() == []


def test_failing_fit_ends_its_run_failed_and_raises_the_same_exception(regression):
    X, y = regression
    X_bad = X.copy()
    X_bad[3, 1] = np.nan
    with pytest.raises(ValueError) as plain:
        LinearRegressor().fit(X_bad, y)
    mgsk.autolog()
    with pytest.raises(ValueError) as autologged:
        LinearRegressor().fit(X_bad, y)
    assert type(autologged.value) is type(plain.value) and str(autologged.value) == str(plain.value)
    (run,) = all_runs()
    assert run.info.status == "FAILED" and mlflow.active_run() is None


def test_two_fits_inside_a_user_run_log_there_and_leave_it_open(regression):
    X, y = regression
    mgsk.autolog(log_plots=False)
    with mlflow.start_run() as user_run:
        first = LinearRegressor(degree=1).fit(X, y)
        second = PolynomialRegressor(degree=2).fit(X, y)
        assert mlflow.active_run().info.run_id == user_run.info.run_id
    (run,) = all_runs()
    assert run.info.run_id == user_run.info.run_id
    assert run.data.params["degree"] == "1"  # MLflow params cannot change: the first value stays
    finals = set(metric_history(run.info.run_id, "re"))
    assert {(first.n_iter_, first.re_), (second.n_iter_, second.re_)} <= finals
    assert len(logged_models()) == 2


def test_autolog_leaves_the_fitted_model_bit_for_bit_unchanged(regression, classification):
    for Estimator, (X, y) in [(LinearRegressor, regression), (LogisticRegressor, classification)]:
        plain = pickle.dumps(Estimator().fit(X, y))
        mgsk.autolog(log_models=False, log_plots=False)
        autologged = pickle.dumps(Estimator().fit(X, y))
        mgsk.autolog(disable=True)
        assert autologged == plain


def test_options_turn_their_part_off(regression):
    X, y = regression
    mgsk.autolog(log_models=False, log_plots=False, log_datasets=False, log_post_training_metrics=False)
    model = LinearRegressor().fit(X, y)
    model.score(X, y)
    (run,) = all_runs()
    assert logged_models() == [] and run.inputs.dataset_inputs == []
    assert mlflow.MlflowClient().list_artifacts(run.info.run_id) == []
    assert "re" in run.data.metrics and not any(key.endswith("_score_X") for key in run.data.metrics)


def test_exclusive_logs_nothing_into_a_user_run(regression):
    X, y = regression
    mgsk.autolog(exclusive=True)
    with mlflow.start_run():
        LinearRegressor().fit(X, y)
    (run,) = all_runs()
    assert run.data.params == {} and run.data.metrics == {} and logged_models() == []


def test_post_training_metrics_are_logged_with_the_dataset_name(regression):
    X, y = regression
    X_train, y_train, X_test, y_test = X[:150], y[:150], X[150:], y[150:]
    mgsk.autolog(log_plots=False)
    model = LinearRegressor().fit(X_train, y_train)
    score = model.score(X_test, y_test)
    r2 = sklearn.metrics.r2_score(y_test, model.predict(X_test))
    run = mlflow.get_run(all_runs()[0].info.run_id)
    assert run.data.metrics["LinearRegressor_score_X_test"] == score
    assert run.data.metrics["r2_score_X_test"] == r2
    (logged,) = logged_models()
    assert {"LinearRegressor_score_X_test", "r2_score_X_test"} <= {m.key for m in logged.metrics}
    assert {tag.value for d in run.inputs.dataset_inputs for tag in d.tags} == {"train", "eval"}


def test_metric_functions_are_restored_when_mlflow_sklearn_patched_them_too(regression):
    original = vars(sklearn.metrics)["r2_score"]
    mgsk.autolog()
    mlflow.sklearn.autolog()  # replaces mgsk's patch of r2_score with its own
    sklearn_patch = vars(sklearn.metrics)["r2_score"]
    mgsk.autolog(disable=True)  # must not revert mlflow.sklearn's patch
    assert vars(sklearn.metrics)["r2_score"] is sklearn_patch
    mlflow.sklearn.autolog(disable=True)
    assert vars(sklearn.metrics)["r2_score"] is original
    assert gorilla.get_original_attribute(sklearn.metrics, "r2_score") is original


def test_registered_model_name_registers_the_logged_model(regression):
    mgsk.autolog(log_plots=False, registered_model_name="gnostic-regression")
    LinearRegressor().fit(*regression)
    (logged,) = logged_models()
    (version,) = mlflow.MlflowClient().search_model_versions("name='gnostic-regression'")
    assert version.source == f"models:/{logged.model_id}"


def test_autolog_without_mlflow_names_the_install_command():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["mlflow"] = None  # as if MLflow were not installed
        import mgsk
        try:
            mgsk.autolog()
        except ModuleNotFoundError as exc:
            print(exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 'pip install "mgsk[mlflow]"' in done.stdout and "mlflow is missing" in done.stdout


def test_training_scores_honour_sample_weight(regression):
    X, y = regression
    weights = np.where(np.arange(len(y)) < 20, 0.05, 1.0)  # the outlying rows barely count
    mgsk.autolog(log_models=False, log_plots=False)
    model = LinearRegressor().fit(X, y, sample_weight=weights)
    mgsk.autolog(disable=True)
    (run,) = all_runs()
    predictions = model.predict(X)
    for name in ("r2_score", "mean_squared_error", "mean_absolute_error"):
        metric = getattr(sklearn.metrics, name)
        weighted, unweighted = metric(y, predictions, sample_weight=weights), metric(y, predictions)
        assert abs(weighted - unweighted) > 1e-3 * abs(unweighted)  # the weights matter here
        assert run.data.metrics[f"training_{name}"] == pytest.approx(weighted, rel=1e-12)
