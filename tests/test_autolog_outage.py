"""A team server killed mid-way: nothing lost, duplicated or left RUNNING.

Real ``mlflow server`` processes with proxied artifacts, one on sqlite and
one on a real PostgreSQL (one server per backend and module, started once),
killed by process group and restarted on the same port by the tests that
need the restart. On PostgreSQL several client processes fit while the
server dies: the client processes and the outage are
benchmarks/bench_outage.py's; the suite runs 2 processes x 3 fits (the
benchmark runs 8 x 25, on a sqlite server); the checks are this file's own.
On sqlite a parameter search meets the outage. What needs no server (the
spool, the replay's resumption, orphans, two replays at once) is tested
against a sqlite store in test_autolog_spool.py.
"""

import importlib.util
import logging
import pathlib
from concurrent.futures import ThreadPoolExecutor

import pytest

mlflow = pytest.importorskip("mlflow")

from conftest import MlflowServer, tracked_search  # noqa: E402
from mlflow.entities import LoggedModelStatus  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold  # noqa: E402

import mgsk  # noqa: E402
import mgsk.mlflow  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("autolog_reset")]

PROCESSES, FITS = 2, 3
_spec = importlib.util.spec_from_file_location(
    "bench_outage", pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_outage.py"
)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@pytest.fixture(scope="module")
def postgresql_server(tmp_path_factory, postgresql):
    server = MlflowServer(tmp_path_factory.mktemp("pg-server"), postgresql)
    try:
        yield server.start()
    finally:
        server.stop()


def snapshot(client, experiment_id):
    runs = client.search_runs([experiment_id], max_results=1000)
    models = client.search_logged_models([experiment_id], max_results=1000)
    return runs, {model.model_id: model for model in models}


def check_every_fit_tracked_once(client, experiment_id):
    runs, models = snapshot(client, experiment_id)
    keys = sorted((int(run.data.tags["worker"]), int(run.data.tags["fit"])) for run in runs)
    assert keys == [(w, f) for w in range(PROCESSES) for f in range(FITS)]  # all there, none twice
    for run in runs:
        X, y = bench.fit_data(int(run.data.tags["worker"]), int(run.data.tags["fit"]))
        expected = mgsk.LinearRegressor().fit(X, y)
        assert run.info.status == "FINISHED"
        assert run.data.params["degree"] == "1" and run.data.metrics["re"] == expected.re_
        assert run.data.metrics["n_iter"] == expected.n_iter_
        history = client.get_metric_history(run.info.run_id, "loss")
        assert sorted(m.step for m in history) == [record["iteration"] for record in expected.history_]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert artifacts == {"gnostic_convergence.png", "gnostic_weights.png"}
        (output,) = run.outputs.model_outputs
        assert models[output.model_id].status == LoggedModelStatus.READY
    assert len(models) == len(runs)  # one model per fit, none PENDING or stray
    assert all(model.status == LoggedModelStatus.READY for model in models.values())
    return runs, models


def test_tags_of_any_type_and_silent_against_a_server(sqlite_server, capfd, caplog):
    mlflow.set_tracking_uri(sqlite_server.uri)
    mlflow.set_experiment("tags")
    capfd.readouterr()
    mgsk.autolog(extra_tags={"worker": 1, "ratio": 0.5, "flag": True}, silent=True, log_models=False, log_plots=False)
    with caplog.at_level(logging.INFO):
        mgsk.LinearRegressor().fit(*bench.fit_data(0, 0))
    run = mlflow.last_active_run()
    assert (run.data.tags["worker"], run.data.tags["ratio"], run.data.tags["flag"]) == ("1", "0.5", "True")
    assert run.info.status == "FINISHED" and "re" in run.data.metrics
    out, err = capfd.readouterr()
    assert "View run" not in out + err and "View experiment" not in out + err
    assert [r for r in caplog.records if r.name.startswith("mgsk")] == []


