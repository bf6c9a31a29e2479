"""Finite differences: the numerical gradient and the probes the checks are built on.

Numerical gradient (``numerical_gradient``)
    central     (f(x + h e_i) - f(x - h e_i)) / 2h           error O(h^2) + O(eps/h)
    forward     (f(x + h e_i) - f(x)) / h                      error O(h) + O(eps/h)
    complex     Im f(x + i h e_i) / h, h = 1e-20               no cancellation: ~1e-16 relative,
                                                               but f must accept complex input
    richardson  (4 D(h/2) - D(h)) / 3, D = central, h = 1e-3  error O(h^4) + O(eps/h)
    The step is relative, h = step * max(1, |x_i|), and the step actually taken is
    (x_i + h) - x_i (the representable one), which removes a needless rounding error.

float32
    Refused with an explanation (``Float32Error``): float32 rounds f to ~1e-7 relative, so a
    difference quotient carries an error ~1e-7 |f| / h -- 1e-4 |f| at h = 1e-3, 1e-1 |f| at
    h = 1e-6 -- the size of real bugs. ``upcast=True`` checks a float64 copy instead (with a
    warning), which tests the maths of the code, not its float32 behaviour.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .._validation import check_finite, check_param
from ..exceptions import Float32Error

__all__ = ["numerical_gradient", "Float32Error"]

EPS = float(np.finfo(np.float64).eps)
TINY = float(np.finfo(np.float64).tiny)
#: relative step of the checks: h = STEP * max(1, |x_i|)
STEP = 1e-6
#: default relative step of ``numerical_gradient`` per method (near-optimal for each)
DEFAULT_EPS = {"central": 1e-6, "forward": 1e-8, "complex": 1e-20, "richardson": 1e-3}
METHODS = tuple(DEFAULT_EPS)
#: rounding error of f in units of eps * |f|: sums of many terms round worse than one op
ROUND_C = 8.0
#: arrays larger than this are sampled (every array still gets this many checked entries);
#: 256 checks a 16 x 16 W fully and keeps a 784 x 64 layer to ~1000 forward passes per array
MAX_ENTRIES = 256
#: numpy >= 1.25 keeps it in numpy.exceptions; setup.cfg allows numpy 1.23
_ComplexWarning = getattr(np, "exceptions", np).ComplexWarning


def _float32_message(name, dtype):
    return (
        f"{name} is {dtype}: a finite-difference gradient check in {dtype} is unreliable. "
        f"{dtype} keeps about 7 significant digits (eps = {np.finfo(np.float32).eps:.1e}), so "
        "f(x + h) and f(x - h) are each rounded by ~1e-7 |f| and their difference divided by "
        "2h carries an error ~1e-7 |f| / h: about 1e-4 |f| with h = 1e-3 (whose truncation "
        "error is already ~1e-6) and 1e-1 |f| with h = 1e-6. A correct gradient would show "
        "relative errors of 1e-4 to 1e-1, as large as many real bugs. Check in float64: "
        "x.astype(np.float64) (build npae layers with dtype=np.float64), or pass upcast=True "
        "to check a float64 copy (f must then compute in float64 too).")


# ---------------------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------------------
def _scalar(value, what="f(x)"):
    arr = np.asarray(value)
    if arr.size != 1:
        raise TypeError(f"{what} must return a scalar, got an array of shape {arr.shape}; "
                        "reduce it to the scalar objective (e.g. the loss) first")
    if arr.dtype.kind == "c":
        raise TypeError(f"{what} returned a complex number ({arr.reshape(())!r}); use "
                        "method='complex' for complex-step differentiation")
    try:
        val = float(arr.reshape(()))
    except (TypeError, ValueError):
        raise TypeError(f"{what} must return a real number, got {type(value).__name__}") from None
    if not np.isfinite(val):
        raise ValueError(f"{what} returned {val}; a gradient cannot be checked where the "
                         "function is not finite (check its input range)")
    return val


def _prepare(x, name="x", upcast=False):
    """x as a writable float64 array: the caller's own array when it already is one (so f
    may close over it), otherwise a float64 copy (then f must use its argument)."""
    if isinstance(x, np.ndarray) and x.dtype == np.float64 and x.flags.writeable:
        arr = x
    else:
        arr = np.asarray(x)
        kind = arr.dtype.kind
        if kind == "c":
            raise TypeError(f"{name} is complex ({arr.dtype}); gradients are checked for "
                            "real inputs (method='complex' makes the complex copy itself)")
        if kind not in "biuf":
            raise TypeError(f"{name} has dtype {arr.dtype}; pass a float64 array")
        if kind == "f" and arr.dtype.itemsize < 8:
            if not upcast:
                raise Float32Error(_float32_message(name, arr.dtype))
            warnings.warn(f"checking a float64 copy of the {arr.dtype} {name}: this tests the "
                          "maths, not the float32 rounding of your code", UserWarning,
                          stacklevel=3)
        arr = np.array(arr, dtype=np.float64)
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); there is no gradient to check")
    check_finite(arr, name)
    return arr


def _index(flat, shape):
    return tuple(int(i) for i in np.unravel_index(int(flat), shape))


def _fd_values(fun, arr, flat, rel_step, mults, what="f(x)"):
    """f at x + m h e_i for each entry i in ``flat`` and each multiplier m.

    ``arr`` is perturbed in place and restored exactly (also on error). Returns the values
    F (k, len(mults)) and the steps actually taken H (representable differences).
    """
    F = np.empty((len(flat), len(mults)))
    H = np.empty_like(F)
    for j, fi in enumerate(flat):
        idx = _index(fi, arr.shape)
        old = float(arr[idx])
        h = rel_step * max(1.0, abs(old))
        try:
            for m_i, m in enumerate(mults):
                arr[idx] = old + m * h
                H[j, m_i] = float(arr[idx]) - old
                if H[j, m_i] == 0.0:
                    raise ValueError(f"step {rel_step:g} is too small to change entry {idx} "
                                     f"= {old!r} in float64; use a larger eps")
                F[j, m_i] = _scalar(fun(), f"{what} at entry {idx} + {m:g} h")
        finally:
            arr[idx] = old
    return F, H


# ---------------------------------------------------------------------------------------
# numerical gradients
# ---------------------------------------------------------------------------------------
def numerical_gradient(f, x, eps=None, method="central"):
    """Numerical gradient of a scalar function ``f`` at ``x`` (float64, any shape).

    method
        "central" (default, step 1e-6), "forward" (1e-8 ~ sqrt(eps_mach)), "complex"
        (complex step, 1e-20: machine precision, needs f to accept complex input) or
        "richardson" ((4 D(h/2) - D(h)) / 3 with h = 1e-3: error O(h^4), ~1e-12).
    eps
        the relative step: h = eps * max(1, |x_i|); ``None`` takes the method's default.

    For the real methods ``x`` is perturbed in place and restored, so ``f`` may close over
    it (``f = lambda _: model.objective(X)`` with x = a live parameter array). The complex step
    works on a complex copy, so there ``f`` must use its argument.
    """
    check_param("method", method, options=METHODS)
    h_rel = DEFAULT_EPS[method] if eps is None else eps
    check_param("eps", h_rel, kind="real", low=0.0, low_open=True)
    if method == "complex":
        return _complex_step(f, x, h_rel)
    x = _prepare(x)
    flat = np.arange(x.size)
    fun = lambda: f(x)  # noqa: E731
    if method == "forward":
        f0 = _scalar(fun())
        F, H = _fd_values(fun, x, flat, h_rel, (1.0,))
        g = (F[:, 0] - f0) / H[:, 0]
    else:
        mults = (1.0, -1.0) if method == "central" else (1.0, -1.0, 0.5, -0.5)
        F, H = _fd_values(fun, x, flat, h_rel, mults)
        g = (F[:, 0] - F[:, 1]) / (H[:, 0] - H[:, 1])
        if method == "richardson":
            g_half = (F[:, 2] - F[:, 3]) / (H[:, 2] - H[:, 3])
            g = (4.0 * g_half - g) / 3.0
    return g.reshape(x.shape)


def _complex_step(f, x, h_rel):
    x = _prepare(x)
    xc = x.astype(np.complex128)
    grad = np.empty(x.shape)
    for fi in range(x.size):
        idx = _index(fi, x.shape)
        old = xc[idx]
        h = h_rel * max(1.0, abs(old.real))
        xc[idx] = old + 1j * h
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", _ComplexWarning)
                value = np.asarray(f(xc))
        except (TypeError, ValueError, _ComplexWarning) as exc:
            raise TypeError(
                "method='complex' needs f to accept complex input, and f failed on it "
                f"({type(exc).__name__}: {exc}). Complex-safe code avoids float(), abs(), "
                "np.maximum, comparisons and input checks that refuse complex arrays (npae's "
                "layers do); use method='central' or 'richardson' instead") from exc
        finally:
            xc[idx] = old
        if value.size != 1:
            raise TypeError(f"f must return a scalar, got an array of shape {value.shape}")
        if value.dtype.kind != "c":
            raise TypeError(
                "method='complex' needs f to propagate complex input, but f returned a real "
                f"{value.dtype} value: it dropped the imaginary part (float(), .real, "
                "np.abs, casting into a real array) or ignores its argument (closes over a "
                "real array). Use method='central' instead")
        v = complex(value.reshape(()))
        if not np.isfinite(v.real) or not np.isfinite(v.imag):
            raise ValueError(f"f returned {v} at entry {idx} + {h:g}i")
        grad[idx] = v.imag / h
    return grad


# ---------------------------------------------------------------------------------------
# probing entries and comparing
# ---------------------------------------------------------------------------------------
@dataclass
class _Probe:
    """Finite-difference data of k entries: f at x +- h, x +- h/2 and at x."""
    F: np.ndarray   # (k, 4): f(x+h), f(x-h), f(x+h/2), f(x-h/2)
    H: np.ndarray   # (k, 4): the steps taken
    f0: float

    def __add__(self, other):  # the terms of a sum: every quantity below is linear in f
        return _Probe(self.F + other.F, self.H, self.f0 + other.f0)

    @property
    def central(self):
        return (self.F[:, 0] - self.F[:, 1]) / (self.H[:, 0] - self.H[:, 1])

    @property
    def half(self):
        return (self.F[:, 2] - self.F[:, 3]) / (self.H[:, 2] - self.H[:, 3])

    @property
    def slopes(self):
        """Secant slopes over [x-h, x-h/2], [x-h/2, x], [x, x+h/2], [x+h/2, x+h]: (k, 4)."""
        F, H, f0 = self.F, self.H, self.f0
        return np.stack([(F[:, 3] - F[:, 1]) / (H[:, 3] - H[:, 1]), (f0 - F[:, 3]) / -H[:, 3],
                         (F[:, 2] - f0) / H[:, 2], (F[:, 0] - F[:, 2]) / (H[:, 0] - H[:, 2])],
                        axis=1)

    @property
    def rounding(self):
        fmax = np.maximum(np.abs(self.F).max(axis=1), abs(self.f0))
        return ROUND_C * EPS * fmax / self.H[:, 0]

    @property
    def error(self):
        return 4.0 / 3.0 * np.abs(self.central - self.half) + self.rounding


def _probe(fun, arr, flat, step=STEP, what="f(x)"):
    f0 = _scalar(fun(), what)
    F, H = _fd_values(fun, arr, flat, step, (1.0, -1.0, 0.5, -0.5), what)
    return _Probe(F, H, f0)


def _select(size, max_entries, rng, a_flat=None):
    """All entries, or a random sample of ``max_entries`` that includes the largest |a|."""
    if max_entries is None or size <= max_entries:
        return np.arange(size)
    picks = rng.choice(size, max_entries, replace=False)
    if a_flat is not None and a_flat.size == size:
        top = int(np.argmax(np.abs(a_flat)))
        if top not in picks:
            picks[0] = top
    return np.sort(picks)

