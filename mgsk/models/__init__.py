"""The gnostic estimators (the same classes as at the top level of :mod:`mgsk`).

They are also importable by task, from :mod:`mgsk.models.regression` and
:mod:`mgsk.models.classification` (the import paths of ``machinegnostics``).

Examples
--------
>>> import mgsk
>>> from mgsk.models import LinearRegressor
>>> from mgsk.models.classification import LogisticRegressor
>>> LinearRegressor is mgsk.LinearRegressor and LogisticRegressor is mgsk.LogisticRegressor
True
"""

from .classification import LogisticRegressor
from .regression import LinearRegressor, PolynomialRegressor

__all__ = ["LinearRegressor", "PolynomialRegressor", "LogisticRegressor"]
