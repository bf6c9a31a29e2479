"""Conv2d, ConvTranspose2d, MaxPool2d: finite differences, PyTorch's shapes, the adjoint
identity, dtypes, the layer contract and the error messages.

Finite differences: the layers are linear in x and in W (max pooling piecewise linear), so
central differences carry only rounding error, ~1e-9 relative in float64; we require 1e-7.
The upstream gradient is random (standard normal), never all ones.
"""
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npae.gradcheck import check_layer, numerical_gradient
from npae.nn import (Conv2d, ConvTranspose2d, MaxPool2d, ReLU, Sequential, Tanh, set_dtype)
from npae.nn import conv_kernels as K
from npae.nn import pool_kernels as P

FD_RTOL = 1e-7  # expected ~1e-9 (rounding only: the maps are linear)


def rel_err(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def fd_check_layer(layer, x, rng):
    """dL/dx and every dL/dparam of L = sum(G * layer(x)), G random, against central
    differences; also checks that backward accumulates (a second call doubles grads)."""
    y = layer.forward(x)
    G = rng.standard_normal(y.shape)
    layer.zero_grad()
    dx = layer.backward(G)
    analytic = {k: v.copy() for k, v in layer.grads.items()}

    def L(_):
        return float(np.sum(layer.forward(x) * G))

    assert rel_err(dx, numerical_gradient(L, x)) < FD_RTOL
    for name, p in layer.params.items():
        assert rel_err(analytic[name], numerical_gradient(L, p)) < FD_RTOL, name
    layer.forward(x)
    layer.backward(G)
    for name in layer.params:  # "+=": a second backward without zero_grad doubles
        np.testing.assert_allclose(layer.grads[name], 2 * analytic[name], rtol=1e-14, atol=0)


@st.composite
def layer_configs(draw):
    C, O = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    return C, O, k, s, p, d, draw(st.integers(0, 2**31 - 1))


@settings(max_examples=10)
@given(layer_configs(), st.integers(1, 6), st.integers(1, 6))
def test_conv2d_gradients_match_finite_differences(cfg, extra_h, extra_w):
    C, O, k, s, p, d, seed = cfg
    rng = np.random.default_rng(seed)
    H = max(1, d[0] * (k[0] - 1) + 1 - 2 * p[0]) + extra_h - 1
    Wd = max(1, d[1] * (k[1] - 1) + 1 - 2 * p[1]) + extra_w - 1
    layer = Conv2d(C, O, k, stride=s, padding=p, dilation=d, rng=seed)
    fd_check_layer(layer, rng.standard_normal((2, C, H, Wd)), rng)


@settings(max_examples=10)
@given(layer_configs(), st.integers(1, 4), st.integers(1, 4), st.data())
def test_conv_transpose2d_gradients_match_finite_differences(cfg, H, Wd, data):
    C, O, k, s, p, d, seed = cfg
    op = tuple(data.draw(st.integers(0, max(s[a], d[a]) - 1)) for a in range(2))
    out = [K.conv_transpose_output_size(n, k[a], s[a], p[a], op[a], d[a])
           for a, n in enumerate((H, Wd))]
    if min(out) < 1:  # padding larger than the output: PyTorch refuses it too (tested below)
        return
    rng = np.random.default_rng(seed)
    layer = ConvTranspose2d(C, O, k, stride=s, padding=p, output_padding=op, dilation=d, rng=seed)
    fd_check_layer(layer, rng.standard_normal((2, C, H, Wd)), rng)


@settings(max_examples=10)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),
       st.integers(0, 2**31 - 1))
