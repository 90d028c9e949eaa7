"""The classifier's numerics: estimating equation, Jacobians, binary path."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mgsk._newton import BinaryProblem, Problem


def make_problem(cls, seed, n_classes, n=60, k=3, scale="auto", alpha=0.5, spread=1.0):
    rng = np.random.default_rng(seed)
    Z1 = np.hstack([rng.normal(size=(n, k)) * spread, np.ones((n, 1))])
    y_idx = rng.integers(n_classes, size=n)
    sample_weight = rng.uniform(0.2, 2.0, size=n)
    problem = cls(Z1, y_idx, n_classes, sample_weight, alpha, True, scale)
    M = 1 if n_classes == 2 else n_classes
    theta = rng.normal(size=(k + 1, M))
    return problem, theta


def state_at(problem, theta):
    return problem.state(problem.probabilities(theta), np.ones(problem.Z1.shape[0]))


def with_labels(problem, label, n_classes, row_weights):
    """The same rows, all labelled ``label``, sample weights times ``row_weights``."""
    n = problem.Z1.shape[0]
    return type(problem)(problem.Z1, np.full(n, label), n_classes, problem.sample_weight * row_weights, 0.0, True, problem.scale)


def label_probabilities(problem, theta, n_classes):
    """The model's probability of every label, shape (n, K)."""
    return Problem(problem.Z1, problem.y_idx, n_classes, problem.sample_weight, 0.0, True, "auto").probabilities(theta)["P"]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), spread=st.sampled_from([0.1, 1.0, 30.0, 400.0]))
def test_binary_path_equals_the_general_equations(seed, spread):
    # Large spreads push margins to hundreds: probabilities underflow there.
    binary, theta = make_problem(BinaryProblem, seed, 2, spread=spread)
    general, _ = make_problem(Problem, seed, 2, spread=spread)
    b, g = state_at(binary, theta), state_at(general, theta)
    # The scale equation is solved to 1e-12: rounding differences in the
    # residuals can move S (and so the weights) by about that much.
    assert b["S"] == pytest.approx(g["S"], rel=1e-10)
    np.testing.assert_allclose(b["weights"], g["weights"], rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(b["grad"], g["grad"], rtol=1e-10, atol=1e-10 * np.abs(g["grad"]).max())
    # The general formulas cancel (p ≈ 1 gives p - p²): their rounding error
    # is a few ulps of Σ s ‖z‖², the size of the terms before cancelling.
    cancelled = 1e-14 * binary.sample_weight @ np.sum(binary.Z1**2, axis=1)
    for binary_matrix, general_matrix in ((binary.fisher(b), general.fisher(g)), (binary.jacobian(b), general.jacobian(g))):
        np.testing.assert_allclose(binary_matrix, general_matrix, rtol=1e-9, atol=cancelled)
    # atol: the general log_softmax loses absolute digits of ln p ≈ 0 when |η| is large.
    np.testing.assert_allclose(binary.diagnostics(b), general.diagnostics(g), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls, n_classes", [(BinaryProblem, 2), (Problem, 3), (Problem, 4)])
@pytest.mark.parametrize("seed", range(3))
def test_observed_jacobian_is_the_derivative_of_the_estimating_equation(cls, n_classes, seed):
    problem, theta = make_problem(cls, seed, n_classes)
    S = state_at(problem, theta)["S"]

    def grad(t):
        return problem.state(problem.probabilities(t), None, S=S)["grad"].T.ravel()

    analytic = problem.jacobian(problem.state(problem.probabilities(theta), None, S=S))
    numeric = np.empty_like(analytic)
    flat = theta.T.ravel()
    h = 1e-6
    for j in range(flat.size):
        step = np.zeros_like(flat)
        step[j] = h
        up, down = (flat + step).reshape(theta.shape[1], -1).T, (flat - step).reshape(theta.shape[1], -1).T
        numeric[:, j] = (grad(up) - grad(down)) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-6 * np.abs(analytic).max())


@pytest.mark.parametrize("cls, n_classes", [(BinaryProblem, 2), (Problem, 3)])
def test_fisher_is_the_expected_observed_jacobian(cls, n_classes):
    # Averaging the observed Jacobian over the labels the model would draw
    # gives the expected one; with a fixed scale the weights do not depend on y.
    problem, theta = make_problem(cls, 0, n_classes, scale=0.4, alpha=0.0)
    P = label_probabilities(problem, theta, n_classes)
    expected = sum(
        labelled.jacobian(state_at(labelled, theta))
        for labelled in (with_labels(problem, j, n_classes, P[:, j]) for j in range(n_classes))
    )
    np.testing.assert_allclose(problem.fisher(state_at(problem, theta)), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls, n_classes", [(BinaryProblem, 2), (Problem, 3)])
def test_estimating_equation_is_unbiased_at_the_model(cls, n_classes):
    # Without a penalty, E[g] over labels drawn from the model is 0, whatever the weights.
    problem, theta = make_problem(cls, 1, n_classes, scale=0.3, alpha=0.0)
    P = label_probabilities(problem, theta, n_classes)
    mean_grad = sum(
        state_at(labelled, theta)["grad"]
        for labelled in (with_labels(problem, j, n_classes, P[:, j]) for j in range(n_classes))
    )
    assert np.abs(mean_grad).max() < 1e-12 * problem.Z1.shape[0]


@pytest.mark.parametrize("cls, n_classes", [(Problem, 3), (BinaryProblem, 2)])
def test_rows_in_two_threads_give_the_sums_of_one_block(monkeypatch, cls, n_classes):
    # Above THREADED_ROWS the rows' halves run in two threads: the same
    # sums as one block (to rounding), the same bits on every call, and the
    # same fitted classifier.
    import mgsk._newton as newton_module
    from mgsk import LogisticRegressor

    one, theta = make_problem(cls, 3, n_classes, n=3000)
    monkeypatch.setattr(newton_module, "THREADED_ROWS", 1000)
    halved, _ = make_problem(cls, 3, n_classes, n=3000)
    assert isinstance(halved.rows, newton_module.HalvedLabelRows)
    ours, theirs, again = state_at(halved, theta), state_at(one, theta), state_at(halved, theta)
    np.testing.assert_allclose(ours["grad"], theirs["grad"], rtol=1e-10, atol=1e-10)
    assert ours["S"] == pytest.approx(theirs["S"], rel=1e-10)
    assert np.array_equal(ours["grad"], again["grad"])
    for name in ("jacobian", "fisher"):
        mine = getattr(halved, name)(ours)
        np.testing.assert_allclose(mine, getattr(one, name)(theirs), rtol=1e-10, atol=1e-10)
        assert np.array_equal(mine, getattr(halved, name)(again))
    np.testing.assert_allclose(halved.diagnostics(ours), one.diagnostics(theirs), rtol=1e-10)
    for mine, other in zip(halved.final(ours), one.final(theirs)):
        np.testing.assert_allclose(mine, other, rtol=1e-10, atol=1e-12)
    rng = np.random.default_rng(4)
    X = rng.normal(size=(3000, 3))
    y = (X @ [1.0, -1.0, 0.5] + rng.logistic(size=3000) > 0).astype(int) if n_classes == 2 else rng.integers(3, size=3000)
    threaded = LogisticRegressor().fit(X, y)
    monkeypatch.setattr(newton_module, "THREADED_ROWS", 10**9)
    single = LogisticRegressor().fit(X, y)
    np.testing.assert_allclose(threaded.coef_, single.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(threaded.weights_, single.weights_, rtol=1e-8, atol=1e-10)
