"""Autoencoder (issue 4, item 1): equations, hand-derived gradients, tied weights, training."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import expit, xlog1py, xlogy

from conftest import randomised, rel_err, require_shared, sklearn_digits
from npae.gradcheck import numerical_gradient
from npae import losses
from npae.models import Autoencoder, NotFittedError
from npae.nn import Identity, Linear, Sigmoid, TiedLinear

PAIRS = [("sigmoid", "cross_entropy"), ("sigmoid", "squared"), ("linear", "squared")]


# -- gradients --------------------------------------------------------------------------------

@given(n=st.integers(1, 6), d=st.integers(1, 8), k=st.integers(1, 6), tied=st.booleans(),
       pair=st.sampled_from(PAIRS), seed=st.integers(0, 2**31 - 1))
def test_gradients_match_finite_differences(n, d, k, tied, pair, seed):
    rng = np.random.default_rng(seed)
    decoder, loss = pair
    X = rng.random((n, d)) if loss == "cross_entropy" else rng.standard_normal((n, d))
    m = randomised(Autoencoder(k, tied=tied, decoder=decoder, loss=loss), X, rng)
    grads = m.gradients(X)
    assert set(grads) == set(m.parameters()) == ({"W", "b", "c"} | ({"W_star"} if not tied
                                                                   else set()))
    for name, p in m.parameters().items():
        num = numerical_gradient(lambda _: m.objective(X), p)
        # central differences, h = 1e-6: truncation ~1e-12, rounding ~eps*|L|/h ~ 1e-10
        # absolute (|L| < 10 here); hence atol 1e-8, which a wrong term or factor far exceeds
        np.testing.assert_allclose(grads[name], num, rtol=1e-6, atol=1e-8, err_msg=name)


def test_tied_gradient_is_encoder_term_plus_decoder_term(rng):
    """The lecture's exercise: with W* = W^T, dL/dW is the sum of two gradients."""
    X, _ = sklearn_digits()
    X = X[:20]
    m = randomised(Autoencoder(4, tied=True), X, rng, scale=0.3)
    W, b, c = (m.parameters()[k].copy() for k in "Wbc")
    n = len(X)
    # forward and backward written out independently of the model's code
    h = expit(X @ W.T + b)
    x_hat = expit(h @ W + c)
    g = (x_hat - X) / n                      # dL/dâ, fused sigmoid + cross-entropy
    decoder_term = h.T @ g                   # (g^T h)^T: W as W* = W^T in the decoder
    da = (g @ W.T) * h * (1 - h)             # back through W* and the encoder's sigmoid
    encoder_term = da.T @ X                  # W in the encoder
    gW = m.gradients(X)["W"]
    assert rel_err(gW, encoder_term + decoder_term) < 1e-12  # same sums, rounding only
    # both terms matter: neither alone is the gradient
    assert rel_err(gW, encoder_term) > 0.05 and rel_err(gW, decoder_term) > 0.05
    num = numerical_gradient(lambda _: m.objective(X), m.parameters()["W"])
    np.testing.assert_allclose(gW, num, rtol=1e-6, atol=1e-8)  # finite differences, ~1e-10 abs


