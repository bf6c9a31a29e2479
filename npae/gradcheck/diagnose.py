"""Structured differences between the analytic gradient a and the numeric one n: the
classic backprop mistakes that are not one constant factor, named in a student's words.

Every rule states a hypothesis "a = H(n, x)" and keeps it only when the residual
|a - H(n, x)| sits at the finite difference's own error level (``K_RES`` times the check's
per-entry threshold, scaled by the size of the hypothesised factor) on EVERY entry checked
exactly, and the hypothesis differs from a = n where the check failed: a wrong hint is
worse than none. The rules, in order:

``activation``
    a / n = phi(x) entry by entry, phi a sigmoid's or tanh's derivative (extra, missing, at
    the output instead of the input, the output's formula at the input), the (1 - 2s) of
    d/dx [s(1 - s)], or a ReLU mask (missing, or applied where f has none). These need the
    activation to act on x itself (an activation layer, a pre-activation gradient).
``term``
    a - n = c phi(x) with one fitted c: a forgotten (or extra) lam x (weight decay), lam
    sign(x) (an L1 term), or a product-rule term (sin x, x cos x, ...).
``shift``, ``flip``
    a equals n shifted by one position along an axis (an index off by one, a crop off by
    one), or reversed along an axis / rotated 180 degrees over the last two axes (a kernel
    flipped once too often).
``pooling``
    n is a max pooling's gradient (each window's upstream value at its maximum, for some
    window size 2 or 3 and stride 1 to 3 over the last two axes) and a routes the same
    upstream values differently: spread over the window, averaged, to the window's
    minimum, or with the stride ignored.
``bias``
    a is constant along rows or columns while n is not: a bias's gradient broadcast.

``describe`` says what is seen when no rule fits: the ratio a/n per entry (or per row /
column when it is constant along them), and the families of derivatives that range fits.
"""
from __future__ import annotations

import numpy as np

__all__ = ["structured_hint", "describe"]

#: a hypothesis holds when |a - H| <= K_RES * thr * max(1, |factor|) on every entry
K_RES = 3.0


