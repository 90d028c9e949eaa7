"""Gnostic distribution functions (EGDF, ELDF, QGDF, QLDF) of each column."""

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import fit_sample_weight
from ._distribution_math import KINDS, compress, distribution, from_gnostic, jacobian, to_gnostic
from ._irls import data_scale
from ._marginal import fit_global_scale, is_homogeneous, local_scale, location, marginal_analysis
from ._weighted import weighted_median


def fit_function(z, w, kind="egdf", scale="auto", bounds=(-np.inf, np.inf)):
    """Fit one gnostic distribution function to one column (no analysis).

    Parameters
    ----------
    z : ndarray of shape (n,)
        Data (strictly inside finite ``bounds``).
    w : ndarray of shape (n,)
        Non-negative weights with a positive sum (frequency weights).
    kind : {"egdf", "eldf", "qgdf", "qldf"}, default="egdf"
        The function.
    scale : "auto" or float, default="auto"
        Gnostic scale ``S``.
    bounds : tuple of float, default=(-inf, inf)
        Data bounds ``(LB, UB)``; infinite for additive data.

    Returns
    -------
    dict
        ``center, spread`` (unit of additive data), ``scale``, ``u``,
        ``w`` (the sorted gnostic-domain data and their weights), ``u0``
        (the location in the gnostic domain), ``location`` (in data units)
        and ``data`` (an ``(G, 2)`` array of the compressed data and
        weights).

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._distribution import fit_function
    >>> fit = fit_function(np.array([1.0, 2.0, 3.0, 50.0]), np.ones(4))
    >>> round(fit["location"], 2)
    2.0
    """
    keep = w > 0
    z, w = z[keep], w[keep]
    additive = bool(np.isinf(bounds[0]) and np.isinf(bounds[1]))
    center = weighted_median(z, w) if additive else 0.0
    spread = data_scale(z, w) if additive else 1.0
    u = to_gnostic(z, bounds, center, spread)
    order = np.argsort(u, kind="stable")
    u, w = u[order], w[order]
    if scale != "auto":
        S = float(scale)
    elif kind in ("egdf", "qgdf"):
        S = fit_global_scale(u, w, kind)
    else:
        S = local_scale(u, w)
    centers, weights = compress(u, w, S)
    u0 = location(centers, weights, S, kind)
    return {
        "center": float(center),
        "spread": float(spread),
        "scale": S,
        "u": u,
        "w": w,
        "u0": u0,
        "location": float(from_gnostic(np.array(u0), bounds, center, spread)),
        "data": np.column_stack([centers, weights]),
    }


def fit_column(z, w, kind="egdf", scale="auto", bounds=(-np.inf, np.inf)):
    """Fit one gnostic distribution function and its marginal analysis to one column.

    Parameters
    ----------
    z : ndarray of shape (n,)
        Data (strictly inside finite ``bounds``).
    w : ndarray of shape (n,)
        Non-negative weights with a positive sum (frequency weights).
    kind : {"egdf", "eldf", "qgdf", "qldf"}, default="egdf"
        The function.
    scale : "auto" or float, default="auto"
        Gnostic scale ``S``.
    bounds : tuple of float, default=(-inf, inf)
        Data bounds ``(LB, UB)``; infinite for additive data.

    Returns
    -------
    dict
        What :func:`fit_function` returns, and ``egdf_scale``,
        ``is_homogeneous``, ``membership`` and ``tolerance`` (data units).

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._distribution import fit_column
    >>> z = np.r_[np.linspace(-1.0, 1.0, 41), 25.0]
    >>> fit = fit_column(z, np.ones(42))
    >>> abs(round(fit["location"], 2)), fit["is_homogeneous"]
    (0.0, False)
    """
    fit = fit_function(z, w, kind, scale, bounds)
    egdf = fit if kind == "egdf" else fit_function(z, w, "egdf", "auto", bounds)
    c_e, w_e = egdf["data"][:, 0], egdf["data"][:, 1]
    homogeneous = is_homogeneous(c_e, w_e, egdf["scale"])
    membership = tolerance = (np.nan, np.nan)
    if homogeneous:
        membership, tolerance = marginal_analysis(c_e, w_e, egdf["scale"], egdf["u0"])
        membership = from_gnostic(np.array(membership), bounds, fit["center"], fit["spread"])
        tolerance = from_gnostic(np.array(tolerance), bounds, fit["center"], fit["spread"])
    fit.update(
        egdf_scale=egdf["scale"],
        is_homogeneous=homogeneous,
        membership=tuple(float(b) for b in membership),
        tolerance=tuple(float(b) for b in tolerance),
    )
    return fit


