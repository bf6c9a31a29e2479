"""Every Numba kernel of npae.nn.conv_kernels against its NumPy twin, plus independent references.

Float64 agreement is ~1e-15 relative (same sums in another order); float32 ~1e-6. The
tolerances below sit one to two orders of magnitude above that: tight enough to catch a
wrong index, which is off by O(1).
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.signal import correlate2d

from npae._numba import get_num_threads, set_num_threads, use_kernels_now
from npae.nn import conv_kernels as K
from npae.nn import pool_kernels as P
from npae.nn.elementwise_kernels import relu_backward_numpy

TOL = {np.float64: 1e-12, np.float32: 2e-5}


@pytest.fixture(autouse=True, scope="module")
def _kernels_not_twins():
    """The entry points run the kernels from the first call (not the twins a run's first
    calls take while a deferred kernel waits to compile)."""
    use_kernels_now()


def close(a, b, dtype):
    """max |a - b| <= TOL * max(1, max |b|): relative to the scale of the values."""
    scale = max(1.0, float(np.max(np.abs(b)))) if b.size else 1.0
    err = float(np.max(np.abs(a - b))) if b.size else 0.0
    assert err <= TOL[dtype] * scale, f"max error {err:.3g} (scale {scale:.3g})"


@st.composite
def conv_configs(draw):
    """A valid convolution: batch 1-3, channels 1-4, sizes 1-9, kernel 1-4 (rectangular),
    stride 1-4 (so also stride > kernel), padding 0-2, dilation 1-2; with probability ~1/4
    the input is exactly as large as the padded dilated kernel (kernel = input size)."""
    N, C, O = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    tight = draw(st.integers(0, 3)) == 0
    hw = []
    for a in range(2):
        lo = max(1, d[a] * (k[a] - 1) + 1 - 2 * p[a])
        hw.append(lo if tight else draw(st.integers(lo, max(lo, 9))))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    seed = draw(st.integers(0, 2**31 - 1))
    return N, C, O, tuple(hw), k, s, p, d, dtype, seed


@given(conv_configs())
def test_conv_kernels_match_twins(cfg):
    N, C, O, (H, Wd), k, s, p, d, dtype, seed = cfg
    rng = np.random.default_rng(seed)
    out_hw = (K.conv_output_size(H, k[0], s[0], p[0], d[0]),
              K.conv_output_size(Wd, k[1], s[1], p[1], d[1]))
    x = rng.standard_normal((N, C, H, Wd)).astype(dtype)
    W = rng.standard_normal((O, C) + k).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    g = rng.standard_normal((N, O) + out_hw).astype(dtype)
    y = K.conv2d_forward(x, W, b, s, p, d, out_hw)
    assert y.shape == (N, O) + out_hw and y.dtype == dtype
    close(y, K.conv2d_forward_numpy(x, W, b, s, p, d, out_hw), dtype)
    bc = rng.standard_normal(C).astype(dtype)
    for bias in (None, bc):
        dx = K.conv2d_backward_input(g, W, bias, s, p, d, (H, Wd))
        assert dx.shape == x.shape and dx.dtype == dtype
        close(dx, K.conv2d_backward_input_numpy(g, W, bias, s, p, d, (H, Wd)), dtype)
    dW = K.conv2d_backward_weight(x, g, k, s, p, d)
    assert dW.shape == W.shape and dW.dtype == dtype
    close(dW, K.conv2d_backward_weight_numpy(x, g, k, s, p, d), dtype)


@st.composite
def pool_configs(draw):
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    hw = tuple(draw(st.integers(max(1, k[a] - 2 * p[a]), 9)) for a in range(2))
    # values from {0, 1, 2}: windows with tied maxima are common, so the tie rule is tested
    ties = draw(st.booleans())
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    return N, C, hw, k, s, p, ties, dtype, draw(st.integers(0, 2**31 - 1))


@given(pool_configs())
def test_maxpool_kernels_match_twins(cfg):
    N, C, (H, Wd), k, s, p, ties, dtype, seed = cfg
    rng = np.random.default_rng(seed)
    x = (rng.integers(0, 3, (N, C, H, Wd)) if ties else rng.standard_normal((N, C, H, Wd)))
    x = x.astype(dtype)
    out_hw = (K.conv_output_size(H, k[0], s[0], p[0]), K.conv_output_size(Wd, k[1], s[1], p[1]))
    y, arg = P.maxpool2d_forward(x, k, s, p, out_hw)
    y_ref, arg_ref = P.maxpool2d_forward_numpy(x, k, s, p, out_hw)
    np.testing.assert_array_equal(y, y_ref)       # a max is exact: no rounding at all
    np.testing.assert_array_equal(arg, arg_ref)   # same winner, ties included
    g = rng.standard_normal(y.shape).astype(dtype)
    # the same additions in the same order: equal bits, which lets a run switch from the
    # twin to the kernel once it is compiled (npae._numba.Deferred)
    g[rng.random(g.shape) < 0.1] = -0.0           # 0.0 + -0.0 is +0.0 in every path
    twin = P.maxpool2d_backward_numpy(g, arg_ref, (H, Wd))
    np.testing.assert_array_equal(P.maxpool2d_backward(g, arg, (H, Wd)), twin)
    # given the window: non-overlapping windows take the kernel that writes dx entry by
    # entry; the same bits, signed zeros included
    dx = P.maxpool2d_backward(g, arg, (H, Wd), k, s, p)
    bits = {4: np.uint32, 8: np.uint64}[np.dtype(dtype).itemsize]
    np.testing.assert_array_equal(np.ascontiguousarray(dx).view(bits), twin.view(bits))
    # and a ReLU before the pooling (its output is x): dL/dx 1[x > 0], the ReLU's bits
    r = np.maximum(x - 1, 0)                           # a ReLU's output, with many zeros
    dx = P.maxpool2d_backward(g, arg, (H, Wd), k, s, p, mask=r)
    ref = relu_backward_numpy(twin, r)
    np.testing.assert_array_equal(np.ascontiguousarray(dx).view(bits), ref.view(bits))


# -- independent references (not the twins) ------------------------------------------------

@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 2), (2, 1), (3, 1)])
def test_conv_forward_equals_scipy_correlate2d(stride, padding):
    """One channel in, one out: (1) is scipy's 'valid' correlation of the zero-padded image,
    sampled every ``stride`` pixels."""
    rng = np.random.default_rng(3)
    img, ker = rng.standard_normal((9, 8)), rng.standard_normal((3, 2))
    expected = correlate2d(np.pad(img, padding), ker, mode="valid")[::stride, ::stride]
    out_hw = expected.shape
    y = K.conv2d_forward(img[None, None], ker[None, None], None, (stride,) * 2, (padding,) * 2,
                         (1, 1), out_hw)
    np.testing.assert_allclose(y[0, 0], expected, rtol=1e-13, atol=1e-13)


def test_dilated_multichannel_conv_equals_naive_loop():
    rng = np.random.default_rng(4)
    x, W = rng.standard_normal((2, 3, 8, 7)), rng.standard_normal((4, 3, 3, 2))
    b = rng.standard_normal(4)
    s, p, d = (2, 1), (1, 2), (2, 3)
    Ho, Wo = K.conv_output_size(8, 3, 2, 1, 2), K.conv_output_size(7, 2, 1, 2, 3)
    x_pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (2, 2)))
    expected = np.zeros((2, 4, Ho, Wo))
    for n in range(2):
        for o in range(4):
            for P in range(Ho):
                for Q in range(Wo):
                    patch = x_pad[n, :, P * 2:P * 2 + 2 * 2 + 1:2, Q * 1:Q * 1 + 3 * 1 + 1:3]
                    expected[n, o, P, Q] = b[o] + np.sum(patch * W[o])
    np.testing.assert_allclose(K.conv2d_forward(x, W, b, s, p, d, (Ho, Wo)), expected,
                               rtol=1e-12, atol=1e-12)


def test_transposed_conv_equals_naive_scatter():
    """Transposed convolution by its definition: every input entry scatters a weighted copy
    of the kernel into the (cropped) output -- with output_padding and dilation."""
    rng = np.random.default_rng(5)
    x, W = rng.standard_normal((2, 3, 4, 3)), rng.standard_normal((3, 2, 3, 2))
    s, p, d, op = (3, 2), (1, 0), (1, 2), (2, 1)
    H = K.conv_transpose_output_size(4, 3, 3, 1, 2, 1)
    Wd = K.conv_transpose_output_size(3, 2, 2, 0, 1, 2)
    big = np.zeros((2, 2, H + 10, Wd + 10))
    for n in range(2):
        for a in range(3):
            for h in range(4):
                for w in range(3):
                    for i in range(3):
                        for j in range(2):
                            big[n, :, h * 3 + i * 1, w * 2 + j * 2] += x[n, a, h, w] * W[a, :, i, j]
    expected = big[:, :, 1:1 + H, 0:Wd]
    np.testing.assert_allclose(K.conv2d_backward_input(x, W, None, s, p, d, (H, Wd)), expected,
                               rtol=1e-12, atol=1e-12)


def test_maxpool_ties_go_to_first_position_in_row_major_order():
    x = np.array([[[[1.0, 3.0, 3.0],
                    [3.0, 0.0, 2.0],
                    [3.0, 3.0, 3.0]]]])
    y, arg = P.maxpool2d_forward(x, (2, 2), (1, 1), (0, 0), (2, 2))
    np.testing.assert_array_equal(y[0, 0], [[3, 3], [3, 3]])
    # windows: top-left picks (0,1) over (1,0); top-right (0,1) over (0,2); bottom-left (1,0)
    # over (2,0), (2,1); bottom-right (2,1) over (2,2)
    np.testing.assert_array_equal(arg[0, 0], [[1, 1], [3, 7]])
    g = np.array([[[[1.0, 10.0], [100.0, 1000.0]]]])
    dx = P.maxpool2d_backward(g, arg, (3, 3))
    np.testing.assert_array_equal(dx[0, 0], [[0, 11, 0], [100, 0, 0], [0, 1000, 0]])


def test_maxpool_padding_is_minus_infinity_not_zero():
    x = -np.ones((1, 1, 2, 2))  # a zero padding would win every window; -inf never does
    y, arg = P.maxpool2d_forward(x, (2, 2), (2, 2), (1, 1), (2, 2))
    np.testing.assert_array_equal(y, -np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(arg[0, 0], [[0, 1], [2, 3]])


def test_kernels_accept_any_memory_layout():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 2, 10, 9))[:, :, ::2, 1:]  # non-contiguous view
    W = rng.standard_normal((2, 2, 2, 2))
    expected = K.conv2d_forward_numpy(x, W, None, (1, 1), (0, 0), (1, 1), (4, 7))
    for arr in (x, np.ascontiguousarray(x), np.asfortranarray(x)):
        np.testing.assert_allclose(K.conv2d_forward(arr, W, None, (1, 1), (0, 0), (1, 1), (4, 7)),
                                   expected, rtol=1e-13, atol=1e-13)


def _three_maps(seed, N, dtype):
    """A callable giving (1), (2) and (3) of one strided configuration, on the same random
    x, W and g at every call (batch N: its work passes SMALL_WORK, so the rows are split)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, 4, 9, 9)).astype(dtype)
    W = rng.standard_normal((5, 4, 3, 3)).astype(dtype)
    g = rng.standard_normal((N, 5, 4, 4)).astype(dtype)
    args = ((2, 2), (1, 1), (1, 1))
    return lambda: (K.conv2d_forward(x, W, None, *args, (4, 4)),
                    K.conv2d_backward_input(g, W, None, *args, (9, 9)),
                    K.conv2d_backward_weight(x, g, (3, 3), *args))


