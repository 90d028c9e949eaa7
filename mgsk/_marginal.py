"""Scale, location, homogeneity and marginal analysis of one column, as pure functions.

All work in the gnostic domain ``u`` of :mod:`mgsk._distribution_math`:
``centers, weights`` are the (compressed) data, ``S`` the scale.
"""

import numpy as np
from scipy.optimize import minimize_scalar

from ._distribution_math import S_RANGE, compress, distribution, estimating_means, quantifying_logs
from ._gnostic import gnostic_scale
from ._weighted import weighted_median

#: Most points of the empirical distribution function fitted by the global scale.
EDF_POINTS = 128
#: A density below -NEGATIVE_TOL * max(density) is negative (inhomogeneous sample).
NEGATIVE_TOL = 1e-12
#: Relative differences below this count as flat in :func:`count_maxima`.
FLAT_TOL = 1e-10
#: Candidate offsets (units of S) around a candidate datum where its own bump is looked for.
_NEAR = np.linspace(-3.0, 3.0, 25)


def edf_points(u, w):
    """Points, values and weights of the weighted empirical distribution function.

    Equal values are one point carrying their total weight (so a weight of
    2 acts as the row repeated); of more than ``EDF_POINTS`` distinct
    values, those at equally spaced cumulative weights are kept. The value
    at a point is the middle of its step.

    Parameters
    ----------
    u : ndarray of shape (n,)
        Sorted values.
    w : ndarray of shape (n,)
        Non-negative weights.

    Returns
    -------
    points, values, weights : ndarray
        Distinct data points, EDF values in ``(0, 1)`` and the weight of
        each point.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._marginal import edf_points
    >>> edf_points(np.array([1.0, 2.0, 2.0]), np.ones(3))
    (array([1., 2.]), array([0.16666667, 0.66666667]), array([1., 2.]))
    """
    keep = w > 0
    u, w = u[keep], w[keep]
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    u, w = u[starts], np.add.reduceat(w, starts)
    cw = np.cumsum(w)
    total = cw[-1]
    mid = (cw - 0.5 * w) / total
    if u.shape[0] > EDF_POINTS:
        p = (np.arange(EDF_POINTS) + 0.5) / EDF_POINTS
        idx = np.unique(np.minimum(np.searchsorted(cw, p * total), u.shape[0] - 1))
        u, mid, w = u[idx], mid[idx], w[idx]
    return u, mid, w


def fit_global_scale(u, w, kind):
    """The scale S that best fits the distribution function to the EDF.

    Minimises ``sum_j w_j (F(u_j; S) - EDF(u_j))^2`` over the points of
    :func:`edf_points`: a scan of ``ln S`` over ``S_RANGE`` (17 points),
    then Brent's method between the neighbours of the best.

    Parameters
    ----------
    u : ndarray of shape (n,)
        Sorted values in the gnostic domain.
    w : ndarray of shape (n,)
        Non-negative weights.
    kind : {"egdf", "qgdf", "eldf", "qldf"}
        The function fitted.

    Returns
    -------
    float
        The fitted S.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._marginal import fit_global_scale
    >>> u = np.sort(np.random.default_rng(0).logistic(size=400))
    >>> round(fit_global_scale(u, np.ones(400), "qgdf"), 2)
    4.27
    """
    points, target, point_weights = edf_points(u, w)

    def misfit(log_s):
        S = float(np.exp(log_s))
        centers, weights = compress(u, w, S)
        return float(point_weights @ (distribution(points, centers, weights, S, kind)[0] - target) ** 2)

    grid = np.linspace(np.log(S_RANGE[0]), np.log(S_RANGE[1]), 17)
    values = [misfit(g) for g in grid]
    best = int(np.argmin(values))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, grid.shape[0] - 1)]
    found = minimize_scalar(misfit, bounds=(lo, hi), method="bounded", options={"xatol": 1e-7})
    log_s = found.x if found.fun <= values[best] else grid[best]
    return float(np.exp(log_s))


def local_scale(u, w):
    """S of the local functions: the scale equation at the weighted median.

    Parameters
    ----------
    u : ndarray of shape (n,)
        Values in the gnostic domain.
    w : ndarray of shape (n,)
        Non-negative weights.

    Returns
    -------
    float
        ``S`` in ``[0.01, 2]`` (:func:`mgsk._gnostic.gnostic_scale`).

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._marginal import local_scale
    >>> round(local_scale(np.array([-0.1, 0.1]), np.ones(2)), 4)
    0.3037
    """
    return gnostic_scale(u - weighted_median(u, w), w)


