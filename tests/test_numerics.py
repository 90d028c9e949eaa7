"""The pure numerical functions behind the regressors, tested on their own."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import mgsk._weighted as weighted
from mgsk._gnostic import scale_from_fidelity, sech
from mgsk._irls import (
    EFFICIENT_C,
    ETA,
    KAPPA,
    WIDE_TAIL_RATE,
    _gram,
    gnostic_weights,
    leverage_weights,
    linear_tail_stretch,
    prediction_residuals,
    robust_start,
    row_leverages,
    solve_gram,
    updated_leverages,
    wide_start,
)
from mgsk._weighted import (
    SELECTION_CUTOFF,
    mad_scale,
    trimmed_weights,
    weighted_least_squares,
    weighted_median,
    weighted_quantile,
)

values = arrays(np.float64, st.integers(1, 40), elements=st.floats(-1e6, 1e6))


@given(values, st.data())
def test_weighted_median_equals_median_of_repeated_rows(a, data):
    counts = np.array(data.draw(st.lists(st.integers(0, 4), min_size=len(a), max_size=len(a))))
    if counts.sum() == 0:
        return
    repeated = np.repeat(a, counts)
    assert weighted_median(a, counts.astype(float)) == np.sort(repeated)[(len(repeated) - 1) // 2]


def _sorted_quantile(a, w, q):
    order = np.argsort(a, kind="stable")
    cw = np.cumsum(w[order])
    return a[order[np.searchsorted(cw, q * cw[-1])]]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 3000),
    levels=st.integers(1, 50),
    q=st.sampled_from([0.1, 0.25, 0.5, 0.9, 1.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_selection_quantile_equals_the_sorted_cumulative_sum(n, levels, q, seed):
    # Many rows (so the partition rounds run), ties, zero and integer weights.
    rng = np.random.default_rng(seed)
    a = rng.integers(0, levels, size=n).astype(float)
    w = rng.integers(0, 4, size=n).astype(float)
    if w.sum() == 0:
        w[0] = 1.0
    assert weighted_quantile(a, w, q) == _sorted_quantile(a, w, q)
    assert weighted_quantile(a, None, q) == _sorted_quantile(a, np.ones(n), q)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(SELECTION_CUTOFF + 1, 2000),
    levels=st.integers(1, 3),
    q=st.sampled_from([0.5, 1.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_selection_quantile_with_real_weights_and_ties(n, levels, q, seed):
    # Partial sums of real weights need not add up to their total in the last
    # bit; at q = 1 with ties the selection ran past the largest value.
    rng = np.random.default_rng(seed)
    a = rng.integers(0, levels, size=n).astype(float)
    w = rng.random(n) * 10.0 ** rng.uniform(-3, 3, size=n)
    got = weighted_quantile(a, w, q)
    if q == 1.0:
        assert got == a.max()
    else:
        order = np.argsort(a, kind="stable")
        cw = np.cumsum(w[order])
        # the lower quantile, up to the rounding of the partial sums
        assert a[order[np.searchsorted(cw, q * cw[-1] * (1 - 1e-9))]] <= got <= a[order[np.searchsorted(cw, q * cw[-1] * (1 + 1e-9))]]


def test_selection_quantile_of_a_subnormal_total_is_the_smallest_value():
    a = np.repeat([1.0, 0.0], 500)  # ties: the selection's pivots are the values
    w = np.zeros(1000)
    w[0] = 5e-324  # half of it rounds to 0
    assert weighted_quantile(a, w, 0.5) == 0.0


@given(values)
def test_uniform_weights_take_the_same_median(a):
    assert weighted_median(a, np.full(len(a), 3.0)) == weighted_median(a) == np.sort(a)[(len(a) - 1) // 2]


@given(arrays(np.float64, st.integers(2, 30), elements=st.floats(0, 100)), st.data())
def test_trimming_keeps_exactly_the_asked_weight(dev, data):
    weights = np.array(data.draw(st.lists(st.integers(0, 3), min_size=len(dev), max_size=len(dev))), float)
    keep = data.draw(st.floats(0, float(weights.sum())))
    kept = trimmed_weights(dev, weights, keep)
    assert kept.sum() == pytest.approx(keep, abs=1e-9)
    assert np.all((kept >= 0) & (kept <= weights))
    if np.any(kept > 0) and np.any(kept < weights):
        # nothing left out is closer than anything kept
        assert dev[kept > 0].max() <= dev[kept < weights].min() + 1e-12


def test_mad_is_normal_consistent():
    rng = np.random.default_rng(0)
    assert mad_scale(rng.normal(scale=3.0, size=200_000)) == pytest.approx(3.0, rel=0.01)


@given(st.integers(1, 6), st.integers(0, 3), st.booleans())
@settings(max_examples=30, deadline=None)
def test_blocked_least_squares_matches_lstsq(k, seed, fit_intercept):
    rng = np.random.default_rng(seed)
    n = 3 * weighted.BLOCK_ROWS + 17  # several blocks and a ragged last one
    Z = rng.normal(size=(n, k)) * rng.uniform(0.1, 10, size=k)
    y = Z @ rng.normal(size=k) + 5 + rng.normal(size=n)
    w = rng.uniform(0, 2, size=n)
    coef, intercept = weighted_least_squares(Z, y, w, fit_intercept)
    A = np.c_[Z, np.ones(n)] if fit_intercept else Z
    ref = np.linalg.lstsq(A * np.sqrt(w)[:, None], y * np.sqrt(w), rcond=None)[0]
    np.testing.assert_allclose(np.r_[coef, intercept] if fit_intercept else coef, ref, rtol=1e-9, atol=1e-9)


def test_least_squares_is_minimum_norm_when_rank_deficient():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 1))
    Z = np.hstack([z, z])  # two identical columns
    coef, _ = weighted_least_squares(Z, 4 * z[:, 0], np.ones(50), fit_intercept=False)
    np.testing.assert_allclose(coef, [2.0, 2.0], rtol=1e-10)


def _gaussian_expectation(f, grid=np.linspace(-12, 12, 24001)):
    density = np.exp(-grid**2 / 2) / np.sqrt(2 * np.pi)
    return np.trapezoid(f(grid) * density, grid)


def test_eta_gives_ninety_percent_efficiency():
    """η is derived, not tuned by hand: at the normal model the filtered
    fixed point is x = r / EFFICIENT_C, and that weight has 90 % efficiency."""
    c = EFFICIENT_C
    weight = lambda z: sech(z / c)  # noqa: E731
    F_filtered = _gaussian_expectation(lambda z: weight(z) * sech(2 * z / KAPPA)) / _gaussian_expectation(weight)
    assert KAPPA * ETA * scale_from_fidelity(F_filtered) / 2 == pytest.approx(c, rel=1e-6)
    psi = lambda z: z * weight(z)  # noqa: E731
    h = 1e-6
    dpsi = lambda z: (psi(z + h) - psi(z - h)) / (2 * h)  # noqa: E731
    efficiency = _gaussian_expectation(dpsi) ** 2 / _gaussian_expectation(lambda z: psi(z) ** 2)
    assert efficiency == pytest.approx(0.90, abs=1e-6)


def test_gnostic_weights_are_scale_free():
    rng = np.random.default_rng(1)
    r = np.r_[rng.normal(size=300), rng.uniform(20, 40, size=50)]
    w1, x1, S1, _ = gnostic_weights(r, np.ones(350), np.ones(350))
    w2, x2, S2, _ = gnostic_weights(r * 1e-7, np.ones(350), np.ones(350))
    np.testing.assert_allclose(w1, w2, rtol=1e-10)
    assert S1 == pytest.approx(S2, rel=1e-12)
    assert w1[300:].max() < 0.05 < w1[:300].min()


def test_leverage_weights_find_a_cluster_of_leverage_points():
    rng = np.random.default_rng(2)
    X = np.r_[rng.normal(size=(500, 4)), rng.normal(6, 0.5, size=(50, 4))]
    v = leverage_weights(X)
    assert v[500:].max() < 1e-2 < np.median(v[:500])
    assert np.mean(v[:500] == 1.0) >= 0.5


def test_leverage_weights_ignore_constant_and_binary_columns():
    rng = np.random.default_rng(3)
    X = np.c_[rng.normal(size=200), np.ones(200), (rng.random(200) < 0.1).astype(float)]
    v = leverage_weights(X)
    assert np.isfinite(v).all() and np.mean(v == 1.0) >= 0.5


def test_robust_start_survives_forty_percent_outliers():
    rng = np.random.default_rng(4)
    Z = rng.normal(size=(1000, 3))
    y = Z @ [1.0, 2.0, 3.0] + rng.normal(size=1000)
    y[:400] += rng.uniform(20, 50, size=400)
    coef, intercept = robust_start(Z, y, np.ones(1000))
    assert np.linalg.norm(coef - [1, 2, 3]) < 0.3 and abs(intercept) < 0.5


@given(st.integers(2, 8), st.integers(0, 2**16), st.booleans())
@settings(max_examples=30, deadline=None)
def test_prediction_residuals_are_the_studentized_deleted_residuals(k, seed, fit_intercept):
    """Rows in a least-squares fit are divided by sqrt(1 - h), rows left out
    by sqrt(1 + q): both give the residual of predicting the row from the
    fit of the others, in units of the error's standard deviation."""
    rng = np.random.default_rng(seed)
    n = 3 * k + 6
    Z = rng.normal(size=(n, k))
    y = rng.normal(size=n)
    kept = (np.arange(n) % 4 != 0).astype(float)
    shift = Z.mean(axis=0) if fit_intercept else np.zeros(k)
    y_shift = float(y.mean()) if fit_intercept else 0.0
    coef, intercept, leverage = solve_gram(_gram(Z, y, kept, shift, y_shift), fit_intercept)
    intercept += y_shift - float(shift @ coef) if fit_intercept else 0.0
    r = y - Z @ coef - intercept
    t = prediction_residuals(r, Z - shift, leverage, kept)
    A = np.c_[np.ones(n), Z] if fit_intercept else Z
    q = np.einsum("ij,ji->i", A, np.linalg.solve(A.T @ (A * kept[:, None]), A.T))
    np.testing.assert_allclose(t, r / np.sqrt(np.where(kept > 0, 1 - q, 1 + q)), rtol=1e-8, atol=1e-10)
    # The deleted residual of a kept row, refitted without it, equals r / (1 - h).
    i = int(np.flatnonzero(kept)[0])
    without = kept.copy()
    without[i] = 0.0
    fit = np.linalg.lstsq(A[without > 0], y[without > 0], rcond=None)[0]
    np.testing.assert_allclose(y[i] - A[i] @ fit, t[i] / np.sqrt(1 - q[i]), rtol=1e-7)


