"""Signed model directories with OpenSSF ``model-signing`` in key-pair mode (``pip install mgsk[sign]``).

The signature, ``model.sig`` in the model directory, is a Sigstore bundle
over the SHA-256 of every file of the directory, MLmodel included, signed
with an elliptic-curve private key (P-256, P-384 or P-521); it works offline.
Two names are outside the signed set: the signature itself and
``registered_model_meta``, which MLflow writes into every download of a
``models:/<name>/<version>`` URI (metadata that no loader executes).
"""

import ast
import os
import pathlib
import tempfile

from ._errors import MgskModelError

SIGNATURE_FILE = "model.sig"
#: A PEM public key; when set, every mgsk load (native and pyfunc) requires a valid signature.
PUBLIC_KEY_ENV = "MGSK_MODEL_PUBLIC_KEY"
_REGISTERED_MODEL_META = "registered_model_meta"
_UNSIGNED = (SIGNATURE_FILE, _REGISTERED_MODEL_META)


def _model_signing():
    try:
        import model_signing
    except ImportError as exc:
        raise MgskModelError(
            "Signing and verifying models needs the model-signing package: pip install 'mgsk[sign]'."
        ) from exc
    return model_signing


def _hashing_config(model_signing):
    # git files are signed too: nothing in a model directory is exempt but the two above.
    return model_signing.hashing.Config().set_ignored_paths(paths=list(_UNSIGNED), ignore_git_paths=False)


def local_model_dir(path_or_uri, dst_path=None):
    """A local directory holding the model: ``path_or_uri`` itself, or a download of it."""
    if isinstance(path_or_uri, os.PathLike) or os.path.isdir(str(path_or_uri)):
        path = os.path.abspath(os.fspath(path_or_uri))
        if not os.path.isdir(path):
            raise MgskModelError(f"{path} is not a model directory.")
        return path
    from mlflow.tracking.artifact_utils import _download_artifact_from_uri

    return _download_artifact_from_uri(artifact_uri=str(path_or_uri), output_path=dst_path)


def sign_model(path_or_uri, *, private_key, password=None):
    """Sign every file of an MLflow model directory with an elliptic-curve private key.

    Writes the signature ``model.sig`` into the model directory: for a local
    directory in place, for a model URI (``runs:/``, ``models:/``, an
    artifact-store URI) into the artifact store, next to the model's files.
    Any later change to any file (MLmodel, requirements.txt, the model
    file, an added or removed file) makes :func:`verify_model` fail.

    Parameters
    ----------
    path_or_uri : str or path-like
        A local model directory or an MLflow model URI.
    private_key : str or path-like
        Path of a PEM private key on the P-256, P-384 or P-521 curve.
    password : bytes, optional
        Password of an encrypted private key.

    Returns
    -------
    str
        The path (or artifact URI) of the written signature.

    Raises
    ------
    MgskModelError
        If model-signing is missing or the key cannot be used.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from cryptography.hazmat.primitives import serialization
    >>> from cryptography.hazmat.primitives.asymmetric import ec
    >>> from mgsk import LinearRegressor
    >>> from mgsk.mlflow import load_model, save_model, sign_model, verify_model
    >>> tmp = tempfile.mkdtemp()
    >>> key = ec.generate_private_key(ec.SECP256R1())
    >>> with open(os.path.join(tmp, "key.pem"), "wb") as f:
    ...     _ = f.write(key.private_bytes(serialization.Encoding.PEM,
    ...         serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    >>> with open(os.path.join(tmp, "key.pub"), "wb") as f:
    ...     _ = f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
    ...         serialization.PublicFormat.SubjectPublicKeyInfo))
    >>> X = np.arange(20.0).reshape(10, 2)
    >>> path = os.path.join(tmp, "model")
    >>> save_model(LinearRegressor().fit(X, X @ [1.0, 2.0]), path)
    >>> os.path.basename(sign_model(path, private_key=os.path.join(tmp, "key.pem")))
    'model.sig'
    >>> verify_model(path, public_key=os.path.join(tmp, "key.pub")) == path
    True
    >>> load_model(path, verify_key=os.path.join(tmp, "key.pub")).predict(X[:2])
    array([2., 8.])
    """
    model_signing = _model_signing()
    key_path = pathlib.Path(os.fspath(private_key))
    if os.path.isdir(os.fspath(path_or_uri)):
        local = os.path.abspath(os.fspath(path_or_uri))
        _sign_local(model_signing, local, key_path, password)
        return os.path.join(local, SIGNATURE_FILE)
    with tempfile.TemporaryDirectory() as tmp:
        local = local_model_dir(path_or_uri, dst_path=tmp)
        _sign_local(model_signing, local, key_path, password)
        return _upload_signature(str(path_or_uri), os.path.join(local, SIGNATURE_FILE))


