"""Replay the spool to its tracking store, exactly once; end the runs of processes that died.

One process replays a spool folder at a time (``replay.lock``). Each entry
is replayed step by step, and what the store returned is recorded in the
entry's ``state.json`` before the next step, so a replay that stops halfway
(the store fails again, the process dies) resumes where it stopped:

- the run: the entry's own (created before the outage), or the one whose
  creation the store committed but could not confirm, or one created now:
  all are found by the fit's ``mgsk.autolog.fit_id`` tag, made before any
  request, so a lost answer or a crash never duplicates a run;
- the LoggedModel: likewise (PENDING since the outage, or created now), with
  the spooled model directory uploaded, then set READY and linked to the run;
- parameters, tags, metrics, dataset inputs and artifacts: sending them
  twice changes nothing (MLflow keeps one copy of an identical metric, and
  parameters and tags keep their value);
- the child runs of a search: those the store holds (found by the parent's
  ``mlflow.parentRunId`` and their own fit id) are completed, the others
  created under the parent;
- the run's end status and time, last.

A replayed entry moves to ``replayed/`` (its record stays as the journal).
An entry whose experiment or run no longer exists stays pending and is
reported. A run whose process died without ending it (its open-run marker is
no longer locked) is ended: FINISHED if its model was logged, else KILLED,
with the tag ``mgsk.autolog.end_reason``; so are its child runs left RUNNING.
"""

import atexit
import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from mlflow import MlflowClient
from mlflow.entities import DatasetInput, InputTag, LoggedModelOutput, LoggedModelStatus, Metric, RunStatus
from mlflow.entities import Dataset as DatasetEntity
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from .faults import quick_requests, store_answers
from .log_fit import FIT_ID_TAG, MODEL_PLACEHOLDER, _new_params, log_batch
from .search import existing_child_runs, log_child_runs
from .spool import Spool

_logger = logging.getLogger("mgsk.mlflow.autolog")

#: Tag of a run or LoggedModel created by a replay: the spool entry it comes from (for people).
SPOOL_ENTRY_TAG = "mgsk.spool_entry"
#: Tag of a run the replay ended because its process died.
END_REASON_TAG = "mgsk.autolog.end_reason"
#: Seconds between two background replays started by one process for one store.
BACKGROUND_INTERVAL = 10.0
#: Entries replayed at once against a tracking server (each sends a few dozen small requests).
REPLAY_THREADS = 4
#: A half-written entry (its writer died) is removed after this many seconds.
STALE_TMP_SECONDS = 3600


@dataclass
class SyncSummary:
    """What :func:`mgsk.mlflow.sync` replayed.

    Attributes
    ----------
    tracking_uri : str
        The store replayed to.
    spool_folder : str
        The spool folder of that store.
    replayed : list of str
        The entries replayed (now in ``replayed/``).
    runs_created, runs_completed : int
        Runs created by the replay; runs that existed and were completed.
    child_runs_created : int
        Child runs of parameter searches created by the replay.
    models_logged : int
        LoggedModels uploaded and set READY.
    orphans_ended : dict of str to str
        Runs whose process died, ended now: run id to the status set.
    kept : dict of str to str
        Entries left pending: entry name to the reason.
    pending : int
        Entries still pending after the replay.
    busy : bool
        Another process was replaying and did not finish in time.
    store_error : str or None
        Why the replay stopped early, when the store did not answer.
    """

    tracking_uri: str
    spool_folder: str
    replayed: list = field(default_factory=list)
    runs_created: int = 0
    runs_completed: int = 0
    child_runs_created: int = 0
    models_logged: int = 0
    orphans_ended: dict = field(default_factory=dict)
    kept: dict = field(default_factory=dict)
    pending: int = 0
    busy: bool = False
    store_error: str = None

    def __str__(self):
        lines = [
            f"spool {self.spool_folder} -> {self.tracking_uri}",
            f"replayed {len(self.replayed)} entries: {self.runs_created} runs created, "
            f"{self.runs_completed} runs completed, {self.child_runs_created} child runs created, "
            f"{self.models_logged} models logged",
            f"ended {len(self.orphans_ended)} runs whose process died",
            f"{self.pending} entries pending",
        ]
        lines += [f"  kept {name}: {reason}" for name, reason in self.kept.items()]
        if self.busy:
            lines.append("another process is replaying this spool; nothing was done")
        if self.store_error:
            lines.append(f"stopped: the store does not answer ({self.store_error})")
        return "\n".join(lines)


class _StoreDown(Exception):
    pass


class _Kept(Exception):
    """This entry cannot be replayed now (its experiment or run is gone); keep it."""


def _not_found(exc):
    return isinstance(exc, MlflowException) and exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST)


