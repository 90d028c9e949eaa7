"""Robustness, efficiency, textbook outliers, wide data, masking, iterations,
speed, memory and classification.

Every figure is a ratio against a baseline measured in the same run:

    python benchmarks/bench_estimators.py            # the full run (~10 min)
    python benchmarks/bench_estimators.py --quick    # smaller sizes, a smoke run
    python benchmarks/bench_estimators.py --only wide   # one section
    python benchmarks/bench_estimators.py --only speed  # the 1e6 x 10 timing alone

Targets (issues 2 and 11) are printed next to each figure with PASS or MISS.
The quick run checks only the targets that hold at its sizes; the others
print "not checked in quick mode". The last lines list the targets missed;
with ``--strict`` a missed target makes the exit status 1.
The clustered-leverage comparator is statsmodels' RLMDetSMM (``pip install
mgsk[bench]``); without statsmodels that section says so and is skipped.
The classification anchors (robustbase's glmrob: Mallows-type Mqle and
Bianco-Yohai) run through ``Rscript`` in the full run only; without R and
robustbase the benchmark says so and skips them.
"""

import argparse
import gc
import time
import tracemalloc
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import (
    HuberRegressor,
    LinearRegression,
    LogisticRegression,
    RANSACRegressor,
    TheilSenRegressor,
)
from threadpoolctl import threadpool_limits

from mgsk import LinearRegressor, LogisticRegressor
from mgsk.datasets import load_hbk, load_phones, load_stackloss, load_stars

warnings.filterwarnings("ignore", category=UserWarning)

#: ``n_iter_`` of LinearRegressor at 7d6d3ec (before issue 11) on the cases
#: of this script's full run, recorded by running them on that commit's code
#: (the robustness and efficiency seeds, the textbook sets, the clustered
#: cases and the first wide seeds; the 1e6-row case took 10, per issue 11).
N_ITER_7D6D3EC = {
    "clean": [12, 13, 12, 12, 12, 11, 12, 12, 12, 12],
    "10% outliers in y": [11, 12, 12, 12, 11, 11, 12, 12, 11, 12],
    "20% outliers in y": [11, 12, 12, 12, 11, 11, 12, 12, 12, 11],
    "30% outliers in y": [12, 12, 12, 12, 11, 11, 12, 12, 12, 11],
    "40% outliers in y": [11, 11, 11, 11, 11, 11, 11, 11, 11, 11],
    "10% bad leverage": [11, 13, 12, 12, 11, 11, 12, 12, 12, 10],
    "efficiency": [13, 12, 12, 12, 11, 12, 12, 12, 11, 11, 13, 12, 12, 12, 12, 12, 11, 12, 12, 11],
    "stackloss": [64],
    "phones": [16],
    "stars": [109],
    "hbk": [15],
    "clustered n=20 20%": [29, 33, 24, 17, 75, 39, 20, 51, 41, 28],
    "clustered n=20 30%": [70, 59, 24, 28, 22, 48, 43, 27, 13, 24],
    "clustered n=50 20%": [30, 30, 23, 23, 28, 32, 17, 20, 37, 21],
    "clustered n=50 30%": [59, 46, 24, 25, 68, 54, 36, 33, 28, 33],
    "clustered n=100 20%": [22, 19, 25, 23, 20, 21, 18, 21, 26, 21],
    "clustered n=100 30%": [27, 21, 32, 35, 25, 36, 21, 22, 39, 20],
    "wide 300x200": [118, 32, 196],
    "wide 1000x400": [285],
    "speed": [10],
}


class Targets:
    """PASS/MISS of each target; in quick mode only those meant to hold there."""

    def __init__(self, quick):
        self.quick = quick
        self.missed, self.unchecked, self.checked = [], [], 0
        self.n_iter = {}

    def __call__(self, name, ok, in_quick=True):
        if self.quick and not in_quick:
            self.unchecked.append(name)
            return "not checked in quick mode"
        self.checked += 1
        if not ok:
            self.missed.append(name)
        return "PASS" if ok else "MISS"

    def iterations(self, case, n_iter):
        self.n_iter.setdefault(case, []).append(int(n_iter))

    def summary(self):
        print(f"\n## Summary: {self.checked} targets checked, {len(self.missed)} missed")
        for name in self.missed:
            print(f"MISSED: {name}")
        if self.unchecked:
            print(f"not checked in quick mode (need the full sizes): {', '.join(self.unchecked)}")




