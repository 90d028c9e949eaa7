"""The road in from machinegnostics: its import paths work, its old parameter
names are refused (one name per parameter), and the "Coming from
machinegnostics" page covers every parameter and fitted attribute of mgsk's
estimators. The page's own ``>>>`` examples run in tests/test_docs_build.py.
"""

import importlib
import re
from pathlib import Path

import pytest
from numpydoc.docscrape import ClassDoc

import mgsk

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "user_guide" / "from_machinegnostics.rst"
ESTIMATORS = [mgsk.LinearRegressor, mgsk.PolynomialRegressor, mgsk.LogisticRegressor]
#: machinegnostics' constructor parameters that mgsk names differently or not at all.
OLD_NAMES = ["tolerance", "early_stopping", "data_form", "history", "mg_loss", "proba"]


@pytest.mark.parametrize(
    "module, names",
    [
        ("mgsk.models", ["LinearRegressor", "PolynomialRegressor", "LogisticRegressor"]),
        ("mgsk.models.regression", ["LinearRegressor", "PolynomialRegressor"]),
        ("mgsk.models.classification", ["LogisticRegressor"]),
    ],
)
def test_import_paths_give_the_top_level_classes(module, names):
    imported = importlib.import_module(module)
    assert sorted(imported.__all__) == sorted(names)
    for name in names:
        assert getattr(imported, name) is getattr(mgsk, name)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("old", OLD_NAMES)
def test_old_parameter_names_are_refused_not_aliased(cls, old):
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{old}'"):
        cls(**{old: True})
    assert old not in cls().get_params()


def _page_names():
    return set(re.findall(r"``(?:model\.)?(\w+)", PAGE.read_text(encoding="utf-8")))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_page_maps_every_parameter_and_fitted_attribute(cls):
    named = _page_names()
    params = set(cls().get_params())
    attributes = {item.name.split(",")[0].strip() for item in ClassDoc(cls)["Attributes"]}
    assert not params - named, f"the page does not name the parameters {sorted(params - named)}"
    assert not attributes - named, f"the page does not name the attributes {sorted(attributes - named)}"
    assert set(OLD_NAMES) <= named


def test_page_is_in_the_user_guide_toctree():
    toctree = (ROOT / "docs" / "user_guide" / "index.rst").read_text(encoding="utf-8")
    assert re.search(r"^\s+from_machinegnostics\s*$", toctree, flags=re.M)
