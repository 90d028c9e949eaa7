r"""The reductions over rows that the gnostic iteration needs, on in-memory data.

The regression iteration (:func:`mgsk._irls.gnostic_irls`) reads the data
only through the methods of a *rows* object, so that one iteration serves
data in memory (:class:`InMemoryRows`, here) and data in chunks elsewhere
(a Dask backend implements the same methods with the same arithmetic on each
chunk and adds the partial results). Every method is a reduction over row
blocks or a selection; the per-row vectors it produces (residuals, weights)
stay with the rows object.

``start_sample()``
    The rows of the robust start: evenly spaced, at most about
    :data:`START_ROWS` of them, as numpy arrays ``(Z, y, sample_weight)``.
``sweep(coef, intercept, unit, leverage, newton=False, fidelity_unit=None, jacobian=True)``
    **One pass over X.** For each block of rows: the residuals
    ``r = y - Z coef - intercept``, their leverage-adjusted form
    ``r* = r / sqrt(1 - h)`` with ``h_i = w_i (c + ‖(z_i - m) R⁻ᵀ‖²)`` and
    ``leverage = (m, R, c)`` from the previous step's weighted Gram matrix
    (no adjustment when it is ``None``), the filtering weights
    ``w = sech(r* / unit)``, and the sums of the block: the Gram matrix
    ``Σ s w a aᵀ`` of ``a = (z - shift, 1, y - y_shift)``, ``Σ s e_I(r*/unit)``
    and ``Σ s re(r / y_scale)`` for the history, and on request the
    Jacobian ``Σ s ψ'(x) a aᵀ`` of the estimating equation at fixed unit
    (``newton=True``) and, with ``fidelity_unit`` too, the sums of the
    derivatives of the estimating and scale equations with respect to the
    unit and the coefficients (:class:`Sweep`'s ``unit_gradient``,
    ``fidelity_gradient`` and ``scale_sums``; without the adjustment also
    ``fidelity_slopes``, which carry the scale equation's sums to the next
    ``σ``); ``jacobian=False`` leaves the Jacobian out; with ``gram=False``
    (and ``leverage``) the estimating equation ``Σ s w r a`` (``gradient``)
    in place of the Gram matrix. Returns a :class:`Sweep`,
    every field of which is a sum over row blocks (divided by ``Σ s`` for
    ``loss`` and ``re``): chunked backends add the fields of their chunks.
``start_leverages(leverage, q)``
    Keeps the wide start's leverages of its rows for the first sweep, which
    then need not compute them again (a chunked backend may keep nothing).
``quantile(q, center=None)``
    The lower ``q``-quantile of ``r*`` (or of ``|r* - center|``), weighted
    by the sample weights: a selection, exact, O(n).
``qr_solve(fit_intercept)``
    Weighted least squares at the weights ``s w`` of the last sweep, by QR:
    the fallback when the Gram matrix is ill-conditioned.
``abs_mean()``
    ``Σ s |r*| / Σ s``, the spread used when more than half the residuals are 0.
``fidelity_sums(unit, weight_unit=None)``
    ``(Σ s w sech(2 r* / unit), Σ s w)``: the weighted mean fidelity of the
    scale equation, at the weights of the last sweep or at
    ``w = sech(r* / weight_unit)``.

The shifts make the Gram matrix that of nearly centred columns, so that
solving the normal equations loses no more digits than the data's own
conditioning costs (see :func:`mgsk._irls.solve_gram`).
"""

import functools
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, fields

import numpy as np
from scipy.linalg import solve_triangular
from scipy.linalg.blas import dtrsm
from scipy.linalg.lapack import dpotrs
from threadpoolctl import ThreadpoolController

from ._blas import solve_lower_transposed, solves_without_gil
from ._gnostic import X_MAX
from ._weighted import _is_uniform, weighted_least_squares, weighted_mean, weighted_quantile

#: The robust start uses at most about this many rows, evenly spaced: it
#: only has to put the iteration in the right basin; all rows decide the
#: fixed point.
START_ROWS = 10000
#: Largest leverage used in ``r / sqrt(1 - h)``.
MAX_LEVERAGE = 0.99
#: Rows per block of the one-dimensional sums (and the fewest of a sweep).
SWEEP_ROWS = 8192
#: Values ``(k + 2) b`` of a sweep's block of ``b`` rows (:func:`sweep_rows`).
SWEEP_VALUES = 3 * 2**16
#: Largest gain ``ε`` of a row's own leverage feedback in the wide Jacobian
#: (see :class:`Sweep`): its factor ``1 / (1 - ε)`` stays at most 2 where
#: a leverage near 1 would make it blow up.
MAX_OWN_GAIN = 0.5
#: Per-row temporaries of a tall sweep block (:meth:`InMemoryRows._tall_block`).
TALL_TEMPORARIES = 7
#: See :func:`curves_down`: far above the relative rounding of a Cholesky
#: factorisation and of the sums (about ``(k + n) k`` unit roundoffs).
INDEFINITE_MARGIN = 1e-6
#: Rows whose directions :func:`_indefinite_along_rows` tries.
INDEFINITE_TRIES = 4
#: Rows from which a sweep (and the scale's one-dimensional sums) runs in
#: two threads, on the first and second half of the rows: numpy releases
#: the GIL in its loops and in ``np.dot``'s products (not in ``np.matmul``'s
#: of a block's shape, numpy/numpy#11821: measured with numpy 2.4, two
#: threads of ``W @ aT.T`` took as long as one after the other). The halves
#: are fixed by ``n`` alone and their sums are added in order, so the result
#: does not depend on the threads' timing or on the number of cores.
THREADED_ROWS = 32768
#: A symmetric sum over a wide block (``(k + 2)² b`` multiply-adds: about half
#: a millisecond on one thread at this size) is split between two threads
#: above it (:func:`symmetric_sum`).
SPLIT_PRODUCT_FLOPS = 1e7
#: The block products are (k+2) x b x (k+2): one BLAS thread does them
#: faster than several, which spin for each tiny product (much slower still
#: when other processes load the cores).
_BLAS = ThreadpoolController()
_BLAS_LOCK = threading.Lock()
_BLAS_LIMIT = {"depth": 0}  # nesting depth of single_blas_thread, and its limiter


