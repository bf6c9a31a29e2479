"""Predictive Sparse Decomposition: every gradient against finite differences (float64),
monotone alternating minimisation, and learning on real images. The z-step's solvers are
tested on their own in test_sparse_coding.py."""
import numpy as np
import pytest

from conftest import require_shared
from npae.gradcheck import numerical_gradient
from npae.models import PSD, NotFittedError, PredictiveSparseDecomposition
from npae.models.psd import sparse_encode
from test_sparse_coding import _digits


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_digits():
    X = _digits(200, seed=1)
    return X


# ---------------------------------------------------------------------------------------------
# gradients (float64 finite differences; central differences: error ~1e-9)
# ---------------------------------------------------------------------------------------------

def _fitted(encoder, X, rng, encoder_bias=True, m=6):
    model = PSD(n_atoms=m, lam=0.3, encoder=encoder, n_iter=1, batch_size=len(X),
                encoder_bias=encoder_bias, random_state=0).fit(X)
    p = model.parameters()
    # move away from the initialisation so every gradient term is non-trivial
    p["W"] += 0.3 * rng.standard_normal(p["W"].shape)
    if "b" in p:
        p["b"] += 0.3 * rng.standard_normal(p["b"].shape)
    if "g" in p:
        p["g"] += 0.3 * rng.standard_normal(p["g"].shape)
    return model


def _rel_err(a, b):
    return np.abs(a - b).max() / max(np.abs(a).max(), np.abs(b).max(), 1e-300)


@pytest.mark.parametrize("encoder", ["sigmoid", "tanh"])
@pytest.mark.parametrize("encoder_bias", [True, False])
def test_objective_gradients_finite_differences(rng, encoder, encoder_bias):
    """(7), (8) and (4)/n against central differences of the objective (2) at random codes Z
    (no entry near 0, where |z| has its kink; the l1 term then adds lam sign(Z)/n)."""
    X = rng.uniform(0, 1, (5, 7))
    model = _fitted(encoder, X, rng, encoder_bias)
    Z = rng.standard_normal((5, 6))
    Z += 0.2 * np.sign(Z)
    grads = model.gradients(X, Z=Z)
    params = model.parameters()
    assert set(grads) == set(params)
    assert ("b" in params) == encoder_bias and ("g" in params) == (encoder == "tanh")
    for name, p in params.items():
        num = numerical_gradient(lambda _: model.objective(X, Z=Z), p)
        err = _rel_err(grads[name], num)
        assert err < 1e-6, f"{name}: relative error {err:.1e} (expected ~1e-9)"
    num = numerical_gradient(lambda z: model.objective(X, Z=z), Z)
    err = _rel_err(model.code_gradient(X, Z) + model.lam * np.sign(Z) / len(X), num)
    assert err < 1e-6, f"Z: relative error {err:.1e} (expected ~1e-9)"


@pytest.mark.parametrize("encoder", ["sigmoid", "tanh"])
def test_loss_gradients_at_optimal_codes_danskin(rng, encoder):
    """objective(X) = mean_t min_z E (9); gradients(X) = the partial gradients at z* (Danskin).
    Checked along random directions V: (objective(p + eV) - objective(p - eV)) / 2e against
    <grad, V>.
    z* is solved to a relative gap of 1e-14, so the loss is accurate to ~1e-13 and the
    difference quotient (e = 1e-5) to ~1e-8; expected relative error ~1e-7."""
    X = rng.uniform(0, 1, (6, 9))
    model = _fitted(encoder, X, rng, m=7).set_params(z_tol=1e-14, z_max_iter=100000)
    grads = model.gradients(X)
    for name, p in model.parameters().items():
        V = rng.standard_normal(p.shape)
        eps = 1e-5
        p += eps * V
        lp = model.objective(X)
        p -= 2 * eps * V
        lm = model.objective(X)
        p += eps * V
        fd = (lp - lm) / (2 * eps)
        an = float(np.vdot(grads[name], V))
        assert abs(fd - an) <= 1e-6 * max(abs(an), 1e-3), f"{name}: {fd} vs {an}"


