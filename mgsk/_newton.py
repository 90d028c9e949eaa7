r"""Gnostic IRLS for (multinomial) logistic regression.

The model is a softmax over ``M`` logits ``Z θ_c``: with two classes one
logit against a reference class fixed at 0 (``M = 1``, the usual logistic
model), with ``K > 2`` classes one logit per class (``M = K``, symmetric).

For fixed row weights ``d = sample_weight * w`` the objective is the
weighted, L2-penalised log-loss

.. math:: L(θ) = \sum_i d_i \bigl(\log \sum_c e^{η_{ic}} - η_{i y_i}\bigr)
          + \frac{α}{2} \lVert β \rVert^2, \qquad α = 1/C,

(the intercepts are not penalised). Each iteration takes one Newton step on
``L`` with a backtracking line search, so ``L`` decreases for the current
weights. The gradient and Hessian blocks are

.. math:: g_c = Z^\top d\,(p_c - y_c) + α β_c, \qquad
          H_{ab} = Z^\top \operatorname{diag}(d\,p_a(δ_{ab} - p_b)) Z + δ_{ab} α I,

O(n·k²·M²) per step; the step solves ``H δ = g`` by least squares, which
also removes the shift of all intercepts that the symmetric model leaves
free.

Between steps the gnostic weights are renewed from the Pearson residual of
the observed class, ``r_i = sqrt((1 - p_i) / p_i)`` (``p_i`` the predicted
probability of the label of row ``i``): it already has unit variance under
the binomial model, so it enters the gnostic domain as
``ln R = r / κ`` and gets the filtering weight ``sech(2 ln R / (η S))`` of
:mod:`mgsk._irls`, with ``S`` from the scale equation weighted by the
previous filtering weights. Because the binomial model fixes the variance
of Pearson residuals at 1, ``S`` is floored at the scale of unit-variance
residuals (``x >= r / 1.068``): data that the model fits very well (even
separable data) cannot make a moderate residual look like an outlier. A
label that the model finds very improbable (a flipped label far from the
boundary) gets a weight near 0.
"""

import numpy as np

from ._gnostic import gnostic_scale, sech, standardized_log_ratio
from ._irls import ETA, GAUSSIAN_C, KAPPA

#: The gnostic scale of unit-variance residuals: Pearson residuals have unit
#: variance under the model, so the fitted scale never goes below this.
MODEL_SCALE = 2.0 * GAUSSIAN_C / (KAPPA * ETA)

MAX_HALVINGS = 40


def logsumexp(a, axis, keepdims=False):
    """``log(sum(exp(a)))`` along ``axis`` without overflow."""
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


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
    full = np.hstack([np.zeros((logits.shape[0], 1)), logits]) if reference else logits
    return full - logsumexp(full, axis=1, keepdims=True)


def pearson_residuals(log_proba, y_idx):
    """``sqrt((1 - p)/p)`` of the observed class, computed in log space.

    Parameters
    ----------
    log_proba : ndarray of shape (n, K)
        Log-probabilities.
    y_idx : ndarray of shape (n,)
        Index of each row's class.

    Returns
    -------
    ndarray of shape (n,)
        Non-negative residuals (``inf`` for a probability of 0).

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._newton import pearson_residuals
    >>> pearson_residuals(np.log([[0.2, 0.8]]), np.array([1]))
    array([0.5])
    """
    rows = np.arange(y_idx.shape[0])
    log_p = log_proba[rows, y_idx]
    others = log_proba.copy()
    others[rows, y_idx] = -np.inf
    log_q = logsumexp(others, axis=1)
    with np.errstate(over="ignore"):
        return np.exp(0.5 * (log_q - log_p))