def _sign_local(model_signing, path, key_path, password):
    if not os.path.isfile(os.path.join(path, "MLmodel")):
        raise MgskModelError(f"{path} is not an MLflow model directory: it has no MLmodel file.")
    try:
        signer = model_signing.signing.Config().use_elliptic_key_signer(private_key=key_path, password=password)
    except (OSError, ValueError, TypeError) as exc:
        raise MgskModelError(f"Cannot sign with {key_path}: {exc}") from exc
    signer.set_hashing_config(_hashing_config(model_signing)).sign(path, os.path.join(path, SIGNATURE_FILE))


def _upload_signature(model_uri, signature_path):
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository
    from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository

    if model_uri.startswith("models:/"):
        model_uri = ModelsArtifactRepository.get_underlying_uri(model_uri)
    elif model_uri.startswith("runs:/"):
        model_uri = RunsArtifactRepository.get_underlying_uri(model_uri)
    get_artifact_repository(model_uri).log_artifact(signature_path)
    return f"{model_uri.rstrip('/')}/{SIGNATURE_FILE}"


def verify_model(path_or_uri, *, public_key, dst_path=None):
    """Check that a model directory is exactly what the holder of the private key signed.

    Parameters
    ----------
    path_or_uri : str or path-like
        A local model directory or an MLflow model URI (downloaded first).
    public_key : str or path-like
        Path of the PEM public key matching the signing key.
    dst_path : str, optional
        Existing local directory to download a model URI into.

    Returns
    -------
    str
        The local model directory that was verified: load from it, not from
        a second download.

    Raises
    ------
    MgskModelError
        If the signature is missing, was not made with the matching private
        key, or any file was changed, added or removed since signing; the
        message names the file(s).

    Examples
    --------
    See :func:`sign_model`.
    """
    model_signing = _model_signing()
    path = local_model_dir(path_or_uri, dst_path)
    verify_local(model_signing, path, public_key)
    return path


def verify_local(model_signing, path, public_key):
    """Raise :class:`MgskModelError` naming the files unless ``path`` matches its signature."""
    signature = os.path.join(path, SIGNATURE_FILE)
    if not os.path.isfile(signature):
        raise MgskModelError(
            f"The model in {path} is not signed: {signature} is missing, and a signature made with the "
            f"private key of {os.fspath(public_key)} is required. Sign it with mgsk.mlflow.sign_model."
        )
    try:
        verifier = model_signing.verifying.Config().use_elliptic_key_verifier(
            public_key=pathlib.Path(os.fspath(public_key))
        )
    except (OSError, ValueError, TypeError) as exc:
        raise MgskModelError(f"Cannot verify with the public key {os.fspath(public_key)}: {exc}") from exc
    try:
        verifier.set_hashing_config(_hashing_config(model_signing)).verify(pathlib.Path(path), signature)
    except Exception as exc:  # model-signing raises ValueError, cryptography's InvalidSignature, JSON errors
        raise MgskModelError(f"Refusing the model in {path}: {_describe_failure(exc, signature)}") from exc


def _describe_failure(exc, signature):
    message = str(exc)
    if message.startswith("Signature mismatch: "):
        try:
            differences = ast.literal_eval(message.removeprefix("Signature mismatch: "))
        except (ValueError, SyntaxError):
            differences = [message]
        return "its files differ from what was signed: " + "; ".join(differences)
    if "Key mismatch" in message or type(exc).__name__ == "InvalidSignature":
        return f"{signature} was not made with the private key matching this public key."
    symlink = "symbolic link" in message or "symlink" in message
    if symlink:
        return f"it contains a symbolic link, which a signed model may not: {message}"
    return f"{signature} is not a valid signature ({type(exc).__name__}: {message})."


def required_public_key(verify_key=None):
    """The key a load must verify with: ``verify_key``, else ``$MGSK_MODEL_PUBLIC_KEY``, else None."""
    if verify_key is not None:
        return verify_key
    return os.environ.get(PUBLIC_KEY_ENV) or None


def verify_if_required(path, verify_key=None):
    """Verify the local model directory ``path`` when a key is given or set in the environment."""
    key = required_public_key(verify_key)
    if key is not None:
        verify_local(_model_signing(), path, key)
