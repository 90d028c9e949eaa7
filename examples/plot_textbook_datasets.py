"""
===========================================
Textbook data sets and the outliers in them
===========================================

Four small data sets that robust statistics has studied for decades ship
with :mod:`mgsk.datasets`, each with the rows the literature names as
outliers (``Bunch.outliers``, 0-based):

* **Belgian phone calls** (1950–1973): for 1964–1969 another recording
  system counted minutes instead of calls;
* **Stars of the cluster CYG OB1**: four red giants are bad leverage
  points in the Hertzsprung–Russell diagram;
* **Stack loss** (Brownlee): 21 days of a nitric acid plant, three
  features, four classical outliers;
* **Hawkins–Bradu–Kass**: 75 artificial rows, three features, ten bad
  leverage points.

We fit :class:`mgsk.LinearRegressor` to each and compare the rows it
rejects (``outliers_``) with the literature's.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import (
    HuberRegressor,
    LinearRegression,
    RANSACRegressor,
)

from mgsk import LinearRegressor
from mgsk.datasets import load_hbk, load_phones, load_stackloss, load_stars

datasets = {
    "phones": load_phones(),
    "stars": load_stars(),
    "stackloss": load_stackloss(),
    "hbk": load_hbk(),
}
models = {
    name: LinearRegressor().fit(ds.data, ds.target)
    for name, ds in datasets.items()
}

# %%
# One feature: the fitted lines
# -----------------------------
# Each row is coloured by its mgsk weight; the literature's outliers are
# circled in red.
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
others = {
    "least squares": LinearRegression(),
    "Huber": HuberRegressor(max_iter=1000),
    "RANSAC": RANSACRegressor(random_state=0),
}
for ax, name in zip(axes, ["phones", "stars"]):
    ds, model = datasets[name], models[name]
    X, y = ds.data, ds.target
    dots = ax.scatter(
        X[:, 0],
        y,
        c=model.weights_,
        cmap="viridis",
        vmin=0,
        vmax=1,
        s=30,
        zorder=3,
    )
    ax.scatter(
        X[ds.outliers, 0],
        y[ds.outliers],
        s=130,
        facecolors="none",
        edgecolors="tab:red",
        label="literature's outliers",
        zorder=4,
    )
    grid = np.linspace(X.min(), X.max(), 2)[:, None]
    for label, est in others.items():
        ax.plot(
            grid, est.fit(X, y).predict(grid), lw=1.2, ls="--", label=label
        )
    ax.plot(grid, model.predict(grid), lw=2.5, color="tab:blue", label="mgsk")
    ax.set(title=name, xlabel=ds.feature_names[0], ylabel=ds.target_names[0])
    ax.legend(fontsize=8)
fig.colorbar(dots, ax=axes, label="mgsk weights_")
plt.show()

# %%
# In the phone data, least squares follows the six bad years up; Huber is
# pulled half way. In the star cluster, the four giants at low temperature
# have so much leverage that least squares and Huber fit a line of the
# wrong sign. RANSAC (with this ``random_state``) and mgsk fit the bulk.
#
# Three features: the weight of each row
# --------------------------------------
# With three features there is no line to draw, but the weights tell the
# story: the literature's outliers are marked with red triangles.
fig, axes = plt.subplots(2, 1, figsize=(10, 5), layout="constrained")
for ax, name in zip(axes, ["stackloss", "hbk"]):
    ds, model = datasets[name], models[name]
    n = len(ds.target)
    ax.bar(np.arange(n), model.weights_, color="0.5")
    ax.scatter(
        ds.outliers,
        np.full(len(ds.outliers), -0.08),
        marker="^",
        color="tab:red",
        clip_on=False,
        label="literature's outliers",
    )
    ax.set(title=name, ylabel="weights_", xlim=(-1, n), ylim=(-0.12, 1.05))
    ax.legend(loc="lower right", fontsize=8)
axes[1].set_xlabel("row (0-based)")
plt.show()

# %%
# The rows found
# --------------
# For each data set: the literature's outliers; the same number of rows
# with the lowest mgsk weights; the rows in mgsk's ``outliers_`` (final
# weight below about 0.1); and the rows that
# :class:`~sklearn.linear_model.HuberRegressor` flags in its own
# ``outliers_`` attribute (residual beyond ``epsilon * scale_``).
for name, ds in datasets.items():
    weights = models[name].weights_
    lowest = np.sort(np.argsort(weights)[: len(ds.outliers)])
    huber = HuberRegressor(max_iter=1000).fit(ds.data, ds.target)
    print(name)
    print("  literature          ", ds.outliers.tolist())
    print("  lowest mgsk weights ", lowest.tolist())
    print(
        "  mgsk outliers_      ",
        np.flatnonzero(models[name].outliers_).tolist(),
    )
    print("  Huber outliers_     ", np.flatnonzero(huber.outliers_).tolist())
    print(
        "  mgsk weights of the literature's outliers:",
        np.round(weights[ds.outliers], 3).tolist(),
    )

# %%
# In all four data sets the rows with the lowest mgsk weights are exactly
# the literature's outliers (the build of this page checks it):
for name, ds in datasets.items():
    lowest = np.argsort(models[name].weights_)[: len(ds.outliers)]
    assert set(lowest) == set(ds.outliers), name

# %%
# How far down they are pushed differs. In the phone, star and HBK data the
# outliers are gross and their weights are near 0. In the phone data,
# ``outliers_`` also holds the neighbouring years 1963 and 1970, which the
# data's description calls "partly affected" by the change of recording
# system. Stack loss is small (21 rows for 4 coefficients) and its outliers
# are moderate: they get the four lowest weights, but only the last row falls
# below 0.1. Huber's flags come from a fit that the outliers tilted: they
# miss outliers (stars, hbk) and flag good rows.
#
# The coefficients of the stack loss model: mgsk on all 21 rows, least
# squares on all rows, and least squares on the 17 rows left after removing
# the literature's four outliers by hand.
ds = datasets["stackloss"]
keep = ~np.isin(np.arange(len(ds.target)), ds.outliers)
fits = {
    "mgsk, all rows": models["stackloss"],
    "least squares, all rows": LinearRegression().fit(ds.data, ds.target),
    "least squares, 17 rows": LinearRegression().fit(
        ds.data[keep], ds.target[keep]
    ),
}
print(
    f"{'':<25}", "  ".join(f"{f:>10}" for f in ds.feature_names), " intercept"
)
for label, est in fits.items():
    print(
        f"{label:<25}",
        "  ".join(f"{c:10.3f}" for c in est.coef_),
        f"{est.intercept_:10.2f}",
    )
