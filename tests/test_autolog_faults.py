"""Logging never breaks training: a dead tracking server or an unwritable artifact store.

Each case checks that ``fit`` returns exactly the model it returns without
autolog, within seconds, with one warning saying what was not logged (or
spooled, when the store does not answer), and that MLflow's HTTP settings
are the user's again afterwards.
"""

import logging
import os
import pickle
import time

import numpy as np
import pytest

mlflow = pytest.importorskip("mlflow")

from conftest import free_port  # noqa: E402

import mgsk  # noqa: E402
from mgsk import LinearRegressor  # noqa: E402

pytestmark = pytest.mark.usefixtures("autolog_reset")

#: Generous for a loaded 2-core machine (about 2 s here); MLflow's default retries take minutes.
SECONDS = 10
HTTP_SETTINGS = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(3000, 4))
    y = X @ [1.0, 2.0, -1.0, 0.5] + rng.normal(size=3000)
    y[:300] += 30.0
    return X, y


@pytest.fixture(autouse=True)
def own_spool(tmp_path, monkeypatch):
    """A spool per test: the module's server keeps its URI across restarts, and so would its spool."""
    monkeypatch.setenv("MGSK_SPOOL_DIR", str(tmp_path / "spool"))


@pytest.fixture
def restore_tracking_uri(monkeypatch):
    previous = mlflow.get_tracking_uri()
    yield
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a run left open must not stall teardown
    while mlflow.active_run() is not None:
        try:
            mlflow.end_run()
        except mlflow.exceptions.MlflowException:
            pass
    mlflow.set_tracking_uri(previous)


class StopsServerWhenRead:
    """Training data that kills the tracking server the first time the fit reads it.

    The run is created before the fit reads its data, so the server dies
    mid-fit, between the run's creation and its logging.
    """

    def __init__(self, X, server):
        self.X, self.server, self.shape = X, server, X.shape

    def __len__(self):
        return len(self.X)

    def __getitem__(self, key):
        return self.X[key]

    def __array__(self, dtype=None, copy=None):
        self.server.kill()
        return self.X if dtype is None else self.X.astype(dtype)


def autolog_warnings(caplog):
    return [r for r in caplog.records if r.name == "mgsk.mlflow.autolog" and r.levelno == logging.WARNING]


def fit_and_check(X, y, data, caplog, expect_in_warning, run_left_open=False):
    """Fit under autolog; compare with the plain fit; return the one warning's text."""
    plain = pickle.dumps(LinearRegressor().fit(*data))
    settings = {name: os.environ.get(name) for name in HTTP_SETTINGS}
    mgsk.autolog()
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="mgsk.mlflow.autolog"):
        model = LinearRegressor().fit(X, y)
    elapsed = time.monotonic() - start
    assert pickle.dumps(model) == plain
    assert elapsed < SECONDS
    (warning,) = autolog_warnings(caplog)
    message = warning.getMessage()
    for part in expect_in_warning:
        assert part in message
    assert {name: os.environ.get(name) for name in HTTP_SETTINGS} == settings
    assert (mlflow.active_run() is not None) == run_left_open
    return message


@pytest.mark.parametrize("store", ["server", "unknown"], ids=["nothing-listens", "unknown-scheme"])
def test_unusable_tracking_uri(store, data, caplog, restore_tracking_uri):
    # MLflow refuses an unknown scheme when the client is created, before any request.
    uri = f"http://127.0.0.1:{free_port()}" if store == "server" else "no-such-store://anywhere"
    mlflow.set_tracking_uri(uri)
    message = fit_and_check(*data, data, caplog, ["could not reach the MLflow tracking store", "the run was spooled"])
    assert os.environ["MGSK_SPOOL_DIR"] in message


def test_server_stopped_mid_fit(data, caplog, restore_tracking_uri, sqlite_server, monkeypatch):
    mlflow.set_tracking_uri(sqlite_server.uri)
    mlflow.set_experiment("dies-mid-fit")
    # In test mode MLflow re-reads every run an autologged call created, after
    # the call, from the store: with the store gone, that read would be what
    # fails (after MLflow's own retries), not the fit.
    monkeypatch.setenv("MLFLOW_AUTOLOGGING_TESTING", "false")
    X, y = data
    message = fit_and_check(StopsServerWhenRead(X, sqlite_server), y, data, caplog, ["could not log the model", "spooled"])
    assert not sqlite_server.running, "the server was not stopped during the fit"
    assert "the plots" in message


def test_server_stopped_mid_fit_inside_a_user_run(data, caplog, restore_tracking_uri, sqlite_server):
    mlflow.set_tracking_uri(sqlite_server.uri)
    mlflow.set_experiment("dies-mid-fit")
    mlflow.start_run()  # test mode stays on: MLflow checks only the runs autolog creates
    X, y = data
    message = fit_and_check(StopsServerWhenRead(X, sqlite_server), y, data, caplog, ["could not log the model"], run_left_open=True)
    assert "spooled" in message


def test_artifact_store_cannot_be_written(data, caplog, mlflow_tracking, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the artifact folder should be")
    experiment = mlflow.create_experiment("unwritable", artifact_location=(blocker / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    message = fit_and_check(*data, data, caplog, ["the model", "the plots"])
    (run,) = mlflow.search_runs([experiment], output_format="list")
    assert run.info.status == "FINISHED" and run.data.params["degree"] == "1" and "re" in run.data.metrics
    assert "parameters" not in message


def test_silent_suppresses_the_warning(data, caplog, restore_tracking_uri):
    mlflow.set_tracking_uri(f"http://127.0.0.1:{free_port()}")
    mgsk.autolog(silent=True)
    with caplog.at_level(logging.WARNING, logger="mgsk.mlflow.autolog"):
        LinearRegressor().fit(*data)
    assert autolog_warnings(caplog) == []
