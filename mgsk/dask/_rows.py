"""The row reductions of :mod:`mgsk._rows` on dask chunks.

:class:`DaskRows` implements the interface that :func:`mgsk._irls.gnostic_irls`
reads the data through, so a Dask fit runs the one gnostic iteration. Each
chunk runs :class:`mgsk._rows.InMemoryRows`' own block arithmetic (an
``InMemoryRows`` per chunk, holding the shared shifts and the total weight of
all rows); the partial :class:`~mgsk._rows.Sweep` s add field by field. The
per-row vectors of a sweep (``r*`` and the weights) stay on the workers as
persisted dask arrays; X is read once per sweep, chunk by chunk, and never
gathered.

Quantiles are exact: :func:`exact_quantile` narrows the candidates with
weighted histograms (bin edges from a strided sample first, so one pass
usually leaves a few thousand) and selects among the last few on the client,
exactly as :func:`mgsk._weighted.weighted_quantile` defines the lower
weighted quantile.
"""

import functools
import operator
from dataclasses import fields

import dask
import dask.array as da
import numpy as np

from .._irls import MAD_FACTOR
from .._rows import InMemoryRows, start_rows
from .._weighted import weighted_mean

#: Bins of each narrowing pass of the selection.
SELECTION_BINS = 2048
#: The selection gathers the candidates once at most this many are left.
SELECTION_GATHER = 200_000
#: Values of the strided sample that places the first pass's bin edges.
SELECTION_SAMPLE = 32768
#: Narrowing passes at most (more only for values at the float resolution).
SELECTION_PASSES = 8


def add_sweeps(sweeps):
    """The :class:`~mgsk._rows.Sweep` of the union of disjoint row blocks.

    Adds every field of the partial sweeps (None stays None), so a field
    the Sweep gains is reduced with no change here.

    Parameters
    ----------
    sweeps : list of Sweep
        The sweeps of the blocks, each normalised by the total weight of all
        rows.

    Returns
    -------
    Sweep

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._rows import Sweep
    >>> from mgsk.dask._rows import add_sweeps
    >>> total = add_sweeps([Sweep(np.eye(2), 0.25, 0.5), Sweep(np.eye(2), 0.25, 0.5)])
    >>> total.gram.tolist(), total.loss, total.re, total.newton_gram
    ([[2.0, 0.0], [0.0, 2.0]], 0.5, 1.0, None)
    """
    first = sweeps[0]
    summed = {}
    for f in fields(first):
        values = [getattr(sweep, f.name) for sweep in sweeps]
        summed[f.name] = None if values[0] is None else functools.reduce(operator.add, values)
    return type(first)(**summed)


def chunk_rows(Z, y, sample_weight, state):
    """An :class:`~mgsk._rows.InMemoryRows` of one chunk with the shifts of all rows."""
    shift, y_shift, y_scale, total_weight = state
    rows = InMemoryRows(Z, y, sample_weight, y_scale, fit_intercept=False)
    rows.shift, rows.y_shift, rows.total_weight = shift, y_shift, total_weight
    return rows


def _sweep_chunk(Z, y, sample_weight, state, args):
    rows = chunk_rows(Z, y, sample_weight, state)
    sweep = rows.sweep(*args)
    return sweep, rows.residuals, rows.weights


def _vector_rows(residuals, weights, sample_weight, total_weight):
    """A chunk's rows for the one-dimensional sums: no design is needed."""
    m = residuals.shape[0]
    rows = InMemoryRows(np.empty((m, 0)), np.zeros(m), sample_weight, fit_intercept=False)
    rows.residuals, rows.weights, rows.total_weight = residuals, weights, total_weight
    return rows


def _vector_method(residuals, weights, sample_weight, total_weight, name, args):
    return getattr(_vector_rows(residuals, weights, sample_weight, total_weight), name)(*args)


