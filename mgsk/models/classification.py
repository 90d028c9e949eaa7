"""The gnostic classifier, by task: ``from mgsk.models.classification import LogisticRegressor``.

The same class as :class:`mgsk.LogisticRegressor`.

Examples
--------
>>> import mgsk
>>> from mgsk.models.classification import LogisticRegressor
>>> LogisticRegressor is mgsk.LogisticRegressor
True
"""

from .._logistic import LogisticRegressor

__all__ = ["LogisticRegressor"]
