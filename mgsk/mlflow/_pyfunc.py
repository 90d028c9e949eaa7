"""The python_function side of the flavor: what ``mlflow.pyfunc`` calls.

``mlflow.pyfunc.load_model(uri).predict(data)`` ends in
:meth:`MgskPyfuncModel.predict` (or the method chosen at log time with
``pyfunc_predict_fn``). A ``predict_method`` parameter, when the model's
signature declares it, chooses the method per call::

    signature = infer_signature(X, clf.predict(X), params={"predict_method": "predict"})
    loaded.predict(X, params={"predict_method": "predict_proba"})
"""

import numpy as np

from ._errors import MgskModelError

#: The methods the pyfunc flavor can call, in order of preference.
PREDICT_METHODS = (
    "predict", "predict_proba", "predict_log_proba", "decision_function", "score_samples", "cdf", "pdf",
)
#: The name of the inference parameter that picks one of them per call.
PREDICT_METHOD_PARAM = "predict_method"


def available_methods(model):
    """The :data:`PREDICT_METHODS` that ``model`` has."""
    return [method for method in PREDICT_METHODS if hasattr(model, method)]


def default_method(model):
    """The method served when none is chosen: ``predict``, else the first available.

    A :class:`~mgsk.GnosticDistribution` (no ``predict``) serves
    ``score_samples``, its log density.
    """
    methods = available_methods(model)
    return methods[0] if methods else "predict"


def check_predict_method(model, method, what="pyfunc_predict_fn"):
    """Raise a clear :class:`MgskModelError` unless ``model`` can serve ``method``."""
    if not isinstance(method, str) or method not in available_methods(model):
        raise MgskModelError(
            f"{what}={method!r} is not available: {type(model).__name__} offers "
            f"{available_methods(model)} for pyfunc inference."
        )


def as_model_input(model, data):
    """``data`` (DataFrame, ndarray, list or dict of columns) as the model expects it.

    A model fitted on named columns gets a DataFrame with those names, in
    the training order (a DataFrame's columns are matched by name); one
    fitted on an array gets a row-major array, so column labels added on the
    way (by a CSV header or a JSON payload) neither warn nor fail, and
    predictions equal ``model.predict`` on the same rows bit for bit.
    """
    import pandas as pd

    names = getattr(model, "feature_names_in_", None)
    if isinstance(data, dict) or (isinstance(data, list) and data and all(isinstance(row, dict) for row in data)):
        data = pd.DataFrame(data)
    elif isinstance(data, (list, tuple)):
        data = np.asarray(data)
    if isinstance(data, pd.DataFrame) and names is None:
        data = data.to_numpy()
    elif isinstance(data, pd.DataFrame) and list(data.columns) != list(names):
        # Without a signature nothing upstream orders the columns: match them by name.
        if missing := [name for name in names if name not in data.columns]:
            raise MgskModelError(
                f"The input lacks column(s) {missing} that {type(model).__name__} was fitted with "
                f"(expected {list(names)}, got {list(data.columns)})."
            )
        data = data[list(names)]
    if isinstance(data, np.ndarray) and names is not None and data.ndim == 2 and data.shape[1] == len(names):
        return pd.DataFrame(data, columns=names)
    # A DataFrame's values come out column-major; BLAS may then round the
    # products differently from the row-major array the user predicts on.
    return np.ascontiguousarray(data) if isinstance(data, np.ndarray) else data


class MgskPyfuncModel:
    """The object ``mlflow.pyfunc`` wraps around a loaded mgsk model.

    Parameters
    ----------
    model : estimator
        The fitted model (an mgsk estimator, or a scikit-learn Pipeline or
        search that contains one).

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk import LogisticRegressor
    >>> from mgsk.mlflow._pyfunc import MgskPyfuncModel
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> wrapped = MgskPyfuncModel(LogisticRegressor().fit(X, [0, 0, 1, 1]))
    >>> wrapped.predict([[0.0], [3.0]])
    array([0, 1])
    >>> wrapped.predict(X[:1], params={"predict_method": "predict_proba"}).shape
    (1, 2)
    """

    def __init__(self, model):
        self.model = model

    def get_raw_model(self):
        """The underlying fitted model.

        Returns
        -------
        estimator
            The model exactly as loaded.
        """
        return self.model

    def predict(self, data, params=None):
        """Predictions; ``params={"predict_method": ...}`` picks another method.

        Parameters
        ----------
        data : DataFrame, ndarray or list
            Samples, one per row.
        params : dict, optional
            ``{"predict_method": name}`` with a name from
            :data:`PREDICT_METHODS`.

        Returns
        -------
        ndarray
            The output of the chosen method.
        """
        return self._call("predict", data, params)

    def predict_proba(self, data, params=None):
        """Class probabilities (the default when logged with ``pyfunc_predict_fn="predict_proba"``)."""
        return self._call("predict_proba", data, params)

    def predict_log_proba(self, data, params=None):
        """Log class probabilities."""
        return self._call("predict_log_proba", data, params)

    def decision_function(self, data, params=None):
        """Decision scores (logits for mgsk classifiers)."""
        return self._call("decision_function", data, params)

    def score_samples(self, data, params=None):
        """Per-sample scores: the log density of a distribution, the normality of a row to a detector."""
        return self._call("score_samples", data, params)

    def cdf(self, data, params=None):
        """A :class:`~mgsk.GnosticDistribution`'s distribution function, column by column."""
        return self._call("cdf", data, params)

    def pdf(self, data, params=None):
        """A :class:`~mgsk.GnosticDistribution`'s density, column by column."""
        return self._call("pdf", data, params)

    def _call(self, method, data, params):
        if params and params.get(PREDICT_METHOD_PARAM) is not None:
            method = params[PREDICT_METHOD_PARAM]
            check_predict_method(self.model, method, what=f"params[{PREDICT_METHOD_PARAM!r}]")
        try:
            return getattr(self.model, method)(as_model_input(self.model, data))
        except (ValueError, TypeError) as exc:
            raise MgskModelError(f"{type(self.model).__name__}.{method} cannot use this input: {exc}") from exc
