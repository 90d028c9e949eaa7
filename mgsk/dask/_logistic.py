"""The classifier on Dask: the one Newton iteration (:func:`mgsk._logistic.newton_fit`) over dask chunks."""

import functools
import operator

import dask
import dask.array as da
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils.multiclass import check_classification_targets

from .. import _logistic
from .._base import GnosticMixin
from .._irls import leverage_rule
from .._newton import BinaryProblem, Problem
from ._data import fit_inputs, predict_inputs
from ._linear import PER_ROW_ATTRIBUTES, DaskGnosticMixin
from ._rows import compute, on_worker, persist, row_chunks


#: The methods of :class:`mgsk._newton.LabelRows` that read the design; the
#: others (the scale equation's sums, the diagnostics) need only the logits,
#: the labels and the weights, so X is not read for them.
DESIGN_METHODS = frozenset({"logits", "weighted_score", "jacobian", "fisher"})
#: The method that recomputes a kept result's per-row part (without its sums).
ROW_PARTS = {"weighted_score": "weighted_state"}
#: Sums found in the same pass as a kept result, because the iteration asks
#: for them next: the diagnostics of a state (one round trip less per step).
FOUND_WITH = {"weighted_score": ("diagnostic_sums",)}


class Kept:
    """A per-row result of :class:`DaskLabelRows`, recomputed on the workers from the logits.

    Only the logits of each :meth:`~mgsk._newton.LabelRows.probabilities`
    are persisted (``parts``, one per chunk): the probabilities, weights
    and scale-equation terms derived from them are recomputed chunk by
    chunk in each pass that needs them, so that between passes a chunk
    keeps one value per row and coefficient vector (``M`` with more than
    two classes) instead of about ten.
    """

    def __init__(self, name, args, parts=None):
        self.name, self.args, self.parts = name, args, parts
        self.sums = {}  # sums of FOUND_WITH, from the pass that made it

    def chunk(self, i, leaves):
        """How chunk ``i`` recomputes it: a nested dict; its persisted logits are appended to
        ``leaves`` (the task's own arguments: dask keeps their futures only there)."""
        if self.parts is not None:
            leaves.append(self.parts[i])
            return {"kept": "probabilities", "args": ({"leaf": len(leaves) - 1},)}
        return {"kept": self.name, "args": _chunk_args(self.args, i, leaves)}


def _chunk_args(args, i, leaves):
    return tuple(a.chunk(i, leaves) if isinstance(a, Kept) else a for a in args)


def _resolve(block, arg, leaves):
    """The per-row result a :meth:`Kept.chunk` describes, on ``block`` (other arguments as they are)."""
    if not (isinstance(arg, dict) and "kept" in arg):
        return arg
    name, args = arg["kept"], [_resolve(block, a, leaves) for a in arg["args"]]
    if name == "probabilities":
        return block.from_logits(leaves[args[0]["leaf"]])
    out = getattr(block, ROW_PARTS.get(name, name))(*args)
    return out[0] if isinstance(out, tuple) else out


@on_worker
def _chunk_call(chunk, layout, name, args, found_with, *leaves):
    """``LabelRows.<name>(*args)`` on one chunk: ``(Z, y, sample_weight, leverage_weight)``, or
    without ``Z`` for a method that does not read it.

    With ``found_with`` (a tuple of method names), for a method that returns
    ``(per-row result, sums)``: ``(sums, [the sums of those methods on the
    per-row result])``; the per-row result stays on the worker.
    """
    block = _chunk_block(chunk, layout)
    out = getattr(block, name)(*[_resolve(block, a, leaves) for a in args])
    if found_with is None:
        return out
    return out[1], [getattr(block, extra)(out[0]) for extra in found_with]


def _chunk_block(chunk, layout):
    """The :class:`~mgsk._newton.LabelRows` of a chunk ``([Z,] y, sample_weight, leverage_weight)``:
    its design with the intercept's column (none without ``Z``), its labels' class indices, its
    weights with the leverage weights (made here, in the task that uses them, so that none of
    them waits in the worker's memory)."""
    classes, fit_intercept, block_class = layout
    Z, y, sample_weight, leverage_weight = chunk if len(chunk) == 4 else (None, *chunk)
    if Z is None:
        Z1 = np.empty((y.shape[0], 0))
    else:
        Z1 = np.hstack([Z, np.ones((Z.shape[0], 1))]) if fit_intercept else Z
    return block_class(Z1, np.searchsorted(classes, y), len(classes), sample_weight * leverage_weight, sample_weight)


