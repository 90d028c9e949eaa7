"""Logging that never breaks training: failures become one warning, fast.

MLflow retries a failed HTTP request up to 7 times with exponential backoff
and waits 120 s for an answer, so one request to a stopped server can take
minutes. While autolog talks to MLflow it lowers those limits (1 retry, 5 s),
and restores the user's values when the last concurrent autolog call is done;
once a step fails and the store does not answer, the remaining steps are
skipped rather than each waiting in turn, and what they would have sent is
spooled (:mod:`.spool`). The store is then known to be down: later fits send
nothing to it and spool at once, and a health probe (at most one a
``PROBE_INTERVAL``, ``PROBE_TIMEOUT`` long) tells when it is back.
"""

import contextlib
import logging
import os
import threading
import time

from mlflow.exceptions import MlflowException
from mlflow.utils.autologging_utils import is_testing

_logger = logging.getLogger("mgsk.mlflow.autolog")

#: What a broken or unreachable store raises (the flavor's MgskModelError is an
#: MlflowException too); anything else is a bug of autolog.
STORE_ERRORS = (MlflowException, OSError)
#: The MLflow HTTP settings autolog lowers, and the values it lowers them to.
QUICK_REQUEST_SETTINGS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": 1, "MLFLOW_HTTP_REQUEST_TIMEOUT": 5}

#: Set while a silent autolog ends a run: MLflow prints "View run ..." for REST stores otherwise.
SILENT_SETTINGS = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
#: Seconds between two health probes of a store known to be down, and the probe's timeout.
PROBE_INTERVAL, PROBE_TIMEOUT = 2.0, 1.0

_settings_lock = threading.Lock()
_settings_users = {}
_saved_settings = {}


def _override(name, value):
    """The value autolog sets: the lower of the user's and its own for numbers."""
    if isinstance(value, int):
        try:
            return str(min(int(os.environ[name]), value))
        except (KeyError, ValueError):
            return str(value)
    return value


@contextlib.contextmanager
def quick_requests(silent=False):
    """Lower MLflow's HTTP retries and timeout (and, when ``silent``, its printing) in the block.

    The environment is process-wide: each variable is set by the first
    concurrent user and restored by the last.
    """
    settings = {**QUICK_REQUEST_SETTINGS, **(SILENT_SETTINGS if silent else {})}
    with _settings_lock:
        for name, value in settings.items():
            if _settings_users.get(name, 0) == 0:
                _saved_settings[name] = os.environ.get(name)
                os.environ[name] = _override(name, value)
            _settings_users[name] = _settings_users.get(name, 0) + 1
    try:
        yield
    finally:
        with _settings_lock:
            for name in settings:
                _settings_users[name] -= 1
                if _settings_users[name] == 0:
                    saved = _saved_settings.pop(name)
                    if saved is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = saved


class _Down:
    def __init__(self, reason):
        self.reason = reason
        self.last_probe = time.monotonic()


#: tracking URI -> _Down, for the stores this process found down.
_down_stores = {}
_down_lock = threading.Lock()


def mark_store_down(uri, exc):
    """Remember that the store at ``uri`` does not answer (``exc`` says why)."""
    with _down_lock:
        _down_stores[uri] = _Down(f"{type(exc).__name__}: {_first_line(exc)}")


def store_known_down(uri):
    """Why the store at ``uri`` is known to be down, or None when it is (again) thought up.

    A store found down is probed again at most every ``PROBE_INTERVAL``
    seconds, each probe taking at most about ``PROBE_TIMEOUT``: so a fit
    during an outage costs no request to the store beyond that probe.
    """
    with _down_lock:
        down = _down_stores.get(uri)
        if down is None:
            return None
        if time.monotonic() - down.last_probe < PROBE_INTERVAL:
            return down.reason
        down.last_probe = time.monotonic()
    if not store_answers(uri):
        return down.reason
    with _down_lock:
        _down_stores.pop(uri, None)
    return None


def store_answers(uri, run_id=None):
    """Whether the tracking store at ``uri`` answers a cheap request now."""
    if uri.startswith(("http://", "https://")) and run_id is None:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=PROBE_TIMEOUT):
                return True
        except urllib.error.HTTPError as exc:
            return exc.code < 500  # it answers (a 404 or 401 is an answer)
        except (OSError, ValueError):
            return False
    from mlflow import MlflowClient

    try:
        with quick_requests():
            client = MlflowClient(uri)
            if run_id is None:
                client.search_experiments(max_results=1)
            else:
                client.get_run(run_id)
    except Exception:
        return False
    return True


class LoggingSteps:
    """Run the logging steps of one fit; remember which failed.

    Parameters
    ----------
    run_id : str, optional
        The run the steps log to (None until it is created).
    """

    def __init__(self, run_id=None, uri=None):
        import mlflow

        self.run_id = run_id
        self.uri = uri or mlflow.get_tracking_uri()
        self.failed = []
        self.error = None
        self.store_down = False
        self.spooled_to = None
        self.spooled_child_runs = 0

    def __call__(self, what, function, *args, even_if_down=False, **kwargs):
        """Return ``function(*args, **kwargs)``, or None when it fails or the store is down.

        ``even_if_down`` runs it anyway (``mlflow.end_run`` must still end the
        run locally, and fails fast under :func:`quick_requests`).
        """
        if self.store_down and not even_if_down:
            self.failed.append(what)
            return None
        try:
            return function(*args, **kwargs)
        except STORE_ERRORS as exc:
            self.fail(what, exc)
        except Exception as exc:
            if is_testing():
                raise
            self.fail(what, exc)
        return None

    def fail(self, what, exc):
        """Record that ``what`` was not logged because of ``exc``."""
        self.failed.append(what)
        if self.error is None:
            self.error = exc
            self.store_down = not store_answers(self.uri, self.run_id)
            if self.store_down:
                mark_store_down(self.uri, exc)

    def known_down(self, reason):
        """Record that nothing was sent: the store is known to be down (``reason`` says why)."""
        self.failed.append("the run")
        self.error = _KnownDown(reason)
        self.store_down = True

    def warn(self, silent=False):
        """Emit the one warning saying what was not logged, or spooled (nothing when all succeeded)."""
        if not self.failed or silent:
            return
        if self.spooled_to is not None:
            if self.run_id is None:
                runs = f"the run and its {n} child runs were" if (n := self.spooled_child_runs) else "the run was"
                what = f"could not reach the MLflow tracking store {self.uri}: {runs} spooled"
            else:
                what = f"could not log {_join(dict.fromkeys(self.failed))} to MLflow run {self.run_id}: spooled"
            what += (
                f" to {self.spooled_to}, to be sent when the store answers again"
                " (or by `python -m mgsk.mlflow sync`)"
            )
        elif self.run_id is None:
            what = "could not create an MLflow run, so nothing of this fit was logged"
        else:
            what = f"could not log {_join(dict.fromkeys(self.failed))} to MLflow run {self.run_id}"
        if isinstance(self.error, _KnownDown):
            cause = f"the store has not answered since an earlier request failed with {self.error}"
        else:
            cause = f"{type(self.error).__name__}: {_first_line(self.error)}"
        _logger.warning("mgsk.autolog %s (%s). The fit itself is unaffected.", what, cause)


class _KnownDown(Exception):
    """The store was found down by an earlier request; this fit sent nothing."""


def _join(items):
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""
