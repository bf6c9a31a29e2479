"""Kinks: telling "near a kink" from "at a kink", and judging the entries that sit at one.

Kinks (ReLU, max, |.|)
    The five points x - h, x - h/2, x, x + h/2, x + h give four secant slopes. Along a
    smooth f they grow evenly (by h/2 f'' per step); when [x - h, x + h] straddles a kink the
    whole change of slope sits in one step. A probe "shows a kink" when the steps are uneven
    (spread > half the largest step) and the largest step (the jump) exceeds both 10
    rounding units and 1e-5 of the largest gradient entry. Unevenness at noise level is
    folded into the error estimate (err += spread / 4).

    Re-probing. An entry whose probe shows a kink, or is "rough" (uneven beyond noise, as
    when several kinks share one window) and would fail, is probed again with the steps
    h/10, h/100, ... (at most ``KINK_LEVELS`` = 6 finer levels, down to h/10^6). It stops at
    the first level where the slopes are even again and the jump has shrunk (the window no
    longer contains the kink: the entry was only *near* it), and the entry is then judged
    like any smooth entry, at that step, by the pass rule -- so a mask ``z > 1e-6`` where
    z = 3e-7, a sign rounded to 5 decimals, or a maximum picked with a tolerance is caught.
    It also stops before a level whose rounding error would exceed 1/``KINK_MARGIN`` =
    1/1000 of the jump (the estimate 8 eps |f| / h is low where f sums terms that cancel,
    so the margin is wide): the finest usable step. An entry that still shows the kink
    there is *at* the kink. Nothing is spent on an entry whose first probe is smooth (or
    passes), so a smooth check costs exactly what it did (4 evaluations per entry and one
    at x: a sampled 784 x 256 weight check makes 1,025).

    At a kink the central difference averages two slopes and means nothing, so the entry is
    bounded, not checked: every valid (sub)gradient lies among the one-sided slopes, and an
    analytic value outside those of both the first and the finest probe fails (the first
    probe's slopes carry the least rounding error, the finest's the fewest other kinks).
    Bounds entry by entry are too weak where kinks are shared -- a max with tied inputs:
    giving the whole upstream gradient g to EVERY tied maximum puts each entry between its
    slopes 0 and g, yet sums to 2g where any subgradient sums to g. So the entries at a kink
    are also checked jointly, along directions that keep ties tied: the sum of the
    coordinates of each group of equal values (tied maxima share their value; ``values``
    says what x is), the sum of all of them, and ``JOINT_RANDOM`` = 3 random positive
    combinations of the group sums. Along such a direction a max-type kink moves as a
    whole, f is smooth, and <a, v> must match the directional finite difference like a
    smooth entry. A direction that still shows a kink (independent kinks, e.g. ReLUs of
    zeros with upstream gradients of both signs, or a tie group only partly sampled) gives
    no verdict: there the one-sided slopes of a sum of kinks need not bound a valid
    subgradient. For the same reason an entry that sits on two kinks at once whose
    upstream gradients differ in sign (a tie shared by two overlapping pooling windows) can
    be refused although valid: its bounds come from f alone, not from the kinks' structure.

    The budget, in evaluations of f: at most 4 x 6 = 24 more per entry re-probed, plus the
    joint check, only when two or more entries sit at a kink: at most ``JOINT_MAX`` = 12
    directions of 4 to 28 evaluations each (336). ``result.extra_evals`` counts them; the
    report counts the entries checked exactly (near-kink entries included) and those only
    bounded.

    PyTorch's autograd takes one definite value at a kink: ReLU'(0) = 0 (the mask z > 0),
    d|x|/dx = sign(0) = 0, max-pooling and torch.max send the whole upstream gradient to one
    maximum of each window (torch.amax splits it evenly among ties). A course that wants
    those values can compare the answer with a reference at the kinks.
"""
from __future__ import annotations

import numpy as np

from .numeric import _fd_values, _index, _Probe, _scalar

