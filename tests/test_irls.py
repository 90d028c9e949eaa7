"""The iteration machinery of the regressors (mgsk._irls, mgsk._rows), tested on its own."""

import multiprocessing

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg.lapack import dpotrf

import mgsk._irls as irls_module
import mgsk._rows as rows_module
from mgsk._gnostic import scale_from_fidelity
from mgsk._irls import (
    KAPPA,
    MAX_GRAM_CONDITION,
    _unit,
    estimated_cholesky,
    gnostic_irls,
    scale_coupling,
    settled_unit,
    solve_gram,
    well_conditioned_cholesky,
)
from mgsk._rows import InMemoryRows


def _data(seed, n=300, k=3, outliers=0.1):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, k)) + 2.0
    y = Z @ rng.normal(size=k) + 1.0 + rng.normal(size=n)
    y[: int(outliers * n)] += rng.uniform(20, 50, size=int(outliers * n))
    return Z, y, rng.uniform(0.5, 2.0, size=n)


def _equation(rows, coef, intercept, unit, leverage=None):
    """``Σ s w r (z - shift, 1)`` and the mean fidelity ``F`` at ``κσ = 8``."""
    k = coef.shape[0]
    sweep = rows.sweep(coef, intercept, unit, leverage)
    offset = intercept + rows.shift @ coef - rows.y_shift
    G = sweep.gram
    g = G[: k + 1, k + 1] - G[: k + 1, : k + 1] @ np.r_[coef, offset]
    fidelity, total = rows.fidelity_sums(8.0)
    return g, fidelity / total


def _wide_leverage(rows, coef, intercept, unit):
    """A leverage tuple of a few rows per parameter: large ``h``, some capped."""
    return solve_gram(rows.sweep(coef, intercept, unit).gram / 40.0, True)[2]


@pytest.mark.parametrize("seed, adjusted", [(0, False), (1, False), (0, True), (1, True)])
def test_sweep_derivative_sums_match_finite_differences(seed, adjusted):
    # The joint Newton step rests on these sums: dg/dθ, dg/dc, and dF/dc,
    # dF/dθ of the scale equation's mean fidelity (σ held), in the shifted
    # coordinates θ = (coef, offset) of the sweep; with leverage-adjusted
    # residuals r* = r / sqrt(1 - q sech(r/c)) at a held q.
    Z, y, s = _data(seed)
    rows = InMemoryRows(Z, y, s)
    coef, intercept, unit = np.array([0.3, -0.2, 0.5]), 0.7, 1.3
    leverage = _wide_leverage(rows, coef, intercept, unit) if adjusted else None
    sweep = rows.sweep(coef, intercept, unit, leverage, newton=True, fidelity_unit=8.0)
    if adjusted:
        lam = rows.residuals / (y - Z @ coef - intercept)
        assert lam.max() > 2.0  # leverages up to and at the cap
    N, D, N_c, D_c = sweep.scale_sums
    F = N / D
    if not adjusted:
        # Σ s w f at a nearby κσ: its derivatives in ℓ = ln κσ, at the sweep's weights.
        h = 1e-3
        below, at, above = (rows.fidelity_sums(8.0 * np.exp(d))[0] for d in (-h, 0.0, h))
        slope, curvature = sweep.fidelity_slopes
        assert slope == pytest.approx((above - below) / (2 * h), rel=1e-5)
        assert curvature == pytest.approx((above - 2 * at + below) / h**2, rel=1e-4)
    else:
        assert sweep.fidelity_slopes is None
    g0, F0 = _equation(rows, coef, intercept, unit, leverage)
    assert F == pytest.approx(F0, rel=1e-12)
    h = 1e-6
    g1, F1 = _equation(rows, coef, intercept, unit + h, leverage)
    np.testing.assert_allclose((g1 - g0) / h, sweep.unit_gradient[:4], rtol=1e-4, atol=1e-6 * np.abs(g0).max())
    assert (F1 - F0) / h == pytest.approx((N_c - F * D_c) / (unit * D), rel=1e-4)
    V1, V2, V3 = sweep.fidelity_gradient.T
    F_theta = ((V1 - F * V2) / unit + V3 * 2.0 / 8.0) / D
    for j in range(4):
        step = np.zeros(3)
        if j < 3:
            step[j] = h  # holding the offset: the intercept moves by -shift_j h
        new_coef = coef + step
        new_intercept = intercept - rows.shift @ step + (h if j == 3 else 0.0)
        gj, Fj = _equation(rows, new_coef, new_intercept, unit, leverage)
        assert (Fj - F0) / h == pytest.approx(F_theta[j], rel=1e-4, abs=1e-9)
        if not adjusted:  # with leverages: test_wide_jacobian_follows_each_rows_own_leverage
            np.testing.assert_allclose((gj - g0) / h, -sweep.newton_gram[:4, j], rtol=1e-4, atol=1e-6 * np.abs(g0).max())


