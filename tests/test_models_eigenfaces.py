"""Eigenfaces on real faces: scikit-image's LFW subset (bundled), AT&T/ORL and Olivetti from
../shared/data (skipped where absent), and recognition on digits (bundled with scikit-learn).

Reference values (mean image, eigenvectors, AUC) are computed independently with numpy and
scikit-learn's metrics.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npae.models import Eigenfaces
from npae.models.base import NotFittedError

from conftest import require_shared

roc_auc_score = pytest.importorskip("sklearn.metrics").roc_auc_score


def _lfw():
    skdata = pytest.importorskip("skimage.data")
    images = skdata.lfw_subset()  # 100 faces, then 100 non-faces, 25 x 25, ships with skimage
    return images[:100], images[100:]


def _split_5_5(images, labels):
    """The standard AT&T protocol: per subject, images 1-5 to train and 6-10 to test."""
    pos = np.zeros(len(labels), dtype=int)
    for c in np.unique(labels):
        pos[labels == c] = np.arange((labels == c).sum())
    tr = pos < 5
    return images[tr], labels[tr], images[~tr], labels[~tr]


# -- (1)-(4) against numpy ------------------------------------------------------------------------
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(3, 30), h=st.integers(2, 6),
       w=st.integers(2, 6), data=st.data())
def test_mean_eigenfaces_and_K_term_approximations(seed, n, h, w, data):
    rng = np.random.default_rng(seed)
    images = rng.random((n, h, w)) * np.linspace(0.2, 2.0, h * w).reshape(h, w)
    K = data.draw(st.integers(1, min(n, h * w)))
    model = Eigenfaces(K, solver="svd").fit(images)
    F = images.mean(axis=0)
    np.testing.assert_allclose(model.mean_image_, F, atol=1e-13)
    f = (images - F).reshape(n, -1)
    _, S, Vt = np.linalg.svd(f, full_matrices=False)
    u = model.eigenfaces_.reshape(K, -1)
    assert model.eigenfaces_.shape == (K, h, w)
    np.testing.assert_allclose(u @ u.T, np.eye(K), atol=1e-10)
    # the same subspace as numpy's top-K right singular vectors (where it is unique)
    if K == min(n, h * w) or S[K - 1] - S[K] > 1e-6 * S[0]:
        np.testing.assert_allclose(u.T @ u, Vt[:K].T @ Vt[:K], atol=1e-7)
    # (4): the K-term approximation is F + sum_j a_j u_j with a_j = u_j . (A - F)
    for k in (0, K // 2, K):
        a = f @ u[:k].T
        expected = F + (a @ u[:k]).reshape(n, h, w)
        np.testing.assert_allclose(model.approximate(images, k), expected, atol=1e-10)
    # more terms never approximate worse (orthogonal projections onto nested subspaces)
    errs = [np.sum((model.approximate(images, k) - images) ** 2) for k in range(K + 1)]
    assert all(b <= a + 1e-9 * errs[0] for a, b in zip(errs, errs[1:]))
    # (6) is the norm of what K eigenfaces leave out
    resid = images - model.approximate(images, K)
    np.testing.assert_allclose(model.distance_from_face_space(images),
                               np.sqrt((resid.reshape(n, -1) ** 2).sum(1)), atol=1e-10)


def test_predict_nearest_and_mean_on_separated_classes(rng):
    centres = rng.standard_normal((3, 8, 8)) * 3
    labels = np.repeat(["a", "b", "c"], 10)
    images = centres[np.repeat(np.arange(3), 10)] + 0.3 * rng.standard_normal((30, 8, 8))
    test = centres + 0.3 * rng.standard_normal((3, 8, 8))
    for match in ("nearest", "mean"):
        m = Eigenfaces(5, match=match).fit(images, labels)
        np.testing.assert_array_equal(m.predict(test), ["a", "b", "c"])
    m = Eigenfaces(5, match="mean").fit(images, labels)
    for i, c in enumerate(m.classes_):
        np.testing.assert_allclose(m.class_codes_[i], m.codes_[labels == c].mean(0), atol=1e-12)


# -- real faces ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_lfw_distance_from_face_space_separates_faces_from_non_faces():
    faces, non_faces = _lfw()
    aucs = []
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(100)
        train, held_out = faces[order[:60]], faces[order[60:]]
        model = Eigenfaces(5, standardize=True).fit(train)
        e = model.distance_from_face_space(np.concatenate([held_out, non_faces]))
        is_face = np.r_[np.ones(40), np.zeros(100)]
        aucs.append(roc_auc_score(is_face, -e))  # small distance = face
    # observed AUCs 0.956, 0.961, 0.929 (raw, unstandardised images: ~0.43)
    assert min(aucs) > 0.88, aucs


def test_lfw_eigenfaces_capture_most_variance():
    faces, _ = _lfw()
    model = Eigenfaces(20).fit(faces)
    assert model.explained_variance_ratio_.sum() > 0.7
    assert np.all(np.diff(model.explained_variance_ratio_) <= 0)


@pytest.mark.slow
def test_att_orl_recognition_5_train_5_test():
    path = require_shared("faces/att_faces")
    from npae.data import load_att_faces
    images, labels = load_att_faces(path)
    tr_x, tr_y, te_x, te_y = _split_5_5(images, labels)
    model = Eigenfaces(80, match="nearest").fit(tr_x, tr_y)
    acc = model.score(te_x, te_y)
    acc_mean = model.set_params(match="mean").score(te_x, te_y)  # class codes come with fit
    # observed 0.895 (nearest) and 0.835 (class means); 40 subjects, chance 0.025
    assert acc > 0.85 and acc_mean > 0.78, (acc, acc_mean)


@pytest.mark.slow
def test_olivetti_recognition():
    path = require_shared("faces/olivettifaces.mat")
    from npae.data import load_olivetti_mat
    images, labels = load_olivetti_mat(path)
    tr_x, tr_y, te_x, te_y = _split_5_5(images, labels)
    assert Eigenfaces(80).fit(tr_x, tr_y).score(te_x, te_y) > 0.85


def test_digit_recognition_when_no_labelled_faces():
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()  # 1797 8 x 8 digits, shipped with scikit-learn
    images, labels = digits.images, digits.target
    order = np.random.default_rng(0).permutation(len(images))
    tr, te = order[:1000], order[1000:]
    acc = Eigenfaces(30).fit(images[tr], labels[tr]).score(images[te], labels[te])
    assert acc > 0.95, acc  # observed ~0.98


# -- bad input ----------------------------------------------------------------------------------
def test_bad_input(rng):
    imgs = rng.random((6, 4, 4))
    with pytest.raises(ValueError, match="3-D array"):
        Eigenfaces(2).fit(rng.random(5))
    with pytest.raises(ValueError, match="3-D array"):
        Eigenfaces(2).fit(rng.random((2, 2, 2, 2)))
    with pytest.raises(ValueError, match=r"n_components=7.*\[1, 6\]"):
        Eigenfaces(7).fit(imgs)
    with pytest.raises(ValueError, match="at least 2 samples"):
        Eigenfaces(1).fit(imgs[:1])
    bad = imgs.copy()
    bad[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        Eigenfaces(2).fit(bad)
    with pytest.raises(ValueError, match="one label per image"):
        Eigenfaces(2).fit(imgs, [0, 1])
    with pytest.raises(NotFittedError):
        Eigenfaces(2).transform(imgs)
    m = Eigenfaces(2).fit(imgs)
    with pytest.raises(ValueError, match="labelled training images"):
        m.predict(imgs)
    with pytest.raises(ValueError, match="K=3 is out of range"):
        m.approximate(imgs, 3)
    with pytest.raises(ValueError, match=r"shape \(5, 5\).*\(4, 4\)"):
        m.transform(rng.random((2, 5, 5)))
    with pytest.raises(ValueError, match="match='knn'"):
        Eigenfaces(2, match="knn").fit(imgs)
    # flattened images of the right size are accepted
    np.testing.assert_allclose(m.transform(imgs.reshape(6, -1)), m.transform(imgs))


# -- figures (npae.plot) ------------------------------------------------------------------------
@pytest.mark.slow
def test_figures_panel_scree_reconstructions(tmp_path, rng):
    from npae import plot
    from npae.models import PCA
    faces, _ = _lfw()
    model = Eigenfaces(10).fit(faces[:40])
    fig = plot.eigenfaces_panel(model, faces[:40], Ks=(1, 3, 10, 99), path=tmp_path / "p.png")
    assert len(fig.axes) == 4 and (tmp_path / "p.png").stat().st_size > 1000
    # K = 99 > n_components is dropped: the last row is the image and 3 approximations
    assert [t.get_text() for t in fig.axes[3].texts] == ["image", "K = 1", "K = 3", "K = 10"]
    fig = plot.scree_plot(model, path=tmp_path / "s.png")
    heights = [p.get_height() for p in fig.axes[0].patches]
    np.testing.assert_allclose(heights, model.explained_variance_ratio_)
    fig = plot.scree_plot(np.array([3.0, 1.0]))
    np.testing.assert_allclose([p.get_height() for p in fig.axes[0].patches], [0.75, 0.25])
    X = rng.random((12, 16))
    fig = plot.pca_reconstructions(PCA(4).fit(X), X, ks=(1, 4, 9), n=3, path=tmp_path / "r.png")
    assert (tmp_path / "r.png").exists()
    assert [t.get_text() for t in fig.axes[0].texts if t.get_text()] == ["original", "k = 1",
                                                                         "k = 4"]
    with pytest.raises(TypeError, match="fitted PCA or Eigenfaces"):
        plot.scree_plot(object())


def test_save_load_round_trip(tmp_path, rng):
    import npae
    images, labels = rng.random((10, 4, 5)), np.array(list("aabbccddee"))
    model = Eigenfaces(3, match="mean").fit(images, labels)
    model.save(tmp_path / "e.npz")
    back = npae.load(tmp_path / "e.npz")
    np.testing.assert_array_equal(back.transform(images), model.transform(images))
    np.testing.assert_array_equal(back.predict(images), model.predict(images))
    assert back.approximate(images, 2).shape == (10, 4, 5)