#: a kink's jump in slope must exceed this many rounding-error units and this fraction of
#: the largest gradient entry to be reported (smaller uneven steps are rounding noise)
KINK_NOISE = 10.0
KINK_RTOL = 1e-5
#: finer steps tried for an entry that shows a kink: h/10, ..., h/10**KINK_LEVELS, as long
#: as the rounding error at the finer step stays below 1/KINK_MARGIN of the jump in slope
KINK_LEVELS = 6
KINK_MARGIN = 1000.0
#: joint directions for the entries at a kink: at most this many in all, of which this many
#: random positive combinations of the groups' sums
JOINT_MAX = 12
JOINT_RANDOM = 3
MULTS = (1.0, -1.0, 0.5, -0.5)
#: what PyTorch's autograd does at the kinks of the lecture's functions
PYTORCH_CONVENTION = ("PyTorch's autograd uses ReLU'(0) = 0, d|x|/dx = sign(0) = 0 at 0, and "
                      "sends max-pooling's upstream gradient to one maximum of each window "
                      "(torch.amax splits it evenly among ties)")


def kink_shape(probe, gscale):
    """(shows_kink, jump, unevenness, rough) of each row of a probe; ``gscale`` is the
    largest gradient entry, below whose 1e-5 a jump is not a kink. ``rough``: the steps are
    uneven beyond noise (several kinks in one window can spread the change of slope over
    several steps, which is not one clean kink but not smooth either)."""
    steps = np.diff(probe.slopes, axis=1)
    jump = np.abs(steps).max(axis=1)
    uneven = np.ptp(steps, axis=1)
    noise = np.maximum(KINK_NOISE * probe.rounding, KINK_RTOL * gscale)
    kinky = (uneven > 0.5 * jump) & (jump > noise)
    return kinky, jump, uneven, uneven > noise


class Prober:
    """Evaluates f around x again for the kink logic: some entries at a smaller step, or a
    direction over several entries. ``funs`` are no-argument functions whose sum is the
    objective at the current values of the live array ``arr``; ``flat`` the checked entries.
    ``n_evals`` counts the evaluations of the objective it made."""

    def __init__(self, funs, arr, flat, f0, what="f(x)"):
        self.funs, self.arr, self.flat, self.f0, self.what = list(funs), arr, flat, f0, what
        self.n_evals = 0

    def _f(self, label):
        self.n_evals += 1
        return sum(_scalar(f(), f"{self.what} at {label}") for f in self.funs)

    def _total(self):
        return self._f("a re-probed entry")

    def entries(self, rows, rel_step):
        """F, H (len(rows), 4) at x + m s e_i, s = rel_step max(1, |x_i|); the analytic
        values need no change (H are the steps actually taken)."""
        F, H = _fd_values(self._total, self.arr, self.flat[rows], rel_step, MULTS, self.what)
        return _Probe(F, H, self.f0), None

    def direction(self, rows, coef, rel_step):
        """f along v = sum_j coef_j e_{flat[rows[j]]}: (F (4,), H (4,) nominal steps m s,
        D (len(rows), 4) the displacements actually taken, coordinate by coordinate)."""
        a = self.arr.reshape(-1)
        idx = self.flat[rows]
        old = a[idx].copy()
        s = rel_step * max(1.0, float(np.abs(old).max()))
        F, D = np.empty(4), np.empty((len(rows), 4))
        try:
            for m_i, m in enumerate(MULTS):
                a[idx] = old + m * s * coef
                D[:, m_i] = a[idx] - old
                F[m_i] = self._f(f"x + {m:g} h v")
        finally:
            a[idx] = old
        return F, s * np.array(MULTS), D


def refine(prober, probe, a_c, rows, gscale, step, jump):
    """Re-probe ``rows`` (which show a kink, or are rough and fail) at h/10, h/100, ...;
    return the probe with those rows replaced by their finest usable data, the analytic
    values to compare (changed only for directions), the level reached per row (0: not
    re-probed) and the mask of rows that turned out smooth (near a kink, not at it)."""
    F, H = probe.F.copy(), probe.H.copy()
    a_c = a_c.copy()
    level = np.zeros(len(a_c), dtype=int)
    near = np.zeros(len(a_c), dtype=bool)
    rows = np.asarray(rows, dtype=int)
    jump = jump.copy()
    for lv in range(1, KINK_LEVELS + 1):
        rnd = _Probe(F[rows], H[rows], probe.f0).rounding
        # the next level's rounding is ~10x this one's: stop where it would hide the jump
        rows = rows[KINK_MARGIN * 10.0 * rnd < jump[rows]]
        if rows.size == 0:
            break
        fine, a_new = prober.entries(rows, step / 10.0 ** lv)
        kinky, fjump, _, rough = kink_shape(fine, gscale)
        kinky |= rough
        shrunk = fjump < 0.5 * jump[rows]
        keep = kinky | shrunk  # neither: rounding now dominates, keep the coarser data
        r = rows[keep]
        F[r], H[r], level[r] = fine.F[keep], fine.H[keep], lv
        if a_new is not None:
            a_c[r] = a_new[keep]
        near[rows[~kinky & shrunk]] = True
        jump[r] = fjump[keep]
        rows = rows[kinky]
    return _Probe(F, H, probe.f0), a_c, level, near


