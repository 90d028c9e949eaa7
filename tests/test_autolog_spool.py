"""The spool and its replay, on a real sqlite store that is unreachable first and appears later.

The store's URI names a database in a "folder" that is a file for now: every
request fails as against a dead server, and replacing that file by a ready
folder brings the store up under the same URI, in milliseconds. The
multi-process outage against real servers is in test_autolog_outage.py.
"""

import json
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

mlflow = pytest.importorskip("mlflow")

from mlflow.entities import LoggedModelStatus  # noqa: E402

import mgsk  # noqa: E402
import mgsk.mlflow  # noqa: E402
from mgsk import LinearRegressor  # noqa: E402
from mgsk.mlflow.__main__ import main as mgsk_mlflow_command  # noqa: E402
from mgsk.mlflow._autolog import replay  # noqa: E402
from mgsk.mlflow._autolog.spool import Spool  # noqa: E402
from conftest import tracked_search  # noqa: E402

pytestmark = pytest.mark.usefixtures("autolog_reset")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(150, 3))
    y = X @ [1.0, -1.0, 2.0] + 0.2 * rng.normal(size=150)
    y[:15] += 20.0
    return X, y


class LateStore:
    """A sqlite store whose URI fails until :meth:`come_up` moves its folder into place."""

    def __init__(self, tmp_path, migrated_sqlite_store, monkeypatch):
        self.ready, self.live = tmp_path / "ready", tmp_path / "live"
        self.ready.mkdir()
        shutil.copyfile(migrated_sqlite_store, self.ready / "mlflow.db")
        client = mlflow.MlflowClient(f"sqlite:///{self.ready / 'mlflow.db'}")
        self.experiment_id = client.create_experiment("late", artifact_location=(tmp_path / "artifacts").as_uri())
        self.live.write_text("not a folder yet")
        self.uri = f"sqlite:///{self.live / 'mlflow.db'}"
        self.spool_root = tmp_path / "spool"
        monkeypatch.setenv("MGSK_SPOOL_DIR", str(self.spool_root))
        mlflow.set_tracking_uri(self.uri)
        monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", self.experiment_id)
        self.spool = Spool(self.uri)

    def come_up(self):
        self.live.unlink()
        os.rename(self.ready, self.live)

    @property
    def client(self):
        return mlflow.MlflowClient(self.uri)

    def runs(self):
        return self.client.search_runs([self.experiment_id])

    def models(self):
        return self.client.search_logged_models([self.experiment_id])


@pytest.fixture
def store(tmp_path, migrated_sqlite_store, monkeypatch):
    return LateStore(tmp_path, migrated_sqlite_store, monkeypatch)


def spooled_fits(store, data, caplog, n, **autolog):
    """``n`` fits while the store is down; return the models and the seconds each fit took."""
    mgsk.autolog(**autolog)
    models, seconds = [], []
    with caplog.at_level(logging.WARNING, logger="mgsk.mlflow.autolog"):
        for index in range(n):
            start = time.monotonic()
            models.append(LinearRegressor(tol=10.0 ** -(6 + index)).fit(*data))
            seconds.append(time.monotonic() - start)
    warnings = [r.getMessage() for r in caplog.records if r.name == "mgsk.mlflow.autolog"]
    assert len(warnings) == n and all("spooled to" in message for message in warnings)
    assert len(store.spool.pending_entries()) == n
    return models, seconds


