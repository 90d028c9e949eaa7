"""save_model, log_model and load_model of the "mgsk" MLflow flavor."""

import hashlib
import os
import shutil
import types
import warnings

import sklearn
import yaml
from mlflow import pyfunc
from mlflow.models import Model
from mlflow.models.model import MLMODEL_FILE_NAME
from mlflow.models.signature import ModelSignature, _infer_signature_from_input_example
from mlflow.models.utils import _save_example
from mlflow.tracking._model_registry import DEFAULT_AWAIT_MAX_SLEEP_SECONDS
from mlflow.tracking.artifact_utils import _download_artifact_from_uri
from mlflow.types.schema import ParamSchema, ParamSpec
from mlflow.utils.environment import _CONDA_ENV_FILE_NAME, _PYTHON_ENV_FILE_NAME
from mlflow.utils.file_utils import get_total_file_size
from mlflow.utils.model_utils import (
    _copy_extra_files,
    _validate_and_copy_code_paths,
    _validate_and_prepare_target_save_path,
)
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

import mgsk

from ._errors import MgskModelError
from ._pyfunc import (
    PREDICT_METHOD_PARAM,
    PREDICT_METHODS,
    MgskPyfuncModel,
    available_methods,
    check_predict_method,
    default_method,
)
from ._requirements import validate_environment_arguments, write_environment
from ._serialization import CLOUDPICKLE, FORMATS, MODEL_FILE, SKOPS, deserialize, serialize
from ._signing import sign_model, verify_if_required
from ._trust import CODE_DIR, add_shipped_code, check_pickle_allowed, withdraw_code_paths

FLAVOR_NAME = "mgsk"

#: Keywords of :meth:`mlflow.models.Model.log` that log_model passes through.
_MODEL_LOG_KEYWORDS = frozenset({"params", "tags", "model_type", "step", "model_id", "run_id", "prompts"})