def _sig(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _holds(a, model, thr, scale=1.0):
    with np.errstate(invalid="ignore", over="ignore"):
        ok = np.abs(a - model) <= K_RES * thr * np.maximum(1.0, np.abs(scale)) + 1e-9 * np.abs(a)
    return bool(np.all(ok))


def _differs(model, n, thr):
    """The hypothesis is not just a = n: it changes some entry beyond the threshold."""
    return bool(np.any(np.abs(model - n) > K_RES * thr))


# ---------------------------------------------------------------------------------------
# a / n = phi(x): activation derivatives
# ---------------------------------------------------------------------------------------
_SIG_EXTRA = ("an extra sigmoid derivative: analytic = numeric x s (1 - s) entry by entry, "
              "s = sigmoid(x): the sigmoid's derivative applied twice, or the squared-error "
              "chain used where the loss is cross-entropy (there s (1 - s) cancels)")
_SIG_MISSING = ("the sigmoid's derivative is missing: analytic = numeric / (s (1 - s)) entry "
                "by entry, s = sigmoid(x): multiply by s (1 - s) (or: the cross-entropy chain "
                "used where the loss is squared error, where it does not cancel)")
_SIG_AT_OUT = ("the sigmoid's derivative evaluated at its output: analytic = numeric x "
               "sigmoid'(s) / sigmoid'(x) with s = sigmoid(x), i.e. s (1 - s) was computed "
               "as sigmoid(h) (1 - sigmoid(h)) from the output h; use h (1 - h)")
_SIG_FORMULA_AT_IN = ("the sigmoid's derivative written for the output, h (1 - h), but "
                      "applied to the input: analytic = numeric x x (1 - x) / (s (1 - s)); "
                      "with h = sigmoid(x) it is h (1 - h), not x (1 - x)")
_TANH_EXTRA = ("an extra tanh derivative: analytic = numeric x (1 - tanh(x)^2) entry by "
               "entry: tanh's derivative applied twice")
_TANH_MISSING = ("tanh's derivative is missing: analytic = numeric / (1 - tanh(x)^2) entry "
                 "by entry: multiply by 1 - tanh(x)^2")
_TANH_AT_OUT = ("tanh's derivative evaluated at its output: analytic = numeric x (1 - "
                "tanh(t)^2) / (1 - tanh(x)^2) with t = tanh(x); from the output h it is "
                "1 - h^2, not 1 - tanh(h)^2")
_TANH_FORMULA_AT_IN = ("tanh's derivative written for the output, 1 - h^2, but applied to "
                       "the input: analytic = numeric x (1 - x^2) / (1 - tanh(x)^2); with "
                       "h = tanh(x) it is 1 - h^2, not 1 - x^2")
_NO_1M2S = ("a dropped product-rule factor (1 - 2s), s = sigmoid(x): analytic = numeric / "
            "(1 - 2s) entry by entry; d/dx [s (1 - s)] = s (1 - s) (1 - 2s), so d/dx "
            "[s (1 - s)]^2 = 2 [s (1 - s)]^2 (1 - 2s)")
_EXTRA_1M2S = ("an extra factor (1 - 2s), s = sigmoid(x): analytic = numeric x (1 - 2s) "
               "entry by entry (the second derivative's factor where the first belongs)")
_RELU_MISSING = ("the ReLU's mask is missing: right where x > 0, but where x <= 0 the "
                 "numeric gradient is 0 and the analytic one is not; multiply by (x > 0)")
_RELU_EXTRA = ("a ReLU mask where f has none: the analytic gradient is 0 exactly where "
               "x <= 0 and right where x > 0, while the numeric gradient is nonzero where "
               "x <= 0")


def _ratio_candidates(x):
    with np.errstate(all="ignore"):
        s = _sig(x)
        ds = s * (1 - s)
        t = np.tanh(x)
        dt = 1 - t ** 2
        yield _SIG_EXTRA, ds
        yield _SIG_MISSING, 1 / ds
        yield _SIG_AT_OUT, _sig(s) * (1 - _sig(s)) / ds
        yield _SIG_FORMULA_AT_IN, x * (1 - x) / ds
        yield _TANH_EXTRA, dt
        yield _TANH_MISSING, 1 / dt
        yield _TANH_AT_OUT, (1 - np.tanh(t) ** 2) / dt
        yield _TANH_FORMULA_AT_IN, (1 - x ** 2) / dt
        yield _NO_1M2S, 1 / (1 - 2 * s)
        yield _EXTRA_1M2S, 1 - 2 * s


def _product_candidates(x):
    """a / n for a product u(x) v(x) whose derivative keeps one term of u' v + u v'
    (whatever weights multiply the product: they cancel in the ratio)."""
    with np.errstate(all="ignore"):
        s, t = _sig(x), np.tanh(x)
        fns = [("x", x, np.ones_like(x)), ("x^2", x ** 2, 2 * x),
               ("sin(x)", np.sin(x), np.cos(x)), ("cos(x)", np.cos(x), -np.sin(x)),
               ("exp(x)", np.exp(x), np.exp(x)), ("tanh(x)", t, 1 - t ** 2),
               ("sigmoid(x)", s, s * (1 - s))]
        for i, (nu, u, du) in enumerate(fns):
            for nv, v, dv in fns[i + 1:]:
                if {nu, nv} == {"x", "x^2"}:
                    continue  # x * x^2 = x^3: no product to speak of
                full = du * v + u * dv
                for kept, drop, part in ((f"{nu}' {nv}", f"{nu} {nv}'", du * v),
                                         (f"{nu} {nv}'", f"{nu}' {nv}", u * dv)):
                    yield (f"a dropped product-rule term: d/dx [u v] = u' v + u v' with u = "
                           f"{nu}, v = {nv}, and analytic / numeric = ({kept}) / (u' v + u v') "
                           f"entry by entry: the answer keeps {kept} and drops {drop}"), \
                        part / full


def _activation(a, n, thr, x):
    found = []
    for hint, phi in list(_ratio_candidates(x)) + list(_product_candidates(x)):
        if not np.all(np.isfinite(phi)) or np.ptp(phi) <= 1e-3 * np.abs(phi).max():
            continue  # a constant phi is a constant factor, told elsewhere
        model = n * phi
        if _differs(model, n, thr) and _holds(a, model, thr, phi):
            found.append(hint)
    if found:
        return found
    pos = x > 0
    if pos.any() and (~pos).any():
        right_pos = _holds(a[pos], n[pos], thr[pos])
        if right_pos and _holds(n[~pos], 0 * n[~pos], thr[~pos]) and _differs(
                a[~pos], 0 * a[~pos], thr[~pos]):
            return [_RELU_MISSING]
        if right_pos and np.all(a[~pos] == 0) and _differs(n[~pos], 0 * n[~pos], thr[~pos]):
            return [_RELU_EXTRA]
    return []


# ---------------------------------------------------------------------------------------
# a - n = c phi(x): a forgotten term
# ---------------------------------------------------------------------------------------
def _term_candidates(x):
    with np.errstate(all="ignore"):
        s = _sig(x)
        yield "x", x, ("a term c x: {what} (weight decay lam x, the gradient of "
                       "lam/2 ||x||^2{lam}, or a product-rule term u' v with v = x)")
        yield "sign(x)", np.sign(x), ("a term c sign(x): {what} (an L1 penalty lam ||x||_1"
                                      "{lam})")
        yield ("[s (1 - s)]^2 (1 - 2s)", (s * (1 - s)) ** 2 * (1 - 2 * s),
               "a term c [s (1 - s)]^2 (1 - 2s), s = sigmoid(x): {what}: the gradient of a "
               "contractive penalty lam sum [s (1 - s)]^2 (it is 2 lam [s (1 - s)]^2 "
               "(1 - 2s))")
        for name, phi in (("sin(x)", np.sin(x)), ("cos(x)", np.cos(x)),
                          ("x cos(x)", x * np.cos(x)), ("x sin(x)", x * np.sin(x)),
                          ("exp(x)", np.exp(x)), ("x exp(x)", x * np.exp(x)),
                          ("tanh(x)", np.tanh(x)), ("sigmoid(x)", s),
                          ("x^2", x ** 2), ("log|x|", np.log(np.abs(x))),
                          ("1 - tanh(x)^2", 1 - np.tanh(x) ** 2),
                          ("s (1 - s)", s * (1 - s)), ("x s (1 - s)", x * s * (1 - s)),
                          ("x (1 - tanh(x)^2)", x * (1 - np.tanh(x) ** 2))):
            yield name, phi, ("a term c " + name + ": {what} -- a dropped product-rule term? "
                              "d/dx [u v] = u' v + u v' needs both")


def _term(a, n, thr, x):
    d = a - n
    for name, phi, text in _term_candidates(x):
        if not np.all(np.isfinite(phi)) or not phi.any():
            continue
        if np.ptp(phi) <= 1e-3 * np.abs(phi).max():
            continue  # a constant: not a recognisable term of x
        c = float(np.dot(d, phi) / np.dot(phi, phi))
        if c == 0 or not _holds(a, n + c * phi, thr) or not _differs(n + c * phi, n, thr):
            continue
        what = (f"analytic - numeric = {c:.4g} {name} entry by entry, so the analytic "
                f"gradient {'lacks' if c < 0 else 'has an extra'} {abs(c):.4g} {name}")
        lam = f", lam = {abs(c):.4g}" if name == "x" else (
            f", lam = {abs(c):.4g}" if name == "sign(x)" else "")
        return (f"{'missing' if c < 0 else 'extra'} " + text.format(what=what, lam=lam))
    return None


# ---------------------------------------------------------------------------------------
# shifted, flipped
# ---------------------------------------------------------------------------------------
def _shift(A, N, T, V):
    """a[i] = n[i + s] along one axis (s = +-1), or along both of the last two axes."""
    shape = A.shape
    moves = [((ax,), (s,)) for ax in range(A.ndim) if shape[ax] >= 3 for s in (1, -1)]
    if A.ndim >= 2 and min(shape[-2:]) >= 3:
        moves += [((A.ndim - 2, A.ndim - 1), (s, t)) for s in (1, -1) for t in (1, -1)]
    found = []
    for axes, steps in moves:
        src, dst = [slice(None)] * A.ndim, [slice(None)] * A.ndim
        for ax, s in zip(axes, steps):
            src[ax] = slice(s, None) if s > 0 else slice(None, s)
            dst[ax] = slice(None, -s) if s > 0 else slice(-s, None)
        a, n, t = A[tuple(dst)], N[tuple(src)], T[tuple(dst)]
        v = V[tuple(dst)] & V[tuple(src)]
        # evidence: most entries compared, some nonzero, and a != n there
        if v.sum() < max(3, 0.5 * V.sum()) or not np.any(np.abs(n[v]) > t[v]):
            continue
        if _holds(a[v], n[v], t[v]) and _differs(a[v], N[tuple(dst)][v], t[v]):
            where = " and ".join(f"axis {ax}" for ax in axes)
            idx = ", ".join(f"i{j} {'+' if s > 0 else '-'} 1" for j, s in enumerate(steps))
            found.append(f"shifted by one position along {where}: analytic[i] = "
                         f"numeric[{idx}] along {'it' if len(axes) == 1 else 'them'} wherever "
                         "both exist (an index off by one: a loop bound, a slice start, or a "
                         "padding crop off by one)")
    return found[:1] if len(found) == 1 else []


def _flip(A, N, T, V):
    axes_sets = []
    if A.ndim in (2, 4):
        axes_sets.append((A.ndim - 2, A.ndim - 1))
    axes_sets += [(ax,) for ax in range(A.ndim) if A.shape[ax] >= 2]
    for axes in axes_sets:
        Nf = np.flip(N, axis=axes)
        Vf = V & np.flip(V, axis=axes)
        if Vf.sum() < 2 or not np.any(np.abs(Nf[Vf]) > T[Vf]):
            continue
        Tf = np.maximum(T, np.flip(T, axis=axes))
        if _holds(A[Vf], Nf[Vf], Tf[Vf]) and _differs(A[Vf], N[Vf], T[Vf]):
            if len(axes) == 2:
                return ("flipped: the analytic gradient is the numeric one rotated 180 degrees "
                        "over the last two (spatial) axes (g[..., ::-1, ::-1]): a kernel "
                        "flipped once too often (a convolution where the forward is a "
                        "cross-correlation) or once too few")
            return (f"reversed along axis {axes[0]}: analytic = numeric[::-1] along that "
                    "axis: a kernel or index flipped (a convolution where the forward is a "
                    "correlation?)")
    return None


# ---------------------------------------------------------------------------------------
# max pooling
# ---------------------------------------------------------------------------------------
def _windows(H, W, k, s):
    Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
    return [(p * s, q * s) for p in range(Ho) for q in range(Wo)]


_POOL_HINTS = {
    "spread": "the gradient is spread over the whole window: every entry of a window gets "
              "its upstream value; max pooling passes it to the window's maximum only",
    "average": "the gradient is averaged over the window (g / k^2 to every entry): that is "
               "average pooling's backward; max pooling passes all of g to the window's "
               "maximum",
    "argmin": "the gradient is routed to the window's minimum (argmin where argmax belongs)",
    "stride": "the stride is ignored: the upstream values go to the maxima of windows "
              "placed one step apart instead of {s} apart",
}


def _pool_matrix(x2, k, s, rule, s_route=None):
    """(entries, windows) routing matrix of one image x2 (H, W)."""
    H, W = x2.shape
    wins = _windows(H, W, k, s)
    M = np.zeros((H * W, len(wins)))
    Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
    route = ([(p * s_route, q * s_route) for p in range(Ho) for q in range(Wo)] if s_route
             else wins)
    for j, (p, q) in enumerate(route):
        patch = x2[p:p + k, q:q + k]
        if rule in ("spread", "average"):
            for i in range(k):
                for jj in range(k):
                    M[(p + i) * W + q + jj, j] = 1.0 if rule == "spread" else 1.0 / k ** 2
        else:
            i, jj = np.unravel_index(np.argmin(patch) if rule == "argmin" else
                                     np.argmax(patch), patch.shape)
            M[(p + i) * W + q + jj, j] = 1.0
    return M, len(wins)


def _pooling(A, N, T, V, X):
    if X is None or A.ndim not in (2, 3, 4) or min(A.shape[-2:]) < 2:
        return None
    H, W = A.shape[-2:]
    imgs = lambda Z: Z.reshape(-1, H, W)  # noqa: E731
    a_i, n_i, t_i, v_i, x_i = (imgs(Z) for Z in (A, N, T, V, X))
    if a_i.shape[0] > 64:
        return None
    for k in (2, 3):
        for s in (1, 2, 3):
            if k > H or k > W or s > k + 1:
                continue
            rules = ["spread", "average", "argmin"] + (["stride"] if s > 1 else [])
            for rule in rules:
                ok, evidence = True, False
                for a, n, t, v, x in zip(a_i, n_i, t_i, v_i, x_i):
                    Mw, nw = _pool_matrix(x, k, s, "max")
                    Ma, _ = _pool_matrix(x, k, s, rule, s_route=1 if rule == "stride" else None)
                    if Ma.shape[1] < nw:
                        ok = False
                        break
                    vv = v.reshape(-1)
                    S = np.vstack([Mw[vv], Ma[vv]])
                    rhs = np.concatenate([n.reshape(-1)[vv], a.reshape(-1)[vv]])
                    tt = np.concatenate([t.reshape(-1)[vv], t.reshape(-1)[vv]])
                    if S.shape[0] < nw + 3:
                        ok = False
                        break
                    g = np.linalg.lstsq(S, rhs, rcond=None)[0]
                    if not _holds(rhs, S @ g, tt) or not _holds(n.reshape(-1)[vv],
                                                                 Mw[vv] @ g, t.reshape(-1)[vv]):
                        ok = False
                        break
                    evidence |= _differs(Ma[vv] @ g, Mw[vv] @ g, t.reshape(-1)[vv])
                if ok and evidence:
                    return (_POOL_HINTS[rule].format(s=s) +
                            f" (a max pool with {k} x {k} windows, stride {s}, explains the "
                            "numeric gradient)")
    return None


# ---------------------------------------------------------------------------------------
# a bias's gradient broadcast
# ---------------------------------------------------------------------------------------
def _bias(A, N, T, V):
    if A.ndim != 2 or not V.all() or min(A.shape) < 2:
        return None
    for ax, what, other in ((1, "row", "columns"), (0, "column", "rows")):
        const = np.all(np.abs(A - A.mean(axis=ax, keepdims=True)) <= T)
        varies = np.any(np.abs(N - N.mean(axis=ax, keepdims=True)) > K_RES * T)
        if const and varies and np.any(A != 0):
            sums = N.sum(axis=ax)
            hint = (f"the wrong variable: every {what} of the analytic gradient is constant "
                    f"(one value repeated across its {other}) while the numeric one varies: "
                    "a bias's gradient (dL/db) broadcast to W's shape? dL/dW = g^T x needs "
                    "the inputs x")
            del sums
            return hint
    return None


# ---------------------------------------------------------------------------------------
# the entry points
# ---------------------------------------------------------------------------------------
def structured_hint(A, N, T, V, X=None):
    """The hint of the first rule whose hypothesis holds, or None.

    A, N, T: the analytic gradient, the numeric one and the per-entry thresholds (full
    arrays); V: the entries checked exactly (bool); X: the point x (full), when known.
    """
    a, n, t = A[V], N[V], T[V]
    if a.size < 2:
        return None
    if X is not None:
        x = X[V]
        found = _activation(a, n, t, x)
        if len(found) == 1:
            return found[0]
        if len(found) == 2:
            return f"one of two: {found[0]}; or {found[1]}"
        term = _term(a, n, t, x)
        if term:
            return term
    if A.ndim >= 1:
        found = _shift(A, np.where(V, N, 0.0), T, V)
        if found:
            return found[0]
        fl = _flip(A, np.where(V, N, 0.0), T, V)
        if fl:
            return fl
        pool = _pooling(A, np.where(V, N, 0.0), T, V, X)
        if pool:
            return pool
        bias = _bias(A, N, T, V)
        if bias:
            return bias
    return None


def describe(A, N, T, V):
    """What is seen when no rule names the mistake: the ratio analytic / numeric."""
    a, n, t = A[V], N[V], T[V]
    big = np.abs(n) > 10 * K_RES * t
    if big.sum() < 2:
        return None
    r = a[big] / n[big]
    lo, hi = float(r.min()), float(r.max())
    unit = "entry"
    if A.ndim == 2 and V.all():
        with np.errstate(all="ignore"):
            R = np.where(np.abs(N) > 10 * K_RES * T, A / N, np.nan)
        for ax, name in ((1, "row"), (0, "column")):
            spread = np.nanmax(R, axis=ax) - np.nanmin(R, axis=ax)
            if np.all(np.isfinite(spread)) and np.all(spread <= 1e-4 * np.nanmax(np.abs(R),
                                                                                   axis=ax)):
                unit = name
                break
    msg = (f"the ratio analytic / numeric varies by {unit} between {lo:.4g} and {hi:.4g}"
           + ("" if unit == "entry" else f" (constant along each {unit})"))
    # a family is suggested only where the ratios spread as that derivative's do over a
    # typical range of inputs, not for ratios that merely sit near 1
    if lo >= 4.0 and hi >= 1.2 * lo:
        fam = ("at least 4, as 1 / (s (1 - s)) is: a missing sigmoid derivative s (1 - s)? "
               "(or a missing tanh derivative, whose inverse is at least 1)")
    elif lo > 0 and hi <= 0.25 and hi >= 1.2 * lo:
        fam = ("at most 1/4, as s (1 - s) is: an extra sigmoid derivative (applied twice, or "
               "the squared-error chain with cross-entropy)?")
    elif lo > 0 and hi <= 1.0 and lo <= 0.5:
        fam = ("between 0 and 1, as 1 - tanh^2 is: an extra tanh derivative? (or an extra "
               "factor of another activation's derivative)")
    elif lo >= 1.0 and hi >= 2.0:
        fam = ("at least 1, as 1 / (1 - tanh^2) is: a missing tanh derivative? (or another "
               "activation's derivative missing)")
    elif lo >= 0 and set(np.round(r, 6)) <= {0.0, 1.0}:
        fam = "0 or 1: a mask (ReLU's x > 0) applied where it should not be?"
    else:
        fam = None
    if fam:
        return msg + ": " + fam
    return msg + ("; not a constant factor, sign, transpose, shift, flip or pooling pattern: "
                  "re-derive this gradient step by step (check_terms or check_layer on its "
                  "parts can localise it)")
