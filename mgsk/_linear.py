"""Robust gnostic linear and polynomial regression."""

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import COMMON_CONSTRAINTS, GnosticMixin, fit_sample_weight
from ._irls import JOINT_ROWS_PER_PARAMETER, data_scale, gnostic_irls

#: From MIN_WIDE_ROWS_PER_COLUMN to WIDE_ROWS_PER_COLUMN rows per parameter,
#: with more than MIN_WIDE_PARAMETERS parameters, is "wide" data: the fit
#: starts from trimmed ridge fits and judges residuals by their prediction
#: variance (see mgsk._irls.wide_start). With few parameters the robust
#: start's concentration steps and DetMCD-style subsets still work; below
#: 1.25 rows per parameter the leverages approach 1 and the fit is too poorly
#: determined for either start, so such data take the ordinary path.
WIDE_ROWS_PER_COLUMN = 10
MIN_WIDE_ROWS_PER_COLUMN = 1.25
MIN_WIDE_PARAMETERS = 20


def is_wide(n_rows, n_columns, fit_intercept):
    """Whether a design is fitted as wide data (see ``WIDE_ROWS_PER_COLUMN``)."""
    parameters = n_columns + fit_intercept
    return parameters > MIN_WIDE_PARAMETERS and MIN_WIDE_ROWS_PER_COLUMN * parameters <= n_rows < WIDE_ROWS_PER_COLUMN * parameters


def iteration_options(n_rows, n_columns, fit_intercept):
    """The keyword arguments of :func:`mgsk._irls.gnostic_irls` that the shape of the design decides.

    Wide data adjust residuals for leverage. Wide data and data with at
    least ``JOINT_ROWS_PER_PARAMETER`` rows per parameter take joint steps
    on the coefficients and the unit. (On wide data the unit mostly sits at
    its floor, where the two kinds of step agree: 11-13 steps at 1000 x 400,
    58-59 on scikit-learn's check_regressors_train data through
    PolynomialRegressor, 200 x 65.)
    """
    wide = is_wide(n_rows, n_columns, fit_intercept)
    joint = wide or n_rows >= JOINT_ROWS_PER_PARAMETER * (n_columns + fit_intercept)
    return {"adjust_leverage": wide, "joint_scale": joint}


class LinearRegressor(GnosticMixin, RegressorMixin, BaseEstimator):
    """Robust linear regression by gnostic iteratively reweighted least squares.

    Each row is weighted by its gnostic estimating fidelity, a smooth weight
    that is ~1 for typical residuals and decays exponentially for gross
    errors; the scale of the weighting comes from the gnostic scale
    equation, so there is nothing to tune. A high-breakdown start
    (concentration steps from deterministic subsets of the rows nearest
    the bulk of ``(X, y)``) lets the iteration survive up to 40 % gross
    outliers in ``y`` and bad leverage points. The algorithm is described in
    :mod:`mgsk._irls`. The fit is deterministic: the same data give the
    same model, bit for bit.

    Parameters
    ----------
    degree : int, default=1
        Degree of the polynomial in the features; 1 fits a linear model.
    max_iter : int, default=300
        Maximum number of gnostic steps, each one pass over the data (joint
        Newton steps on the coefficients and the scale; reweighting steps
        with Anderson acceleration where those are not safe): 3-4 on large
        data, 4-20 on small data.
    tol : float, default=1e-6
        The iteration stops when the relative change of the coefficients
        (intercept included) falls below ``tol``.
    scale : "auto" or float, default="auto"
        Gnostic scale ``S``: ``"auto"`` solves the gnostic scale equation at
        every iteration; a positive number fixes it (smaller is stricter).
    fit_intercept : bool, default=True
        Whether to fit an intercept.
    leverage : bool, default=True
        Whether the robust start begins from the rows nearest the bulk of
        ``(X, y)`` (robust distances, DetMCD-style subsets) rather than
        from least squares on all rows. Needed against bad leverage points;
        the final weights depend on the residuals only.
    gnostic_characteristics : bool, default=False
        Whether to store the gnostic characteristics of each training row
        in ``characteristics_``.
    verbose : int, default=0
        Print one line per iteration when positive.

    Attributes
    ----------
    coef_ : ndarray of shape (n_output_features,)
        Coefficients of the (polynomial) features.
    intercept_ : float
        Intercept (0.0 when ``fit_intercept=False``).
    n_iter_ : int
        Number of gnostic steps run (each reads the data once).
    converged_ : bool
        Whether the coefficients reached a fixed point within ``tol``.
    re_ : float
        R-Entropy of the fit: the weighted mean of ``sinh x tanh x`` with
        ``x = (y - y_pred) / s_y`` and ``s_y`` the MAD scale of ``y``. It
        depends on the data and the predictions only, so models fitted to
        the same data compare by it: smaller residuals everywhere never give
        a larger ``re``. It grows exponentially with a residual, so on data
        with gross outliers a robust fit (which leaves them with their full
        residual) has a larger ``re`` than least squares; to rank models by
        robustness use :func:`mgsk.metrics.mean_fidelity_score`.
    scale_ : float
        The gnostic scale ``S`` of the final residuals.
    weights_ : ndarray of shape (n_samples,)
        Final gnostic filtering weights of the training rows, in ``[0, 1]``.
    outliers_ : ndarray of shape (n_samples,), dtype=bool
        Rows whose final gnostic log-ratio exceeds 3 in absolute value
        (weight below about 0.1).
    history_ : list of dict
        One record per iteration, with keys ``iteration``, ``re``, ``loss``
        (mean estimating entropy ``1 - f_I`` of the standardised residuals),
        ``scale`` and ``step`` (the change of the coefficients).
    characteristics_ : dict of str to ndarray
        Only with ``gnostic_characteristics=True``: the characteristics
        ``f_I, h_I, f_J, h_J, p_I, I_I, e_I, e_J, re`` of each training row.
    polynomial_features_ : PolynomialFeatures or None
        The fitted feature expansion when ``degree > 1``, else None.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column
        names.

    See Also
    --------
    PolynomialRegressor : The same estimator with ``degree=2``.
    sklearn.linear_model.HuberRegressor : Convex robust regression.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk import LinearRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> y = 3 * X[:, 0] - X[:, 1] + 1 + 0.1 * rng.normal(size=200)
    >>> y[:30] += 40  # 15 % gross outliers
    >>> model = LinearRegressor().fit(X, y)
    >>> model.coef_.round(1), round(model.intercept_, 1)
    (array([ 3., -1.]), 1.0)
    >>> bool(model.outliers_[:30].all()), bool(model.weights_[:30].max() < 1e-100)
    (True, True)
    """

    _parameter_constraints = {**COMMON_CONSTRAINTS, "leverage": ["boolean"]}

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
    ):
        self.degree = degree
        self.max_iter = max_iter
        self.tol = tol
        self.scale = scale
        self.fit_intercept = fit_intercept
        self.leverage = leverage
        self.gnostic_characteristics = gnostic_characteristics
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model by gnostic IRLS.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; a weight of 2 acts as the row repeated.

        Returns
        -------
        self : LinearRegressor
            The fitted estimator.
        """
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True, ensure_min_samples=2)
        sample_weight = fit_sample_weight(sample_weight, X)
        with np.errstate(over="ignore"):
            Z = self._check_design(self._polynomial_design(X, fit=True))
        y_scale = data_scale(y, sample_weight)
        result = gnostic_irls(
            Z,
            y,
            sample_weight,
            X_leverage=X if self.leverage else None,
            fit_intercept=self.fit_intercept,
            scale=self.scale,
            max_iter=self.max_iter,
            tol=self.tol,
            y_scale=y_scale,
            callback=self._report,
            **iteration_options(*Z.shape, self.fit_intercept),
        )
        self.coef_ = result.coef
        self.intercept_ = float(result.intercept)
        self.scale_ = float(result.scale)
        self.weights_ = result.weights
        self.history_ = result.history
        self.re_ = result.history[-1]["re"]  # max_iter >= 1: there is a record
        self._store_diagnostics(result.x, result.n_iter, result.converged)
        return self

    def predict(self, X):
        """Predict with the fitted linear (or polynomial) model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        ndarray of shape (n_samples,)
            Predicted targets.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self._polynomial_design(X, fit=False) @ self.coef_ + self.intercept_


