"""The verdict: the result classes and the pass rule.

The pass rule (``check_gradient``)
    numeric n_i = D(h) with h = 1e-6 * max(1, |x_i|). Each entry is also probed at h/2, and
    the pair gives an estimate of the error of n_i itself:

        err_i = 4/3 |D(h) - D(h/2)|  +  8 eps max|f| / h  +  spread_i / 4
                (truncation: D(h) - D(h/2) = 3/4 c h^2 when D(h) = g + c h^2)
                                       (rounding of f(x +- h), a floor the pair may miss)
                                                           (observed noise, see ``kinks``)

    An entry passes when |a_i - n_i| <= atol + rtol max(|a_i|, |n_i|) + 2 err_i, so the
    tolerance adapts to how well the finite difference is known at that entry instead of one
    loose global tolerance. Defaults rtol = 1e-6, atol = 0: for smooth functions the errors
    of a correct gradient are ~1e-9 relative, a wrong one is off by O(1). Entries whose
    window straddles a kink are re-probed and, if truly at the kink, bounded and checked
    jointly (module ``kinks``).

The result (``GradCheckResult``)
    ``status`` is one of
        "ok"            every checked entry passed and at least one was checked exactly;
        "wrong"         some entry (or joint check at a kink) failed, or the shape is wrong;
        "inconclusive"  nothing failed but every checked entry sits at a kink, so nothing
                        was verified exactly: move x off the kinks and check again.
    ``ok`` is ``status == "ok"`` and ``bool(result)`` is ``ok``: "inconclusive" is falsy.
    ``hint`` says why (for "wrong" and "inconclusive"); ``n_exact`` / ``n_bounded`` count
    the entries checked exactly / only bounded at a kink.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .answers import float32_numbers, float32_rounding
from .hints import _diagnose, _float32_hint, _inconclusive_hint
from .kinks import PYTORCH_CONVENTION, check_joint, kink_shape, refine
from .numeric import STEP, TINY, _index

__all__ = ["GradCheckResult", "CheckReport", "ContractCheck", "report", "check_tolerances"]

#: multiplies the error estimate in the pass rule
SAFETY = 2.0
#: the largest rtol a check accepts: above it a factor of 1.1 or a transposed gradient
#: could pass, and the check no longer tells a right gradient from a wrong one
RTOL_MAX = 0.1
#: atol may not reach this fraction of the gradient's own size (max |numeric| where the
#: finite difference resolves it), for the same reason
ATOL_FRACTION = 0.1
N_WORST = 5
STATUSES = ("ok", "wrong", "inconclusive")


@dataclass(eq=False)
class GradCheckResult:
    """Outcome of checking one gradient array. ``bool(result)`` is ``result.ok``.

    status, ok
        "ok", "wrong" or "inconclusive" (module docstring); ``ok`` is ``status == "ok"``.
    hint
        why it is wrong or inconclusive, from the evidence ("" when ok).
    numeric, error_estimate, threshold
        arrays of x's shape, NaN at entries that were not checked (sampled mode); at
        entries near a kink they come from the finest step used.
    checked, kinks, near_kinks, failed
        boolean masks of x's shape: checked; at a kink (only bounded); near a kink
        (re-probed at smaller steps, then checked exactly); failed (kink_failed: failed
        because of a kink: bound, near-kink value or joint check).
    joint
        the joint checks of the entries at a kink (``kinks.Joint``).
    n_checked, n_exact, n_bounded, n_kinks, n_failed
        counts; n_exact + n_bounded = n_checked, n_kinks = n_bounded.
    max_abs_error, max_rel_error, worst_index
        over the entries checked exactly; ``max_rel_error`` over entries the finite
        difference resolves to rtol (twice its error estimate below rtol max(|a|, |n|));
        entries near its noise floor, where a relative error means nothing, are judged by
        the absolute rule only.
    extra_evals
        evaluations of f spent on kinks (re-probing and joint checks); 0 for smooth f.
    answer_float32
        the analytic values are float32 numbers (see ``hints``).
    x
        the point checked (a copy), when the check had it as an array of the gradient's
        shape; the structured diagnosis (``diagnose``) reads it.
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
    status: str = ""
    near_kinks: np.ndarray | None = None
    kink_failed: np.ndarray | None = None
    joint: list = field(default_factory=list)
    extra_evals: int = 0
    finest_step: float = 0.0
    answer_float32: bool = False
    x: np.ndarray | None = None

    def __post_init__(self):
        if not self.status:
            self.status = "ok" if self.ok else "wrong"
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        self.ok = self.status == "ok"

    @property
    def n_checked(self):
        return 0 if self.checked is None else int(self.checked.sum())

    @property
    def n_kinks(self):
        return 0 if self.kinks is None else int(self.kinks.sum())

    @property
    def n_bounded(self):
        return self.n_kinks

    @property
    def n_exact(self):
        return self.n_checked - self.n_kinks

    @property
    def n_near_kinks(self):
        return 0 if self.near_kinks is None else int(self.near_kinks.sum())

    @property
    def n_failed(self):
        if self.failed is None:
            return 0 if self.ok else self.n_checked
        return int(self.failed.sum())

    def __bool__(self):
        return bool(self.ok)

    def __repr__(self):
        return (f"GradCheckResult(name={self.name!r}, status={self.status!r}, max_abs_error="
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
        verdict = {"ok": "ok", "inconclusive": "INCONCLUSIVE"}.get(
            self.status, f"FAILED, {self.n_failed} wrong" if self.n_failed else
            "FAILED, float32 rounding" if self.answer_float32 else "FAILED")
        kinks = f", {self.n_kinks} at a kink" if self.n_kinks else ""
        return (f"{self.name} {shape}: {verdict} -- {cover}{kinks}, max abs error "
                f"{self.max_abs_error:.2e}, max rel error {self.max_rel_error:.2e}")

    def __str__(self):
        lines = [self.summary()]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        if self.status == "wrong" and self.checked is not None:
            lines.append(_worst_table(self))
        if self.n_kinks or self.n_near_kinks:
            lines.extend("  " + ln for ln in _kink_lines(self))
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def _kink_lines(r):
    n, m = r.n_kinks, r.n_near_kinks
    out = [f"checked exactly: {r.n_exact} entr{'y' if r.n_exact == 1 else 'ies'}"
           + (f" ({m} near a kink, re-probed with steps down to {r.finest_step:.0e})"
              if m else "")
           + f"; only bounded: {n} at a kink"]
    if n:
        out.append(f"{n} entr{'y' if n == 1 else 'ies'} at a kink (non-differentiable point, "
                   "e.g. ReLU at 0, |.| at 0, a tie in a max): the finite difference "
                   "straddles it at every usable step, so only bounds were checked there "
                   "(the analytic value lies between the one-sided slopes)")
        judged = [j for j in r.joint if j.smooth]
        if judged:
            bad = sum(not j.ok for j in judged)
            out.append(f"jointly: {len(judged)} direction{'s' if len(judged) > 1 else ''} "
                       "that keep the ties tied checked exactly"
                       + (f", {bad} inconsistent" if bad else ", consistent"))
        out.append(PYTORCH_CONVENTION)
    return out


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


def check_tolerances(rtol, atol):
    """Refuse a tolerance that is not a number, NaN, infinite, negative or too loose to
    tell a wrong gradient from a right one: a ValueError naming it, its value and the
    allowed range (a NaN would make every comparison false and pass everything)."""
    for name, value, high in (("rtol", rtol, RTOL_MAX), ("atol", atol, None)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                             np.floating)):
            raise TypeError(f"{name} must be a real number, got {value!r} "
                            f"({type(value).__name__})")
        v = float(value)
        allowed = f"[0, {high}]" if high is not None else "[0, inf) (finite)"
        if not np.isfinite(v) or v < 0 or (high is not None and v > high):
            raise ValueError(f"{name}={value!r} is not allowed: it must be a finite number in "
                             f"{allowed}" + (f"; above {high} a check could pass a wrong "
                                             "gradient (a factor 1.1, a transpose)"
                                             if high is not None else ""))


