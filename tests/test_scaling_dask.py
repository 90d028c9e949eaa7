"""Searches over mgsk estimators on a real Dask cluster give the serial search's results.

One ``distributed.LocalCluster`` for the module: two worker processes, one
thread each, 500 MiB each, on 127.0.0.1, closed at the end of the module.
``joblib.parallel_backend("dask")`` sends the search's fits to its workers;
the task stream proves they ran there. The CV scores, the chosen parameters
and the refitted model must equal those of the serial search bit for bit.
"""

import numpy as np
import pytest

distributed = pytest.importorskip("distributed", reason='Dask is not installed: pip install ".[dask]"')

import joblib  # noqa: E402
from sklearn.metrics import make_scorer  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from mgsk import LinearRegressor, LogisticRegressor, PolynomialRegressor  # noqa: E402
from mgsk.metrics import mean_fidelity_score  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    import dask

    scratch = str(tmp_path_factory.mktemp("dask"))
    with dask.config.set({"temporary-directory": scratch}):  # the workers' and their locks' folder
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, memory_limit="500MiB",
            host="127.0.0.1", dashboard_address=None, local_directory=scratch,
        )  # fmt: skip
        with cluster, distributed.Client(cluster) as client:
            yield client


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(12)
    X = rng.normal(size=(300, 2))
    y = 1.0 + X @ [2.0, -1.0] + 0.5 * X[:, 0] ** 2 + 0.2 * rng.normal(size=300)
    y[::10] += 30.0  # 10 % gross outliers
    return X, y


@pytest.fixture(scope="module")
def classification():
    rng = np.random.default_rng(13)
    X = rng.normal(size=(240, 2))
    y = np.select([X[:, 0] > 0.6, X[:, 1] > 0.0], ["high", "mid"], "low")
    return X, y


def searches():
    """(id, make the search, which data) for every search the tests run both ways."""
    cv = KFold(4, shuffle=True, random_state=0)
    fidelity = make_scorer(mean_fidelity_score)
    return [
        ("polynomial", lambda: GridSearchCV(PolynomialRegressor(), {"degree": [1, 2, 3]}, cv=cv, scoring=fidelity),
         "regression"),
        ("pipeline", lambda: GridSearchCV(
            make_pipeline(StandardScaler(), LinearRegressor()),
            {"linearregressor__degree": [1, 2], "linearregressor__scale": ["auto", 1.0]}, cv=cv,
        ), "regression"),
        ("classifier", lambda: GridSearchCV(LogisticRegressor(), {"C": [0.1, 1.0, 10.0]}, cv=3), "classification"),
    ]  # fmt: skip


def score_columns(search):
    return {key: value for key, value in search.cv_results_.items() if "test_score" in key or key == "rank_test_score"}


def assert_same_search(parallel, serial):
    assert parallel.best_params_ == serial.best_params_
    for key, values in score_columns(serial).items():
        assert np.array_equal(parallel.cv_results_[key], values), key
    final, reference = (s.best_estimator_[-1] if hasattr(s.best_estimator_, "steps") else s.best_estimator_
                        for s in (parallel, serial))  # fmt: skip
    assert np.array_equal(final.coef_, reference.coef_) and final.re_ == reference.re_


@pytest.mark.parametrize("name, make_search, data", searches(), ids=[s[0] for s in searches()])
def test_search_on_dask_workers_equals_the_serial_search(client, name, make_search, data, request):
    X, y = request.getfixturevalue(data)
    serial = make_search().fit(X, y)
    with distributed.get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
        parallel = make_search().fit(X, y)
    workers = {task["worker"] for task in tasks.data}
    assert workers and workers <= set(client.scheduler_info()["workers"]), "the fits did not run on the workers"
    assert_same_search(parallel, serial)


def test_autologged_search_on_dask_gives_one_parent_run_and_its_children(
    client, regression, mlflow_tracking, autolog_reset
):
    import mlflow

    import mgsk

    X, y = regression
    _, make_search, _ = searches()[1]  # the Pipeline search: 4 candidates
    serial = make_search().fit(X, y)
    mgsk.autolog(log_plots=False, max_tuning_runs=None)
    with distributed.get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
        parallel = make_search().fit(X, y)
    mgsk.autolog(disable=True)
    assert tasks.data, "the search did not run on the cluster"
    assert_same_search(parallel, serial)

    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    parents = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    (parent,) = parents
    children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == len(runs) - 1 == len(serial.cv_results_["params"]) == 4
    assert parent.data.tags["estimator_name"] == "GridSearchCV"
    assert parent.data.metrics["best_cv_score"] == serial.best_score_
    assert parent.data.params["best_linearregressor__degree"] == str(serial.best_params_["linearregressor__degree"])
    logged = {
        (child.data.params["linearregressor__degree"], child.data.params["linearregressor__scale"]):
        child.data.metrics["mean_test_score"] for child in children
    }  # fmt: skip
    expected = {
        (str(p["linearregressor__degree"]), str(p["linearregressor__scale"])): score
        for p, score in zip(serial.cv_results_["params"], serial.cv_results_["mean_test_score"])
    }
    assert logged == expected
    (model,) = mlflow.search_logged_models(experiment_ids=[parent.info.experiment_id], output_format="list")
    assert model.source_run_id == parent.info.run_id


def test_the_pages_example_runs_on_the_cluster_as_it_would_serially(client, capsys):
    from sklearn.base import clone
    from test_scaling_examples import page_example

    namespace = {}
    with distributed.get_task_stream(client) as tasks:
        exec(page_example("dask-search"), namespace)
    assert tasks.data, "the example's search did not run on the cluster"
    search = namespace["search"]
    assert capsys.readouterr().out == f"{search.best_params_}\n"
    assert_same_search(search, clone(search).fit(namespace["X"], namespace["y"]))
