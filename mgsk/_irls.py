r"""Gnostic iteratively reweighted least squares (the numerics of the regressors).

The fit has three stages, all deterministic and weight-aware.

1. **Leverage weights** ``v``. Rows far from the bulk of the design are
   found by gnostic weights of robust distances in ``X``: location and
   scatter are re-estimated with weights ``v_i = sech²((2/S) ln(d_i/d_0))``
   for ``d_i > d_0`` (and 1 below), where ``d_i`` is the Mahalanobis
   distance of row ``i``, ``d_0`` their weighted median and ``S`` the
   gnostic scale of ``ln(d/d_0)``. ``v`` only shapes the starting fit, so
   the final model does not lose efficiency on good leverage points.

2. **Robust start.** Weighted least squares with weights ``v``, then
   concentration steps: refit on the half of the total weight with the
   smallest absolute residuals (about their weighted median) until the set
   stops changing. This high-breakdown start is what lets the gnostic
   iteration reach the right fixed point with up to 40 % gross outliers
   in ``y`` or 10 % bad leverage points. Stages 1 and 2 use at most about
   20,000 evenly spaced rows (``START_ROWS``): they only have to find the
   right basin, and all rows decide the fixed point. The first scale
   equation of stage 3 is weighted by the half of the rows closest to the
   start, so gross outliers cannot inflate it.

3. **Gnostic iteration.** With residuals ``r`` and their normal-consistent
   weighted MAD ``σ``, each datum enters the gnostic domain as
   ``ln R = u = r / (κ σ)`` with ``κ = 8``. Division by ``κ`` puts
   Gaussian residuals in the small-``ln R`` regime of the scale equation,
   where ``S`` is proportional to the spread of the data, so ``σ`` acts as a
   unit only. The scale ``S`` solves the scale equation with ``F`` the
   mean estimating fidelity weighted by ``sample_weight`` and by the current
   filtering weights: rows already rejected do not inflate it. Each row's
   filtering weight is the estimating fidelity (case E2 of Kovanic's
   table 19.2)

   .. math:: w_i = f_I(x_i) = \operatorname{sech} x_i,
             \qquad x_i = \frac{2 u_i}{\eta S},

   and the coefficients are the weighted least squares fit with weights
   ``sample_weight * w``. ``η = 1.5373`` is an efficiency constant, like
   Huber's 1.345: on Gaussian residuals the iteration's fixed point is
   ``x = r / 1.4025σ``, which gives the fit a Gaussian efficiency of 90 %
   (without it, ``η = 1``, the filtered scale equation settles near
   ``x = r / 0.75σ``, about 66 %). The weight redescends exponentially, so
   a gross error has weight ~0. ``S`` is floored so that
   the effective scale ``κ η S σ / 2`` stays above half of both the current
   MAD and the MAD of the robust start: with few rows per parameter the
   filtered scale could otherwise shrink onto a subset that the model fits
   exactly (and the MAD with it).

   The iteration stops at a fixed point of the coefficients:
   ``‖θ_t − θ_{t−1}‖₂ ≤ tol · ‖θ_t‖₂`` for ``θ = (intercept, coef)``, or
   after ``max_iter`` steps. Each history record and the returned weights
   describe the coefficients after that step.

Every step costs O(n·k²) time and O(n·k) memory; no n×n matrix is formed.
"""

from dataclasses import dataclass, field

import numpy as np

from ._gnostic import (
    estimating_entropy,
    gnostic_scale,
    gnostic_x,
    residual_entropy_values,
    sech,
    standardized_log_ratio,
)
from ._weighted import (
    mad_scale,
    trimmed_weights,
    weighted_least_squares,
    weighted_mean,
    weighted_median,
)

#: ``ln R = r / (KAPPA * sigma)``: see the module docstring.
KAPPA = 8.0
#: Effective residual scale (in σ units) of the weights at the normal model:
#: ``sech(r / 1.4025σ)`` has a Gaussian efficiency of 90 %.
EFFICIENT_C = 1.4024633574465035
#: Efficiency constant: with it the filtered iteration's fixed point on
#: Gaussian residuals is ``x = r / EFFICIENT_C`` (see the module docstring
#: and ``tests/test_numerics.py::test_eta_gives_ninety_percent_efficiency``).
ETA = 1.5372852505831547
#: Concentration steps at most in the robust start.
MAX_CONCENTRATION_STEPS = 20
#: The robust start uses at most about this many rows, evenly spaced: it
#: only has to put the iteration in the right basin; all rows decide the
#: fixed point.
START_ROWS = 20000
#: Iterations at most for the leverage weights.
MAX_LEVERAGE_ITER = 30