@given(st.integers(1, 8), st.integers(0, 2**16), st.booleans(), st.integers(1, 6))
@settings(max_examples=30, deadline=None)
def test_updated_leverages_equal_the_recomputed_ones(k, seed, fit_intercept, changes):
    """Rows leaving, joining and changing weight: the Woodbury update of the
    leverages equals recomputing them from the new Gram matrix."""
    rng = np.random.default_rng(seed)
    n = 3 * k + 12
    Z = rng.normal(size=(n, k))
    y = rng.normal(size=n)
    old = (np.arange(n) % 5 != 0).astype(float)
    new = old.copy()
    changed = rng.choice(n, size=changes, replace=False)
    new[changed] = np.where(old[changed] > 0, rng.choice([0.0, 0.5], size=changes), rng.uniform(0.5, 2.0, size=changes))
    changed = changed[new[changed] != old[changed]]
    shift = Z.mean(axis=0) if fit_intercept else np.zeros(k)
    before, after = (solve_gram(_gram(Z, y, v, shift, 0.0), fit_intercept)[2] for v in (old, new))
    q = updated_leverages(row_leverages(Z - shift, before), Z - shift, before, changed, new[changed] - old[changed])
    A = np.c_[np.ones(n), Z] if fit_intercept else Z
    expected = np.einsum("ij,ji->i", A, np.linalg.solve(A.T @ (A * new[:, None]), A.T))
    np.testing.assert_allclose(q, expected, rtol=1e-8, atol=1e-10)