def analysis_grid(centers, S):
    """Sorted points that resolve every bump of a density of the data.

    A uniform grid of spacing ``S / 8`` over the data ``± 3S`` when that
    has at most 4096 points; otherwise the data themselves (thinned to
    about 1400) and their neighbours at ``± S / 4``.

    Parameters
    ----------
    centers : ndarray of shape (G,)
        Sorted data in the gnostic domain.
    S : float
        Gnostic scale.

    Returns
    -------
    ndarray
        Sorted points.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._marginal import analysis_grid
    >>> analysis_grid(np.array([0.0]), 8.0)[[0, -1]]
    array([-24.,  24.])
    """
    lo, hi = centers[0] - 3.0 * S, centers[-1] + 3.0 * S
    if (hi - lo) / (S / 8.0) <= 4096:
        return np.linspace(lo, hi, int(np.ceil((hi - lo) / (S / 8.0))) + 1)
    thin = centers[:: max(1, centers.shape[0] // 1400)]
    return np.unique(np.concatenate([thin - S / 4.0, thin, thin + S / 4.0, [lo, hi]]))


def count_maxima(values):
    """Number of local maxima of a sampled function (plateaus count once).

    Parameters
    ----------
    values : ndarray of shape (m,)
        Function values on sorted points.

    Returns
    -------
    int
        Rises followed by falls.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._marginal import count_maxima
    >>> count_maxima(np.array([0.0, 1.0, 1.0, 0.0, 2.0, 0.0]))
    2
    """
    diff = np.diff(values)
    # Differences at rounding level are flat, not rises or falls.
    step = np.where(np.abs(diff) > FLAT_TOL * np.max(np.abs(values)), np.sign(diff), 0.0)
    step = step[step != 0]
    return int(np.sum((step[:-1] > 0) & (step[1:] < 0)))


def _egdf_pdf(means, S):
    a, b, mf2, mfh = means
    norm = np.hypot(a, b)
    safe = np.where(norm > 0, norm, 1.0)
    return np.where(norm > 0, a * (a * mf2 + b * mfh) / (S * safe**3), 0.0)


def _homogeneous_pdf(pdf):
    top = np.max(pdf)
    return bool(top > 0 and np.min(pdf) >= -NEGATIVE_TOL * top and count_maxima(pdf) == 1)


def is_homogeneous(centers, weights, S):
    """Kovanic's homogeneity test: the EGDF density is non-negative with one maximum.

    Parameters
    ----------
    centers, weights : ndarray of shape (G,)
        Sorted data in the gnostic domain and their weights.
    S : float
        Gnostic scale of the EGDF.

    Returns
    -------
    bool
        Whether the sample is homogeneous.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._marginal import is_homogeneous
    >>> is_homogeneous(np.array([-0.5, 0.0, 0.5]), np.ones(3), 1.0)
    True
    >>> is_homogeneous(np.array([-0.5, 0.0, 0.5, 30.0]), np.ones(4), 1.0)
    False
    """
    grid = analysis_grid(centers, S)
    return _homogeneous_pdf(_egdf_pdf(estimating_means(grid, centers, weights, S), S))


def _refine_maximum(fun, grid, values):
    i = int(np.argmax(values))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.shape[0] - 1)]
    if hi <= lo:
        return float(grid[i])
    found = minimize_scalar(lambda v: -fun(v), bounds=(lo, hi), method="bounded", options={"xatol": 1e-9 * (1 + abs(lo))})
    return float(found.x) if -found.fun >= values[i] else float(grid[i])


def location(centers, weights, S, kind):
    """The gnostic location Z0 in the gnostic domain.

    The estimating functions: the point where the weighted mean of
    ``f_I^2 = sech^2 x_i`` is largest (the ELDF density at scale ``S``; a
    grid search, then Brent's method between the neighbours of the best
    point). It is a redescending M-estimate with the gnostic weight
    ``sech^2``: a datum far away has fidelity 0 and no influence. (The mode
    of the EGDF density itself is not used: far data keep their
    irrelevance ``h = ±1`` there and shift it like a quantile.)
    The quantifying functions: the point where ``A = B`` (their median and,
    by construction, the only maximum of their density), in closed form.

    Parameters
    ----------
    centers, weights : ndarray of shape (G,)
        Sorted data in the gnostic domain and their weights.
    S : float
        Gnostic scale.
    kind : {"egdf", "eldf", "qgdf", "qldf"}
        The function.

    Returns
    -------
    float
        ``u0``.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._marginal import location
    >>> abs(round(location(np.array([-1.0, 0.0, 1.0, 40.0]), np.ones(4), 1.0, "egdf"), 3))
    0.0
    """
    if kind in ("qgdf", "qldf"):
        alpha, beta = quantifying_logs(centers, weights, S)
        return float(S * (beta - alpha) / 4.0)

    def pdf(v):
        return float(distribution(np.array([v]), centers, weights, S, "eldf")[1][0])

    grid = analysis_grid(centers, S)
    return _refine_maximum(pdf, grid, distribution(grid, centers, weights, S, "eldf")[1])


