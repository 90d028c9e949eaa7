"""Scaling out a fitted or searched mgsk model: Dask searches, Spark batch scoring, the REST server.

Run it alone on the machine (every figure is a ratio to a baseline measured in
the same run, but a loaded machine slows the clusters' start more than the
work)::

    python benchmarks/bench_scaling.py            # the figures of docs/user_guide/scaling.rst
    python benchmarks/bench_scaling.py --quick    # smaller, to check that it runs

1. Search: GridSearchCV over a PolynomialRegressor (with 10 % outliers), run
   serially, with joblib's own process pool (``n_jobs=-1``), and under
   ``joblib.parallel_backend("dask")`` on a ``distributed.LocalCluster`` of
   2 worker processes x 1 thread x 1 GiB on 127.0.0.1 (and under Ray's
   backend when Ray is installed). Wall times, the ratio to the serial
   search, and whether the CV scores equal the serial ones bit for bit.
2. Batch scoring: ``mlflow.pyfunc.spark_udf`` on a ``local[2]`` session
   scores 1e6 rows (Parquet) with a logged LinearRegressor. Rows/s of the
   scoring (a ``noop`` sink, so nothing is collected; best of 3 after one
   warm-up that starts Spark's Python workers), of Spark's reading alone, and
   of the in-process ``model.predict`` on the same rows held in pandas; the
   predictions collected once must equal ``model.predict`` bit for bit.
3. REST: ``mlflow models serve --env-manager local`` on 127.0.0.1; median
   latency and sequential requests/s for one row and for 1000 rows per
   request, against the in-process ``predict`` of the same rows.

Every process uses one BLAS thread (as Dask's workers do by default), so
the serial search is not slowed by threads competing for the same cores.
There is no target: the figures tell what each way of scaling out costs on
this machine.
"""

import argparse
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import threadpoolctl
from sklearn.model_selection import GridSearchCV, KFold, ParameterGrid

import mgsk

SEARCH_GRID = {"degree": [1, 2, 3, 4], "tol": [1e-8, 1e-6, 1e-4, 1e-3, 1e-2]}  # 20 candidates
SEARCH_FOLDS = 5
FEATURES = 10