def test_wide_start_finds_the_outliers_at_one_and_a_half_rows_per_parameter():
    rng = np.random.default_rng(3)
    n, k = 150, 99
    Z = rng.normal(size=(n, k))
    beta = rng.normal(size=k)
    y = 1.0 + Z @ beta + rng.normal(size=n)
    y[:15] += rng.uniform(20, 50, size=15)
    coef, intercept, _, kept, _, _ = wide_start(Z, y, np.ones(n), Z.mean(axis=0), float(y.mean()), True)
    assert kept[:15].sum() == 0 and kept[15:].mean() > 0.95
    # Least squares on all rows absorbs the outliers: far worse.
    ls = np.linalg.lstsq(np.c_[np.ones(n), Z], y, rcond=None)[0]
    assert np.linalg.norm(np.r_[intercept, coef] - np.r_[1.0, beta]) < 0.3 * np.linalg.norm(ls - np.r_[1.0, beta])


@given(
    arrays(np.float64, st.integers(2, 8), elements=st.floats(-10, 10)).filter(lambda d: np.linalg.norm(d) > 1e-3),
    # Rates at the bound itself are left out: the rate computed from the two
    # steps may round either side of it (0.6999999999999998 did).
    st.floats(0.01, WIDE_TAIL_RATE - 1e-9),
    st.floats(-1e3, 1e3),
)
def test_linear_tail_stretch_lands_on_the_limit_of_a_geometric_sequence(direction, rate, offset):
    """Steps ``d, μd, μ²d, ...`` from ``x`` sum to ``x + d / (1 - μ)``: the
    stretched second step reaches that limit; steps that turn or grow are
    not stretched."""
    x0 = np.full_like(direction, offset)
    limit = x0 + direction / (1.0 - rate)
    x1 = x0 + direction
    stretch = linear_tail_stretch(direction, rate * direction)
    np.testing.assert_allclose(x1 + stretch * rate * direction, limit, rtol=1e-9, atol=1e-9 * np.abs(limit).max())
    assert linear_tail_stretch(direction, -rate * direction) is None
    assert linear_tail_stretch(rate * direction, direction) is None
    turned = np.roll(direction, 1) if not np.allclose(np.roll(direction, 1), direction) else None
    if turned is not None and abs(turned @ direction) < 0.5 * (direction @ direction):
        assert linear_tail_stretch(direction, rate * turned) is None
