"""Every Numba kernel agrees with its NumPy twin on NaN, inf, -inf, signed zeros, subnormal
and huge values, and NaN propagates (a kernel that maps NaN to a number hides a broken
model: a NaN weight would give finite codes).

The strategies take ordinary random arrays and overwrite a few entries with special values.
Element-wise kernels (sigmoid, its derivative, the cross-entropy gradient, Adam) must equal
their twins bit for bit, the sign of zero included; sums (convolutions, the loss) must put
NaN and +-inf in the same places and agree elsewhere to the kernels' usual tolerance.
"""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npae.nn import elementwise_kernels as E
from npae._numba import use_kernels_now
from npae.nn import conv_kernels as K
from npae.nn import pool_kernels as P
from npae.optim_kernels import adam_scalars, adam_update, adam_update_numpy
from npae.sparse_coding import gram_problem, solve_gram, sparse_encode
from test_kernels import conv_configs, pool_configs


def specials(dtype):
    """NaN, +-inf, +-0, the smallest subnormal, the smallest normal, and huge values whose
    products with O(1) weights and short sums stay finite (so any inf is a real one)."""
    huge = 1e300 if dtype == np.float64 else 1e30
    fi = np.finfo(dtype)
    return [np.nan, np.inf, -np.inf, 0.0, -0.0, float(fi.smallest_subnormal),
            -float(fi.smallest_subnormal), float(fi.tiny), huge, -huge, 1.0, -1.0]


@st.composite
def with_specials(draw, arr, dtype, max_count=8):
    """``arr`` (a fresh copy) with up to ``max_count`` entries replaced by special values."""
    arr = np.array(arr, dtype=dtype, copy=True)
    flat = arr.reshape(-1)
    for _ in range(draw(st.integers(0, min(max_count, flat.size)))):
        flat[draw(st.integers(0, flat.size - 1))] = draw(st.sampled_from(specials(dtype)))
    return arr


def bitwise_equal(a, b):
    """Same NaN positions; elsewhere the same values, zeros with the same sign."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    assert np.array_equal(nan_a, nan_b), f"NaN at {np.argwhere(nan_a ^ nan_b)[:5].tolist()}"
    assert np.array_equal(a[~nan_a], b[~nan_b])
    assert np.array_equal(np.signbit(a[~nan_a]), np.signbit(b[~nan_b])), "signed zeros differ"


def same_specials_and_close(a, b, tol):
    """NaN and +-inf in the same places (same sign); finite entries within tol * scale."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert np.array_equal(np.isnan(a), np.isnan(b)), "NaN in different places"
    assert np.array_equal(np.isposinf(a), np.isposinf(b)), "+inf in different places"
    assert np.array_equal(np.isneginf(a), np.isneginf(b)), "-inf in different places"
    fin = np.isfinite(b)
    if fin.any():
        scale = max(1.0, float(np.abs(b[fin]).max()))
        assert float(np.abs(a[fin] - b[fin]).max()) <= tol * scale


DTYPES = st.sampled_from([np.float64, np.float32])


@pytest.fixture(autouse=True, scope="module")
def _quiet_ieee_warnings():
    """inf - inf, 0 * inf and overflow are what these tests feed in on purpose."""
    use_kernels_now()   # the entry points run the kernels, not the twins of a run's start
    with np.errstate(all="ignore"):
        yield


# -- the reproducer: the Numba sigmoid mapped NaN to 0 ----------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_of_nan_is_nan(dtype):
    a = np.array([np.nan, 0.0, np.inf, -np.inf], dtype=dtype)
    for f in (E.sigmoid, E.sigmoid_numpy):
        h = f(a)
        assert np.isnan(h[0]) and h[1] == 0.5 and h[2] == 1.0 and h[3] == 0.0
    assert np.isnan(E.sigmoid_backward(np.array([1.0, np.nan], dtype), np.array([np.nan, 0.5], dtype))).all()
    L, g = E.cross_entropy_logits(np.array([[np.nan, 1.0]], dtype), np.array([[1.0, 0.0]], dtype))
    assert np.isnan(L) and np.isnan(g[0, 0]) and np.isfinite(g[0, 1])


# -- element-wise kernels: bit for bit ----------------------------------------------------------

@st.composite
def elementwise_arrays(draw, n_arrays=1, unit=False):
    dtype = draw(DTYPES)
    shape = (draw(st.integers(1, 5)), draw(st.integers(1, 130)))  # > one chunk of the loss
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1.0, 30.0, 1000.0]))
    out = [draw(with_specials(rng.standard_normal(shape) * scale, dtype))
           for _ in range(n_arrays)]
    return dtype, out, rng


@given(elementwise_arrays())
def test_sigmoid_kernel_equals_twin_on_special_values(case):
    _, (a,), _ = case
    bitwise_equal(E.sigmoid(a), E.sigmoid_numpy(a))