def regression(n, p, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = X @ rng.normal(size=p) + 0.5 * X[:, 0] ** 2 + 0.5 * rng.normal(size=n)
    y[: n // 10] += 20.0  # 10 % gross outliers
    return X, y


def cv_scores(search):
    return np.array([search.cv_results_[f"split{i}_test_score"] for i in range(SEARCH_FOLDS)])


def best_of(func, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return min(times), result


# ------------------------------------------------------------------ searches


def search_section(rows, scratch):
    import dask
    import distributed

    X, y = regression(rows, 3, seed=0)

    def search():
        return GridSearchCV(mgsk.PolynomialRegressor(), SEARCH_GRID, cv=KFold(SEARCH_FOLDS, shuffle=True, random_state=0))

    print(f"## Search: GridSearchCV, {len(ParameterGrid(SEARCH_GRID))} candidates x {SEARCH_FOLDS} folds, "
          f"PolynomialRegressor on {rows:,} rows x 3 features")  # fmt: skip
    serial_time, serial = best_of(lambda: search().fit(X, y), 1)
    reference = cv_scores(serial)
    results = [("serial (n_jobs=None)", serial_time, True)]
    loky_time, loky = best_of(lambda: search().set_params(n_jobs=-1).fit(X, y), 1)
    results.append(("joblib processes (n_jobs=-1, 2 cores)", loky_time, np.array_equal(cv_scores(loky), reference)))

    start = time.perf_counter()
    with dask.config.set({"temporary-directory": str(scratch / "dask")}):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, memory_limit="1GiB",
            host="127.0.0.1", dashboard_address=None, local_directory=str(scratch / "dask"),
        )  # fmt: skip
    with cluster, distributed.Client(cluster):
        cluster_start = time.perf_counter() - start
        with joblib.parallel_backend("dask"):
            search().fit(X[:1000], y[:1000])  # the workers import mgsk once
            dask_time, on_dask = best_of(lambda: search().fit(X, y), 1)
    results.append(("dask LocalCluster, 2 processes x 1 thread", dask_time, np.array_equal(cv_scores(on_dask), reference)))

    ray_start = ray_search(search, X, y, reference, results)
    print(f"{'backend':48}{'wall (s)':>10}{'/ serial':>10}  same CV scores")
    for name, seconds, same in results:
        print(f"{name:48}{seconds:10.2f}{seconds / serial_time:10.2f}  {'yes' if same else 'NO'}")
    print(f"(not timed above: starting the LocalCluster {cluster_start:.1f} s"
          + (f", starting Ray {ray_start:.1f} s)" if ray_start is not None else "; Ray is not installed)"))  # fmt: skip
    print()
    return all(same for *_, same in results)


def ray_search(search, X, y, reference, results):
    """Time the search under Ray's joblib backend, when Ray is installed; the start time, or None."""
    import importlib.util
    import secrets

    if importlib.util.find_spec("ray") is None:
        return None
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
    import ray
    from ray.util.joblib import register_ray

    start = time.perf_counter()
    folder = tempfile.mkdtemp(prefix="mgsk-ray-")  # Ray's socket paths must stay short
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", _temp_dir=folder,
             log_to_driver=False, configure_logging=False)  # fmt: skip
    register_ray()
    started = time.perf_counter() - start
    try:
        with joblib.parallel_backend("ray"):
            search().fit(X[:1000], y[:1000])
            seconds, fitted = best_of(lambda: search().fit(X, y), 1)
    finally:
        ray.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
    same = np.array_equal(cv_scores(fitted), reference)
    results.append(("ray (joblib backend), 2 CPUs", seconds, same))
    return started


# ------------------------------------------------------------ spark scoring


def logged_model(frame, scratch):
    """A LinearRegressor fitted on the first rows of ``frame``, logged to a sqlite store in ``scratch``."""
    import mlflow

    import mgsk.mlflow

    mlflow.set_tracking_uri(f"sqlite:///{scratch / 'mlflow.db'}")
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("bench-scaling", (scratch / "artifacts").as_uri()))
    X = frame.iloc[:20_000]
    y = X.to_numpy() @ np.linspace(-1.0, 1.0, X.shape[1]) + 0.1 * np.random.default_rng(1).normal(size=len(X))
    y[::10] += 30.0
    model = mgsk.LinearRegressor().fit(X, y)
    with mlflow.start_run():
        info = mgsk.mlflow.log_model(model, name="model", input_example=frame.head(3))
    return model, info.model_uri


def spark_section(rows, scratch, frame, model, model_uri):
    import mlflow
    from pyspark.sql import SparkSession

    folder = scratch / "table"
    folder.mkdir()
    for part, index in enumerate(np.array_split(np.arange(rows), 4)):
        frame.iloc[index].assign(id=index).to_parquet(folder / f"part-{part}.parquet", index=False)
    columns = list(frame.columns)

    os.environ["PYSPARK_PYTHON"] = sys.executable
    start = time.perf_counter()
    spark = (
        SparkSession.builder.master("local[2]").appName("bench-scaling")
        .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
        .config("spark.local.dir", str(scratch)).config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
        .getOrCreate()
    )  # fmt: skip
    spark.sparkContext.setLogLevel("ERROR")
    spark_start = time.perf_counter() - start
    try:
        table = spark.read.parquet(str(folder))
        udf = mlflow.pyfunc.spark_udf(spark, model_uri, result_type="double", env_manager="local")
        scored = table.select("id", udf(*columns).alias("prediction"))

        def run(query):
            query.write.format("noop").mode("overwrite").save()

        first, _ = best_of(lambda: run(scored), 1)  # starts the Python workers, loads the model
        udf_time, _ = best_of(lambda: run(scored), 3)
        read_time, _ = best_of(lambda: run(table.select("id", *columns)), 3)
        collected = scored.toPandas().sort_values("id")["prediction"].to_numpy()
    finally:
        spark.stop()
    local_time, local = best_of(lambda: model.predict(frame), 5)
    same = np.array_equal(collected, local)

    print(f"## Batch scoring: mlflow.pyfunc.spark_udf, local[2], {rows:,} rows x {len(columns)} features (Parquet)")
    print(f"{'measure':58}{'seconds':>10}{'rows/s':>14}{'/ predict':>11}")
    for name, seconds in [
        ("in-process model.predict (pandas DataFrame in memory)", local_time),
        ("spark_udf scoring, warm (noop sink, best of 3)", udf_time),
        ("spark_udf scoring, first query (starts Python workers)", first),
        ("Spark reading the Parquet alone (noop sink)", read_time),
    ]:
        print(f"{name:58}{seconds:10.3f}{rows / seconds:14,.0f}{local_time / seconds:11.4f}")
    print(f"(not timed above: starting the SparkSession {spark_start:.1f} s)")
    print(f"spark_udf predictions equal model.predict bit for bit: {'yes' if same else 'NO'}")
    print()
    return same


