"""What autolog records about one fit: its settings, data, scores and metrics (no I/O here)."""

import logging
from copy import deepcopy
from dataclasses import dataclass

import numpy as np
from mlflow.entities import Metric
from mlflow.utils.autologging_utils import INPUT_EXAMPLE_SAMPLE_ROWS
from sklearn.base import is_classifier

from ..._base import GnosticMixin
from .context import last_steps

_logger = logging.getLogger("mgsk.mlflow.autolog")

FLAVOR_NAME = "mgsk"
TRAINING_PREFIX = "training_"


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
    spool_dir: str | None = None


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
        """The input example (for ``resolve_input_example_and_signature``)."""
        if self.example_error is not None:
            raise self.example_error
        return self.example


def fit_arguments(args, kwargs):
    """``(X, y, sample_weight)`` of a ``fit(X, y=None, sample_weight=None, ...)`` call."""
    values = dict(zip(("X", "y", "sample_weight"), args))
    values.update(kwargs)
    return values.get("X"), values.get("y"), values.get("sample_weight")


def gnostic_step(model):
    """The mgsk estimator that ``model`` (itself, a Pipeline or a search) fits last, or None."""
    return next((step for step in last_steps(model) if isinstance(step, GnosticMixin)), None)


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
        binary = len(classes) == 2
        scores["roc_auc"] = _original_metric("roc_auc_score")(
            y, proba[:, 1] if binary else proba, average="weighted", multi_class="ovo",
            labels=None if binary else classes, sample_weight=sample_weight,
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
        ``y - y_pred`` for a regressor, ``-log p(true class)`` for a classifier.
    residual_label : str
        What ``residuals`` are, for the axis of the weights plot.
    """
    compute = _classification_scores if is_classifier(model) else _regression_scores
    scores, residuals, label = compute(model, X, y, sample_weight)
    return {TRAINING_PREFIX + name: float(value) for name, value in scores.items()}, residuals, label


def metric_entities(values, timestamp, step=0, model_id=None, dataset=None):
    """``values`` as MLflow Metric entities, linked to ``model_id`` and ``dataset`` when given."""
    return [
        Metric(
            key, float(value), timestamp, int(step), model_id=model_id,
            dataset_name=dataset and dataset.name, dataset_digest=dataset and dataset.digest,
        )  # fmt: skip
        for key, value in values.items()
    ]


def gnostic_metrics(step, timestamp, model_id=None, dataset=None):
    """The metrics of the fit of ``step``: re, n_iter, scale, and re and loss per iteration.

    The per-iteration values have ``step`` = iteration; the last record
    describes the fitted model, so the run's latest ``re`` is ``re_``.
    """
    metrics = []
    for record in step.history_:
        values = {"re": record["re"], "loss": record["loss"]}
        metrics += metric_entities(values, timestamp, record["iteration"], model_id, dataset)
    metrics += metric_entities({"n_iter": step.n_iter_, "scale": step.scale_}, timestamp + 1, 0, model_id, dataset)
    return metrics
