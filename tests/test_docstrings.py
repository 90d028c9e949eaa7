"""Every public name has a numpydoc docstring, and the API reference lists it.

For each public name of the public modules (their ``__all__``):

* classes and functions: a docstring that numpydoc parses, every parameter
  of the signature documented (and no others), a Returns section when the
  function returns a value, and an Examples section;
* public methods and properties defined in mgsk: a docstring, parameters
  documented, and Returns when they return something (``fit`` returns
  ``self`` and needs none);
* estimators: every attribute ending in ``_`` that a fitted estimator has,
  after fits with several parameter sets and a DataFrame, is in the
  Attributes section of the class docstring, and every attribute that the
  section names exists after at least one of those fits;
* ``docs/api.rst`` lists every public name.

Modules whose optional dependencies are missing are skipped (``mgsk.mlflow``
without MLflow).
"""

import importlib
import inspect
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

numpydoc_validate = pytest.importorskip("numpydoc.validate")
from numpydoc.docscrape import ClassDoc  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_MODULES = ["mgsk", "mgsk.models", "mgsk.metrics", "mgsk.stats", "mgsk.datasets", "mgsk.mlflow", "mgsk.dask"]
#: Third-party packages that public modules may need (optional extras).
OPTIONAL_DEPENDENCIES = {"mlflow", "skops", "matplotlib", "pandas", "dask", "distributed"}
#: numpydoc checks: no docstring, undocumented or unknown parameters,
#: missing Returns, missing Examples.
CHECKS = {"GL08", "PR01", "PR02", "RT01", "EX01"}


def _import_optional(name):
    """Import ``name``; None when an optional dependency is missing."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in OPTIONAL_DEPENDENCIES:
            return None
        raise


def _public_names():
    """(qualified name, object) of every public name of the public modules."""
    for module_name in PUBLIC_MODULES:
        module = _import_optional(module_name)
        if module is None:
            continue
        for name in module.__all__:
            if name.startswith("__"):
                continue
            try:
                obj = getattr(module, name)
            except ModuleNotFoundError as exc:
                if (exc.name or "").split(".")[0] in OPTIONAL_DEPENDENCIES:
                    continue
                raise
            yield f"{module_name}.{name}", obj


def _public_objects():
    """(qualified name, object) of every public class and function, each object once."""
    seen = {}
    for qualified, obj in _public_names():
        if inspect.isclass(obj) or callable(obj):  # not constants such as FLAVOR_NAME
            seen.setdefault(id(obj), (qualified, obj))
    return sorted(seen.values(), key=lambda item: item[0])


PUBLIC = _public_objects()
CLASSES = [(name, obj) for name, obj in PUBLIC if inspect.isclass(obj)]
ESTIMATORS = [(name, obj) for name, obj in CLASSES if issubclass(obj, BaseEstimator)]


def _errors(obj, checks):
    """numpydoc's errors of ``obj`` among ``checks``, plus parse warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = numpydoc_validate.validate(numpydoc_validate.get_doc_object(obj))
    problems = [f"{code}: {message}" for code, message in result["errors"] if code in checks]
    problems += [f"numpydoc: {w.message}" for w in caught if "docstring" in str(w.message).lower()]
    return problems


@pytest.mark.parametrize("name, obj", PUBLIC, ids=[name for name, _ in PUBLIC])
def test_public_docstring(name, obj):
    assert obj.__doc__, f"{name} has no docstring"
    problems = _errors(obj, CHECKS)
    assert not problems, f"{name}:\n" + "\n".join(problems)


def _own_members(cls):
    """Public methods and properties that mgsk itself defines on ``cls``."""
    for attr in sorted(dir(cls)):
        if attr.startswith("_"):
            continue
        raw = inspect.getattr_static(cls, attr)
        target = raw.fget if isinstance(raw, property) else raw
        target = getattr(target, "__func__", target)
        if inspect.isfunction(target) and target.__module__.startswith("mgsk"):
            yield attr, raw, target


MEMBERS = [
    (f"{name}.{attr}", raw, target)
    for name, cls in CLASSES
    for attr, raw, target in _own_members(cls)
]


@pytest.mark.parametrize("name, raw, target", MEMBERS, ids=[m[0] for m in MEMBERS])
def test_method_docstring(name, raw, target):
    assert target.__doc__, f"{name} has no docstring"
    if isinstance(raw, property):
        return
    # Methods need Parameters and Returns, not Examples; ``fit`` returns self.
    checks = {"GL08", "PR01", "PR02"} | (set() if name.endswith(".fit") else {"RT01"})
    problems = _errors(target, checks)
    assert not problems, f"{name}:\n" + "\n".join(problems)


def _fit_variants(cls):
    """Fitted instances of ``cls`` over the parameter sets worth covering."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    if issubclass(cls, ClassifierMixin):
        targets = [(X[:, 0] > 0).astype(int), np.array(["a", "b", "c", "d"] * 10)]
    else:
        targets = [X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=40)]
    frame = pd.DataFrame(X, columns=["f0", "f1", "f2"])
    params = [{}, {"gnostic_characteristics": True}, {"degree": 2, "gnostic_characteristics": True}]
    # Only the parameters the estimator has (the data-analysis estimators have neither).
    accepted = set(cls().get_params())
    params = [{k: v for k, v in p.items() if k in accepted} for p in params]
    params = [p for i, p in enumerate(params) if p not in params[:i]]
    if cls.__module__.startswith("mgsk.dask"):  # dask collections in, on dask's local scheduler
        import dask.array as da
        import dask.dataframe as dd

        X, frame = da.from_array(X, chunks=20), dd.from_pandas(frame, npartitions=2)
        targets = [da.from_array(y, chunks=20) for y in targets]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for y in targets:
            for kwargs in params:
                for data in (X, frame):
                    yield cls(**kwargs).fit(data, y)


def _documented_attributes(cls):
    return {item.name.split(",")[0].strip() for item in ClassDoc(cls)["Attributes"]}


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=[name for name, _ in ESTIMATORS])
def test_fitted_attributes_documented(name, cls):
    fitted = set()
    for model in _fit_variants(cls):
        fitted |= {a for a in vars(model) if a.endswith("_") and not a.startswith("_")}
    documented = _documented_attributes(cls)
    missing = sorted(fitted - documented)
    assert not missing, f"{name}: fitted attributes missing from its Attributes section: {missing}"
    stale = sorted(a for a in documented if a.endswith("_") and a not in fitted)
    assert not stale, f"{name}: documented attributes that no fit sets: {stale}"


def _api_reference_names():
    """Qualified names listed in the autosummary tables of docs/api.rst."""
    names, module, in_table = set(), None, False
    for line in (ROOT / "docs" / "api.rst").read_text(encoding="utf-8").splitlines():
        match = re.match(r"\.\. currentmodule:: (\S+)", line)
        if match:
            module = match.group(1)
        if line.startswith(".. autosummary::"):
            in_table = True
        elif in_table and line.strip() and not line.startswith(" "):
            in_table = False
        elif in_table and line.strip() and not line.strip().startswith(":"):
            names.add(f"{module}.{line.strip()}")
    return names


def test_api_reference_lists_every_public_name():
    paths = {}  # id of each public object -> its public import paths
    for qualified, obj in _public_names():
        paths.setdefault(id(obj), set()).add(qualified)
    listed = _api_reference_names()
    # Documented once is enough, under any of its public paths.
    missing = sorted(min(p) for p in paths.values() if not p & listed)
    assert not missing, f"docs/api.rst does not list: {missing}"
