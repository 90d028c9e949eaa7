"""Alias of :mod:`mgsk.mlflow` under the guide's path ``mgsk.integration.mlflow``.

Examples
--------
>>> from mgsk.integration import mlflow as mg_mlflow
>>> import mgsk.mlflow
>>> mg_mlflow.log_model is mgsk.mlflow.log_model
True
"""

from mgsk.mlflow import *  # noqa: F403  (the same names, the same objects)
from mgsk.mlflow import __all__  # noqa: F401
