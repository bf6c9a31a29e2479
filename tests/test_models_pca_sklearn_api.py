"""PCA as a scikit-learn user meets it: whitening, K by explained variance or Minka's MLE,
randomized and ARPACK solvers, float32, probabilistic PCA, and the same numbers as
``sklearn.decomposition.PCA`` on real data (MNIST, optdigits).

Expected values come from scikit-learn, from explicit d x d linear algebra (numpy's inverse,
slogdet, scipy's multivariate normal) or from hand-made spectra, never from npae itself.
"""
import numpy as np
import pytest
import scipy.linalg
import scipy.stats

from npae.models import PCA
from npae.models._pca_solvers import CentredMatrix, assess_dimension, infer_dimension, \
    randomized_svd

from conftest import require_shared

skl = pytest.importorskip("sklearn.decomposition")
from sklearn.decomposition._pca import _assess_dimension, _infer_dimension  # noqa: E402

TOL = 1e-8


def _data(seed, n=300, d=12, rank=None):
    rng = np.random.default_rng(seed)
    scales = 0.7 ** np.arange(d) + 0.02
    X = rng.standard_normal((n, d)) * scales @ scipy.linalg.qr(rng.standard_normal((d, d)))[0]
    return X + 2.0 * rng.standard_normal(d)


def _close(a, b, tol=TOL, scale=None):
    scale = max(1.0, float(np.max(np.abs(b)))) if scale is None else scale
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale)


# -- probabilistic PCA against explicit linear algebra -------------------------------------------
@pytest.mark.parametrize("k", [0, 1, 4, 11])
@pytest.mark.parametrize("solver", ["full", "covariance_eigh"])
def test_ppca_covariance_precision_and_likelihood(k, solver):
    X = _data(0)
    n, d = X.shape
    pca = PCA(k, svd_solver=solver).fit(X)
    lam = np.linalg.eigvalsh(np.cov(X, rowvar=False))[::-1]
    s2 = lam[k:].mean()                         # sigma^2: mean of the discarded eigenvalues
    assert pca.noise_variance_ == pytest.approx(s2, rel=1e-10)
    # C has the top-k eigenvalues of the sample covariance on W's span, sigma^2 elsewhere
    C = pca.get_covariance()
    np.testing.assert_allclose(np.linalg.eigvalsh(C)[::-1],
                               np.r_[lam[:k], np.full(d - k, s2)], rtol=1e-9)
    P = pca.get_precision()
    np.testing.assert_allclose(P, np.linalg.inv(C), rtol=1e-9, atol=1e-9 * np.abs(P).max())
    Xt = _data(1)[:50]
    expected = scipy.stats.multivariate_normal(X.mean(0), C).logpdf(Xt)
    np.testing.assert_allclose(pca.score_samples(Xt), expected, rtol=1e-10)
    assert pca.score(Xt) == pytest.approx(expected.mean(), rel=1e-10)


def test_ppca_held_out_likelihood_picks_the_true_dimension():
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((1200, 3)) * [5.0, 3.0, 2.0]
    X = Z @ rng.standard_normal((3, 10)) + 0.3 * rng.standard_normal((1200, 10))
    scores = [PCA(k).fit(X[:600]).score(X[600:]) for k in range(0, 8)]
    assert int(np.argmax(scores)) == 3