def _experiment_id(client, record):
    experiment_id = record.get("experiment_id")
    if experiment_id is None:
        name = record.get("experiment_name")
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise _Kept(f"the experiment {name!r} does not exist on the server")
    else:
        try:
            experiment = client.get_experiment(experiment_id)
        except MlflowException as exc:
            if _not_found(exc):
                raise _Kept(f"the experiment {experiment_id} does not exist on the server") from exc
            raise
    if experiment.lifecycle_stage != "active":
        raise _Kept(f"the experiment {experiment.experiment_id} is deleted on the server")
    return experiment.experiment_id


def _run_id(client, entry, record, state, experiment_id, done):
    """The entry's run on the server, and whether this replay created it (then it holds nothing yet)."""
    spec = record["run"]
    run_id = spec.get("run_id") or state.get("run_id")
    if run_id is None:
        found = client.search_runs(
            [experiment_id], filter_string=f"tags.`{FIT_ID_TAG}` = '{record['fit_id']}'", max_results=1
        )
        if found:
            run_id = found[0].info.run_id
        else:
            tags = {**spec.get("tags", {}), SPOOL_ENTRY_TAG: entry.name}
            run_id = client.create_run(experiment_id, start_time=spec.get("start_time"), tags=tags).info.run_id
            done["runs_created"] += 1
        entry.save_state({**state, "run_id": run_id})
        return run_id, not found
    try:
        client.get_run(run_id)
    except MlflowException as exc:
        if _not_found(exc):
            raise _Kept(f"the run {run_id} does not exist on the server") from exc
        raise
    if spec.get("run_id"):
        done["runs_completed"] += 1
    return run_id, False


def _model_id(client, entry, fit_id, spec, state, experiment_id, run_id, fresh=False):
    """The entry's LoggedModel: its own, the one found by the fit id, or a new one (recorded)."""
    for model_id in (spec.get("model_id"), state.get("model_id")):
        if model_id is None:
            continue
        try:
            return client.get_logged_model(model_id)
        except MlflowException as exc:
            if not _not_found(exc):
                raise
    found = [] if fresh else client.search_logged_models(
        [experiment_id], filter_string=f"tags.`{FIT_ID_TAG}` = '{fit_id}'", max_results=1
    )  # a run this replay created has no model yet
    if found:
        model = found[0]
    else:
        model = client.create_logged_model(
            experiment_id, name=spec["name"], source_run_id=run_id, params=spec.get("params"),
            tags={FIT_ID_TAG: fit_id, SPOOL_ENTRY_TAG: entry.name},
        )  # fmt: skip
    entry.save_state({**entry.state(), "model_id": model.model_id})
    return model


def _upload_model(client, entry, model, run_id):
    """Upload the spooled model directory into the LoggedModel, as ``Model.log`` would have."""
    from mlflow.models import Model
    from mlflow.models.model import MLMODEL_FILE_NAME

    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "model")
        shutil.copytree(entry.model_path, local)
        mlmodel = Model.load(local)
        mlmodel.artifact_path = model.artifact_location
        mlmodel.model_uuid = mlmodel.model_id = model.model_id
        mlmodel.run_id = run_id
        mlmodel.save(os.path.join(local, MLMODEL_FILE_NAME))
        client.log_model_artifacts(model.model_id, local)
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)


def _register(client, name, model_id, run_id):
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
    source = f"models:/{model_id}"
    if not any(version.source == source for version in client.search_model_versions(f"name='{name}'")):
        client.create_model_version(name, source, run_id=run_id, model_id=model_id, await_creation_for=0)


def _replay_model(client, entry, record, experiment_id, run_id, fresh, done):
    spec = record.get("model")
    if spec is None or not entry.model_path.is_dir():
        return None
    model = _model_id(client, entry, record["fit_id"], spec, entry.state(), experiment_id, run_id, fresh)
    if model.status != LoggedModelStatus.READY:
        _upload_model(client, entry, model, run_id)
        done["models_logged"] += 1
    outputs = None if fresh else client.get_run(run_id).outputs
    if not any(output.model_id == model.model_id for output in (outputs.model_outputs if outputs else [])):
        client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
    name = spec.get("registered_model_name")
    if name and not entry.state().get("registered"):
        _register(MlflowClient(client.tracking_uri, record.get("registry_uri")), name, model.model_id, run_id)
        entry.save_state({**entry.state(), "registered": True})
    return model.model_id


