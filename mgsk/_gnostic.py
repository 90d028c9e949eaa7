"""The mathematics of gnostic estimation, as pure vectorised functions.

Everything here works on the *gnostic log-ratio* ``x = (2/S) ln|R|`` of a
datum ``Z`` against a reference ``Z0`` (``R = Z / Z0``) at scale ``S``
(Kovanic & Humber, *Mathematical Gnostics*, 2015). Additive data such as
residuals ``r`` enter through ``Z = exp(u)`` with a standardised value
``u = r / sigma``, so that ``ln R = u - u0`` never needs an exponential.

Every characteristic is a hyperbolic function of ``x``:

=====  ========================  ==========================  ==============
name   meaning                   formula                     range
=====  ========================  ==========================  ==============
f_I    estimating fidelity       sech x                      (0, 1]
h_I    estimating irrelevance    tanh x                      (-1, 1)
f_J    quantifying fidelity      cosh x                      [1, inf)
h_J    quantifying irrelevance   sinh x                      R
p_I    estimating probability    (1 - h_I) / 2               [0, 1]
I_I    information               binary entropy of p_I       [0, ln 2]
e_I    estimating entropy        1 - f_I                     [0, 1)
e_J    quantifying entropy       f_J - 1                     [0, inf)
re     residual entropy          f_J - f_I = sinh x tanh x   [0, inf)
=====  ========================  ==========================  ==============

``x`` is clipped to ``[-X_MAX, X_MAX]`` so that no function overflows,
whatever finite residual and scale it came from.

The scale ``S`` solves the local scale equation ``sin(s) = F s`` for
``s`` in ``(0, pi)``, ``S = 2 s / pi``, where ``F`` is the (weighted) mean
estimating fidelity of the data at ``S = 1``.
"""

import math

import numpy as np

#: Largest |x| used: cosh(300) ~ 1e130, so even products of two
#: characteristics stay finite in float64.
X_MAX = 300.0

#: Smallest scale the scale equation may return (a floor also used by the
#: published implementation).
S_MIN = 0.01

FILTERING_CASES = ("E1", "E2", "E3", "Q1", "Q2", "Q3")


def gnostic_x(log_ratio, S):
    """Return ``x = (2/S) ln|R|`` from ``ln R``, clipped to ``±X_MAX``.

    Parameters
    ----------
    log_ratio : array-like
        ``ln R``, the logarithm of the datum over its reference; may hold
        ``±inf`` (an infinitely bad datum), never NaN.
    S : float
        Gnostic scale, ``S > 0``.

    Returns
    -------
    x : ndarray
        The gnostic log-ratio, finite.

    Examples
    --------
    >>> from mgsk._gnostic import gnostic_x
    >>> gnostic_x([0.0, 0.5, 1e308], S=1.0)
    array([  0.,   1., 300.])
    """
    with np.errstate(over="ignore"):
        x = np.asarray(log_ratio, dtype=float) * (2.0 / S)
    return np.clip(x, -X_MAX, X_MAX)


def standardized_log_ratio(residuals, sigma, S):
    """Return ``x`` for additive data: ``ln R = r / sigma`` at scale ``S``.

    Computed without overflow for any finite residual and positive
    ``sigma``: a ratio that overflows becomes ``±X_MAX``.

    Parameters
    ----------
    residuals : array-like
        Additive deviations ``r`` from the reference.
    sigma : float
        Positive standardising scale of the residuals.
    S : float
        Gnostic scale, ``S > 0``.

    Returns
    -------
    x : ndarray
        The gnostic log-ratio, finite.

    Examples
    --------
    >>> from mgsk._gnostic import standardized_log_ratio
    >>> standardized_log_ratio([1e300, -1e-300], sigma=1e-300, S=2.0)
    array([300.,  -1.])
    """
    with np.errstate(over="ignore", under="ignore"):
        u = np.asarray(residuals, dtype=float) / sigma
    return gnostic_x(u, S)


def sech(x):
    """Hyperbolic secant, stable for any float (no overflow).

    Parameters
    ----------
    x : array-like
        Argument.

    Returns
    -------
    ndarray
        ``1 / cosh(x)`` in ``[0, 1]``.

    Examples
    --------
    >>> from mgsk._gnostic import sech
    >>> sech([0.0, 1000.0])
    array([1., 0.])
    """
    a = np.abs(np.asarray(x, dtype=float))
    with np.errstate(under="ignore"):
        e = np.exp(-a)
        return 2.0 * e / (1.0 + e * e)


