"""The element-wise kernels of npae.nn.elementwise_kernels against their NumPy twins and against
formulas written here (scipy's expit, NumPy's logaddexp).

The kernels repeat the twins' operations in the same order and dtype, so h, x̂ and every
gradient entry must be *equal*; only the loss value is summed in another order (products of
up to 64 / 512 factors, then logs), ~1e-7 relative in float32 and ~1e-15 in float64.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import expit

from npae._numba import NUMBA_ENABLED
from npae.nn import elementwise_kernels as E

DTYPES = (np.float32, np.float64)
LOSS_RTOL = {np.float32: 2e-6, np.float64: 1e-13}


@st.composite
def logits_and_targets(draw):
    """â and x of one shape (1-2000 entries, so several of the kernel's chunks), any dtype;
    â at scales from 0.01 to 1e4 (saturated), with exact zeros; x in [0, 1], some binary."""
    dtype = draw(st.sampled_from(DTYPES))
    n, d = draw(st.integers(1, 40)), draw(st.integers(1, 50))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    scale = draw(st.sampled_from([0.01, 1.0, 5.0, 40.0, 1e4]))
    rng = np.random.default_rng(seed)
    a = (scale * rng.standard_normal((n, d))).astype(dtype)
    a[rng.random((n, d)) < 0.1] = 0.0
    x = rng.random((n, d)).astype(dtype)
    x[rng.random((n, d)) < 0.3] = 1.0
    x[rng.random((n, d)) < 0.3] = 0.0
    return a, x


@given(logits_and_targets())
def test_sigmoid_kernel_equals_its_twin_and_expit(ax):
    a, _ = ax
    h = E.sigmoid(a)
    assert h.dtype == a.dtype and h.shape == a.shape
    np.testing.assert_array_equal(h, E.sigmoid_numpy(a))
    # an independent reference, in float64: within 4 ulps of the dtype (the formula's claim
    # is 2); absolute slack only below the smallest normal number (sigm(-720) = 1.3e-313 is
    # a subnormal that npae keeps and expit flushes to 0)
    ref = expit(a.astype(np.float64))
    np.testing.assert_allclose(h, ref.astype(a.dtype), rtol=4 * np.finfo(a.dtype).eps,
                               atol=float(np.finfo(a.dtype).tiny))


@given(logits_and_targets())
def test_sigmoid_backward_kernel_equals_its_twin(ax):
    a, dout = ax
    h = E.sigmoid(a)
    g = E.sigmoid_backward(dout, h)
    np.testing.assert_array_equal(g, E.sigmoid_backward_numpy(dout, h))
    ref = dout.astype(np.float64) * expit(a.astype(np.float64)) * expit(-a.astype(np.float64))
    # h (1 - h) from a rounded h: 1 - h carries an absolute error of ~eps (cancellation
    # where h is near 1), so the bound is eps |dout| absolute plus a few eps relative
    eps = np.finfo(a.dtype).eps
    assert np.all(np.abs(g - ref) <= 2 * eps * np.abs(dout) + 8 * eps * np.abs(ref))


def _cross_entropy_float64(a, x):
    """(1/n) sum [softplus(â) - x â], with NumPy's logaddexp(0, â) = log(1 + exp(â))."""
    a, x = a.astype(np.float64), x.astype(np.float64)
    return float((np.logaddexp(0.0, a) - x * a).sum() / a.shape[0])


@given(logits_and_targets())
def test_cross_entropy_kernel_equals_its_twin_and_a_formula(ax):
    a, x = ax
    dtype = a.dtype.type
    L, g = E.cross_entropy_logits(a, x)
    L_ref, g_ref = E.cross_entropy_logits_numpy(a, x)
    np.testing.assert_array_equal(g, g_ref)                    # same operations: equal
    assert g.dtype == a.dtype
    # the loss: summation order differs; the twin itself sums in the dtype, so compare both
    # with the float64 formula, scaled by the sum of |terms| (what rounding is relative to)
    exact = _cross_entropy_float64(a, x)
    size = float((np.abs(a.astype(np.float64)) + np.log(2.0)).sum() / a.shape[0])
    assert abs(L - exact) <= LOSS_RTOL[dtype] * size
    assert abs(L_ref - exact) <= LOSS_RTOL[dtype] * size
    L_only, none = E.cross_entropy_logits(a, x, need_grad=False)
    assert none is None and L_only == L
    # bit-reproducible wherever the arrays lie in memory (here: 4 bytes off their alignment)
    buf = np.empty(2 * a.size + 1, a.dtype)
    a2, x2 = buf[1:a.size + 1].reshape(a.shape), buf[a.size + 1:].reshape(a.shape)
    a2[...], x2[...] = a, x
    assert E.cross_entropy_logits(a2, x2)[0] == L
    # the gradient (4), independently: (sigm(â) - x) / n
    ref = (expit(a.astype(np.float64)) - x) / a.shape[0]
    np.testing.assert_allclose(g, ref, rtol=0, atol=4 * np.finfo(dtype).eps / a.shape[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_products_cannot_overflow(dtype):
    """â = 0 everywhere makes every factor 1 + exp(0) = 2, the largest possible: a chunk of
    64 (float32) gives 2^64, fine; a chunk of 128 would give 2^128 = inf in float32."""
    a = np.zeros((300, 1000), dtype)
    x = np.full_like(a, 0.5)
    L, _ = E.cross_entropy_logits(a, x)
    assert L == pytest.approx(1000 * np.log(2.0), rel=LOSS_RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_saturated_logits_stay_finite(dtype):
    a = np.array([[1e4, -1e4, 88.0, -88.0, 0.0]], dtype)
    x = np.array([[1.0, 0.0, 0.0, 1.0, 0.5]], dtype)
    L, g = E.cross_entropy_logits(a, x)
    assert L == pytest.approx(88.0 + 88.0 + np.log(2.0), rel=1e-6)
    np.testing.assert_allclose(g, [[0.0, 0.0, 1.0, -1.0, 0.0]], atol=1e-30)
    np.testing.assert_array_equal(E.sigmoid(a), [[1.0, 0.0, 1.0, expit(-88.0), 0.5]]
                                  if dtype == np.float64 else E.sigmoid_numpy(a))


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_and_mixed_inputs_take_the_twin(dtype, rng):
    """Views with strides, mixed dtypes and float16 go to the twin and give its results."""
    a = rng.standard_normal((20, 30)).astype(dtype)
    x = rng.random((20, 30)).astype(dtype)
    for a_, x_ in ((a[:, ::2], x[:, ::2]), (a.T, x.T), (a, x.astype(np.float16))):
        L, g = E.cross_entropy_logits(a_, x_)
        L_ref, g_ref = E.cross_entropy_logits_numpy(a_, x_)
        assert L == L_ref
        np.testing.assert_array_equal(g, g_ref)
        np.testing.assert_array_equal(E.sigmoid(a_), E.sigmoid_numpy(a_))
    h16 = E.sigmoid(a.astype(np.float16))
    assert h16.dtype == np.float16
    np.testing.assert_allclose(h16, expit(a), rtol=2e-3)


def test_empty_arrays():
    a = np.zeros((0, 3))
    assert E.sigmoid(a).shape == (0, 3)
    assert E.sigmoid_backward(a, a).shape == (0, 3)


def _subnormal(v):
    v = np.asarray(v)
    return (v != 0) & (np.abs(v) < np.finfo(v.dtype).tiny)


@pytest.mark.parametrize("dtype", DTYPES)
def test_subnormal_results_are_flushed_to_zero(dtype):
    """Saturated units would return subnormal numbers (slow in every later product); they
    come back as exact zeros, from the kernels and the twins alike. Without the flush, each
    of the checks below finds subnormals."""
    tiny = np.finfo(dtype).tiny
    a_cut = float(np.log(tiny))                        # sigm(a) < tiny below this a
    a = np.linspace(a_cut - 30, a_cut + 3, 4001).astype(dtype).reshape(1, -1)
    x = np.zeros_like(a)
    dout = np.full_like(a, 0.3)
    for sig in (E.sigmoid, E.sigmoid_numpy):
        h = sig(a)
        assert not _subnormal(h).any()
        assert h[a < a_cut - 1].max() == 0.0 and h[a > a_cut + 1].min() >= tiny
        for back in (E.sigmoid_backward, E.sigmoid_backward_numpy):
            assert not _subnormal(back(dout, h)).any()
    for ce in (E.cross_entropy_logits, E.cross_entropy_logits_numpy):
        g = ce(a, x)[1]
        assert not _subnormal(g).any() and (g == 0).any() and (g > 0).any()
    # what the flush removes: NumPy's plain formula does produce subnormals here
    assert _subnormal(np.exp(a) / (1 + np.exp(a))).any()


# -- ReLU and Tanh (the conv autoencoder's layers) --------------------------------------------

@st.composite
def activations_and_gradients(draw):
    """a (pre-activation) and an upstream gradient of one shape and dtype, C-ordered or the
    conv layers' batch-last view (N, C, H, W) over (C, H, W, N) memory, with exact zeros of
    both signs, and now and then NaN or +-inf (a diverging net must not hide them)."""
    dtype = draw(st.sampled_from(DTYPES))
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=4, max_size=4)))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    a, g = (rng.standard_normal((2,) + shape) * 3).astype(dtype)
    a[rng.random(shape) < 0.1] = 0.0
    a[rng.random(shape) < 0.1] = -0.0
    if draw(st.booleans()):
        for v in (np.nan, np.inf, -np.inf):
            a[rng.random(shape) < 0.05] = v
            g[rng.random(shape) < 0.05] = v
    if draw(st.booleans()):   # batch-last: the same values, memory ordered (C, H, W, N)
        a = np.ascontiguousarray(a.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
        g = np.ascontiguousarray(g.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    return a, g


def _same_bits(u, v):
    """Equal entry for entry, NaN where NaN and the sign of every zero included."""
    assert u.dtype == v.dtype and u.shape == v.shape
    bits = {4: np.uint32, 8: np.uint64}[u.dtype.itemsize]
    np.testing.assert_array_equal(u.view(bits), v.view(bits))


@given(activations_and_gradients())
def test_relu_kernels_give_their_twins_bits(ag):
    """Deferred kernels (a run switches from twin to kernel when it is compiled), so the
    bits must be the twin's, NaN and signed zeros included; the output keeps a's layout."""
    from npae._numba import use_kernels_now
    use_kernels_now()
    a, g = ag
    # the kernel path, not the twin, runs (where Numba is on: npae._numba)
    assert (E._flat_alike(a) is not None) == NUMBA_ENABLED
    with np.errstate(invalid="ignore"):            # inf * 0 in the twin: NaN, as in training
        _check_relu(a, g)


def _check_relu(a, g):
    y = E.relu(a)
    assert y.strides == a.strides or not NUMBA_ENABLED   # a's memory order, for the next kernel
    _same_bits(np.ascontiguousarray(y), np.ascontiguousarray(E.relu_numpy(a)))
    # and the definition, from a formula written here: max(a, 0), NaN kept, +0.0 for a <= 0
    ref = np.where(np.isnan(a), a, np.where(a > 0, a, 0.0)).astype(a.dtype)
    _same_bits(np.ascontiguousarray(y), np.ascontiguousarray(ref))
    d = E.relu_backward(g, y)
    _same_bits(np.ascontiguousarray(d), np.ascontiguousarray(E.relu_backward_numpy(g, y)))
    finite = np.isfinite(g)
    np.testing.assert_array_equal(d[finite], np.where(a > 0, g, 0.0)[finite])


@given(activations_and_gradients())
def test_tanh_backward_kernel_gives_its_twins_bits(ag):
    from npae._numba import use_kernels_now
    use_kernels_now()
    a, g = ag
    y = np.tanh(a)
    with np.errstate(invalid="ignore"):            # inf * 0 where |y| = 1: NaN, in both
        d = E.tanh_backward(g, y)
        twin = E.tanh_backward_numpy(g, y)
    _same_bits(np.ascontiguousarray(d), np.ascontiguousarray(twin))
    ok = np.isfinite(a) & np.isfinite(g)
    with np.errstate(all="ignore"):
        ref = g.astype(np.float64) / np.cosh(a.astype(np.float64)) ** 2   # tanh' = sech^2
    eps = np.finfo(a.dtype).eps
    assert np.all(np.abs(d[ok] - ref[ok]) <= 4 * eps * np.abs(g[ok]) + 4 * eps * np.abs(ref[ok]))


def test_relu_layouts_that_differ_take_the_twin(rng):
    """An upstream gradient laid out unlike the cached output, strided views and other
    dtypes go to the twin (the kernels read memory flat, so a wrong pairing would mix
    entries up); the results are the twin's all the same."""
    a = rng.standard_normal((3, 2, 4, 5))
    y = E.relu(a)
    g_last = np.ascontiguousarray(a.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    assert E._flat_alike(g_last, y) is None
    np.testing.assert_array_equal(E.relu_backward(g_last, y), g_last * (y > 0))
    np.testing.assert_array_equal(E.tanh_backward(g_last, y), g_last * (1.0 - y * y))
    for v in (a[:, :, ::2], a.astype(np.float16)):
        assert E._flat_alike(v) is None
        np.testing.assert_array_equal(E.relu(v), np.maximum(v, 0))
    assert E.relu(np.zeros((0, 3))).shape == (0, 3)


@given(activations_and_gradients())
def test_tanh_kernel_gives_its_twins_bits(ag):
    """float32: (5) of npae.nn.elementwise_kernels, a deferred kernel, so the twin's bits,
    NaN, +-inf and signed zeros included; float64: NumPy's tanh itself."""
    from npae._numba import use_kernels_now
    use_kernels_now()
    a, _ = ag
    y = E.tanh(a)
    assert y.dtype == a.dtype and (y.strides == a.strides or not NUMBA_ENABLED)
    _same_bits(np.ascontiguousarray(y), np.ascontiguousarray(E.tanh_numpy(a)))
    if a.dtype == np.float64:
        _same_bits(np.ascontiguousarray(y), np.ascontiguousarray(np.tanh(a)))


def test_float32_tanh_is_within_one_ulp_everywhere():
    """Against float64 tanh rounded to float32, on a grid of 4 million points over
    [-10, 10] (both branches of (5), the switch at 0.35 and the clamp at 9.1), magnitudes
    from 1e-45 (subnormal) to 16, and the special values. A wrong coefficient or a lost
    term of the series shows as tens to millions of ulps; NumPy's own tanh is within 1."""
    x = np.concatenate([np.linspace(-10, 10, 4_000_001), np.logspace(-45, 1.2, 200_000),
                        -np.logspace(-45, 1.2, 200_000), np.linspace(0.34, 0.36, 20_001),
                        [0.0, -0.0, 9.1, -9.1, 3e38, -3e38, np.inf, -np.inf]]).astype(np.float32)
    y = E.tanh(x)
    ref = np.tanh(x.astype(np.float64)).astype(np.float32)
    ulps = np.abs(y.view(np.int32).astype(np.int64) - ref.view(np.int32))
    assert ulps.max() <= 1, f"{ulps.max()} ulps at x = {x[np.argmax(ulps)]!r}"
    assert np.signbit(y[x == 0]).tolist() == np.signbit(x[x == 0]).tolist()
    assert np.isnan(E.tanh(np.array([np.nan], np.float32)))[0]


@pytest.mark.skipif(not NUMBA_ENABLED, reason="the parallel wrappers are Numba kernels; "
                    "with Numba off (npae._numba) the twins run, tested above")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_maps_over_several_threads_give_the_twins_bits(dtype, rng, monkeypatch):
    """Arrays long enough for the parallel wrappers (one contiguous range per thread, cut at
    multiples of 64 entries): the twins' bits, NaN, +-inf and signed zeros included, for a
    length that is no multiple of the cut, and each wrapper really ran."""
    from npae._numba import get_num_threads, max_threads, set_num_threads, use_kernels_now
    if max_threads() < 2:
        pytest.skip("one thread on this machine: the maps never split")
    use_kernels_now()
    ran = set()
    for kernel, (parallel, deferred, least) in list(E._PARALLEL.items()):
        def spy(*args, _p=parallel):
            ran.add(_p)
            return _p(*args)
        monkeypatch.setitem(E._PARALLEL, kernel, (spy, deferred, least))
    before = get_num_threads()
    set_num_threads(2)
    try:
        n = 4 * (1 << 15) + 37
        a = (3 * rng.standard_normal(n)).astype(dtype)
        g = rng.standard_normal(n).astype(dtype)
        for v, at in ((np.nan, 5), (np.inf, n // 2 + 1), (-np.inf, n - 1), (-0.0, n // 2)):
            a[at], g[at + 3 if at + 3 < n else 0] = v, v
        with np.errstate(invalid="ignore"):        # inf * 0: NaN in kernel and twin alike
            y = E.relu(a)
            _same_bits(y, E.relu_numpy(a))
            _same_bits(E.relu_backward(g, y), E.relu_backward_numpy(g, y))
            t = E.tanh(a)
            _same_bits(t, E.tanh_numpy(a))
            _same_bits(E.tanh_backward(g, t), E.tanh_backward_numpy(g, t))
    finally:
        set_num_threads(before)
    # float64 tanh is NumPy's own (no kernel); the other maps split in both dtypes
    expected = {E._relu_parallel, E._relu_backward_parallel, E._tanh_backward_parallel}
    if dtype == np.float32:
        expected.add(E._tanh32_parallel)
    assert ran == expected
