"""Input checks shared by layers, losses and estimators.

Every public entry point funnels its arrays through here so that bad input ends in one
kind of message: what was wrong, what was expected, what to do about it.
"""
from __future__ import annotations

import numbers
import sys

import numpy as np

from .exceptions import DataTypeError, NonFiniteError

__all__ = ["as_float_array", "check_finite", "check_shape", "check_param", "DataTypeError",
           "NonFiniteError", "max_magnitude"]


def as_float_array(X, name="X", *, ndim=None, min_ndim=None, dtype=None, allow_empty=False,
                   copy=False, finite=True):
    """Return ``X`` as a floating-point ndarray, or raise a clear error.

    Integers and booleans become float64; float32 stays float32 unless ``dtype`` says
    otherwise; complex, object and string arrays are refused (TypeError), and so are NaN
    and inf (ValueError), because a NaN fed to a gradient step silently poisons every weight.
    ``finite=False`` leaves that check (``check_finite(arr, name, bounded=True)``) to a caller
    that can make it from a reduction it computes anyway (PCA: the mean and the covariance's
    diagonal); the array is then returned in its target dtype unchecked.
    """
    if isinstance(X, np.ndarray):
        arr = X
    elif _is_sparse(X):
        raise DataTypeError(
            f"{name} is a scipy.sparse {type(X).__name__}; sparse input is not supported by "
            f"npae (its models work on dense arrays): pass {name}.toarray()")
    else:
        try:
            arr = np.asarray(X)
        except Exception as exc:  # ragged lists and the like
            raise ValueError(f"{name} could not be converted to an array: {exc}") from None
    if arr.dtype == object or arr.dtype.kind in "USV":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            # numpy's reason ("float() argument must be a string or a real number, not
            # 'dict'") names the offending element's type
            raise DataTypeError(f"{name} has dtype {arr.dtype}, which is not numeric ({exc}); "
                                "pass a float array") from None
    if arr.dtype.kind == "c":
        raise DataTypeError(f"{name} is complex ({arr.dtype}): Complex data not supported, npae "
                            "works on real-valued data only (take .real or np.abs first)")
    if dtype is not None:
        target = np.dtype(dtype)
    elif arr.dtype in (np.float32, np.float64):
        target = arr.dtype
    else:  # integers, booleans, float16/longdouble
        target = np.dtype(np.float64)
    if ndim is not None and arr.ndim != ndim:
        hint = ""
        if ndim == 2 and arr.ndim == 1:
            hint = (" Reshape your data with X.reshape(-1, 1) if it has a single feature or "
                    "X.reshape(1, -1) if it is a single sample.")
        raise ValueError(f"{name} must be a {ndim}-D array, got {arr.ndim}-D with shape "
                         f"{arr.shape}.{hint}")
    if min_ndim is not None and arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {arr.shape}")
    if not allow_empty and arr.size == 0:
        # scikit-learn's wording, which its estimator checks look for
        what = "feature(s)" if arr.ndim >= 2 and arr.shape[0] > 0 else "sample(s)"
        raise ValueError(f"{name} is empty: 0 {what} (shape={arr.shape}) while a minimum of 1 "
                         "is required; pass at least one sample with at least one feature")
    was_float = arr.dtype.kind == "f"
    if was_float and (finite or arr.dtype != target):
        # before the cast: a float64 beyond float32's range would silently become inf in it
        check_finite(arr, name, bounded=target)
    if arr.dtype != target:
        arr = arr.astype(target)
        if not was_float and finite:
            check_finite(arr, name, bounded=True)   # e.g. int64 beyond float32's bound
    elif copy:
        arr = arr.copy()
    return arr


def max_magnitude(dtype):
    """The largest |value| npae accepts in an array of ``dtype``: the fourth root of the
    largest float (1.2e77 for float64, 4.3e9 for float32).

    Every model squares its inputs and sums the squares (losses, covariances, norms) or
    multiplies them by weights and sums; below this bound a square is at most the square
    root of the largest float, so sums of up to that many such terms stay finite. Beyond
    it the arithmetic overflows and silently turns into inf or NaN.
    """
    return float(np.finfo(dtype).max) ** 0.25


def _is_sparse(X):
    # a scipy.sparse input means scipy.sparse is loaded already: no import needed to ask
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(X)


def check_finite(arr, name="X", bounded=False):
    """Raise ValueError if ``arr`` holds NaN or inf, saying how many and where the first is.

    ``bounded``: also refuse values beyond ``max_magnitude`` of ``arr.dtype`` (True) or of
    the dtype given (the one ``arr`` is about to be cast to): finite, but they overflow in
    the models' arithmetic.
    """
    if arr.dtype.kind != "f" or arr.size == 0:
        return arr
    # two reductions, no temporary array the size of arr; a NaN or inf shows up in them
    lo, hi = arr.min(), arr.max()
    if np.isfinite(lo) and np.isfinite(hi):
        big = max(-float(lo), float(hi))
        work = None if bounded is False else np.dtype(arr.dtype if bounded is True else bounded)
        if work is not None and big > max_magnitude(work):
            raise NonFiniteError(
                f"{name} has values up to {big:.3g} in magnitude; npae squares and sums its "
                f"inputs, which overflows {work} beyond {max_magnitude(work):.3g}. "
                "Rescale the data (standardise it, or divide by its largest value)", name)
        return arr
    if not np.isfinite(arr).all():
        bad = ~np.isfinite(arr)
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        kind = "NaN" if np.isnan(arr[first]) else "inf"
        raise NonFiniteError(f"{name} contains {int(bad.sum())} non-finite value(s) "
                             f"(first: {kind} at index {first}); remove or impute them before "
                             "calling npae", name)
    return arr


def check_shape(arr, expected, name="x"):
    """Raise ValueError unless ``arr.shape`` matches ``expected`` (None matches any size)."""
    shape = tuple(arr.shape)
    ok = len(shape) == len(expected) and all(e is None or e == s for e, s in zip(expected, shape))
    if not ok:
        exp = "(" + ", ".join("any" if e is None else str(e) for e in expected) + ")"
        raise ValueError(f"{name} has shape {shape}, expected {exp}")
    return arr


def check_param(name, value, *, kind="real", low=None, high=None, low_open=False,
                high_open=False, options=None):
    """Validate a hyper-parameter; the error names it, its value and the allowed range.

    ``kind`` is "int" or "real"; ``low``/``high`` bound it (closed unless ``*_open``);
    ``options`` lists the allowed values of a categorical parameter.
    """
    if options is not None:
        if value not in options:
            raise ValueError(f"{name}={value!r} is not supported; choose one of "
                             + ", ".join(repr(o) for o in options))
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    if isinstance(value, numbers.Real) and not np.isfinite(value):
        raise ValueError(f"{name}={value!r} must be finite")
    lo_bad = low is not None and (value <= low if low_open else value < low)
    hi_bad = high is not None and (value >= high if high_open else value > high)
    if lo_bad or hi_bad:
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        interval = ("(" if low_open or low is None else "[") + f"{lo}, {hi}" + (
            ")" if high_open or high is None else "]")
        raise ValueError(f"{name}={value!r} is out of range; it must lie in {interval}")
    return value