def _replay_entry(client, spool, entry, experiments):
    """Replay one entry; return what it did (counts for the summary)."""
    done = {"runs_created": 0, "runs_completed": 0, "child_runs_created": 0, "models_logged": 0}
    record = entry.record
    key = (record.get("experiment_id"), record.get("experiment_name"))
    if key not in experiments:
        experiments[key] = _experiment_id(client, record)
    experiment_id = experiments[key]
    run_id, fresh = _run_id(client, entry, record, entry.state(), experiment_id, done)
    model_id = _replay_model(client, entry, record, experiment_id, run_id, fresh, done)
    metrics = [
        Metric(**{**metric, "model_id": model_id if metric["model_id"] == MODEL_PLACEHOLDER else metric["model_id"]})
        for metric in record["metrics"]
    ]
    params = record["params"] if fresh else _new_params(client, run_id, record["params"])
    log_batch(client, run_id, metrics, params, record["tags"])
    linked = set() if fresh else {(d.dataset.name, d.dataset.digest) for d in client.get_run(run_id).inputs.dataset_inputs}
    datasets = [
        DatasetInput(
            DatasetEntity(**{key: value for key, value in spec.items() if key != "context"}),
            tags=[InputTag(MLFLOW_DATASET_CONTEXT, spec["context"])],
        )
        for spec in record["datasets"]
        if (spec["name"], spec["digest"]) not in linked  # MLflow refuses to link one twice
    ]
    if datasets:
        client.log_inputs(run_id, datasets=datasets)
    if entry.artifacts_path.is_dir():
        client.log_artifacts(run_id, str(entry.artifacts_path))
    search = record.get("search")
    if search:
        existing = {} if fresh else existing_child_runs(client, experiment_id, run_id)
        link = model_id if search["model_id"] == MODEL_PLACEHOLDER else search["model_id"]
        done["child_runs_created"] += log_child_runs(client, experiment_id, run_id, search["children"], link, existing)
    end_status = record["run"].get("end_status")
    if end_status:
        client.set_terminated(run_id, end_status, end_time=record["run"].get("end_time"))
    spool.mark_replayed(entry)
    return done