def _layer_by_layer(m, X):
    """The model's objective and gradients composed here from fresh npae.nn layers holding
    the model's values, and npae.losses' functions: (1)-(10) one layer at a time."""
    p = {k: v.copy() for k, v in m.parameters().items()}
    k, d = p["W"].shape
    enc = Linear(d, k)
    enc.params["W"][...], enc.params["b"][...] = p["W"], p["b"]
    if m.tied:
        dec = TiedLinear(enc)
        dec.params["c"][...] = p["c"]
    else:
        dec = Linear(k, d)
        dec.params["W"][...], dec.params["b"][...] = p["W_star"], p["c"]
    act, out = Sigmoid(), (Sigmoid() if m.decoder == "sigmoid" else Identity())
    a_hat = dec.forward(act.forward(enc.forward(X)))
    if m.loss == "cross_entropy":    # (5) with (4) sigm, from the logits: (7) g = x̂ - x
        L = losses.cross_entropy_with_logits(a_hat, X)
        g = losses.cross_entropy_with_logits_grad(a_hat, X)
    else:                            # (6), then back through the output unit
        x_hat = out.forward(a_hat)
        L = losses.squared_error(x_hat, X)
        g = out.backward(losses.squared_error_grad(x_hat, X))
    enc.backward(act.backward(dec.backward(g)))
    grads = {"W": enc.grads["W"], "b": enc.grads["b"], "c": dec.grads["c" if m.tied else "b"]}
    if not m.tied:
        grads["W_star"] = dec.grads["W"]
    return L, grads


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("decoder, loss", PAIRS)
def test_gradients_are_the_layers_backward_passes(rng, tied, decoder, loss):
    """The model's objective and gradients equal the layer-by-layer composition (float64)."""
    X = rng.random((23, 13)) if loss == "cross_entropy" else rng.standard_normal((23, 13))
    m = randomised(Autoencoder(7, tied=tied, decoder=decoder, loss=loss), X, rng)
    L, want = _layer_by_layer(m, X)
    grads = m.gradients(X)
    assert set(grads) == set(want)
    for name, g in want.items():
        assert rel_err(grads[name], g) < 1e-12, name
    assert m.objective(X) == pytest.approx(L, rel=1e-12)


def test_tied_model_trains_through_tiedlinear_backward(monkeypatch):
    """Fitting a tied model runs TiedLinear.backward (its ``+=`` adds the decoder term of
    (10)) and Linear.backward (the encoder term) on every step."""
    calls = {"TiedLinear": 0, "Linear": 0}

    def spy(cls):
        original = cls.backward

        def backward(self, dout):
            calls[cls.__name__] += 1
            return original(self, dout)
        monkeypatch.setattr(cls, "backward", backward)

    spy(TiedLinear)
    spy(Linear)
    X, _ = sklearn_digits()
    m = Autoencoder(8, tied=True, n_epochs=2, batch_size=50, random_state=0).fit(X[:200])
    assert calls == {"TiedLinear": 8, "Linear": 8}  # 2 epochs x 4 mini-batches
    assert m.history_["loss"][-1] < m.history_["loss"][0]
    # and without TiedLinear's term the gradient is wrong: the model uses what the layer adds
    monkeypatch.setattr(TiedLinear, "backward",
                        lambda self, dout: dout @ self.encoder.params["W"].T)
    X = X[:20]
    gW = m.gradients(X)["W"]
    num = numerical_gradient(lambda _: m.objective(X), m.parameters()["W"])
    assert rel_err(gW, num) > 0.01


# -- the equations, checked against formulas written here -------------------------------------

@pytest.mark.parametrize("tied", [True, False])
def test_transform_reconstruct_score_follow_the_lecture(rng, tied):
    X, _ = sklearn_digits()
    X = X[:30]
    m = randomised(Autoencoder(5, tied=tied), X, rng)
    p = m.parameters()
    W_star = p["W"].T if tied else p["W_star"]
    h = expit(p["b"] + X @ p["W"].T)                 # h(x) = sigm(b + Wx)
    x_hat = expit(p["c"] + h @ W_star.T)             # x̂ = sigm(c + W* h)
    np.testing.assert_allclose(m.transform(X), h, rtol=1e-13)
    np.testing.assert_allclose(m.inverse_transform(h), x_hat, rtol=1e-13)
    np.testing.assert_allclose(m.reconstruct(X), x_hat, rtol=1e-13)
    ce = -(xlogy(X, x_hat) + xlog1py(1 - X, -x_hat)).sum(axis=1).mean()
    assert m.score(X) == pytest.approx(ce, rel=1e-10)
    assert m.objective(X) == pytest.approx(ce, rel=1e-10)


def test_linear_decoder_with_squared_error(rng):
    X = rng.standard_normal((15, 6))
    m = randomised(Autoencoder(3, tied=False, decoder="linear", loss="squared"), X, rng)
    p = m.parameters()
    x_hat = p["c"] + expit(p["b"] + X @ p["W"].T) @ p["W_star"].T   # x̂ = c + W* h
    np.testing.assert_allclose(m.reconstruct(X), x_hat, rtol=1e-13)
    assert m.score(X) == pytest.approx(0.5 * ((x_hat - X) ** 2).sum(axis=1).mean(), rel=1e-12)


