"""ConvAutoencoder: the lecture's net, its gradients, training, checkpoints, API and errors."""
import numpy as np
import pytest

from npae.data import normalize, synthetic_digits
from npae.gradcheck import numerical_gradient
from npae.models import ConvAutoencoder, NotFittedError
from npae.models.conv import LECTURE_DECODER

SLIDE_DECODER = (("convT", 16, 3, 2, 1),) + LECTURE_DECODER[1:]  # the slide's padding=1

#: a small net for 1x8x8 images whose every gradient entry is checked (8x8 -> 2x4x4 -> 2x2x2)
TINY = dict(encoder=(("conv", 2, 3, 1, 1), ("relu",), ("maxpool", 2, 2), ("conv", 2, 2, 2, 0),
                     ("tanh",)),
            decoder=(("convT", 3, 2, 2, 0), ("relu",), ("convT", 1, 3, 2, 1, 1), ("tanh",)))


@pytest.fixture(scope="module")
def digits():
    X, _ = synthetic_digits(300, seed=0)
    return normalize(X.astype(np.float32))


def test_summary_shows_the_lectures_shapes_and_5729_parameters(capsys):
    text = ConvAutoencoder().summary()
    assert capsys.readouterr().out.strip() == text.strip()
    assert "total parameters: 5,729" in text
    for shape, n in [("(16, 10, 10)", "160"), ("(8, 3, 3)", "1,160"), ("(8, 2, 2)", "0"),
                     ("(16, 5, 5)", "1,168"), ("(8, 15, 15)", "3,208"), ("(1, 28, 28)", "33")]:
        assert any(shape in line and line.split()[-1] == n for line in text.splitlines()), shape


def test_the_slides_padding_is_refused_naming_the_layer():
    with pytest.raises(ValueError) as err:
        ConvAutoencoder(decoder=SLIDE_DECODER).summary()
    msg = str(err.value)
    assert "output has shape (1, 16, 16) but the input has (1, 28, 28)" in msg
    assert "decoder layer 0, ConvTranspose2d(8, 16" in msg
    assert "padding=0 instead of 1" in msg


def test_impossible_shapes_name_the_layer():
    enc = (("conv", 16, 3, 3, 1), ("maxpool", 2, 2), ("conv", 8, 3, 2, 1), ("maxpool", 2, 1),
           ("conv", 8, 3, 1, 0))
    with pytest.raises(ValueError, match=r"shapes go wrong at encoder layer 4, Conv2d\(8, 8.*"
                                         r"input of height 2 gives an output height of 0"):
        ConvAutoencoder(encoder=enc).summary()
    with pytest.raises(ValueError, match=r"encoder layer 1: \(.pool., 2\) is not a layer spec"):
        ConvAutoencoder(encoder=(("conv", 4, 3, 1, 1), ("pool", 2))).summary()
    with pytest.raises(ValueError, match="last layer that sets the shape is decoder layer 4"):
        ConvAutoencoder(decoder=LECTURE_DECODER[:4] + (("convT", 2, 2, 2, 1), ("tanh",))).summary()


