"""Tests of npae.gradcheck: it passes correct gradients and FAILS wrong ones, with the hint.

Expected error magnitudes (float64, relative step h = 1e-6): central differences of smooth
functions agree with the true gradient to ~1e-9 relative; the checker's default rtol is
1e-6 plus the finite difference's own error estimate. Wrong gradients are off by O(1).
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npae import losses
from npae.gradcheck import (CheckReport, Float32Error, GradCheckResult, check_directional,
                            check_gradient, check_layer, check_params, check_terms,
                            numerical_gradient, report)
from npae.nn import Identity, Linear, ReLU, Sequential, Sigmoid, Tanh, TiedLinear

shapes = st.tuples(st.integers(1, 8), st.integers(1, 16))
seeds = st.integers(0, 2**32 - 1)


def tanh_objective(rng, n=6, k=4, d=4):
    """f(W) = sum(D * tanh(X W^T)) and its gradient (D * (1 - tanh^2))^T X, derived by hand."""
    X, D = rng.standard_normal((n, d)), rng.standard_normal((n, k))

    def f(W):
        return np.sum(D * np.tanh(X @ W.T))

    def grad(W):
        return (D * (1.0 - np.tanh(X @ W.T) ** 2)).T @ X

    return f, grad, rng.standard_normal((k, d))


def exp_sin(x):
    return np.sum(np.exp(np.sin(x)))


def exp_sin_grad(x):
    return np.cos(x) * np.exp(np.sin(x))


# --------------------------------------------------------------------------------------
# numerical_gradient
# --------------------------------------------------------------------------------------
@given(shapes, seeds)
def test_numerical_gradient_of_quadratic(shape, seed):
    rng = np.random.default_rng(seed)
    m = shape[0] * shape[1]
    A, b = rng.standard_normal((m, m)), rng.standard_normal(m)
    x = rng.standard_normal(shape)
    f = lambda v: 0.5 * v.ravel() @ A @ v.ravel() + b @ v.ravel()  # noqa: E731
    expected = (0.5 * (A + A.T) @ x.ravel() + b).reshape(shape)
    g = numerical_gradient(f, x)
    # a quadratic has no truncation error; rounding ~1e-16 |f| / 1e-6
    np.testing.assert_allclose(g, expected, rtol=1e-7, atol=1e-7 * np.abs(expected).max())


@pytest.mark.parametrize("method, tol", [("central", 1e-8), ("forward", 1e-6),
                                         ("complex", 1e-14), ("richardson", 1e-10)])
def test_methods_against_true_gradient(method, tol, rng):
    x = rng.uniform(-2, 2, size=(3, 5))
    g = numerical_gradient(exp_sin, x, method=method)
    # errors: central ~1e-10, forward ~1e-8, complex ~1e-16, richardson ~1e-12
    np.testing.assert_allclose(g, exp_sin_grad(x), rtol=0, atol=tol)


def test_complex_step_agrees_with_central(rng):
    x = rng.standard_normal(20)
    f = lambda v: np.sum(np.log1p(v ** 2) * np.tanh(v)) + np.prod(np.cos(v[:3]))  # noqa: E731
    assert np.max(np.abs(numerical_gradient(f, x, method="complex")
                         - numerical_gradient(f, x))) < 1e-9


def test_x_is_restored_and_may_be_closed_over(rng):
    W = rng.standard_normal((3, 2))
    W0 = W.copy()
    g = numerical_gradient(lambda _: np.sum(W ** 3), W)  # f ignores its argument
    np.testing.assert_allclose(g, 3 * W0 ** 2, rtol=1e-8)
    assert np.array_equal(W, W0)


def test_complex_step_needs_complex_safe_f(rng):
    x = rng.standard_normal(4)
    with pytest.raises(TypeError, match="complex"):
        numerical_gradient(lambda v: float(np.sum(v ** 2)), x, method="complex")
    with pytest.raises(TypeError, match="imaginary part"):
        numerical_gradient(lambda v: np.sum(x ** 2), x, method="complex")  # closes over x
    layer = Tanh()
    with pytest.raises(TypeError, match="complex input"):
        numerical_gradient(lambda v: np.sum(layer.forward(v)), x.reshape(2, 2),
                           method="complex")


def test_richardson_is_more_accurate_than_central(rng):
    x = rng.uniform(-2, 2, size=8)
    true = exp_sin_grad(x)
    err_c = np.abs(numerical_gradient(exp_sin, x, eps=1e-3) - true).max()
    err_r = np.abs(numerical_gradient(exp_sin, x, eps=1e-3, method="richardson") - true).max()
    assert 1e-8 < err_c < 1e-5        # O(h^2) = 1e-6
    assert err_r < err_c / 1e3        # O(h^4) = 1e-12


def test_error_estimate_bounds_the_true_error(rng):
    x = rng.uniform(-2, 2, size=10)
    true = exp_sin_grad(x)
    for step in (1e-6, 1e-3):
        r = check_gradient(exp_sin, exp_sin_grad, x, step=step)
        assert r.ok
        actual = np.abs(r.numeric - true)
        assert np.all(actual <= r.error_estimate)
    # with a large step the truncation error dominates and the estimate is sharp: 4/3 |D(h) -
    # D(h/2)| ~ c h^2 = the error of D(h), within a small factor
    assert np.all(r.error_estimate <= 3 * actual + 1e-9)


def test_numerical_gradient_bad_input():
    with pytest.raises(ValueError, match="method"):
        numerical_gradient(exp_sin, np.ones(3), method="backward")
    with pytest.raises(Float32Error, match="float32"):
        numerical_gradient(exp_sin, np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError, match="scalar"):
        numerical_gradient(lambda v: v * 2, np.ones(3))
    def log_sum(v):  # the step 1e-6 crosses 0 at v = 1e-7: log of a negative number
        with np.errstate(invalid="ignore"):
            return np.log(v).sum()

    with pytest.raises(ValueError, match="returned nan"):
        numerical_gradient(log_sum, np.array([0.5, 1e-7]))
    # integers become a float64 copy
    np.testing.assert_allclose(numerical_gradient(lambda v: np.sum(v ** 2), np.array([1, 2])),
                               [2.0, 4.0], rtol=1e-8)


@pytest.fixture
def no_warnings():
    """RuntimeWarnings (0/0 in a relative error) are errors here whatever the pytest config."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_zero_function_and_zero_gradient_give_no_0_over_0(no_warnings, rng):
    """f = 0 around x (dead ReLUs: every input negative) and gradient 0: the numeric
    gradient, its error estimate and max(|a|, |n|) are all exactly 0; the relative error
    of such entries is undefined, not NaN with a warning."""
    x = -rng.uniform(0.1, 2.0, (3, 4))
    dead = lambda v: np.sum(rng.standard_normal() * np.maximum(v, 0))  # noqa: E731
    r = check_gradient(dead, np.zeros_like(x), x)
    assert r.ok and r.max_rel_error == 0.0 and r.max_abs_error == 0.0
    assert np.all(r.numeric == 0) and np.all(r.error_estimate == 0)
    assert check_layer(ReLU(), x).ok                       # also dL/dx through the layer
    assert check_directional(lambda v: 0.0, np.zeros(3), np.ones(3)).ok
    zero = (lambda v: 0.0, np.zeros(3))
    assert check_terms({"a": zero, "b": zero}, np.ones(3)).ok
    # partly zero: entries with a = n = 0 beside ordinary ones
    y = np.array([-1.0, 0.5, -2.0, 1.5])
    sq = lambda v: np.sum(np.maximum(v, 0) ** 2)  # noqa: E731
    r = check_gradient(sq, 2 * np.maximum(y, 0), y)
    assert r.ok and r.max_rel_error < 1e-8             # ~1e-10: central difference of a square
    # and a WRONG gradient of a zero function fails, with finite errors
    r = check_gradient(lambda v: 0.0, np.ones(3), np.ones(3))
    assert not r.ok and r.max_abs_error == 1.0 and np.isfinite(r.max_rel_error)
    assert not check_directional(lambda v: 0.0, np.ones(3), np.ones(3)).ok
    assert not check_terms({"a": zero, "b": zero}, np.ones(3), grad=np.ones(3)).ok


