"""Weight-aware statistics and least squares, O(n·k) memory.

A sample weight of 2 must act exactly like the row repeated, so every
statistic here is defined on the cumulative weight, never on row counts.
"""

import numpy as np

#: Rows per block of the blocked (TSQR) least squares: bounds the extra
#: memory to a block, whatever n.
BLOCK_ROWS = 8192
#: Below this many candidates the weighted selection sorts what is left.
SELECTION_CUTOFF = 256
#: A weighted quantile's target weight, ``q`` times the total, is lowered by
#: this relative amount: partial sums taken in another order than the total
#: may fall short of it by rounding, and at ``q = 1`` the selection then ran
#: past the largest value (ties and real weights: an IndexError).
TARGET_SLACK = 1e-12


def weighted_median(a, weights=None):
    """Lower weighted median: the first sorted value whose cumulative weight
    reaches half the total.

    Parameters
    ----------
    a : ndarray of shape (n,)
        Values.
    weights : ndarray of shape (n,) or None
        Non-negative weights with a positive sum; ``None`` for equal ones.

    Returns
    -------
    float
        The lower weighted median; for equal weights ``sorted(a)[(n-1)//2]``.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._weighted import weighted_median
    >>> weighted_median(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 5.0]))
    3.0
    """
    return weighted_quantile(a, weights, 0.5)


