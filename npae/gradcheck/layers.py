"""Checking an npae ``Layer``: every gradient, tied weights' two uses, and the contract."""
from __future__ import annotations

import copy
import warnings

import numpy as np

from .answers import answer_array, mutation_message
from .checks import _check_live
from .hints import _terms_hint
from .numeric import MAX_ENTRIES, STEP, TINY, Float32Error, _float32_message, _prepare, _probe
from .verdict import CheckReport, ContractCheck, _full, check_tolerances

__all__ = ["check_layer"]


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
    from ..nn.linear import TiedLinear
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
    check_tolerances(rtol, atol)
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
    before = x.copy()
    out = np.asarray(layer.forward(x))
    changed = mutation_message("forward", "x", before, x)
    if changed:   # the other checks run on the input as it was
        x[...] = before
    dout = rng.standard_normal(out.shape)
    batch = x.shape[0] if x.ndim >= 2 else None
    layer.zero_grad()
    layer.forward(x)
    # copies: backward may (wrongly) modify its argument, which the contract checks below
    # must still see; the answer rules (``answers``) hold for what backward returns
    dx = answer_array(layer.backward(dout.copy()), what="backward's return value (dL/dx)"
                      ).copy()
    grads = {k: answer_array(v, what=f"the gradient {k!r} in layer.grads").copy()
             for k, v in layer.grads.items()}
    params = layer.params

    def L():
        return np.vdot(dout, layer.forward(xp))

    xp = x.copy()
    checks, assigned = _contract_checks(layer, x, dout) if contract else ([], None)
    if contract:
        checks.insert(0, ContractCheck("forward leaves its input x unchanged", not changed,
                                       changed or ""))
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
                                 res.threshold, res.checked & ~res.kinks & ~res.near_kinks,
                                 assigned=None if assigned is None else k in assigned)
                if th:
                    res.hint = th
        results[k] = res
    flip = _flipped_kernel(layer, L, xp, results["x"], step)
    if flip:
        results["x"].hint = flip
    layer.zero_grad()
    layer.forward(x)
    title = f"check_layer {type(layer).__name__} (dout ~ N(0, 1), batch {batch})"
    failed = [r for r in results.values() if r.status == "wrong"]
    hint = ""
    where = _culprit(layer, x, rng, rtol=rtol, atol=atol, max_entries=max_entries,
                     step=step) if failed else ""
    if where:
        hint = where
    elif failed:
        hint = f"{failed[0].name}: {failed[0].hint}"
    elif any(not c.ok for c in checks):
        hint = next(c.message for c in checks if not c.ok)
    elif any(not r.ok for r in results.values()):
        first = next(r for r in results.values() if not r.ok)
        hint = f"{first.name}: {first.hint}"
    return CheckReport(title, results, checks, hint)


def _culprit(layer, x, rng, **kw):
    """In a Sequential that fails, the first sub-layer that fails on its own, checked at
    the input it receives: "layer 2 (Sigmoid) is wrong on its own: ..."."""
    subs = getattr(layer, "layers", None)
    if not subs or len(subs) < 2:
        return ""
    h = x
    for i, sub in enumerate(subs):
        if not (isinstance(h, np.ndarray) and h.dtype == np.float64 and h.size):
            return ""
        rep = _check_layer(sub, h.copy(), rng, contract=False, **kw)
        if not rep.ok and rep.status == "wrong":
            return (f"layer {i} ({type(sub).__name__}) of the {type(layer).__name__} is "
                    f"wrong on its own (checked at the input it receives): {rep.hint}")
        h = np.asarray(sub.forward(h))
    return ""


def _flipped_kernel(layer, L, xp, res, step):
    """A failing dL/dx of a layer with a 4-D kernel W that equals the numeric dL/dx of the
    same layer with W rotated 180 degrees: backward used the kernel flipped once too
    often (or once too few)."""
    W = layer.params.get("W") if getattr(layer, "layers", None) is None else None
    if W is None or W.ndim != 4 or res.status != "wrong" or res.checked is None:
        return ""
    valid = res.checked & ~res.kinks & ~res.near_kinks
    flat = np.flatnonzero(valid)
    if flat.size < 2:
        return ""
    saved = W.copy()
    try:
        W[...] = saved[:, :, ::-1, ::-1]
        n_flip = _probe(L, xp, flat, step).central
    finally:
        W[...] = saved
    a = res.analytic.reshape(-1)[flat]
    thr = res.threshold.reshape(-1)[flat]
    if np.all(np.abs(a - n_flip) <= 3.0 * thr) and np.any(
            np.abs(n_flip - res.numeric.reshape(-1)[flat]) > 3.0 * thr):
        return ("the kernel is flipped in backward: dL/dx equals the gradient of this layer "
                "with W rotated 180 degrees (W[:, :, ::-1, ::-1]); the forward pass is a "
                "cross-correlation, so g[p, q] W[i, j] goes back to x[p s + i, q s + j] "
                "with W as it is (written as a convolution of g, the flip is needed once)")
    return ""


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
