"""The "mgsk" MLflow flavor and autologging (``pip install mgsk[mlflow]``).

:func:`save_model`, :func:`log_model` and :func:`load_model` store fitted mgsk
estimators (also inside scikit-learn Pipelines, ColumnTransformers and
searches) with skops, never pickle unless asked, alongside the
python_function flavor that ``mlflow.pyfunc`` and ``mlflow models serve``
use. :func:`autolog` logs every fit.
"""

from ._autolog import autolog, sync
from ._errors import MgskModelError
from ._flavor import FLAVOR_NAME, _load_pyfunc, evaluation_model, load_model, log_model, save_model
from ._inspect import Finding, inspect_model
from ._requirements import get_default_conda_env, get_default_pip_requirements
from ._serialization import trusted_types
from ._signing import sign_model, verify_model

__all__ = [
    "FLAVOR_NAME",
    "Finding",
    "MgskModelError",
    "autolog",
    "evaluation_model",
    "get_default_conda_env",
    "get_default_pip_requirements",
    "inspect_model",
    "load_model",
    "log_model",
    "save_model",
    "sign_model",
    "sync",
    "trusted_types",
    "verify_model",
]