def weighted_quantile(a, weights=None, q=0.5):
    """Lower weighted ``q``-quantile by selection, in O(n) expected time.

    The smallest value ``v`` of ``a`` whose weight at or below it,
    ``Σ_{a_i ≤ v} w_i``, reaches ``q`` times the total: the value a stable
    sort and a cumulative sum would give, found without sorting. Each round
    partitions the remaining candidates about their (unweighted) median with
    :func:`numpy.partition` and keeps the side that holds the quantile, so
    the work halves from round to round.

    Parameters
    ----------
    a : ndarray of shape (n,)
        Values.
    weights : ndarray of shape (n,) or None
        Non-negative weights with a positive sum; ``None`` for equal ones.
    q : float, default=0.5
        Quantile level in ``(0, 1]``.

    Returns
    -------
    float
        The lower weighted quantile.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._weighted import weighted_quantile
    >>> weighted_quantile(np.array([4.0, 1.0, 3.0, 2.0]), np.array([1.0, 1.0, 1.0, 5.0]), 0.8)
    3.0
    """
    a = np.asarray(a, dtype=float)
    if weights is None or _is_uniform(weights):
        rank = max(int(np.ceil(q * a.shape[0])) - 1, 0)
        return float(np.partition(a, rank)[rank])
    target = q * float(weights.sum()) * (1.0 - TARGET_SLACK)
    if target <= 0.0:  # q times a subnormal total rounds to 0: every value reaches it
        return float(a.min())
    below = 0.0  # weight of the values known to lie below every candidate
    while a.shape[0] > SELECTION_CUTOFF:
        pivot = np.partition(a, a.shape[0] // 2)[a.shape[0] // 2]
        less = a < pivot
        w_less = below + float(weights[less].sum())
        if w_less >= target:
            a, weights = a[less], weights[less]
            continue
        at_most = a <= pivot
        w_at_most = below + float(weights[at_most].sum())
        if w_at_most >= target:
            return float(pivot)
        above = ~at_most
        a, weights, below = a[above], weights[above], w_at_most
    order = np.argsort(a, kind="stable")
    cw = below + np.cumsum(weights[order])
    return float(a[order[min(np.searchsorted(cw, target), a.shape[0] - 1)]])


def _is_uniform(weights):
    """All weights equal: the O(n) selection paths give the same answer."""
    return bool((weights == weights[0]).all())


def mad_scale(a, weights=None, center=0.0):
    """Normal-consistent weighted median absolute deviation about ``center``.

    Parameters
    ----------
    a : ndarray of shape (n,)
        Values.
    weights : ndarray of shape (n,) or None
        Non-negative weights.
    center : float, default=0.0
        Point the deviations are taken from.

    Returns
    -------
    float
        ``1.4826 * weighted_median(|a - center|)``.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._weighted import mad_scale
    >>> round(mad_scale(np.array([-1.0, 0.0, 1.0, 100.0])), 4)
    1.4826
    """
    return 1.482602218505602 * weighted_median(np.abs(a - center), weights)


def weighted_mean(a, weights=None):
    """Weighted mean along the first axis.

    Parameters
    ----------
    a : ndarray of shape (n,) or (n, k)
        Values.
    weights : ndarray of shape (n,) or None
        Non-negative weights with a positive sum.

    Returns
    -------
    float or ndarray of shape (k,)
        The weighted mean.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._weighted import weighted_mean
    >>> float(weighted_mean(np.array([1.0, 3.0]), np.array([3.0, 1.0])))
    1.5
    """
    if weights is None:
        return np.mean(a, axis=0)
    return weights @ a / weights.sum()


def trimmed_weights(abs_dev, weights, keep):
    """Weights of the rows with the smallest deviations, up to total ``keep``.

    The row at the boundary keeps the fraction of its weight that fills
    ``keep`` exactly, so a weight of 2 trims like two repeated rows.

    Parameters
    ----------
    abs_dev : ndarray of shape (n,)
        Non-negative deviations.
    weights : ndarray of shape (n,)
        Non-negative weights.
    keep : float
        Total weight to keep.

    Returns
    -------
    ndarray of shape (n,)
        Weights of the kept rows, 0 elsewhere.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._weighted import trimmed_weights
    >>> trimmed_weights(np.array([3.0, 1.0, 2.0]), np.ones(3), 1.5)
    array([0. , 1. , 0.5])
    """
    n = abs_dev.shape[0]
    if _is_uniform(weights) and weights[0] > 0:
        # Same subset as the sort below (up to ties), in O(n).
        whole = min(int(keep // weights[0]), n)
        out = np.zeros(n)
        if whole < n:
            order = np.argpartition(abs_dev, whole)
            out[order[:whole]] = weights[0]
            out[order[whole]] = keep - whole * weights[0]
        else:
            out[:] = weights[0]
        return out
    order = np.argsort(abs_dev, kind="stable")
    w_sorted = weights[order]
    before = np.cumsum(w_sorted) - w_sorted
    out = np.empty_like(w_sorted)
    out[order] = np.clip(keep - before, 0.0, w_sorted)
    return out


def weighted_least_squares(Z, y, weights, fit_intercept=True):
    """Weighted least squares by blocked Householder QR of √w-scaled rows.

    Each block of rows of ``[√w (Z - z̄), √w (y - ȳ)]`` is reduced to its
    triangular factor and the factors are reduced again (TSQR), so the
    solution has the stability of QR at O(n·k²) time and O(block·k)
    extra memory. Rank deficiency gives the minimum-norm solution.

    Parameters
    ----------
    Z : ndarray of shape (n, k)
        Design matrix without an intercept column.
    y : ndarray of shape (n,)
        Targets.
    weights : ndarray of shape (n,)
        Non-negative weights with a positive sum.
    fit_intercept : bool, default=True
        Whether to fit an unpenalised intercept (by weighted centring).

    Returns
    -------
    coef : ndarray of shape (k,)
    intercept : float

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._weighted import weighted_least_squares
    >>> Z = np.arange(4.0).reshape(-1, 1)
    >>> coef, b = weighted_least_squares(Z, 2 * Z[:, 0] + 1, np.ones(4))
    >>> coef.round(6), round(b, 6)
    (array([2.]), 1.0)
    """
    n, k = Z.shape
    if fit_intercept:
        z_mean = weighted_mean(Z, weights)
        y_mean = float(weighted_mean(y, weights))
    else:
        z_mean = np.zeros(k)
        y_mean = 0.0
    factors = []
    for start in range(0, n, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, n)
        root_w = np.sqrt(weights[start:stop])[:, None]
        block = np.empty((stop - start, k + 1))
        np.subtract(Z[start:stop], z_mean, out=block[:, :k])
        block[:, k] = y[start:stop] - y_mean
        block *= root_w
        factors.append(np.linalg.qr(block, mode="r"))
    R = factors[0] if len(factors) == 1 else np.linalg.qr(np.vstack(factors), mode="r")
    m = min(R.shape[0], k)
    if m == 0:
        coef = np.zeros(k)
    else:
        # R is (k+1)x(k+1) in general, smaller when a block has fewer rows.
        coef = np.linalg.lstsq(R[:m, :k], R[:m, k], rcond=None)[0]
    intercept = y_mean - float(z_mean @ coef) if fit_intercept else 0.0
    return coef, intercept
