"""BLAS routines called without holding the GIL.

scipy's BLAS wrappers (``scipy.linalg.blas``) hold the GIL while they run,
so two threads cannot share one large triangular solve. The routines of
scipy's Cython BLAS (``scipy.linalg.cython_blas``, a public interface) are
reached here by their function pointers, exported in ``__pyx_capi__``, and
called through ctypes, which releases the GIL for the call.
"""

import ctypes

import numpy as np
import scipy.linalg.cython_blas

_INT = ctypes.POINTER(ctypes.c_int)
_DOUBLE = ctypes.POINTER(ctypes.c_double)
_ONE = ctypes.c_double(1.0)


def _cython_blas(name, signature, *argtypes):
    """The routine ``name`` of scipy's Cython BLAS as a ctypes function, or None.

    None unless the capsule's name (the C signature, with scipy's typedef
    names of ``double``) starts with ``signature``: an ILP64 build's
    integers, say, would not match ``argtypes``.
    """
    try:
        capsule = scipy.linalg.cython_blas.__pyx_capi__[name]
        capsule_name = ctypes.pythonapi.PyCapsule_GetName
        capsule_name.restype, capsule_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
        pointer = ctypes.pythonapi.PyCapsule_GetPointer
        pointer.restype, pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
        declared = capsule_name(capsule)
        address = pointer(capsule, declared) if declared.decode().startswith(signature) else None
    except (AttributeError, KeyError, ValueError, UnicodeDecodeError):  # another scipy build: the caller falls back
        return None
    return ctypes.CFUNCTYPE(None, *argtypes)(address) if address else None


# Fortran dtrsm(side, uplo, transa, diag, m, n, alpha, A, lda, B, ldb), every argument by reference.
_DTRSM = _cython_blas(
    "dtrsm",
    "void (char *, char *, char *, char *, int *, int *, ",
    *[ctypes.c_char_p] * 4,
    _INT,
    _INT,
    _DOUBLE,
    ctypes.c_void_p,
    _INT,
    ctypes.c_void_p,
    _INT,
)


def solves_without_gil(factor, B):
    """Whether :func:`solve_lower_transposed` takes these arrays."""
    layout = factor.flags.c_contiguous or factor.flags.f_contiguous
    return _DTRSM is not None and layout and factor.dtype == B.dtype == np.float64 and B.flags.f_contiguous


def solve_lower_transposed(factor, B, rows):
    """``B[rows] ← B[rows] L⁻ᵀ`` in place, without holding the GIL.

    Parameters
    ----------
    factor : ndarray of shape (k, k)
        ``L``, lower triangular and invertible (its upper part is not read),
        C- or Fortran-contiguous.
    B : ndarray of shape (b, k)
        Fortran-contiguous, float64 (:func:`solves_without_gil`); the rows
        ``rows`` are overwritten.
    rows : slice
        Contiguous rows of ``B`` (step 1).
    """
    k = factor.shape[0]
    start, stop, _ = rows.indices(B.shape[0])
    if stop <= start or k == 0:
        return
    # A C-ordered L is Lᵀ (upper) to Fortran: then X Lᵀ = B is X op(A) = B with op(A) = A.
    uplo, trans = (b"U", b"N") if factor.flags.c_contiguous else (b"L", b"T")
    m, n, lda, ldb = (ctypes.c_int(v) for v in (stop - start, k, k, B.shape[0]))
    B_rows = B.ctypes.data + start * B.itemsize
    _DTRSM(b"R", uplo, trans, b"N", m, n, _ONE, factor.ctypes.data, lda, B_rows, ldb)
