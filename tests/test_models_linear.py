"""The linear autoencoder: hand gradients vs finite differences, the closed form, convergence
to PCA's subspace, (non-)orthogonality of the weights, and the slide's (non-)convexity.

Reference values come from numpy's eigh/svd of the data, never from the code under test.
"""
import warnings

import numpy as np
import pytest
import scipy.linalg
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import npae
from npae.gradcheck import numerical_gradient
from npae.nn.linear import glorot_uniform
from npae.models import (PCA, LinearAutoencoder, linear_autoencoder_loss,
                         optimal_linear_autoencoder)
from npae.models.linear import ConvergenceWarning, quartic_minimizer
from npae.models.base import NotFittedError

from conftest import require_fashion_mnist

f = linear_autoencoder_loss


def _gap_data(seed, n=400, d=12, k=3, floor=0.5):
    """Rows whose covariance has k large eigenvalues, a clear gap, then a noise floor."""
    rng = np.random.default_rng(seed)
    Q = scipy.linalg.qr(rng.standard_normal((d, d)))[0]
    s = np.r_[np.linspace(3.0, 2.0, k), np.full(d - k, floor)] * np.linspace(1.0, 0.8, d)
    return rng.standard_normal((n, d)) * s @ Q.T + rng.standard_normal(d)


def _top_eigvecs(X, k):
    """Independent reference: eigenvectors of sum_i x_i x_i^T by numpy's eigh."""
    w, Q = np.linalg.eigh(X.T @ X)
    return Q[:, ::-1][:, :k], w[::-1]


# -- gradients (8)-(10) against central differences -------------------------------------------
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("center", [True, False])
def test_gradients_match_finite_differences(tied, center):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((9, 6)) * rng.uniform(0.5, 2.0, 6) + 0.7
    model = LinearAutoencoder(3, tied=tied, center=center, n_epochs=0, random_state=1).fit(X)
    for p in model.parameters().values():  # random weights, away from any symmetric point
        p[...] = rng.standard_normal(p.shape)
    grads = model.gradients(X)
    for name, p in model.parameters().items():
        num = numerical_gradient(lambda _: model.objective(X), p)
        # central differences: O(h^2) + O(eps/h) ~ 1e-9 relative for this smooth quartic
        err = np.abs(grads[name] - num).max() / np.abs(num).max()
        assert err < 1e-7, (name, err)


def test_gradient_formulas_in_closed_form():
    # (8) and (9) written out with matrices, against the layers' computation
    rng = np.random.default_rng(3)
    X = rng.standard_normal((11, 5))
    m = LinearAutoencoder(2, center=False, n_epochs=0, random_state=0).fit(X)
    U, V = m.U_, m.V_
    H = X @ V.T
    R = H @ U.T - X
    g = m.gradients(X)
    np.testing.assert_allclose(g["U"], R.T @ H / 11, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g["V"], (R @ U).T @ X / 11, rtol=1e-12, atol=1e-14)
    # and the objective is (7) = f / (2n)
    assert m.objective(X) == pytest.approx(f(U, V, X) / 22, rel=1e-13)


# -- the closed form -----------------------------------------------------------------------------
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 40), d=st.integers(2, 10),
       data=st.data())
def test_closed_form_is_optimal_projection_with_discarded_eigenvalues(seed, n, d, data):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.1, 3.0, d)
    k = data.draw(st.integers(1, min(n, d)))
    U, V = optimal_linear_autoencoder(X, k)
    assert U.shape == (d, k) and V.shape == (k, d)
    np.testing.assert_array_equal(V, U.T)
    np.testing.assert_allclose(U.T @ U, np.eye(k), atol=1e-12)
    Q, sigma = _top_eigvecs(X, k)
    scale = sigma[0]
    # UV is the orthogonal projection onto the top-k subspace (4)...
    if k == min(n, d) or sigma[k - 1] - sigma[k] > 1e-6 * scale:  # unique only with a gap
        np.testing.assert_allclose(U @ V, Q @ Q.T, atol=1e-7)
    # ... and its loss is the sum of the discarded eigenvalues (5)
    f_star = f(U, V, X)
    assert f_star == pytest.approx(max(sigma[k:].sum(), 0.0), rel=1e-8, abs=1e-10 * scale)
    # no other (U, V) of the same size does better: random ones ...
    for _ in range(5):
        U2, V2 = rng.standard_normal((d, k)), rng.standard_normal((k, d))
        assert f_star <= f(U2, V2, X) + 1e-10 * scale
        # ... and the best decoder for a random encoder (least squares), a strong competitor
        H = X @ V2.T
        U3 = np.linalg.lstsq(H, X, rcond=None)[0].T
        assert f_star <= f(U3, V2, X) + 1e-9 * scale


