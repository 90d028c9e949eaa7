"""Gnostic data analysis: outlier-detector F1, robustness of the location, EGDF speed.

Every figure is measured in the same run as its baselines:

    python benchmarks/bench_analysis.py            # the full run (a few minutes)
    python benchmarks/bench_analysis.py --quick    # the targets a quick run must meet; exit 1 on a MISS

Targets (issue 14), printed with PASS or MISS:

* F1 of ``GnosticOutlierDetector()`` (``contamination="auto"``) at least that
  of the best of IsolationForest, LocalOutlierFactor and EllipticEnvelope,
  each told the true contamination, on every case whose outliers are
  marginal. Each outlier is moved in one coordinate; a case is *marginal*
  when marginal analysis of the clean sample says that none of its outliers
  belongs: every moved value lies outside the membership interval of its
  column's clean values (``GnosticDistribution().fit(X[y == 1])``), in
  every seed. The classification uses the clean data and the truth only,
  never the detector's output; the other cases are printed with "n/a".
  Outliers of 4-6 noise standard deviations lie inside that interval (it
  reaches about 7.4 for 400-500 normal values): marginal analysis counts
  such values as possible members of the sample, and a detector that is not
  told how many to flag has no ground to reject them;
* |bias| of ``location_`` no larger than that of the median (up to two
  standard errors of the mean estimate), under 0-40 %
  one-sided contamination (bias and variance of the mean, the median and
  Huber's M-estimate printed beside it);
* an EGDF fit (``GnosticDistribution().fit``: scale, location, homogeneity
  and marginal analysis) of 1e5 values in at most 1 s of CPU time, and linear in n: the
  time per value at the largest n at most twice that at 1e5.

The full run also counts the detector's false alarms on clean normal data
(no target: the rates the columns' tail probabilities and the distances' level give).

The quick mode runs the cases it is meant to meet (univariate outliers of 12
noise standard deviations and more, medium ones printed, the location at every contamination,
linearity from 2e4 to 1e5 values) and exits with status 1 when one misses.
"""

import argparse
import sys
import time
import warnings

import numpy as np
from sklearn.covariance import EllipticEnvelope
from sklearn.ensemble import IsolationForest
from sklearn.linear_model import HuberRegressor
from sklearn.metrics import f1_score
from sklearn.neighbors import LocalOutlierFactor

from mgsk import GnosticDistribution, GnosticOutlierDetector

warnings.filterwarnings("ignore")

#: Outlier sizes, in noise standard deviations.
SIZES = {"small (4-6)": (4.0, 6.0), "medium (6-12)": (6.0, 12.0), "large (12-50)": (12.0, 50.0)}


def verdict(ok):
    return "PASS" if ok else "MISS"


def contaminated(seed, n, k, fraction, size):
    """Standard normal rows; a ``fraction`` of them get one coordinate moved by ±size."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k))
    m = int(round(fraction * n))
    low, high = SIZES[size]
    X[np.arange(m), rng.integers(0, k, size=m)] = rng.choice([-1.0, 1.0], size=m) * rng.uniform(low, high, size=m)
    y = np.ones(n, dtype=int)
    y[:m] = -1
    return X, y


def marginal_share(X, y):
    """The share of the outliers whose moved value lies outside its column's clean membership interval."""
    clean = GnosticDistribution().fit(X[y == 1])
    lo, hi = clean.membership_interval_.T
    outside = (X < lo) | (X > hi)  # NaN (an inhomogeneous clean column) counts as inside
    return float(outside[y == -1].any(axis=1).mean())


def detector_f1(k, sizes, fractions, seeds, n):
    print(f"\n## Outlier detection, {k} feature(s), n={n}: F1 of the outliers (mean of {len(seeds)} seeds)")
    print("mgsk uses contamination='auto'; the others are told the true contamination.")
    print("marginal = share of the outliers outside the clean sample's membership interval (target when 100 %)\n")
    print(f"{'outliers':>15} {'share':>6} {'marginal':>9} {'mgsk':>7} {'IForest':>8} {'LOF':>7} {'EllEnv':>7}  target")
    misses = 0
    for size in sizes:
        for fraction in fractions:
            scores = {"mgsk": [], "IForest": [], "LOF": [], "EllEnv": []}
            marginal = []
            for seed in seeds:
                X, y = contaminated(seed, n, k, fraction, size)
                marginal.append(marginal_share(X, y))
                predictions = {
                    "mgsk": GnosticOutlierDetector().fit_predict(X),
                    "IForest": IsolationForest(contamination=fraction, random_state=seed).fit_predict(X),
                    "LOF": LocalOutlierFactor(contamination=fraction).fit_predict(X),
                    "EllEnv": EllipticEnvelope(contamination=fraction, random_state=seed).fit_predict(X),
                }
                for name, pred in predictions.items():
                    scores[name].append(f1_score(y, pred, pos_label=-1))
            mean = {name: float(np.mean(v)) for name, v in scores.items()}
            best = max(mean["IForest"], mean["LOF"], mean["EllEnv"])
            share = min(marginal)
            if share == 1.0:
                ok = mean["mgsk"] >= best - 1e-9
                misses += not ok
                target = f"{verdict(ok)} (>= {best:.3f})"
            else:
                target = "n/a (not marginal)"
            print(
                f"{size:>15} {fraction:>6.0%} {share:>9.0%} {mean['mgsk']:>7.3f} {mean['IForest']:>8.3f} "
                f"{mean['LOF']:>7.3f} {mean['EllEnv']:>7.3f}  {target}"
            )
    return misses


