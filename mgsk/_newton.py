r"""Gnostic IRLS for (multinomial) logistic regression.

The model is a softmax over ``M`` logits ``η_c = Z θ_c``: with two classes
one logit against a reference class fixed at 0 (``M = 1``, the usual
logistic model), with ``K > 2`` classes one logit per class (``M = K``,
symmetric).

**Weights.** Each row's label gets the gnostic filtering weight of its
Pearson residual ``r = sqrt((1 - p) / p)``, ``p`` the predicted probability
of the label: ``ln R = r / κ`` and ``w = sech(2 ln R / (η S))`` as in
:mod:`mgsk._irls`, with ``S`` from the scale equation weighted by the
filtering weights themselves (settled at the current residuals). Pearson
residuals have unit variance under the model, so ``S`` is floored at the
scale of unit-variance residuals: data that the model fits well (even
separable data) cannot make a moderate residual look like an outlier. A
label that the model finds very improbable, such as a flipped label far
from the boundary, gets a weight near 0.

**Estimating equation.** Down-weighting improbable labels alone would bias
the fit toward over-confidence (misclassified rows near the boundary lose
weight too). The weighted score is therefore made Fisher-consistent, as in
Cantoni & Ronchetti (2001): with ``w_j`` the weight row ``i`` would get if
its label were ``j``,

.. math:: g(θ) = \sum_i s_i \bigl[w_i (p_i - y_i) + c_i\bigr] \otimes z_i
          + α\,β = 0, \qquad c_i = \sum_j p_{ij} w_{ij} (e_j - p_i),

(``s`` the sample weights, ``α = 1/C`` an L2 penalty on the coefficients,
not the intercepts). ``c_i`` is the expectation of the weighted residual
under the model, so ``E[g] = 0`` at the true parameters whatever the
weights. It does not depend on the observed label, so a row with weight
~0 has no influence at all.

**Steps.** Scoring steps ``θ ← θ - t H^{-1} g`` with the expected Jacobian
of the estimating equation, by the information identity ``E[ψ sᵀ]`` with
``s`` the score,

.. math:: H_{ab} = \sum_i s_i \bigl(δ_{ab} p_{ia} w_{ia}
          - p_{ia} p_{ib} (w_{ia} + w_{ib} - ω_i)\bigr) z_i z_i^\top + δ_{ab} α I,
          \qquad ω_i = \sum_j p_{ij} w_{ij},

(the multinomial Fisher information when every ``w = 1``); once the steps
are small, Newton steps with the observed Jacobian ``∂g/∂θ`` (exact, at
fixed ``S``) finish quadratically. O(n·k²·M²) per step, solved by least
squares (which also removes the shift of all intercepts that the
symmetric model leaves free). ``t`` halves until ``‖g‖`` decreases.

With two classes the same equations reduce to per-row scalars
(:class:`BinaryLabelRows`): fewer passes over the rows than with (n, K)
arrays.

**Rows.** The iteration (:class:`Problem`) reads the data only through a
*rows* object: ``keep(name, *args)`` runs a :class:`LabelRows` method on the
rows and keeps its per-row result (probabilities, residuals, weights) with
them, ``total`` returns the sum over the rows of a method's sums (gradient,
Jacobian matrices, the scale equation's sums, the diagnostics),
``keep_total`` both, and ``column`` gives one kept per-row array.
:class:`InMemoryLabelRows` holds all rows in one block;
:class:`mgsk.dask._logistic.DaskLabelRows` runs the same methods on each
dask chunk and adds the chunks' sums.
"""

import functools

import numpy as np

from ._gnostic import X_MAX, gnostic_x, residual_entropy_values, scale_from_fidelity, sech, standardized_log_ratio
from ._irls import EFFICIENT_C, ETA, KAPPA, _root_of_unit
from ._rows import THREADED_ROWS, in_two_threads

