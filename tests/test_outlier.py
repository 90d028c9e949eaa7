"""GnosticOutlierDetector: the gnostic decision, the OutlierMixin contract, Pipeline and GridSearchCV."""

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import f1_score, make_scorer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mgsk import GnosticOutlierDetector
from mgsk._outlier import decision_core, distance_bounds, homogeneous_core, probable_interval

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


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
    assert f1_score(y, pipe.fit_predict(X), pos_label=-1) > 0.97
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


def _bench_contaminated():
    """The benchmark's own data generator (its module silences warnings: keep that local)."""
    spec = importlib.util.spec_from_file_location("bench_analysis", BENCHMARKS / "bench_analysis.py")
    bench = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        spec.loader.exec_module(bench)
    return bench.contaminated


def test_the_distance_test_flags_the_blobs_of_the_estimator_checks_but_not_the_benchmarks_clean_row():
    # scikit-learn's check_outliers_train needs a row of these flagged (familywise chance 0.057).
    X, _ = make_blobs(n_samples=300, random_state=0)
    pred = GnosticOutlierDetector().fit_predict(X)
    assert 1 <= (pred == -1).sum() <= 3
    # bench_analysis: five columns, large outliers, 5 %, seed 2. Its clean row with squared
    # robust distance 20.7 (familywise chance 0.37 among 500) was a false alarm at the old rate.
    X, y = _bench_contaminated()(2, 500, 5, 0.05, "large (12-50)")
    det = GnosticOutlierDetector().fit(X)
    d2 = det._distances(X)
    assert 20.5 < d2[y == 1].max() < det.distance_interval_[1]
    np.testing.assert_array_equal(det.predict(X), y)


def test_on_heavy_tailed_rows_the_distances_own_distribution_raises_the_bound():
    X = np.random.default_rng(0).exponential(size=(500, 5))
    det = GnosticOutlierDetector().fit(X)
    _, chi2_bound = distance_bounds(5, 500)
    d2 = det._distances(X)
    assert det.distance_interval_[1] > chi2_bound
    assert (d2 > det.distance_interval_[1]).sum() < 0.75 * (d2 > chi2_bound).sum()  # 35 vs 64


@pytest.mark.parametrize("df, n_rows", [(1, 50), (2, 300), (5, 500)])
def test_the_distance_bound_is_exceeded_by_the_largest_clean_distance_at_the_level(df, n_rows):
    centre, bound = distance_bounds(df, n_rows, level=0.2)
    assert centre == pytest.approx(np.median(np.random.default_rng(0).chisquare(df, 200_000)), rel=0.02)
    largest = np.random.default_rng(df).chisquare(df, size=(4000, n_rows)).max(axis=1)
    # 4000 clean samples: the share with a false alarm is 0.2 within 4 standard errors.
    assert abs((largest > bound).mean() - 0.2) < 4 * np.sqrt(0.2 * 0.8 / 4000)
