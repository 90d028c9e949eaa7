"""What autolog logs about one fitted model, and the requests that log it.

A fitted model costs a handful of requests: the LoggedModel (created first, so
that every metric can name its ``model_id``), one ``log_batch`` with the
parameters, tags and metrics, one ``log_inputs`` with the training dataset
and one ``log_artifacts`` with the plots.
"""

import contextlib
import logging
import os
import tempfile
from copy import deepcopy
from dataclasses import dataclass

import numpy as np
import mlflow
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.utils import _truncate_dict
from mlflow.utils.autologging_utils import INPUT_EXAMPLE_SAMPLE_ROWS, resolve_input_example_and_signature
from mlflow.utils.mlflow_tags import MLFLOW_AUTOLOGGING
from mlflow.utils.time import get_current_time_millis
from mlflow.utils.validation import (
    MAX_ENTITIES_PER_BATCH,
    MAX_ENTITY_KEY_LENGTH,
    MAX_PARAM_VAL_LENGTH,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_TAG_VAL_LENGTH,
)
from sklearn.base import is_classifier
from sklearn.model_selection._search import BaseSearchCV
from sklearn.pipeline import Pipeline

from .._base import GnosticMixin
from ._autolog_faults import quick_requests

_logger = logging.getLogger("mgsk.mlflow.autolog")

FLAVOR_NAME = "mgsk"

TRAINING_PREFIX = "training_"
CONVERGENCE_PLOT = "gnostic_convergence.png"
WEIGHTS_PLOT = "gnostic_weights.png"


@dataclass(frozen=True)
class AutologConfig:
    """The arguments of :func:`mgsk.autolog` that the patched methods read."""

    log_models: bool = True
    log_input_examples: bool = True
    log_model_signatures: bool = True
    log_datasets: bool = True
    log_post_training_metrics: bool = True
    log_plots: bool = True
    max_tuning_runs: int | None = 5
    registered_model_name: str | None = None
    extra_tags: dict | None = None
    serialization_format: str = "skops"
    silent: bool = False


@dataclass
class FitData:
    """The training data of a fit, and a copy of its first rows taken before the fit."""

    X: object
    y: object = None
    sample_weight: object = None
    example: object = None
    example_error: Exception = None

    @classmethod
    def before_fit(cls, X, y=None, sample_weight=None):
        """Capture the input example now, so nothing the fit does can change it."""
        try:
            return cls(X, y, sample_weight, example=deepcopy(X[:INPUT_EXAMPLE_SAMPLE_ROWS]))
        except Exception as exc:
            return cls(X, y, sample_weight, example_error=exc)

    def get_example(self):
        if self.example_error is not None:
            raise self.example_error
        return self.example


def fit_arguments(args, kwargs):
    """``(X, y, sample_weight)`` of a ``fit(X, y=None, sample_weight=None, ...)`` call."""
    values = dict(zip(("X", "y", "sample_weight"), args))
    values.update(kwargs)
    return values.get("X"), values.get("y"), values.get("sample_weight")


def run_tags(config):
    """The tags of a run autolog creates."""
    return {**config.extra_tags, MLFLOW_AUTOLOGGING: FLAVOR_NAME}


@contextlib.contextmanager
def run_for_fit(config, steps, tags):
    """The run a fit logs into: the active one (left open), or a new one ended with the fit.

    A new run gets autolog's tags and ``tags`` when it is created.

    Yields ``(run, is_new)``; ``run`` is None when no run could be created,
    and the failure is recorded in ``steps``. A new run ends FAILED when the
    block raises; the exception goes on unchanged.
    """
    active = mlflow.active_run()
    if active is not None:
        yield active, False
        return
    with quick_requests():
        run = steps("anything (the run could not be created)", mlflow.start_run, tags={**tags, **run_tags(config)})
    if run is None:
        yield None, False
        return
    steps.run_id = run.info.run_id
    status = RunStatus.FINISHED
    try:
        yield run, True
    except BaseException:
        status = RunStatus.FAILED
        raise
    finally:
        with quick_requests():
            steps("the run's end status", mlflow.end_run, RunStatus.to_string(status), even_if_down=True)