# --------------------------------------------------------------------------------------
# check_gradient passes correct gradients
# --------------------------------------------------------------------------------------
@given(shapes, seeds)
def test_passes_sigmoid_cross_entropy(shape, seed):
    rng = np.random.default_rng(seed)
    a_hat = rng.standard_normal(shape) * 3
    x = (rng.random(shape) < 0.5).astype(float)
    r = check_gradient(lambda a: losses.cross_entropy_with_logits(a, x),
                       lambda a: losses.cross_entropy_with_logits_grad(a, x), a_hat)
    assert r.ok, r
    assert r.max_rel_error < 1e-6 and r.n_checked == a_hat.size


@given(shapes, seeds)
def test_passes_matrix_product_and_squared_error(shape, seed):
    rng = np.random.default_rng(seed)
    n, d = shape
    X, T = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    W = rng.standard_normal((d, d))
    f = lambda W: losses.squared_error(X @ W.T, T)  # noqa: E731
    g = lambda W: losses.squared_error_grad(X @ W.T, T).T @ X  # noqa: E731
    r = check_gradient(f, g, W)
    assert r.ok, r


@given(shapes, seeds)
def test_passes_sigmoid(shape, seed):
    rng = np.random.default_rng(seed)
    a, D = rng.standard_normal(shape) * 4, rng.standard_normal(shape)
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    r = check_gradient(lambda a: np.sum(D * sig(a)), lambda a: D * sig(a) * (1 - sig(a)), a)
    assert r.ok, r