def test_zero_noise_variance_is_the_density_on_the_span():
    X = _data(2, n=40, d=5)
    pca = PCA(5).fit(X)                          # K = d: sigma^2 = 0, C invertible
    assert pca.noise_variance_ == 0.0
    C = np.cov(X, rowvar=False)
    np.testing.assert_allclose(pca.get_precision(), np.linalg.inv(C), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(pca.score_samples(X),
                               scipy.stats.multivariate_normal(X.mean(0), C).logpdf(X),
                               rtol=1e-10)


# -- choosing K ------------------------------------------------------------------------------
def test_variance_fraction_keeps_the_smallest_k_that_exceeds_it():
    X = _data(4)
    ratio = np.linalg.eigvalsh(np.cov(X, rowvar=False))[::-1]
    cum = np.cumsum(ratio / ratio.sum())
    for f in (0.5, 0.9, 0.95, 0.99):
        expected = int(np.argmax(cum > f)) + 1
        for solver in ("full", "covariance_eigh", "auto"):
            assert PCA(f, svd_solver=solver).fit(X).n_components_ == expected
    # exactly a cumulative value: "exceeds" is strict, the next component is kept too
    f = float(skl.PCA(svd_solver="full").fit(X).explained_variance_ratio_.cumsum()[2])
    assert PCA(f, svd_solver="full").fit(X).n_components_ == 4


def test_minka_evidence_equals_sklearns_and_picks_the_planted_rank():
    rng = np.random.default_rng(5)
    for d in (5, 17, 40):
        s = np.sort(rng.random(d) ** 2)[::-1] + 1e-3
        n = int(rng.integers(d, 2000))
        for r in range(1, d):
            assert assess_dimension(s, r, n) == pytest.approx(_assess_dimension(s, r, n),
                                                               rel=1e-10)
        assert infer_dimension(s, n) == _infer_dimension(s, n)
    X = rng.standard_normal((2000, 4)) @ rng.standard_normal((4, 12)) * 3
    X += 0.1 * rng.standard_normal((2000, 12))
    assert PCA("mle").fit(X).n_components_ == 4
    with pytest.raises(ValueError, match=r"should be in \[1, n_features - 1\] = \[1, 3\]"):
        assess_dimension(np.ones(4), 4, 10)


# -- whitening -------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["full", "covariance_eigh", "randomized", "arpack"])
def test_whitened_codes_have_identity_covariance_and_invert(solver):
    X = _data(6)
    pca = PCA(5, whiten=True, svd_solver=solver, random_state=0, iterated_power=20).fit(X)
    H = pca.transform(X)
    np.testing.assert_allclose(np.cov(H, rowvar=False), np.eye(5), atol=1e-9)
    _close(pca.fit_transform(X), H, tol=1e-9)
    ref = skl.PCA(5, whiten=True, svd_solver=solver, random_state=0, iterated_power=20).fit(X)
    _close(H, ref.transform(X))
    _close(pca.inverse_transform(H), ref.inverse_transform(H))
    full = PCA(None, whiten=True).fit(X)
    _close(full.inverse_transform(full.transform(X)), X)


# -- randomized and arpack: scikit-learn's numbers for the same random_state -------------------
@pytest.mark.parametrize("shape", [(400, 60), (60, 400)])
@pytest.mark.parametrize("normalizer", ["auto", "QR", "LU", "none"])
def test_randomized_equals_sklearns_for_the_same_random_state(shape, normalizer):
    rng = np.random.default_rng(7)
    X = rng.standard_normal(shape) * 0.9 ** np.arange(shape[1]) + 5.0
    kw = dict(svd_solver="randomized", random_state=3, power_iteration_normalizer=normalizer,
              iterated_power=2 if normalizer == "none" else "auto")
    ours, ref = PCA(8, **kw).fit(X), skl.PCA(8, **kw).fit(X)
    for name in ("components_", "explained_variance_", "singular_values_", "mean_"):
        _close(getattr(ours, name), getattr(ref, name), tol=1e-9)
    _close(ours.explained_variance_ratio_, ref.explained_variance_ratio_, tol=1e-9)
    assert ours.noise_variance_ == pytest.approx(ref.noise_variance_, rel=1e-9)
    assert ours.svd_solver_ == "randomized"


def test_randomized_svd_recovers_a_low_rank_matrix_exactly():
    rng = np.random.default_rng(8)
    A = rng.standard_normal((300, 6)) @ rng.standard_normal((6, 80))
    U, s, Vt = randomized_svd(CentredMatrix(A), 6, n_iter=0, random_state=0)
    np.testing.assert_allclose(s, np.linalg.svd(A, compute_uv=False)[:6], rtol=1e-10)
    np.testing.assert_allclose((U * s) @ Vt, A, atol=1e-10 * np.abs(A).max())
    # implicit centring: the SVD of A - 1 mu^T without forming it
    mu = rng.standard_normal(80)
    _, s_c, _ = randomized_svd(CentredMatrix(A + mu, mu), 6, random_state=0)
    np.testing.assert_allclose(s_c, s, rtol=1e-9)


def test_randomized_centres_exactly_when_the_mean_dwarfs_the_spread():
    X = _data(9, n=500, d=30) * 1e-3 + 1e4   # implicit centring would cancel ~14 digits
    ours = PCA(3, svd_solver="randomized", random_state=0).fit(X)
    ref = skl.PCA(3, svd_solver="full").fit(X)
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-6)


