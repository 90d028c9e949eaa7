"""``python -m mgsk.demo`` runs the guide's workflow in a fresh directory."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

mlflow = pytest.importorskip("mlflow")

pytestmark = pytest.mark.slow


def run_demo(cwd, tracking_uri=None):
    # mlflow.set_tracking_uri / set_registry_uri in earlier tests export these variables.
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    done = subprocess.run(
        [sys.executable, "-m", "mgsk.demo"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # MLflow's warning when a run-relative URI names no artifacts: register the logged model's URI.
    assert "has no artifacts at artifact path" not in done.stdout + done.stderr
    return done.stdout


def test_ui_hint_opens_the_runs_page_of_the_experiment():
    from mgsk.demo import _ui_hint

    # In MLflow 3, #/experiments/<id> alone opens a GenAI overview page.
    assert "http://mlflow.example:5000/#/experiments/7/runs " in _ui_hint("http://mlflow.example:5000/", "7")
    assert "http://127.0.0.1:5000/#/experiments/7/runs " in _ui_hint("sqlite:///mlflow.db", "7")


def test_demo_on_the_default_store_then_on_mlflow_tracking_uri(tmp_path):
    from mgsk.datasets import load_stackloss
    from mgsk.demo import ALIAS, MODEL_NAME

    out = run_demo(tmp_path)
    assert (tmp_path / "mlflow.db").exists() and (tmp_path / "mlruns").is_dir()
    assert "Runs by re " in out and f"alias @{ALIAS}" in out
    assert "mlflow ui --backend-store-uri sqlite:///mlflow.db" in out

    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    default_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    try:
        mlflow.set_tracking_uri(default_uri)
        mlflow.set_registry_uri(default_uri)
        runs = mlflow.search_runs(experiment_names=["mgsk-demo"], order_by=["metrics.re ASC"])
        assert len(runs) == 2
        # autolog did the logging: parameters, gnostic metrics, the per-iteration curve
        assert {"params.degree", "metrics.n_iter", "metrics.scale", "tags.estimator_class"} <= set(runs.columns)
        curve = mlflow.MlflowClient().get_metric_history(runs.iloc[0]["run_id"], "re")
        assert len(curve) >= 2 and [m.step for m in curve] == sorted(m.step for m in curve)
        champion = mlflow.MlflowClient().get_model_version_by_alias(MODEL_NAME, ALIAS)
        assert champion.run_id == runs.iloc[0]["run_id"]
        # The version is the model autolog logged in the best run, registered by its own URI.
        experiment = mlflow.get_experiment_by_name("mgsk-demo")
        (logged,) = mlflow.search_logged_models(
            experiment_ids=[experiment.experiment_id],
            filter_string=f"source_run_id = '{champion.run_id}'",
            output_format="list",
        )
        assert champion.source == logged.model_uri == f"models:/{logged.model_id}"
        assert f"Registered {logged.model_uri} (" in out
        assert f"http://127.0.0.1:5000/#/experiments/{experiment.experiment_id}/runs " in out
        X, _ = load_stackloss(return_X_y=True, as_frame=True)
        loaded = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{ALIAS}")
        native = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{ALIAS}").get_raw_model()
        assert np.array_equal(loaded.predict(X), native.predict(X))
        check_weights_report(out, native, load_stackloss().outliers)
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other_uri = f"sqlite:///{tmp_path / 'other.db'}"
    out = run_demo(elsewhere, tracking_uri=other_uri)
    assert (tmp_path / "other.db").exists() and not (elsewhere / "mlflow.db").exists()
    assert f"--backend-store-uri {other_uri}" in out


def check_weights_report(out, model, classical):
    """The demo's words on the classical outliers and the weights plot's title say the same, truly."""
    from mgsk.mlflow._autolog.plots import weights_title

    words = re.search(r"rows ([\d, ]+), get the champion's weights ([\d., e-]+) \(the (\d+) lowest of its (\d+)\)", out)
    assert words, out
    assert [int(r) - 1 for r in words[1].split(", ")] == list(classical)
    np.testing.assert_allclose([float(w) for w in words[2].split(", ")], model.weights_[classical], rtol=0.05)  # printed to 2 digits
    assert int(words[3]) == len(classical) and int(words[4]) == len(model.weights_)
    assert set(np.argsort(model.weights_)[: len(classical)]) == set(classical)
    rejected = re.search(r"Rows it rejects \(outliers_, red in gnostic_weights.png\): ([\d, ]+);", out)
    assert rejected, out
    assert [int(r) - 1 for r in rejected[1].split(", ")] == list(np.flatnonzero(model.outliers_))
    title = re.search(r"the plot's title: \"(Weights: (\d+) of (\d+) rows rejected [^\"]*)\"", out)
    assert title and title[1] == weights_title(model.outliers_), out
    assert int(title[2]) == len(rejected[1].split(", ")) and int(title[3]) == len(model.weights_)
