"""Post-training metrics: ``model.score(X_test, y_test)`` and metric calls on predictions.

As in mlflow.sklearn, a prediction of a model autolog logged is remembered
(by ``id``) with its run and the variable name of its input, and a call such
as ``sklearn.metrics.r2_score(y_test, model.predict(X_test))`` is logged as
``r2_score_X_test``. The names and run lookups are mlflow.sklearn's own
``_AUTOLOGGING_METRICS_MANAGER``, so both integrations name metrics alike.

Its switches are not thread-safe, so mgsk does not use them: the manager's
"post-training logging disabled" flag and mlflow.sklearn's stack of training
sessions are process-wide, so while one thread fits under
mlflow.sklearn.autolog every other thread's metric calls look nested and are
dropped. mgsk decides per thread instead: its own thread-local
:func:`suspended`, and this thread's frames (:mod:`.context`).

Both integrations patch the same ``sklearn.metrics`` functions, and MLflow's
patching keeps one patch per function: the later one silently replaces the
earlier, and disabling either one restores the unpatched function. So mgsk
patches a metric function only while no patch is on it, never reverts a patch
that is not its own, and checks again before each tracked prediction. Where
mlflow.sklearn's patch is on, mgsk puts a thin wrapper around it that sends
calls on mgsk's own predictions to mgsk's thread-safe logging and every
other call to that patch; disabling either integration removes the wrapper.
"""

import contextlib
import functools
import inspect
import threading
import weakref
from dataclasses import dataclass

import sklearn.metrics
from mlflow.utils import gorilla
from mlflow.utils.autologging_utils import safe_patch, safety

from .context import caller_frame, inside_mlflow_sklearn
from .faults import LoggingSteps, quick_requests
from .log_fit import log_dataset, training_dataset
from .record import FLAVOR_NAME

PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")

_busy = threading.local()
_owned_metric_patches = []
#: metric name -> mgsk's wrapper around another integration's patch of it.
_wrappers = {}
#: id of a prediction of a model mgsk tracks -> its run id (as the manager keeps them).
_predictions = {}


@dataclass
class Tracked:
    """The run and LoggedModel of a fitted mgsk step, and what was logged as the model."""

    run_id: str
    model_id: str | None
    owner: weakref.ref
    log_datasets: bool
    silent: bool


#: mgsk estimator -> Tracked. Weak keys: tracking never keeps a model alive.
_tracked = weakref.WeakKeyDictionary()
#: run id -> dataset name -> ids of the objects seen under that name.
_dataset_ids = {}
_logged_eval_datasets = set()


def _manager():
    from mlflow.sklearn import _AUTOLOGGING_METRICS_MANAGER

    return _AUTOLOGGING_METRICS_MANAGER


@contextlib.contextmanager
def suspended():
    """No post-training logging in this thread inside the block (autolog's own calls)."""
    previous = getattr(_busy, "on", False)
    _busy.on = True
    try:
        yield
    finally:
        _busy.on = previous


def _active():
    """Whether to log here: not inside mgsk's own calls or mlflow.sklearn's patches, in this thread."""
    return not getattr(_busy, "on", False) and not inside_mlflow_sklearn()


def track(step, run_id, model_id, owner, config):
    """Log later metrics on ``step``'s predictions (made directly or through ``owner``) to ``run_id``."""
    _tracked[step] = Tracked(run_id, model_id, weakref.ref(owner), config.log_datasets, config.silent)
    ensure_metric_patches()


def _user_input(step, tracked, method, args, kwargs):
    """The input the user passed, and the frame that passed it.

    A prediction through a Pipeline or a search reaches the mgsk step with
    transformed input; the user's own is read from the outer method's frame.
    """
    frame = caller_frame()
    owner = tracked.owner()
    if owner is not None and owner is not step:
        search = frame
        while search is not None:
            if search.f_code.co_name == method and search.f_locals.get("self") is owner:
                return search.f_locals.get("X"), search.f_back, type(owner).__name__
            search = search.f_back
    X = args[0] if args else kwargs.get("X")
    return X, frame, type(step).__name__


def _variable_name(value, frame, fallback="unknown_dataset"):
    """The name the user's code gives ``value``: the first frame where it is not an argument."""
    while frame is not None:
        info = inspect.getargvalues(frame)
        arguments = [info.locals[name] for name in info.args]
        arguments += list(info.locals[info.varargs]) if info.varargs else []
        arguments += list(info.locals[info.keywords].values()) if info.keywords else []
        if not any(item is value for item in arguments):
            return next((name for name, item in info.locals.items() if item is value), fallback)
        frame = frame.f_back
    return fallback


def _dataset_name(run_id, value, frame):
    """``X_test``, or ``X_test-2`` for a second object seen under the same name (as mlflow.sklearn)."""
    name = _variable_name(value, frame)
    seen = _dataset_ids.setdefault(run_id, {}).setdefault(name, [])
    if id(value) not in seen:
        seen.append(id(value))
    index = seen.index(id(value))
    return name if index == 0 else f"{name}-{index + 1}"


def _log_eval_dataset(tracked, name, X):
    key = (tracked.run_id, name)
    if not tracked.log_datasets or key in _logged_eval_datasets:
        return
    _logged_eval_datasets.add(key)
    from mlflow import MlflowClient

    steps = LoggingSteps(tracked.run_id)
    with quick_requests():
        dataset = steps("the evaluation dataset", training_dataset, X, None, None)
        if dataset is not None:
            steps("the evaluation dataset", lambda: log_dataset(MlflowClient(), tracked.run_id, dataset, "eval"))
    steps.warn(tracked.silent)