def characteristics(x):
    """All gnostic characteristics of the gnostic log-ratios ``x``.

    Parameters
    ----------
    x : array-like
        Gnostic log-ratios (clipped to ``±X_MAX`` first).

    Returns
    -------
    dict of str to ndarray
        Keys ``f_I, h_I, f_J, h_J, p_I, I_I, e_I, e_J, re`` (see the module
        docstring for their formulas and ranges).

    Examples
    --------
    >>> from mgsk._gnostic import characteristics
    >>> c = characteristics([0.0])
    >>> float(c["f_I"][0]), float(c["re"][0]), round(float(c["I_I"][0]), 4)
    (1.0, 0.0, 0.6931)
    """
    x = np.clip(np.asarray(x, dtype=float), -X_MAX, X_MAX)
    f_i = sech(x)
    h_i = np.tanh(x)
    f_j = np.cosh(x)
    h_j = np.sinh(x)
    p_i = estimating_probability(x)
    return {
        "f_I": f_i,
        "h_I": h_i,
        "f_J": f_j,
        "h_J": h_j,
        "p_I": p_i,
        "I_I": information(x),
        # 1 - sech x and cosh x - 1 lose all digits near 0; these forms keep them.
        "e_I": estimating_entropy(x),
        "e_J": 2.0 * np.sinh(x / 2.0) ** 2,
        "re": h_j * h_i,
    }


def estimating_entropy(x):
    """Estimating entropy ``e_I = 1 - sech x``, exact near ``x = 0``.

    Parameters
    ----------
    x : array-like
        Gnostic log-ratios.

    Returns
    -------
    ndarray
        Entropies in ``[0, 1)``.

    Examples
    --------
    >>> from mgsk._gnostic import estimating_entropy
    >>> estimating_entropy([1e-10])
    array([5.e-21])
    """
    x = np.clip(np.asarray(x, dtype=float), -X_MAX, X_MAX)
    # With e = exp(-|x|): 1 - sech x = (1 - e)^2 / (1 + e^2), and expm1 gives
    # 1 - e to full precision.
    one_minus_e = -np.expm1(-np.abs(x))
    e = 1.0 - one_minus_e
    return one_minus_e**2 / (1.0 + e * e)


def estimating_probability(x):
    """``p_I = (1 - tanh x) / 2``, computed as ``1 / (1 + exp(2x))``.

    Parameters
    ----------
    x : array-like
        Gnostic log-ratios.

    Returns
    -------
    ndarray
        Probabilities in ``[0, 1]``.

    Examples
    --------
    >>> from mgsk._gnostic import estimating_probability
    >>> estimating_probability([0.0])
    array([0.5])
    """
    x = np.clip(np.asarray(x, dtype=float), -X_MAX, X_MAX)
    with np.errstate(under="ignore"):
        return 0.5 * (1.0 - np.tanh(x))


def information(x):
    """Gnostic information ``I_I``: the binary entropy of ``p_I`` (nats).

    Computed in log space: ``ln p = -softplus(2x)`` and
    ``ln(1 - p) = -softplus(-2x)``, so it is exact for tiny probabilities.

    Parameters
    ----------
    x : array-like
        Gnostic log-ratios.

    Returns
    -------
    ndarray
        Information in ``[0, ln 2]``.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._gnostic import information
    >>> bool(np.isclose(information([0.0])[0], np.log(2)))
    True
    """
    # Even in x: computing from |x| makes I(x) == I(-x) exactly.
    x = np.minimum(np.abs(np.asarray(x, dtype=float)), X_MAX)
    p = estimating_probability(x)
    log_p = -np.logaddexp(0.0, 2.0 * x)
    log_q = -np.logaddexp(0.0, -2.0 * x)
    return -(p * log_p + (1.0 - p) * log_q)


def filtering_weight(x, case="E2"):
    """IRLS filtering weight of a gnostic error function (Kovanic, tab. 19.2).

    Parameters
    ----------
    x : array-like
        Gnostic log-ratios.
    case : {"E1", "E2", "E3", "Q1", "Q2", "Q3"}, default="E2"
        ``E*`` are the bounded (robust) estimating cases, ``Q*`` the
        unbounded quantifying ones.

    Returns
    -------
    ndarray
        Non-negative weights.

    Examples
    --------
    >>> from mgsk._gnostic import filtering_weight
    >>> filtering_weight([0.0, 2.0], case="E2").round(4)
    array([1.    , 0.2658])
    """
    x = np.clip(np.asarray(x, dtype=float), -X_MAX, X_MAX)
    if case == "E1":
        return sech(x) ** 2
    if case == "E2":
        return sech(x)
    if case == "E3":
        return np.sqrt(np.cosh(x))
    if case == "Q1":
        return np.cosh(x)
    if case == "Q2":
        return np.ones_like(x)
    if case == "Q3":
        return np.sqrt(sech(x))
    raise ValueError(f"case must be one of {FILTERING_CASES}, got {case!r}.")


