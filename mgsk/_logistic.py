"""Robust gnostic logistic regression (binary and multinomial)."""

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import COMMON_CONSTRAINTS, GnosticMixin, fit_sample_weight
from ._gnostic import residual_entropy_values
from ._irls import leverage_weights
from ._newton import BinaryProblem, Problem, log_softmax
from ._rows import single_blas_thread, start_rows


#: Relative step below which the observed-Jacobian Newton takes over. Over
#: bench_estimators' classification data (clean, flipped labels, bad
#: leverage points) 0.1 takes 221 steps where 1e-2 took 246 (at most 9
#: instead of 17 a fit) and reaches the same fixed point (within 3e-9);
#: farther out, scoring steps keep away from the roots a redescending
#: weight creates.
NEWTON_SWITCH = 0.1


def classification_entropy_values(log_p_true):
    """Per-row R-Entropy of a classifier: ``sinh x tanh x`` at ``x = ln p``.

    ``p`` is the predicted probability of the true class, so ``R = p / 1``
    is the probability against certainty (``S = 2``).
    """
    return residual_entropy_values(log_p_true, 1.0)


def newton_fit(problem, max_iter, tol, fit_intercept, report):
    """The classifier's iteration: damped Newton steps with gnostic reweighting.

    Parameters
    ----------
    problem : mgsk._newton.Problem
        The fit, on rows held anywhere.
    max_iter : int
        Maximum number of steps.
    tol : float
        Relative tolerance of the fixed point on the coefficients.
    fit_intercept : bool
        Whether the last row of the coefficients holds intercepts.
    report : callable
        Called with each iteration's record.

    Returns
    -------
    tuple
        ``(problem, state, history, n_iter, converged)``.
    """
    # Every product of a step is a short vector sum or a small matrix: more
    # BLAS threads only spin, and on a loaded machine they wait for a core
    # (a fit of 1e5 x 10 with flipped labels took 2.9 s instead of 0.6 s).
    with single_blas_thread():
        return _newton_loop(problem, max_iter, tol, fit_intercept, report)


def _newton_loop(problem, max_iter, tol, fit_intercept, report):
    """The steps of :func:`newton_fit` (same arguments and result)."""
    state = problem.state(problem.probabilities(problem.initial_theta()), None)
    history = []
    converged = False
    n_iter = 0
    near = False
    for n_iter in range(1, max_iter + 1):
        probs = problem.step(state, near)
        new_theta = probs["theta"]
        if not problem.reference and fit_intercept:
            # A common shift of all intercepts leaves the probabilities as they are.
            new_theta = new_theta.copy()
            new_theta[-1] -= new_theta[-1].mean()
            probs = {**probs, "theta": new_theta, "state": None}  # the cached state has the old theta
        step = float(np.linalg.norm(new_theta - state["theta"]))
        near = step <= NEWTON_SWITCH * float(np.linalg.norm(new_theta))
        state = problem.state(probs, state)
        re, loss = problem.diagnostics(state)
        record = {"iteration": n_iter, "re": re, "loss": loss, "scale": state["S"], "step": step}
        history.append(record)
        report(record)
        if step <= tol * float(np.linalg.norm(new_theta)):
            converged = True
            break
    return problem, state, history, n_iter, converged


def store_fit(estimator, problem, state, history, n_iter, converged):
    """Set the fitted attributes of ``estimator`` from the result of :func:`newton_fit`."""
    theta = state["theta"]
    weights, x = problem.final(state)
    if estimator.fit_intercept:
        estimator.coef_, estimator.intercept_ = theta[:-1].T.copy(), theta[-1].copy()
    else:
        estimator.coef_, estimator.intercept_ = theta.T.copy(), np.zeros(theta.shape[1])
    estimator.scale_ = float(state["S"])
    estimator.weights_ = weights
    estimator.history_ = history
    estimator.re_ = history[-1]["re"]  # max_iter >= 1: there is a record
    estimator._store_diagnostics(x, n_iter, converged)