def test_maxpool2d_gradient_matches_finite_differences(kh, kw, sh, sw, seed):
    rng = np.random.default_rng(seed)
    layer = MaxPool2d((kh, kw), stride=(sh, sw), padding=(kh // 2, kw // 2))
    # continuous values: no two entries of a window lie within the step h of each other
    fd_check_layer(layer, rng.standard_normal((2, 2, 6, 5)), rng)


@pytest.mark.parametrize("layer,shape", [
    (Conv2d(2, 3, (3, 2), stride=2, padding=1, dilation=(1, 2), rng=0), (2, 2, 7, 6)),
    (ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1, rng=0), (2, 2, 4, 3)),
    (MaxPool2d(3, stride=2, padding=1), (2, 2, 7, 6)),
    (Sequential(Conv2d(1, 2, 3, padding=1, rng=0), ReLU(), MaxPool2d(2),
                ConvTranspose2d(2, 1, 2, stride=2, rng=1), Tanh()), (2, 1, 6, 6)),
])
def test_npae_gradcheck_passes_the_layers_and_their_contract(layer, shape):
    """npae's own checker (what students use): every gradient plus the contract checks
    (zero dout -> zero grads, dout untouched, a second backward doubles the grads)."""
    report = check_layer(layer, np.random.default_rng(8).standard_normal(shape))
    assert report.ok, str(report)


def test_lecture_net_shapes_and_parameter_count():
    """The lecture's net with PyTorch's shapes (padding 0 in the first ConvTranspose2d)."""
    net = Sequential(Conv2d(1, 16, 3, stride=3, padding=1), ReLU(), MaxPool2d(2, stride=2),
                     Conv2d(16, 8, 3, stride=2, padding=1), ReLU(), MaxPool2d(2, stride=1),
                     ConvTranspose2d(8, 16, 3, stride=2), ReLU(),
                     ConvTranspose2d(16, 8, 5, stride=3, padding=1), ReLU(),
                     ConvTranspose2d(8, 1, 2, stride=2, padding=1), Tanh())
    expected = [(16, 10, 10), (16, 10, 10), (16, 5, 5), (8, 3, 3), (8, 3, 3), (8, 2, 2),
                (16, 5, 5), (16, 5, 5), (8, 15, 15), (8, 15, 15), (1, 28, 28), (1, 28, 28)]
    shape = (4, 1, 28, 28)
    for layer, exp in zip(net, expected):
        shape = layer.output_shape(shape)
        assert shape == (4,) + exp, layer
    # 160 + 1160 + 1168 + 3208 + 33 (16*9+16, 8*16*9+8, 8*16*9+16, 16*8*25+8, 8*4+1)
    assert sum(p.size for p in net.parameters().values()) == 5729
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28))
    assert net.forward(x).shape == (4, 1, 28, 28)


@pytest.mark.parametrize("layer,in_shape,out_shape", [
    (Conv2d(3, 64, 7, stride=2, padding=3), (1, 3, 224, 224), (1, 64, 112, 112)),  # ResNet stem
    (MaxPool2d(3, stride=2, padding=1), (1, 64, 112, 112), (1, 64, 56, 56)),
    (Conv2d(3, 8, (3, 5), stride=(2, 1), padding=(1, 2), dilation=(1, 2)), (2, 3, 10, 12),
     (2, 8, 5, 8)),
    (ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1), (1, 2, 7, 7),
     (1, 3, 14, 14)),
    (ConvTranspose2d(2, 3, (2, 4), stride=(1, 3), dilation=(3, 1)), (1, 2, 5, 5),
     (1, 3, 8, 16)),
    (MaxPool2d((2, 3)), (1, 1, 7, 9), (1, 1, 3, 3)),
])
def test_output_shapes_follow_pytorch(layer, in_shape, out_shape):
    assert layer.output_shape(in_shape) == out_shape
    x = np.zeros(in_shape) if np.prod(in_shape) < 10_000 else None
    if x is not None:
        assert layer.forward(x).shape == out_shape


def test_weight_layouts_and_init_are_pytorchs():
    conv = Conv2d(3, 5, (2, 4), rng=0)
    convt = ConvTranspose2d(3, 5, (2, 4), rng=0)
    assert conv.params["W"].shape == (5, 3, 2, 4) and conv.params["b"].shape == (5,)
    assert convt.params["W"].shape == (3, 5, 2, 4) and convt.params["b"].shape == (5,)
    big = Conv2d(64, 64, 3, rng=1)
    bound = 1 / np.sqrt(64 * 9)  # U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in * kH * kW
    W = big.params["W"]
    assert np.abs(W).max() <= bound and np.abs(W).max() > 0.99 * bound
    assert abs(W.std() - bound / np.sqrt(3)) < 0.02 * bound  # std of U(-r, r) is r / sqrt(3)
    bt = 1 / np.sqrt(5 * 8)  # ConvTranspose2d: fan_in from W.shape[1] = out_channels
    assert np.abs(convt.params["W"]).max() <= bt and np.abs(convt.params["b"]).max() <= bt
    assert "b" not in Conv2d(1, 1, 1, bias=False).params