def data_scale(y, sample_weight=None):
    """Scale of the target alone, the unit of the R-Entropy ``re``.

    ``1.4826 · weighted MAD(y)``; the weighted standard deviation when more
    than half the targets are equal; 1 for a constant target.

    Parameters
    ----------
    y : ndarray of shape (n,)
        Targets.
    sample_weight : ndarray of shape (n,) or None
        Non-negative weights.

    Returns
    -------
    float
        A positive scale.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._irls import data_scale
    >>> round(data_scale(np.array([0.0, 1.0, 2.0])), 4)
    1.4826
    """
    center = weighted_median(y, sample_weight)
    s = mad_scale(y, sample_weight, center)
    if not s > 0:
        dev = y - weighted_mean(y, sample_weight)
        top = float(np.max(np.abs(dev)))
        if top > 0:  # scaled first, so that tiny deviations do not underflow when squared
            s = top * float(np.sqrt(weighted_mean((dev / top) ** 2, sample_weight)))
    return s if s > 0 and np.isfinite(s) else 1.0


def residual_entropy(residuals, sigma, sample_weight=None):
    """Weighted mean residual entropy ``mean(sinh x · tanh x)``, ``x = r/σ``.

    Parameters
    ----------
    residuals : ndarray of shape (n,)
        Residuals.
    sigma : float
        The data scale (see :func:`data_scale`).
    sample_weight : ndarray of shape (n,) or None
        Non-negative weights.

    Returns
    -------
    float
        R-Entropy, ``>= 0``.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._irls import residual_entropy
    >>> residual_entropy(np.zeros(3), 1.0)
    0.0
    """
    return float(np.average(residual_entropy_values(residuals, sigma), weights=sample_weight))


def leverage_weights(X, sample_weight=None):
    """Gnostic weights of robust distances of the rows of ``X`` (stage 1).

    Parameters
    ----------
    X : ndarray of shape (n, k)
        Features (before any polynomial expansion).
    sample_weight : ndarray of shape (n,) or None
        Non-negative weights.

    Returns
    -------
    ndarray of shape (n,)
        Weights in ``(0, 1]``; all ones when there are too few rows to
        estimate a scatter matrix (``n <= 2k + 1``) or no varying column.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._irls import leverage_weights
    >>> X = np.r_[np.random.default_rng(0).normal(size=(50, 2)), [[30.0, 30.0]]]
    >>> v = leverage_weights(X)
    >>> bool(v[-1] < 1e-5 and np.median(v) == 1.0)
    True
    """
    n, k = X.shape
    ones = np.ones(n)
    sw = ones if sample_weight is None else sample_weight
    centers = np.array([weighted_median(X[:, j], sample_weight) for j in range(k)])
    spreads = np.array([mad_scale(X[:, j], sample_weight, centers[j]) for j in range(k)])
    low = ~(spreads > 0)
    if low.any():
        dev = X[:, low] - weighted_mean(X[:, low], sample_weight)
        spreads[low] = np.sqrt(weighted_mean(dev * dev, sample_weight))
    varying = spreads > 0
    k_eff = int(varying.sum())
    if k_eff == 0 or n <= 2 * k_eff + 1:
        return ones
    Xs = (X[:, varying] - centers[varying]) / spreads[varying]
    mu = np.zeros(k_eff)
    cov = np.eye(k_eff)
    v = ones
    for _ in range(MAX_LEVERAGE_ITER):
        dist = _mahalanobis(Xs, mu, cov)
        d0 = weighted_median(dist, sample_weight)
        if not d0 > 0:
            break
        with np.errstate(divide="ignore"):
            log_ratio = np.log(dist / d0)
        S = gnostic_scale(log_ratio, sw)
        v_new = np.where(log_ratio > 0, sech(gnostic_x(log_ratio, S)) ** 2, 1.0)
        done = np.max(np.abs(v_new - v)) < 1e-6
        v = v_new
        if done:
            break
        weights = sw * v
        mu = weighted_mean(Xs, weights)
        centered = Xs - mu
        centered *= np.sqrt(weights)[:, None]
        cov = centered.T @ centered / weights.sum()
        del centered
    return v