# --------------------------------------------------------------------------------------
# check_gradient fails wrong gradients, with the right hint
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("factor, words", [(2.0, "factor of 2"), (0.5, "factor of 2"),
                                           (-1.0, "opposite sign"),
                                           (-2.0, "opposite sign and a factor of 2")])
def test_constant_factor_hints(factor, words, rng):
    f, grad, W = tanh_objective(rng)
    assert check_gradient(f, grad, W).ok
    r = check_gradient(f, lambda W: factor * grad(W), W)
    assert not r.ok and r.n_failed == W.size
    assert words in r.hint
    assert r.max_rel_error == pytest.approx(abs(factor - 1) / max(abs(factor), 1), rel=1e-6)


def test_transposed_hint(rng):
    f, grad, W = tanh_objective(rng, k=5, d=5)
    r = check_gradient(f, lambda W: grad(W).T, W)
    assert not r.ok and r.hint.startswith("transposed")


def test_batch_size_hint(rng):
    n = 5
    x, x_hat = rng.standard_normal((n, 3)), rng.standard_normal((n, 3))
    f = lambda xh: losses.squared_error(xh, x)  # noqa: E731  mean over the batch
    forgot_mean = lambda xh: xh - x  # noqa: E731
    r = check_gradient(f, forgot_mean, x_hat, batch_size=n)
    assert not r.ok and "off by the batch size" in r.hint and "= 5 x numeric" in r.hint
    inferred = check_gradient(f, forgot_mean, x_hat)  # n taken from x.shape[0]
    assert "batch size" in inferred.hint and "x.shape[0]" in inferred.hint
    twice = check_gradient(f, lambda xh: (xh - x) / n ** 2, x_hat, batch_size=n)
    assert "numeric / 5" in twice.hint


def test_all_zeros_hint(rng):
    f, grad, W = tanh_objective(rng)
    r = check_gradient(f, np.zeros_like(W), W)
    assert not r.ok and r.hint.startswith("all zeros")


def test_one_wrong_row_hint(rng):
    f, grad, W = tanh_objective(rng)

    def one_row_doubled(W):
        g = grad(W)
        g[2] *= 2
        return g

    r = check_gradient(f, one_row_doubled, W)
    assert not r.ok and "wrong only in row 2 (of 4)" in r.hint and "factor of 2" in r.hint
    assert r.worst_index[0] == 2 and set(np.argwhere(r.failed)[:, 0]) == {2}

    def one_column_zero(W):
        g = grad(W)
        g[:, 1] = 0
        return g

    r = check_gradient(f, one_column_zero, W)
    assert "wrong only in column 1" in r.hint and "analytic gradient is 0" in r.hint


