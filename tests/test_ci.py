"""``.ci/run`` and ``.ci/leftovers`` on throw-away git repositories.

``.ci/leftovers`` runs on a temporary repository before and after a stand-in
test run; ``.ci/run`` itself runs once, end to end, on a repository whose
README's test command writes an MLflow store into the checkout: it must fail,
name what was left, and remove its virtual environment.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git_repo(path):
    """A committed repository with mgsk's .gitignore, a package and a docs folder."""
    (path / "pkg").mkdir(parents=True)
    (path / "docs").mkdir()
    shutil.copy(ROOT / ".gitignore", path / ".gitignore")
    (path / "pkg" / "__init__.py").write_text("x = 1\n")
    (path / "docs" / "index.rst").write_text("Docs\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=path, check=True)
    subprocess.run([*git, "add", "-A"], cwd=path, check=True)
    subprocess.run([*git, "commit", "-qm", "start"], cwd=path, check=True)
    return path


def leftovers(repo, action, snapshot):
    done = subprocess.run(
        [str(ROOT / ".ci" / "leftovers"), action, str(snapshot)], cwd=repo, capture_output=True, text=True, timeout=60
    )
    return done.returncode, done.stderr


def write(path, text="x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def age(path, seconds=60):
    """Date ``path`` back, so that only what a run writes later is newer than its snapshot."""
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        st = p.stat()
        os.utime(p, (st.st_atime - seconds, st.st_mtime - seconds))


def test_leftovers_names_mlflow_stores_and_changed_files(tmp_path):
    repo = git_repo(tmp_path / "repo")
    snapshot = tmp_path / "before"
    assert leftovers(repo, "snapshot", snapshot)[0] == 0
    assert leftovers(repo, "check", snapshot) == (0, "")

    write(repo / "mlruns" / "0" / "meta.yaml")
    write(repo / "mlflow.db")
    write(repo / "mlartifacts" / "1" / "model.skops")
    write(repo / "pkg" / "__init__.py", "x = 2\n")
    write(repo / "docs" / "stray.txt")
    code, err = leftovers(repo, "check", snapshot)
    assert code == 1
    named = {line.strip() for line in err.splitlines()[1:]}
    assert named == {"mlruns/", "mlflow.db", "mlartifacts/", "pkg/__init__.py", "docs/stray.txt"}


def test_leftovers_ignores_caches_and_build_outputs(tmp_path):
    repo = git_repo(tmp_path / "repo")
    snapshot = tmp_path / "before"
    leftovers(repo, "snapshot", snapshot)
    for path in ["pkg/__pycache__/m.pyc", ".pytest_cache/v/x", ".hypothesis/examples/x", "build/lib/pkg/m.py",
                 "pkg.egg-info/PKG-INFO", "docs/_build/html/index.html", "docs/auto_examples/index.rst",
                 "docs/generated/pkg.x.rst", "docs/sg_execution_times.rst"]:
        write(repo / path)
    assert leftovers(repo, "check", snapshot) == (0, "")
    # ... but not a file of the same name elsewhere
    write(repo / "docs" / "build" / "x.png")
    assert leftovers(repo, "check", snapshot)[0] == 1


def test_leftovers_judges_what_was_there_before_by_its_time(tmp_path):
    repo = git_repo(tmp_path / "repo")
    # A user's own demo store and notes, there before the run.
    write(repo / "mlruns" / "0" / "meta.yaml")
    write(repo / "notes.txt")
    age(repo / "mlruns")
    age(repo / "notes.txt")
    snapshot = tmp_path / "before"
    leftovers(repo, "snapshot", snapshot)
    assert leftovers(repo, "check", snapshot) == (0, "")
    write(repo / "mlruns" / "1" / "meta.yaml")  # the run writes into the existing store
    code, err = leftovers(repo, "check", snapshot)
    assert code == 1 and "mlruns/" in err and "notes.txt" not in err


@pytest.mark.slow
def test_ci_run_fails_on_a_stray_store_and_removes_its_venv(tmp_path):
    repo = git_repo(tmp_path / "repo")
    shutil.copytree(ROOT / ".ci", repo / ".ci")
    # The README's test command, as .ci/run finds it: here a run that leaves a store behind.
    write(repo / "README.md", "# x\n\n- Run the tests: `touch mlflow.db && mkdir -p pkg/__pycache__`\n")
    temp = tmp_path / "temp"
    temp.mkdir()
    # PIP_NO_INDEX: .ci/run's "pip install --upgrade pip" keeps the venv's pip, offline.
    env = {**os.environ, "TMPDIR": str(temp), "PIP_NO_INDEX": "1"}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run([str(repo / ".ci" / "run")], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "+ touch mlflow.db" in done.stdout
    assert "  mlflow.db" in done.stderr.splitlines() and "__pycache__" not in done.stderr, done.stderr
    assert list(temp.iterdir()) == [], "the virtual environment was left in the temp folder"
