"""What the README, the docs and the sources say about the project is true of the project.

* Every ``benchmarks/….py`` and ``examples/….py`` they name exists, and no
  script is named without its folder (a reader types the path as written);
  every file the README links to exists.
* The supported MLflow range is stated once, in ``docs/install.rst``
  ("Supported MLflow versions"), and agrees with the ``mlflow`` extra of
  ``setup.cfg``; wherever else a range or a tested MLflow version is named,
  it agrees too.
"""

import configparser
import re
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
#: Outputs of a docs build, not sources.
BUILT = {"_build", "auto_examples", "generated", "__pycache__"}


def _texts():
    """(path relative to the root, text) of the README, the docs and every project script."""
    paths = [ROOT / "README.md", *(ROOT / "docs").rglob("*.rst"), *(ROOT / "docs").rglob("*.py")]
    for folder in ("examples", "benchmarks", "mgsk", ".ci"):
        paths += (ROOT / folder).rglob("*.py")
    paths.append(ROOT / ".ci" / "run")
    for path in sorted(set(paths)):
        rel = path.relative_to(ROOT)
        if path.is_file() and not BUILT & set(rel.parts):
            yield str(rel), path.read_text(encoding="utf-8")


TEXTS = dict(_texts())
SCRIPT_PATH = re.compile(r"(?<![\w/.-])((?:benchmarks|examples)/[\w/.-]*?\.py)\b")
BARE_SCRIPT = re.compile(r"(?<![\w/.-])((?:bench|plot)_\w+\.py)\b")


def test_the_scan_covers_the_readme_docs_examples_and_benchmarks():
    assert {"README.md", "docs/install.rst", "examples/plot_outliers_and_leverage.py",
            "benchmarks/bench_estimators.py"} <= set(TEXTS)
    named = {m[1] for text in TEXTS.values() for m in SCRIPT_PATH.finditer(text)}
    assert "benchmarks/bench_estimators.py" in named


def test_named_scripts_exist_and_prose_names_their_folder():
    scripts = {p.name for folder in ("examples", "benchmarks") for p in (ROOT / folder).glob("*.py")}
    problems = []
    for source, text in TEXTS.items():
        missing = sorted({m[1] for m in SCRIPT_PATH.finditer(text) if not (ROOT / m[1]).is_file()})
        if missing:
            problems.append(f"{source} names scripts that do not exist: {missing}")
        bare = sorted({m[1] for m in BARE_SCRIPT.finditer(text)})
        if source.endswith((".md", ".rst")) and bare:
            # A reader types the path as written.
            problems.append(f"{source} names scripts without their folder (benchmarks/ or examples/): {bare}")
        elif set(bare) - scripts:
            problems.append(f"{source} names scripts that are in neither folder: {sorted(set(bare) - scripts)}")
    assert not problems, "\n".join(problems)


def test_readme_links_exist():
    links = re.findall(r"\]\(([^)#\s]+)\)", TEXTS["README.md"])
    local = [link for link in links if "://" not in link]
    assert local, "the README links no documentation"
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def _mlflow_extra():
    """(lowest, bound) of ``mlflow>=lowest,<bound`` in setup.cfg's ``mlflow`` extra."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    lines = config["options.extras_require"]["mlflow"].split("\n")
    (requirement,) = [line.strip() for line in lines if re.match(r"\s*mlflow\b(?![-\w])", line)]
    match = re.fullmatch(r"mlflow>=(\d+\.\d+),<(\d+\.\d+)", requirement.replace(" ", ""))
    assert match, f"setup.cfg: the mlflow extra should pin mlflow>=X.Y,<X.Z, not {requirement!r}"
    return match[1], match[2]


def _minor(version):
    return tuple(int(part) for part in version.split(".")[:2])


def test_mlflow_range_in_setup_cfg_and_install_page_agree():
    lowest, bound = _mlflow_extra()
    text = " ".join((ROOT / "docs" / "install.rst").read_text(encoding="utf-8").split())
    assert f"**Supported MLflow versions.** MLflow {lowest} or newer, below {bound}: the ``mlflow`` extra " \
           f"requires ``mlflow>={lowest},<{bound}``." in text
    tested = re.search(r"have passed on ((?:\d+\.\d+\.\d+(?:, | and )?)+)\.", text)
    assert tested, "docs/install.rst should name the MLflow releases the suite has passed on"
    minors = sorted(_minor(v) for v in re.findall(r"\d+\.\d+\.\d+", tested[1]))
    # Tested at both ends: the oldest supported minor release and the newest one below the bound.
    assert minors[0] == _minor(lowest), tested[1]
    assert minors[-1] == (_minor(bound)[0], _minor(bound)[1] - 1), tested[1]


def test_every_other_statement_of_the_mlflow_range_agrees():
    lowest, bound = _mlflow_extra()
    problems = []
    for source, raw in TEXTS.items():
        text = " ".join(raw.split())
        for low, high in re.findall(r"mlflow\s*>=\s*(\d+\.\d+)\s*,\s*<\s*(\d+\.\d+)", text, flags=re.I):
            if (low, high) != (lowest, bound):
                problems.append(f"{source} pins mlflow>={low},<{high}")
        for high in re.findall(r"MLflow.{0,40}?\bbelow (\d+\.\d+)", text):
            # An MLflow version (same major release), not another package's ("Starlette below 1.0").
            if _minor(high)[0] == _minor(bound)[0] and high != bound:
                problems.append(f"{source} says MLflow below {high}")
        for versions in re.findall(r"[Tt]ested (?:with|on|against) MLflow ((?:\d+\.\d+\.\d+(?:, | and )?)+)", text):
            for version in re.findall(r"\d+\.\d+\.\d+", versions):
                if not _minor(lowest) <= _minor(version) < _minor(bound):
                    problems.append(f"{source}: tested MLflow {version} is outside the range")
    assert not problems, f"setup.cfg pins mlflow>={lowest},<{bound}:\n" + "\n".join(problems)
