r"""Gnostic iteratively reweighted least squares (the numerics of the regressors).

The fit has three stages, all deterministic and weight-aware.

1. **Leverage weights** ``v``. Rows far from the bulk of the design are
   found by gnostic weights of robust distances in ``X``: location and
   scatter are re-estimated with weights ``v_i = sech²((2/S) ln(d_i/d_0))``
   for ``d_i > d_0`` (and 1 below), where ``d_i`` is the Mahalanobis
   distance of row ``i``, ``d_0`` their weighted median and ``S`` the
   gnostic scale of ``ln(d/d_0)``. In the regressors ``v`` shapes the
   starting fit only when there are too few rows for the subsets of stage 2
   (the classifier keeps it, :mod:`mgsk._logistic`), so the final model
   does not lose efficiency on good leverage points.

2. **Robust start.** Five deterministic starting subsets in the manner of
   DetMCD (:mod:`mgsk._detstart`: the half of the rows nearest the bulk
   of ``(X, y)`` under five robust scatter guesses), each refined by
   concentration steps: refit on the half of the total weight with the
   smallest absolute residuals (about their weighted median) until the set
   stops changing. This runs on at most ``CANDIDATE_ROWS`` rows; each
   candidate runs a few gnostic steps and the one whose weights settle at
   the smallest residual scale (the unit below) wins. The subsets are
   guessed in ``(X, y)``, not in ``X`` alone: a tight cluster of bad
   leverage points pulls the medians, MADs and distances of ``X`` and
   hides among the rows there (it masks itself), and with few rows per
   parameter the fit through such a cluster, once a start holds it,
   settles at a smaller unit than the fit of the bulk and would win. With
   too few rows for a scatter matrix of ``(X, y)`` the start is least
   squares weighted by ``v``, then concentration steps.
   Stages 1 and 2 use at most about 10,000 evenly spaced rows
   (``START_ROWS``): they only have to find the right basin, and all rows
   decide the fixed point. On taller data the estimators' iteration then
   runs to its fixed point on those rows first (cheap steps, no pass over
   all of X), which is within their sampling error of the fixed point of
   all rows. The first scale of stage 3 is solved on the
   start's residuals, weighted first by the half of the rows closest to the
   start, so gross outliers cannot inflate it.

   *Wide data* (more than 20 parameters and 1.25 to 10 rows per parameter,
   :func:`mgsk._linear.is_wide`): half-samples nearly interpolate, and so
   does least squares on all rows, absorbing the outliers. The start
   (:func:`wide_start`) trims a ridge fit, which cannot absorb the rows it
   is fitted on, then readmits rows by their standardized prediction
   residuals (:func:`prediction_residuals`: ``r / sqrt(1 - h)`` in the fit,
   ``r / sqrt(1 + q)`` out of it). In the iteration every residual enters
   the weights and the scale as ``r / sqrt(1 - h)``, ``h`` the weighted
   leverage of its row, and the unit stays above the Gaussian-efficient
   unit (1.40 times) of the MAD of the start's prediction residuals
   (``WIDE_UNIT_FLOOR``): fitted residuals understate the error scale when
   ``p/n`` is large (Maronna & Yohai, 2010, "Correcting MM estimates for
   'fat' data sets"), and redescending weights would then reject good rows.

3. **Gnostic iteration.** With residuals ``r`` and their normal-consistent
   weighted MAD ``σ``, each datum enters the gnostic domain as
   ``ln R = u = r / (κ σ)`` with ``κ = 8``. Division by ``κ`` puts
   Gaussian residuals in the small-``ln R`` regime of the scale equation,
   where ``S`` is proportional to the spread of the data, so ``σ`` acts as a
   unit only. The scale ``S`` solves the scale equation with ``F`` the
   mean estimating fidelity weighted by ``sample_weight`` and by the
   filtering weights: rows already rejected do not inflate it. Each row's
   filtering weight is the estimating fidelity (case E2 of Kovanic's
   table 19.2)

   .. math:: w_i = f_I(x_i) = \operatorname{sech} x_i,
             \qquad x_i = \frac{2 u_i}{\eta S} = \frac{r_i}{c},
             \qquad c = \kappa \eta \sigma S / 2,

   and the coefficients solve the weighted least squares equations with
   weights ``sample_weight * w``. ``η = 1.5373`` is an efficiency constant,
   like Huber's 1.345: on Gaussian residuals the fixed point is
   ``x = r / 1.4025σ``, which gives the fit a Gaussian efficiency of 90 %
   (without it, ``η = 1``, the filtered scale equation settles near
   ``x = r / 0.75σ``, about 66 %). The weight redescends exponentially, so
   a gross error has weight ~0. ``S`` is floored so that ``c`` stays above
   half of both the current MAD and the MAD of the robust start: with few
   rows per parameter the filtered scale could otherwise shrink onto a
   subset that the model fits exactly (and the MAD with it).

   **The map and its solution.** The fixed point is that of the map
   ``(θ, c) → (θ', c')``: one sweep over the rows (:mod:`mgsk._rows`, the
   only pass over ``X`` of a step) gives at ``θ`` the residuals, the
   weights ``sech(r/c)``, the weighted Gram matrix and the Jacobian
   ``Σ s ψ'(x) z̃ z̃ᵀ`` of the estimating equation ``Σ s w r z̃ = 0``
   (``ψ(x) = x sech x``), and for the estimators the sums of the
   derivatives of the estimating and the scale equations with respect to
   the unit and ``θ``. ``θ'`` and ``c'`` are then the *joint* Newton step
   on both equations (:func:`scale_coupling`, :func:`newton_step`), which
   converges quadratically, when that Jacobian is positive definite and the
   step moves the fitted values by less than ``c`` and the unit by less
   than :data:`MAX_UNIT_CHANGE`; else ``θ'`` is the Newton step at fixed
   ``c`` or the reweighting step (the weighted least squares solution, by
   Cholesky of the Gram matrix or by QR when it is ill-conditioned), ``c'``
   the unit at which the scale equation, weighted by ``sech(r/c')``, is
   consistent for these residuals (a few secant steps over one-dimensional
   sums), and safeguarded Anderson acceleration (:class:`Anderson`)
   combines the last evaluations. On wide data the Jacobian follows the
   weighted leverage ``h = q sech(r/c)`` of each row as its residual and
   the unit move (``q``, from the last step's Gram matrix, is held, but
   for the row's own term in that matrix: :class:`mgsk._rows.Sweep`); the
   Newton step is taken only where it points the same way as the
   reweighting step (:data:`WIDE_NEWTON_AGREEMENT`), reweighting steps
   are not extrapolated, and once the steps are small (:data:`CHORD_STEP`)
   the Newton steps reuse the last Jacobian's factor. On tall data a joint
   step that follows a small one reuses its Jacobian too, and the scale
   equation's mean fidelity at the new ``σ`` comes from the sweep's sums
   (:func:`_scale`). All of this changes how fast the
   iteration reaches the fixed point, not the fixed point: the equations
   above define it.

   The iteration stops when a step would change the coefficients by at most
   ``tol · ‖θ'‖₂`` (``θ = (intercept, coef)``), or after ``max_iter``
   steps. Each history record (``re``, ``loss``, ``scale``), ``weights_``
   and the returned coefficients describe the point that step evaluated;
   ``step`` is the change the step proposed.

Every step costs O(n·k²) time and O(n·k) memory; no n×n matrix is formed.
"""

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg.lapack import dpocon, dpotrf, dpotrs, dtrtri

