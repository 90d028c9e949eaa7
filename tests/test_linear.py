"""LinearRegressor and PolynomialRegressor: robustness, equivariance, weights, errors."""

import functools
import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

from mgsk import LinearRegressor, LogisticRegressor, PolynomialRegressor
from mgsk.datasets import load_hbk, load_phones, load_stackloss, load_stars


def contaminated(seed, n=400, k=3, frac=0.2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k))
    beta = rng.normal(size=k)
    y = 1.0 + X @ beta + rng.normal(size=n)
    m = int(frac * n)
    y[:m] += rng.uniform(20, 50, size=m)
    return X, y, beta


def params(model):
    return np.r_[model.intercept_, model.coef_]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), c=st.floats(1e-3, 1e3), sign=st.sampled_from([-1.0, 1.0]))
def test_scale_equivariance(seed, c, sign):
    X, y, _ = contaminated(seed)
    base = LinearRegressor(tol=1e-12, max_iter=500).fit(X, y)
    scaled = LinearRegressor(tol=1e-12, max_iter=500).fit(X, sign * c * y)
    np.testing.assert_allclose(params(scaled), sign * c * params(base), rtol=1e-6, atol=1e-9 * c)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), shift=st.floats(-1e3, 1e3))
def test_shift_equivariance(seed, shift):
    X, y, _ = contaminated(seed)
    base = LinearRegressor(tol=1e-12, max_iter=500).fit(X, y)
    shifted = LinearRegressor(tol=1e-12, max_iter=500).fit(X, y + shift)
    np.testing.assert_allclose(params(shifted), params(base) + np.r_[shift, 0, 0, 0], rtol=1e-6, atol=1e-6)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), b=st.lists(st.floats(-100, 100), min_size=3, max_size=3))
def test_regression_equivariance(seed, b):
    X, y, _ = contaminated(seed)
    base = LinearRegressor(tol=1e-12, max_iter=500).fit(X, y)
    moved = LinearRegressor(tol=1e-12, max_iter=500).fit(X, y + X @ np.array(b))
    np.testing.assert_allclose(params(moved), params(base) + np.r_[0, b], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cls", [LinearRegressor, PolynomialRegressor])
def test_weight_two_equals_the_row_repeated_with_n_much_larger_than_p(cls):
    rng = np.random.default_rng(0)
    n = 2000
    X, y, _ = contaminated(1, n=n, k=2, frac=0.15)
    counts = rng.integers(0, 4, size=n)
    weighted = cls(tol=1e-12, max_iter=500).fit(X, y, sample_weight=counts)
    repeated = cls(tol=1e-12, max_iter=500).fit(np.repeat(X, counts, axis=0), np.repeat(y, counts))
    np.testing.assert_allclose(params(weighted), params(repeated), rtol=1e-8, atol=1e-10)
    assert weighted.re_ == pytest.approx(repeated.re_, rel=1e-8)
    copies = np.repeat(np.arange(n), counts)
    np.testing.assert_allclose(repeated.weights_, weighted.weights_[copies], rtol=1e-7, atol=1e-12)


def test_zero_weight_equals_the_row_removed():
    X, y, _ = contaminated(2, n=600)
    keep = np.arange(600) % 3 != 0
    weighted = LinearRegressor(tol=1e-12, max_iter=500).fit(X, y, sample_weight=keep.astype(float))
    removed = LinearRegressor(tol=1e-12, max_iter=500).fit(X[keep], y[keep])
    np.testing.assert_allclose(params(weighted), params(removed), rtol=1e-8, atol=1e-10)


def test_deterministic_bit_for_bit():
    X, y, _ = contaminated(3, n=3000, k=5, frac=0.3)
    a = LinearRegressor(gnostic_characteristics=True).fit(X, y)
    b = LinearRegressor(gnostic_characteristics=True).fit(X.copy(), y.copy())
    assert np.array_equal(params(a), params(b))
    assert np.array_equal(a.weights_, b.weights_)
    assert a.history_ == b.history_ and a.re_ == b.re_ and a.scale_ == b.scale_


@pytest.mark.parametrize("frac", [0.1, 0.2, 0.3, 0.4])
def test_gross_outliers_get_weight_zero_and_do_not_move_the_fit(frac):
    X, y, beta = contaminated(4, n=1000, k=4, frac=frac)
    model = LinearRegressor().fit(X, y)
    m = int(frac * 1000)
    assert np.linalg.norm(params(model) - np.r_[1.0, beta]) < 0.25
    assert model.weights_[:m].max() < 1e-4
    assert model.outliers_[:m].all() and model.outliers_[m:].mean() < 0.02
    assert model.converged_


def test_bad_leverage_points_are_rejected():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(1000, 3))
    beta = np.array([1.0, -1.0, 2.0])
    y = X @ beta + rng.normal(size=1000)
    X[:100] = rng.normal(5, 1, size=(100, 3))
    y[:100] = X[:100] @ beta - rng.uniform(15, 30, size=100)
    model = LinearRegressor().fit(X, y)
    assert np.linalg.norm(params(model) - np.r_[0.0, beta]) < 0.2
    assert model.weights_[:100].max() < 1e-4


