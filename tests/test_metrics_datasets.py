"""Public gnostic metrics and the reference data sets."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mgsk import LinearRegressor, LogisticRegressor
from mgsk.datasets import load_hbk, load_phones, load_stackloss, load_stars
from mgsk.metrics import (
    classification_entropy,
    gnostic_characteristics,
    gnostic_information,
    mean_fidelity_score,
    residual_entropy,
)

targets = arrays(np.float64, st.integers(3, 40), elements=st.floats(-1e3, 1e3))


@settings(max_examples=50)
@given(targets, st.data())
def test_smaller_residuals_everywhere_never_score_worse(y, data):
    noise = np.array(data.draw(st.lists(st.floats(-10, 10), min_size=len(y), max_size=len(y))))
    shrink = data.draw(st.floats(0, 1))
    worse, better = y + noise, y + shrink * noise
    assert residual_entropy(y, better) <= residual_entropy(y, worse)
    assert mean_fidelity_score(y, better) >= mean_fidelity_score(y, worse)
    assert gnostic_information(y, better) >= gnostic_information(y, worse) - 1e-12


@given(targets, st.floats(1e-3, 1e3))
def test_metrics_are_scale_free(y, c):
    pred = y[::-1]
    assert residual_entropy(c * y, c * pred) == pytest.approx(residual_entropy(y, pred), rel=1e-9, abs=1e-300)


@settings(max_examples=30, deadline=None)
@given(targets, st.data())
def test_weights_act_as_repeated_rows(y, data):
    counts = np.array(data.draw(st.lists(st.integers(0, 3), min_size=len(y), max_size=len(y))))
    if counts.sum() < 2:
        return
    pred = y[::-1] + 1.0
    repeated = np.repeat(y, counts), np.repeat(pred, counts)
    for metric in (residual_entropy, mean_fidelity_score, gnostic_information):
        assert metric(y, pred, sample_weight=counts) == pytest.approx(metric(*repeated), rel=1e-9, abs=1e-12)


def test_weights_change_the_metrics():
    y = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    pred = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 9.0])
    light_error = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.01])
    assert residual_entropy(y, pred, sample_weight=light_error) < 0.2 * residual_entropy(y, pred)
    assert mean_fidelity_score(y, pred, sample_weight=light_error) > mean_fidelity_score(y, pred)


def test_re_of_the_fitted_model_is_the_metric():
    X, y = load_stackloss(return_X_y=True)
    model = LinearRegressor().fit(X, y)
    assert model.re_ == pytest.approx(residual_entropy(y, model.predict(X)), rel=1e-12)
    c = gnostic_characteristics(y, model.predict(X))
    assert set(c) >= {"x", "f_I", "re"} and c["f_I"].shape == y.shape


def test_classification_entropy_is_the_classifier_re():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = np.where(X[:, 0] > 0, "pos", "neg")
    clf = LogisticRegressor().fit(X, y)
    assert clf.re_ == pytest.approx(classification_entropy(y, clf.predict_proba(X)), rel=1e-10)
    assert classification_entropy(y, clf.predict_proba(X)[:, 1]) == pytest.approx(clf.re_, rel=1e-10)


def test_metric_errors_name_the_problem():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        residual_entropy([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        residual_entropy([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="not in labels"):
        classification_entropy(["a", "z"], [[0.5, 0.5], [0.5, 0.5]], labels=["a", "b"])
    with pytest.raises(ValueError, match="columns"):
        classification_entropy(["a", "b"], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


@pytest.mark.parametrize(
    "loader, shape",
    [(load_stackloss, (21, 3)), (load_phones, (24, 1)), (load_stars, (47, 1)), (load_hbk, (75, 3))],
)
def test_loaders(loader, shape):
    ds = loader()
    assert ds.data.shape == shape and ds.target.shape == (shape[0],)
    assert len(ds.feature_names) == shape[1] and ds.DESCR and len(ds.outliers) > 0
    X, y = loader(return_X_y=True)
    np.testing.assert_array_equal(X, ds.data)
    frame = loader(as_frame=True)
    assert list(frame.frame.columns) == ds.feature_names + ds.target_names
    np.testing.assert_array_equal(frame.data.to_numpy(), ds.data)