def _mahalanobis(Xs, mu, cov):
    """Distances under ``cov``, through its eigenvectors (pseudo-inverse)."""
    eigval, eigvec = np.linalg.eigh(cov)
    floor = max(eigval.max(), 0.0) * 1e-10
    keep = eigval > floor
    if not keep.any():
        return np.zeros(Xs.shape[0])
    proj = (Xs - mu) @ eigvec[:, keep]
    proj /= np.sqrt(eigval[keep])
    return np.sqrt(np.einsum("ij,ij->i", proj, proj))


def start_rows(n):
    """Rows the robust start uses: all up to ``START_ROWS``, else a stride.

    Parameters
    ----------
    n : int
        Number of rows.

    Returns
    -------
    slice
        Evenly spaced rows, at most about ``START_ROWS`` of them.

    Examples
    --------
    >>> from mgsk._irls import start_rows
    >>> start_rows(100), start_rows(50000)
    (slice(None, None, 1), slice(None, None, 3))
    """
    return slice(None, None, -(-n // START_ROWS))


def robust_start(Z, y, sample_weight, X=None, fit_intercept=True):
    """Concentration steps from the leverage-weighted fit (stages 1 and 2).

    Parameters
    ----------
    Z : ndarray of shape (n, k)
        Design without intercept column.
    y : ndarray of shape (n,)
        Targets.
    sample_weight : ndarray of shape (n,)
        Non-negative weights.
    X : ndarray of shape (n, p) or None, default=None
        Features for the leverage weights (:func:`leverage_weights`);
        ``None`` for none.
    fit_intercept : bool, default=True
        Whether the model has an intercept.

    Returns
    -------
    coef : ndarray of shape (k,)
    intercept : float

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._irls import robust_start
    >>> Z = np.arange(10.0).reshape(-1, 1); y = Z[:, 0].copy(); y[[2, 5, 7]] += 100
    >>> coef, b = robust_start(Z, y, np.ones(10))
    >>> round(float(coef[0]), 6), round(b, 6)
    (1.0, 0.0)
    """
    rows = start_rows(y.shape[0])
    Z, y, sample_weight = Z[rows], y[rows], sample_weight[rows]
    base = sample_weight if X is None else sample_weight * leverage_weights(X[rows], sample_weight)
    coef, intercept = weighted_least_squares(Z, y, base, fit_intercept)
    keep = min(0.5 * (base.sum() + Z.shape[1] + 1 + fit_intercept), base.sum())
    kept = None
    for _ in range(MAX_CONCENTRATION_STEPS):
        new_kept = half_weight_subset(y - Z @ coef - intercept, base, keep, fit_intercept)
        if kept is not None and np.array_equal(new_kept, kept):
            break
        kept = new_kept
        coef, intercept = weighted_least_squares(Z, y, kept, fit_intercept)
    return coef, intercept


def half_weight_subset(residuals, weights, keep, centered):
    """Weights of the rows closest to the (weighted median) residual center."""
    center = weighted_median(residuals, weights) if centered else 0.0
    return trimmed_weights(np.abs(residuals - center), weights, keep)


@dataclass
class IRLSResult:
    """What :func:`gnostic_irls` found."""

    coef: np.ndarray
    intercept: float
    weights: np.ndarray
    scale: float
    sigma: float
    x: np.ndarray
    n_iter: int
    converged: bool
    history: list = field(default_factory=list)


def gnostic_weights(residuals, sample_weight, prev_weights, scale="auto", min_sigma=0.0):
    """One gnostic reweighting (stage 3): filtering weights of residuals.

    Parameters
    ----------
    residuals : ndarray of shape (n,)
        Current residuals.
    sample_weight : ndarray of shape (n,)
        Non-negative weights.
    prev_weights : ndarray of shape (n,)
        Filtering weights of the previous step (they weight ``F``).
    scale : "auto" or float, default="auto"
        ``"auto"`` solves the scale equation; a number fixes ``S``.
    min_sigma : float, default=0.0
        With ``"auto"``, ``S`` is raised where needed so that the effective
        residual scale ``κ η S σ / 2`` is at least ``max(σ, min_sigma) / 2``.

    Returns
    -------
    weights : ndarray of shape (n,)
        Filtering weights ``sech x``.
    x : ndarray of shape (n,)
        Gnostic log-ratios of the residuals.
    S : float
        Gnostic scale used.
    sigma : float
        Residual MAD scale (0 for an exact fit).

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._irls import gnostic_weights
    >>> r = np.r_[np.linspace(-1, 1, 9), 50.0]
    >>> w, x, S, sigma = gnostic_weights(r, np.ones(10), np.ones(10))
    >>> bool(w[-1] < 1e-6 < w[:-1].min())
    True
    """
    sigma = mad_scale(residuals, sample_weight)
    if not sigma > 0:
        sigma = float(weighted_mean(np.abs(residuals), sample_weight))
    if not sigma > 0:
        n = residuals.shape[0]
        return np.ones(n), np.zeros(n), (1.0 if scale == "auto" else float(scale)), 0.0
    unit = KAPPA * sigma
    if scale == "auto":
        u = standardized_log_ratio(residuals, unit, 2.0)
        S = max(gnostic_scale(u, sample_weight * prev_weights), max(sigma, min_sigma) / (KAPPA * ETA * sigma))
    else:
        S = float(scale)
    x = standardized_log_ratio(residuals, unit, ETA * S)
    return sech(x), x, S, sigma


def gnostic_irls(
    Z,
    y,
    sample_weight,
    *,
    X_leverage=None,
    fit_intercept=True,
    scale="auto",
    max_iter=100,
    tol=1e-6,
    y_scale=1.0,
    callback=None,
):
    """Fit a linear model by gnostic IRLS (stages 2 and 3).

    Parameters
    ----------
    Z : ndarray of shape (n, k)
        Design without intercept column.
    y : ndarray of shape (n,)
        Targets.
    sample_weight : ndarray of shape (n,)
        Non-negative weights with a positive sum.
    X_leverage : ndarray of shape (n, p) or None, default=None
        Features for the leverage weights of the start; None to disable.
    fit_intercept : bool, default=True
        Whether to fit an intercept.
    scale : "auto" or float, default="auto"
        Gnostic scale: solved each iteration, or fixed.
    max_iter : int, default=100
        Most reweightings.
    tol : float, default=1e-6
        Relative tolerance of the fixed point on the coefficients.
    y_scale : float, default=1.0
        Data scale for the ``re`` recorded in the history.
    callback : callable or None
        Called as ``callback(record)`` with each history record.

    Returns
    -------
    IRLSResult

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._irls import gnostic_irls
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.normal(size=(200, 2)); y = Z @ [1.0, -2.0] + 0.1 * rng.normal(size=200)
    >>> y[:20] += 50
    >>> res = gnostic_irls(Z, y, np.ones(200))
    >>> res.coef.round(1), res.converged
    (array([ 1., -2.]), True)
    """
    coef, intercept = robust_start(Z, y, sample_weight, X_leverage, fit_intercept)
    # The first scale equation is weighted by the half of the rows that fit
    # the start best, so gross outliers cannot inflate it.
    half = 0.5 * sample_weight.sum()
    start_residuals = y - Z @ coef - intercept
    weights = (half_weight_subset(start_residuals, sample_weight, half, fit_intercept) > 0).astype(float)
    start_sigma = mad_scale(start_residuals, sample_weight)
    weights, x, S, sigma = gnostic_weights(start_residuals, sample_weight, weights, scale, start_sigma)
    history = []
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        new_coef, new_intercept = weighted_least_squares(Z, y, sample_weight * weights, fit_intercept)
        theta_old = np.r_[intercept, coef]
        theta = np.r_[new_intercept, new_coef]
        step = float(np.linalg.norm(theta - theta_old))
        coef, intercept = new_coef, new_intercept
        residuals = y - Z @ coef - intercept
        weights, x, S, sigma = gnostic_weights(residuals, sample_weight, weights, scale, start_sigma)
        record = {
            "iteration": n_iter,
            "re": residual_entropy(residuals, y_scale, sample_weight),
            "loss": float(np.average(estimating_entropy(x), weights=sample_weight)),
            "scale": S,
            "step": step,
        }
        history.append(record)
        if callback is not None:
            callback(record)
        if sigma == 0 or step <= tol * float(np.linalg.norm(theta)):
            converged = True
            break
    return IRLSResult(coef, intercept, weights, S, sigma, x, n_iter, converged, history)