def _own_row_equation(rows, Z, y, s, coef, intercept, unit, q0, w0):
    """``Σ s w r (z - shift, 1)`` where each row's ``q`` follows its own weight.

    ``q = z̃ᵀ G⁻¹ z̃`` of ``G = Σ s w z̃ z̃ᵀ`` after row ``i``'s weight moves
    from ``w0`` to ``w`` is ``q0 / (1 + s (w - w0) q0)`` (Sherman-Morrison);
    ``w`` depends on ``q`` through ``r* = r / sqrt(1 - q sech(r/unit))``, so
    each row's pair is iterated to its fixed point.
    """
    r = y - Z @ coef - intercept
    sech_rho = 1.0 / np.cosh(r / unit)
    q = q0.copy()
    for _ in range(100):
        h = np.minimum(q * sech_rho, rows_module.MAX_LEVERAGE)
        w = 1.0 / np.cosh(r / np.sqrt(1.0 - h) / unit)
        q = q0 / (1.0 + s * (w - w0) * q0)
    h = np.minimum(q * sech_rho, rows_module.MAX_LEVERAGE)
    w = 1.0 / np.cosh(r / np.sqrt(1.0 - h) / unit)
    return np.c_[Z - rows.shift, np.ones(len(y))].T @ (s * w * r)


@pytest.mark.parametrize("seed, spread", [(0, 10.0), (1, 8.0)])
def test_wide_jacobian_follows_each_rows_own_leverage(seed, spread):
    # The wide Jacobian holds the other rows' terms of G but not the row's
    # own: it is the derivative of the estimating equation in which each
    # row's q moves with its own weight (below MAX_OWN_GAIN; seed 1 has a
    # row at the leverage cap, whose q does not move r*).
    Z, y, s = _data(seed)
    rows = InMemoryRows(Z, y, s)
    coef, intercept, unit = np.array([0.3, -0.2, 0.5]), 0.7, 1.3
    leverage = solve_gram(rows.sweep(coef, intercept, unit).gram / spread, True)[2]
    sweep = rows.sweep(coef, intercept, unit, leverage, newton=True)
    q0, w0 = rows._leverage_q.copy(), rows.weights.copy()
    r = y - Z @ coef - intercept
    h = q0 / np.cosh(r / unit)
    lam = 1.0 / np.sqrt(1.0 - np.minimum(h, rows_module.MAX_LEVERAGE))
    x = np.abs(lam * r) / unit
    gain = np.where(h < rows_module.MAX_LEVERAGE, 0.5 * lam**2 * h * q0 * s * w0 * x * np.tanh(x), 0.0)
    assert 0.1 < gain.max() < rows_module.MAX_OWN_GAIN
    g0 = _own_row_equation(rows, Z, y, s, coef, intercept, unit, q0, w0)
    np.testing.assert_allclose(g0, _equation(rows, coef, intercept, unit, leverage)[0], rtol=1e-10)
    h = 1e-6
    for j in range(4):
        step = np.zeros(3)
        if j < 3:
            step[j] = h  # holding the offset: the intercept moves by -shift_j h
        new_coef, new_intercept = coef + step, intercept - rows.shift @ step + (h if j == 3 else 0.0)
        own = (_own_row_equation(rows, Z, y, s, new_coef, new_intercept, unit, q0, w0) - g0) / h
        held = (_equation(rows, new_coef, new_intercept, unit, leverage)[0] - g0) / h
        np.testing.assert_allclose(own, -sweep.newton_gram[:4, j], rtol=1e-4, atol=1e-6 * np.abs(g0).max())
        assert np.abs(held - own).max() > 1e-3 * np.abs(own).max()  # the own terms matter here