def gnostic_step(model):
    """The mgsk estimator that ``model`` (itself, a Pipeline or a search) fits last, or None."""
    while not isinstance(model, GnosticMixin):
        if isinstance(model, Pipeline):
            model = model._final_estimator
        elif isinstance(model, BaseSearchCV):
            model = getattr(model, "best_estimator_", None)
        else:
            return None
    return model


def estimator_tags(model):
    """The tags mlflow.sklearn sets: the class name and its full path."""
    cls = type(model)
    return {"estimator_name": cls.__name__, "estimator_class": f"{cls.__module__}.{cls.__name__}"}


def _original_metric(name):
    """A scikit-learn metric function as defined, not as post-training autologging patched it."""
    import sklearn.metrics
    from mlflow.utils import gorilla

    return gorilla.get_original_attribute(sklearn.metrics, name)


def _regression_scores(model, X, y, sample_weight):
    y = np.asarray(y, dtype=float)
    y_pred = model.predict(X)
    scores = {
        name: _original_metric(name)(y, y_pred, sample_weight=sample_weight)
        for name in ("r2_score", "mean_squared_error", "mean_absolute_error")
    }
    return scores, y - y_pred, "residual y - prediction"


def _classification_scores(model, X, y, sample_weight):
    y = np.asarray(y)
    proba = model.predict_proba(X)
    classes = model.classes_
    y_pred = classes[np.argmax(proba, axis=1)]
    scores = {
        "accuracy_score": _original_metric("accuracy_score")(y, y_pred, sample_weight=sample_weight),
        "f1_score": _original_metric("f1_score")(y, y_pred, average="weighted", sample_weight=sample_weight),
        "log_loss": _original_metric("log_loss")(y, proba, labels=classes, sample_weight=sample_weight),
    }
    try:
        score = proba[:, 1] if len(classes) == 2 else proba
        scores["roc_auc"] = _original_metric("roc_auc_score")(
            y, score, average="weighted", multi_class="ovo", labels=None if len(classes) == 2 else classes,
            sample_weight=sample_weight,
        )  # fmt: skip
    except ValueError as exc:  # e.g. a class absent from y
        _logger.debug("training roc_auc not computed: %s", exc)
    p_true = proba[np.arange(len(y)), np.searchsorted(classes, y)]
    return scores, -np.log(np.clip(p_true, 1e-300, None)), "-log p(true class)"


def training_scores(model, X, y, sample_weight=None):
    """The training metrics of ``model`` and the per-row residuals its weights respond to.

    Returns
    -------
    scores : dict of str to float
        ``training_r2_score``, ``training_mean_squared_error`` and
        ``training_mean_absolute_error`` for a regressor;
        ``training_accuracy_score``, ``training_f1_score``,
        ``training_log_loss`` and ``training_roc_auc`` for a classifier.
    residuals : ndarray of shape (n_samples,)
    residual_label : str
    """
    compute = _classification_scores if is_classifier(model) else _regression_scores
    scores, residuals, label = compute(model, X, y, sample_weight)
    return {TRAINING_PREFIX + name: float(value) for name, value in scores.items()}, residuals, label


def gnostic_metrics(step, timestamp, model_id=None, dataset=None):
    """The metrics of the fit of ``step``: re, n_iter, scale, and re and loss per iteration.

    The per-iteration values have ``step`` = iteration; the final ``re`` is
    logged at the last iteration one millisecond later, so that it is the
    run's latest value of ``re``.
    """

    def metric(key, value, when, at):
        return Metric(
            key, float(value), when, int(at), model_id=model_id,
            dataset_name=dataset and dataset.name, dataset_digest=dataset and dataset.digest,
        )  # fmt: skip

    metrics = []
    for record in step.history_:
        metrics.append(metric("re", record["re"], timestamp, record["iteration"]))
        metrics.append(metric("loss", record["loss"], timestamp, record["iteration"]))
    metrics += [
        metric("re", step.re_, timestamp + 1, step.n_iter_),
        metric("n_iter", step.n_iter_, timestamp + 1, 0),
        metric("scale", step.scale_, timestamp + 1, 0),
    ]
    return metrics


def plain_metrics(values, timestamp, model_id=None, dataset=None):
    """``values`` as step-0 Metric entities linked to ``model_id`` and ``dataset``."""
    return [
        Metric(
            key, float(value), timestamp, 0, model_id=model_id,
            dataset_name=dataset and dataset.name, dataset_digest=dataset and dataset.digest,
        )  # fmt: skip
        for key, value in values.items()
    ]