from ._gnostic import (
    gnostic_scale,
    gnostic_x,
    residual_entropy_values,
    scale_from_fidelity,
    sech,
    standardized_log_ratio,
)
from ._detstart import robust_standardization, starting_subsets
from ._rows import (
    MAX_LEVERAGE,
    START_ROWS,
    InMemoryRows,
    _ratio,
    _sech_abs,
    leverage_projection,
    single_blas_thread,
    start_rows,
    symmetric_sum,
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
#: Concentration steps at most that finish the winning start on the start's
#: rows when the gnostic steps then settle on those rows first (tall data):
#: on thousands of rows the C-steps move the fit by less and less for tens
#: of steps, and the gnostic steps reach the same fixed point from the first
#: few.
FINISHING_CONCENTRATION_STEPS = 3
#: The DetMCD-style starts are compared on at most this many rows, after at
#: most this many gnostic steps from each.
CANDIDATE_ROWS = 1000
CANDIDATE_ITER = 10
#: Normal-consistency factor of the MAD.
MAD_FACTOR = 1.482602218505602
#: Largest condition number of the (unit-diagonal) weighted Gram matrix
#: solved by Cholesky: the normal equations then lose at most about 8 of
#: 16 digits; worse-conditioned steps are solved by QR.
MAX_GRAM_CONDITION = 1e8
#: :func:`estimated_cholesky` checks the eigenvalues where its condition
#: estimate is above ``MAX_GRAM_CONDITION / CONDITION_MARGIN``.
CONDITION_MARGIN = 10.0
#: Secant steps at most of the start's scale (one-dimensional, no pass over X).
MAX_SCALE_STEPS = 50
#: Secant steps at most, and their relative tolerance, of the unit at
#: fixed residuals (one-dimensional sums, no pass over X).
MAX_UNIT_STEPS = 4
UNIT_TOL = 1e-10
#: Largest relative change of the unit in a joint Newton step: farther from
#: the fixed point the step holds the unit (a redescending map has other
#: fixed points, and the linearised scale equation is a poor guide there).
MAX_UNIT_CHANGE = 0.1
#: Rows per parameter from which the estimators take joint Newton steps
#: (and on wide data: see mgsk._linear.iteration_options). With fewer, the
#: redescending map wanders among its fixed points for tens of steps
#: whatever the steps, and the held-unit steps keep it on the path that
#: picks today's.
JOINT_ROWS_PER_PARAMETER = 5
#: Steps with Newton and Anderson acceleration at most; plain reweighting after.
ACCELERATED_STEPS = 50
#: Map evaluations the Anderson acceleration combines.
ANDERSON_MEMORY = 5
#: On wide data a Newton step is taken only where it agrees with the
#: reweighting step: the cosine of the angle between the two changes of the
#: fitted values is at least this. The Newton step holds the leverages'
#: Gram matrix, which with few rows per parameter moves with every weight;
#: near the fixed point both steps point at it, farther out a disagreeing
#: Newton step leads the iteration astray (300 x 200, seeds 0-8 of the
#: benchmark: 427 steps in all; 454 at 0.95, 535 without the check, 456
#: with reweighting steps only, which take 22-24 steps at 1000 x 400
#: where these take 11-13).
WIDE_NEWTON_AGREEMENT = 0.98
#: Once an accepted Newton step moves the coefficients by at most this
#: fraction of their norm (on tall data: a joint step, which moves the unit
#: by at most this fraction too), the next step reuses its Jacobian.
CHORD_STEP = 1e-3
#: On wide data a Newton step that moves the coefficients by at most this
#: fraction of their norm is taken whether or not it agrees with the
#: reweighting step, which holds the lagging leverages: near the fixed point
#: the two point in different directions, and a reweighting step there
#: undoes a refresh of the leverages (see gnostic_irls). Measured on
#: benchmarks/bench_estimators.py's data: taking such steps only at refreshed
#: leverages, 1000 x 400 (seeds 0-9) took 89 steps, 300 x 200 (seeds 0-29)
#: 1404 and 450 x 300 (seeds 0-14) 1067; at any leverages 83, 1287 and 942,
#: with the same mean errors (11-14 at 1000 x 400 taking agreeing steps only).
WIDE_SMALL_STEP = 1e-2
#: On wide data two successive Newton steps that shrink by a rate of at most
#: ``WIDE_TAIL_RATE`` along one direction (misfit at most ``WIDE_TAIL_MISFIT``
#: of the step) are extrapolated (:func:`linear_tail_stretch`). The Jacobian
#: holds the other rows' leverages, so the steps converge linearly: at
#: 1000 x 400 at rates of 0.2-0.45 (seeds 0-9: 8-10 steps; 8-11 without)
#: before it followed each row's own, 0.1-0.3 since (6-8 steps).
WIDE_TAIL_RATE = 0.7
WIDE_TAIL_MISFIT = 0.3
#: The wide-data start keeps the rows whose standardized prediction
#: residual is within this many robust standard deviations
#: (:func:`wide_start`), and at least ``WIDE_MIN_KEEP`` rows per parameter.
WIDE_TRIM = 2.5
WIDE_MIN_KEEP = 1.1
#: Steps at most of the wide start's second phase, which grows the kept
#: rows from half by the ridge fit's residuals, a few rows a step (1000 x
#: 400: 5-19 steps): the third phase refits and trims them until they
#: repeat. With 5 instead of 20, 300 x 200 and 450 x 300 (seeds 0-9) start
#: from the same fits, and 1000 x 400 and 2000 x 200 end at the same ones.
WIDE_GROWTH_STEPS = 5
#: Concentration steps of the wide start's first phase (trimmed ridge
#: fits on half of the rows). Two, as FAST-LTS takes from each start
#: (Rousseeuw & Van Driessen, 2006): later steps change a few rows each
#: and let outliers back into the half (1000 x 400: from 0 to up to 7 of
#: 100 after 11-16 steps), and the later phases choose the rows anyway.
#: Against 20, on benchmarks/bench_estimators.py's data with 10 % outliers:
#: no fit breaks down at 300 x 200 (30 seeds) and 450 x 300 (15 seeds),
#: where 1 and 2 did (errors above twice the median); at 1000 x 400 the
#: errors are the same and the fit takes about 15 % less time.
WIDE_RIDGE_STEPS = 2
#: Ridge penalty of the wide start's first phase, relative to the total
#: weight on standardized columns.
WIDE_RIDGE = 0.05
#: On wide data the unit stays above ``WIDE_UNIT_FLOOR / 2`` times the MAD
#: of the start's prediction residuals, the Gaussian-efficient unit of that
#: honest error scale (elsewhere above half the MAD): with few rows per
#: parameter the filtered scale equation has a smaller fixed point, at
#: which the weights reject good rows.
WIDE_UNIT_FLOOR = 2.0 * EFFICIENT_C
#: The wide start updates the leverages by Woodbury's identity
#: (:func:`updated_leverages`) when at most ``WOODBURY_ROWS`` rows per
#: parameter change and the update's matrix has a condition number below
#: ``WOODBURY_CONDITION``; else it recomputes them.
WOODBURY_ROWS = 0.25
WOODBURY_CONDITION = 1e8
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
        # Deviations from the median first: exactly 0 for a constant target,
        # whatever the rounding of a weighted mean.
        dev = y - center
        dev = dev - weighted_mean(dev, sample_weight)
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


def leverage_weights(X, sample_weight=None, sample=None):
    """Gnostic weights of robust distances of the rows of ``X`` (stage 1).

    Parameters
    ----------
    X : ndarray of shape (n, k)
        Features (before any polynomial expansion).
    sample_weight : ndarray of shape (n,) or None
        Non-negative weights.
    sample : slice or None, default=None
        Rows that estimate the location, scatter and gnostic scale (for
        example :func:`mgsk._rows.start_rows`); the weights of all rows
        then follow from one more pass. None: all rows.

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
    full = X
    if sample is not None:
        X = X[sample]
        sample_weight = None if sample_weight is None else sample_weight[sample]
    v, rule = leverage_rule(X, sample_weight)
    if sample is None:
        return v
    return np.ones(full.shape[0]) if rule is None else rule(full)


def leverage_rule(X, sample_weight=None):
    """The robust distances of :func:`leverage_weights`, estimated on the rows of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n, k)
        Features of the rows that estimate location, scatter and scale.
    sample_weight : ndarray of shape (n,) or None
        Non-negative weights.

    Returns
    -------
    v : ndarray of shape (n,)
        The weights of these rows.
    rule : callable or None
        Maps any rows of features to their weights (a chunk at a time, on
        data too large to hold); None when every row gets 1.
    """
    ones = np.ones(X.shape[0])
    sw = ones if sample_weight is None else sample_weight
    centers, spreads, varying = robust_standardization(X, sample_weight)
    k_eff = int(varying.sum())
    if k_eff == 0 or X.shape[0] <= 2 * k_eff + 1:
        return ones, None
    Xs = (X[:, varying] - centers[varying]) / spreads[varying]
    mu = np.zeros(k_eff)
    cov = np.eye(k_eff)
    v = np.ones(X.shape[0])
    d0 = S = None
    for _ in range(MAX_LEVERAGE_ITER):
        dist = _mahalanobis(Xs, mu, cov)
        d0 = weighted_median(dist, sample_weight)
        if not d0 > 0:
            d0 = None
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
    if d0 is None:
        return v, None

    def rule(rows):
        dist = _mahalanobis((rows[:, varying] - centers[varying]) / spreads[varying], mu, cov)
        with np.errstate(divide="ignore"):
            log_ratio = np.log(dist / d0)
        return np.where(log_ratio > 0, sech(gnostic_x(log_ratio, S)) ** 2, 1.0)

    return v, rule


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


def robust_start(Z, y, sample_weight, X=None, fit_intercept=True, subsample=True, finishing_steps=MAX_CONCENTRATION_STEPS):
    """The robust start: the best of the DetMCD-style candidates (stage 2).

    Parameters
    ----------
    Z : ndarray of shape (n, k)
        Design without intercept column.
    y : ndarray of shape (n,)
        Targets.
    sample_weight : ndarray of shape (n,)
        Non-negative weights.
    X : ndarray of shape (n, p) or None, default=None
        Features for the starting subsets (with ``y``,
        :func:`mgsk._detstart.starting_subsets`) or, with too few rows for
        them, the leverage weights (:func:`leverage_weights`); ``None``:
        concentration steps from least squares on all rows.
    fit_intercept : bool, default=True
        Whether the model has an intercept.
    subsample : bool, default=True
        Whether to use only the rows of :func:`mgsk._rows.start_rows`
        (False: the rows given are that sample already).
    finishing_steps : int, default=MAX_CONCENTRATION_STEPS
        Concentration steps at most that finish the winning start on all
        the rows given, when there are more than ``CANDIDATE_ROWS``.

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
    if subsample:
        rows = start_rows(y.shape[0])
        Z, y, sample_weight = Z[rows], y[rows], sample_weight[rows]
        X = None if X is None else X[rows]
    if X is None:
        return concentrate(Z, y, sample_weight, sample_weight, fit_intercept)
    # Every start is found on at most CANDIDATE_ROWS evenly spaced rows and
    # compared there by the unit its gnostic steps settle at; the winner's
    # concentration steps are then finished on all the start's rows.
    few = slice(None, None, -(-y.shape[0] // CANDIDATE_ROWS))
    all_rows = few.step == 1
    Zf, yf, wf = Z[few], y[few], sample_weight[few]
    # The subsets are guessed in (X, y): a tight cluster of bad leverage
    # points hides among the rows in X alone (it pulls the medians, MADs
    # and distances there), and in a small sample the fit through it, once
    # a start has it, settles at a smaller unit than the fit of the bulk.
    subsets = starting_subsets(np.column_stack([X[few], yf]), wf)
    if not subsets:  # too few rows for a scatter matrix: the leverage-weighted start
        base = sample_weight * leverage_weights(X, sample_weight, None if all_rows else few)
        best, best_base = concentrate(Zf, yf, base[few], base[few], fit_intercept), base
    else:
        best, best_base, best_unit, seen = None, sample_weight, np.inf, []
        for subset in subsets:
            candidate = concentrate(Zf, yf, wf, subset, fit_intercept)
            theta = np.r_[candidate[1], candidate[0]]
            if any(np.array_equal(theta, other) for other in seen):
                continue  # C-steps often end in the same subset
            seen.append(theta)
            unit = _fit_unit(Zf, yf, wf, *candidate, fit_intercept)
            if best is None or unit < best_unit:
                best, best_unit = candidate, unit
    if all_rows:
        return best
    keep = min(0.5 * (best_base.sum() + Z.shape[1] + 1 + fit_intercept), best_base.sum())
    kept = half_weight_subset(y - Z @ best[0] - best[1], best_base, keep, fit_intercept)
    return concentrate(Z, y, best_base, kept, fit_intercept, finishing_steps)


def concentrate(Z, y, base, first, fit_intercept, max_steps=MAX_CONCENTRATION_STEPS):
    """Concentration steps (C-steps) from the fit weighted by ``first``.

    Each step refits on the rows of ``base`` with the smallest absolute
    residuals about their weighted median, half of the total weight (plus
    half the number of parameters), until that set stops changing.

    Parameters
    ----------
    Z : ndarray of shape (n, k)
    y : ndarray of shape (n,)
    base : ndarray of shape (n,)
        Weights of the rows that may be kept.
    first : ndarray of shape (n,)
        Weights of the first fit.
    fit_intercept : bool
    max_steps : int, default=MAX_CONCENTRATION_STEPS
        Concentration steps at most.

    Returns
    -------
    coef : ndarray of shape (k,)
    intercept : float
    """
    coef, intercept = least_squares(Z, y, first, fit_intercept)
    keep = min(0.5 * (base.sum() + Z.shape[1] + 1 + fit_intercept), base.sum())
    kept = None
    for _ in range(max_steps):
        new_kept = half_weight_subset(y - Z @ coef - intercept, base, keep, fit_intercept)
        if kept is not None and np.array_equal(new_kept, kept):
            break
        kept = new_kept
        coef, intercept = least_squares(Z, y, kept, fit_intercept)
    return coef, intercept


def _fit_unit(Z, y, sample_weight, coef, intercept, fit_intercept):
    """The gnostic criterion of a candidate start: the unit of its fixed point.

    The gnostic iteration runs from the candidate (on the candidate rows, a
    few steps at a loose tolerance); the unit ``κ η σ S / 2`` of the weights
    it settles at is the candidate's residual scale. The fit of the bulk
    has the smallest.
    """
    result = gnostic_irls(Z, y, sample_weight, fit_intercept=fit_intercept, max_iter=CANDIDATE_ITER, tol=1e-4, start=(coef, intercept))
    return _unit(result.sigma, result.scale) if result.sigma > 0 else 0.0


def _gram(Z, y, weights, shift, y_shift):
    """``Σ w a aᵀ`` of ``a = (z - shift, 1, y - y_shift)``."""
    a = np.empty((Z.shape[0], Z.shape[1] + 2))
    np.subtract(Z, shift, out=a[:, :-2])
    a[:, -2] = 1.0
    a[:, -1] = y - y_shift
    return (a * weights[:, None]).T @ a


def least_squares(Z, y, weights, fit_intercept):
    """Weighted least squares: normal equations (:func:`solve_gram`), QR when ill-conditioned."""
    shift = weighted_mean(Z, weights) if fit_intercept else np.zeros(Z.shape[1])
    y_shift = float(weighted_mean(y, weights)) if fit_intercept else 0.0
    solved = solve_gram(_gram(Z, y, weights, shift, y_shift), fit_intercept)
    if solved is None:
        return weighted_least_squares(Z, y, weights, fit_intercept)
    coef, intercept, _ = solved
    return coef, intercept + y_shift - float(shift @ coef) if fit_intercept else 0.0


def half_weight_subset(residuals, weights, keep, centered):
    """Weights of the rows closest to the (weighted median) residual center."""
    center = weighted_median(residuals, weights) if centered else 0.0
    return trimmed_weights(np.abs(residuals - center), weights, keep)


def wide_start(Z, y, sample_weight, shift, y_shift, fit_intercept):
    """The start on wide data: trimmed ridge fits, then rows readmitted by prediction.

    Half-samples nearly interpolate when there are few rows per parameter,
    and so does least squares on all rows: outliers are absorbed and
    mask each other. Two phases, both deterministic:

    1. Concentration steps of a ridge fit (:func:`ridge`, penalty
       ``WIDE_RIDGE`` on standardized columns) on half of the total weight:
       the penalty keeps the fit from absorbing the rows it is fitted on,
       so the residuals still show which rows are outliers.
    2. From the half of those rows (at least ``WIDE_MIN_KEEP`` rows per
       parameter) that the ridge fit fits best, least squares on the kept
       rows; a row is kept when its residual, standardized for its own
       variance (:func:`prediction_residuals`), is within ``WIDE_TRIM``
       robust standard deviations, until that set stops changing. Rows
       outside are judged by how well the fit of the others predicts them,
       rows inside by their leverage-adjusted residuals, so neither kind is
       favoured, and their MAD does not shrink as ``p/n`` grows.

    Parameters
    ----------
    Z : ndarray of shape (n, k)
    y : ndarray of shape (n,)
    sample_weight : ndarray of shape (n,)
    shift : ndarray of shape (k,)
        Column shifts of the Gram matrices (:mod:`mgsk._rows`).
    y_shift : float
        Target shift.
    fit_intercept : bool

    Returns
    -------
    coef : ndarray of shape (k,)
    intercept : float
    leverage : tuple (m, R, c) or None
        The leverages of the kept rows' fit (:func:`solve_gram`).
    kept : ndarray of shape (n,)
        Weights of the rows the start was fitted on.
    residuals : ndarray of shape (n,) or None
        The rows' :func:`prediction_residuals` at the start (None when it
        has none).
    q : ndarray of shape (n,) or None
        The rows' leverages under ``leverage`` (:func:`row_leverages`).

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._irls import wide_start
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.normal(size=(90, 40)); y = Z @ np.ones(40) + 0.1 * rng.normal(size=90)
    >>> y[:9] += 30
    >>> coef, intercept, _, kept, _, _ = wide_start(Z, y, np.ones(90), Z.mean(0), y.mean(), True)
    >>> bool(kept[:9].sum() == 0 and np.abs(coef - 1).max() < 0.2)
    True
    """
    total = sample_weight.sum()
    parameters = Z.shape[1] + fit_intercept
    # Laid out by columns: the first Gram matrix's products read a.T in place.
    a = np.empty((Z.shape[1] + 2, Z.shape[0])).T
    np.subtract(Z, shift, out=a[:, :-2])
    a[:, -2] = 1.0
    a[:, -1] = y - y_shift
    kept = sample_weight
    gram = symmetric_sum(a.T, kept, np.empty_like(a.T))

    # Each fit below is on a set of rows that differs from the last one's in
    # a few rows: the Gram matrix of the kept rows is updated by those rows,
    # O(changed rows · k²) instead of O(n k²) a fit.
    def refit(new_kept):
        changed = np.flatnonzero(new_kept != kept)
        part = np.take(a.T, changed, axis=1)  # C-ordered, unlike a.T[:, changed]: read by rows below
        return gram + symmetric_sum(part, (new_kept - kept)[changed], np.empty_like(part))

    def shifted(coef, intercept):  # from the Gram matrix's coordinates
        return coef, intercept + y_shift - float(shift @ coef) if fit_intercept else 0.0

    half = 0.5 * total
    for _ in range(WIDE_RIDGE_STEPS):
        coef, intercept = shifted(*ridge(gram, fit_intercept, WIDE_RIDGE))
        new_kept = half_weight_subset(y - Z @ coef - intercept, sample_weight, half, fit_intercept)
        if np.array_equal(new_kept, kept):
            break
        kept, gram = new_kept, refit(new_kept)
    floor = min(total, WIDE_MIN_KEEP * parameters)
    for _ in range(WIDE_GROWTH_STEPS):
        residuals = np.abs(y - Z @ coef - intercept)
        sigma = MAD_FACTOR * weighted_median(residuals, sample_weight)
        new_kept = np.where(residuals <= WIDE_TRIM * sigma, sample_weight, 0.0)
        if new_kept.sum() < max(half, floor):
            new_kept = trimmed_weights(residuals, sample_weight, max(half, floor))
        if np.array_equal(new_kept, kept):
            break
        kept, gram = new_kept, refit(new_kept)
        coef, intercept = shifted(*ridge(gram, fit_intercept, WIDE_RIDGE))
    leverage = previous = q = changed = None
    for step in range(MAX_CONCENTRATION_STEPS):
        solved = solve_gram(gram, fit_intercept, estimate=True)
        if solved is None:
            coef, intercept = weighted_least_squares(Z, y, kept, fit_intercept)
            return coef, intercept, None, kept, None, None
        if q is not None and changed.size <= WOODBURY_ROWS * parameters:
            # The set changes by a few rows: their leverages are updated
            # rather than recomputed, the start's largest cost otherwise.
            q = updated_leverages(q, a[:, :-2], leverage, changed, kept[changed] - previous[3][changed])
        else:
            q = None
        coef, intercept, leverage = solved
        coef, intercept = shifted(coef, intercept)
        if q is None:
            q = row_leverages(a[:, :-2], leverage)
        t = np.abs(prediction_residuals(y - Z @ coef - intercept, a[:, :-2], leverage, kept, q))
        sigma = MAD_FACTOR * weighted_median(t, sample_weight)
        new_kept = np.where(t <= WIDE_TRIM * sigma, sample_weight, 0.0)
        if new_kept.sum() < floor:
            new_kept = trimmed_weights(t, sample_weight, floor)
        if np.array_equal(new_kept, kept):
            return coef, intercept, leverage, kept, t, q
        if previous is not None and np.array_equal(new_kept, previous[3]):
            # The kept rows alternate between two sets (a third of the
            # benchmark's fits): the steps left would repeat the two fits,
            # and the last of them (fit, then the set it keeps) is known.
            if (MAX_CONCENTRATION_STEPS - 1 - step) % 2:
                return previous[0], previous[1], previous[2], kept, None, previous[4]
            return coef, intercept, leverage, new_kept, None, q
        previous = (coef, intercept, leverage, kept, q)
        changed = np.flatnonzero(new_kept != kept)
        kept, gram = new_kept, refit(new_kept)
    return coef, intercept, leverage, kept, None, q


def ridge(gram, fit_intercept, penalty):
    """Weighted ridge regression on standardized columns, from a Gram matrix.

    The penalty is ``penalty`` times the total weight on each coefficient of
    the columns scaled to unit weighted variance (the intercept is not
    penalized): it adds ``penalty`` to the diagonal of their correlation
    matrix.

    Parameters
    ----------
    gram : ndarray of shape (k + 2, k + 2)
        ``Σ v a aᵀ`` of ``a = (z - shift, 1, y - y_shift)`` (as in
        :func:`solve_gram`).
    fit_intercept : bool
    penalty : float
        Positive.

    Returns
    -------
    coef : ndarray of shape (k,)
    intercept : float
        In the shifted coordinates (add ``y_shift - shift @ coef``).

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._irls import ridge
    >>> a = np.c_[np.arange(4.0), np.ones(4), 2 * np.arange(4.0) + 1]
    >>> coef, intercept = ridge(a.T @ a, True, 0.25)
    >>> coef.round(6), round(intercept, 6)
    (array([1.6]), 1.6)
    """
    k = gram.shape[0] - 2
    total = gram[k, k]
    # Only the k x k block and the target's column are centered: the wide
    # start solves this some thirty times.
    A, b = gram[:k, :k], gram[:k, k + 1]
    if fit_intercept:
        mean = gram[k] / total
        A = _centered(gram, mean, total)
        b = b - total * (mean[:k] * mean[k + 1])
    d = np.sqrt(np.maximum(np.diag(A), 0.0))
    d = np.where(d > 0, d, 1.0)
    scaled = np.divide(A, np.outer(d, d), out=A if fit_intercept else None)
    scaled.flat[:: k + 1] += penalty
    L, info = dpotrf(scaled, lower=1, clean=1)
    coef = (cho_solve_lower(L, b / d) if info == 0 else np.linalg.solve(scaled, b / d)) / d
    return coef, float(mean[k + 1] - mean[:k] @ coef) if fit_intercept else 0.0


def row_leverages(Z, leverage):
    """``q = c + ‖(z - m) R⁻ᵀ‖²`` of every row for a :func:`solve_gram` leverage ``(m, R, c)``.

    Parameters
    ----------
    Z : ndarray of shape (n, k)
        The design in the shifted coordinates of ``leverage``.
    leverage : tuple (m, R, c)

    Returns
    -------
    ndarray of shape (n,)
    """
    center, factor, const = leverage
    projected = leverage_projection(np.subtract(Z, center, order="F"), factor)
    return np.einsum("ij,ij->i", projected, projected) + const


def updated_leverages(q, Z, leverage, changed, change):
    """:func:`row_leverages` after a few rows' weights change, by Woodbury's identity.

    With ``B(a, b) = c + (a - m)ᵀ (R Rᵀ)⁻¹ (b - m)`` the bilinear form of
    ``leverage`` (``q_i = B(z_i, z_i)``), adding ``Δ_j z̃_j z̃_jᵀ`` of the
    changed rows to the weighted Gram matrix gives
    ``q_i - P_i (diag(1/Δ) + P_J)⁻¹ P_iᵀ`` with ``P_ij = B(z_i, z_j)``:
    ``O(n k |J|)`` instead of the ``O(n k²)`` of :func:`row_leverages`.

    Parameters
    ----------
    q : ndarray of shape (n,)
        The rows' leverages under ``leverage``.
    Z : ndarray of shape (n, k)
        The design in the shifted coordinates of ``leverage``.
    leverage : tuple (m, R, c)
        Of the Gram matrix before the change (:func:`solve_gram`).
    changed : ndarray of int
        The rows whose weights change.
    change : ndarray
        Their new weights minus the old ones (nonzero).

    Returns
    -------
    ndarray of shape (n,) or None
        None where the update is ill-conditioned (recompute instead).

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._irls import _gram, row_leverages, solve_gram, updated_leverages
    >>> rng = np.random.default_rng(0)
    >>> Z, y = rng.normal(size=(30, 3)), rng.normal(size=30)
    >>> old, new = np.ones(30), np.r_[np.zeros(4), np.ones(26)]
    >>> before, after = (solve_gram(_gram(Z, y, v, 0.0, 0.0), True)[2] for v in (old, new))
    >>> q = updated_leverages(row_leverages(Z, before), Z, before, np.arange(4), -np.ones(4))
    >>> bool(np.allclose(q, row_leverages(Z, after)))
    True
    """
    center, factor, const = leverage
    V = cho_solve_lower(factor, (Z[changed] - center).T)  # (R Rᵀ)⁻¹ (z_j - m)
    P = Z @ V
    P += const - center @ V
    M = P[changed]
    M[np.diag_indices_from(M)] += 1.0 / change
    if not np.linalg.cond(M) < WOODBURY_CONDITION:
        return None
    return q - np.einsum("ij,ji->i", P, np.linalg.solve(M, P.T))


def prediction_residuals(residuals, Z, leverage, weights, q=None):
    """Residuals divided by their standard deviation in units of the error's.

    For the fit of weighted least squares with weights ``v`` in ``[0, 1]``,
    ``q = z̃ᵀ (Σ v z̃ z̃ᵀ)⁻¹ z̃`` (``leverage``, :func:`solve_gram`), a row
    in the fit (``v = 1``) has residual variance ``σ²(1 - q)``, a row left
    out (``v = 0``) ``σ²(1 + q)``, the error of predicting it; in between
    ``σ²(1 + q(1 - 2v))`` interpolates. Dividing by its square root puts
    every residual on the scale of the errors, whatever ``p/n``.

    Parameters
    ----------
    residuals : ndarray of shape (n,)
    Z : ndarray of shape (n, k)
        The design in the shifted coordinates of ``leverage``.
    leverage : tuple (m, R, c)
    weights : ndarray of shape (n,)
        The fit's weights ``v`` (sample weights included).
    q : ndarray of shape (n,) or None, default=None
        The rows' :func:`row_leverages` under ``leverage`` when known.

    Returns
    -------
    ndarray of shape (n,)
    """
    if q is None:
        q = row_leverages(Z, leverage)
    variance = 1.0 + q * (1.0 - 2.0 * np.minimum(weights, 1.0))
    return residuals / np.sqrt(np.maximum(variance, 1.0 - MAX_LEVERAGE))


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


def solve_gram(gram, fit_intercept, estimate=False):
    """Weighted least squares from a :class:`mgsk._rows.Sweep`'s Gram matrix.

    ``gram`` is ``Σ a aᵀ`` (weights included) of ``a = (z - shift, 1,
    y - y_shift)``. The weighted means are removed from it, the columns are
    scaled to unit diagonal, and the normal equations are solved by
    Cholesky. Squaring the design squares its condition number, so when
    the scaled matrix's condition number exceeds :data:`MAX_GRAM_CONDITION`
    (or it is not positive definite) nothing is returned and the caller
    solves by QR instead (:func:`mgsk._weighted.weighted_least_squares`).

    Parameters
    ----------
    gram : ndarray of shape (k + 2, k + 2)
        The weighted Gram matrix.
    fit_intercept : bool
        Whether the model has an intercept.
    estimate : bool, default=False
        Whether the condition number is LAPACK's estimate
        (:func:`estimated_cholesky`, for the wide data's large ``k``)
        rather than the bound of :func:`well_conditioned_cholesky`.

    Returns
    -------
    coef : ndarray of shape (k,)
    intercept : float
        In the shifted coordinates (add ``y_shift - shift @ coef``).
    leverage : tuple (m, R, c)
        ``z̃ᵀ (Σ w z̃ z̃ᵀ)⁻¹ z̃ = c + ‖(z - m) R⁻ᵀ‖²`` for the leverages,
        ``R`` lower triangular (:func:`mgsk._rows.leverage_projection`).

    Or None when the matrix is too ill-conditioned for the normal equations.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._irls import solve_gram
    >>> a = np.c_[np.arange(4.0), np.ones(4), 2 * np.arange(4.0) + 1]
    >>> coef, intercept, _ = solve_gram(a.T @ a, True)
    >>> coef.round(6), round(intercept, 6)
    (array([2.]), 1.0)
    """
    k = gram.shape[0] - 2
    total = gram[k, k]
    if not total > 0:
        return None
    if fit_intercept:
        mean = gram[k] / total
        # Only the blocks solved are centered (k is large on wide data).
        A = _centered(gram, mean, total)
        b = gram[:k, k + 1] - total * (mean[:k] * mean[k + 1])
        const = 1.0 / total
    else:
        mean, A, b, const = np.zeros(k + 2), gram[:k, :k], gram[:k, k + 1], 0.0
    if k == 0:
        coef = np.zeros(0)
        factor = np.zeros((0, 0))
    else:
        d = np.sqrt(np.diag(A))
        if not (d > 0).all() or not np.isfinite(A).all():
            return None
        scaled = np.divide(A, np.outer(d, d), out=A if fit_intercept else None)
        L = estimated_cholesky(scaled) if estimate else _first(well_conditioned_cholesky(scaled))
        if L is None:
            return None
        coef = cho_solve_lower(L, b / d) / d
        factor = L * d[:, None]  # (z - m) R⁻ᵀ = ((z - m) / d) L⁻ᵀ
    intercept = float(mean[k + 1] - mean[:k] @ coef) if fit_intercept else 0.0
    return coef, intercept, (mean[:k], factor, const)


def _centered(gram, mean, total):
    """``G - total m mᵀ`` of the Gram matrix's leading ``k x k`` block, ``m``
    its columns' weighted means, in one new array (that of ``m mᵀ``)."""
    k = gram.shape[0] - 2
    A = np.multiply.outer(mean[:k], mean[:k])
    A *= total
    return np.subtract(gram[:k, :k], A, out=A)


def _first(pair):
    return None if pair is None else pair[0]


def estimated_cholesky(A):
    """:func:`well_conditioned_cholesky`'s ``L`` alone, its condition number estimated.

    LAPACK's estimate of the 1-norm condition number (``dpocon``, O(m²))
    stands in for the bound, whose inverse factor costs more than the
    factorisation at large ``m``: only where the estimate is within
    ``CONDITION_MARGIN`` of :data:`MAX_GRAM_CONDITION` are the eigenvalues
    computed. (The 2-norm condition number of a symmetric matrix is at most
    its 1-norm one, which the estimate rarely understates by more than a
    factor of 3.)

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._irls import estimated_cholesky
    >>> estimated_cholesky(np.array([[4.0, 2.0], [2.0, 2.0]])).tolist(), estimated_cholesky(np.diag([1.0, 1e-9]))
    ([[2.0, 0.0], [1.0, 1.0]], None)
    """
    # The wide data's matrices are symmetric bit for bit (symmetric sums): a
    # C-ordered one goes in as its transpose, the same matrix in Fortran
    # order, which LAPACK's wrapper copies without transposing it.
    L = _finite_cholesky(A.T if A.flags.c_contiguous else A)
    if L is None:
        return None
    rcond, info = dpocon(L, float(np.abs(A).sum(axis=0).max()), uplo="L")
    if info != 0 or not rcond * MAX_GRAM_CONDITION > CONDITION_MARGIN:
        return L if _eigen_conditioned(A) else None
    return L


def _finite_cholesky(A):
    """The lower Cholesky factor of ``A``, None if it fails or is not finite."""
    # LAPACK directly: the scipy.linalg wrappers' checks cost more than the
    # factorisation at small k, and this runs in every step.
    L, info = dpotrf(A, lower=1, clean=1)
    return L if info == 0 and np.isfinite(L).all() else None


def _eigen_conditioned(A):
    """Whether the condition number of ``A`` (by its eigenvalues) is below the limit."""
    eig = np.linalg.eigvalsh(A)
    return bool(eig[0] > eig[-1] / MAX_GRAM_CONDITION)


def cho_solve_lower(L, b):
    """``x`` with ``L Lᵀ x = b`` for a lower Cholesky factor ``L``."""
    return dpotrs(L, b, lower=1)[0]


def well_conditioned_cholesky(A):
    """``(L, L⁻¹)`` of a symmetric positive definite ``A = L Lᵀ`` whose
    condition number is below :data:`MAX_GRAM_CONDITION`, else None.

    ``λ_max ≤ trace A`` and ``1/λ_min ≤ trace A⁻¹ = ‖L⁻¹‖²_F`` bound the
    condition number from above at the cost of the factorisation; only
    when that bound is not below the limit are the eigenvalues computed.

    Parameters
    ----------
    A : ndarray of shape (m, m)
        Symmetric, best scaled to unit diagonal.

    Returns
    -------
    tuple of ndarray (L, L_inv) or None

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._irls import well_conditioned_cholesky
    >>> L, L_inv = well_conditioned_cholesky(np.array([[4.0, 2.0], [2.0, 2.0]]))
    >>> L.round(6).tolist(), well_conditioned_cholesky(np.diag([1.0, 1e-9]))
    ([[2.0, 0.0], [1.0, 1.0]], None)
    """
    L = _finite_cholesky(A)
    if L is None:
        return None
    L_inv, info = dtrtri(L, lower=1)
    if info != 0:
        return None
    bound = float(np.trace(A)) * float(np.einsum("ij,ij->", L_inv, L_inv))
    if not bound < MAX_GRAM_CONDITION and not _eigen_conditioned(A):
        return None
    return L, L_inv


def scale_coupling(sweep, unit, image_unit, sigma, fidelity_sigma, solved):
    """How the unit moves with the step: ``(g_c, u, c')`` for :func:`newton_step`.

    The unit of the fixed point solves the scale equation ``c = U(θ, c)``
    (:func:`_scale`), ``U = κησS(F)/2`` with ``S'(F)`` from ``sin s = F s``.
    At the swept coefficients its root is ``c' = c + (U - c) / (1 - ∂U/∂c)``
    (one Newton step from the swept unit ``c``, whose image ``U(c)`` is
    ``image_unit``), and along the root ``dc/dθ = u = ∂U/∂θ / (1 - ∂U/∂c)``.
    The derivatives of the mean fidelity ``F`` come from the sweep's sums
    (taken at the previous ``σ``: an approximate Jacobian, exact at the
    fixed point, so the convergence stays superlinear); ``σ`` is held for
    the step. ``g_c`` is the derivative of the estimating equation with
    respect to the unit.

    Parameters
    ----------
    sweep : Sweep
        The sums at the swept point (with ``fidelity_unit``).
    unit : float
        The unit ``c`` of the sweep.
    image_unit : float
        ``U(c)``, the unit the scale equation gives at the swept residuals
        and weights.
    sigma : float
        The MAD ``σ`` of the swept residuals (positive).
    fidelity_sigma : float
        The ``σ`` whose ``κσ`` was the sweep's ``fidelity_unit``.
    solved : bool
        Whether ``U`` solves the scale equation (``scale="auto"`` and ``S``
        above its floor); else it does not depend on ``θ`` or ``c``.

    Returns
    -------
    tuple (g_c, u, c') of ndarray (k + 2,), ndarray (k + 2,), float, or None
        None when the sweep has no such sums or the root is not bracketed
        near ``U(c)``.
    """
    if sweep.unit_gradient is None:
        return None
    u = np.zeros_like(sweep.unit_gradient)
    root = image_unit
    N, D, N_c, D_c = sweep.scale_sums
    s = 0.5 * np.pi * 2.0 * image_unit / (KAPPA * ETA * sigma)  # S = 2s/π
    if solved:
        if not (D > 0 and 0.0 < s < np.pi):
            return None
        F = N / D
        dU_dF = KAPPA * ETA * sigma / 2.0 * (2.0 / np.pi) * s / (np.cos(s) - np.sin(s) / s)
        F_c = (N_c - F * D_c) / (unit * D)
        V1, V2, V3 = sweep.fidelity_gradient.T
        F_theta = ((V1 - F * V2) / unit + V3 * 2.0 / (KAPPA * fidelity_sigma)) / D
        h_c = dU_dF * F_c - 1.0
        if not (h_c < 0 and np.isfinite(dU_dF)):
            return None
        root = unit - (image_unit - unit) / h_c
        u = -dU_dF * F_theta / h_c
        if not abs(root - image_unit) <= MAX_UNIT_CHANGE * image_unit:
            return None
    return sweep.unit_gradient, u, root


def jacobian_factor(sweep, m, estimate=False):
    """``(L, d)``: the Cholesky factor of the Jacobian of :func:`newton_step`, or None.

    ``L Lᵀ = J / (d dᵀ)`` for the Jacobian ``J`` of the first ``m`` rows of
    ``sweep.newton_gram``, ``d`` the root of the Gram matrix's diagonal;
    None where ``J`` is indefinite or ill-conditioned (its condition number
    estimated with ``estimate``, as in :func:`solve_gram`), or where the
    sweep did not sum it because it found it indefinite.
    """
    d = np.sqrt(np.abs(np.diag(sweep.gram[:m, :m])))
    if m == 0 or sweep.newton_gram is None or not np.all(d > 0):
        return None
    scaled = np.multiply.outer(d, d)
    np.divide(sweep.newton_gram[:m, :m], scaled, out=scaled)
    L = estimated_cholesky(scaled) if estimate else _first(well_conditioned_cholesky(scaled))
    return None if L is None else (L, d)


def newton_step(sweep, coef, intercept, shift, y_shift, fit_intercept, unit, coupling=None, factor=None):
    """A Newton step on the estimating equation, or None.

    The equation is ``g(θ, c) = Σ s w r z̃ = 0`` (``z̃ = (z, 1)``,
    ``w = sech(r/c)``), its Jacobian ``-Σ s ψ'(x) z̃ z̃ᵀ``
    (:attr:`mgsk._rows.Sweep.newton_gram`). With ``coupling`` (from
    :func:`scale_coupling`) the step is the joint one on ``(θ, c)``: ``c``
    follows the scale equation's root, ``c = c' + uᵀΔθ``, so the equation
    solved is ``g(θ_0, c) + g_c (c' - c) + (g_θ + g_c uᵀ) Δθ = 0``, and the
    new unit is returned with the coefficients; without it the step holds
    the unit. A redescending weight makes the Jacobian indefinite where many
    rows have ``|x| > 1.2``: then, or when the step would move the fitted
    values by more than the unit (root mean square over the weighted rows),
    None is returned and the caller takes the reweighting step instead.

    Parameters
    ----------
    sweep : Sweep
        The sums at ``(coef, intercept)``.
    coef : ndarray of shape (k,)
    intercept : float
    shift : ndarray of shape (k,)
        The rows' column shifts.
    y_shift : float
        The rows' target shift.
    fit_intercept : bool
    unit : float
        The unit of the weights.
    coupling : tuple (g_c, u, c') or None, default=None
        See :func:`scale_coupling`.
    factor : tuple (L, d) or None, default=None
        The Jacobian's factor (:func:`jacobian_factor`), of this sweep or
        an earlier one; None factors ``sweep.newton_gram``.

    Returns
    -------
    tuple (coef, intercept, unit) or None
        ``unit`` is None without ``coupling``.
    """
    k = coef.shape[0]
    m = k + 1 if fit_intercept else k  # the parameters: the leading rows of the sums
    offset = intercept + float(shift @ coef) - y_shift
    theta = np.append(coef, offset) if fit_intercept else coef
    G = sweep.gram
    Gm = G[:m, :m]
    grad = G[:m, k + 1] - Gm @ theta if sweep.gradient is None else sweep.gradient[:m]
    if factor is None:
        factor = jacobian_factor(sweep, m)
        if factor is None:
            return None
    L, d = factor
    new_unit = None
    if coupling is None:
        delta = cho_solve_lower(L, grad / d) / d
    else:
        # (J - g_c uᵀ)⁻¹ by Sherman-Morrison on the Cholesky factor of J.
        g_c, u, c_next = coupling
        g_c, u = g_c[:m], u[:m]
        with np.errstate(all="ignore"):
            p = cho_solve_lower(L, (grad + g_c * (c_next - unit)) / d) / d
            q = cho_solve_lower(L, g_c / d) / d
            delta = p + q * (float(u @ p) / (1.0 - float(u @ q)))
            new_unit = c_next + float(u @ delta)
        if not (np.all(np.isfinite(delta)) and abs(new_unit - c_next) <= MAX_UNIT_CHANGE * c_next):
            return None
    moved = float(delta @ Gm @ delta) / G[k, k]
    if not moved <= unit**2:
        return None
    new = theta + delta
    new_coef = new[:k]
    new_intercept = float(new[k]) - float(shift @ new_coef) + y_shift if fit_intercept else 0.0
    return new_coef, new_intercept, new_unit


def fitted_cosine(gram, shift, first, second):
    """Cosine of the angle between two changes of the fitted values.

    Parameters
    ----------
    gram : ndarray of shape (k + 2, k + 2)
        A :class:`mgsk._rows.Sweep`'s weighted Gram matrix: the metric
        ``Σ s w (Δŷ)²`` of the fitted values.
    shift : ndarray of shape (k,)
        The rows' column shifts.
    first, second : tuple (d_coef, d_intercept)
        Changes of the coefficients and the intercept.

    Returns
    -------
    float
        In ``[-1, 1]``; nan when a change is 0.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._irls import fitted_cosine
    >>> a = np.c_[np.arange(4.0), np.ones(4), np.zeros(4)]
    >>> change = (np.array([1.0]), 0.0)
    >>> opposite = (-change[0], 0.0)
    >>> fitted_cosine(a.T @ a, np.zeros(1), change, change), fitted_cosine(a.T @ a, np.zeros(1), change, opposite)
    (1.0, -1.0)
    """
    k = shift.shape[0]
    # In the sweep's shifted coordinates the intercept moves by Δb + shift·Δβ.
    u, v = (np.r_[d_coef, d_intercept + shift @ d_coef] for d_coef, d_intercept in (first, second))
    M = gram[: k + 1, : k + 1]
    with np.errstate(all="ignore"):
        return float(u @ M @ v) / float(np.sqrt(float(u @ M @ u) * float(v @ M @ v)))


def linear_tail_stretch(last, change):
    """How far to extend ``change`` when two steps shrink along one direction, or None.

    Where ``change ≈ μ last`` (the steps of a linear iteration along its
    dominant direction, ``0 < μ ≤ WIDE_TAIL_RATE``, the misfit at most
    ``WIDE_TAIL_MISFIT`` of ``change``), the remaining steps sum to
    ``change μ / (1 - μ)``: the step is stretched by ``1 / (1 - μ)``
    (Aitken's extrapolation along the direction).

    Parameters
    ----------
    last, change : ndarray of shape (m,)
        Two successive steps.

    Returns
    -------
    float or None

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._irls import linear_tail_stretch
    >>> linear_tail_stretch(np.array([1.0, 0.1]), np.array([0.5, 0.05])), linear_tail_stretch(np.array([1.0, 0.0]), np.array([0.0, 0.5]))
    (2.0, None)
    """
    rate = float(change @ last) / float(last @ last)
    if not 0.0 < rate <= WIDE_TAIL_RATE:
        return None
    if not np.linalg.norm(change - rate * last) <= WIDE_TAIL_MISFIT * np.linalg.norm(change):
        return None
    return 1.0 / (1.0 - rate)


@dataclass
class Iterate:
    """One evaluation of the reweighting map: its input and its image."""

    coef: np.ndarray
    intercept: float
    unit: float
    sigma: float
    sweep: object
    next_coef: np.ndarray
    next_intercept: float
    next_unit: float
    leverage: tuple
    joint: bool = False  # whether the image is a joint Newton step on (θ, c)


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
    adjust_leverage=False,
    rows=None,
    start=None,
    joint_scale=False,
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
    adjust_leverage : bool, default=False
        Whether residuals enter the weights and the scale as ``r / sqrt(1 - h)``.
    rows : object or None, default=None
        The reductions over the rows (:mod:`mgsk._rows`); None builds an
        :class:`~mgsk._rows.InMemoryRows` of ``Z, y, sample_weight``.
    start : tuple (coef, intercept) or None, default=None
        Start from these coefficients instead of the robust start.
    joint_scale : bool, default=False
        Whether the Newton steps are joint steps on the coefficients and
        the unit (:func:`scale_coupling`), which converge quadratically;
        False holds the unit for the step (and the robust start's
        candidates are compared after such steps).

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
    if rows is None:
        rows = InMemoryRows(Z, y, sample_weight, y_scale, fit_intercept)
    Zs, ys, ws = rows.start_sample()
    X_start = None if X_leverage is None else np.ascontiguousarray(X_leverage[start_rows(X_leverage.shape[0])])
    leverage = kept = start_residuals = start_q = None
    if start is not None:
        coef, intercept = start
    else:
        settles = joint_scale and y is not None and ys.shape[0] < y.shape[0] and ws.sum() > 0
        with single_blas_thread():  # the start's products are small too
            if adjust_leverage:
                coef, intercept, leverage, kept, start_residuals, start_q = wide_start(Zs, ys, ws, rows.shift, rows.y_shift, fit_intercept)
            else:
                finishing = FINISHING_CONCENTRATION_STEPS if settles else MAX_CONCENTRATION_STEPS
                coef, intercept = robust_start(Zs, ys, ws, X_start, fit_intercept, subsample=False, finishing_steps=finishing)
        if settles:
            # Tall data: the fixed point of the start's rows is within their
            # sampling error of that of all rows, a few cheap steps away;
            # from it the steps over all rows converge in one step fewer.
            sample = gnostic_irls(Zs, ys, ws, fit_intercept=fit_intercept, scale=scale, max_iter=max_iter, tol=tol, start=(coef, intercept), joint_scale=True)
            if sample.converged:
                coef, intercept = sample.coef, sample.intercept
    # The first scale equation is weighted by the half of the (start) rows
    # that fit the start best, so gross outliers cannot inflate it.
    if start_residuals is None:
        start_residuals = ys - Zs @ coef - intercept
        if leverage is not None:
            start_residuals = prediction_residuals(start_residuals, Zs - rows.shift, leverage, kept, start_q)
    if kept is None:
        half = (half_weight_subset(start_residuals, ws, 0.5 * ws.sum(), fit_intercept) > 0).astype(float)
    else:
        # The wide start has already set the outliers aside; weighting the
        # first scale equation by only half of the rows would settle it at
        # a unit that rejects good rows too.
        half = (kept > 0).astype(float)
    start_sigma = mad_scale(start_residuals, ws)
    if start_q is not None:
        rows.start_leverages(leverage, start_q)  # the first sweep's, at the start's leverage
    if adjust_leverage:
        # The start's prediction residuals measure the error scale honestly;
        # the unit stays above its efficient value (not half of the MAD), or
        # the weights, fitted with few rows per parameter, reject good rows.
        start_sigma *= WIDE_UNIT_FLOOR
    with single_blas_thread():  # its dot products are short: more threads only spin
        unit = settled_unit(start_residuals, ws, half, scale, start_sigma)

    fidelity_sigma = [start_sigma]  # σ of the last step: the unit of the sweep's scale sums
    # Wide data: the Jacobian's factor that the next step reuses (see below).
    chord = [None]
    # Wide data: the parameters' count when the last Jacobian failed its
    # factorisation (at 300 x 200 it does for 10-30 steps in a row): the
    # next sweep tests whether its Jacobian is indefinite before summing it
    # (see InMemoryRows.sweep's indefinite).
    curved = [None]
    tail = [None]
    refresh = [False]  # whether the next step refreshes the leverages (see reweight)

    def reweight(coef, intercept, unit, leverage, newton=True):
        """The map: one sweep at (coef, unit), the new coefficients and unit."""
        fidelity_unit = KAPPA * fidelity_sigma[0] if joint_scale and fidelity_sigma[0] > 0 else None
        reused = chord[0]
        skip = {} if reused is None else {"jacobian": False}
        metric = None
        if adjust_leverage and newton and refresh[0] and leverage is not None:
            # Wide data, after an accepted Newton step: this step's leverages
            # are refreshed to the Gram matrix at this point's weights, summed
            # by a first sweep (at the last step's leverages, which the rows
            # keep). Held leverages lag one step, and the Newton steps then
            # converge only every other step. Before, the reweighting steps
            # wander among the fixed points (300 x 200), and a refresh costs
            # a sweep and changes where they settle.
            metric = rows.sweep(coef, intercept, unit, leverage)
            solved = solve_gram(metric.gram, fit_intercept, estimate=True)
            if solved is None:
                metric = None
            else:
                leverage = solved[2]
        if curved[0] is not None and newton and metric is None:
            skip["indefinite"] = curved[0]
        sweep = rows.sweep(coef, intercept, unit, leverage if adjust_leverage else None, newton=newton, fidelity_unit=fidelity_unit, gram=metric is None, **skip)
        chord[0] = None
        if metric is None:
            solved = solve_gram(sweep.gram, fit_intercept, estimate=adjust_leverage)
        else:
            # The reweighting step, the metric of the fitted values and the
            # Jacobian's scaling come from the first sweep's Gram matrix.
            sweep.gram = metric.gram
        sigma, image_unit, floored, image = _scale(rows, scale, start_sigma, unit, sweep, fidelity_sigma[0])
        stepped = None
        if solved is None:
            new_coef, new_intercept = rows.qr_solve(fit_intercept)
            new_leverage = leverage
        else:
            new_coef, new_intercept, new_leverage = solved
            new_intercept += rows.y_shift - float(rows.shift @ new_coef) if fit_intercept else 0.0
            if newton and sigma > 0:
                auto = scale == "auto" and not floored
                coupling = scale_coupling(sweep, unit, image_unit, sigma, fidelity_sigma[0], auto) if joint_scale else None
                m = coef.shape[0] + fit_intercept
                factor = reused if reused is not None else jacobian_factor(sweep, m, estimate=adjust_leverage)
                stepped = factor and newton_step(sweep, coef, intercept, rows.shift, rows.y_shift, fit_intercept, unit, coupling, factor)
                if adjust_leverage:
                    curved[0] = m if factor is None and reused is None else None
                elif stepped and stepped[2] is not None:
                    change = (stepped[0] - coef, stepped[1] - intercept)
                    if _norm(change) <= CHORD_STEP * _norm(stepped[:2]) and abs(stepped[2] - unit) <= CHORD_STEP * unit:
                        # The Jacobian moves with the coefficients and the unit: after
                        # a step this small, a fresh one would change the next step by a
                        # small fraction of its size (that step is the last or nearly).
                        chord[0] = factor
                if stepped and adjust_leverage:
                    newton_change = (stepped[0] - coef, stepped[1] - intercept)
                    plain_change = (new_coef - coef, new_intercept - intercept)
                    small = _norm(newton_change) <= WIDE_SMALL_STEP * _norm((stepped[0], stepped[1]))
                    if not (small or fitted_cosine(sweep.gram, rows.shift, newton_change, plain_change) >= WIDE_NEWTON_AGREEMENT):
                        stepped = None
                    elif _norm(newton_change) <= CHORD_STEP * _norm((stepped[0], stepped[1])):
                        # The leverages' lag keeps the convergence linear
                        # here: a fresh Jacobian would not make it faster.
                        chord[0] = factor
                if stepped:
                    new_coef, new_intercept = stepped[:2]
        joint = bool(stepped) and stepped[2] is not None
        refresh[0] = bool(stepped)
        if joint:
            new_unit = stepped[2]
        elif image is None:
            new_unit = image_unit
        else:  # the map's unit: the root of the scale equation at these residuals
            new_unit = _root_of_unit(image, unit, image_unit, MAX_UNIT_STEPS)
        fidelity_sigma[0] = sigma
        if adjust_leverage:
            # Wide data: the Newton steps converge linearly (their Jacobian
            # holds the leverages), along one direction: extrapolated.
            change = np.concatenate(([new_intercept - intercept, new_unit - unit], new_coef - coef)) if joint else None
            stretch = None if change is None or tail[0] is None else linear_tail_stretch(tail[0], change)
            tail[0] = None if stretch else change  # the next needs two plain Newton steps
            if stretch:
                new_coef = coef + stretch * (new_coef - coef)
                new_intercept = intercept + stretch * (new_intercept - intercept)
                new_unit = unit + stretch * (new_unit - unit)
        return Iterate(coef, intercept, unit, sigma, sweep, new_coef, new_intercept, new_unit, new_leverage, joint)

    history = []
    # On wide data the map's first steps move rows in and out of the fit:
    # extrapolating over them wandered (up to 227 steps at 300 x 200 where
    # plain steps took 30-53), so reweighting steps are taken as they are.
    accelerator = None if adjust_leverage else Anderson(y_scale, rows.shift)
    with single_blas_thread():  # every product of a step is small or blocked
        n_iter, current, S, converged = _iterate(
            reweight, accelerator, (coef, intercept, unit, leverage), scale, tol, max_iter, history, callback
        )
    x = _ratio(rows.residuals, current.unit)
    return IRLSResult(current.coef, current.intercept, rows.weights.copy(), S, current.sigma, x, n_iter, converged, history)


def _iterate(reweight, accelerator, start, scale, tol, max_iter, history, callback):
    """The loop of :func:`gnostic_irls`: evaluate, record, stop or accelerate."""
    coef, intercept, unit, leverage = start
    converged = False
    for n_iter in range(1, max_iter + 1):
        # Newton and Anderson steps reach the fixed point in a few steps; where
        # they have not after ACCELERATED_STEPS (a redescending map can cycle),
        # plain reweighting steps, which converge linearly, take over.
        accelerated = n_iter <= ACCELERATED_STEPS
        current = reweight(coef, intercept, unit, leverage, newton=accelerated)
        theta = np.concatenate(([intercept], coef))  # not np.r_: this runs every step
        target = np.concatenate(([current.next_intercept], current.next_coef))
        step = float(np.linalg.norm(target - theta))
        S = _reported_scale(scale, unit, current.sigma)
        record = {"iteration": n_iter, "re": current.sweep.re, "loss": current.sweep.loss, "scale": S, "step": step}
        history.append(record)
        if callback is not None:
            callback(record)
        if current.sigma == 0 or step <= tol * float(np.linalg.norm(target)):
            converged = True
            break
        leverage = current.leverage
        if current.joint:
            # A joint Newton step converges quadratically by itself; the
            # accelerator's memory is of the other map.
            if accelerator is not None:
                accelerator.points, accelerator.residuals = [], []
            coef, intercept, unit = current.next_coef, current.next_intercept, current.next_unit
        elif accelerated and accelerator is not None:
            coef, intercept, unit = accelerator.next(current)
        else:
            coef, intercept, unit = current.next_coef, current.next_intercept, current.next_unit
    return n_iter, current, S, converged


def _norm(change):
    """``‖(intercept, coef)‖`` of a ``(coef, intercept)`` pair."""
    return float(np.sqrt(change[0] @ change[0] + change[1] ** 2))


def _reported_scale(scale, unit, sigma):
    """The ``S`` of the weights ``sech(r / unit)`` at the residual MAD ``σ``."""
    if scale != "auto" or not sigma > 0:
        return 1.0 if scale == "auto" else float(scale)
    return 2.0 * unit / (KAPPA * ETA * sigma)


def settled_unit(residuals, sample_weight, first_weights, scale, min_sigma):
    """The unit ``κ η σ S / 2`` at its fixed point for fixed residuals.

    The scale equation is weighted by the filtering weights, which depend on
    the unit: at the start the coefficients are held and the root of the
    one-dimensional equation ``c = U(c)`` is found by secant steps (on the
    start's rows, no pass over X), so the gnostic iteration starts with a
    scale that has settled.

    Parameters
    ----------
    residuals : ndarray of shape (m,)
        Residuals of the start.
    sample_weight : ndarray of shape (m,)
        Their weights.
    first_weights : ndarray of shape (m,)
        Filtering weights of the first scale equation.
    scale : "auto" or float
        The estimator's ``scale``.
    min_sigma : float
        Floor of the effective residual scale (see :func:`gnostic_weights`).

    Returns
    -------
    float
        The unit, positive.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._irls import settled_unit
    >>> r = np.random.default_rng(0).normal(size=2000)
    >>> round(settled_unit(r, np.ones(2000), np.ones(2000), "auto", 0.0), 1)
    1.4
    """
    _, _, S, sigma = gnostic_weights(residuals, sample_weight, first_weights, scale, min_sigma)
    first = _unit(sigma, S)
    if scale != "auto" or sigma == 0:
        return first
    floor = max(sigma, min_sigma) / (KAPPA * ETA * sigma)
    abs_residuals = np.abs(residuals)
    weighted_fidelity = sample_weight * _sech_abs(abs_residuals, KAPPA * sigma / 2.0)

    def image(weight_unit):
        w = _sech_abs(abs_residuals, weight_unit)
        total = float(w @ sample_weight)
        S = scale_from_fidelity(float(w @ weighted_fidelity) / total) if total > 0 else 2.0
        return _unit(sigma, max(S, floor))

    return _root_of_unit(image, first, image(first), MAX_SCALE_STEPS)


def _root_of_unit(image, c0, image_c0, steps):
    """Secant steps towards the root of ``image(c) = c`` from ``c0``.

    A step that would leave ``(c/2, 2c)`` is replaced by the plain step
    ``c → image(c)``; at most ``steps`` more evaluations of ``image``.
    """
    c1 = image_c0
    f0 = c1 - c0
    for _ in range(steps):
        if abs(f0) <= UNIT_TOL * c1:
            break
        f1 = image(c1) - c1
        if abs(f1) <= UNIT_TOL * c1 or f1 == f0:
            c1 += f1
            break
        c2 = c1 - f1 * (c1 - c0) / (f1 - f0)
        if not 0.5 * c1 < c2 < 2.0 * c1:
            c2 = c1 + f1
        c0, f0, c1 = c1, f1, c2
    return c1


def _scale(rows, scale, min_sigma, unit, sweep=None, sweep_sigma=None):
    """``σ`` and the scale equation's unit at the last sweep.

    At fixed residuals the unit of the fixed point is the root of
    ``U(c) = c``, ``U`` the unit the scale equation gives when it is
    weighted by ``sech(r*/c)``; secant steps (:func:`_root_of_unit`) from
    the unit of the sweep find it in a few one-dimensional sums, or the
    joint Newton step (:func:`scale_coupling`) takes one Newton step.

    ``U(c)`` at the sweep's unit needs the mean fidelity at ``κσ``, ``σ``
    the MAD of the swept residuals. A sweep with ``fidelity_slopes`` has
    summed the fidelities at ``κ sweep_sigma`` (the previous step's ``σ``)
    and their first two derivatives: the mean at ``κσ`` then follows to
    second order in ``ln(σ / sweep_sigma)``, without another pass over the
    rows. ``σ`` moves by about the step's relative size (at most a few
    percent from the start's rows to all rows), so the error is of the
    order of its cube; at the fixed point it vanishes.

    Returns
    -------
    sigma : float
        MAD of the residuals about 0 (their mean absolute value when that
        is 0).
    image_unit : float
        ``U(c)`` at the sweep's unit and weights.
    floored : bool
        Whether ``S`` is at its floor there.
    image : callable or None
        ``c → U(c)`` at these residuals; None when ``U`` does not depend on
        ``c`` (a fixed ``scale``, or ``σ = 0``).
    """
    sigma = MAD_FACTOR * rows.quantile(0.5, center=0.0)
    if not sigma > 0:
        sigma = rows.abs_mean()
    if not sigma > 0:
        return 0.0, _unit(0.0, 1.0), False, None
    if scale != "auto":
        return sigma, _unit(sigma, float(scale)), False, None
    floor = max(sigma, min_sigma) / (KAPPA * ETA * sigma)

    def unit_of(fidelity, total):
        S = scale_from_fidelity(fidelity / total) if total > 0 else 2.0
        return _unit(sigma, max(S, floor))

    def image(weight_unit):
        return unit_of(*rows.fidelity_sums(KAPPA * sigma, weight_unit))

    if sweep is not None and sweep.fidelity_slopes is not None:
        fidelity, total = sweep.scale_sums[:2]
        slope, curvature = sweep.fidelity_slopes
        change = math.log(sigma / sweep_sigma)
        image_unit = unit_of(fidelity + change * (slope + 0.5 * change * curvature), total)
    else:
        image_unit = image(None)
    return sigma, image_unit, image_unit <= _unit(sigma, floor) * (1.0 + UNIT_TOL), image


def _unit(sigma, S):
    """The residual scale of the weights, ``κ η σ S / 2`` (a tiny positive floor)."""
    return max(KAPPA * ETA * sigma * S / 2.0, np.finfo(float).tiny)


class Anderson:
    """Safeguarded Anderson acceleration of the reweighting map.

    The state is ``u = (θ, y_scale · ln unit) / y_scale``. Each step combines
    the last :data:`ANDERSON_MEMORY` map evaluations so that the linear
    combination of their residuals ``G(u) - u`` is smallest (type II,
    Walker & Ni, 2011). Safeguards, because a redescending map has other
    fixed points: an accelerated point whose fitted values differ from the
    plain iterate's by more than the residual scale of the weights (root
    mean square over the weighted rows) is replaced by the plain iterate,
    and the memory is dropped when a residual more than doubles. The fixed
    points are those of the plain iteration.
    """

    def __init__(self, y_scale, shift):
        self.y_scale, self.shift = y_scale, shift  # shift: the rows' column shifts
        self.points, self.residuals = [], []

    def next(self, current):
        """The next ``(coef, intercept, unit)`` after the evaluation ``current``."""
        scale = self.y_scale
        u = np.concatenate(([current.intercept], current.coef, [np.log(current.unit) * scale])) / scale
        g = np.concatenate(([current.next_intercept], current.next_coef, [np.log(current.next_unit) * scale])) / scale
        f = g - u
        plain = current.next_coef, current.next_intercept, current.next_unit
        if not np.all(np.isfinite(g)):
            self.points, self.residuals = [], []
            return plain
        if self.residuals and np.linalg.norm(f) > 2.0 * np.linalg.norm(self.residuals[-1]):
            self.points, self.residuals = [], []
        self.points.append(u)
        self.residuals.append(f)
        del self.points[: -ANDERSON_MEMORY - 1], self.residuals[: -ANDERSON_MEMORY - 1]
        if len(self.points) == 1:
            return plain
        dF = np.diff(np.array(self.residuals), axis=0).T
        dU = np.diff(np.array(self.points), axis=0).T
        gamma = np.linalg.lstsq(dF, f, rcond=1e-10)[0]
        new = g - (dU + dF) @ gamma
        if not np.all(np.isfinite(new)):
            self.points, self.residuals = [u], [f]
            return plain
        move = (new - g)[:-1] * scale  # (intercept, coef) change
        k = move.shape[0] - 1
        gram = current.sweep.gram
        total = gram[k, k]
        # In the sweep's shifted coordinates the intercept moves by Δb + shift·Δβ.
        d = np.r_[move[1:], move[0] + self.shift @ move[1:]]
        moved = float(d @ gram[: k + 1, : k + 1] @ d) / total if total > 0 else np.inf
        if not moved <= min(current.unit, current.next_unit) ** 2:
            return plain
        theta = new[:-1] * scale
        return theta[1:], float(theta[0]), float(np.exp(new[-1]))