def test_tall_sweep_skips_unit_sample_weights():
    # The sums without the sample weights where they are all 1 give the
    # sums with the weights multiplied in.
    Z, y, _ = _data(7, n=3000)
    s = np.ones(3000)
    coef, args = np.array([0.2, -0.1, 0.4]), (0.3, 1.2)
    unit = InMemoryRows(Z, y, s, block_rows=512)
    weighted = InMemoryRows(Z, y, s, block_rows=512)
    weighted._unit_weights = False
    for newton, fidelity_unit, jacobian in [(False, None, True), (True, 8.0, True), (True, 8.0, False)]:
        ours = unit.sweep(coef, *args, newton=newton, fidelity_unit=fidelity_unit, jacobian=jacobian)
        theirs = weighted.sweep(coef, *args, newton=newton, fidelity_unit=fidelity_unit, jacobian=jacobian)
        for name in ("gram", "loss", "re", "newton_gram", "unit_gradient", "fidelity_gradient", "scale_sums", "fidelity_slopes"):
            mine, other = getattr(ours, name), getattr(theirs, name)
            assert (mine is None) == (other is None)
            if mine is not None:
                np.testing.assert_allclose(mine, other, rtol=1e-12, atol=1e-12)
        assert (ours.newton_gram is None) == (not jacobian or not newton)
        np.testing.assert_array_equal(unit.weights, weighted.weights)


@settings(max_examples=100, deadline=None)
@given(st.floats(1e-300, 1e300), st.floats(1e-300, 1e300))
def test_sweep_entropy_terms_are_the_residual_entropy(r, scale):
    # One expm1 instead of exp and expm1: the same values to rounding, finite
    # from 1e-300 to 1e300, exact for tiny |r| / scale.
    from mgsk._gnostic import residual_entropy_values

    ours = rows_module._entropy_terms(np.array([r]), scale)[0]
    assert np.isfinite(ours) and ours == pytest.approx(residual_entropy_values([r], scale)[0], rel=1e-13, abs=1e-300)


def test_scale_coupling_root_solves_the_scale_equation():
    # One Newton step from c: close to the secant root of U(c) = c when c is near it.
    Z, y, s = _data(2)
    rows = InMemoryRows(Z, y, s)
    beta = np.linalg.lstsq(np.c_[Z, np.ones(len(y))][30:], y[30:], rcond=None)[0]  # the clean rows
    coef, intercept = beta[:3], float(beta[3])
    rows.sweep(coef, intercept, 1.0)
    sigma = 1.4826 * rows.quantile(0.5, center=0.0)

    def image(c):
        fidelity, total = rows.fidelity_sums(KAPPA * sigma, c)
        return _unit(sigma, scale_from_fidelity(fidelity / total))

    c = 1.0
    for _ in range(200):  # the root by fixed-point steps
        c = image(c)
    start = 1.05 * c
    sweep = rows.sweep(coef, intercept, start, newton=True, fidelity_unit=KAPPA * sigma)
    _, _, root = scale_coupling(sweep, start, image(start), sigma, sigma, True)
    assert abs(root - c) < 0.05 * abs(start - c)  # quadratic, not linear, approach


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 8), st.floats(0.0, 12.0), st.integers(0, 2**16))
def test_well_conditioned_cholesky_agrees_with_the_eigenvalues(m, log_condition, seed):
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.normal(size=(m, m)))[0]
    eig = np.logspace(0, -log_condition, m)
    A = (Q * eig) @ Q.T
    A = (A + A.T) / 2
    result = well_conditioned_cholesky(A)
    exact = np.linalg.eigvalsh(A)
    if exact[0] > exact[-1] / MAX_GRAM_CONDITION * 1.01:
        assert result is not None
        L, L_inv = result
        np.testing.assert_allclose(L @ L.T, A, atol=1e-12)
        np.testing.assert_allclose(L_inv @ L, np.eye(m), atol=1e-6)
    elif exact[0] < exact[-1] / MAX_GRAM_CONDITION * 0.99:
        assert result is None


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.floats(0.0, 14.0), st.integers(0, 2**16))
def test_estimated_cholesky_agrees_with_the_eigenvalues(m, log_condition, seed):
    # The wide path's check: LAPACK's condition estimate, eigenvalues near the limit.
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.normal(size=(m, m)))[0]
    A = (Q * np.logspace(0, -log_condition, m)) @ Q.T
    A = (A + A.T) / 2
    d = np.sqrt(np.diag(A))
    A = A / np.outer(d, d)  # unit diagonal, as the callers scale it
    L = estimated_cholesky(A)
    exact = np.linalg.eigvalsh(A)
    if exact[0] > exact[-1] / MAX_GRAM_CONDITION * 1.01:
        assert L is not None
        np.testing.assert_allclose(L @ L.T, A, atol=1e-12)
        np.testing.assert_array_equal(L, np.tril(L))
    elif exact[0] < exact[-1] / MAX_GRAM_CONDITION * 0.99:
        assert L is None


