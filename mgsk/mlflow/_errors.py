"""The one exception type of the flavor.

It is an :class:`~mlflow.exceptions.MlflowException` (so MLflow's scoring
server answers it with HTTP 400 and its message) and a :class:`ValueError`
(so plain Python code can catch it as bad input).
"""

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE


class MgskModelError(MlflowException, ValueError):
    """Bad input to the mgsk flavor, or a model file mgsk refuses to load."""

    def __init__(self, message):
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)
