"""The numerics of the gnostic distribution functions, as pure functions.

Data ``Z_i`` with weights ``w_i`` live in the gnostic domain as ``u_i = ln z_i``:
additive data on the real line as ``u = (Z - c) / sigma`` (``c`` the weighted
median, ``sigma`` the weighted normal-consistent MAD: ``z = exp(u)``), data
with finite bounds ``LB < Z < UB`` as ``u = ln((Z - LB) / (UB - Z))``. At a
point ``v`` and scale ``S`` each datum has the log-ratio
``x_i = (2 / S)(v - u_i)``; with ``a, b`` the weighted means of
``sech x_i, tanh x_i`` (estimating) or of ``cosh x_i, sinh x_i``
(quantifying) the four functions are

========  =====================================  ======================
kind      distribution function                  for one datum
========  =====================================  ======================
``eldf``  ``(1 + b) / 2``                        ``(1 + tanh x) / 2``
``egdf``  ``(1 + b / sqrt(a^2 + b^2)) / 2``      ``(1 + tanh x) / 2``
``qldf``  ``(1 + b / sqrt(1 + b^2)) / 2``        ``(1 + tanh x) / 2``
``qgdf``  ``(1 + b / a) / 2``                    ``(1 + tanh x) / 2``
========  =====================================  ======================

With ``A = sum w_i e^{x_i}`` and ``B = sum w_i e^{-x_i}`` the quantifying
means are ``a = (A + B) / 2W`` and ``b = (A - B) / 2W``, and ``ln A``, ``ln B``
are linear in ``v``: the quantifying functions cost O(n) to fit and O(1) per
point, computed in log space. The estimating ones cost O(G) per point, where
``G <= n`` is the number of occupied cells of a linear binning of the
``u_i`` at a width ``S / 64`` (a weight-preserving, mean-preserving
compression whose relative error is below 1e-4; the data themselves when
they are spread). Points are evaluated in blocks: O(G·m) time, O(G + m)
memory.

Densities are returned with respect to ``u``; multiply by ``du/dZ``
(:func:`jacobian`) for the density of ``Z``.
"""

import numpy as np

KINDS = ("egdf", "eldf", "qgdf", "qldf")
#: Cells per unit of S in the linear binning of the data.
CELLS_PER_SCALE = 64
#: Matrix elements per block of an evaluation (bounds the extra memory).
BLOCK_ELEMENTS = 1 << 18
#: Range of S searched when the scale is fitted (units of sigma).
S_RANGE = (0.02, 50.0)
#: Largest |key| of a binning cell: beyond it cells are exact float integers no more.
_MAX_KEY = 2.0**52


def to_gnostic(Z, bounds, center, spread):
    """Map data ``Z`` to the gnostic domain ``u = ln z``.

    Parameters
    ----------
    Z : ndarray
        Data.
    bounds : tuple of float
        ``(LB, UB)``; ``(-inf, inf)`` for additive data on the real line,
        one infinite bound for ``z = Z - LB`` or ``z = 1 / (UB - Z)``.
    center, spread : float
        Location and positive unit of additive data (ignored with finite
        bounds).

    Returns
    -------
    ndarray
        ``u``; ``-inf`` / ``+inf`` at or beyond finite bounds.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._distribution_math import to_gnostic
    >>> to_gnostic(np.array([1.0, 3.0]), (-np.inf, np.inf), 1.0, 2.0)
    array([0., 1.])
    >>> to_gnostic(np.array([0.5]), (0.0, 1.0), 0.0, 1.0)
    array([0.])
    """
    Z = np.asarray(Z, dtype=float)
    lb, ub = bounds
    if np.isinf(lb) and np.isinf(ub):
        return (Z - center) / spread
    with np.errstate(divide="ignore", invalid="ignore"):
        # One infinite bound: z = Z - LB or z = 1 / (UB - Z).
        u = (np.log(Z - lb) if np.isfinite(lb) else 0.0) - (np.log(ub - Z) if np.isfinite(ub) else 0.0)
    u = np.where(Z <= lb, -np.inf, u)
    return np.where(Z >= ub, np.inf, u)


def from_gnostic(u, bounds, center, spread):
    """Inverse of :func:`to_gnostic`.

    Parameters
    ----------
    u : ndarray
        Values in the gnostic domain.
    bounds : tuple of float
        ``(LB, UB)``.
    center, spread : float
        Location and unit of additive data.

    Returns
    -------
    ndarray
        Data values ``Z``.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._distribution_math import from_gnostic
    >>> from_gnostic(np.array([0.0]), (0.0, 1.0), 0.0, 1.0)
    array([0.5])
    """
    u = np.asarray(u, dtype=float)
    lb, ub = bounds
    if np.isinf(lb) and np.isinf(ub):
        return center + spread * u
    if np.isinf(ub):
        return lb + np.exp(u)
    if np.isinf(lb):
        return ub - np.exp(-u)
    # Z = (LB + UB e^u) / (1 + e^u), written with the logistic function.
    p = 0.5 * (1.0 + np.tanh(0.5 * u))
    return lb + (ub - lb) * p