def save_model(
    model,
    path,
    *,
    signature=None,
    input_example=None,
    serialization_format=SKOPS,
    pyfunc_predict_fn=None,
    metadata=None,
    code_paths=None,
    pip_requirements=None,
    extra_pip_requirements=None,
    conda_env=None,
    extra_files=None,
    mlflow_model=None,
    signing_key=None,
):
    """Save a fitted mgsk model as an MLflow model directory (flavors "mgsk" and python_function).

    The model is written with skops (no pickle) and loads back only if it
    contains nothing but mgsk's estimators and the types skops trusts.
    ``requirements.txt``, ``python_env.yaml`` and ``conda.yaml`` pin the
    installed mgsk, scikit-learn, numpy and skops.

    Parameters
    ----------
    model : estimator
        A fitted mgsk estimator, or a fitted scikit-learn Pipeline,
        ColumnTransformer or search (e.g. GridSearchCV) built around one.
        It is not modified.
    path : str or path-like
        Directory to create; it must not exist or be empty.
    signature : mlflow.models.ModelSignature or False, optional
        Input/output schema, enforced by the pyfunc flavor. Inferred from
        ``input_example`` when omitted (for classifiers with a
        ``predict_method`` parameter, see Notes); ``False`` saves none.
    input_example : DataFrame, ndarray, list or dict, optional
        A few input rows, saved as ``input_example.json`` and
        ``serving_input_example.json``.
    serialization_format : {"skops", "cloudpickle"}, default="skops"
        ``"cloudpickle"`` is an opt-in for models skops cannot hold (e.g. a
        pipeline with a custom function); loading it runs pickle, so every
        loader refuses it unless its caller opts in (``allow_pickle=True``
        in :func:`load_model`, or ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true``).
    pyfunc_predict_fn : {"predict", "predict_proba", "predict_log_proba", "decision_function", \
            "score_samples", "cdf", "pdf"}, default=None
        The method ``mlflow.pyfunc`` models call. None: ``"predict"``, or
        ``"score_samples"`` for a :class:`~mgsk.GnosticDistribution` (which
        has no ``predict``; it also serves ``"cdf"`` or ``"pdf"``), as
        :func:`mgsk.autolog` logs it.
    metadata : dict, optional
        Custom metadata stored in the MLmodel file.
    code_paths : list of str, optional
        Local code files or directories to ship with a cloudpickle model
        (e.g. the module of a custom function). They are appended to
        ``sys.path`` when a caller who allowed pickle loads the model, never
        for skops models, and a module name the environment already provides
        is refused.
    pip_requirements, extra_pip_requirements, conda_env : optional
        Replace, extend or bypass the default requirements, as in
        ``mlflow.sklearn.save_model``.
    extra_files : list of str, optional
        Files copied into the model directory.
    mlflow_model : mlflow.models.Model, optional
        The model metadata to add the flavors to (used by ``Model.log``).
    signing_key : str or path-like, optional
        Path of a PEM elliptic-curve private key: sign the finished directory
        with :func:`sign_model` (needs ``mgsk[sign]``).

    Returns
    -------
    None

    Notes
    -----
    Probabilities through pyfunc: save with
    ``pyfunc_predict_fn="predict_proba"``, or declare a ``predict_method``
    inference parameter in the signature
    (``infer_signature(X, y_pred, params={"predict_method": "predict"})``)
    and call ``loaded.predict(X, params={"predict_method": "predict_proba"})``.
    When both are used the declared default must equal
    ``pyfunc_predict_fn``. A signature inferred from ``input_example``
    declares the parameter itself for models with more than one method.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from mgsk import LinearRegressor
    >>> from mgsk.mlflow import load_model, save_model
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 2))
    >>> model = LinearRegressor().fit(X, X @ [1.0, 2.0] + 3.0)
    >>> path = os.path.join(tempfile.mkdtemp(), "model")
    >>> save_model(model, path, input_example=X[:3])
    >>> expected = {"MLmodel", "model.skops", "requirements.txt", "python_env.yaml", "conda.yaml",
    ...             "input_example.json", "serving_input_example.json"}
    >>> expected <= set(os.listdir(path))  # and wheels/ with mgsk itself, if no package index has it
    True
    >>> bool((load_model(path).predict(X) == model.predict(X)).all())
    True
    """
    path = os.path.abspath(os.fspath(path))
    pyfunc_predict_fn = default_method(model) if pyfunc_predict_fn is None else pyfunc_predict_fn
    check_model(model, serialization_format, pyfunc_predict_fn)
    validate_environment_arguments(conda_env, pip_requirements, extra_pip_requirements)
    if not (signature is None or signature is False or isinstance(signature, ModelSignature)):
        raise MgskModelError(f"signature must be an mlflow.models.ModelSignature, None or False, got {signature!r}.")
    data = serialize(model, serialization_format)
    existed = os.path.exists(path)
    _validate_and_prepare_target_save_path(path)
    try:
        _write_model_dir(
            model, data, path, signature, input_example, serialization_format, pyfunc_predict_fn,
            metadata, code_paths, pip_requirements, extra_pip_requirements, conda_env, extra_files,
            mlflow_model or Model(),
        )  # fmt: skip
        if signing_key is not None:
            sign_model(path, private_key=signing_key)
    except BaseException:
        _remove_written(path, keep_directory=existed)
        raise


