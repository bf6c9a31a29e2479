"""PCA against scikit-learn (entry by entry), the lecture's normalisation, and bad input.

Expected values come from scikit-learn's PCA or from numpy's own eigh/svd, never from npae.
"""
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st

import npae
from npae.models import PCA, lecture_normalize
from npae.models.base import NotFittedError
from npae.models.pca import flip_signs, scatter_matrix

from conftest import require_fashion_mnist

skl = pytest.importorskip("sklearn.decomposition")
from sklearn.utils.extmath import svd_flip  # noqa: E402

TOL = 1e-8  # the bound; double precision gives ~1e-13 on these sizes


def _data(seed, n, d, offset=3.0):
    """Rows with a decaying spectrum (distinct eigenvalues) and a non-zero mean."""
    rng = np.random.default_rng(seed)
    scales = 0.8 ** np.arange(d) + 0.05 * rng.random(d)
    return rng.standard_normal((n, d)) * scales @ scipy.linalg.qr(
        rng.standard_normal((d, d)))[0] + offset * rng.standard_normal(d)


def _assert_matches(ours, ref, X, tol=TOL):
    scale = max(1.0, float(ref.explained_variance_[0]))
    np.testing.assert_allclose(ours.components_, ref.components_, rtol=0, atol=tol)
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_,
                               rtol=tol, atol=tol * scale)
    np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_,
                               rtol=tol, atol=tol)
    np.testing.assert_allclose(ours.singular_values_, ref.singular_values_,
                               rtol=tol, atol=tol * np.sqrt(scale * len(X)))
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=0, atol=tol)
    h_scale = np.abs(ref.transform(X)).max()
    np.testing.assert_allclose(ours.transform(X), ref.transform(X), rtol=0, atol=tol * h_scale)


# -- scikit-learn, entry by entry ---------------------------------------------------------------
@pytest.mark.parametrize("solver", ["auto", "svd", "eigh"])
@pytest.mark.parametrize("sk_solver", ["full", "covariance_eigh", "arpack"])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(30, 120), d=st.integers(2, 25),
       k_frac=st.floats(0.1, 0.9))
def test_matches_sklearn_every_solver(solver, sk_solver, seed, n, d, k_frac):
    X = _data(seed, n, d)
    k = max(1, int(k_frac * min(n, d)))
    if sk_solver == "arpack":
        k = min(k, min(n, d) - 1) or 1  # arpack needs k < min(n, d)
    ours = PCA(k, solver=solver).fit(X)
    ref = skl.PCA(k, svd_solver=sk_solver).fit(X)
    assert ours.n_components_ == ref.n_components_ == k
    _assert_matches(ours, ref, X)


def test_matches_sklearn_randomized_on_low_rank_data(rng):
    # randomized SVD is exact when the rank is within its sketch (k + 10 oversamples)
    X = rng.standard_normal((200, 6)) @ rng.standard_normal((6, 40)) + 1.0
    ours = PCA(6, solver="svd").fit(X)
    ref = skl.PCA(6, svd_solver="randomized", random_state=0).fit(X)
    _assert_matches(ours, ref, X)


def test_none_keeps_min_n_d_like_sklearn(rng):
    X = _data(1, 12, 20)
    ours, ref = PCA().fit(X), skl.PCA(svd_solver="full").fit(X)
    assert ours.n_components_ == 12
    # the last component of a 12-row centred matrix has variance 0: its direction is noise
    np.testing.assert_allclose(ours.components_[:11], ref.components_[:11], atol=TOL)
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, atol=TOL)


@pytest.mark.slow
def test_fashion_mnist_matches_sklearn():
    path = require_fashion_mnist()
    from npae.data import load_fashion_mnist
    X = load_fashion_mnist(path, kind="test")[0][:1000].reshape(1000, -1)
    for solver, sk_solver in [("eigh", "covariance_eigh"), ("svd", "full")]:
        ours = PCA(20, solver=solver).fit(X)
        _assert_matches(ours, skl.PCA(20, svd_solver=sk_solver).fit(X), X)


