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
import uuid
from concurrent.futures import ThreadPoolExecutor
from copy import deepcopy
from dataclasses import dataclass, field

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

from .analysis import analysis_summary
from .faults import quick_requests, store_known_down
from .record import (
    FLAVOR_NAME,
    _logger,
    estimator_tags,
    gnostic_metrics,
    gnostic_step,
    metric_entities,
    training_scores,
)
from .spool import ARTIFACTS_FOLDER, MODEL_FOLDER, Spool

CONVERGENCE_PLOT = "gnostic_convergence.png"
#: Tag of the run and LoggedModel of one autologged fit: an id made before the store answers.
FIT_ID_TAG = "mgsk.autolog.fit_id"
WEIGHTS_PLOT = "gnostic_weights.png"

#: (process id, executor): a forked child cannot use its parent's threads.
_plot_executor = (None, None)


def run_tags(config):
    """The tags of a run autolog creates."""
    return {**config.extra_tags, MLFLOW_AUTOLOGGING: FLAVOR_NAME}


def _local_experiment_id():
    """The experiment a new run goes to, without asking the store (it may be down)."""
    from mlflow.environment_variables import MLFLOW_EXPERIMENT_ID, MLFLOW_EXPERIMENT_NAME
    from mlflow.tracking import fluent
    from mlflow.tracking.default_experiment import DEFAULT_EXPERIMENT_ID

    if fluent._active_experiment_id is not None:
        return fluent._active_experiment_id, None
    if MLFLOW_EXPERIMENT_ID.get():
        return MLFLOW_EXPERIMENT_ID.get(), None
    return (None, MLFLOW_EXPERIMENT_NAME.get()) if MLFLOW_EXPERIMENT_NAME.get() else (DEFAULT_EXPERIMENT_ID, None)


class FitRun:
    """The run one fit logs into, and what of it the store did not take.

    ``run`` is the MLflow run (None when it could not be created);
    ``unsent`` collects the :class:`FitRecord` s to spool.
    """

    def __init__(self, config, steps, tags):
        self.config, self.steps = config, steps
        # Names the fit's run and model before the store answers: a creation whose answer was
        # lost (the server died mid-request) is found again by this tag instead of duplicated.
        self.fit_id = uuid.uuid4().hex
        self.tags = {**tags, **run_tags(config), FIT_ID_TAG: self.fit_id}
        self.spool = Spool(steps.uri, config.spool_dir)
        self.run, self.is_new, self.unsent = None, False, []
        self.start_time = get_current_time_millis()
        self.experiment_id, self.experiment_name = None, None
        self._marker = None

    @property
    def run_id(self):
        return None if self.run is None else self.run.info.run_id

    @property
    def sending(self):
        """Whether to send to the store (else spool): a run exists and the store answers."""
        return self.run is not None and not self.steps.store_down

    def use(self, run, is_new):
        """Log into ``run``; mark it open if autolog created it; replay the spool if it holds anything."""
        from .replay import replay_in_background

        self.run, self.is_new = run, is_new
        self.steps.run_id = run.info.run_id
        self.experiment_id = run.info.experiment_id
        replay_in_background(self.steps.uri, self.config.spool_dir)  # the store answered
        if is_new:
            info = {"experiment_id": self.experiment_id, "start_time": self.start_time}
            try:
                self._marker = self.spool.open_run(self.run_id, info)
            except OSError as exc:
                _logger.debug("mgsk.autolog could not mark run %s open in the spool: %s", self.run_id, exc)

    def finish(self, status):
        """End a run autolog created; spool whatever was not sent."""
        ended = False
        if self.is_new:
            with quick_requests(self.config.silent):
                ended = self.steps("the run's end status", _end_run, status, even_if_down=True) is not None
        if self.steps.store_down and (self.unsent or self.run is None or (self.is_new and not ended)):
            end = {"end_status": status, "end_time": get_current_time_millis()} if self.run is None or self.is_new else {}
            self.steps.spooled_to = self.steps(
                "the spool entry", spool_fit, self.spool, self, end, self.unsent, even_if_down=True
            )
            ended = ended or self.steps.spooled_to is not None
        if self._marker is not None and ended:
            self.spool.close_run(self.run_id, self._marker)