def test_arpack_equals_sklearns():
    X = _data(10, n=200, d=30)
    ours = PCA(6, svd_solver="arpack", random_state=1).fit(X)
    ref = skl.PCA(6, svd_solver="arpack", random_state=1).fit(X)
    _close(ours.components_, ref.components_)
    _close(ours.explained_variance_, ref.explained_variance_)
    assert ours.noise_variance_ == pytest.approx(ref.noise_variance_, rel=1e-9)


@pytest.mark.parametrize("shape,k,expected", [
    ((50, 10), 2, "full"), ((1000, 50), 5, "covariance_eigh"), ((600, 510), 10, "randomized"),
    ((600, 510), 450, "full"), ((600, 510), 0.5, "full")])
def test_auto_follows_sklearns_policy(shape, k, expected):
    X = np.random.default_rng(0).random(shape)
    ours = PCA(k, random_state=0).fit(X)
    ref = skl.PCA(k, random_state=0).fit(X)
    assert ours.svd_solver_ == ref._fit_svd_solver == expected


# -- dtypes, names -----------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["full", "covariance_eigh", "randomized", "arpack"])
def test_float32_stays_float32(solver):
    X = _data(11).astype(np.float32)
    pca = PCA(3, svd_solver=solver, random_state=0, whiten=True).fit(X)
    for name in ("components_", "mean_", "explained_variance_", "explained_variance_ratio_",
                 "singular_values_"):
        assert getattr(pca, name).dtype == np.float32, name
    assert pca.noise_variance_.dtype == np.float32
    H = pca.transform(X)
    assert H.dtype == np.float32 and pca.inverse_transform(H).dtype == np.float32
    assert pca.fit_transform(X).dtype == np.float32
    assert pca.get_precision().dtype == np.float32
    ref = PCA(3, svd_solver=solver, random_state=0).fit(X.astype(np.float64))
    np.testing.assert_allclose(pca.components_, ref.components_, atol=1e-4)
    assert PCA(2).fit(np.arange(40).reshape(10, 4) ** 2).components_.dtype == np.float64


def test_feature_names_out():
    pca = PCA(3).fit(_data(12))
    assert pca.get_feature_names_out().tolist() == ["pca0", "pca1", "pca2"]
    with pytest.raises(ValueError, match="input_features has 2 names.*12 features"):
        pca.get_feature_names_out(["a", "b"])