def joint_directions(values, rows, rng):
    """Directions (rows, coefficients, label) over the ``rows`` at a kink: the sum over each
    group of equal ``values`` with two or more members, the sum over all of them, random
    positive combinations of the groups' sums."""
    if len(rows) < 2:
        return []
    vals = values[rows]
    groups = [rows[vals == v] for v in np.unique(vals)]
    groups = sorted((g for g in groups if len(g) >= 2), key=len, reverse=True)
    groups = groups[:JOINT_MAX - JOINT_RANDOM - 1]
    dirs = [(g, np.ones(len(g)), "the sum of the tied entries") for g in groups]
    if len(groups) != 1 or len(groups[0]) != len(rows):
        dirs.append((np.asarray(rows), np.ones(len(rows)), "the sum of all entries at a kink"))
    if len(groups) >= 2:
        for _ in range(JOINT_RANDOM):
            w = rng.uniform(0.5, 1.5, len(groups))
            r = np.concatenate(groups)
            dirs.append((r, np.repeat(w, [len(g) for g in groups]),
                         "a random positive combination of the tied groups' sums"))
    return dirs


class Joint:
    """One joint check of entries at a kink along a direction v: ``analytic`` <a, v> and
    ``numeric`` the directional finite difference; ``smooth``: f was smooth along v (else
    no verdict, ``ok`` stays True); ``entries``: the multi-indices involved."""

    def __init__(self, entries, label, analytic, numeric, smooth, ok, tol):
        self.entries, self.label = entries, label
        self.analytic, self.numeric, self.smooth, self.ok, self.tol = (
            analytic, numeric, smooth, ok, tol)

    def __repr__(self):
        return (f"Joint({self.label!r}, {len(self.entries)} entries, analytic="
                f"{self.analytic:.6g}, numeric={self.numeric:.6g}, smooth={self.smooth}, "
                f"ok={self.ok})")


class _DirProber:
    """Adapts one direction of a ``Prober`` to the row interface of ``refine``."""

    def __init__(self, prober, rows, coef, a_full):
        self.p, self.rows, self.coef, self.a = prober, rows, coef, a_full

    def probe(self, rel_step):
        F, H, D = self.p.direction(self.rows, self.coef, rel_step)
        # <a, actual displacement> per unit of nominal step: exact whatever the rounding
        # of x + m h v, which matters at the finest steps
        a_v = float(self.a @ (D[:, 0] - D[:, 1])) / (H[0] - H[1])
        return _Probe(F[None, :], H[None, :], self.p.f0), np.array([a_v])

    def entries(self, rows, rel_step):
        return self.probe(rel_step)


def check_joint(prober, a_flat, values, rows, rng, *, rtol, atol, gscale, step, safety):
    """Joint checks of the ``rows`` (indices into prober.flat) that sit at a kink."""
    out = []
    for r, coef, label in joint_directions(values, np.asarray(rows), rng):
        dp = _DirProber(prober, r, coef, a_flat[prober.flat[r]])
        probe, a_v = dp.probe(step)
        kinky, jump, uneven, rough = kink_shape(probe, gscale)
        if kinky[0] or rough[0]:
            probe, a_v, _, _ = refine(dp, probe, a_v, np.array([0]), gscale, step, jump)
            kinky, jump, uneven, rough = kink_shape(probe, gscale)
        n = float(probe.central[0])
        err = float(probe.error[0] + uneven[0] / 4.0)
        tol = atol + rtol * max(abs(a_v[0]), abs(n)) + safety * err
        smooth = not (kinky[0] or rough[0])
        ok = (not smooth) or abs(a_v[0] - n) <= tol
        entries = [_index(fi, prober.arr.shape) for fi in prober.flat[r]]
        out.append(Joint(entries, label, float(a_v[0]), n, smooth, ok, tol))
    return out

