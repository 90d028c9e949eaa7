"""The classifier on Dask: mgsk.dask.LogisticRegressor against mgsk.LogisticRegressor on the same rows.

::

    python benchmarks/bench_dask_logistic.py             # 1e6 x 10, 2 and 3 classes (about 2 min)
    python benchmarks/bench_dask_logistic.py --rows 1e5  # smaller

The rows (standard normal features, labels drawn from a softmax model with
Gumbel noise) are generated and persisted on a ``distributed.LocalCluster``
of 2 worker processes x 1 thread x 500 MiB, in chunks of 250,000 rows; the
in-memory fit gets the same rows as numpy arrays. Printed per number of
classes: both wall times and their ratio, the relative coefficient
difference ``max|θ_dask - θ_mem| / ‖θ_mem‖`` (target <= 1e-6), both
iteration counts (they must be equal) and the largest worker memory at the
end (the persisted X included). Exits 1 when a target is missed.
"""

import argparse
import os
import sys
import time

import dask.array as da
import distributed
import numpy as np

import mgsk
import mgsk.dask

CHUNK = 250_000
FEATURES = 10


def measure(client, n, n_classes):
    rng = da.random.default_rng(0)
    X = rng.normal(size=(n, FEATURES), chunks=(CHUNK, FEATURES)).persist()
    beta = np.linspace(-1.0, 1.0, FEATURES * (n_classes - 1)).reshape(FEATURES, n_classes - 1)
    noise = rng.gumbel(size=(n, n_classes), chunks=(CHUNK, n_classes))
    logits = da.concatenate([da.zeros((n, 1), chunks=(CHUNK, 1)), X @ beta], axis=1) + noise
    y = da.argmax(logits, axis=1).persist()
    X_local, y_local = X.compute(), y.compute()
    start = time.perf_counter()
    local = mgsk.LogisticRegressor().fit(X_local, y_local)
    t_local = time.perf_counter() - start
    start = time.perf_counter()
    model = mgsk.dask.LogisticRegressor(client=client).fit(X, y)
    t_dask = time.perf_counter() - start
    theta_dask, theta_local = (np.r_[m.intercept_.ravel(), m.coef_.ravel()] for m in (model, local))
    difference = float(np.abs(theta_dask - theta_local).max() / np.linalg.norm(theta_local))
    memory = max(w["metrics"]["memory"] for w in client.scheduler_info()["workers"].values()) / 2**20
    print(
        f"{n:,} rows x {FEATURES}, {n_classes} classes: dask {t_dask:.1f} s, in memory {t_local:.1f} s, "
        f"ratio {t_dask / t_local:.2f}; rel. coef diff {difference:.1e}; n_iter {[model.n_iter_, local.n_iter_]}; "
        f"worker memory at the end {memory:.0f} MiB"
    )
    return difference <= 1e-6 and model.n_iter_ == local.n_iter_


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=1e6)
    n = int(parser.parse_args().rows)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, memory_limit="500MiB", host="127.0.0.1", dashboard_address=":0"
    ) as cluster, distributed.Client(cluster) as client:
        met = all([measure(client, n, n_classes) for n_classes in (2, 3)])
    print(f"load average {os.getloadavg()[0]:.1f} at the end; targets {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