class DaskRows:
    """The row reductions of :mod:`mgsk._rows` on dask arrays chunked by rows.

    Parameters
    ----------
    Z : dask.array.Array of shape (n, k)
        Design without intercept column, one chunk across the columns.
    y : dask.array.Array of shape (n,)
        Targets, chunked like the rows of ``Z``.
    sample_weight : dask.array.Array of shape (n,)
        Non-negative weights, chunked like ``y``.
    start : tuple
        ``(Z, y, sample_weight)`` of the start rows
        (:func:`mgsk._rows.start_rows`) as numpy arrays, and the total and the
        range of the weights: ``(Zs, ys, ws, total_weight, uniform)``.
    y_scale : float
        Unit of the R-Entropy in the history.
    fit_intercept : bool
        Whether the model has an intercept (the columns are then shifted by
        the start rows' weighted means, as in memory).
    client : distributed.Client or None
        Where to compute; None for dask's default scheduler.
    """

    def __init__(self, Z, y, sample_weight, start, y_scale, fit_intercept, client=None):
        self.Z, self.y, self.sample_weight = Z, y, sample_weight
        self._start = start[:3]
        self.total_weight, self.uniform = start[3], start[4]
        self.y_scale, self.client = y_scale, client
        Zs, ys, ws = self._start
        self.shift, self.y_shift = np.zeros(Z.shape[1]), 0.0
        if fit_intercept and ws.sum() > 0:
            self.shift = weighted_mean(Zs, ws)
            self.y_shift = float(weighted_mean(ys, ws))
        self.residuals = da.zeros_like(y)
        self.weights = da.ones_like(y)

    @property
    def n_features(self):
        """Number of columns of the design."""
        return self.Z.shape[1]

    def _state(self):
        return self.shift, self.y_shift, self.y_scale, self.total_weight

    def start_sample(self):
        """``(Z, y, sample_weight)`` of the rows the robust start uses (numpy)."""
        Zs, ys, ws = self._start
        return Zs.copy(), ys.copy(), ws.copy()

    def sweep(self, coef, intercept, unit, leverage=None, newton=False):
        """One pass over the chunks; the sums added, ``r*`` and ``w`` persisted."""
        state = dask.delayed(self._state(), traverse=False)
        args = (coef, intercept, unit, leverage, newton)
        parts, residuals, weights = [], [], []
        for z, y, s, m in zip(self.Z.to_delayed().ravel(), self.y.to_delayed().ravel(),
                              self.sample_weight.to_delayed().ravel(), self.y.chunks[0]):  # fmt: skip
            part = dask.delayed(_sweep_chunk, nout=3)(z, y, s, state, args)
            parts.append(part[0])
            residuals.append(da.from_delayed(part[1], (m,), dtype=np.float64))
            weights.append(da.from_delayed(part[2], (m,), dtype=np.float64))
        total = dask.delayed(add_sweeps)(parts)
        residuals, weights, total = persist(self.client, da.concatenate(residuals), da.concatenate(weights), total)
        self.residuals, self.weights = residuals, weights
        return compute(self.client, total)[0]

    def _vector_sums(self, name, *args, weights=None):
        """The sum over the chunks of ``InMemoryRows.<name>(*args)`` on the per-row vectors."""
        weights = self.weights if weights is None else weights
        parts = [
            dask.delayed(_vector_method)(r, w, s, self.total_weight, name, args)
            for r, w, s in zip(self.residuals.to_delayed().ravel(), weights.to_delayed().ravel(),
                               self.sample_weight.to_delayed().ravel())
        ]  # fmt: skip
        parts = compute(self.client, *parts)
        return functools.reduce(lambda a, b: tuple(map(operator.add, a, b)) if isinstance(a, tuple) else a + b, parts)

    def qr_solve(self, fit_intercept):
        """Weighted least squares at the weights of the last sweep, by dask's TSQR."""
        w = self.sample_weight * self.weights
        k = self.Z.shape[1]
        if fit_intercept:
            total, zw, yw = compute(self.client, w.sum(), w @ self.Z, w @ self.y)
            z_mean, y_mean = zw / total, float(yw / total)
        else:
            z_mean, y_mean = np.zeros(k), 0.0
        root_w = da.sqrt(w)[:, None]
        block = da.concatenate([self.Z - z_mean, (self.y - y_mean)[:, None]], axis=1) * root_w
        R = compute(self.client, da.linalg.tsqr(block.rechunk({1: -1}))[1])[0]
        m = min(R.shape[0], k)
        coef = np.zeros(k) if m == 0 else np.linalg.lstsq(R[:m, :k], R[:m, k], rcond=None)[0]
        return coef, (y_mean - float(z_mean @ coef) if fit_intercept else 0.0)

    def quantile(self, q, center=None):
        """Exact weighted lower ``q``-quantile of ``r*``, or of ``|r* - center|``."""
        values = self.residuals if center is None else abs(self.residuals - center)
        return exact_quantile(values, None if self.uniform else self.sample_weight, q, self.client)

    def abs_mean(self):
        """``Σ s |r*| / Σ s``."""
        return self._vector_sums("abs_mean")

    def fidelity_sums(self, unit, weight_unit=None):
        """``(Σ s w sech(2 r*/unit), Σ s w)`` (see :meth:`mgsk._rows.InMemoryRows.fidelity_sums`)."""
        return self._vector_sums("fidelity_sums", unit, weight_unit)


