"""Every layer of npae.nn against finite differences in float64, with a random upstream gradient.

Central differences with h = 1e-6 have error ~1e-9 relative on these smooth maps, so the
tolerance rtol=1e-6 would catch a wrong factor, sign or transpose by many orders of magnitude.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npae.gradcheck import numerical_gradient
from npae.nn import Identity, Linear, ReLU, Sequential, Sigmoid, Tanh, TiedLinear

shapes = st.tuples(st.integers(1, 8), st.integers(1, 16), st.integers(1, 16))
seeds = st.integers(0, 2**32 - 1)


def layer_fd(layer, x, dout, wrt):
    """Numerical d/d(wrt) of L = sum(dout * layer.forward(x)); ``wrt`` is x or a param array."""
    return numerical_gradient(lambda _: float(np.sum(dout * layer.forward(x))), wrt)


def analytic(layer, x, dout):
    layer.forward(x)
    layer.zero_grad()
    dx = layer.backward(dout)
    return dx, {k: v.copy() for k, v in layer.grads.items()}


@given(shapes, seeds)
def test_linear_matches_finite_differences(shape, seed):
    n, d, k = shape
    rng = np.random.default_rng(seed)
    layer = Linear(d, k, rng=rng)
    layer.params["b"][:] = rng.standard_normal(k)
    x = rng.standard_normal((n, d))
    dout = rng.standard_normal((n, k))
    dx, grads = analytic(layer, x, dout)
    np.testing.assert_allclose(dx, layer_fd(layer, x, dout, x), rtol=1e-6, atol=1e-8)
    for name in ("W", "b"):
        num = layer_fd(layer, x, dout, layer.params[name])
        np.testing.assert_allclose(grads[name], num, rtol=1e-6, atol=1e-8)


def test_linear_forward_is_the_lecture_affine_map(rng):
    layer = Linear(4, 3, rng=rng)
    W, b = layer.params["W"], layer.params["b"]
    b[:] = [1.0, -2.0, 0.5]
    x = rng.standard_normal(4)
    # a(x) = b + W x, written element by element
    expected = [b[j] + sum(W[j, i] * x[i] for i in range(4)) for j in range(3)]
    np.testing.assert_allclose(layer.forward(x[None, :])[0], expected, rtol=1e-12)


@given(shapes, seeds)
def test_tied_decoder_gradient_is_the_sum_of_two_terms(shape, seed):
    """The lecture's exercise: with W* = W^T, dL/dW = encoder term + decoder term."""
    n, d, k = shape
    rng = np.random.default_rng(seed)
    enc = Linear(d, k, rng=rng)
    dec = TiedLinear(enc)
    net = Sequential(enc, Sigmoid(), dec)
    x = rng.standard_normal((n, d))
    dout = rng.standard_normal((n, d))
    dx, _ = analytic(net, x, dout)
    dW = enc.grads["W"].copy()
    num_W = layer_fd(net, x, dout, enc.params["W"])
    np.testing.assert_allclose(dW, num_W, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dx, layer_fd(net, x, dout, x), rtol=1e-6, atol=1e-8)
    # the two terms, computed by hand: h = sigm(b + W x), decoder term h^T g,
    # encoder term (g W^T * h(1-h))^T x
    h = 1.0 / (1.0 + np.exp(-(x @ enc.W.T + enc.params["b"])))
    decoder_term = h.T @ dout
    encoder_term = ((dout @ enc.W.T) * h * (1 - h)).T @ x
    np.testing.assert_allclose(dW, encoder_term + decoder_term, rtol=1e-10, atol=1e-12)
    if n * d * k > 1:  # with a single entry either term alone could coincide by chance
        assert not np.allclose(dW, encoder_term, rtol=1e-6) or np.allclose(decoder_term, 0)


def test_tied_decoder_shares_the_array_not_a_copy(rng):
    enc = Linear(5, 3, rng=rng)
    dec = TiedLinear(enc)
    enc.params["W"][0, 0] = 42.0
    assert dec.W_star[0, 0] == 42.0
    assert np.shares_memory(dec.W_star, enc.params["W"])
    net = Sequential(enc, Sigmoid(), dec)
    assert sorted(net.parameters()) == ["0.W", "0.b", "2.c"]  # W appears once, under its owner


@pytest.mark.parametrize("act", [Sigmoid, Tanh, Identity, ReLU])
@given(shape=shapes, seed=seeds)
def test_activations_match_finite_differences(act, shape, seed):
    n, d, _ = shape
    rng = np.random.default_rng(seed)
    layer = act()
    x = rng.standard_normal((n, d))
    if act is ReLU:  # keep away from the kink at 0, where the derivative is not defined
        x[np.abs(x) < 1e-3] = 0.5
    dout = rng.standard_normal((n, d))
    dx, _ = analytic(layer, x, dout)
    np.testing.assert_allclose(dx, layer_fd(layer, x, dout, x), rtol=1e-6, atol=1e-8)