class KillsServerKFold(KFold):
    """KFold that kills ``server`` (once) when the search asks for its splits: mid-search.

    The search's parent run exists by then; its record and child runs meet
    the dead server. A class attribute, so that the search's ``cv`` param
    reads the same as a plain one's.
    """

    server = None

    def split(self, X, y=None, groups=None):
        server, KillsServerKFold.server = KillsServerKFold.server, None
        if server is not None:
            server.kill()
        yield from super().split(X, y, groups)


def test_server_killed_mid_search_the_search_is_tracked_as_if_it_had_stayed_up(sqlite_server, caplog, monkeypatch):
    # MLflow's test mode would re-read the search's runs from the dead server after the fit.
    monkeypatch.setenv("MLFLOW_AUTOLOGGING_TESTING", "false")
    mlflow.set_tracking_uri(sqlite_server.uri)
    client = mlflow.MlflowClient(sqlite_server.uri)
    X, y = bench.fit_data(0, 0)
    mgsk.autolog(log_plots=False, max_tuning_runs=3)

    def search(experiment):
        experiment_id = mlflow.set_experiment(experiment).experiment_id
        searched = GridSearchCV(mgsk.LinearRegressor(), {"degree": [1, 2], "tol": [1e-6, 1e-8]}, cv=KillsServerKFold(3))
        return searched.fit(X, y), experiment_id

    _, up = search("search-up")
    expected = tracked_search(client, up)
    KillsServerKFold.server = sqlite_server
    with caplog.at_level(logging.WARNING, logger="mgsk.mlflow.autolog"):
        fitted, down = search("search-down")
    assert KillsServerKFold.server is None and sqlite_server.proc.poll() is not None  # killed mid-search
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "mgsk.mlflow.autolog"]
    assert "the child runs" in warning and "spooled" in warning
    sqlite_server.start()
    (parent_before,) = client.search_runs([down])
    assert parent_before.info.status == "RUNNING"  # created before the outage

    with ThreadPoolExecutor(2) as pool:  # two replays at once: one waits for the other, then finds nothing
        summaries = list(pool.map(lambda _: mgsk.mlflow.sync(sqlite_server.uri), range(2)))
    assert sorted(len(summary.replayed) for summary in summaries) == [0, 1]
    (summary,) = [summary for summary in summaries if summary.replayed]
    assert (summary.runs_created, summary.runs_completed, summary.child_runs_created) == (0, 1, 3)
    tracked = tracked_search(client, down)
    assert tracked == expected
    assert tracked[0][1]["best_degree"] == str(fitted.best_params_["degree"]) and len(tracked[1]) == 3
    (parent,) = [run for run in client.search_runs([down]) if run.info.run_id == parent_before.info.run_id]
    assert parent.info.status == "FINISHED"  # completed, not duplicated
    assert mgsk.mlflow.sync(sqlite_server.uri).replayed == [] and tracked_search(client, down) == expected


def test_team_server_on_postgresql_killed_mid_way_every_fit_tracked_once_after_sync(postgresql_server, tmp_path):
    server = postgresql_server
    experiment_id, summary, replayed, _ = bench.outage(server, tmp_path, PROCESSES, FITS, kill_fraction=0.25, down_seconds=1)
    assert replayed >= 1  # the outage did spool fits
    assert summary.kept == {} and summary.pending == 0 and summary.store_error is None
    logs = "".join(path.read_text() for path in tmp_path.glob("worker-*.log"))
    assert "Traceback" not in logs
    client = mlflow.MlflowClient(server.uri)
    runs, models = check_every_fit_tracked_once(client, experiment_id)

    again = mgsk.mlflow.sync(server.uri)
    assert again.replayed == [] and again.orphans_ended == {}
    runs_after, models_after = snapshot(client, experiment_id)
    assert sorted(r.info.run_id for r in runs_after) == sorted(r.info.run_id for r in runs)
    assert models_after.keys() == models.keys()
