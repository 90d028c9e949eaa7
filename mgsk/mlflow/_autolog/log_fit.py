"""The requests that log one fit, as few as MLflow allows.

A fitted model costs: its run (created with its tags), the LoggedModel
(created first, so that every metric can name its ``model_id``), one
``log_batch`` with the parameters and metrics, one ``log_inputs`` with the
training dataset and one ``log_artifacts`` with the plots, which a worker
thread draws meanwhile. Each request runs through :class:`LoggingSteps`.
"""

import contextlib
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from copy import deepcopy

import mlflow
import numpy as np
from mlflow.entities import Param, RunStatus, RunTag
from mlflow.utils import _truncate_dict
from mlflow.utils.autologging_utils import resolve_input_example_and_signature
from mlflow.utils.mlflow_tags import MLFLOW_AUTOLOGGING
from mlflow.utils.time import get_current_time_millis
from mlflow.utils.validation import (
    MAX_ENTITIES_PER_BATCH,
    MAX_ENTITY_KEY_LENGTH,
    MAX_PARAM_VAL_LENGTH,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_TAG_VAL_LENGTH,
)

from .faults import quick_requests
from .record import (
    FLAVOR_NAME,
    _logger,
    estimator_tags,
    gnostic_metrics,
    gnostic_step,
    metric_entities,
    training_scores,
)

CONVERGENCE_PLOT = "gnostic_convergence.png"
WEIGHTS_PLOT = "gnostic_weights.png"

#: (process id, executor): a forked child cannot use its parent's threads.
_plot_executor = (None, None)


def run_tags(config):
    """The tags of a run autolog creates."""
    return {**config.extra_tags, MLFLOW_AUTOLOGGING: FLAVOR_NAME}


@contextlib.contextmanager
def run_for_fit(config, steps, tags):
    """The run a fit logs into: the active one (left open), or a new one ended with the fit.

    Yields ``(run, is_new)``. A new run gets autolog's tags and ``tags`` when
    it is created, and ends FAILED when the block raises (the exception goes
    on unchanged). ``run`` is None when no run could be created.
    """
    active = mlflow.active_run()
    if active is not None:
        steps.run_id = active.info.run_id
        yield active, False
        return
    with quick_requests():
        run = steps("the run", mlflow.start_run, tags={**tags, **run_tags(config)})
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


def _new_params(client, run_id, params):
    """The params the run does not hold yet: MLflow refuses to change a logged value."""
    logged = client.get_run(run_id).data.params
    changed = sorted(key for key, value in params.items() if key in logged and logged[key] != str(value)[:MAX_PARAM_VAL_LENGTH])
    if changed:
        _logger.info(
            "Run %s already holds the parameters %s with other values (from an earlier fit in the same "
            "run); MLflow parameters cannot change, so the first values are kept.",
            run_id,
            changed,
        )
    return {key: value for key, value in params.items() if key not in logged}


def log_run_data(client, run_id, metrics, params, tags, run_is_new):
    """Log metrics, tags and the params a run autolog did not create does not hold yet."""
    log_batch(client, run_id, metrics, params if run_is_new else _new_params(client, run_id, params), tags)


def training_dataset(X, y, run_tags):
    """``X`` (and ``y``) as an ``mlflow.data`` dataset, its source the run's code."""
    import pandas as pd
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.numpy_dataset import from_numpy
    from mlflow.data.pandas_dataset import from_pandas

    source = CodeDatasetSource(dict(run_tags or {}))
    if isinstance(X, pd.DataFrame):
        return from_pandas(X, source=source)
    return from_numpy(np.asarray(X), source=source, targets=None if y is None else np.asarray(y))


def log_dataset(client, run_id, dataset, context="train"):
    """Link ``dataset`` to the run as an input with the given context."""
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    tags = [InputTag(key=MLFLOW_DATASET_CONTEXT, value=context)]
    client.log_inputs(run_id, datasets=[DatasetInput(dataset=dataset._to_mlflow_entity(), tags=tags)])


def _signature(model, example):
    """The signature of ``model.predict`` on ``example``, declaring the flavor's predict_method."""
    from mlflow.models import infer_signature
    from mlflow.types.schema import ParamSchema, ParamSpec

    from .._pyfunc import PREDICT_METHOD_PARAM, available_methods

    signature = infer_signature(example, model.predict(deepcopy(example)))
    if len(available_methods(model)) > 1:
        signature.params = ParamSchema([ParamSpec(PREDICT_METHOD_PARAM, "string", "predict")])
    return signature


def log_model(model, data, config, run_id, params):
    """Log ``model`` in the mgsk flavor, with its signature and input example; return its model_id."""
    from .._flavor import log_model as log_mgsk_model

    example, signature = resolve_input_example_and_signature(
        data.get_example,
        lambda example: _signature(model, example),
        config.log_input_examples,
        config.log_model_signatures,
        _logger,
    )
    info = log_mgsk_model(
        model,
        name="model",
        signature=signature,
        input_example=example,
        registered_model_name=config.registered_model_name,
        serialization_format=config.serialization_format,
        params={key: str(value) for key, value in params.items()},
        run_id=run_id,
        # MLflow would reload the model and predict on the example: the
        # signature was just inferred by predicting on it.
        validate_serving_input=False,
    )
    return info.model_id


def render_plots(step, residuals, residual_label):
    """Start drawing the two plots in a worker thread; the result maps file names to PNG bytes."""
    global _plot_executor
    from .plots import convergence_png, weights_png

    if _plot_executor[0] != os.getpid():
        _plot_executor = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="mgsk-autolog-plots"))

    def draw():
        return {
            CONVERGENCE_PLOT: convergence_png(step.history_),
            WEIGHTS_PLOT: weights_png(residuals, step.weights_, step.outliers_, residual_label),
        }

    return _plot_executor[1].submit(draw)


def log_plots(client, run_id, images):
    """Log the plots :func:`render_plots` draws as PNG artifacts of the run."""
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
        Whether autolog created ``run``: it then holds no parameters yet,
        and got the estimator tags of ``scored`` when it was created.
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
    model_id = steps("the model", log_model, model, data, config, run_id, params) if config.log_models else None
    dataset = None
    if config.log_datasets:
        dataset = steps("the training dataset", training_dataset, data.X, data.y, run.data.tags)
    now = get_current_time_millis()
    metrics = metric_entities({**scores, **(extra_metrics or {})}, now, 0, model_id, dataset)
    if step is not None:
        metrics += gnostic_metrics(step, now, model_id, dataset)
    tags = None if run_is_new else estimator_tags(scored)
    steps("the parameters and metrics", log_run_data, client, run_id, metrics, params, tags, run_is_new)
    if dataset is not None:
        steps("the training dataset", log_dataset, client, run_id, dataset)
    if images is not None:
        steps("the plots", log_plots, client, run_id, images)
    return model_id


def log_gnostic_extras(client, run_id, step, data, config, steps):
    """Add the metrics and plots of an mgsk step to a run another integration logs."""
    images = None
    if config.log_plots:
        _, residuals, residual_label = training_scores(step, data.X, data.y, data.sample_weight)
        images = render_plots(step, residuals, residual_label)
    steps("the gnostic metrics", log_batch, client, run_id, gnostic_metrics(step, get_current_time_millis()))
    if images is not None:
        steps("the plots", log_plots, client, run_id, images)