def coef_error(model, beta):
    return float(np.linalg.norm(np.r_[model.intercept_, np.ravel(model.coef_)] - beta))


def regression_data(seed, n, k, outliers=0.0, leverage=0.0):
    """Gaussian design and noise; gross outliers add U(20, 50) to y; bad
    leverage points move X to N(5, 1) and put y 15-30 below the plane."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k))
    beta = np.r_[1.0, rng.normal(size=k)]
    y = beta[0] + X @ beta[1:] + rng.normal(size=n)
    X_clean, y_clean = X.copy(), y.copy()
    m = int(outliers * n)
    y[:m] += rng.uniform(20, 50, size=m)
    L = int(leverage * n)
    X[m : m + L] = rng.normal(5, 1, size=(L, k))
    y[m : m + L] = beta[0] + X[m : m + L] @ beta[1:] - rng.uniform(15, 30, size=L)
    return X, y, beta, X_clean, y_clean


def clustered_leverage(seed, n, frac, k=5):
    """A tight cluster (spread 0.1) of ``frac`` of the rows at distance 4 in X,
    12 below the plane: the points pull a coordinate-wise median and MAD and
    each other's distances (they mask each other)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k))
    beta = np.r_[1.0, rng.normal(size=k)]
    y = beta[0] + X @ beta[1:] + rng.normal(size=n)
    m = int(round(frac * n))
    direction = rng.normal(size=k)
    direction /= np.linalg.norm(direction)
    X[:m] = 4.0 * direction + 0.1 * rng.normal(size=(m, k))
    y[:m] = beta[0] + X[:m] @ beta[1:] - 12 - 0.1 * rng.normal(size=m)
    return X, y, beta


def fit_counted(T, case, X, y):
    model = LinearRegressor().fit(X, y)
    T.iterations(case, model.n_iter_)
    return model


def robustness(T, seeds, n=1000, k=5):
    print(f"\n## Robustness: ‖Δβ‖₂ (intercept included), n={n}, k={k}, mean of {len(seeds)} seeds")
    print("ratio = error / error of OLS on the same data without the outliers")
    header = f"{'case':<22}{'OLS clean':>10}{'mgsk':>9}{'ratio':>7}{'Huber':>9}{'RANSAC':>9}{'TheilSen':>9}{'OLS':>9}  target"
    print(header)
    cases = [("clean", 0, 0), ("10% outliers in y", 0.1, 0), ("20% outliers in y", 0.2, 0)]
    cases += [("30% outliers in y", 0.3, 0), ("40% outliers in y", 0.4, 0), ("10% bad leverage", 0, 0.1)]
    for name, out, lev in cases:
        errs = {key: [] for key in ("clean", "mgsk", "huber", "ransac", "theilsen", "ols")}
        for seed in seeds:
            X, y, beta, Xc, yc = regression_data(seed, n, k, out, lev)
            errs["clean"].append(coef_error(LinearRegression().fit(Xc, yc), beta))
            errs["mgsk"].append(coef_error(fit_counted(T, name, X, y), beta))
            errs["huber"].append(coef_error(HuberRegressor(max_iter=1000).fit(X, y), beta))
            ransac = RANSACRegressor(random_state=seed).fit(X, y).estimator_
            errs["ransac"].append(coef_error(ransac, beta))
            errs["theilsen"].append(coef_error(TheilSenRegressor(max_subpopulation=2000, random_state=seed).fit(X, y), beta))
            errs["ols"].append(coef_error(LinearRegression().fit(X, y), beta))
        mean = {key: float(np.mean(v)) for key, v in errs.items()}
        ratio = mean["mgsk"] / mean["clean"]
        if name == "clean":
            # Two or three seeds are too few for an efficiency figure.
            target, ok, quick = "≤ 1.15 × OLS (efficiency)", ratio <= 1.15, False
        elif lev:
            target, ok, quick = "RANSAC's level", mean["mgsk"] <= mean["ransac"], True
        elif T.quick:
            # Two seeds at n=300 are too few for the 1.5 ratio; the comparison with Huber holds.
            target, ok, quick = "< Huber (quick mode)", mean["mgsk"] < mean["huber"], True
        else:
            target, ok, quick = "≤ 1.5 × OLS clean and < Huber", ratio <= 1.5 and mean["mgsk"] < mean["huber"], True
        print(
            f"{name:<22}{mean['clean']:>10.4f}{mean['mgsk']:>9.4f}{ratio:>7.2f}{mean['huber']:>9.4f}"
            f"{mean['ransac']:>9.4f}{mean['theilsen']:>9.4f}{mean['ols']:>9.4f}  {target}: {T(f'robustness, {name}', ok, quick)}"
        )