class PolynomialRegressor(LinearRegressor):
    """Robust polynomial regression: :class:`LinearRegressor` with ``degree=2``.

    Parameters
    ----------
    degree : int, default=2
        Degree of the polynomial in the features.
    max_iter : int, default=300
        Maximum number of gnostic steps, each one pass over the data (joint
        Newton steps on the coefficients and the scale; reweighting steps
        with Anderson acceleration where those are not safe): 3-4 on large
        data, 4-20 on small data.
    tol : float, default=1e-6
        Relative tolerance of the fixed point on the coefficients.
    scale : "auto" or float, default="auto"
        Gnostic scale: solved each iteration, or fixed.
    fit_intercept : bool, default=True
        Whether to fit an intercept.
    leverage : bool, default=True
        Whether the robust start begins from the rows nearest the bulk of (X, y).
    gnostic_characteristics : bool, default=False
        Whether to store per-row characteristics in ``characteristics_``.
    verbose : int, default=0
        Print one line per iteration when positive.

    Attributes
    ----------
    coef_ : ndarray of shape (n_output_features,)
        Coefficients of the polynomial features, in the order of
        ``polynomial_features_.get_feature_names_out()``.
    intercept_ : float
        Intercept.
    n_iter_ : int
        Number of gnostic steps run (each reads the data once).
    converged_ : bool
        Whether the coefficients reached a fixed point within ``tol``.
    re_ : float
        R-Entropy of the fit (see :class:`LinearRegressor`).
    scale_ : float
        The gnostic scale ``S`` of the final residuals.
    weights_ : ndarray of shape (n_samples,)
        Final gnostic filtering weights of the training rows.
    outliers_ : ndarray of shape (n_samples,), dtype=bool
        Rows whose final gnostic log-ratio exceeds 3 in absolute value.
    history_ : list of dict
        One record per iteration (``iteration``, ``re``, ``loss``,
        ``scale``, ``step``).
    characteristics_ : dict of str to ndarray
        Only with ``gnostic_characteristics=True``: per-row characteristics.
    polynomial_features_ : PolynomialFeatures or None
        The fitted feature expansion (None when ``degree=1``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column
        names.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk import PolynomialRegressor
    >>> x = np.linspace(-2, 2, 101).reshape(-1, 1)
    >>> y = 1 + x[:, 0] ** 2
    >>> y[::10] += 25
    >>> model = PolynomialRegressor().fit(x, y)
    >>> model.coef_.round(3), round(model.intercept_, 3)
    (array([0., 1.]), 1.0)
    """

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
        )
