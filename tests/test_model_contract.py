"""The model contract (npae.models.base, docs/design.md), held for every gradient-trained
estimator: objective(X, *, rng=0) and gradients(X, *, rng=0), the same draw by default,
exactly the keys of parameters(), and gradients that finite differences confirm in float64.
"""
import inspect

import numpy as np
import pytest

from npae.gradcheck import check_gradient
from npae.models import (PSD, Autoencoder, ContractiveAutoencoder, ConvAutoencoder,
                         DenoisingAutoencoder, LinearAutoencoder, SparseAutoencoder,
                         StackedAutoencoder, VariationalAutoencoder)
from npae.models.base import GradientModelMixin
from npae.nn import Linear

RNG = np.random.default_rng(0)
X = RNG.random((12, 6))
IMAGES = RNG.uniform(-0.9, 0.9, (4, 1, 6, 6))
_CONV = dict(encoder=(("conv", 2, 3, 1, 1), ("relu",)), decoder=(("convT", 1, 3, 1, 1),
                                                                   ("tanh",)))

#: name -> (a model, its data): one of every gradient-trained estimator (and its variants)
MODELS = {
    "Autoencoder": (lambda: Autoencoder(4, n_epochs=1, batch_size=6, random_state=0), X),
    "Autoencoder-untied-linear": (lambda: Autoencoder(
        4, tied=False, decoder="linear", loss="squared", n_epochs=1, random_state=0), X),
    "DenoisingAutoencoder": (lambda: DenoisingAutoencoder(4, n_epochs=1, random_state=0), X),
    "DenoisingAutoencoder-gaussian": (lambda: DenoisingAutoencoder(
        4, noise="gaussian", sigma=0.3, n_epochs=1, random_state=0), X),
    "ContractiveAutoencoder": (lambda: ContractiveAutoencoder(4, lam=0.5, n_epochs=1,
                                                              random_state=0), X),
    "LinearAutoencoder": (lambda: LinearAutoencoder(2, n_epochs=3, tol=0, random_state=0), X),
    "LinearAutoencoder-tied": (lambda: LinearAutoencoder(2, tied=True, n_epochs=3, tol=0,
                                                         random_state=0), X),
    "StackedAutoencoder": (lambda: StackedAutoencoder((4, 3), pretrain_epochs=1,
                                                      finetune_epochs=1, random_state=0), X),
    "PSD": (lambda: PSD(5, lam=0.1, n_iter=1, batch_size=6, z_tol=1e-14, z_max_iter=100000,
                        random_state=0), X),
    "PSD-tanh": (lambda: PSD(5, lam=0.1, encoder="tanh", n_iter=1, batch_size=6,
                             z_tol=1e-14, z_max_iter=100000, random_state=0), X),
    "SparseAutoencoder": (lambda: SparseAutoencoder(4, max_iter=3, random_state=0), X),
    "VariationalAutoencoder": (lambda: VariationalAutoencoder(
        5, 2, n_epochs=1, dtype="float64", random_state=0), X),
    "VariationalAutoencoder-learned": (lambda: VariationalAutoencoder(
        5, 2, likelihood="gaussian", output_variance="learned", n_epochs=1,
        dtype="float64", random_state=0), X),
    "ConvAutoencoder": (lambda: ConvAutoencoder(**_CONV, n_epochs=1, verbose=False,
                                                random_state=0), IMAGES),
}
#: models whose objective draws noise: another seed, another value
NOISY = {"DenoisingAutoencoder", "DenoisingAutoencoder-gaussian", "VariationalAutoencoder",
         "VariationalAutoencoder-learned"}


def _fitted(name):
    make, data = MODELS[name]
    return make().fit(data), data


def test_every_gradient_trained_estimator_is_listed():
    import npae.models as models
    classes = {obj for obj in vars(models).values()
               if isinstance(obj, type) and issubclass(obj, GradientModelMixin)}
    listed = {type(make()) for make, _ in MODELS.values()}
    assert classes == listed


@pytest.mark.parametrize("name", sorted(MODELS))
def test_signatures(name):
    model = MODELS[name][0]()
    for method in (model.objective, model.gradients):
        params = list(inspect.signature(method).parameters.values())
        assert params[0].name == "X" and params[0].kind == params[0].POSITIONAL_OR_KEYWORD
        rng = inspect.signature(method).parameters["rng"]
        assert rng.kind == rng.KEYWORD_ONLY and rng.default == 0
        # everything after X is keyword-only (labels y=, PSD's codes Z=)
        assert all(p.kind == p.KEYWORD_ONLY for p in params[1:]), method


@pytest.mark.parametrize("name", sorted(MODELS))
def test_keys_defaults_and_finite_differences(name):
    model, data = _fitted(name)
    params = model.parameters()
    grads = model.gradients(data)
    assert list(grads) == list(params)
    for k in params:
        assert grads[k].shape == params[k].shape and grads[k] is not params[k]
    # the default draws the same noise as rng=0, on every call
    assert model.objective(data) == model.objective(data, rng=0) == model.objective(data)
    again = model.gradients(data, rng=0)
    for k in params:
        np.testing.assert_array_equal(grads[k], again[k])
    other = model.objective(data, rng=1)
    assert (other != model.objective(data)) == (name in NOISY)
    assert model.objective(data, rng=1) == other
    # the student's check, a few entries of every array, float64
    for k, p in params.items():
        res = check_gradient(lambda _: model.objective(data), grads[k], p, max_entries=4,
                             name=k)
        assert res.ok, f"{name} {k}: {res}"


def test_psd_code_gradient_has_its_own_method():
    model, data = _fitted("PSD")
    Z = RNG.standard_normal((len(data), 5)) + 0.3
    assert set(model.gradients(data, Z=Z)) == set(model.parameters())
    res = check_gradient(lambda z: model.objective(data, Z=z),
                         model.code_gradient(data, Z) + model.lam * np.sign(Z) / len(data), Z)
    assert res.ok, str(res)


@pytest.fixture
def linear_backward_calls(monkeypatch):
    """The Linear layers whose backward runs from now on, in call order."""
    calls = []
    original = Linear.backward

    def spy(self, dout):
        calls.append(self)
        return original(self, dout)
    monkeypatch.setattr(Linear, "backward", spy)
    return calls


def test_the_linear_autoencoders_encoder_layer_forms_its_gradient(linear_backward_calls):
    """The encoder's gradient comes from its own Linear.backward, not a hand-added term."""
    model, data = _fitted("LinearAutoencoder-tied")
    linear_backward_calls.clear()
    model.gradients(data)
    assert model.encoder_ in linear_backward_calls


def test_psd_trains_npae_layers(linear_backward_calls):
    calls = linear_backward_calls
    model, _ = _fitted("PSD")
    assert model.encoder_.layers[0] in calls
    assert model.parameters()["W"] is model.encoder_.layers[0].params["W"]