def _end_run(status):
    mlflow.end_run(status)
    return True


@contextlib.contextmanager
def run_for_fit(config, steps, tags):
    """The run a fit logs into: the active one (left open), or a new one ended with the fit.

    Yields a :class:`FitRun`. A new run gets autolog's tags and ``tags`` when
    it is created, and ends FAILED when the block raises (the exception goes
    on unchanged). When the store is known to be down no run is created:
    the fit's record is spooled, and the run created when it is replayed.
    """
    fit_run = FitRun(config, steps, tags)
    active = mlflow.active_run()
    if active is not None:
        fit_run.use(active, is_new=False)
        try:
            yield fit_run
        finally:
            fit_run.finish(None)
        return
    fit_run.experiment_id, fit_run.experiment_name = _local_experiment_id()
    reason = store_known_down(steps.uri)
    if reason is not None:
        steps.known_down(reason)
    else:
        with quick_requests(config.silent):
            run = steps("the run", mlflow.start_run, tags=fit_run.tags)
        if run is not None:
            fit_run.use(run, is_new=True)
    status = RunStatus.to_string(RunStatus.FINISHED)
    try:
        yield fit_run
    except BaseException:
        status = RunStatus.to_string(RunStatus.FAILED)
        raise
    finally:
        fit_run.finish(status)


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
    """The signature of the pyfunc method on ``example``, declaring the flavor's predict_method."""
    from mlflow.models import infer_signature
    from mlflow.types.schema import ParamSchema, ParamSpec

    from .._pyfunc import PREDICT_METHOD_PARAM, available_methods, default_method

    method = default_method(model)
    signature = infer_signature(example, getattr(model, method)(deepcopy(example)))
    if len(available_methods(model)) > 1:
        signature.params = ParamSchema([ParamSpec(PREDICT_METHOD_PARAM, "string", method)])
    return signature


def model_inputs(model, data, config):
    """The input example and signature to log ``model`` with (each None when off or failing)."""
    return resolve_input_example_and_signature(
        data.get_example,
        lambda example: _signature(model, example),
        config.log_input_examples,
        config.log_model_signatures,
        _logger,
    )


def log_model(client, fit_run, record, config):
    """Create the LoggedModel (so its id is known even if the upload fails), then log into it."""
    from .._flavor import log_model as log_mgsk_model

    run_id = fit_run.run_id
    if record.model_id is None:
        params = {key: str(value) for key, value in record.params.items()}
        tags = {FIT_ID_TAG: fit_run.fit_id}
        logged = client.create_logged_model(
            fit_run.experiment_id, name="model", source_run_id=run_id, params=params, tags=tags
        )
        record.model_id = logged.model_id
    log_mgsk_model(
        record.model,
        name="model",
        signature=record.signature,
        input_example=record.example,
        registered_model_name=config.registered_model_name,
        serialization_format=config.serialization_format,
        model_id=record.model_id,
        run_id=run_id,
        # MLflow would reload the model and predict on the example: the
        # signature was just inferred by predicting on it.
        validate_serving_input=False,
    )
    return record.model_id


def submit_drawing(draw):
    """Run ``draw()`` (which returns file names and PNG bytes) in autolog's plot thread; its future."""
    global _plot_executor
    if _plot_executor[0] != os.getpid():
        _plot_executor = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="mgsk-autolog-plots"))
    return _plot_executor[1].submit(draw)


def render_plots(step, residuals, residual_label):
    """Start drawing the two plots in a worker thread; the result maps file names to PNG bytes."""
    from .plots import convergence_png, weights_png

    def draw():
        if residuals is None:
            return {CONVERGENCE_PLOT: convergence_png(step.history_)}
        return {
            CONVERGENCE_PLOT: convergence_png(step.history_),
            WEIGHTS_PLOT: weights_png(residuals, step.weights_, step.outliers_, residual_label),
        }

    return submit_drawing(draw)


def log_files(client, run_id, files):
    """Log ``files`` (a dict of artifact name to bytes) as artifacts of the run."""
    with tempfile.TemporaryDirectory() as folder:
        for name, content in files.items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(content)
        client.log_artifacts(run_id, folder)