def test_closed_form_on_centred_data_is_pca(rng):
    X = _gap_data(0)
    U, V = optimal_linear_autoencoder(X - X.mean(0), 3)
    np.testing.assert_allclose(V, PCA(3).fit(X).components_, atol=1e-10)


def test_trained_models_never_beat_the_closed_form():
    X = _gap_data(5)
    Xc = X - X.mean(0)
    f_star = f(*optimal_linear_autoencoder(Xc, 3), Xc)
    for epochs in (0, 5, 50):
        m = LinearAutoencoder(3, n_epochs=epochs, random_state=epochs).fit(X)
        assert f(m.U_, m.V_, Xc) >= f_star * (1 - 1e-12)


# -- gradient descent finds the closed form ------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("tied", [False, True])
def test_training_reaches_pca_subspace_and_closed_form_loss(seed, tied):
    X = _gap_data(seed)
    Xc = X - X.mean(0)
    Q, sigma = _top_eigvecs(Xc, 3)
    f_star = sigma[3:].sum()
    m = LinearAutoencoder(3, tied=tied, n_epochs=500, random_state=seed).fit(X)
    angles = scipy.linalg.subspace_angles(m.U_, Q)
    assert m.converged_ and angles.max() < 1e-6  # observed: < 1.1e-7 rad, 28-54 epochs
    # (span(V^T) converges too, but more slowly: V's components along directions of small
    # variance get gradients proportional to that variance -- see the model's docstring)
    assert (f(m.U_, m.V_, Xc) - f_star) / f_star < 1e-10  # observed: < 7e-13
    assert m.objective(X) == pytest.approx(f(m.U_, m.V_, Xc) / (2 * len(X)), rel=1e-12)
    gram = m.U_.T @ m.U_
    if tied:
        # the tied model recovers the slide's W with orthonormal rows
        np.testing.assert_allclose(m.V_ @ m.V_.T, np.eye(3), atol=1e-6)
    else:
        # only UV is determined: U = W A, V = A^{-1} W^T for any invertible A; from a random
        # start the learned weight vectors are not orthonormal (the lecture's remark)
        assert np.abs(gram - np.eye(3)).max() > 0.1
        assert np.abs(gram - np.diag(np.diag(gram))).max() > 0.05  # not even orthogonal
        np.testing.assert_allclose(m.U_ @ m.V_, Q @ Q.T, atol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("tied", [True, False])
def test_fashion_mnist_models_find_the_top_principal_subspace_with_defaults(tied):
    path = require_fashion_mnist()
    from npae.data import load_fashion_mnist
    images = load_fashion_mnist(path, kind="test")[0][:1000]
    X = images[:, ::2, ::2].reshape(1000, -1)  # 14 x 14: real data, a quarter of the work
    pca = PCA(2).fit(X)
    m = LinearAutoencoder(2, tied=tied, random_state=0).fit(X)
    assert m.converged_  # on tol, not on the cap (observed: 28 epochs tied, 311 untied)
    assert scipy.linalg.subspace_angles(m.U_, pca.components_.T).max() < 1e-5  # obs. < 2e-7
    Xc = X - X.mean(0)
    f_star = f(pca.components_.T, pca.components_, Xc)
    assert (f(m.U_, m.V_, Xc) - f_star) / f_star < 1e-9
    if tied:
        np.testing.assert_allclose(m.V_ @ m.V_.T, np.eye(2), atol=1e-6)


# -- (6): convex in each factor, not jointly ---------------------------------------------------------
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_two_global_optima_with_a_worse_midpoint(seed, data):
    X = _gap_data(seed % 1000, n=60, d=6, k=2)
    U, V = optimal_linear_autoencoder(X, 2)
    f_star = f(U, V, X)
    # any orthogonal Q gives another global optimum (UQ, Q^T V), e.g. Q = -I
    angle = data.draw(st.floats(0.3, 2 * np.pi - 0.3))  # away from Q = I; pi gives Q = -I
    c, s = np.cos(angle), np.sin(angle)
    Q = np.array([[c, -s], [s, c]])
    U2, V2 = U @ Q, Q.T @ V
    assert f(U2, V2, X) == pytest.approx(f_star, rel=1e-10)
    f_mid = f((U + U2) / 2, (V + V2) / 2, X)
    # UV at the midpoint is W M W^T with M = (2I + Q + Q^T)/4 = m I, m = (1 + cos)/2 < 1, so
    # f_mid = f* + (1 - m)^2 sum ||W^T x||^2 > f*: strictly worse (computed independently)
    m = (2 + Q[0, 0] + Q[1, 1]) / 4
    assert m < 1 - 1e-3
    excess = (1 - m) ** 2 * np.sum((X @ U) ** 2)
    assert f_mid - f_star == pytest.approx(excess, rel=1e-6)
    assert f_mid > f_star + 0.5 * excess
    # Q = -I: the midpoint is (0, 0), where f = sum ||x||^2
    assert f(0 * U, 0 * V, X) == pytest.approx(np.sum(X**2), rel=1e-12)


@given(seed=st.integers(0, 2**32 - 1), t=st.floats(0.0, 1.0))
def test_convex_in_each_factor(seed, t):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((15, 5))
    U, V = rng.standard_normal((5, 2)), rng.standard_normal((2, 5))
    V1, V2 = rng.standard_normal((2, 5)), rng.standard_normal((2, 5))
    U1, U2 = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    tol = 1e-10 * (f(U, V1, X) + f(U, V2, X) + f(U1, V, X) + f(U2, V, X))
    assert f(U, t * V1 + (1 - t) * V2, X) <= t * f(U, V1, X) + (1 - t) * f(U, V2, X) + tol
    assert f(t * U1 + (1 - t) * U2, V, X) <= t * f(U1, V, X) + (1 - t) * f(U2, V, X) + tol


def _hessian(fun, x, h):
    """Hessian by second differences of ``fun`` (exact up to rounding for quadratics)."""
    n = x.size
    H = np.empty((n, n))
    E = np.eye(n) * h
    f0 = fun(x)
    fi = np.array([fun(x + E[i]) for i in range(n)])
    for i in range(n):
        for j in range(i, n):
            H[i, j] = H[j, i] = (fun(x + E[i] + E[j]) - fi[i] - fi[j] + f0) / h**2
    return H


def test_hessians_psd_in_each_factor_but_indefinite_jointly():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((10, 3))
    U, V = rng.standard_normal((3, 2)), rng.standard_normal((2, 3))
    H_V = _hessian(lambda v: f(U, v.reshape(2, 3), X), V.ravel(), 1.0)
    H_U = _hessian(lambda u: f(u.reshape(3, 2), V, X), U.ravel(), 1.0)
    # expected: 2 (X^T X) kron (U^T U) >= 0 and its U-analogue; rounding ~1e-12 * scale
    for H in (H_V, H_U):
        assert np.linalg.eigvalsh(H).min() > -1e-8 * np.abs(H).max()
    np.testing.assert_allclose(H_V, 2 * np.kron(U.T @ U, X.T @ X), rtol=1e-8, atol=1e-8)
    # jointly, at (0, 0): f(tA, tB) = f(0, 0) - 2 t^2 sum x^T A B x + O(t^4) has a descent
    # direction of negative curvature, so the joint Hessian is indefinite
    joint = lambda z: f(z[:6].reshape(3, 2), z[6:].reshape(2, 3), X)  # noqa: E731
    H = _hessian(joint, np.zeros(12), 1e-3)
    w = np.linalg.eigvalsh(H)
    assert w.min() < -1.0 and w.max() > 1.0


# -- estimator conventions and bad input ------------------------------------------------------------
def test_params_transform_and_save_load(tmp_path):
    X = _gap_data(2, n=50, d=5, k=2)
    m = LinearAutoencoder(2, tied=True, n_epochs=3, random_state=0)
    assert m.get_params()["learning_rate"] == "auto"
    assert m.fit(X) is m
    H = m.transform(X)
    np.testing.assert_allclose(H, (X - X.mean(0)) @ m.V_.T, atol=1e-12)
    np.testing.assert_allclose(m.inverse_transform(H), H @ m.U_.T + X.mean(0), atol=1e-12)
    assert set(m.parameters()) == {"W"} and m.parameters()["W"] is m.V_
    assert len(m.history_["loss"]) == 3
    path = tmp_path / "lin.npz"
    m.save(path)
    back = npae.load(path)
    np.testing.assert_array_equal(back.transform(X), H)
    again = LinearAutoencoder(2, tied=True, n_epochs=3, random_state=0).fit(X)
    np.testing.assert_array_equal(again.V_, m.V_)  # random_state makes runs repeatable


def test_minibatch_adam_runs_and_lowers_the_loss():
    X = _gap_data(4, n=200, d=8, k=2)
    m = LinearAutoencoder(2, optimizer="adam", learning_rate=0.01, batch_size=32, n_epochs=20,
                          random_state=0).fit(X)
    assert m.history_["loss"][-1] < 0.5 * m.history_["loss"][0]


@pytest.mark.parametrize("k", [0, 7])
def test_bad_n_components(k):
    with pytest.raises(ValueError, match=r"n_components=.*\[1, 5\]"):
        LinearAutoencoder(k).fit(np.random.default_rng(0).standard_normal((5, 6)))
    with pytest.raises(ValueError, match=r"k=.*\[1, 5\]"):
        optimal_linear_autoencoder(np.random.default_rng(0).standard_normal((5, 6)), k)


def test_bad_input_messages():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="at least 2 samples"):
        LinearAutoencoder(1).fit(rng.standard_normal((1, 4)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        optimal_linear_autoencoder(rng.standard_normal((1, 4)), 1)
    X = rng.standard_normal((6, 3))
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        LinearAutoencoder(1).fit(X)
    with pytest.raises(ValueError, match="2-D.*reshape"):
        optimal_linear_autoencoder(np.arange(4.0), 1)
    with pytest.raises(ValueError, match="learning_rate=-1"):
        LinearAutoencoder(1, learning_rate=-1).fit(rng.standard_normal((6, 3)))
    with pytest.raises(ValueError, match="optimizer='lbfgs'"):
        LinearAutoencoder(1, optimizer="lbfgs").fit(rng.standard_normal((6, 3)))
    with pytest.raises(NotFittedError):
        LinearAutoencoder(1).parameters()
    with pytest.raises(ValueError, match="U must be"):
        f(np.ones((3, 2)), np.ones((2, 4)), np.ones((5, 3)))


# -- "auto": an exact line search, a stopping rule, and the PCA subspace with defaults --------
def _exact_gap_data(rng, n, d, k, *, ratio=0.5, offset=0.0, scale=1.0):
    """Rows whose *sample* covariance has a known top-k eigenspace and a known gap.

    X = mean + A diag(s) B^T with A (n, r) orthonormal columns orthogonal to the ones vector
    (so the rows are exactly centred at ``mean``) and B (d, r) orthonormal, r = min(n - 1, d).
    The top k singular values lie in [2, 3], the others are at most ``ratio`` * 2: the gap
    lambda_k - lambda_{k+1} is at least (1 - ratio^2) lambda_k, never degenerate. Returns
    (X, B[:, :k]): the data and an orthonormal basis of its principal subspace.
    """
    r = min(n - 1, d)
    M = rng.standard_normal((n, r))
    M -= M.mean(axis=0)
    A = np.linalg.qr(M)[0]
    B = np.linalg.qr(rng.standard_normal((d, r)))[0]
    s = np.r_[rng.uniform(2.0, 3.0, k), rng.uniform(0.1, 2.0 * ratio, r - k)]
    mean = offset + rng.standard_normal(d)
    return scale * (mean + (A * s) @ B.T), B[:, :k]


def _max_angle(U, Q):
    return scipy.linalg.subspace_angles(U, Q).max()


def _old_default_run(X, k, seed, epochs=500):
    """The former default, written out: Glorot-uniform U and V (V drawn first, as the layers
    do), full-batch heavy ball with eta = 0.2 / lambda_1 and momentum 0.9, on the model's own
    gradients. Returns the objective per epoch (inf once it overflowed)."""
    m = LinearAutoencoder(k, n_epochs=0, random_state=seed).fit(X)
    m.parameters()["V"][...] = glorot_uniform(k, X.shape[1], np.random.default_rng(seed))
    Xc = X - X.mean(0)
    eta = 0.2 / np.linalg.eigvalsh(Xc.T @ Xc / len(X))[-1]
    velocity = {name: 0.0 for name in m.parameters()}
    losses = []
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(epochs):
            try:
                losses.append(m.objective(X))
            except ValueError:  # x_hat beyond 1e77: npae refuses to square it
                losses.append(np.inf)
            if not losses[-1] < 1e100:
                break
            for name, g in m.gradients(X).items():
                velocity[name] = 0.9 * velocity[name] + g
                m.parameters()[name][...] -= eta * velocity[name]
    return losses


@pytest.mark.parametrize("data_seed", [13, 18, 20, 29])
def test_old_auto_rule_diverged_and_the_new_default_converges(data_seed):
    # the slide's example as a new user tries it: 20 samples of 100 + N(0, 1) in R^3
    X = 100 + np.random.default_rng(data_seed).standard_normal((20, 3))
    Xc = X - X.mean(0)
    w, Q = np.linalg.eigh(Xc.T @ Xc)
    assert not _old_default_run(X, 2, seed=0)[-1] < 1e100  # the old default blew up
    for tied in (False, True):
        m = LinearAutoencoder(2, tied=tied, random_state=0).fit(X)
        assert m.converged_ and m.n_iter_ < m.n_epochs
        assert _max_angle(m.U_, Q[:, ::-1][:, :2]) < 1e-6
        loss = np.asarray(m.history_["loss"])
        assert np.all(np.diff(loss) <= 1e-12 * loss[0])  # the objective never increases


@settings(max_examples=10)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 60), d=st.integers(1, 30),
       offset=st.sampled_from([0.0, 100.0, -100.0]),
       log_scale=st.floats(-3.0, 3.0), standardise=st.booleans(), tied=st.booleans(),
       data=st.data())