def false_alarms(ks, seeds, n):
    print(f"\n## False alarms of GnosticOutlierDetector() on clean N(0, I) data, n={n} (no target)\n")
    print(f"{'features':>9}  rows flagged per seed")
    for k in ks:
        samples = [np.random.default_rng(seed).normal(size=(n, k)) for seed in seeds]
        counts = [int(np.sum(GnosticOutlierDetector().fit_predict(X) == -1)) for X in samples]
        print(f"{k:>9}  {counts}")


def huber_location(x):
    return float(HuberRegressor(alpha=0.0).fit(np.zeros((x.shape[0], 1)), x).intercept_)


def location_robustness(fractions, reps, n):
    print(f"\n## Location under one-sided contamination: n={n}, N(0, 1) data, outliers U(5, 15), {reps} samples")
    print("bias = mean estimate - 0; var = variance of the estimate over the samples\n")
    names = ["location_", "mean", "median", "Huber"]
    print(f"{'share':>6} " + " ".join(f"{name + ' bias':>15} {'var':>8}" for name in names) + "  target")
    misses = 0
    for fraction in fractions:
        estimates = {name: [] for name in names}
        for rep in range(reps):
            rng = np.random.default_rng(1000 + rep)
            x = rng.normal(size=n)
            m = int(round(fraction * n))
            x[:m] = rng.uniform(5.0, 15.0, size=m)
            estimates["location_"].append(GnosticDistribution().fit(x[:, None]).location_[0])
            estimates["mean"].append(x.mean())
            estimates["median"].append(np.median(x))
            estimates["Huber"].append(huber_location(x))
        bias = {k: float(np.mean(v)) for k, v in estimates.items()}
        var = {k: float(np.var(v)) for k, v in estimates.items()}
        # Up to two standard errors of the mean estimate: at 0 % both biases are noise.
        ok = abs(bias["location_"]) <= abs(bias["median"]) + 2.0 * np.sqrt(var["location_"] / reps)
        misses += not ok
        row = " ".join(f"{bias[k]:>15.4f} {var[k]:>8.5f}" for k in names)
        print(f"{fraction:>6.0%} {row}  {verdict(ok)} (|bias| <= median's + 2 s.e.)")
    return misses


def egdf_speed(sizes, reference):
    print("\n## Speed of an EGDF fit (scale, location, homogeneity, marginal analysis), N(0, 1) data")
    print("CPU time of this process (the machine is shared: wall time measures the neighbours too)")
    print("per value = fit time / n; linear when the time per value stays within 2x of that at the reference n\n")
    print(f"{'n':>9} {'fit [s]':>9} {'per value [us]':>15}")
    per_value = {}
    for n in sizes:
        x = np.random.default_rng(n).normal(size=(n, 1))
        best = np.inf
        for _ in range(2 if n <= 300_000 else 1):
            start = time.process_time()
            GnosticDistribution().fit(x)
            best = min(best, time.process_time() - start)
        per_value[n] = best / n
        print(f"{n:>9} {best:>9.3f} {1e6 * best / n:>15.2f}")
    misses = 0
    if 100_000 in per_value:
        ok = per_value[100_000] * 100_000 <= 1.0
        misses += not ok
        print(f"fit of 1e5 values: {per_value[100_000] * 1e5:.3f} s  {verdict(ok)} (<= 1 s)")
    largest = max(per_value)
    ratio = per_value[largest] / per_value[reference]
    ok = ratio <= 2.0
    misses += not ok
    print(f"time per value at n={largest} / at n={reference}: {ratio:.2f}  {verdict(ok)} (<= 2, linear)")
    return misses


def peer_note():
    print("\n## The peer (machinegnostics)")
    try:
        import machinegnostics  # noqa: F401
    except ImportError:
        print("machinegnostics is not installed here (GPL, pulls in torch and xgboost): not measured.")
        print("See docs/user_guide/distributions.rst for what was compared and why.")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the quick targets only; exit 1 on a MISS")
    args = parser.parse_args(argv)
    if args.quick:
        misses = detector_f1(1, ["medium (6-12)", "large (12-50)"], [0.05, 0.3], [0, 1], 300)
        misses += location_robustness([0.0, 0.2, 0.4], 16, 200)
        misses += egdf_speed([20_000, 100_000], 20_000)
    else:
        seeds = [0, 1, 2]
        misses = detector_f1(1, list(SIZES), [0.05, 0.1, 0.2, 0.3], seeds, 500)
        misses += detector_f1(5, list(SIZES), [0.05, 0.1, 0.2, 0.3], seeds, 500)
        false_alarms([1, 2, 5], range(10), 500)
        misses += location_robustness([0.0, 0.1, 0.2, 0.3, 0.4], 40, 200)
        misses += egdf_speed([100_000, 300_000, 1_000_000], 100_000)
        peer_note()
    print(f"\n{misses} target(s) missed")
    return 1 if (args.quick and misses) else 0


if __name__ == "__main__":
    sys.exit(main())