@functools.cache
def bench_estimators():
    """The benchmark script as a module (its data generators)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_estimators.py"
    spec = importlib.util.spec_from_file_location("bench_estimators", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed, frac", [(1, 0.2), (5, 0.2), (6, 0.2), (0, 0.3), (5, 0.3), (6, 0.3)])
def test_a_masking_cluster_in_twenty_rows_is_found(seed, frac):
    # bench_estimators' masking data: 20 rows, 6 parameters, 4-6 bad
    # leverage points close together that pull each other's distances in
    # X. The start guessed in X alone went through the cluster here
    # (errors 3.5-10, the cluster's weights near 1).
    X, y, beta = bench_estimators().clustered_leverage(seed, 20, frac)
    m = int(round(frac * 20))
    model = LinearRegressor().fit(X, y)
    assert model.weights_[:m].max() < 1e-3
    assert np.linalg.norm(params(model) - beta) < 1.3


def test_polynomial_recovers_a_curve_through_outliers():
    x = np.linspace(-3, 3, 301).reshape(-1, 1)
    y = 2 - x[:, 0] + 0.5 * x[:, 0] ** 2 + np.random.default_rng(6).normal(scale=0.1, size=301)
    y[::7] -= 30
    model = PolynomialRegressor().fit(x, y)
    np.testing.assert_allclose(params(model), [2, -1, 0.5], atol=0.05)
    assert model.degree == 2 and model.polynomial_features_ is not None
    assert LinearRegressor(degree=3).fit(x, y).coef_.shape == (3,)


@pytest.mark.parametrize("n, k", [(300, 60), (200, 40), (150, 99)])
def test_wide_data_converge_and_beat_huber_on_outliers_in_y(n, k):
    """Few rows per parameter: the least-squares start and leverage-adjusted
    residuals keep a redescending fit ahead of the monotone Huber fit."""
    from sklearn.linear_model import HuberRegressor

    errors, huber_errors = [], []
    for seed in range(2):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(n, k))
        beta = np.r_[1.0, rng.normal(size=k)]
        y = beta[0] + X @ beta[1:] + rng.normal(size=n)
        y[: n // 10] += rng.uniform(20, 50, size=n // 10)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            model = LinearRegressor().fit(X, y)
        huber = HuberRegressor(max_iter=1000).fit(X, y)
        errors.append(np.linalg.norm(params(model) - beta))
        huber_errors.append(np.linalg.norm(np.r_[huber.intercept_, huber.coef_] - beta))
        assert model.weights_[: n // 10].max() < 0.05
    assert np.mean(errors) < 0.85 * np.mean(huber_errors)


def test_wide_data_converge_in_few_steps():
    """2.5 rows per parameter, 10 % outliers in y: Newton steps whose Jacobian
    follows the leverages (72-82 steps before, when it held them)."""
    for seed in range(2):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(250, 100))
        beta = np.r_[1.0, rng.normal(size=100)]
        y = beta[0] + X @ beta[1:] + rng.normal(size=250)
        y[:25] += rng.uniform(20, 50, size=25)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            model = LinearRegressor().fit(X, y)
        assert model.converged_ and model.n_iter_ <= 25
        assert model.weights_[:25].max() < 0.05


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_wide_polynomial_design_converges_without_warning(dtype):
    """scikit-learn's regression check data through PolynomialRegressor: 200 rows, 65 columns.

    Newton steps whose Jacobian held the leverages, with Anderson acceleration, cycled on its
    float32 copy (never converging).
    """
    from sklearn.preprocessing import scale
    from sklearn.utils.estimator_checks import _regression_dataset

    X, y = _regression_dataset()  # X is scaled
    X, y = X.astype(dtype), scale(y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = PolynomialRegressor().fit(X, y)
    assert model.converged_ and model.n_features_in_ == 10


def test_fit_intercept_false_goes_through_the_origin():
    X, y, beta = contaminated(7, n=500, k=2)
    model = LinearRegressor(fit_intercept=False).fit(X, y - 1.0)
    assert model.intercept_ == 0.0
    np.testing.assert_allclose(model.coef_, beta, atol=0.2)


def test_fixed_scale_is_used():
    X, y, _ = contaminated(8)
    auto = LinearRegressor(tol=1e-10).fit(X, y)
    model = LinearRegressor(scale=0.5).fit(X, y)
    assert model.scale_ == 0.5
    # The scale decides the weights: fixing the auto scale reaches the auto
    # fit's fixed point; a stricter scale gives smaller weights and another fit.
    same = LinearRegressor(scale=auto.scale_, tol=1e-10).fit(X, y)
    np.testing.assert_allclose(params(same), params(auto), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(same.weights_, auto.weights_, atol=1e-6)
    strict = LinearRegressor(scale=auto.scale_ / 4).fit(X, y)
    loose = LinearRegressor(scale=2.0).fit(X, y)
    good = slice(int(0.2 * len(y)), None)
    assert strict.weights_[good].mean() < auto.weights_[good].mean() - 0.1
    assert loose.weights_[good].mean() > auto.weights_[good].mean() + 0.01
    assert np.linalg.norm(params(strict) - params(auto)) > 1e-3


def test_fitted_estimator_has_ninety_percent_gaussian_efficiency():
    """The efficiency η exists for, measured on a fit: the asymptotic
    efficiency (E ψ')² σ² / E ψ² of ψ(r) = r w(r) at the fitted weights."""
    rng = np.random.default_rng(16)
    X = rng.normal(size=(100_000, 2))
    y = X @ [1.0, -2.0] + rng.normal(size=100_000)  # σ = 1
    model = LinearRegressor(gnostic_characteristics=True).fit(X, y)
    r = y - model.predict(X)
    w = model.weights_
    x_tanh_x = np.arctanh(model.characteristics_["h_I"]) * model.characteristics_["h_I"]
    efficiency = np.mean(w * (1 - x_tanh_x)) ** 2 / np.mean((r * w) ** 2)
    # 0.90 by design; without η (η = 1) the fixed point gives about 0.66.
    assert efficiency == pytest.approx(0.90, abs=0.015)


@pytest.mark.parametrize("cls, degree", [(LinearRegressor, 1), (PolynomialRegressor, 2), (LogisticRegressor, 1)])
def test_huge_features_are_a_clear_error_before_any_linear_algebra(cls, degree, capfd):
    rng = np.random.default_rng(17)
    X = rng.normal(size=(40, 2)) * 1e300
    y = (rng.random(40) < 0.5).astype(int)
    with pytest.raises(ValueError, match="overflow float64.*Rescale X"):
        cls(degree=degree).fit(X, y)
    assert capfd.readouterr().out == ""  # LAPACK printed nothing


def test_history_and_aliases():
    X, y, _ = contaminated(9)
    model = LinearRegressor(gnostic_characteristics=True).fit(X, y)
    assert model.re == model.re_ and model.weights is model.weights_ and model._history == model.history_
    # the guide plots model._history directly: as an array it is the re trajectory
    np.testing.assert_array_equal(np.asarray(model._history), [h["re"] for h in model.history_])
    assert len(model.history_) == model.n_iter_
    assert [h["iteration"] for h in model.history_] == list(range(1, model.n_iter_ + 1))
    assert {"iteration", "re", "loss", "scale"} <= set(model.history_[0])
    assert set(model.characteristics_) == {"f_I", "h_I", "f_J", "h_J", "p_I", "I_I", "e_I", "e_J", "re"}
    assert model.characteristics_["f_I"].shape == y.shape
    with pytest.raises(AttributeError):
        model.re = 1.0


def test_refit_resets_all_state():
    X, y, _ = contaminated(10)
    model = LinearRegressor(gnostic_characteristics=True).fit(X, y)
    first_history = list(model.history_)
    model.set_params(gnostic_characteristics=False).fit(X[:, :2], y)
    assert not hasattr(model, "characteristics_")
    assert model.n_features_in_ == 2 and model.coef_.shape == (2,)
    assert len(model.history_) == model.n_iter_ and model.history_ is not first_history
    assert model.weights_.shape == y.shape


def test_non_convergence_warns_and_returns_a_model():
    X, y, _ = contaminated(11)
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        model = LinearRegressor(max_iter=1).fit(X, y)
    assert not model.converged_ and model.n_iter_ == 1
    assert np.isfinite(model.predict(X)).all()


def test_converged_fit_does_not_warn():
    X, y, _ = contaminated(12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LinearRegressor().fit(X, y)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda X, y: (np.where(X == X[0, 0], np.nan, X), y), "NaN"),
        (lambda X, y: (X, np.r_[y[:-1], np.inf]), "infinity"),
        (lambda X, y: (X, y[:-1]), "inconsistent numbers of samples"),
        (lambda X, y: (X.astype(str).astype(object) + "x", y), "could not convert"),
    ],
)
def test_bad_input_gets_a_clear_error(change, match):
    X, y, _ = contaminated(13)
    with pytest.raises(ValueError, match=match):
        LinearRegressor().fit(*change(X, y))