def mean_fidelity(log_ratio, weights=None):
    """Mean estimating fidelity at ``S = 1``: ``F = mean sech(2 ln R)``.

    Parameters
    ----------
    log_ratio : array-like
        ``ln R`` of each datum.
    weights : array-like or None
        Non-negative weights (a sample weighting); ``None`` for equal ones.

    Returns
    -------
    float
        ``F`` in ``[0, 1]``.

    Examples
    --------
    >>> from mgsk._gnostic import mean_fidelity
    >>> mean_fidelity([0.0, 0.0])
    1.0
    """
    f = sech(gnostic_x(log_ratio, 1.0))
    return float(np.average(f, weights=weights))


def scale_from_fidelity(F, tol=1e-12):
    """Solve the local scale equation ``sin(s) = F s`` and return ``S = 2s/pi``.

    ``sin(s)/s`` falls monotonically from 1 to 0 on ``(0, pi)``, so the root
    is unique. Newton steps are kept inside a shrinking bracket, which
    makes the iteration converge for every ``F`` (bisection when a Newton
    step would leave it).

    Parameters
    ----------
    F : float
        Mean estimating fidelity in ``[0, 1]``.
    tol : float, default=1e-12
        Absolute tolerance on ``s``.

    Returns
    -------
    float
        ``S`` in ``[S_MIN, 2]``: ``F -> 1`` (tight data) gives ``S -> 0``,
        ``F -> 0`` (spread data) gives ``S -> 2``.

    Examples
    --------
    >>> from mgsk._gnostic import scale_from_fidelity
    >>> round(float(scale_from_fidelity(0.5)), 6)
    1.206709
    """
    F = float(F)
    if not F < 1.0:
        return S_MIN
    if not F > 0.0:
        return 2.0
    # Scalar math (the math module): a numpy call per step costs more than the step.
    lo, hi = 0.0, math.pi
    # sin(s)/s ~ 1 - s^2/6 near 0 and ~ (pi - s)/pi near pi: start from the
    # better of the two local models.
    s = math.sqrt(6.0 * (1.0 - F)) if F > 0.5 else math.pi * (1.0 - F)
    s = min(max(s, tol), math.pi - tol)
    for _ in range(200):
        g = math.sin(s) - F * s
        if g > 0:
            lo = s
        else:
            hi = s
        dg = math.cos(s) - F
        step = g / dg if dg != 0 else math.inf
        s_new = s - step
        if not lo < s_new < hi:
            s_new = 0.5 * (lo + hi)
        if abs(s_new - s) <= tol:
            s = s_new
            break
        s = s_new
    return float(max(2.0 * s / np.pi, S_MIN))


def gnostic_scale(log_ratio, weights=None):
    """The gnostic scale ``S`` of data given as ``ln R``.

    Parameters
    ----------
    log_ratio : array-like
        ``ln R`` of each datum.
    weights : array-like or None
        Non-negative weights entering ``F`` as a weighted mean.

    Returns
    -------
    float
        ``S`` in ``[S_MIN, 2]``.

    Examples
    --------
    >>> from mgsk._gnostic import gnostic_scale
    >>> round(float(gnostic_scale([-0.1, 0.1])), 4)
    0.2194
    """
    return scale_from_fidelity(mean_fidelity(log_ratio, weights))


def residual_entropy_values(residuals, sigma):
    """Per-sample residual entropy ``sinh x tanh x`` at ``x = r / sigma``.

    This is the quantity behind ``re_``: with ``sigma`` fixed by the data
    (not by the model) it grows with ``|r|``, so two models fitted to the
    same data compare by its mean.

    Parameters
    ----------
    residuals : array-like
        Residuals ``y - y_pred``.
    sigma : float
        Positive scale of the data.

    Returns
    -------
    ndarray
        Non-negative residual entropies.

    Examples
    --------
    >>> from mgsk._gnostic import residual_entropy_values
    >>> residual_entropy_values([0.0, 1.0], sigma=1.0).round(4)
    array([0.    , 0.8951])
    """
    x = standardized_log_ratio(residuals, sigma, 2.0)
    # sinh x tanh x = sinh^2 x / cosh x = (1 - e^2)^2 / (2 e (1 + e^2)), e = exp(-|x|):
    # one exponential, finite for |x| <= X_MAX.
    a = np.abs(x)
    one_minus_e2 = -np.expm1(-2.0 * a)
    e = np.exp(-a)
    return one_minus_e2**2 / (2.0 * e * (2.0 - one_minus_e2))
