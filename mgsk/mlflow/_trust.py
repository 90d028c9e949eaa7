"""What a model directory may make this process run: pickle and shipped code.

Both are the caller's decision, never the model file's: anyone who can write
the model directory can edit its MLmodel file. Pickle runs only when the
caller passes ``allow_pickle=True`` or sets
``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` to a true value (unset means no,
unlike MLflow's own default). Shipped ``code/`` is used only by pickle models
the caller allowed; it is appended to ``sys.path`` (installed code wins) and
refused outright if it provides a module that is importable without it.
"""

import importlib.machinery
import importlib.util
import os
import sys

from ._errors import MgskModelError

ALLOW_PICKLE_ENV = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
#: The one code directory name mgsk writes into its flavor configuration.
CODE_DIR = "code"
#: Code folders appended by loads the caller allowed, in this process.
_ALLOWED_CODE_DIRS = set()
_MODULE_SUFFIXES = tuple(sorted(importlib.machinery.all_suffixes(), key=len, reverse=True))


def pickle_allowed(allow_pickle=None):
    """Whether the caller allows unpickling: the argument, else the environment (unset is no)."""
    if allow_pickle is not None:
        if not isinstance(allow_pickle, bool):
            raise MgskModelError(f"allow_pickle must be True, False or None, got {allow_pickle!r}.")
        return allow_pickle
    return os.environ.get(ALLOW_PICKLE_ENV, "").strip().lower() in ("true", "1")


def check_pickle_allowed(model_file, allow_pickle=None):
    """Raise :class:`MgskModelError` unless the caller allowed unpickling ``model_file``."""
    if pickle_allowed(allow_pickle):
        return
    if allow_pickle is False:
        why = "allow_pickle=False was passed"
    else:
        value = os.environ.get(ALLOW_PICKLE_ENV)
        why = f"{ALLOW_PICKLE_ENV} is " + ("unset" if value is None else f"{value!r}")
    raise MgskModelError(
        f"Refusing to load {model_file}: it is a pickle (serialization_format='cloudpickle'), and "
        "unpickling runs whatever code the file holds, so anyone who can write the model directory "
        f"could run code here; {why}. If you trust the model's source, opt in as the caller: "
        f"mgsk.mlflow.load_model(uri, allow_pickle=True), or {ALLOW_PICKLE_ENV}=true in the "
        "environment (for mlflow.pyfunc and mlflow models serve)."
    )


def shipped_modules(code_dir):
    """Top-level module and package names that putting ``code_dir`` on sys.path would provide."""
    names = set()
    for entry in os.scandir(code_dir):
        if entry.is_dir():
            if entry.name.isidentifier():
                names.add(entry.name)  # a package, or a namespace package without __init__.py
        elif suffix := next((s for s in _MODULE_SUFFIXES if entry.name.endswith(s)), None):
            stem = entry.name[: -len(suffix)]
            if stem.isidentifier():
                names.add(stem)
    return sorted(names)


def shadowed_modules(code_dir):
    """The names in ``code_dir`` that already resolve without it (standard library, installed, loaded).

    Nothing is imported: :func:`importlib.util.find_spec` only locates.
    """
    code_dir = os.path.realpath(code_dir)
    shadowed = []
    for name in shipped_modules(code_dir):
        if name in sys.builtin_module_names or name in sys.stdlib_module_names:
            shadowed.append(name)
            continue
        if name in sys.modules:  # loaded already: from this folder (an earlier allowed load) or elsewhere
            if not _is_within(getattr(sys.modules[name], "__file__", None) or "", code_dir):
                shadowed.append(name)
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = getattr(spec, "origin", None) or next(iter(getattr(spec, "submodule_search_locations", None) or []), "")
        if spec is not None and not os.path.realpath(origin).startswith(code_dir + os.sep):
            shadowed.append(name)
    return shadowed


def withdraw_code_paths(model_dir):
    """Take every ``sys.path`` entry inside ``model_dir`` off again.

    ``mlflow.pyfunc.load_model`` prepends the ``code`` folder named in the
    python_function section of MLmodel before it calls mgsk. Raise
    :class:`MgskModelError` if a module was already imported from the model
    directory by then (MLflow ran it; mgsk can only report it).
    """
    model_dir = os.path.realpath(model_dir)
    inside = [p for p in sys.path if isinstance(p, str) and p and _is_within(p, model_dir)]
    if inside:
        sys.path[:] = [p for p in sys.path if p not in inside]
    if any(_is_within(p, model_dir) for p in _ALLOWED_CODE_DIRS):
        return inside  # modules from there were imported by a pickle load the caller allowed
    imported = sorted(
        name
        for name, module in list(sys.modules.items())
        if isinstance(getattr(module, "__file__", None), str) and _is_within(module.__file__, model_dir)
    )
    if imported:
        raise MgskModelError(
            f"The model in {model_dir} put {inside} on sys.path, and module(s) {', '.join(imported)} were "
            "imported from it before mgsk could refuse them: treat this process as compromised. Inspect "
            "models with mgsk.mlflow.inspect_model, or load them with mgsk.mlflow.load_model."
        )
    return inside


def _is_within(path, directory):
    path = os.path.realpath(path)
    return path == directory or path.startswith(directory + os.sep)


def add_shipped_code(model_dir, code_entry):
    """Append the model's code folder to sys.path, refusing one that shadows an importable module."""
    if not code_entry:
        return
    code_dir = os.path.join(model_dir, code_entry)
    if not os.path.isdir(code_dir):
        raise MgskModelError(f"The MLmodel file in {model_dir} names code directory {code_entry!r}, which is missing.")
    if shadowed := shadowed_modules(code_dir):
        raise MgskModelError(
            f"Refusing to load the model in {model_dir}: its code folder {code_dir} ships "
            f"{', '.join(shadowed)}, which would shadow the installed module(s) of that name. Rename "
            "the shipped module(s) and save the model again."
        )
    _ALLOWED_CODE_DIRS.add(os.path.realpath(code_dir))
    if code_dir not in sys.path:
        sys.path.append(code_dir)
