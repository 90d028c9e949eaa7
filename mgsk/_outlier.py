"""Outlier detection by gnostic marginal analysis of each column."""

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.optimize import brentq
from scipy.stats import chi2
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context
from sklearn.covariance import MinCovDet
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import fit_sample_weight
from ._distribution import fit_column
from ._distribution_math import distribution, from_gnostic
from ._marginal import main_cluster

#: Rows (total weight) per feature needed for the robust-distance analysis.
MIN_ROWS_PER_FEATURE = 5
#: Half-width (units of the column's MAD) that stands in for an infinite membership bound.
UNBOUNDED_REACH = 20.0
#: Tail probability on each side, summed over the columns, of a clean value outside its
#: column's decision interval (Bonferroni): a clean sample gets a false alarm once in 10 at most.
STRICT_TAIL = 0.05
#: Ten times more lenient: the cut that concentrates each core before the strict decision.
LENIENT_TAIL = 0.5
#: Familywise level of the squared robust distances' simultaneous tests: a row is an outlier
#: when the chance that the largest of N clean distances reaches its distance is below it, both
#: under chi2 with the covariance's rank as degrees of freedom (Sidak over the N rows) and under
#: the distances' own EGDF (the cut at LEVEL / N; heavy-tailed rows make chi2's tail too light).
#: scikit-learn's check_outliers_train needs make_blobs(300, random_state=0) flagged (chi2:
#: 0.057 there); the benchmark's clean five-column row with squared distance 20.7 among 500
#: must not be (chi2: 0.37).
DISTANCE_LEVEL = 0.1


def homogeneous_core(z, w, max_iter=20):
    """Marginal analysis of the largest homogeneous cluster of one column.

    While the EGDF of the sample is inhomogeneous, the data outside its
    main cluster (:func:`mgsk._marginal.main_cluster`) are set aside and
    the EGDF is fitted again to the rest; the membership interval of the
    first homogeneous sample is returned.

    Parameters
    ----------
    z : ndarray of shape (n,)
        One column.
    w : ndarray of shape (n,)
        Frequency weights with a positive sum.
    max_iter : int, default=20
        Most refits.

    Returns
    -------
    fit : dict
        :func:`mgsk._distribution.fit_column` of the core.
    core : ndarray of shape (n,), dtype=bool
        The rows of the core.
    n_iter : int
        Fits run.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._outlier import homogeneous_core
    >>> z = np.r_[np.linspace(-1.0, 1.0, 41), 20.0, 25.0]
    >>> fit, core, n_iter = homogeneous_core(z, np.ones(43))
    >>> int(core.sum()), fit["is_homogeneous"]
    (41, True)
    """
    core = w > 0
    for n_iter in range(1, max_iter + 1):
        fit = fit_column(z[core], w[core])
        if fit["is_homogeneous"]:
            break
        centers = fit["data"][:, 0]
        weights = fit["data"][:, 1]
        bounds = (-np.inf, np.inf)
        lo, hi = from_gnostic(np.array(main_cluster(centers, weights, fit["egdf_scale"])), bounds, fit["center"], fit["spread"])
        shrunk = core & (z >= lo) & (z <= hi)
        if shrunk.sum() == core.sum() or not shrunk.any():
            break
        core = shrunk
    return fit, core, n_iter


def probable_interval(fit, alpha):
    """The values between the ``alpha`` and ``1 - alpha`` quantiles of a fitted EGDF.

    Parameters
    ----------
    fit : dict
        :func:`mgsk._distribution.fit_column` of additive data with
        ``kind="egdf"``.
    alpha : float
        Tail probability on each side, in ``(0, 0.5)``.

    Returns
    -------
    tuple of float
        ``(lo, hi)`` in data units.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._distribution import fit_column
    >>> from mgsk._outlier import probable_interval
    >>> fit = fit_column(np.linspace(-1.0, 1.0, 41), np.ones(41))
    >>> lo, hi = probable_interval(fit, 0.25)
    >>> bool(-1.0 < lo < 0.0 < hi < 1.0)
    True
    """
    centers, weights = fit["data"][:, 0], fit["data"][:, 1]
    S = fit["egdf_scale"]

    def cdf(v):
        return distribution(np.array([v]), centers, weights, S, "egdf")[0][0]

    # The weighted median is u = 0, where the EGDF is near 1/2: bracket outwards from it.
    ends = []
    for target, sign in ((alpha, -1.0), (1.0 - alpha, 1.0)):
        outer = sign * S
        while sign * (cdf(outer) - target) < 0 and abs(outer) < 1e6 * S:
            outer *= 2.0
        ends.append(brentq(lambda v: cdf(v) - target, min(0.0, outer), max(0.0, outer), xtol=1e-10 * S))
    return tuple(from_gnostic(np.array(ends), (-np.inf, np.inf), fit["center"], fit["spread"]))


