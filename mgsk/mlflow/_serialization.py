"""Model bytes: skops with a fixed list of trusted types; cloudpickle on request.

Which types a loaded file may contain is decided here, in code, and never
read from the model's MLmodel file (anyone who can write the model folder can
edit that file). The list is mgsk's estimators, what skops trusts by default
(scikit-learn's estimators, numpy, scipy and builtins), and the inert
scikit-learn helpers a *fitted* search object holds: its scorer, the scoring
functions a string ``scoring=`` selects, and its cross-validation splitter.
"""

import functools
import inspect
import pickle
import zipfile

from sklearn.base import BaseEstimator

from ._errors import MgskModelError
from ._trust import check_pickle_allowed

SKOPS = "skops"
CLOUDPICKLE = "cloudpickle"
FORMATS = (SKOPS, CLOUDPICKLE)
MODEL_FILE = {SKOPS: "model.skops", CLOUDPICKLE: "model.pkl"}

#: Set by scikit-learn >= 1.9 during a meta-estimator's fit; they hold the
#: callback machinery (not model state), and skops cannot serialize them.
TRANSIENT_ATTRIBUTES = frozenset({"_parent_callback_ctx", "_callback_fit_ctx", "_skl_callbacks_to_teardown"})


def _type_path(obj):
    return f"{obj.__module__}.{obj.__qualname__}"


def _search_helper_types():
    """Scorers, string-scoring metric functions and CV splitters of scikit-learn."""
    from sklearn.metrics import _scorer, get_scorer, get_scorer_names
    from sklearn.model_selection import _split

    names = {_type_path(cls) for cls in (_scorer._Scorer, _scorer._PassthroughScorer, _scorer._MultimetricScorer)}
    names.update(_type_path(get_scorer(name)._score_func) for name in get_scorer_names())
    splitter_bases = (_split.BaseCrossValidator, _split.BaseShuffleSplit, _split._RepeatedSplits)
    names.update(
        _type_path(cls)
        for _, cls in inspect.getmembers(_split, inspect.isclass)
        if cls.__module__ == _split.__name__ and issubclass(cls, splitter_bases)
    )
    names.add(_type_path(_split._CVIterableWrapper))
    return names


def _mgsk_types():
    """mgsk's public estimators and, when the module exists, its metric functions."""
    import mgsk

    names = {
        _type_path(cls)
        for _, cls in inspect.getmembers(mgsk, inspect.isclass)
        if issubclass(cls, BaseEstimator) and cls.__module__.startswith("mgsk.")
    }
    try:
        from mgsk import metrics
    except ImportError:
        return names
    for name in getattr(metrics, "__all__", ()):
        func = getattr(metrics, name, None)
        if inspect.isfunction(func) and func.__module__.startswith("mgsk."):
            names.add(_type_path(func))
    return names


@functools.cache
def trusted_types():
    """The types mgsk trusts in a skops model file beyond what skops trusts by default.

    :func:`load_model` loads a ``model.skops`` only if every type in it is
    here or trusted by skops; the list is fixed in mgsk's code, never read
    from the model. A plain skops user loads an mgsk model file with it.

    Returns
    -------
    tuple of str
        Fully qualified type and function names, sorted: mgsk's estimators
        and metric functions, and the scorers, scoring functions and
        cross-validation splitters a fitted scikit-learn search holds.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import skops.io
    >>> from mgsk import LinearRegressor
    >>> from mgsk.mlflow import save_model, trusted_types
    >>> X = np.arange(20.0).reshape(10, 2)
    >>> path = os.path.join(tempfile.mkdtemp(), "model")
    >>> save_model(LinearRegressor().fit(X, X @ [1.0, 2.0]), path)
    >>> model = skops.io.load(os.path.join(path, "model.skops"), trusted=trusted_types())
    >>> type(model).__name__, "mgsk._linear.LinearRegressor" in trusted_types()
    ('LinearRegressor', True)
    """
    return tuple(sorted(_mgsk_types() | _search_helper_types()))


