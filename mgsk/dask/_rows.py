"""The row reductions of :mod:`mgsk._rows` on dask chunks.

:class:`DaskRows` implements the interface that :func:`mgsk._irls.gnostic_irls`
reads the data through, so a Dask fit runs the one gnostic iteration. Each
chunk runs :class:`mgsk._rows.InMemoryRows`' own block arithmetic (an
``InMemoryRows`` per chunk, holding the shared shifts and the total weight of
all rows); the partial :class:`~mgsk._rows.Sweep` s add field by field. The
per-row vectors of a sweep stay on the workers: ``r*`` as a persisted dask
array, the weights ``w = sech(r*/unit)`` computed from it chunk by chunk; X
is read once per sweep, chunk by chunk, and never gathered. A chunk's X, y
and weights are read in the task that sweeps it (:func:`chunk_reads`), so
no chunk travels between workers.

Quantiles are exact: an evenly spaced sample brackets them, one pass
(in the graph of the pass that makes the values, :func:`quantile_tasks`)
gathers the values inside the bracket, and the selection is finished
exactly as :func:`mgsk._weighted.weighted_quantile` defines the lower
weighted quantile; where the bracket misses or holds too many values,
:func:`exact_quantile` narrows the candidates with weighted histograms
first.
"""

import contextlib
import ctypes
import functools
import operator
import os
import platform
import threading
import uuid
from dataclasses import fields
from typing import NamedTuple

import dask
import dask.array as da
import numpy as np
from dask._task_spec import List, Task, TaskRef, convert_legacy_graph
from dask.base import tokenize
from dask.core import flatten
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from .._irls import KAPPA, MAD_FACTOR
from .._rows import SWEEP_ROWS, InMemoryRows, _ratio, _sech
from .._weighted import TARGET_SLACK, weighted_mean, weighted_quantile

#: Bins of each narrowing pass of the selection.
SELECTION_BINS = 2048
#: The selection gathers the candidates once at most this many are left
#: (8 MB and their weights). The sample's bracket of a median holds about
#: ``12 sqrt(q (1 - q)) / sqrt(SELECTION_SAMPLE)``, 2.3 %, of the values: up to
#: about 4e7 rows it is gathered at once, with no narrowing pass.
SELECTION_GATHER = 1_000_000
#: Values of the evenly spaced sample that brackets a quantile.
SELECTION_SAMPLE = 65536
#: Half-width of the bracket, in standard errors of the sample quantile.
SELECTION_SIGMAS = 6.0
#: Narrowing passes at most (more only for values at the float resolution).
SELECTION_PASSES = 8


#: glibc's ``mallopt`` parameter of the heap's trim threshold.
_M_TRIM_THRESHOLD = -1
_allocator = {"libc": None, "active": 0, "lock": threading.Lock()}


def _glibc():
    if _allocator["libc"] is None:
        _allocator["libc"] = ctypes.CDLL("libc.so.6") if platform.libc_ver()[0] == "glibc" else False
    return _allocator["libc"]


@contextlib.contextmanager
def keep_freed_memory():
    """Let glibc keep freed memory in the heap while a chunk's arithmetic runs.

    Dask's nanny starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``, so
    that freed memory goes back to the system at once; the block
    temporaries of a sweep (64 KiB vectors) are then returned and paged in
    afresh, block after block, which makes a chunk's arithmetic 1.5-2x
    slower than in a plain process. Inside this context the threshold is
    raised; when the last task in the process leaves it, the worker's own
    threshold is restored and the heap trimmed, so the worker's memory
    behaves as its configuration says between tasks. Elsewhere (no such
    setting, not glibc) it does nothing.
    """
    threshold = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    libc = _glibc() if threshold is not None and threshold.isdigit() else False
    if not libc:
        yield
        return
    with _allocator["lock"]:
        _allocator["active"] += 1
        if _allocator["active"] == 1:
            libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    try:
        yield
    finally:
        with _allocator["lock"]:
            _allocator["active"] -= 1
            if _allocator["active"] == 0:
                libc.mallopt(_M_TRIM_THRESHOLD, int(threshold))
                libc.malloc_trim(0)


def on_worker(fn):
    """``fn`` run inside :func:`keep_freed_memory` (for the tasks of chunk arithmetic)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with keep_freed_memory():
            return fn(*args, **kwargs)

    return wrapper


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


def plain_arrays(chunk):
    """The chunk's arrays as plain ndarrays: a memory-mapped chunk (``from_npy_stack``'s) would
    pay for the subclass's Python hooks at every block of a sweep."""
    return tuple(np.asarray(a) for a in chunk)