@given(elementwise_arrays(n_arrays=2))
def test_sigmoid_backward_kernel_equals_twin_on_special_values(case):
    dtype, (dout, a), _ = case
    h = E.sigmoid_numpy(a)                       # h in [0, 1] or NaN, as the forward gives it
    h.reshape(-1)[:1] = a.reshape(-1)[:1]     # and one entry straight from the strategy
    bitwise_equal(E.sigmoid_backward(dout, h), E.sigmoid_backward_numpy(dout, h))


@given(elementwise_arrays(), st.data())
def test_cross_entropy_kernel_equals_twin_on_special_values(case, data):
    dtype, (a_hat,), rng = case
    # targets are in [0, 1] (the models refuse others); a NaN target must still propagate
    X = data.draw(with_specials(rng.uniform(0, 1, a_hat.shape), dtype, max_count=2)
                  .map(lambda x: np.where(np.isnan(x) | ((x >= 0) & (x <= 1)), x, 0.5)
                       .astype(dtype)))
    L_k, g_k = E.cross_entropy_logits(a_hat, X)
    L_r, g_r = E.cross_entropy_logits_numpy(a_hat, X)
    bitwise_equal(g_k, g_r)
    terms = (np.abs(np.maximum(a_hat, 0)) + np.abs(X * a_hat) + 1.0).astype(np.float64)
    scale = float(np.sum(terms[np.isfinite(terms)])) / a_hat.shape[0]
    tol = 1e-12 if dtype == np.float64 else 2e-6
    if np.isnan(L_r) or np.isinf(L_r):
        assert (np.isnan(L_k) and np.isnan(L_r)) or L_k == L_r, (L_k, L_r)
    else:
        assert np.isfinite(L_k) and abs(L_k - L_r) <= tol * max(1.0, scale), (L_k, L_r)


@given(elementwise_arrays(n_arrays=2), st.sampled_from([0.0, 0.01]), st.integers(1, 5))
def test_adam_kernel_equals_twin_on_special_values(case, weight_decay, t):
    dtype, (p, g), rng = case
    m = (rng.standard_normal(p.shape) * 0.1).astype(dtype)
    v = (rng.uniform(0, 1, p.shape) * 0.1).astype(dtype)
    beta1, beta2, lr, eps = 0.9, 0.999, 1e-3, 1e-8
    c2 = math.sqrt(1 - beta2 ** t)   # Python floats, as Adam passes them to the twin
    step = lr * c2 / (1 - beta1 ** t)
    pk, mk, vk = p.copy(), m.copy(), v.copy()
    with np.errstate(all="ignore"):   # the entry point runs the kernel here (with Numba)
        adam_update(pk, g, mk, vk, beta1, beta2, step, eps * c2, weight_decay,
                    adam_scalars(dtype, beta1, beta2, step, eps * c2, weight_decay))
        adam_update_numpy(p, g, m, v, beta1, beta2, step, eps * c2, weight_decay)
    for a, b in ((pk, p), (mk, m), (vk, v)):
        bitwise_equal(a, b)
    assert np.isnan(pk[np.isnan(g)]).all()     # a NaN gradient never becomes a number


# -- convolution and pooling kernels -------------------------------------------------------------

@given(conv_configs(), st.data())
def test_conv_kernels_equal_twins_on_special_values(cfg, data):
    N, C, O, (H, Wd), k, s, p, d, dtype, seed = cfg
    rng = np.random.default_rng(seed)
    out_hw = (K.conv_output_size(H, k[0], s[0], p[0], d[0]),
              K.conv_output_size(Wd, k[1], s[1], p[1], d[1]))
    # special values in the data flowing through (x and the upstream g); the weights stay
    # finite and non-zero, as a trained model's are (load refuses non-finite weights)
    x = data.draw(with_specials(rng.standard_normal((N, C, H, Wd)), dtype))
    g = data.draw(with_specials(rng.standard_normal((N, O) + out_hw), dtype))
    W = rng.uniform(0.5, 1.5, (O, C) + k).astype(dtype) * rng.choice([-1, 1], (O, C) + k)
    b = rng.standard_normal(O).astype(dtype)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    with np.errstate(all="ignore"):
        same_specials_and_close(K.conv2d_forward(x, W, b, s, p, d, out_hw),
                                K.conv2d_forward_numpy(x, W, b, s, p, d, out_hw), tol)
        same_specials_and_close(K.conv2d_backward_input(g, W, None, s, p, d, (H, Wd)),
                                K.conv2d_backward_input_numpy(g, W, None, s, p, d, (H, Wd)), tol)
        same_specials_and_close(K.conv2d_backward_weight(x, g, k, s, p, d),
                                K.conv2d_backward_weight_numpy(x, g, k, s, p, d), tol)


