"""The gnostic estimators (the same classes as at the top level of :mod:`mgsk`)."""

from ._linear import LinearRegressor, PolynomialRegressor
from ._logistic import LogisticRegressor

__all__ = ["LinearRegressor", "PolynomialRegressor", "LogisticRegressor"]