def chunk_rows(Z, y, sample_weight, state):
    """An :class:`~mgsk._rows.InMemoryRows` of one chunk with the shifts of all rows."""
    shift, y_shift, y_scale, total_weight = state
    rows = InMemoryRows(Z, y, sample_weight, y_scale, fit_intercept=False)
    rows.shift, rows.y_shift, rows.total_weight = shift, y_shift, total_weight
    return rows


@on_worker
def _sweep_chunk(chunk, state, args, place):
    """One chunk's sweep, its ``r*``, the summary of ``r*`` for the quantiles and the chunk's
    sample weights (for the tasks of the quantile and the scale sums, which run where this one did)."""
    Z, y, sample_weight = plain_arrays(chunk)
    rows = chunk_rows(Z, y, sample_weight, state)
    sweep = rows.sweep(*args)
    offset, n, uniform = place
    summary = value_summary(rows.residuals, None if uniform else sample_weight, offset, n)
    return sweep, rows.residuals, summary, sample_weight


@on_worker
def _vector_method(residuals, sample_weight, total_weight, name, args):
    """``InMemoryRows.<name>(*args)`` of a chunk's ``r*``: no design is needed.

    Summed over blocks of :data:`~mgsk._rows.SWEEP_ROWS` rows: their
    temporaries stay small, which matters on Dask's workers (their allocator
    returns large blocks to the system at once, so each large temporary
    costs page faults).
    """
    parts = []
    for start in range(0, residuals.shape[0], SWEEP_ROWS):
        r, s = residuals[start : start + SWEEP_ROWS], sample_weight[start : start + SWEEP_ROWS]
        parts.append(getattr(InMemoryRows.of_residuals(r, s, total_weight), name)(*args))
    return functools.reduce(_add_results, parts)


def _add_results(a, b):
    """Sum of two results of a reduction: floats, or tuples of them."""
    return tuple(map(operator.add, a, b)) if isinstance(a, tuple) else a + b


