"""A report of what in a model directory would execute code or widen trust, read without loading it."""

import dataclasses
import hashlib
import os
import zipfile

import yaml

from ._errors import MgskModelError
from ._serialization import FORMATS, MODEL_FILE
from ._signing import SIGNATURE_FILE, local_model_dir, required_public_key, verify_local
from ._trust import shadowed_modules, shipped_modules

_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".dill", ".cloudpickle")
_MGSK_LOADER = "mgsk.mlflow"


@dataclasses.dataclass(frozen=True)
class Finding:
    """One thing :func:`inspect_model` reports.

    Parameters
    ----------
    kind : str
        ``"pickle"``, ``"code"``, ``"loader_module"``, ``"untrusted_types"``,
        ``"hash_mismatch"``, ``"serialization_format"``, ``"wheel"``,
        ``"symlink"``, ``"mlmodel"`` or ``"signature"``.
    path : str
        The file or folder concerned, relative to the model directory.
    detail : str
        What was found and why it matters.

    Examples
    --------
    >>> from mgsk.mlflow import Finding
    >>> print(Finding("pickle", "model.pkl", "a pickle file"))
    model.pkl: pickle: a pickle file
    """

    kind: str
    path: str
    detail: str

    def __str__(self):
        return f"{self.path}: {self.kind}: {self.detail}"


def inspect_model(path_or_uri, *, public_key=None, dst_path=None):
    """Report everything in a model directory that would execute code or widen trust.

    Reads the directory without loading anything from it (no unpickling,
    no import of shipped code), so it is safe on any model, of any MLflow
    flavor: check a downloaded model before loading it with anything.

    Parameters
    ----------
    path_or_uri : str or path-like
        A local model directory or an MLflow model URI (downloaded first).
    public_key : str or path-like, optional
        Path of a PEM public key: also report a missing or invalid signature.
        Defaults to the environment variable ``MGSK_MODEL_PUBLIC_KEY``;
        without a key, signatures are not checked.
    dst_path : str, optional
        Existing local directory to download a model URI into.

    Returns
    -------
    list of Finding
        Empty for a clean mgsk model. Otherwise one :class:`Finding` per
        pickle file, ``code`` folder (with the modules it ships and those it
        would shadow), python_function ``loader_module`` other than
        ``mgsk.mlflow``, skops file with types outside
        :func:`trusted_types`, model file whose sha256 differs from MLmodel,
        wheel other than that of the running mgsk (pip installs it in a
        serving environment), symbolic link, and missing or invalid
        signature.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from mgsk import LinearRegressor
    >>> from mgsk.mlflow import inspect_model, save_model
    >>> X = np.arange(20.0).reshape(10, 2)
    >>> path = os.path.join(tempfile.mkdtemp(), "model")
    >>> save_model(LinearRegressor().fit(X, X @ [1.0, 2.0]), path)
    >>> inspect_model(path)
    []
    >>> with open(os.path.join(path, "model.pkl"), "wb") as f:
    ...     _ = f.write(b"\\x80\\x05N.")
    >>> [str(finding) for finding in inspect_model(path)]  # doctest: +ELLIPSIS
    ['model.pkl: pickle: a pickle file: loading it runs code it names...']
    """
    path = local_model_dir(path_or_uri, dst_path)
    meta, findings = _read_mlmodel(path)
    flavors = meta.get("flavors") if isinstance(meta.get("flavors"), dict) else {}
    findings += _files(path)
    findings += _code_folders(path, flavors)
    findings += _loader_module(flavors)
    findings += _trust_in_mlmodel(flavors)
    findings += _mgsk_flavor(path, flavors.get("mgsk"))
    findings += _signature(path, required_public_key(public_key))
    return findings


def _read_mlmodel(path):
    try:
        with open(os.path.join(path, "MLmodel")) as f:
            meta = yaml.safe_load(f)
    except FileNotFoundError:
        return {}, [Finding("mlmodel", "MLmodel", "missing: this is not an MLflow model directory")]
    except yaml.YAMLError as exc:
        return {}, [Finding("mlmodel", "MLmodel", f"not valid YAML: {exc}")]
    return (meta, []) if isinstance(meta, dict) else ({}, [Finding("mlmodel", "MLmodel", "not a mapping")])


def _files(path):
    """Pickle files (by name or content), skops files with untrusted types, symbolic links."""
    findings = []
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, path)
            if os.path.islink(full):
                findings.append(Finding("symlink", rel, f"a symbolic link to {os.readlink(full)}"))
            elif name in files:
                findings += _file(full, rel)
    return findings


