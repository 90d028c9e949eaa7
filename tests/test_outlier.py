"""GnosticOutlierDetector: the gnostic decision, the OutlierMixin contract, Pipeline and GridSearchCV."""

import warnings

import numpy as np
import pytest
from sklearn.metrics import f1_score, make_scorer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mgsk import GnosticOutlierDetector
from mgsk._outlier import decision_core, homogeneous_core, probable_interval


def contaminated(seed=0, n=300, k=1, fraction=0.1, low=8.0, high=30.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k))
    m = int(fraction * n)
    X[:m, 0] = rng.choice([-1.0, 1.0], size=m) * rng.uniform(low, high, size=m)
    y = np.ones(n, dtype=int)
    y[:m] = -1
    return X, y


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.3])
def test_auto_finds_gross_outliers_without_being_told_how_many(fraction):
    X, y = contaminated(fraction=fraction)
    pred = GnosticOutlierDetector().fit_predict(X)
    assert f1_score(y, pred, pos_label=-1) > 0.97


def test_clean_univariate_data_have_no_outliers():
    for seed in range(3):
        X = np.random.default_rng(seed).normal(size=(400, 1))
        assert (GnosticOutlierDetector().fit_predict(X) == 1).all()


def test_contamination_float_flags_that_fraction():
    X, _ = contaminated(fraction=0.1)
    det = GnosticOutlierDetector(contamination=0.2).fit(X)
    assert (det.predict(X) == -1).sum() == 60
    np.testing.assert_allclose(det.decision_function(X), det.score_samples(X) - det.offset_)


def test_a_float_contamination_on_named_columns_fits_without_a_feature_name_warning():
    pd = pytest.importorskip("pandas")
    X, _ = contaminated(fraction=0.1, k=2)
    frame = pd.DataFrame(X, columns=["a", "b"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        det = GnosticOutlierDetector(contamination=0.1).fit(frame)
    assert (det.predict(frame) == -1).sum() == 30


def test_scores_order_by_distance_from_the_core():
    X = np.r_[np.random.default_rng(0).normal(size=200), 10.0, 20.0, 40.0].reshape(-1, 1)
    det = GnosticOutlierDetector().fit(X)
    s = det.score_samples(np.array([[0.0], [10.0], [20.0], [40.0]]))
    assert s[0] > 0 > s[1] > s[2] > s[3]
    lo, hi = det.decision_interval_[0]
    assert det.membership_interval_[0, 0] <= lo < -2 and 2 < hi <= det.membership_interval_[0, 1]


def test_multivariate_outliers_that_no_column_shows_are_found():
    rng = np.random.default_rng(0)
    t = rng.normal(size=400)
    X = np.c_[t, t + 0.1 * rng.normal(size=400)]
    X[:5] = [[2.0, -2.0], [-2.0, 2.0], [1.5, -1.5], [-1.5, 1.5], [2.5, -2.5]]
    pred = GnosticOutlierDetector().fit_predict(X)
    assert (pred[:5] == -1).all()
    assert (pred[5:] == -1).mean() < 0.03


def test_the_core_sets_clusters_aside():
    z = np.r_[np.random.default_rng(1).normal(size=200), np.random.default_rng(2).normal(15, 0.5, 40)]
    fit, core, n_iter = homogeneous_core(z, np.ones(240))
    assert fit["is_homogeneous"] and n_iter >= 2
    assert core[:200].mean() > 0.98 and not core[200:].any()
    fit, core, n_iter, (lo, hi) = decision_core(z, np.ones(240), 0.25)
    assert hi < 14.0
    assert probable_interval(fit, 0.25)[1] < probable_interval(fit, 0.01)[1]


def test_weight_two_is_a_repeated_row_and_fit_is_deterministic():
    X, _ = contaminated(seed=3, n=120, k=2)
    w = np.random.default_rng(4).integers(0, 3, size=120).astype(float)
    a = GnosticOutlierDetector().fit(X, sample_weight=w)
    b = GnosticOutlierDetector().fit(np.repeat(X, w.astype(int), axis=0))
    np.testing.assert_allclose(a.decision_function(X), b.decision_function(X), rtol=1e-6, atol=1e-9)
    c = GnosticOutlierDetector().fit(X, sample_weight=w)
    np.testing.assert_array_equal(a.decision_function(X), c.decision_function(X))


def test_in_a_pipeline_and_grid_search():
    X, y = contaminated(k=3, fraction=0.1)
    pipe = make_pipeline(StandardScaler(), GnosticOutlierDetector())
    # The robust-distance analysis costs a few false positives on 3-D Gaussian rows.
    assert f1_score(y, pipe.fit_predict(X), pos_label=-1) > 0.85
    search = GridSearchCV(
        make_pipeline(StandardScaler(), GnosticOutlierDetector()),
        {"gnosticoutlierdetector__contamination": ["auto", 0.02, 0.3]},
        scoring=make_scorer(f1_score, pos_label=-1),
        cv=3,
    ).fit(X, y)
    assert search.best_params_["gnosticoutlierdetector__contamination"] == "auto"


def test_skops_round_trip(tmp_path):
    sio = pytest.importorskip("skops.io")
    X, _ = contaminated(k=2)
    det = GnosticOutlierDetector().fit(X)
    path = tmp_path / "det.skops"
    sio.dump(det, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert all(t.startswith("mgsk.") for t in untrusted), untrusted
    loaded = sio.load(path, trusted=untrusted)
    np.testing.assert_array_equal(loaded.predict(X), det.predict(X))