# -- bad input: every new argument -------------------------------------------------------------
@pytest.mark.parametrize("kwargs,err,match", [
    (dict(whiten="yes"), ValueError, r"whiten='yes' is not supported; choose one of True, False"),
    (dict(copy=None), ValueError, r"copy=None is not supported"),
    (dict(svd_solver="lapack"), ValueError, r"svd_solver='lapack' is not supported; choose"),
    (dict(tol=-1.0), ValueError, r"tol=-1.0 is out of range; it must lie in \[0.0, inf\)"),
    (dict(iterated_power=-2), ValueError, r"iterated_power=-2 is out of range"),
    (dict(iterated_power=2.5), TypeError, r"iterated_power must be an integer"),
    (dict(n_oversamples=0), ValueError, r"n_oversamples=0 is out of range"),
    (dict(power_iteration_normalizer="qr"), ValueError, r"power_iteration_normalizer='qr'"),
    (dict(random_state="seed"), TypeError, r"random_state='seed' \(str\) is not a seed"),
    (dict(random_state=-1), ValueError, r"random_state=-1 is out of range"),
    (dict(n_components="auto"), ValueError, r"n_components='auto' is not supported.*'mle'"),
    (dict(n_components=2.5), ValueError, r"n_components=2.5 is neither an integer.*\(0, 1\)"),
    (dict(n_components=1.0), ValueError, r"n_components=1.0 is neither"),
    (dict(n_components=[2]), TypeError, r"n_components must be an integer, a float in"),
    (dict(n_components=-1), ValueError, r"n_components=-1 must be between 0 and min\(n_samples"
                                        r", n_features\)=12 with svd_solver='covariance_eigh'"),
    (dict(n_components=0, svd_solver="randomized"), ValueError, r"must be between 1 and"),
    (dict(n_components=12, svd_solver="arpack"), ValueError, r"strictly less than min"),
    (dict(n_components=0.9, svd_solver="arpack"), ValueError, r"must be between 1 and"),
    (dict(n_components="mle", svd_solver="randomized"), ValueError,
     r"'mle' cannot be a string with svd_solver='randomized'"),
    (dict(solver="eigh", svd_solver="full"), ValueError, r"pass only one of them"),
])
def test_bad_arguments_are_named_with_what_to_do(kwargs, err, match):
    with pytest.raises(err, match=match):
        PCA(**{"n_components": 2, "random_state": 0, **kwargs}).fit(_data(13))


def test_mle_needs_more_samples_than_features():
    with pytest.raises(ValueError, match=r"'mle' is only supported if n_samples >= n_features "
                                         r"\(X has shape \(5, 12\)\)"):
        PCA("mle").fit(_data(14)[:5])


# -- real data: the same numbers as scikit-learn -----------------------------------------------
def _mnist(n=1500):
    from npae.data import load_mnist
    X = load_mnist(require_shared("mnist"), kind="test")[0][:n]
    return X.reshape(len(X), -1)


def _optdigits():
    from npae.data import load_optdigits
    X = load_optdigits(require_shared("optdigits"), kind="train")[0]
    return X.reshape(len(X), -1)


def _compare_ppca(ours, ref, Xt):
    _close(ours.score_samples(Xt), ref.score_samples(Xt))
    assert ours.score(Xt) == pytest.approx(ref.score(Xt), rel=TOL)
    P, P_ref = ours.get_precision(), ref.get_precision()
    _close(P, P_ref, scale=np.abs(P_ref).max())
    _close(ours.get_covariance(), ref.get_covariance())


@pytest.mark.slow
@pytest.mark.parametrize("data", ["mnist", "optdigits"])
@pytest.mark.parametrize("whiten", [False, True])
def test_real_data_equals_sklearn(data, whiten):
    X = _mnist() if data == "mnist" else _optdigits()
    X, Xt = X[: len(X) * 2 // 3], X[len(X) * 2 // 3:]
    for k, solver in [(30, "full"), (30, "covariance_eigh"), (0.95, "full")]:
        ours = PCA(k, whiten=whiten, svd_solver=solver).fit(X)
        ref = skl.PCA(k, whiten=whiten, svd_solver=solver).fit(X)
        assert ours.n_components_ == ref.n_components_
        H = ours.transform(Xt)
        _close(H, ref.transform(Xt))
        _close(ours.inverse_transform(H), ref.inverse_transform(H))
        _compare_ppca(ours, ref, Xt)


@pytest.mark.slow
@pytest.mark.parametrize("data", ["mnist", "optdigits"])
def test_real_data_keeps_sklearns_k(data):
    X = _mnist(5000) if data == "mnist" else _optdigits()
    if data == "mnist":
        # Minka's evidence is O(d^3) in scikit-learn's loops: the centre 14 x 14 of each digit
        X = X.reshape(-1, 28, 28)[:, 7:21, 7:21].reshape(len(X), -1)
    for k in (0.95, "mle"):
        for solver in ("full", "covariance_eigh"):
            ours = PCA(k, svd_solver=solver).fit(X)
            ref = skl.PCA(k, svd_solver=solver).fit(X)
            assert ours.n_components_ == ref.n_components_, (k, solver)
            _close(ours.explained_variance_, ref.explained_variance_)
