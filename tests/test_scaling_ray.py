"""A search over mgsk estimators under Ray's joblib backend equals the serial search.

One local Ray instance for the module (two CPUs, on 127.0.0.1, no dashboard,
its session files in a temporary folder, token authentication with a token
kept in the environment rather than in ``~/.ray``), shut down at the end.
"""

import importlib.util
import os
import secrets
import shutil
import sys
import tempfile

import numpy as np
import pytest

if importlib.util.find_spec("ray") is None:  # imported by the fixture, after the token is set
    pytest.skip('Ray is not installed: pip install ".[test]"', allow_module_level=True)

import joblib  # noqa: E402
from sklearn.metrics import make_scorer  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # noqa: E402

from mgsk import PolynomialRegressor  # noqa: E402
from mgsk.metrics import mean_fidelity_score  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_backend():
    # Ray's socket paths must stay short: a folder directly in the system temp dir.
    session_dir = tempfile.mkdtemp(prefix="mgsk-ray-")
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    previous = {name: os.environ.get(name) for name in env}
    os.environ.update(env)  # before Ray's first import: it reads the token once
    try:
        import ray
        from ray.util.joblib import register_ray

        ray.init(
            num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
            _temp_dir=session_dir, log_to_driver=False, configure_logging=False,
        )  # fmt: skip
        register_ray()
        yield ray
    finally:
        if "ray" in sys.modules:
            sys.modules["ray"].shutdown()
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(session_dir, ignore_errors=True)


def test_search_under_the_ray_backend_equals_the_serial_search(ray_backend, tmp_path):
    rng = np.random.default_rng(31)
    X = rng.normal(size=(300, 2))
    y = 1.0 + X @ [2.0, -1.0] + 0.5 * X[:, 1] ** 2 + 0.2 * rng.normal(size=300)
    y[::10] -= 30.0

    def record_process(X):
        """The identity, noting which process ran it (a nested function: pickled by value)."""
        (tmp_path / f"pid-{os.getpid()}").touch()
        return X

    def search():
        return GridSearchCV(
            make_pipeline(FunctionTransformer(record_process), StandardScaler(), PolynomialRegressor()),
            {"polynomialregressor__degree": [1, 2, 3]},
            cv=KFold(4, shuffle=True, random_state=0), scoring=make_scorer(mean_fidelity_score),
        )  # fmt: skip

    serial = search().fit(X, y)
    with joblib.parallel_backend("ray"):
        parallel = search().fit(X, y)
    processes = {int(path.name[4:]) for path in tmp_path.glob("pid-*")} - {os.getpid()}
    assert len(processes) >= 1, "no fit ran in a Ray worker"
    assert parallel.best_params_ == serial.best_params_
    for key in ["mean_test_score", "rank_test_score"] + [f"split{i}_test_score" for i in range(4)]:
        assert np.array_equal(parallel.cv_results_[key], serial.cv_results_[key]), key
    assert np.array_equal(parallel.best_estimator_[-1].coef_, serial.best_estimator_[-1].coef_)
