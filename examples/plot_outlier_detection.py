"""
=========================================
Outlier detection by marginal analysis
=========================================

:class:`mgsk.GnosticOutlierDetector` finds outliers without being told how
many there are (``contamination="auto"``): each column's homogeneous core
and its membership interval decide (see :ref:`distributions`). We compare it
with scikit-learn's detectors, which need the contamination, on data with
outliers of several sizes, and run it on the Hawkins-Bradu-Kass data.
"""

# %%
# Outliers of several sizes
# -------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.covariance import EllipticEnvelope
from sklearn.ensemble import IsolationForest
from sklearn.metrics import f1_score
from sklearn.neighbors import LocalOutlierFactor

from mgsk import GnosticOutlierDetector
from mgsk.datasets import load_hbk

rng = np.random.default_rng(0)
n, share = 400, 0.15
X = rng.normal(size=(n, 2))
m = int(share * n)
X[:m, 0] += rng.choice([-1, 1], size=m) * rng.uniform(6, 30, size=m)
truth = np.r_[-np.ones(m), np.ones(n - m)]

detectors = {
    "mgsk (auto)": GnosticOutlierDetector(),
    "IsolationForest": IsolationForest(contamination=share, random_state=0),
    "LocalOutlierFactor": LocalOutlierFactor(contamination=share),
    "EllipticEnvelope": EllipticEnvelope(contamination=share, random_state=0),
}
fig, axes = plt.subplots(1, 4, figsize=(13, 3.4), layout="constrained", sharey=True)
for (name, detector), ax in zip(detectors.items(), axes):
    pred = detector.fit_predict(X)
    ax.scatter(X[:, 0], X[:, 1], c=np.where(pred == -1, "tab:red", "tab:blue"), s=8)
    ax.set(title=f"{name}\nF1 = {f1_score(truth, pred, pos_label=-1):.3f}", xlabel="x0")
axes[0].set_ylabel("x1")
plt.show()

# %%
# The decision intervals
# ----------------------
# Each column's decision interval: the membership interval of its core,
# cut to the values that are not improbably far in the core's EGDF.
det = detectors["mgsk (auto)"]
print("decision intervals:\n", det.decision_interval_.round(2))
print("membership intervals:\n", det.membership_interval_.round(2))
print("core fractions:", det.core_fraction_.round(3))

# %%
# Scores
# ------
# ``score_samples`` is the margin inside the intervals (1 at the centre, 0
# on a bound); outliers score below 0.
scores = det.score_samples(X)
fig, ax = plt.subplots(figsize=(8, 3), layout="constrained")
ax.hist([scores[truth == 1], scores[truth == -1]], bins=60, label=["inliers", "outliers"], stacked=True)
ax.axvline(0, color="k", lw=1)
ax.set(xlabel="score_samples", ylabel="rows")
ax.legend()
plt.show()

# %%
# Hawkins-Bradu-Kass
# ------------------
# The literature names rows 1-14 (1-based) as leverage points of the
# features; the detector flags them from the features alone.
hbk = load_hbk()
flagged = np.flatnonzero(GnosticOutlierDetector().fit_predict(hbk.data) == -1)
print("flagged rows (0-based):", flagged)
print("literature's outliers:", hbk.outliers, "and the good leverage points 10-13")
