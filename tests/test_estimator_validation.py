"""Every hyper-parameter is checked where it enters (``fit``'s one preamble): a bad value is
a ValueError or TypeError naming the argument, its value and what is allowed, before any
work; a size whose arrays no machine holds is refused naming the size (not MemoryError)."""
import numpy as np
import pytest

from npae.models import (PSD, Autoencoder, ContractiveAutoencoder, ConvAutoencoder,
                         DenoisingAutoencoder, LinearAutoencoder, SparseAutoencoder,
                         StackedAutoencoder, VariationalAutoencoder)

X = np.random.default_rng(0).random((12, 5))
IMAGES = np.random.default_rng(0).uniform(-0.9, 0.9, (4, 1, 6, 6))
_CONV = dict(encoder=(("conv", 2, 3, 1, 1), ("relu",)), decoder=(("convT", 1, 3, 1, 1),
                                                                   ("tanh",)), verbose=False)

MAKERS = {
    "Autoencoder": (lambda **kw: Autoencoder(3, **kw), X),
    "DenoisingAutoencoder": (lambda **kw: DenoisingAutoencoder(3, **kw), X),
    "ContractiveAutoencoder": (lambda **kw: ContractiveAutoencoder(3, **kw), X),
    "SparseAutoencoder": (lambda **kw: SparseAutoencoder(3, **kw), X),
    "VariationalAutoencoder": (lambda **kw: VariationalAutoencoder(4, 2, **kw), X),
    "StackedAutoencoder": (lambda **kw: StackedAutoencoder((3, 2), **kw), X),
    "LinearAutoencoder": (lambda **kw: LinearAutoencoder(2, **kw), X),
    "PSD": (lambda **kw: PSD(3, **kw), X),
    "ConvAutoencoder": (lambda **kw: ConvAutoencoder(**{**_CONV, **kw}), IMAGES),
}

#: (model, hyper-parameter, bad value, what the message must say)
BAD = [
    # not finite
    ("Autoencoder", "learning_rate", float("nan"), r"learning_rate=nan must be finite"),
    ("SparseAutoencoder", "beta", float("inf"), r"beta=inf must be finite"),
    ("DenoisingAutoencoder", "sigma", float("nan"), r"sigma=nan must be finite"),
    ("ContractiveAutoencoder", "lam", float("inf"), r"lam=inf must be finite"),
    ("PSD", "lam", float("nan"), r"lam=nan must be finite"),
    ("VariationalAutoencoder", "output_variance", float("nan"), r"output_variance=nan"),
    ("LinearAutoencoder", "tol", float("nan"), r"tol=nan must be finite"),
    ("ConvAutoencoder", "learning_rate", float("inf"), r"learning_rate=inf must be finite"),
    # out of range
    ("Autoencoder", "n_epochs", -1, r"n_epochs=-1 is out of range; it must lie in \[0, inf\)"),
    ("DenoisingAutoencoder", "nu", 1.0, r"nu=1.0 is out of range; it must lie in \[0.0, 1.0\)"),
    ("SparseAutoencoder", "rho", 0.0, r"rho=0.0 is out of range; it must lie in \(0.0, 1.0\)"),
    ("StackedAutoencoder", "finetune_epochs", -2, r"finetune_epochs=-2 is out of range"),
    ("StackedAutoencoder", "nu", 1.5, r"nu=1.5 is out of range"),
    ("PSD", "step_scale", 2.0, r"step_scale=2.0 is out of range; it must lie in \(0.0, 1.0\]"),
    ("VariationalAutoencoder", "batch_size", 0, r"batch_size=0 is out of range"),
    ("LinearAutoencoder", "momentum", -0.5, r"momentum=-0.5 is out of range"),
    ("ConvAutoencoder", "n_epochs", -1, r"n_epochs=-1 is out of range"),
    # wrong kind or option
    ("Autoencoder", "batch_size", 2.5, r"batch_size must be an integer, got 2.5"),
    ("PSD", "n_iter", "3", r"n_iter must be an integer, got '3'"),
    ("SparseAutoencoder", "optimizer", "lbfgsb", r"optimizer='lbfgsb' is not supported"),
    ("VariationalAutoencoder", "dtype", "int8", r"dtype='int8' is not supported"),
    ("ConvAutoencoder", "optimizer", "rmsprop", r"optimizer='rmsprop' is not supported"),
    ("StackedAutoencoder", "verbose", "yes", r"verbose='yes' is not supported"),
    ("PSD", "verbose", 2, r"verbose=2 is not supported"),
    # the random state
    ("Autoencoder", "random_state", -1, r"random_state=-1 is not supported"),
    ("PSD", "random_state", "seed", r"random_state='seed' is not supported"),
    ("LinearAutoencoder", "random_state", 1.5, r"random_state=1.5 is not supported"),
]


@pytest.mark.parametrize("model, name, value, message", BAD,
                         ids=[f"{m}-{n}={v!r}" for m, n, v, _ in BAD])
def test_a_bad_hyper_parameter_is_named_with_its_value(model, name, value, message):
    make, data = MAKERS[model]
    with pytest.raises((ValueError, TypeError), match=message):
        make(**{name: value}).fit(data)


HUGE = 10**12
SIZES = [
    ("Autoencoder", lambda: Autoencoder(HUGE), r"n_hidden=1000000000000 \(the n_hidden x 5"),
    ("DenoisingAutoencoder", lambda: DenoisingAutoencoder(HUGE), r"n_hidden=1000000000000"),
    ("ContractiveAutoencoder", lambda: ContractiveAutoencoder(HUGE), r"n_hidden=1000000000000"),
    ("SparseAutoencoder", lambda: SparseAutoencoder(HUGE), r"n_hidden=1000000000000"),
    ("PSD", lambda: PSD(HUGE), r"n_atoms=1000000000000"),
    ("StackedAutoencoder", lambda: StackedAutoencoder((3, HUGE)),
     r"layer_sizes=\(3, 1000000000000\)"),
    ("VariationalAutoencoder-latent", lambda: VariationalAutoencoder(4, HUGE),
     r"n_latent=1000000000000"),
    ("VariationalAutoencoder-hidden", lambda: VariationalAutoencoder(HUGE, 2),
     r"n_hidden=1000000000000"),
]


@pytest.mark.parametrize("name, make, message", SIZES, ids=[s[0] for s in SIZES])
def test_sizes_beyond_memory_are_refused_naming_the_size(name, make, message):
    with pytest.raises(ValueError, match=message + r".* needs \d+\.\d \w+B for its arrays, "
                                                   r"more than this machine's"):
        make().fit(X)