@given(pool_configs(), st.data())
def test_maxpool_kernels_equal_twins_on_special_values(cfg, data):
    N, C, (H, Wd), k, s, p, ties, dtype, seed = cfg
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 3, (N, C, H, Wd)) if ties else rng.standard_normal((N, C, H, Wd))
    x = data.draw(with_specials(base, dtype, max_count=12))
    out_hw = (K.conv_output_size(H, k[0], s[0], p[0]), K.conv_output_size(Wd, k[1], s[1], p[1]))
    y, arg = P.maxpool2d_forward(x, k, s, p, out_hw)
    y_r, arg_r = P.maxpool2d_forward_numpy(x, k, s, p, out_hw)
    bitwise_equal(y, y_r)
    assert np.array_equal(arg, arg_r)
    # the arg-max always points inside the image, at the value it reports
    assert arg.min() >= 0 and arg.max() < H * Wd
    picked = np.take_along_axis(x.reshape(N, C, -1), arg.reshape(N, C, -1), axis=2)
    bitwise_equal(picked.reshape(y.shape), y)
    g = data.draw(with_specials(rng.standard_normal(y.shape), dtype))
    bitwise_equal(P.maxpool2d_backward(g, arg, (H, Wd)),
                  P.maxpool2d_backward_numpy(g, arg_r, (H, Wd)))


def test_maxpool_nan_wins_its_window_and_padding_never_does():
    x = np.array([[[[1.0, np.nan], [-np.inf, 5.0]]]])
    y, arg = P.maxpool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1))
    assert np.isnan(y[0, 0, 0, 0]) and arg[0, 0, 0, 0] == 1
    x = np.full((1, 1, 2, 2), -np.inf)
    y, arg = P.maxpool2d_forward(x, (2, 2), (1, 1), (1, 1), (3, 3))
    y_r, arg_r = P.maxpool2d_forward_numpy(x, (2, 2), (1, 1), (1, 1), (3, 3))
    assert np.array_equal(arg, arg_r) and arg.min() >= 0 and np.all(y == -np.inf)


# -- sparse coding ----------------------------------------------------------------------------

@given(n=st.integers(1, 4), d=st.integers(1, 8), m=st.integers(1, 8),
       exponent=st.sampled_from([-60, -3, 0, 3, 60]), solver=st.sampled_from(["cd", "fista"]),
       with_h=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_sparse_coding_kernels_equal_twins_on_huge_tiny_and_signed_zeros(
        n, d, m, exponent, solver, with_h, seed):
    """Data scaled by 1e-60 .. 1e60 (the lasso is scale-equivariant with lam scaled alike),
    warm starts holding -0.0 and +0.0: both backends reach the same codes, zeros of the same
    sign, and the scaled problem's codes are the unscaled ones times the scale."""
    r = np.random.default_rng(seed)
    scale = 10.0 ** exponent
    X = r.standard_normal((n, d))
    D = r.standard_normal((d, m))
    D /= np.linalg.norm(D, axis=0)
    h = r.uniform(0, 1, (n, m)) if with_h else None
    Z0 = np.where(r.random((n, m)) < 0.5, -0.0, 0.0)
    kw = dict(solver=solver, tol=1e-10, max_iter=2000)
    hs = None if h is None else h * scale
    Z_nb = sparse_encode(X * scale, D, 0.3 * scale, hs, Z0=Z0, backend="numba", **kw)
    Z_np = sparse_encode(X * scale, D, 0.3 * scale, hs, Z0=Z0, backend="numpy", **kw)
    Z_1 = sparse_encode(X, D, 0.3, h, Z0=Z0, backend="numba", **kw)
    assert np.isfinite(Z_nb).all() and np.isfinite(Z_np).all()
    np.testing.assert_allclose(Z_nb / scale, Z_np / scale, rtol=0, atol=1e-6 * (1 + np.abs(Z_1).max()))
    np.testing.assert_allclose(Z_nb / scale, Z_1, rtol=0, atol=1e-6 * (1 + np.abs(Z_1).max()))
    both_zero = (Z_nb == 0) & (Z_np == 0)
    assert np.array_equal(np.signbit(Z_nb[both_zero]), np.signbit(Z_np[both_zero]))


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_sparse_coding_refuses_what_overflows_and_what_is_not_finite(backend):
    X = np.ones((2, 3))
    D = np.eye(3)
    with pytest.raises(ValueError, match=r"X has values up to 1e\+200.*Rescale the data"):
        sparse_encode(X * 1e200, D, 1.0, backend=backend)
    # what passes that check but still overflows in the Gram form (the model's z-step calls
    # the solver directly) is refused there, never handed to a kernel
    H, C, sq = gram_problem(X, D * 1e160, None)
    with pytest.raises(ValueError, match=r"D\^T D overflowed to inf or NaN.*rescale"):
        solve_gram(H, C, sq, np.zeros((2, 3)), 1.0, "cd", 1e-6, 10, backend)
    with pytest.raises(ValueError, match=r"X contains 1 non-finite value"):
        sparse_encode(np.array([[1.0, np.nan, 0.0]]), D, 1.0, backend=backend)
    with pytest.raises(ValueError, match=r"h contains 1 non-finite value"):
        sparse_encode(X, D, 1.0, np.array([[np.inf, 0, 0], [0, 0, 0]]), backend=backend)
