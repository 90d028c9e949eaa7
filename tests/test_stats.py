"""mgsk.stats: robust gnostic statistics, their invariances and weights."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mgsk import stats

# Multiples of 1e-3: a shift by b keeps every value (no 1e-19 that 1 + b would absorb).
values = st.lists(st.integers(-10**6, 10**6).map(lambda i: i / 1000.0), min_size=3, max_size=25).filter(
    lambda v: np.ptp(v) > 1e-3
)


@settings(max_examples=20, deadline=None)
@given(values, st.floats(0.1, 10.0), st.floats(-100.0, 100.0))
def test_location_median_scale_are_affine_equivariant(x, a, b):
    x = np.array(x)
    y = a * x + b
    # a x + b rounds the data, and on small samples the EDF misfit is flat in S
    # near its minimum: rounding moves the fitted S by up to ~1e-3 of itself.
    tol = 1e-3 * a * np.ptp(x) + 1e-9
    assert stats.location(y) == pytest.approx(a * stats.location(x) + b, abs=tol)
    assert stats.median(y) == pytest.approx(a * stats.median(x) + b, abs=tol)
    assert stats.scale(y) == pytest.approx(a * stats.scale(x), rel=2e-3)
    assert stats.variance(y) == pytest.approx(a * a * stats.variance(x), rel=5e-3, abs=1e-9 * (a * np.ptp(x)) ** 2)


@settings(max_examples=15, deadline=None)
@given(values, st.integers(0, 2**16))
def test_weight_two_is_the_value_repeated(x, seed):
    x = np.array(x)
    w = np.random.default_rng(seed).integers(0, 4, size=x.shape[0])
    if w.sum() < 2:
        w[:2] = 1
    xr = np.repeat(x, w)
    for f in (stats.location, stats.median, stats.scale, stats.variance):
        assert f(x, sample_weight=w.astype(float)) == pytest.approx(f(xr), rel=1e-6, abs=1e-9 * np.ptp(x) ** 2)


@settings(max_examples=15, deadline=None)
@given(values, st.integers(0, 2**16))
def test_covariance_and_correlation_are_symmetric_and_bounded(x, seed):
    x = np.array(x)
    y = np.random.default_rng(seed).normal(size=x.shape[0]) + 0.3 * x
    assert stats.covariance(x, y) == pytest.approx(stats.covariance(y, x), rel=1e-9, abs=1e-12)
    r = stats.correlation(x, y)
    assert -1.0 <= r <= 1.0
    assert r == pytest.approx(stats.correlation(y, x), abs=1e-12)
    assert stats.covariance(x, x) == pytest.approx(stats.variance(x), rel=1e-12)
    assert stats.variance(x) >= 0


def test_gross_errors_do_not_move_the_statistics():
    rng = np.random.default_rng(0)
    x = rng.normal(10.0, 1.0, 300)
    y = 2.0 * x + rng.normal(0.0, 0.5, 300)
    xd, yd = x.copy(), y.copy()
    xd[:30] = 1e4
    yd[30:60] = -1e4
    assert stats.location(xd) == pytest.approx(stats.location(x), abs=0.2)
    assert stats.variance(xd) == pytest.approx(stats.variance(x), rel=0.3)
    assert stats.correlation(xd, yd) == pytest.approx(stats.correlation(x, y), abs=0.05)
    assert stats.correlation(x, -y) < -0.9


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="(?i)sample.weight"):
        stats.location([1.0, 2.0], sample_weight=[0.0, 0.0])
    with pytest.raises(ValueError):
        stats.covariance([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        stats.median([1.0, np.nan])
