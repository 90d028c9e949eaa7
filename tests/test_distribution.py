"""The gnostic distribution functions: numerics on their own, then the estimator."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from sklearn.model_selection import GridSearchCV, KFold

from mgsk import GnosticDistribution
from mgsk._distribution_math import (
    BLOCK_ELEMENTS, KINDS, compress, distribution, estimating_means, from_gnostic, jacobian, to_gnostic,
)
from mgsk._marginal import count_maxima, edf_points, fit_global_scale, is_homogeneous, main_cluster

samples = st.lists(st.floats(-50, 50, allow_nan=False), min_size=2, max_size=30)


def _weights(draw_seed, n):
    return np.random.default_rng(draw_seed).uniform(0.05, 3.0, size=n)


@settings(max_examples=30, deadline=None)
@given(samples, st.integers(0, 2**16), st.sampled_from([0.05, 0.5, 3.0]), st.sampled_from(["eldf", "qgdf", "qldf"]))
def test_local_and_quantifying_functions_are_distribution_functions(data, seed, S, kind):
    """ELDF, QGDF, QLDF rise monotonically from 0 to 1 for every sample, weights and scale."""
    u = np.sort(np.array(data))
    w = _weights(seed, u.shape[0])
    grid = np.r_[-np.inf, np.linspace(u[0] - 60 * S, u[-1] + 60 * S, 4001), np.inf]
    F, p = distribution(grid, u, w, S, kind)
    assert F[0] == 0.0 and F[-1] == 1.0
    assert np.all(np.diff(F) >= -1e-12)
    assert np.all(p >= 0)
    assert F[1] < 1e-6 and F[-2] > 1 - 1e-6


@settings(max_examples=15, deadline=None)
@given(samples, st.integers(0, 2**16), st.sampled_from(KINDS))
def test_density_is_the_derivative_of_the_function(data, seed, kind):
    """F(b) - F(a) equals the integral of the density, at the fitted scale of a homogeneous sample."""
    u = np.sort(np.array(data))
    w = _weights(seed, u.shape[0])
    S = 1.0 + (u[-1] - u[0]) / 4
    a, b = u[0] - 2 * S, u[-1] + 2 * S

    def pdf(v):
        return distribution(np.array([v]), u, w, S, kind)[1][0]

    integral = quad(pdf, a, b, points=list(u[:20]), limit=400)[0]
    F = distribution(np.array([a, b]), u, w, S, kind)[0]
    assert integral == pytest.approx(F[1] - F[0], abs=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_density_integrates_to_one(kind):
    rng = np.random.default_rng(3)
    X = rng.normal(10.0, 2.0, size=(300, 1))
    dist = GnosticDistribution(kind=kind).fit(X, sample_weight=rng.uniform(0.5, 2.0, 300))
    total = quad(lambda z: dist.pdf([[z]])[0, 0], -np.inf, np.inf, limit=400)[0]
    assert total == pytest.approx(1.0, abs=1e-6)
    F = dist.cdf(np.linspace(-100, 120, 2001)[:, None])[:, 0]
    assert F[0] < 1e-9 and F[-1] > 1 - 1e-9 and np.all(np.diff(F) >= -1e-15)


def test_egdf_of_a_homogeneous_sample_is_a_distribution_function():
    X = np.random.default_rng(0).normal(size=(200, 1))
    dist = GnosticDistribution().fit(X)
    assert dist.is_homogeneous_[0]
    grid = np.linspace(-30, 30, 20001)[:, None]
    assert np.all(np.diff(dist.cdf(grid)[:, 0]) >= -1e-15)  # rounding only
    assert np.all(dist.pdf(grid) >= 0)


def test_egdf_with_an_outlier_is_not_homogeneous_and_its_density_shows_why():
    X = np.r_[np.random.default_rng(0).normal(size=100), 40.0].reshape(-1, 1)
    dist = GnosticDistribution().fit(X)
    assert not dist.is_homogeneous_[0]
    assert np.isnan(dist.membership_interval_).all()
    pdf = dist.pdf(np.linspace(-5, 45, 50001)[:, None])[:, 0]
    assert pdf.min() < 0 or count_maxima(pdf) > 1
    assert abs(dist.location_[0]) < 0.3


def test_compression_keeps_weight_and_mean_and_is_close_to_exact():
    u = np.sort(np.random.default_rng(1).normal(size=5000))
    w = np.random.default_rng(2).uniform(0, 2, size=5000)
    centers, weights = compress(u, w, 0.7)
    assert weights.sum() == pytest.approx(w.sum(), rel=1e-12)
    assert weights @ centers == pytest.approx(w @ u, rel=1e-10)
    assert centers.shape[0] < 1000
    v = np.linspace(-4, 4, 101)
    for kind in KINDS:
        exact = distribution(v, u, w, 0.7, kind)
        approx = distribution(v, centers, weights, 0.7, kind)
        assert np.max(np.abs(exact[0] - approx[0])) < 1e-4
        assert np.max(np.abs(exact[1] - approx[1])) < 1e-3 * np.max(exact[1])


def test_far_data_are_not_merged():
    centers, weights = compress(np.array([0.0, 1e6]), np.ones(2), 1.0)
    assert centers.shape[0] == 2 and np.allclose(centers, [0.0, 1e6])


def test_one_datum_gives_the_same_function_for_every_kind():
    v = np.linspace(-3, 3, 13)
    ref = distribution(v, np.array([0.5]), np.ones(1), 0.8, "eldf")
    for kind in KINDS:
        got = distribution(v, np.array([0.5]), np.ones(1), 0.8, kind)
        np.testing.assert_allclose(got[0], ref[0], atol=1e-12)
        np.testing.assert_allclose(got[1], ref[1], rtol=1e-10)


def test_evaluation_is_blocked():
    """200,000 points against a thousand data: no n x m matrix is kept (memory in blocks)."""
    import tracemalloc

    u = np.linspace(-3, 3, 1000)
    v = np.linspace(-5, 5, 200_000)
    tracemalloc.start()
    estimating_means(v, u, np.ones(1000), 1.0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # The 4 x m result (6.4 MB) and a dozen block temporaries at most; an m x n matrix would be 1.6 GB.
    assert peak < 4 * 8 * v.size + 12 * 8 * BLOCK_ELEMENTS


@pytest.mark.parametrize("bounds", [(0.0, 1.0), (0.0, np.inf), (-np.inf, 1.0), (-np.inf, np.inf)])
def test_transformations_invert(bounds):
    Z = np.array([0.01, 0.3, 0.5, 0.99])
    u = to_gnostic(Z, bounds, 0.5, 0.2)
    np.testing.assert_allclose(from_gnostic(u, bounds, 0.5, 0.2), Z, rtol=1e-12)
    h = 1e-7
    numeric = (to_gnostic(Z + h, bounds, 0.5, 0.2) - to_gnostic(Z - h, bounds, 0.5, 0.2)) / (2 * h)
    np.testing.assert_allclose(jacobian(Z, bounds, 0.2), numeric, rtol=1e-5)


def test_edf_points_merge_ties_like_weights():
    a = edf_points(np.array([1.0, 2.0, 2.0, 3.0]), np.ones(4))
    b = edf_points(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 1.0]))
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y)


def test_global_scale_recovers_a_logistic_sample():
    """QGDF is exactly logistic in u: its fitted S is 4x the logistic scale."""
    u = np.sort(np.random.default_rng(0).logistic(0.0, 0.5, size=4000))
    assert fit_global_scale(u, np.ones(4000), "qgdf") == pytest.approx(2.0, rel=0.05)


def test_homogeneity_and_main_cluster():
    u = np.r_[np.linspace(-1, 1, 41), np.linspace(9, 10, 10)]
    assert not is_homogeneous(u, np.ones(51), 1.0)
    lo, hi = main_cluster(u, np.ones(51), 1.0)
    assert lo < -1 and 1 < hi < 9


# -- the estimator -------------------------------------------------------------


def test_fitted_attributes_and_bounds():
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(5, 1, 150), rng.beta(2, 5, 150)]
    dist = GnosticDistribution(bounds=[[-np.inf, np.inf], [0.0, 1.0]]).fit(X)
    assert dist.bounds_.tolist() == [[-np.inf, np.inf], [0.0, 1.0]]
    assert dist.location_[0] == pytest.approx(5.0, abs=0.3)
    assert 0.0 < dist.location_[1] < 0.5
    lsb, usb = dist.membership_interval_[1]
    assert 0.0 <= lsb < X[:, 1].min() and X[:, 1].max() < usb <= 1.0
    z0l, z0u = dist.tolerance_interval_[0]
    assert lsb < usb and z0l <= dist.location_[0] <= z0u
    assert dist.cdf([[5.0, 2.0]])[0, 1] == 1.0 and dist.pdf([[5.0, 2.0]])[0, 1] == 0.0
    assert dist.score_samples(X).shape == (150,)


def test_bad_bounds_and_data_outside_them_raise():
    X = np.array([[0.2], [0.5], [1.5]])
    with pytest.raises(ValueError, match="strictly inside bounds"):
        GnosticDistribution(bounds=(0.0, 1.0)).fit(X)
    with pytest.raises(ValueError, match="bounds must be"):
        GnosticDistribution(bounds=(1.0, 0.0)).fit(X)
    with pytest.raises(ValueError, match="bounds must be"):
        GnosticDistribution(bounds=[[0.0, 1.0], [0.0, 2.0]]).fit(X)


def test_deterministic_and_weight_two_is_a_repeated_row():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 2))
    w = rng.integers(0, 4, size=60).astype(float)
    a = GnosticDistribution().fit(X, sample_weight=w)
    b = GnosticDistribution().fit(np.repeat(X, w.astype(int), axis=0))
    c = GnosticDistribution().fit(X, sample_weight=w)
    np.testing.assert_array_equal(a.location_, c.location_)
    for attr in ("location_", "scale_", "membership_interval_", "tolerance_interval_"):
        np.testing.assert_allclose(getattr(a, attr), getattr(b, attr), rtol=1e-6, atol=1e-8)


def test_shift_and_scale_equivariance():
    X = np.random.default_rng(2).normal(size=(80, 1))
    a = GnosticDistribution().fit(X)
    b = GnosticDistribution().fit(3.0 * X + 7.0)
    np.testing.assert_allclose(b.location_, 3.0 * a.location_ + 7.0, rtol=1e-7)
    np.testing.assert_allclose(b.membership_interval_, 3.0 * a.membership_interval_ + 7.0, rtol=1e-6)
    np.testing.assert_allclose(b.scale_, a.scale_)


def test_location_is_robust():
    rng = np.random.default_rng(7)
    clean = rng.normal(size=400)
    dirty = clean.copy()
    dirty[:80] = rng.uniform(20, 60, size=80)
    loc = GnosticDistribution().fit(dirty[:, None]).location_[0]
    median = np.median(dirty)
    assert abs(loc) < 0.5 * abs(median) and abs(median) < abs(dirty.mean())


def test_skops_round_trip(tmp_path):
    sio = pytest.importorskip("skops.io")
    X = np.random.default_rng(0).normal(size=(50, 2))
    dist = GnosticDistribution().fit(X)
    path = tmp_path / "dist.skops"
    sio.dump(dist, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert all(t.startswith("mgsk.") for t in untrusted), untrusted
    loaded = sio.load(path, trusted=untrusted)
    np.testing.assert_array_equal(loaded.cdf(X), dist.cdf(X))


def test_score_is_the_total_log_likelihood_and_a_search_needs_no_scoring():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(120, 2))
    dist = GnosticDistribution(kind="eldf").fit(X[:80])
    assert dist.score(X[80:]) == pytest.approx(dist.score_samples(X[80:]).sum(), rel=1e-12)
    grid = {"kind": ["eldf", "qldf"], "scale": [0.5, 4.0]}
    search = GridSearchCV(GnosticDistribution(), grid, cv=KFold(3)).fit(X)
    by_hand = [
        np.mean([GnosticDistribution(**params).fit(X[train]).score(X[test]) for train, test in KFold(3).split(X)])
        for params in search.cv_results_["params"]
    ]
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], by_hand, rtol=1e-12)
    assert search.best_params_ == search.cv_results_["params"][int(np.argmax(by_hand))]