# -- training on real images ------------------------------------------------------------------

def test_fit_learns_digits_with_validation_curve():
    X, _ = sklearn_digits()
    X_train, X_test = X[:1200], X[1200:]
    m = Autoencoder(24, n_epochs=15, batch_size=32, learning_rate=5e-3, random_state=0)
    untrained = Autoencoder(24, n_epochs=0, random_state=0).fit(X_train).score(X_test)
    assert m.fit(X_train, X_val=X_test) is m
    h = m.history_
    assert len(h["loss"]) == len(h["val_loss"]) == 15
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    # the validation curve is the objective on X_test at the end of each epoch
    assert h["val_loss"][-1] == pytest.approx(m.score(X_test), rel=1e-12)
    # cross-entropy per image: untrained ~44, the mean image ~30, trained ~17 (measured)
    mean_img = np.clip(X_train.mean(0), 1e-6, 1 - 1e-6)
    mean_ce = -(xlogy(X_test, mean_img) + xlog1py(1 - X_test, -mean_img)).sum(1).mean()
    score = m.score(X_test)
    assert score < 0.7 * mean_ce and score < 0.5 * untrained
    assert m.transform(X_test).shape == (len(X_test), 24)
    assert m.n_features_in_ == 64


def test_same_random_state_same_model_and_float32():
    X, _ = sklearn_digits()
    X = X[:300]
    a = Autoencoder(8, n_epochs=2, random_state=3).fit(X)
    b = Autoencoder(8, n_epochs=2, random_state=3).fit(X)
    for k in a.parameters():
        np.testing.assert_array_equal(a.parameters()[k], b.parameters()[k])
    f = Autoencoder(8, n_epochs=2, random_state=3, dtype="float32").fit(X)
    assert all(p.dtype == np.float32 for p in f.parameters().values())
    assert f.transform(X).dtype == np.float32
    # same run in single precision: same losses to float32 accuracy
    np.testing.assert_allclose(f.history_["loss"], a.history_["loss"], rtol=1e-4)


def test_sgd_optimizer_and_untied_train(rng):
    X, _ = sklearn_digits()
    m = Autoencoder(16, tied=False, optimizer="sgd", learning_rate=0.5, n_epochs=5,
                    batch_size=32, random_state=0).fit(X[:600])
    assert m.history_["loss"][-1] < 0.8 * m.history_["loss"][0]


@pytest.mark.slow
def test_mnist_real_data():
    path = require_shared("mnist")
    from npae.data import load_mnist
    X, _ = load_mnist(path, kind="test")  # the 10000-image file loads faster than 60000
    X = X.reshape(len(X), -1)
    X_train, X_test = X[:2000], X[-500:]
    m = Autoencoder(32, n_epochs=5, batch_size=32, learning_rate=1e-2, random_state=0)
    m.fit(X_train)
    mean_img = np.clip(X_train.mean(0), 1e-6, 1 - 1e-6)
    mean_ce = -(xlogy(X_test, mean_img) + xlog1py(1 - X_test, -mean_img)).sum(1).mean()
    # measured: the mean image costs ~200 nats per image, the trained AE ~133
    assert m.score(X_test) < 0.75 * mean_ce


# -- the estimator API ------------------------------------------------------------------------

def test_loss_is_a_plain_hyperparameter_and_objective_a_method():
    import inspect
    sig = inspect.signature(Autoencoder)
    assert sig.parameters["loss"].default == "cross_entropy"
    assert type(sig.parameters["loss"].default) is str
    X, _ = sklearn_digits()
    m = Autoencoder(4, loss="squared", n_epochs=1, random_state=0)
    assert type(m.loss) is str and m.get_params()["loss"] == "squared"
    m.fit(X[:100])
    assert type(m.loss) is str and m.loss == "squared"
    assert isinstance(m.objective(X[:10]), float)
    m.set_params(loss="cross_entropy")
    assert m.loss == "cross_entropy" and "cross_entropy" not in repr(m)  # the default