def test_settled_unit_is_the_root_of_the_scale_equation():
    r = np.random.default_rng(3).normal(size=3000)
    r[:300] += 40
    w = np.ones(3000)
    c = settled_unit(r, w, (np.abs(r) < 1).astype(float), "auto", 0.0)
    sigma = 1.482602218505602 * np.sort(np.abs(r))[1499]  # the lower median of |r|
    weights = 1.0 / np.cosh(r / c)
    F = weights @ (1.0 / np.cosh(2 * r / (KAPPA * sigma))) / weights.sum()
    assert _unit(sigma, scale_from_fidelity(F)) == pytest.approx(c, rel=1e-9)


@pytest.mark.parametrize("seed", [0, 4])
def test_joint_steps_reach_the_same_fixed_point_in_fewer_steps(seed):
    Z, y, s = _data(seed, n=500, outliers=0.2)
    held = gnostic_irls(Z, y, s, tol=1e-12, max_iter=500)
    joint = gnostic_irls(Z, y, s, tol=1e-12, max_iter=500, joint_scale=True)
    assert held.converged and joint.converged and joint.n_iter < held.n_iter
    np.testing.assert_allclose(joint.coef, held.coef, rtol=1e-9)
    assert joint.intercept == pytest.approx(held.intercept, rel=1e-9)
    np.testing.assert_allclose(joint.weights, held.weights, atol=1e-9)
    assert joint.scale == pytest.approx(held.scale, rel=1e-9)
    assert joint.history[-1]["re"] == pytest.approx(held.history[-1]["re"], rel=1e-9)
    assert [h["iteration"] for h in joint.history] == list(range(1, joint.n_iter + 1))


def test_threaded_sweep_is_deterministic_and_equals_one_thread(monkeypatch):
    Z, y, s = _data(5, n=5000, k=4)
    coef = np.array([0.1, 0.2, -0.3, 0.4])
    monkeypatch.setattr(rows_module, "SWEEP_ROWS", 256)
    one = InMemoryRows(Z, y, s, block_rows=256).sweep(coef, 0.5, 1.1, newton=True, fidelity_unit=8.0)
    monkeypatch.setattr(rows_module, "THREADED_ROWS", 1024)
    rows = InMemoryRows(Z, y, s, block_rows=256)
    first = rows.sweep(coef, 0.5, 1.1, newton=True, fidelity_unit=8.0)
    for _ in range(3):
        again = rows.sweep(coef, 0.5, 1.1, newton=True, fidelity_unit=8.0)
        for name in ("gram", "loss", "re", "newton_gram", "unit_gradient", "fidelity_gradient", "scale_sums"):
            assert np.array_equal(getattr(first, name), getattr(again, name))  # bit for bit
    for name in ("gram", "loss", "re", "newton_gram", "unit_gradient", "fidelity_gradient", "scale_sums"):
        np.testing.assert_allclose(getattr(first, name), getattr(one, name), rtol=1e-12, atol=1e-9)
    assert rows.fidelity_sums(8.0, 1.1) == pytest.approx(rows.fidelity_sums(8.0), rel=1e-12)


