"""The regressors on Dask: the one gnostic iteration over :class:`~mgsk.dask._rows.DaskRows`."""

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.preprocessing import PolynomialFeatures

from .. import _linear
from .._base import GnosticMixin
from .._gnostic import characteristics
from .._irls import gnostic_irls
from .._rows import start_rows
from ._data import check_checks, first_pass, fit_inputs, predict_inputs, uniform_weights
from ._rows import DaskRows, compute, data_scale

#: Fitted attributes with one value per training row: dask arrays, left out of ``to_local()``.
PER_ROW_ATTRIBUTES = ("weights_", "outliers_", "characteristics_")


class StartRowsOfX:
    """``X_leverage`` for :func:`mgsk._irls.gnostic_irls`: only the start rows, gathered once."""

    def __init__(self, n_rows, X_start):
        self.shape = (n_rows, X_start.shape[1])
        self._start = X_start

    def __getitem__(self, rows):
        if rows != start_rows(self.shape[0]):
            raise IndexError(f"only the start rows {start_rows(self.shape[0])} of X were gathered, not {rows}")
        return self._start


class DaskGnosticMixin:
    """What the Dask estimators share: the client, ``to_local`` and the per-row diagnostics."""

    _per_row_attributes = PER_ROW_ATTRIBUTES

    def _compute(self, *collections):
        return compute(self.client, *collections)

    def _local_params(self):
        return {key: value for key, value in self.get_params(deep=False).items() if key != "client"}

    def to_local(self):
        """The fitted model as the in-memory mgsk estimator.

        It holds the parameters and every fitted attribute but the per-row
        ones (``weights_``, ``outliers_``, ``characteristics_``, and the
        classifier's ``leverage_weights_``), which stay dask arrays on this
        estimator; it predicts, logs, saves and serves
        like any other mgsk model.

        Returns
        -------
        estimator
            A fitted :class:`mgsk.LinearRegressor`, :class:`mgsk.PolynomialRegressor`
            or :class:`mgsk.LogisticRegressor`.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        local = self._local_class(**self._local_params())
        for name, value in vars(self).items():
            if name.endswith("_") and not name.startswith("_") and name not in self._per_row_attributes:
                setattr(local, name, value)
        return local

    def _characteristics(self, x):
        """The per-row characteristics as dask arrays (``x`` is one): nothing is gathered."""
        names = characteristics(np.zeros(1))
        return {name: x.map_blocks(lambda b, name=name: characteristics(b)[name]) for name in names}

    def _first_pass(self, X, y, sample_weight, y_scale=False):
        """The design (lazy) and :func:`~mgsk.dask._data.first_pass`'s findings, from one read of X.

        With ``y_scale``, ``found["y_scale"]`` is the data scale of y
        (:func:`~mgsk.dask._rows.data_scale`), its selections run in the
        same graph.
        """
        if self.degree > 1:
            head = self._compute(X[:1])[0]
            self.polynomial_features_ = PolynomialFeatures(degree=self.degree, include_bias=False).fit(head)
            k = self.polynomial_features_.n_output_features_
            Z = X.map_blocks(self.polynomial_features_.transform, chunks=(X.chunks[0], (k,)), dtype=np.float64)
        else:
            self.polynomial_features_ = None
            Z = X
        found = self._compute(first_pass(X, y, sample_weight, self.polynomial_features_, self.leverage, summarize_y=y_scale))[0]
        check_checks(self, found)
        self._check_design(found["Z_range"])
        if y_scale:
            uniform = uniform_weights(found)
            summary = (*found["y_summary"][:3], None) if uniform else found["y_summary"]
            found["y_scale"] = data_scale(
                y, sample_weight, uniform, self.client, summary, found["total_weight"], found["y_found"]
            )
        return Z, found


class LinearRegressor(DaskGnosticMixin, GnosticMixin, RegressorMixin, BaseEstimator):
    """Robust gnostic linear regression on Dask: data larger than memory, the in-memory fixed point.

    The same estimator as :class:`mgsk.LinearRegressor`, fitted on dask
    arrays or dask DataFrames chunked by rows: the one gnostic iteration
    (:func:`mgsk._irls.gnostic_irls`) runs on the client and reads the data
    through :class:`~mgsk.dask._rows.DaskRows`, whose sums run on the
    workers chunk by chunk. Each step reads X once and never gathers it; the
    quantiles of the residuals are exact, so the fit reaches the fixed point
    of the in-memory fit on the same data (a relative coefficient
    difference of rounding size), from the same start rows.

    Parameters
    ----------
    degree : int, default=1
        Degree of the polynomial in the features; 1 fits a linear model.
    max_iter : int, default=300
        Maximum number of gnostic steps (each reads the data once).
    tol : float, default=1e-6
        Relative tolerance of the fixed point on the coefficients.
    scale : "auto" or float, default="auto"
        Gnostic scale ``S``: solved at every iteration, or fixed.
    fit_intercept : bool, default=True
        Whether to fit an intercept.
    leverage : bool, default=True
        Whether the robust start begins from the rows nearest the bulk of (X, y).
    gnostic_characteristics : bool, default=False
        Whether to provide the per-row characteristics in
        ``characteristics_`` (dask arrays).
    verbose : int, default=0
        Print one line per iteration when positive.
    client : distributed.Client or None, default=None
        The Dask client to fit on; None uses the default one (the current
        ``distributed`` client, else dask's local scheduler).

    Attributes
    ----------
    coef_ : ndarray of shape (n_output_features,)
        Coefficients of the (polynomial) features.
    intercept_ : float
        Intercept (0.0 when ``fit_intercept=False``).
    n_iter_ : int
        Number of gnostic steps run.
    converged_ : bool
        Whether the coefficients reached a fixed point within ``tol``.
    re_ : float
        R-Entropy of the fit (see :class:`mgsk.LinearRegressor`).
    scale_ : float
        The gnostic scale ``S`` of the final residuals.
    weights_ : dask.array.Array of shape (n_samples,)
        Final gnostic filtering weights of the training rows, persisted on
        the workers.
    outliers_ : dask.array.Array of shape (n_samples,), dtype=bool
        Rows whose final gnostic log-ratio exceeds 3 in absolute value.
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
    mgsk.LinearRegressor : The in-memory estimator (``to_local()`` returns it).

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> import mgsk.dask
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 2))
    >>> y = 3 * X[:, 0] - X[:, 1] + 1 + 0.1 * rng.normal(size=2000)
    >>> y[:300] += 40  # 15 % gross outliers
    >>> model = mgsk.dask.LinearRegressor().fit(da.from_array(X, chunks=500), da.from_array(y, chunks=500))
    >>> model.coef_.round(1), round(model.intercept_, 1)
    (array([ 3., -1.]), 1.0)
    >>> type(model.predict(da.from_array(X, chunks=500))).__name__
    'Array'
    >>> local = model.to_local()
    >>> type(local).__module__, bool(np.array_equal(local.coef_, model.coef_))
    ('mgsk._linear', True)
    """

    _local_class = _linear.LinearRegressor
    _parameter_constraints = {**_linear.LinearRegressor._parameter_constraints, "client": "no_validation"}

    def __init__(
        self,
        *,
        degree=1,
        max_iter=300,
        tol=1e-6,
        scale="auto",
        fit_intercept=True,
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
        self.leverage = leverage
        self.gnostic_characteristics = gnostic_characteristics
        self.verbose = verbose
        self.client = client

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model by gnostic IRLS on the Dask workers.

        Parameters
        ----------
        X : dask.array.Array or dask.dataframe.DataFrame of shape (n_samples, n_features)
            Training data, chunked by rows.
        y : dask.array.Array or dask.dataframe.Series of shape (n_samples,)
            Targets.
        sample_weight : dask.array.Array of shape (n_samples,), default=None
            Non-negative weights.

        Returns
        -------
        self : LinearRegressor
            The fitted estimator.
        """
        X, y, sample_weight = fit_inputs(self, X, y, sample_weight)
        Z, found = self._first_pass(X, y, sample_weight, y_scale=True)
        y_scale = found["y_scale"]
        start = (found["Zs"], found["ys"], found["ws"], found["total_weight"], uniform_weights(found))
        rows = DaskRows(Z, y, sample_weight, start, y_scale, self.fit_intercept, self.client)
        result = gnostic_irls(
            Z,
            y,
            sample_weight,
            X_leverage=StartRowsOfX(X.shape[0], found["Xs"]) if self.leverage else None,
            fit_intercept=self.fit_intercept,
            scale=self.scale,
            max_iter=self.max_iter,
            tol=self.tol,
            y_scale=y_scale,
            callback=self._report,
            **_linear.iteration_options(*Z.shape, self.fit_intercept),
            rows=rows,
        )
        self.coef_ = result.coef
        self.intercept_ = float(result.intercept)
        self.scale_ = float(result.scale)
        self.weights_ = result.weights
        self.history_ = result.history
        self.re_ = result.history[-1]["re"]
        self._store_diagnostics(result.x, result.n_iter, result.converged)  # x: a dask array
        return self

    def predict(self, X):
        """Predict on the workers, chunk by chunk.

        Parameters
        ----------
        X : dask.array.Array or dask.dataframe.DataFrame of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        dask.array.Array or dask.dataframe.Series of shape (n_samples,)
            Predicted targets: a Series (with the index of ``X``) for a
            DataFrame, else an array.
        """
        X, frame = predict_inputs(self, X)
        local = self.to_local()
        if frame is not None:
            return frame.map_partitions(_predict_frame, local, meta=(None, "f8"))
        return X.map_blocks(_predict_block, local, drop_axis=1, dtype=np.float64)