def efficiency(T, seeds, n=1000, k=5):
    errs, ols = [], []
    for seed in seeds:
        X, y, beta, _, _ = regression_data(10_000 + seed, n, k)
        errs.append(coef_error(fit_counted(T, "efficiency", X, y), beta))
        ols.append(coef_error(LinearRegression().fit(X, y), beta))
    ratio = float(np.mean(errs) / np.mean(ols))
    print(f"\n## Efficiency on clean Gaussian data, {len(seeds)} seeds: mgsk/OLS error = {ratio:.3f}", end="")
    print(f"  (target ≤ 1.15: {T('efficiency', ratio <= 1.15, in_quick=False)})")


def textbook(T):
    print("\n## Textbook data sets: rows with the lowest final weights (1-based)")
    # References: least squares on the rows the literature keeps (computed here),
    # and for stack loss the MM-estimate of R's robustbase::lmrob (-41.52, 0.939, 0.580, -0.113).
    for loader, label in [(load_stackloss, "stackloss"), (load_phones, "phones"), (load_stars, "stars"), (load_hbk, "hbk")]:
        ds = loader()
        model = fit_counted(T, label, ds.data, ds.target)
        order = np.argsort(model.weights_)
        lowest = order[: max(len(ds.outliers), 4)]
        clean = np.setdiff1d(np.arange(len(ds.target)), ds.outliers)
        if label == "phones":
            clean = np.setdiff1d(clean, [13, 20])  # 1963 and 1970 are partly affected
        ref = LinearRegression().fit(ds.data[clean], ds.target[clean])
        ours = np.r_[model.intercept_, model.coef_]
        theirs = np.r_[ref.intercept_, ref.coef_]
        found = set(ds.outliers) <= set(order[: len(ds.outliers) + (2 if label == "phones" else 0)])
        print(f"{label:<10} lowest {sorted((lowest + 1).tolist())}  textbook {sorted((ds.outliers + 1).tolist())}: {T(f'textbook {label}', found)}")
        print(f"{'':<10} mgsk  {np.array2string(ours, precision=4)}")
        print(f"{'':<10} LS on the clean rows {np.array2string(theirs, precision=4)}  max |Δ| = {np.abs(ours - theirs).max():.4f}")
        if label == "stackloss":
            mm = np.array([-41.5246, 0.9388, 0.5796, -0.1129])
            print(f"{'':<10} MM (robustbase::lmrob) {mm}  max |Δ| = {np.abs(ours - mm).max():.4f}")


def wide(T, seeds):
    print(f"\n## Wide data, 10% outliers in y, mean of {len(seeds)} seeds (time: best of 1 per seed, summed)")
    for n, k in ((300, 200), (1000, 400)):
        errs, huber_errs, clean_errs, warned, ours_t, huber_t, huber_1t = [], [], [], 0, 0.0, 0.0, 0.0
        for seed in seeds:
            X, y, beta, Xc, yc = regression_data(seed, n, k, 0.1)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                t0 = time.perf_counter()
                model = LinearRegressor().fit(X, y)
                ours_t += time.perf_counter() - t0
            warned += sum(issubclass(w.category, ConvergenceWarning) for w in caught)
            T.iterations(f"wide {n}x{k}", model.n_iter_)
            t0 = time.perf_counter()
            huber = HuberRegressor().fit(X, y)
            huber_t += time.perf_counter() - t0
            with threadpool_limits(1):  # mgsk's products run on one BLAS thread too
                t0 = time.perf_counter()
                HuberRegressor().fit(X, y)
                huber_1t += time.perf_counter() - t0
            errs.append(coef_error(model, beta))
            huber_errs.append(coef_error(huber, beta))
            good = slice(int(0.1 * n), None)
            clean_errs.append(coef_error(LinearRegression().fit(Xc[good], yc[good]), beta))
        e, h, c = np.mean(errs), np.mean(huber_errs), np.mean(clean_errs)
        print(f"{n} × {k}: mgsk error {e:.3f}, HuberRegressor {h:.3f}, LS on the clean rows {c:.3f}; ConvergenceWarnings {warned}")
        print(f"{'':<10} error ≤ Huber's: {T(f'wide {n}x{k} error', e <= h, in_quick=False)}", end="")
        print(f"; converged without warning: {T(f'wide {n}x{k} converged', warned == 0, in_quick=False)}", end="")
        print(f"; time {ours_t:.2f} s vs Huber {huber_t:.2f} s = {ours_t / huber_t:.1f} (≤ 5: {T(f'wide {n}x{k} time', ours_t <= 5 * huber_t, in_quick=False)})")
        # Huber's BLAS threads spin when other processes load the cores, which
        # slows it more than mgsk: on one thread its time varies far less.
        print(f"{'':<10} for information: Huber on one BLAS thread {huber_1t:.2f} s, ratio {ours_t / huber_1t:.1f}")