def test_defaults_reach_the_pca_subspace(seed, n, d, offset, log_scale, standardise, tied,
                                         data):
    """With defaults, tied and untied, the decoder's span is PCA's to < 1e-3 rad on data
    with a spectral gap (offsets, scales 1e-3..1e3, standardised or not, tiny n)."""
    rng = np.random.default_rng(seed)
    d = max(d, 2)
    k = data.draw(st.integers(1, min(n - 1, d)), label="k") if n > 2 else 1
    X, Q = _exact_gap_data(rng, n, d, k, offset=offset, scale=10.0**log_scale)
    if standardise:  # scaling columns moves the eigenvectors: the reference is numpy's SVD
        X = (X - X.mean(0)) / X.std(0)
        sv, Vt = np.linalg.svd(X - X.mean(0), full_matrices=False)[1:]
        assume(k == len(sv) or sv[k] < 0.9 * sv[k - 1])  # a gap, else no subspace to find
        Q = Vt[:k].T
    m = LinearAutoencoder(k, tied=tied, random_state=seed % 1000).fit(X)
    assert m.converged_
    assert _max_angle(m.U_, Q) < 1e-3


@pytest.mark.parametrize("tied", [False, True])
def test_defaults_reach_the_pca_subspace_in_784_dimensions(tied):
    rng = np.random.default_rng(1)
    X, Q = _exact_gap_data(rng, 100, 784, 5, offset=100.0, scale=1e-3)
    m = LinearAutoencoder(5, tied=tied, random_state=0).fit(X)
    assert m.converged_ and _max_angle(m.U_, Q) < 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("n, d, k", [(10_000, 784, 20), (10_000, 50, 5), (2, 784, 1),
                                     (1000, 784, 50)])