def persist(client, *collections):
    """``dask.persist`` on ``client`` (dask's default scheduler when None)."""
    return client.persist(list(collections)) if client is not None else dask.persist(*collections)


def compute(client, *collections):
    """``dask.compute`` on ``client`` (dask's default scheduler when None), as a tuple."""
    if client is not None:
        return tuple(client.gather(client.compute(list(collections))))
    return dask.compute(*collections)


def _chunk_histogram(values, weights, edges, lo, hi):
    """Weight (or count) of the values of a chunk in each bin of ``edges`` within ``[lo, hi]``."""
    inside = (values >= lo) & (values <= hi)
    v = values[inside]
    bins = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, edges.shape[0] - 2)
    w = None if weights is None else weights[inside]
    return np.bincount(bins, weights=w, minlength=edges.shape[0] - 1).astype(float), np.bincount(
        bins, minlength=edges.shape[0] - 1
    )


def _chunk_candidates(values, weights, lo, hi):
    """The distinct values of a chunk in ``[lo, hi]`` and the weight of each."""
    inside = (values >= lo) & (values <= hi)
    v, index = np.unique(values[inside], return_inverse=True)
    w = None if weights is None else weights[inside]
    return v, np.bincount(index, weights=w, minlength=v.shape[0]).astype(float)


def _chunk_summary(values, stride, offset):
    return values.min(initial=np.inf), values.max(initial=-np.inf), values[(-offset) % stride :: stride]