def test_results_are_bit_identical_across_runs_and_thread_counts():
    run = _three_maps(7, 37, np.float32)

    before = get_num_threads()
    try:
        first = run()
        set_num_threads(1)
        single = run()
    finally:
        set_num_threads(before)
    again = run()
    for a, b, c in zip(first, single, again):
        assert np.array_equal(a, b) and np.array_equal(a, c)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_python_threads_and_the_parallel_wrappers_give_the_same_bits(dtype, monkeypatch):
    """A run's first calls split rows over Python threads, later ones over the kernels'
    ``parallel=True`` wrappers (once compiled): the switch must not change a bit."""
    if get_num_threads() < 2:
        pytest.skip("one Numba thread here: both ways run the serial kernel")
    run = _three_maps(11, 64, dtype)

    wrappers = run()
    for _, deferred in K._PARALLEL.values():
        monkeypatch.setattr(deferred, "ready", lambda *a: False)
    threads = run()
    for a, b in zip(wrappers, threads):
        assert a.dtype == dtype and np.array_equal(a, b)


def test_lecture_net_shapes_follow_pytorch_rules():
    """The lecture's listing (padding 0 in the first ConvTranspose2d), shapes as PyTorch gives."""
    assert K.conv_output_size(28, 3, 3, 1) == 10          # Conv2d(1, 16, 3, s3, p1)
    assert K.conv_output_size(10, 2, 2, 0) == 5           # MaxPool2d(2, 2)
    assert K.conv_output_size(5, 3, 2, 1) == 3            # Conv2d(16, 8, 3, s2, p1)
    assert K.conv_output_size(3, 2, 1, 0) == 2            # MaxPool2d(2, 1)
    assert K.conv_transpose_output_size(2, 3, 2, 0) == 5  # ConvTranspose2d(8, 16, 3, s2)
    assert K.conv_transpose_output_size(2, 3, 2, 1) == 3  # ... with the slide's padding 1
    assert K.conv_transpose_output_size(5, 5, 3, 1) == 15  # ConvTranspose2d(16, 8, 5, s3, p1)
    assert K.conv_transpose_output_size(15, 2, 2, 1) == 28  # ConvTranspose2d(8, 1, 2, s2, p1)