def patched_predict(original, self, *args, **kwargs):
    """Remember the prediction of a tracked model, to log metrics computed on it."""
    tracked = _tracked.get(self)
    if tracked is None or not _active():
        return original(self, *args, **kwargs)
    with suspended():
        result = original(self, *args, **kwargs)
        X, frame, _ = _user_input(self, tracked, original.__name__, args, kwargs)
        name = _dataset_name(tracked.run_id, X, frame)
        _manager().register_prediction_result(tracked.run_id, name, result, model_id=tracked.model_id)
        _predictions[id(result)] = tracked.run_id
        _log_eval_dataset(tracked, name, X)
        ensure_metric_patches()
    return result


def _log_metric(run_id, key, value, model_id, silent):
    steps = LoggingSteps(run_id)
    with quick_requests():
        steps(f"the metric {key}", _manager().log_post_training_metric, run_id, key, value, model_id)
    steps.warn(silent)


def patched_score(original, self, *args, **kwargs):
    """Log ``model.score(X, y)`` of a tracked model as ``<Class>_score_<X's name>``."""
    tracked = _tracked.get(self)
    if tracked is None or not _active():
        return original(self, *args, **kwargs)
    manager = _manager()
    with suspended():
        value = original(self, *args, **kwargs)
        if manager.is_metric_value_loggable(value):
            X, frame, class_name = _user_input(self, tracked, "score", args, kwargs)
            name = _dataset_name(tracked.run_id, X, frame)
            command = manager.gen_metric_call_command(self, original, *args, **kwargs)
            key = manager.register_metric_api_call(tracked.run_id, f"{class_name}_score", name, command)
            _log_metric(tracked.run_id, key, value, tracked.model_id, tracked.silent)
    return value


def patched_metric_api(original, *args, **kwargs):
    """A scikit-learn metric on a tracked prediction: log it (mlflow.sklearn's logic)."""
    manager = _manager()
    if not _active():
        return original(*args, **kwargs)
    with suspended():
        value = original(*args, **kwargs)
    if manager.is_metric_value_loggable(value):
        run_id, dataset_name, model_id = manager.get_info_for_metric_api_call(args, kwargs)
        if run_id and dataset_name:
            command = manager.gen_metric_call_command(None, original, *args, **kwargs)
            key = manager.register_metric_api_call(run_id, original.__name__, dataset_name, command)
            tracked = next((t for t in _tracked.values() if t.run_id == run_id), None)
            _log_metric(run_id, key, value, model_id, tracked is not None and tracked.silent)
    return value


def _metric_names():
    from mlflow.sklearn import _get_metric_name_list

    return _get_metric_name_list()


def ensure_metric_patches():
    """Patch every sklearn.metrics function no integration patches; wrap those another one does."""
    from mlflow.utils.autologging_utils import autologging_is_disabled, get_autologging_config

    if autologging_is_disabled(FLAVOR_NAME) or not get_autologging_config(FLAVOR_NAME, "log_post_training_metrics"):
        return
    cleanup = getattr(safety, "_AUTOLOGGING_CLEANUP_CALLBACKS", None)
    _owned_metric_patches[:] = [patch for patch in _owned_metric_patches if _is_active(patch)]
    own = {patch.name for patch in _owned_metric_patches}
    for name in _metric_names():
        if gorilla._ACTIVE_PATCH % name in vars(sklearn.metrics):
            if name not in own:
                _wrap_foreign_patch(name)
            continue
        safe_patch(FLAVOR_NAME, sklearn.metrics, name, patched_metric_api, manage_run=False)
        if cleanup is not None:  # else MLflow reverts it with mgsk's other patches
            _owned_metric_patches.append(_unregister(sklearn.metrics, name))
    if cleanup is not None and revert_metric_patches not in cleanup.get(FLAVOR_NAME, []):
        cleanup.setdefault(FLAVOR_NAME, []).append(revert_metric_patches)


def _on_mgsk_prediction(args, kwargs):
    return any(id(value) in _predictions for value in (*args, *kwargs.values()))


def _wrap_foreign_patch(name):
    """Route calls on mgsk's predictions around another integration's (thread-unsafe) patch."""
    current = vars(sklearn.metrics)[name]
    if current is _wrappers.get(name):
        return
    original = gorilla.get_original_attribute(sklearn.metrics, name)

    @functools.wraps(current)
    def wrapper(*args, **kwargs):
        if _on_mgsk_prediction(args, kwargs):
            return patched_metric_api(original, *args, **kwargs)
        return current(*args, **kwargs)

    wrapper.mgsk_wrapped = current
    _wrappers[name] = wrapper
    setattr(sklearn.metrics, name, wrapper)


def _unregister(destination, name):
    """Take the patch safe_patch just stored out of MLflow's list of mgsk patches."""
    patches = safety._AUTOLOGGING_PATCHES[FLAVOR_NAME]
    patch = next(p for p in patches if p.destination is destination and p.name == name)
    patches.discard(patch)
    return patch


def _is_active(patch):
    return vars(patch.destination).get(gorilla._ACTIVE_PATCH % patch.name) is patch


def revert_metric_patches():
    """Revert the metric patches and wrappers that are still mgsk's own (when mgsk autolog is reset)."""
    for patch in _owned_metric_patches:
        if _is_active(patch):
            gorilla.revert(patch)
    _owned_metric_patches.clear()
    for name, wrapper in _wrappers.items():
        if vars(sklearn.metrics).get(name) is wrapper:
            setattr(sklearn.metrics, name, wrapper.mgsk_wrapped)
    _wrappers.clear()
