"""Batch scoring of logged mgsk models with ``mlflow.pyfunc.spark_udf`` on a real PySpark session.

One ``local[2]`` session for the module (driver on 127.0.0.1, no UI, every
scratch directory in a temporary folder), stopped at the end of the module.
Spark needs Java; ``.ci/run`` installs ``default-jre-headless`` when
``java`` is missing, so in CI these tests run.

Two hundred thousand rows, written as two Parquet files, are scored by
Spark's Python workers with a logged regressor (100,000 of them with a
classifier, and the example of docs/user_guide/scaling.rst its own); the
predictions must equal the in-process ``model.predict`` of the same DataFrame
bit for bit. The million-row figure is ``benchmarks/bench_scaling.py``'s.
"""

import os
import shutil
import sys

import numpy as np
import pytest

mlflow = pytest.importorskip("mlflow")
pd = pytest.importorskip("pandas")
pytest.importorskip("pyspark", reason='PySpark is not installed: pip install ".[test]"')
if shutil.which("java") is None:
    pytest.skip("Spark needs Java: apt-get install default-jre-headless (.ci/run does)", allow_module_level=True)

from pyspark.sql import SparkSession  # noqa: E402

import mgsk.mlflow  # noqa: E402
from mgsk import LinearRegressor, LogisticRegressor  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("mlflow_tracking"),
    # PySpark 4.3 warns that it does not yet fully support pandas 3; these tests check the results.
    pytest.mark.filterwarnings("ignore::FutureWarning:pyspark.*", "ignore:The copy keyword is deprecated"),
]

N_ROWS, COLUMNS = 200_000, ["x0", "x1", "x2", "x3", "x4"]


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("spark")
    previous = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers import mgsk from this environment
    session = (
        SparkSession.builder.master("local[2]").appName("mgsk-tests")
        .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
        .config("spark.local.dir", str(scratch)).config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
        .getOrCreate()
    )  # fmt: skip
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    if previous is None:
        os.environ.pop("PYSPARK_PYTHON", None)
    else:
        os.environ["PYSPARK_PYTHON"] = previous


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """N_ROWS rows with an id column, as two Parquet files, and the same rows in pandas."""
    rng = np.random.default_rng(21)
    frame = pd.DataFrame(rng.normal(size=(N_ROWS, len(COLUMNS))), columns=COLUMNS)
    folder = tmp_path_factory.mktemp("table")
    for part, rows in enumerate(np.array_split(np.arange(N_ROWS), 2)):
        frame.iloc[rows].assign(id=rows).to_parquet(folder / f"part-{part}.parquet", index=False)
    return str(folder), pd.read_parquet(folder).sort_values("id")[COLUMNS].reset_index(drop=True)


def training_data(frame, labels=False):
    X = frame.iloc[:2000]
    score = X.to_numpy() @ [1.5, -2.0, 0.5, 0.0, 1.0]
    if labels:
        return X, np.select([score > 1.0, score > -1.0], ["high", "mid"], "low")
    y = score + 0.1 * np.random.default_rng(22).normal(size=len(X))
    y[::10] += 30.0  # 10 % gross outliers
    return X, y


def score_with_spark(spark, path, model_uri, result_type, rows=N_ROWS):
    udf = mlflow.pyfunc.spark_udf(spark, model_uri, result_type=result_type, env_manager="local")
    table = spark.read.parquet(path).where(f"id < {rows}")
    scored = table.select("id", udf(*COLUMNS).alias("prediction")).toPandas()
    assert len(scored) == rows and scored["id"].is_unique
    return scored.sort_values("id")["prediction"].to_numpy()


def test_spark_udf_scores_a_regressor_bit_identically_to_predict(spark, table):
    path, frame = table
    model = LinearRegressor().fit(*training_data(frame))
    with mlflow.start_run():
        info = mgsk.mlflow.log_model(model, name="model", input_example=frame.head(3))
    assert info.signature.inputs.input_names() == COLUMNS
    predictions = score_with_spark(spark, path, info.model_uri, "double")
    assert np.array_equal(predictions, model.predict(frame))


def test_spark_udf_scores_a_classifier_with_its_labels(spark, table):
    path, frame = table
    model = LogisticRegressor().fit(*training_data(frame, labels=True))
    with mlflow.start_run():
        info = mgsk.mlflow.log_model(model, name="model", input_example=frame.head(3))
    rows = 100_000  # all rows are the regressor's test; here the labels matter
    expected = model.predict(frame.iloc[:rows])
    assert set(expected) == {"high", "mid", "low"}
    assert np.array_equal(score_with_spark(spark, path, info.model_uri, "string", rows), expected)


def test_the_pages_example_scores_like_predict(spark, tmp_path, monkeypatch):
    from test_scaling_examples import page_example

    monkeypatch.chdir(tmp_path)  # the example writes its store and tables into the working directory
    namespace = {}
    exec(page_example("spark-udf"), namespace)
    assert namespace["spark"] is spark  # getOrCreate() found the module's session
    scored = pd.read_parquet(tmp_path / "scored.parquet")
    assert len(scored) == 100_000
    expected = namespace["model"].predict(scored[namespace["columns"]])
    assert np.array_equal(scored["prediction"].to_numpy(), expected)