def masking(T, seeds):
    print(f"\n## Clustered bad leverage points (p = 5), mean ‖Δβ‖₂ over {len(seeds)} seeds")
    try:
        from statsmodels.robust.resistant_linear_model import RLMDetSMM
    except ImportError:
        print("skipped: statsmodels is not installed (pip install mgsk[bench]); the comparator RLMDetSMM is missing")
        return
    for n in (20, 50, 100):
        for frac in (0.2, 0.3):
            ours, theirs, ols, failed = [], [], [], 0
            for seed in seeds:
                X, y, beta = clustered_leverage(seed, n, frac)
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        smm = RLMDetSMM(y, np.c_[np.ones(n), X]).fit()
                except np.linalg.LinAlgError:  # a singular scatter matrix of a tight cluster
                    failed += 1
                    continue
                theirs.append(float(np.linalg.norm(smm.params - beta)))
                ours.append(coef_error(fit_counted(T, f"clustered n={n} {int(frac * 100)}%", X, y), beta))
                ols.append(coef_error(LinearRegression().fit(X, y), beta))
            o, t = np.mean(ours), np.mean(theirs)
            note = f" ({failed} seeds skipped: RLMDetSMM raised LinAlgError)" if failed else ""
            print(f"n={n:<4} {int(frac * 100)}%: mgsk {o:.3f}, RLMDetSMM {t:.3f}, OLS {np.mean(ols):.3f}; ratio {o / t:.2f}{note}", end="")
            print(f"  (target ≤ 1.2: {T(f'clustered n={n} {int(frac * 100)}%', o <= 1.2 * t, in_quick=False)})")


def iterations(T):
    ours, before = [], []
    for case, counts in T.n_iter.items():
        recorded = N_ITER_7D6D3EC.get(case, [])
        m = min(len(counts), len(recorded))
        ours += counts[:m]
        before += recorded[:m]
    if not ours:
        return
    a, b = float(np.median(ours)), float(np.median(before))
    print(f"\n## Iterations: median n_iter_ over {len(ours)} fits of this run {a:g}, the same cases at 7d6d3ec {b:g}; ratio {a / b:.2f}", end="")
    print(f"  (target ≤ 1/3: {T('median n_iter_', a <= b / 3, in_quick=False)})")


def best_times(fns, repeats, cpu=False):
    """Best wall time of each function, the runs interleaved so that a
    passing load on the machine hits them alike; with ``cpu``, also the
    best CPU time of the process (all its threads) during each."""
    times = [[] for _ in fns]
    cpu_times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, spent, used in zip(fns, times, cpu_times):
            gc.collect()
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            spent.append(time.perf_counter() - t0)
            used.append(time.process_time() - c0)
    walls = [min(spent) for spent in times]
    return (walls, [min(used) for used in cpu_times]) if cpu else walls


