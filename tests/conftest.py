"""Shared fixtures: a real sqlite MLflow store and real MLflow servers on 127.0.0.1.

MLflow is imported inside the fixtures, so the core tests run without it.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

os.environ.setdefault("MLFLOW_AUTOLOGGING_TESTING", "true")
# MLflow's telemetry would try to reach the internet.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")


_MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")


def _mlflow_globals():
    """MLflow's process-wide tracking state, or None while MLflow is not imported."""
    if "mlflow.tracking.fluent" not in sys.modules:
        return None
    from mlflow.tracking import fluent
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    return fluent, tracking_utils, registry_utils


@pytest.fixture(autouse=True)
def isolate_mlflow_state():
    """Each test starts from the MLflow state the previous one found.

    ``set_tracking_uri`` and ``set_experiment`` change module globals and
    export environment variables; without this a later test (or subprocess)
    inherits another test's store and experiment id.
    """
    env = {name: os.environ.get(name) for name in _MLFLOW_ENV}
    before = _mlflow_globals()
    saved = (before[0]._active_experiment_id, before[1]._tracking_uri, before[2]._registry_uri) if before else None
    yield
    after = _mlflow_globals()
    if after is not None:
        fluent, tracking_utils, registry_utils = after
        while fluent.active_run() is not None:
            fluent.end_run()
        fluent._active_experiment_id, tracking_utils._tracking_uri, registry_utils._registry_uri = saved or (None, None, None)
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url, proc, timeout=120.0):
    """Poll ``url`` until it answers 200, or fail with the process output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"server exited with {proc.returncode}:\n{out[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def stop_process(proc):
    """Stop a server we started, by its PID (its whole process group)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, 15)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=10)


def start_process(args, cwd, env=None):
    """Start a server in its own process group, output to a pipe."""
    return subprocess.Popen(
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest.fixture(scope="session")
def migrated_sqlite_store(tmp_path_factory):
    """An empty sqlite MLflow store whose tables MLflow has created and migrated once."""
    mlflow = pytest.importorskip("mlflow")
    path = tmp_path_factory.mktemp("migrated-store") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_tracking(tmp_path, migrated_sqlite_store):
    """A fresh sqlite tracking store with its artifacts in ``tmp_path``.

    The store is a copy of ``migrated_sqlite_store`` (creating the tables
    costs MLflow seconds per store). Yields the tracking URI; the active
    experiment has its artifacts under ``tmp_path/artifacts``.
    ``isolate_mlflow_state`` restores the previous MLflow state afterwards.
    """
    import mlflow

    shutil.copyfile(migrated_sqlite_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    exp_id = mlflow.create_experiment("mgsk-tests", artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=exp_id)
    yield uri


@pytest.fixture
def mlflow_server(tmp_path):
    """Start real ``mlflow server`` processes (sqlite backend, artifact proxy).

    Returns a function ``start() -> (uri, proc)``; every server it started is
    stopped by its PID at teardown.
    """
    pytest.importorskip("mlflow")
    procs = []

    def start():
        port = free_port()
        root = tmp_path / f"server-{port}"
        root.mkdir()
        proc = start_process(
            [
                sys.executable, "-m", "mlflow", "server",
                "--host", "127.0.0.1", "--port", str(port),
                "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination", str(root / "artifacts"),
                "--serve-artifacts", "--workers", "1",
            ],
            cwd=root,
        )
        procs.append(proc)
        uri = f"http://127.0.0.1:{port}"
        wait_for_http(f"{uri}/health", proc)
        return uri, proc

    yield start
    for proc in procs:
        stop_process(proc)


@pytest.fixture
def autolog_reset():
    """Turn mgsk's and mlflow.sklearn's autologging off after the test."""
    yield
    import mlflow.sklearn

    import mgsk

    mgsk.autolog(disable=True)
    mlflow.sklearn.autolog(disable=True)
