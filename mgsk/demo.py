"""The MLflow user's guide workflow with mgsk: ``python -m mgsk.demo``.

Turns on ``mgsk.autolog()``, fits two robust models to Brownlee's stack
loss data (four classical outliers in 21 rows) in a run each, so that every
fit is tracked with no explicit logging call, compares the runs by R-Entropy,
registers the best model, points the ``champion`` alias at it, loads it by
that alias and predicts. It writes to ``$MLFLOW_TRACKING_URI`` when set,
else to ``sqlite:///mlflow.db`` in the current directory (artifacts in
``./mlruns``), and ends by printing what to open in ``mlflow ui``.
Needs ``pip install mgsk[mlflow]``.
"""

import os
import sys

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
EXPERIMENT = "mgsk-demo"
MODEL_NAME = "mgsk-demo-stackloss"
ALIAS = "champion"
METRIC = "re"


def _candidates():
    """The models the demo compares, by run name."""
    from mgsk import LinearRegressor, PolynomialRegressor

    return {"linear": LinearRegressor(), "quadratic": PolynomialRegressor(degree=2)}


def _fit_in_run(run_name, model, X, y):
    """Fit ``model`` inside its own run (autolog logs it there); return the run id."""
    import mlflow

    with mlflow.start_run(run_name=run_name) as run:
        mlflow.set_tag("dataset", "stackloss")
        model.fit(X, y)
    return run.info.run_id


def _ranked_runs(run_ids):
    """The runs ``run_ids``, smallest R-Entropy first."""
    import mlflow

    quoted = ", ".join(f"'{run_id}'" for run_id in run_ids)
    return mlflow.search_runs(
        filter_string=f"attributes.run_id IN ({quoted})", order_by=[f"metrics.{METRIC} ASC"], output_format="list"
    )


def _ui_hint(tracking_uri, experiment_id):
    """How to look at the results."""
    if tracking_uri.startswith(("http://", "https://")):
        base = tracking_uri.rstrip("/")
        return f"Open {base}/#/experiments/{experiment_id} and {base}/#/models/{MODEL_NAME}"
    return (
        f"Run `mlflow ui --backend-store-uri {tracking_uri}` in this directory, then open "
        f"http://127.0.0.1:5000/#/experiments/{experiment_id} (compare the runs by {METRIC}) "
        f"and http://127.0.0.1:5000/#/models/{MODEL_NAME} (the '{ALIAS}' alias)."
    )


def main():
    """Run the workflow and print what to open in ``mlflow ui``.

    Returns
    -------
    int
        The exit status, 0.

    Examples
    --------
    In an empty directory (it creates ``mlflow.db`` and ``mlruns/``)::

        $ python -m mgsk.demo
        $ mlflow ui --backend-store-uri sqlite:///mlflow.db
    """
    try:
        import mlflow
    except ImportError:
        sys.exit("The demo needs MLflow: pip install 'mgsk[mlflow]'")
    from mlflow.tracking import MlflowClient

    import mgsk
    from mgsk.datasets import load_stackloss

    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    mlflow.set_tracking_uri(tracking_uri)
    experiment = mlflow.set_experiment(EXPERIMENT)
    mgsk.autolog()
    X, y = load_stackloss(return_X_y=True, as_frame=True)

    run_ids = [_fit_in_run(name, model, X, y) for name, model in _candidates().items()]
    runs = _ranked_runs(run_ids)
    best = runs[0]
    print(f"Runs by {METRIC} (smaller is better):")
    for run in runs:
        print(f"  {run.info.run_name:<10} {run.data.metrics[METRIC]:.6g}  run {run.info.run_id}")

    version = mlflow.register_model(f"runs:/{best.info.run_id}/model", MODEL_NAME)
    MlflowClient().set_registered_model_alias(MODEL_NAME, ALIAS, version.version)
    champion = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{ALIAS}")
    predictions = champion.predict(X.head(5))

    print(f"Registered {MODEL_NAME} version {version.version} ({best.info.run_name}) as @{ALIAS}.")
    print(f"models:/{MODEL_NAME}@{ALIAS} predicts {', '.join(f'{p:.4g}' for p in predictions)} for the first 5 rows.")
    print(_ui_hint(tracking_uri, experiment.experiment_id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