def _file(full, rel):
    with open(full, "rb") as f:
        head = f.read(2)
    if rel.endswith(_PICKLE_SUFFIXES) or (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")):
        return [Finding("pickle", rel, "a pickle file: loading it runs code it names, with your privileges")]
    if rel.endswith(".skops"):
        return _skops(full, rel)
    if rel.endswith(".whl"):
        return _wheel(full, rel)
    if head == b"PK" and zipfile.is_zipfile(full):
        with zipfile.ZipFile(full) as archive:
            names = archive.namelist()
        if pickled := [n for n in names if n.endswith(_PICKLE_SUFFIXES)]:
            return [Finding("pickle", rel, f"an archive holding pickle data ({', '.join(pickled[:3])})")]
    return []


def _skops(full, rel):
    import skops.io

    from ._serialization import trusted_types

    try:
        untrusted = set(skops.io.get_untrusted_types(file=full)) - set(trusted_types())
    except Exception as exc:
        return [Finding("untrusted_types", rel, f"not a readable skops file: {exc!r}")]
    if untrusted:
        return [Finding("untrusted_types", rel, f"types outside mgsk's trusted list: {', '.join(sorted(untrusted))}")]
    return []


def _wheel(full, rel):
    """A wheel is code that ``pip install -r requirements.txt`` installs, unless it is the running mgsk's."""
    from ._requirements import _build_mgsk_wheel

    with open(full, "rb") as f, open(_build_mgsk_wheel(), "rb") as running:
        if f.read() == running.read():
            return []
    return [Finding("wheel", rel, "a wheel, not that of the running mgsk: serving environments built from "
                    "requirements.txt install and run its code")]


def _code_folders(path, flavors):
    entries = {conf.get("code") for conf in flavors.values() if isinstance(conf, dict) and conf.get("code")}
    if os.path.isdir(os.path.join(path, "code")):
        entries.add("code")
    findings = []
    for entry in sorted(map(str, entries)):
        code_dir = os.path.normpath(os.path.join(path, entry))
        named_by = sorted(name for name, conf in flavors.items() if isinstance(conf, dict) and conf.get("code") == entry)
        where = f"named as code by the {', '.join(named_by)} flavor(s)" if named_by else "not named by MLmodel"
        if "python_function" in named_by:
            where += "; mlflow.pyfunc.load_model puts it first on sys.path before any flavor code runs"
        if not os.path.isdir(code_dir) or os.path.commonpath([code_dir, path]) != path:
            findings.append(Finding("code", entry, f"{where}; it is not a folder inside the model directory"))
            continue
        modules = shipped_modules(code_dir)
        shadowed = shadowed_modules(code_dir)
        detail = f"{where}; ships modules {modules or 'none'}"
        if shadowed:
            detail += f"; would shadow installed or standard-library modules {shadowed}"
        findings.append(Finding("code", entry, detail))
    return findings


def _loader_module(flavors):
    pyfunc_conf = flavors.get("python_function")
    if not isinstance(pyfunc_conf, dict):
        return []
    loader = pyfunc_conf.get("loader_module")
    if loader == _MGSK_LOADER:
        return []
    return [
        Finding(
            "loader_module",
            "MLmodel",
            f"mlflow.pyfunc.load_model imports {loader!r} and runs its _load_pyfunc; mgsk's checks do not apply",
        )
    ]


def _trust_in_mlmodel(flavors):
    """Flavors (mlflow.sklearn) that read extra skops trusted types from MLmodel, which anyone can edit."""
    return [
        Finding("untrusted_types", "MLmodel", f"the {name} flavor trusts the types MLmodel lists: {conf['skops_trusted_types']}")
        for name, conf in flavors.items()
        if isinstance(conf, dict) and conf.get("skops_trusted_types")
    ]


def _mgsk_flavor(path, conf):
    if not isinstance(conf, dict):
        return []
    serialization_format = conf.get("serialization_format")
    if serialization_format not in FORMATS:
        return [Finding("serialization_format", "MLmodel", f"unknown mgsk serialization format {serialization_format!r}")]
    model_file = MODEL_FILE[serialization_format]
    try:
        with open(os.path.join(path, model_file), "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
    except FileNotFoundError:
        return [Finding("hash_mismatch", model_file, "missing, though MLmodel names it")]
    if digest != conf.get("sha256"):
        return [Finding("hash_mismatch", model_file, "its sha256 differs from the one in MLmodel: changed after saving")]
    return []


def _signature(path, public_key):
    if public_key is None:
        return []
    from ._signing import _model_signing

    try:
        verify_local(_model_signing(), path, public_key)
    except MgskModelError as exc:
        return [Finding("signature", SIGNATURE_FILE, exc.message)]
    return []
