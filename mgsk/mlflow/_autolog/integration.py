"""``mgsk.autolog()``: one call, and every fit of an mgsk estimator is tracked in MLflow.

Built on MLflow's autologging helpers (``autologging_integration``,
``safe_patch``, ``resolve_input_example_and_signature``, ...), which are a
developer API: the MLflow releases it supports and was tested with are
those of "Supported MLflow versions" in docs/install.rst.

What is patched, and why there:

- ``fit``, the prediction methods and ``score`` of mgsk's estimators;
- ``fit`` of the :mod:`mgsk.dask` estimators, once :mod:`mgsk.dask` is
  imported (their predictions are lazy: no post-training metrics);
- ``BaseSearchCV.fit``: mlflow.sklearn.autolog patches ``GridSearchCV.fit``
  and ``RandomizedSearchCV.fit``, one class lower, so while it is on its
  patches run first and own the search (MLflow keeps one patch per method:
  two integrations patching the same one would silently replace each other);
- the ``sklearn.metrics`` functions, only while no integration patches them
  (see :mod:`.post_training`).

Pipelines need no patch (see :mod:`.context`). When
mlflow.sklearn.autolog is on too, it logs scikit-learn's meta-estimators
(Pipeline, GridSearchCV, RandomizedSearchCV) as usual and mgsk adds the
gnostic metrics and plots of the mgsk step to its run: one run, one model.
"""

import functools
import os

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.utils.autologging_utils import INPUT_EXAMPLE_SAMPLE_ROWS, autologging_integration, safe_patch

from .._serialization import FORMATS
from . import post_training
from .analysis import analysis_classes
from .context import caller_frame, fit_place
from .faults import LoggingSteps, quick_requests
from .log_fit import log_fitted_model, log_gnostic_extras, run_for_fit
from .record import FLAVOR_NAME, AutologConfig, FitData, estimator_tags, fit_arguments