def test_activation_values_against_closed_forms():
    a = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_allclose(Sigmoid().forward(a), 1 / (1 + np.exp(-a)), rtol=1e-15)
    np.testing.assert_allclose(Tanh().forward(a), np.tanh(a), rtol=1e-15)
    np.testing.assert_array_equal(ReLU().forward(a), [[0.0, 0.0, 3.0]])
    np.testing.assert_array_equal(Identity().forward(a), a)


def test_sigmoid_is_finite_and_silent_for_huge_logits():
    a = np.array([[-1e4, -800.0, -40.0, 0.0, 40.0, 800.0, 1e4]])
    # any overflow or 0/0 would raise FloatingPointError here (underflow to 0.0 is exact enough)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        h = Sigmoid().forward(a)
    assert np.all(np.isfinite(h))
    assert h[0, 0] == 0.0 and h[0, -1] == 1.0 and h[0, 3] == 0.5
    np.testing.assert_allclose(h[0, 2], np.exp(-40.0) / (1 + np.exp(-40.0)), rtol=1e-12)


def test_sigmoid_keeps_full_relative_precision():
    from scipy.special import expit  # an independent reference
    for dtype, rtol in ((np.float64, 1e-15), (np.float32, 5e-7)):
        a = np.linspace(-80, 80, 20001).astype(dtype)
        np.testing.assert_allclose(Sigmoid().forward(a[None]), expit(a)[None], rtol=rtol)
        assert Sigmoid().forward(a[None]).dtype == dtype


def test_relu_derivative_at_zero_is_zero_as_in_pytorch():
    layer = ReLU()
    layer.forward(np.zeros((1, 3)))
    np.testing.assert_array_equal(layer.backward(np.ones((1, 3))), np.zeros((1, 3)))


def test_backward_accumulates_and_zero_grad_resets(rng):
    layer = Linear(3, 2, rng=rng)
    x, dout = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    layer.forward(x)
    layer.zero_grad()
    layer.backward(dout)
    once = layer.grads["W"].copy()
    layer.backward(dout)
    np.testing.assert_allclose(layer.grads["W"], 2 * once, rtol=1e-14)
    layer.zero_grad()
    assert not layer.grads["W"].any()


def test_first_layer_skips_the_input_gradient(rng):
    """needs_input_grad=False: the same parameter gradients, and no dL/dx (None)."""
    x, dout = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    full, first = Linear(3, 2, rng=0), Linear(3, 2, rng=0)
    first.needs_input_grad = False
    for layer in (full, first):
        layer.forward(x)
        layer.zero_grad()
    dx = full.backward(dout)
    assert first.backward(dout) is None
    np.testing.assert_allclose(dx, dout @ full.W, rtol=1e-14)
    for name in ("W", "b"):
        np.testing.assert_array_equal(first.grads[name], full.grads[name])


@given(shapes, seeds)
def test_sequential_autoencoder_matches_finite_differences(shape, seed):
    n, d, k = shape
    rng = np.random.default_rng(seed)
    net = Sequential(Linear(d, k, rng=rng), Tanh(), Linear(k, d, rng=rng), Sigmoid())
    x = rng.standard_normal((n, d))
    dout = rng.standard_normal((n, d))
    dx, grads = analytic(net, x, dout)
    np.testing.assert_allclose(dx, layer_fd(net, x, dout, x), rtol=1e-6, atol=1e-8)
    for name, p in net.parameters().items():
        np.testing.assert_allclose(grads[name], layer_fd(net, x, dout, p), rtol=1e-6, atol=1e-8,
                                   err_msg=name)


def test_shape_mismatch_names_expected_and_received():
    layer = Linear(4, 2)
    with pytest.raises(ValueError, match=r"\(n, 4\).*\(3, 5\)"):
        layer.forward(np.zeros((3, 5)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_raises(bad):
    x = np.zeros((2, 3))
    x[1, 2] = bad
    for layer in (Linear(3, 2), Sigmoid(), Sequential(Linear(3, 2), ReLU())):
        with pytest.raises(ValueError, match="non-finite"):
            layer.forward(x)


def test_integer_input_becomes_float64():
    layer = Linear(3, 2)
    out = layer.forward(np.array([[1, 2, 3]]))
    assert out.dtype == np.float64
    assert layer.cache.dtype == np.float64


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(RuntimeError, match="before forward"):
        Sigmoid().backward(np.ones((1, 2)))


def test_bad_sizes_name_the_argument():
    with pytest.raises(ValueError, match="out_features=0"):
        Linear(3, 0)
    with pytest.raises(TypeError, match="in_features"):
        Linear(2.5, 3)


@pytest.mark.parametrize("layer", [Sigmoid(), Tanh(), ReLU(), Identity(), Linear(3, 3)])
def test_backward_refuses_a_broadcastable_but_wrong_dout(layer):
    layer.forward(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"dout of shape \(1, 3\).*\(4, 3\)"):
        layer.backward(np.ones((1, 3)))
