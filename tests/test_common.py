"""scikit-learn's own estimator checks over every estimator mgsk exports."""

import inspect

import pytest
from sklearn.base import BaseEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

import mgsk


def discover_estimators():
    """Every public estimator class of mgsk, found by inspecting the package."""
    return sorted(
        (obj for name, obj in inspect.getmembers(mgsk, inspect.isclass) if issubclass(obj, BaseEstimator)),
        key=lambda cls: cls.__name__,
    )


def test_discovery_finds_the_documented_estimators():
    names = {cls.__name__ for cls in discover_estimators()}
    assert names == {
        "LinearRegressor",
        "PolynomialRegressor",
        "LogisticRegressor",
        "GnosticDistribution",
        "GnosticOutlierDetector",
    }


@parametrize_with_checks([cls() for cls in discover_estimators()])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("cls", discover_estimators(), ids=lambda c: c.__name__)
def test_init_only_stores_parameters(cls):
    est = cls()
    assert set(vars(est)) == set(inspect.signature(cls).parameters)