def without_transient_state(obj, _memo=None):
    """``obj`` with the transient callback attributes removed, copy on write.

    Estimators that carry such an attribute, and the containers and
    estimators that lead to them, are shallow copies; everything else is
    shared. ``obj`` itself is never modified.
    """
    memo = {} if _memo is None else _memo
    if id(obj) in memo:
        return memo[id(obj)]
    memo[id(obj)] = obj  # a cycle back to obj keeps the original
    new = obj
    if type(obj) in (list, tuple):
        items = [without_transient_state(item, memo) for item in obj]
        if any(a is not b for a, b in zip(items, obj)):
            new = type(obj)(items)
    elif type(obj) is dict:
        items = {key: without_transient_state(value, memo) for key, value in obj.items()}
        if any(items[key] is not obj[key] for key in obj):
            new = items
    elif isinstance(obj, BaseEstimator) and hasattr(obj, "__dict__"):
        state = vars(obj)
        kept = {k: without_transient_state(v, memo) for k, v in state.items() if k not in TRANSIENT_ATTRIBUTES}
        if len(kept) != len(state) or any(kept[k] is not state[k] for k in kept):
            new = object.__new__(type(obj))
            new.__dict__.update(kept)
    memo[id(obj)] = new
    return new


def serialize(model, serialization_format):
    """The bytes of ``model``; skops output is checked to load back with mgsk's trust list."""
    model = without_transient_state(model)
    if serialization_format == CLOUDPICKLE:
        import cloudpickle

        return cloudpickle.dumps(model, protocol=pickle.DEFAULT_PROTOCOL)
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        data = skops.io.dumps(model, compression=zipfile.ZIP_DEFLATED)
    except Exception as exc:
        raise MgskModelError(
            f"skops cannot serialize this {type(model).__name__}: {exc}. It holds something "
            "skops does not support (e.g. a lambda or a class defined inside a function); pass "
            "serialization_format='cloudpickle' to save it with pickle instead."
        ) from exc
    try:
        skops.io.loads(data, trusted=list(trusted_types()))
    except UntrustedTypesFoundException as exc:
        raise MgskModelError(
            f"This {type(model).__name__} contains types that mgsk.mlflow.load_model will not "
            f"load: {_untrusted_names(data)}. mgsk trusts its own estimators and the scikit-learn, "
            "numpy and scipy types skops trusts. If you trust this model, save it with "
            "serialization_format='cloudpickle' (loading it then runs pickle)."
        ) from exc
    return data


def deserialize(data, serialization_format, source="the model file", allow_pickle=None):
    """The model in ``data``; raise :class:`MgskModelError` for anything untrusted.

    Pickle runs only when the caller allows it (``allow_pickle=True``, or
    ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` explicitly true).
    """
    if serialization_format == CLOUDPICKLE:
        check_pickle_allowed(source, allow_pickle)
        import cloudpickle

        return cloudpickle.loads(data)
    if serialization_format != SKOPS:
        raise MgskModelError(
            f"{source} names serialization format {serialization_format!r}; mgsk knows {list(FORMATS)}."
        )
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return skops.io.loads(data, trusted=list(trusted_types()))
    except UntrustedTypesFoundException as exc:
        raise MgskModelError(
            f"Refusing to load {source}: it contains types mgsk does not trust: "
            f"{_untrusted_names(data)}. mgsk loads only its own estimators and the scikit-learn, "
            "numpy and scipy types skops trusts; the list is fixed in mgsk, not read from the model."
        ) from exc
    except Exception as exc:
        raise MgskModelError(f"{source} is not a readable skops file (damaged or tampered with): {exc!r}") from exc


def _untrusted_names(data):
    import skops.io

    return ", ".join(sorted(set(skops.io.get_untrusted_types(data=data)) - set(trusted_types())))
