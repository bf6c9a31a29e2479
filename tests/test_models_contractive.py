"""ContractiveAutoencoder (issue 4, item 3): the closed-form Jacobian penalty and its gradient."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import expit

from npae.gradcheck import numerical_gradient
from npae.models import Autoencoder, ContractiveAutoencoder
from conftest import randomised, sklearn_digits


def encoder_jacobian_fd(W, b, x, eps=1e-6):
    """∂h_j/∂x_k by central differences of h(x) = sigm(b + Wx), written independently."""
    J = np.empty((W.shape[0], len(x)))
    for k in range(len(x)):
        e = np.zeros_like(x)
        e[k] = eps
        J[:, k] = (expit(b + W @ (x + e)) - expit(b + W @ (x - e))) / (2 * eps)
    return J


@given(n=st.integers(1, 6), d=st.integers(1, 8), k=st.integers(1, 5), tied=st.booleans(),
       loss=st.sampled_from(["cross_entropy", "squared"]), lam=st.floats(0.01, 3.0),
       seed=st.integers(0, 2**31 - 1))
def test_gradients_match_finite_differences(n, d, k, tied, loss, lam, seed):
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    m = randomised(ContractiveAutoencoder(k, lam=lam, tied=tied, loss=loss), X, rng, scale=0.8)
    grads = m.gradients(X)
    for name, p in m.parameters().items():
        num = numerical_gradient(lambda _: m.objective(X), p)
        # central differences: rounding ~eps*|L|/h ~ 1e-10 absolute, so atol 1e-8
        np.testing.assert_allclose(grads[name], num, rtol=1e-6, atol=1e-8, err_msg=name)


@given(n=st.integers(1, 5), d=st.integers(1, 7), k=st.integers(1, 6),
       seed=st.integers(0, 2**31 - 1))
def test_jacobian_penalty_equals_finite_difference_jacobian(n, d, k, seed):
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    m = randomised(ContractiveAutoencoder(k), X, rng, scale=1.0)
    W, b = m.parameters()["W"], m.parameters()["b"]
    expected = np.mean([(encoder_jacobian_fd(W, b, x) ** 2).sum() for x in X])
    # FD Jacobian entries carry ~1e-10 relative error; the closed form is exact
    assert m.jacobian_penalty(X) == pytest.approx(expected, rel=1e-7)


def test_loss_is_reconstruction_plus_lam_times_penalty(rng):
    X = sklearn_digits()[0][:30]
    m = randomised(ContractiveAutoencoder(6, lam=0.7), X, rng)
    assert m.objective(X) == pytest.approx(m.score(X) + 0.7 * m.jacobian_penalty(X), rel=1e-12)
    # with lam = 0 the objective and the gradients are the plain autoencoder's
    plain = Autoencoder(6, n_epochs=0).fit(X)
    for k, p in plain.parameters().items():
        p[...] = m.parameters()[k]
    m.set_params(lam=0.0)
    for k, g in plain.gradients(X).items():
        np.testing.assert_array_equal(m.gradients(X)[k], g)


def test_penalty_gradient_alone(rng):
    """The penalty's own gradient (equations 4-6): objective(lam) - objective(0), held to FD."""
    X = sklearn_digits()[0][:12]
    m = randomised(ContractiveAutoencoder(5, lam=1.0, tied=False), X, rng)
    g1 = m.gradients(X)
    g0 = m.set_params(lam=0.0).gradients(X)
    m.set_params(lam=1.0)
    for name in ("W", "b"):
        num = numerical_gradient(lambda _: m.jacobian_penalty(X), m.parameters()[name])
        np.testing.assert_allclose(g1[name] - g0[name], num, rtol=1e-6, atol=1e-8, err_msg=name)
    # the decoder's parameters do not enter the penalty
    for name in ("c", "W_star"):
        np.testing.assert_allclose(g1[name], g0[name], rtol=0, atol=0)