def test_label_scale_is_settled_at_its_residuals():
    # The classifier's scale: the S at which the scale equation, weighted by
    # the filtering weights at S itself, is consistent.
    from mgsk._gnostic import gnostic_scale, sech, standardized_log_ratio
    from mgsk._newton import MODEL_SCALE, label_scale

    r = np.abs(np.random.default_rng(6).standard_cauchy(size=2000))
    s = np.ones(2000)
    S = label_scale(r, s, np.ones(2000))
    weights = sech(standardized_log_ratio(r, KAPPA, 1.5372852505831547 * S))
    again = max(gnostic_scale(standardized_log_ratio(r, KAPPA, 2.0), s * weights), MODEL_SCALE)
    lagged = max(gnostic_scale(standardized_log_ratio(r, KAPPA, 2.0), s), MODEL_SCALE)
    assert S > MODEL_SCALE and abs(lagged - S) > 1e-2 * S  # from far: four secant steps
    assert again == pytest.approx(S, rel=1e-6)


def test_wide_sweep_products_equal_the_general_ones():
    # The wide path's triangular solve (trsm) and symmetric (syrk) products,
    # with some negative row weights in the symmetric sum.
    rng = np.random.default_rng(3)
    centered = np.asfortranarray(rng.normal(size=(50, 6)))
    lower = np.tril(rng.normal(size=(6, 6))) + 3.0 * np.eye(6)
    expected = centered @ np.linalg.inv(lower).T
    np.testing.assert_allclose(rows_module.leverage_projection(centered.copy(order="F"), lower), expected, atol=1e-12)
    np.testing.assert_allclose(rows_module.leverage_projection(np.ascontiguousarray(centered), lower), expected, atol=1e-12)
    aT = rng.normal(size=(8, 50))
    c = rng.uniform(-0.2, 1.0, size=50)
    np.testing.assert_allclose(rows_module.symmetric_sum(aT, c, np.empty_like(aT)), (aT * c) @ aT.T, atol=1e-12)


@pytest.mark.parametrize("low", [0.0, -0.3])
def test_split_symmetric_sum_is_the_sum_and_the_same_each_time(low):
    # Above SPLIT_PRODUCT_FLOPS the halves are summed in two threads: the
    # sum is still Σ c a aᵀ, bit for bit the same on every call.
    rng = np.random.default_rng(4)
    aT = rng.normal(size=(120, 1001))
    assert aT.shape[1] * aT.shape[0] ** 2 >= rows_module.SPLIT_PRODUCT_FLOPS
    c = rng.uniform(low, 1.0, size=aT.shape[1])
    first = rows_module.symmetric_sum(aT, c, np.empty_like(aT))
    np.testing.assert_allclose(first, (aT * c) @ aT.T, rtol=1e-12, atol=1e-10)
    for _ in range(5):
        assert np.array_equal(rows_module.symmetric_sum(aT, c, np.empty_like(aT)), first)


@pytest.mark.parametrize("order", ["C", "F"])
def test_leverage_projection_in_two_threads_is_scipys_solve(order):
    # Above its size the triangular solve runs on two halves of the rows,
    # through scipy's Cython BLAS without the GIL: the solve of scipy's
    # dtrsm on all rows, bit for bit with the Fortran-ordered factor that
    # solve_gram gives (a C-ordered one is solved as the transposed upper
    # triangle, a different kernel). Both on one BLAS thread, as in a fit.
    from scipy.linalg.blas import dtrsm

    from mgsk._blas import solves_without_gil

    rng = np.random.default_rng(8)
    k, b = 150, 1001
    A = rng.normal(size=(k, k))
    factor = np.asarray(np.linalg.cholesky(A @ A.T + k * np.eye(k)), order=order)
    factor[np.triu_indices(k, 1)] = np.nan  # the upper part is not read
    centered = np.asfortranarray(rng.normal(size=(b, k)))
    assert b * k * k >= 2 * rows_module.SPLIT_PRODUCT_FLOPS and solves_without_gil(factor, centered)
    with rows_module.single_blas_thread():
        expected = dtrsm(1.0, np.tril(np.nan_to_num(factor)), centered.copy(order="F"), side=1, lower=1, trans_a=1)
        projected = rows_module.leverage_projection(centered.copy(order="F"), factor)
        again = rows_module.leverage_projection(centered.copy(order="F"), factor)
    if order == "F":
        assert np.array_equal(projected, expected)
    np.testing.assert_allclose(projected, expected, rtol=1e-12, atol=1e-14)
    assert np.array_equal(again, projected)
    np.testing.assert_allclose(projected @ np.tril(np.nan_to_num(factor)).T, centered, atol=1e-10)


