"""Optimisers against steps computed by hand, and against PyTorch's trajectories.

The PyTorch numbers below were produced once with torch 2.13 (float64) from the same three
gradients and hard-coded here, so the test needs no torch and is independent of npae's code.
"""
import numpy as np
import pytest

from npae.nn import Linear
from npae.optim import SGD, Adam, make_optimizer

P0 = np.array([1.0, -2.0, 0.5])
GRADS = [np.array([0.3, -0.1, 2.0]), np.array([-0.5, 0.2, 0.1]), np.array([0.05, 0.4, -1.0])]


def run(opt_cls, **kw):
    p = P0.copy()
    opt = opt_cls({"p": p}, **kw)
    for g in GRADS:
        opt.step({"p": g.copy()})
    return p


def test_plain_sgd_by_hand():
    p = run(SGD, lr=0.1)
    np.testing.assert_allclose(p, P0 - 0.1 * sum(GRADS), rtol=1e-15)


def test_sgd_momentum_by_hand():
    mu, lr = 0.9, 0.1
    v1 = GRADS[0]
    v2 = mu * v1 + GRADS[1]
    v3 = mu * v2 + GRADS[2]
    np.testing.assert_allclose(run(SGD, lr=lr, momentum=mu), P0 - lr * (v1 + v2 + v3), rtol=1e-14)


def test_adam_first_step_by_hand():
    # after one step with bias correction, m_hat = g and v_hat = g^2: p moves by lr * sign(g)
    p = P0.copy()
    Adam({"p": p}, lr=0.1).step({"p": GRADS[0]})
    np.testing.assert_allclose(p, P0 - 0.1 * GRADS[0] / (np.abs(GRADS[0]) + 1e-8), rtol=1e-12)


def test_adam_three_steps_by_hand():
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    p, m, v = P0.copy(), np.zeros(3), np.zeros(3)
    for t, g in enumerate(GRADS, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    np.testing.assert_allclose(run(Adam, lr=lr), p, rtol=1e-13)


@pytest.mark.parametrize("cls, kw, torch_result", [
    (Adam, dict(lr=0.1, weight_decay=0.01), [0.9415759765697209, -1.9900933310381035, 0.3086646278126228]),
    (SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01, dampening=0.1),
     [0.99444630489, -2.03248645028, 0.028934052594999968]),
    (SGD, dict(lr=0.1, momentum=0.9, nesterov=True),
     [1.0228300000000001, -2.0958099999999997, -0.024900000000000058]),
])
def test_matches_pytorch_trajectory(cls, kw, torch_result):
    np.testing.assert_allclose(run(cls, **kw), torch_result, rtol=1e-12)


def test_optimiser_updates_layer_parameters_in_place(rng):
    layer = Linear(3, 2, rng=rng)
    W = layer.params["W"]
    before = W.copy()
    opt = Adam(layer.parameters(), lr=0.01)
    layer.forward(rng.standard_normal((4, 3)))
    layer.zero_grad()
    layer.backward(rng.standard_normal((4, 2)))
    opt.step(layer.grads)
    assert layer.params["W"] is W and not np.allclose(W, before)


def test_state_dict_round_trip_continues_identically():
    a, b = P0.copy(), P0.copy()
    oa = Adam({"p": a}, lr=0.1)
    oa.step({"p": GRADS[0]})
    ob = Adam({"p": b}, lr=0.1)
    b[...] = a
    ob.load_state_dict(oa.state_dict())
    oa.step({"p": GRADS[1]})
    ob.step({"p": GRADS[1]})
    np.testing.assert_array_equal(a, b)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"lr=-0.1"):
        SGD({"p": P0.copy()}, lr=-0.1)
    with pytest.raises(KeyError, match="'q'"):
        SGD({"p": P0.copy(), "q": P0.copy()}, lr=0.1).step({"p": GRADS[0]})
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        SGD({"p": P0.copy()}, lr=0.1).step({"p": np.zeros(2)})
    with pytest.raises(ValueError, match="'rmsprop'"):
        make_optimizer("rmsprop", {"p": P0.copy()}, 0.1)


# Same operations in the same order and dtype (the kernel gets its scalars in the arrays'
# dtype, NumPy treats Python floats as "weak"; no fastmath, so no FMA contraction): equal to
# the last bit, in float32 as in float64. A kernel computing in float64 for float32 arrays
# would differ by ~1 float32 ulp (6e-8) and fail this.
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_adam_kernel_matches_its_numpy_twin(dtype, weight_decay):
    from npae._numba import use_kernels_now
    from npae.optim_kernels import adam_scalars, adam_update, adam_update_numpy
    use_kernels_now()   # the kernel from the first call, not the twin a run starts with
    rng = np.random.default_rng(7)
    p, g = rng.standard_normal((2, 37, 5)).astype(dtype)
    m, v = rng.standard_normal((37, 5)).astype(dtype), rng.uniform(0, 1, (37, 5)).astype(dtype)
    state = [a.copy() for a in (p, g, m, v)]
    c2 = (1 - 0.999 ** 3) ** 0.5
    b1, b2, step, eps = 0.9, 0.999, 0.01 * c2 / (1 - 0.9 ** 3), 1e-8 * c2
    adam_update_numpy(*state, b1, b2, step, eps, weight_decay)
    # the entry point runs the kernel on these contiguous arrays (the twin without Numba)
    adam_update(p, g, m, v, b1, b2, step, eps, weight_decay,
                adam_scalars(dtype, b1, b2, step, eps, weight_decay))
    for got, want in zip((p, m, v), (state[0], state[2], state[3])):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)