def test_shape_mismatch_is_reported_not_raised(rng):
    n, k = 6, 3
    X, D = rng.standard_normal((n, 4)), rng.standard_normal((n, k))
    W, b = rng.standard_normal((k, 4)), rng.standard_normal(k)
    f_b = lambda b: np.sum(D * np.tanh(X @ W.T + b))  # noqa: E731
    per_row = D * (1 - np.tanh(X @ W.T + b) ** 2)  # (n, k): not yet summed over the batch
    r = check_gradient(f_b, per_row, b)
    assert not r.ok and r.max_abs_error == np.inf and r.worst_index is None
    assert "shape mismatch" in r.hint and "(6, 3)" in r.hint and "(3,)" in r.hint
    assert "sum over the batch axis" in r.hint and "matches the numeric" in r.hint
    f_W = lambda W: np.sum(D * np.tanh(X @ W.T + b))  # noqa: E731
    r = check_gradient(f_W, X.T @ per_row, W)  # (in, out) instead of (out, in)
    assert "transposed" in r.hint and "a.T matches" in r.hint
    assert "shape mismatch" in str(r)


def test_assignment_instead_of_accumulation_with_overlap_mask(rng):
    """A 1-D correlation y_j = tanh(w . x[j:j+K]): windows overlap, so dL/dx sums them."""
    K, N = 3, 10
    w, d, x = rng.standard_normal(K), rng.standard_normal(N - K + 1), rng.standard_normal(N)

    def f(x):
        return sum(d[j] * np.tanh(w @ x[j:j + K]) for j in range(N - K + 1))

    def grad(x, assign):
        g = np.zeros(N)
        for j in range(N - K + 1):
            s = d[j] * (1 - np.tanh(w @ x[j:j + K]) ** 2) * w
            if assign:
                g[j:j + K] = s  # the bug: '=' where windows meet
            else:
                g[j:j + K] += s
        return g

    coverage = np.convolve(np.ones(N - K + 1), np.ones(K))
    assert check_gradient(f, lambda x: grad(x, False), x).ok
    r = check_gradient(f, lambda x: grad(x, True), x, overlap=coverage > 1)
    assert not r.ok and r.hint.startswith("assignment instead of accumulation")
    assert not r.failed[coverage == 1].any()


def _correlate2d(x, K):
    """y = x_pad * K (cross-correlation, stride 1, zero padding 1): every x entry is read by
    at least 2 windows (4 at the corners), so every entry of dL/dx overlaps."""
    xp, k = np.pad(x, 1), K.shape[0]
    H, W = xp.shape[0] - k + 1, xp.shape[1] - k + 1
    return np.array([[np.sum(xp[i:i + k, j:j + k] * K) for j in range(W)] for i in range(H)])


def _correlate2d_grad_x(x, K, g):
    """dL/dx of L = sum(g * y), by accumulating each window's K g_ij, then un-padding."""
    k = K.shape[0]
    dxp = np.zeros((x.shape[0] + 2, x.shape[1] + 2))
    for i in range(g.shape[0]):
        for j in range(g.shape[1]):
            dxp[i:i + k, j:j + k] += g[i, j] * K
    return dxp[1:-1, 1:-1]


def test_no_accumulation_hint_when_every_entry_overlaps(rng):
    """The reported defect: a flipped kernel (the 'convolution, not correlation' slip) with
    every entry overlapping was told 'assignment instead of accumulation'. With nothing
    outside the overlap to compare, the hint must not be given."""
    x, K = rng.standard_normal((5, 4)), rng.standard_normal((3, 3))
    g = rng.standard_normal((5, 4))
    f = lambda v: np.sum(g * _correlate2d(v, K))  # noqa: E731
    everywhere = np.ones(x.shape, dtype=bool)
    assert check_gradient(f, _correlate2d_grad_x(x, K, g), x, overlap=everywhere).ok
    r = check_gradient(f, _correlate2d_grad_x(x, K[::-1, ::-1], g), x, overlap=everywhere)
    assert not r.ok and "accumulation" not in r.hint
    # it falls through to the other hints: no factor/transpose explains a flipped kernel
    assert r.hint.startswith(("no simple pattern", "the ratio analytic / numeric", "right on",
                              "wrong only")), r.hint