def _write_model_dir(
    model, data, path, signature, input_example, serialization_format, pyfunc_predict_fn,
    metadata, code_paths, pip_requirements, extra_pip_requirements, conda_env, extra_files, mlflow_model,
):  # fmt: skip
    code_dir = _validate_and_copy_code_paths(code_paths, path)
    example = _save_example(mlflow_model, input_example, path)
    if signature is None and example is not None:
        signature = _infer_signature(model, example, pyfunc_predict_fn)
    if signature:
        _check_signature_params(model, signature, pyfunc_predict_fn)
        mlflow_model.signature = signature
    if metadata is not None:
        mlflow_model.metadata = metadata
    model_file = MODEL_FILE[serialization_format]
    with open(os.path.join(path, model_file), "wb") as f:
        f.write(data)
    extra_files_config = _copy_extra_files(extra_files, path)
    pyfunc.add_to_model(
        mlflow_model,
        loader_module="mgsk.mlflow",
        model_path=model_file,
        conda_env=_CONDA_ENV_FILE_NAME,
        python_env=_PYTHON_ENV_FILE_NAME,
        # No code here: mlflow.pyfunc would prepend it to sys.path before mgsk
        # runs. The mgsk section names it, and mgsk's loader appends it.
        code=None,
        predict_fn=pyfunc_predict_fn,
    )
    mlflow_model.add_flavor(
        FLAVOR_NAME,
        model_file=model_file,
        serialization_format=serialization_format,
        sha256=hashlib.sha256(data).hexdigest(),
        estimator=f"{type(model).__module__}.{type(model).__qualname__}",
        mgsk_version=mgsk.__version__,
        sklearn_version=sklearn.__version__,
        code=code_dir,
        **extra_files_config,
    )
    if size := get_total_file_size(path):
        mlflow_model.model_size_bytes = size
    mlflow_model.save(os.path.join(path, MLMODEL_FILE_NAME))
    write_environment(path, serialization_format, conda_env, pip_requirements, extra_pip_requirements)


def _remove_written(path, keep_directory):
    """Undo a failed save: the directory was absent or empty before it."""
    if not keep_directory:
        shutil.rmtree(path, ignore_errors=True)
        return
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            os.remove(entry.path)


def check_model(model, serialization_format=SKOPS, pyfunc_predict_fn="predict"):
    """Raise :class:`MgskModelError` with the reason unless ``model`` can be saved as asked."""
    if serialization_format not in FORMATS:
        raise MgskModelError(
            f"serialization_format must be one of {list(FORMATS)}, got {serialization_format!r}."
        )
    if not (hasattr(model, "fit") and hasattr(model, "get_params")):
        raise MgskModelError(
            f"model must be a fitted scikit-learn estimator (an mgsk estimator, or a Pipeline or "
            f"search built around one), got {type(model).__name__}."
        )
    try:
        check_is_fitted(model)
    except NotFittedError as exc:
        raise MgskModelError(f"{type(model).__name__} is not fitted: call fit before saving it.") from exc
    if pyfunc_predict_fn not in PREDICT_METHODS:
        raise MgskModelError(f"pyfunc_predict_fn must be one of {list(PREDICT_METHODS)}, got {pyfunc_predict_fn!r}.")
    check_predict_method(model, pyfunc_predict_fn)


def _infer_signature(model, example, pyfunc_predict_fn):
    """MLflow's inference from the example, plus the ``predict_method`` parameter for classifiers."""
    wrapped = MgskPyfuncModel(model)
    bound = types.SimpleNamespace(predict=getattr(wrapped, pyfunc_predict_fn))
    signature = _infer_signature_from_input_example(example, bound)
    if signature is not None and signature.params is None and len(available_methods(model)) > 1:
        signature.params = ParamSchema([ParamSpec(PREDICT_METHOD_PARAM, "string", pyfunc_predict_fn)])
    return signature


def _check_signature_params(model, signature, pyfunc_predict_fn):
    spec = next((p for p in (signature.params or []) if p.name == PREDICT_METHOD_PARAM), None)
    if spec is None:
        return
    check_predict_method(model, spec.default, what=f"the signature's {PREDICT_METHOD_PARAM!r} default")
    if spec.default != pyfunc_predict_fn:
        raise MgskModelError(
            f"The signature declares {PREDICT_METHOD_PARAM!r} with default {spec.default!r} but "
            f"pyfunc_predict_fn={pyfunc_predict_fn!r}; make them agree, or one would silently win."
        )