def test_without_scipys_cython_blas_the_projection_is_scipys_dtrsm(monkeypatch):
    # Where the Cython BLAS routine cannot be reached, the solve falls back
    # to scipy.linalg.blas on all rows at once: the same bits.
    import mgsk._blas as blas_module

    rng = np.random.default_rng(9)
    k, b = 150, 1001
    A = rng.normal(size=(k, k))
    factor = np.asfortranarray(np.linalg.cholesky(A @ A.T + k * np.eye(k)))
    centered = np.asfortranarray(rng.normal(size=(b, k)))
    with rows_module.single_blas_thread():
        split = rows_module.leverage_projection(centered.copy(order="F"), factor)
        monkeypatch.setattr(blas_module, "_DTRSM", None)
        assert not blas_module.solves_without_gil(factor, centered)
        assert np.array_equal(rows_module.leverage_projection(centered.copy(order="F"), factor), split)


def test_sweep_blocks_follow_the_columns_and_do_not_change_the_sums():
    # Blocks of about SWEEP_VALUES values: more rows for fewer columns, but
    # at most a quarter of the rows above 8,192. The sums over 16,384-row
    # blocks are those over 8,192-row ones.
    assert [rows_module.sweep_rows(k, 10**6) for k in (3, 10, 50, 400)] == [32768, 16384, 8192, 8192]
    assert [rows_module.sweep_rows(3, n) for n in (1000, 20000, 70000)] == [8192, 8192, 16384]
    Z, y, s = _data(10, n=70000, k=10)
    coef = np.linspace(-0.3, 0.3, 10)
    default = InMemoryRows(Z, y, s)
    assert default.block_rows == 16384
    ours = default.sweep(coef, 0.5, 1.1, newton=True, fidelity_unit=8.0)
    theirs = InMemoryRows(Z, y, s, block_rows=8192).sweep(coef, 0.5, 1.1, newton=True, fidelity_unit=8.0)
    for name in ("gram", "loss", "re", "newton_gram", "unit_gradient", "fidelity_gradient", "scale_sums"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-12, atol=1e-9)


def _split_sum_in_child(queue):
    rng = np.random.default_rng(5)
    aT = rng.normal(size=(120, 1001))
    queue.put(rows_module.symmetric_sum(aT, np.ones(1001), np.empty_like(aT)).tobytes())


def test_a_forked_child_sums_split_products_too():
    # The parent's product thread does not run in a forked child; the child
    # makes its own instead of waiting on it forever.
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    rng = np.random.default_rng(5)
    aT = rng.normal(size=(120, 1001))
    parent = rows_module.symmetric_sum(aT, np.ones(1001), np.empty_like(aT))  # starts the thread here
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_split_sum_in_child, args=(queue,))
    child.start()
    try:
        assert queue.get(timeout=30) == parent.tobytes()
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()


def _with_and_without_chords(monkeypatch, Z, y, s, **options):
    """The fit with chord steps, the fit with a fresh Jacobian at every step,
    and how many of the first fit's sweeps left the Jacobian out."""
    lean_sweeps = []
    sweep = InMemoryRows.sweep

    def recorded(self, *args, **kwargs):
        lean_sweeps.append(kwargs.get("jacobian", True) is False)
        return sweep(self, *args, **kwargs)

    monkeypatch.setattr(InMemoryRows, "sweep", recorded)
    chord = gnostic_irls(Z, y, s, **options)
    lean = sum(lean_sweeps)
    monkeypatch.setattr(irls_module, "CHORD_STEP", 0.0)
    lean_sweeps.clear()
    fresh = gnostic_irls(Z, y, s, **options)
    assert not any(lean_sweeps)
    return chord, fresh, lean


