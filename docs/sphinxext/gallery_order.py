"""Order of the gallery examples: the order a newcomer should read them in."""

ORDER = [
    "plot_outliers_and_leverage.py",
    "plot_gnostic_weights.py",
    "plot_convergence.py",
    "plot_textbook_datasets.py",
    "plot_robust_classification.py",
    "plot_distribution_functions.py",
    "plot_outlier_detection.py",
    "plot_mlflow_workflow.py",
    "plot_autolog_gridsearch.py",
]


class ReadingOrder:
    """Sort key for sphinx-gallery: listed files first, in ``ORDER``, then the rest by name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        return (ORDER.index(filename), "") if filename in ORDER else (len(ORDER), filename)

    def __repr__(self):
        return f"ReadingOrder({self.src_dir!r})"
