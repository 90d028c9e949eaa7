"""Parameter searches over mgsk estimators: one parent run, a few child runs, no run per inner fit.

The search is fitted with autologging disabled (as mlflow.sklearn does for
``cross_val_score``), so its N candidates x K folds inner fits, and the refit,
log nothing; the parent and child runs are written from the fitted search's
``cv_results_``. Inner fits in joblib worker processes (``n_jobs > 1``) are
not patched at all.

The child runs are plain data (:func:`child_runs`) before any request, so
what the store does not take goes to the spool with the parent's entry, and
:func:`log_child_runs` sends them now or when the entry is replayed. Each
child run is tagged with the parent fit's id and its candidate's index: a
replay completes the child runs the store already holds instead of creating
them again.
"""

from concurrent.futures import ThreadPoolExecutor

import mlflow
import numpy as np
from mlflow.entities import RunStatus
from mlflow.utils.autologging_utils import disable_autologging
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from mlflow.utils.time import get_current_time_millis
from sklearn.base import BaseEstimator

from ..._base import GnosticMixin
from . import post_training
from .analysis import analysis_classes, analysis_step
from .context import caller_frame, search_is_nested
from .faults import LoggingSteps, quick_requests
from .log_fit import FIT_ID_TAG, FitRecord, log_batch, log_fitted_model, run_for_fit, run_tags, send
from .record import FitData, estimator_tags, fit_arguments, gnostic_step, metric_entities

CV_RESULTS = "cv_results.csv"
#: Child runs sent at once to a tracking server (each costs three small requests).
CHILD_THREADS = 4


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
        step = gnostic_step(best) or analysis_step(best)
        if config.log_post_training_metrics and fit_run.run is not None and step is not None:
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
    if config.max_tuning_runs == 0:
        return
    start_time = fit_run.run.info.start_time if fit_run.run is not None else fit_run.start_time
    children = child_runs(search, config, best_params, fit_run.fit_id, start_time)
    if fit_run.sending:
        threads = CHILD_THREADS if steps.uri.startswith(("http://", "https://")) else 1
        steps(
            "the child runs", log_child_runs, client, fit_run.experiment_id, fit_run.run_id, children, model_id,
            threads=threads,
        )  # fmt: skip
    elif fit_run.run is not None:
        steps.failed.append("the child runs")
    if not fit_run.sending:  # the replay creates them, or completes those the store took
        fit_run.unsent.append(FitRecord(params={}, tags=None, metrics=lambda _: [], children=children, model_id=model_id))
        steps.spooled_child_runs = len(children)


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


def child_runs(search, config, best_params, parent_fit_id, start_time):
    """The child runs of the top-ranked candidates as JSON-ready dicts: tags, params, scores.

    ``fit_id`` (also the run's ``mgsk.autolog.fit_id`` tag) is the parent
    fit's id and the candidate's index; ``best`` marks the candidate whose
    scores are linked to the search's model.
    """
    results = search.cv_results_
    seed_params = search.estimator.get_params(deep=True)
    now = get_current_time_millis()
    tags = {**run_tags(config), **estimator_tags(search.estimator)}
    children = []
    for index in _ranked_candidates(search, config.max_tuning_runs):
        candidate = results["params"][index]
        fit_id = f"{parent_fit_id}-{int(index)}"
        scores = {
            key: float(values[index])
            for key, values in results.items()
            if not key.startswith(("param", "split")) and np.issubdtype(np.asarray(values).dtype, np.number)
        }
        children.append({
            "fit_id": fit_id, "tags": {**tags, FIT_ID_TAG: fit_id},
            "params": {key: str(value) for key, value in {**seed_params, **candidate}.items()},
            "scores": scores, "best": bool(best_params) and candidate == best_params,
            "start_time": start_time, "end_time": now,
        })  # fmt: skip
    return children


def log_child_runs(client, experiment_id, parent_run_id, children, model_id, existing=None, threads=1):
    """Create one FINISHED child run of ``parent_run_id`` per dict of ``children``, or complete it.

    ``existing`` maps a child's ``fit_id`` to its run when the store already
    holds it (created before an outage, or by a replay that stopped): that
    run gets the params it lacks, the metrics (MLflow keeps one copy of an
    identical metric) and its end, and no second run is created. The best
    candidate's metrics are linked to ``model_id``. Returns the runs created.
    """
    existing = existing or {}

    def log(child):
        run = existing.get(child["fit_id"])
        params = child["params"]
        if run is None:
            tags = {**child["tags"], MLFLOW_PARENT_RUN_ID: parent_run_id}
            run_id = client.create_run(experiment_id, start_time=child["start_time"], tags=tags).info.run_id
        else:
            run_id = run.info.run_id
            params = {key: value for key, value in params.items() if key not in run.data.params}
        metrics = metric_entities(child["scores"], child["end_time"], model_id=model_id if child["best"] else None)
        log_batch(client, run_id, metrics, params)
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED), end_time=child["end_time"])
        return run is None

    if threads > 1 and len(children) > 1:
        with ThreadPoolExecutor(min(threads, len(children)), thread_name_prefix="mgsk-child-runs") as pool:
            created = list(pool.map(log, children))
    else:
        created = [log(child) for child in children]
    return sum(created)


def existing_child_runs(client, experiment_id, parent_run_id):
    """The child runs of ``parent_run_id`` that autolog created, by their ``fit_id`` tag."""
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent_run_id}'", max_results=10000
    )
    return {run.data.tags[FIT_ID_TAG]: run for run in runs if FIT_ID_TAG in run.data.tags}