def _end_abandoned_runs(client, spool, summary):
    """End the runs whose process died before ending them (their marker is no longer locked)."""
    spooled_runs = {entry.record["run"].get("run_id") for entry in spool.pending_entries()}
    for run_id, info, release in spool.abandoned_runs():
        done = False
        try:
            if run_id in spooled_runs:  # a pending entry ends it
                done = True
                continue
            try:
                run = client.get_run(run_id)
            except MlflowException as exc:
                done = _not_found(exc)
                if not done:
                    raise
                continue
            if run.info.status != "RUNNING":
                done = True
                continue
            models = client.search_logged_models(
                [run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
            )
            ready = any(model.status == LoggedModelStatus.READY for model in models)
            for model in models:
                if model.status == LoggedModelStatus.PENDING:
                    client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
            status = RunStatus.to_string(RunStatus.FINISHED if ready else RunStatus.KILLED)
            reason = "the process that fitted died before ending the run; its model " + (
                "had been logged" if ready else "had not been logged"
            )
            client.set_tag(run_id, END_REASON_TAG, reason)
            client.set_terminated(run_id, status)
            for child in existing_child_runs(client, run.info.experiment_id, run_id).values():
                if child.info.status == "RUNNING":  # its process died while logging the search's child runs
                    client.set_tag(child.info.run_id, END_REASON_TAG, "the process that fitted died before ending it")
                    client.set_terminated(child.info.run_id, RunStatus.to_string(RunStatus.KILLED))
            summary.orphans_ended[run_id] = status
            done = True
        finally:
            release(done)


def _remove_stale_tmp(spool):
    try:
        entries = list(os.scandir(spool.tmp))
    except FileNotFoundError:
        return
    for entry in entries:
        try:
            pid = int(entry.name.split("-")[1])
            if time.time() - entry.stat().st_mtime < STALE_TMP_SECONDS or _alive(pid):
                continue
        except (IndexError, ValueError, OSError):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _by_run(entries):
    """The entries in groups replayed one after the other: those of one existing run together."""
    groups = {}
    for entry in entries:
        run_id = entry.record["run"].get("run_id")
        groups.setdefault(run_id or entry.name, []).append(entry)
    return list(groups.values())


def _replay(spool, summary, stop):
    client = MlflowClient(spool.tracking_uri)
    lock, halt, experiments, down = threading.Lock(), threading.Event(), {}, []

    def replay_group(entries):
        for entry in entries:
            if halt.is_set() or (stop is not None and stop.is_set()):
                return
            try:
                done = _replay_entry(client, spool, entry, experiments)
            except _Kept as exc:
                with lock:
                    summary.kept[entry.name] = str(exc)
                continue
            except Exception as exc:
                reason = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
                if not store_answers(spool.tracking_uri):
                    down.append(reason)
                    halt.set()
                    return
                with lock:
                    summary.kept[entry.name] = reason
                continue
            with lock:
                summary.replayed.append(entry.name)
                for name, count in done.items():
                    setattr(summary, name, getattr(summary, name) + count)

    # A tracking server serves several requests at once; a local database file would lock.
    threads = REPLAY_THREADS if spool.tracking_uri.startswith(("http://", "https://")) else 1
    with ThreadPoolExecutor(threads, thread_name_prefix="mgsk-replay") as pool:
        list(pool.map(replay_group, _by_run(spool.pending_entries())))
    summary.replayed.sort()
    if down:
        raise _StoreDown(down[0])
    try:
        _end_abandoned_runs(client, spool, summary)
    except Exception as exc:
        if not store_answers(spool.tracking_uri):
            raise _StoreDown(f"{type(exc).__name__}: {str(exc).strip()[:300]}") from exc
        raise
    _remove_stale_tmp(spool)


def sync(tracking_uri=None, *, spool_dir=None, timeout=60.0):
    """Send what autolog spooled while the tracking store was down, exactly once.

    Replays every pending entry of the spool of ``tracking_uri`` (see
    :func:`mgsk.autolog`): runs created before the outage are completed
    (missing metrics added, model logged and linked, status set), runs that
    could not be created are created with their original start time, and
    PENDING LoggedModels are finalized. It also ends the runs autolog created
    in processes that died before ending them: FINISHED if their model was
    logged, else KILLED, with the tag ``mgsk.autolog.end_reason``. Running
    it again, or in two processes at once, changes nothing more: one process
    replays at a time, and each entry records what it created.

    The same runs from a shell: ``python -m mgsk.mlflow sync``.

    Parameters
    ----------
    tracking_uri : str, optional
        The store to replay to; the current tracking URI by default.
    spool_dir : path-like, optional
        The spool root; by default ``$MGSK_SPOOL_DIR``, else
        ``$XDG_CACHE_HOME/mgsk/spool`` (``~/.cache/mgsk/spool``).
    timeout : float, default=60.0
        Seconds to wait while another process replays the same spool.

    Returns
    -------
    SyncSummary
        What was replayed, what was kept and why (``print`` it for a report).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import mgsk.mlflow
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> summary = mgsk.mlflow.sync(f"sqlite:///{tmp / 'mlflow.db'}", spool_dir=tmp / "spool")
    >>> summary.replayed, summary.pending
    ([], 0)
    """
    import mlflow

    return _sync(tracking_uri or mlflow.get_tracking_uri(), spool_dir, timeout, stop=None)


def _sync(uri, spool_dir, timeout, stop):
    """:func:`sync`; ``stop``, an Event, ends the replay after the entry in progress."""
    spool = Spool(uri, spool_dir)
    summary = SyncSummary(uri, str(spool.folder))
    lock = spool.lock(wait=timeout)
    if lock is None:
        summary.busy = True
        summary.pending = len(spool.pending_entries())
        return summary
    try:
        with quick_requests(silent=True):
            _replay(spool, summary, stop)
    except _StoreDown as exc:
        summary.store_error = str(exc)
    finally:
        lock.close()
    summary.pending = len(spool.pending_entries())
    return summary


# ------------------------------------------------------------ background

_background_lock = threading.Lock()
_background = {}
_last_started = {}
_stop = threading.Event()


def replay_in_background(tracking_uri, spool_dir=None):
    """Start replaying the spool of ``tracking_uri`` in a thread, if it holds anything.

    At most one thread per spool folder and process, and at most one start
    every ``BACKGROUND_INTERVAL`` seconds; the caller only pays for a look
    at the spool folder.
    """
    spool = Spool(tracking_uri, spool_dir)
    key = str(spool.folder)
    with _background_lock:
        thread = _background.get(key)
        if thread is not None and thread.is_alive():
            return None
        if time.monotonic() - _last_started.get(key, -BACKGROUND_INTERVAL) < BACKGROUND_INTERVAL:
            return None
        if not spool.has_work():
            return None
        _last_started[key] = time.monotonic()
        thread = threading.Thread(
            target=_background_sync, args=(tracking_uri, spool_dir), name="mgsk-spool-replay", daemon=True
        )
        _background[key] = thread
        thread.start()
    return thread


def _background_sync(tracking_uri, spool_dir):
    try:
        summary = _sync(tracking_uri, spool_dir, timeout=0, stop=_stop)
    except Exception as exc:  # a background thread must not die noisily
        _logger.warning("mgsk.autolog could not replay its spool to %s: %s", tracking_uri, exc)
        return
    if summary.replayed or summary.orphans_ended:
        _logger.info("mgsk.autolog replayed its spool to %s:\n%s", tracking_uri, summary)
    if summary.kept:
        _logger.warning("mgsk.autolog kept spooled entries it could not replay:\n%s", summary)


@atexit.register
def _finish_background_replays(timeout=30.0):
    """At exit, let a running replay finish its current entry (the rest waits for the next one)."""
    _stop.set()
    deadline = time.monotonic() + timeout
    for thread in list(_background.values()):
        with contextlib.suppress(RuntimeError):
            thread.join(max(0.0, deadline - time.monotonic()))
