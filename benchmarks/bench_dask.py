"""Out-of-core fitting on Dask: mgsk.dask.LinearRegressor on data stored on disk as chunks.

::

    python benchmarks/bench_dask.py            # the figures of docs/user_guide/scaling.rst (about 10 min)
    python benchmarks/bench_dask.py --quick    # small, to check that it runs (exits 1 on a miss)
    python benchmarks/bench_dask.py --sizes 4000000   # one size (a quicker measure)

The data (16e6 x 10 float64, 1.28 GB, with 10 % gross outliers in y) are
written with ``dask.array.to_npy_stack`` in chunks of 250,000 rows, synced
to disk, and read back with ``from_npy_stack``. For each size (2e6, 4e6,
8e6, 16e6 rows; the first rows of the stack) the Dask fit runs on a
``distributed.LocalCluster`` of 2 worker processes x 1 thread x 500 MiB,
and the in-memory
``mgsk.LinearRegressor`` fits the same rows loaded with numpy (one BLAS
thread, as the workers use). Printed per size: both wall times and their
ratio (target <= 2; each fit runs ``--repeat`` times, alternating, and
the fastest of each counts, so that a burst of other load on a shared
machine does not decide the ratio), the relative coefficient difference
``max|θ_dask - θ_mem| / ‖θ_mem‖`` (target <= 1e-6), the peak memory of
the worker processes (their RSS, sampled every 0.2 s) and the Dask fit's
time per row, which should stay flat. One small fit first, untimed, lets
the workers import mgsk. The workers' process ids are compared before and
after: a restarted worker is a miss.
"""

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time

import numpy as np
import threadpoolctl

FEATURES = 10
CHUNK_ROWS = 250_000
COEF = np.linspace(-2.0, 2.0, FEATURES)


