"""Classical robust-regression data sets, shipped with mgsk (small, public).

Each loader returns a :class:`sklearn.utils.Bunch` like scikit-learn's own
loaders (``data``, ``target``, ``feature_names``, ``target_names``,
``frame``, ``DESCR``, and ``outliers``: the 0-based rows the literature
names as outliers), or ``(X, y)`` with ``return_X_y=True``.
"""

import csv
from importlib import resources

import numpy as np
from sklearn.utils import Bunch

__all__ = ["load_stackloss", "load_phones", "load_stars", "load_hbk"]

_SOURCES = {
    "stackloss": (
        "Brownlee's stack loss plant data: 21 days of operation of a plant "
        "oxidising ammonia to nitric acid. Target: stack loss (ten times the "
        "percentage of ammonia lost). Source: K. A. Brownlee (1965), "
        "*Statistical Theory and Methodology in Science and Engineering*, 2nd "
        "ed., Wiley, p. 454; R's ``datasets::stackloss``. Rows 1, 3, 4 and 21 "
        "(1-based; 0-based 0, 2, 3, 20) are the classical outliers, row 2 is "
        "borderline (Daniel & Wood 1971; Rousseeuw & Leroy 1987)."
    ),
    "phones": (
        "Belgian international phone calls, 1950-1973, in tens of millions. "
        "From 1964 to 1969 another recording system (total minutes instead "
        "of number of calls) was used, and 1963 and 1970 are partly "
        "affected. Source: Rousseeuw & Leroy (1987), *Robust Regression and "
        "Outlier Detection*, Wiley, table 2 of chapter 2; R's "
        "``MASS::phones``."
    ),
    "stars": (
        "Hertzsprung-Russell diagram of the star cluster CYG OB1: 47 stars, "
        "log effective surface temperature against log light intensity. "
        "The four giants (rows 11, 20, 30, 34, 1-based) are bad leverage "
        "points. Source: Rousseeuw & Leroy (1987), table 3 of chapter 2; "
        "R's ``robustbase::starsCYG``."
    ),
    "hbk": (
        "Hawkins, Bradu and Kass (1984) artificial data: 75 rows, three "
        "features. Rows 1-10 (1-based) are bad leverage points, rows 11-14 "
        "good leverage points. Source: Technometrics 26, 197-208; R's "
        "``robustbase::hbk``."
    ),
}


def _load(name, file, target, outliers, return_X_y, as_frame):
    with resources.files(__package__).joinpath("data", file).open(newline="") as fh:
        rows = list(csv.reader(fh))
    header, values = rows[0], np.array(rows[1:], dtype=float)
    feature_names = [h for h in header if h != target]
    X = values[:, [header.index(h) for h in feature_names]]
    y = values[:, header.index(target)]
    frame = None
    if as_frame:
        import pandas as pd

        frame = pd.DataFrame(values, columns=header)
        X, y = frame[feature_names], frame[target]
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        feature_names=feature_names,
        target_names=[target],
        frame=frame,
        outliers=np.array(outliers, dtype=int),
        DESCR=_SOURCES[name],
    )


def load_stackloss(*, return_X_y=False, as_frame=False):
    """Load Brownlee's stack loss data (21 rows, 3 features).

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(X, y)`` instead of a Bunch.
    as_frame : bool, default=False
        Return pandas objects (needs pandas).

    Returns
    -------
    data : Bunch or tuple
        ``data``, ``target``, ``feature_names``, ``target_names``, ``frame``,
        ``outliers`` (0-based rows 0, 2, 3, 20) and ``DESCR``; or ``(X, y)``.

    Examples
    --------
    >>> from mgsk.datasets import load_stackloss
    >>> ds = load_stackloss()
    >>> ds.data.shape, ds.feature_names
    ((21, 3), ['Air.Flow', 'Water.Temp', 'Acid.Conc.'])
    """
    return _load("stackloss", "stackloss.csv", "stack.loss", [0, 2, 3, 20], return_X_y, as_frame)


def load_phones(*, return_X_y=False, as_frame=False):
    """Load the Belgian phone-calls data (24 years, 1950-1973).

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(X, y)`` instead of a Bunch.
    as_frame : bool, default=False
        Return pandas objects (needs pandas).

    Returns
    -------
    data : Bunch or tuple
        Feature ``year`` (50-73), target ``calls`` (tens of millions);
        ``outliers`` are the years 1964-1969 (0-based rows 14-19).

    Examples
    --------
    >>> from mgsk.datasets import load_phones
    >>> X, y = load_phones(return_X_y=True)
    >>> X.shape, float(y.max())
    ((24, 1), 212.0)
    """
    return _load("phones", "phones.csv", "calls", list(range(14, 20)), return_X_y, as_frame)


def load_stars(*, return_X_y=False, as_frame=False):
    """Load the CYG OB1 star cluster data (47 stars).

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(X, y)`` instead of a Bunch.
    as_frame : bool, default=False
        Return pandas objects (needs pandas).

    Returns
    -------
    data : Bunch or tuple
        Feature ``log.Te``, target ``log.light``; ``outliers`` are the
        four giants (0-based rows 10, 19, 29, 33).

    Examples
    --------
    >>> from mgsk.datasets import load_stars
    >>> load_stars().outliers
    array([10, 19, 29, 33])
    """
    return _load("stars", "stars_cyg.csv", "log.light", [10, 19, 29, 33], return_X_y, as_frame)


def load_hbk(*, return_X_y=False, as_frame=False):
    """Load the Hawkins-Bradu-Kass data (75 rows, 3 features).

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(X, y)`` instead of a Bunch.
    as_frame : bool, default=False
        Return pandas objects (needs pandas).

    Returns
    -------
    data : Bunch or tuple
        Features ``X1, X2, X3``, target ``Y``; ``outliers`` are the bad
        leverage points (0-based rows 0-9).

    Examples
    --------
    >>> from mgsk.datasets import load_hbk
    >>> load_hbk().data.shape
    (75, 3)
    """
    return _load("hbk", "hbk.csv", "Y", list(range(10)), return_X_y, as_frame)
