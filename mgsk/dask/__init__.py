"""mgsk on Dask: the gnostic estimators fitted on data larger than one machine's memory.

``pip install "mgsk[dask]"``. The estimators take dask arrays or dask
DataFrames chunked by rows, fit with the one gnostic iteration of the
in-memory estimators (their sums computed on the workers, chunk by chunk),
and reach the same fixed point. ``predict`` returns dask collections;
``to_local()`` returns the in-memory mgsk estimator, which logs, saves and
serves like any other. Only this subpackage imports Dask.
"""

from ._linear import LinearRegressor, PolynomialRegressor
from ._logistic import LogisticRegressor

__all__ = ["LinearRegressor", "PolynomialRegressor", "LogisticRegressor"]