@given(st.sampled_from([np.float32, np.float64]), st.integers(1, 12), st.integers(1, 9),
       st.integers(1, 9), st.integers(1, 160), st.integers(0, 2 ** 32 - 1))
def test_bias_gradient_kernel_gives_its_twins_bits(dtype, O, H, W, N, seed):
    """A deferred kernel: a run switches from the twin to it once it is compiled, so the bits
    must be the twin's for every shape (one lane, N = 1, goes to the twin: NumPy sums a
    contiguous axis pairwise); values over 1e-4..1e4 with zeros of both signs make any other
    order of the additions show. And the sum itself, against float64 sums written here."""
    rng = np.random.default_rng(seed)
    g_ = (rng.standard_normal((O, H, W, N)) * 10.0 ** rng.integers(-4, 5, (O, H, W, N)))
    g_[rng.random(g_.shape) < 0.1] = 0.0
    g_[rng.random(g_.shape) < 0.1] = -0.0
    g_ = g_.astype(dtype)
    db = K.bias_gradient(g_)
    twin = K.bias_gradient_numpy(g_)
    assert db.dtype == dtype and db.shape == (O,)
    bits = {np.float32: np.uint32, np.float64: np.uint64}[dtype]
    np.testing.assert_array_equal(db.view(bits), twin.view(bits))
    exact = np.array([sum(float(v) for v in g_[o].ravel()) for o in range(O)])
    bound = 4 * H * W * N * np.finfo(dtype).eps * np.abs(g_).reshape(O, -1).sum(axis=1)
    assert np.all(np.abs(db - exact) <= bound + np.finfo(dtype).tiny)