def _predict_block(X, model):
    return model.predict(X)


def _predict_frame(frame, model):
    import pandas as pd

    return pd.Series(model.predict(frame), index=frame.index)


class PolynomialRegressor(LinearRegressor):
    """Robust gnostic polynomial regression on Dask: :class:`LinearRegressor` with ``degree=2``.

    Parameters
    ----------
    degree : int, default=2
        Degree of the polynomial in the features.
    max_iter : int, default=300
        Maximum number of gnostic steps.
    tol : float, default=1e-6
        Relative tolerance of the fixed point on the coefficients.
    scale : "auto" or float, default="auto"
        Gnostic scale: solved each iteration, or fixed.
    fit_intercept : bool, default=True
        Whether to fit an intercept.
    leverage : bool, default=True
        Whether the robust start begins from the rows nearest the bulk of (X, y).
    gnostic_characteristics : bool, default=False
        Whether to provide per-row characteristics in ``characteristics_``.
    verbose : int, default=0
        Print one line per iteration when positive.
    client : distributed.Client or None, default=None
        The Dask client to fit on.

    Attributes
    ----------
    coef_ : ndarray of shape (n_output_features,)
        Coefficients of the polynomial features.
    intercept_ : float
        Intercept.
    n_iter_ : int
        Number of gnostic steps run.
    converged_ : bool
        Whether the coefficients reached a fixed point within ``tol``.
    re_ : float
        R-Entropy of the fit.
    scale_ : float
        The gnostic scale ``S`` of the final residuals.
    weights_ : dask.array.Array of shape (n_samples,)
        Final gnostic filtering weights of the training rows.
    outliers_ : dask.array.Array of shape (n_samples,), dtype=bool
        Rows whose final gnostic log-ratio exceeds 3 in absolute value.
    history_ : list of dict
        One record per iteration.
    characteristics_ : dict of str to dask.array.Array
        Only with ``gnostic_characteristics=True``: per-row characteristics.
    polynomial_features_ : PolynomialFeatures or None
        The fitted feature expansion.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> import mgsk.dask
    >>> x = np.linspace(-2, 2, 1001).reshape(-1, 1)
    >>> y = 1 + x[:, 0] ** 2
    >>> y[::10] += 25
    >>> model = mgsk.dask.PolynomialRegressor().fit(da.from_array(x, chunks=250), da.from_array(y, chunks=250))
    >>> model.coef_.round(3), round(model.intercept_, 3)
    (array([0., 1.]), 1.0)
    """

    _local_class = _linear.PolynomialRegressor

    def __init__(
        self,
        *,
        degree=2,
        max_iter=300,
        tol=1e-6,
        scale="auto",
        fit_intercept=True,
        leverage=True,
        gnostic_characteristics=False,
        verbose=0,
        client=None,
    ):
        super().__init__(
            degree=degree,
            max_iter=max_iter,
            tol=tol,
            scale=scale,
            fit_intercept=fit_intercept,
            leverage=leverage,
            gnostic_characteristics=gnostic_characteristics,
            verbose=verbose,
            client=client,
        )
