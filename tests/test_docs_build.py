"""The documentation builds, with warnings as errors and the gallery executed.

``python -m sphinx -W --keep-going -b html docs <tmp>/html`` in a subprocess:
any warning fails the test. Skipped only when Sphinx is not installed
(``pip install ".[docs]"``). The reStructuredText pages' own ``>>>`` examples
run as doctests, in a temporary directory.
"""

import doctest
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))


def _untracked_files():
    """Files git would show as new (not ignored), or None without git."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {line[3:] for line in out.splitlines() if line.startswith("??")}


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    if importlib.util.find_spec("sphinx") is None:
        pytest.skip('Sphinx is not installed: pip install ".[docs]"')
    before = _untracked_files()
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

    for page in ["index", "install", "quickstart", "user_guide/index", "api", "changelog", "auto_examples/index"]:
        assert (html / f"{page}.html").is_file(), page
    for example in EXAMPLES:
        page = html / "auto_examples" / f"{example.stem}.html"
        assert page.is_file(), example.name
        # Executed: every gallery example draws at least one figure.
        assert f"sphx_glr_{example.stem}_001.png" in page.read_text(encoding="utf-8"), example.name

    after = _untracked_files()
    if before is not None and after is not None:
        assert after <= before, f"the build left files in the repository: {sorted(after - before)}"


def _rst_pages_with_examples():
    return sorted(p for p in DOCS.rglob("*.rst") if "_build" not in p.parts
                  and "auto_examples" not in p.parts and "generated" not in p.parts
                  and ">>> " in p.read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", _rst_pages_with_examples(), ids=lambda p: str(p.relative_to(DOCS)))
def test_rst_page_examples(page, tmp_path, monkeypatch):
    text = page.read_text(encoding="utf-8")
    if "import mlflow" in text:
        pytest.importorskip("mlflow")
    # Examples that write (an MLflow store, models) write into tmp_path.
    monkeypatch.chdir(tmp_path)
    result = doctest.testfile(
        str(page), module_relative=False, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False, report=True, name=page.name,
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {page.name}"
