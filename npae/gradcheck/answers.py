"""The rules for answers, one set for every entry point (``check_gradient``, ``check_terms``,
``check_layer``, the homework checker, ``npae gradcheck``).

An answer (what ``grad(x)`` returns, or a gradient passed as an array) is a float64
``numpy.ndarray``:

- anything else is an error naming what was returned: a list or tuple, an ``np.matrix``
  (or another ndarray subclass), an integer, bool, complex, longdouble or object array;
- float32 (and float16) is refused with the reason (``Float32Error``): float32 keeps ~7
  digits, so a right answer and a slightly wrong one cannot be told apart at rtol 1e-6;
- an answer computed in float32 and returned as float64 gets ONE fixed verdict, "wrong"
  with the float32 reason (``float32_rounding``), never a verdict that depends on whether
  the rounding happened to fall inside the tolerance at that seed;
- a function or an answer that changes its inputs is reported as such (``Mutation``):
  comparing a copy taken before the call with the array after it.
"""
from __future__ import annotations

import numpy as np

from ..exceptions import Float32Error

__all__ = ["answer_array", "describe_answer", "describe_answer_type", "call_unchanged", "mutation_message",
           "float32_numbers", "float32_rounding", "F32_DEV_MAX"]

#: the largest deviation (relative to the gradient's largest entry) float32 rounding
#: explains; above it the answer is wrong in its maths, float32 or not
F32_DEV_MAX = 1e-4


def describe_answer(value):
    """What was returned, in a student's words: "a list", "an np.matrix", "a float32 array"."""
    if value is None:
        return "None (a missing `return`?)"
    if isinstance(value, np.matrix):
        return "an np.matrix"
    if isinstance(value, np.ndarray):
        sub = "" if type(value) is np.ndarray else f"a {type(value).__name__} (an ndarray subclass) of "
        return f"{sub}a{'n' if str(value.dtype)[0] in 'aeiou' else ''} {value.dtype} array"
    if isinstance(value, np.generic):
        return f"a numpy {type(value).__name__} scalar"
    name = type(value).__name__
    return f"a{'n' if name[0] in 'aeiou' else ''} {name}" if isinstance(
        value, (list, tuple, dict, int, float, complex, str)) else f"a {name} object"


def describe_answer_type(type_name):
    """``describe_answer`` from the name of the returned type alone (what an answer process
    reports): "a list", "an np.matrix", "a numpy float64 scalar"."""
    if type_name == "matrix":
        return "an np.matrix"
    if type_name in ("float64", "float32", "float16", "int64", "int32", "bool_",
                     "complex128", "longdouble", "float128"):
        return f"a numpy {type_name} scalar"
    return f"a{'n' if type_name[:1] in 'aeiou' else ''} {type_name}"


def answer_array(value, *, what="the analytic gradient", shape=None):
    """``value`` as the float64 ndarray it must be, or an error naming what it is.

    A numpy float64 scalar is accepted where ``shape`` is () (a 0-d x). Raises
    ``Float32Error`` for float32/float16 and TypeError for anything else that is not a
    float64 ndarray.
    """
    if shape == () and isinstance(value, (np.float64, float)) and not isinstance(value, bool):
        return np.array(value, dtype=np.float64)
    if type(value) is np.ndarray and value.dtype == np.float64:
        return value
    desc = describe_answer(value)
    want = "a float64 numpy.ndarray" + (f" of shape {tuple(shape)}" if shape is not None else "")
    if isinstance(value, np.ndarray) and type(value) is np.ndarray:
        dt = value.dtype
        if dt.kind == "f" and dt.itemsize < 8:
            raise Float32Error(
                f"{what} is {desc}: {dt} is refused, the check needs float64. {dt} keeps "
                f"about {7 if dt.itemsize == 4 else 3} significant digits, so its rounding "
                "is as large as the differences that tell a right gradient from a wrong one "
                "at rtol 1e-6; compute it in float64 (float64 inputs, no astype(np.float32), "
                "npae layers built with dtype=np.float64)")
        reason = {"c": "a gradient of a real function is real (np.sqrt of a negative, 1j?)",
                  "b": "a bool array cannot hold a gradient",
                  "i": "an integer array cannot hold a gradient (np.zeros_like of an int "
                       "array?)",
                  "u": "an integer array cannot hold a gradient",
                  "O": "an object array (arrays of different shapes, None entries?)",
                  "f": "longdouble is not float64: return a float64 array "
                       "(np.asarray(g, dtype=np.float64))"}.get(dt.kind, "")
        raise TypeError(f"{what} is {desc}, not {want}" + (f": {reason}" if reason else ""))
    hint = {"an np.matrix": "np.matrix changes what * and ** mean; use np.asarray and @",
            "a list": "convert it with np.asarray(g, dtype=np.float64)",
            "a tuple": "return one array, not a tuple"}.get(desc, "")
    raise TypeError(f"{what} is {desc}, not {want}" + (f" ({hint})" if hint else ""))