#: The gnostic scale the regressors reach on unit-variance Gaussian
#: residuals (``x = r / EFFICIENT_C``).
MODEL_SCALE = 2.0 * EFFICIENT_C / (KAPPA * ETA)
MAX_HALVINGS = 30
#: A Newton step shorter than this (relative) is taken without line search.
NEAR = 1e-3
#: Rows per block when summing the Jacobian: a block of the design and its
#: weighted copy stay in cache (about 10 % faster than one pass at n = 1e5).
ASSEMBLY_ROWS = 4096


def row_sum(a):
    """Sum of each row of a 2-D array.

    A product with ones: numpy's reductions along a short last axis (a few
    classes) are about ten times slower.
    """
    return np.dot(a, np.ones(a.shape[1]))  # np.dot releases the GIL (HalvedLabelRows)


def row_logsumexp(a):
    """``log(sum(exp(a)))`` of each row of a 2-D array, without overflow.

    Parameters
    ----------
    a : ndarray of shape (n, K)
        Values.

    Returns
    -------
    ndarray of shape (n,)
        The log-sum-exp of each row.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._newton import row_logsumexp
    >>> float(row_logsumexp(np.array([[1000.0, 1000.0]]))[0]) - 1000
    0.6931471805599...
    """
    m = functools.reduce(np.maximum, a.T)  # column by column, as in row_sum
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(row_sum(np.exp(a - m[:, None]))) + m


def log_softmax(logits, reference):
    """Log-probabilities of all classes from the free logits.

    Parameters
    ----------
    logits : ndarray of shape (n, M)
        Free logits.
    reference : bool
        Whether class 0 is a reference class with logit 0 (then the output
        has ``M + 1`` columns).

    Returns
    -------
    ndarray of shape (n, K)
        Log-probabilities.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._newton import log_softmax
    >>> np.exp(log_softmax(np.zeros((1, 1)), reference=True))
    array([[0.5, 0.5]])
    """
    if reference and logits.shape[1] == 1:
        eta = logits[:, 0]
        log_p1 = -np.logaddexp(0.0, -eta)
        return np.column_stack([log_p1 - eta, log_p1])
    full = np.hstack([np.zeros((logits.shape[0], 1)), logits]) if reference else logits
    return full - row_logsumexp(full)[:, None]


def pearson_residuals(P):
    """``sqrt((1 - p) / p)`` for every row and class.

    With two classes ``1 - p`` is the other probability, exactly; with more
    it is exact for ``p ≥ 1/2`` and accurate below (an absolute error of an
    ulp, which only matters where the residual is negligibly small).

    Parameters
    ----------
    P : ndarray of shape (n, K)
        Probabilities.

    Returns
    -------
    ndarray of shape (n, K)
        Non-negative residuals each row would have with each label
        (``inf`` for a probability of 0).

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._newton import pearson_residuals
    >>> pearson_residuals(np.array([[0.2, 0.8]]))
    array([[2. , 0.5]])
    """
    Q = P[:, ::-1] if P.shape[1] == 2 else 1.0 - P
    with np.errstate(divide="ignore", over="ignore"):
        return np.sqrt(Q / P)


def label_scale(r, sample_weight, prev_weights, scale="auto"):
    """The gnostic scale of the Pearson residuals of the observed labels.

    The scale equation is weighted by the filtering weights ``sech(r/(κηS/2))``
    of the residuals, which depend on ``S``: from the scale it gives at
    ``prev_weights``, a few secant steps find the ``S`` at which it is
    consistent (:func:`mgsk._irls._root_of_unit`).

    Parameters
    ----------
    r : ndarray of shape (n,)
        Pearson residuals of the observed labels.
    sample_weight : ndarray of shape (n,)
        Non-negative weights.
    prev_weights : ndarray of shape (n,)
        Previous filtering weights (they weight the first scale equation).
    scale : "auto" or float, default="auto"
        ``"auto"`` solves the scale equation (floored at ``MODEL_SCALE``);
        a number is returned as it is.

    Returns
    -------
    float
        The gnostic scale ``S``.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._newton import MODEL_SCALE, label_scale
    >>> label_scale(np.full(10, 0.1), np.ones(10), np.ones(10)) == MODEL_SCALE
    True
    """
    if scale != "auto":
        return float(scale)
    u, weighted_fidelity, first_sums = scale_terms(r, sample_weight, prev_weights)
    return settle_scale(first_sums, lambda S: image_sums(u, sample_weight, weighted_fidelity, S))


