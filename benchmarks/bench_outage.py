"""A team server that goes down mid-way: does mgsk.autolog lose, duplicate or orphan anything?

Run it alone on the machine (it starts PostgreSQL and two MLflow servers)::

    flock /tmp/mgsk-heavy.lock python benchmarks/bench_outage.py

Needs Debian's ``postgresql`` package, root (PostgreSQL runs as the
``postgres`` user) and ``psycopg2-binary``. ``--processes`` and ``--fits``
set the load (8 x 25 by default, as in issue 10).

1. Outage: an ``mlflow server`` with a sqlite backend and proxied artifacts;
   8 processes each make 25 autologged fits. Once a quarter of the fits
   have arrived, the server's whole process group is killed; it is
   restarted 5 s later (it then boots for several seconds). The last fit of
   each process waits until the server is back, so that fit finds the store
   reachable and starts the background replay. Then ``mgsk.mlflow.sync()``
   replays what is left. Reported: fits fully tracked (a FINISHED run with
   its params, metrics, plots and a READY model), duplicated, left RUNNING;
   the replay throughput: spooled fits over the seconds from the server
   answering again until the spool is empty.
2. Per-fit overhead while the server is down (known down: after the first
   failed fit) against the same fit without autolog.
3. 8 x 25 fits against a server on PostgreSQL and one on sqlite, server up:
   total time of each.

Targets (issue 10): 200 of 200 fits tracked after replay, 0 duplicated,
0 left RUNNING; at most 1 s extra per fit while the store is down.
"""

import argparse
import logging
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the server helpers of the test suite

EXPECTED_METRICS = {"re", "n_iter", "scale", "loss", "training_r2_score", "training_mean_squared_error"}
EXPECTED_ARTIFACTS = {"gnostic_convergence.png", "gnostic_weights.png"}


def fit_data(worker, fit):
    rng = np.random.default_rng(1000 * worker + fit)
    X = rng.normal(size=(200, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.3 * rng.normal(size=200)
    y[:20] += 15.0
    return X, y


def _wait_for(path):
    while not pathlib.Path(path).exists():
        time.sleep(0.1)


def worker(index, fits, hold_last):
    """One client process: ``fits`` autologged fits, each tagged with its worker and fit number.

    With ``hold_last`` (a file name), worker 0 makes its second fit only once
    the file ``killed`` beside it exists (so at least one fit meets the
    outage), and every worker its last fit only once ``hold_last`` exists.
    """
    import mgsk

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    for fit in range(fits):
        if hold_last and index == 0 and fit == 1:
            _wait_for(pathlib.Path(hold_last).with_name("killed"))
        if hold_last and fit == fits - 1:
            _wait_for(hold_last)
        mgsk.autolog(extra_tags={"worker": index, "fit": fit}, silent=True)
        mgsk.LinearRegressor().fit(*fit_data(index, fit))
        print(f"fit {fit} done", flush=True)


def start_workers(folder, uri, experiment_id, processes, fits, hold_last=None):
    """Start the client processes; their output goes to ``folder/worker-<i>.log``."""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_EXPERIMENT_ID": experiment_id,
        "MLFLOW_AUTOLOGGING_TESTING": "false",
    }
    procs = []
    for index in range(processes):
        args = [sys.executable, __file__, "--worker", str(index), "--fits", str(fits)]
        if hold_last:
            args += ["--hold-last", str(hold_last)]
        log = open(pathlib.Path(folder) / f"worker-{index}.log", "w")
        procs.append(subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT))
        log.close()
    return procs


def fits_done(folder, processes):
    total = 0
    for index in range(processes):
        try:
            total += (pathlib.Path(folder) / f"worker-{index}.log").read_text().count(" done")
        except FileNotFoundError:
            pass
    return total


def wait_all(procs, folder, timeout=900):
    deadline = time.monotonic() + timeout
    for index, proc in enumerate(procs):
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        if code != 0:
            log = (pathlib.Path(folder) / f"worker-{index}.log").read_text()
            raise RuntimeError(f"worker {index} exited with {code}:\n{log[-3000:]}")


