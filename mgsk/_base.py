"""What every gnostic estimator shares: parameters, aliases, diagnostics."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import PolynomialFeatures
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight

from ._gnostic import characteristics

#: Largest magnitude of a design value: sums of squares of larger values
#: overflow float64 (1e308).
MAX_DESIGN_VALUE = 1e150

#: Rows whose final |x| exceeds this are flagged in ``outliers_``
#: (filtering weight below sech 3 ≈ 0.1).
OUTLIER_X = 3.0

COMMON_CONSTRAINTS = {
    "degree": [Interval(Integral, 1, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left")],
    "scale": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
    "fit_intercept": ["boolean"],
    "gnostic_characteristics": ["boolean"],
    "verbose": ["verbose"],
}


def fit_sample_weight(sample_weight, X):
    """``sample_weight`` as float64 weights for the rows of ``X``: non-negative, positive sum."""
    sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    if not sample_weight.sum() > 0:
        raise ValueError("sample_weight must have a positive sum.")
    return sample_weight


class History(list):
    """Per-iteration records (a list of dicts) that plot as their R-Entropy.

    ``np.asarray(history)`` (and so ``matplotlib.pyplot.plot(history)``, as
    the MLflow guide does with ``model._history``) gives the ``re`` of each
    iteration.
    """

    def __array__(self, dtype=None, copy=None):
        return np.array([record["re"] for record in self], dtype=dtype)


class GnosticMixin:
    """Aliases of the MLflow guide and the shared fitting helpers."""

    @property
    def re(self):
        """R-Entropy of the fit (alias of ``re_``)."""
        return self.re_

    @property
    def weights(self):
        """Final gnostic weights of the training rows (alias of ``weights_``)."""
        return self.weights_

    @property
    def _history(self):
        """Per-iteration records (``history_``); plots as the ``re`` trajectory."""
        return History(self.history_)

    def _polynomial_design(self, X, fit):
        """``X`` expanded to ``degree`` (no bias column); ``X`` itself at 1."""
        if self.degree == 1:
            if fit:
                self.polynomial_features_ = None
            return X
        if fit:
            self.polynomial_features_ = PolynomialFeatures(degree=self.degree, include_bias=False).fit(X)
        return self.polynomial_features_.transform(X)

    def _check_design(self, Z):
        """Refuse a design whose products overflow, before any linear algebra runs."""
        top = max(float(Z.max()), -float(Z.min())) if Z.size else 0.0  # no |Z| copy
        if not top <= MAX_DESIGN_VALUE:
            what = "the values of X" if self.degree == 1 else f"the degree-{self.degree} polynomial features of X"
            raise ValueError(
                f"{type(self).__name__} cannot fit: {what} reach {top:.3g} in absolute value, and the "
                f"sums of their squares overflow float64 (values must stay below {MAX_DESIGN_VALUE:.0e}). "
                "Rescale X, for example with sklearn.preprocessing.StandardScaler."
            )
        return Z

    def _report(self, record):
        if self.verbose:
            print(
                f"[{type(self).__name__}] iter {record['iteration']:3d}  "
                f"re={record['re']:.6g}  loss={record['loss']:.6g}  S={record['scale']:.4g}"
            )

    def _characteristics(self, x):
        return characteristics(x)

    def _store_diagnostics(self, x, n_iter, converged):
        """Set the attributes every gnostic fit has, and warn when unconverged."""
        self.n_iter_ = int(n_iter)
        self.converged_ = bool(converged)
        self.outliers_ = np.abs(x) > OUTLIER_X
        if self.gnostic_characteristics:
            self.characteristics_ = self._characteristics(x)
        elif hasattr(self, "characteristics_"):
            del self.characteristics_
        if not converged:
            warnings.warn(
                f"{type(self).__name__} did not converge in max_iter={self.max_iter} "
                f"iterations (tol={self.tol}); increase max_iter or tol.",
                ConvergenceWarning,
            )