def test_fits_during_an_outage_are_spooled_then_replayed_exactly_once(store, data, caplog, tmp_path):
    plain = pickle.dumps(LinearRegressor(tol=1e-6).fit(*data))
    models, seconds = spooled_fits(store, data, caplog, 3)
    assert pickle.dumps(models[0]) == plain  # the fit itself is unaffected
    assert max(seconds[1:]) < 5  # known down: no request waits (generous for a loaded machine)

    entry = store.spool.pending_entries()[0]
    record = json.loads((entry.path / "record.json").read_text())
    assert record["run"]["run_id"] is None and record["run"]["end_status"] == "FINISHED"
    assert record["params"]["tol"] == "1e-06" and record["experiment_id"] == store.experiment_id
    assert {m["key"] for m in record["metrics"]} >= {"re", "loss", "n_iter", "scale", "training_r2_score"}
    assert sorted(os.listdir(entry.path / "artifacts")) == ["gnostic_convergence.png", "gnostic_weights.png"]
    assert (entry.path / "model" / "MLmodel").is_file()
    (store.spool.tmp / "00000000000000000001-1-torn").mkdir()  # a writer that died mid-entry
    (store.spool.tmp / "00000000000000000001-1-torn" / "record.json").write_text('{"run": ')

    store.come_up()
    summary = mgsk.mlflow.sync()
    assert (len(summary.replayed), summary.runs_created, summary.models_logged) == (3, 3, 3)
    assert summary.kept == {} and summary.pending == 0

    runs = sorted(store.runs(), key=lambda run: float(run.data.params["tol"]), reverse=True)
    models_by_id = {model.model_id: model for model in store.models()}
    assert len(runs) == 3 and len(models_by_id) == 3
    for run, model in zip(runs, models):
        assert run.info.status == "FINISHED" and run.data.params["tol"] == str(model.tol)
        assert run.data.metrics["re"] == model.re_ and run.data.tags["estimator_name"] == "LinearRegressor"
        history = store.client.get_metric_history(run.info.run_id, "re")
        assert sorted((m.step, m.value) for m in history) == [(r["iteration"], r["re"]) for r in model.history_]
        assert {a.path for a in store.client.list_artifacts(run.info.run_id)} == {
            "gnostic_convergence.png", "gnostic_weights.png",
        }  # fmt: skip
        (output,) = run.outputs.model_outputs
        logged = models_by_id[output.model_id]
        assert logged.status == LoggedModelStatus.READY and logged.source_run_id == run.info.run_id
        assert {m.key for m in logged.metrics} >= {"re", "training_r2_score"}
        loaded = mgsk.mlflow.load_model(f"models:/{logged.model_id}")
        assert pickle.dumps(loaded) == pickle.dumps(model)
        (dataset,) = run.inputs.dataset_inputs
        assert dataset.tags[0].value == "train"

    again = mgsk.mlflow.sync()
    assert again.replayed == [] and again.orphans_ended == {} and again.pending == 0
    assert len(store.runs()) == 3 and len(store.models()) == 3
    assert len(store.spool.replayed_entries()) == 3 and not (store.spool.replayed_entries()[0].path / "model").exists()


def test_a_replay_that_stopped_halfway_resumes_without_duplicates(store, data, caplog):
    spooled_fits(store, data, caplog, 2)
    store.come_up()
    client, done = store.client, {"runs_created": 0, "runs_completed": 0}
    first, second = store.spool.pending_entries()
    # The first replay died after creating the run and the model, before recording them;
    # the second one after recording the run only.
    for entry in (first, second):
        run_id, _ = replay._run_id(client, entry, entry.record, {}, store.experiment_id, done)
        assert mlflow.get_run(run_id).data.tags["mgsk.autolog.fit_id"] == entry.record["fit_id"]
        record = entry.record
        replay._model_id(client, entry, record["fit_id"], record["model"], entry.state(), store.experiment_id, run_id)
    (first.path / "state.json").unlink()
    assert [model.status for model in store.models()] == [LoggedModelStatus.PENDING] * 2

    summary = mgsk.mlflow.sync()
    assert len(summary.replayed) == 2 and summary.runs_created == 0 and summary.models_logged == 2
    runs, models = store.runs(), store.models()
    assert len(runs) == 2 and len(models) == 2
    assert all(run.info.status == "FINISHED" for run in runs)
    assert all(model.status == LoggedModelStatus.READY for model in models)