def log_batch(client, run_id, metrics=(), params=None, tags=None):
    """Log params, tags and metrics in as few requests as MLflow's batch limits allow."""
    params = _truncate_dict(params or {}, MAX_ENTITY_KEY_LENGTH, MAX_PARAM_VAL_LENGTH)
    tags = _truncate_dict(tags or {}, MAX_ENTITY_KEY_LENGTH, MAX_TAG_VAL_LENGTH)
    params = [Param(key, str(value)) for key, value in params.items()]
    tags = [RunTag(key, str(value)) for key, value in tags.items()]
    metrics = list(metrics)
    while params or tags or metrics:
        batch_params, params = params[:MAX_PARAMS_TAGS_PER_BATCH], params[MAX_PARAMS_TAGS_PER_BATCH:]
        room = MAX_PARAMS_TAGS_PER_BATCH - len(batch_params)
        batch_tags, tags = tags[:room], tags[room:]
        room = MAX_ENTITIES_PER_BATCH - len(batch_params) - len(batch_tags)
        batch_metrics, metrics = metrics[:room], metrics[room:]
        client.log_batch(run_id, metrics=batch_metrics, params=batch_params, tags=batch_tags)


def new_params(client, run_id, params, run_is_new):
    """The params the run does not hold yet; MLflow refuses to change a logged value."""
    if run_is_new:
        return params
    logged = client.get_run(run_id).data.params
    changed = sorted(key for key, value in params.items() if key in logged and logged[key] != str(value)[:MAX_PARAM_VAL_LENGTH])
    if changed:
        _logger.info(
            "Run %s already holds the parameters %s with other values (an earlier fit in the same "
            "run); MLflow parameters cannot change, so the first values are kept.",
            run_id,
            changed,
        )
    return {key: value for key, value in params.items() if key not in logged}


def log_run_data(client, run_id, metrics, params, tags, run_is_new):
    """Log metrics, tags and the params the run does not hold yet."""
    log_batch(client, run_id, metrics, new_params(client, run_id, params, run_is_new), tags)


def training_dataset(X, y, run_tags):
    """The training data as an ``mlflow.data`` dataset (None for types it cannot hold)."""
    import pandas as pd
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.numpy_dataset import from_numpy
    from mlflow.data.pandas_dataset import from_pandas

    source = CodeDatasetSource(dict(run_tags or {}))
    if isinstance(X, pd.DataFrame):
        return from_pandas(X, source=source)
    if y is not None:
        y = np.asarray(y)
    return from_numpy(np.asarray(X), source=source, targets=y)


def log_dataset(client, run_id, dataset, context="train"):
    """Link ``dataset`` to the run as an input with the given context."""
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    tags = [InputTag(key=MLFLOW_DATASET_CONTEXT, value=context)]
    client.log_inputs(run_id, datasets=[DatasetInput(dataset=dataset._to_mlflow_entity(), tags=tags)])


def _signature_with_methods(model, example):
    """The signature of ``model.predict`` on ``example``, declaring the flavor's predict_method."""
    from mlflow.models import infer_signature
    from mlflow.types.schema import ParamSchema, ParamSpec

    from ._pyfunc import PREDICT_METHOD_PARAM, available_methods

    params = None
    if len(available_methods(model)) > 1:
        params = ParamSchema([ParamSpec(PREDICT_METHOD_PARAM, "string", "predict")])
    signature = infer_signature(example, model.predict(deepcopy(example)))
    signature.params = params
    return signature


class _FlavorWithoutServingCheck:
    """The mgsk flavor as ``Model.log`` sees it, without MLflow's serving check.

    ``Model.log`` reloads a model saved with an input example and predicts on
    it; that check costs about a quarter of autolog's overhead and adds
    nothing here, since the signature was just inferred by predicting on the
    same example. (``mgsk.mlflow.log_model`` does not accept
    ``validate_serving_input``; this shim stands in until it does.)
    """

    __name__ = "mgsk.mlflow"

    @staticmethod
    def save_model(path, mlflow_model, validate_serving_input=None, **kwargs):
        from ._flavor import save_model

        save_model(path=path, mlflow_model=mlflow_model, **kwargs)