@pytest.mark.parametrize("offset, scale", [(100.0, 1e-3), (0.0, 1e3)])
@pytest.mark.parametrize("tied", [False, True])
def test_wide_sweep_reaches_the_pca_subspace(n, d, k, offset, scale, tied):
    rng = np.random.default_rng(n + d + k)
    X, Q = _exact_gap_data(rng, n, d, k, ratio=0.8, offset=offset, scale=scale)
    m = LinearAutoencoder(k, tied=tied, random_state=0).fit(X)
    assert m.converged_ and _max_angle(m.U_, Q) < 1e-3


@pytest.mark.parametrize("tied", [False, True])
def test_line_coefficients_are_the_objective_along_the_line(tied):
    # (12): L(theta + t P) is the quartic c0 + c1 t + ... + c4 t^4 (over 2n), checked against
    # the objective evaluated at moved weights, and c1 / 2n is the slope <grad L, P>
    rng = np.random.default_rng(4)
    X = rng.standard_normal((13, 6)) * rng.uniform(0.5, 2.0, 6)
    m = LinearAutoencoder(3, tied=tied, n_epochs=0, random_state=0).fit(X)
    params = m.parameters()
    for p in params.values():
        p[...] = rng.standard_normal(p.shape)
    start = {k: v.copy() for k, v in params.items()}
    P = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    grads = m.gradients(X)  # also caches the point for the coefficients
    c = m._line_coefficients(P)
    assert c[1] / 26 == pytest.approx(sum(np.vdot(grads[k], P[k]) for k in P), rel=1e-12)
    for t in (-0.7, 0.3, 1.9):
        for k, v in params.items():
            v[...] = start[k] + t * P[k]
        assert m.objective(X) == pytest.approx(np.polyval(c[::-1], t) / 26, rel=1e-11)


