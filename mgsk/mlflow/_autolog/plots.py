"""The two diagnostic plots autolog stores with a fit, rendered as PNG bytes.

They are drawn on matplotlib's Agg canvas directly: no pyplot, so no global
figure state and no GUI backend. Building a figure (axes, ticks, labels)
costs more than drawing one, so each thread builds each figure once and then
only replaces its data; small figures and few tick labels keep the text
layout, most of the remaining cost, short.
"""

import io
import threading

import numpy as np

#: At most this many points are drawn in the weights plot (all outliers kept).
MAX_POINTS = 5000
_SIZE = (4.0, 2.8)
_DPI = 80

_templates = threading.local()


def _axes(fig, ylabel, color="black"):
    from matplotlib.ticker import MaxNLocator

    ax = fig.add_subplot()
    _y_label(ax, ylabel, -0.15, color)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    # Fixed positions spare matplotlib measuring the tick labels to place them.
    ax.xaxis.set_label_coords(0.5, -0.13)
    return ax


def _y_label(ax, text, x, color):
    from matplotlib.ticker import MaxNLocator

    ax.set_ylabel(text, fontsize=8, color=color)
    ax.yaxis.set_label_coords(x, 0.5)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.tick_params(labelsize=7)


class _Convergence:
    """R-Entropy (left axis) and loss (right axis) against the iteration."""

    def __init__(self):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=_SIZE, dpi=_DPI)
        fig.subplots_adjust(left=0.17, right=0.83, bottom=0.17, top=0.88)
        self.re_axes = _axes(fig, "R-Entropy re", color="C0")
        self.re_axes.set_xlabel("iteration", fontsize=8)
        self.re_axes.set_title("Gnostic convergence", fontsize=9, y=1.01)
        self.loss_axes = self.re_axes.twinx()
        _y_label(self.loss_axes, "loss", 1.15, "C1")
        (self.re_line,) = self.re_axes.plot([], [], "o-", ms=3, color="C0")
        (self.loss_line,) = self.loss_axes.plot([], [], "s--", ms=3, color="C1")
        self.canvas = FigureCanvasAgg(fig)

    def png(self, iterations, re, loss):
        self.re_line.set_data(iterations, re)
        self.loss_line.set_data(iterations, loss)
        return _redraw(self.canvas, (self.re_axes, self.loss_axes))


class _Weights:
    """Each row's weight against its residual, outliers in red."""

    def __init__(self):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=_SIZE, dpi=_DPI)
        fig.subplots_adjust(left=0.17, right=0.96, bottom=0.17, top=0.88)
        self.axes = _axes(fig, "gnostic weight")
        self.axes.xaxis.get_major_locator().set_params(integer=False)
        (self.inliers,) = self.axes.plot([], [], ".", ms=3, color="C0")
        (self.outliers,) = self.axes.plot([], [], ".", ms=3, color="C3")
        self.xlabel = self.axes.set_xlabel("", fontsize=8)
        self.title = self.axes.set_title("", fontsize=9, y=1.01)
        self.canvas = FigureCanvasAgg(fig)

    def png(self, residuals, weights, outliers, shown, residual_label):
        inlier, outlier = shown[~outliers[shown]], shown[outliers[shown]]
        self.inliers.set_data(residuals[inlier], weights[inlier])
        self.outliers.set_data(residuals[outlier], weights[outlier])
        self.xlabel.set_text(residual_label)
        self.title.set_text(weights_title(outliers))
        return _redraw(self.canvas, (self.axes,))


def _redraw(canvas, axes):
    for ax in axes:
        ax.relim()
        ax.autoscale_view()
    buffer = io.BytesIO()
    canvas.print_png(buffer)
    return buffer.getvalue()


def _template(cls):
    """This thread's instance of a figure template."""
    template = getattr(_templates, cls.__name__, None)
    if template is None:
        template = cls()
        setattr(_templates, cls.__name__, template)
    return template


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
    re = [float(record["re"]) for record in history]
    loss = [float(record["loss"]) for record in history]
    return _template(_Convergence).png(iterations, re, loss)


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
    return _template(_Weights).png(residuals, weights, outliers, _subsample(outliers), residual_label)


def weights_title(outliers):
    """The title of the weights plot: how many rows the fit rejects (``outliers_``).

    A row is rejected when its weight is below sech 3 ≈ 0.1; rows with small
    but larger weights are down-weighted, not counted.

    Parameters
    ----------
    outliers : ndarray of bool, shape (n_samples,)
        The estimator's ``outliers_``.

    Returns
    -------
    str
        "Weights: k of n rows rejected (weight < 0.1, red)".

    Examples
    --------
    >>> weights_title(np.array([True, False, False]))
    'Weights: 1 of 3 rows rejected (weight < 0.1, red)'
    """
    return f"Weights: {int(np.sum(outliers))} of {np.size(outliers)} rows rejected (weight < 0.1, red)"


def _subsample(outliers):
    """Indices of the rows to draw: all outliers and evenly spaced inliers."""
    n = outliers.size
    if n <= MAX_POINTS:
        return np.arange(n)
    inliers = np.flatnonzero(~outliers)
    keep = max(MAX_POINTS - int(outliers.sum()), 0)
    picked = inliers[np.linspace(0, inliers.size - 1, num=min(keep, inliers.size)).astype(int)]
    return np.sort(np.concatenate([np.flatnonzero(outliers), picked]))