def test_accumulation_hint_needs_right_entries_with_a_gradient_outside_the_overlap(rng):
    """Errors confined to the overlap are evidence of '=' only if entries outside it, which
    carry a gradient, are right; outside entries whose gradient is 0 prove nothing."""
    K, N = 3, 10
    w, x = rng.standard_normal(K), rng.standard_normal(N)
    d = rng.standard_normal(N - K + 1)
    f = lambda v: np.sum(d * np.convolve(v, w[::-1], "valid"))  # noqa: E731  y_j = w . x[j:j+K]
    a = np.convolve(d, w, "full")                                # dL/dx, windows accumulated
    assert check_gradient(f, a, x).ok
    wrong = a.copy()
    wrong[3:7] *= -1                      # wrong inside the overlap (coverage > 1 on 2..7)
    mask = np.convolve(np.ones(N - K + 1), np.ones(K)) > 1
    assert check_gradient(f, wrong, x, overlap=mask).hint.startswith("assignment instead")
    # the two non-overlapping end entries get weight 0 from the upstream gradient: right, but
    # with a zero gradient they are no evidence
    d0 = d.copy()
    d0[[0, -1]] = 0.0
    f0 = lambda v: np.sum(d0 * np.convolve(v, w[::-1], "valid"))  # noqa: E731
    a0 = np.convolve(d0, w, "full")
    assert np.all(a0[~mask] == 0) and check_gradient(f0, a0, x).ok
    wrong0 = a0.copy()
    wrong0[3:7] *= -1
    r = check_gradient(f0, wrong0, x, overlap=mask)
    assert not r.ok and "accumulation" not in r.hint and "wrong only at entries" in r.hint


def test_kink_is_reported_not_failed():
    w = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    x = np.array([0.0, 1e-9, -0.5, 0.7, -3e-7])  # three inside the step of ReLU's kink
    f = lambda v: np.sum(w * np.maximum(v, 0))  # noqa: E731
    r = check_gradient(f, lambda v: w * (v > 0), x)
    # 1e-9 and -3e-7 are only near the kink: re-probed at smaller steps, checked exactly
    assert r.ok and r.n_kinks == 1 and r.n_exact == 4
    assert list(np.flatnonzero(r.kinks)) == [0]
    assert list(np.flatnonzero(r.near_kinks)) == [1, 4]
    assert "at a kink" in str(r)
    # a value outside the one-sided slopes is still wrong, kink or not
    r = check_gradient(f, lambda v: -w * (v > 0) - 1.0, x)
    assert not r.ok and r.failed.all()


def test_smooth_functions_report_no_kinks(rng):
    f, grad, W = tanh_objective(rng, n=8, k=6, d=5)
    assert check_gradient(f, grad, W * 10).n_kinks == 0


def test_float32_is_refused_or_upcast(rng):
    f, grad, W = tanh_objective(rng)
    with pytest.raises(Float32Error, match="unreliable") as exc:
        check_gradient(f, grad, W.astype(np.float32))
    assert "float64" in str(exc.value) and isinstance(exc.value, ValueError)
    with pytest.warns(UserWarning, match="float64 copy"):
        assert check_gradient(f, grad, W.astype(np.float32), upcast=True).ok


def test_sampled_mode_includes_largest_entry(rng):
    x = rng.standard_normal(5000)
    g = np.cos(x)
    g[1234] = 50.0  # the one wrong entry is also the largest one
    r = check_gradient(lambda v: np.sum(np.sin(v)), g, x, max_entries=50)
    assert r.n_checked == 50 and not r.ok and r.worst_index == (1234,)
    assert "(sampled)" in str(r)


def test_report_is_readable(rng):
    f, grad, W = tanh_objective(rng)
    good, bad = check_gradient(f, grad, W), check_gradient(f, lambda W: -grad(W), W)
    assert isinstance(bad, GradCheckResult) and bool(good) and not bad
    text = report(bad)
    assert text == str(bad) and "FAILED" in text and "hint: opposite sign" in text
    assert str(bad.worst_index) in text and len(text.splitlines()) <= 10
    assert " ok " in str(good) and "hint" not in str(good)


# --------------------------------------------------------------------------------------
# named terms
# --------------------------------------------------------------------------------------
def _recon_penalty(rng, lam=0.3):
    A, t, w = rng.standard_normal((6, 4)), rng.standard_normal(6), rng.standard_normal(4)
    recon = (lambda w: 0.5 * np.sum((A @ w - t) ** 2), lambda w: A.T @ (A @ w - t))
    penalty = (lambda w: lam * np.sum(w ** 2), lambda w: 2 * lam * w)
    return recon, penalty, w


