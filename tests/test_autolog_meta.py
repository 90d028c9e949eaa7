"""mgsk.autolog with Pipelines, parameter searches, cross-validation and mlflow.sklearn.autolog.

The run counts are the point: a Pipeline is one run, a search is one parent
run and at most max_tuning_runs child runs (never one per inner fit, also with
n_jobs=2), whether or not mlflow.sklearn.autolog is on, and in either order.
"""

import numpy as np
import pandas as pd
import pytest

mlflow = pytest.importorskip("mlflow")

import mlflow.sklearn  # noqa: E402
import sklearn.metrics  # noqa: E402
from sklearn.linear_model import LinearRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import mgsk  # noqa: E402
import mgsk.mlflow  # noqa: E402
from mgsk import LinearRegressor  # noqa: E402

pytestmark = pytest.mark.usefixtures("mlflow_tracking", "autolog_reset")


@pytest.fixture
def quick_sklearn_models(monkeypatch):
    """mlflow.sklearn infers each model's requirements in a subprocess (seconds); cap it at 1 s."""
    monkeypatch.setenv("MLFLOW_REQUIREMENTS_INFERENCE_TIMEOUT", "1")


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(120, 3)) * [1.0, 10.0, 0.1], columns=["speed", "load", "temp"])
    y = X.to_numpy() @ [2.0, 0.3, -5.0] + 0.1 * rng.normal(size=120)
    y[:12] += 40.0
    return X, y


def runs():
    return mlflow.search_runs(search_all_experiments=True, output_format="list")


def parents_and_children():
    all_runs = runs()
    parents = [run for run in all_runs if "mlflow.parentRunId" not in run.data.tags]
    children = [run for run in all_runs if "mlflow.parentRunId" in run.data.tags]
    return parents, children


def logged_models():
    experiments = [e.experiment_id for e in mlflow.search_experiments()]
    return mlflow.search_logged_models(experiment_ids=experiments, output_format="list")


def pipeline():
    return Pipeline([("scale", StandardScaler()), ("gnostic", LinearRegressor())])


def test_pipeline_gives_one_run_with_the_pipeline_as_the_model(frame):
    X, y = frame
    mgsk.autolog(log_plots=False)
    pipe = pipeline().fit(X, y)
    mgsk.autolog(disable=True)

    (run,) = runs()
    assert run.info.status == "FINISHED"
    assert run.data.tags["estimator_name"] == "Pipeline"
    expected = {key: str(value) for key, value in pipe.get_params(deep=True).items()}
    assert run.data.params == expected
    assert run.data.params["gnostic__degree"] == "1" and run.data.params["scale__with_mean"] == "True"
    step = pipe.named_steps["gnostic"]
    assert run.data.metrics["re"] == step.re_ and run.data.metrics["n_iter"] == step.n_iter_
    assert run.data.metrics["training_r2_score"] == pytest.approx(sklearn.metrics.r2_score(y, pipe.predict(X)))

    (logged,) = logged_models()
    info = mlflow.models.get_model_info(f"models:/{logged.model_id}")
    assert info.signature.inputs.input_names() == ["speed", "load", "temp"]
    loaded = mgsk.mlflow.load_model(f"models:/{logged.model_id}")
    assert isinstance(loaded, Pipeline) and np.array_equal(loaded.predict(X), pipe.predict(X))


def test_post_training_metrics_through_a_pipeline_and_a_search(frame):
    X, y = frame
    X_train, y_train, X_test, y_test = X[:90], y[:90], X[90:], y[90:]
    mgsk.autolog(log_plots=False, log_models=False, max_tuning_runs=0)
    pipe = pipeline().fit(X_train, y_train)
    pipe_run_id = mlflow.last_active_run().info.run_id
    search = GridSearchCV(LinearRegressor(), {"degree": [1, 2]}, cv=3).fit(X_train, y_train)
    search_run_id = mlflow.last_active_run().info.run_id
    pipe_score, pipe_r2 = pipe.score(X_test, y_test), sklearn.metrics.r2_score(y_test, pipe.predict(X_test))
    search_mae = sklearn.metrics.mean_absolute_error(y_test, search.predict(X_test))
    pipe_metrics = mlflow.get_run(pipe_run_id).data.metrics
    assert pipe_metrics["Pipeline_score_X_test"] == pipe_score and pipe_metrics["r2_score_X_test"] == pipe_r2
    assert mlflow.get_run(search_run_id).data.metrics["mean_absolute_error_X_test"] == search_mae