def outage(server, folder, processes, fits, kill_fraction=0.25, down_seconds=5.0):
    """Run the outage scenario against ``server`` (a conftest.MlflowServer, started).

    Returns the experiment id, the final sync's summary, and the replay: the
    entries replayed (in the background and by that sync) and the seconds
    from the server answering again until the spool was empty.
    """
    import mlflow

    import mgsk.mlflow
    from mgsk.mlflow._autolog.spool import Spool

    experiment_id = mlflow.MlflowClient(server.uri).create_experiment(f"outage-{time.time_ns()}")
    back = pathlib.Path(folder) / "server-back"
    spool = Spool(server.uri)
    procs = start_workers(folder, server.uri, experiment_id, processes, fits, hold_last=back)
    try:
        while fits_done(folder, processes) < max(1, int(kill_fraction * processes * fits)):
            time.sleep(0.1)
        server.kill()
        (pathlib.Path(folder) / "killed").touch()
        time.sleep(down_seconds)
        server.start()
        back.touch()
        up = time.monotonic()
        emptied = None
        while any(proc.poll() is None for proc in procs):
            if emptied is None and not spool.pending_entries():
                emptied = time.monotonic()
            time.sleep(0.1)
        wait_all(procs, folder)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    summary = mgsk.mlflow.sync(server.uri, timeout=300)
    if emptied is None or summary.replayed:
        emptied = time.monotonic()
    return experiment_id, summary, len(spool.replayed_entries()), emptied - up


def tracking_report(uri, experiment_id):
    """(fully tracked fits, duplicated fits, runs left RUNNING, PENDING models) in the experiment."""
    import mlflow
    from mlflow.entities import LoggedModelStatus

    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([experiment_id], max_results=5000)
    models = {m.model_id: m for m in client.search_logged_models([experiment_id], max_results=5000)}
    seen, tracked = {}, 0
    for run in runs:
        key = (run.data.tags.get("worker"), run.data.tags.get("fit"))
        seen[key] = seen.get(key, 0) + 1
        outputs = [output.model_id for output in (run.outputs.model_outputs if run.outputs else [])]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        complete = (
            run.info.status == "FINISHED"
            and EXPECTED_METRICS <= set(run.data.metrics)
            and run.data.params.get("degree") == "1"
            and EXPECTED_ARTIFACTS <= artifacts
            and any(m in models and models[m].status == LoggedModelStatus.READY for m in outputs)
        )
        tracked += complete
    duplicated = sum(count - 1 for count in seen.values())
    running = sum(run.info.status == "RUNNING" for run in runs)
    pending = sum(m.status == LoggedModelStatus.PENDING for m in models.values())
    return tracked, duplicated, running, pending


def overhead_while_down(repeats=7):
    """Median per-fit time with the store known down, against the same fit without autolog."""
    import mlflow

    import mgsk
    from conftest import free_port

    X, y = fit_data(0, 0)
    plain = statistics.median(_times(lambda: mgsk.LinearRegressor().fit(X, y), repeats))
    mlflow.set_tracking_uri(f"http://127.0.0.1:{free_port()}")
    mgsk.autolog(silent=True)
    mgsk.LinearRegressor().fit(X, y)  # finds the store down
    down = statistics.median(_times(lambda: mgsk.LinearRegressor().fit(X, y), repeats))
    mgsk.autolog(disable=True)
    return plain, down