def log_model(model, data, config, run_id, params):
    """Log ``model`` in the mgsk flavor, with its signature and input example.

    Returns
    -------
    str
        The ``model_id`` of the new LoggedModel.
    """
    from mlflow.models import Model

    from ._flavor import check_model

    check_model(model, config.serialization_format)
    example, signature = resolve_input_example_and_signature(
        data.get_example,
        lambda example: _signature_with_methods(model, example),
        config.log_input_examples,
        config.log_model_signatures,
        _logger,
    )
    info = Model.log(
        artifact_path=None,
        name="model",
        flavor=_FlavorWithoutServingCheck,
        flavor_name=FLAVOR_NAME,
        registered_model_name=config.registered_model_name,
        model=model,
        signature=signature,
        input_example=example,
        serialization_format=config.serialization_format,
        params={key: str(value) for key, value in params.items()},
        run_id=run_id,
        validate_serving_input=False,
    )
    return info.model_id


_plot_executor = None


def render_plots(step, residuals, residual_label):
    """Start drawing the two plots in a worker thread, while the main thread waits on the store.

    Returns
    -------
    concurrent.futures.Future
        Its result maps artifact file names to PNG bytes.
    """
    global _plot_executor
    from concurrent.futures import ThreadPoolExecutor

    from ._plots import convergence_png, weights_png

    if _plot_executor is None:
        _plot_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mgsk-autolog-plots")

    def draw():
        return {
            CONVERGENCE_PLOT: convergence_png(step.history_),
            WEIGHTS_PLOT: weights_png(residuals, step.weights_, step.outliers_, residual_label),
        }

    return _plot_executor.submit(draw)


def log_plots(client, run_id, images):
    """Log the plots that :func:`render_plots` drew as PNG artifacts of the run."""
    with tempfile.TemporaryDirectory() as folder:
        for name, png in images.result().items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(png)
        client.log_artifacts(run_id, folder)


def log_fitted_model(client, run, model, scored, data, config, steps, *, params, run_is_new, extra_metrics=None):
    """Log everything about a fitted model into ``run``.

    Parameters
    ----------
    client : mlflow.MlflowClient
    run : mlflow.entities.Run
        The run to log into (autolog's own, or the user's).
    model : estimator
        What is logged as the model: an mgsk estimator, a Pipeline, or a
        search's best estimator.
    scored : estimator
        What the training metrics are computed with (``model``, or the search).
    data : FitData
        The training data of ``scored``.
    config : AutologConfig
    steps : LoggingSteps
        Runs each request, and records what could not be logged.
    params : dict
        The parameters to log.
    run_is_new : bool
        Whether autolog created ``run``: it holds no parameters yet, and the
        estimator tags of ``scored`` were set when it was created.
    extra_metrics : dict, optional
        Step-0 metrics to add (e.g. ``best_cv_score``).

    Returns
    -------
    str or None
        The ``model_id`` of the logged model.
    """
    run_id = run.info.run_id
    step = gnostic_step(model)
    scores, residuals, residual_label = training_scores(scored, data.X, data.y, data.sample_weight)
    images = render_plots(step, residuals, residual_label) if config.log_plots and step is not None else None
    model_id = None
    if config.log_models:
        model_id = steps("the model", log_model, model, data, config, run_id, params)
    dataset = None
    if config.log_datasets:
        dataset = steps("the training dataset", training_dataset, data.X, data.y, run.data.tags)
    now = get_current_time_millis()
    metrics = plain_metrics({**scores, **(extra_metrics or {})}, now, model_id, dataset)
    if step is not None:
        metrics += gnostic_metrics(step, now, model_id, dataset)
    tags = None if run_is_new else estimator_tags(scored)
    steps("the parameters, metrics and tags", log_run_data, client, run_id, metrics, params, tags, run_is_new)
    if dataset is not None:
        steps("the training dataset", log_dataset, client, run_id, dataset)
    if images is not None:
        steps("the plots", log_plots, client, run_id, images)
    return model_id


def log_gnostic_extras(client, run_id, step, data, config, steps):
    """Add the metrics and plots of an mgsk step to a run another integration logs."""
    images = None
    if config.log_plots:
        images = render_plots(step, *training_scores(step, data.X, data.y, data.sample_weight)[1:])
    steps("the gnostic metrics", log_batch, client, run_id, gnostic_metrics(step, get_current_time_millis()))
    if images is not None:
        steps("the plots", log_plots, client, run_id, images)
