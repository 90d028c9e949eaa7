"""mgsk models behind real MLflow servers on 127.0.0.1, each stopped by its PID.

``mlflow models serve --env-manager local`` answers dataframe_split, inputs
and CSV payloads with the in-process predictions, bit for bit, and
malformed payloads with HTTP 400 and a readable message. ``mlflow server``
(sqlite backend, artifact proxy) logs, registers and serves mgsk models.
``--env-manager virtualenv`` serves a model whose requirements.txt names the
mgsk wheel it carries (opt-in: it builds an environment from PyPI).
"""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

mlflow = pytest.importorskip("mlflow")

from conftest import free_port, start_process, stop_process, wait_for_http  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

import mgsk.mlflow as mg  # noqa: E402
from mgsk import LinearRegressor, LogisticRegressor  # noqa: E402

pytestmark = pytest.mark.slow


def post(url, body, content_type="application/json"):
    """POST ``body``; return (status, parsed JSON answer)."""
    data = body if isinstance(body, bytes) else body.encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def tracking_uri(tmp_path):
    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment(
        experiment_id=mlflow.create_experiment("serving", artifact_location=(tmp_path / "artifacts").as_uri())
    )
    yield uri
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(previous)
    mlflow.set_registry_uri(previous)


@pytest.fixture
def serve(tmp_path, tracking_uri):
    """Start ``mlflow models serve`` for a model URI; stopped by PID at teardown."""
    procs = []

    def start(model_uri):
        port = free_port()
        proc = start_process(
            [
                sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
                "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            ],
            cwd=tmp_path,
            # As in an activated virtualenv: MLflow execs the `uvicorn` script next to python.
            env={"MLFLOW_TRACKING_URI": tracking_uri, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
        )  # fmt: skip
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/ping", proc)
        return f"{url}/invocations"

    yield start
    for proc in procs:
        stop_process(proc)


def test_served_regressor_matches_in_process_predictions(serve):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 3))
    y = X @ [2.0, -1.0, 0.25] + 0.5 + 0.05 * rng.normal(size=80)
    y[:8] -= 25.0
    model = LinearRegressor().fit(X, y)
    with mlflow.start_run():
        info = mg.log_model(model, name="model")  # no signature: mgsk checks the input itself
    url = serve(info.model_uri)
    rows = X[:7]
    expected = model.predict(rows).tolist()

    split = {"dataframe_split": pd.DataFrame(rows).to_dict(orient="split")}
    assert post(url, json.dumps(split)) == (200, {"predictions": expected})
    assert post(url, json.dumps({"inputs": rows.tolist()})) == (200, {"predictions": expected})
    csv = pd.DataFrame(rows, columns=["a", "b", "c"]).to_csv(index=False)
    assert post(url, csv, content_type="text/csv") == (200, {"predictions": expected})

    status, answer = post(url, '{"inputs": [[1.0, 2.0, 3.0]')
    assert status == 400 and "valid JSON" in answer["message"]
    status, answer = post(url, json.dumps({"inputs": [[1.0, 2.0]]}))
    assert status == 400
    assert "LinearRegressor.predict cannot use this input" in answer["message"]
    assert "X has 2 features, but LinearRegressor is expecting 3 features" in answer["message"]
    status, answer = post(url, json.dumps({"dataframe_split": {"columns": ["a", "b", "c"], "data": [["x", 1, 2]]}}))
    assert status == 400 and "could not convert string to float: 'x'" in answer["message"]
    status, answer = post(url, json.dumps({"rows": [[1, 2, 3]]}))
    assert status == 400 and "dataframe_split" in answer["message"]


def test_served_classifier_enforces_its_signature_and_serves_probabilities(serve):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(150, 2))
    y = np.select([X[:, 0] > 0.5, X[:, 1] > 0.0], ["high", "mid"], "low")
    model = LogisticRegressor(degree=2).fit(X, y)
    with mlflow.start_run():
        # The signature inferred from the example declares the predict_method parameter.
        info = mg.log_model(model, name="model", input_example=X[:3], registered_model_name="clf")
    MlflowClient().set_registered_model_alias("clf", "champion", 1)
    url = serve("models:/clf@champion")
    rows = X[:9]
    payload = {"inputs": rows.tolist()}
    assert post(url, json.dumps(payload)) == (200, {"predictions": model.predict(rows).tolist()})
    status, answer = post(url, json.dumps({**payload, "params": {"predict_method": "predict_proba"}}))
    assert status == 200 and answer == {"predictions": model.predict_proba(rows).tolist()}
    assert np.array_equal(np.array(answer["predictions"]), model.predict_proba(rows))

    status, answer = post(url, json.dumps({"inputs": [[0.1, 0.2, 0.3]]}))
    assert status == 400 and "does not match expected shape (-1, 2)" in answer["message"]
    status, answer = post(url, json.dumps({**payload, "params": {"predict_method": "fit"}}))
    assert status == 400 and "'fit' is not available" in answer["message"]
    assert info.signature.params is not None