def log_model(
    model,
    name=None,
    *,
    artifact_path=None,
    signature=None,
    input_example=None,
    registered_model_name=None,
    await_registration_for=DEFAULT_AWAIT_MAX_SLEEP_SECONDS,
    serialization_format=SKOPS,
    pyfunc_predict_fn=None,
    metadata=None,
    code_paths=None,
    pip_requirements=None,
    extra_pip_requirements=None,
    conda_env=None,
    extra_files=None,
    validate_serving_input=True,
    signing_key=None,
    **kwargs,
):
    """Log a fitted mgsk model to the active run (or a new one) as an MLflow LoggedModel.

    Parameters
    ----------
    model : estimator
        As in :func:`save_model`.
    name : str, optional
        Name of the logged model (MLflow 3); ``"model"`` when neither it nor
        ``artifact_path`` is given.
    artifact_path : str, optional
        The older spelling of ``name`` (MLflow warns that it is deprecated).
    signature, input_example, serialization_format, pyfunc_predict_fn, metadata, code_paths, pip_requirements, extra_pip_requirements, conda_env, extra_files, signing_key
        As in :func:`save_model`.
    registered_model_name : str, optional
        Also register the model under this name (creating it if needed).
    await_registration_for : int, default=300
        Seconds to wait for the registered version to be READY; 0 or None
        does not wait.
    validate_serving_input : bool, default=True
        Whether MLflow reloads the logged model and predicts on the serving
        input example, warning if that fails (about a third of the cost of
        logging with an example; callers that just predicted on the same
        example may skip it).
    **kwargs
        ``params``, ``tags``, ``model_type``, ``step``, ``model_id``,
        ``run_id`` or ``prompts``, passed to :meth:`mlflow.models.Model.log`.

    Returns
    -------
    mlflow.models.model.ModelInfo
        With ``model_id``, ``model_uri`` (``models:/<model_id>``) and, when
        registered, ``registered_model_version``.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import mlflow, numpy as np
    >>> from mgsk import LinearRegressor
    >>> from mgsk.mlflow import load_model, log_model
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> previous_uri = mlflow.get_tracking_uri()
    >>> mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
    >>> experiment = mlflow.create_experiment("docs", artifact_location=(tmp / "artifacts").as_uri())
    >>> X = np.random.default_rng(0).normal(size=(50, 2))
    >>> model = LinearRegressor().fit(X, X @ [1.0, 2.0] + 3.0)
    >>> with mlflow.start_run(experiment_id=experiment):
    ...     info = log_model(model, name="model", input_example=X[:3])
    >>> info.model_uri == f"models:/{info.model_id}"
    True
    >>> bool((load_model(info.model_uri).predict(X) == model.predict(X)).all())
    True
    >>> mlflow.set_tracking_uri(previous_uri)
    """
    if unknown := set(kwargs) - _MODEL_LOG_KEYWORDS:
        raise TypeError(f"log_model() got unexpected keyword arguments {sorted(unknown)}.")
    pyfunc_predict_fn = default_method(model) if pyfunc_predict_fn is None else pyfunc_predict_fn
    check_model(model, serialization_format, pyfunc_predict_fn)
    if name is None and artifact_path is None:
        name = "model"
    return Model.log(
        artifact_path=artifact_path,
        name=name,
        flavor=_LOG_FLAVOR,
        flavor_name=FLAVOR_NAME,
        registered_model_name=registered_model_name,
        await_registration_for=await_registration_for,
        metadata=metadata,
        model=model,
        signature=signature,
        input_example=input_example,
        serialization_format=serialization_format,
        pyfunc_predict_fn=pyfunc_predict_fn,
        code_paths=code_paths,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        conda_env=conda_env,
        extra_files=extra_files,
        validate_serving_input=validate_serving_input,
        signing_key=signing_key,
        **kwargs,
    )