def scale_terms(r, sample_weight, prev_weights):
    """The per-row terms of the scale equation and the sums of its first solution.

    Returns ``u`` (the log-ratios), ``s sech(2u)`` and ``(Σ f s w', Σ s w')``
    with ``f`` the fidelities at ``S = 1`` and ``w'`` the previous weights:
    the sums of :func:`mgsk._gnostic.gnostic_scale`'s weighted mean.
    """
    u = standardized_log_ratio(r, KAPPA, 2.0)
    weights = sample_weight * prev_weights
    f = sech(gnostic_x(u, 1.0))
    return u, sample_weight * sech(2.0 * u), np.array([np.multiply(f, weights).sum(), weights.sum()])


def image_sums(u, sample_weight, weighted_fidelity, S):
    """``(Σ s w, Σ w s sech(2u))`` at the filtering weights ``w`` of scale ``S``."""
    w = sech(u * (2.0 / (ETA * S)))
    return np.array([w @ sample_weight, w @ weighted_fidelity])


def settle_scale(first_sums, image_sums_at):
    """``S`` from the sums of the scale equation (over all rows, however they are held).

    ``first_sums``: those of :func:`scale_terms`; ``image_sums_at(S)``:
    those of :func:`image_sums` at ``S``. Secant steps (over these
    one-dimensional sums) settle ``S`` for the current residuals, so that
    the scale does not lag a step behind the coefficients.
    """
    first = max(scale_from_fidelity(float(first_sums[0] / first_sums[1])), MODEL_SCALE)

    def image(S):
        total, fidelity = image_sums_at(S)
        total = float(total)
        return max(scale_from_fidelity(float(fidelity) / total), MODEL_SCALE) if total > 0 else 2.0

    return _root_of_unit(image, first, image(first), 4)


