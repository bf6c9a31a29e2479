"""A corpus of classic backprop mistakes on a student's own small functions, for measuring
what plain ``check_gradient`` names. ``python -m tests.gradcheck_corpus`` prints the
fraction named per class; ``tests/test_gradcheck_corpus.py`` holds it to >= 90 %.

Every case is (class, label, f, right gradient, wrong gradient, x); the right gradients are
derived by hand (in the comments) and must pass; a wrong one is "named" when its hint holds
one of its class's words and none of another class's.
"""
from __future__ import annotations

import sys

import numpy as np

#: class -> words, one of which a hint must hold to name the mistake
CLASSES = {
    "activation missing/doubled": ("sigmoid's derivative", "sigmoid derivative",
                                   "tanh's derivative", "tanh derivative", "ReLU"),
    "derivative at the output": ("evaluated at its output", "written for the output"),
    "squared-error vs cross-entropy": ("squared-error chain", "cross-entropy chain"),
    "product rule": ("product-rule",),
    "forgotten regulariser": ("weight decay", "L1 penalty", "contractive penalty"),
    "wrong variable": ("wrong variable", "another variable"),
    "flipped kernel": ("flipped", "reversed along"),
    "pooling": ("spread over the whole window", "averaged over the window",
                "window's minimum", "stride is ignored"),
    "off by one": ("off by one",),
}


