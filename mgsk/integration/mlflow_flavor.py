"""Alias of :mod:`mgsk.mlflow` under the guide's path ``mgsk.integration.mlflow_flavor``.

Examples
--------
>>> from mgsk.integration.mlflow_flavor import load_model
>>> import mgsk.mlflow
>>> load_model is mgsk.mlflow.load_model
True
"""

from mgsk.mlflow import (
    FLAVOR_NAME,
    MgskModelError,
    autolog,
    get_default_conda_env,
    get_default_pip_requirements,
    load_model,
    log_model,
    save_model,
)

__all__ = [
    "FLAVOR_NAME",
    "MgskModelError",
    "autolog",
    "get_default_conda_env",
    "get_default_pip_requirements",
    "load_model",
    "log_model",
    "save_model",
]
