"""
=======================================================
Outliers and leverage points: OLS, Huber, RANSAC, mgsk
=======================================================

A straight line ``y = 2 x + 1`` with Gaussian noise, spoiled in two ways:

* **outliers in y**: 20 % of the rows get a gross positive error in the
  target, at ordinary values of ``x``;
* **bad leverage points**: 20 % of the rows sit far to the right in ``x``
  with a target that does not follow the line.

We fit ordinary least squares, :class:`~sklearn.linear_model.HuberRegressor`,
:class:`~sklearn.linear_model.RANSACRegressor`,
:class:`~sklearn.linear_model.TheilSenRegressor` and
:class:`mgsk.LinearRegressor`, draw their lines, and then measure the error
of the fitted coefficients over several random data sets.
"""

# %%
# The data
# --------
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import (
    HuberRegressor,
    LinearRegression,
    RANSACRegressor,
    TheilSenRegressor,
)

from mgsk import LinearRegressor

TRUE_SLOPE, TRUE_INTERCEPT = 2.0, 1.0


def make_data(kind, seed, n=100, fraction=0.2):
    """A line with noise; ``kind`` is "clean", "outliers" or "leverage"."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 10, size=(n, 1))
    y = TRUE_SLOPE * X[:, 0] + TRUE_INTERCEPT + rng.normal(scale=1.0, size=n)
    bad = np.zeros(n, dtype=bool)
    m = int(fraction * n)
    bad[:m] = True
    if kind == "outliers":
        y[:m] += rng.uniform(15, 30, size=m)
    elif kind == "leverage":
        X[:m, 0] = rng.normal(25, 1.0, size=m)
        y[:m] = rng.normal(5, 1.0, size=m)
    return X, y, bad


def estimators():
    return {
        "OLS": LinearRegression(),
        "Huber": HuberRegressor(),
        "RANSAC": RANSACRegressor(random_state=0),
        "Theil-Sen": TheilSenRegressor(random_state=0),
        "mgsk": LinearRegressor(),
    }


def line_of(name, est):
    """Slope and intercept of a fitted estimator."""
    inner = est.estimator_ if name == "RANSAC" else est
    return float(inner.coef_[0]), float(inner.intercept_)


# %%
# The fitted lines
# ----------------
# Crosses are the spoiled rows. Each line is one estimator fitted to all
# the rows, without being told which are spoiled.
colors = {
    "OLS": "tab:gray",
    "Huber": "tab:orange",
    "RANSAC": "tab:green",
    "Theil-Sen": "tab:purple",
    "mgsk": "tab:blue",
}
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
for ax, kind, title in zip(
    axes,
    ["outliers", "leverage"],
    ["20 % outliers in y", "20 % bad leverage points"],
):
    X, y, bad = make_data(kind, seed=0)
    ax.scatter(X[~bad, 0], y[~bad], s=14, color="0.35", label="good rows")
    ax.scatter(
        X[bad, 0],
        y[bad],
        s=26,
        marker="x",
        color="tab:red",
        label="spoiled rows",
    )
    grid = np.linspace(X.min(), X.max(), 2)
    for name, est in estimators().items():
        est.fit(X, y)
        slope, intercept = line_of(name, est)
        ax.plot(
            grid,
            slope * grid + intercept,
            color=colors[name],
            lw=3 if name == "mgsk" else 1.6,
            label=f"{name}: slope {slope:.2f}",
        )
    ax.plot(
        grid, TRUE_SLOPE * grid + TRUE_INTERCEPT, "k:", lw=1, label="true line"
    )
    ax.set(title=title, xlabel="x", ylabel="y")
    ax.legend(fontsize=8, loc="upper left")
plt.show()

# %%
# Outliers in ``y`` pull OLS up; Huber's bounded influence limits the
# damage but does not remove it. Bad leverage points are worse: a row far out
# in ``x`` has a small residual under the wrong line, so Huber, like OLS,
# tilts towards it. RANSAC and mgsk find the line of the bulk; Theil-Sen is
# pulled part of the way.
#
# mgsk reaches that result without a random search (RANSAC) or a
# combinatorial estimate (Theil-Sen): a deterministic start that down-weights
# rows far from the bulk of ``X``, then gnostic reweighting of the residuals
# (see :ref:`estimators`).
#
# The errors of the coefficients, over ten data sets
# --------------------------------------------------
# ``||(slope, intercept) - (2, 1)||`` averaged over ten seeds, and the mean
# time of one fit on this machine, measured while the documentation was built.
kinds = ["clean", "outliers", "leverage"]
names = list(estimators())
errors = {kind: {name: [] for name in names} for kind in kinds}
seconds = {name: [] for name in names}
for kind in kinds:
    for seed in range(10):
        X, y, _ = make_data(kind, seed)
        for name, est in estimators().items():
            start = time.perf_counter()
            est.fit(X, y)
            seconds[name].append(time.perf_counter() - start)
            slope, intercept = line_of(name, est)
            errors[kind][name].append(
                np.hypot(slope - TRUE_SLOPE, intercept - TRUE_INTERCEPT)
            )

print(
    f"{'estimator':<10}"
    + "".join(f"{k:>11}" for k in kinds)
    + f"{'ms/fit':>9}"
)
for name in names:
    row = "".join(f"{np.mean(errors[k][name]):11.3f}" for k in kinds)
    print(f"{name:<10}{row}{1000 * np.mean(seconds[name]):9.1f}")

# %%
# The same numbers as a bar chart (log scale: OLS and Huber break down by
# two orders of magnitude on leverage points).
fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
width = 0.16
for i, name in enumerate(names):
    means = [np.mean(errors[k][name]) for k in kinds]
    ax.bar(
        np.arange(len(kinds)) + (i - 2) * width,
        means,
        width,
        label=name,
        color=colors[name],
    )
ax.set_xticks(
    np.arange(len(kinds)),
    ["clean data", "20 % outliers in y", "20 % bad leverage"],
)
ax.set_yscale("log")
ax.set_ylabel("mean coefficient error")
ax.legend(ncols=5, fontsize=8, loc="upper left")
plt.show()

# %%
# On clean data all five are close (mgsk loses a little efficiency against
# OLS, as every robust estimator does). The full benchmark, with larger
# samples, more contamination levels and timings, is
# ``benchmarks/bench_estimators.py`` (its output is in :ref:`estimators`).
