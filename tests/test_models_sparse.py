"""SparseAutoencoder: the KL sparsity penalty, its sample-coupled gradient, L-BFGS and Adam."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import expit

from conftest import randomised, rel_err, require_shared, sklearn_digits
from npae.gradcheck import numerical_gradient
from npae.models import SparseAutoencoder
from npae.models.base import load


def _objective_by_hand(X, W, b, W_star, c, rho, beta, wd):
    """(5) written out here from the CS294A notes, independently of the model's code."""
    h = expit(X @ W.T + b)
    x_hat = expit(h @ W_star.T + c)
    rho_hat = h.mean(axis=0)
    kl = np.sum(rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat)))
    return (0.5 * np.sum((x_hat - X) ** 2) / len(X)
            + 0.5 * wd * (np.sum(W ** 2) + np.sum(W_star ** 2)) + beta * kl)


# -- gradients -----------------------------------------------------------------------------------

@given(n=st.integers(1, 6), d=st.integers(1, 7), k=st.integers(1, 5),
       rho=st.floats(0.02, 0.5), beta=st.floats(0.0, 5.0), wd=st.floats(0.0, 0.1),
       seed=st.integers(0, 2**31 - 1))
def test_gradients_match_finite_differences(n, d, k, rho, beta, wd, seed):
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    m = randomised(SparseAutoencoder(k, rho=rho, beta=beta, weight_decay=wd, max_iter=0), X,
                   rng)
    grads = m.gradients(X)
    for name, p in m.parameters().items():
        num = numerical_gradient(lambda _: m.objective(X), p)
        np.testing.assert_allclose(grads[name], num, rtol=1e-6, atol=1e-8, err_msg=name)


def test_objective_is_the_notes_formula(rng):
    X = rng.random((9, 6))
    m = randomised(SparseAutoencoder(4, rho=0.1, beta=2.5, weight_decay=0.03, max_iter=0), X,
                   rng)
    P = m.parameters()
    expected = _objective_by_hand(X, P["W"], P["b"], P["W_star"], P["c"], 0.1, 2.5, 0.03)
    assert abs(m.objective(X) - expected) <= 1e-12 * abs(expected)


def test_the_sparsity_term_couples_the_samples(rng):
    """The gradient of a batch is NOT the mean of per-sample gradients (it would be without
    the KL term), and changing one sample changes the KL part of every other sample's delta:
    finite differences of the batch objective agree with the coupled gradient only."""
    X = rng.random((6, 5))
    m = randomised(SparseAutoencoder(3, rho=0.05, beta=3.0, weight_decay=0.0, max_iter=0), X,
                   rng)
    W = m.parameters()["W"]
    batch = m.gradients(X)["W"]
    per_sample = np.mean([m.gradients(X[t:t + 1])["W"] for t in range(len(X))], axis=0)
    numeric = numerical_gradient(lambda _: m.objective(X), W)
    assert rel_err(batch, numeric) < 1e-7
    assert rel_err(per_sample, numeric) > 1e-2          # the per-sample view is wrong
    # with beta = 0 the objective is a mean of per-sample terms and the two views agree
    m.set_params(beta=0.0)
    per_sample0 = np.mean([m.gradients(X[t:t + 1])["W"] for t in range(len(X))], axis=0)
    assert rel_err(m.gradients(X)["W"], per_sample0) < 1e-12
    # the sparsity delta of unit j depends on another sample's activation: perturb x^(1) and
    # sample 0's hidden delta (seen through b's gradient restricted to sample 0) changes
    m.set_params(beta=3.0)
    h = m.transform(X)
    rho_hat = h.mean(axis=0)
    delta_kl = 3.0 * (-0.05 / rho_hat + 0.95 / (1 - rho_hat)) / len(X)
    X2 = X.copy()
    X2[1] = 1.0 - X2[1]
    rho_hat2 = m.transform(X2).mean(axis=0)
    delta_kl2 = 3.0 * (-0.05 / rho_hat2 + 0.95 / (1 - rho_hat2)) / len(X)
    assert np.abs(delta_kl - delta_kl2).max() > 1e-3


def test_gradients_are_copies_and_parameters_are_live(rng):
    X = rng.random((4, 5))
    m = randomised(SparseAutoencoder(3, max_iter=0), X, rng)
    g1 = m.gradients(X)
    g1["W"][...] = 0.0
    assert np.abs(m.gradients(X)["W"]).max() > 0
    before = m.objective(X)
    m.parameters()["W"][...] *= 2.0
    assert m.objective(X) != before


# -- training ------------------------------------------------------------------------------------