@autologging_integration(FLAVOR_NAME)
def autolog(
    log_models=True,
    log_input_examples=True,
    log_model_signatures=True,
    log_datasets=True,
    log_post_training_metrics=True,
    log_plots=True,
    max_tuning_runs=5,
    registered_model_name=None,
    extra_tags=None,
    disable=False,
    exclusive=False,
    disable_for_unsupported_versions=False,
    silent=False,
    serialization_format="skops",
    spool_dir=None,
):
    """Track every fit of an mgsk estimator in MLflow: standalone, in Pipelines and in searches.

    After one call, ``model.fit(X, y)`` creates an MLflow run (or logs into
    the active one, leaving it open) holding the constructor parameters, the
    gnostic metrics ``re``, ``n_iter`` and ``scale``, the training scores,
    the convergence of ``re`` and ``loss`` per iteration (step = iteration),
    the tags ``estimator_name`` and ``estimator_class``, the training dataset,
    two plots (``gnostic_convergence.png`` and ``gnostic_weights.png``, the
    weight of every training row against its residual) and the model in the
    mgsk flavor with its signature and an input example.
    :class:`~mgsk.GnosticDistribution` and :class:`~mgsk.GnosticOutlierDetector`
    log their numbers per feature, a table and a plot per feature instead
    of the gnostic metrics and plots (see :ref:`distributions-autolog`). Logging never
    changes or breaks the fit: when the tracking or artifact store fails,
    ``fit`` returns the same model and one warning says what was not logged.
    When the store does not answer, what it did not take is written to a
    local spool and sent later, exactly once: by the next fit that reaches
    the store (in a background thread), by :func:`mgsk.mlflow.sync` or by
    ``python -m mgsk.mlflow sync``.

    A Pipeline whose last step is an mgsk estimator gives one run with the
    Pipeline as the model and all its parameters (``step__param``).
    ``GridSearchCV`` and ``RandomizedSearchCV`` give one parent run (best
    parameters, ``best_cv_score``, ``cv_results.csv``, the best estimator as
    the model) and at most ``max_tuning_runs`` child runs, one per candidate,
    whatever ``n_jobs``. Fits inside other meta-estimators and inside
    ``cross_val_score`` and its siblings are not logged. A fit of an
    :mod:`mgsk.dask` estimator logs its ``to_local()`` model, with the input
    example and signature from the first rows; the training scores, the
    dataset and the weights plot, which would need every row, are left out.

    Parameters
    ----------
    log_models : bool, default=True
        Log the fitted model (a LoggedModel, ``models:/<model_id>``).
    log_input_examples : bool, default=True
        Store the first 5 training rows as the model's input example.
    log_model_signatures : bool, default=True
        Store the model's signature, inferred from the training input.
    log_datasets : bool, default=True
        Log the training data (and evaluation data of post-training
        metrics) as ``mlflow.data`` datasets.
    log_post_training_metrics : bool, default=True
        Log ``model.score(X_test, y_test)`` and scikit-learn metric calls on
        the model's predictions, named after the metric and the dataset
        variable (``r2_score_X_test``), as mlflow.sklearn does.
    log_plots : bool, default=True
        Log the two diagnostic plots.
    max_tuning_runs : int or None, default=5
        The most child runs a parameter search creates, best ranked first;
        None creates one per candidate.
    registered_model_name : str, optional
        Also register each logged model under this name.
    extra_tags : dict, optional
        Tags for every run autolog creates; values of any type, sent as
        their ``str``.
    disable : bool, default=False
        Turn autologging off, restoring the original methods.
    exclusive : bool, default=False
        Log nothing into runs the user started.
    disable_for_unsupported_versions : bool, default=False
        Accepted for parity with MLflow's integrations; mgsk checks its
        MLflow range at install time.
    silent : bool, default=False
        Suppress mgsk's and MLflow's autologging warnings and event logs,
        and MLflow's "View run" lines.
    serialization_format : {"skops", "cloudpickle"}, default="skops"
        How the logged models are saved (see :func:`mgsk.mlflow.save_model`).
    spool_dir : path-like, optional
        Where to spool what the tracking store did not take; by default
        ``$MGSK_SPOOL_DIR``, else ``$XDG_CACHE_HOME/mgsk/spool``
        (``~/.cache/mgsk/spool``).

    Returns
    -------
    None

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import mlflow, numpy as np
    >>> import mgsk
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> previous_uri = mlflow.get_tracking_uri()
    >>> mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
    >>> experiment = mlflow.create_experiment("autolog", artifact_location=(tmp / "artifacts").as_uri())
    >>> mgsk.autolog(log_plots=False, spool_dir=tmp / "spool")
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> with mlflow.start_run(experiment_id=experiment) as run:  # without it, fit starts and ends its own run
    ...     model = mgsk.LinearRegressor().fit(X, X @ [1.0, 2.0] + 3.0)
    >>> logged = mlflow.get_run(run.info.run_id)
    >>> logged.data.params["degree"], logged.data.metrics["re"] == model.re_
    ('1', True)
    >>> mgsk.autolog(disable=True)
    >>> mlflow.set_tracking_uri(previous_uri)
    """
    if max_tuning_runs is not None and (not isinstance(max_tuning_runs, int) or max_tuning_runs < 0):
        raise MlflowException(
            f"max_tuning_runs must be None or a non-negative int, got {max_tuning_runs!r}.",
            error_code=INVALID_PARAMETER_VALUE,
        )
    if extra_tags is not None and not isinstance(extra_tags, dict):
        raise MlflowException(
            f"extra_tags must be a dict, got {type(extra_tags).__name__}.", error_code=INVALID_PARAMETER_VALUE
        )
    if serialization_format not in FORMATS:
        raise MlflowException(
            f"serialization_format must be one of {list(FORMATS)}, got {serialization_format!r}.",
            error_code=INVALID_PARAMETER_VALUE,
        )
    config = AutologConfig(
        log_models=log_models,
        log_input_examples=log_input_examples,
        log_model_signatures=log_model_signatures,
        log_datasets=log_datasets,
        log_post_training_metrics=log_post_training_metrics,
        log_plots=log_plots,
        max_tuning_runs=max_tuning_runs,
        registered_model_name=registered_model_name,
        extra_tags={str(key): str(value) for key, value in (extra_tags or {}).items()},
        serialization_format=serialization_format,
        silent=silent,
        spool_dir=None if spool_dir is None else os.fspath(spool_dir),
    )
    _patch_all(config)


