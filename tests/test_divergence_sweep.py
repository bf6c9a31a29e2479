"""Every gradient-trained estimator, both optimisers, learning rates from 1e-8 to 1e6: each
run ends either with a finite model whose final mean epoch loss is not above its first
(beyond the training loop's stated margin: rounding, or a denoising model's corruption
noise), or with TrainingDiverged and finite parameters. Nothing in between: no run returns
a model that training made worse, and none leaves NaN or exploded weights behind.

(PredictiveSparseDecomposition has no learning rate: its steps are exact or line-searched
minimisations, each never increasing its objective; its own tests hold that.)
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npae import train
from npae.exceptions import NotFittedError, TrainingDiverged
from npae.models import (Autoencoder, ContractiveAutoencoder, ConvAutoencoder,
                         DenoisingAutoencoder, LinearAutoencoder, StackedAutoencoder)

_rng = np.random.default_rng(7)
X = _rng.random((32, 6))
Y = np.tile([0, 1], 16)
IMAGES = 2 * _rng.random((8, 1, 8, 8)) - 1
_CONV = dict(encoder=(("conv", 2, 3, 2, 1), ("relu",), ("maxpool", 2, 1)),
             decoder=(("convT", 2, 3, 1, 0), ("relu",), ("convT", 1, 4, 2, 2), ("tanh",)),
             batch_size=4, n_epochs=4, random_state=0, verbose=False)
_DENSE = dict(n_epochs=4, batch_size=8, random_state=0)

#: name -> (factory(optimizer, learning_rate), data, labels, noisy objective)
ESTIMATORS = {
    "LinearAutoencoder": (lambda o, lr: LinearAutoencoder(2, optimizer=o, learning_rate=lr,
                                                          **_DENSE), X, None, False),
    "Autoencoder": (lambda o, lr: Autoencoder(3, optimizer=o, learning_rate=lr, **_DENSE),
                    X, None, False),
    "Autoencoder-squared": (lambda o, lr: Autoencoder(3, decoder="linear", loss="squared",
                                                      tied=False, optimizer=o,
                                                      learning_rate=lr, **_DENSE),
                            X, None, False),
    "DenoisingAutoencoder": (lambda o, lr: DenoisingAutoencoder(3, nu=0.3, optimizer=o,
                                                                learning_rate=lr, **_DENSE),
                             X, None, True),
    "ContractiveAutoencoder": (lambda o, lr: ContractiveAutoencoder(3, lam=0.2, optimizer=o,
                                                                    learning_rate=lr, **_DENSE),
                               X, None, False),
    "StackedAutoencoder": (lambda o, lr: StackedAutoencoder((4, 2), optimizer=o,
                                                            learning_rate=lr, pretrain_epochs=3,
                                                            finetune_epochs=3, batch_size=8,
                                                            random_state=0), X, Y, False),
    "ConvAutoencoder": (lambda o, lr: ConvAutoencoder(optimizer=o, learning_rate=lr, **_CONV),
                        IMAGES, None, False),
}

LEARNING_RATES = st.one_of(st.sampled_from([1e-8, 1e6]),
                           st.floats(-8, 6).map(lambda e: float(10.0 ** e)))


def _histories(model):
    h = model.history_
    if "pretrain" in h:                     # StackedAutoencoder: every stage's own run
        return [p["loss"] for p in h["pretrain"]] + [h["finetune"]["loss"]]
    return [h["loss"]]


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("name", list(ESTIMATORS))
@settings(max_examples=4)
@given(learning_rate=LEARNING_RATES)
def test_extreme_learning_rates_end_in_a_better_model_or_training_diverged(
        name, optimizer, learning_rate):
    make, data, labels, noisy = ESTIMATORS[name]
    model = make(optimizer, learning_rate)
    try:
        model.fit(data) if labels is None else model.fit(data, labels)
    except TrainingDiverged:
        try:
            params = model.parameters()
        except NotFittedError:              # a stacked model stopped in pre-training
            return
        assert all(np.isfinite(v).all() for v in params.values())
        return
    assert all(np.isfinite(v).all() for v in model.parameters().values())
    assert np.isfinite(model.transform(data)).all()
    margin = train.NOISY_MARGIN if noisy else train.NOISE_MARGIN
    for losses in _histories(model):
        assert np.isfinite(losses).all()
        assert losses[-1] <= losses[0] * (1 + margin), (losses, learning_rate)