def test_lbfgs_and_adam_lower_the_objective_and_reach_the_target_sparsity():
    X = sklearn_digits()[0][:600]
    for kw in (dict(optimizer="lbfgs", max_iter=100),
               dict(optimizer="adam", n_epochs=60, batch_size=600, learning_rate=1e-2)):
        m = SparseAutoencoder(16, rho=0.1, beta=3.0, random_state=0, **kw)
        start = SparseAutoencoder(16, rho=0.1, beta=3.0, max_iter=0, random_state=0).fit(X)
        m.fit(X)
        assert m.objective(X) < 0.5 * start.objective(X), kw
        assert np.abs(m.rho_hat_ - 0.1).max() < 0.03, (kw, m.rho_hat_)
        np.testing.assert_allclose(m.rho_hat_, m.mean_activation(X))
        assert m.history_["loss"][-1] < m.history_["loss"][0]


def test_lbfgs_is_repeatable_and_records_one_loss_per_iteration():
    X = sklearn_digits()[0][:200]
    a = SparseAutoencoder(8, max_iter=15, random_state=3).fit(X)
    b = SparseAutoencoder(8, max_iter=15, random_state=3).fit(X)
    assert a.n_iter_ == len(a.history_["loss"]) <= 15
    for k in a.parameters():
        np.testing.assert_array_equal(a.parameters()[k], b.parameters()[k])


def test_lbfgs_checkpoint_and_resume(tmp_path):
    X = sklearn_digits()[0][:200]
    ck = tmp_path / "ck.npz"
    first = SparseAutoencoder(8, max_iter=5, random_state=0).fit(X, checkpoint=ck)
    assert ck.exists()
    resumed = SparseAutoencoder(8, max_iter=12, random_state=0).fit(X, checkpoint=ck,
                                                                     resume=True)
    assert resumed.n_iter_ > first.n_iter_
    np.testing.assert_allclose(resumed.history_["loss"][:first.n_iter_],
                               first.history_["loss"])
    assert resumed.history_["loss"][-1] < first.history_["loss"][-1]
    with pytest.raises(ValueError, match="does not match"):
        SparseAutoencoder(9, max_iter=12, random_state=0).fit(X, checkpoint=ck, resume=True)


@pytest.mark.slow
def test_mnist_mean_activations_are_within_002_of_rho():
    """Real handwriting (MNIST, 2x2-averaged to 14x14 to keep the test short): after L-BFGS
    every hidden unit's mean activation is within 0.02 of rho, on the training images."""
    from npae.data import load_mnist
    X, _ = load_mnist(require_shared("mnist"), "train", raw=True)
    X = (X[:2000] / 255.0).reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4)).reshape(2000, -1)
    m = SparseAutoencoder(49, rho=0.05, beta=3.0, max_iter=150, random_state=0).fit(X)
    assert np.abs(m.rho_hat_ - 0.05).max() < 0.02, m.rho_hat_
    # and most units are rarely on: the point of the penalty
    h = m.transform(X)
    assert np.median(h) < 0.05


# -- the estimator contract ----------------------------------------------------------------------

@pytest.mark.parametrize("kw, message", [
    (dict(rho=0.0), "rho=0.0"), (dict(rho=1.0), "rho=1.0"), (dict(beta=-1.0), "beta"),
    (dict(weight_decay=-1e-3), "weight_decay"), (dict(optimizer="bfgs"), "optimizer='bfgs'"),
    (dict(n_hidden=0), "n_hidden"), (dict(dtype="int8"), "dtype"), (dict(max_iter=-1),
                                                                    "max_iter")])
def test_bad_hyperparameters_are_named(kw, message):
    with pytest.raises((ValueError, TypeError), match=message):
        SparseAutoencoder(**kw).fit(np.random.default_rng(0).random((5, 3)))


def test_errors_before_fit_and_for_wrong_width():
    from npae.models import NotFittedError
    with pytest.raises(NotFittedError):
        SparseAutoencoder(3).transform(np.zeros((2, 4)))
    X = np.random.default_rng(0).random((5, 4))
    m = SparseAutoencoder(3, max_iter=2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="4 features"):
        m.objective(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="n_hidden=3"):
        m.inverse_transform(np.zeros((2, 4)))


def test_save_load_round_trip(tmp_path):
    X = sklearn_digits()[0][:100]
    m = SparseAutoencoder(6, max_iter=5, random_state=0).fit(X)
    loaded = load(m.save(tmp_path / "sparse.npz"))
    assert loaded.get_params() == m.get_params()
    np.testing.assert_array_equal(loaded.transform(X), m.transform(X))
    np.testing.assert_array_equal(loaded.rho_hat_, m.rho_hat_)


def test_sklearn_estimator_checks():
    sklearn = pytest.importorskip("sklearn")  # noqa: F841
    import warnings

    from sklearn.utils.estimator_checks import check_estimator
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Estimator .* does not inherit from")
        check_estimator(SparseAutoencoder(3, max_iter=3, random_state=0))
