"""The diagnosis of a failed check: the hint that says *why* a gradient is wrong.

Hints (``GradCheckResult.hint``), given only where the evidence supports them: shape mismatch,
all zeros, a constant factor (2, 1/2, -1, the batch size n, 1/n, any other c), transposed,
errors only where uses overlap while entries outside the overlap are right (assignment
instead of accumulation, with ``overlap=``), wrong in only some rows/columns/entries, and for objectives made of named terms
(``check_terms``, tied weights in ``check_layer``) the missing or mis-scaled term -- also
when the answer is all zeros because the one term it holds is 0 on these inputs (a tied W
with an input column of zeros), and never a "wrong factor" fitted to as few entries as there
are terms.

At kinks the hint names the kink and the entries, never a factor fitted to central
differences that average two slopes: wrong near a kink (re-probed, smooth at a smaller
step: a threshold or tie rule that is off), wrong at a kink (outside the one-sided slopes),
jointly wrong (tied maxima that each get the whole upstream gradient). When every entry sits
at a kink the check is inconclusive and the hint says so.

float32 answers
    An answer computed in float32 (its values are float32 numbers, even if returned as
    float64) differs from float64 finite differences by float32 rounding, ~1e-7 to 1e-4 of
    its largest entry, whatever the maths. When every difference is of that size (at most
    ``F32_RTOL`` = 1e-3 of the largest entry) the hint is one message: the answer is float32,
    the check needs float64. Larger errors get the usual hint, with the float32 remark added.
"""
from __future__ import annotations

import itertools

import numpy as np

from .answers import float32_numbers
from .diagnose import describe, structured_hint

#: an answer in float32 whose errors stay below this fraction of its largest entry is told
#: "float32", not wrong maths
F32_RTOL = 1e-3


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
    if r.answer_float32:
        h = _float32_hint(r)
        if h:
            return h
    kf = r.kink_failed if r.kink_failed is not None else np.zeros_like(r.failed)
    # entries failing AT a kink: their central difference averages two slopes, no factor
    # or pattern can be read from it
    valid = r.checked & ~r.kinks & ~(kf & ~r.near_kinks if r.near_kinks is not None else kf)
    a, n, thr, fail = r.analytic[valid], r.numeric[valid], r.threshold[valid], r.failed[valid]
    shape = r.numeric.shape
    guess = shape[0] if (batch_size is None and len(shape) >= 2) else None
    if kf.any() and not (r.failed & ~kf).any():
        near_only = r.near_kinks is not None and not (kf & ~r.near_kinks).any()
        c = _fit_factor(a, n, thr) if near_only and valid.sum() >= 2 else None
        return _factor_hint(c, batch_size, guess) if c is not None else _kink_hint(r)
    if r.answer_float32:  # a pattern is read through float32 rounding
        thr = np.maximum(thr, F32_RTOL * float(np.abs(n).max(initial=0.0)))
    args = (r, valid, a, n, thr, fail, shape, guess, batch_size, overlap, directional)
    if kf.any():
        # a pattern of the whole gradient (sign, factor, transpose) comes first; otherwise
        # the kink does: a threshold off near a kink also fails entries whose window misses it
        strong = _diagnose_smooth(*args, partial=False)
        if strong:
            hint = strong + "; also " + _kink_hint(r)
        else:
            where = _partial_hint(r, valid, batch_size, guess)
            hint = _kink_hint(r) + ("" if where.startswith("no simple pattern") else
                                    "; in all: " + where)
    else:
        hint = _diagnose_smooth(*args)
    if r.answer_float32:
        hint += ("; note: the answer is float32 (its values are float32 numbers): compute it "
                 "in float64, the check needs float64")
    return hint