def jacobian(Z, bounds, spread):
    """``du/dZ`` at ``Z``: the factor from a density of ``u`` to one of ``Z``.

    Parameters
    ----------
    Z : ndarray
        Data values.
    bounds : tuple of float
        ``(LB, UB)``.
    spread : float
        Unit of additive data.

    Returns
    -------
    ndarray
        Non-negative factors (0 outside finite bounds).

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._distribution_math import jacobian
    >>> jacobian(np.array([0.5, 2.0]), (0.0, 1.0), 1.0)
    array([4., 0.])
    """
    Z = np.asarray(Z, dtype=float)
    lb, ub = bounds
    if np.isinf(lb) and np.isinf(ub):
        return np.full_like(Z, 1.0 / spread)
    inside = (Z > lb) & (Z < ub)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (1.0 / (Z - lb) if np.isfinite(lb) else 0.0) + (1.0 / (ub - Z) if np.isfinite(ub) else 0.0)
    return np.where(inside, d, 0.0)


def compress(u, w, S):
    """Linear binning of the sorted ``u`` onto cells of width ``S / 64``.

    Each datum splits its weight between the two nearest cell centres in
    proportion to its distance, so the total weight and the weighted mean
    are kept exactly; only occupied cells are returned (never more than
    ``2n``), so far-away data stay where they are.

    Parameters
    ----------
    u : ndarray of shape (n,)
        Finite values, sorted ascending.
    w : ndarray of shape (n,)
        Non-negative weights.
    S : float
        Gnostic scale.

    Returns
    -------
    centers, weights : ndarray of shape (G,)
        Occupied cell centres (ascending) and their weights.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._distribution_math import compress
    >>> c, w = compress(np.array([0.0, 0.0, 1.0]), np.ones(3), 64.0)
    >>> c, w
    (array([0., 1.]), array([2., 1.]))
    """
    delta = S / CELLS_PER_SCALE
    t = np.clip(u / delta, -_MAX_KEY, _MAX_KEY)
    key = np.floor(t)
    right = (t - key) * w
    left = w - right
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    k = key[starts]
    wl = np.add.reduceat(left, starts)
    wr = np.add.reduceat(right, starts)
    keys = np.union1d(k, k + 1.0)
    weights = np.zeros(keys.shape[0])
    np.add.at(weights, np.searchsorted(keys, k), wl)
    np.add.at(weights, np.searchsorted(keys, k + 1.0), wr)
    keep = weights > 0
    return keys[keep] * delta, weights[keep]


