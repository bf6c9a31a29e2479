"""Gradient checking that says *why* a gradient is wrong, not just *that* it is.

Students use this on their own code::

    from npae.gradcheck import check_gradient, check_layer
    print(check_gradient(f, grad_f, x))     # f(x) -> scalar, grad_f(x) -> array (or an array)
    print(check_layer(my_layer, x))         # any npae Layer: dL/dx and every parameter

Everything runs in float64 (see "float32" below).

Numerical gradient (``numerical_gradient``)
    central     (f(x + h e_i) - f(x - h e_i)) / 2h           error O(h^2) + O(eps/h)
    forward     (f(x + h e_i) - f(x)) / h                      error O(h) + O(eps/h)
    complex     Im f(x + i h e_i) / h, h = 1e-20               no cancellation: ~1e-16 relative,
                                                               but f must accept complex input
    richardson  (4 D(h/2) - D(h)) / 3, D = central, h = 1e-3  error O(h^4) + O(eps/h)
    The step is relative, h = step * max(1, |x_i|), and the step actually taken is
    (x_i + h) - x_i (the representable one), which removes a needless rounding error.

The pass rule (``check_gradient``)
    numeric n_i = D(h) with h = 1e-6 * max(1, |x_i|). Each entry is also probed at h/2, and
    the pair gives an estimate of the error of n_i itself:

        err_i = 4/3 |D(h) - D(h/2)|  +  8 eps max|f| / h  +  spread_i / 4
                (truncation: D(h) - D(h/2) = 3/4 c h^2 when D(h) = g + c h^2)
                                       (rounding of f(x +- h), a floor the pair may miss)
                                                           (observed noise, see Kinks)

    An entry passes when |a_i - n_i| <= atol + rtol max(|a_i|, |n_i|) + 2 err_i, so the
    tolerance adapts to how well the finite difference is known at that entry instead of one
    loose global tolerance. Defaults rtol = 1e-6, atol = 0: for smooth functions the errors
    of a correct gradient are ~1e-9 relative, a wrong one is off by O(1).

Kinks (ReLU, max, |.|)
    The five points x - h, x - h/2, x, x + h/2, x + h give four secant slopes. Along a
    smooth f they grow evenly (by h/2 f'' per step); when [x - h, x + h] straddles a kink the
    whole change of slope sits in one step. An entry is "at a kink" when the steps are
    uneven (spread > half the largest step) and the largest step exceeds both 10 rounding
    units and 1e-5 of the largest gradient entry. There the central difference averages two
    slopes and means nothing, so the entry is judged by the one-sided slopes alone: the
    analytic value is excused (excluded from failure, counted in the report) if it lies
    among them, where every valid (sub)gradient lies, and fails otherwise. Unevenness at
    noise level is folded into the error estimate (err_i += spread / 4).

Hints (``GradCheckResult.hint``), given only where the evidence supports them: shape mismatch,
all zeros, a constant factor (2, 1/2, -1, the batch size n, 1/n, any other c), transposed,
errors only where uses overlap while entries outside the overlap are right (assignment
instead of accumulation, with ``overlap=``),
wrong in only some rows/columns/entries, and for objectives made of named terms
(``check_terms``, tied weights in ``check_layer``) the missing or mis-scaled term.

float32
    Refused with an explanation (``Float32Error``): float32 rounds f to ~1e-7 relative, so a
    difference quotient carries an error ~1e-7 |f| / h -- 1e-4 |f| at h = 1e-3, 1e-1 |f| at
    h = 1e-6 -- the size of real bugs. ``upcast=True`` checks a float64 copy instead (with a
    warning), which tests the maths of the code, not its float32 behaviour.
"""
from __future__ import annotations

import copy
import itertools
import warnings
from dataclasses import dataclass, field

import numpy as np

from ._validation import check_finite, check_param

__all__ = ["numerical_gradient", "check_gradient", "check_terms", "check_params",
           "check_layer", "check_directional", "report", "GradCheckResult", "CheckReport",
           "ContractCheck", "Float32Error"]

EPS = float(np.finfo(np.float64).eps)
TINY = float(np.finfo(np.float64).tiny)
#: relative step of the checks (the issue's h = 1e-6 * max(1, |x_i|))
STEP = 1e-6
#: default relative step of ``numerical_gradient`` per method (near-optimal for each)
DEFAULT_EPS = {"central": 1e-6, "forward": 1e-8, "complex": 1e-20, "richardson": 1e-3}
METHODS = tuple(DEFAULT_EPS)
#: multiplies the error estimate in the pass rule
SAFETY = 2.0
#: rounding error of f in units of eps * |f|: sums of many terms round worse than one op
ROUND_C = 8.0
#: a kink's jump in slope must exceed this many rounding-error units and this fraction of
#: the largest gradient entry to be reported (smaller uneven steps are rounding noise)
KINK_NOISE = 10.0
KINK_RTOL = 1e-5
#: arrays larger than this are sampled (every array still gets this many checked entries);
#: 256 checks a 16 x 16 W fully and keeps a 784 x 64 layer to ~1000 forward passes per array
MAX_ENTRIES = 256
N_WORST = 5
#: numpy >= 1.25 keeps it in numpy.exceptions; setup.cfg allows numpy 1.23
_ComplexWarning = getattr(np, "exceptions", np).ComplexWarning


class Float32Error(ValueError):
    """A finite-difference check was asked for in float32, where it cannot be trusted."""


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
    it (``f = lambda _: model.loss(X)`` with x = a live parameter array). The complex step
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


