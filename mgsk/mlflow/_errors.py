"""The one exception type of the flavor.

It is an :class:`~mlflow.exceptions.MlflowException` (so MLflow's scoring
server answers it with HTTP 400 and its message) and a :class:`ValueError`
(so plain Python code can catch it as bad input).
"""

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE


class MgskModelError(MlflowException, ValueError):
    """Bad input to the mgsk flavor, or a model file mgsk refuses to load.

    Parameters
    ----------
    message : str
        What is wrong, naming the argument, type or file at fault.

    Examples
    --------
    >>> from mgsk import LinearRegressor
    >>> from mgsk.mlflow import MgskModelError, save_model
    >>> try:
    ...     save_model(LinearRegressor(), "unused-path")
    ... except MgskModelError as error:
    ...     print(error.message)
    LinearRegressor is not fitted: call fit before saving it.
    >>> issubclass(MgskModelError, ValueError)
    True
    """

    def __init__(self, message):
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)