# -- the two solvers give one subspace -------------------------------------------------------------
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(3, 80), d=st.integers(2, 30))
def test_svd_and_eigh_same_subspace(seed, n, d):
    X = _data(seed, n, d)
    k = max(1, min(n, d) // 2)
    a, b = PCA(k, solver="svd").fit(X), PCA(k, solver="eigh").fit(X)
    assert scipy.linalg.subspace_angles(a.components_.T, b.components_.T).max() < 1e-9
    np.testing.assert_allclose(a.components_, b.components_, atol=1e-9)
    np.testing.assert_allclose(a.explained_variance_, b.explained_variance_,
                               rtol=1e-10, atol=1e-12 * a.explained_variance_[0])


def test_auto_picks_eigh_for_tall_data_and_svd_otherwise(rng):
    assert PCA(2).fit(rng.standard_normal((100, 10))).solver_ == "eigh"
    assert PCA(2).fit(rng.standard_normal((99, 10))).solver_ == "svd"


def test_eigh_keeps_precision_when_the_mean_dwarfs_the_spread(rng):
    # X^T X - n mu mu^T would cancel ~12 of 16 digits here; the blocked centring does not
    X = _data(3, 400, 8, offset=0.0) + 1e6
    ref = skl.PCA(4, svd_solver="full").fit(X)
    _assert_matches(PCA(4, solver="eigh").fit(X), ref, X, tol=1e-8)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60), d=st.integers(1, 12),
       block=st.integers(1, 70))
def test_scatter_matrix_blocks_equal_centred_product(seed, n, d, block):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * 10 + 5
    Xc = X - X.mean(axis=0)
    expected = Xc.T @ Xc
    S = scatter_matrix(X, block_rows=block)
    iu = np.triu_indices(d)
    np.testing.assert_allclose(S[iu], expected[iu], rtol=1e-12, atol=1e-10 * n)


def test_flip_signs_is_sklearns_svd_flip(rng):
    V = rng.standard_normal((6, 9))
    expected = svd_flip(None, V.copy(), u_based_decision=False)[1]
    W = V.copy()
    flip_signs(W)
    np.testing.assert_array_equal(W, expected)


