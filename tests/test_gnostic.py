"""Property tests of the gnostic mathematics (gnostics.md §1-3)."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mgsk._gnostic import (
    FILTERING_CASES,
    S_MIN,
    X_MAX,
    characteristics,
    estimating_entropy,
    filtering_weight,
    gnostic_scale,
    information,
    mean_fidelity,
    residual_entropy_values,
    scale_from_fidelity,
    sech,
    standardized_log_ratio,
)

moderate_x = arrays(np.float64, st.integers(1, 50), elements=st.floats(-20, 20))
any_x = arrays(np.float64, st.integers(1, 50), elements=st.floats(-1e300, 1e300))
magnitudes = st.floats(1e-300, 1e300)


@given(moderate_x)
def test_identities_hold(x):
    c = characteristics(x)
    np.testing.assert_allclose(c["f_I"] * c["f_J"], 1.0, rtol=1e-12)
    np.testing.assert_allclose(c["f_I"] ** 2 + c["h_I"] ** 2, 1.0, rtol=1e-12)
    # f_J^2 - h_J^2 cancels: its rounding error grows like f_J^2.
    assert np.all(np.abs(c["f_J"] ** 2 - c["h_J"] ** 2 - 1.0) <= 1e-14 * c["f_J"] ** 2)
    np.testing.assert_allclose(c["re"], c["e_I"] + c["e_J"], rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(c["p_I"], (1 - c["h_I"]) / 2, atol=1e-15)


@given(moderate_x)
def test_parity(x):
    c, m = characteristics(x), characteristics(-x)
    for even in ("f_I", "f_J", "e_I", "e_J", "re", "I_I"):
        np.testing.assert_allclose(c[even], m[even], rtol=1e-12, atol=1e-300)
    for odd in ("h_I", "h_J"):
        np.testing.assert_allclose(c[odd], -m[odd], rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(c["p_I"], 1 - m["p_I"], atol=1e-15)


@given(any_x)
def test_ranges_and_finiteness_for_any_float(x):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = characteristics(x)
    for name, values in c.items():
        assert np.all(np.isfinite(values)), name
    assert np.all((c["f_I"] >= 0) & (c["f_I"] <= 1))
    assert np.all((c["h_I"] >= -1) & (c["h_I"] <= 1))
    assert np.all(c["f_J"] >= 1)
    assert np.all((c["p_I"] >= 0) & (c["p_I"] <= 1))
    assert np.all((c["I_I"] >= 0) & (c["I_I"] <= np.log(2) + 1e-15))
    assert np.all((c["e_I"] >= 0) & (c["e_I"] <= 1))
    assert np.all(c["e_J"] >= 0)
    assert np.all(c["re"] >= 0)


@given(r=magnitudes, sigma=magnitudes, sign=st.sampled_from([-1.0, 1.0]), S=st.floats(S_MIN, 2.0))
def test_no_overflow_or_nan_for_residuals_from_1e_minus_300_to_1e300(r, sigma, sign, S):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = standardized_log_ratio(np.array([sign * r]), sigma, S)
        c = characteristics(x)
        w = filtering_weight(x, "E2")
        re = residual_entropy_values(np.array([sign * r]), sigma)
    assert np.all(np.abs(x) <= X_MAX)
    assert all(np.all(np.isfinite(v)) for v in c.values())
    assert np.isfinite(w).all() and np.isfinite(re).all()


@given(st.floats(0.0, 1.0))
def test_scale_equation_solution(F):
    S = scale_from_fidelity(F)
    assert S_MIN <= S <= 2.0
    s = S * np.pi / 2
    if S > S_MIN and 0 < F < 1:
        assert abs(np.sin(s) - F * s) < 1e-9


@given(st.floats(0.001, 0.999), st.floats(0.001, 0.999))
def test_scale_decreases_with_fidelity(F1, F2):
    lo, hi = sorted((F1, F2))
    assert scale_from_fidelity(lo) >= scale_from_fidelity(hi)


def test_scale_equation_limits():
    assert scale_from_fidelity(1.0) == S_MIN
    assert scale_from_fidelity(0.0) == 2.0
    assert scale_from_fidelity(1e-12) == pytest.approx(2.0, abs=1e-6)


@given(arrays(np.float64, st.integers(2, 30), elements=st.floats(-5, 5)), st.floats(0.1, 10))
def test_tighter_data_have_smaller_scale(log_ratio, shrink):
    if np.ptp(log_ratio) == 0:
        return
    tight = gnostic_scale(log_ratio / (1 + shrink))
    assert tight <= gnostic_scale(log_ratio) + 1e-12


@given(arrays(np.float64, st.integers(1, 20), elements=st.floats(-3, 3)), st.integers(1, 4))
def test_weighted_fidelity_equals_repeated_data(log_ratio, k):
    weights = np.full(log_ratio.shape, float(k))
    assert mean_fidelity(log_ratio, weights) == pytest.approx(mean_fidelity(np.repeat(log_ratio, k)), rel=1e-12)


@pytest.mark.parametrize("case", FILTERING_CASES)
def test_filtering_weights_follow_the_table(case):
    x = np.linspace(-5, 5, 101)
    f_i, f_j = sech(x), np.cosh(x)
    expected = {
        "E1": f_i**2,
        "E2": f_i,
        "E3": 1 / np.sqrt(f_i),
        "Q1": f_j,
        "Q2": np.ones_like(x),
        "Q3": 1 / np.sqrt(f_j),
    }[case]
    np.testing.assert_allclose(filtering_weight(x, case), expected, rtol=1e-12)


def test_unknown_filtering_case_is_named():
    with pytest.raises(ValueError, match="'E9'"):
        filtering_weight([0.0], "E9")


def test_estimating_weights_redescend():
    x = np.array([0.0, 1.0, 5.0, 50.0])
    for case in ("E1", "E2"):
        w = filtering_weight(x, case)
        assert w[0] == 1.0 and np.all(np.diff(w) < 0) and w[-1] < 1e-20


@given(st.floats(1e-12, 1e-3))
def test_small_x_forms_keep_their_digits(x):
    assert estimating_entropy([x])[0] == pytest.approx(x * x / 2, rel=1e-6)
    assert residual_entropy_values([x], 1.0)[0] == pytest.approx(x * x, rel=1e-6)
    assert information([x])[0] == pytest.approx(np.log(2) - x * x / 2, rel=1e-9)


@given(arrays(np.float64, st.integers(1, 30), elements=st.floats(-50, 50)), st.floats(1.0001, 10))
def test_residual_entropy_grows_with_every_residual(r, factor):
    assert np.all(residual_entropy_values(r * factor, 1.0) >= residual_entropy_values(r, 1.0))