@pytest.mark.slow
def test_contracts_at_similar_reconstruction_error():
    """Measured (load_digits, 1397 train / 400 test, 64 hidden, 30 epochs): plain AE
    cross-entropy 14.9, mean ||J||_F^2 54; lam=0.05: cross-entropy 15.4 (+3.5%), ||J||^2 24."""
    X = sklearn_digits()[0]
    X_train, X_test = X[:-400], X[-400:]
    common = dict(n_epochs=30, batch_size=32, learning_rate=5e-3, random_state=0)
    plain = Autoencoder(64, **common).fit(X_train)
    cae = ContractiveAutoencoder(64, lam=0.05, **common).fit(X_train)
    as_cae = ContractiveAutoencoder(64, n_epochs=0).fit(X_train)
    for k, p in as_cae.parameters().items():
        p[...] = plain.parameters()[k]
    J_plain, J_cae = as_cae.jacobian_penalty(X_test), cae.jacobian_penalty(X_test)
    print(f"\nreconstruction CE: plain {plain.score(X_test):.2f}, contractive "
          f"{cae.score(X_test):.2f}; mean ||J||_F^2: plain {J_plain:.2f}, contractive "
          f"{J_cae:.2f}")
    assert cae.score(X_test) < 1.07 * plain.score(X_test)
    assert J_cae < 0.6 * J_plain


def test_negative_lam():
    with pytest.raises(ValueError, match=r"lam=-0.1 is out of range; it must lie in \[0.0, inf\)"):
        ContractiveAutoencoder(4, lam=-0.1).fit(sklearn_digits()[0][:10])


@given(n=st.integers(1, 40), k=st.integers(1, 70), d=st.integers(1, 90),
       dtype=st.sampled_from([np.float32, np.float64]), need=st.sampled_from(
           ["both", "da", "dW", "value"]), lam=st.floats(0.01, 3.0),
       seed=st.integers(0, 2**31 - 1))
def test_penalty_kernels_agree_with_their_numpy_twin(n, k, d, dtype, need, lam, seed):
    """The three passes of ``contractive_kernels`` against the NumPy twin, on random codes,
    weights and random gradients already in ∇_a and ∇_W (the terms are *added*)."""
    from npae.models.contractive_kernels import (jacobian_penalty_add,
                                                 jacobian_penalty_add_numpy)
    rng = np.random.default_rng(seed)
    h = rng.uniform(0, 1, (n, k)).astype(dtype)
    W = rng.standard_normal((k, d)).astype(dtype)
    da0 = rng.standard_normal((n, k)).astype(dtype) if need in ("both", "da") else None
    dW0 = rng.standard_normal((k, d)).astype(dtype) if need in ("both", "dW") else None
    outs = [[None if a is None else a.copy() for a in (da0, dW0)] for _ in range(2)]
    P_kernel = jacobian_penalty_add(h, W, lam, *outs[0])
    P_twin = jacobian_penalty_add_numpy(h, W, lam, *outs[1])
    # float64: sums of <= 90 terms in another order, ~1e-15 relative; float32 ~1e-6
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    assert P_kernel == pytest.approx(P_twin, rel=rtol)
    for got, want, start in zip(outs[0], outs[1], (da0, dW0)):
        if start is None:
            assert got is None and want is None
            continue
        assert got.dtype == dtype
        assert not np.array_equal(got, start)          # something was added
        scale = np.abs(want - start).max()
        np.testing.assert_allclose(got - start, want - start, rtol=0, atol=rtol * scale * 10)


def test_penalty_terms_are_the_derivation_written_out():
    """(3), (4), (6) in loops over t, j, k, written from the docstring, not from the code."""
    from npae.models.contractive import jacobian_penalty_terms
    rng = np.random.default_rng(5)
    n, k, d, lam = 4, 3, 5, 0.7
    h, W = rng.uniform(0, 1, (n, k)), rng.standard_normal((k, d))
    P = sum((h[t, j] * (1 - h[t, j])) ** 2 * W[j, i] ** 2
            for t in range(n) for j in range(k) for i in range(d)) * lam / n
    da = np.array([[2 * lam / n * (h[t, j] * (1 - h[t, j])) ** 2 * (1 - 2 * h[t, j])
                    * (W[j] ** 2).sum() for j in range(k)] for t in range(n)])
    dW = np.array([[2 * lam / n * sum((h[t, j] * (1 - h[t, j])) ** 2 for t in range(n)) * W[j, i]
                    for i in range(d)] for j in range(k)])
    got = jacobian_penalty_terms(h, W, lam)
    assert got[0] == pytest.approx(P, rel=1e-13)
    np.testing.assert_allclose(got[1], da, rtol=1e-13)
    np.testing.assert_allclose(got[2], dW, rtol=1e-13)
