"""Dask input of the Dask estimators: checked, aligned, float64, chunked by rows."""

import operator
import sys
import uuid
import warnings

import dask.array as da
import numpy as np
from dask._task_spec import List, Task, TaskRef
from dask.delayed import Delayed
from sklearn.utils.validation import check_is_fitted

from .._rows import start_rows
from ._rows import add_task, chunk_reads, data_scale_tasks, merge_summaries, offsets, on_worker, value_summary


def _is_dask_frame(X, kind="DataFrame"):
    """Whether ``X`` is a dask DataFrame (or Series): only if dask.dataframe is imported, so
    mgsk.dask need not import it (nor pandas)."""
    dd = sys.modules.get("dask.dataframe")
    return dd is not None and isinstance(X, getattr(dd, kind))


def as_rows(X, name="X", estimator=None):
    """A dask array (2-D for X) and the column names of a dask DataFrame, if any."""
    names = None
    if _is_dask_frame(X):
        columns = list(X.columns)
        if all(isinstance(c, str) for c in columns):
            names = np.asarray(columns, dtype=object)
        X = X.to_dask_array(lengths=True)
    elif _is_dask_frame(X, "Series"):
        X = X.to_dask_array(lengths=True)
    elif not isinstance(X, da.Array):
        owner = type(estimator).__name__ if estimator is not None else "A Dask estimator"
        raise TypeError(
            f"{owner} takes {name} as a dask array or a dask DataFrame/Series, got {type(X).__name__}. "
            f"Wrap in-memory data with dask.array.from_array, or use the in-memory mgsk.{owner}."
        )
    if any(np.isnan(c).any() for c in X.chunks):
        X = X.compute_chunk_sizes()
    return X, names


def fit_inputs(estimator, X, y, sample_weight):
    """``X`` (2-D, float64, one column chunk), ``y`` and ``sample_weight`` chunked like its rows.

    Sets ``n_features_in_`` and ``feature_names_in_`` on ``estimator``.
    """
    X, names = as_rows(X, "X", estimator)
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D dask array for X, got {X.ndim} dimension(s); reshape your data.")
    if X.shape[0] < 2:
        raise ValueError(f"{type(estimator).__name__} needs at least 2 samples, got {X.shape[0]}.")
    X = X.astype(np.float64).rechunk({1: -1})
    y, _ = as_rows(y, "y", estimator)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must be 1-D with one value per row of X ({X.shape[0]}), got shape {y.shape}.")
    y = y.rechunk((X.chunks[0],))
    if sample_weight is None:
        sample_weight = da.ones(X.shape[0], chunks=(X.chunks[0],))
    else:
        if isinstance(sample_weight, np.ndarray):
            sample_weight = da.from_array(sample_weight)
        sample_weight, _ = as_rows(sample_weight, "sample_weight", estimator)
        if sample_weight.shape != (X.shape[0],):
            raise ValueError(f"sample_weight.shape == {sample_weight.shape}, expected {(X.shape[0],)}!")
        sample_weight = sample_weight.astype(np.float64).rechunk((X.chunks[0],))
    estimator.n_features_in_ = X.shape[1]
    if names is not None:
        estimator.feature_names_in_ = names
    elif hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_
    return X, y, sample_weight


def check_checks(estimator, checks):
    """Raise what the first pass found wrong with the data (scikit-learn's messages)."""
    for name in ("X", "y"):
        if not checks[f"{name}_finite"]:
            raise ValueError(f"Input {name} contains NaN or infinity.")
    if not checks["weight_min"] >= 0:
        raise ValueError("Negative values in data passed to sample_weight")
    if not checks["weight_finite"]:
        raise ValueError("Input sample_weight contains NaN or infinity.")
    if not checks["total_weight"] > 0:
        raise ValueError("sample_weight must have a positive sum.")


