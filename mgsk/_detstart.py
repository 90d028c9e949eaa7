"""Deterministic starting subsets for the robust start, after DetMCD.

Hubert, Rousseeuw & Verdonck (2012, "A deterministic algorithm for robust
location and scatter", JCGS 21) replace the random elemental subsets of
FastMCD by six robust, deterministic first guesses of the scatter of the
data. Each guess orders the rows by a robust distance, and the closest half
of the total weight is a starting subset; concentration steps then refine
it. Masking, a cluster of outliers that pulls a coordinate-wise median and
MAD and each other's distances, fools one guess but rarely all of them.

Here the guesses are computed on the columns given (standardised by their
weighted medians and MADs); the regressors' start (:func:`mgsk._irls.robust_start`)
gives them the features and the target, ``(X, y)``:

1. the correlation of ``tanh`` of the standardised data;
2. Spearman's correlation (weighted mid-ranks);
3. the correlation of normal scores of those ranks;
4. the spatial sign covariance (each row projected on the unit sphere);
5. the covariance of the half of the rows nearest the median (BACON's
   first step);

As in DetMCD each scatter guess ``S`` is made robust once more: its
eigenvectors ``E`` rotate the data, the rotated columns get their MAD as
scale, and the distances use ``E diag(MAD²) Eᵀ`` about the rotated median.
"""

import numpy as np
from scipy.special import ndtri

from ._weighted import mad_scale, trimmed_weights, weighted_mean, weighted_median


def robust_standardization(X, sample_weight):
    """Weighted medians and MADs of the columns of ``X``.

    A column whose MAD is 0 gets its weighted standard deviation instead.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        Features.
    sample_weight : ndarray of shape (n,) or None
        Non-negative weights.

    Returns
    -------
    centers : ndarray of shape (p,)
    spreads : ndarray of shape (p,)
    varying : ndarray of shape (p,), dtype=bool
        The columns with a positive spread.
    """
    centers = np.array([weighted_median(X[:, j], sample_weight) for j in range(X.shape[1])])
    spreads = np.array([mad_scale(X[:, j], sample_weight, centers[j]) for j in range(X.shape[1])])
    low = ~(spreads > 0)
    if low.any():
        dev = X[:, low] - weighted_mean(X[:, low], sample_weight)
        spreads[low] = np.sqrt(weighted_mean(dev * dev, sample_weight))
    return centers, spreads, spreads > 0


def standardize(X, sample_weight):
    """``X`` centred by weighted medians and scaled by weighted MADs.

    Columns without spread (MAD and standard deviation 0) are dropped.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        Features.
    sample_weight : ndarray of shape (n,)
        Non-negative weights.

    Returns
    -------
    ndarray of shape (n, p')
    """
    centers, spreads, keep = robust_standardization(X, sample_weight)
    return (X[:, keep] - centers[keep]) / spreads[keep]


def _weighted_ranks(column, sample_weight):
    """Weighted mid-ranks in ``(0, 1)``: the weight below a value plus half its own, over the total."""
    order = np.argsort(column, kind="stable")
    values, w = column[order], sample_weight[order]
    starts = np.r_[True, values[1:] != values[:-1]]
    group = np.cumsum(starts) - 1
    group_weight = np.bincount(group, weights=w)
    below = np.cumsum(group_weight) - group_weight
    ranks = np.empty_like(column)
    ranks[order] = (below + 0.5 * group_weight)[group]
    # Rows of weight 0 at either end would get rank 0 or 1 (normal score ±inf).
    return np.clip(ranks / sample_weight.sum(), 1e-12, 1.0 - 1e-12)


def _covariance(A, weights):
    mean = weighted_mean(A, weights)
    centered = (A - mean) * np.sqrt(weights)[:, None]
    return centered.T @ centered / weights.sum()


def scatter_guesses(Xs, sample_weight):
    """The five scatter guesses of the module docstring, on standardised data.

    Parameters
    ----------
    Xs : ndarray of shape (n, p)
        Standardised features (:func:`standardize`).
    sample_weight : ndarray of shape (n,)
        Non-negative weights.

    Returns
    -------
    list of ndarray of shape (p, p)
    """
    ranks = np.column_stack([_weighted_ranks(Xs[:, j], sample_weight) for j in range(Xs.shape[1])])
    norms = np.sqrt(np.einsum("ij,ij->i", Xs, Xs))
    signs = Xs / np.where(norms > 0, norms, 1.0)[:, None]
    nearest = trimmed_weights(norms, sample_weight, 0.5 * sample_weight.sum())
    return [
        _covariance(np.tanh(Xs), sample_weight),
        _covariance(ranks, sample_weight),
        _covariance(ndtri(ranks), sample_weight),
        _covariance(signs, sample_weight),
        _covariance(Xs, nearest),
    ]


def starting_subsets(X, sample_weight):
    """Weights of the half of the rows nearest the bulk, for each scatter guess.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        Features.
    sample_weight : ndarray of shape (n,)
        Non-negative weights.

    Returns
    -------
    list of ndarray of shape (n,)
        Each the sample weights of the rows kept (half of the total
        weight), 0 elsewhere; empty when there are too few rows for a
        scatter matrix (``n <= 2p + 1``) or no varying column.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._detstart import starting_subsets
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(size=(80, 3)), 5 + 0.01 * rng.normal(size=(20, 3))]
    >>> subsets = starting_subsets(X, np.ones(100))
    >>> len(subsets), [float(s[80:].sum()) for s in subsets]  # the cluster is in none
    (5, [0.0, 0.0, 0.0, 0.0, 0.0])
    """
    Xs = standardize(X, sample_weight)
    n, p = Xs.shape
    if p == 0 or n <= 2 * p + 1:
        return []
    half = 0.5 * sample_weight.sum()
    subsets = []
    for guess in scatter_guesses(Xs, sample_weight):
        _, vectors = np.linalg.eigh(guess)
        rotated = Xs @ vectors
        center = np.array([weighted_median(rotated[:, j], sample_weight) for j in range(p)])
        scales = np.array([mad_scale(rotated[:, j], sample_weight, center[j]) for j in range(p)])
        scales = np.where(scales > 0, scales, np.inf)  # a flat direction does not count
        z = (rotated - center) / scales
        subsets.append(trimmed_weights(np.einsum("ij,ij->i", z, z), sample_weight, half))
    return subsets