def test_conv_transpose_is_the_adjoint_of_conv():
    """<ConvT_W(x), y> = <x, Conv_W(y)> with the same array W and no bias."""
    rng = np.random.default_rng(1)
    ct = ConvTranspose2d(3, 2, (3, 2), stride=(2, 3), padding=(1, 1), output_padding=(1, 0),
                         dilation=(1, 2), bias=False, rng=0)
    conv = Conv2d(2, 3, (3, 2), stride=(2, 3), padding=(1, 1), dilation=(1, 2), bias=False)
    conv.params["W"] = ct.params["W"]  # Conv2d(out->in) weight (3, 2, kH, kW): the same array
    x = rng.standard_normal((2, 3, 4, 5))
    z = ct.forward(x)
    y = rng.standard_normal(z.shape)
    cy = conv.forward(y)
    assert cy.shape == x.shape
    np.testing.assert_allclose(np.sum(z * y), np.sum(x * cy), rtol=1e-12)


def test_float32_in_float32_out_and_set_dtype():
    rng = np.random.default_rng(2)
    layers = [Conv2d(2, 3, 3, padding=1, rng=0), ConvTranspose2d(2, 3, 3, stride=2, rng=0),
              MaxPool2d(2)]
    x64 = rng.standard_normal((3, 2, 6, 6))
    for layer in layers:
        y64 = layer.forward(x64)
        g64 = layer.backward(np.ones_like(y64) * 0.5)
        set_dtype(layer, np.float32)
        assert all(p.dtype == np.float32 for p in layer.params.values())
        assert all(g.dtype == np.float32 for g in layer.grads.values())
        y32 = layer.forward(x64.astype(np.float32))
        g32 = layer.backward(np.ones(y32.shape, np.float32) * 0.5)
        assert y32.dtype == np.float32 and g32.dtype == np.float32
        np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(g32, g64, rtol=1e-5, atol=1e-5)
    assert Conv2d(1, 1, 1, dtype=np.float32).params["W"].dtype == np.float32
    with pytest.raises(ValueError, match="float16"):
        set_dtype(Conv2d(1, 1, 1), np.float16)


def test_set_dtype_walks_a_sequential():
    net = set_dtype(Sequential(Conv2d(1, 2, 3), ReLU(), ConvTranspose2d(2, 1, 3)), np.float32)
    assert {p.dtype for p in net.parameters().values()} == {np.dtype(np.float32)}


def test_backward_before_forward_and_wrong_dout_shape():
    layer = Conv2d(1, 2, 3)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((1, 2, 2, 2)))
    layer.forward(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match=re.escape("forward output, (1, 2, 2, 2)")):
        layer.backward(np.zeros((1, 2, 3, 3)))


@pytest.mark.parametrize("make,x_shape,pattern", [
    (lambda: Conv2d(3, 4, 3), (3, 8, 8), "4-D input"),
    (lambda: Conv2d(3, 4, 3), (2, 1, 8, 8), "3 input channel"),
    (lambda: ConvTranspose2d(3, 4, 3), (2, 4, 8, 8), "3 input channel"),
    (lambda: Conv2d(1, 1, (3, 5)), (1, 1, 8, 4), "width 4 gives an output width of 0"),
    (lambda: Conv2d(1, 1, 3, dilation=3), (1, 1, 6, 9),
     r"height 6 gives an output height of 0 < 1 \(the dilated kernel spans 7"),
    (lambda: MaxPool2d(4), (1, 1, 3, 3), "height 3 gives an output height of 0"),
    (lambda: ConvTranspose2d(1, 1, 1, padding=1), (1, 1, 1, 1), "output height of -1"),
])
def test_bad_input_errors_say_what_is_wrong(make, x_shape, pattern):
    layer = make()
    with pytest.raises(ValueError, match=pattern):
        layer.forward(np.zeros(x_shape))
    with pytest.raises(ValueError, match=pattern):
        layer.output_shape(x_shape)


def test_bad_hyper_parameters_are_refused():
    with pytest.raises(ValueError, match=r"output_padding \(height\) = 2 must be smaller than "
                                         r"the stride \(2\) or the dilation \(1\)"):
        ConvTranspose2d(1, 1, 3, stride=2, output_padding=2)
    ConvTranspose2d(1, 1, 3, stride=1, dilation=2, output_padding=1)  # allowed: < dilation
    with pytest.raises(ValueError, match=r"padding \(width\) = 2 must be at most half"):
        MaxPool2d((4, 3), padding=(1, 2))
    with pytest.raises(ValueError, match=r"stride \(height\)=0 is out of range"):
        Conv2d(1, 1, 3, stride=0)
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair"):
        Conv2d(1, 1, (3, 3, 3))
    with pytest.raises(TypeError, match="in_channels must be an integer"):
        Conv2d(1.5, 1, 3)
    with pytest.raises(ValueError, match="non-finite"):
        Conv2d(1, 1, 1).forward(np.full((1, 1, 2, 2), np.nan))