def test_two_processes_syncing_at_once_replay_each_entry_once(store, data, caplog):
    spooled_fits(store, data, caplog, 2, log_plots=False, registered_model_name="spooled")
    store.come_up()
    command = [sys.executable, "-m", "mgsk.mlflow", "sync", "--tracking-uri", store.uri]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    replayed = sorted(int(out.split("replayed ")[1].split(" ")[0]) for out in outputs)
    assert replayed == [0, 2]
    assert len(store.runs()) == 2 and len(store.models()) == 2
    versions = store.client.search_model_versions("name='spooled'")
    assert sorted(v.source for v in versions) == sorted(f"models:/{m.model_id}" for m in store.models())


def test_an_entry_whose_experiment_is_gone_is_kept_and_reported(store, data, caplog, capsys):
    spooled_fits(store, data, caplog, 1, log_models=False, log_plots=False)
    store.come_up()
    store.client.delete_experiment(store.experiment_id)
    summary = mgsk.mlflow.sync()
    (entry,) = store.spool.pending_entries()
    assert summary.replayed == [] and summary.pending == 1
    assert summary.kept == {entry.name: f"the experiment {store.experiment_id} is deleted on the server"}
    assert "kept" in str(summary) and entry.record["params"]["degree"] == "1"
    capsys.readouterr()
    assert mgsk_mlflow_command(["spool", "--tracking-uri", store.uri]) == 0  # `python -m mgsk.mlflow spool`
    listing = capsys.readouterr().out
    assert entry.name in listing and "1 entries pending" in listing


def test_a_run_whose_process_died_is_ended_by_the_next_replay(mlflow_tracking, tmp_path):
    code = textwrap.dedent(
        f"""
        import os, signal, numpy as np, mlflow, mgsk
        mlflow.set_tracking_uri({mlflow_tracking!r})
        X = np.random.default_rng(0).normal(size=(50, 2))
        class Killer:
            shape = X.shape
            def __len__(self):
                return len(X)
            def __getitem__(self, key):
                return X[key]
            def __array__(self, dtype=None, copy=None):
                os.kill(os.getpid(), signal.SIGKILL)
        mgsk.autolog()
        mgsk.LinearRegressor().fit(Killer(), X[:, 0])
        """
    )
    env = {**os.environ, "MLFLOW_EXPERIMENT_ID": mlflow.get_experiment_by_name("mgsk-tests").experiment_id}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert run.info.status == "RUNNING"

    summary = mgsk.mlflow.sync()
    assert summary.orphans_ended == {run.info.run_id: "KILLED"}
    ended = mlflow.get_run(run.info.run_id)
    assert ended.info.status == "KILLED" and "died" in ended.data.tags["mgsk.autolog.end_reason"]
    assert mgsk.mlflow.sync().orphans_ended == {}


def test_child_runs_a_dead_search_left_running_are_ended_with_its_run(mlflow_tracking):
    client = mlflow.MlflowClient()
    experiment_id = mlflow.get_experiment_by_name("mgsk-tests").experiment_id
    parent = client.create_run(experiment_id)
    child_tags = {"mlflow.parentRunId": parent.info.run_id, "mgsk.autolog.fit_id": "search-0"}
    running, finished = (client.create_run(experiment_id, tags=child_tags) for _ in range(2))
    client.set_terminated(finished.info.run_id)
    # The search's process died while logging its child runs: its open-run marker is no longer locked.
    Spool(mlflow_tracking).open_run(parent.info.run_id, {"experiment_id": experiment_id}).close()

    assert mgsk.mlflow.sync().orphans_ended == {parent.info.run_id: "KILLED"}
    ended = client.get_run(running.info.run_id)
    assert ended.info.status == "KILLED" and "died" in ended.data.tags["mgsk.autolog.end_reason"]
    assert client.get_run(finished.info.run_id).info.status == "FINISHED"


def grid_search(data, refit=True):
    from sklearn.model_selection import GridSearchCV

    return GridSearchCV(LinearRegressor(), {"degree": [1, 2, 3]}, cv=3, refit=refit).fit(*data)