def _blocks(m, g):
    step = max(1, BLOCK_ELEMENTS // max(g, 1))
    for start in range(0, m, step):
        yield slice(start, min(start + step, m))


def estimating_means(v, centers, weights, S):
    """Weighted means of ``sech x, tanh x, sech^2 x, sech x tanh x`` at ``v``.

    Parameters
    ----------
    v : ndarray of shape (m,)
        Points in the gnostic domain.
    centers, weights : ndarray of shape (G,)
        The (compressed) data and weights.
    S : float
        Gnostic scale.

    Returns
    -------
    ndarray of shape (4, m)
        ``a = mean f``, ``b = mean h``, ``mean f^2``, ``mean f h``.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._distribution_math import estimating_means
    >>> estimating_means(np.array([0.0]), np.array([0.0]), np.array([1.0]), 1.0)[:, 0]
    array([1., 0., 1., 0.])
    """
    v = np.asarray(v, dtype=float)
    out = np.empty((4, v.shape[0]))
    wn = weights / weights.sum()
    for sl in _blocks(v.shape[0], centers.shape[0]):
        x = (2.0 / S) * (v[sl, None] - centers[None, :])
        with np.errstate(under="ignore", over="ignore"):
            e = np.exp(-np.abs(x))
            e2 = e * e
            den = 1.0 + e2
            f = 2.0 * e / den
            h = np.sign(x) * (1.0 - e2) / den
        out[0, sl] = f @ wn
        out[1, sl] = h @ wn
        out[3, sl] = (f * h) @ wn
        f *= f
        out[2, sl] = f @ wn
    return out


def quantifying_logs(centers, weights, S):
    """``(alpha, beta)`` with ``ln A(v) = 2v/S + alpha`` and ``ln B(v) = -2v/S + beta``.

    Parameters
    ----------
    centers, weights : ndarray of shape (G,)
        The data and weights (weights normalised to sum 1 inside).
    S : float
        Gnostic scale.

    Returns
    -------
    tuple of float
        ``alpha = ln sum w_i e^{-2 u_i / S}``, ``beta = ln sum w_i e^{2 u_i / S}``
        (weights summing to 1).

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._distribution_math import quantifying_logs
    >>> quantifying_logs(np.array([0.0]), np.array([2.0]), 1.0)
    (0.0, 0.0)
    """
    lw = np.log(weights / weights.sum())
    return float(_logsumexp(lw - 2.0 * centers / S)), float(_logsumexp(lw + 2.0 * centers / S))


def _logsumexp(a):
    top = np.max(a)
    return top + np.log(np.sum(np.exp(a - top)))


def _log_cosh(t):
    t = np.abs(t)
    return t + np.log1p(np.exp(-2.0 * t)) - np.log(2.0)


def _quantifying_t(v, alpha, beta, S, kind):
    """``t`` with ``F = (1 + tanh t) / 2``, and ``ln(mean cosh)`` (for the density)."""
    la = 2.0 * v / S + alpha
    lb = -2.0 * v / S + beta
    if kind == "qgdf":
        # b / a = (A - B) / (A + B) = tanh((ln A - ln B) / 2).
        return 0.5 * (la - lb), None
    # qldf: b = (A - B) / 2 = sinh t, so t = asinh(b), from ln|b| without overflow.
    hi, lo = np.maximum(la, lb), np.minimum(la, lb)
    with np.errstate(divide="ignore"):
        log_abs_b = hi + np.log(-np.expm1(lo - hi)) - np.log(2.0)
    sign = np.sign(la - lb)
    big = log_abs_b > 0
    t = np.empty_like(log_abs_b)
    lab = log_abs_b[big]
    t[big] = lab + np.log1p(np.sqrt(1.0 + np.exp(-2.0 * lab)))
    t[~big] = np.arcsinh(np.exp(log_abs_b[~big]))
    log_mean_cosh = hi + np.log1p(np.exp(lo - hi)) - np.log(2.0)
    return sign * t, log_mean_cosh


def distribution(v, centers, weights, S, kind):
    """The distribution function ``F(v)`` and its density ``dF/du`` at ``v``.

    Parameters
    ----------
    v : ndarray of shape (m,)
        Points in the gnostic domain (``±inf`` allowed).
    centers, weights : ndarray of shape (G,)
        The (compressed) data and weights.
    S : float
        Gnostic scale.
    kind : {"egdf", "eldf", "qgdf", "qldf"}
        Which function.

    Returns
    -------
    cdf, pdf : ndarray of shape (m,)
        ``F`` in ``[0, 1]`` and ``dF/du``.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._distribution_math import distribution
    >>> F, p = distribution(np.array([0.0]), np.array([-1.0, 1.0]), np.ones(2), 1.0, "egdf")
    >>> float(F[0]), round(float(p[0]), 4)
    (0.5, 0.2658)
    """
    v = np.asarray(v, dtype=float)
    finite = np.isfinite(v)
    cdf = np.where(v > 0, 1.0, 0.0)
    pdf = np.zeros_like(v)
    vf = v[finite]
    if kind in ("qgdf", "qldf"):
        alpha, beta = quantifying_logs(centers, weights, S)
        t, log_mean_cosh = _quantifying_t(vf, alpha, beta, S, kind)
        cdf[finite] = 0.5 * (1.0 + np.tanh(t))
        if kind == "qgdf":
            # t = (ln A - ln B) / 2 rises at 2/S, so dF/du = sech^2(t) / S.
            pdf[finite] = np.exp(-2.0 * _log_cosh(t)) / S
        else:
            # dF/du = (1/S) mean cosh / cosh^3 t.
            pdf[finite] = np.exp(log_mean_cosh - 3.0 * _log_cosh(t)) / S
        return cdf, pdf
    a, b, mf2, mfh = estimating_means(vf, centers, weights, S)
    if kind == "eldf":
        cdf[finite] = 0.5 * (1.0 + b)
        pdf[finite] = mf2 / S
        return cdf, pdf
    norm = np.hypot(a, b)
    # Where both means vanish (midway between two equal far clusters) F is 0/0: take 1/2.
    defined = norm > 0
    norm = np.where(defined, norm, 1.0)
    # (1 + b/norm) / 2 without cancellation in either tail: norm -+ b = a^2 / (norm +- b).
    tail = a * a / (2.0 * norm * (norm + np.abs(b)))
    cdf[finite] = np.where(defined, np.where(b >= 0, 1.0 - tail, tail), 0.5)
    # d/du of b / |(a, b)| = a (a b' - b a') / |(a, b)|^3 with a' = -(2/S) mean fh, b' = (2/S) mean f^2.
    pdf[finite] = np.where(defined, a * (a * mf2 + b * mfh) / (S * norm**3), 0.0)
    return cdf, pdf