@given(c=st.lists(st.floats(-1e3, 1e3), min_size=4, max_size=4), c4=st.floats(1e-3, 1e3))
def test_quartic_minimizer_is_the_minimum_over_a_grid(c, c4):
    coef = np.array([*c, c4])
    t = quartic_minimizer(coef)
    assert t >= 0
    grid = np.linspace(0.0, 1 + 2 * (np.abs(coef[:4]).max() / c4) ** (1 / 1), 20001)
    best = np.polyval(coef[::-1], grid).min()
    f_t = np.polyval(coef[::-1], t)
    assert f_t <= best + 1e-9 * max(1.0, abs(best))
    assert f_t <= coef[0]


def test_quartic_minimizer_degenerate_cases():
    assert quartic_minimizer([1.0, -2.0, 1.0, 0.0, 0.0]) == pytest.approx(1.0)  # quadratic
    assert quartic_minimizer([1.0, 0.0, 0.0, 0.0, 0.0]) == 0.0                  # flat
    assert quartic_minimizer([1.0, 2.0, 1.0, 0.0, 1.0]) == 0.0                  # uphill
    # two local minima: the global one is chosen, not the nearer one
    c = np.polynomial.polynomial.polyfromroots([0.5, 3.0])  # (t - .5)(t - 3), a quadratic
    quartic = np.polynomial.polynomial.polymul(c, c)  # minima 0 at t = 0.5 and t = 3
    quartic[0] += 0.0
    quartic = quartic + np.array([0.0, 0.0, 0.0, 0.0, 0.0])
    quartic[1] -= 0.01  # tilt: t = 3 becomes the lower minimum
    assert quartic_minimizer(quartic) == pytest.approx(3.0, abs=0.05)