def write_data(folder, n, chunk_rows):
    """X and y as npy stacks in ``folder`` (X/ and y/), generated chunk by chunk."""
    import dask
    import dask.array as da

    def make(block_info=None):
        start = block_info[None]["array-location"][0][0]
        rng = np.random.default_rng(start)
        m = block_info[None]["chunk-shape"][0]
        X = rng.normal(size=(m, FEATURES))
        y = X @ COEF + 1.0 + 0.5 * rng.normal(size=m)
        y[rng.random(m) < 0.1] += 50.0  # 10 % gross outliers
        return np.column_stack([X, y])

    data = da.map_blocks(make, chunks=((chunk_rows,) * (n // chunk_rows), (FEATURES + 1,)), dtype=np.float64)
    with dask.config.set(scheduler="threads"):
        da.to_npy_stack(os.path.join(folder, "X"), data[:, :FEATURES], axis=0)
        da.to_npy_stack(os.path.join(folder, "y"), data[:, FEATURES], axis=0)


class PeakMemory:
    """The largest RSS any worker process reaches while sampling."""

    def __init__(self, client, every=0.2):
        self.client, self.every, self.peak = client, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil

        def rss():
            return psutil.Process().memory_info().rss

        while not self._stop.is_set():
            try:
                self.peak = max([self.peak, *self.client.run(rss).values()])
            except Exception:  # noqa: BLE001 - a sample lost while the cluster is busy
                pass
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def small_cluster(folder):
    """A client of a ``LocalCluster`` of 2 worker processes x 1 thread x 500 MiB, its files in ``folder``."""
    import dask
    import distributed

    with dask.config.set({"temporary-directory": folder, "distributed.worker.daemon": False}):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, memory_limit="500MiB",
            host="127.0.0.1", dashboard_address=":0", local_directory=folder,
        )  # fmt: skip
        with cluster, distributed.Client(cluster) as client:
            yield client


def worker_pids(client):
    return sorted(client.run(os.getpid).values())


def load(folder, n):
    """The first ``n`` rows of X and y, as numpy arrays."""
    X = np.concatenate([np.load(os.path.join(folder, "X", f)) for f in _parts(folder, "X")])[:n]
    y = np.concatenate([np.load(os.path.join(folder, "y", f)) for f in _parts(folder, "y")])[:n]
    return X, y


def fit_in_memory(X, y):
    import mgsk

    with threadpoolctl.threadpool_limits(1, "blas"):
        start = time.perf_counter()
        model = mgsk.LinearRegressor().fit(X, y)
        return model, time.perf_counter() - start


def _parts(folder, name):
    return sorted((f for f in os.listdir(os.path.join(folder, name)) if f.endswith(".npy")), key=lambda f: int(f[:-4]))


def fit_on_dask(client, folder, n):
    import dask.array as da

    import mgsk.dask

    X = da.from_npy_stack(os.path.join(folder, "X"))[:n]
    y = da.from_npy_stack(os.path.join(folder, "y"))[:n]
    with PeakMemory(client) as memory:
        start = time.perf_counter()
        model = mgsk.dask.LinearRegressor(client=client).fit(X, y)
        elapsed = time.perf_counter() - start
    return model, elapsed, memory.peak


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check that it runs")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--repeat", type=int, default=2, help="fits of each kind per size; the fastest counts")
    parser.add_argument("--sizes", type=int, nargs="+", help="rows of each fit (default 2e6 4e6 8e6 16e6)")
    args = parser.parse_args(argv)
    sizes = [100_000, 200_000] if args.quick else [2_000_000, 4_000_000, 8_000_000, 16_000_000]
    sizes = sorted(args.sizes) if args.sizes else sizes
    chunk_rows = 25_000 if args.quick else CHUNK_ROWS
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_dask_") as folder:
        write_data(folder, sizes[-1], chunk_rows)
        os.sync()  # the data at rest, as a user's would be: no write-back of 1.4 GB during the first fits
        with small_cluster(folder) as client:
            pids = worker_pids(client)
            fit_on_dask(client, folder, sizes[0] // 10)  # untimed: the workers import mgsk
            print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start", flush=True)
            for n in sizes:
                arrays = load(folder, n)
                dask_time = local_time = np.inf
                peak = 0
                for _ in range(args.repeat):  # alternating: a burst of other load hits both
                    dask_model, elapsed, memory = fit_on_dask(client, folder, n)
                    dask_time, peak = min(dask_time, elapsed), max(peak, memory)
                    local_model, elapsed = fit_in_memory(*arrays)
                    local_time = min(local_time, elapsed)
                del arrays
                theta_mem = np.r_[local_model.intercept_, local_model.coef_]
                theta_dask = np.r_[dask_model.intercept_, dask_model.coef_]
                results.append({
                    "rows": n, "dask_s": dask_time, "in_memory_s": local_time, "ratio": dask_time / local_time,
                    "rel_coef_diff": float(np.max(np.abs(theta_dask - theta_mem)) / np.linalg.norm(theta_mem)),
                    "peak_worker_MiB": peak / 2**20, "us_per_row": 1e6 * dask_time / n,
                    "n_iter": [dask_model.n_iter_, local_model.n_iter_],
                })  # fmt: skip
                r = results[-1]
                print(
                    f"{n:>10,d} rows: dask {r['dask_s']:7.1f} s, in memory {r['in_memory_s']:7.1f} s, "
                    f"ratio {r['ratio']:.2f}; rel. coef diff {r['rel_coef_diff']:.1e}; peak worker "
                    f"{r['peak_worker_MiB']:.0f} MiB; {r['us_per_row']:.2f} us/row; n_iter {r['n_iter']}",
                    flush=True,
                )
            restarted = worker_pids(client) != pids
    print(f"load average {os.getloadavg()[0]:.1f} at the end; workers restarted: {'yes' if restarted else 'no'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"sizes": results, "workers_restarted": restarted}, f, indent=1)
    largest = results[-1]
    ok = largest["rel_coef_diff"] <= 1e-6 and not restarted and largest["peak_worker_MiB"] <= 500
    ok = ok and (args.quick or largest["ratio"] <= 2.0)
    print("targets met" if ok else "targets MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