@dataclass(eq=False)
class GradCheckResult:
    """Outcome of checking one gradient array. ``bool(result)`` is ``result.ok``.

    ``numeric``, ``error_estimate``, ``threshold`` are NaN at entries that were not checked
    (sampled mode); ``checked``, ``kinks`` and ``failed`` are boolean masks of x's shape.
    ``max_rel_error`` is taken over entries the finite difference resolves to rtol (twice
    its error estimate below rtol max(|a|, |n|)); entries near its noise floor, where a
    relative error means nothing, are judged by the absolute rule only.
    """
    ok: bool
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple | None
    analytic: np.ndarray
    numeric: np.ndarray
    hint: str = ""
    name: str = "x"
    error_estimate: np.ndarray | None = None
    threshold: np.ndarray | None = None
    checked: np.ndarray | None = None
    kinks: np.ndarray | None = None
    failed: np.ndarray | None = None
    notes: list = field(default_factory=list)

    @property
    def n_checked(self):
        return 0 if self.checked is None else int(self.checked.sum())

    @property
    def n_kinks(self):
        return 0 if self.kinks is None else int(self.kinks.sum())

    @property
    def n_failed(self):
        if self.failed is None:
            return 0 if self.ok else self.n_checked
        return int(self.failed.sum())

    def __bool__(self):
        return bool(self.ok)

    def __repr__(self):
        return (f"GradCheckResult(name={self.name!r}, ok={self.ok}, max_abs_error="
                f"{self.max_abs_error:.3g}, max_rel_error={self.max_rel_error:.3g}, "
                f"worst_index={self.worst_index}, hint={self.hint!r})")

    def summary(self):
        """One line: name, shape, verdict, coverage, errors."""
        shape = tuple(np.shape(self.numeric))
        total = int(np.prod(shape)) if shape else 1
        cover = f"{self.n_checked}/{total} entries" + (" (sampled)" if self.n_checked < total
                                                         else "")
        if self.checked is None:
            return f"{self.name} {shape}: FAILED ({self.hint.split(':')[0]})"
        verdict = "ok" if self.ok else f"FAILED, {self.n_failed} wrong"
        kinks = f", {self.n_kinks} at a kink" if self.n_kinks else ""
        return (f"{self.name} {shape}: {verdict} -- {cover}{kinks}, max abs error "
                f"{self.max_abs_error:.2e}, max rel error {self.max_rel_error:.2e}")

    def __str__(self):
        lines = [self.summary()]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        if not self.ok and self.checked is not None:
            lines.append(_worst_table(self))
        if self.n_kinks:
            lines.append(f"  {self.n_kinks} entr{'y' if self.n_kinks == 1 else 'ies'} at a "
                         "kink (non-differentiable point, e.g. ReLU at 0): the finite "
                         "difference straddles it, so they were not counted")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def _worst_table(r):
    err = np.where(r.checked & ~r.kinks, np.abs(r.analytic - r.numeric), -1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = np.where(err >= 0, err / np.maximum(r.threshold, TINY), -1.0)
    order = np.argsort(excess, axis=None)[::-1][:N_WORST]
    rows = ["    index              analytic          numeric    abs err    rel err  tol"]
    for fi in order:
        if excess.flat[fi] < 0:
            break
        a, n = r.analytic.flat[fi], r.numeric.flat[fi]
        rel = abs(a - n) / max(abs(a), abs(n), TINY)
        mark = "x" if r.failed.flat[fi] else " "
        idx = str(_index(fi, r.numeric.shape))
        rows.append(f"  {mark} {idx:<12} {a:>16.9g} {n:>16.9g} {abs(a - n):>10.2e} "
                    f"{rel:>10.2e}  {r.threshold.flat[fi]:.1e}")
    return "\n".join(rows)


def _evaluate(a, probe, flat, shape, *, name, rtol, atol, batch_size=None, overlap=None,
              directional=False):
    """Compare analytic ``a`` (full array) with the probed entries; build the result."""
    n_c = probe.central
    a_c = a.reshape(-1)[flat]
    rnd = probe.rounding
    # along a smooth f the four secant slopes grow evenly (steps of h/2 f''); a kink inside
    # the window puts the whole change into one step, rounding noise into random steps
    sl = probe.slopes
    steps = np.diff(sl, axis=1)
    jump = np.abs(steps).max(axis=1)
    unevenness = np.ptp(steps, axis=1)
    err = probe.error + unevenness / 4.0
    abs_err = np.abs(a_c - n_c)
    big = np.maximum(np.abs(a_c), np.abs(n_c))
    thr = atol + rtol * big + SAFETY * err
    gscale = float(big.max(initial=0.0))
    slack = atol + rtol * np.abs(sl).max(axis=1) + SAFETY * rnd
    between = (a_c >= sl.min(axis=1) - slack) & (a_c <= sl.max(axis=1) + slack)
    uneven = unevenness > 0.5 * jump
    kinky = uneven & (jump > np.maximum(KINK_NOISE * rnd, KINK_RTOL * gscale))
    at_kink = kinky & between
    # at a kink only the one-sided slopes mean anything; elsewhere the error estimate rules,
    # and noise-level unevenness is excused when a lies among the observed slopes
    fail = np.where(kinky, ~between, (abs_err > thr) & ~(uneven & between))

    def full(vals, fill, dtype=float):
        out = np.full(shape, fill, dtype=dtype)
        out.reshape(-1)[flat] = vals
        return out

    numeric = full(n_c, np.nan)
    counted = ~at_kink
    max_abs = float(abs_err[counted].max()) if counted.any() else 0.0
    # relative errors of entries the finite difference resolves to rtol; entries near its
    # noise floor are judged by the absolute rule only. big = 0 means a = n = 0 exactly (a
    # dead ReLU, an f that is 0 around x: err is 0 too): no relative error, and 0/0
    resolved = counted & (big > 0) & (SAFETY * err <= max(rtol, 1e-8) * big)
    if not resolved.any():
        resolved = counted & (big > SAFETY * err)
    max_rel = float((abs_err[resolved] / big[resolved]).max()) if resolved.any() else 0.0
    worst = _index(flat[counted][np.argmax(abs_err[counted])], shape) if counted.any() else None
    res = GradCheckResult(
        ok=not fail.any(), max_abs_error=max_abs, max_rel_error=max_rel, worst_index=worst,
        analytic=a, numeric=numeric, name=name, error_estimate=full(err, np.nan),
        threshold=full(thr, np.nan), checked=full(True, False, bool),
        kinks=full(at_kink, False, bool), failed=full(fail, False, bool))
    if not res.ok:
        res.hint = _diagnose(res, batch_size=batch_size, overlap=overlap,
                             directional=directional)
    return res


# ---------------------------------------------------------------------------------------
# hints
# ---------------------------------------------------------------------------------------
def _close(c, target, rel=1e-3):
    return abs(c - target) <= rel * abs(target)


def _factor_hint(c, batch_size=None, batch_guess=None):
    """Name a constant factor c in analytic = c * numeric, or None."""
    B = batch_size if batch_size else batch_guess
    why_B = ("the batch size" if batch_size else "x.shape[0] (the batch size, if x is a "
             "batch)")
    sign = "opposite sign and " if c < 0 else ""
    m = abs(c)
    if _close(c, -1.0):
        return ("opposite sign: analytic = -1 x numeric (check (x_hat - x) versus (x - x_hat), "
                "the sign of a subtracted term, or a gradient-ascent step)")
    if B and B > 1 and (_close(m, B) or _close(m, 1.0 / B)):
        both = " (also a factor of 2)" if B == 2 else ""
        if _close(m, B):
            return (f"{sign}off by the batch size: analytic = {c:.6g} x numeric and n = {B} is "
                    f"{why_B}{both}; npae's losses take the MEAN over the batch, so the gradient "
                    "carries 1/n: did you sum where the loss averages?")
        return (f"{sign}off by the batch size: analytic = numeric / {B} (n = {B} is {why_B})"
                f"{both}; divided by n once too often, or the loss sums while the gradient "
                "averages")
    if _close(m, 2.0):
        return (f"{sign}a factor of 2: analytic = {c:.6g} x numeric (a term counted twice, or "
                "d/dx x^2 = 2x where the objective has 1/2 x^2)")
    if _close(m, 0.5):
        return (f"{sign}a factor of 2: analytic = {c:.6g} x numeric, half the true value (a "
                "dropped 2 from d/dx x^2 = 2x, or an extra 1/2)")
    r = 1.0 / m
    if m > 2 and abs(m - round(m)) < 1e-3 * m:
        return (f"{sign}a constant factor: analytic = {c:.6g} x numeric, an integer: a sum "
                f"over {round(m)} items where a mean is taken (a batch or a window size?)")
    if m < 0.5 and abs(r - round(r)) < 1e-3 * r:
        return (f"{sign}a constant factor: analytic = numeric / {round(r)}: divided by "
                f"{round(r)} once too often (a batch or window size?)")
    return (f"{sign}a constant factor: analytic = {c:.6g} x numeric everywhere; the shape of "
            "the gradient is right, a scale is not (a learning rate, lambda, 1/n, 1/2?)")


def _fit_factor(a, n, thr):
    """c with a = c n within the thresholds, or None."""
    if a.size == 0:
        return None
    nn_ = float(np.dot(n, n))
    if nn_ == 0.0:
        return None
    c = float(np.dot(a, n)) / nn_
    if c == 0.0 or _close(c, 1.0, 1e-6):
        return None
    ok = np.abs(a - c * n) <= max(1.0, abs(c)) * thr + 1e-6 * np.abs(a)
    return c if ok.all() else None


def _runs(ids):
    ids = sorted(int(i) for i in ids)
    return ", ".join(str(i) for i in ids[:8]) + (", ..." if len(ids) > 8 else "")


def _diagnose(r, batch_size=None, overlap=None, directional=False):
    """The hint for a failed check, the first that the evidence supports.

    all zeros; a constant factor c (a = c n on every valid entry); transposed (square
    arrays); assignment instead of accumulation, only when ALL of: some entry inside
    ``overlap`` is wrong, every checked entry outside it is right, and at least one entry
    outside it is right with a nonzero gradient (|n| above its threshold) -- when every
    checked entry overlaps, or the outside ones carry no gradient, there is nothing to
    contrast and any mistake would "sit where uses overlap"; then the entries or
    rows/columns that are wrong; else no simple pattern.
    """
    valid = r.checked & ~r.kinks
    a, n, thr, fail = r.analytic[valid], r.numeric[valid], r.threshold[valid], r.failed[valid]
    shape = r.numeric.shape
    guess = shape[0] if (batch_size is None and len(shape) >= 2) else None
    if np.all(a == 0) and np.any(np.abs(n) > thr):
        return ("all zeros: the analytic gradient is 0 everywhere while the numeric one is "
                "not; nothing was written into it (backward skipped this parameter, wrote "
                "into another array, or zero_grad ran after backward)")
    c = _fit_factor(a, n, thr)
    if c is not None:
        return _factor_hint(c, batch_size, guess)
    if not directional and len(shape) == 2 and shape[0] == shape[1] and shape[0] > 1:
        both = r.checked & r.checked.T & ~r.kinks & ~r.kinks.T
        if both.any() and np.all(np.abs(r.analytic.T - r.numeric)[both]
                                 <= r.threshold[both]):
            return ("transposed: analytic.T equals the numeric gradient; for W of shape "
                    "(out, in) = (k, d), dL/dW = g^T x (out x in), not x^T g")
    if overlap is not None and not directional:
        ov = np.broadcast_to(np.asarray(overlap, dtype=bool), shape)[valid]
        # the evidence: right where uses do not meet (on entries with a gradient to get
        # right), wrong only where they do; with no such entry any mistake would fit
        evidence = ~ov & ~fail & (np.abs(n) > thr)
        if fail.any() and not fail[~ov].any() and evidence.any():
            frac = f"{int(fail.sum())} of {int(ov.sum())}"
            return ("assignment instead of accumulation: the errors sit exactly where uses "
                    f"overlap ({frac} overlapping entries wrong, every other entry right); "
                    "a gradient written with '=' where contributions meet keeps only the last "
                    "one: use '+='")
    if directional:
        return ("no constant factor explains the errors: the gradient is wrong in direction, "
                "not just scale (check entry by entry with check_gradient on a smaller case)")
    return _partial_hint(r, valid, batch_size, guess)


def _partial_hint(r, valid, batch_size, guess):
    fail_mask = r.failed
    n_fail, n_valid = int(fail_mask.sum()), int(valid.sum())
    shape = r.numeric.shape
    where = ""
    if n_fail < n_valid:
        idx = np.argwhere(fail_mask)
        if len(shape) >= 2:
            rows, cols = np.unique(idx[:, 0]), np.unique(idx[:, -1])
            if len(rows) < shape[0] and (len(rows) <= len(cols) or len(cols) == shape[-1]):
                where = (f"wrong only in row{'s' if len(rows) > 1 else ''} {_runs(rows)} "
                         f"(of {shape[0]}); the other rows are right")
            elif len(cols) < shape[-1]:
                where = (f"wrong only in column{'s' if len(cols) > 1 else ''} {_runs(cols)} "
                         f"(of {shape[-1]}); the other columns are right")
        elif len(shape) == 1:
            where = (f"wrong only at entr{'y' if n_fail == 1 else 'ies'} {_runs(idx[:, 0])} "
                     f"(of {shape[0]}); the others are right")
            if n_fail == 1 and idx[0, 0] in (0, shape[0] - 1):
                where += " (an end entry: an off-by-one loop bound?)"
        if not where:
            where = f"right on {n_valid - n_fail} of {n_valid} checked entries, wrong on {n_fail}"
    if not where:
        return ("no simple pattern (not a constant factor, sign, transpose or a subset of the "
                "entries): re-derive this gradient")
    a_f, n_f = r.analytic[fail_mask], r.numeric[fail_mask]
    if np.all(a_f == 0):
        return where + "; there the analytic gradient is 0 (a term or a mask missing there)"
    c = _fit_factor(a_f, n_f, r.threshold[fail_mask])
    if c is not None:
        return where + "; there " + _factor_hint(c, batch_size, guess)
    return where


def _terms_hint(a, term_numeric, thr, valid, assigned=None):
    """Explain a failing sum of named terms: which subset the analytic gradient matches, or
    which term enters with a wrong factor.

    None when the terms do not explain it, and also when every term is off alike (the
    whole gradient is c times the numeric one, c = 0 included): that is a constant-factor
    slip (sign, 2, n) or an empty gradient, which the whole-gradient hint names better.
    """
    names = list(term_numeric)
    if len(names) < 2:
        return None
    a, thr = a[valid], thr[valid]
    cols = {t: term_numeric[t][valid] for t in names}
    if not a.any() or _fit_factor(a, sum(cols.values()), thr) is not None:
        return None
    if len(names) <= 12:
        for r in range(1, len(names)):
            for S in itertools.combinations(names, r):
                s = sum(cols[t] for t in S)
                if np.all(np.abs(a - s) <= thr):
                    missing = [t for t in names if t not in S]
                    msg = (f"missing term: the analytic gradient equals the numeric gradient of "
                           f"{_quote(S)} alone; {_quote(missing)} "
                           f"{'is' if len(missing) == 1 else 'are'} missing")
                    if assigned:
                        msg += (f": assignment instead of accumulation: a backward wrote its "
                                f"term with '=' over the terms already accumulated, so only "
                                f"{_quote(S)} survived; use '+='")
                    elif assigned is None and len(S) == 1:
                        msg += (f". If the terms are accumulated into one array, an assignment "
                                f"('=') where '+=' belongs keeps only the last one written "
                                f"({_quote(S)}): assignment instead of accumulation")
                    else:
                        msg += " (never added into the gradient)"
                    return msg
    A = np.stack([cols[t] for t in names], axis=1)
    if A.shape[0] < len(names) or np.linalg.matrix_rank(A) < len(names):
        return None
    coef = np.linalg.lstsq(A, a, rcond=None)[0]
    if not np.all(np.abs(A @ coef - a) <= thr + 1e-6 * np.abs(a)):
        return None
    off = [(t, c) for t, c in zip(names, coef) if not _close(c, 1.0, 1e-4)]
    if not off or np.ptp(coef) <= 1e-4 * np.abs(coef).max():
        return None
    parts = [f"{_quote([t])} enters with factor {c:.6g}" for t, c in off]
    return "a term has the wrong factor: " + "; ".join(parts) + " (should be 1)"


def _quote(names):
    return " + ".join(f"'{t}'" for t in names)


# ---------------------------------------------------------------------------------------
# public checks
# ---------------------------------------------------------------------------------------
def _analytic(grad, x, name):
    a = grad(x) if callable(grad) else grad
    a = np.array(a, dtype=np.float64) if np.asarray(a).dtype.kind in "biuf" else np.asarray(a)
    if a.dtype.kind not in "f":
        raise TypeError(f"the analytic gradient of {name} must be a real array, got dtype "
                        f"{a.dtype}")
    return a


def _shape_mismatch(a, x_shape, numeric, name):
    msg = (f"shape mismatch: the analytic gradient has shape {a.shape} but {name} has shape "
           f"{x_shape}; a gradient has its parameter's shape")
    extra = ""
    if len(x_shape) == 2 and a.shape == x_shape[::-1]:
        extra = "; it looks transposed"
        if numeric is not None and np.allclose(a.T, numeric, rtol=1e-5, atol=1e-8):
            extra += " (and a.T matches the numeric gradient: return its transpose)"
    elif a.ndim == len(x_shape) + 1 and a.shape[1:] == tuple(x_shape):
        extra = (f"; it has an extra leading axis of length {a.shape[0]}: sum over the batch "
                 "axis (axis 0), e.g. g.sum(axis=0) for a bias")
        if numeric is not None and np.allclose(a.sum(axis=0), numeric, rtol=1e-5, atol=1e-8):
            extra += " (a.sum(axis=0) matches the numeric gradient)"
    elif a.size == int(np.prod(x_shape)):
        extra = "; it has the right number of entries: reshape it to the parameter's shape"
    return msg + extra


def check_gradient(f, grad, x, rtol=1e-6, atol=0.0, *, batch_size=None, overlap=None,
                   max_entries=MAX_ENTRIES, rng=None, step=STEP, name="x", upcast=False):
    """Check an analytic gradient against finite differences; return a ``GradCheckResult``.

    f
        scalar function of x. x is perturbed in place (and restored) when it is a float64
        array, so ``f`` may also close over it.
    grad
        the analytic gradient at x: an array, or a callable ``grad(x)``.
    rtol, atol
        pass rule per entry: |a - n| <= atol + rtol max(|a|, |n|) + 2 err, err being the
        finite difference's own error estimated from the pair (h, h/2) (module docstring).
    batch_size
        n, to recognise a gradient off by the batch size (else x.shape[0] is suggested).
    overlap
        boolean mask of entries where several uses/windows meet: errors confined to it,
        while the entries outside it (at least one with a nonzero gradient) are right, give
        the "assignment instead of accumulation" hint.
    max_entries, rng
        arrays larger than ``max_entries`` are checked on a random sample (``rng``, seed 0
        by default) that includes the largest analytic entry; ``None`` checks everything.
    step
        relative step h; ``upcast``: check a float64 copy of a float32 x (else Float32Error).
    """
    x = _prepare(x, name, upcast)
    a = _analytic(grad, x, name)
    rng = np.random.default_rng(0 if rng is None else rng)
    if a.shape != x.shape:
        flat = _select(x.size, max_entries, rng)
        probe = _probe(lambda: f(x), x, flat, step)
        numeric = np.full(x.shape, np.nan)
        numeric.reshape(-1)[flat] = probe.central
        return GradCheckResult(ok=False, max_abs_error=np.inf, max_rel_error=np.inf,
                               worst_index=None, analytic=a, numeric=numeric, name=name,
                               hint=_shape_mismatch(a, x.shape, numeric, name))
    check_finite(a, f"analytic gradient of {name}")
    flat = _select(x.size, max_entries, rng, a.reshape(-1))
    probe = _probe(lambda: f(x), x, flat, step)
    return _evaluate(a, probe, flat, x.shape, name=name, rtol=rtol, atol=atol,
                     batch_size=batch_size, overlap=overlap)


@dataclass(eq=False)
class ContractCheck:
    """One property of the Layer contract (zero upstream, repeatable backward, +=)."""
    name: str
    ok: bool
    message: str = ""

    def __str__(self):
        return f"{self.name}: {'ok' if self.ok else 'FAILED -- ' + self.message}"


@dataclass(eq=False)
class CheckReport:
    """Several named checks (parameters of a layer, terms of an objective) and contract
    checks. ``report["W"]`` is one ``GradCheckResult``; ``bool(report)`` is ``report.ok``."""
    title: str
    results: dict
    contract: list = field(default_factory=list)
    hint: str = ""

    @property
    def ok(self):
        return all(r.ok for r in self.results.values()) and all(c.ok for c in self.contract)

    @property
    def failed(self):
        """Names of the failing checks."""
        return ([k for k, r in self.results.items() if not r.ok]
                + [c.name for c in self.contract if not c.ok])

    def __getitem__(self, name):
        return self.results[name]

    def __bool__(self):
        return self.ok

    def __repr__(self):
        return f"CheckReport({self.title!r}, ok={self.ok}, failed={self.failed})"

    def __str__(self):
        lines = [f"{self.title}: {'ok' if self.ok else 'FAILED'}"]
        shown = [r.hint for r in self.results.values()] + [c.message for c in self.contract]
        if self.hint and not any(h and h in self.hint for h in shown):
            lines.append(f"  hint: {self.hint}")
        for r in self.results.values():
            text = str(r) if not r.ok or r.n_kinks or r.notes else r.summary()
            lines.extend("  " + ln for ln in text.splitlines())
        lines.extend(f"  contract: {c}" for c in self.contract)
        return "\n".join(lines)


def report(result):
    """The readable report of any result of this module (same as ``str(result)``)."""
    return str(result)


def check_terms(terms, x, grad=None, rtol=1e-6, atol=0.0, *, batch_size=None, overlap=None,
                max_entries=MAX_ENTRIES, rng=None, step=STEP, name="x", upcast=False):
    """Check an objective made of named terms, e.g. reconstruction + lam * penalty.

    terms
        dict name -> f_term or (f_term, grad_term); f_term(x) is scalar, grad_term is an
        array or callable. Terms that come with a gradient are checked one by one.
    grad
        the analytic gradient of the sum; by default the sum of the terms' gradients.

    The sum is checked too; when it fails, the report names the failing term, or says
    which terms the analytic gradient actually contains ("missing term: ... equals the
    numeric gradient of 'encoder' alone"), or which term has the wrong factor. A factor
    common to every term (sign, 2, n) is told as ``check_gradient`` tells it, as are
    failures the terms do not explain (``batch_size`` and ``overlap`` as there), so the
    report's hint is always the most specific one.
    """
    if not isinstance(terms, dict) or not terms:
        raise TypeError("terms must be a non-empty dict name -> f or (f, grad)")
    x = _prepare(x, name, upcast)
    rng = np.random.default_rng(0 if rng is None else rng)
    parts = {t: (v if isinstance(v, tuple) else (v, None)) for t, v in terms.items()}
    analytic = {t: _analytic(g, x, f"term {t!r}") for t, (_, g) in parts.items() if g is not None}
    if grad is not None:
        total_a = _analytic(grad, x, name)
    elif len(analytic) == len(parts):
        total_a = sum(analytic.values())
    else:
        raise ValueError("give grad= (the gradient of the sum) or a gradient for every term")
    if total_a.shape != x.shape:
        res = check_gradient(lambda v: sum(f(v) for f, _ in parts.values()), total_a, x,
                             name=f"{name} (sum)", max_entries=max_entries, rng=rng, step=step)
        return CheckReport(f"check_terms {name}", {"sum": res}, hint=res.hint)
    flat = _select(x.size, max_entries, rng, total_a.reshape(-1))
    probes = {t: _probe(lambda f=f: f(x), x, flat, step, f"term {t!r}")
              for t, (f, _) in parts.items()}
    kw = dict(rtol=rtol, atol=atol, batch_size=batch_size)
    results = {}
    for t, a in analytic.items():
        if a.shape != x.shape:
            results[t] = check_gradient(parts[t][0], a, x, name=f"term {t!r}")
        else:
            results[t] = _evaluate(a, probes[t], flat, x.shape, name=f"term {t!r}", **kw)
    total_probe = sum(list(probes.values())[1:], list(probes.values())[0])
    total = _evaluate(total_a, total_probe, flat, x.shape, name=f"{name} (sum)",
                      overlap=overlap, **kw)
    hint = ""
    wrong = [t for t, r in results.items() if not r.ok]
    if wrong:
        hint = "; ".join(f"term {t!r} is wrong ({results[t].hint})" for t in wrong)
        if not total.ok:
            total.hint = f"the sum fails because of term{'s' if len(wrong) > 1 else ''} " + \
                ", ".join(repr(t) for t in wrong)
    elif not total.ok:
        numeric = {t: _full(p.central, flat, x.shape) for t, p in probes.items()}
        th = _terms_hint(total_a, numeric, total.threshold, total.checked & ~total.kinks)
        if th:
            total.hint = th
        hint = total.hint
    results["sum"] = total
    return CheckReport(f"check_terms {name} ({' + '.join(parts)})", results, hint=hint)


def _full(vals, flat, shape):
    out = np.full(shape, np.nan)
    out.reshape(-1)[flat] = vals
    return out


def check_params(f, params, grads, rtol=1e-6, atol=0.0, *, batch_size=None,
                 max_entries=MAX_ENTRIES, rng=None, step=STEP, title="check_params"):
    """Check the gradients of a scalar ``f()`` with respect to several live arrays.

    f
        no-argument function returning the objective at the current values of ``params``
        (e.g. ``lambda: model.loss(X)``); each array is perturbed in place and restored.
    params
        dict name -> live float64 array (``model.parameters()``, ``layer.params``).
    grads
        dict name -> analytic gradient (``model.gradients(X)``), or a callable returning it.

    Sampled mode gives every array its own budget: arrays up to ``max_entries`` are checked
    fully, larger ones on ``max_entries`` random entries, so a bias is never crowded out by
    a large W.
    """
    grads = grads() if callable(grads) else grads
    rng = np.random.default_rng(0 if rng is None else rng)
    results = {}
    for k, p in params.items():
        results[k] = _check_live(f, p, grads.get(k), k, rng, rtol=rtol, atol=atol,
                                 batch_size=batch_size, max_entries=max_entries, step=step)
    return CheckReport(title, results)


def _check_live(f, p, g, name, rng, *, rtol, atol, batch_size, max_entries, step):
    if not (isinstance(p, np.ndarray) and p.dtype.kind == "f"):
        raise TypeError(f"parameter {name!r} must be a float ndarray, got "
                        f"{type(p).__name__}")
    if p.dtype != np.float64:
        raise Float32Error(_float32_message(f"parameter {name!r}", p.dtype))
    if g is None:
        return GradCheckResult(ok=False, max_abs_error=np.inf, max_rel_error=np.inf,
                               worst_index=None, analytic=np.zeros(0), numeric=np.zeros(0),
                               name=name, hint=f"no gradient for {name!r}: the gradients "
                               "dict has no entry of that name")
    a = _analytic(g, p, name)
    if a.shape != p.shape:
        return GradCheckResult(ok=False, max_abs_error=np.inf, max_rel_error=np.inf,
                               worst_index=None, analytic=a, numeric=np.full(p.shape, np.nan),
                               name=name, hint=_shape_mismatch(a, p.shape, None, name))
    flat = _select(p.size, max_entries, rng, a.reshape(-1))
    probe = _probe(f, p, flat, step, f"objective (perturbing {name!r})")
    return _evaluate(a, probe, flat, p.shape, name=name, rtol=rtol, atol=atol,
                     batch_size=batch_size)


def check_directional(f, grad, x, n_directions=10, rng=None, rtol=1e-6, atol=0.0, *,
                      batch_size=None, step=STEP, name="x", upcast=False):
    """Check <grad, v> against (f(x + h v) - f(x - h v)) / 2h for random unit directions v.

    Costs 4 evaluations of f per direction whatever the size of x, so it suits large
    parameters where entry-wise checks are too slow. A wrong gradient passes a random
    direction only with probability ~0 (its error would have to be orthogonal to v).
    The result's ``analytic``/``numeric`` are the directional derivatives, one per
    direction; the same pass rule, error estimate and kink test apply per direction.
    """
    check_param("n_directions", n_directions, kind="int", low=1)
    x = _prepare(x, name, upcast)
    a = _analytic(grad, x, name)
    if a.shape != x.shape:
        return GradCheckResult(ok=False, max_abs_error=np.inf, max_rel_error=np.inf,
                               worst_index=None, analytic=a, numeric=np.full(x.shape, np.nan),
                               name=name, hint=_shape_mismatch(a, x.shape, None, name))
    check_finite(a, f"analytic gradient of {name}")
    rng = np.random.default_rng(0 if rng is None else rng)
    V = rng.standard_normal((n_directions,) + x.shape)
    V /= np.sqrt((V.reshape(n_directions, -1) ** 2).sum(axis=1)).reshape(
        (-1,) + (1,) * x.ndim)
    x0 = x.copy()
    h = step * max(1.0, float(np.abs(x0).max()))
    mults = (1.0, -1.0, 0.5, -0.5)
    F = np.empty((n_directions, 4))
    try:
        f0 = _scalar(f(x))
        for d in range(n_directions):
            for m_i, m in enumerate(mults):
                np.add(x0, m * h * V[d], out=x)
                F[d, m_i] = _scalar(f(x), f"f(x + {m:g} h v_{d})")
    finally:
        x[...] = x0
    H = np.broadcast_to(h * np.array(mults), F.shape).copy()
    a_v = np.tensordot(V, a, axes=x.ndim)
    res = _evaluate(a_v, _Probe(F, H, f0), np.arange(n_directions), (n_directions,),
                    name=f"{name} (directional)", rtol=rtol, atol=atol,
                    batch_size=batch_size, directional=True)
    res.notes.append(f"{n_directions} random unit directions, h = {h:.1e}")
    return res


# ---------------------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------------------
def _walk(layer):
    yield layer
    for sub in getattr(layer, "layers", ()):
        yield from _walk(sub)


def _leaf_arrays(layer):
    """(dict, key) pairs that own each distinct parameter array of the tree."""
    owners = []
    for lay in _walk(layer):
        if getattr(lay, "layers", None) is not None:
            continue
        for k in lay.params:
            owners.append((lay.params, k))
    return owners


class _Upcast:
    """Temporarily swap float32 parameter arrays for float64 copies (shared arrays stay
    shared); restores the original arrays and gradients afterwards."""

    def __init__(self, layer):
        self.layer, self.saved, self.grads = layer, [], []

    def __enter__(self):
        copies = {}
        for d, k in _leaf_arrays(self.layer):
            arr = d[k]
            if arr.dtype != np.float64:
                new = copies.setdefault(id(arr), arr.astype(np.float64))
                self.saved.append((d, k, arr))
                d[k] = new
        for lay in _walk(self.layer):
            if getattr(lay, "layers", None) is None:
                self.grads.append((lay, dict(lay.grads)))
        return self

    def __exit__(self, *exc):
        for d, k, arr in self.saved:
            d[k] = arr
        for lay, g in self.grads:
            lay.grads.clear()
            lay.grads.update(g)
        return False


def _tied_uses(layer, array):
    from .nn.linear import TiedLinear
    return [t for t in _walk(layer)
            if isinstance(t, TiedLinear) and t.encoder.params.get("W") is array]


class _Untied:
    """Give TiedLinear ``t`` a private copy of the encoder's W, so one use of the shared
    array can be perturbed without the other."""

    def __init__(self, t):
        self.t = t

    def __enter__(self):
        enc = self.t.encoder
        stand = copy.copy(enc)
        stand.params = dict(enc.params)
        stand.params["W"] = enc.params["W"].copy()
        stand.grads = {k: np.zeros_like(v) for k, v in stand.params.items()}
        self.t.encoder = stand
        self.enc = enc
        return stand.params["W"]

    def __exit__(self, *exc):
        self.t.encoder = self.enc
        return False


def _use_terms(layer, fun, array, flat, step, name):
    """Numeric gradient of each use of a tied W: the encoder's and each decoder's."""
    ties = _tied_uses(layer, array)
    if not ties:
        return None
    terms = {}
    with _Stack([_Untied(t) for t in ties]):
        terms[f"{name} (encoder use)"] = _probe(fun, array, flat, step).central
    for i, t in enumerate(ties):
        with _Untied(t) as W_copy:
            label = "TiedLinear decoder use, W* = W^T"
            terms[label if len(ties) == 1 else f"{label} #{i}"] = _probe(
                fun, W_copy, flat, step).central
    return terms


class _Stack:
    def __init__(self, managers):
        self.managers = managers

    def __enter__(self):
        for m in self.managers:
            m.__enter__()

    def __exit__(self, *exc):
        for m in reversed(self.managers):
            m.__exit__(*exc)
        return False


def check_layer(layer, x, rng=None, rtol=1e-6, atol=0.0, *, max_entries=MAX_ENTRIES,
                step=STEP, upcast=False, contract=True):
    """Check every gradient of an npae ``Layer`` (also ``Sequential`` and tied nets).

    With a random upstream gradient dout (standard normal, never all ones) the objective is
    L = sum(dout * layer.forward(x)); its analytic gradients are what ``backward(dout)``
    returns (dL/dx) and writes into ``layer.grads`` after ``zero_grad``. Checked: dL/dx and
    every array of ``layer.params`` (sampled per array above ``max_entries``). The contract
    checks (``contract=True``): a zero dout gives zero gradients; backward leaves dout
    unchanged; a second backward after one forward returns the same dL/dx and, without
    zero_grad, exactly doubles every parameter gradient (accumulation, ``+=``).

    A tied W (``TiedLinear``) lives in the encoder's params; when its check fails, the
    encoder's and the decoder's uses are differentiated separately to name a missing term.
    ``rng`` (seed 0 by default) draws dout and the samples. On return the layer's grads are
    zero and its cache holds forward(x).
    """
    x = _prepare(x, "x", upcast).copy()  # the layer never sees the caller's array
    rng = np.random.default_rng(0 if rng is None else rng)
    f32 = [k for k, p in layer.params.items() if p.dtype != np.float64]
    if f32 and not upcast:
        raise Float32Error(_float32_message(f"parameter {f32[0]!r} of {type(layer).__name__}",
                                            layer.params[f32[0]].dtype))
    if f32:
        warnings.warn(f"checking float64 copies of the float32 parameters {f32}: this tests "
                      "the maths, not the float32 rounding", UserWarning, stacklevel=2)
    with _Upcast(layer):
        return _check_layer(layer, x, rng, rtol=rtol, atol=atol, max_entries=max_entries,
                            step=step, contract=contract)


def _check_layer(layer, x, rng, *, rtol, atol, max_entries, step, contract):
    out = np.asarray(layer.forward(x))
    dout = rng.standard_normal(out.shape)
    batch = x.shape[0] if x.ndim >= 2 else None
    layer.zero_grad()
    layer.forward(x)
    dx = np.array(layer.backward(dout.copy()), dtype=np.float64)  # a copy: backward may
    # (wrongly) modify its argument, which the contract checks below must still see
    grads = {k: np.array(v, dtype=np.float64) for k, v in layer.grads.items()}
    params = layer.params

    def L():
        return np.vdot(dout, layer.forward(xp))

    xp = x.copy()
    checks, assigned = _contract_checks(layer, x, dout) if contract else ([], None)
    kw = dict(rtol=rtol, atol=atol, batch_size=batch, max_entries=max_entries, step=step)
    results = {"x": _check_live(L, xp, dx, "dL/dx", rng, **kw)}
    for k, p in params.items():
        res = _check_live(L, p, grads.get(k), k, rng, **kw)
        if not res.ok and res.checked is not None:
            flat = np.flatnonzero(res.checked)
            terms = _use_terms(layer, L, p, flat, step, k)
            if terms:
                th = _terms_hint(res.analytic, {t: _full(v, flat, p.shape)
                                                for t, v in terms.items()},
                                 res.threshold, res.checked & ~res.kinks,
                                 assigned=None if assigned is None else k in assigned)
                if th:
                    res.hint = th
        results[k] = res
    layer.zero_grad()
    layer.forward(x)
    title = f"check_layer {type(layer).__name__} (dout ~ N(0, 1), batch {batch})"
    failed = [r for r in results.values() if not r.ok]
    hint = ""
    if failed:
        hint = f"{failed[0].name}: {failed[0].hint}"
    elif any(not c.ok for c in checks):
        hint = next(c.message for c in checks if not c.ok)
    return CheckReport(title, results, checks, hint)


def _contract_checks(layer, x, dout):
    checks = []
    # 1. zero upstream gradient -> zero gradients
    layer.zero_grad()
    layer.forward(x)
    dx0 = np.asarray(layer.backward(np.zeros_like(dout)))
    bad = [f"dL/dx (max |.| {np.abs(dx0).max():.2e})"] if np.any(dx0 != 0) else []
    bad += [f"{k} (max |.| {np.abs(g).max():.2e})" for k, g in layer.grads.items()
            if np.any(g != 0)]
    checks.append(ContractCheck(
        "zero upstream gradient gives zero gradients", not bad,
        "with dout = 0 backward produced nonzero " + ", ".join(bad) + ": it adds something "
        "that does not depend on dout (a penalty or weight decay inside backward? a stale "
        "gradient not cleared by zero_grad?)"))
    # 2. two backward passes after one forward: same dL/dx, gradients exactly doubled
    layer.zero_grad()
    layer.forward(x)
    d_in = dout.copy()
    dx1 = np.array(layer.backward(d_in), dtype=np.float64)
    changed = not np.array_equal(d_in, dout)
    g1 = {k: np.array(v) for k, v in layer.grads.items()}
    dx2 = np.array(layer.backward(dout.copy()), dtype=np.float64)
    g2 = {k: np.array(v) for k, v in layer.grads.items()}
    checks.append(ContractCheck(
        "backward leaves its argument dout unchanged", not changed,
        "backward modified dout in place (e.g. dout *= mask); the caller's array is "
        "corrupted: compute a new array instead"))
    same = _allclose(dx2, dx1)
    checks.append(ContractCheck(
        "a second backward after one forward returns the same dL/dx", same,
        f"dL/dx differs by up to {np.abs(dx2 - dx1).max():.2e} on the second call: backward "
        "modifies its cache in place (e.g. h *= 1 - h on the cached output)"))
    bad, assigned = [], []
    for k in g1:
        if k not in g2 or _allclose(g2[k], 2 * g1[k]):
            continue
        bad.append(k)
        if np.any(g1[k] != 0) and _allclose(g2[k], g1[k]):
            assigned.append(k)
    msg = ""
    if bad:
        msg = (f"after two backward passes without zero_grad, {', '.join(bad)} "
               "is not twice the gradient of one pass")
        if assigned:
            msg += (f"; {', '.join(assigned)} equals a single pass: assignment instead of "
                    "accumulation: some backward writes its gradient with '=' (or replaces the "
                    "array) where the contract says '+='; for a shared (tied) weight this also "
                    "drops the other use's term whenever the assigning layer runs last")
    checks.append(ContractCheck("gradients accumulate (two backward passes give twice one)",
                                not bad, msg))
    return checks, assigned


def _allclose(u, v):
    scale = max(float(np.abs(u).max(initial=0.0)), float(np.abs(v).max(initial=0.0)), TINY)
    return u.shape == v.shape and bool(np.all(np.abs(u - v) <= 1e-10 * scale))
