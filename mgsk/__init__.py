"""mgsk: robust, deterministic gnostic estimators for scikit-learn.

The estimators live here and in :mod:`mgsk.models`; gnostic metrics in
:mod:`mgsk.metrics`; reference data sets in :mod:`mgsk.datasets`; the MLflow
flavor and autolog in :mod:`mgsk.mlflow` (needs ``pip install mgsk[mlflow]``).
``import mgsk`` never imports MLflow: ``mgsk.autolog`` loads it on first use.
"""

from ._distribution import GnosticDistribution
from ._outlier import GnosticOutlierDetector
from . import stats
from ._linear import LinearRegressor, PolynomialRegressor
from ._logistic import LogisticRegressor

__version__ = "0.1.0"

__all__ = [
    "LinearRegressor",
    "PolynomialRegressor",
    "LogisticRegressor",
    "GnosticDistribution",
    "GnosticOutlierDetector",
    "autolog",
    "__version__",
]


def __getattr__(name):
    # Lazy: ``mgsk.autolog`` is ``mgsk.mlflow.autolog``, imported on first use.
    if name == "autolog":
        try:
            from .mlflow import autolog
        except ModuleNotFoundError as exc:
            if exc.name not in ("mlflow", "skops", "matplotlib") and not str(exc.name).startswith("mlflow."):
                raise
            raise ModuleNotFoundError(
                f"mgsk.autolog needs MLflow and its companions ({exc.name} is missing): "
                'pip install "mgsk[mlflow]"',
                name=exc.name,
            ) from exc

        return autolog
    raise AttributeError(f"module 'mgsk' has no attribute {name!r}")
