"""The two diagnostic plots autolog stores with a fit, rendered as PNG bytes.

They are drawn on matplotlib's Agg canvas directly: no pyplot, so no global
figure state and no GUI backend, small figures and few tick labels, since
text layout is most of the cost of a small plot.
"""

import io

import numpy as np

#: At most this many points are drawn in the weights plot (all outliers kept).
MAX_POINTS = 5000
_SIZE = (4.0, 2.8)
_DPI = 80


def _figure():
    from matplotlib.figure import Figure

    fig = Figure(figsize=_SIZE, dpi=_DPI)
    fig.subplots_adjust(left=0.17, right=0.83, bottom=0.17, top=0.88)
    return fig, fig.add_subplot()


def _png(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return buffer.getvalue()


def _style(ax, xlabel, ylabel, color="black"):
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8, color=color)
    ax.tick_params(labelsize=7)
    ax.locator_params(nbins=4)


def convergence_png(history):
    """The R-Entropy and the loss at every iteration.

    Parameters
    ----------
    history : list of dict
        The estimator's ``history_`` (keys ``iteration``, ``re``, ``loss``).

    Returns
    -------
    bytes
        A PNG image.

    Examples
    --------
    >>> png = convergence_png([{"iteration": 1, "re": 0.9, "loss": 0.3}, {"iteration": 2, "re": 0.5, "loss": 0.2}])
    >>> png[:4] == b"\\x89PNG"
    True
    """
    iterations = [record["iteration"] for record in history]
    fig, ax = _figure()
    ax.plot(iterations, [float(record["re"]) for record in history], "o-", ms=3, color="C0")
    _style(ax, "iteration", "R-Entropy re", color="C0")
    loss_ax = ax.twinx()
    loss_ax.plot(iterations, [float(record["loss"]) for record in history], "s--", ms=3, color="C1")
    _style(loss_ax, "iteration", "loss", color="C1")
    ax.set_title("Gnostic convergence", fontsize=9)
    return _png(fig)


def weights_png(residuals, weights, outliers, residual_label="residual y - prediction"):
    """Each training row's gnostic weight against its residual; outliers in red.

    Parameters
    ----------
    residuals : array-like of shape (n_samples,)
        What the weights respond to (``y - y_pred`` for a regressor).
    weights : array-like of shape (n_samples,)
        The estimator's ``weights_``.
    outliers : array-like of bool, shape (n_samples,)
        The estimator's ``outliers_``.
    residual_label : str, default="residual y - prediction"
        Label of the horizontal axis.

    Returns
    -------
    bytes
        A PNG image.

    Examples
    --------
    >>> import numpy as np
    >>> png = weights_png(np.array([0.1, -0.2, 9.0]), np.array([1.0, 0.9, 0.0]), np.array([False, False, True]))
    >>> png[:4] == b"\\x89PNG"
    True
    """
    residuals, weights = np.asarray(residuals, dtype=float), np.asarray(weights, dtype=float)
    outliers = np.asarray(outliers, dtype=bool)
    shown = _subsample(outliers)
    fig, ax = _figure()
    fig.subplots_adjust(right=0.96)
    inlier, outlier = shown[~outliers[shown]], shown[outliers[shown]]
    ax.plot(residuals[inlier], weights[inlier], ".", ms=3, color="C0")
    ax.plot(residuals[outlier], weights[outlier], ".", ms=3, color="C3")
    _style(ax, residual_label, "gnostic weight")
    ax.set_title(f"Weights: {int(outliers.sum())} of {outliers.size} rows are outliers (red)", fontsize=9)
    return _png(fig)


def _subsample(outliers):
    """Indices of the rows to draw: all outliers and evenly spaced inliers."""
    n = outliers.size
    if n <= MAX_POINTS:
        return np.arange(n)
    inliers = np.flatnonzero(~outliers)
    keep = max(MAX_POINTS - int(outliers.sum()), 0)
    picked = inliers[np.linspace(0, inliers.size - 1, num=min(keep, inliers.size)).astype(int)]
    return np.sort(np.concatenate([np.flatnonzero(outliers), picked]))