def exact_quantile(values, weights, q, client=None):
    """Lower weighted ``q``-quantile of a dask array, exactly, in a few passes.

    The same value as :func:`mgsk._weighted.weighted_quantile` on the
    gathered arrays: the smallest value whose weight at or below it reaches
    ``q`` times the total (with equal weights, ``sorted(values)[ceil(q n) -
    1]``). The first pass takes the range and an evenly spaced sample; each
    further pass sums the weights per bin between edges placed at the
    sample's quantiles (later: evenly in the bin that holds the quantile),
    until at most :data:`SELECTION_GATHER` candidates remain; those are
    gathered (as distinct values with their weights) and selected.

    Parameters
    ----------
    values : dask.array.Array of shape (n,)
        Values.
    weights : dask.array.Array of shape (n,) or None
        Non-negative weights, chunked like ``values``; None for equal ones.
    q : float
        Level in ``(0, 1]``.
    client : distributed.Client or None
        Where to compute.

    Returns
    -------
    float

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> from mgsk.dask._rows import exact_quantile
    >>> values = da.from_array(np.array([4.0, 1.0, 3.0, 2.0]), chunks=2)
    >>> exact_quantile(values, da.from_array(np.array([1.0, 1.0, 1.0, 5.0]), chunks=2), 0.8)
    3.0
    """
    n = values.shape[0]
    v_blocks = values.to_delayed().ravel()
    w_blocks = [None] * len(v_blocks) if weights is None else weights.to_delayed().ravel()
    offsets = np.r_[0, np.cumsum(values.chunks[0])[:-1]]
    stride = -(-n // SELECTION_SAMPLE)
    summaries = compute(client, *[dask.delayed(_chunk_summary)(v, stride, int(o)) for v, o in zip(v_blocks, offsets)])
    lo, hi = min(s[0] for s in summaries), max(s[1] for s in summaries)
    if weights is None:
        target, total_weight = float(max(int(np.ceil(q * n)) - 1, 0) + 1), float(n)
    else:
        total_weight = float(compute(client, weights.sum())[0])
        target = q * total_weight
    sample = np.sort(np.concatenate([s[2] for s in summaries]))
    edges = np.unique(np.r_[lo, np.quantile(sample, np.linspace(0, 1, SELECTION_BINS + 1)[1:-1]), hi])
    below, count = 0.0, n
    for _ in range(SELECTION_PASSES):
        if count <= SELECTION_GATHER or edges.shape[0] < 3:
            break
        parts = compute(client, *[dask.delayed(_chunk_histogram)(v, w, edges, lo, hi) for v, w in zip(v_blocks, w_blocks)])
        weight_sums = functools.reduce(operator.add, (p[0] for p in parts))
        counts = functools.reduce(operator.add, (p[1] for p in parts))
        cumulative = below + np.cumsum(weight_sums)
        j = min(int(np.searchsorted(cumulative, target)), edges.shape[0] - 2)
        below = float(cumulative[j - 1]) if j > 0 else below
        lo = edges[j]
        last = j == edges.shape[0] - 2
        hi = edges[j + 1] if last else np.nextafter(edges[j + 1], -np.inf)
        count = int(counts[j])
        edges = np.unique(np.linspace(lo, hi, SELECTION_BINS + 1))
    parts = compute(client, *[dask.delayed(_chunk_candidates)(v, w, lo, hi) for v, w in zip(v_blocks, w_blocks)])
    candidates = np.concatenate([p[0] for p in parts])
    candidate_weights = np.concatenate([p[1] for p in parts])
    order = np.argsort(candidates, kind="stable")
    cumulative = below + np.cumsum(candidate_weights[order])
    return float(candidates[order[min(np.searchsorted(cumulative, target), order.shape[0] - 1)]])


def data_scale(y, sample_weight, uniform, client=None):
    """:func:`mgsk._irls.data_scale` of dask arrays: the same value, from exact selections."""
    weights = None if uniform else sample_weight
    center = exact_quantile(y, weights, 0.5, client)
    s = MAD_FACTOR * exact_quantile(abs(y - center), weights, 0.5, client)
    if not s > 0:
        dev = y - center
        total, mean_dev = compute(client, sample_weight.sum(), sample_weight @ dev)
        dev = dev - mean_dev / total
        top = float(compute(client, abs(dev).max())[0])
        if top > 0:
            s = top * float(np.sqrt(compute(client, sample_weight @ (dev / top) ** 2)[0] / total))
    return s if s > 0 and np.isfinite(s) else 1.0


def start_arrays(Z, y, sample_weight, X=None):
    """The start rows of the dask arrays (lazy), as :func:`mgsk._rows.start_rows` picks them."""
    rows = start_rows(y.shape[0])
    return Z[rows], y[rows], sample_weight[rows], None if X is None else X[rows]