def decision_core(z, w, tail, max_iter=20, final_tail=None):
    """Concentrate one column on the data inside its own decision interval.

    The homogeneous core (:func:`homogeneous_core`) gives a decision
    interval: its membership interval cut to its probable interval at
    ``alpha = tail / N`` (``N`` the core's weight). The data outside are
    set aside and the analysis repeats on the rest, until no datum moves
    (a fixed point: clean data stop at once). With ``final_tail`` the
    interval returned is cut at that tail probability instead, from the
    same final core: the core is estimated leniently, the decision is
    strict (as reweighted robust estimators do).

    Parameters
    ----------
    z : ndarray of shape (n,)
        One column.
    w : ndarray of shape (n,)
        Frequency weights with a positive sum.
    tail : float
        Tail probability times the core's weight.
    max_iter : int, default=20
        Most concentration steps (and EGDF refits per homogeneous core).
    final_tail : float, default=None
        The tail of the decision interval returned (``tail`` when None).

    Returns
    -------
    fit : dict
        :func:`mgsk._distribution.fit_column` of the final core.
    core : ndarray of shape (n,), dtype=bool
        The rows of the final core.
    n_iter : int
        EGDF fits run.
    interval : tuple of float
        The decision interval.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._outlier import decision_core
    >>> z = np.r_[np.linspace(-1.0, 1.0, 41), 3.0]
    >>> fit, core, n_iter, (lo, hi) = decision_core(z, np.ones(42), 0.5)
    >>> bool(1.0 < hi < 3.0), int(core.sum())
    (True, 41)
    """
    active = w > 0
    total_iter = 0
    for _ in range(max_iter):
        fit, core, n_iter = homogeneous_core(z, np.where(active, w, 0.0), max_iter)
        total_iter += n_iter
        lo, hi = probable_interval(fit, tail / w[core].sum())
        member_lo, member_hi = fit["membership"]
        interval = (float(np.fmax(lo, member_lo)), float(np.fmin(hi, member_hi)))
        inside = (w > 0) & (z >= interval[0]) & (z <= interval[1])
        if np.array_equal(inside, active) or not inside.any():
            break
        active = inside
    if final_tail is not None:
        lo, hi = probable_interval(fit, final_tail / w[core].sum())
        interval = (float(np.fmax(lo, member_lo)), float(np.fmin(hi, member_hi)))
    return fit, core, total_iter, interval


def distance_bounds(df, n_rows, level=DISTANCE_LEVEL):
    """Centre and decision bound of squared robust distances (a simultaneous test).

    Under a normal model the squared distances of the rows to a consistent
    robust centre and covariance follow the chi-squared distribution with
    ``df`` degrees of freedom. A row is an outlier when the probability that
    the largest of ``n_rows`` such distances is at least its own is below
    ``level`` (Sidak's correction): the bound is the chi-squared quantile at
    the per-row tail ``1 - (1 - level) ** (1 / n_rows)``.

    Parameters
    ----------
    df : int
        Degrees of freedom: the rank of the covariance (at least 1 is used).
    n_rows : float
        Number of rows tested (total frequency weight; at least 1 is used).
    level : float, default=DISTANCE_LEVEL
        Familywise level: the chance that a clean sample has a false alarm.

    Returns
    -------
    tuple of float
        ``(centre, bound)``: the chi-squared median and the decision bound.

    Examples
    --------
    >>> from mgsk._outlier import distance_bounds
    >>> centre, bound = distance_bounds(2, 300)
    >>> round(centre, 3), round(bound, 2)
    (1.386, 15.91)
    """
    df = max(int(df), 1)
    per_row = -np.expm1(np.log1p(-level) / max(float(n_rows), 1.0))
    return float(chi2.median(df)), float(chi2.isf(per_row, df))


