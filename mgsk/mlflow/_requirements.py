"""The environment files of a saved model, pinned from the installed versions.

MLflow's flavors infer requirements by loading the model in a subprocess
(``mlflow.models.infer_pip_requirements``), which costs seconds per model.
An mgsk model needs exactly the packages that wrote its bytes, so they are
pinned directly.
"""

import functools
import os

import yaml
from mlflow.environment_variables import MLFLOW_LOCK_MODEL_DEPENDENCIES
from mlflow.utils.environment import (
    _CONDA_ENV_FILE_NAME,
    _CONSTRAINTS_FILE_NAME,
    _PYTHON_ENV_FILE_NAME,
    _REQUIREMENTS_FILE_NAME,
    _mlflow_conda_env,
    _process_conda_env,
    _process_pip_requirements,
    _generate_mlflow_version_pinning,
    _PythonEnv,
    _validate_env_arguments,
)
from mlflow.utils.requirements_utils import _get_pinned_requirement

from ._serialization import FORMATS, SKOPS

_PACKAGES = (("mgsk", "mgsk"), ("scikit-learn", "sklearn"), ("numpy", "numpy"))


def get_default_pip_requirements(serialization_format=SKOPS):
    """Pip requirements every mgsk model gets, pinned to the installed versions.

    Parameters
    ----------
    serialization_format : {"skops", "cloudpickle"}, default="skops"
        The format the model is saved in; it adds ``skops`` or
        ``cloudpickle`` to the list.

    Returns
    -------
    list of str
        Requirements such as ``"scikit-learn==1.6.1"``. MLflow adds its own
        pin when it writes ``requirements.txt``.

    Examples
    --------
    >>> from mgsk.mlflow import get_default_pip_requirements
    >>> [req.split("==")[0] for req in get_default_pip_requirements()]
    ['mgsk', 'scikit-learn', 'numpy', 'skops']
    """
    if serialization_format not in FORMATS:
        raise ValueError(f"serialization_format must be one of {list(FORMATS)}, got {serialization_format!r}.")
    packages = (*_PACKAGES, (serialization_format, serialization_format))
    return [_get_pinned_requirement(package, module=module) for package, module in packages]


def get_default_conda_env(serialization_format=SKOPS):
    """The conda environment of an mgsk model: Python, pip and the default requirements.

    Parameters
    ----------
    serialization_format : {"skops", "cloudpickle"}, default="skops"
        As in :func:`get_default_pip_requirements`.

    Returns
    -------
    dict
        A conda environment specification (the content of ``conda.yaml``).

    Examples
    --------
    >>> from mgsk.mlflow import get_default_conda_env
    >>> env = get_default_conda_env()
    >>> pip = next(dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict))
    >>> any(req.startswith("mlflow==") for req in pip), any(req.startswith("mgsk==") for req in pip)
    (True, True)
    """
    return _mlflow_conda_env(additional_pip_deps=get_default_pip_requirements(serialization_format))


def validate_environment_arguments(conda_env, pip_requirements, extra_pip_requirements):
    """Refuse contradictory environment arguments before anything is written."""
    _validate_env_arguments(conda_env, pip_requirements, extra_pip_requirements)


def write_environment(path, serialization_format, conda_env, pip_requirements, extra_pip_requirements):
    """Write conda.yaml, requirements.txt, python_env.yaml (and constraints.txt) into ``path``."""
    if conda_env is None and pip_requirements is None and extra_pip_requirements is None:
        files = _default_environment_files(serialization_format, MLFLOW_LOCK_MODEL_DEPENDENCIES.get())
    else:
        files = _environment_files(serialization_format, conda_env, pip_requirements, extra_pip_requirements)
    for name, text in files.items():
        with open(os.path.join(path, name), "w") as f:
            f.write(text)


@functools.cache
def _default_environment_files(serialization_format, lock_with_uv):
    if lock_with_uv:
        return _environment_files(serialization_format, None, None, None)
    # The pins were just read from the installed distributions, so MLflow's
    # mismatch check (which first maps every installed package, ~1.5 s) has
    # nothing to report; the files are built directly, once per process.
    pip_requirements = [_generate_mlflow_version_pinning(), *get_default_pip_requirements(serialization_format)]
    conda_env = _mlflow_conda_env(additional_pip_deps=pip_requirements, install_mlflow=False)
    return _render(conda_env, pip_requirements, [])


def _environment_files(serialization_format, conda_env, pip_requirements, extra_pip_requirements):
    if conda_env is None:
        defaults = None if pip_requirements is not None else get_default_pip_requirements(serialization_format)
        conda_env, pip_requirements, constraints = _process_pip_requirements(
            defaults, pip_requirements, extra_pip_requirements
        )
    else:
        conda_env, pip_requirements, constraints = _process_conda_env(conda_env)
    return _render(conda_env, pip_requirements, constraints)


def _render(conda_env, pip_requirements, constraints):
    python_env = {k: v for k, v in _PythonEnv.current().to_dict().items() if v}
    files = {
        _CONDA_ENV_FILE_NAME: yaml.safe_dump(conda_env, default_flow_style=False),
        _REQUIREMENTS_FILE_NAME: "\n".join(pip_requirements),
        _PYTHON_ENV_FILE_NAME: yaml.safe_dump(python_env, sort_keys=False, default_flow_style=False),
    }
    if constraints:
        files[_CONSTRAINTS_FILE_NAME] = "\n".join(constraints)
    return files
