"""The documentation builds, with warnings as errors and the gallery executed.

``python -m sphinx -W --keep-going -b html docs <tmp>/html`` in a subprocess:
any warning fails the test. Skipped only when Sphinx is not installed
(``pip install ".[docs]"``). The reStructuredText pages' own ``>>>`` examples
run as doctests, in a temporary directory.
"""

import doctest
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))


#: What a build may write into the source tree (all in .gitignore).
BUILD_OUTPUTS = {"_build", "auto_examples", "generated", "sg_execution_times.rst", "__pycache__"}


def _source_files():
    """Files under docs/ and examples/ (build outputs aside), and MLflow stores at the top."""
    found = set()
    for top in (DOCS, ROOT / "examples"):
        for path in top.rglob("*"):
            if not BUILD_OUTPUTS & set(path.relative_to(top).parts):
                found.add(str(path.relative_to(ROOT)))
    found |= {name for name in ("mlflow.db", "mlruns", "mlartifacts") if (ROOT / name).exists()}
    return found


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    if importlib.util.find_spec("sphinx") is None:
        pytest.skip('Sphinx is not installed: pip install ".[docs]"')
    # Outputs of an earlier build would keep pages of removed examples alive.
    for name in ("auto_examples", "generated", "sg_execution_times.rst"):
        path = DOCS / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    before = _source_files()
    html = tmp_path / "html"
    cmd = [
        sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
        # Run every example, even one sphinx-gallery has run before unchanged:
        # the package under it may have changed.
        "-D", "sphinx_gallery_conf.run_stale_examples=1",
        "-d", str(tmp_path / "doctrees"),
        str(DOCS), str(html),
    ]
    env = {**os.environ, "MPLBACKEND": "Agg", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    env.pop("MGSK_DOCS_PLOT_GALLERY", None)
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    log = proc.stdout[-8000:] + "\n" + proc.stderr[-8000:]
    assert proc.returncode == 0, log

    for page in [*_rst_pages(), "auto_examples/index"]:
        assert (html / f"{page}.html").is_file(), page
    for example in EXAMPLES:
        page = html / "auto_examples" / f"{example.stem}.html"
        assert page.is_file(), example.name
        # Executed: every gallery example draws at least one figure.
        assert f"sphx_glr_{example.stem}_001.png" in page.read_text(encoding="utf-8"), example.name

    after = _source_files()
    assert after <= before, f"the build left files in the source tree: {sorted(after - before)}"


def _rst_sources():
    """The reStructuredText pages written by hand (templates and build outputs aside)."""
    return sorted(p for p in DOCS.rglob("*.rst")
                  if not ({"_templates"} | BUILD_OUTPUTS) & set(p.relative_to(DOCS).parts)
                  and p.name != "sg_execution_times.rst")


def _rst_pages():
    """Every hand-written page, as its document name (``user_guide/theory``)."""
    return [str(p.relative_to(DOCS).with_suffix("")) for p in _rst_sources()]


def _rst_pages_with_examples():
    return [p for p in _rst_sources() if ">>> " in p.read_text(encoding="utf-8")]


@pytest.mark.parametrize("page", _rst_pages_with_examples(), ids=lambda p: str(p.relative_to(DOCS)))
def test_rst_page_examples(page, tmp_path, monkeypatch):
    text = page.read_text(encoding="utf-8")
    if "import mlflow" in text:
        pytest.importorskip("mlflow")
    # Examples that write (an MLflow store, models) write into tmp_path.
    monkeypatch.chdir(tmp_path)
    mlflow = sys.modules.get("mlflow")
    previous = (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) if mlflow else None
    try:
        result = doctest.testfile(
            str(page), module_relative=False, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
            verbose=False, report=True, name=page.name,
        )
    finally:
        _reset_mlflow(previous, autolog="autolog(" in text)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {page.name}"


def _reset_mlflow(previous, autolog):
    """Undo what a page's examples did to MLflow's global state."""
    mlflow = sys.modules.get("mlflow")
    if mlflow is None:
        return
    while mlflow.active_run() is not None:
        mlflow.end_run()
    if autolog:
        sys.modules["mgsk.mlflow"].autolog(disable=True)
    if previous is None:
        previous = (None, None)
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])
