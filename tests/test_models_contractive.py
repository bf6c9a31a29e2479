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
