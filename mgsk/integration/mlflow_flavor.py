"""Alias of :mod:`mgsk.mlflow` under the guide's path ``mgsk.integration.mlflow_flavor``.

Examples
--------
>>> from mgsk.integration.mlflow_flavor import load_model
>>> import mgsk.mlflow
>>> load_model is mgsk.mlflow.load_model
True
"""

from mgsk.mlflow import *  # noqa: F403  (the same names, the same objects)
from mgsk.mlflow import __all__  # noqa: F401
