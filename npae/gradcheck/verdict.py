"""The verdict: result classes and the pass rule (with its treatment of kinks).

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
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .hints import _diagnose
from .numeric import TINY, _index

__all__ = ["GradCheckResult", "CheckReport", "ContractCheck", "report"]

#: multiplies the error estimate in the pass rule
SAFETY = 2.0
#: a kink's jump in slope must exceed this many rounding-error units and this fraction of
#: the largest gradient entry to be reported (smaller uneven steps are rounding noise)
KINK_NOISE = 10.0
KINK_RTOL = 1e-5
N_WORST = 5


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



def _full(vals, flat, shape):
    out = np.full(shape, np.nan)
    out.reshape(-1)[flat] = vals
    return out