class GnosticOutlierDetector(OutlierMixin, BaseEstimator):
    """Unsupervised outlier detection by gnostic marginal analysis.

    Each column is analysed on its own: the EGDF of the column is fitted;
    while it is inhomogeneous (its density has more than one maximum or is
    negative somewhere) the data outside the main cluster are set aside
    and the EGDF is fitted again; the membership interval of the resulting
    homogeneous core -- the values a new datum may take without making the
    core inhomogeneous -- decides. The data outside the membership
    interval, cut to the values whose EGDF tail probability under the core
    is at least ``1 / (2 N m)`` on each side (``N`` rows in the core, ``m``
    columns), are set aside and the analysis repeats on the rest until no
    datum moves. A row is an outlier when a value lies outside the decision
    interval of its column: the same cut of the final core at
    ``1 / (20 N m)``. With more than one column (and at least 5 rows per
    column) the squared robust distances of the rows (Minimum Covariance
    Determinant, deterministic) are tested simultaneously: a row is an
    outlier too when the chance that the largest of ``N`` clean distances
    reaches its distance is below 0.1 both under the chi-squared
    distribution (Sidak's correction) and under the distances' own EGDF,
    so outliers that no single column shows are found. See
    :ref:`distributions` for the theory.

    Parameters
    ----------
    contamination : "auto" or float, default="auto"
        ``"auto"``: the membership intervals decide, no fraction is needed.
        A float in ``(0, 0.5]``: that fraction of the training rows (the
        lowest :meth:`score_samples`) are outliers.
    max_iter : int, default=20
        Most EGDF refits per column while looking for a homogeneous core.

    Attributes
    ----------
    decision_interval_ : ndarray of shape (n_features, 2)
        The values of each column that count as inliers.
    membership_interval_ : ndarray of shape (n_features, 2)
        ``(LSB, USB)`` of each column's homogeneous core (``±inf`` when no
        value breaks its homogeneity).
    tolerance_interval_ : ndarray of shape (n_features, 2)
        ``(Z0L, Z0U)`` of each column's core.
    location_ : ndarray of shape (n_features,)
        Gnostic location ``Z0`` of each column's core.
    scale_ : ndarray of shape (n_features,)
        Scale ``S`` of each core's EGDF.
    spread_ : ndarray of shape (n_features,)
        Unit of each column (weighted MAD of its core).
    core_fraction_ : ndarray of shape (n_features,)
        Weight fraction of the training rows in each column's core.
    n_iter_ : ndarray of shape (n_features,)
        EGDF fits run for each column.
    covariance_ : ndarray of shape (n_features, n_features) or None
        Robust (MCD) covariance of the rows; None with one column or too few
        rows, when no distances are analysed.
    distance_center_ : ndarray of shape (n_features,)
        Robust (MCD) centre of the rows (when ``covariance_`` is set).
    precision_ : ndarray of shape (n_features, n_features)
        Pseudo-inverse of ``covariance_`` (when it is set).
    distance_interval_ : ndarray of shape (2,)
        Centre (chi-squared median) and decision bound of the squared
        robust distances (when ``covariance_`` is set): the larger of the
        chi-squared and the gnostic bound.
    offset_ : float
        ``decision_function = score_samples - offset_``: 0 with
        ``contamination="auto"``, else the ``contamination`` quantile of the
        training scores.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit (only when ``X`` has string
        column names).

    See Also
    --------
    GnosticDistribution : The distribution functions and marginal analysis.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk import GnosticOutlierDetector
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 1))
    >>> X[:5] += 12.0
    >>> detector = GnosticOutlierDetector().fit(X)
    >>> np.flatnonzero(detector.predict(X) == -1)
    array([0, 1, 2, 3, 4])
    >>> detector.decision_interval_.round(2)
    array([[-4.54,  4.52]])
    """

    _parameter_constraints = {
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, contamination="auto", max_iter=20):
        self.contamination = contamination
        self.max_iter = max_iter

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Find the homogeneous core and membership interval of each column.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights: a weight of 2 counts the row twice.

        Returns
        -------
        self : GnosticOutlierDetector
            The fitted detector.
        """
        X = validate_data(self, X, dtype=np.float64)
        w = fit_sample_weight(sample_weight, X)
        n_features = X.shape[1]
        self.membership_interval_ = np.empty((n_features, 2))
        self.tolerance_interval_ = np.empty((n_features, 2))
        self.location_ = np.empty(n_features)
        self.scale_ = np.empty(n_features)
        self.spread_ = np.empty(n_features)
        self.core_fraction_ = np.empty(n_features)
        self.n_iter_ = np.empty(n_features, dtype=np.int64)
        self.decision_interval_ = np.empty((n_features, 2))
        for j in range(n_features):
            fit, core, n_iter, interval = decision_core(
                X[:, j], w, LENIENT_TAIL / n_features, self.max_iter, final_tail=STRICT_TAIL / n_features
            )
            self.decision_interval_[j] = interval
            self.membership_interval_[j] = fit["membership"]
            self.tolerance_interval_[j] = fit["tolerance"]
            self.location_[j] = fit["location"]
            self.scale_[j] = fit["egdf_scale"]
            self.spread_[j] = fit["spread"]
            self.core_fraction_[j] = w[core].sum() / w.sum()
            self.n_iter_[j] = n_iter
        self.covariance_ = None
        if n_features > 1 and w.sum() >= MIN_ROWS_PER_FEATURE * n_features:
            self._fit_distances(X, w)
        if self.contamination == "auto":
            self.offset_ = 0.0
        else:
            self.offset_ = _weighted_quantile(self._scores(X), w, self.contamination)
        return self

    def _fit_distances(self, X, w):
        """The simultaneous tests of the squared robust (MCD) distances of the rows."""
        # MCD takes no weights: integral weights repeat rows, others only select them.
        sample = X[np.repeat(np.arange(X.shape[0]), np.rint(w).astype(np.int64))] if _integral(w) else X[w > 0]
        # Sorted rows: the same data in any order (or as repeated rows) give the same MCD.
        sample = sample[np.lexsort(sample.T[::-1])]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                warnings.simplefilter("ignore", UserWarning)
                mcd = MinCovDet(random_state=0).fit(sample)
        except ValueError:
            return
        precision = np.linalg.pinv(mcd.covariance_)
        self.covariance_ = mcd.covariance_
        self.distance_center_ = mcd.location_
        self.precision_ = precision
        centre, bound = distance_bounds(np.linalg.matrix_rank(mcd.covariance_), w.sum())
        t = self._distances(X)
        *_, (_, gnostic_bound) = decision_core(t, w, LENIENT_TAIL, self.max_iter, final_tail=DISTANCE_LEVEL)
        self.distance_interval_ = np.array([centre, np.fmax(bound, gnostic_bound)])

    def _distances(self, X):
        diff = X - self.distance_center_
        d2 = np.einsum("ij,jk,ik->i", diff, self.precision_, diff)
        return d2

    def _finite_intervals(self):
        lo, hi = self.decision_interval_.T
        reach = UNBOUNDED_REACH * self.spread_
        lo = np.where(np.isfinite(lo), lo, self.location_ - reach)
        hi = np.where(np.isfinite(hi), hi, self.location_ + reach)
        # An inhomogeneous core (max_iter reached) has no interval: its location alone.
        lo = np.where(np.isnan(lo), self.location_ - reach, lo)
        hi = np.where(np.isnan(hi), self.location_ + reach, hi)
        return lo, hi

    def score_samples(self, X):
        """Margin of each row inside the membership intervals (lower is more abnormal).

        For each column, the distance of the value to the nearer bound of
        the membership interval in units of the interval's half-width:
        1 at its centre, 0 on a bound, negative outside. A row scores its
        smallest margin over the columns.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        ndarray of shape (n_samples,)
            Scores.
        """
        check_is_fitted(self)
        return self._scores(validate_data(self, X, dtype=np.float64, reset=False))

    def _scores(self, X):
        lo, hi = self._finite_intervals()
        half = np.maximum(0.5 * (hi - lo), np.finfo(float).tiny)
        score = (np.minimum(X - lo, hi - X) / half).min(axis=1)
        if self.covariance_ is not None:
            t0, t_hi = self.distance_interval_
            reach = max(t_hi - t0, np.finfo(float).tiny)
            score = np.minimum(score, (t_hi - self._distances(X)) / reach)
        return score

    def decision_function(self, X):
        """``score_samples(X) - offset_``: negative for outliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        ndarray of shape (n_samples,)
            Decision values.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """-1 for outliers, 1 for inliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to classify.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels in ``{-1, 1}``.
        """
        return np.where(self.decision_function(X) < 0, -1, 1)


def _integral(w):
    return bool(np.all(w == np.rint(w)) and w.sum() <= 1e6)


def _weighted_quantile(values, weights, q):
    """The ``q`` quantile of ``values`` (``np.percentile`` for equal weights)."""
    if np.all(weights == weights[0]):
        return float(np.percentile(values, 100.0 * q))
    order = np.argsort(values, kind="stable")
    cw = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cw, q * cw[-1])])