def _filtering_weights(residuals, unit):
    return _sech(_ratio(residuals, unit))


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
        self._unit = None  # of the last sweep
        self._summary = (0.0, 0.0, np.zeros(1), None if self.uniform else np.ones(1))
        self._median = None  # of |r*|, found with the sweep (None: its bracket missed)
        self._fidelity = {}  # (unit, weight_unit) -> fidelity_sums, found with the sweep
        self._chunks = chunk_reads(Z, y, sample_weight)

    @property
    def n_features(self):
        """Number of columns of the design."""
        return self.Z.shape[1]

    @property
    def weights(self):
        """The filtering weights ``sech(r*/unit)`` of the last sweep (a lazy dask array)."""
        if self._unit is None:
            return da.ones_like(self.y)
        return self.residuals.map_blocks(_filtering_weights, self._unit, dtype=np.float64)

    def _state(self):
        return self.shift, self.y_shift, self.y_scale, self.total_weight

    def start_sample(self):
        """``(Z, y, sample_weight)`` of the rows the robust start uses (numpy)."""
        Zs, ys, ws = self._start
        return Zs.copy(), ys.copy(), ws.copy()

    def start_leverages(self, leverage, q):
        """Nothing to keep: each chunk's sweep computes its rows' leverages (see
        :meth:`mgsk._rows.InMemoryRows.start_leverages`)."""

    def sweep(self, coef, intercept, unit, leverage=None, newton=False, fidelity_unit=None, jacobian=True, gram=True, indefinite=None):
        """One pass over the chunks: their Sweeps added, ``r*`` persisted on the workers.

        The pass is one graph, built task by task (dask.delayed's calls cost
        the client more than the workers' tasks): per chunk, its read and
        sweep (one task), ``r*`` and the summary of ``r*`` taken from the
        sweep's result, its part of the median of ``|r*|`` (σ, the MAD about
        0) and its part of the scale equation's sums at ``κσ``, which the
        iteration takes next. The last two run where the sweep did and read
        its result; ``r*`` stays there. ``indefinite`` is not used: each
        chunk sums its part of the Jacobian.
        """
        args = (coef, intercept, unit, leverage, newton, fidelity_unit, jacobian, gram)
        n, uniform, total_weight, state = self.y.shape[0], self.uniform, self.total_weight, self._state()
        name = f"mgsk-sweep-{uuid.uuid4().hex}"
        graph = {}
        task = functools.partial(add_task, graph)
        parts, summaries, residuals = [], [], f"{name}-residuals"
        for i, (read, offset) in enumerate(zip(self._chunks, offsets(self.y))):
            graph.update(read.shared)
            key = (name, i)
            sweep = Task(key, _sweep_chunk, TaskRef(read.key), state, args, (int(offset), n, uniform))
            graph[key] = Task.fuse(read.task, sweep, key=key)
            parts.append(TaskRef(key))
            summaries.append(task((f"{name}-summary", i), operator.getitem, parts[-1], 2))
            task((residuals, i), operator.getitem, parts[-1], 1)
        summary = task(f"{name}-summary", merge_summaries, List(*summaries))
        median = quantile_tasks(graph, f"{name}-median", parts, (1, 3), summary, 0.5, n, total_weight, uniform, True, 0.0)
        sums = [task((f"{name}-sums", i), _sweep_sums, part, total_weight, median, unit) for i, part in enumerate(parts)]
        total = task(f"{name}-total", _add_sweep_sums, List(*sums))
        lazy = [Delayed(ref.key, graph) for ref in (total, summary, median)]
        r = da.Array(graph, residuals, chunks=(self.y.chunks[0],), dtype=np.float64)
        r, *lazy = persist(self.client, r, *lazy)
        self.residuals, self._unit = r, unit
        (total, fidelity), self._summary, self._median = compute(self.client, *lazy)
        self._fidelity = {} if fidelity is None else {(KAPPA * (MAD_FACTOR * self._median), unit): fidelity}
        return total

    def _vector_sums(self, name, *args):
        """The sum over the chunks of ``InMemoryRows.<name>(*args)`` on ``r*``."""
        parts = [
            dask.delayed(_vector_method)(r, s, self.total_weight, name, args)
            for r, s in zip(blocks(self.residuals), blocks(self.sample_weight))
        ]
        return functools.reduce(_add_results, compute(self.client, *parts))

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
        summary = self._summary
        if center is None:
            values = self.residuals
        else:
            values = abs(self.residuals - center)
            summary = deviation_summary(summary, center)
        if (q, center) == (0.5, 0.0) and self._median is not None:
            return self._median
        weights = None if self.uniform else self.sample_weight
        return exact_quantile(values, weights, q, self.client, summary, self.total_weight)

    def abs_mean(self):
        """``Σ s |r*| / Σ s``."""
        return self._vector_sums("abs_mean")

    def fidelity_sums(self, unit, weight_unit=None):
        """``(Σ s w sech(2 r*/unit), Σ s w)`` (see :meth:`mgsk._rows.InMemoryRows.fidelity_sums`)."""
        # The weights of the last sweep are sech(r*/unit) at its unit (they are not kept).
        weight_unit = self._unit if weight_unit is None else weight_unit
        found = self._fidelity.get((unit, weight_unit))
        return found if found is not None else self._vector_sums("fidelity_sums", unit, weight_unit)


def persist(client, *collections):
    """``dask.persist`` on ``client`` (dask's default scheduler when None).

    Graphs are not optimised, here and in :func:`compute`: the chunks of
    ``X``, ``y`` and the weights keep the same keys and tasks in every pass
    (an optimised graph renames fused tasks, which the scheduler warns of).
    """
    if client is not None:
        return client.persist(list(collections), optimize_graph=False)
    return dask.persist(*collections, optimize_graph=False)


def blocks(array):
    """The row chunks of a dask array as delayed objects, in order (graph not optimised, see :func:`persist`)."""
    return array.to_delayed(optimize_graph=False).ravel()


class ChunkRead(NamedTuple):
    """The task that reads one row chunk of several arrays (see :func:`chunk_reads`)."""

    key: tuple
    task: Task
    shared: dict  # the tasks it depends on, which other chunks share


