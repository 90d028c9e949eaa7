"""Where an mgsk fit happens: alone, as the last step of Pipelines, or inside something else.

autolog patches no scikit-learn method for Pipelines: a Pipeline's last step
is fitted last, so when an mgsk estimator's fit returns inside
``Pipeline.fit`` the whole Pipeline is fitted, and the Pipeline and its raw
input are read from the caller's frames. Frames are only read, never changed.
"""

import sys
from dataclasses import dataclass

from sklearn.base import BaseEstimator
from sklearn.model_selection._search import BaseSearchCV
from sklearn.pipeline import Pipeline

_FIT_METHODS = frozenset({"fit", "fit_transform", "fit_predict", "partial_fit"})
#: cross_validate, cross_val_score, learning_curve, ... fit clones in a loop.
_VALIDATION_MODULE = "sklearn.model_selection._validation"


@dataclass(frozen=True)
class FitPlace:
    """How to log one fit.

    ``kind`` is ``"own"`` (log ``owner`` in a run of its own or the user's),
    ``"extras"`` (mlflow.sklearn.autolog logs ``owner``; add the gnostic
    metrics and plots to its run) or ``"skip"``.
    """

    kind: str
    owner: object = None
    X: object = None
    y: object = None


SKIP = FitPlace("skip")


def last_steps(obj):
    """``obj``, then what it fits last: a Pipeline's last step, a search's best estimator, ..."""
    while obj is not None:
        yield obj
        if isinstance(obj, Pipeline):
            obj = obj._final_estimator
        elif isinstance(obj, BaseSearchCV):
            obj = getattr(obj, "best_estimator_", None)
        else:
            return


def final_step_chain(obj, step):
    """Whether fitting ``obj`` ends with fitting ``step``."""
    return any(item is step for item in last_steps(obj))


def _enclosing_fits(estimator, frame):
    """The estimators whose fit encloses this call, innermost first; None for a CV helper."""
    while frame is not None:
        code = frame.f_code
        if code.co_name in _FIT_METHODS and code.co_argcount and code.co_varnames[0] == "self":
            obj = frame.f_locals.get("self")
            if isinstance(obj, BaseEstimator) and obj is not estimator:
                yield obj, frame
        elif frame.f_globals.get("__name__") == _VALIDATION_MODULE:
            yield None, frame
        frame = frame.f_back


def training_sessions_in_this_thread():
    """mlflow.sklearn's training sessions this thread is inside, outermost first.

    MLflow keeps the sessions of all threads on one process-wide stack, so
    its own ``_has_active_training_session()`` is true in every thread while
    any thread fits under mlflow.sklearn.autolog. The sessions of this thread
    are the ones its frames (inside MLflow's patch functions) hold.
    """
    from mlflow.utils.autologging_utils import _training_sessions

    classes = tuple(_training_sessions)
    found = []
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith("mlflow."):
            for value in frame.f_locals.values():
                if isinstance(value, classes) and any(value is entered for entered in type(value)._session_stack):
                    found.append(value)
        frame = frame.f_back
    return found[::-1]


def inside_mlflow_sklearn():
    """Whether this thread is inside one of mlflow.sklearn's patches (fit, predict, a metric)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__", "") == "mlflow.sklearn":
            return True
        frame = frame.f_back
    return False


def fit_place(estimator, frame):
    """Classify the fit of ``estimator`` called from ``frame``.

    Parameters
    ----------
    estimator : mgsk estimator
        The estimator being fitted.
    frame : frame
        The frame that called its ``fit``.

    Returns
    -------
    FitPlace
    """
    sessions = training_sessions_in_this_thread()
    if sessions:
        root = sessions[0].estimator
        if isinstance(root, (Pipeline, BaseSearchCV)) and final_step_chain(root, estimator):
            return FitPlace("extras", owner=root)
        return SKIP
    owner, X, y = estimator, None, None
    for obj, obj_frame in _enclosing_fits(estimator, frame):
        if not (isinstance(obj, Pipeline) and obj._final_estimator is owner):
            return SKIP
        owner, X, y = obj, obj_frame.f_locals.get("X"), obj_frame.f_locals.get("y")
    return FitPlace("own", owner=owner, X=X, y=y)


def search_is_nested(search, frame):
    """Whether a search's fit runs inside another fit or a cross-validation helper."""
    return bool(training_sessions_in_this_thread()) or next(_enclosing_fits(search, frame), None) is not None


def caller_frame():
    """The frame that called the patched method (above MLflow's patch wrappers)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(("mlflow.", "mgsk.mlflow")):
        frame = frame.f_back
    return frame