def test_wide_chord_steps_reach_the_fixed_point_of_fresh_jacobians(monkeypatch):
    # Chord steps reuse a Jacobian's factor once the steps are small; the
    # sweep then leaves the Jacobian out but keeps every other sum.
    rng = np.random.default_rng(5)
    Z = rng.normal(size=(150, 50))
    y = Z @ rng.normal(size=50) + rng.normal(size=150)
    y[:15] += rng.uniform(20, 50, size=15)
    s = np.ones(150)
    chord, fresh, lean = _with_and_without_chords(monkeypatch, Z, y, s, adjust_leverage=True, joint_scale=True)
    assert lean >= 2  # chord steps were taken
    assert chord.converged and fresh.converged
    np.testing.assert_allclose(chord.coef, fresh.coef, atol=1e-4)
    assert abs(chord.n_iter - fresh.n_iter) <= 3

    rows = InMemoryRows(Z, y, s)
    leverage = solve_gram(rows.sweep(chord.coef, chord.intercept, 1.0).gram, True, estimate=True)[2]
    full = rows.sweep(chord.coef, chord.intercept, 1.0, leverage, newton=True, fidelity_unit=2.0)
    lean = rows.sweep(chord.coef, chord.intercept, 1.0, leverage, newton=True, fidelity_unit=2.0, jacobian=False)
    assert lean.newton_gram is None and full.newton_gram is not None
    for name in ("gram", "unit_gradient", "fidelity_gradient", "scale_sums"):
        np.testing.assert_allclose(getattr(lean, name), getattr(full, name), rtol=1e-12, atol=1e-12)


def test_tall_chord_steps_keep_the_fixed_point_and_the_steps(monkeypatch):
    # After a small joint step the next sweep leaves the Jacobian out; the
    # fit lands where fresh Jacobians take it, in as many steps.
    Z, y, s = _data(8, n=3000, outliers=0.2)
    chord, fresh, lean = _with_and_without_chords(monkeypatch, Z, y, s, joint_scale=True, tol=1e-10)
    assert lean >= 1
    assert chord.converged and fresh.converged and abs(chord.n_iter - fresh.n_iter) <= 1
    np.testing.assert_allclose(chord.coef, fresh.coef, rtol=1e-9)
    assert chord.intercept == pytest.approx(fresh.intercept, rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**16), st.floats(0.0, 4.0))
def test_curves_down_only_where_cholesky_fails(m, seed, spread):
    # A Jacobian Σ c a aᵀ with some negative row weights, scaled by the Gram
    # matrix's diagonal as jacobian_factor scales it: where curves_down says
    # it is indefinite, its factorisation fails; along its most negative
    # eigenvector, clearly below 0, curves_down says so.
    rng = np.random.default_rng(seed)
    b = 3 * m + 4
    aT = rng.normal(size=(m + 2, b))
    sw = rng.uniform(0.1, 1.0, size=b)
    c = sw * (1.0 - rng.uniform(0.0, spread, size=b))
    magnitude = np.maximum(sw, np.abs(c))
    gram = (aT * sw) @ aT.T
    d = np.sqrt(np.diag(gram)[:m])
    scaled = ((aT[:m] * c) @ aT[:m].T) / np.outer(d, d)
    values, vectors = np.linalg.eigh(scaled)
    directions = [vectors[:, 0] / d, rng.normal(size=m), aT[:m, 0]]
    for direction in directions:
        if rows_module.curves_down(aT, c, magnitude, gram, direction):
            assert dpotrf(scaled, lower=1)[1] > 0
    if values[0] < -1e-3:
        assert rows_module.curves_down(aT, c, magnitude, gram, directions[0])


def test_wide_sweeps_skip_indefinite_jacobians_and_keep_the_fit(monkeypatch):
    # With few rows per parameter the Jacobian stays indefinite for many
    # steps: the sweeps that find so before summing it leave it out, and
    # the fit is the same, bit for bit, as with every Jacobian summed.
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(150, 100))
    y = Z @ rng.normal(size=100) + rng.normal(size=150)
    y[:15] += rng.uniform(20, 50, size=15)
    options = {"adjust_leverage": True, "joint_scale": True}
    skipped = []
    sweep = InMemoryRows.sweep

    def recorded(self, *args, **kwargs):
        result = sweep(self, *args, **kwargs)
        skipped.append(bool(kwargs.get("newton") and kwargs.get("jacobian", True) and result.newton_gram is None))
        return result

    monkeypatch.setattr(InMemoryRows, "sweep", recorded)
    lean = gnostic_irls(Z, y, np.ones(150), **options)
    assert sum(skipped) >= 3
    monkeypatch.setattr(rows_module, "INDEFINITE_TRIES", 0)
    skipped.clear()
    full = gnostic_irls(Z, y, np.ones(150), **options)
    assert not any(skipped)
    assert lean.n_iter == full.n_iter
    np.testing.assert_array_equal(lean.coef, full.coef)
    np.testing.assert_array_equal(lean.weights, full.weights)
