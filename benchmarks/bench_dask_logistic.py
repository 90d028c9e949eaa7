"""The classifier on Dask: mgsk.dask.LogisticRegressor against mgsk.LogisticRegressor on the same rows.

::

    python benchmarks/bench_dask_logistic.py                         # 1e6 x 10, 2 and 3 classes (about 4 min)
    python benchmarks/bench_dask_logistic.py --rows 16e6 --classes 2  # larger than the workers' memory (about 20 min)
    python benchmarks/bench_dask_logistic.py --rows 1e5              # smaller

The rows (standard normal features, labels drawn from a softmax model with
Gumbel noise) are written to disk with ``dask.array.to_npy_stack`` in chunks
of 250,000 rows and read back with ``from_npy_stack``, as
``bench_dask.py`` does; the Dask fit runs on a ``distributed.LocalCluster``
of 2 worker processes x 1 thread x 500 MiB, the in-memory fit on the same
rows loaded with numpy. Printed per number of classes: both wall times and
their ratio, the relative coefficient difference ``max|θ_dask - θ_mem| /
‖θ_mem‖`` (target <= 1e-6), both iteration counts (they must be equal) and
the peak memory of the worker processes during the Dask fit (their RSS,
sampled every 0.2 s). A restarted worker is a miss. Exits 1 when a target
is missed.
"""

import argparse
import os
import sys
import tempfile
import time

import dask
import dask.array as da
import numpy as np

import mgsk
import mgsk.dask
from bench_dask import PeakMemory, _parts, small_cluster, worker_pids

CHUNK = 250_000
FEATURES = 10


def write_data(folder, n, n_classes):
    """X and y as npy stacks in ``folder`` (X/ and y/), generated chunk by chunk."""
    os.makedirs(folder)
    beta = np.linspace(-1.0, 1.0, FEATURES * (n_classes - 1)).reshape(FEATURES, n_classes - 1)

    def make(block_info=None):
        start = block_info[None]["array-location"][0][0]
        m = block_info[None]["chunk-shape"][0]
        rng = np.random.default_rng(start)
        X = rng.normal(size=(m, FEATURES))
        logits = np.column_stack([np.zeros(m), X @ beta]) + rng.gumbel(size=(m, n_classes))
        return np.column_stack([X, np.argmax(logits, axis=1)])

    chunks = ((CHUNK,) * (n // CHUNK) + ((n % CHUNK,) if n % CHUNK else ()), (FEATURES + 1,))
    data = da.map_blocks(make, chunks=chunks, dtype=np.float64)
    with dask.config.set(scheduler="threads"):
        da.to_npy_stack(os.path.join(folder, "X"), data[:, :FEATURES], axis=0)
        da.to_npy_stack(os.path.join(folder, "y"), data[:, FEATURES].astype(np.int64), axis=0)


def measure(client, folder, n, n_classes):
    write_data(folder, n, n_classes)
    X_local = np.concatenate([np.load(os.path.join(folder, "X", f)) for f in _parts(folder, "X")])
    y_local = np.concatenate([np.load(os.path.join(folder, "y", f)) for f in _parts(folder, "y")])
    start = time.perf_counter()
    local = mgsk.LogisticRegressor().fit(X_local, y_local)
    t_local = time.perf_counter() - start
    del X_local, y_local
    X, y = (da.from_npy_stack(os.path.join(folder, name)) for name in ("X", "y"))
    with PeakMemory(client) as memory:
        start = time.perf_counter()
        model = mgsk.dask.LogisticRegressor(client=client).fit(X, y)
        t_dask = time.perf_counter() - start
    theta_dask, theta_local = (np.r_[m.intercept_.ravel(), m.coef_.ravel()] for m in (model, local))
    difference = float(np.abs(theta_dask - theta_local).max() / np.linalg.norm(theta_local))
    print(
        f"{n:,} rows x {FEATURES}, {n_classes} classes: dask {t_dask:.1f} s, in memory {t_local:.1f} s, "
        f"ratio {t_dask / t_local:.2f}; rel. coef diff {difference:.1e}; n_iter {[model.n_iter_, local.n_iter_]}; "
        f"peak worker {memory.peak / 2**20:.0f} MiB; load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    return difference <= 1e-6 and model.n_iter_ == local.n_iter_ and memory.peak <= 500 * 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=1e6)
    parser.add_argument("--classes", default="2,3", help="numbers of classes, comma-separated")
    args = parser.parse_args()
    n = int(args.rows)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_dask_logistic_") as folder:
        with small_cluster(folder) as client:
            pids = worker_pids(client)
            met = all([measure(client, os.path.join(folder, f"k{k}"), n, int(k)) for k in args.classes.split(",")])
            restarted = worker_pids(client) != pids
    print(f"load average {os.getloadavg()[0]:.1f} at the end; workers restarted: {'yes' if restarted else 'no'}")
    met = met and not restarted
    print("targets met" if met else "targets MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