class LogisticRegressor(GnosticMixin, ClassifierMixin, BaseEstimator):
    """Robust logistic regression with gnostic weights on a Newton IRLS.

    Binary problems fit one logit, multiclass problems a multinomial
    (softmax) model. Each label gets the gnostic weight of its Pearson
    residual: a label the model finds very improbable (a flipped label)
    loses its weight, so it no longer drags the decision boundary. The
    weighted score is corrected to be Fisher-consistent, so down-weighting
    does not make the probabilities over-confident; each iteration is a
    damped Newton-type step on it. See :mod:`mgsk._newton` for the
    mathematics.
    Any label type works (strings, ``{-1, 1}``, ``1..K``).

    Parameters
    ----------
    degree : int, default=1
        Degree of the polynomial in the features.
    max_iter : int, default=100
        Maximum number of Newton steps (each with new gnostic weights).
    tol : float, default=1e-6
        The iteration stops when the relative change of the coefficients
        falls below ``tol``.
    scale : "auto" or float, default="auto"
        Gnostic scale ``S``: ``"auto"`` solves the scale equation at every
        iteration; a positive number fixes it.
    fit_intercept : bool, default=True
        Whether to fit intercepts (never penalised).
    C : float, default=1.0
        Inverse strength of the L2 penalty, as in
        :class:`sklearn.linear_model.LogisticRegression`; it keeps the
        coefficients finite on separable data.
    leverage : bool, default=True
        Whether rows far from the bulk of ``X`` get Mallows-type leverage
        weights (the regressors' robust distances, :attr:`leverage_weights_`)
        that multiply their whole contribution to the estimating equation.
        A row with an extreme feature value pulls the fit toward itself, so
        its own Pearson residual looks small; its leverage weight does not
        depend on the fit.
    gnostic_characteristics : bool, default=False
        Whether to store per-row characteristics in ``characteristics_``.
    verbose : int, default=0
        Print one line per iteration when positive.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    coef_ : ndarray of shape (1, n_output_features) or (n_classes, n_output_features)
        Coefficients; one row for a binary problem (the logit of
        ``classes_[1]``).
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Intercepts.
    n_iter_ : int
        Number of Newton steps run.
    converged_ : bool
        Whether the coefficients reached a fixed point within ``tol``.
    re_ : float
        R-Entropy of the fit: the weighted mean of ``sinh x tanh x`` with
        ``x = ln p`` and ``p`` the predicted probability of each row's
        label. It compares models on the same data (a model that gives
        every label a higher probability has a smaller ``re``); it grows
        exponentially as a probability goes to 0.
    scale_ : float
        The gnostic scale ``S`` of the final Pearson residuals.
    weights_ : ndarray of shape (n_samples,)
        Final gnostic filtering weights of the training rows, in ``[0, 1]``.
    leverage_weights_ : ndarray of shape (n_samples,)
        Mallows leverage weights of the training rows in ``(0, 1]`` (all
        ones with ``leverage=False``).
    outliers_ : ndarray of shape (n_samples,), dtype=bool
        Rows whose final gnostic log-ratio exceeds 3 (weight below ~0.1).
    history_ : list of dict
        One record per iteration, with keys ``iteration``, ``re``, ``loss``
        (the log-loss of the labels weighted by sample and gnostic weights),
        ``scale`` and ``step``.
    characteristics_ : dict of str to ndarray
        Only with ``gnostic_characteristics=True``: per-row characteristics
        of the Pearson residuals.
    polynomial_features_ : PolynomialFeatures or None
        The fitted feature expansion when ``degree > 1``, else None.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column
        names.

    See Also
    --------
    sklearn.linear_model.LogisticRegression : The non-robust model.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk import LogisticRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 2))
    >>> y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    >>> clf = LogisticRegressor().fit(X, y)
    >>> clf.classes_
    array(['no', 'yes'], dtype='<U3')
    >>> clf.predict_proba(X[:2]).shape, float(clf.score(X, y)) > 0.95
    ((2, 2), True)
    """

    _parameter_constraints = {
        **COMMON_CONSTRAINTS,
        "C": [Interval(Real, 0, None, closed="neither")],
        "leverage": ["boolean"],
    }

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

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model by Newton steps with gnostic reweighting.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Labels of any type.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; a weight of 2 acts as the row repeated.

        Returns
        -------
        self : LogisticRegressor
            The fitted estimator.
        """
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        sample_weight = fit_sample_weight(sample_weight, X)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(
                "LogisticRegressor needs samples of at least 2 classes in the data, "
                f"but the data contains only one class: {self.classes_.tolist()[0]!r}."
            )
        with np.errstate(over="ignore"):
            design = self._check_design(self._design(X, fit=True))
        # Location and scatter from a bounded, evenly spaced sample; weights for all rows.
        with single_blas_thread():
            lev = leverage_weights(X, sample_weight, start_rows(X.shape[0])) if self.leverage else np.ones(X.shape[0])
        self.leverage_weights_ = lev
        problem = (BinaryProblem if n_classes == 2 else Problem)(
            design,
            y_idx,
            n_classes,
            sample_weight * self.leverage_weights_,
            1.0 / self.C,
            self.fit_intercept,
            self.scale,
            diagnostic_weight=sample_weight,
        )
        store_fit(self, *newton_fit(problem, self.max_iter, self.tol, self.fit_intercept, self._report))
        return self

    def _design(self, X, fit):
        Z = self._polynomial_design(X, fit)
        return np.hstack([Z, np.ones((Z.shape[0], 1))]) if self.fit_intercept else Z

    def decision_function(self, X):
        """Logits of the samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_classes)
            For a binary problem the logit of ``classes_[1]`` (positive
            means ``classes_[1]``); otherwise one logit per class.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        scores = self._polynomial_design(X, fit=False) @ self.coef_.T + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_``; rows sum to 1.
        """
        return np.exp(self.predict_log_proba(X))

    def predict_log_proba(self, X):
        """Logarithms of the class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Log-probabilities in the order of ``classes_``.
        """
        scores = self.decision_function(X)
        binary = scores.ndim == 1
        return log_softmax(scores.reshape(-1, 1) if binary else scores, reference=binary)

    def predict(self, X):
        """Most probable class of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        scores = self.decision_function(X)
        idx = (scores > 0).astype(int) if scores.ndim == 1 else np.argmax(scores, axis=1)
        return self.classes_[idx]