def sig(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _corr2d(x, K):
    """y[p, q] = sum_ij K[i, j] x[p + i, q + j] (valid cross-correlation)."""
    k1, k2 = K.shape
    H, W = x.shape[0] - k1 + 1, x.shape[1] - k2 + 1
    return np.array([[np.sum(K * x[p:p + k1, q:q + k2]) for q in range(W)] for p in range(H)])


def _pool(x, k, s):
    """Max pool over the last two axes; returns (y, argmax one-hot routing function)."""
    H, W = x.shape[-2:]
    Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
    y = np.empty(x.shape[:-2] + (Ho, Wo))
    for p in range(Ho):
        for q in range(Wo):
            y[..., p, q] = x[..., p * s:p * s + k, q * s:q * s + k].max(axis=(-2, -1))
    return y


def _pool_back(x, g, k, s, rule="max", s_route=None):
    dx = np.zeros_like(x)
    H, W = x.shape[-2:]
    Ho, Wo = g.shape[-2:]
    xs, gs, ds = x.reshape(-1, H, W), g.reshape(-1, Ho, Wo), dx.reshape(-1, H, W)
    sr = s if s_route is None else s_route
    for c in range(xs.shape[0]):
        for p in range(Ho):
            for q in range(Wo):
                win = xs[c, p * sr:p * sr + k, q * sr:q * sr + k]
                if rule in ("spread", "average"):
                    ds[c, p * sr:p * sr + k, q * sr:q * sr + k] += gs[c, p, q] * (
                        1.0 if rule == "spread" else 1.0 / k ** 2)
                else:
                    i, j = np.unravel_index(np.argmax(win) if rule == "max" else
                                            np.argmin(win), win.shape)
                    ds[c, p * sr + i, q * sr + j] += gs[c, p, q]
    return dx


def cases(seed):
    """All the corpus's cases for one seed (random shapes and values)."""
    rng = np.random.default_rng(seed)
    out = []

    def add(cls, label, f, right, wrong, x):
        out.append((cls, label, f, right, wrong, x))

    shape = (int(rng.integers(2, 6)), int(rng.integers(2, 6)))
    x = rng.standard_normal(shape) * 1.5
    w = rng.standard_normal(shape)
    t = rng.uniform(0.05, 0.95, shape)
    lam = float(rng.uniform(0.1, 2.0))

    # -- activation derivatives: f = sum(w * act(x)), df/dx = w act'(x)
    s = sig(x)
    A = "activation missing/doubled"
    add(A, "sigmoid' missing", lambda v: np.sum(w * sig(v)),
        lambda v: w * sig(v) * (1 - sig(v)), lambda v: w.copy(), x)
    add(A, "sigmoid' doubled", lambda v: np.sum(w * sig(v)),
        lambda v: w * sig(v) * (1 - sig(v)), lambda v: w * (sig(v) * (1 - sig(v))) ** 2, x)
    add(A, "tanh' missing", lambda v: np.sum(w * np.tanh(v)),
        lambda v: w * (1 - np.tanh(v) ** 2), lambda v: w.copy(), x)
    add(A, "tanh' doubled", lambda v: np.sum(w * np.tanh(v) ** 2) / 2,
        lambda v: w * np.tanh(v) * (1 - np.tanh(v) ** 2),
        lambda v: w * np.tanh(v) * (1 - np.tanh(v) ** 2) ** 2, x)
    xr = x + np.where(np.abs(x) < 0.05, 0.1, 0.0)      # off ReLU's kink
    add(A, "ReLU mask missing", lambda v: np.sum(w * np.maximum(v, 0) ** 2) / 2,
        lambda v: w * np.maximum(v, 0), lambda v: w * v, xr)
    add(A, "ReLU mask missing (linear)", lambda v: np.sum(w * np.maximum(v, 0)),
        lambda v: w * (v > 0), lambda v: w.copy(), xr)

    # -- the derivative evaluated at the output: h = act(x), act'(h) instead of act'(x)
    O = "derivative at the output"
    add(O, "sigmoid'(h)", lambda v: np.sum(w * sig(v)), lambda v: w * sig(v) * (1 - sig(v)),
        lambda v: w * sig(sig(v)) * (1 - sig(sig(v))), x)
    add(O, "tanh'(h)", lambda v: np.sum(w * np.tanh(v)), lambda v: w * (1 - np.tanh(v) ** 2),
        lambda v: w * (1 - np.tanh(np.tanh(v)) ** 2), x)
    add(O, "h(1-h) at x", lambda v: np.sum(w * sig(v) ** 2) / 2,
        lambda v: w * sig(v) ** 2 * (1 - sig(v)), lambda v: w * sig(v) * v * (1 - v), x)
    add(O, "1-h^2 at x", lambda v: np.sum(t * np.tanh(v)),
        lambda v: t * (1 - np.tanh(v) ** 2), lambda v: t * (1 - v ** 2), x)

    # -- squared error vs cross-entropy with a sigmoid output
    C = "squared-error vs cross-entropy"

    def ce(v):  # -sum t log s + (1 - t) log(1 - s); d/dv = s - t
        return -np.sum(t * np.log(sig(v)) + (1 - t) * np.log(1 - sig(v)))

    def se(v):  # 1/2 sum (s - t)^2; d/dv = (s - t) s (1 - s)
        return 0.5 * np.sum((sig(v) - t) ** 2)

    n = shape[0]
    add(C, "SE chain with CE", ce, lambda v: sig(v) - t,
        lambda v: (sig(v) - t) * sig(v) * (1 - sig(v)), x)
    add(C, "CE chain with SE", se, lambda v: (sig(v) - t) * sig(v) * (1 - sig(v)),
        lambda v: sig(v) - t, x)
    add(C, "SE chain with mean CE", lambda v: ce(v) / n, lambda v: (sig(v) - t) / n,
        lambda v: (sig(v) - t) * sig(v) * (1 - sig(v)) / n, x)

    # -- a dropped product-rule term
    P = "product rule"
    add(P, "x sin x", lambda v: np.sum(v * np.sin(v)),
        lambda v: np.sin(v) + v * np.cos(v), lambda v: v * np.cos(v), x)
    add(P, "x^2 exp x", lambda v: np.sum(v ** 2 * np.exp(v)) / 10,
        lambda v: (2 * v + v ** 2) * np.exp(v) / 10, lambda v: v ** 2 * np.exp(v) / 10, x)
    add(P, "(s(1-s))^2: (1 - 2s)", lambda v: np.sum((sig(v) * (1 - sig(v))) ** 2),
        lambda v: 2 * (sig(v) * (1 - sig(v))) ** 2 * (1 - 2 * sig(v)),
        lambda v: 2 * (sig(v) * (1 - sig(v))) ** 2, x)
    add(P, "x tanh x", lambda v: np.sum(w * v * np.tanh(v)),
        lambda v: w * (np.tanh(v) + v * (1 - np.tanh(v) ** 2)),
        lambda v: w * v * (1 - np.tanh(v) ** 2), x)

    # -- a forgotten regulariser
    R = "forgotten regulariser"
    add(R, "weight decay", lambda v: np.sum(w * np.tanh(v)) + lam / 2 * np.sum(v ** 2),
        lambda v: w * (1 - np.tanh(v) ** 2) + lam * v, lambda v: w * (1 - np.tanh(v) ** 2), x)
    add(R, "weight decay, sin", lambda v: np.sum(np.sin(v) * w) + lam * np.sum(v ** 2),
        lambda v: np.cos(v) * w + 2 * lam * v, lambda v: np.cos(v) * w, x)
    add(R, "L1", lambda v: np.sum(w * sig(v)) + lam * np.sum(np.abs(v)),
        lambda v: w * sig(v) * (1 - sig(v)) + lam * np.sign(v),
        lambda v: w * sig(v) * (1 - sig(v)), xr)
    add(R, "contractive penalty", lambda v: np.sum(w * v) + lam * np.sum(
        (sig(v) * (1 - sig(v))) ** 2), lambda v: w + 2 * lam * (sig(v) * (1 - sig(v))) ** 2 * (
        1 - 2 * sig(v)), lambda v: w.copy(), x)

    # -- the wrong variable
    V = "wrong variable"
    k, d = shape
    nb = int(rng.integers(2, 6)) + (1 if int(rng.integers(2, 6)) == k else 0)
    nb = nb if nb != k else nb + 1
    X = rng.standard_normal((nb, d))
    G = rng.standard_normal((nb, k))
    b = rng.standard_normal(k)
    add(V, "dL/db broadcast", lambda W: np.sum(G * (X @ W.T + b)), lambda W: G.T @ X,
        lambda W: np.broadcast_to(G.sum(axis=0)[:, None], W.shape).copy(), x)
    add(V, "dL/dX for dL/dW", lambda W: np.sum(G * np.tanh(X @ W.T)),
        lambda W: (G * (1 - np.tanh(X @ W.T) ** 2)).T @ X,
        lambda W: (G * (1 - np.tanh(X @ W.T) ** 2)) @ W, x)
    add(V, "dL/db broadcast (sigmoid)", lambda W: np.sum(G * sig(X @ W.T + b)),
        lambda W: (G * sig(X @ W.T + b) * (1 - sig(X @ W.T + b))).T @ X,
        lambda W: np.broadcast_to((G * sig(X @ W.T + b) * (1 - sig(X @ W.T + b))).sum(
            axis=0)[:, None], W.shape).copy(), x)

    # -- a kernel flipped: gradients with respect to the kernel
    F = "flipped kernel"
    H, Wd = int(rng.integers(4, 8)), int(rng.integers(4, 8))
    kk = int(rng.integers(2, 4))
    img = rng.standard_normal((H, Wd))
    K = rng.standard_normal((kk, kk))
    g2 = rng.standard_normal((H - kk + 1, Wd - kk + 1))
    # d/dK sum(g * corr(img, K)) = corr(img, g)
    add(F, "2-D kernel rotated", lambda Kv: np.sum(g2 * _corr2d(img, Kv)),
        lambda Kv: _corr2d(img, g2), lambda Kv: _corr2d(img, g2)[::-1, ::-1].copy(), K)
    L = int(rng.integers(6, 12))
    sig1 = rng.standard_normal(L)
    kw = rng.standard_normal(kk + 1)
    g1 = rng.standard_normal(L - kk)
    # y_j = sum_i w_i s_{j+i}; d/dw_i sum_j g_j y_j = sum_j g_j s_{j+i}
    add(F, "1-D kernel reversed",
        lambda wv: np.sum(g1 * np.correlate(sig1, wv, "valid")),
        lambda wv: np.correlate(sig1, g1, "valid"),
        lambda wv: np.correlate(sig1, g1, "valid")[::-1].copy(), kw)
    C_in, O_ = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    imgs = rng.standard_normal((C_in, H, Wd))
    K4 = rng.standard_normal((O_, C_in, kk, kk))
    g4 = rng.standard_normal((O_, H - kk + 1, Wd - kk + 1))

    def conv4(Kv):
        return sum(np.sum(g4[o] * _corr2d(imgs[c], Kv[o, c]))
                   for o in range(O_) for c in range(C_in))

    def conv4_grad(Kv):
        return np.array([[_corr2d(imgs[c], g4[o]) for c in range(C_in)] for o in range(O_)])
    add(F, "4-D kernel rotated", conv4, conv4_grad,
        lambda Kv: conv4_grad(Kv)[:, :, ::-1, ::-1].copy(), K4)

    # -- max pooling's gradient routed wrongly
    Pl = "pooling"
    for rule, s_route in (("spread", None), ("average", None), ("argmin", None),
                          ("max", 1)):
        kp = int(rng.integers(2, 4))
        sp = kp if s_route is None else int(rng.integers(2, kp + 1))
        Hp = kp * int(rng.integers(2, 4)) + int(rng.integers(0, 2))
        Wp = kp * int(rng.integers(2, 4))
        lead = () if rng.random() < 0.5 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        size = int(np.prod(lead + (Hp, Wp)))
        xp = ((rng.permutation(size) - size / 2) * 0.1 + rng.uniform(-0.02, 0.02, size)
              ).reshape(lead + (Hp, Wp))
        gp = rng.standard_normal(lead + ((Hp - kp) // sp + 1, (Wp - kp) // sp + 1))
        add(Pl, f"{rule if s_route is None else 'stride ignored'} k{kp} s{sp}",
            lambda v, kp=kp, sp=sp, gp=gp: np.sum(gp * _pool(v, kp, sp)),
            lambda v, kp=kp, sp=sp, gp=gp: _pool_back(v, gp, kp, sp),
            lambda v, kp=kp, sp=sp, gp=gp, rule=rule, s_route=s_route: _pool_back(
                v, gp, kp, sp, rule, s_route), xp)

    # -- an index off by one
    S = "off by one"
    L1 = int(rng.integers(5, 12))
    x1 = rng.standard_normal(L1)
    w1 = rng.standard_normal(L1)

    def shifted(r):
        out_ = np.zeros_like(r)
        out_[:-1] = r[1:]
        return out_
    add(S, "loop from 1", lambda v: np.sum(w1 * np.sin(v)), lambda v: w1 * np.cos(v),
        lambda v: shifted(w1 * np.cos(v)), x1)
    add(S, "row index + 1", lambda v: np.sum(w * v ** 3) / 3, lambda v: w * v ** 2,
        lambda v: np.vstack([(w * v ** 2)[1:], np.zeros((1, v.shape[1]))]), x)
    xc = rng.standard_normal((H, Wd))
    wc = rng.standard_normal((H, Wd))

    def crop(r):  # a padding crop one row and one column off
        out_ = np.zeros_like(r)
        out_[1:, 1:] = r[:-1, :-1]
        return out_
    add(S, "padding crop", lambda v: np.sum(wc * np.tanh(v)), lambda v: wc * (1 - np.tanh(v) ** 2),
        lambda v: crop(wc * (1 - np.tanh(v) ** 2)), xc)
    return out


def controls(seed):
    """Wrong answers with no classic mistake in them: no hint may name one."""
    rng = np.random.default_rng(10_000 + seed)
    x = rng.standard_normal((int(rng.integers(2, 6)), int(rng.integers(2, 6))))
    w = rng.standard_normal(x.shape)
    noise = rng.standard_normal(x.shape)
    f = lambda v: np.sum(w * np.tanh(v))  # noqa: E731
    right = lambda v: w * (1 - np.tanh(v) ** 2)  # noqa: E731
    return [("noise", f, right, lambda v: right(v) + 0.3 * noise * np.abs(right(v)).max(), x),
            ("wobble", f, right, lambda v: right(v) * (1 + 0.3 * np.cos(3 * v)), x),
            ("other function", f, right, lambda v: np.cos(v) * w, x)]


def run(seeds=range(5)):
    """{class: (named, total)}, the right answers that did not pass, the misnamed cases (a
    hint naming another class's mistake and not this one) and the unnamed ones."""
    from npae.gradcheck import check_gradient
    table = {c: [0, 0] for c in CLASSES}
    not_passed, misnamed, unnamed = [], [], []
    for seed in seeds:
        for cls, label, f, right, wrong, x in cases(seed):
            if not check_gradient(f, right, x.copy()).ok:
                not_passed.append((seed, cls, label))
            hint = check_gradient(f, wrong, x.copy()).hint
            words = CLASSES[cls]
            others = [w for c, ws in CLASSES.items() if c != cls for w in ws
                      if w not in words]
            ok = any(wd in hint for wd in words)
            wrong_name = [w for w in others if w in hint]
            table[cls][1] += 1
            # a hint may offer two candidates: naming another class's mistake is false
            # naming only when the actual mistake is not among them
            if ok:
                table[cls][0] += 1
            elif wrong_name:
                misnamed.append((seed, cls, label, hint))
            else:
                unnamed.append((seed, cls, label, hint))
        for label, f, right, wrong, x in controls(seed):
            hint = check_gradient(f, wrong, x.copy()).hint
            named = [w for ws in CLASSES.values() for w in ws if w in hint]
            if named:
                misnamed.append((seed, "control", label, hint))
    return table, not_passed, misnamed, unnamed


def main(argv=None):
    seeds = range(int((argv or sys.argv[1:] or ["5"])[0]))
    table, not_passed, misnamed, unnamed = run(seeds)
    print(f"{'class':<34} named")
    tot = [0, 0]
    for c, (k, m) in table.items():
        print(f"{c:<34} {k:>3}/{m:<3} {100 * k / m:5.1f} %")
        tot[0] += k
        tot[1] += m
    print(f"{'all':<34} {tot[0]:>3}/{tot[1]:<3} {100 * tot[0] / tot[1]:5.1f} %")
    print(f"right answers not passed: {len(not_passed)}; misnamed: {len(misnamed)}")
    for item in misnamed + unnamed:
        print("  ", item[:3], item[3][:160])


if __name__ == "__main__":
    main()