def check_search_runs(search, max_tuning_runs):
    """One parent holding the search's results, and the best-ranked candidates as children."""
    parents, children = parents_and_children()
    (parent,) = parents
    n_candidates = len(search.cv_results_["params"])
    assert len(children) == min(max_tuning_runs, n_candidates)
    assert {child.data.tags["mlflow.parentRunId"] for child in children} == {parent.info.run_id}
    for name, value in search.best_params_.items():
        assert parent.data.params[f"best_{name}"] == str(value)
    assert parent.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert parent.data.metrics["re"] == mgsk.mlflow._autolog.record.gnostic_step(search.best_estimator_).re_
    artifacts = [a.path for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id)]
    assert "cv_results.csv" in artifacts

    ranks = np.asarray(search.cv_results_["rank_test_score"])
    best = sorted(range(n_candidates), key=lambda i: ranks[i])[: len(children)]
    logged_scores = sorted(child.data.metrics["mean_test_score"] for child in children)
    assert logged_scores == pytest.approx(sorted(search.cv_results_["mean_test_score"][best]))
    for child in children:
        assert {"mean_test_score", "std_test_score", "rank_test_score"} <= set(child.data.metrics)

    (logged,) = logged_models()
    assert logged.source_run_id == parent.info.run_id
    loaded = mgsk.mlflow.load_model(f"models:/{logged.model_id}")
    assert type(loaded) is type(search.best_estimator_)
    return parent


def test_grid_search_over_a_pipeline_with_two_jobs(frame):
    X, y = frame
    mgsk.autolog(max_tuning_runs=3, log_plots=False)
    grid = {"gnostic__degree": [1, 2], "gnostic__tol": [1e-6, 1e-3]}
    search = GridSearchCV(pipeline(), grid, cv=3, n_jobs=2).fit(X, y)  # 4 candidates x 3 folds
    mgsk.autolog(disable=True)
    parent = check_search_runs(search, max_tuning_runs=3)
    assert parent.data.params["best_gnostic__degree"] == str(search.best_params_["gnostic__degree"])


def test_randomized_search_over_an_estimator(frame):
    X, y = frame
    mgsk.autolog(max_tuning_runs=5)
    search = RandomizedSearchCV(
        LinearRegressor(), {"degree": [1, 2, 3], "tol": [1e-6, 1e-4]}, n_iter=2, cv=3, random_state=0
    ).fit(X.to_numpy(), y)
    mgsk.autolog(disable=True)
    parent = check_search_runs(search, max_tuning_runs=5)
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id)}
    assert {"gnostic_convergence.png", "gnostic_weights.png"} <= artifacts


def test_cross_val_score_logs_nothing(frame):
    X, y = frame
    mgsk.autolog()
    cross_val_score(LinearRegressor(), X, y, cv=3)
    assert runs() == [] and logged_models() == []


