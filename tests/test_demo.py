"""``python -m mgsk.demo`` runs the guide's workflow in a fresh directory."""

import os
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
    return done.stdout


def test_demo_on_the_default_store_then_on_mlflow_tracking_uri(tmp_path):
    from mgsk.datasets import load_stackloss
    from mgsk.demo import ALIAS, MODEL_NAME

    out = run_demo(tmp_path)
    assert (tmp_path / "mlflow.db").exists() and (tmp_path / "mlruns").is_dir()
    assert "Runs by re " in out and f"as @{ALIAS}" in out
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
        X, _ = load_stackloss(return_X_y=True, as_frame=True)
        loaded = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{ALIAS}")
        native = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{ALIAS}").get_raw_model()
        assert np.array_equal(loaded.predict(X), native.predict(X))
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other_uri = f"sqlite:///{tmp_path / 'other.db'}"
    out = run_demo(elsewhere, tracking_uri=other_uri)
    assert (tmp_path / "other.db").exists() and not (elsewhere / "mlflow.db").exists()
    assert f"--backend-store-uri {other_uri}" in out