def _patch_all(config):
    from sklearn.model_selection._search import BaseSearchCV

    import mgsk

    from .search import patched_search_fit

    def patch(destination, name, function):
        safe_patch(FLAVOR_NAME, destination, name, function, manage_run=False)

    _patch_dask_estimators(config, patch)
    for cls in (mgsk.LinearRegressor, mgsk.PolynomialRegressor, mgsk.LogisticRegressor, *analysis_classes()):
        patch(cls, "fit", functools.partial(_patched_fit, config))
        if config.log_post_training_metrics:
            for method in post_training.PREDICT_METHODS:
                if hasattr(cls, method):
                    patch(cls, method, post_training.patched_predict)
            if hasattr(cls, "score"):
                patch(cls, "score", post_training.patched_score)
    patch(BaseSearchCV, "fit", functools.partial(patched_search_fit, config))
    post_training.ensure_metric_patches()


def _patched_fit(config, original, self, *args, **kwargs):
    place = fit_place(self, caller_frame())
    if place.kind == "skip":
        return original(self, *args, **kwargs)
    X, y, sample_weight = fit_arguments(args, kwargs)
    if place.kind == "extras":
        result = original(self, *args, **kwargs)
        _log_extras(config, self, FitData(X, y, sample_weight))
        return result
    owner = place.owner
    if owner is not self:  # the last step of a Pipeline: the Pipeline's raw input
        X, y = place.X, place.y
    data = FitData.before_fit(X, y, sample_weight)
    steps = LoggingSteps()
    with run_for_fit(config, steps, estimator_tags(owner)) as fit_run:
        result = original(self, *args, **kwargs)
        client = mlflow.MlflowClient() if fit_run.sending else None
        params = owner.get_params(deep=True)
        with quick_requests(), post_training.suspended():
            model_id = steps(
                "the fit's record", log_fitted_model, client, fit_run, owner, owner, data, config, steps,
                params=params, even_if_down=True,
            )  # fmt: skip
        if config.log_post_training_metrics and fit_run.run is not None:
            post_training.track(self, fit_run.run_id, model_id, owner, config)
    steps.warn(config.silent)
    return result


def _patch_dask_estimators(config, patch):
    """Patch the :mod:`mgsk.dask` estimators when that module is imported (now, if it is).

    autolog itself never imports Dask.
    """
    from mlflow.utils.autologging_utils import autologging_is_disabled
    from mlflow.utils.import_hooks import register_post_import_hook

    def patch_dask_fits(module):
        if not autologging_is_disabled(FLAVOR_NAME):
            for name in module.__all__:
                patch(getattr(module, name), "fit", functools.partial(_patched_dask_fit, config))

    register_post_import_hook(patch_dask_fits, "mgsk.dask", overwrite=True)


def _patched_dask_fit(config, original, self, *args, **kwargs):
    """A Dask fit: one run, its ``to_local()`` model, an input example from the first rows only."""
    from mgsk.dask._data import first_rows

    if fit_place(self, caller_frame()).kind != "own":
        return original(self, *args, **kwargs)
    X, _, _ = fit_arguments(args, kwargs)
    try:
        data = FitData(None, example=first_rows(X, INPUT_EXAMPLE_SAMPLE_ROWS))  # X=None: nothing is scored on all rows
    except Exception as exc:
        data = FitData(None, example_error=exc)
    steps = LoggingSteps()
    with run_for_fit(config, steps, estimator_tags(self)) as fit_run:
        result = original(self, *args, **kwargs)
        client = mlflow.MlflowClient() if fit_run.sending else None
        params = {key: value for key, value in self.get_params(deep=True).items() if key != "client"}
        local = self.to_local()
        with quick_requests(), post_training.suspended():
            steps("the fit's record", log_fitted_model, client, fit_run, local, local, data, config, steps,
                  params=params, even_if_down=True)  # fmt: skip
    steps.warn(config.silent)
    return result


def _log_extras(config, step, data):
    run = mlflow.active_run()
    if run is None:
        return
    steps = LoggingSteps(run.info.run_id)
    with run_for_fit(config, steps, {}) as fit_run:
        with quick_requests(), post_training.suspended():
            client = mlflow.MlflowClient() if fit_run.sending else None
            log_gnostic_extras(client, fit_run, step, data, config, steps)
    steps.warn(config.silent)