@pytest.mark.parametrize("sklearn_first", [True, False], ids=["sklearn-then-mgsk", "mgsk-then-sklearn"])
def test_together_with_mlflow_sklearn_autolog_nothing_is_duplicated_or_lost(frame, sklearn_first, quick_sklearn_models):
    X, y = frame
    enable = [lambda: mlflow.sklearn.autolog(silent=True), lambda: mgsk.autolog(log_plots=False)]
    for turn_on in enable if sklearn_first else enable[::-1]:
        turn_on()

    def new_runs(fit):
        before = {run.info.run_id for run in runs()}
        models_before = len(logged_models())
        fit()
        return [run for run in runs() if run.info.run_id not in before], len(logged_models()) - models_before

    # mlflow.sklearn.autolog logs scikit-learn's meta-estimators; mgsk adds the gnostic metrics.
    (pipe_run,), n_models = new_runs(lambda: pipeline().fit(X, y))
    assert n_models == 1 and pipe_run.data.tags["mlflow.autologging"] == "sklearn"
    assert {"re", "n_iter", "scale", "gnostic__degree"} <= set(pipe_run.data.metrics) | set(pipe_run.data.params)

    search_runs, n_models = new_runs(lambda: GridSearchCV(LinearRegressor(), {"degree": [1, 2]}, cv=3).fit(X, y))
    parents = [run for run in search_runs if "mlflow.parentRunId" not in run.data.tags]
    assert len(parents) == 1 and len(search_runs) == 3  # not 2 candidates x 3 folds + refit
    assert "re" in parents[0].data.metrics and n_models == 2  # mlflow.sklearn's "model" and "best_estimator"

    (mgsk_run,), n_models = new_runs(lambda: LinearRegressor().fit(X, y))
    assert n_models == 1 and mgsk_run.data.tags["mlflow.autologging"] == "mgsk"

    (sklearn_run,), n_models = new_runs(lambda: LinearRegression().fit(X, y))
    assert n_models == 1 and sklearn_run.data.tags["mlflow.autologging"] == "sklearn"


def test_disabling_one_integration_leaves_the_other_working(frame, quick_sklearn_models):
    X, y = frame
    X_test, y_test = X[:30], y[:30]
    mgsk.autolog(log_plots=False)
    mlflow.sklearn.autolog(silent=True)
    mgsk.autolog(disable=True)
    LinearRegression().fit(X, y)
    sklearn_run = mlflow.last_active_run()
    sklearn.metrics.r2_score(y_test, LinearRegression().fit(X, y).predict(X_test))
    (run,) = [r for r in runs() if r.info.run_id != sklearn_run.info.run_id and "r2_score_X_test" in r.data.metrics]
    assert run.data.tags["mlflow.autologging"] == "sklearn"

    mgsk.autolog(log_plots=False)
    mlflow.sklearn.autolog(disable=True)
    pipe = pipeline().fit(X, y)
    pipe_run = mlflow.last_active_run()
    assert pipe_run.data.tags["mlflow.autologging"] == "mgsk"
    sklearn.metrics.mean_absolute_error(y_test, pipe.predict(X_test))
    assert "mean_absolute_error_X_test" in mlflow.get_run(pipe_run.info.run_id).data.metrics


@pytest.mark.parametrize("sklearn_first", [True, False], ids=["sklearn-then-mgsk", "mgsk-then-sklearn"])
def test_post_training_metrics_are_not_dropped_while_other_threads_fit_sklearn_models(frame, sklearn_first):
    import threading

    from sklearn.linear_model import Ridge

    X, y = frame
    X_train, y_train, X_test, y_test = X[:90], y[:90], X[90:], y[90:]
    enable = [
        lambda: mlflow.sklearn.autolog(silent=True, log_models=False, log_datasets=False),
        lambda: mgsk.autolog(log_models=False, log_plots=False, log_datasets=False),
    ]
    for turn_on in enable if sklearn_first else enable[::-1]:
        turn_on()
    stop = threading.Event()

    def fit_sklearn_models():  # each fit holds mlflow.sklearn's process-wide training session
        # Bounded and paced: unpaced threads flood the sqlite store with runs and starve the main thread.
        for _ in range(60):
            if stop.wait(0.05):
                return
            Ridge().fit(X_train, y_train)

    threads = [threading.Thread(target=fit_sklearn_models) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        expected = {}
        for index in range(12):
            model = LinearRegressor(tol=10.0 ** -(4 + index % 6)).fit(X_train, y_train)
            run_id = mlflow.last_active_run().info.run_id
            expected[run_id] = (model.score(X_test, y_test), sklearn.metrics.r2_score(y_test, model.predict(X_test)))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    logged = {run_id: mlflow.get_run(run_id).data.metrics for run_id in expected}
    missing = [
        (run_id, key)
        for run_id, metrics in logged.items()
        for key in ("LinearRegressor_score_X_test", "r2_score_X_test")
        if key not in metrics
    ]
    assert missing == []
    for run_id, (score, r2) in expected.items():
        assert logged[run_id]["LinearRegressor_score_X_test"] == score and logged[run_id]["r2_score_X_test"] == r2