def mutation_message(who, name, before, after):
    """A message naming the entries ``who`` changed in its input ``name``, or None."""
    if not isinstance(after, np.ndarray) or after.shape != before.shape:
        return (f"{who} changed its input {name} in place (its shape or type): it must leave "
                f"its arguments as they are")
    same = (after == before) | (np.isnan(after) & np.isnan(before))
    if same.all():
        return None
    idx = [tuple(int(i) for i in e) for e in np.argwhere(~same)[:3]]
    more = int((~same).sum()) - len(idx)
    where = ", ".join(str(e if len(e) > 1 else e[0]) for e in idx) + (
        f" and {more} more" if more > 0 else "")
    return (f"{who} changed its input {name} in place (entries {where}): a gradient or an "
            f"objective must leave its arguments as they are; work on a copy ({name} = "
            f"{name}.copy()) or write x = x * 2, not x *= 2")


def call_unchanged(fun, x, who, name):
    """Call ``fun(x)``; if it changed ``x``, restore ``x`` and return (value, message)."""
    before = x.copy()
    value = fun(x)
    msg = mutation_message(who, name, before, x)
    if msg:
        x[...] = before
    return value, msg


def float32_numbers(v):
    """True when the float64 values ``v`` are float32 numbers needing more bits than
    float16's (short numbers such as 0, 0.5, 3 are float32 numbers too)."""
    v = np.asarray(v)
    if v.dtype != np.float64 or v.size == 0 or not np.isfinite(v).all():
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        v32 = v.astype(np.float32)
        if not np.array_equal(v32.astype(np.float64), v):
            return False
        long_ = v32.astype(np.float16).astype(np.float64) != v
    return int(long_.sum()) >= min(3, max(1, np.count_nonzero(v)))


def float32_rounding(a, n, err, x_values=None):
    """The answer ``a`` carries float32's rounding and nothing else: True or False.

    ``a``, ``n``, ``err``: the analytic values, the finite differences and their error
    estimates at the entries checked exactly. Two signatures, either suffices:

    - its values are float32 numbers (computed in float32, cast back) while x's are not;
    - it deviates from the finite differences by more than their own error (4 err) on a
      fifth of the entries (at least 2), by 1e-9 to ``F32_DEV_MAX`` of the largest entry,
      with relative deviations that vary in size and sign as rounding does (not one
      constant factor, which would be a slip in the maths).

    Either way the deviation must stay below ``F32_DEV_MAX`` of the gradient's size: a
    larger one is a mistake, which its own diagnosis names.
    """
    a, n, err = (np.asarray(v, dtype=np.float64) for v in (a, n, err))
    if a.size == 0:
        return False
    scale = max(float(np.abs(n).max()), float(np.abs(a).max()))
    if scale == 0:
        return False
    dev = np.abs(a - n)
    if float(dev.max()) > F32_DEV_MAX * scale:
        return False
    if float32_numbers(a) and not (x_values is not None and float32_numbers(x_values)):
        return True
    beyond = dev > 4.0 * err + 1e-9 * scale
    if int(beyond.sum()) < max(2, 0.2 * a.size):
        return False
    big = beyond & (np.abs(n) > 0.05 * scale)
    if big.sum() >= 2:
        rel = (a[big] - n[big]) / n[big]
        # one constant factor: the relative deviations agree to a tenth of their size
        if np.ptp(rel) <= 0.1 * float(np.abs(rel).max()):
            return False
    return True