def weight_derivative(P, W, R, S):
    """``dW/dp``: how each label's filtering weight changes with its probability.

    ``W = sech(ρ / c)`` with ``ρ = sqrt((1 - p) / p)`` and ``c = κ η S / 2``,
    so ``dW/dp = W (tanh(x) / x) / (2 c² p²)``, ``x = ρ / c``; 0 where ``x``
    reaches ``X_MAX`` (the weight is 0 there).

    Parameters
    ----------
    P : ndarray
        Probabilities of labels.
    W : ndarray
        Their filtering weights at scale ``S`` (same shape).
    R : ndarray
        Their Pearson residuals (same shape).
    S : float
        Gnostic scale.

    Returns
    -------
    ndarray
        Non-negative derivatives, the shape of ``P``.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._newton import weight_derivative
    >>> bool(weight_derivative(np.full((1, 2), 0.5), np.full((1, 2), 0.9), np.ones((1, 2)), 0.2)[0, 0] > 0)
    True
    """
    c = KAPPA * ETA * S / 2.0
    x = standardized_log_ratio(R, c, 2.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tanh_over_x = np.where(x < 1e-8, 1.0, np.tanh(x) / x)
        d = W * tanh_over_x / (2.0 * c * c) / P / P
    return np.where(x >= X_MAX, 0.0, d)


class LabelRows:
    """The per-row arithmetic of the classifier's iteration on one block of rows.

    Every method works on the rows it holds (all rows in memory, or one
    chunk on a Dask worker): it returns per-row arrays (a dict that stays
    with the rows) and/or sums over its rows. The sums of disjoint blocks
    add, so :class:`Problem` reads any data through :class:`InMemoryLabelRows`
    or a chunked backend with the same results.

    Parameters
    ----------
    Z1 : ndarray of shape (n, k1)
        Design, with a column of ones last when there is an intercept.
    y_idx : ndarray of shape (n,)
        Index of each row's class.
    n_classes : int
        Number of classes ``K``.
    sample_weight : ndarray of shape (n,)
        Non-negative weights.
    diagnostic_weight : ndarray of shape (n,) or None
        Weights of ``re`` and the loss; None for ``sample_weight``.
    """

    def __init__(self, Z1, y_idx, n_classes, sample_weight, diagnostic_weight=None):
        self.Z1, self.y_idx, self.sample_weight = Z1, y_idx, sample_weight
        self.diagnostic_weight = sample_weight if diagnostic_weight is None else diagnostic_weight
        self.reference = n_classes == 2
        self.free = slice(1, None) if self.reference else slice(None)
        self.Y = np.zeros((Z1.shape[0], n_classes))
        self.Y[np.arange(Z1.shape[0]), y_idx] = 1.0
        # Flat indices of the observed labels in a C-ordered (n, K) array.
        self.observed = np.arange(Z1.shape[0]) * n_classes + y_idx

    def probabilities(self, theta):
        """Probabilities and Pearson residuals of every label at ``theta``."""
        return self.from_logits(self.logits(theta))

    def logits(self, theta):
        """The free logits ``Z1 θ`` (all a chunked backend keeps per row between passes)."""
        return np.dot(self.Z1, theta)

    def from_logits(self, eta):
        """:meth:`probabilities` from the rows' :meth:`logits`."""
        log_proba = log_softmax(eta, self.reference)
        P = np.exp(log_proba)
        R = pearson_residuals(P)
        return {"log_proba": log_proba, "P": P, "R": R, "r": R.take(self.observed)}

    def log_likelihoods(self, probs):
        """Log-probability of each row's observed label."""
        return probs["log_proba"].take(self.observed)

    def scale_terms(self, probs, prev):
        """:func:`scale_terms` of the rows (``prev``: the previous rows' dict, weights, or None)."""
        prev_weights = prev["weights"] if isinstance(prev, dict) else np.ones(self.Z1.shape[0]) if prev is None else prev
        u, weighted_fidelity, sums = scale_terms(probs["r"], self.sample_weight, prev_weights)
        return {"u": u, "weighted_fidelity": weighted_fidelity}, sums

    def image_sums(self, terms, S):
        """:func:`image_sums` of the rows."""
        return image_sums(terms["u"], self.sample_weight, terms["weighted_fidelity"], S)

    def weighted_score(self, probs, S):
        """The rows' weights and score at scale ``S``, and their part of the gradient."""
        state = self.weighted_state(probs, S)
        return state, np.dot(self.Z1.T, self.sample_weight[:, None] * state["score"])

    def weighted_state(self, probs, S):
        """The per-row result of :meth:`weighted_score` (without the design)."""
        return {**probs, "S": S, **self._weighted_score(probs, S)}

    def _weighted_score(self, probs, S):
        """Filtering weights at scale ``S`` and the per-row ``F`` (free classes)."""
        P = probs["P"]
        W = sech(standardized_log_ratio(probs["R"], KAPPA, ETA * S))
        w = W.take(self.observed)
        PW = P * W
        omega = row_sum(PW)
        f = self.free
        score = w[:, None] * (P[:, f] - self.Y[:, f]) + PW[:, f] - P[:, f] * omega[:, None]
        return {"weights": w, "W": W, "expected_weights": omega, "score": score}

    def jacobian(self, state):
        """The rows' part of the observed Jacobian ``∂g/∂θ`` at fixed ``S`` (flattened).

        Per row, ``F(p) = w_y (p - e_y) + p∘W - p (pᵀW)`` with ``W_j = φ(p_j)``
        the weight of label ``j``; ``∂F/∂η = ∂F/∂p · (diag p - p pᵀ)``.
        """
        P, W, Y = state["P"], state["W"], self.Y
        dW = weight_derivative(P, W, state["R"], state["S"])
        n, K = P.shape
        rows = np.arange(n)
        w_y, dW_y, omega = W.take(self.observed), dW.take(self.observed), state["expected_weights"]
        dF = np.zeros((n, K, K))
        dF[:, np.arange(K), np.arange(K)] = (w_y - omega)[:, None] + W + P * dW
        dF[rows, :, self.y_idx] += (P - Y) * dW_y[:, None]
        dF -= P[:, :, None] * (W + P * dW)[:, None, :]
        dP = -P[:, :, None] * P[:, None, :]
        dP[:, np.arange(K), np.arange(K)] += P
        J = np.einsum("iab,ibc->iac", dF[:, self.free, :], dP[:, :, self.free])
        return self._assemble(lambda a, b: J[:, a, b], J.shape[1])

    def fisher(self, state):
        """The rows' part of the expected Jacobian of the estimating equation (flattened)."""
        P, W = state["P"][:, self.free].T.copy(), state["W"][:, self.free].T.copy()
        omega = state["expected_weights"]

        def block(a, b):
            J_ab = P[a] * P[b] * (omega - W[a] - W[b])
            return J_ab + P[a] * W[a] if a == b else J_ab

        return self._assemble(block, P.shape[0], symmetric=True)

    def _assemble(self, block, M, symmetric=False):
        """``Σ_i s_i J_i[a, b] z_i z_iᵀ`` (the penalty is added by :class:`Problem`).

        ``block(a, b)`` gives the per-row ``J_i[a, b]``; ``symmetric``: every
        ``J_i`` is symmetric, so ``H_ba = H_ab``.
        """
        n, k1 = self.Z1.shape
        hess = np.zeros((M, k1, M, k1))
        for a in range(M):
            for b in range(a if symmetric else 0, M):
                v = self.sample_weight * block(a, b)
                H_ab = hess[a, :, b, :]
                for start in range(0, n, ASSEMBLY_ROWS):
                    rows = slice(start, start + ASSEMBLY_ROWS)
                    H_ab += np.dot((self.Z1[rows] * v[rows, None]).T, self.Z1[rows])
                if symmetric and a != b:
                    hess[b, :, a, :] = H_ab
        return hess.reshape(M * k1, M * k1)

    def diagnostic_sums(self, state):
        """``(Σ s re, Σ s, Σ d ln p, Σ d)`` with ``d = s w``: the sums of ``re`` and the loss."""
        log_p = self.log_likelihoods(state)
        s = self.diagnostic_weight
        d = s * state["weights"]
        return np.array([s @ residual_entropy_values(log_p, 1.0), s.sum(), d @ log_p, d.sum()])

    def final(self, state):
        """The rows' filtering weights and gnostic log-ratios ``x``."""
        return {"weights": state["weights"], "x": standardized_log_ratio(state["r"], KAPPA, ETA * state["S"])}


class BinaryLabelRows(LabelRows):
    """Two classes: the equations of :class:`LabelRows` in per-row scalars.

    With ``m = ±η`` the margin of the observed label (``+`` for class 1),
    ``p`` its probability, ``q = 1 - p`` and ``w``, ``v`` the weights the
    observed and the other label get, a row's estimating function reduces to
    ``F = ∓q A`` with ``A = q w + p v``, its expected Jacobian to ``p q A``
    and its observed Jacobian to ``p q (A - q (v - w + q w' - p v'))``
    (``'`` the weight's derivative in its probability). Both Pearson
    residuals come from one exponential: ``sqrt(q / p) = exp(-m / 2)``.
    Same results, fewer passes over the rows.
    """

    def __init__(self, Z1, y_idx, n_classes, sample_weight, diagnostic_weight=None):
        super().__init__(Z1, y_idx, n_classes, sample_weight, diagnostic_weight)
        self.sign = 2.0 * y_idx - 1.0

    def logits(self, theta):
        """The logit ``Z1 θ`` of class 1, one per row."""
        return np.dot(self.Z1, theta[:, 0])

    def from_logits(self, eta):
        """Probabilities and Pearson residuals of both labels from the rows' :meth:`logits`."""
        margin = self.sign * eta
        with np.errstate(over="ignore", divide="ignore"):
            r = np.exp(-0.5 * margin)
            r_other = 1.0 / r
            p, q = 1.0 / (1.0 + r * r), 1.0 / (1.0 + r_other * r_other)
        return {"margin": margin, "p": p, "q": q, "r": r, "r_other": r_other}

    def log_likelihoods(self, probs):
        """Log-probability of each row's observed label."""
        margin = probs["margin"]
        return np.minimum(margin, 0.0) - np.log1p(np.exp(-np.abs(margin)))

    def _weighted_score(self, probs, S):
        w = sech(standardized_log_ratio(probs["r"], KAPPA, ETA * S))
        v = sech(standardized_log_ratio(probs["r_other"], KAPPA, ETA * S))
        p, q = probs["p"], probs["q"]
        A = q * w + p * v
        return {"weights": w, "other_weights": v, "A": A, "score": (-self.sign * q * A)[:, None]}

    def fisher(self, state):
        """The rows' part of the expected Jacobian ``Σ s p q A z zᵀ``."""
        J = state["p"] * state["q"] * state["A"]
        return self._assemble(lambda a, b: J, 1)

    def jacobian(self, state):
        """The rows' part of the observed Jacobian ``∂g/∂θ`` at fixed ``S``."""
        p, q, w, v, S = state["p"], state["q"], state["weights"], state["other_weights"], state["S"]
        dw = weight_derivative(p, w, state["r"], S)
        dv = weight_derivative(q, v, state["r_other"], S)
        J = p * q * (state["A"] - q * (v - w + q * dw - p * dv))
        return self._assemble(lambda a, b: J, 1)


class InMemoryLabelRows:
    """The rows interface of :class:`Problem` on numpy arrays: one block, all rows.

    ``keep(name, *args)`` runs ``LabelRows.<name>`` and keeps its per-row
    result (here: returns it); ``total(name, *args)`` returns its sums;
    ``keep_total`` both; ``column(kept, key)`` one per-row array of a kept
    result. A chunked backend runs the same methods on each chunk, keeps
    the per-row results with the chunks and adds the sums.

    Parameters
    ----------
    block : LabelRows
        The arithmetic on all rows.
    """

    def __init__(self, block):
        self.block = block

    def keep(self, name, *args):
        """The per-row result of ``block.<name>(*args)``."""
        return getattr(self.block, name)(*args)

    total = keep_total = keep

    def column(self, kept, key):
        """``kept[key]``: one per-row array."""
        return kept[key]


class _Halves(tuple):
    """A per-row result of :class:`HalvedLabelRows`: one per half of the rows."""


class HalvedLabelRows:
    """The rows interface of :class:`Problem` on numpy arrays, in two threads.

    The rows' first and second halves are two :class:`LabelRows` blocks
    (views, no copies); each method runs on both at once, the second in a
    thread (numpy releases the GIL in its loops and in ``np.dot``). Per-row
    results are kept by halves, and sums are added in the halves' order: the
    same bits on every call, whatever the threads' timing.

    Parameters
    ----------
    blocks : tuple of LabelRows
        The first and the second half of the rows.
    """

    def __init__(self, blocks):
        self.blocks = blocks
        self.middle = blocks[0].Z1.shape[0]
        self.n = self.middle + blocks[1].Z1.shape[0]

    def _both(self, name, args):
        def part(arg, i):
            if isinstance(arg, _Halves):
                return arg[i]
            if isinstance(arg, np.ndarray) and arg.ndim == 1 and arg.shape[0] == self.n:  # per-row weights
                return arg[: self.middle] if i == 0 else arg[self.middle :]
            return arg

        def run(i):
            return getattr(self.blocks[i], name)(*(part(a, i) for a in args))

        return in_two_threads(run, 0, 1)

    def keep(self, name, *args):
        """The per-row results of ``block.<name>(*args)`` on both halves."""
        return _Halves(self._both(name, args))

    def total(self, name, *args):
        """The sum of ``block.<name>(*args)`` over both halves."""
        first, second = self._both(name, args)
        return first + second

    def keep_total(self, name, *args):
        """``(kept, sums)`` of a method that returns both."""
        (kept_first, first), (kept_second, second) = self._both(name, args)
        return _Halves((kept_first, kept_second)), first + second

    def column(self, kept, key):
        """The per-row array ``key`` of all rows."""
        return np.concatenate((kept[0][key], kept[1][key]))


def _shown(kept):
    """The per-row arrays of an in-memory result, for inspection (none of a chunked one)."""
    return kept if isinstance(kept, dict) else {}


class Problem:
    """One fit: the classifier's iteration over rows held anywhere.

    The steps, the scale equation and the diagnostics are computed from
    sums over the rows, which a *rows* object provides (:class:`InMemoryLabelRows`
    by default, a Dask backend in :mod:`mgsk.dask`); the per-row arithmetic
    is that of :class:`LabelRows` (:class:`BinaryLabelRows` here).

    Parameters
    ----------
    Z1 : ndarray of shape (n, k1)
        Design, with a column of ones last when there is an intercept.
    y_idx : ndarray of shape (n,)
        Index of each row's class.
    n_classes : int
        Number of classes ``K``.
    sample_weight : ndarray of shape (n,)
        Non-negative weights.
    alpha : float
        L2 penalty ``1/C`` on the coefficients.
    fit_intercept : bool
        Whether the last column of ``Z1`` is an unpenalised intercept.
    scale : "auto" or float
        Gnostic scale: solved, or fixed.
    diagnostic_weight : ndarray of shape (n,) or None
        Weights of ``re`` and the loss in :meth:`diagnostics` (the sample
        weights without leverage weights); None for ``sample_weight``.
    rows : rows object or None
        Where the rows are (then ``Z1`` is only used for its number of
        columns, and the other per-row arguments are ignored); None for
        ``Z1`` itself in memory.
    """

    block_class = LabelRows

    def __init__(self, Z1, y_idx, n_classes, sample_weight, alpha, fit_intercept, scale, diagnostic_weight=None, rows=None):
        self.Z1, self.y_idx, self.sample_weight, self.alpha, self.scale = Z1, y_idx, sample_weight, alpha, scale
        if rows is None and Z1.shape[0] >= THREADED_ROWS:
            middle, weight = Z1.shape[0] // 2, sample_weight if diagnostic_weight is None else diagnostic_weight
            halves = (slice(0, middle), slice(middle, None))
            rows = HalvedLabelRows(tuple(self.block_class(Z1[h], y_idx[h], n_classes, sample_weight[h], weight[h]) for h in halves))
        elif rows is None:
            rows = InMemoryLabelRows(self.block_class(Z1, y_idx, n_classes, sample_weight, diagnostic_weight))
        self.rows, self.n_classes = rows, n_classes
        self.reference = n_classes == 2
        self.penalized = np.ones(Z1.shape[1])
        if fit_intercept:
            self.penalized[-1] = 0.0

    def initial_theta(self):
        """All-zero coefficients: every class equally probable."""
        return np.zeros((self.Z1.shape[1], self.n_classes - self.reference))

    def probabilities(self, theta):
        """Probabilities and Pearson residuals of every label at ``theta`` (kept with the rows)."""
        kept = self.rows.keep("probabilities", theta)
        return {**_shown(kept), "theta": theta, "rows": kept}

    def state(self, probs, prev, S=None):
        """Weights and the estimating equation at ``probs["theta"]``.

        ``S=None`` solves the scale equation, weighted by the filtering
        weights of ``prev`` (a previous state, or None for ones); a number
        keeps that scale (used while searching along a step). A state the
        line search already computed at the same ``S`` is reused.
        """
        if S is None:
            S = self._label_scale(probs["rows"], prev["rows"] if isinstance(prev, dict) else prev)
        cached = probs.get("state")
        if cached is not None and cached["S"] == S:
            return cached
        kept, grad = self.rows.keep_total("weighted_score", probs["rows"], S)
        grad += self.alpha * self.penalized[:, None] * probs["theta"]
        state = {**probs, **_shown(kept), "S": S, "rows": kept, "grad": grad, "grad_norm": float(np.linalg.norm(grad))}
        probs["state"] = state
        return state

    def _label_scale(self, kept, prev):
        """:func:`label_scale` from the sums of the rows."""
        if self.scale != "auto":
            return float(self.scale)
        terms, first_sums = self.rows.keep_total("scale_terms", kept, prev)
        return settle_scale(first_sums, lambda S: self.rows.total("image_sums", terms, S))

    def jacobian(self, state):
        """The observed Jacobian ``∂g/∂θ`` at fixed ``S`` (flattened)."""
        return self._penalized(self.rows.total("jacobian", state["rows"]))

    def fisher(self, state):
        """The expected Jacobian of the estimating equation (flattened)."""
        return self._penalized(self.rows.total("fisher", state["rows"]))

    def _penalized(self, hess):
        """``H + δ_ab α`` on the coefficients (not the intercepts)."""
        k1 = self.penalized.shape[0]
        M = hess.shape[0] // k1
        blocks = hess.reshape(M, k1, M, k1)
        for a in range(M):
            blocks[a, :, a, :][np.diag_indices(k1)] += self.alpha * self.penalized
        return hess

    def step(self, state, near):
        """One damped step; returns the probabilities at the new coefficients.

        Far from the solution, scoring on the expected Jacobian (it keeps
        away from the spurious roots a redescending weight creates); ``near``
        it, Newton on the observed Jacobian for fast final convergence. The
        length halves until ``‖g‖`` (at the same scale ``S``) decreases; a
        Newton direction that finds no such length falls back to scoring.
        Near the solution a full Newton step is taken without the search.
        """
        theta, g = state["theta"], state["grad"].T.ravel()
        for jacobian in (self.jacobian, self.fisher) if near else (self.fisher,):
            delta = np.linalg.lstsq(jacobian(state), g, rcond=None)[0].reshape(theta.shape[1], -1).T
            if near and jacobian == self.jacobian and np.linalg.norm(delta) <= NEAR * np.linalg.norm(theta):
                return self.probabilities(theta - delta)
            t = 1.0
            for _ in range(MAX_HALVINGS):
                probs = self.probabilities(theta - t * delta)
                if self.state(probs, state, S=state["S"])["grad_norm"] <= (1.0 - 1e-4 * t) * state["grad_norm"]:
                    return probs
                t *= 0.5
        return state

    def diagnostics(self, state):
        """``re`` and the gnostic-weighted mean log-loss of the labels."""
        re_sum, s_sum, d_log_p, d_sum = self.rows.total("diagnostic_sums", state["rows"])
        re = float(re_sum / s_sum)
        loss = float(-d_log_p / d_sum) if d_sum > 0 else 0.0
        return re, loss

    def final(self, state):
        """The per-row filtering weights and gnostic log-ratios, where the rows are."""
        kept = self.rows.keep("final", state["rows"])
        return self.rows.column(kept, "weights"), self.rows.column(kept, "x")


class BinaryProblem(Problem):
    """Two classes: :class:`Problem` on :class:`BinaryLabelRows` (per-row scalars)."""

    block_class = BinaryLabelRows