def _diagnose_smooth(r, valid, a, n, thr, fail, shape, guess, batch_size, overlap,
                     directional, partial=True):
    """The whole-gradient patterns, then (``partial``) the wrong entries, rows, columns."""
    if np.all(a == 0) and np.any(np.abs(n) > thr):
        return ("all zeros: the analytic gradient is 0 everywhere while the numeric one is "
                "not; nothing was written into it (backward skipped this parameter, wrote "
                "into another array, or zero_grad ran after backward)")
    c = _fit_factor(a, n, thr)
    if c is not None and (np.count_nonzero(n) >= 2 or _named_factor(c, batch_size, guess)):
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
    if not directional:
        found = structured_hint(r.analytic, r.numeric, r.threshold, valid, r.x)
        if found:
            return found
    if not partial:
        return None
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
        seen = describe(r.analytic, r.numeric, r.threshold, valid)
        return seen or ("no simple pattern (not a constant factor, sign, transpose or a "
                        "subset of the entries): re-derive this gradient")
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
    if len(names) <= 12:
        for r in range(1, len(names)):
            for S in itertools.combinations(names, r):
                s = sum(cols[t] for t in S)
                if np.all(np.abs(a - s) <= thr):
                    missing = [t for t in names if t not in S]
                    if not a.any() and not np.any(np.abs(sum(cols[t] for t in missing))
                                                  > thr):
                        continue  # every term is 0 here: nothing to tell apart
                    zero = (" (which is 0 on these inputs, so the answer is all zeros)"
                            if not a.any() else "")
                    msg = (f"missing term: the analytic gradient equals the numeric gradient of "
                           f"{_quote(S)} alone{zero}; {_quote(missing)} "
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
    if not a.any() or _fit_factor(a, sum(cols.values()), thr) is not None:
        return None  # every term off alike: the whole-gradient hint names it better
    A = np.stack([cols[t] for t in names], axis=1)
    # a factor per term needs more entries than terms, or any answer "fits"
    if A.shape[0] < len(names) + 2 or np.linalg.matrix_rank(A) < len(names):
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
    elif a.ndim == len(x_shape):
        extra = ("; it looks like the gradient of another variable (the wrong variable: "
                 "dL/dX, the input's gradient, returned where dL/dW is asked? dL/dW = g^T X "
                 "has W's shape)")
    return msg + extra


def _named_factor(c, batch_size, guess):
    """c is one of the factors a hint can name (-1, 2, 1/2, n, 1/n, an integer or 1/integer)."""
    m = abs(c)
    B = batch_size if batch_size else guess
    named = [1.0, 2.0, 0.5] + ([B, 1.0 / B] if B and B > 1 else [])
    return (any(_close(m, t) for t in named) or (m > 2 and abs(m - round(m)) < 1e-3 * m)
            or (0 < m < 0.5 and abs(1 / m - round(1 / m)) < 1e-3 / m))


def _float32_values(a):
    """True when the values of ``a`` are float32 numbers: an answer computed in float32 and
    cast back. Short numbers (0, 0.5, 3) are float32 numbers too, so a few entries must need
    more bits than float16's."""
    a = np.asarray(a)
    if a.dtype.kind == "f" and a.dtype.itemsize < 8:
        return True
    return float32_numbers(a)


def _float32_hint(r, exact=True):
    """The one float32 message; None when the errors are larger than float32 rounding."""
    valid = r.checked & ~r.kinks
    a, n = r.analytic[valid], r.numeric[valid]
    if a.size == 0:
        return None
    scale = max(float(np.abs(n).max()), float(np.abs(a).max()))
    dev = float(np.abs(a - n).max()) / scale if scale > 0 else np.inf
    if dev > F32_RTOL:
        return None
    how = ("its values are float32 numbers" if exact else
           "its values are float64 but carry float32's rounding (computed in float32 "
           "somewhere, then cast back)")
    return ("the answer is float32: " + how + ", and they differ from the float64 finite "
            f"differences by up to {dev:.1e} of the largest entry, the size of float32 "
            "rounding, not of a mistake in the maths. float32 is refused whatever the "
            "seed: the check needs float64. Compute the gradient in float64 (float64 "
            "inputs, no astype(np.float32), npae layers built with dtype=np.float64) and "
            "check again")


def _entries(mask, limit=5):
    idx = [tuple(int(i) for i in e) for e in np.argwhere(mask)]
    text = ", ".join(str(e if len(e) > 1 else e[0]) for e in idx[:limit])
    return f"entr{'y' if len(idx) == 1 else 'ies'} {text}" + (", ..." if len(idx) > limit
                                                             else "")


def _kink_hint(r):
    """Name the kink and the entries of a failure at or near one."""
    kf = r.kink_failed
    near = kf & r.near_kinks
    bad_joint = [j for j in r.joint if not j.ok]
    in_joint = np.zeros_like(kf)
    for j in bad_joint:
        for e in j.entries:
            in_joint[e] = True
    at = kf & ~r.near_kinks & ~in_joint
    parts = []
    if near.any():
        fi = np.flatnonzero(near)[0]
        parts.append(
            f"wrong near a kink: at {_entries(near)} a kink of f (ReLU at 0, |.| at 0, a tie "
            "or near-tie in a max) lies within the finite-difference step but not at x; "
            f"re-probed with steps down to {r.finest_step:.0e}, f is smooth there with slope "
            f"{r.numeric.flat[fi]:.6g} where the analytic gradient says "
            f"{r.analytic.flat[fi]:.6g}. A threshold or tie rule that is slightly off gives "
            "the other side's slope: a mask z > 1e-6 instead of z > 0, the sign of a rounded "
            "value, a maximum chosen with a tolerance (the runner-up)")
    if bad_joint:
        j = bad_joint[0]
        parts.append(
            f"jointly wrong at a kink: {_entries(in_joint)} sit at one kink together (tied "
            "maxima): each alone lies between its one-sided slopes, but along "
            f"{j.label} f changes at rate {j.numeric:.6g} while the analytic gradient gives "
            f"{j.analytic:.6g}. A (sub)gradient shares the upstream gradient among tied "
            "maxima, it does not give all of it to each (PyTorch gives it all to one of them)")
    if at.any():
        fi = np.flatnonzero(at)[0]
        parts.append(
            f"wrong at a kink: {_entries(at)} sit exactly on a kink of f (ReLU at 0, |.| at "
            "0, a tie in a max), where every valid (sub)gradient lies between the one-sided "
            f"slopes; the analytic value {r.analytic.flat[fi]:.6g} lies outside them (their "
            f"average is {r.numeric.flat[fi]:.6g})")
    return "; ".join(parts)


def _inconclusive_hint(r, directional=False):
    what = "random direction" if directional else "entry"
    n = r.n_checked
    noun = what if n == 1 else ("random directions" if directional else "entries")
    msg = (f"inconclusive: {'the' if n == 1 else f'all {n}'} checked {noun} "
           f"{'sits' if n == 1 else 'sit'} on a kink of f (a non-differentiable point: ReLU "
           "at 0, |.| at 0, a tie in a max), where finite differences only bound the "
           "gradient, so nothing was verified exactly. Move x off the kinks (no exact zeros "
           "before a ReLU or |.|, no ties in a max: e.g. x + 1e-3 * "
           "rng.standard_normal(x.shape)) and check again")
    if any(j.smooth for j in r.joint):
        msg += " (the entries were jointly consistent along the directions that keep ties tied)"
    return msg
