"""Alias of :mod:`mgsk.mlflow` under the guide's path ``mgsk.integration.mlflow``.

Examples
--------
>>> from mgsk.integration import mlflow as mg_mlflow
>>> import mgsk.mlflow
>>> mg_mlflow.log_model is mgsk.mlflow.log_model
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