class _Extended:
    """The EGDF of a sample extended by one candidate datum of unit weight."""

    def __init__(self, centers, weights, S, grid):
        self.centers, self.weights, self.S, self.grid = centers, weights, S, grid
        self.total = float(weights.sum())
        self.sums = self.total * estimating_means(grid, centers, weights, S)

    def _pdf(self, points, base_sums, c):
        own = estimating_means(points, np.array([c]), np.ones(1), self.S)
        return _egdf_pdf((base_sums + own) / (self.total + 1.0), self.S)

    def homogeneous(self, c):
        near = c + self.S * _NEAR
        near_sums = self.total * estimating_means(near, self.centers, self.weights, self.S)
        points = np.concatenate([self.grid, near])
        order = np.argsort(points, kind="stable")
        pdf = np.concatenate([self._pdf(self.grid, self.sums, c), self._pdf(near, near_sums, c)])
        return _homogeneous_pdf(pdf[order])

    def location(self, c, u0):
        local = u0 + self.S * np.linspace(-1.0, 1.0, 81)
        sums = self.total * estimating_means(local, self.centers, self.weights, self.S)

        def fidelity(points, base_sums):
            own = estimating_means(points, np.array([c]), np.ones(1), self.S)
            return (base_sums[2] + own[2]) / (self.total + 1.0)

        def at(v):
            base = self.total * estimating_means(np.array([v]), self.centers, self.weights, self.S)
            return float(fidelity(np.array([v]), base)[0])

        return _refine_maximum(at, local, fidelity(local, sums))


def _membership_bound(ext, u0, direction, reach):
    """Farthest candidate on one side of ``u0`` that keeps the sample homogeneous."""
    S = ext.S
    inside, d = 0.0, S / 4.0
    while d <= reach:
        if not ext.homogeneous(u0 + direction * d):
            break
        inside, d = d, d + S / 4.0 if d < 10.0 * S else d * 1.25
    else:
        return direction * np.inf
    outside = d
    for _ in range(40):
        mid = 0.5 * (inside + outside)
        if ext.homogeneous(u0 + direction * mid):
            inside = mid
        else:
            outside = mid
        if outside - inside <= 1e-6 * S:
            break
    return u0 + direction * inside


def marginal_analysis(centers, weights, S, u0):
    """Membership and tolerance intervals of a homogeneous sample (EGDF at scale S).

    A candidate datum of unit weight moves away from ``u0``; the
    membership interval ``[LSB, USB]`` holds the candidates with which the
    sample stays homogeneous (:func:`is_homogeneous`, bisection to
    ``1e-6 S``). While the candidate moves through it, the location of the
    extended sample moves through the tolerance interval ``[Z0L, Z0U]``
    (41 candidates).

    Parameters
    ----------
    centers, weights : ndarray of shape (G,)
        Sorted data in the gnostic domain and their weights.
    S : float
        Scale of the EGDF.
    u0 : float
        Location of the sample.

    Returns
    -------
    membership, tolerance : tuple of float
        ``(LSB, USB)`` and ``(Z0L, Z0U)`` in the gnostic domain
        (``±inf`` when no candidate up to 1000 S beyond the data breaks
        homogeneity).

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._marginal import marginal_analysis
    >>> u = np.linspace(-1.0, 1.0, 21)
    >>> (lsb, usb), (z0l, z0u) = marginal_analysis(u, np.ones(21), 0.5, 0.0)
    >>> bool(lsb < -1.0 < 1.0 < usb and lsb < z0l < 0.0 < z0u < usb)
    True
    """
    ext = _Extended(centers, weights, S, analysis_grid(centers, S))
    reach = max(u0 - centers[0], centers[-1] - u0) + 1000.0 * S
    lsb = _membership_bound(ext, u0, -1.0, reach)
    usb = _membership_bound(ext, u0, 1.0, reach)
    lo = lsb if np.isfinite(lsb) else centers[0] - 3.0 * S
    hi = usb if np.isfinite(usb) else centers[-1] + 3.0 * S
    moved = [ext.location(c, u0) for c in np.linspace(lo, hi, 41)]
    return (float(lsb), float(usb)), (float(min(moved)), float(max(moved)))


def main_cluster(centers, weights, S):
    """The bounds of the cluster around the largest EGDF density.

    From the largest density the bounds move outwards while the density
    keeps falling and stays positive: they stop at the first minimum (the
    valley to the next cluster) or where the density stops being positive.

    Parameters
    ----------
    centers, weights : ndarray of shape (G,)
        Sorted data in the gnostic domain and their weights.
    S : float
        Scale of the EGDF.

    Returns
    -------
    tuple of float
        ``(lo, hi)`` in the gnostic domain.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._marginal import main_cluster
    >>> lo, hi = main_cluster(np.r_[np.linspace(-1, 1, 21), 30.0], np.ones(22), 1.0)
    >>> bool(1.0 < hi < 30.0 and lo < -1.0)
    True
    """
    grid = analysis_grid(centers, S)
    pdf = _egdf_pdf(estimating_means(grid, centers, weights, S), S)
    top = int(np.argmax(pdf))
    lo = top
    while lo > 0 and 0 < pdf[lo - 1] <= pdf[lo]:
        lo -= 1
    hi = top
    while hi < grid.shape[0] - 1 and 0 < pdf[hi + 1] <= pdf[hi]:
        hi += 1
    return float(grid[lo]), float(grid[hi])
