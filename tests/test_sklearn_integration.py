"""mgsk estimators inside scikit-learn's tools: clone, Pipeline, ColumnTransformer,
GridSearchCV, cross_val_score, pandas and metadata routing."""

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

from mgsk import LinearRegressor, LogisticRegressor, PolynomialRegressor
from mgsk.metrics import residual_entropy


def regression_frame(seed=0, n=300):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "size": rng.normal(size=n),
            "age": rng.normal(size=n),
            "city": rng.choice(["a", "b", "c"], size=n),
        }
    )
    y = 2 * df["size"] - df["age"] + df["city"].map({"a": 0.0, "b": 1.0, "c": -1.0}) + 0.1 * rng.normal(size=n)
    y[:30] += 25
    return df, y.to_numpy()


@pytest.mark.parametrize("cls", [LinearRegressor, PolynomialRegressor, LogisticRegressor])
def test_clone_keeps_parameters_and_drops_fit(cls):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] > 0).astype(int) if cls is LogisticRegressor else X @ [1.0, -1.0] + 0.1 * rng.normal(size=60)
    est = cls(max_iter=50, tol=1e-3, gnostic_characteristics=True).fit(X, y)
    fitted = {name for name in vars(est) if name.endswith("_")}
    assert {"coef_", "weights_", "history_", "characteristics_"} <= fitted
    copy = clone(est)
    assert copy.get_params() == est.get_params() and copy is not est
    assert not [name for name in vars(copy) if name.endswith("_")]
    with pytest.raises(NotFittedError):
        copy.predict(X)
    check_is_fitted(est)  # the original keeps its fit


def test_pipeline_and_feature_names_from_pandas():
    df, y = regression_frame()
    X = df[["size", "age"]]
    model = LinearRegressor().fit(X, y)
    np.testing.assert_array_equal(model.feature_names_in_, ["size", "age"])
    pipe = make_pipeline(StandardScaler(), LinearRegressor()).fit(X, y)
    assert pipe.score(X.iloc[30:], y[30:]) > 0.85  # city is left out: R² ~0.87
    with pytest.warns(UserWarning, match="feature names"):
        model.predict(X.to_numpy())


def test_column_transformer_with_categories():
    df, y = regression_frame(1)
    pre = ColumnTransformer([("num", StandardScaler(), ["size", "age"]), ("cat", OneHotEncoder(), ["city"])])
    pipe = make_pipeline(pre, LinearRegressor()).fit(df, y)
    assert pipe[-1].weights_[:30].max() < 1e-3
    assert pipe.score(df.iloc[30:], y[30:]) > 0.95


def test_grid_search_selects_on_residual_entropy():
    df, y = regression_frame(2)
    X, y = df[["size", "age"]], y + 5.0
    search = GridSearchCV(
        LinearRegressor(),
        {"fit_intercept": [True, False], "max_iter": [50, 100]},
        scoring=make_scorer(residual_entropy, greater_is_better=False),
        cv=3,
    ).fit(X, y)
    assert search.best_params_["fit_intercept"] is True
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.n_iter_ > 0


def test_cross_val_score_for_the_classifier():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 3))
    y = np.where(X[:, 0] - X[:, 1] > 0, "up", "down")
    scores = cross_val_score(LogisticRegressor(), X, y, cv=5)
    assert scores.shape == (5,) and scores.min() > 0.9


def test_sample_weight_is_routed_through_a_pipeline():
    df, y = regression_frame(4)
    X = df[["size", "age"]]
    weights = (np.arange(len(y)) % 2).astype(float)  # drop every other row
    with sklearn.config_context(enable_metadata_routing=True):
        reg = LinearRegressor().set_fit_request(sample_weight=True)
        scaler = StandardScaler().set_fit_request(sample_weight=False)
        routed = make_pipeline(scaler, reg).fit(X, y, sample_weight=weights)
    direct = LinearRegressor().fit(StandardScaler().fit_transform(X), y, sample_weight=weights)
    np.testing.assert_allclose(routed[-1].coef_, direct.coef_)
    unweighted = make_pipeline(StandardScaler(), LinearRegressor()).fit(X, y)
    assert np.abs(routed[-1].coef_ - unweighted[-1].coef_).max() > 1e-4
