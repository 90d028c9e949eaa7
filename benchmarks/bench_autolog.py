"""What mgsk.autolog() costs per fit and per grid search, against no autolog and mlflow.sklearn.autolog().

Run it alone on the machine (the timings are medians, but a loaded machine
slows every database commit)::

    flock /tmp/mgsk-heavy.lock python benchmarks/bench_autolog.py

All fits use the same data and one fresh sqlite store (``sqlite:///`` in a
temporary folder, artifacts next to it). The overhead of a configuration is
its median fit time minus the median time of the same estimator without
autolog: mgsk's LinearRegressor for mgsk.autolog, scikit-learn's
LinearRegression for mlflow.sklearn.autolog (its own defaults, which include
inferring the pip requirements of every model in a subprocess).

Targets (issue 4): with everything on (model and plots) mgsk.autolog costs at
least 10x less than mlflow.sklearn.autolog; with the model and without the
plots at most 150 ms per fit; a grid search of 20 candidates x 5 folds on
10,000 rows x 10 features takes at most 20 % longer with autolog.
"""

import logging
import pathlib
import statistics
import sys
import tempfile
import time
import warnings

import mlflow
import mlflow.sklearn
import numpy as np
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV

import mgsk

PER_FIT_ROWS, PER_FIT_FEATURES = 1000, 5
SEARCH_ROWS, SEARCH_FEATURES = 10_000, 10
SEARCH_GRID = {"tol": [1e-8, 1e-6, 1e-4, 1e-3, 1e-2], "scale": ["auto", 0.5, 1.0, 2.0]}  # 20 candidates
SEARCH_FOLDS = 5


def data(n, p, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = X @ rng.normal(size=p) + 0.5 * rng.normal(size=n)
    y[: n // 10] += 20.0  # 10 % outliers
    return X, y


def median_seconds(fit, repeats, warmup=2):
    for _ in range(warmup):
        fit()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fit()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def use_fresh_store(folder):
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = mlflow.create_experiment("bench-autolog", artifact_location=(folder / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment)


def per_fit(repeats):
    X, y = data(PER_FIT_ROWS, PER_FIT_FEATURES, seed=0)
    fit_mgsk = lambda: mgsk.LinearRegressor().fit(X, y)  # noqa: E731
    fit_sklearn = lambda: LinearRegression().fit(X, y)  # noqa: E731
    rows = {}
    rows["mgsk, no autolog"] = median_seconds(fit_mgsk, repeats)
    mgsk.autolog()
    rows["mgsk.autolog() (model + plots)"] = median_seconds(fit_mgsk, repeats)
    mgsk.autolog(log_plots=False)
    rows["mgsk.autolog(log_plots=False)"] = median_seconds(fit_mgsk, repeats)
    mgsk.autolog(disable=True)
    rows["sklearn LinearRegression, no autolog"] = median_seconds(fit_sklearn, repeats)
    mlflow.sklearn.autolog()
    rows["mlflow.sklearn.autolog() defaults"] = median_seconds(fit_sklearn, max(3, repeats // 3), warmup=1)
    mlflow.sklearn.autolog(disable=True)
    return rows


def grid_search():
    X, y = data(SEARCH_ROWS, SEARCH_FEATURES, seed=1)

    def search():
        GridSearchCV(mgsk.LinearRegressor(), SEARCH_GRID, cv=SEARCH_FOLDS).fit(X, y)

    plain = median_seconds(search, repeats=3, warmup=1)
    mgsk.autolog()
    tracked = median_seconds(search, repeats=3, warmup=1)
    mgsk.autolog(disable=True)
    return plain, tracked


def main(repeats=15):
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as folder:
        use_fresh_store(pathlib.Path(folder))
        fits = per_fit(repeats)
        plain_search, tracked_search = grid_search()

    mgsk_overhead = fits["mgsk.autolog() (model + plots)"] - fits["mgsk, no autolog"]
    no_plots_overhead = fits["mgsk.autolog(log_plots=False)"] - fits["mgsk, no autolog"]
    sklearn_overhead = fits["mlflow.sklearn.autolog() defaults"] - fits["sklearn LinearRegression, no autolog"]
    search_ratio = tracked_search / plain_search

    print(f"Per fit, {PER_FIT_ROWS} rows x {PER_FIT_FEATURES} features, median of {repeats} fits, one sqlite store")
    print(f"{'configuration':40s} {'fit (ms)':>10s} {'overhead (ms)':>14s}")
    baselines = {"mgsk": fits["mgsk, no autolog"], "sklearn": fits["sklearn LinearRegression, no autolog"]}
    for name, seconds in fits.items():
        base = baselines["sklearn" if "sklearn" in name else "mgsk"]
        overhead = "" if "no autolog" in name else f"{1000 * (seconds - base):14.1f}"
        print(f"{name:40s} {1000 * seconds:10.1f} {overhead:>14s}")
    print()
    print(f"Grid search, {SEARCH_ROWS} rows x {SEARCH_FEATURES} features, 20 candidates x {SEARCH_FOLDS} folds")
    print(f"{'no autolog':40s} {plain_search:9.2f} s")
    print(f"{'mgsk.autolog()':40s} {tracked_search:9.2f} s")
    print()
    checks = [
        (
            "mlflow.sklearn overhead / mgsk overhead >= 10",
            sklearn_overhead / mgsk_overhead,
            sklearn_overhead / mgsk_overhead >= 10,
        ),
        ("overhead with log_plots=False <= 150 ms", 1000 * no_plots_overhead, no_plots_overhead <= 0.150),
        ("grid search time ratio <= 1.20", search_ratio, search_ratio <= 1.20),
    ]
    for label, value, ok in checks:
        print(f"{label:48s} {value:9.2f}  {'PASS' if ok else 'FAIL'}")
    return all(ok for _, _, ok in checks)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
