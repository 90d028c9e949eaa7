"""The spool: what autolog could not send to a tracking store, kept on local disk until replayed.

Layout, one folder per tracking URI (``<root>/<sha256 of the URI>[:16]/``)::

    tracking_uri     the URI, for people inspecting the spool
    pending/<entry>/ entries still to replay, oldest first by name
    replayed/<entry>/ entries replayed (record.json and state.json only)
    tmp/<entry>/     entries being written
    open/<run_id>    runs autolog created and has not ended yet
    replay.lock      held by the one process replaying this folder

An entry is a folder written under ``tmp/``, every file fsynced, then moved
into ``pending/`` with one ``os.replace``: a reader sees a whole entry or
none, also after a crash mid-write, and entries are never changed afterwards
(only the replayer's own ``state.json`` is replaced, atomically, beside
them). ``record.json`` holds the run, parameters, tags, metrics with their
steps and timestamps and the dataset inputs; ``model/`` the MLflow model
directory; ``artifacts/`` the plots.

An open-run marker is locked (``fcntl.flock``) by the process that created
the run for as long as it is open, so a marker whose lock can be taken
belongs to a process that died without ending its run.
"""

import fcntl
import hashlib
import json
import os
import secrets
import shutil
import time
from pathlib import Path

#: The environment variable that moves the spool.
SPOOL_DIR_ENV = "MGSK_SPOOL_DIR"
RECORD_FILE = "record.json"
STATE_FILE = "state.json"
MODEL_FOLDER = "model"
ARTIFACTS_FOLDER = "artifacts"
#: Payload removed from an entry once replayed (its record stays as the journal).
_PAYLOAD = (MODEL_FOLDER, ARTIFACTS_FOLDER)


def default_spool_root():
    """``$XDG_CACHE_HOME/mgsk/spool``, or ``~/.cache/mgsk/spool`` when XDG_CACHE_HOME is unset."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "mgsk" / "spool"


def spool_root(configured=None):
    """The spool root: ``configured``, else ``$MGSK_SPOOL_DIR``, else :func:`default_spool_root`."""
    if configured is not None:
        return Path(configured).expanduser()
    env = os.environ.get(SPOOL_DIR_ENV)
    return Path(env).expanduser() if env else default_spool_root()


def _fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder):
    """fsync every file and folder below ``folder`` (folders too: their entries must persist)."""
    for parent, _, files in os.walk(folder):
        for name in files:
            _fsync_file(os.path.join(parent, name))
        _fsync_file(parent)


def write_json(path, data):
    """Write ``data`` as JSON to ``path`` atomically (a temporary name, fsync, ``os.replace``)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _entries(folder):
    try:
        names = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())
    except FileNotFoundError:
        return []
    return [Entry(folder / name) for name in names]


class Entry:
    """One spooled entry: a folder holding ``record.json`` and its payload.

    Parameters
    ----------
    path : pathlib.Path
        The entry's folder.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.name = self.path.name

    @property
    def record(self):
        """The entry's record (read each time: entries are small)."""
        return read_json(self.path / RECORD_FILE)

    def state(self):
        """What replaying this entry has done so far (ids of what it created)."""
        try:
            return read_json(self.path / STATE_FILE)
        except FileNotFoundError:
            return {}

    def save_state(self, state):
        write_json(self.path / STATE_FILE, state)

    @property
    def model_path(self):
        return self.path / MODEL_FOLDER

    @property
    def artifacts_path(self):
        return self.path / ARTIFACTS_FOLDER