class DaskLabelRows:
    """The rows interface of :class:`mgsk._newton.Problem` on dask arrays chunked by rows.

    Each chunk runs the in-memory arithmetic of :class:`mgsk._newton.LabelRows`
    (``block_class``) on its rows; sums are added over the chunks in their
    order on the client. Per-row results are :class:`Kept`: only logits
    stay persisted on the workers. X is never gathered: the methods that
    need the design (:data:`DESIGN_METHODS`) read it chunk by chunk.

    Parameters
    ----------
    Z : dask.array.Array of shape (n, k)
        Design (without the intercept's column), one chunk across the columns.
    y : dask.array.Array of shape (n,)
        Labels, chunked like ``Z``'s rows.
    sample_weight, leverage_weight : dask.array.Array of shape (n,)
        The weights of the diagnostics, and the factor that makes them the
        weights of the estimating equation.
    classes : ndarray
        The sorted classes.
    fit_intercept : bool
        Whether the design gets a last column of ones.
    block_class : type
        :class:`~mgsk._newton.LabelRows` or :class:`~mgsk._newton.BinaryLabelRows`.
    client : distributed.Client or None
        Where to compute.
    """

    def __init__(self, Z, y, sample_weight, leverage_weight, classes, fit_intercept, block_class, client=None):
        # Each chunk read in one task (the leverage weights read X too): the design's for the
        # methods that read it, the labels' and weights' for the others.
        self.design_chunks = row_chunks(Z, y, sample_weight, leverage_weight)
        self.label_chunks = row_chunks(y, sample_weight, leverage_weight)
        self.lengths = y.chunks[0]
        self.layout = (classes, fit_intercept, block_class)
        self.client = client

    def _calls(self, name, args, found_with=None):
        calls = []
        chunks = self.design_chunks if name in DESIGN_METHODS else self.label_chunks
        for i, chunk in enumerate(chunks):
            leaves = []
            chunk_args = _chunk_args(args, i, leaves)
            call = dask.delayed(_chunk_call, pure=False)
            calls.append(call(chunk, self.layout, name, chunk_args, found_with, *leaves))
        return calls

    def _add(self, sums):
        return functools.reduce(operator.add, sums)

    def keep(self, name, *args):
        """The per-row result of ``LabelRows.<name>(*args)``: logits persisted, anything else a recipe."""
        if name == "probabilities":
            return Kept(name, args, list(persist(self.client, *self._calls("logits", args))))
        return Kept(name, args)

    def total(self, name, *args):
        """The sum over the chunks of ``LabelRows.<name>(*args)``."""
        if len(args) == 1 and isinstance(args[0], Kept) and name in args[0].sums:
            return args[0].sums[name]
        return self._add(compute(self.client, *self._calls(name, args)))

    def keep_total(self, name, *args):
        """``(per-row result, sum)`` of a method that returns both (and the sums found with it)."""
        found_with = FOUND_WITH.get(name, ())
        parts = compute(self.client, *self._calls(name, args, found_with))
        # The scale equation's per-row terms depend on the new probabilities only,
        # not on the previous weights (which weight only its first sums).
        kept = Kept(name, (args[0], None) if name == "scale_terms" else args)
        for j, extra in enumerate(found_with):
            kept.sums[extra] = self._add([part[1][j] for part in parts])
        return kept, self._add([part[0] for part in parts])

    def column(self, kept, key):
        """One per-row array of a kept result, as a dask array (recomputed from the logits)."""
        columns = []
        for i, (chunk, m) in enumerate(zip(self.label_chunks, self.lengths)):
            leaves = []
            recipe = kept.chunk(i, leaves)
            part = dask.delayed(_chunk_column)(chunk, self.layout, recipe, key, *leaves)
            columns.append(da.from_delayed(part, (m,), dtype=np.float64))
        return da.concatenate(columns)


@on_worker
def _chunk_column(chunk, layout, kept, key, *leaves):
    block = _chunk_block(chunk, layout)
    return _resolve(block, kept, leaves)[key]


def _encode(y, classes):
    return np.searchsorted(classes, y)


def _apply_leverage(X, rule):
    return rule(X)