def test_encoder_grads_match_layer_chain(rng):
    """The hand-written (8) for the sigmoid against npae's Linear + Sigmoid backward with the
    same upstream gradient dE/dh = 2 (h - z)/n (random, through random z)."""
    from npae.nn.activations import Sigmoid
    from npae.nn.linear import Linear
    X = rng.uniform(0, 1, (4, 5))
    model = _fitted("sigmoid", X, rng, m=3)
    p = model.parameters()
    lin = Linear(5, 3)
    lin.params["W"][...] = p["W"]
    lin.params["b"][...] = p["b"]
    act = Sigmoid()
    h = act.forward(lin.forward(X))
    Z = rng.standard_normal((4, 3))
    lin.backward(act.backward(2 * (h - Z) / 4))
    grads = model.gradients(X, Z=Z)
    np.testing.assert_allclose(grads["W"], lin.grads["W"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grads["b"], lin.grads["b"], rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# alternating minimisation
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("encoder", ["sigmoid", "tanh"])
def test_objective_never_increases_across_blocks(small_digits, encoder):
    """On a fixed batch, chaining the blocks (z-step warm-started at the previous z, D-step
    with unit-norm projection and backtracking, W-step with Armijo backtracking), the full
    objective (2) never increases, after each step and across blocks. Rounding slack: 1e-12
    relative."""
    X = small_digits[:80]
    model = PSD(n_atoms=16, lam=0.5, encoder=encoder, n_iter=1, batch_size=80,
                random_state=3).fit(X)
    Z = model.sparse_code(X)
    E_prev = model.objective(X, Z=Z)
    first = E_prev
    for _ in range(8):
        h = model.transform(X)
        Z = model._z_step(X, h, Z0=Z)
        E_z = model.objective(X, Z=Z)
        model._d_step(X, Z)
        E_d = model.objective(X, Z=Z)
        model._w_step(X, Z)
        E_w = model.objective(X, Z=Z)
        slack = 1e-12 * E_prev
        assert E_z <= E_prev + slack and E_d <= E_z + slack and E_w <= E_d + slack, \
            (E_prev, E_z, E_d, E_w)
        np.testing.assert_allclose(np.linalg.norm(model.components_, axis=1), 1.0, rtol=1e-12)
        E_prev = E_w
    assert E_prev < first          # and it does decrease


@pytest.mark.slow
def test_training_history_and_prediction_approaches_optimal_code(capsys):
    """Trained on digits, the objective goes down epoch by epoch, the prediction h(x) gets
    closer to the optimal code z* (relative error ||h - z*|| / ||z*|| on held-out digits,
    reported), the atoms are unit norm, the codes sparse."""
    X = _digits(700, seed=2)
    X_train, X_test = X[:600], X[600:]
    errors = []
    model = PSD(n_atoms=32, lam=1.5, encoder="tanh", n_iter=1, batch_size=50, random_state=0)
    model.fit(X_train)

    def rel_error():
        Z = model.sparse_code(X_test)
        h = model.transform(X_test)
        return np.linalg.norm(h - Z) / np.linalg.norm(Z)
    errors.append(rel_error())
    model.set_params(n_iter=8).fit(X_train)
    errors.append(rel_error())
    hist = model.history_
    with capsys.disabled():
        print(f"\n[PSD] held-out ||h - z*||/||z*||: 1 epoch {errors[0]:.3f} -> 8 epochs "
              f"{errors[1]:.3f}; training code_rel_error per epoch "
              f"{np.round(hist['code_rel_error'], 3).tolist()}")
    assert errors[1] < 0.85 * errors[0]
    assert hist["code_rel_error"][-1] < hist["code_rel_error"][0]
    assert hist["objective"][-1] < hist["objective"][0]
    np.testing.assert_allclose(hist["objective"], np.add(np.add(
        hist["reconstruction"], hist["sparsity_penalty"]), hist["prediction"]), rtol=1e-12)
    assert all(len(v) == 8 for v in hist.values())
    np.testing.assert_allclose(np.linalg.norm(model.components_, axis=1), 1.0, rtol=1e-12)
    Z = model.sparse_code(X_test)
    assert 0.5 < np.mean(Z == 0) < 0.99


@pytest.mark.slow
def test_mnist_learns_sparse_codes_and_a_useful_predictor():
    """Real MNIST digits: after a few epochs, z* reconstructs better than the fast code h,
    both much better than the mean image, codes mostly zero; the numbers are reported."""
    from npae.data import load_mnist
    path = require_shared("mnist")
    images, _ = load_mnist(path, "train")
    X = images[:1500].reshape(1500, -1)
    X_train, X_test = X[:1200], X[1200:]
    model = PSD(n_atoms=49, lam=1.0, encoder="tanh", n_iter=4, batch_size=100,
                random_state=0).fit(X_train)
    Z = model.sparse_code(X_test, encoder_term=False)
    h = model.transform(X_test)
    rec_z = np.mean(np.sum((model.inverse_transform(Z) - X_test) ** 2, axis=1))
    rec_h = np.mean(np.sum((model.inverse_transform(h) - X_test) ** 2, axis=1))
    rec_mean = np.mean(np.sum((X_test - X_train.mean(0)) ** 2, axis=1))
    zeros = np.mean(Z == 0)
    print(f"[PSD MNIST] ||Dz-x||^2 {rec_z:.2f}, ||D h-x||^2 {rec_h:.2f}, mean image "
          f"{rec_mean:.2f}, zeros in z {zeros:.2f}, code_rel_error "
          f"{model.history_['code_rel_error'][-1]:.3f}")
    assert rec_z < rec_h < rec_mean
    assert rec_z < 0.6 * rec_mean
    assert zeros > 0.5


# ---------------------------------------------------------------------------------------------
# API and bad input
# ---------------------------------------------------------------------------------------------

def test_api_shapes_and_estimator_conventions(small_digits, tmp_path):
    X = small_digits[:60]
    model = PredictiveSparseDecomposition(n_atoms=10, n_iter=2, batch_size=30, random_state=1)
    assert model.fit(X) is model
    assert model.components_.shape == (10, X.shape[1])
    np.testing.assert_allclose(model.components_.T, model.parameters()["D"])
    assert model.transform(X).shape == (60, 10)
    Z = model.sparse_code(X)
    assert model.inverse_transform(Z).shape == X.shape
    np.testing.assert_allclose(model.inverse_transform(Z), Z @ model.parameters()["D"].T)
    np.testing.assert_allclose(model.sparse_code(X, encoder_term=False),
                               sparse_encode(X, model.parameters()["D"], model.lam,
                                             Z0=model.transform(X)))
    assert model.get_params()["n_atoms"] == 10 and "lam=0.5" not in repr(model)
    # same seed, same model
    again = PredictiveSparseDecomposition(n_atoms=10, n_iter=2, batch_size=30, random_state=1)
    np.testing.assert_array_equal(again.fit(X).components_, model.components_)
    # save / load round trip
    import npae
    path = tmp_path / "psd.npz"
    model.save(path)
    loaded = npae.load(path)
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    assert loaded.history_ == model.history_


@pytest.mark.parametrize("kwargs, match", [
    (dict(lam=-0.1), r"lam=-0\.1 is out of range"),
    (dict(n_atoms=0), r"n_atoms=0 is out of range"),
    (dict(encoder="relu"), r"encoder='relu' is not supported; choose one of 'sigmoid', 'tanh'"),
    (dict(z_solver="lars"), r"z_solver='lars' is not supported; choose one of 'cd', 'fista'"),
    (dict(step_scale=0.0), r"step_scale=0\.0 is out of range"),
])
def test_bad_hyper_parameters(kwargs, match):
    X = np.random.default_rng(0).uniform(size=(20, 4))
    with pytest.raises(ValueError, match=match):
        PSD(**kwargs).fit(X)


def test_bad_input_data():
    X = np.random.default_rng(0).uniform(size=(20, 4))
    with pytest.raises(TypeError, match="n_atoms must be an integer"):
        PSD(n_atoms=2.5).fit(X)
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"X contains 1 non-finite value.*NaN at index \(3, 1\)"):
        PSD(n_atoms=3).fit(X_nan)
    with pytest.raises(NotFittedError, match="call fit"):
        PSD().transform(X)
    model = PSD(n_atoms=3, n_iter=1).fit(X)
    with pytest.raises(ValueError, match=r"X has 5 features, but PredictiveSparseDecomposition "
                                         r"is expecting 4 features"):
        model.transform(np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"Z has 4 columns, expected n_atoms = 3"):
        model.inverse_transform(np.ones((2, 4)))



def test_psd_warns_when_lam_leaves_every_code_zero(small_digits):
    """lam so large that z = 0 for every sample: the dictionary cannot learn. fit says so and
    names the bound 2 max |D^T x + h| below which codes can be non-zero."""
    X = small_digits[:60]
    with pytest.warns(RuntimeWarning, match=r"every code z was 0 in epoch 1 \(lam=1000.0"):
        model = PSD(n_atoms=8, lam=1000.0, n_iter=1, batch_size=60, random_state=0).fit(X)
    assert model.history_["zero_fraction"] == [1.0]
    assert model.history_["code_rel_error"] == [1.0]   # ||h - z|| / ||h|| when every z is 0
    # the bound itself, at the fitted D and W: just above it every code is 0, below not
    D, h = model.components_.T, model.transform(X)
    lam_max = 2.0 * np.abs(X @ D + h).max()
    for lam, all_zero in ((1.01 * lam_max, True), (0.99 * lam_max, False)):
        model.lam = lam
        assert np.all(model.sparse_code(X) == 0) == all_zero