class GnosticDistribution(BaseEstimator):
    """Gnostic distribution function of each column, with marginal analysis.

    Fits one of Kovanic & Humber's four gnostic distribution functions to
    each column of ``X`` -- estimating or quantifying, global or local --
    and analyses the column with it: the robust location ``Z0``, the
    homogeneity of the sample and, for a homogeneous sample, the membership
    and tolerance intervals of marginal analysis. The formulas, the way the
    scale is found and the analyses are described in
    :ref:`distributions`. Deterministic; evaluating at ``m`` points costs
    O(n·m) time and O(n + m) memory.

    Parameters
    ----------
    kind : {"egdf", "eldf", "qgdf", "qldf"}, default="egdf"
        The function: estimating global (robust, for homogeneous samples),
        estimating local (shows every cluster), quantifying global or
        quantifying local (outlier-sensitive counterparts).
    scale : "auto" or float, default="auto"
        Gnostic scale ``S`` in units of the column's MAD (additive data) or
        of ``ln z`` (bounded data). ``"auto"``: the global functions fit
        ``S`` to the empirical distribution function (least squares at up
        to 128 points); the local ones solve the gnostic scale equation.
    bounds : "auto" or array-like of shape (2,) or (n_features, 2), default="auto"
        Data bounds ``(LB, UB)``. ``"auto"``: the data are additive on the
        whole real line (``z = exp((Z - median) / MAD)``); given bounds
        (``-inf``/``inf`` allowed on one side) use the finite-support
        transformation ``z = (Z - LB) / (UB - Z)`` and every value must
        lie strictly inside them.

    Attributes
    ----------
    location_ : ndarray of shape (n_features,)
        The gnostic location ``Z0`` of each column: the point of the largest
        density (estimating kinds) or the median (quantifying kinds).
    scale_ : ndarray of shape (n_features,)
        The gnostic scale ``S`` of each column's function.
    egdf_scale_ : ndarray of shape (n_features,)
        The scale of the EGDF that the homogeneity test and marginal
        analysis use (``scale_`` when ``kind="egdf"``).
    bounds_ : ndarray of shape (n_features, 2)
        The data bounds ``(LB, UB)`` of each column (``(-inf, inf)`` for
        additive data).
    center_ : ndarray of shape (n_features,)
        Weighted median of each column (the origin of additive data; 0 with
        given bounds).
    spread_ : ndarray of shape (n_features,)
        Unit of additive data: the normal-consistent weighted MAD (1 with
        given bounds).
    is_homogeneous_ : ndarray of shape (n_features,), dtype=bool
        Whether each column is homogeneous: the density of its EGDF is
        non-negative with a single maximum.
    membership_interval_ : ndarray of shape (n_features, 2)
        ``(LSB, USB)``: the values a new datum may take without making the
        column inhomogeneous (NaN for an inhomogeneous column, ``±inf``
        when no value breaks homogeneity).
    tolerance_interval_ : ndarray of shape (n_features, 2)
        ``(Z0L, Z0U)``: where the location moves while a new datum moves
        through the membership interval (NaN for an inhomogeneous column).
    data_ : list of ndarray of shape (G_j, 2)
        The compressed gnostic-domain data and their weights of each column
        (what :meth:`cdf` and :meth:`pdf` evaluate).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit (only when ``X`` has string
        column names).

    See Also
    --------
    GnosticOutlierDetector : Outlier detection by marginal analysis.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk import GnosticDistribution
    >>> X = np.r_[np.linspace(9.0, 11.0, 41), 60.0].reshape(-1, 1)
    >>> dist = GnosticDistribution().fit(X)
    >>> dist.location_.round(2), bool(dist.is_homogeneous_[0])
    (array([10.]), False)
    >>> dist.cdf([[10.0]]).round(2)
    array([[0.48]])
    >>> GnosticDistribution().fit(X[:-1]).membership_interval_.round(1)
    array([[ 6.5, 13.5]])
    """

    _parameter_constraints = {
        "kind": [StrOptions(set(KINDS))],
        "scale": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "bounds": [StrOptions({"auto"}), "array-like"],
    }

    def __init__(self, *, kind="egdf", scale="auto", bounds="auto"):
        self.kind = kind
        self.scale = scale
        self.bounds = bounds

    def _column_bounds(self, n_features):
        if isinstance(self.bounds, str):
            return np.tile([-np.inf, np.inf], (n_features, 1))
        bounds = np.asarray(self.bounds, dtype=float)
        if bounds.shape == (2,):
            bounds = np.tile(bounds, (n_features, 1))
        if bounds.shape != (n_features, 2) or np.isnan(bounds).any() or not np.all(bounds[:, 0] < bounds[:, 1]):
            raise ValueError(
                f"bounds must be 'auto', a pair (LB, UB) with LB < UB or an array of shape "
                f"({n_features}, 2) of such pairs; got {self.bounds!r}."
            )
        return bounds

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Fit the distribution function of each column of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights: a weight of 2 counts the row twice.

        Returns
        -------
        self : GnosticDistribution
            The fitted estimator.
        """
        X = validate_data(self, X, dtype=np.float64)
        return self._fit_columns(X, fit_sample_weight(sample_weight, X))

    def _fit_columns(self, X, w):
        """Fit validated ``X`` with weights ``w`` (what ``fit`` does after validation)."""
        bounds = self._column_bounds(X.shape[1])
        fits = []
        for j in range(X.shape[1]):
            lb, ub = bounds[j]
            inside = w > 0
            if not np.all((X[inside, j] > lb) & (X[inside, j] < ub)):
                raise ValueError(f"Values of column {j} of X must lie strictly inside bounds ({lb}, {ub}).")
            fits.append(fit_column(X[:, j], w, self.kind, self.scale, (lb, ub)))
        self.bounds_ = bounds
        self.center_ = np.array([f["center"] for f in fits])
        self.spread_ = np.array([f["spread"] for f in fits])
        self.scale_ = np.array([f["scale"] for f in fits])
        self.egdf_scale_ = np.array([f["egdf_scale"] for f in fits])
        self.location_ = np.array([f["location"] for f in fits])
        self.is_homogeneous_ = np.array([f["is_homogeneous"] for f in fits], dtype=bool)
        self.membership_interval_ = np.array([f["membership"] for f in fits], dtype=float)
        self.tolerance_interval_ = np.array([f["tolerance"] for f in fits], dtype=float)
        self.data_ = [f["data"] for f in fits]
        return self

    def _evaluate(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        cdf, pdf = np.empty_like(X), np.empty_like(X)
        for j in range(X.shape[1]):
            cdf[:, j], pdf[:, j] = self._column_functions(j, X[:, j])
        return cdf, pdf

    def _column_functions(self, j, z):
        """The distribution function and density of column ``j`` at the values ``z``."""
        bounds = tuple(self.bounds_[j])
        u = to_gnostic(z, bounds, self.center_[j], self.spread_[j])
        F, p = distribution(u, self.data_[j][:, 0], self.data_[j][:, 1], self.scale_[j], self.kind)
        with np.errstate(invalid="ignore"):
            return F, p * jacobian(z, bounds, self.spread_[j])

    def cdf(self, X):
        """The fitted distribution function of each column at ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            Values in ``[0, 1]``.
        """
        return self._evaluate(X)[0]

    def pdf(self, X):
        """The density (derivative of :meth:`cdf`) of each column at ``X``.

        The EGDF of an inhomogeneous column can decrease somewhere, so its
        density can be negative there (that is what makes the column
        inhomogeneous); the other kinds are increasing for every sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            Densities with respect to the data (0 outside given bounds).
        """
        return self._evaluate(X)[1]

    def score_samples(self, X):
        """Log density of each row, the columns taken as independent.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points.

        Returns
        -------
        ndarray of shape (n_samples,)
            Sum over columns of ``log pdf`` (``-inf`` where a density is not
            positive).
        """
        pdf = self.pdf(X)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sum(np.log(np.where(pdf > 0, pdf, 0.0)), axis=1)

    def score(self, X, y=None):
        """Total log-likelihood of ``X`` under the fitted model.

        The sum of :meth:`score_samples`, as ``KernelDensity.score``: the
        higher the better, so ``GridSearchCV`` over a distribution needs no
        ``scoring``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points.
        y : None
            Ignored.

        Returns
        -------
        float
            Total log-likelihood (``-inf`` when a row has a density that is
            not positive).

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.model_selection import GridSearchCV
        >>> from mgsk import GnosticDistribution
        >>> X = np.random.default_rng(0).normal(size=(200, 1))
        >>> round(GnosticDistribution().fit(X).score(X), 1)
        -279.5
        >>> search = GridSearchCV(GnosticDistribution(), {"kind": ["egdf", "eldf"]}).fit(X)
        >>> search.best_params_, round(float(search.best_score_), 2)
        ({'kind': 'eldf'}, -56.32)
        """
        return float(np.sum(self.score_samples(X)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


def plot_distribution(estimator, X=None, feature=0, ax=None):
    """Plot a fitted column's distribution function, its density and the data.

    A pure function for reports and autologging: matplotlib is imported
    here, on first use.

    Parameters
    ----------
    estimator : GnosticDistribution
        A fitted estimator.
    X : array-like of shape (n_samples, n_features), default=None
        Data to draw as a rug and an empirical distribution function (the
        training data, typically).
    feature : int, default=0
        The column to plot.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk import GnosticDistribution
    >>> from mgsk._distribution import plot_distribution
    >>> X = np.random.default_rng(0).normal(size=(50, 1))
    >>> fig = plot_distribution(GnosticDistribution().fit(X), X)
    >>> [a.get_ylabel() for a in fig.axes]
    ['distribution function', 'density']
    """
    import matplotlib.pyplot as plt

    check_is_fitted(estimator)
    data = None if X is None else np.asarray(X, dtype=float)[:, feature]
    lb, ub = estimator.bounds_[feature]
    z0, spread = estimator.location_[feature], estimator.spread_[feature]
    lo = np.nanmin([np.min(data) if data is not None else z0 - 4 * spread, z0 - 4 * spread])
    hi = np.nanmax([np.max(data) if data is not None else z0 + 4 * spread, z0 + 4 * spread])
    pad = 0.05 * (hi - lo)
    grid = np.linspace(max(lo - pad, lb), min(hi + pad, ub), 801)[1:-1]
    cdf, pdf = estimator._column_functions(feature, grid)
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    else:
        fig = ax.figure
    name = estimator.kind.upper()
    ax.plot(grid, cdf, color="tab:blue", label=name)
    if data is not None:
        order = np.sort(data)
        ax.step(order, (np.arange(order.shape[0]) + 1) / order.shape[0], where="post", color="0.5", lw=0.8, label="EDF")
        ax.plot(data, np.zeros_like(data), "|", color="k", ms=10)
    ax.axvline(z0, color="tab:green", ls="--", lw=1, label="Z0")
    lsb, usb = estimator.membership_interval_[feature]
    if np.isfinite(lsb) and np.isfinite(usb):
        ax.axvspan(lsb, usb, color="tab:green", alpha=0.08, label="membership")
    names = getattr(estimator, "feature_names_in_", None)
    label = f"feature {feature}" if names is None else str(names[feature])
    ax.set(xlabel=label, ylabel="distribution function", ylim=(-0.02, 1.02))
    density = ax.twinx()
    density.plot(grid, pdf, color="tab:orange", label="density")
    density.set_ylabel("density")
    lines = ax.get_legend_handles_labels()
    more = density.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=8)
    ax.set_title(f"{name}, S = {estimator.scale_[feature]:.3g}, homogeneous: {bool(estimator.is_homogeneous_[feature])}")
    return fig
