"""Logging that never breaks training: failures become one warning, fast.

MLflow retries a failed HTTP request up to 7 times with exponential backoff
and waits 120 s for an answer, so one request to a stopped server can take
minutes. While autolog talks to MLflow it lowers those limits (1 retry, 5 s),
and restores the user's values when the last concurrent autolog call is done;
once a step fails and the store does not answer, the remaining steps are
skipped rather than each waiting in turn.
"""

import contextlib
import logging
import os
import threading

from mlflow.exceptions import MlflowException
from mlflow.utils.autologging_utils import is_testing

_logger = logging.getLogger("mgsk.mlflow.autolog")

#: What a broken or unreachable store raises (the flavor's MgskModelError is an
#: MlflowException too); anything else is a bug of autolog.
STORE_ERRORS = (MlflowException, OSError)
#: The MLflow HTTP settings autolog lowers, and the values it lowers them to.
QUICK_REQUEST_SETTINGS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": 1, "MLFLOW_HTTP_REQUEST_TIMEOUT": 5}

_settings_lock = threading.Lock()
_settings_users = 0
_saved_settings = {}


def _lower_settings():
    for name, quick in QUICK_REQUEST_SETTINGS.items():
        _saved_settings[name] = os.environ.get(name)
        try:
            current = int(_saved_settings[name])
        except (TypeError, ValueError):
            current = quick
        os.environ[name] = str(min(current, quick))


def _restore_settings():
    for name, value in _saved_settings.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _saved_settings.clear()


@contextlib.contextmanager
def quick_requests():
    """Lower MLflow's HTTP retries and timeout for the duration of the block."""
    global _settings_users
    with _settings_lock:
        if _settings_users == 0:
            _lower_settings()
        _settings_users += 1
    try:
        yield
    finally:
        with _settings_lock:
            _settings_users -= 1
            if _settings_users == 0:
                _restore_settings()


class LoggingSteps:
    """Run the logging steps of one fit; remember which failed.

    Parameters
    ----------
    run_id : str, optional
        The run the steps log to (None until it is created).
    """

    def __init__(self, run_id=None):
        self.run_id = run_id
        self.failed = []
        self.error = None
        self.store_down = False

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
            self.store_down = not self._store_answers()

    def _store_answers(self):
        from mlflow import MlflowClient

        try:
            client = MlflowClient()
            if self.run_id is None:
                client.search_experiments(max_results=1)
            else:
                client.get_run(self.run_id)
        except Exception:
            return False
        return True

    def warn(self, silent=False):
        """Emit the one warning saying what was not logged (nothing when all succeeded)."""
        if not self.failed or silent:
            return
        if self.run_id is None:
            what = "could not create an MLflow run, so nothing of this fit was logged"
        else:
            what = f"could not log {_join(dict.fromkeys(self.failed))} to MLflow run {self.run_id}"
        _logger.warning(
            "mgsk.autolog %s (%s: %s). The fit itself is unaffected.",
            what,
            type(self.error).__name__,
            _first_line(self.error),
        )


def _join(items):
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""