class LogisticRegressor(DaskGnosticMixin, GnosticMixin, ClassifierMixin, BaseEstimator):
    """Robust gnostic logistic regression on Dask: data larger than memory, the in-memory fixed point.

    The same estimator as :class:`mgsk.LogisticRegressor`, fitted on dask
    arrays or dask DataFrames chunked by rows: the one Newton iteration
    (:func:`mgsk._logistic.newton_fit`) runs on the client and reads the
    data through :class:`~mgsk.dask._logistic.DaskLabelRows`, whose sums
    (gradient, Jacobians, scale equation, diagnostics) run on the workers
    chunk by chunk with the in-memory arithmetic. The classes are found in
    one pass and encoded chunk by chunk; the leverage weights come from the
    same evenly spaced start rows as in memory.

    Parameters
    ----------
    degree : int, default=1
        Degree of the polynomial in the features.
    max_iter : int, default=100
        Maximum number of Newton steps.
    tol : float, default=1e-6
        Relative tolerance of the fixed point on the coefficients.
    scale : "auto" or float, default="auto"
        Gnostic scale ``S``: solved at every iteration, or fixed.
    fit_intercept : bool, default=True
        Whether to fit intercepts (never penalised).
    C : float, default=1.0
        Inverse strength of the L2 penalty.
    leverage : bool, default=True
        Whether rows far from the bulk of X get Mallows-type leverage weights.
    gnostic_characteristics : bool, default=False
        Whether to provide the per-row characteristics in
        ``characteristics_`` (dask arrays).
    verbose : int, default=0
        Print one line per iteration when positive.
    client : distributed.Client or None, default=None
        The Dask client to fit on; None uses the default one.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    coef_ : ndarray of shape (1, n_output_features) or (n_classes, n_output_features)
        Coefficients; one row for a binary problem.
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Intercepts.
    n_iter_ : int
        Number of Newton steps run.
    converged_ : bool
        Whether the coefficients reached a fixed point within ``tol``.
    re_ : float
        R-Entropy of the fit (see :class:`mgsk.LogisticRegressor`).
    scale_ : float
        The gnostic scale ``S`` of the final Pearson residuals.
    weights_ : dask.array.Array of shape (n_samples,)
        Final gnostic filtering weights of the training rows, on the workers.
    leverage_weights_ : dask.array.Array of shape (n_samples,)
        Mallows leverage weights of the training rows.
    outliers_ : dask.array.Array of shape (n_samples,), dtype=bool
        Rows whose final gnostic log-ratio exceeds 3.
    history_ : list of dict
        One record per iteration (``iteration``, ``re``, ``loss``,
        ``scale``, ``step``).
    characteristics_ : dict of str to dask.array.Array
        Only with ``gnostic_characteristics=True``: per-row characteristics.
    polynomial_features_ : PolynomialFeatures or None
        The fitted feature expansion when ``degree > 1``, else None.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` is a dask DataFrame
        with string column names.

    See Also
    --------
    mgsk.LogisticRegressor : The in-memory estimator (``to_local()`` returns it).

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> import mgsk.dask
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 2))
    >>> y = np.where(X[:, 0] - X[:, 1] > 0, 1, 0)
    >>> dX, dy = da.from_array(X, chunks=500), da.from_array(y, chunks=500)
    >>> model = mgsk.dask.LogisticRegressor().fit(dX, dy)
    >>> model.classes_, type(model.predict_proba(dX)).__name__
    (array([0, 1]), 'Array')
    >>> local = model.to_local()
    >>> type(local).__module__, bool(np.array_equal(local.coef_, model.coef_))
    ('mgsk._logistic', True)
    """

    _local_class = _logistic.LogisticRegressor
    _per_row_attributes = (*PER_ROW_ATTRIBUTES, "leverage_weights_")
    _parameter_constraints = {**_logistic.LogisticRegressor._parameter_constraints, "client": "no_validation"}

    def __init__(
        self,
        *,
        degree=1,
        max_iter=100,
        tol=1e-6,
        scale="auto",
        fit_intercept=True,
        C=1.0,
        leverage=True,
        gnostic_characteristics=False,
        verbose=0,
        client=None,
    ):
        self.degree = degree
        self.max_iter = max_iter
        self.tol = tol
        self.scale = scale
        self.fit_intercept = fit_intercept
        self.C = C
        self.leverage = leverage
        self.gnostic_characteristics = gnostic_characteristics
        self.verbose = verbose
        self.client = client

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model by Newton steps with gnostic reweighting on the Dask workers.

        Parameters
        ----------
        X : dask.array.Array or dask.dataframe.DataFrame of shape (n_samples, n_features)
            Training data, chunked by rows.
        y : dask.array.Array or dask.dataframe.Series of shape (n_samples,)
            Labels of any type.
        sample_weight : dask.array.Array of shape (n_samples,), default=None
            Non-negative weights.

        Returns
        -------
        self : LogisticRegressor
            The fitted estimator.
        """
        X, y, sample_weight = fit_inputs(self, X, y, sample_weight)
        self.classes_ = self._find_classes(y)
        y_idx = y.map_blocks(_encode, self.classes_, dtype=np.intp)
        Z, found = self._first_pass(X, y_idx.astype(np.float64), sample_weight)
        if self.leverage:
            rule = leverage_rule(found["Xs"], found["ws"])[1]
            lev = da.ones_like(sample_weight) if rule is None else X.map_blocks(_apply_leverage, rule, drop_axis=1, dtype=np.float64)
        else:
            lev = da.ones_like(sample_weight)
        self.leverage_weights_ = persist(self.client, lev)[0]
        n_classes = len(self.classes_)
        problem_class = BinaryProblem if n_classes == 2 else Problem
        rows = DaskLabelRows(Z, y, sample_weight, self.leverage_weights_, self.classes_, self.fit_intercept,
                             problem_class.block_class, self.client)  # fmt: skip
        columns = np.empty((0, Z.shape[1] + self.fit_intercept))  # the Problem reads only the design's width
        problem = problem_class(columns, None, n_classes, None, 1.0 / self.C, self.fit_intercept, self.scale, rows=rows)
        _logistic.store_fit(self, *_logistic.newton_fit(problem, self.max_iter, self.tol, self.fit_intercept, self._report))
        return self

    def _find_classes(self, y):
        """The sorted classes of ``y``, from one pass (``np.unique``'s checks and messages)."""
        (classes,) = self._compute(da.unique(y))
        if classes.dtype.kind == "f" and not np.isfinite(classes).all():
            raise ValueError("Input y contains NaN or infinity.")
        check_classification_targets(classes)
        if len(classes) < 2:
            raise ValueError(
                "LogisticRegressor needs samples of at least 2 classes in the data, "
                f"but the data contains only one class: {classes.tolist()[0]!r}."
            )
        return classes

    def _map(self, X, method, *, columns):
        """``to_local().<method>`` on each chunk (or partition) of X: a dask array.

        A DataFrame's partitions are predicted as DataFrames (their feature
        names checked); the result's chunk sizes are then unknown, as
        ``DataFrame.values`` leaves them.
        """
        X, frame = predict_inputs(self, X)
        local = self.to_local()
        dtype = self.classes_.dtype if method == "predict" else np.float64
        if frame is not None:
            import pandas as pd

            if columns is None:
                meta = pd.Series(dtype=dtype)
            else:
                meta = pd.DataFrame({c: pd.Series(dtype=dtype) for c in range(columns)})
            predicted = frame.map_partitions(_frame_method, local, method, meta=meta)
            return predicted if method == "predict" else predicted.values
        if columns is None:
            return X.map_blocks(_local_method, local, method, drop_axis=1, dtype=dtype)
        return X.map_blocks(_local_method, local, method, chunks=(X.chunks[0], (columns,)), dtype=dtype)

    def decision_function(self, X):
        """Logits of the samples, chunk by chunk.

        Parameters
        ----------
        X : dask.array.Array or dask.dataframe.DataFrame of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        dask.array.Array of shape (n_samples,) or (n_samples, n_classes)
            As :meth:`mgsk.LogisticRegressor.decision_function`.
        """
        n_classes = len(self.classes_) if hasattr(self, "classes_") else 0
        return self._map(X, "decision_function", columns=None if n_classes == 2 else n_classes)

    def predict_proba(self, X):
        """Class probabilities, chunk by chunk.

        Parameters
        ----------
        X : dask.array.Array or dask.dataframe.DataFrame of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        dask.array.Array of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_``.
        """
        return self._map(X, "predict_proba", columns=len(getattr(self, "classes_", ())))

    def predict_log_proba(self, X):
        """Logarithms of the class probabilities, chunk by chunk.

        Parameters
        ----------
        X : dask.array.Array or dask.dataframe.DataFrame of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        dask.array.Array of shape (n_samples, n_classes)
            Log-probabilities in the order of ``classes_``.
        """
        return self._map(X, "predict_log_proba", columns=len(getattr(self, "classes_", ())))

    def predict(self, X):
        """Most probable class of each sample, chunk by chunk.

        Parameters
        ----------
        X : dask.array.Array or dask.dataframe.DataFrame of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        dask.array.Array or dask.dataframe.Series of shape (n_samples,)
            Labels from ``classes_``: a Series (with the index of ``X``) for
            a DataFrame, else an array.
        """
        return self._map(X, "predict", columns=None)


def _local_method(X, model, method):
    return getattr(model, method)(X)


def _frame_method(frame, model, method):
    import pandas as pd

    out = getattr(model, method)(frame)
    return pd.Series(out, index=frame.index) if out.ndim == 1 else pd.DataFrame(out, index=frame.index)