class Spool:
    """The spool folder of one tracking URI.

    Parameters
    ----------
    tracking_uri : str
        The tracking URI whose unsent work this folder holds.
    root : path-like, optional
        The spool root (see :func:`spool_root`).
    """

    def __init__(self, tracking_uri, root=None):
        self.tracking_uri = tracking_uri
        self.root = spool_root(root)
        digest = hashlib.sha256(tracking_uri.encode()).hexdigest()[:16]
        self.folder = self.root / digest
        self.pending = self.folder / "pending"
        self.replayed = self.folder / "replayed"
        self.tmp = self.folder / "tmp"
        self.open_runs = self.folder / "open"

    def ensure(self):
        """Create the folders (idempotent, safe against concurrent processes)."""
        if not self.open_runs.is_dir():
            for folder in (self.pending, self.replayed, self.tmp, self.open_runs):
                folder.mkdir(parents=True, exist_ok=True)
            uri_file = self.folder / "tracking_uri"
            if not uri_file.exists():
                uri_file.write_text(self.tracking_uri + "\n", encoding="utf-8")
        return self

    # ----------------------------------------------------------- entries

    def write_entry(self, record, write_payload=None):
        """Write one entry atomically; return its path in ``pending/``.

        ``write_payload(folder)``, when given, writes the model and
        artifacts into the entry's folder before it is published.
        """
        self.ensure()
        name = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"
        folder = self.tmp / name
        folder.mkdir()
        try:
            if write_payload is not None:
                write_payload(folder)
            with open(folder / RECORD_FILE, "w", encoding="utf-8") as f:
                json.dump({**record, "entry": name}, f, indent=1, sort_keys=True)
            _fsync_tree(folder)
            os.replace(folder, self.pending / name)
            _fsync_file(self.pending)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return self.pending / name

    def pending_entries(self):
        """The entries still to replay, oldest first."""
        return _entries(self.pending)

    def replayed_entries(self):
        """The entries replayed, oldest first (their records only)."""
        return _entries(self.replayed)

    def mark_replayed(self, entry):
        """Move ``entry`` to ``replayed/`` (one atomic rename), then drop its payload."""
        target = self.replayed / entry.name
        os.replace(entry.path, target)
        _fsync_file(self.replayed)
        for name in _PAYLOAD:
            shutil.rmtree(target / name, ignore_errors=True)
        return Entry(target)

    def has_work(self, own_runs=()):
        """Whether anything waits: a pending entry, or an open-run marker of another run."""
        try:
            if any(True for _ in os.scandir(self.pending)):
                return True
            return any(entry.name not in own_runs for entry in os.scandir(self.open_runs))
        except FileNotFoundError:
            return False

    # --------------------------------------------------------- open runs

    def open_run(self, run_id, info):
        """Mark ``run_id`` open, locked by this process; return the marker's file object."""
        self.ensure()
        tmp = self.open_runs / f".{run_id}.{os.getpid()}"
        f = open(tmp, "w", encoding="utf-8")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            json.dump({**info, "run_id": run_id, "pid": os.getpid()}, f)
            f.flush()
            os.replace(tmp, self.open_runs / run_id)
        except BaseException:
            f.close()
            raise
        return f

    def close_run(self, run_id, marker):
        """Remove the open-run marker of a run that was ended or spooled."""
        try:
            os.unlink(self.open_runs / run_id)
        except FileNotFoundError:
            pass
        marker.close()

    def abandoned_runs(self):
        """Open-run markers whose process died: ``(run_id, info, release)`` with the lock taken.

        ``release(done)`` removes the marker when ``done`` and unlocks it.
        """
        try:
            names = [entry.name for entry in os.scandir(self.open_runs) if not entry.name.startswith(".")]
        except FileNotFoundError:
            return
        for name in names:
            try:
                f = open(self.open_runs / name, encoding="utf-8")
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # its process is alive
                f.close()
                continue
            try:
                info = json.load(f)
            except ValueError:
                info = {}

            def release(done, name=name, f=f):
                if done:
                    try:
                        os.unlink(self.open_runs / name)
                    except FileNotFoundError:
                        pass
                f.close()

            yield name, info, release

    # -------------------------------------------------------------- lock

    def lock(self, wait):
        """Take the replay lock; return its file object, or None when another process holds it.

        ``wait`` is how many seconds to wait for it (0: do not wait).
        """
        self.ensure()
        f = open(self.folder / "replay.lock", "a+")
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return f
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    f.close()
                    return None
                time.sleep(0.1)