def first_pass(X, y, sample_weight, features=None, want_X=False, summarize_y=False):
    """The first pass, one task per chunk that also reads it, as a delayed dict (:func:`merge_first`).

    It reads X once for the checks (finite values, the design's range for
    :meth:`~mgsk._base.GnosticMixin._check_design`), the totals of the
    weights, the start rows of :func:`mgsk._rows.start_rows` (``Zs, ys, ws``,
    and ``Xs`` with ``want_X``) and, with ``summarize_y``, the summary of y
    (:func:`~mgsk.dask._rows.value_summary`) and, in the same graph, the
    median of y and of its absolute deviations (the pair of
    :func:`~mgsk.dask._rows.data_scale_tasks`, under the key ``"y_found"``).
    ``features``: the fitted polynomial expansion of X, or None.
    """
    n = X.shape[0]
    name = f"mgsk-first-{uuid.uuid4().hex}"
    graph, parts, found = {}, [], []
    for i, (read, offset) in enumerate(zip(chunk_reads(X, y, sample_weight), offsets(y))):
        graph.update(read.shared)
        key = (name, i)
        task = Task(key, first_chunk, TaskRef(read.key), features, int(offset), n, want_X, summarize_y)
        graph[key] = Task.fuse(read.task, task, key=key)
        parts.append(TaskRef(key))
        found.append(add_task(graph, (f"{name}-found", i), operator.getitem, parts[-1], 0))
    merged = add_task(graph, f"{name}-merged", merge_first, List(*found))
    if summarize_y:
        summary, total = (add_task(graph, f"{name}-{key}", operator.getitem, merged, key) for key in ("y_summary", "total_weight"))
        uniform = add_task(graph, f"{name}-uniform", uniform_weights, merged)
        pair = data_scale_tasks(graph, f"{name}-scale", parts, summary, n, total, uniform)
        merged = add_task(graph, f"{name}-all", _with_found, merged, pair)
    return Delayed(merged.key, graph)


@on_worker
def first_chunk(chunk, features, offset, n, want_X, summarize_y):
    """One chunk's part of :func:`first_pass` (``offset``: its first row among all ``n``), and its
    y and weights (for the data scale's tasks, which run where this one did)."""
    X, y, sample_weight = chunk
    Z = X if features is None else features.transform(X)
    stride = start_rows(n).step
    rows = slice((-offset) % stride, None, stride)
    found = {
        "X_finite": _all_finite(X),
        "y_finite": _all_finite(y),
        "weight_finite": _all_finite(sample_weight),
        "weight_min": sample_weight.min(initial=np.inf),
        "weight_max": sample_weight.max(initial=-np.inf),
        "total_weight": sample_weight.sum(),
        "Z_range": np.array([Z.max(), Z.min()]) if Z.size else np.zeros(2),
        # Copies: a view would keep the chunk (a memory map of its file, perhaps) alive.
        "Zs": Z[rows].copy(),
        "ys": y[rows].copy(),
        "ws": sample_weight[rows].copy(),
        "Xs": X[rows].copy() if want_X else None,
    }
    if summarize_y:
        found["y_summary"] = value_summary(y, sample_weight, offset, n)
    return found, y, sample_weight


def _with_found(merged, pair):
    return {**merged, "y_found": pair}


def _all_finite(a):
    """Whether every value is finite, from two reductions (no boolean copy: NaN propagates)."""
    return bool(a.size == 0 or (np.isfinite(a.max()) and np.isfinite(a.min())))


def merge_first(parts):
    """The first pass of all chunks from theirs: checks, totals and start rows in row order."""
    found = {
        "X_finite": all(p["X_finite"] for p in parts),
        "y_finite": all(p["y_finite"] for p in parts),
        "weight_finite": all(p["weight_finite"] for p in parts),
        "weight_min": np.min([p["weight_min"] for p in parts]),
        "weight_max": np.max([p["weight_max"] for p in parts]),
        "total_weight": float(sum(p["total_weight"] for p in parts)),
        "Z_range": np.array([np.max([p["Z_range"][0] for p in parts]), np.min([p["Z_range"][1] for p in parts])]),
    }
    for name in ("Zs", "ys", "ws", "Xs"):
        found[name] = None if parts[0][name] is None else np.concatenate([p[name] for p in parts])
    if "y_summary" in parts[0]:
        found["y_summary"] = merge_summaries([p["y_summary"] for p in parts])
    return found


def uniform_weights(found):
    """Whether all weights are equal (from :func:`merge_first`'s result)."""
    return found["weight_min"] == found["weight_max"]


def first_rows(X, rows=5):
    """The first ``rows`` rows of a dask array or DataFrame, computed (only the first chunk is read)."""
    if _is_dask_frame(X):
        with warnings.catch_warnings():  # a first partition shorter than ``rows`` is enough
            warnings.simplefilter("ignore", UserWarning)
            return X.head(rows)
    return X[:rows].compute() if isinstance(X, da.Array) else X[:rows]


def predict_inputs(estimator, X):
    """``X`` for prediction: a dask array with the fitted number of columns, float64."""
    check_is_fitted(estimator)
    frame = X if _is_dask_frame(X) else None
    X, names = as_rows(X, "X", estimator)
    if X.ndim != 2 or X.shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1] if X.ndim == 2 else X.shape} features, but {type(estimator).__name__} "
            f"is expecting {estimator.n_features_in_} features as input."
        )
    return X.astype(np.float64).rechunk({1: -1}), frame