def _save_model_for_log(path, mlflow_model, validate_serving_input, **kwargs):
    # Model.log reads validate_serving_input from the keywords it then passes to save_model.
    save_model(path=path, mlflow_model=mlflow_model, **kwargs)


#: The flavor as Model.log sees it: a module-like object with save_model.
_LOG_FLAVOR = types.SimpleNamespace(__name__="mgsk.mlflow", save_model=_save_model_for_log)


def load_model(model_uri, dst_path=None, *, allow_pickle=None, verify_key=None):
    """Load an mgsk model as the original estimator object.

    Nothing in the model directory decides what runs: skops models load
    only mgsk's fixed list of trusted types and never touch ``sys.path``;
    a pickle model loads only when the caller allows pickle.

    Parameters
    ----------
    model_uri : str
        Any MLflow model URI: ``runs:/<run_id>/<name>``,
        ``models:/<name>/<version>``, ``models:/<name>@<alias>``,
        ``models:/<name>/<stage>``, ``models:/<model_id>``, a local path, or
        an artifact-store URI.
    dst_path : str, optional
        Existing local directory to download the model into; a temporary
        one by default.
    allow_pickle : bool, optional
        ``True`` allows loading a model saved with
        ``serialization_format="cloudpickle"`` (unpickling runs code from
        the file: only for models whose source you trust); ``False`` refuses
        it; ``None`` (default) allows it only if the environment variable
        ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` is set to ``true``.
    verify_key : str or path-like, optional
        Path of a PEM public key: the downloaded directory must carry a
        valid signature by the matching private key (see
        :func:`sign_model`), checked before any byte of it is read. Defaults
        to the environment variable ``MGSK_MODEL_PUBLIC_KEY``.

    Returns
    -------
    estimator
        The fitted model, with all its attributes (``re_``, ``weights_``,
        ``history_``, ...).

    Raises
    ------
    MgskModelError
        If the model file was changed after saving, contains a type mgsk does
        not trust, needs pickle the caller did not allow, ships code that
        would shadow an installed module, or fails signature verification.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from mgsk import LogisticRegressor
    >>> from mgsk.mlflow import load_model, save_model
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> path = os.path.join(tempfile.mkdtemp(), "clf")
    >>> save_model(LogisticRegressor().fit(X, ["a", "a", "b", "b"]), path)
    >>> clf = load_model(path)
    >>> clf.predict(X).tolist(), clf.n_iter_ > 0
    (['a', 'a', 'b', 'b'], True)
    """
    local_path = _download_artifact_from_uri(artifact_uri=model_uri, output_path=dst_path)
    return load_local_model(local_path, allow_pickle=allow_pickle, verify_key=verify_key)


def evaluation_model(model_uri, *, allow_pickle=None, verify_key=None):
    """An mgsk model for ``mlflow.models.evaluate``, with probability metrics for classifiers.

    MLflow's default evaluator computes probability metrics (``roc_auc``,
    ``log_loss``, ROC and precision-recall curves) only for models it
    recognises as scikit-learn, xgboost or catboost ones; an mgsk pyfunc
    model gets label metrics only. This loads the estimator with
    :func:`load_model` (the same fixed trust list, pickle rules and
    signature check; nothing is read from MLmodel that :func:`load_model`
    would not trust) and presents it to the evaluator as a scikit-learn
    model, in memory. Nothing on disk changes.

    Parameters
    ----------
    model_uri : str
        Any MLflow model URI of an mgsk model.
    allow_pickle, verify_key
        As in :func:`load_model`.

    Returns
    -------
    mlflow.pyfunc.PyFuncModel
        Pass it as ``model`` to ``mlflow.models.evaluate``; its
        ``predict`` is that of the mgsk pyfunc flavor.

    Examples
    --------
    See :ref:`mlflow` ("Evaluating a classifier").
    """
    local_path = _download_artifact_from_uri(artifact_uri=model_uri)
    estimator = load_local_model(local_path, allow_pickle=allow_pickle, verify_key=verify_key)
    meta = Model.load(os.path.join(local_path, MLMODEL_FILE_NAME))
    # MLflow's evaluator unwraps the raw model (get_raw_model) of pyfunc models whose
    # loader module it knows; the estimator here was loaded by mgsk, not by that module.
    meta.flavors[pyfunc.FLAVOR_NAME] = {**meta.flavors[pyfunc.FLAVOR_NAME], pyfunc.MAIN: "mlflow.sklearn"}
    return pyfunc.PyFuncModel(model_meta=meta, model_impl=MgskPyfuncModel(estimator))