def test_check_terms_passes_and_names_the_wrong_term(rng):
    recon, penalty, w = _recon_penalty(rng)
    r = check_terms({"recon": recon, "penalty": penalty}, w)
    assert isinstance(r, CheckReport) and r.ok and set(r.results) == {"recon", "penalty", "sum"}
    r = check_terms({"recon": recon, "penalty": (penalty[0], lambda w: 0.3 * w)}, w)
    assert not r.ok and r.failed == ["penalty", "sum"]
    assert "term 'penalty' is wrong" in r.hint and "factor of 2" in r.hint


def test_check_terms_missing_term_and_wrong_factor(rng):
    recon, penalty, w = _recon_penalty(rng)
    terms = {"recon": recon[0], "penalty": penalty[0]}
    r = check_terms(terms, w, grad=recon[1])
    assert not r.ok and r.hint.startswith("missing term")
    assert "'recon' alone; 'penalty' is missing" in r.hint
    r = check_terms(terms, w, grad=lambda w: recon[1](w) + 2 * penalty[1](w))
    assert "'penalty' enters with factor 2" in r.hint


@pytest.mark.parametrize("factor, words", [(-1.0, "opposite sign"), (2.0, "a factor of 2"),
                                           (0.5, "a factor of 2"), (6.0, "off by the batch size"),
                                           (-3.0, "opposite sign and a constant factor")])
def test_check_terms_a_factor_common_to_every_term_is_told_as_one(factor, words, rng):
    """Every term off by the same factor is a constant-factor slip of the whole gradient: the
    hint is check_gradient's ('opposite sign', ...), not 'a term has the wrong factor' per
    term (which the old code gave: "'recon' enters with factor -1; 'penalty' ... -1")."""
    recon, penalty, w = _recon_penalty(rng)
    terms = {"recon": recon[0], "penalty": penalty[0]}
    g = lambda w: factor * (recon[1](w) + penalty[1](w))  # noqa: E731
    r = check_terms(terms, w, grad=g, batch_size=6)
    assert not r.ok and r.failed == ["sum"]
    assert words in r.hint and "enters with factor" not in r.hint, r.hint
    whole = check_gradient(lambda w: recon[0](w) + penalty[0](w), g, w, batch_size=6)
    assert r.hint == whole.hint


def test_check_terms_all_zeros_and_differing_terms(rng):
    recon, penalty, w = _recon_penalty(rng)
    terms = {"recon": recon[0], "penalty": penalty[0]}
    r = check_terms(terms, w, grad=np.zeros_like(w))  # 0 x every term: the whole is empty
    assert r.hint.startswith("all zeros")
    # terms off by DIFFERENT factors: now the per-term hint, both named
    r = check_terms(terms, w, grad=lambda w: -recon[1](w) + 3 * penalty[1](w))
    assert r.hint.startswith("a term has the wrong factor")
    assert "'recon' enters with factor -1" in r.hint and "'penalty' enters with factor 3" in r.hint


def test_tied_weight_off_by_a_common_sign_is_told_as_a_sign(rng):
    """Both uses of a tied W flipped alike: 'opposite sign', not a wrong factor per use."""
    enc = Linear(5, 3, rng=rng)
    r = check_layer(Sequential(enc, Sigmoid(), TiedLinear(enc), SignFlippedDx()),
                    rng.standard_normal((6, 5)))
    assert "0.W" in r.failed and r["0.W"].hint.startswith("opposite sign"), r["0.W"].hint


# --------------------------------------------------------------------------------------
# check_layer: correct layers pass
# --------------------------------------------------------------------------------------
LAYERS = {
    "linear": lambda d, k, rng: Linear(d, k, rng=rng),
    "sigmoid": lambda d, k, rng: Sigmoid(),
    "tanh": lambda d, k, rng: Tanh(),
    "relu": lambda d, k, rng: ReLU(),
    "identity": lambda d, k, rng: Identity(),
    "mlp": lambda d, k, rng: Sequential(Linear(d, k, rng=rng), ReLU(), Linear(k, d, rng=rng),
                                        Sigmoid()),
}


def tied_net(d, k, rng, out=Sigmoid):
    enc = Linear(d, k, rng=rng)
    enc.params["b"][:] = rng.standard_normal(k)
    return Sequential(enc, Sigmoid(), TiedLinear(enc), out())