# -------------------------------------------------------------- REST server


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url, payload):
    request = urllib.request.Request(url, data=payload, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def rest_section(scratch, frame, model, model_uri, requests):
    port = free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=scratch, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        start = time.perf_counter()
        while True:
            try:
                urllib.request.urlopen(f"{url}/ping", timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.perf_counter() - start > 180:
                    raise RuntimeError("mlflow models serve did not start") from None
                time.sleep(0.3)
        server_start = time.perf_counter() - start
        print("## REST: mlflow models serve --env-manager local (1 worker), sequential requests from one client")
        print(f"{'rows per request':18}{'median latency (ms)':>21}{'requests/s':>12}{'rows/s':>12}"
              f"{'in-process predict (ms)':>25}  same")  # fmt: skip
        all_same = True
        for batch in (1, 1000):
            rows = frame.iloc[:batch]
            payload = json.dumps({"dataframe_split": rows.to_dict(orient="split")}).encode()
            post(f"{url}/invocations", payload)  # warm-up
            latencies = []
            for _ in range(requests):
                begin = time.perf_counter()
                answer = post(f"{url}/invocations", payload)
                latencies.append(time.perf_counter() - begin)
            served = np.array(answer["predictions"])
            same = np.array_equal(served, model.predict(rows))
            all_same &= same
            local, _ = best_of(lambda: model.predict(rows), 20)
            median = statistics.median(latencies)
            print(f"{batch:<18}{median * 1e3:21.2f}{1 / median:12.1f}{batch / median:12,.0f}{local * 1e3:25.3f}"
                  f"  {'yes' if same else 'NO'}")  # fmt: skip
        print(f"(not timed above: starting the server {server_start:.1f} s; {requests} requests per row count)")
        print()
        return all_same
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


def load_average():
    """The 1-minute load average: above the number of cores, other work competed for them."""
    return f"{os.getloadavg()[0]:.1f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, to check that the script runs")
    args = parser.parse_args()
    search_rows, score_rows, requests = (2_000, 100_000, 20) if args.quick else (10_000, 1_000_000, 200)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"  # for the servers and workers this script starts
    threadpoolctl.threadpool_limits(1)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"mgsk {mgsk.__version__}, mlflow {mlflow.__version__}, commit {commit or '?'}; "
          f"{os.cpu_count()} cores, load average {load_average()} at the start")  # fmt: skip
    print()
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        scratch = Path(tmp)
        (scratch / "dask").mkdir()
        ok = search_section(search_rows, scratch)
        rng = np.random.default_rng(2)
        frame = pd.DataFrame(rng.normal(size=(score_rows, FEATURES)), columns=[f"x{i}" for i in range(FEATURES)])
        model, model_uri = logged_model(frame, scratch)
        ok &= spark_section(score_rows, scratch, frame, model, model_uri)
        ok &= rest_section(scratch, frame, model, model_uri, requests)
    print(f"load average {load_average()} at the end")
    print("every parallel result equals the serial / in-process one:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