@pytest.mark.parametrize("tied", [False, True])
def test_curvature_bound_13_holds(tied):
    # the second derivative of (7) along random directions, by central differences of the
    # objective, never exceeds M (13); a bound with 1/2 lambda_1 in place of lambda_1 is
    # exceeded somewhere (so the test can tell a bound that is too small)
    rng = np.random.default_rng(8)
    X = rng.standard_normal((40, 5)) * np.array([3.0, 2.0, 1.0, 0.5, 0.2])
    m = LinearAutoencoder(2, tied=tied, center=False, n_epochs=0, random_state=0).fit(X)
    lam1 = np.linalg.eigvalsh(X.T @ X / 40)[-1]
    params = m.parameters()
    worst = 0.0
    for trial in range(200):
        scale = rng.choice([0.1, 1.0, 3.0])
        for p in params.values():
            p[...] = scale * rng.standard_normal(p.shape)
        start = {k: v.copy() for k, v in params.items()}
        D = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        if trial % 2:  # also the worst directions: along the factors themselves
            D = {k: v.copy() for k, v in start.items()}
        dn2 = sum(np.vdot(v, v) for v in D.values())
        h = 1e-4 / np.sqrt(dn2)

        def at(t):
            for k, v in params.items():
                v[...] = start[k] + t * D[k]
            return m.objective(X)

        second = (at(h) - 2 * at(0.0) + at(-h)) / h**2 / dn2
        at(0.0)
        if tied:
            W = start["W"]
            M = 2 * lam1 * (1 + 3 * np.linalg.norm(W, 2) ** 2)
        else:
            M = lam1 * (1 + 1.5 * (np.linalg.norm(start["U"], 2) ** 2
                                   + np.linalg.norm(start["V"], 2) ** 2))
        assert second <= M * (1 + 1e-6)
        worst = max(worst, second / M)
    assert worst > 0.4  # and M is tight to within a factor of 2.5 on these directions


