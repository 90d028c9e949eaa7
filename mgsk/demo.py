"""The MLflow user's guide workflow with mgsk: ``python -m mgsk.demo``.

Turns on ``mgsk.autolog()``, fits two robust models to Brownlee's stack
loss data (21 rows; the literature names rows 1, 3, 4 and 21 as outliers) in
a run each, so that every fit is tracked with no explicit logging call,
compares the runs by R-Entropy, registers the best run's logged model
(``models:/<model_id>``), points the ``champion`` alias at it, loads it by
that alias and predicts. It then prints the weights the champion gives the
four classical outliers and how many rows it rejects, the count that the
title of the run's ``gnostic_weights.png`` shows. It writes to
``$MLFLOW_TRACKING_URI`` when set, else to ``sqlite:///mlflow.db`` in the
current directory (artifacts in ``./mlruns``), and ends by printing what to
open in ``mlflow ui``. Needs ``pip install mgsk[mlflow]``.
"""

import os
import sys

import numpy as np

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


def _logged_model_uri(run):
    """The ``models:/<model_id>`` URI of the model autolog logged in ``run``."""
    import mlflow

    run_id = run.info.run_id
    models = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'", output_format="list"
    )
    if not models:
        raise RuntimeError(f"autolog logged no model in run {run_id}")
    return models[0].model_uri


def _weights_report(model, dataset):
    """The weights ``model`` gives the data set's classical outliers, and the rows it rejects."""
    from mgsk.mlflow._autolog.log_fit import WEIGHTS_PLOT
    from mgsk.mlflow._autolog.plots import weights_title

    classical = dataset.outliers
    weights = model.weights_
    rows = ", ".join(str(i + 1) for i in classical)
    lowest = np.sort(np.argsort(weights, kind="stable")[: classical.size])
    rank = (
        f"the {classical.size} lowest of its {weights.size}"
        if np.array_equal(lowest, np.sort(classical))
        else f"its {classical.size} lowest are rows {', '.join(str(i + 1) for i in lowest)}"
    )
    rejected = ", ".join(str(i + 1) for i in np.flatnonzero(model.outliers_)) or "none"
    return (
        f"The classical outliers of stack loss, rows {rows}, get the champion's weights "
        f"{', '.join(f'{w:.2g}' for w in weights[classical])} ({rank}).\n"
        f"Rows it rejects (outliers_, red in {WEIGHTS_PLOT}): {rejected}; "
        f'the plot\'s title: "{weights_title(model.outliers_)}".'
    )


def _ui_hint(tracking_uri, experiment_id):
    """How to look at the results."""
    runs = f"#/experiments/{experiment_id}/runs"
    if tracking_uri.startswith(("http://", "https://")):
        base = tracking_uri.rstrip("/")
        return f"Open {base}/{runs} and {base}/#/models/{MODEL_NAME}"
    return (
        f"Run `mlflow ui --backend-store-uri {tracking_uri}` in this directory, then open "
        f"http://127.0.0.1:5000/{runs} (compare the runs by {METRIC}) "
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

    model_uri = _logged_model_uri(best)
    version = mlflow.register_model(model_uri, MODEL_NAME)
    MlflowClient().set_registered_model_alias(MODEL_NAME, ALIAS, version.version)
    champion = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{ALIAS}")
    predictions = champion.predict(X.head(5))

    print(f"Registered {model_uri} ({best.info.run_name}) as {MODEL_NAME} version {version.version}, alias @{ALIAS}.")
    print(f"models:/{MODEL_NAME}@{ALIAS} predicts {', '.join(f'{p:.4g}' for p in predictions)} for the first 5 rows.")
    print(_weights_report(champion.get_raw_model(), load_stackloss()))
    print(_ui_hint(tracking_uri, experiment.experiment_id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
