"""Sphinx configuration of the mgsk documentation.

Build with ``python -m sphinx -W --keep-going -b html docs docs/_build/html``
(``pip install ".[docs]"`` first). The gallery in ``examples/`` is executed
at build time; set ``MGSK_DOCS_PLOT_GALLERY=0`` to skip running it.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "sphinxext"))

import mgsk  # noqa: E402

# MLflow's telemetry would try to reach the internet from gallery examples.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
# MLflow's INFO lines (database migrations, ...) would fill the examples' output.
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

project = "mgsk"
author = "the mgsk developers"
copyright = "2025, the mgsk developers"
release = mgsk.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "matplotlib.sphinxext.plot_directive",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "sphinxext", "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip"]
root_doc = "index"
default_role = "literal"

# -- autodoc / autosummary / numpydoc ---------------------------------------
autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# numpydoc's own checks are run by tests/test_docstrings.py, not here.
numpydoc_validation_checks = set()

# -- matplotlib plot directive (figures in the user guide) -------------------
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_rcparams = {"savefig.bbox": "tight"}

# -- sphinx-gallery -----------------------------------------------------------
plot_gallery = os.environ.get("MGSK_DOCS_PLOT_GALLERY", "1") not in {"0", "false", "False"}
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "gallery_order.ReadingOrder",
    "plot_gallery": plot_gallery,
    "download_all_examples": False,
    "doc_module": ("mgsk",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"mgsk": None},
    "remove_config_comments": True,
    "min_reported_time": 1,
}

# -- HTML -----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"mgsk {release}"
html_static_path = ["_static"]
html_css_files = ["mgsk.css"]
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "navigation_with_keys": False,
}
html_sidebars = {"index": [], "install": [], "quickstart": [], "changelog": []}
html_context = {"default_mode": "light"}