# -- the lecture's claims -----------------------------------------------------------------------
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(3, 60), d=st.integers(2, 15))
def test_lecture_normalisation_gives_covariance_eigen_pairs(seed, n, d):
    X = _data(seed, n, d)
    Xn, mean = lecture_normalize(X)
    np.testing.assert_allclose(mean, X.mean(axis=0))
    # left singular vectors of the d x T data matrix Xn^T, as the slide says
    Ul, S, _ = np.linalg.svd(Xn.T, full_matrices=False)
    eig = np.linalg.eigvalsh(np.cov(X, rowvar=False, bias=True))[::-1][:len(S)]
    np.testing.assert_allclose(S**2, eig, rtol=1e-9, atol=1e-12 * eig[0])
    k = max(1, min(n, d) // 2)
    pca = PCA(k).fit(X)
    W = Ul[:, :k].T.copy()
    flip_signs(W)
    np.testing.assert_allclose(pca.components_, W, atol=1e-8)
    # sklearn's (and npae's) variances divide by T - 1, the slide's by T
    np.testing.assert_allclose(pca.explained_variance_ * (n - 1) / n, S[:k] ** 2, rtol=1e-9)


def test_transform_inverse_and_projection(rng):
    X = _data(7, 50, 6)
    full = PCA(6).fit(X)
    np.testing.assert_allclose(full.inverse_transform(full.transform(X)), X, atol=1e-10)
    pca = PCA(3, solver="svd").fit(X)
    H = pca.transform(X)
    np.testing.assert_allclose(H, (X - X.mean(0)) @ pca.components_.T, atol=1e-12)
    np.testing.assert_allclose(pca.fit_transform(X), H, atol=1e-12)
    W = pca.components_
    np.testing.assert_allclose(W @ W.T, np.eye(3), atol=1e-12)
    P = W.T @ W  # the orthogonal projection of the slide: x_hat = W^T W (x - m) + m
    np.testing.assert_allclose(pca.reconstruct(X), (X - X.mean(0)) @ P + X.mean(0), atol=1e-12)


def test_params_repr_and_save_load(tmp_path, rng):
    pca = PCA(3, solver="svd")
    assert pca.get_params() == {
        "n_components": 3, "solver": "svd", "copy": True, "whiten": False, "svd_solver": "auto",
        "tol": 0.0, "iterated_power": "auto", "n_oversamples": 10,
        "power_iteration_normalizer": "auto", "random_state": None}
    assert repr(pca) == "PCA(n_components=3, solver='svd')"
    assert pca.set_params(n_components=2) is pca and pca.n_components == 2
    X = rng.standard_normal((30, 5))
    assert pca.fit(X) is pca
    path = tmp_path / "pca.npz"
    pca.save(path)
    back = npae.load(path)
    np.testing.assert_array_equal(back.transform(X), pca.transform(X))
    assert back.solver_ == "svd" and back.svd_solver_ == "full" and back.n_components_ == 2
    np.testing.assert_array_equal(back.score_samples(X), pca.score_samples(X))


# -- bad input (issue item 6) ---------------------------------------------------------------------
@pytest.mark.parametrize("k", [-1, 6, 11])
def test_n_components_out_of_range(k, rng):
    # scikit-learn's wording (its own tests match it), then npae's hint
    with pytest.raises(ValueError, match=rf"n_components={k} must be between 0 and "
                                         r"min\(n_samples, n_features\)=5 with svd_solver="
                                         r"'full' \(X has shape \(5, 10\)\); ask for fewer"):
        PCA(k).fit(rng.standard_normal((5, 10)))


def test_zero_components_is_the_isotropic_gaussian(rng):
    # K = 0 (as in scikit-learn): no subspace, PPCA's sigma^2 = the mean variance
    X = rng.standard_normal((30, 4)) * [1.0, 2.0, 3.0, 4.0]
    pca = PCA(0).fit(X)
    assert pca.components_.shape == (0, 4) and pca.transform(X).shape == (30, 0)
    s2 = np.var(X, axis=0, ddof=1).mean()
    assert pca.noise_variance_ == pytest.approx(s2, rel=1e-12)
    np.testing.assert_allclose(pca.get_precision(), np.eye(4) / s2, rtol=1e-12)


def test_n_components_not_integer(rng):
    with pytest.raises(ValueError, match=r"n_components=2.5 is neither an integer number of "
                                         r"components nor a fraction of variance in \(0, 1\)"):
        PCA(2.5).fit(rng.standard_normal((5, 10)))
    with pytest.raises(TypeError, match="n_components must be an integer"):
        PCA([3]).fit(rng.standard_normal((5, 10)))


def test_one_sample_refused(rng):
    with pytest.raises(ValueError, match="at least 2 samples"):
        PCA(1).fit(rng.standard_normal((1, 4)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_refused(bad, rng):
    X = rng.standard_normal((6, 3))
    X[2, 1] = bad
    with pytest.raises(ValueError, match="non-finite"):
        PCA(1).fit(X)


def test_one_d_input_refused_with_a_hint():
    with pytest.raises(ValueError, match="2-D.*reshape"):
        PCA(1).fit(np.arange(5.0))


def test_bad_solver_and_unfitted_and_feature_mismatch(rng):
    with pytest.raises(ValueError, match="solver='qr' is not supported"):
        PCA(1, solver="qr").fit(rng.standard_normal((5, 3)))
    with pytest.raises(NotFittedError):
        PCA(1).transform(rng.standard_normal((5, 3)))
    pca = PCA(2).fit(rng.standard_normal((5, 3)))
    with pytest.raises(ValueError, match="4 features.*3 features"):
        pca.transform(rng.standard_normal((2, 4)))
    with pytest.raises(ValueError, match="H has 3 columns"):
        pca.inverse_transform(rng.standard_normal((2, 3)))


def test_covariance_fast_path_and_exact_fallback(rng):
    from npae.models.pca import covariance_scatter
    X = rng.standard_normal((300, 7)) * rng.uniform(0.5, 3, 7) + rng.standard_normal(7)
    Xc = X - X.mean(0)
    expected = np.triu(Xc.T @ Xc)
    S, blocked = covariance_scatter(X, X.mean(0))
    assert not blocked  # well-conditioned: one dsyrk and the shortcut
    np.testing.assert_allclose(np.triu(S), expected, rtol=1e-11, atol=1e-11 * 300)
    for shift in (1e3, 1e6):  # |mean| >> spread: the shortcut would cancel, so centre in blocks
        S, blocked = covariance_scatter(X + shift, (X + shift).mean(0))
        assert blocked == (shift > 1e2)
        np.testing.assert_allclose(np.triu(S), expected, rtol=1e-8, atol=1e-8 * 300)
    Xk = X.copy()
    Xk[:, 3] = 7.0  # a constant non-zero feature has variance exactly 0, not rounding noise
    S, blocked = covariance_scatter(Xk, Xk.mean(0))
    assert blocked and S[3, 3] == 0.0


@pytest.mark.parametrize("solver", ["full", "covariance_eigh", "covariance_eigh subset",
                                    "randomized", "arpack"])
def test_every_solver_returns_one_spectrum_shape(solver, monkeypatch):
    """The solvers share one return type; its sigma^2 is the mean of the discarded
    eigenvalues, checked against numpy's eigenvalues of the covariance."""
    from npae.models import pca
    from npae.models._pca_solvers import Spectrum, truncated_svd
    from npae.models.pca import eigh_of_A, svd_of_X
    if solver.endswith("subset"):       # the top-k path that large d takes
        monkeypatch.setattr(pca, "_FULL_EIGH_MAX_D", 4)
        solver = "covariance_eigh"
    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 8)) * np.arange(1, 9)
    mean = X.mean(axis=0)
    k = 3
    sp = {"full": lambda: svd_of_X(X, mean), "covariance_eigh": lambda: eigh_of_A(X, mean, k),
          }.get(solver, lambda: truncated_svd(X, mean, k, solver, random_state=0))()
    assert type(sp) is Spectrum
    lam = np.linalg.eigvalsh(np.cov(X, rowvar=False))[::-1]
    np.testing.assert_allclose(sp.explained[:k], lam[:k], rtol=1e-10)
    np.testing.assert_allclose(sp.total, lam.sum(), rtol=1e-12)
    np.testing.assert_allclose(sp.noise_variance(k, len(X)), lam[k:].mean(), rtol=1e-10)
    assert sp.noise_variance(8, len(X)) == 0.0
    np.testing.assert_allclose(np.abs(sp.components[:k] @ sp.components[:k].T), np.eye(k),
                               atol=1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e100, -3e77])
def test_covariance_eigh_refuses_bad_values_as_every_solver_does(bad):
    """covariance_eigh in float64 finds a bad value from the mean and A's diagonal (no pass
    of its own over X): the same error, word for word, as the solvers that check X first."""
    from npae.exceptions import NonFiniteError
    X = np.random.default_rng(0).standard_normal((40, 6))
    X[17, 4] = bad
    messages = []
    for solver in ("full", "covariance_eigh"):
        with pytest.raises(NonFiniteError) as info:
            PCA(2, svd_solver=solver).fit(X)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert ("(17, 4)" in messages[0]) or ("magnitude" in messages[0])


def test_covariance_eigh_accepts_values_just_inside_the_bound():
    from npae._validation import max_magnitude
    X = np.random.default_rng(1).standard_normal((40, 6))
    X[3, 2] = 0.99 * max_magnitude(np.float64)
    PCA(2, svd_solver="covariance_eigh").fit(X)
    with pytest.raises(ValueError, match="magnitude"):
        X[3, 2] = 1.01 * max_magnitude(np.float64)
        PCA(2, svd_solver="covariance_eigh").fit(X)
