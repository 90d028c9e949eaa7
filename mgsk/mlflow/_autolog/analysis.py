"""What autolog records about a fit of the analysis estimators (no I/O here).

:class:`~mgsk.GnosticDistribution` and :class:`~mgsk.GnosticOutlierDetector`
have no iterations, residuals or training score: a fit is described by its
numbers per feature instead. They are logged as metrics named
``<quantity>/<feature>`` for the first :data:`MAX_FEATURE_METRICS` features
(``feature`` is the column name, or ``x0``, ``x1``, ... for an array), and
for every feature in the table :data:`TABLE`; each of those first features
also gets a plot of its distribution function, density and data.
Non-finite numbers (an unbounded membership interval, the intervals of an
inhomogeneous column) are not metrics; the table holds them as ``inf`` and
``nan``.
"""

import csv
import io
import re
from dataclasses import dataclass, field

import numpy as np
from sklearn.pipeline import Pipeline

from .context import last_steps

#: Features that get metrics and a plot each; the table holds every feature.
MAX_FEATURE_METRICS = 10
#: The artifact with the numbers of every feature, one row per feature.
TABLE = "gnostic_analysis.csv"
#: The artifact name of the plot of one feature.
PLOT = "gnostic_distribution_{}.png"
#: Longest feature label in a metric or file name.
MAX_LABEL = 100


@dataclass
class AnalysisSummary:
    """The metrics, files and plots of a fitted analysis step.

    ``images`` is the future of the plots (file name to PNG bytes), or None.
    """

    metrics: dict
    files: dict = field(default_factory=dict)
    images: object = None


def analysis_classes():
    """The estimator classes this module describes."""
    from ... import GnosticDistribution, GnosticOutlierDetector

    return GnosticDistribution, GnosticOutlierDetector


def analysis_step(model):
    """The analysis estimator that ``model`` (itself, a Pipeline or a search) fits last, or None."""
    return next((step for step in last_steps(model) if isinstance(step, analysis_classes())), None)


def step_input(model, X):
    """``X`` as the analysis step of ``model`` sees it, and its column names (None if unknown).

    A Pipeline's transformers turn the input into the step's; their
    ``get_feature_names_out`` names its columns.
    """
    names = getattr(X, "columns", None)
    for obj in last_steps(model):
        if isinstance(obj, Pipeline) and len(obj.steps) > 1:
            X = obj[:-1].transform(X)
            try:
                names = obj[:-1].get_feature_names_out()
            except Exception:  # a transformer without feature names
                names = getattr(X, "columns", None)
    return X, names


def feature_labels(step, names=None):
    """One label per feature, usable in metric and file names.

    The column names (``names``, else the step's ``feature_names_in_``),
    characters other than letters, digits, ``_``, ``-`` and ``.`` replaced
    by ``_``; ``x0``, ``x1``, ... for an array or when two names would become
    the same label.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from mgsk import GnosticDistribution
    >>> X = pd.DataFrame({"petal width (cm)": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 7.0]})
    >>> feature_labels(GnosticDistribution().fit(X))
    ['petal_width__cm_', 'b']
    >>> feature_labels(GnosticDistribution().fit(X.to_numpy()))
    ['x0', 'x1']
    """
    n_features = step.n_features_in_
    default = [f"x{j}" for j in range(n_features)]
    names = getattr(step, "feature_names_in_", None) if names is None else names
    if names is None or len(names) != n_features:
        return default
    labels = [re.sub(r"[^\w.\-]", "_", str(name))[:MAX_LABEL] for name in names]
    if len(set(labels)) < n_features or any(not label.strip(".") for label in labels):
        return default
    return labels


def _intervals(prefix, intervals):
    return {f"{prefix}_lower": intervals[:, 0], f"{prefix}_upper": intervals[:, 1]}


def feature_table(step):
    """The key numbers of each feature, quantity name to an array with one value per feature."""
    from ... import GnosticOutlierDetector

    table = {"location": step.location_, "scale": step.scale_}
    if isinstance(step, GnosticOutlierDetector):
        table.update(_intervals("decision", step.decision_interval_))
        table["core_fraction"] = step.core_fraction_
    else:
        table.update(_intervals("bound", step.bounds_))
        table["is_homogeneous"] = step.is_homogeneous_.astype(float)
    table.update(_intervals("membership", step.membership_interval_))
    table.update(_intervals("tolerance", step.tolerance_interval_))
    return table