def _check_atol_scale(atol, n_c, err):
    """atol below ATOL_FRACTION of the gradient's size, where the finite difference
    resolves that size (a gradient at its noise floor leaves atol free)."""
    if atol <= 0 or n_c.size == 0:
        return
    scale = float(np.abs(n_c).max())
    if scale > 4.0 * SAFETY * float(err.max(initial=0.0)) and atol >= ATOL_FRACTION * scale:
        raise ValueError(f"atol={atol!r} is not allowed here: it must lie in [0, "
                         f"{ATOL_FRACTION * scale:.3g}), below {ATOL_FRACTION} times the "
                         f"gradient's own size (max |numeric| = {scale:.3g}); a larger atol "
                         "passes wrong gradients")


def _between(a_c, probe, rtol, atol):
    """a lies among the probe's secant slopes (within rounding)."""
    sl = probe.slopes
    slack = atol + rtol * np.abs(sl).max(axis=1) + SAFETY * probe.rounding
    return (a_c >= sl.min(axis=1) - slack) & (a_c <= sl.max(axis=1) + slack)


def _evaluate(a, probe, flat, shape, *, name, rtol, atol, batch_size=None, overlap=None,
              directional=False, prober=None, values=None, rng=None, step=STEP, a_c=None,
              answer_float32=False, x=None, fun=None):
    """Compare analytic ``a`` (full array) with the probed entries; build the result.

    ``prober`` (a ``kinks.Prober``, or any object with its ``entries``) re-probes entries
    that show a kink; without it they are judged at step h alone. ``values`` (x at the
    checked entries) groups tied entries for the joint check, which needs ``prober.direction``.
    ``a_c``: the analytic values to compare, when they are not ``a`` at ``flat``.
    """
    a_c = a.reshape(-1)[flat] if a_c is None else np.asarray(a_c, dtype=float)
    gscale = float(np.maximum(np.abs(a_c), np.abs(probe.central)).max(initial=0.0))
    # along a smooth f the four secant slopes grow evenly (steps of h/2 f''); a kink inside
    # the window puts the whole change into one step, rounding noise into random steps
    kinky, jump, unevenness, rough = kink_shape(probe, gscale)
    first = probe
    level = np.zeros(len(a_c), dtype=int)
    near = np.zeros(len(a_c), dtype=bool)
    evals0 = prober.n_evals if prober is not None else 0
    # re-probe what shows a kink, and what is rough and would fail (several kinks in one
    # window); a smooth f that passes costs nothing more
    redo = kinky | (rough & (np.abs(a_c - probe.central) > atol + rtol * np.maximum(
        np.abs(a_c), np.abs(probe.central)) + SAFETY * (probe.error + unevenness / 4.0)))
    if prober is not None and redo.any():
        probe, a_c, level, near = refine(prober, probe, a_c, np.flatnonzero(redo), gscale,
                                         step, jump)
        kinky, jump, unevenness, _ = kink_shape(probe, gscale)
    n_c = probe.central
    err = probe.error + unevenness / 4.0
    abs_err = np.abs(a_c - n_c)
    big = np.maximum(np.abs(a_c), np.abs(n_c))
    _check_atol_scale(atol, n_c, err)
    thr = atol + rtol * big + SAFETY * err
    between = _between(a_c, probe, rtol, atol)
    if first is not probe:  # at a kink, the first probe's slopes count too: they carry the
        # least rounding (kinks module)
        between |= kinky & _between(a_c, first, rtol, atol)
    uneven = unevenness > 0.5 * jump
    at_kink = kinky & between
    # at a kink only the one-sided slopes mean anything; elsewhere the error estimate rules,
    # and noise-level unevenness is excused when a lies among the observed slopes
    fail = np.where(kinky, ~between, (abs_err > thr) & ~(uneven & between))
    kink_fail = fail & (kinky | near)
    joint = []
    if (prober is not None and values is not None and hasattr(prober, "direction")
            and at_kink.sum() >= 2):
        joint = check_joint(prober, a.reshape(-1), values, np.flatnonzero(at_kink),
                            np.random.default_rng(0 if rng is None else rng), rtol=rtol,
                            atol=atol, gscale=gscale, step=step, safety=SAFETY)
        pos = {int(fi): j for j, fi in enumerate(flat)}
        for jc in joint:
            if not jc.ok:
                rows = [pos[int(np.ravel_multi_index(e, shape))] for e in jc.entries]
                fail[rows] = kink_fail[rows] = True

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
    status = "wrong" if fail.any() else ("inconclusive" if at_kink.all() else "ok")
    exact = ~at_kink & ~kinky & ~near
    f32 = (not directional and exact.any()
           and float32_rounding(a_c[exact], n_c[exact], err[exact],
                                None if values is None else np.asarray(values)[exact]))
    if f32:  # one fixed verdict, whether or not the rounding fell inside the tolerance
        status, answer_float32 = "wrong", True
    res = GradCheckResult(
        ok=status == "ok", status=status, max_abs_error=max_abs, max_rel_error=max_rel,
        worst_index=worst, analytic=a, numeric=numeric, name=name,
        error_estimate=full(err, np.nan), threshold=full(thr, np.nan),
        checked=full(True, False, bool), kinks=full(at_kink, False, bool),
        failed=full(fail, False, bool), near_kinks=full(near, False, bool),
        kink_failed=full(kink_fail, False, bool), joint=joint,
        extra_evals=(prober.n_evals - evals0) if prober is not None else 0,
        finest_step=step / 10.0 ** int(level.max(initial=0)), answer_float32=answer_float32)
    if x is not None and not directional and np.shape(x) == tuple(shape):
        res.x = np.array(x, dtype=np.float64)   # the rules of ``diagnose`` read f's point
    if f32:
        res.hint = _float32_hint(res, exact=float32_numbers(a_c))
    elif status == "wrong":
        res.hint = _diagnose(res, batch_size=batch_size, overlap=overlap,
                             directional=directional)
    elif status == "inconclusive":
        res.hint = _inconclusive_hint(res, directional=directional)
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
    def status(self):
        """"wrong" if any check failed, else "inconclusive" if any check is, else "ok"."""
        if self.failed:
            return "wrong"
        return "inconclusive" if self.inconclusive else "ok"

    @property
    def ok(self):
        return self.status == "ok"

    @property
    def failed(self):
        """Names of the failing checks."""
        return ([k for k, r in self.results.items() if r.status == "wrong"]
                + [c.name for c in self.contract if not c.ok])

    @property
    def inconclusive(self):
        """Names of the checks that verified nothing (every entry at a kink)."""
        return [k for k, r in self.results.items() if r.status == "inconclusive"]

    def __getitem__(self, name):
        return self.results[name]

    def __bool__(self):
        return self.ok

    def __repr__(self):
        return (f"CheckReport({self.title!r}, status={self.status!r}, "
                f"failed={self.failed})")

    def __str__(self):
        head = {"ok": "ok", "wrong": "FAILED", "inconclusive": "INCONCLUSIVE"}[self.status]
        lines = [f"{self.title}: {head}"]
        shown = [r.hint for r in self.results.values()] + [c.message for c in self.contract]
        if self.hint and not any(h and h in self.hint for h in shown):
            lines.append(f"  hint: {self.hint}")
        for r in self.results.values():
            text = str(r) if not r.ok or r.n_kinks or r.n_near_kinks or r.notes else \
                r.summary()
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

