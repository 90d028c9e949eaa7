"""Shared fixtures: a real sqlite MLflow store and real MLflow servers on 127.0.0.1.

MLflow is imported inside the fixtures, so the core tests run without it.
"""

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

os.environ.setdefault("MLFLOW_AUTOLOGGING_TESTING", "true")
# MLflow's telemetry would try to reach the internet.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
# autolog's spool (open-run markers, unsent fits) goes to a temporary folder, not ~/.cache:
# set at import, so the doctests under mgsk/ and the subprocesses tests start use it too.
if "MGSK_SPOOL_DIR" not in os.environ:
    os.environ["MGSK_SPOOL_DIR"] = tempfile.mkdtemp(prefix="mgsk-test-spool-")
    atexit.register(shutil.rmtree, os.environ["MGSK_SPOOL_DIR"], ignore_errors=True)


#: A test server needs no job runner (MLflow's background jobs, unused by tracking): without it,
#: the server starts in half the time, in 2 processes instead of about 15, and stops at once.
NO_SERVER_JOBS = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


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
            time.sleep(0.1)
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
            env=NO_SERVER_JOBS,
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


class MlflowServer:
    """A real ``mlflow server`` on 127.0.0.1 (artifact proxy on) that a test can kill and restart.

    It keeps its port and backend across restarts, so the clients' tracking
    URI stays the same. Output goes to ``root/server.log`` (a pipe nobody
    reads would fill up and stall the server). ``template``, a migrated
    sqlite store, is copied as the backend when it is ``sqlite`` (the
    server then skips creating the tables); ``job_execution`` keeps MLflow's
    job runner, as a production server has it.
    """

    def __init__(self, root, backend_uri="sqlite", template=None, job_execution=False):
        if backend_uri == "sqlite":
            backend_uri = f"sqlite:///{root / 'mlflow.db'}"
            if template is not None:
                shutil.copyfile(template, root / "mlflow.db")
        self.root, self.backend_uri, self.job_execution = root, backend_uri, job_execution
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc = None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def ensure_running(self):
        """Start the server again if a test killed it."""
        return self if self.running else self.start()

    def start(self, timeout=180.0):
        args = [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
            "--backend-store-uri", self.backend_uri, "--artifacts-destination", str(self.root / "artifacts"),
            "--serve-artifacts", "--workers", "1",
        ]  # fmt: skip
        env = {**os.environ, **({} if self.job_execution else NO_SERVER_JOBS)}
        log = open(self.root / "server.log", "ab")
        self.proc = subprocess.Popen(
            args, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited:\n{(self.root / 'server.log').read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"{self.uri}/health did not answer within {timeout} s")

    def kill(self):
        """Kill the server's whole process group at once (as a crash or an OOM kill would)."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 9)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)

    def stop(self):
        """Stop the server's process group: SIGTERM, then SIGKILL after 3 s (a job runner lingers)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(timeout=3)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture(scope="module")
def _module_sqlite_server(tmp_path_factory, migrated_sqlite_store):
    server = MlflowServer(tmp_path_factory.mktemp("sqlite-server"), template=migrated_sqlite_store)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sqlite_server(_module_sqlite_server):
    """The module's ``mlflow server`` (sqlite backend, artifact proxy), one per module, up.

    Started once per module; a test that kills it leaves the restart to the
    next test that asks for it.
    """
    return _module_sqlite_server.ensure_running()


class PostgreSQL:
    """A throwaway PostgreSQL cluster on 127.0.0.1, run as the ``postgres`` user (see team-server.md)."""

    def __init__(self):
        import glob

        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: [int(x) for x in p.split("/")[-2].split(".")])
        if not bins or os.geteuid() != 0 or shutil.which("runuser") is None:
            pytest.skip("PostgreSQL tests need Debian's postgresql package and root (to run it as 'postgres')")
        self.bin = bins[-1]
        self.parent = tempfile.mkdtemp(prefix="mgsk-pg-")
        os.chmod(self.parent, 0o711)  # the postgres user must traverse it
        self.root = os.path.join(self.parent, "pg")
        self.port = free_port()
        self.uri = f"postgresql+psycopg2://mlflow:mlflowpw@127.0.0.1:{self.port}/mlflow"

    def _run(self, *args):
        subprocess.run(["runuser", "-u", "postgres", "--", *args], cwd=self.root, check=True, capture_output=True)

    def start(self):
        data, sock = os.path.join(self.root, "data"), os.path.join(self.root, "sock")
        subprocess.run(["install", "-d", "-o", "postgres", "-g", "postgres", "-m", "700", self.root, data, sock], check=True)
        self._run(
            f"{self.bin}/initdb", "-D", data, "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8",
            "--auth-local=peer", "--auth-host=scram-sha-256",
        )  # fmt: skip
        self._run(
            f"{self.bin}/pg_ctl", "-D", data, "-l", os.path.join(self.root, "postgres.log"), "-w", "-t", "60",
            "-o", f"-c listen_addresses=127.0.0.1 -p {self.port} -k {sock}", "start",
        )  # fmt: skip
        self._run(
            f"{self.bin}/psql", "-h", sock, "-p", str(self.port), "-d", "postgres", "-v", "ON_ERROR_STOP=1",
            "-c", "CREATE ROLE mlflow LOGIN PASSWORD 'mlflowpw'", "-c", "CREATE DATABASE mlflow OWNER mlflow",
        )  # fmt: skip
        return self

    def stop(self):
        data = os.path.join(self.root, "data")
        if os.path.isdir(data):
            subprocess.run(
                ["runuser", "-u", "postgres", "--", f"{self.bin}/pg_ctl", "-D", data, "-m", "fast", "-w", "-t", "60", "stop"],
                cwd=self.root, capture_output=True,
            )  # fmt: skip
        shutil.rmtree(self.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def postgresql():
    """A PostgreSQL database for an MLflow backend; yields its SQLAlchemy URI. One per module."""
    pytest.importorskip("psycopg2")
    server = PostgreSQL()
    try:
        yield server.start().uri
    finally:
        server.stop()


#: cv_results_ columns that time the search: they differ between any two runs of it.
SEARCH_TIMINGS = ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time")
#: Tags that name one run or one replay rather than what was tracked.
_RUN_IDENTITY_TAGS = ("mgsk.autolog.fit_id", "mgsk.spool_entry")
#: MLflow's tags that say who tracked what from where (not the run's name, which MLflow draws at random).
_CONTEXT_TAGS = ("mlflow.autologging", "mlflow.user", "mlflow.source.name", "mlflow.source.type", "mlflow.source.git.commit")


def tracked_search(client, experiment_id):
    """What MLflow holds about the one autologged search in ``experiment_id``, run ids left out.

    Returns ``(parent, children, model)``: the parent's status, params,
    metrics, tags and artifacts; each child's status, params, metrics (but
    the timings) and tags, sorted; the metric keys linked to the search's
    LoggedModel and its status. Two searches of the same data compare equal
    whether they were logged live or spooled and replayed.
    """
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    runs = client.search_runs([experiment_id], max_results=1000)
    (parent,) = [run for run in runs if MLFLOW_PARENT_RUN_ID not in run.data.tags]
    children = [run for run in runs if run.data.tags.get(MLFLOW_PARENT_RUN_ID) == parent.info.run_id]
    assert len(children) == len(runs) - 1, "a run that is neither the search's parent nor its child"

    def view(run, metrics):
        tags = {
            key: value for key, value in run.data.tags.items()
            if key not in _RUN_IDENTITY_TAGS and (not key.startswith("mlflow.") or key in _CONTEXT_TAGS)
        }  # fmt: skip
        return run.info.status, run.data.params, metrics, tags

    artifacts = sorted(a.path for a in client.list_artifacts(parent.info.run_id))
    model = None
    if parent.outputs and parent.outputs.model_outputs:
        (output,) = parent.outputs.model_outputs
        logged = client.get_logged_model(output.model_id)
        model = (str(logged.status), sorted({(m.key, m.run_id == parent.info.run_id) for m in logged.metrics}))
    child_views = sorted(
        (view(run, {k: v for k, v in run.data.metrics.items() if k not in SEARCH_TIMINGS}) for run in children),
        key=repr,
    )
    return (*view(parent, parent.data.metrics), artifacts), child_views, model
