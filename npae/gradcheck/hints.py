"""The diagnosis of a failed check: the hint that says *why* a gradient is wrong.

Hints (``GradCheckResult.hint``), given only where the evidence supports them: shape mismatch,
all zeros, a constant factor (2, 1/2, -1, the batch size n, 1/n, any other c), transposed,
errors only where uses overlap while entries outside the overlap are right (assignment
instead of accumulation, with ``overlap=``),
wrong in only some rows/columns/entries, and for objectives made of named terms
(``check_terms``, tied weights in ``check_layer``) the missing or mis-scaled term.
"""
from __future__ import annotations

import itertools

import numpy as np

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

