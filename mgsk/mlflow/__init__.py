"""The "mgsk" MLflow flavor and autologging (``pip install mgsk[mlflow]``).

:func:`save_model`, :func:`log_model` and :func:`load_model` store fitted mgsk
estimators (also inside scikit-learn Pipelines, ColumnTransformers and
searches) with skops, never pickle unless asked, alongside the
python_function flavor that ``mlflow.pyfunc`` and ``mlflow models serve``
use. :func:`autolog` logs every fit.
"""

from ._autolog import autolog, sync
from ._errors import MgskModelError
from ._flavor import FLAVOR_NAME, _load_pyfunc, load_model, log_model, save_model
from ._requirements import get_default_conda_env, get_default_pip_requirements

__all__ = [
    "FLAVOR_NAME",
    "MgskModelError",
    "autolog",
    "get_default_conda_env",
    "get_default_pip_requirements",
    "load_model",
    "log_model",
    "save_model",
    "sync",
]
