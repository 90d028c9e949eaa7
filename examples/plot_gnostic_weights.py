"""
===============================
The gnostic weight of each row
===============================

After ``fit``, every gnostic estimator exposes the final filtering weight of
each training row in ``weights_`` (in ``[0, 1]``), a boolean mask
``outliers_`` of the rows whose weight fell below about 0.1, and with
``gnostic_characteristics=True`` all gnostic characteristics of each row in
``characteristics_``. This example looks at them on a line with outliers of
every size, and with good and bad leverage points.
"""

# %%
# Data with errors of every size
# ------------------------------
# 120 rows on the line ``y = 2 x + 1`` with unit noise. Rows 0–14 get errors
# from 2 to 30 noise standard deviations; rows 15–17 are *good* leverage
# points (far out in ``x``, on the line); rows 18–20 are *bad* leverage
# points (far out in ``x``, off the line).
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.linear_model import HuberRegressor

from mgsk import LinearRegressor

rng = np.random.default_rng(1)
n = 120
X = rng.uniform(0, 10, size=(n, 1))
y = 2.0 * X[:, 0] + 1.0 + rng.normal(size=n)
y[:15] += np.linspace(2, 30, 15)
X[15:21, 0] = [22, 24, 26, 22, 24, 26]
y[15:18] = 2.0 * X[15:18, 0] + 1.0 + rng.normal(size=3)
y[18:21] = rng.normal(3, 1, size=3)
kind = np.array(
    ["error in y"] * 15
    + ["good leverage"] * 3
    + ["bad leverage"] * 3
    + ["clean"] * (n - 21)
)

model = LinearRegressor(gnostic_characteristics=True).fit(X, y)
huber = HuberRegressor().fit(X, y)
print(
    f"mgsk:  slope {model.coef_[0]:.3f}, intercept {model.intercept_:.3f},"
    f" scale S = {model.scale_:.3f}"
)
print(f"Huber: slope {huber.coef_[0]:.3f}, intercept {huber.intercept_:.3f}")

# %%
# The weights on the data
# -----------------------
# Each row coloured by its gnostic weight; the rows in ``outliers_`` are
# circled. The good leverage points keep their full weight: the final
# weights depend on the residuals only, so a row far out in ``x`` that
# follows the model still counts (and sharpens the slope).
fig, ax = plt.subplots(figsize=(8, 4.2), layout="constrained")
points = ax.scatter(
    X[:, 0],
    y,
    c=model.weights_,
    cmap="viridis",
    vmin=0,
    vmax=1,
    s=28,
    zorder=3,
)
ax.scatter(
    X[model.outliers_, 0],
    y[model.outliers_],
    s=120,
    facecolors="none",
    edgecolors="tab:red",
    label="outliers_",
    zorder=4,
)
grid = np.linspace(0, 27, 2)
ax.plot(
    grid, model.predict(grid[:, None]), color="tab:blue", lw=2, label="mgsk"
)
ax.plot(
    grid,
    huber.predict(grid[:, None]),
    color="tab:orange",
    ls="--",
    label="Huber",
)
fig.colorbar(points, ax=ax, label="weights_")
ax.set(xlabel="x", ylabel="y")
ax.legend(loc="upper left")
plt.show()

# %%
# Weight against residual
# -----------------------
# The gnostic weight is the estimating fidelity ``sech x`` of the row's
# gnostic log-ratio ``x``, proportional to its residual. For comparison, the
# weight that Huber's loss gives to the same rows: ``1`` inside
# ``epsilon * scale_``, ``epsilon * scale_ / |r|`` outside, so it never
# reaches 0.
r = y - model.predict(X)
r_huber = y - huber.predict(X)
huber_w = np.minimum(
    1.0, huber.epsilon * huber.scale_ / np.maximum(np.abs(r_huber), 1e-12)
)
fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
for label, marker in [
    ("clean", "o"),
    ("error in y", "^"),
    ("good leverage", "s"),
    ("bad leverage", "D"),
]:
    sel = kind == label
    ax.scatter(
        r[sel],
        model.weights_[sel],
        marker=marker,
        s=26,
        label=f"mgsk, {label}",
    )
ax.scatter(
    r_huber, huber_w, marker=".", color="0.6", s=18, label="Huber, all rows"
)
ax.set(xlabel="residual", ylabel="weight", xscale="symlog")
ax.legend(fontsize=8, ncols=2)
plt.show()

# %%
# The weight of each row
# ----------------------
# Rows in order, so the spoiled rows 0–20 stand out on the left.
fig, ax = plt.subplots(figsize=(9, 2.8), layout="constrained")
colors = np.where(
    kind == "clean",
    "0.5",
    np.where(kind == "good leverage", "tab:green", "tab:red"),
)
ax.bar(np.arange(n), model.weights_, color=colors, width=0.8)
ax.set(xlabel="row", ylabel="weights_", xlim=(-1, n))
plt.show()

# %%
# The characteristics of each row
# -------------------------------
# ``characteristics_`` holds the nine characteristics of the
# :ref:`theory page <theory>` at the final log-ratio of every row. A few
# rows: the estimating fidelity ``f_I`` is the weight, the irrelevance
# ``h_I`` carries the sign of the residual, the probability ``p_I`` and
# information ``I_I`` follow from it, and the residual entropy ``re`` grows
# without bound.
table = pd.DataFrame(model.characteristics_)
table.insert(0, "kind", kind)
table.insert(1, "residual", r)
pd.set_option(
    "display.precision", 3, "display.width", 150, "display.max_columns", 12
)
print(table.iloc[[0, 4, 9, 14, 15, 18, 30, 31]])

# %%
# The weights agree with ``characteristics_["f_I"]``, and the mask with
# the weights:
print(np.allclose(model.weights_, model.characteristics_["f_I"]))
print("rows in outliers_:", np.flatnonzero(model.outliers_))