@dataclass
class FitRecord:
    """What one fit sends to its run, kept in memory until sent or spooled.

    ``metrics(model_id)`` builds the metric entities, linked to the model
    once its id is known; ``images`` is the future of the plots;
    ``children`` the child runs of a search (see :func:`.search.child_runs`),
    whose best candidate is linked to ``model_id``.
    """

    params: dict
    tags: dict
    metrics: object
    dataset: object = None
    images: object = None
    files: dict = field(default_factory=dict)
    model: object = None
    example: object = None
    signature: object = None
    model_id: str = None
    children: list = field(default_factory=list)

    def artifacts(self):
        """All artifact files: the plots (waiting for them) and the other files."""
        return {**(self.images.result() if self.images is not None else {}), **self.files}


def send(client, fit_run, record, config, steps, run_is_new):
    """Send ``record`` to the run; return the model_id. Queue it for the spool if the store fails."""
    run_id = fit_run.run_id
    if record.model is not None:
        steps("the model", log_model, client, fit_run, record, config)
    metrics = record.metrics(record.model_id)
    steps("the parameters and metrics", log_run_data, client, run_id, metrics, record.params, record.tags, run_is_new)
    if record.dataset is not None:
        steps("the training dataset", log_dataset, client, run_id, record.dataset)
    if record.images is not None or record.files:
        steps("the plots" if record.images is not None else "the artifacts", log_files, client, run_id, record.artifacts())
    if steps.store_down:
        fit_run.unsent.append(record)
    return record.model_id


def log_fitted_model(client, fit_run, model, scored, data, config, steps, *, params, extra_metrics=None, files=None):
    """Log everything about a fitted model into the fit's run, or spool it.

    Parameters
    ----------
    client : mlflow.MlflowClient
    fit_run : FitRun
        The run to log into (autolog's own, or the user's), or to spool for.
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
    extra_metrics : dict, optional
        Step-0 metrics to add (e.g. ``best_cv_score``).
    files : dict, optional
        More artifacts, name to bytes (e.g. ``cv_results.csv``).

    Returns
    -------
    str or None
        The ``model_id`` of the logged model.
    """
    step = gnostic_step(model)
    analysis = analysis_summary(model, data, config.log_plots)
    if analysis is not None:  # a distribution or an outlier detector: its numbers per feature
        scores, images, files = analysis.metrics, analysis.images, {**analysis.files, **(files or {})}
    else:
        scores, residuals, residual_label = {}, None, None  # no training data held (a Dask fit's)
        if data.X is not None:
            scores, residuals, residual_label = training_scores(scored, data.X, data.y, data.sample_weight)
        images = render_plots(step, residuals, residual_label) if config.log_plots and step is not None else None
    example = signature = None
    if config.log_models:
        example, signature = model_inputs(model, data, config)
    dataset = None
    if config.log_datasets and data.X is not None:
        source_tags = fit_run.run.data.tags if fit_run.run is not None else fit_run.tags
        dataset = steps("the training dataset", training_dataset, data.X, data.y, source_tags, even_if_down=True)
    now = get_current_time_millis()

    def metrics(model_id):
        entities = metric_entities({**scores, **(extra_metrics or {})}, now, 0, model_id, dataset)
        return entities + (gnostic_metrics(step, now, model_id, dataset) if step is not None else [])

    record = FitRecord(
        params=params, tags=None if fit_run.is_new else estimator_tags(scored), metrics=metrics,
        dataset=dataset, images=images, files=dict(files or {}), model=model if config.log_models else None,
        example=example, signature=signature,
    )  # fmt: skip
    if not fit_run.sending:
        fit_run.unsent.append(record)
        return None
    return send(client, fit_run, record, config, steps, fit_run.is_new)


