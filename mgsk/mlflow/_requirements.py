"""The environment files of a saved model, pinned from the installed versions.

MLflow's flavors infer requirements by loading the model in a subprocess
(``mlflow.models.infer_pip_requirements``), which costs seconds per model.
An mgsk model needs exactly the packages that wrote its bytes, so they are
pinned directly. When the running mgsk did not come from a package index (a
source checkout, a local or editable install), no index can satisfy
``mgsk==<version>``: the model then carries a wheel of the running mgsk in
``wheels/`` and requirements.txt names that file, as
``mlflow.models.add_libraries_to_model`` does for every dependency.
"""

import atexit
import base64
import configparser
import functools
import hashlib
import importlib.metadata
import os
import pathlib
import shutil
import tempfile
import zipfile

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
    pin = _get_pinned_requirement("mgsk", module="mgsk")
    if not mgsk_from_index() and pin in files[_REQUIREMENTS_FILE_NAME].splitlines():
        wheel = ship_mgsk_wheel(path)
        files = {name: _replace_requirement(name, text, pin, wheel) for name, text in files.items()}
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


WHEELS_DIR = "wheels"


def mgsk_from_index():
    """Whether the running mgsk is an installed distribution that came from a package index.

    pip records a ``direct_url.json`` (PEP 610) for installs from a local
    path, a URL or a VCS, editable ones included; a source checkout on
    ``sys.path`` has no distribution at all.
    """
    import mgsk

    try:
        dist = importlib.metadata.distribution("mgsk")
    except importlib.metadata.PackageNotFoundError:
        return False
    package_dir = pathlib.Path(mgsk.__file__).resolve().parent
    installed_here = pathlib.Path(dist.locate_file("mgsk")).resolve() == package_dir
    return installed_here and dist.version == mgsk.__version__ and dist.read_text("direct_url.json") is None


def ship_mgsk_wheel(model_dir):
    """Copy a wheel of the running mgsk into ``model_dir/wheels``; return its relative path."""
    wheel = _build_mgsk_wheel()
    os.makedirs(os.path.join(model_dir, WHEELS_DIR), exist_ok=True)
    shutil.copyfile(wheel, os.path.join(model_dir, WHEELS_DIR, os.path.basename(wheel)))
    return f"{WHEELS_DIR}/{os.path.basename(wheel)}"


def _replace_requirement(name, text, pin, wheel):
    if name == _REQUIREMENTS_FILE_NAME:
        return "\n".join(wheel if line == pin else line for line in text.splitlines())
    if name == _CONDA_ENV_FILE_NAME:
        return text.replace(f"- {pin}\n", f"- {wheel}\n")
    return text


@functools.cache
def _build_mgsk_wheel():
    """A pure-Python wheel of the running mgsk package, built once per process.

    Its files are those of the imported package (what runs is what ships),
    its dependencies those of the distribution or, in a source checkout,
    of setup.cfg. Timestamps are fixed, so the same code gives the same bytes.
    """
    import mgsk

    package_dir = pathlib.Path(mgsk.__file__).resolve().parent
    version = mgsk.__version__
    dist_info = f"mgsk-{version}.dist-info"
    files = {}
    for file in sorted(package_dir.rglob("*")):
        if file.is_file() and "__pycache__" not in file.parts and file.suffix not in (".pyc", ".pyo"):
            files[f"mgsk/{file.relative_to(package_dir).as_posix()}"] = file.read_bytes()
    requires = "".join(f"Requires-Dist: {req}\n" for req in _install_requires(package_dir))
    files[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: mgsk\nVersion: {version}\nRequires-Python: >=3.10\n{requires}"
    ).encode()
    files[f"{dist_info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: mgsk.mlflow\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = [f"{name},sha256={_urlsafe_digest(data)},{len(data)}" for name, data in files.items()]
    files[f"{dist_info}/RECORD"] = ("\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n").encode()
    folder = tempfile.mkdtemp(prefix="mgsk-wheel-")
    atexit.register(_remove_folder, folder, os.getpid())
    wheel = pathlib.Path(folder) / f"mgsk-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return str(wheel)


def _remove_folder(folder, owner):
    # A forked child inherits the exit handler; only the process that made the folder removes it.
    if os.getpid() == owner:
        shutil.rmtree(folder, ignore_errors=True)


def _urlsafe_digest(data):
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _install_requires(package_dir):
    try:
        requires = importlib.metadata.requires("mgsk") or []
        return [req for req in requires if "extra ==" not in req]
    except importlib.metadata.PackageNotFoundError:
        pass
    setup_cfg = package_dir.parent / "setup.cfg"
    parser = configparser.ConfigParser()
    parser.read(setup_cfg)
    return [line.strip() for line in parser.get("options", "install_requires", fallback="").splitlines() if line.strip()]