def sweep_rows(k, n):
    """Rows per block of a sweep over ``n`` rows and ``k`` columns.

    A power of two of about :data:`SWEEP_VALUES` values, from
    :data:`SWEEP_ROWS` to 32,768 rows, and at most a quarter of the rows
    (above ``SWEEP_ROWS``): a block's buffers then stay small beside the
    data. The block and its weighted copies should stay in the cache, and
    the per-block cost of the numpy calls small against their work, which,
    with the GIL held, also keeps the second thread waiting. Measured on a
    sweep of 1e6 rows: 8,192-row blocks are best at 50 columns, 16,384 at
    10 and 32,768 at 3.
    """
    rows = min(2 ** round(math.log2(SWEEP_VALUES / (k + 2))), 2 ** int(math.log2(max(n // 4, 1))))
    return int(min(max(rows, SWEEP_ROWS), 32768))


def start_rows(n):
    """Rows the robust start uses: all up to ``START_ROWS``, else a stride.

    Parameters
    ----------
    n : int
        Number of rows.

    Returns
    -------
    slice
        Evenly spaced rows, at most about ``START_ROWS`` of them.

    Examples
    --------
    >>> from mgsk._rows import start_rows
    >>> start_rows(100), start_rows(50000)
    (slice(None, None, 1), slice(None, None, 5))
    """
    return slice(None, None, -(-n // START_ROWS))


@dataclass
class Sweep:
    """The sums of one pass over the rows (see :meth:`InMemoryRows.sweep`).

    Every field is a sum over rows (divided by the total weight for the
    means), or None: the Sweeps of disjoint row blocks add field by field
    (:func:`mgsk.dask._rows.add_sweeps` relies on it).

    With ``x = r*/unit``, ``w = sech x``, ``ρ = r/unit`` (``= x`` without the
    leverage adjustment, ``λ = r*/r``), ``f = sech(2 r*/fidelity_unit)`` and
    ``t = tanh(2 r*/fidelity_unit)``. With the leverage adjustment the
    weighted leverage ``h = q sech ρ`` moves with the residual and the unit
    (``q``, from the previous step's Gram matrix, is held), so in the
    derivatives below ``λ`` stands for ``∂r*/∂r = λ (1 - δ)`` and
    ``x tanh x`` for ``x tanh x (1 - δ)``, ``δ = λ² h ρ tanh(ρ) / 2`` (0
    where ``h`` is capped), and the unit derivative of ``Σ s w f`` has the
    term ``-Σ s w f x_f tanh(x_f) δ`` too (``x_f = 2 r*/fidelity_unit``).
    In ``newton_gram`` the rows' ``q`` is not held: ``q = z̃ᵀ G⁻¹ z̃`` with
    ``G = Σ s w z̃ z̃ᵀ``, and a row's own term in ``G`` gives
    ``∂q/∂w = -s q²``. Around the loop ``x → w → q → h → λ → x`` that
    feeds back with the gain ``ε = λ² h q s w x tanh(x) / 2`` (0 where
    ``h`` is capped, at most :data:`MAX_OWN_GAIN`), so there ``x tanh x``
    stands for ``x tanh x (1 - δ) / (1 - ε)``. The other rows' terms are
    left out: they would take products of ``n x n`` leverages. Following
    the own terms, 1000 x 400 took 71 steps over 10 seeds of
    ``benchmarks/bench_estimators.py``'s data instead of 83, 300 x 200
    1260 over 30 instead of 1287:

    Attributes
    ----------
    gram : ndarray of shape (k + 2, k + 2)
        ``Σ s w a aᵀ`` with ``a = (z - shift, 1, y - y_shift)``.
    loss : float
        ``Σ s e_I(r* / unit) / Σ s``: the mean estimating entropy.
    re : float
        ``Σ s re(r / y_scale) / Σ s``: the R-Entropy.
    newton_gram : ndarray of shape (k + 2, k + 2) or None
        ``Σ s ψ'(x) a aᵀ`` with ``ψ'(x) = sech x (1 - x tanh x)``, the
        derivative of the weighted residual ``sech(x) x`` (``x = r*/unit``):
        the Jacobian of the estimating equation at fixed unit.
    unit_gradient : ndarray of shape (k + 2,) or None
        ``Σ s w tanh(x) x ρ a``: the derivative of the estimating equation
        ``Σ s w r a`` with respect to the unit (``fidelity_unit`` given).
    fidelity_gradient : ndarray of shape (k + 2, 3) or None
        The columns ``Σ s λ w tanh(x) f a``, ``Σ s λ w tanh(x) a`` and
        ``Σ s λ w f t a``: with ``scale_sums``, the derivative of the
        scale equation's mean fidelity with respect to the coefficients.
    scale_sums : ndarray of shape (4,) or None
        ``(Σ s w f, Σ s w, Σ s w f x tanh x, Σ s w x tanh x)``: the mean
        fidelity and its derivative with respect to the unit.
    fidelity_slopes : ndarray of shape (2,) or None
        The first and second derivatives of ``Σ s w f`` with respect to
        ``ℓ = ln fidelity_unit``, ``Σ s w f t x_f`` and
        ``-Σ s w f x_f (x_f (1 - 2t²) + t)`` (``x_f = 2 |r*|/fidelity_unit``,
        ``t = tanh x_f``): ``Σ s w f`` at a nearby ``fidelity_unit`` to
        second order (without the leverage adjustment only).
    gradient : ndarray of shape (k + 2,) or None
        ``Σ s w r a``: the estimating equation, summed where the Gram
        matrix (from which it follows) is left out (``gram=False``).
    """

    gram: np.ndarray
    loss: float
    re: float
    newton_gram: np.ndarray = None
    unit_gradient: np.ndarray = None
    fidelity_gradient: np.ndarray = None
    scale_sums: np.ndarray = None
    fidelity_slopes: np.ndarray = None
    gradient: np.ndarray = None


def in_halves(fn, n, block=SWEEP_ROWS):
    """``[fn(rows)]`` for all rows, or for their two halves in two threads.

    Parameters
    ----------
    fn : callable
        Takes a slice of rows and returns their partial result.
    n : int
        Number of rows.
    block : int, default=SWEEP_ROWS
        Rows per block of ``fn``: the halves split on a block boundary.

    Returns
    -------
    list
        One result per part, in the order of the rows.
    """
    if n < THREADED_ROWS:
        return [fn(slice(0, n))]
    # Halves on a block boundary, so that the blocks are those of one thread.
    middle = -(-(n // 2) // block) * block
    with ThreadPoolExecutor(max_workers=1) as pool:
        second = pool.submit(fn, slice(middle, n))
        first = fn(slice(0, middle))
        return [first, second.result()]


_POOL = {}


def _pool():
    """A one-thread executor for the second half of a split product.

    Kept for the process (a new one per product costs a thread start), and
    made anew in a forked child, where the parent's thread does not run.
    """
    pid = os.getpid()
    if _POOL.get("pid") != pid:
        _POOL["pid"], _POOL["executor"] = pid, ThreadPoolExecutor(max_workers=1, thread_name_prefix="mgsk-product")
    return _POOL["executor"]


def in_two_threads(fn, first, second):
    """``(fn(first), fn(second))``, the second on the process's product thread.

    ``fn`` must not itself wait on that thread (:func:`_pool`, one worker):
    it would wait on itself.
    """
    later = _pool().submit(fn, second)
    return fn(first), later.result()


@contextmanager
def single_blas_thread():
    """Context in which BLAS runs on one thread (see ``_BLAS``).

    Re-entrant: only the outermost context sets and restores the limit
    (setting it costs more than a small fit's step).
    """
    with _BLAS_LOCK:
        if _BLAS_LIMIT["depth"] == 0:
            _BLAS_LIMIT["limiter"] = _BLAS.limit(limits=1, user_api="blas")
        _BLAS_LIMIT["depth"] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_LIMIT["depth"] -= 1
            if _BLAS_LIMIT["depth"] == 0:
                _BLAS_LIMIT.pop("limiter").restore_original_limits()


class InMemoryRows:
    """Row-block reductions on numpy arrays (the interface in the module docstring).

    Parameters
    ----------
    Z : ndarray of shape (n, k)
        Design without intercept column.
    y : ndarray of shape (n,)
        Targets.
    sample_weight : ndarray of shape (n,)
        Non-negative weights with a positive sum.
    y_scale : float, default=1.0
        Unit of the R-Entropy in the history.
    fit_intercept : bool, default=True
        Whether the model has an intercept (then the columns are shifted by
        the start rows' weighted means, for the conditioning of the sums).
    block_rows : int or None, default=None
        Rows per block; None for :func:`sweep_rows` of the design.

    Examples
    --------
    >>> import numpy as np
    >>> from mgsk._rows import InMemoryRows
    >>> rows = InMemoryRows(np.arange(4.0).reshape(-1, 1), np.array([0.0, 1.0, 2.0, 9.0]), np.ones(4))
    >>> sweep = rows.sweep(np.array([1.0]), 0.0, unit=1.0)
    >>> rows.residuals.tolist(), rows.quantile(0.5)
    ([0.0, 0.0, 0.0, 6.0], 0.0)
    """

    def __init__(self, Z, y, sample_weight, y_scale=1.0, fit_intercept=True, block_rows=None):
        self.Z, self.y, self.sample_weight = Z, y, sample_weight
        self.y_scale = y_scale
        self.block_rows = sweep_rows(Z.shape[1], Z.shape[0]) if block_rows is None else block_rows
        self.total_weight = float(sample_weight.sum())
        n, k = Z.shape
        sample = start_rows(n)
        self.shift, self.y_shift = np.zeros(k), 0.0
        if fit_intercept and sample_weight[sample].sum() > 0:
            # Without an intercept the columns must stay as they are.
            self.shift = weighted_mean(Z[sample], sample_weight[sample])
            self.y_shift = float(weighted_mean(y[sample], sample_weight[sample]))
        self.residuals = np.zeros(n)  # r* of the last sweep
        self.abs_residuals = np.zeros(n)  # |r*|
        self.weights = np.ones(n)  # w of the last sweep
        self._fidelity = None
        self._uniform = None  # whether the sample weights are all equal
        self._unit_weights = bool(np.all(sample_weight == 1.0))  # then not multiplied in
        self._whole = None  # wide data: the design transposed, (k + 2, n) (see sweep)
        # The leverages' factor R of the last sweep and the rows' c + ‖(z - m) R⁻ᵀ‖²:
        # they depend on R alone, so a sweep with the same R reuses them.
        self._leverage_factor, self._leverage_q = None, None

    @classmethod
    def of_residuals(cls, residuals, sample_weight, total_weight):
        """Rows that hold only given ``r*``, for the one-dimensional reductions.

        A part of the rows (a Dask chunk, a block of it) whose sums add up to
        those of all rows: :meth:`abs_mean` and :meth:`fidelity_sums` (with
        ``weight_unit``) divide by ``total_weight``, that of all rows.

        Parameters
        ----------
        residuals : ndarray of shape (m,)
            The ``r*`` of these rows.
        sample_weight : ndarray of shape (m,)
            Their weights.
        total_weight : float
            The total weight of all rows.

        Returns
        -------
        InMemoryRows
        """
        m = residuals.shape[0]
        rows = cls(np.empty((m, 0)), np.zeros(m), sample_weight, fit_intercept=False)
        rows.residuals, rows.abs_residuals, rows.total_weight = residuals, np.abs(residuals), total_weight
        return rows

    @property
    def n_features(self):
        """Number of columns of the design."""
        return self.Z.shape[1]

    def start_sample(self):
        """``(Z, y, sample_weight)`` of the rows the robust start uses."""
        rows = start_rows(self.y.shape[0])
        return np.ascontiguousarray(self.Z[rows]), self.y[rows].copy(), self.sample_weight[rows].copy()

    def start_leverages(self, leverage, q):
        """Keep the start's leverages for the next sweep at ``leverage``.

        Parameters
        ----------
        leverage : tuple (m, R, c)
            The leverage of the start's fit (see :meth:`sweep`).
        q : ndarray
            ``c + ‖(z - m) R⁻ᵀ‖²`` of the :meth:`start_sample`'s rows; kept
            only when the sample is all rows.
        """
        if q.shape[0] == self.Z.shape[0]:
            self._leverage_factor, self._leverage_q = leverage[1], q.copy()

    def sweep(self, coef, intercept, unit, leverage=None, newton=False, fidelity_unit=None, jacobian=True, gram=True, indefinite=None):
        """One pass over the rows; see the module docstring.

        Parameters
        ----------
        coef : ndarray of shape (k,)
            Coefficients at which the residuals are taken.
        intercept : float
            Intercept.
        unit : float
            Positive scale of the filtering weights ``sech(r* / unit)``.
        leverage : tuple (m, R, c) or None
            The weighted leverage of a row is ``w (c + ‖(z - m) R⁻ᵀ‖²)``, ``m``
            of shape (k,) in the shifted coordinates ``z - shift``, ``R`` of
            shape (k, k) lower triangular (see :func:`mgsk._irls.solve_gram`); None for no
            adjustment.
        newton : bool, default=False
            Whether to sum the Jacobian ``newton_gram`` too.
        fidelity_unit : float or None, default=None
            With ``newton``: the unit ``κσ`` of the scale equation's
            fidelities ``sech(2 r*/fidelity_unit)``, at which the sums of
            the derivatives with respect to the unit are taken.
        jacobian : bool, default=True
            With ``newton``: False leaves ``newton_gram`` out (the caller
            reuses an earlier Jacobian) but sums the rest.
        gram : bool, default=True
            With ``leverage``: False leaves the Gram matrix out (``gram``
            stays 0) and sums the estimating equation ``gradient`` instead;
            ``newton_gram`` is then summed by itself.
        indefinite : int or None, default=None
            With ``newton``, ``leverage`` and ``gram``, on rows that are one
            block: the number ``m`` of parameters (``k + 1`` with an
            intercept), when an earlier Jacobian was indefinite. Where this
            one curves down by a margin that Cholesky's rounding cannot
            bridge along a direction that one of a few rows points to
            (:func:`_indefinite_along_rows`), ``newton_gram`` is left None:
            :func:`mgsk._irls.jacobian_factor` would reject it.

        Returns
        -------
        Sweep
        """
        n, k = self.Z.shape
        # Fitted values are taken about the shifts: a = (z - shift, 1, y - y_shift).
        offset = intercept + float(self.shift @ coef) - self.y_shift
        theta = np.concatenate((-coef, [-offset, 1.0]))  # r = a @ theta
        self._fidelity = None

        gram = gram or leverage is None
        if leverage is not None and self._leverage_factor is not leverage[1]:
            self._leverage_factor, self._leverage_q = None, np.empty(n)
        # Wide data, which fit in one block, keep the design laid out
        # transposed for all sweeps: the first sweep fills it. Tall data lay
        # out each block afresh: that costs less than the page faults of
        # first writing a copy of the design (at 1e6 x 10, 96 MB: 13-30 ms
        # against 2-4 ms per later sweep), and a fit takes few sweeps.
        whole = self._whole
        fill = whole is None and leverage is not None and n <= self.block_rows
        if fill:
            whole = np.empty((k + 2, n))

        def part(rows):
            out = Sweep(np.zeros((k + 2, k + 2)), 0.0, 0.0, gradient=None if gram else np.zeros(k + 2))
            if newton:
                if jacobian:
                    out.newton_gram = np.zeros((k + 2, k + 2))
                if fidelity_unit is not None:
                    out.unit_gradient = np.zeros(k + 2)
                    out.fidelity_gradient = np.zeros((k + 2, 3))
                    out.scale_sums = np.zeros(4)
                    if leverage is None:
                        out.fidelity_slopes = np.zeros(2)
            b = min(self.block_rows, rows.stop - rows.start)
            buffer = np.empty((k + 2, b)) if whole is None else None
            scratch = np.empty((2 * (k + 2) + 4 + TALL_TEMPORARIES) * b)
            if leverage is None:
                block_sums = self._tall_block
            else:
                block_sums = functools.partial(self._sweep_block, indefinite=indefinite)
            for start in range(rows.start, rows.stop, self.block_rows):
                block = slice(start, min(start + self.block_rows, rows.stop))
                if whole is None:
                    aT = self._fill(buffer[:, : block.stop - start], block)
                else:
                    aT = self._fill(whole[:, block], block) if fill else whole[:, block]
                block_sums(aT, block, theta, unit, leverage, fidelity_unit, out, scratch)
            return out

        with single_blas_thread():
            parts = in_halves(part, n, self.block_rows)
        if fill:  # kept once it is filled
            self._whole = whole
        if leverage is not None:
            self._leverage_factor = leverage[1]
        out = parts[0]
        for other in parts[1:]:
            for name in (f.name for f in fields(Sweep)):
                value = getattr(other, name)
                if value is not None:
                    setattr(out, name, getattr(out, name) + value)
        out.loss /= self.total_weight
        out.re /= self.total_weight
        return out

    def _tall_block(self, aT, rows, theta, unit, leverage, fidelity_unit, out, scratch):
        """One block of :meth:`sweep` without the leverage adjustment (``r* = r``).

        The sums of :meth:`_sweep_block` with ``λ = 1``, ``δ = 0``, all from
        one product ``W aᵀ`` of ``W``'s rows ``s w a``, ``s ψ'(x) a`` (the
        Jacobian) and the unit's four columns (``k`` is small: one general
        product costs less than several symmetric ones). ``W`` and the
        per-row temporaries live in ``scratch`` (see :meth:`_sweep_block`);
        sample weights that are all 1 are not multiplied in.
        """
        k2, b = aT.shape
        jacobian, scale = out.newton_gram is not None, out.scale_sums is not None
        rows_of_W = k2 * (1 + jacobian) + 4 * scale
        W = scratch[: rows_of_W * b].reshape(rows_of_W, b)
        t = scratch[rows_of_W * b : (rows_of_W + TALL_TEMPORARIES) * b].reshape(TALL_TEMPORARIES, b)
        s = None if self._unit_weights else self.sample_weight[rows]

        def total(values):  # Σ s values
            return float(values.sum() if s is None else s @ values)

        r = np.matmul(theta, aT, out=self.residuals[rows])
        abs_r = np.abs(r, out=self.abs_residuals[rows])
        out.re += total(_entropy_terms(abs_r, self.y_scale, out=t[1], work=t[2]))
        x = _abs_ratio(abs_r, unit, out=t[0])
        e = np.exp(np.negative(x, out=t[1]), out=t[1])
        denominator = np.multiply(e, e, out=t[2])
        denominator += 1.0
        loss = np.subtract(1.0, e, out=t[3])  # e_I = 1 - sech x = (1 - e)² / (1 + e²)
        loss *= loss
        loss /= denominator
        out.loss += total(loss)
        w = np.divide(e, denominator, out=self.weights[rows])
        w *= 2.0
        sw = w if s is None else np.multiply(s, w, out=t[3])
        np.multiply(aT, sw, out=W[:k2])
        if not (jacobian or scale):
            out.gram += np.dot(W, aT.T)  # np.dot: see THREADED_ROWS
            return
        tanh_x = np.divide(2.0, denominator, out=denominator)
        tanh_x -= 1.0
        sw_x_tanh_x = np.multiply(x, tanh_x, out=t[4])
        sw_x_tanh_x *= sw
        if jacobian:  # ψ'(x) = sech x (1 - x tanh x)
            np.multiply(aT, np.subtract(sw, sw_x_tanh_x, out=t[5]), out=W[k2 : 2 * k2])
        if scale:
            columns = W[-4:]  # with ρ = x and λ = 1 (see Sweep)
            np.copysign(np.multiply(sw_x_tanh_x, x, out=columns[0]), r, out=columns[0])
            sw_tanh = np.copysign(np.multiply(sw, tanh_x, out=columns[2]), r, out=columns[2])
            x_f = _abs_ratio(abs_r, fidelity_unit / 2.0, out=t[1])
            f, tanh_f = _sech_tanh(x_f, out=t[5], tanh_out=t[6])
            swf = np.multiply(sw, f, out=t[2])
            np.multiply(sw_tanh, f, out=columns[1])
            out.scale_sums += [swf.sum(), sw.sum(), f @ sw_x_tanh_x, sw_x_tanh_x.sum()]
            sw_f_tanh_f = np.multiply(swf, tanh_f, out=columns[3])
            # ℓ = ln fidelity_unit: d(sech x_f)/dℓ = f t x_f, d(f t x_f)/dℓ = -f x_f (x_f (1 - 2t²) + t)
            curvature = np.multiply(tanh_f, tanh_f, out=t[0])
            curvature *= -2.0
            curvature += 1.0
            curvature *= x_f
            curvature += tanh_f
            out.fidelity_slopes += [sw_f_tanh_f @ x_f, -float(np.multiply(swf, x_f, out=t[5]) @ curvature)]
            np.copysign(sw_f_tanh_f, r, out=columns[3])
        sums = np.dot(W, aT.T)  # np.dot: see THREADED_ROWS
        out.gram += sums[:k2]
        if jacobian:
            out.newton_gram += sums[k2 : 2 * k2]
        if scale:
            out.unit_gradient += sums[-4]
            out.fidelity_gradient += sums[-3:].T

    def _fill(self, aT, rows):
        """``aT`` filled with ``a = (z - shift, 1, y - y_shift)`` of ``rows``, transposed."""
        k = self.Z.shape[1]
        np.subtract(self.Z[rows].T, self.shift[:, None], out=aT[:k])
        aT[k] = 1.0
        np.subtract(self.y[rows], self.y_shift, out=aT[k + 1])
        return aT

    def _sweep_block(self, aT, rows, theta, unit, leverage, fidelity_unit, out, scratch, indefinite=None):
        """One block of :meth:`sweep` with the leverage adjustment (wide data): adds its sums to ``out``.

        ``aT`` holds the block's ``a`` transposed, ``(k + 2, b)``: the row
        weights then scale contiguous rows of it. ``k`` is large, and the
        Gram matrices as symmetric products cost a fraction of one general
        product; the unit's columns are one product ``W aᵀ``. ``W`` and the
        leverage's temporaries go to ``scratch`` (at least
        ``(2 (k + 2) + 4) b`` values): reusing it saves an allocation per
        product, which costs page faults where the allocator returns large
        blocks to the system at once (as Dask's workers configure it). The
        per-row values are taken from ``|r*|`` (its sign copied on where it
        matters) and written in place into the rows' vectors. ``indefinite``:
        see :meth:`sweep`.
        """
        k = self.Z.shape[1]
        b = aT.shape[1]

        r = np.matmul(theta, aT, out=self.residuals[rows])
        abs_r = np.abs(r, out=self.abs_residuals[rows])
        s = self.sample_weight[rows]
        out.re += float(s @ _entropy_terms(abs_r, self.y_scale))
        delta = None  # δ = 1 - (∂r*/∂r) / λ: see Sweep
        # The leverages need the weights at the unadjusted residuals.
        rho = _ratio(r, unit)
        q = self._leverage_q[rows]
        if self._leverage_factor is None:  # not computed for this factor yet
            center, factor, const = leverage
            centered = np.subtract(aT[:k].T, center, out=scratch[: k * b].reshape(k, b).T)
            projected = leverage_projection(centered, factor)
            np.add(np.einsum("ij,ij->i", projected, projected), const, out=q)
        lev = q * _sech(rho)
        lam = 1.0 / np.sqrt(1.0 - np.minimum(lev, MAX_LEVERAGE))
        if out.newton_gram is not None or out.scale_sums is not None:
            # h = q sech(r/unit) moves with r and the unit (not where it is capped).
            delta = np.where(lev < MAX_LEVERAGE, 0.5 * lam * lam * lev * rho * np.tanh(rho), 0.0)
        raw = r.copy() if out.gradient is not None else None  # r, before it becomes r*
        r *= lam  # r* = r / sqrt(1 - h), in place in self.residuals
        np.abs(r, out=abs_r)
        abs_x = _abs_ratio(abs_r, unit)
        e = np.exp(np.negative(abs_x))
        e2 = e * e
        denominator = 1.0 + e2
        w = np.divide(2.0 * e, denominator, out=self.weights[rows])
        out.loss += float(s @ ((1.0 - e) ** 2 / denominator))
        sw = s * w
        W = scratch[: 2 * aT.size + 4 * b].reshape(-1, b)

        if out.gradient is None:
            block_gram = symmetric_sum(aT, sw, W[: k + 2])
            out.gram += block_gram
        else:
            out.gradient += aT @ (sw * raw)
        if delta is None:
            return
        tanh_abs_x = (1.0 - e2) / denominator
        x_tanh_x = abs_x * tanh_abs_x
        if out.newton_gram is not None:
            # The Jacobian's rows follow their own term of q too (see Sweep): the gain ε.
            gain = np.where(lev < MAX_LEVERAGE, 0.5 * lam * lam * lev * q * sw * x_tanh_x, 0.0)
            jacobian_x_tanh_x = x_tanh_x * (1.0 - delta) / (1.0 - np.minimum(gain, MAX_OWN_GAIN))
            if out.gradient is not None:
                out.newton_gram += symmetric_sum(aT, sw * (1.0 - jacobian_x_tanh_x), W[: k + 2])
            else:
                sw_jacobian = sw * jacobian_x_tanh_x
                if indefinite is not None and b == self.Z.shape[0] and _indefinite_along_rows(aT, sw - sw_jacobian, sw + np.abs(sw_jacobian), block_gram, leverage, q, indefinite):
                    out.newton_gram = None
                else:
                    correction = symmetric_sum(aT, sw_jacobian, W[: k + 2])
                    out.newton_gram += np.subtract(block_gram, correction, out=correction)
        if out.scale_sums is None:
            return
        # unit · ∂x/∂unit = -x (1 - δ), ∂r*/∂r = λ (1 - δ)
        x_tanh_x *= 1.0 - delta
        lam = lam * (1.0 - delta)
        sw_x_tanh_x = sw * x_tanh_x
        abs_x_f = _abs_ratio(abs_r, fidelity_unit / 2.0)
        f_e = np.exp(np.negative(abs_x_f))
        f_e2 = f_e * f_e
        f = 2.0 * f_e / (1.0 + f_e2)
        tanh_abs_x_f = (1.0 - f_e2) / (1.0 + f_e2)
        t = np.copysign(tanh_abs_x_f, r)
        swf = sw * f
        unit_fidelity = swf @ x_tanh_x
        unit_fidelity -= (swf * abs_x_f * tanh_abs_x_f) @ delta  # unit · ∂f/∂unit = -f x_f tanh(x_f) δ
        out.scale_sums += [swf.sum(), sw.sum(), unit_fidelity, sw_x_tanh_x.sum()]
        lam_sw_tanh = np.copysign(sw * tanh_abs_x, r)
        lam_sw_tanh *= lam
        columns = W[2 * k + 4 :]
        np.multiply(sw_x_tanh_x, rho, out=columns[0])
        np.multiply(lam_sw_tanh, f, out=columns[1])
        columns[2] = lam_sw_tanh
        np.multiply(swf, t, out=columns[3])
        columns[3] *= lam
        sums = columns @ aT.T
        out.unit_gradient += sums[0]
        out.fidelity_gradient += sums[1:].T

    def qr_solve(self, fit_intercept):
        """Weighted least squares at the weights of the last sweep, by QR.

        The fallback of :func:`mgsk._irls.solve_gram` when the Gram matrix
        is too ill-conditioned for the normal equations.

        Parameters
        ----------
        fit_intercept : bool
            Whether the model has an intercept.

        Returns
        -------
        coef : ndarray of shape (k,)
        intercept : float
        """
        return weighted_least_squares(self.Z, self.y, self.sample_weight * self.weights, fit_intercept)

    def quantile(self, q, center=None):
        """Weighted lower ``q``-quantile of ``r*``, or of ``|r* - center|``.

        Parameters
        ----------
        q : float
            Level in ``(0, 1]``.
        center : float or None
            Take the quantile of absolute deviations from it.

        Returns
        -------
        float
        """
        if center is None:
            values = self.residuals
        elif center == 0:
            values = self.abs_residuals
        else:
            values = np.abs(self.residuals - center)
        if self._uniform is None:  # checked once: it is a pass over the weights
            self._uniform = _is_uniform(self.sample_weight)
        return weighted_quantile(values, None if self._uniform else self.sample_weight, q)

    def abs_mean(self):
        """``Σ s |r*| / Σ s``: the fallback scale when the MAD is 0.

        Returns
        -------
        float
        """
        return float(self.sample_weight @ self.abs_residuals) / self.total_weight

    def fidelity_sums(self, unit, weight_unit=None):
        """``(Σ s w sech(2 r*/unit), Σ s w)``: the sums of the scale equation.

        Parameters
        ----------
        unit : float
            Positive unit of ``ln R = r* / unit``.
        weight_unit : float or None
            The filtering weights ``w = sech(r*/weight_unit)``; None for
            the weights of the last sweep.

        Returns
        -------
        tuple of float
        """
        fresh = self._fidelity is None or self._fidelity[0] != unit
        if fresh:
            # The secant steps of one scale vary only the weights: keep s sech(2 r*/unit).
            self._fidelity = (unit, np.empty_like(self.residuals))
        weighted_fidelity = self._fidelity[1]

        def part(rows):
            # By blocks of rows, so that the temporaries stay in the cache.
            fidelity = total = 0.0
            for start in range(rows.start, rows.stop, self.block_rows):
                block = slice(start, min(start + self.block_rows, rows.stop))
                s = self.sample_weight[block]
                if fresh:
                    np.multiply(s, _sech_abs(self.abs_residuals[block], unit / 2.0), out=weighted_fidelity[block])
                w = self.weights[block] if weight_unit is None else _sech_abs(self.abs_residuals[block], weight_unit)
                fidelity += float(w @ weighted_fidelity[block])
                total += float(w @ s)
            return fidelity, total

        parts = in_halves(part, self.residuals.shape[0], self.block_rows)
        return sum(p[0] for p in parts), sum(p[1] for p in parts)


def _sech(x):
    e = np.exp(-np.abs(x))
    return 2.0 * e / (1.0 + e * e)


def _sech_abs(abs_r, unit):
    """``sech(|r| / unit)`` from ``|r|``, in place on one new array (no overflow:
    ``exp`` of a large negative number is 0)."""
    with np.errstate(over="ignore", under="ignore"):
        e = np.multiply(abs_r, -1.0 / unit)
    np.exp(e, out=e)
    w = e * e
    w += 1.0
    np.divide(e, w, out=w)
    w *= 2.0
    return w


def _abs_ratio(abs_r, unit, out=None):
    """``|r| / unit`` capped at ``X_MAX`` without overflow: ``|_ratio(r, unit)|``."""
    with np.errstate(over="ignore", under="ignore"):
        x = np.divide(abs_r, unit, out=out)
    return np.minimum(x, X_MAX, out=x)


def _sech_tanh(x, out, tanh_out):
    """``sech x`` and ``tanh x`` of ``x >= 0`` into ``out`` and ``tanh_out``: one
    exponential ``e = exp(-x)``, ``sech x = 2e / (1 + e²)`` and
    ``tanh x = 2 / (1 + e²) - 1``."""
    e = np.exp(np.negative(x, out=out), out=out)
    denominator = np.multiply(e, e, out=tanh_out)
    denominator += 1.0
    sech = np.divide(e, denominator, out=out)
    sech *= 2.0
    tanh = np.divide(2.0, denominator, out=denominator)
    tanh -= 1.0
    return sech, tanh


def _entropy_terms(abs_r, scale, out=None, work=None):
    """``sinh x tanh x`` at ``x = r / scale`` from ``|r|``: the values of
    :func:`mgsk._gnostic.residual_entropy_values` (to rounding) from one
    exponential, into ``out`` (``work``: a temporary of the same shape).

    With ``q = exp(|x|) - 1`` (``expm1``, exact near 0) and ``E = q + 1``:
    ``u = q (q + 2) / E = 2 sinh x`` and ``E + 1/E = u + 2/E = 2 cosh x``, so
    ``sinh x tanh x = u² / (2 (u + 2/E))``; nothing cancels, and for
    ``|x| <= X_MAX`` nothing overflows (``u² < 1e261``)."""
    q = np.expm1(_abs_ratio(abs_r, scale, out=out), out=out)
    u = np.add(q, 2.0, out=work)
    u *= q
    E = np.add(q, 1.0, out=q)
    u /= E
    two_cosh = np.divide(2.0, E, out=E)
    two_cosh += u
    two_cosh *= 2.0
    u *= u
    return np.divide(u, two_cosh, out=u)


def _ratio(r, unit):
    """``r / unit`` clipped to ``±X_MAX`` without overflow."""
    with np.errstate(over="ignore", under="ignore"):
        return np.clip(r / unit, -X_MAX, X_MAX)


def leverage_projection(centered, factor):
    """``centered @ R⁻ᵀ`` for the leverages ``c + ‖(z - m) R⁻ᵀ‖²``.

    ``R`` from :func:`mgsk._irls.solve_gram` is lower triangular: the
    product is a triangular solve (BLAS ``trsm``), in place in ``centered``
    where it is Fortran-ordered, at the cost of half a general product and
    without inverting ``R``.

    Parameters
    ----------
    centered : ndarray of shape (b, k)
        Rows ``z - m``; overwritten when Fortran-ordered.
    factor : ndarray of shape (k, k)
        ``R``, lower triangular and invertible.

    Returns
    -------
    ndarray of shape (b, k)
    """
    b, k = centered.shape
    if k == 0:
        return centered
    if not centered.flags.f_contiguous:
        return solve_triangular(factor, centered.T, lower=True).T
    if b * k * k >= 2 * SPLIT_PRODUCT_FLOPS and solves_without_gil(factor, centered):
        # The rows' solves are independent: two halves in two threads, the
        # same bits as one solve (1000 x 400: 2.6 ms against 4.8 ms).
        middle = b // 2
        in_two_threads(functools.partial(solve_lower_transposed, factor, centered), slice(0, middle), slice(middle, b))
        return centered
    return dtrsm(1.0, factor, centered, side=1, lower=1, trans_a=1, overwrite_b=1)


def _indefinite_along_rows(aT, c, magnitude, gram, leverage, q, m):
    """Whether :func:`curves_down` holds along ``G⁻¹ ã_i`` of one of the rows most likely to show it.

    ``G`` is the Gram matrix of ``leverage`` (``q`` its leverages). Along
    ``G⁻¹ ã_i`` the row's own term in the curvature is ``c_i q_i²``: the
    ``INDEFINITE_TRIES`` rows where it is most negative are tried.
    """
    center, factor, const = leverage
    k = factor.shape[0]
    own = c * q * q
    for i in np.argsort(own, kind="stable")[:INDEFINITE_TRIES]:
        if not own[i] < 0:
            break
        direction = dpotrs(factor, aT[:k, i] - center, lower=1)[0]
        if m > k:
            direction = np.append(direction, const - center @ direction)
        if curves_down(aT, c, magnitude, gram, direction):
            return True
    return False


def curves_down(aT, c, magnitude, gram, direction):
    """Whether ``J = Σ c a aᵀ`` (the leading ``m`` rows and columns) is indefinite by a safe margin.

    ``J`` is factored scaled, ``S = J / (d dᵀ)`` with ``d`` the root of the
    Gram matrix's diagonal. With ``w = direction``, ``u = d w`` and
    ``S'`` the same scaling of ``Σ magnitude a aᵀ`` (``magnitude ≥ |c|``,
    the rows' terms in the sums), true when ``wᵀ J w`` is below
    ``-INDEFINITE_MARGIN`` times ``max(‖u‖² max(1, max S'ᵢᵢ), Σ magnitude
    (|a|ᵀ|w|)²)``. A Cholesky factorisation of ``S`` that completes has a
    backward error of about ``m`` unit roundoffs times ``‖u‖² max S'ᵢᵢ``
    along ``u``, and the sums round by about ``n`` times the second term:
    both far below the margin, so the factorisation would fail, and
    summing ``J`` can be skipped.

    Parameters
    ----------
    aT : ndarray of shape (k + 2, b)
        The rows ``a``, transposed.
    c : ndarray of shape (b,)
        The rows' weights in ``J``.
    magnitude : ndarray of shape (b,)
        At least ``|c|``.
    gram : ndarray of shape (k + 2, k + 2)
        The Gram matrix the Jacobian is scaled by.
    direction : ndarray of shape (m,)

    Returns
    -------
    bool
    """
    m = direction.shape[0]
    part = aT[:m]
    along = direction @ part
    curvature = float(c @ (along * along))
    diagonal = np.abs(np.diag(gram)[:m])
    if not curvature < 0 or not np.all(diagonal > 0):
        return False
    bound = np.abs(direction) @ np.abs(part)
    largest = float(np.max((part * part) @ magnitude / diagonal))
    scale = max(float(diagonal @ (direction * direction)) * max(1.0, largest), float(magnitude @ (bound * bound)))
    return curvature < -INDEFINITE_MARGIN * scale


def symmetric_sum(aT, c, scratch):
    """``Σ c a aᵀ`` over the columns ``a`` of ``aT`` by symmetric products.

    A product of a block with its own transpose is BLAS ``syrk``, a fraction
    of the cost of a general product: the rows enter as ``a √|c|``, written
    into ``scratch`` (shaped like ``aT``), those with ``c < 0`` moved after
    the others and their product subtracted. Large sums are split into two
    halves of those columns, summed in two threads (numpy releases the GIL
    in BLAS, and each thread has the one BLAS thread of
    :func:`single_blas_thread`); the halves are always the same and added
    in order, so the sum does not depend on the threads' timing.
    """
    k2, b = aT.shape
    negative = c < 0
    if negative.any():
        order = np.argsort(negative, kind="stable")
        roots = np.sqrt(np.abs(c[order]))
        nonnegative = b - int(np.count_nonzero(negative))
    else:
        order, roots, nonnegative = None, np.sqrt(c), b

    def part(columns):
        block = scratch[:, columns]
        if order is None:
            np.multiply(aT[:, columns], roots[columns], out=block)
        else:
            np.take(aT, order[columns], axis=1, out=block, mode="clip")
            block *= roots[columns]
        split = min(max(nonnegative - columns.start, 0), block.shape[1])
        upper, lower = block[:, :split], block[:, split:]
        total = upper @ upper.T
        if lower.shape[1]:
            total -= lower @ lower.T
        return total

    if b * k2 * k2 < SPLIT_PRODUCT_FLOPS:
        return part(slice(0, b))
    middle = b // 2
    total, second = in_two_threads(part, slice(0, middle), slice(middle, b))
    total += second
    return total
