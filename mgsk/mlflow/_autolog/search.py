"""Parameter searches over mgsk estimators: one parent run, a few child runs, no run per inner fit.

The search is fitted with autologging disabled (as mlflow.sklearn does for
``cross_val_score``), so its N candidates x K folds inner fits, and the refit,
log nothing; the parent and child runs are written from the fitted search's
``cv_results_``. Inner fits in joblib worker processes (``n_jobs > 1``) are
not patched at all.
"""

import mlflow
import numpy as np
from mlflow.utils.autologging_utils import MlflowAutologgingQueueingClient, disable_autologging
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from mlflow.utils.time import get_current_time_millis
from sklearn.base import BaseEstimator

from ..._base import GnosticMixin
from . import post_training
from .analysis import analysis_classes
from .context import caller_frame, search_is_nested
from .faults import LoggingSteps, quick_requests
from .log_fit import FitRecord, log_fitted_model, run_for_fit, run_tags, send
from .record import FitData, estimator_tags, fit_arguments, gnostic_step, metric_entities

CV_RESULTS = "cv_results.csv"


def contains_mgsk(obj):
    """Whether an mgsk estimator is in ``obj`` (an estimator, its parameters, a grid)."""
    if isinstance(obj, (GnosticMixin, *analysis_classes())):
        return True
    if isinstance(obj, BaseEstimator):
        return contains_mgsk(list(obj.get_params(deep=False).values()))
    if isinstance(obj, dict):
        return contains_mgsk(list(obj.values()))
    if isinstance(obj, (list, tuple)):
        return any(contains_mgsk(item) for item in obj)
    return False


def patched_search_fit(config, original, self, *args, **kwargs):
    """Fit the search without inner logging, then log the parent and child runs."""
    if search_is_nested(self, caller_frame()) or not contains_mgsk(self):
        return original(self, *args, **kwargs)
    data = FitData.before_fit(*fit_arguments(args, kwargs))
    steps = LoggingSteps()
    with run_for_fit(config, steps, estimator_tags(self)) as fit_run:
        with disable_autologging():
            result = original(self, *args, **kwargs)
        with quick_requests(), post_training.suspended():
            client = mlflow.MlflowClient() if fit_run.sending else None
            steps("the search's record", _log_search, client, fit_run, self, data, config, steps, even_if_down=True)
    steps.warn(config.silent)
    return result


def _log_search(client, fit_run, search, data, config, steps):
    params = search.get_params(deep=False)
    best_params = getattr(search, "best_params_", {})
    params.update({f"best_{name}": value for name, value in best_params.items()})
    extra = {"best_cv_score": search.best_score_} if hasattr(search, "best_score_") else {}
    best = getattr(search, "best_estimator_", None)
    model_id = None
    cv_results = {CV_RESULTS: _cv_results_csv(search)}
    if best is not None:
        model_id = log_fitted_model(
            client, fit_run, best, search, data, config, steps, params=params, extra_metrics=extra, files=cv_results
        )
        if config.log_post_training_metrics and fit_run.run is not None and (step := gnostic_step(best)) is not None:
            post_training.track(step, fit_run.run_id, model_id, search, config)
    else:  # refit=False: no model to log or score
        now = get_current_time_millis()
        record = FitRecord(
            params=params, tags=None if fit_run.is_new else estimator_tags(search),
            metrics=lambda model_id: metric_entities(extra, now), files=cv_results,
        )  # fmt: skip
        if fit_run.sending:
            send(client, fit_run, record, config, steps, fit_run.is_new)
        else:
            fit_run.unsent.append(record)
    if config.max_tuning_runs != 0:
        if fit_run.sending:
            steps("the child runs", _log_child_runs, fit_run.run, search, config, best_params, model_id)
        else:  # the parent run holds the search's results (cv_results.csv): child runs are not spooled
            steps.failed.append("the child runs (not spooled)")


def _cv_results_csv(search):
    import pandas as pd

    return pd.DataFrame(search.cv_results_).to_csv(index=False).encode()


def _ranked_candidates(search, limit):
    """Indices of the candidates, best first (by the refit metric's rank), at most ``limit``."""
    results = search.cv_results_
    rank_key = f"rank_test_{search.refit}" if isinstance(search.refit, str) else "rank_test_score"
    if rank_key not in results:
        rank_key = next(key for key in results if key.startswith("rank_test_"))
    order = np.argsort(np.asarray(results[rank_key]), kind="stable")
    return order if limit is None else order[:limit]


def _log_child_runs(parent, search, config, best_params, best_model_id):
    """One finished child run per top-ranked candidate: its parameters and its CV scores."""
    results = search.cv_results_
    seed_params = search.estimator.get_params(deep=True)
    queue = MlflowAutologgingQueueingClient()
    now = get_current_time_millis()
    tags = {**run_tags(config), **estimator_tags(search.estimator), MLFLOW_PARENT_RUN_ID: parent.info.run_id}
    for index in _ranked_candidates(search, config.max_tuning_runs):
        candidate = results["params"][index]
        child = queue.create_run(experiment_id=parent.info.experiment_id, start_time=parent.info.start_time, tags=tags)
        queue.log_params(child, {**seed_params, **candidate})
        scores = {
            key: float(values[index])
            for key, values in results.items()
            if not key.startswith(("param", "split")) and np.issubdtype(np.asarray(values).dtype, np.number)
        }
        is_best = bool(best_params) and candidate == best_params
        queue.log_metrics(child, scores, model_id=best_model_id if is_best else None)
        queue.set_terminated(child, end_time=now)
    queue.flush(synchronous=True)