def search_logged_while_up(tmp_path, migrated_sqlite_store, data, refit):
    """The same search, logged to a store that is up: what the replay must reproduce."""
    folder = tmp_path / "up"
    folder.mkdir()
    shutil.copyfile(migrated_sqlite_store, folder / "mlflow.db")
    client = mlflow.MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment_id = client.create_experiment("up", artifact_location=(folder / "artifacts").as_uri())
    previous = mlflow.get_tracking_uri(), os.environ["MLFLOW_EXPERIMENT_ID"]
    mlflow.set_tracking_uri(client.tracking_uri)
    os.environ["MLFLOW_EXPERIMENT_ID"] = experiment_id
    try:
        grid_search(data, refit)
    finally:
        mlflow.set_tracking_uri(previous[0])
        os.environ["MLFLOW_EXPERIMENT_ID"] = previous[1]
    return tracked_search(client, experiment_id)


@pytest.mark.parametrize("refit", [True, False])
def test_a_search_during_an_outage_is_replayed_with_its_child_runs(store, data, caplog, refit, migrated_sqlite_store, tmp_path):
    mgsk.autolog(log_plots=False, max_tuning_runs=2)
    expected = search_logged_while_up(tmp_path, migrated_sqlite_store, data, refit)
    with caplog.at_level(logging.WARNING, logger="mgsk.mlflow.autolog"):
        search = grid_search(data, refit)
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "mgsk.mlflow.autolog"]
    assert "the run and its 2 child runs were spooled" in warning
    (entry,) = store.spool.pending_entries()
    assert [child["params"]["degree"] for child in entry.record["search"]["children"]] == [
        str(search.cv_results_["params"][index]["degree"]) for index in np.argsort(search.cv_results_["rank_test_score"])[:2]
    ]
    store.come_up()
    summary = mgsk.mlflow.sync()
    assert (len(summary.replayed), summary.runs_created, summary.child_runs_created) == (1, 1, 2)
    parent, children, model = tracked_search(store.client, store.experiment_id)
    assert (parent, children, model) == expected
    assert parent[1]["best_degree"] == str(search.best_params_["degree"]) and len(children) == 2
    assert {"mlflow.user", "mlflow.source.name"} <= set(parent[3])  # as mlflow.start_run would have set
    assert (model is not None) == refit and all(child[0] == "FINISHED" for child in children)
    assert mgsk.mlflow.sync().replayed == [] and tracked_search(store.client, store.experiment_id) == expected


def test_a_search_replay_that_stopped_halfway_completes_its_child_runs(store, data, caplog):
    from mgsk.mlflow._autolog.search import log_child_runs

    mgsk.autolog(log_plots=False, log_models=False)
    with caplog.at_level(logging.WARNING, logger="mgsk.mlflow.autolog"):
        grid_search(data)
    store.come_up()
    (entry,) = store.spool.pending_entries()
    client, done = store.client, {"runs_created": 0, "runs_completed": 0}
    # An earlier replay created the parent, sent the first child run whole,
    # and died right after creating the second one.
    parent_id, _ = replay._run_id(client, entry, entry.record, {}, store.experiment_id, done)
    first, second, _ = entry.record["search"]["children"]
    log_child_runs(client, store.experiment_id, parent_id, [first], None)
    running = client.create_run(store.experiment_id, tags={**second["tags"], "mlflow.parentRunId": parent_id})

    summary = mgsk.mlflow.sync()
    assert (summary.runs_created, summary.child_runs_created) == (0, 1)
    parent, children, _ = tracked_search(client, store.experiment_id)
    assert parent[0] == "FINISHED" and len(children) == 3 and all(child[0] == "FINISHED" for child in children)
    completed = client.get_run(running.info.run_id)
    assert completed.data.params["degree"] == second["params"]["degree"]
    assert completed.data.metrics["mean_test_score"] == second["scores"]["mean_test_score"]