def classification_weights(log_proba, y_idx, sample_weight, prev_weights, scale="auto"):
    """Gnostic filtering weights of the Pearson residuals of a classifier.

    Parameters
    ----------
    log_proba : ndarray of shape (n, K)
        Log-probabilities.
    y_idx : ndarray of shape (n,)
        Index of each row's class.
    sample_weight : ndarray of shape (n,)
        Non-negative weights.
    prev_weights : ndarray of shape (n,)
        Previous filtering weights (they weight the scale equation).
    scale : "auto" or float, default="auto"
        Gnostic scale: solved, or fixed.

    Returns
    -------
    weights : ndarray of shape (n,)
    x : ndarray of shape (n,)
    S : float

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._newton import classification_weights
    >>> lp = np.log([[0.9, 0.1]] * 9 + [[0.999, 0.001]])
    >>> w, x, S = classification_weights(lp, np.r_[[0] * 9, 1], np.ones(10), np.ones(10))
    >>> bool(w[-1] < 0.01 < w[0])
    True
    """
    r = pearson_residuals(log_proba, y_idx)
    if scale == "auto":
        S = max(gnostic_scale(standardized_log_ratio(r, KAPPA, 2.0), sample_weight * prev_weights), MODEL_SCALE)
    else:
        S = float(scale)
    x = standardized_log_ratio(r, KAPPA, ETA * S)
    return sech(x), x, S


def penalized_loss(theta, Z1, Y, d, alpha, penalized, reference):
    """Weighted penalised log-loss ``L(θ)`` of the module docstring.

    Parameters
    ----------
    theta : ndarray of shape (k1, M)
        Coefficients, the intercept row last when there is one.
    Z1 : ndarray of shape (n, k1)
        Design, with a column of ones last when there is an intercept.
    Y : ndarray of shape (n, K)
        One-hot labels.
    d : ndarray of shape (n,)
        Row weights.
    alpha : float
        L2 penalty ``1/C``.
    penalized : ndarray of shape (k1,)
        1.0 for penalised rows of ``theta``, 0.0 for the intercept.
    reference : bool
        Whether class 0 is a reference class.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._newton import penalized_loss
    >>> Y = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> round(penalized_loss(np.zeros((1, 1)), np.ones((2, 1)), Y, np.ones(2), 1.0, np.zeros(1), True), 4)
    1.3863
    """
    log_proba = log_softmax(Z1 @ theta, reference)
    data = -float(d @ np.sum(Y * log_proba, axis=1))
    return data + 0.5 * alpha * float(np.sum(penalized[:, None] * theta**2))


def newton_step(theta, Z1, Y, d, alpha, penalized, reference):
    """One damped Newton step on ``L`` for fixed weights ``d``.

    Parameters
    ----------
    theta, Z1, Y, d, alpha, penalized, reference
        As in :func:`penalized_loss`.

    Returns
    -------
    theta : ndarray of shape (k1, M)
        The new coefficients (``L`` does not increase).
    loss : float
        ``L`` at the new coefficients.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._newton import newton_step
    >>> Z1 = np.c_[[-1.0, 1.0, -2.0, 2.0], np.ones(4)]
    >>> Y = np.array([[1.0, 0], [0, 1], [1, 0], [0, 1]])
    >>> theta, loss = newton_step(np.zeros((2, 1)), Z1, Y, np.ones(4), 1.0, np.r_[1.0, 0.0], True)
    >>> bool(theta[0, 0] > 0 and loss < 4 * np.log(2))
    True
    """
    k1, M = theta.shape
    log_proba = log_softmax(Z1 @ theta, reference)
    P = np.exp(log_proba)
    free = slice(1, None) if reference else slice(None)
    P_free, Y_free = P[:, free], Y[:, free]
    grad = Z1.T @ (d[:, None] * (P_free - Y_free)) + alpha * penalized[:, None] * theta
    hess = np.empty((M, k1, M, k1))
    for a in range(M):
        for b in range(a, M):
            h = d * P_free[:, a] * ((a == b) - P_free[:, b])
            block = (Z1 * h[:, None]).T @ Z1
            if a == b:
                block[np.diag_indices(k1)] += alpha * penalized
            hess[a, :, b, :] = block
            hess[b, :, a, :] = block.T
    g = grad.T.ravel()
    delta = np.linalg.lstsq(hess.reshape(M * k1, M * k1), g, rcond=None)[0].reshape(M, k1).T
    loss0 = penalized_loss(theta, Z1, Y, d, alpha, penalized, reference)
    slope = -float(g @ delta.T.ravel())
    t = 1.0
    for _ in range(MAX_HALVINGS):
        candidate = theta - t * delta
        loss = penalized_loss(candidate, Z1, Y, d, alpha, penalized, reference)
        if loss <= loss0 + 1e-4 * t * slope:
            return candidate, loss
        t *= 0.5
    return theta, loss0