def chunk_reads(*arrays):
    """Per row chunk, one task that makes the tuple of the arrays' chunks.

    Each chunk's own tasks (those no other chunk needs: reading it from its
    file, slicing, casting, ...) are fused into that one task, so the chunks
    of X, y and the weights are made on the worker that uses them: computed
    apart, they would often be made on different workers and sent across.
    Tasks that several chunks share (an array that ``from_array`` wraps)
    stay dependencies of the fused tasks.

    Parameters
    ----------
    *arrays : dask.array.Array
        Arrays with the same row chunks and one chunk across the columns.

    Returns
    -------
    list of ChunkRead
        One per row chunk, in order.
    """
    raw = dict(HighLevelGraph.merge(*(a.__dask_graph__() for a in arrays)))
    graph = convert_legacy_graph(raw)
    dependents = {}
    for key, node in graph.items():
        for dependency in node.dependencies:
            dependents.setdefault(dependency, set()).add(key)
    name = "mgsk-rows-" + tokenize(*arrays)
    reads = []
    for i, chunk_keys in enumerate(zip(*(list(flatten(a.__dask_keys__())) for a in arrays))):
        key = (name, i)
        read = Task(key, _as_tuple, *map(TaskRef, chunk_keys))
        # A persisted chunk (a key with no task) has nothing of its own to read.
        own = _own_tasks(graph, dependents, {k for k in chunk_keys if k in graph})
        fused = Task.fuse(*(graph[k] for k in own), read, key=key) if own else read
        reads.append(ChunkRead(key, fused, _closure(raw, graph, fused.dependencies)))
    return reads


def row_chunks(*arrays):
    """:func:`chunk_reads` as delayed objects: per row chunk, the tuple of the arrays' chunks.

    Examples
    --------
    >>> import dask, dask.array as da, numpy as np
    >>> from mgsk.dask._rows import row_chunks
    >>> X = da.from_array(np.arange(12.0).reshape(6, 2), chunks=(4, 2))
    >>> [[part.tolist() for part in chunk] for chunk in dask.compute(*row_chunks(X[:, 0], X[:, 1]))]
    [[[0.0, 2.0, 4.0, 6.0], [1.0, 3.0, 5.0, 7.0]], [[8.0, 10.0], [9.0, 11.0]]]
    """
    return [Delayed(read.key, {**read.shared, read.key: read.task}) for read in chunk_reads(*arrays)]


def _own_tasks(graph, dependents, keys):
    """``keys`` and the tasks under them that only they need (directly or through each other)."""
    below = _closure(graph, graph, keys)
    own = set(keys)
    grown = True
    while grown:
        more = {k for k in below.keys() - own if dependents.get(k, set()) <= own}
        own |= more
        grown = bool(more)
    return own


def _closure(raw, graph, keys):
    """The tasks of ``keys`` and of everything they depend on: from ``graph``, else ``raw``
    (where a persisted collection holds its futures)."""
    found, stack = {}, list(keys)
    while stack:
        key = stack.pop()
        if key in found or key not in raw:
            continue
        found[key] = graph.get(key, raw[key])
        stack.extend(graph[key].dependencies if key in graph else ())
    return found


def _as_tuple(*parts):
    return parts


def compute(client, *collections):
    """``dask.compute`` on ``client`` (dask's default scheduler when None), as a tuple."""
    if client is not None:
        return tuple(client.gather(client.compute(list(collections), optimize_graph=False)))
    return dask.compute(*collections, optimize_graph=False)


def _chunk_histogram(values, weights, edges, lo, hi):
    """Weight (or count) of the values of a chunk in each bin of ``edges`` within ``[lo, hi]``."""
    inside = (values >= lo) & (values <= hi)
    bins = np.clip(np.searchsorted(edges, values[inside], side="right") - 1, 0, edges.shape[0] - 2)
    w = None if weights is None else weights[inside]
    return np.bincount(bins, weights=w, minlength=edges.shape[0] - 1).astype(float), np.bincount(
        bins, minlength=edges.shape[0] - 1
    )


def _chunk_bracket(values, weights, lo, hi, most):
    """Weight of a chunk's values below ``lo``; its distinct values in ``[lo, hi]`` with their
    weights (None when more than ``most`` of them lie there) and their count."""
    below = values < lo
    weight_below = float(below.sum() if weights is None else weights[below].sum())
    inside = ~below & (values <= hi)
    count = int(inside.sum())
    if count > most:
        return weight_below, None, None, count
    v, index = np.unique(values[inside], return_inverse=True)
    w = None if weights is None else weights[inside]
    return weight_below, v, np.bincount(index, weights=w, minlength=v.shape[0]).astype(float), count