def log_gnostic_extras(client, fit_run, step, data, config, steps):
    """Add the metrics and plots of an mgsk step to a run another integration logs."""
    now = get_current_time_millis()
    analysis = analysis_summary(step, data, config.log_plots)
    if analysis is not None:
        record = FitRecord(
            params={}, tags=None, metrics=lambda model_id: metric_entities(analysis.metrics, now),
            images=analysis.images, files=analysis.files,
        )  # fmt: skip
    else:
        images = None
        if config.log_plots:
            _, residuals, residual_label = training_scores(step, data.X, data.y, data.sample_weight)
            images = render_plots(step, residuals, residual_label)
        record = FitRecord(params={}, tags=None, metrics=lambda model_id: gnostic_metrics(step, now), images=images)
    if not fit_run.sending:
        fit_run.unsent.append(record)
        return
    steps("the gnostic metrics", log_batch, client, fit_run.run_id, record.metrics(None))
    if record.images is not None or record.files:
        steps("the plots", log_files, client, fit_run.run_id, record.artifacts())
    if steps.store_down:
        fit_run.unsent.append(record)


# ------------------------------------------------------------------ spool

#: Stands for the entry's LoggedModel in spooled metrics (its id is known only once created).
MODEL_PLACEHOLDER = "@model"


def _metric_dict(metric):
    return {
        "key": metric.key, "value": metric.value, "timestamp": metric.timestamp, "step": metric.step,
        "model_id": metric.model_id, "dataset_name": metric.dataset_name, "dataset_digest": metric.dataset_digest,
    }  # fmt: skip


def _dataset_dict(dataset, context):
    entity = dataset._to_mlflow_entity()
    return {
        "name": entity.name, "digest": entity.digest, "source_type": entity.source_type,
        "source": entity.source, "schema": entity.schema, "profile": entity.profile, "context": context,
    }  # fmt: skip


def _context_tags(fit_run):
    """The tags the replay creates the run with: those ``mlflow.start_run`` would have added too
    (user, source, git commit), resolved now, in the process that fitted."""
    if fit_run.run is not None:
        return fit_run.tags
    from mlflow.tracking.context import registry

    return registry.resolve_tags(fit_run.tags)


def spool_fit(spool, fit_run, end, records):
    """Write the fit's unsent records (and its run's end) as one spool entry; return its path."""
    from .._flavor import save_model

    params, tags, metrics, datasets, files, model, search = {}, {}, [], [], {}, None, None
    for record in records:
        params.update({key: str(value) for key, value in record.params.items()})
        tags.update(record.tags or {})
        linked = record.model_id or (MODEL_PLACEHOLDER if record.model is not None else None)
        metrics += [_metric_dict(metric) for metric in record.metrics(linked)]
        if record.dataset is not None:
            datasets.append(_dataset_dict(record.dataset, "train"))
        files.update(record.artifacts())
        if record.model is not None:
            model = record
        if record.children:
            search = {"children": record.children, "model_id": record.model_id}
    if search is not None and model is not None:  # the search's model is in this entry too
        search["model_id"] = model.model_id or MODEL_PLACEHOLDER
    config = fit_run.config

    def write_payload(folder):
        if files:
            (folder / ARTIFACTS_FOLDER).mkdir()
            for name, content in files.items():
                (folder / ARTIFACTS_FOLDER / name).write_bytes(content)
        if model is not None:
            save_model(
                model.model, folder / MODEL_FOLDER, signature=model.signature, input_example=model.example,
                serialization_format=config.serialization_format,
            )  # fmt: skip

    record = {
        "version": 1,
        "tracking_uri": spool.tracking_uri,
        "registry_uri": mlflow.get_registry_uri(),
        "fit_id": fit_run.fit_id,
        "created": get_current_time_millis(),
        "reason": f"{type(fit_run.steps.error).__name__}: {fit_run.steps.error}"[:1000],
        "experiment_id": fit_run.experiment_id,
        "experiment_name": fit_run.experiment_name,
        "run": {
            "run_id": fit_run.run_id, "start_time": fit_run.start_time, "tags": _context_tags(fit_run),
            "owned": fit_run.is_new or fit_run.run is None, **end,
        },
        "params": params,
        "tags": tags,
        "metrics": metrics,
        "datasets": datasets,
        "artifacts": sorted(files),
        "search": search,
        "model": None if model is None else {
            "model_id": model.model_id, "name": "model", "params": {k: str(v) for k, v in model.params.items()},
            "registered_model_name": config.registered_model_name,
            "serialization_format": config.serialization_format,
        },
    }  # fmt: skip
    return str(spool.write_entry(record, write_payload))