@pytest.mark.parametrize("kind", list(LAYERS) + ["tied"])
@given(shape=shapes, k=st.integers(1, 16), seed=seeds)
def test_check_layer_passes_correct_layers(kind, shape, k, seed):
    rng = np.random.default_rng(seed)
    n, d = shape
    layer = tied_net(d, k, rng) if kind == "tied" else LAYERS[kind](d, k, rng)
    r = check_layer(layer, rng.standard_normal((n, d)) * 2, rng=seed)
    assert r.ok, r
    assert set(r.results) == {"x"} | set(layer.params)
    assert len(r.contract) == 5 and all(c.ok for c in r.contract)
    assert all(res.n_checked == res.numeric.size for res in r.results.values())
    assert all(np.all(layer.grads[name] == 0) for name in layer.params)  # left zeroed


def test_check_layer_tied_w_lives_in_encoder(rng):
    net = tied_net(5, 3, rng)
    r = check_layer(net, rng.standard_normal((4, 5)))
    assert r.ok and set(r.results) == {"x", "0.W", "0.b", "2.c"}


def test_relu_kinks_in_a_layer_are_reported(rng):
    x = np.round(rng.standard_normal((6, 5)), 1)
    x[0, :] = 0.0
    r = check_layer(ReLU(), x)
    assert r.ok and r["x"].n_kinks >= 5 and "at a kink" in str(r)


# --------------------------------------------------------------------------------------
# check_layer: broken layers fail with the right hint
# --------------------------------------------------------------------------------------
class DoubledW(Linear):
    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["W"] += dout.T @ self.cache  # counted twice
        return dx


class TransposedW(Linear):
    def backward(self, dout):
        self.grads["W"] += self.cache.T @ dout  # (in, out) for a square W: no shape error
        self.grads["b"] += dout.sum(axis=0)
        return dout @ self.params["W"]


class MeanW(Linear):
    def backward(self, dout):
        self.grads["W"] += dout.T @ self.cache / len(dout)  # divides by the batch size
        self.grads["b"] += dout.sum(axis=0)
        return dout @ self.params["W"]


class ForgotBias(Linear):
    def backward(self, dout):
        self.grads["W"] += dout.T @ self.cache
        return dout @ self.params["W"]


class WeightDecayInBackward(Linear):
    def backward(self, dout):
        self.grads["W"] += 1e-2 * self.params["W"]  # a penalty hidden in backward
        return super().backward(dout)


class SignFlippedDx(Tanh):
    def backward(self, dout):
        return -super().backward(dout)


class CacheMutatingSigmoid(Sigmoid):
    def backward(self, dout):
        h = self.cache
        h *= 1.0 - h  # overwrites the cached output
        return dout * h


class DoutMutatingReLU(ReLU):
    def backward(self, dout):
        dout *= self.cache
        return dout


class NoDecoderTerm(TiedLinear):
    """Forgets to add the decoder's term h^T g into the shared W's gradient."""

    def backward(self, dout):
        self.grads["c"] += dout.sum(axis=0)
        return dout @ self.encoder.params["W"].T


class AssigningTied(TiedLinear):
    """Assigns the decoder's term instead of accumulating it."""

    def backward(self, dout):
        self.encoder.grads["W"][...] = self.cache.T @ dout
        self.grads["c"] += dout.sum(axis=0)
        return dout @ self.encoder.params["W"].T


@pytest.mark.parametrize("cls, name, words", [
    (DoubledW, "W", "factor of 2"),
    (TransposedW, "W", "transposed"),
    (MeanW, "W", "off by the batch size: analytic = numeric / 6"),
    (ForgotBias, "b", "all zeros"),
])
def test_check_layer_catches_broken_linear(cls, name, words, rng):
    layer = cls(4, 4, rng=rng)
    r = check_layer(layer, rng.standard_normal((6, 4)))
    assert not r.ok and r.failed[0] == name
    assert words in r[name].hint and words in str(r)


def test_check_layer_catches_wrong_dx_sign(rng):
    r = check_layer(Sequential(Linear(3, 4, rng=rng), SignFlippedDx()),
                    rng.standard_normal((5, 3)))
    assert r.failed == ["x", "0.W", "0.b"]
    assert all("opposite sign" in r[k].hint for k in r.failed)