@pytest.mark.skipif(
    os.environ.get("MGSK_TEST_SERVE_VIRTUALENV") != "1",
    reason="builds a fresh virtualenv from PyPI (about 6 minutes, 850 MB): set MGSK_TEST_SERVE_VIRTUALENV=1",
)
def test_served_from_a_fresh_virtualenv_with_the_shipped_wheel(tmp_path, tracking_uri):
    """``--env-manager virtualenv``: pyenv's Python, requirements.txt from PyPI, mgsk from the model's wheel."""
    import shutil

    if shutil.which("pyenv") is None:
        pytest.skip("MLflow's virtualenv environment manager needs pyenv")
    X = np.random.default_rng(6).normal(size=(40, 2))
    model = LinearRegressor().fit(X, X @ [1.0, -1.0] + 2.0)
    with mlflow.start_run():
        info = mg.log_model(model, name="model")
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "download")))
    requirements = (local / "requirements.txt").read_text().splitlines()
    if not any(line.startswith("wheels/mgsk-") for line in requirements):
        pytest.skip("the running mgsk came from a package index: the model pins it instead of shipping it")
    port = free_port()
    env = {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_ENV_ROOT": str(tmp_path / "envs"),  # the environment is built under tmp_path only
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": "",  # mgsk must come from the wheel, not from this checkout
    }
    log = open(tmp_path / "serve.log", "wb")  # pip's output would fill a pipe nobody reads yet
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "models", "serve", "-m", info.model_uri,
            "--env-manager", "virtualenv", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        cwd=tmp_path, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ping", proc, timeout=1500)
        answer = post(f"http://127.0.0.1:{port}/invocations", json.dumps({"inputs": X[:5].tolist()}))
        assert answer == (200, {"predictions": model.predict(X[:5]).tolist()})
    except (RuntimeError, TimeoutError) as error:
        raise AssertionError((tmp_path / "serve.log").read_text(errors="replace")[-4000:]) from error
    finally:
        stop_process(proc)
        log.close()
    site = next((tmp_path / "envs").rglob("site-packages/mgsk/__init__.py"))
    assert site.is_file()  # installed into the fresh environment from the shipped wheel


def test_tracking_server_logs_registers_and_loads(mlflow_server, tmp_path):
    uri, _ = mlflow_server()
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        mlflow.set_experiment("through-the-server")
        rng = np.random.default_rng(5)
        X = rng.normal(size=(60, 4))
        model = LinearRegressor(gnostic_characteristics=True).fit(X, X @ [1.0, 0.0, -1.0, 2.0])
        with mlflow.start_run() as run:
            mlflow.log_metric("rentropy", model.re)
            info = mg.log_model(model, name="model", input_example=X[:2], registered_model_name="robust")
        client = MlflowClient()
        client.set_registered_model_alias("robust", "champion", info.registered_model_version)
        assert mlflow.get_logged_model(info.model_id).artifact_location.startswith("mlflow-artifacts:")
        uris = ["models:/robust@champion", "models:/robust/1", f"runs:/{run.info.run_id}/model", info.model_uri]
        for i, model_uri in enumerate(uris):
            dst = tmp_path / f"download-{i}"
            dst.mkdir()
            loaded = mg.load_model(model_uri, dst_path=str(dst))
            assert np.array_equal(loaded.predict(X), model.predict(X)), model_uri
            assert loaded.characteristics_.keys() == model.characteristics_.keys()
        pyfunc_model = mlflow.pyfunc.load_model("models:/robust@champion")
        assert np.array_equal(pyfunc_model.predict(pd.DataFrame(X)), model.predict(X))
        with open(mlflow.pyfunc.get_model_dependencies("models:/robust@champion")) as requirements:
            assert any(line.startswith(("mgsk==", "wheels/mgsk-")) for line in requirements)
    finally:
        mlflow.set_tracking_uri(previous)
        mlflow.set_registry_uri(previous)