@pytest.mark.parametrize("make", [lambda: Conv2d(2, 3, 3, stride=2, padding=1, rng=0),
                                  lambda: ConvTranspose2d(2, 3, 3, stride=2, padding=1, rng=0)])
def test_needs_input_grad_false_skips_dx_and_keeps_the_parameter_gradients(make):
    """The first layer of a net reads the data: without dL/dx its W and b gradients are the
    same bits, and backward returns None."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 2, 7, 7))
    grads = []
    for needs in (True, False):
        layer = make()
        layer.needs_input_grad = needs
        y = layer.forward(x)
        dx = layer.backward(np.random.default_rng(9).standard_normal(y.shape))
        assert (dx is None) == (not needs)
        grads.append({k: v.copy() for k, v in layer.grads.items()})
    for k in grads[0]:
        np.testing.assert_array_equal(grads[0][k], grads[1][k])


def test_conv_autoencoder_first_layer_forms_no_input_gradient():
    from npae.models import ConvAutoencoder
    m = ConvAutoencoder(n_epochs=0, verbose=False).fit(np.zeros((2, 1, 28, 28)))
    first = m.encoder_.layers[0]
    assert first.needs_input_grad is False
    assert all(layer.needs_input_grad for layer in m.encoder_.layers[1:])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_empty_batch_passes_through_every_layer(dtype):
    """A batch of 0 images (a model's layer applied to an empty slice) goes forward and back
    with the shapes it should and adds nothing to the gradients."""
    net = set_dtype(Sequential(Conv2d(1, 2, 3, padding=1, rng=0), ReLU(), MaxPool2d(2),
                               ConvTranspose2d(2, 1, 2, stride=2, rng=1), Tanh()), dtype)
    y = net.forward(np.zeros((0, 1, 6, 6), dtype))
    assert y.shape == (0, 1, 6, 6) and y.dtype == dtype
    net.zero_grad()
    dx = net.backward(np.zeros_like(y))
    assert dx.shape == (0, 1, 6, 6)
    assert all(not g.any() for g in net.gradients().values())


def _lecture_net(dtype, fuse):
    """The lecture's encoder and decoder as one Sequential (every layer forms dL/dx)."""
    from npae.models.conv import LECTURE_DECODER, LECTURE_ENCODER, ConvAutoencoder
    model = ConvAutoencoder(encoder=LECTURE_ENCODER, decoder=LECTURE_DECODER)
    enc, dec, _ = model._build((1, 28, 28), np.random.default_rng(3), dtype)
    net = Sequential(enc.layers + dec.layers)
    net.layers[0].needs_input_grad = True     # the model leaves it off: nothing needs dL/dx
    net.fuse = fuse
    return net


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_conv_relu_pairs_give_the_layers_bits(dtype, compiled, monkeypatch):
    """Sequential's fused pairs (a conv layer's kernel taking the ReLU after it in forward,
    and the ReLU before it in backward) against the layers one at a time, on the lecture's
    net: the output, dL/dx, every parameter gradient and every layer's cache are the same
    bits, and the fused calls really ran (4 in forward, 4 in backward), before the fused
    kernels are compiled (the ReLU applied after the plain kernel) and after (folded into
    their stores: ``compiled``, where Numba is on). With Numba off the conv twins and the
    ReLU's twins give the same bits too."""
    from npae._numba import NUMBA_ENABLED
    if compiled and not NUMBA_ENABLED:
        pytest.skip("Numba is off: the fused kernels are never compiled")
    for deferred in (K._deferred_gather_relu, P._deferred_pool_backward_tiled):
        monkeypatch.setattr(deferred, "done", compiled)
        monkeypatch.setattr(deferred, "after", 10**9)   # no background compile mid-test
    folded = []
    split = K._split

    def spy_split(kernel, *args):
        folded.append(kernel is K._gather_relu)
        return split(kernel, *args)
    monkeypatch.setattr(K, "_split", spy_split)
    calls = []
    for cls in (Conv2d, ConvTranspose2d, MaxPool2d):
        for name in ("forward_relu", "backward_relu"):
            if not hasattr(cls, name):
                continue
            def spy(self, arg, _f=getattr(cls, name), _n=name):
                calls.append(_n)
                return _f(self, arg)
            monkeypatch.setattr(cls, name, spy)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((6, 1, 28, 28)).astype(dtype)
    x[0, 0, :10] = 0.0        # exact zeros in the data: ReLU inputs at 0 in the first layer
    g = rng.standard_normal((6, 1, 28, 28)).astype(dtype)
    out = {}
    for fuse in (False, True):
        calls.clear()
        net = _lecture_net(dtype, fuse)
        net.zero_grad()
        y = net.forward(x)
        dx = net.backward(g)
        caches = [layer.cache for layer in net.layers if isinstance(layer, ReLU)]
        out[fuse] = (y, dx, net.gradients(), caches, list(calls))
        out[fuse] += (sum(folded),)
        folded.clear()
    (y0, dx0, g0, c0, calls0, f0), (y1, dx1, g1, c1, calls1, f1) = out[False], out[True]
    # the kernel folding the ReLU in: 4 forward, 2 input gradients (the other 2 are pools')
    assert f0 == 0 and f1 == (6 if compiled else 0)
    assert calls0 == [] and calls1.count("forward_relu") == 4
    # every ReLU has a conv or a max pooling after it
    assert calls1.count("backward_relu") == 4

    def same(a, b):
        bits = {4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
        assert a.shape == b.shape and a.dtype == b.dtype == dtype
        np.testing.assert_array_equal(np.ascontiguousarray(a).view(bits),
                                      np.ascontiguousarray(b).view(bits))
    same(y0, y1)
    same(dx0, dx1)
    assert g0.keys() == g1.keys() and len(g0) == 10
    for k in g0:
        same(g0[k], g1[k])
    for a, b in zip(c0, c1):
        same(a, b)


def test_a_subclass_that_changes_forward_is_not_fused():
    """A layer whose forward or backward is not the one the fused kernel reproduces (here a
    ReLU subclass that leaks) runs on its own: the fused path would give plain ReLU."""
    class Leaky(ReLU):
        def forward(self, a):
            self.cache = a
            return np.where(a > 0, a, 0.1 * a)

        def backward(self, dout):
            return dout * np.where(self.cache > 0, 1.0, 0.1)

    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 1, 6, 6))
    nets = [Sequential(Conv2d(1, 2, 3, padding=1, rng=0), Leaky(), ConvTranspose2d(2, 1, 1, rng=1))
            for _ in range(2)]
    nets[1].fuse = False
    ys = [net.forward(x) for net in nets]
    np.testing.assert_array_equal(ys[0], ys[1])
    assert (ys[0] < 0).any() or (nets[0].layers[1].cache < 0).any()  # the leak is there
    dxs = [net.backward(np.ones_like(ys[0])) for net in nets]
    np.testing.assert_array_equal(dxs[0], dxs[1])


@pytest.mark.parametrize("compiled", [False, True])
def test_a_fused_net_matches_finite_differences(compiled, monkeypatch):
    """The fused path's gradients (a conv layer taking the ReLU after it, a conv layer and a
    max pooling taking the ReLU before it) against central differences in float64: dL/dx and
    every parameter, before and after the fused kernels are compiled (fixed seeds: no
    pre-activation lies within a step of ReLU's kink)."""
    from npae._numba import NUMBA_ENABLED
    if compiled and not NUMBA_ENABLED:
        pytest.skip("Numba is off: the fused kernels are never compiled")
    for deferred in (K._deferred_gather_relu, P._deferred_pool_backward_tiled):
        monkeypatch.setattr(deferred, "done", compiled)
        monkeypatch.setattr(deferred, "after", 10**9)
    net = Sequential(Conv2d(1, 3, 3, padding=1, rng=0), ReLU(), MaxPool2d(2),
                     ConvTranspose2d(3, 2, 2, stride=2, rng=1), ReLU(),
                     Conv2d(2, 1, 3, padding=1, rng=2))
    assert net.fuse
    fd_check_layer(net, np.random.default_rng(7).standard_normal((2, 1, 6, 6)),
                   np.random.default_rng(8))