def test_gradients_match_finite_differences_float64():
    """Every entry of every parameter of a small net: (3)-(4) through all layers.
    Expected error ~1e-9 (central differences, no kink within h of these random points)."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (3, 1, 8, 8))
    m = ConvAutoencoder(**TINY, n_epochs=0, random_state=0, verbose=False).fit(X)
    params = m.parameters()
    grads = m.gradients(X)
    assert set(grads) == set(params) and len(params) == 8
    for name, p in params.items():
        assert p.dtype == np.float64
        num = numerical_gradient(lambda _: m.objective(X), p)
        err = np.max(np.abs(grads[name] - num)) / np.max(np.abs(num))
        assert err < 1e-6, (name, err)


def test_lecture_net_gradient_directional_check():
    """The full lecture net in float64: d/dt L(theta + t v) at t = 0 equals <grad, v> for a
    random direction v over all 5,729 parameters (central difference, error ~1e-8)."""
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (2, 1, 28, 28))
    m = ConvAutoencoder(n_epochs=0, random_state=1, verbose=False).fit(X)
    params, grads = m.parameters(), m.gradients(X)
    v = {k: rng.standard_normal(p.shape) for k, p in params.items()}
    analytic = sum(float(np.sum(grads[k] * v[k])) for k in params)
    base = {k: p.copy() for k, p in params.items()}
    h, vals = 1e-6, []
    for t in (h, -h):
        for k, p in params.items():
            p[...] = base[k] + t * v[k]
        vals.append(m.objective(X))
    for k, p in params.items():
        p[...] = base[k]
    numeric = (vals[0] - vals[1]) / (2 * h)
    assert abs(analytic - numeric) <= 1e-6 * abs(numeric)


@pytest.mark.slow
def test_fit_float32_learns_and_keeps_float32(digits):
    X = digits[:256]
    # a larger step than the slide's 0.001 so that 24 Adam steps show clear progress
    m = ConvAutoencoder(n_epochs=3, batch_size=32, learning_rate=0.01, random_state=0,
                        verbose=False)
    m.fit(X, X_val=digits[256:])
    assert all(p.dtype == np.float32 for p in m.parameters().values())
    assert len(m.history_["loss"]) == 3 and len(m.history_["val_loss"]) == 3
    assert m.history_["loss"][-1] < 0.7 * m.history_["loss"][0]  # seen: 0.61 -> 0.31
    x_hat = m.reconstruct(X[:10])
    assert x_hat.shape == (10, 28, 28) and x_hat.dtype == np.float32
    H = m.transform(X[:10])
    assert H.shape == (10, 8, 2, 2) and m.code_shape_ == (8, 2, 2)
    assert m.inverse_transform(H).shape == (10, 1, 28, 28)
    # score is the per-pixel MSE, computed here independently of the model's loss code
    expected = np.mean((x_hat.astype(np.float64) - X[:10]) ** 2)
    assert abs(m.score(X[:10]) - expected) < 1e-5 * expected
    assert abs(m.history_["val_loss"][-1] - m.score(digits[256:])) < 1e-5


@pytest.mark.slow
def test_checkpoint_resume_gives_the_same_model(tmp_path, digits):
    X = digits[:96]
    ck = tmp_path / "conv.npz"
    full = ConvAutoencoder(n_epochs=2, batch_size=32, random_state=3, verbose=False).fit(X)
    part = ConvAutoencoder(n_epochs=1, batch_size=32, random_state=3, verbose=False)
    part.fit(X, checkpoint=str(ck))
    assert ck.exists()
    resumed = ConvAutoencoder(n_epochs=2, batch_size=32, random_state=3, verbose=False)
    resumed.fit(X, checkpoint=str(ck), resume=True)
    for k, p in full.parameters().items():
        np.testing.assert_array_equal(resumed.parameters()[k], p)  # bit-identical
    assert resumed.history_["loss"] == full.history_["loss"]


def test_params_and_input_errors(digits):
    m = ConvAutoencoder(n_epochs=4)
    assert m.get_params()["n_epochs"] == 4 and m.set_params(batch_size=64).batch_size == 64
    with pytest.raises(NotFittedError):
        m.transform(digits[:2])
    with pytest.raises(ValueError, match=r"batch_size=0 is out of range"):
        ConvAutoencoder(batch_size=0).fit(digits[:4])
    with pytest.raises(ValueError, match=r"\(n, C, H, W\) or \(n, H, W\)"):
        ConvAutoencoder().fit(np.zeros((4, 784)))
    with pytest.raises(ValueError, match="non-finite"):
        ConvAutoencoder().fit(np.full((2, 28, 28), np.nan))
    fitted = ConvAutoencoder(n_epochs=0, verbose=False).fit(digits[:4])
    with pytest.raises(ValueError, match=r"images of shape \(1, 20, 20\), but the model was "
                                         r"fitted on \(1, 28, 28\)"):
        fitted.reconstruct(np.zeros((2, 20, 20)))
    with pytest.raises(ValueError, match=r"codes of shape \(8, 3, 3\)"):
        fitted.inverse_transform(np.zeros((2, 8, 3, 3)))
