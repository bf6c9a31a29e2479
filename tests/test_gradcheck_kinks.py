"""npae.gradcheck at kinks: no wrong gradient excused near a kink, nothing verified claimed.

The four wrong answers below are each wrong *near* a kink (ReLU, |.|, max) or jointly wrong
*at* one, and each has a right twin that must pass. Distances to the kinks (1e-8 .. 5e-7)
are below the check's step h = 1e-6, so a single probe straddles the kink; the checker must
re-probe at smaller steps (or check tied entries jointly) to tell right from wrong.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npae.gradcheck import (check_directional, check_gradient, check_layer, check_params,
                            check_terms)
from npae.gradcheck.kinks import JOINT_MAX, KINK_LEVELS
from npae.nn import MaxPool2d, ReLU

seeds = st.integers(0, 2**32 - 1)


def relu(z):
    return np.maximum(z, 0.0)


# --------------------------------------------------------------------------------------
# 1. ReLU with the mask z > 1e-6 where some pre-activations are 3e-7 and 5e-7
# --------------------------------------------------------------------------------------
def relu_layer_objective(rng, z_small=(3e-7, 5e-7)):
    """f(W) = sum(D * relu(X W^T + b)) with z[0, 0] and z[1, 2] set to ``z_small``;
    dL/dW = (D * 1[z > 0])^T X."""
    n, d, k = 4, 3, 5
    X, D = rng.standard_normal((n, d)), rng.standard_normal((n, k))
    W, b = rng.standard_normal((k, d)), rng.standard_normal(k)
    b[0] += z_small[0] - (X @ W.T + b)[0, 0]
    b[2] += z_small[1] - (X @ W.T + b)[1, 2]
    z = X @ W.T + b
    assert abs(z[0, 0] - z_small[0]) < 1e-12 and abs(z[1, 2] - z_small[1]) < 1e-12

    def f(V):
        return np.sum(D * relu(X @ V.T + b))

    def grad(threshold):
        return lambda V: (D * ((X @ V.T + b) > threshold)).T @ X

    return f, grad, W


def test_relu_mask_with_a_threshold_fails_near_the_kink(rng):
    f, grad, W = relu_layer_objective(rng)
    r = check_gradient(f, grad(1e-6), W)
    assert r.status == "wrong" and not r
    assert r.hint.startswith("wrong near a kink")
    assert "z > 1e-6" in r.hint and "factor" not in r.hint
    # the units whose pre-activation is near 0: every entry of their rows of W is wrong
    assert "wrong only in rows 0, 2 (of 5)" in r.hint
    near = np.flatnonzero(r.near_kinks.any(axis=1))
    assert set(near) <= {0, 2} and len(near) > 0
    # the twin with the right mask passes, the near-kink entries checked exactly
    good = check_gradient(f, grad(0.0), W)
    assert good.ok and good.status == "ok"
    assert good.n_kinks == 0 and good.n_near_kinks >= 2 and good.n_exact == W.size
    assert f"checked exactly: 15 entries ({good.n_near_kinks} near a kink" in str(good)


def test_right_relu_gradient_near_its_kink_counts_as_checked_exactly(rng):
    f, grad, W = relu_layer_objective(rng, z_small=(1e-7, -1e-7))
    r = check_gradient(f, grad(0.0), W)
    assert r.ok and r.n_bounded == 0 and r.n_exact == W.size and r.n_near_kinks >= 1


# --------------------------------------------------------------------------------------
# 2. the L1 penalty's gradient as lam * sign(round(w, 5))
# --------------------------------------------------------------------------------------
def l1_objective(rng, lam=0.3):
    t, w = rng.standard_normal(8), rng.standard_normal(8)
    w[[1, 4]] = [5e-7, -2e-7]   # nonzero, but below the rounding's 5e-6

    def f(v):
        return 0.5 * np.sum((v - t) ** 2) + lam * np.sum(np.abs(v))

    return f, t, w, lam


def test_l1_sign_of_a_rounded_value_fails_near_the_kink(rng):
    f, t, w, lam = l1_objective(rng)
    r = check_gradient(f, lambda v: v - t + lam * np.sign(np.round(v, 5)), w)
    assert not r and r.status == "wrong" and r.failed.sum() == 2
    assert r.hint.startswith("wrong near a kink: at entries 1, 4")
    good = check_gradient(f, lambda v: v - t + lam * np.sign(v), w)
    assert good.ok and good.n_exact == 8 and good.n_near_kinks == 2


# --------------------------------------------------------------------------------------
# 3. max-pooling that routes the gradient to the runner-up 2e-7 below the maximum
# --------------------------------------------------------------------------------------
def rows_max_objective(x, G):
    """f(x) = sum_p G_p max_j x[p, j] (one window per row); the right gradient sends G_p to
    the arg-max of row p."""
    def f(v):
        return np.sum(G * v.max(axis=1))

    def to_first_max(v):
        out = np.zeros_like(v)
        out[np.arange(len(v)), v.argmax(axis=1)] = G
        return out

    return f, to_first_max


def test_max_with_a_tolerance_routes_to_the_runner_up_and_fails(rng):
    x = rng.standard_normal((5, 4))
    x[2, 1] = x[2].max() + 1.0
    x[2, 0] = x[2, 1] - 2e-7           # the runner-up, first in the window
    G = rng.standard_normal(5)
    f, right = rows_max_objective(x, G)

    def with_tolerance(v):             # "the first entry within 1e-6 of the max"
        out = np.zeros_like(v)
        idx = np.argmax(v >= v.max(axis=1, keepdims=True) - 1e-6, axis=1)
        out[np.arange(len(v)), idx] = G
        return out

    r = check_gradient(f, with_tolerance, x)
    assert r.status == "wrong" and r.hint.startswith("wrong near a kink")
    assert "(2, 0), (2, 1)" in r.hint
    good = check_gradient(f, right, x)
    assert good.ok and good.n_bounded == 0 and good.n_exact == x.size
    assert good.near_kinks[2, 0] and good.near_kinks[2, 1]


# --------------------------------------------------------------------------------------
# 4. max-pooling that gives the full upstream gradient to every tied maximum
# --------------------------------------------------------------------------------------
def tied_rows(rng):
    x = rng.standard_normal((6, 4))
    x[1, [0, 2]] = x[1].max() + 0.5     # two tied maxima
    x[3, [1, 2, 3]] = x[3].max() + 0.25  # three
    return x


def test_every_tied_maximum_getting_the_gradient_fails_jointly(rng):
    x = tied_rows(rng)
    G = rng.standard_normal(6)
    f, right = rows_max_objective(x, G)

    def to_every_tie(v):
        return (v == v.max(axis=1, keepdims=True)) * G[:, None]

    r = check_gradient(f, to_every_tie, x)
    assert r.status == "wrong"
    assert r.hint.startswith("jointly wrong at a kink")
    assert "(1, 0)" in r.hint and "(3, 1)" in r.hint and "factor" not in r.hint
    # each entry alone lies within its bounds: only the joint checks fail
    assert r.n_bounded == 5 and any(not j.ok for j in r.joint)
    assert "inconsistent" in str(r)
    # the right twins: everything to one maximum (PyTorch) or shared evenly (torch.amax)
    for good in (right, lambda v: (v == v.max(axis=1, keepdims=True))
                 / (v == v.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True)
                 * G[:, None]):
        res = check_gradient(f, good, x)
        assert res.ok and res.n_bounded == 5 and res.n_exact == x.size - 5
        assert res.joint and all(j.ok for j in res.joint)
        assert any(j.smooth for j in res.joint)
        text = str(res)
        assert "only bounded: 5 at a kink" in text and "PyTorch" in text


def test_maxpool_layer_giving_every_tie_the_gradient_fails_check_layer(rng):
    class EveryTie(MaxPool2d):
        def backward(self, dout):
            x = self.x_
            N, C, H, W = x.shape
            win = x.reshape(N, C, H // 2, 2, W // 2, 2)
            m = win.max(axis=(3, 5), keepdims=True)
            g = dout.reshape(N, C, H // 2, 1, W // 2, 1)
            return ((win == m) * g).reshape(x.shape)

        def forward(self, x):
            self.x_ = np.array(x)
            return super().forward(x)

    x = np.round(rng.standard_normal((2, 1, 4, 4)), 0)  # quantised: ties in many windows
    x[0, 0, :2, :2] = 2.0
    r = check_layer(EveryTie(2), x)
    assert r["x"].status == "wrong" and "jointly wrong at a kink" in r["x"].hint
    good = check_layer(MaxPool2d(2), x)
    assert good.ok and good["x"].n_bounded >= 4


# --------------------------------------------------------------------------------------
# the verdict when every entry sits at a kink, and wrong values at a kink
# --------------------------------------------------------------------------------------
def test_every_entry_at_a_kink_is_inconclusive_not_ok():
    w = np.array([1.0, -2.0, 3.0])
    f = lambda v: np.sum(w * relu(v))  # noqa: E731
    r = check_gradient(f, lambda v: w * (v > 0), np.zeros(3))
    assert r.status == "inconclusive" and not r.ok and bool(r) is False
    assert r.n_exact == 0 and r.n_bounded == 3 and r.n_failed == 0
    assert "all 3 checked entries sit on a kink" in r.hint and "Move x" in r.hint
    assert "INCONCLUSIVE" in str(r)
    # the same answer off the kinks is verified, even within the step h = 1e-6 of them
    for x in (np.full(3, 1e-3), np.array([1e-9, -1e-9, 3e-7])):
        r = check_gradient(f, lambda v: w * (v > 0), x)
        assert r.status == "ok" and r.n_exact == 3 and r.n_bounded == 0
    # a wrong value at a kink is wrong, not inconclusive
    r = check_gradient(f, lambda v: w * (v > 0) + 5.0, np.zeros(3))
    assert r.status == "wrong" and r.hint.startswith("wrong at a kink")
    # check_layer: a ReLU on zeros verifies nothing
    rep = check_layer(ReLU(), np.zeros((2, 3)))
    assert rep.status == "inconclusive" and rep.inconclusive == ["x"] and not rep.failed
    assert rep.hint.startswith("dL/dx: inconclusive")


def test_wrong_value_at_a_kink_names_the_kink_not_a_factor():
    w = np.array([1.0, 2.0, 3.0, 4.0])
    x = np.array([0.0, 0.0, 0.5, -0.5])
    f = lambda v: np.sum(w * relu(v))  # noqa: E731
    r = check_gradient(f, lambda v: np.where(v == 0, 10 * w, w * (v > 0)), x)
    assert r.status == "wrong" and list(np.flatnonzero(r.failed)) == [0, 1]
    assert r.hint.startswith("wrong at a kink: entries 0, 1") and "factor" not in r.hint
    # one value right at the kink (0 is a valid subgradient), one outside the slopes
    r = check_gradient(f, lambda v: np.where(v == 0, [0.0, 10.0, 0, 0], w * (v > 0)), x)
    assert r.status == "wrong" and list(np.flatnonzero(r.failed)) == [1]


# --------------------------------------------------------------------------------------
# the same rule in every entry point
# --------------------------------------------------------------------------------------
class ThresholdReLU(ReLU):
    """Masks with y > 1e-6 instead of y > 0."""

    def backward(self, dout):
        return dout * (self.cache > 1e-6)


def test_check_layer_catches_a_relu_threshold_near_the_kink(rng):
    x = rng.standard_normal((4, 5))
    x[0, 1], x[2, 3] = 3e-7, 5e-7
    r = check_layer(ThresholdReLU(), x)
    assert r.failed == ["x"] and r["x"].hint.startswith("wrong near a kink")
    assert "(0, 1), (2, 3)" in r["x"].hint
    good = check_layer(ReLU(), x)
    assert good.ok and good["x"].n_near_kinks == 2 and good["x"].n_bounded == 0


def test_check_params_and_check_terms_re_probe_too(rng):
    f, t, w, lam = l1_objective(rng)
    p = w.copy()
    rep = check_params(lambda: f(p), {"w": p}, {"w": p - t + lam * np.sign(np.round(p, 5))})
    assert rep.failed == ["w"] and rep["w"].hint.startswith("wrong near a kink")
    terms = {"fit": (lambda v: 0.5 * np.sum((v - t) ** 2), lambda v: v - t),
             "l1": (lambda v: lam * np.sum(np.abs(v)), lambda v: lam * np.sign(np.round(v, 5)))}
    rep = check_terms(terms, w.copy())
    assert set(rep.failed) == {"l1", "sum"}
    assert rep["l1"].hint.startswith("wrong near a kink") and "'l1'" in rep["sum"].hint
    terms["l1"] = (terms["l1"][0], lambda v: lam * np.sign(v))
    assert check_terms(terms, w.copy()).ok


def test_check_directional_re_probes_a_direction_near_a_kink(rng):
    w = rng.uniform(0.5, 2.0, 6)
    x = np.array([2e-7, -3e-7, 0.4, -0.8, 1e-7, 0.9])
    f = lambda v: np.sum(w * relu(v)) + 1.0  # noqa: E731
    good = check_directional(f, lambda v: w * (v > 0), x, n_directions=6, rng=1)
    assert good.ok and good.n_near_kinks >= 1 and good.n_bounded == 0
    bad = check_directional(f, lambda v: w * (v > 1e-6), x, n_directions=6, rng=1)
    assert bad.status == "wrong" and "near a kink" in bad.hint


# --------------------------------------------------------------------------------------
# entries within 1e-8 .. 1e-4 of ReLU, |.| and max kinks
# --------------------------------------------------------------------------------------
@given(kind=st.sampled_from(["relu", "abs", "max"]),
       exps=st.lists(st.floats(-8.0, -4.0), min_size=1, max_size=4), seed=seeds)
def test_right_answers_near_kinks_pass_and_off_by_a_threshold_fail(kind, exps, seed):
    rng = np.random.default_rng(seed)
    delta = 10.0 ** np.array(exps)            # distances to the kink
    tau = 1e-3                                 # the wrong answers' threshold, above them all
    far = rng.uniform(0.1, 2.0, 3) * rng.choice([-1.0, 1.0], 3)
    if kind in ("relu", "abs"):
        sign = rng.choice([-1.0, 1.0], len(delta))
        sign[0] = 1.0                          # at least one entry the threshold masks
        x = np.concatenate([sign * delta, far])
        w = rng.uniform(0.5, 2.0, x.size) * rng.choice([-1.0, 1.0], x.size)
        if kind == "relu":
            def f(v):
                return np.sum(w * relu(v)) + 1.0

            def right(v):
                return w * (v > 0)

            def wrong(v):
                return w * (v > tau)
        else:
            def f(v):
                return np.sum(w * np.abs(v)) + 1.0

            def right(v):
                return w * np.sign(v)

            def wrong(v):
                return w * np.sign(v) * (np.abs(v) > tau)
    else:
        m = rng.uniform(-2.0, 2.0, len(delta))
        x = np.stack([m - delta, m, m - 1.0], axis=1)   # the runner-up first
        G = rng.uniform(0.5, 2.0, len(delta)) * rng.choice([-1.0, 1.0], len(delta))
        f, right = rows_max_objective(x, G)

        def wrong(v):                          # the first entry within tau of the max
            out = np.zeros_like(v)
            idx = np.argmax(v >= v.max(axis=1, keepdims=True) - tau, axis=1)
            out[np.arange(len(v)), idx] = G
            return out

    good = check_gradient(f, right, x)
    assert good.ok, str(good)
    assert good.n_bounded == 0 and good.n_exact == x.size
    bad = check_gradient(f, wrong, x)
    assert bad.status == "wrong", str(bad)


# --------------------------------------------------------------------------------------
# cost, counted in evaluations of f
# --------------------------------------------------------------------------------------
def test_a_smooth_check_makes_no_extra_evaluations(rng):
    C = rng.standard_normal((784, 256))
    W = rng.standard_normal((784, 256))
    calls = []

    def f(V):
        calls.append(1)
        return np.vdot(C, V) + 0.5 * np.vdot(V, V)

    r = check_gradient(f, lambda V: C + V, W)
    assert r.ok and r.n_checked == 256 and r.extra_evals == 0
    assert len(calls) == 1 + 4 * 256 == 1025
    calls.clear()
    p = W.copy()
    rep = check_params(lambda: f(p), {"W": p}, {"W": C + p})
    assert rep.ok and len(calls) == 1025


def test_kink_re_probing_stays_within_its_stated_budget():
    w = np.arange(1.0, 9.0)
    x = np.array([0.0, 0.0, 0.0, 0.0, 2e-7, -4e-7, 0.5, -0.5])  # 4 at, 2 near the kink
    calls = []

    def f(v):
        calls.append(1)
        return np.sum(w * relu(v))

    r = check_gradient(f, lambda v: w * (v > 0), x)
    assert r.ok and r.n_bounded == 4 and r.n_near_kinks == 2
    extra = len(calls) - (1 + 4 * x.size)
    assert extra == r.extra_evals > 0
    # 4 x KINK_LEVELS per entry classed at a kink, plus the joint directions
    assert extra <= 6 * 4 * KINK_LEVELS + JOINT_MAX * 4 * (1 + KINK_LEVELS)


@pytest.mark.parametrize("shape", [(3,), (4, 5)])
def test_smooth_directional_check_makes_4_evaluations_per_direction(shape, rng):
    calls = []

    def f(v):
        calls.append(1)
        return np.sum(np.sin(v))

    r = check_directional(f, np.cos, rng.standard_normal(shape), n_directions=7)
    assert r.ok and r.extra_evals == 0 and len(calls) == 1 + 4 * 7


@pytest.mark.parametrize("seed", [14, 3])
def test_right_pooling_on_quantised_input_passes_when_sampled(seed):
    """Ties everywhere and only 256 of 1024 entries sampled, so most tie groups are split
    (no joint verdict) and the bounds at fine steps carry a sum's rounding: still ok."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_normal((1, 4, 16, 16)), 0)
    r = check_layer(MaxPool2d(2), x, rng=seed)
    assert r.ok and r["x"].n_checked == 256 and r["x"].n_bounded > 10
