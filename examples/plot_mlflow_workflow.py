"""
=========================================================
Tracking, comparing and registering models with MLflow
=========================================================

The whole MLflow workflow with mgsk, on a local sqlite store: three runs
that fit polynomials of degree 1, 2 and 3 to data with outliers, each logging
its parameters, its R-Entropy per iteration, validation metrics and the
model; then a comparison of the runs, the registration of the best one with
an alias, and predictions from the registered model.

The store lives in a temporary directory that the example deletes at the
end. In your own project use ``sqlite:///mlflow.db`` and look at the runs
with ``mlflow ui --backend-store-uri sqlite:///mlflow.db``.
"""

# %%
# A store and an experiment
# -------------------------
# sphinx_gallery_thumbnail_number = 2
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.models import infer_signature
from sklearn.metrics import mean_absolute_error

import mgsk.mlflow
from mgsk import PolynomialRegressor
from mgsk.metrics import residual_entropy

tmp = Path(tempfile.mkdtemp())
previous_uri = mlflow.get_tracking_uri()
mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
experiment_id = mlflow.create_experiment(
    "mgsk-gallery", artifact_location=(tmp / "artifacts").as_uri()
)
mlflow.set_experiment(experiment_id=experiment_id)

# %%
# The data: a parabola with 15 % gross errors in the training targets, and a
# clean validation set (the comparison of ``re`` across models is only
# meaningful on data you trust, see :ref:`theory`).
rng = np.random.default_rng(0)


def parabola(n, outliers=0.0):
    x = rng.uniform(-3, 3, size=(n, 1))
    y = 0.5 * x[:, 0] ** 2 - x[:, 0] + 1 + 0.3 * rng.normal(size=n)
    m = int(outliers * n)
    y[:m] += rng.uniform(5, 10, size=m)
    return x, y


X_train, y_train = parabola(150, outliers=0.15)
X_val, y_val = parabola(100)

# %%
# Three runs
# ----------
# Each run logs the parameters, the ``re`` of every iteration as a metric
# history (``step`` = iteration), the fitted ``re_``, validation metrics,
# and the model with its signature and an input example.
for degree in (1, 2, 3):
    with mlflow.start_run(run_name=f"degree-{degree}"):
        model = PolynomialRegressor(degree=degree).fit(X_train, y_train)
        mlflow.log_params(model.get_params())
        for record in model.history_:
            mlflow.log_metric(
                "re_iteration", record["re"], step=record["iteration"]
            )
        y_pred = model.predict(X_val)
        mlflow.log_metrics(
            {
                "re": model.re_,
                "n_iter": model.n_iter_,
                "val_re": residual_entropy(y_val, y_pred),
                "val_mae": mean_absolute_error(y_val, y_pred),
            }
        )
        mgsk.mlflow.log_model(
            model,
            name="model",
            signature=infer_signature(X_train, model.predict(X_train)),
            input_example=X_train[:3],
        )

# %%
# Comparing the runs
# ------------------
# ``mlflow.search_runs`` returns the runs as a DataFrame; this is the table
# the MLflow UI shows. Ordered by the R-Entropy on the clean validation
# set:
runs = mlflow.search_runs(
    experiment_ids=[experiment_id], order_by=["metrics.val_re ASC"]
)
columns = [
    "tags.mlflow.runName",
    "params.degree",
    "metrics.re",
    "metrics.val_re",
    "metrics.val_mae",
    "metrics.n_iter",
]
print(runs[columns].to_string(index=False))

# %%
# Degree 1 is clearly worse. Degrees 2 and 3 are tied on the validation
# set (the cubic coefficient of the true parabola is 0), so we take the
# simpler one: the lowest degree within 5 % of the best validation ``re``.
# The *training* ``re`` (column ``metrics.re``) is dominated by the
# outliers' residuals; on its own it is no way to choose.
good = runs[runs["metrics.val_re"] <= 1.05 * runs["metrics.val_re"].min()]
best = good.loc[good["params.degree"].astype(int).idxmin()]
print("chosen:", best["tags.mlflow.runName"])

fig, (left, right) = plt.subplots(
    1, 2, figsize=(11, 3.8), layout="constrained"
)
client = MlflowClient()
for run in runs.itertuples():
    history = client.get_metric_history(run.run_id, "re_iteration")
    left.plot(
        [m.step for m in history],
        [m.value for m in history],
        marker=".",
        label=runs.loc[run.Index, "tags.mlflow.runName"],
    )
left.set(title="re per iteration, as logged", xlabel="iteration", ylabel="re")
left.legend()
right.bar(runs["tags.mlflow.runName"], runs["metrics.val_re"])
right.set(title="R-Entropy on the validation set", yscale="log")
plt.show()

# %%
# Registering the best run, with an alias
# ---------------------------------------
# Register the model of the chosen run and point the alias ``champion`` at
# it. Applications load ``models:/<name>@champion`` and get whichever
# version the alias points to.
best_run_id = best["run_id"]
version = mlflow.register_model(f"runs:/{best_run_id}/model", "parabola")
client.set_registered_model_alias("parabola", "champion", version.version)

champion = mlflow.pyfunc.load_model("models:/parabola@champion")
native = mgsk.mlflow.load_model("models:/parabola@champion")
print("pyfunc predictions:", champion.predict(X_val[:3]).round(3))
print("native estimator:  ", native)
print(
    "its degree, re_ and iterations:",
    native.degree,
    round(native.re_, 4),
    native.n_iter_,
)

# %%
# The native estimator is the fitted object itself, weights included:
grid = np.linspace(-3, 3, 200)[:, None]
fig, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
dots = ax.scatter(
    X_train[:, 0],
    y_train,
    c=native.weights_,
    cmap="viridis",
    vmin=0,
    vmax=1,
    s=16,
)
ax.plot(
    grid,
    champion.predict(grid),
    color="tab:red",
    lw=2,
    label="models:/parabola@champion",
)
fig.colorbar(dots, ax=ax, label="weights_ of the training rows")
ax.set(xlabel="x", ylabel="y")
ax.legend()
plt.show()

# %%
# Clean up: restore the tracking URI and delete the temporary store.
mlflow.set_tracking_uri(previous_uri)
shutil.rmtree(tmp, ignore_errors=True)