def test_bad_weights_and_parameters_are_named():
    X, y, _ = contaminated(14)
    with pytest.raises(ValueError, match="Negative values in data passed to .*sample_weight"):
        LinearRegressor().fit(X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match="at least one non-zero"):
        LinearRegressor().fit(X, y, sample_weight=np.zeros(len(y)))
    with pytest.raises(InvalidParameterError, match="'scale'"):
        LinearRegressor(scale="wide").fit(X, y)
    with pytest.raises(InvalidParameterError, match="'degree'"):
        LinearRegressor(degree=0).fit(X, y)


def test_extreme_magnitudes_fit_without_warnings():
    X, y, beta = contaminated(15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big = LinearRegressor().fit(X, y * 1e150)
        small = LinearRegressor().fit(X, y * 1e-150)
    np.testing.assert_allclose(big.coef_ / 1e150, small.coef_ / 1e-150, rtol=1e-6)


def test_stackloss_outliers_are_the_textbook_rows():
    ds = load_stackloss()
    model = LinearRegressor().fit(ds.data, ds.target)
    assert set(np.argsort(model.weights_)[:4]) == {0, 2, 3, 20}  # rows 1, 3, 4, 21
    # The MM-estimate of R's robustbase::lmrob: -41.52, 0.939, 0.580, -0.113
    assert np.all(np.abs(params(model) - [-41.52, 0.939, 0.580, -0.113]) <= [1.5, 0.1, 0.1, 0.02])


def test_phones_outliers_are_1964_to_1969():
    ds = load_phones()
    model = LinearRegressor().fit(ds.data, ds.target)
    lowest = set(np.argsort(model.weights_)[:7])
    assert set(range(14, 20)) <= lowest  # 1964-1969 (1970 is partly affected too)
    assert model.coef_[0] == pytest.approx(1.15, rel=0.05)  # LMS slope, Rousseeuw & Leroy


@pytest.mark.parametrize("loader", [load_stars, load_hbk], ids=["stars", "hbk"])
def test_bad_leverage_points_of_the_literature(loader):
    ds = loader()
    model = LinearRegressor().fit(ds.data, ds.target)
    assert set(np.argsort(model.weights_)[: len(ds.outliers)]) == set(ds.outliers)