def table_csv(labels, table):
    """``table`` as CSV bytes: a ``feature`` column, then one column per quantity."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["feature", *table])
    for j, label in enumerate(labels):
        writer.writerow([label, *(repr(float(values[j])) for values in table.values())])
    return out.getvalue().encode()


def summary_metrics(step, X, sample_weight):
    """The metrics that describe the whole fit, whatever the number of features."""
    from ... import GnosticOutlierDetector

    if not isinstance(step, GnosticOutlierDetector):
        return {"homogeneous_features": int(np.sum(step.is_homogeneous_))}
    flagged = step.predict(X) == -1
    weights = np.ones(flagged.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    metrics = {
        "training_outliers": int(flagged.sum()),
        "training_outlier_fraction": float(weights[flagged].sum() / weights.sum()),
        "offset": float(step.offset_),
    }
    if step.covariance_ is not None:
        metrics["distance_upper"] = float(step.distance_interval_[1])
    return metrics


def analysis_summary(model, data, log_plots):
    """What to log about ``model``'s analysis step fitted on ``data``, or None when it has none.

    Parameters
    ----------
    model : estimator
        An analysis estimator, a Pipeline ending in one, or a search whose
        best estimator is either.
    data : FitData
        The training data of ``model``.
    log_plots : bool
        Whether to start drawing the plots (in autolog's plot thread).

    Returns
    -------
    AnalysisSummary or None
    """
    step = analysis_step(model)
    if step is None:
        return None
    X, names = step_input(model, data.X)
    labels = feature_labels(step, names)
    table = feature_table(step)
    metrics = summary_metrics(step, X, data.sample_weight)
    for j, label in enumerate(labels[:MAX_FEATURE_METRICS]):
        metrics.update({f"{name}/{label}": float(v[j]) for name, v in table.items() if np.isfinite(v[j])})
    images = None
    if log_plots:
        from .log_fit import submit_drawing

        columns = np.asarray(X, dtype=float)[:, :MAX_FEATURE_METRICS].copy()
        images = submit_drawing(lambda: distribution_pngs(step, columns, labels[:MAX_FEATURE_METRICS]))
    return AnalysisSummary(metrics, {TABLE: table_csv(labels, table)}, images)


def distribution_pngs(step, columns, labels):
    """One PNG per feature: ``{PLOT.format(label): bytes}``."""
    return {PLOT.format(label): _png(step, columns, j, label) for j, label in enumerate(labels)}


def _png(step, columns, j, label):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ... import GnosticDistribution, GnosticOutlierDetector
    from ..._distribution import plot_distribution

    fig = Figure(figsize=(6.0, 3.6), dpi=80, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if isinstance(step, GnosticOutlierDetector):
        _plot_detector_column(step, columns[:, j], j, ax, GnosticDistribution, plot_distribution)
    else:
        plot_distribution(step, columns, j, ax)
    ax.set_xlabel(label)
    buffer = io.BytesIO()
    canvas.print_png(buffer)
    return buffer.getvalue()


def _plot_detector_column(detector, column, j, ax, distribution_class, plot_distribution):
    """The EGDF of the column's values inside its decision interval, all the data, the interval."""
    lo, hi = detector.decision_interval_[j]
    inside = ~((column < lo) | (column > hi))  # NaN bounds (no homogeneous core) exclude nothing
    if not inside.any():
        inside[:] = True
    # Not fit(): autolog would log this fit too (and wait for this very thread to draw its plot).
    egdf = distribution_class()._fit_columns(column[inside].reshape(-1, 1), np.ones(int(inside.sum())))
    plot_distribution(egdf, column.reshape(-1, 1), 0, ax)
    ax.plot(column[~inside], np.zeros(int((~inside).sum())), "|", color="tab:red", ms=14)
    for bound in (lo, hi):
        if np.isfinite(bound):
            ax.axvline(bound, color="tab:red", ls=":", lw=1)
    ax.set_title(
        f"EGDF of the {int(inside.sum())} values inside the decision interval (dotted); "
        f"{int((~inside).sum())} outside (red)",
        fontsize=9,
    )