def value_summary(values, weights, offset, n):
    """Range of a chunk's values and the values (and weights) at the rows of an even stride.

    The stride is that of :data:`SELECTION_SAMPLE` rows out of ``n``,
    counted from the first row of all chunks (``offset`` is the chunk's).
    """
    stride = -(-n // SELECTION_SAMPLE)
    rows = slice((-offset) % stride, None, stride)
    return (
        values.min(initial=np.inf),
        values.max(initial=-np.inf),
        values[rows].copy(),
        None if weights is None else weights[rows].copy(),
    )


def lazy_summary(values, weights):
    """:func:`merge_summaries` of the chunks of ``values`` (and ``weights``, or None), as a delayed object."""
    n = values.shape[0]
    v_blocks = blocks(values)
    w_blocks = [None] * len(v_blocks) if weights is None else blocks(weights)
    parts = [dask.delayed(value_summary)(v, w, o, n) for v, w, o in zip(v_blocks, w_blocks, offsets(values))]
    return dask.delayed(merge_summaries)(parts)


def deviation_summary(summary, center):
    """The summary of ``|values - center|`` from that of ``values`` (the sample is at the same rows)."""
    lo, hi, sample, sample_weights = summary
    return 0.0, max(abs(lo - center), abs(hi - center)), np.abs(sample - center), sample_weights


def merge_summaries(summaries):
    """One summary (see :func:`value_summary`) of all chunks."""
    weights = None if summaries[0][3] is None else np.concatenate([s[3] for s in summaries])
    return (
        min(s[0] for s in summaries),
        max(s[1] for s in summaries),
        np.concatenate([s[2] for s in summaries]),
        weights,
    )


def offsets(array):
    return np.r_[0, np.cumsum(array.chunks[0])[:-1]].astype(int)


def add_task(graph, key, fn, *arguments):
    """``graph[key] = Task(key, fn, *arguments)``; returns the reference to it.

    The arguments are taken as they are: a :class:`dask._task_spec.TaskRef`
    (or a ``List`` of them) is a dependency, any other value is data.
    """
    graph[key] = Task(key, fn, *arguments)
    return TaskRef(key)


def quantile_tasks(graph, name, parts, columns, summary, q, n, total_weight, uniform, centered=False, center=None):
    """Tasks in ``graph`` for the lower weighted ``q``-quantile of chunks (or of ``|values - center|``).

    One bracket pass (:func:`exact_quantile`'s) in the graph that makes the
    values, so the quantile costs no round trip of its own. ``parts`` are
    references to the chunks' tuples, which hold the values and the weights
    at the indices ``columns``; each chunk's bracket runs where its tuple
    is. The returned reference is to the quantile, or None when the
    sample's bracket misses (then :func:`exact_quantile` finishes the
    selection). ``summary``, ``total_weight``, ``uniform`` and ``center``
    may be references (with ``centered``, a None ``center`` gives None).
    """
    bracket = add_task(graph, f"{name}-bracket", _graph_bracket, summary, q, len(parts), uniform, centered, center)
    brackets = [
        add_task(graph, (f"{name}-bracket", i), _part_bracket, part, columns, bracket, centered, center)
        for i, part in enumerate(parts)
    ]
    return add_task(graph, name, _finish_quantile, List(*brackets), q, n, total_weight, uniform)


def graph_quantile(values, weights, summary, q, total_weight, uniform):
    """:func:`quantile_tasks` of a dask array (and its weights, or None), as a delayed object."""
    reads = chunk_reads(values) if weights is None else chunk_reads(values, weights)
    graph = {}
    for read in reads:
        graph.update(read.shared)
        graph[read.key] = read.task
    parts, columns = [TaskRef(read.key) for read in reads], (0, None if weights is None else 1)
    found = quantile_tasks(graph, f"mgsk-quantile-{uuid.uuid4().hex}", parts, columns, summary, q, values.shape[0], total_weight, uniform)
    return Delayed(found.key, graph)


def _graph_bracket(summary, q, n_blocks, uniform, centered, center):
    """:func:`_bracket` of the merged sample (one task: the sample is not sent to every chunk)."""
    if centered and not (center is not None and np.isfinite(center)):
        return None
    if centered:
        summary = deviation_summary(summary, center)
    if uniform:
        summary = (*summary[:3], None)
    if not np.isfinite(summary[2]).all():
        return None
    return (*_bracket(summary, q, n_blocks), uniform)


@on_worker
def _part_bracket(part, columns, bracket, centered, center):
    """A chunk's part of the bracket pass, its values (and weights) in ``part`` at ``columns``
    (None when there is no bracket)."""
    if bracket is None:
        return None
    a, b, most, uniform = bracket
    values = part[columns[0]]
    values = np.abs(values - center) if centered else values
    return _chunk_bracket(values, None if uniform or columns[1] is None else part[columns[1]], a, b, most)


def _finish_quantile(parts, q, n, total_weight, uniform):
    if any(p is None for p in parts):
        return None
    return _from_bracket(parts, _quantile_target(q, n, total_weight, uniform))


def _quantile_target(q, n, total_weight, uniform):
    """The weight at or below the quantile (with equal weights a count: exact)."""
    return float(max(int(np.ceil(q * n)) - 1, 0) + 1) if uniform else q * total_weight * (1.0 - TARGET_SLACK)


def _from_bracket(parts, target):
    """The quantile from the chunks' bracket pass, or None when it is not inside the bracket's values."""
    below = sum(p[0] for p in parts)
    if below < target and all(p[1] is not None for p in parts):
        candidates = np.concatenate([p[1] for p in parts])
        candidate_weights = np.concatenate([p[2] for p in parts])
        if below + candidate_weights.sum() >= target:
            return _select(candidates, candidate_weights, below, target)
    return None


@on_worker
def _sweep_sums(part, total_weight, median, weight_unit):
    """A chunk's Sweep and its scale-equation sums at ``κσ``, ``σ`` the MAD from ``median``
    (None without one), from its sweep's result."""
    sweep, residuals, _, sample_weight = part
    if median is None or not median > 0:
        return sweep, None
    unit = KAPPA * (MAD_FACTOR * median)
    return sweep, _vector_method(residuals, sample_weight, total_weight, "fidelity_sums", (unit, weight_unit))


def _add_sweep_sums(parts):
    """The Sweep of all chunks and their scale sums (None if a chunk has none)."""
    fidelity = [p[1] for p in parts]
    total = None if any(f is None for f in fidelity) else functools.reduce(_add_results, fidelity)
    return add_sweeps([p[0] for p in parts]), total


def _bracket(summary, q, n_blocks):
    """The sample's quantiles a few standard errors either side of ``q``, and the values a chunk may send."""
    lo, hi, sample, sample_weights = summary
    m = sample.shape[0]
    margin = SELECTION_SIGMAS * np.sqrt(q * (1.0 - q) / m) + 2.0 / m
    a = weighted_quantile(sample, sample_weights, q - margin) if q - margin > 0 else lo
    b = weighted_quantile(sample, sample_weights, q + margin) if q + margin < 1 else hi
    return a, b, SELECTION_GATHER // n_blocks + 1


def exact_quantile(values, weights, q, client=None, summary=None, total_weight=None):
    """Lower weighted ``q``-quantile of a dask array, exactly, in a few passes.

    The same value as :func:`mgsk._weighted.weighted_quantile` on the
    gathered arrays: the smallest value whose weight at or below it reaches
    ``q`` times the total (with equal weights, ``sorted(values)[ceil(q n) -
    1]``). An evenly spaced sample of the values (``summary``, or one pass)
    brackets the quantile; one pass counts the weight below the bracket and
    gathers the distinct values inside it, and the selection is finished on
    the client. Only when the sample's bracket misses (rare) or holds more
    than :data:`SELECTION_GATHER` values, passes of weighted histograms
    narrow the range first.

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
    summary : tuple or None
        :func:`merge_summaries` of the values' chunks, if known.
    total_weight : float or None
        ``weights.sum()``, if known.

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
    v_blocks = blocks(values)
    w_blocks = [None] * len(v_blocks) if weights is None else blocks(weights)
    if summary is None:
        summary = compute(client, lazy_summary(values, weights))[0]
    lo, hi = summary[:2]
    if weights is not None and total_weight is None:
        total_weight = float(compute(client, weights.sum())[0])
    target = _quantile_target(q, n, total_weight, weights is None)
    if target <= 0.0:  # q times a subnormal total weight rounds to 0: the smallest value, as in memory
        return float(compute(client, values.min())[0])
    a, b, most = _bracket(summary, q, len(v_blocks))
    parts = compute(client, *[dask.delayed(_chunk_bracket)(v, w, a, b, most) for v, w in zip(v_blocks, w_blocks)])
    found = _from_bracket(parts, target)
    if found is not None:
        return found
    below = sum(p[0] for p in parts)
    inside = sum(p[3] for p in parts)
    if below >= target:  # the quantile lies below the bracket
        hi, below, count = np.nextafter(a, -np.inf), 0.0, n
    elif all(p[1] is not None for p in parts):  # above it
        lo, below, count = np.nextafter(b, np.inf), below + np.concatenate([p[2] for p in parts]).sum(), n
    else:  # inside it, but too many values to gather
        lo, hi, count = a, b, inside
    return _narrow(v_blocks, w_blocks, lo, hi, below, target, count, client)


def _narrow(v_blocks, w_blocks, lo, hi, below, target, count, client):
    """Histogram passes over ``[lo, hi]`` (``below``: the weight under ``lo``), then the selection."""
    for _ in range(SELECTION_PASSES):
        edges = np.unique(np.linspace(lo, hi, SELECTION_BINS + 1))
        if count <= SELECTION_GATHER or edges.shape[0] < 3:
            break
        parts = compute(client, *[dask.delayed(_chunk_histogram)(v, w, edges, lo, hi) for v, w in zip(v_blocks, w_blocks)])
        cumulative = below + np.cumsum(functools.reduce(operator.add, (p[0] for p in parts)))
        counts = functools.reduce(operator.add, (p[1] for p in parts))
        j = min(int(np.searchsorted(cumulative, target)), edges.shape[0] - 2)
        below = float(cumulative[j - 1]) if j > 0 else below
        lo = edges[j]
        hi = edges[j + 1] if j == edges.shape[0] - 2 else np.nextafter(edges[j + 1], -np.inf)
        count = int(counts[j])
    parts = compute(client, *[dask.delayed(_chunk_bracket)(v, w, lo, hi, np.inf) for v, w in zip(v_blocks, w_blocks)])
    candidates = np.concatenate([p[1] for p in parts])
    return _select(candidates, np.concatenate([p[2] for p in parts]), below, target)


def _select(candidates, weights, below, target):
    """The first candidate whose weight at or below it, plus ``below``, reaches ``target``."""
    order = np.argsort(candidates, kind="stable")
    cumulative = below + np.cumsum(weights[order])
    return float(candidates[order[min(np.searchsorted(cumulative, target), order.shape[0] - 1)]])


def data_scale_tasks(graph, name, parts, summary, n, total_weight, uniform):
    """Tasks in ``graph`` for the median of y and the median of its absolute deviations from it.

    :func:`quantile_tasks` twice, in the first pass's graph (``parts``: its
    chunks' tuples, y and the weights at indices 1 and 2), so the data scale
    costs no pass of its own. Returns the reference to the pair; either is
    None where its bracket missed (then :func:`data_scale` finds it).
    """
    center = quantile_tasks(graph, f"{name}-center", parts, (1, 2), summary, 0.5, n, total_weight, uniform)
    deviation = quantile_tasks(graph, f"{name}-deviation", parts, (1, 2), summary, 0.5, n, total_weight, uniform, True, center)
    return add_task(graph, name, _as_tuple, center, deviation)


def data_scale(y, sample_weight, uniform, client=None, summary=None, total_weight=None, found=(None, None)):
    """:func:`mgsk._irls.data_scale` of dask arrays: the same value, from exact selections.

    ``summary`` (:func:`lazy_summary` of ``y``, computed with the first
    pass), ``total_weight`` and ``found`` (the median and the median
    deviation that :func:`data_scale_tasks` found, or None) save the passes
    that would find them.
    """
    weights = None if uniform else sample_weight
    center, deviation = found
    if center is None:
        center, deviation = exact_quantile(y, weights, 0.5, client, summary, total_weight), None
    if deviation is None:
        deviations = None if summary is None else deviation_summary(summary, center)
        deviation = exact_quantile(abs(y - center), weights, 0.5, client, deviations, total_weight)
    s = MAD_FACTOR * deviation
    if not s > 0:
        dev = y - center
        total, mean_dev = compute(client, sample_weight.sum(), sample_weight @ dev)
        dev = dev - mean_dev / total
        top = float(compute(client, abs(dev).max())[0])
        if top > 0:
            s = top * float(np.sqrt(compute(client, sample_weight @ (dev / top) ** 2)[0] / total))
    return s if s > 0 and np.isfinite(s) else 1.0