def test_tol_stops_early_and_zero_tol_runs_the_cap():
    X = _gap_data(3, n=80, d=8, k=2)
    m = LinearAutoencoder(2, random_state=0).fit(X)
    assert m.converged_ and 3 <= m.n_iter_ < 3000
    assert len(m.history_["loss"]) == len(m.history_["subspace_change"]) == m.n_iter_
    changes = m.history_["subspace_change"]
    assert max(changes[-2:]) < 1e-7 <= changes[-3]
    loose = LinearAutoencoder(2, tol=1e-3, random_state=0).fit(X)
    assert loose.n_iter_ < m.n_iter_
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tol=0 asks for every epoch: nothing to warn about
        full = LinearAutoencoder(2, tol=0.0, n_epochs=40, random_state=0).fit(X)
    assert full.n_iter_ == 40 and not full.converged_
    capped = LinearAutoencoder(2, n_epochs=4, random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"cap n_epochs=4 .*raise n_epochs"):
        capped.fit(X)
    assert capped.n_iter_ == 4 and not capped.converged_


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("scale", [1e-150, 1e70])  # validation refuses > 1e77
def test_auto_is_scale_free_even_near_the_float_limits(tied, scale):
    X = _gap_data(6, n=50, d=6, k=2)
    ref = LinearAutoencoder(2, tied=tied, random_state=0).fit(X)
    m = LinearAutoencoder(2, tied=tied, random_state=0).fit(X * scale)
    Q = _top_eigvecs(X - X.mean(0), 2)[0]
    assert m.converged_ and _max_angle(m.U_, Q) < 1e-6
    assert _max_angle(m.U_, ref.U_) < 1e-6
    assert m.history_["loss"][-1] == pytest.approx(ref.history_["loss"][-1] * scale**2,
                                                   rel=1e-6)


@pytest.mark.parametrize("tied", [False, True])
def test_minibatch_auto_uses_the_bound_and_does_not_diverge(tied):
    X = 100 + _gap_data(7, n=200, d=8, k=2) * 1e3
    m = LinearAutoencoder(2, tied=tied, batch_size=16, n_epochs=30, random_state=0).fit(X)
    loss = m.history_["loss"]
    assert np.all(np.isfinite(loss)) and loss[-1] < 0.5 * loss[0]
    Xc = (X - X.mean(0)) / 2.0 ** np.round(np.log2(np.abs(X - X.mean(0)).max()))
    M = np.max(np.sum(Xc**2, axis=1)) * (
        2 * (1 + 3 * np.sum(m.V_**2)) if tied else 1 + 1.5 * (np.sum(m.U_**2) + np.sum(m.V_**2)))
    # learning_rate_ is the last step, 1/M_B at the weights before it (in the data's units)
    scale2 = (2.0 ** np.round(np.log2(np.abs(X - X.mean(0)).max()))) ** 2
    assert m.learning_rate_ * scale2 == pytest.approx(1 / M, rel=0.05)


def test_objective_is_half_the_mean_of_the_lecture_f():
    X = _gap_data(1, n=30, d=5, k=2)
    m = LinearAutoencoder(2, n_epochs=3, tol=0, random_state=0).fit(X)
    assert m.objective(X) == pytest.approx(
        f(m.U_, m.V_, X - X.mean(0)) / (2 * len(X)), rel=1e-12)