def speed(T, n, k, repeats):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, k))
    y = X @ rng.normal(size=k) + 1 + rng.normal(size=n)
    y[: n // 10] += rng.uniform(20, 50, size=n // 10)
    fits = [lambda: LinearRegressor().fit(X, y), lambda: HuberRegressor().fit(X, y), lambda: LinearRegression().fit(X, y)]
    (ours, huber, lstsq), (ours_cpu, huber_cpu, lstsq_cpu) = best_times(fits, repeats, cpu=True)
    T.iterations("speed", LinearRegressor().fit(X, y).n_iter_)
    print(f"\n## Speed, n={n:,} × {k}, 10% outliers (best of {repeats}, interleaved)")
    print(f"LinearRegressor {ours:.3f} s, HuberRegressor {huber:.3f} s, LinearRegression {lstsq:.3f} s")
    # CPU time moves less with the machine's load than wall time does (no target: for reading the ratios).
    print(f"CPU time (all threads): LinearRegressor {ours_cpu:.3f} s, HuberRegressor {huber_cpu:.3f} s, LinearRegression {lstsq_cpu:.3f} s; ratio to least squares {ours_cpu / lstsq_cpu:.2f}")
    print(f"ratio to Huber {ours / huber:.2f} (target ≤ 0.5: {T('speed vs Huber', ours <= 0.5 * huber, in_quick=False)}); ", end="")
    print(f"ratio to least squares {ours / lstsq:.2f} (target ≤ 1.5: {T('speed vs LinearRegression', ours <= 1.5 * lstsq, in_quick=False)})")
    gc.collect()
    tracemalloc.start()
    LinearRegressor().fit(X, y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"peak memory allocated by fit: {peak / X.nbytes:.2f} × the size of X  (target < 5: {T('peak memory', peak < 5 * X.nbytes)})")


def classification(T, seeds, n_speed, repeats):
    print(f"\n## Classification, {len(seeds)} seeds")
    accs = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(4000, 5))
        beta = rng.normal(size=5)
        y = (rng.random(4000) < 1 / (1 + np.exp(-(X @ beta)))).astype(int)
        ours = LogisticRegressor().fit(X[:2000], y[:2000]).score(X[2000:], y[2000:])
        theirs = LogisticRegression().fit(X[:2000], y[:2000]).score(X[2000:], y[2000:])
        accs.append((ours, theirs))
        rng3 = np.random.default_rng(100 + seed)
        centers = rng3.normal(scale=2.0, size=(3, 5))
        labels = np.arange(3000) % 3
        X3 = centers[labels] + rng3.normal(size=(3000, 5))
        ours3 = LogisticRegressor().fit(X3[:1500], labels[:1500]).score(X3[1500:], labels[1500:])
        theirs3 = LogisticRegression().fit(X3[:1500], labels[:1500]).score(X3[1500:], labels[1500:])
        accs.append((ours3, theirs3))
    ours, theirs = np.mean(accs, axis=0)
    gap = 100 * (theirs - ours)
    print(f"clean held-out accuracy (binary and 3-class): mgsk {ours:.4f}, LogisticRegression {theirs:.4f}", end="")
    print(f"  (target within 1 point: {T('classification accuracy', gap <= 1.0)})")

    def angle(coef, beta):
        c = np.ravel(coef)
        return float(np.degrees(np.arccos(c @ beta / (np.linalg.norm(c) * np.linalg.norm(beta)))))

    for kind in ("confident", "uniform"):
        for frac in (0.1, 0.2):
            ours_a, theirs_a = [], []
            for seed in seeds:
                rng = np.random.default_rng(1000 + seed)
                X = rng.normal(size=(5000, 5))
                beta = rng.normal(size=5)
                beta *= 3 / np.linalg.norm(beta)
                eta = X @ beta
                y = (rng.random(5000) < 1 / (1 + np.exp(-eta))).astype(int)
                pool = np.flatnonzero(np.abs(eta) > 2) if kind == "confident" else np.arange(5000)
                flip = rng.choice(pool, int(frac * 5000), replace=False)
                y[flip] = 1 - y[flip]
                ours_a.append(angle(LogisticRegressor().fit(X, y).coef_, beta))
                theirs_a.append(angle(LogisticRegression().fit(X, y).coef_, beta))
            o, t = np.mean(ours_a), np.mean(theirs_a)
            where = "among |logit| > 2" if kind == "confident" else "uniformly at random"
            print(f"{int(frac * 100)}% labels flipped {where:<20}: angle to the true β mgsk {o:.2f}°, LogisticRegression {t:.2f}°", end="")
            print(f"  (target closer: {T(f'{int(frac * 100)}% flips {kind}', o < t, in_quick=False)})")

    rng = np.random.default_rng(7)
    X = rng.normal(size=(n_speed, 10))
    binary = (rng.random(n_speed) < 1 / (1 + np.exp(-(X @ rng.normal(size=10))))).astype(int)
    three = np.argmax(X @ rng.normal(size=(10, 3)) + rng.gumbel(size=(n_speed, 3)), axis=1)
    beta = rng.normal(size=10)
    eta = X @ (3 * beta / np.linalg.norm(beta))
    flipped = (rng.random(n_speed) < 1 / (1 + np.exp(-eta))).astype(int)
    flip = rng.choice(np.flatnonzero(np.abs(eta) > 2), n_speed // 10, replace=False)
    flipped[flip] = 1 - flipped[flip]
    cases = (("binary", binary, True), ("3 classes", three, True), ("binary, 10% confident flips", flipped, False))
    for name, y, targeted in cases:
        ours_t, theirs_t = best_times([lambda y=y: LogisticRegressor().fit(X, y), lambda y=y: LogisticRegression().fit(X, y)], repeats)
        print(f"speed n={n_speed:,} × 10, {name}: LogisticRegressor {ours_t:.3f} s, LogisticRegression {theirs_t:.3f} s: ratio {ours_t / theirs_t:.2f}", end="")
        print(f"  (target ≤ 3: {T(f'classifier speed, {name}', ours_t / theirs_t <= 3, in_quick=False)})" if targeted else "  (no target: the robust case, for information)")


def leverage_data(seed, n, frac, k=5):
    """Logistic data; ``frac`` of the rows moved far out in X (about 8 standard
    deviations along one direction) with the label the model finds improbable."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k))
    beta = rng.normal(size=k)
    beta *= 2 / np.linalg.norm(beta)
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ beta)))).astype(int)
    Xc = X.copy()
    m = int(round(frac * n))
    u = beta / np.linalg.norm(beta)
    X[:m] = 8 * u + 0.5 * rng.normal(size=(m, k))
    y_bad = y.copy()
    y_bad[:m] = 0  # far on the positive side, labelled negative
    return X, y_bad, Xc, y


#: The anchors of issue 11: robustbase's Mallows-type glmrob and the
#: Bianco-Yohai estimators, run by Rscript on the same data.
GLMROB_METHODS = (("Mqle", "hat"), ("Mqle", "robCov"), ("BY", "none"), ("WBY", "none"))
GLMROB_SCRIPT = r"""
suppressMessages(library(robustbase))
args <- commandArgs(trailingOnly = TRUE)
methods <- strsplit(strsplit(args[2], ";")[[1]], ":")
out <- file(file.path(args[1], "coef.csv"), "w")
for (path in sort(Sys.glob(file.path(args[1], "data_*.csv")))) {
  d <- read.csv(path)
  for (m in methods) {
    fit <- tryCatch(suppressWarnings(capture.output(f <- glmrob(y ~ ., family = binomial, data = d,
                    method = m[1], weights.on.x = m[2]))) , error = function(e) NULL)
    beta <- if (is.null(fit) || !exists("f")) rep(NA, ncol(d)) else coef(f)
    if (exists("f")) rm(f)
    writeLines(paste(c(basename(path), paste(m, collapse = ":"), format(beta, digits = 17)), collapse = ","), out)
  }
}
close(out)
"""


def glmrob_coefficients(datasets):
    """Coefficients ``(intercept, coef)`` of each of GLMROB_METHODS on each
    ``(X, y)``, from one Rscript run; None when Rscript or robustbase is missing."""
    import os
    import shutil
    import subprocess
    import tempfile

    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        for i, (X, y) in enumerate(datasets):
            header = ",".join(["y"] + [f"x{j}" for j in range(X.shape[1])])
            np.savetxt(os.path.join(tmp, f"data_{i:04d}.csv"), np.c_[y, X], delimiter=",", header=header, comments="", fmt="%.17g")
        script = os.path.join(tmp, "glmrob.R")
        with open(script, "w") as f:
            f.write(GLMROB_SCRIPT)
        methods = ";".join(f"{m}:{w}" for m, w in GLMROB_METHODS)
        done = subprocess.run(["Rscript", script, tmp, methods], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"glmrob anchors skipped: Rscript failed ({done.stderr.strip().splitlines()[-1:]})")
            return None
        coefs = {}
        with open(os.path.join(tmp, "coef.csv")) as f:
            for line in f:
                name, method, *values = line.strip().split(",")
                coefs[(int(name[5:9]), method)] = np.array([float(v) if v.strip() != "NA" else np.nan for v in values])
    return [{f"{m}:{w}": coefs[(i, f"{m}:{w}")] for m, w in GLMROB_METHODS} for i in range(len(datasets))]


def classification_leverage(T, seeds, n=1000, anchors=False):
    print(f"\n## Classification with bad leverage points, n={n}, mean over {len(seeds)} seeds")
    print("shift = ‖coef with the leverage points − coef on the same rows clean‖ (intercept included)")
    fracs = (0.01, 0.03, 0.05)
    data = {(frac, seed): leverage_data(seed, n, frac) for frac in fracs for seed in seeds}
    anchor = None
    if anchors:
        keys = list(data)
        fitted = glmrob_coefficients([(X, y) for key in keys for X, y in (data[key][:2], data[key][2:])])
        if fitted is None:
            print("robustbase anchors skipped: Rscript (R with robustbase) is not installed")
        else:
            anchor = {key: (fitted[2 * i], fitted[2 * i + 1]) for i, key in enumerate(keys)}
            print("anchors: robustbase::glmrob, Mallows-type Mqle (weights.on.x = hat, robCov) and Bianco-Yohai (BY, WBY), by Rscript on the same data")

    def params(model):
        return np.r_[model.intercept_, model.coef_.ravel()]

    for frac in fracs:
        shifts = {name: [] for name in ("mgsk", "mgsk leverage=False", "LogisticRegression")}
        for seed in seeds:
            X, y, Xc, yc = data[frac, seed]
            for name, make in (
                ("mgsk", LogisticRegressor),
                ("mgsk leverage=False", lambda: LogisticRegressor(leverage=False)),
                ("LogisticRegression", LogisticRegression),
            ):
                shifts[name].append(float(np.linalg.norm(params(make().fit(X, y)) - params(make().fit(Xc, yc)))))
            if anchor is not None:
                bad, clean = anchor[frac, seed]
                for method in bad:
                    label = "glmrob " + method.replace(":none", "").replace(":", " ")
                    shifts.setdefault(label, []).append(float(np.linalg.norm(bad[method] - clean[method])))
        mean = {name: float(np.nanmean(v)) for name, v in shifts.items()}
        o, t = mean["mgsk"], mean["LogisticRegression"]
        print(f"{int(frac * 100)}% bad leverage points: shift mgsk {o:.3f}, LogisticRegression {t:.3f}; ratio {o / t:.2f}", end="")
        print(f"  (target ≤ 0.5: {T(f'classification leverage {int(frac * 100)}%', o <= 0.5 * t)})")
        others = ", ".join(f"{name} {value:.3f}" for name, value in mean.items() if name not in ("mgsk", "LogisticRegression"))
        print(f"{'':<26}{others}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: checks that the script runs and the targets that hold there")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when a checked target is missed")
    parser.add_argument(
        "--only",
        choices=("wide", "masking", "classification-leverage", "speed"),
        help="run only this section (at the full sizes, or the quick ones with --quick)",
    )
    args = parser.parse_args()
    T = Targets(args.quick)
    seeds = range(2 if args.quick else args.seeds)
    if args.only:
        section = {
            "wide": lambda: wide(T, range(3)),
            "masking": lambda: masking(T, range(10)),
            "classification-leverage": lambda: classification_leverage(T, seeds, anchors=not args.quick),
            "speed": lambda: speed(T, 20_000 if args.quick else 1_000_000, 10, 1 if args.quick else 3),
        }
        section[args.only]()
        T.summary()
        raise SystemExit(1 if args.strict and T.missed else 0)
    robustness(T, seeds, n=300 if args.quick else 1000)
    efficiency(T, range(3 if args.quick else 20))
    textbook(T)
    if args.quick:
        print("\n## Wide data and clustered bad leverage: skipped in quick mode (their targets need the full run)")
        T.unchecked += ["wide data", "clustered bad leverage vs RLMDetSMM"]
    else:
        wide(T, range(3))
        masking(T, range(10))
    speed(T, 20_000 if args.quick else 1_000_000, 10, 1 if args.quick else 3)
    iterations(T)
    classification(T, seeds, 5_000 if args.quick else 100_000, 1 if args.quick else 3)
    classification_leverage(T, seeds, anchors=not args.quick)
    T.summary()
    if args.strict and T.missed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
