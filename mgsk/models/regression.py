"""The gnostic regressors, by task: ``from mgsk.models.regression import LinearRegressor``.

The same classes as :class:`mgsk.LinearRegressor` and :class:`mgsk.PolynomialRegressor`.

Examples
--------
>>> import mgsk
>>> from mgsk.models.regression import LinearRegressor, PolynomialRegressor
>>> LinearRegressor is mgsk.LinearRegressor and PolynomialRegressor is mgsk.PolynomialRegressor
True
"""

from .._linear import LinearRegressor, PolynomialRegressor

__all__ = ["LinearRegressor", "PolynomialRegressor"]