def test_gradients_are_copies(rng):
    X, _ = sklearn_digits()
    m = randomised(Autoencoder(4), X[:10], rng)
    g1 = m.gradients(X[:10])
    g2 = m.gradients(X[10:20])
    assert not np.allclose(g1["W"], g2["W"])


def test_save_load_roundtrip(tmp_path):
    npae_load = pytest.importorskip("npae.models.base").load
    X, _ = sklearn_digits()
    m = Autoencoder(6, tied=False, n_epochs=1, random_state=0).fit(X[:200])
    m.save(tmp_path / "ae.npz")
    m2 = npae_load(tmp_path / "ae.npz")
    np.testing.assert_array_equal(m2.reconstruct(X[:5]), m.reconstruct(X[:5]))


# -- bad input (item 7) -----------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    ({"n_hidden": 0}, r"n_hidden=0 .*\[1, inf\)"),
    ({"n_hidden": 2.5}, "n_hidden must be an integer"),
    ({"decoder": "relu"}, "decoder='relu' is not supported"),
    ({"decoder": "linear"}, "loss='squared'"),
    ({"learning_rate": -1.0}, "learning_rate=-1.0"),
    ({"batch_size": 0}, "batch_size=0"),
    ({"dtype": "int32"}, "dtype='int32'"),
])
def test_bad_hyperparameters(kwargs, match):
    X, _ = sklearn_digits()
    with pytest.raises((ValueError, TypeError), match=match):
        Autoencoder(**{"n_hidden": 4, **kwargs}).fit(X[:10])


def test_bad_data():
    X, _ = sklearn_digits()
    with pytest.raises(ValueError, match=r"needs X in \[0, 1\].*X / 255"):
        Autoencoder(4).fit(X * 16)
    Autoencoder(4, decoder="linear", loss="squared", n_epochs=1).fit(X * 16)  # fine
    bad = X[:10].copy()
    bad[3, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Autoencoder(4).fit(bad)
    with pytest.raises(ValueError, match="2-D"):
        Autoencoder(4).fit(X[0])
    with pytest.raises(NotFittedError, match="fit"):
        Autoencoder(4).transform(X)
    m = Autoencoder(4, n_epochs=0).fit(X)
    with pytest.raises(ValueError, match="64 features"):
        m.transform(X[:, :10])
    with pytest.raises(ValueError, match="n_hidden=4"):
        m.inverse_transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"X_val in \[0, 1\]"):
        Autoencoder(4).fit(X, X_val=X * 2)


# -- figures (item 6) -------------------------------------------------------------------------

@pytest.mark.slow
def test_figures_filters_codes_curves_reconstructions(tmp_path):
    from npae.plot import bottleneck_codes, encoder_filters, loss_curves, side_by_side
    from npae.models import StackedAutoencoder
    X, y = sklearn_digits()
    m = Autoencoder(16, n_epochs=3, batch_size=32, random_state=0).fit(X[:500], X_val=X[500:700])
    fig = encoder_filters(m, image_shape=(8, 8), path=tmp_path / "filters.png")
    mosaic = fig.axes[0].images[0].get_array()
    assert mosaic.shape == (4 * 8 + 3, 4 * 8 + 3)  # 16 filters, 4 x 4 tiles, 1-px gaps
    assert (tmp_path / "filters.png").stat().st_size > 1000
    assert len(loss_curves(m).axes[0].lines) == 2                     # training, validation
    side_by_side(X[:20], m.reconstruct(X[:20]), n=20, image_shape=(8, 8))
    two = Autoencoder(2, n_epochs=2, random_state=0).fit(X[:300])
    fig = bottleneck_codes(two, X[:300], y[:300], path=tmp_path / "codes.png")
    assert len(fig.axes[0].collections) == len(np.unique(y[:300]))  # one colour per digit
    s = StackedAutoencoder((16, 2), pretrain_epochs=1, finetune_epochs=1, random_state=0)
    s.fit(X[:300])
    bottleneck_codes(s, X[:300], y[:300])
    encoder_filters(s, image_shape=(8, 8))                            # layer 1's W
    with pytest.raises(ValueError, match="needs 2"):
        bottleneck_codes(m, X[:10])