def load_local_model(path, allow_pickle=None, verify_key=None):
    """The estimator in the local MLflow model directory ``path``."""
    verify_if_required(path, verify_key)
    conf = _read_flavor_configuration(path)
    if conf.get("code") not in (None, CODE_DIR):
        raise MgskModelError(f"The MLmodel file in {path} names code directory {conf['code']!r}; mgsk writes 'code'.")
    serialization_format = conf.get("serialization_format")
    if serialization_format not in FORMATS:
        raise MgskModelError(
            f"The MLmodel file in {path} names serialization format {serialization_format!r}; "
            f"mgsk knows {list(FORMATS)}."
        )
    model_file = os.path.join(path, MODEL_FILE[serialization_format])
    if serialization_format == CLOUDPICKLE:
        check_pickle_allowed(model_file, allow_pickle)
    try:
        with open(model_file, "rb") as f:
            data = f.read()
    except FileNotFoundError as exc:
        raise MgskModelError(f"The mgsk model file {model_file} is missing.") from exc
    if hashlib.sha256(data).hexdigest() != conf.get("sha256"):
        raise MgskModelError(
            f"{model_file} does not match the sha256 recorded in its MLmodel file: it was changed "
            "after it was saved. Refusing to load it."
        )
    _warn_on_version_change(conf)
    if serialization_format == CLOUDPICKLE:  # unpickling may need the shipped code; skops never does
        add_shipped_code(path, conf.get("code"))
    return deserialize(data, serialization_format, source=model_file, allow_pickle=allow_pickle)


def _read_flavor_configuration(path):
    # libyaml when available: the pure-Python parser MLflow's Model.load uses
    # costs more than the whole skops load of a small model.
    try:
        with open(os.path.join(path, MLMODEL_FILE_NAME)) as f:
            meta = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except FileNotFoundError as exc:
        raise MgskModelError(f"{path} is not an MLflow model directory: it has no MLmodel file.") from exc
    flavors = meta.get("flavors") if isinstance(meta, dict) else None
    if not isinstance(flavors, dict) or not isinstance(flavors.get(FLAVOR_NAME), dict):
        found = sorted(flavors) if isinstance(flavors, dict) else []
        raise MgskModelError(
            f'The model at {path} does not have the "{FLAVOR_NAME}" flavor (it has {found}); '
            "load it with the MLflow flavor it was saved with."
        )
    return flavors[FLAVOR_NAME]


def _warn_on_version_change(conf):
    saved = conf.get("sklearn_version")
    if saved and saved != sklearn.__version__:
        warnings.warn(
            f"This mgsk model was saved with scikit-learn {saved} and is loaded with "
            f"{sklearn.__version__}; predictions may differ.",
            UserWarning,
            stacklevel=3,
        )


def _load_pyfunc(path):
    """Called by ``mlflow.pyfunc.load_model`` with the local model directory.

    MLflow has already put any ``code`` folder named in the python_function
    section of MLmodel first on ``sys.path``; it is taken off again, and the
    model loads under the same rules as :func:`load_model` (pickle allowed
    only by ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true``, a signature
    required when ``MGSK_MODEL_PUBLIC_KEY`` is set).
    """
    model_dir = os.path.dirname(path) if os.path.isfile(path) else path
    withdraw_code_paths(model_dir)
    return MgskPyfuncModel(load_local_model(model_dir))
