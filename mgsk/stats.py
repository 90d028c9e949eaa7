"""Robust gnostic statistics of one or two variables, as plain functions.

Each function fits the estimating global distribution function (EGDF) of
its variable(s) -- see :ref:`distributions` -- and reads the statistic off
it. ``sample_weight`` holds frequency weights: a weight of 2 counts the
value twice. The results are deterministic.

>>> from mgsk import stats
>>> round(stats.location([1.0, 2.0, 3.0, 50.0]), 2)
2.0
"""

import numpy as np
from scipy.optimize import brentq
from sklearn.utils import check_consistent_length, column_or_1d
from sklearn.utils.validation import check_array

from ._base import fit_sample_weight
from ._distribution import fit_function
from ._distribution_math import distribution, from_gnostic
from ._gnostic import sech

__all__ = ["location", "median", "scale", "variance", "covariance", "correlation"]


def _variable(x, sample_weight, name="x"):
    x = column_or_1d(check_array(x, ensure_2d=False, dtype=np.float64, input_name=name))
    w = fit_sample_weight(sample_weight, x.reshape(-1, 1))
    return x, w


def _fidelity(x, w):
    """Location and each value's estimating fidelity ``sech(2 (u - u0) / S)``."""
    fit = fit_function(x, w)
    u = (x - fit["center"]) / fit["spread"]
    return fit["location"], sech(2.0 * (u - fit["u0"]) / fit["scale"])


def location(x, sample_weight=None):
    """Gnostic location (gnostic mean) ``Z0``: the mode of the EGDF density.

    Robust: a gross error has estimating fidelity near 0 and hardly moves it.

    Parameters
    ----------
    x : array-like of shape (n_samples,)
        Values.
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency weights.

    Returns
    -------
    float
        ``Z0`` in the units of ``x``.

    Examples
    --------
    >>> from mgsk.stats import location
    >>> round(location([9.8, 10.0, 10.1, 10.3, 99.0]), 2)
    10.05
    """
    x, w = _variable(x, sample_weight)
    return fit_function(x, w)["location"]


def median(x, sample_weight=None):
    """Gnostic median: the value where the EGDF equals 1/2.

    Parameters
    ----------
    x : array-like of shape (n_samples,)
        Values.
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency weights.

    Returns
    -------
    float
        The median in the units of ``x``.

    Examples
    --------
    >>> from mgsk.stats import median
    >>> round(median([1.0, 2.0, 3.0, 4.0]), 6)
    2.5
    """
    x, w = _variable(x, sample_weight)
    fit = fit_function(x, w)
    centers, weights = fit["data"][:, 0], fit["data"][:, 1]

    def gap(v):
        return distribution(np.array([v]), centers, weights, fit["scale"], "egdf")[0][0] - 0.5

    lo, hi = centers[0] - fit["scale"], centers[-1] + fit["scale"]
    while gap(lo) > 0:
        lo -= hi - lo
    while gap(hi) < 0:
        hi += hi - lo
    u = brentq(gap, lo, hi, xtol=1e-12 * (1.0 + abs(lo) + abs(hi)))
    return float(from_gnostic(np.array(u), (-np.inf, np.inf), fit["center"], fit["spread"]))


def scale(x, sample_weight=None):
    """Gnostic scale of the EGDF, in the units of ``x``.

    ``S`` fitted to the empirical distribution function times the unit of
    the data (their weighted normal-consistent MAD): each value enters the
    EGDF through ``2 (Z - Z_i) / scale``.

    Parameters
    ----------
    x : array-like of shape (n_samples,)
        Values.
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency weights.

    Returns
    -------
    float
        A positive scale.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk.stats import scale
    >>> x = np.linspace(-1.0, 1.0, 101)
    >>> bool(np.isclose(scale(3.0 * x + 7.0), 3.0 * scale(x)))
    True
    """
    x, w = _variable(x, sample_weight)
    fit = fit_function(x, w)
    return fit["scale"] * fit["spread"]


def variance(x, sample_weight=None):
    """Gnostic variance: the fidelity-weighted mean square deviation from ``Z0``.

    ``sum w_i f_i^2 (x_i - Z0)^2 / sum w_i f_i^2`` with ``f_i`` the
    estimating fidelity of ``x_i`` (weight case E1). Gross errors get
    ``f_i -> 0``; it is not scaled to agree with the variance of a normal
    sample (for one it is about 0.6 of it).

    Parameters
    ----------
    x : array-like of shape (n_samples,)
        Values.
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency weights.

    Returns
    -------
    float
        A non-negative variance in squared units of ``x``.

    Examples
    --------
    >>> from mgsk.stats import variance
    >>> round(variance([-1.0, 0.0, 1.0]), 3), round(variance([-1.0, 0.0, 1.0, 1e6]), 3)
    (0.46, 0.552)
    """
    return covariance(x, x, sample_weight)


def _paired(x, y, sample_weight):
    x, w = _variable(x, sample_weight)
    y = column_or_1d(check_array(y, ensure_2d=False, dtype=np.float64, input_name="y"))
    check_consistent_length(x, y)
    x0, fx = _fidelity(x, w)
    y0, fy = _fidelity(y, w)
    v = w * fx * fy
    if not v.sum() > 0:
        v = w
    return x - x0, y - y0, v


def covariance(x, y, sample_weight=None):
    """Gnostic covariance of two variables.

    ``sum v_i (x_i - X0)(y_i - Y0) / sum v_i`` with ``v_i = w_i f_{x,i}
    f_{y,i}``: a pair counts by the product of the estimating fidelities of
    its two values, so a gross error in either leaves it out.
    ``covariance(x, x)`` is :func:`variance`.

    Parameters
    ----------
    x, y : array-like of shape (n_samples,)
        Paired values.
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency weights.

    Returns
    -------
    float
        The covariance in units of ``x`` times units of ``y``.

    Examples
    --------
    >>> from mgsk.stats import covariance
    >>> x = [1.0, 2.0, 3.0, 4.0, 5.0]
    >>> round(covariance(x, [2.0, 4.0, 6.0, 8.0, 10.0]), 3) == round(2 * covariance(x, x), 3)
    True
    """
    dx, dy, v = _paired(x, y, sample_weight)
    return float(v @ (dx * dy) / v.sum())


def correlation(x, y, sample_weight=None):
    """Gnostic correlation of two variables, in ``[-1, 1]``.

    The covariance of :func:`covariance` over the square root of the two
    variances taken with the same pair weights ``v_i``, so that the
    Cauchy-Schwarz inequality keeps it in ``[-1, 1]``.

    Parameters
    ----------
    x, y : array-like of shape (n_samples,)
        Paired values.
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency weights.

    Returns
    -------
    float
        The correlation (0 when a variable is constant).

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk.stats import correlation
    >>> x = np.linspace(0.0, 1.0, 50)
    >>> y = 2.0 * x + 1.0
    >>> y[0] = 100.0  # a gross error
    >>> round(correlation(x, y), 4), round(float(np.corrcoef(x, y)[0, 1]), 4)
    (0.999, -0.2019)
    """
    dx, dy, v = _paired(x, y, sample_weight)
    sxx, syy = v @ (dx * dx), v @ (dy * dy)
    if not (sxx > 0 and syy > 0):
        return 0.0
    return float(np.clip(v @ (dx * dy) / np.sqrt(sxx * syy), -1.0, 1.0))
