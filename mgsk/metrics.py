"""Gnostic metrics as plain functions, usable with ``make_scorer``.

Residuals ``r = y_true - y_pred`` enter the gnostic domain at the scale of
the *target* (``x = r / s_y``, ``s_y`` the normal-consistent MAD of
``y_true``), never at a scale fitted to the model, so two models evaluated
on the same data compare by these numbers: a model whose residuals are
smaller everywhere never has a larger entropy or a smaller fidelity.

>>> from sklearn.metrics import make_scorer
>>> from mgsk.metrics import residual_entropy
>>> scorer = make_scorer(residual_entropy, greater_is_better=False)
"""

import numpy as np
from sklearn.utils import check_consistent_length, column_or_1d
from sklearn.utils.validation import _check_sample_weight, check_array

from ._gnostic import characteristics, standardized_log_ratio
from ._irls import data_scale
from ._irls import residual_entropy as _irls_residual_entropy
from ._logistic import classification_entropy_values

__all__ = [
    "gnostic_characteristics",
    "residual_entropy",
    "mean_fidelity_score",
    "gnostic_information",
    "classification_entropy",
]


def _regression_inputs(y_true, y_pred, sample_weight):
    y_true = column_or_1d(check_array(y_true, ensure_2d=False, dtype=np.float64, input_name="y_true"))
    y_pred = column_or_1d(check_array(y_pred, ensure_2d=False, dtype=np.float64, input_name="y_pred"))
    check_consistent_length(y_true, y_pred, sample_weight)
    sample_weight = _check_sample_weight(sample_weight, y_true, dtype=np.float64, ensure_non_negative=True)
    return y_true, y_pred, sample_weight


def _weighted_characteristics(y_true, y_pred, sample_weight):
    y_true, y_pred, sample_weight = _regression_inputs(y_true, y_pred, sample_weight)
    x = standardized_log_ratio(y_true - y_pred, data_scale(y_true, sample_weight), 2.0)
    return {"x": x, **characteristics(x)}, sample_weight


def gnostic_characteristics(y_true, y_pred, sample_weight=None):
    """Gnostic characteristics of each residual, at the scale of ``y_true``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Observed targets.
    y_pred : array-like of shape (n_samples,)
        Predictions.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights entering the target scale.

    Returns
    -------
    dict of str to ndarray
        ``x`` (the gnostic log-ratio ``r / s_y``) and the characteristics
        ``f_I, h_I, f_J, h_J, p_I, I_I, e_I, e_J, re`` of each sample.

    Examples
    --------
    >>> from mgsk.metrics import gnostic_characteristics
    >>> c = gnostic_characteristics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    >>> c["f_I"].round(3)
    array([1.   , 1.   , 0.809])
    """
    return _weighted_characteristics(y_true, y_pred, sample_weight)[0]


def residual_entropy(y_true, y_pred, sample_weight=None):
    """R-Entropy ``re``: weighted mean of ``f_J - f_I = sinh x tanh x``.

    Zero for a perfect fit, growing with every residual; lower is better.
    This is ``re_`` of the regressors, evaluated on any data.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Observed targets.
    y_pred : array-like of shape (n_samples,)
        Predictions.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights.

    Returns
    -------
    float
        R-Entropy, ``>= 0``.

    Examples
    --------
    >>> from mgsk.metrics import residual_entropy
    >>> residual_entropy([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    0.0
    >>> round(residual_entropy([1.0, 2.0, 3.0], [1.0, 2.0, 4.0]), 4)
    0.1424
    """
    y_true, y_pred, sample_weight = _regression_inputs(y_true, y_pred, sample_weight)
    return _irls_residual_entropy(y_true - y_pred, data_scale(y_true, sample_weight), sample_weight)


def mean_fidelity_score(y_true, y_pred, sample_weight=None):
    """Weighted mean estimating fidelity ``f_I = sech x`` of the residuals.

    A bounded, robust goodness of fit in ``(0, 1]``: 1 for a perfect fit;
    a gross error costs a sample at most its weight. Higher is better.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Observed targets.
    y_pred : array-like of shape (n_samples,)
        Predictions.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights.

    Returns
    -------
    float
        Mean fidelity in ``[0, 1]``.

    Examples
    --------
    >>> from mgsk.metrics import mean_fidelity_score
    >>> mean_fidelity_score([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    1.0
    """
    c, sample_weight = _weighted_characteristics(y_true, y_pred, sample_weight)
    return float(np.average(c["f_I"], weights=sample_weight))


def gnostic_information(y_true, y_pred, sample_weight=None):
    """Weighted mean gnostic information ``I_I`` of the residuals (nats).

    ``ln 2`` for a perfect fit (every estimating probability is 1/2),
    falling toward 0 as the residuals grow.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Observed targets.
    y_pred : array-like of shape (n_samples,)
        Predictions.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights.

    Returns
    -------
    float
        Mean information in ``[0, ln 2]``.

    Examples
    --------
    >>> from mgsk.metrics import gnostic_information
    >>> round(gnostic_information([1.0, 2.0], [1.0, 2.0]), 4)
    0.6931
    """
    c, sample_weight = _weighted_characteristics(y_true, y_pred, sample_weight)
    return float(np.average(c["I_I"], weights=sample_weight))


def classification_entropy(y_true, y_proba, *, labels=None, sample_weight=None):
    """R-Entropy of predicted probabilities: mean ``sinh x tanh x``, ``x = ln p``.

    ``p`` is the probability given to each sample's true label (``R = p``,
    the probability against certainty). This is ``re_`` of
    :class:`~mgsk.LogisticRegressor`; lower is better.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_proba : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, columns in the order of ``labels`` (or of
        the sorted unique ``y_true``); a 1-D array is the probability of the
        second class of a binary problem.
    labels : array-like of shape (n_classes,), default=None
        The labels of the columns of ``y_proba``.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights.

    Returns
    -------
    float
        R-Entropy, ``>= 0``.

    Examples
    --------
    >>> from mgsk.metrics import classification_entropy
    >>> classification_entropy(["a", "b"], [[1.0, 0.0], [0.0, 1.0]])
    0.0
    """
    y_true = column_or_1d(y_true)
    proba = check_array(y_proba, ensure_2d=False, dtype=np.float64, input_name="y_proba")
    if proba.ndim == 1:
        proba = np.column_stack([1.0 - proba, proba])
    labels = np.unique(y_true) if labels is None else np.asarray(labels)
    check_consistent_length(y_true, proba, sample_weight)
    if proba.shape[1] != labels.shape[0]:
        raise ValueError(
            f"y_proba has {proba.shape[1]} columns but there are {labels.shape[0]} labels {labels.tolist()!r}."
        )
    lookup = {label: i for i, label in enumerate(labels.tolist())}
    missing = sorted({v for v in y_true.tolist() if v not in lookup}, key=str)
    if missing:
        raise ValueError(f"y_true has labels {missing!r} that are not in labels {labels.tolist()!r}.")
    idx = np.array([lookup[v] for v in y_true.tolist()], dtype=int)
    if np.any(proba < 0) or np.any(proba > 1):
        raise ValueError("y_proba must hold probabilities in [0, 1].")
    sample_weight = _check_sample_weight(sample_weight, y_true, dtype=np.float64, ensure_non_negative=True)
    with np.errstate(divide="ignore"):
        log_p = np.log(proba[np.arange(y_true.shape[0]), idx])
    return float(np.average(classification_entropy_values(log_p), weights=sample_weight))