def test_missing_decoder_term_of_tied_w(rng):
    enc = Linear(5, 3, rng=rng)
    net = Sequential(enc, Sigmoid(), NoDecoderTerm(enc), Sigmoid())
    r = check_layer(net, rng.standard_normal((6, 5)))
    assert r.failed == ["0.W"]
    assert r["0.W"].hint.startswith("missing term")
    assert "'0.W (encoder use)' alone; 'TiedLinear decoder use, W* = W^T' is missing" in \
        r["0.W"].hint


def test_assigning_tied_layer_fails_accumulation_contract(rng):
    enc = Linear(5, 3, rng=rng)
    net = Sequential(enc, Sigmoid(), AssigningTied(enc), Sigmoid())
    r = check_layer(net, rng.standard_normal((6, 5)))
    # one pass after zero_grad happens to be right (the decoder runs first); two are not
    assert r["0.W"].ok and not r.ok
    assert r.failed == ["gradients accumulate (two backward passes give twice one)"]
    assert "assignment instead of accumulation" in r.hint


def test_assignment_that_overwrites_the_other_term(rng):
    """Decoder first, encoder last: the '=' in the tied layer runs after the encoder's '+='."""
    enc = Linear(5, 3, rng=rng)
    net = Sequential(AssigningTied(enc), Tanh(), enc)
    r = check_layer(net, rng.standard_normal((4, 3)))
    assert "2.W" in r.failed
    hint = r["2.W"].hint
    assert hint.startswith("missing term") and "'2.W (encoder use)' is missing" in hint
    assert "assignment instead of accumulation" in hint


@pytest.mark.parametrize("layer, check", [
    (WeightDecayInBackward(3, 3, rng=0), "zero upstream gradient gives zero gradients"),
    (CacheMutatingSigmoid(), "a second backward after one forward returns the same dL/dx"),
    (DoutMutatingReLU(), "backward leaves its argument dout unchanged"),
])
def test_contract_violations(layer, check, rng):
    r = check_layer(layer, rng.standard_normal((4, 3)))
    assert check in r.failed and not r.ok
    assert "FAILED" in str(r)


def test_check_layer_float32(rng):
    layer = Linear(4, 3, rng=rng, dtype=np.float32)
    W = layer.params["W"]
    with pytest.raises(Float32Error, match="float32"):
        check_layer(layer, rng.standard_normal((2, 4)))
    with pytest.warns(UserWarning, match="float32"):
        r = check_layer(layer, rng.standard_normal((2, 4)), upcast=True)
    assert r.ok
    assert layer.params["W"] is W and layer.grads["W"].dtype == np.float32


# --------------------------------------------------------------------------------------
# check_params: per-array coverage in sampled mode
# --------------------------------------------------------------------------------------
def test_sampled_mode_covers_every_array(rng):
    W, b = rng.standard_normal((60, 80)), rng.standard_normal(60)
    X, D = rng.standard_normal((3, 80)), rng.standard_normal((3, 60))

    def loss():
        return np.sum(D * np.tanh(X @ W.T + b))

    def grads(b_bug=1.0):
        G = D * (1 - np.tanh(X @ W.T + b) ** 2)
        return {"W": G.T @ X, "b": b_bug * G.sum(axis=0)}

    r = check_params(loss, {"W": W, "b": b}, grads(), max_entries=20)
    assert r.ok and r["W"].n_checked == 20 and r["b"].n_checked == 20
    r = check_params(loss, {"W": W, "b": b}, grads(b_bug=-1.0), max_entries=20)
    assert r.failed == ["b"] and "opposite sign" in r["b"].hint
    r = check_params(loss, {"W": W, "b": b}, {"W": grads()["W"]})
    assert r.failed == ["b"] and "no gradient" in r["b"].hint


# --------------------------------------------------------------------------------------
# check_directional
# --------------------------------------------------------------------------------------
def test_directional_cost_does_not_grow_with_size(rng):
    f, grad, W = tanh_objective(rng, n=10, k=200, d=300)
    calls = []

    def counted(W):
        calls.append(1)
        return f(W)

    r = check_directional(counted, grad, W, n_directions=6, rng=1)
    assert r.ok and len(calls) == 4 * 6 + 1
    assert check_directional(f, lambda W: 2 * grad(W), W, 6).hint.startswith("a factor of 2")
    r = check_directional(f, lambda W: grad(W) + 1e-3 * np.roll(grad(W), 1), W, 6)
    assert not r.ok and "direction" in r.hint