def test_a_mask_of_another_dtype_is_compared_in_its_own():
    """The fused ReLU backward's 1[mask > 0] for a float64 mask on a float32 gradient: a
    tiny positive float64 entry (which float32 rounds to 0) still counts as > 0, as in the
    ReLU's own backward; in the conv kernel and in max pooling's."""
    use_kernels_now()
    rng = np.random.default_rng(2)
    g = rng.standard_normal((3, 2, 4, 4)).astype(np.float32)
    W = rng.standard_normal((2, 2, 1, 1)).astype(np.float32)
    mask = np.where(rng.random((3, 2, 4, 4)) < 0.5, 1e-50, 0.0)       # float64
    plain = K.conv2d_forward(g, W, None, (1, 1), (0, 0), (1, 1), (4, 4))
    fused = K.conv2d_forward(g, W, None, (1, 1), (0, 0), (1, 1), (4, 4), mask=mask)
    np.testing.assert_array_equal(fused, relu_backward_numpy(plain, mask))
    assert (fused != 0).sum() == (mask > 0).sum()
    x = rng.standard_normal((3, 2, 4, 4)).astype(np.float32)
    _, arg = P.maxpool2d_forward(x, (2, 2), (2, 2), (0, 0), (2, 2))
    gp = rng.standard_normal((3, 2, 2, 2)).astype(np.float32)
    dx = P.maxpool2d_backward(gp, arg, (4, 4), (2, 2), (2, 2), (0, 0), mask=mask)
    ref = relu_backward_numpy(P.maxpool2d_backward_numpy(gp, arg, (4, 4)), mask)
    np.testing.assert_array_equal(dx, ref)
