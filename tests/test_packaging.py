"""The source tree builds into an sdist and a wheel that carry the data sets, without warnings.

The build runs on a copy of the checkout (a build writes ``build/`` and
``*.egg-info`` next to ``setup.cfg``), with the installed setuptools
(``--no-build-isolation``: no network). The wheel is then installed into a
temporary folder and its data-set loaders are called from there.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_FILES = sorted(p.name for p in (ROOT / "mgsk" / "datasets" / "data").glob("*.csv"))
#: Left out of the copy: version control, caches and outputs of earlier builds or runs.
NOT_SOURCES = shutil.ignore_patterns(
    ".git", "__pycache__", "*.egg-info", "build", "dist", "_build", "auto_examples", "generated",
    ".hypothesis", ".pytest_cache", "mlruns", "mlartifacts", "mlflow.db", ".venv", "venv", ".tox", ".nox",
)


def _run(args, cwd, env=None):
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return output


def _assert_no_warning(output, step):
    # Setuptools' BuildBackendWarning ("Package 'mgsk.datasets.data' is absent from the
    # packages configuration"), its deprecation warnings and pip's own all say "Warning".
    lines = [line for line in output.splitlines() if "warning" in line.lower()]
    assert not lines, f"{step} warned:\n" + "\n".join(lines) + "\n" + output[-3000:]


@pytest.mark.slow
def test_wheel_and_sdist_carry_the_data_sets_and_build_without_warnings(tmp_path):
    spec = importlib.util.find_spec("setuptools")
    if spec is None:
        pytest.skip('setuptools is not installed: pip install ".[test]"')
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCES)
    expected = {f"mgsk/datasets/data/{name}" for name in DATA_FILES}

    # The README's route, ``pip install .``: a wheel straight from the source tree.
    # (Setuptools' warnings about the package configuration show only on this route.)
    wheel_dir = tmp_path / "wheel"
    out = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheel_dir), str(src)], tmp_path)
    _assert_no_warning(out, "pip wheel")
    (wheel,) = wheel_dir.glob("mgsk-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        shipped = set(zf.namelist())
    assert expected <= shipped, sorted(n for n in shipped if "datasets" in n)

    sdist_dir = tmp_path / "sdist"
    sdist_dir.mkdir()
    hook = f"from setuptools import build_meta; build_meta.build_sdist({str(sdist_dir)!r})"
    _assert_no_warning(_run([sys.executable, "-c", hook], src), "build_sdist")
    (sdist,) = sdist_dir.glob("mgsk-*.tar.gz")
    with tarfile.open(sdist) as tf:
        packed = {name.split("/", 1)[1] for name in tf.getnames() if "/" in name}
    assert expected <= packed, sorted(n for n in packed if "datasets" in n)

    site = tmp_path / "site"
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)], tmp_path)
    probe = (
        "import mgsk, mgsk.datasets as d; "
        "print(mgsk.__file__); "
        "print([len(f(return_X_y=True)[1]) for f in (d.load_stackloss, d.load_phones, d.load_stars, d.load_hbk)])"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = _run([sys.executable, "-c", probe], tmp_path, env=env).splitlines()
    assert Path(out[0]).is_relative_to(site), out
    assert out[1] == "[21, 24, 47, 75]", out
