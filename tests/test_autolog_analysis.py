"""mgsk.autolog on GnosticDistribution and GnosticOutlierDetector, on a real sqlite store.

What a fit logs (its numbers per feature, the table, the plots, the model),
the bound on per-feature metrics, Pipelines, searches, mlflow.sklearn's
Pipelines, and a fit spooled during an outage and replayed.
"""

import csv
import io

import numpy as np
import pytest

mlflow = pytest.importorskip("mlflow")
pd = pytest.importorskip("pandas")

import mlflow.sklearn  # noqa: E402
import sklearn.metrics  # noqa: E402
from sklearn.metrics import f1_score, make_scorer  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import mgsk  # noqa: E402
import mgsk.mlflow  # noqa: E402
from mgsk import GnosticDistribution, GnosticOutlierDetector  # noqa: E402
from mgsk.mlflow._autolog import analysis  # noqa: E402

pytestmark = pytest.mark.usefixtures("autolog_reset")


@pytest.fixture(scope="module")
def frame():
    """Three named columns, 12 rows with a gross value in the first."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 3))
    X[:12, 0] += 20.0
    return pd.DataFrame(X, columns=["flow rate", "temp", "acid/conc"])


def only_run():
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    return run


def artifacts(run):
    return sorted(a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id))


def table(run, tmp_path):
    path = mlflow.MlflowClient().download_artifacts(run.info.run_id, analysis.TABLE, str(tmp_path))
    with open(path) as f:
        return list(csv.DictReader(f))


def the_model(run):
    (output,) = run.outputs.model_outputs
    return f"models:/{output.model_id}"


def test_a_distribution_fit_logs_its_numbers_table_plots_and_model(mlflow_tracking, frame, tmp_path):
    mgsk.autolog()
    dist = GnosticDistribution(kind="eldf").fit(frame)
    mgsk.autolog(disable=True)

    run = only_run()
    assert run.info.status == "FINISHED"
    assert run.data.params == {"kind": "eldf", "scale": "auto", "bounds": "auto"}
    assert run.data.tags["estimator_name"] == "GnosticDistribution"
    metrics = run.data.metrics
    labels = ["flow_rate", "temp", "acid_conc"]
    assert analysis.feature_labels(dist) == labels
    for j, label in enumerate(labels):
        assert metrics[f"location/{label}"] == dist.location_[j]
        assert metrics[f"scale/{label}"] == dist.scale_[j]
        assert metrics[f"is_homogeneous/{label}"] == float(dist.is_homogeneous_[j])
        for name, interval in (("membership", dist.membership_interval_), ("tolerance", dist.tolerance_interval_)):
            lo, hi = interval[j]
            # finite ends are metrics; inf and NaN only in the table
            assert metrics.get(f"{name}_lower/{label}") == (lo if np.isfinite(lo) else None)
            assert metrics.get(f"{name}_upper/{label}") == (hi if np.isfinite(hi) else None)
    assert not dist.is_homogeneous_[0] and "membership_lower/flow_rate" not in metrics
    assert "bound_lower/temp" not in metrics  # bounds="auto": (-inf, inf)
    assert metrics["homogeneous_features"] == dist.is_homogeneous_.sum()

    rows = table(run, tmp_path)
    assert [row["feature"] for row in rows] == labels
    assert float(rows[0]["bound_lower"]) == -np.inf and np.isnan(float(rows[0]["membership_upper"]))
    assert float(rows[2]["location"]) == dist.location_[2]
    assert artifacts(run) == sorted([analysis.TABLE] + [analysis.PLOT.format(label) for label in labels])
    png = mlflow.MlflowClient().download_artifacts(run.info.run_id, analysis.PLOT.format("temp"), str(tmp_path))
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"

    uri = the_model(run)
    info = mlflow.models.get_model_info(uri)
    assert info.signature.inputs.input_names() == list(frame.columns)
    assert info.signature.params.to_dict()[0]["default"] == "score_samples"
    assert info.saved_input_example_info is not None
    loaded = mgsk.mlflow.load_model(uri)
    assert np.array_equal(loaded.cdf(frame), dist.cdf(frame))
    served = mlflow.pyfunc.load_model(uri)
    assert np.array_equal(served.predict(frame), dist.score_samples(frame))
    assert np.array_equal(served.predict(frame, params={"predict_method": "pdf"}), dist.pdf(frame))


def test_a_detector_fit_logs_its_flagged_rows_and_serves_like_the_regressors(mlflow_tracking, frame, tmp_path):
    weights = np.r_[np.full(60, 2.0), np.ones(60)]
    mgsk.autolog()
    detector = GnosticOutlierDetector().fit(frame, sample_weight=weights)
    mgsk.autolog(disable=True)

    run = only_run()
    flagged = detector.predict(frame) == -1
    assert flagged.sum() >= 12
    metrics = run.data.metrics
    assert metrics["training_outliers"] == flagged.sum()
    assert metrics["training_outlier_fraction"] == pytest.approx(weights[flagged].sum() / weights.sum())
    assert metrics["offset"] == 0.0 and metrics["distance_upper"] == detector.distance_interval_[1]
    assert metrics["decision_upper/flow_rate"] == detector.decision_interval_[0, 1]
    assert metrics["core_fraction/temp"] == detector.core_fraction_[1]
    assert run.data.params == {"contamination": "auto", "max_iter": "20"}
    assert {row["feature"] for row in table(run, tmp_path)} == {"flow_rate", "temp", "acid_conc"}
    assert analysis.PLOT.format("acid_conc") in artifacts(run)

    uri = the_model(run)
    assert mlflow.models.get_model_info(uri).signature.params.to_dict()[0]["default"] == "predict"
    served = mlflow.pyfunc.load_model(uri)
    assert np.array_equal(served.predict(frame), detector.predict(frame))
    scores = served.predict(frame, params={"predict_method": "decision_function"})
    assert np.array_equal(scores, detector.decision_function(frame))


def test_per_feature_metrics_are_bounded_and_the_table_holds_every_feature(mlflow_tracking, monkeypatch, tmp_path):
    monkeypatch.setattr(analysis, "MAX_FEATURE_METRICS", 2)
    X = np.random.default_rng(0).normal(size=(60, 4))
    mgsk.autolog()
    dist = GnosticDistribution().fit(X)
    mgsk.autolog(disable=True)
    run = only_run()
    assert {key.split("/")[1] for key in run.data.metrics if "/" in key} == {"x0", "x1"}
    assert run.data.metrics["location/x1"] == dist.location_[1]
    assert [row["feature"] for row in table(run, tmp_path)] == ["x0", "x1", "x2", "x3"]
    assert artifacts(run) == sorted([analysis.TABLE, analysis.PLOT.format("x0"), analysis.PLOT.format("x1")])


def test_a_pipeline_logs_the_step_numbers_on_its_transformed_input(mlflow_tracking, frame):
    mgsk.autolog(log_plots=False, log_models=False)
    pipe = make_pipeline(StandardScaler(), GnosticOutlierDetector()).fit(frame)
    mgsk.autolog(disable=True)
    run = only_run()
    step = pipe[-1]
    assert run.data.tags["estimator_name"] == "Pipeline"
    assert run.data.params["gnosticoutlierdetector__contamination"] == "auto"
    assert run.data.metrics["location/temp"] == step.location_[1]  # scaled units
    assert run.data.metrics["training_outliers"] == np.sum(pipe.predict(frame) == -1)


def test_a_search_over_the_detector_logs_the_best_one_and_child_runs(mlflow_tracking, frame):
    y = np.where(np.arange(len(frame)) < 12, -1, 1)
    mgsk.autolog(log_plots=False, max_tuning_runs=2)
    search = GridSearchCV(
        GnosticOutlierDetector(), {"contamination": ["auto", 0.1]},
        scoring=make_scorer(f1_score, pos_label=-1), cv=StratifiedKFold(2),
    ).fit(frame, y)  # fmt: skip
    # The best detector is tracked: a metric on its predictions goes to the parent run.
    X_test, y_test = frame.iloc[::2], y[::2]
    f1 = sklearn.metrics.f1_score(y_test, search.predict(X_test), pos_label=-1)
    mgsk.autolog(disable=True)
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    (parent,) = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    assert len(runs) == 3 and parent.data.tags["estimator_name"] == "GridSearchCV"
    assert parent.data.metrics["f1_score_X_test"] == f1
    best = search.best_estimator_
    assert parent.data.params["best_contamination"] == str(search.best_params_["contamination"])
    assert parent.data.metrics["location/flow_rate"] == best.location_[0]
    assert parent.data.metrics["training_outliers"] == np.sum(best.predict(frame) == -1)
    assert np.array_equal(mgsk.mlflow.load_model(the_model(parent)).predict(frame), search.predict(frame))


def test_a_search_over_the_distribution_needs_no_scoring_and_logs_its_test_score(mlflow_tracking, frame):
    mgsk.autolog(log_plots=False, max_tuning_runs=0)
    search = GridSearchCV(GnosticDistribution(kind="eldf"), {"scale": [0.5, 2.0]}, cv=2).fit(frame)
    X_test = frame.iloc[::3]
    log_likelihood = search.score(X_test)
    mgsk.autolog(disable=True)
    run = only_run()
    assert run.data.params["best_scale"] == str(search.best_params_["scale"])
    assert run.data.metrics["best_cv_score"] == search.best_score_
    assert run.data.metrics["GridSearchCV_score_X_test"] == log_likelihood


def test_with_mlflow_sklearn_autolog_a_pipeline_gets_the_step_numbers_added(mlflow_tracking, frame):
    mlflow.sklearn.autolog(silent=True, log_models=False, log_datasets=False, log_post_training_metrics=False)
    mgsk.autolog(log_plots=False)
    pipe = make_pipeline(StandardScaler(), GnosticDistribution()).fit(frame)
    run = only_run()
    assert run.data.tags["estimator_name"] == "Pipeline"
    # mlflow.sklearn logs the Pipeline; mgsk sees the step and its input, an unnamed array here
    assert run.data.metrics["location/x0"] == pipe[-1].location_[0]
    assert analysis.TABLE in artifacts(run)


def test_a_fit_during_an_outage_is_spooled_and_replayed_with_its_numbers(store, frame):
    mgsk.autolog()
    detector = GnosticOutlierDetector().fit(frame)
    (entry,) = store.spool.pending_entries()
    assert (entry.path / "artifacts" / analysis.TABLE).is_file()
    store.come_up()
    summary = mgsk.mlflow.sync()
    assert (len(summary.replayed), summary.models_logged) == (1, 1)
    (run,) = store.runs()
    assert run.data.metrics["decision_lower/temp"] == detector.decision_interval_[1, 0]
    assert run.data.metrics["training_outliers"] == np.sum(detector.predict(frame) == -1)
    names = {a.path for a in store.client.list_artifacts(run.info.run_id)}
    assert names == {analysis.TABLE, *(analysis.PLOT.format(label) for label in ("flow_rate", "temp", "acid_conc"))}
    loaded = mgsk.mlflow.load_model(the_model(run))
    assert np.array_equal(loaded.decision_function(frame), detector.decision_function(frame))


@pytest.fixture
def store(tmp_path, migrated_sqlite_store, monkeypatch):
    from test_autolog_spool import LateStore

    return LateStore(tmp_path, migrated_sqlite_store, monkeypatch)


def test_table_csv_keeps_non_finite_values():
    rows = analysis.table_csv(["a"], {"location": np.array([1.5]), "membership_lower": np.array([-np.inf])})
    expected = [["feature", "location", "membership_lower"], ["a", "1.5", "-inf"]]
    assert list(csv.reader(io.StringIO(rows.decode()))) == expected