def _times(fit, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fit()
        times.append(time.perf_counter() - start)
    return times


def throughput(server, folder, processes, fits):
    import mlflow

    experiment_id = mlflow.MlflowClient(server.uri).create_experiment(f"up-{time.time_ns()}")
    start = time.monotonic()
    procs = start_workers(folder, server.uri, experiment_id, processes, fits)
    wait_all(procs, folder)
    elapsed = time.monotonic() - start
    return elapsed, tracking_report(server.uri, experiment_id)


def main(processes, fits):
    os.environ.setdefault("MLFLOW_AUTOLOGGING_TESTING", "false")  # conftest would turn MLflow's test mode on
    from conftest import MlflowServer, PostgreSQL

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("mgsk").setLevel(logging.ERROR)
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    n = processes * fits
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        os.environ["MGSK_SPOOL_DIR"] = str(tmp / "spool")
        plain, down = overhead_while_down()

        sqlite_root = tmp / "sqlite"
        sqlite_root.mkdir()
        sqlite = MlflowServer(sqlite_root, job_execution=True).start()
        postgres = PostgreSQL()
        try:
            runs_dir = tmp / "outage"
            runs_dir.mkdir()
            experiment_id, summary, replayed, replay_seconds = outage(sqlite, runs_dir, processes, fits)
            tracked, duplicated, running, pending = tracking_report(sqlite.uri, experiment_id)

            (tmp / "up-sqlite").mkdir()
            sqlite_seconds, sqlite_report = throughput(sqlite, tmp / "up-sqlite", processes, fits)
            sqlite.stop()

            pg_root = tmp / "postgres"
            pg_root.mkdir()
            pg_server = MlflowServer(pg_root, postgres.start().uri, job_execution=True).start()
            (tmp / "up-pg").mkdir()
            pg_seconds, pg_report = throughput(pg_server, tmp / "up-pg", processes, fits)
            pg_server.stop()
        finally:
            sqlite.stop()
            postgres.stop()

    print(f"mgsk.autolog through a server outage: {processes} processes x {fits} fits, sqlite-backed mlflow server")
    print(f"{'measure':58s} {'value':>12s}")
    print(f"{'fits fully tracked after replay':58s} {tracked:>8d} / {n}")
    print(f"{'duplicated fits':58s} {duplicated:>12d}")
    print(f"{'runs left RUNNING':58s} {running:>12d}")
    print(f"{'LoggedModels left PENDING':58s} {pending:>12d}")
    print(f"{'spooled fits replayed (background replay + final sync)':58s} {replayed:>12d}")
    print(f"{'  of which by the final sync':58s} {len(summary.replayed):>12d}")
    rate = replayed / replay_seconds if replayed else float("nan")
    print(f"{'replay throughput, server back until spool empty (fits/s)':58s} {rate:>12.1f}")
    print(f"{'fit, no autolog (ms)':58s} {1000 * plain:>12.1f}")
    print(f"{'fit while the store is known down (ms)':58s} {1000 * down:>12.1f}")
    print(f"{'  overhead while down (ms)':58s} {1000 * (down - plain):>12.1f}")
    print()
    print(f"Server up, {processes} x {fits} autologged fits, total wall time")
    print(f"{'sqlite-backed server (s)':58s} {sqlite_seconds:>12.1f}   tracked {sqlite_report[0]} / {n}")
    print(f"{'PostgreSQL-backed server (s)':58s} {pg_seconds:>12.1f}   tracked {pg_report[0]} / {n}")
    print(f"{'  ratio PostgreSQL / sqlite':58s} {pg_seconds / sqlite_seconds:>12.2f}")
    print()
    checks = [
        (f"fits tracked after replay == {n}", tracked, tracked == n),
        ("duplicated fits == 0", duplicated, duplicated == 0),
        ("runs left RUNNING == 0", running, running == 0),
        ("overhead per fit while down <= 1 s", down - plain, down - plain <= 1.0),
        (f"PostgreSQL server: all {n} fits tracked", pg_report[0], pg_report[0] == n),
    ]
    for label, value, ok in checks:
        print(f"{label:58s} {value:>12.3g}  {'PASS' if ok else 'FAIL'}")
    return all(ok for _, _, ok in checks)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--fits", type=int, default=25)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--hold-last", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args.fits, args.hold_last)
    else:
        sys.exit(0 if main(args.processes, args.fits) else 1)
