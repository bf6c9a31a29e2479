"""The denoising autoencoder (lecture: "Denoising Autoencoder").

The idea: the representation should be robust to noise added to the input. Training draws a
corrupted x̃ from the clean x, encodes x̃, and compares the reconstruction with the *clean* x:

    (1)  x̃ = x ⊙ m,  m_k ~ Bernoulli(1 - ν)    masking: each input set to 0 with probability ν
                                                (dropout on the input layer, without rescaling)
    (1') x̃ = x + σ ε,  ε ~ N(0, I)              additive Gaussian noise
    (2)  h(x̃) = sigm(b + W x̃)
    (3)  x̂ = o(c + W* h(x̃))
    (4)  l = l(x̂, x)                            cross-entropy or squared error vs the clean x

The gradients are the plain autoencoder's (``npae.models.autoencoder``, equations 7-10) with
x̃ in place of x wherever the encoder's input appears (∇_W's encoder term is ∇_a x̃^T), and x
as the target in ∇_â l = x̂ - x. The corruption has no parameters, so nothing else changes.

Corruption happens only while fitting: ``transform``/``reconstruct``/``score`` use the clean
input. The noise comes from a generator the caller can fix: ``objective(X, rng=0)`` and
``gradients(X, rng=0)`` draw x̃ from ``np.random.default_rng(rng)`` afresh on each call, so with
the same int seed (the default is 0) both see the *same* x̃ and a finite-difference check of
``objective`` against ``gradients`` is exact. ``corrupt(X, rng=0)`` returns that x̃.
"""
from __future__ import annotations

import numpy as np

from .._validation import check_param
from .autoencoder import Autoencoder

__all__ = ["DenoisingAutoencoder", "corrupt"]


def corrupt(X, noise, nu, sigma, rng):
    """Draw x̃ from x by (1) masking with probability ``nu`` or (1') Gaussian noise ``sigma``."""
    if noise == "mask":
        keep = rng.random(X.shape, dtype=X.dtype) >= nu   # P(keep) = 1 - ν
        return X * keep
    return X + sigma * rng.standard_normal(X.shape, dtype=X.dtype)


class DenoisingAutoencoder(Autoencoder):
    """Autoencoder trained to reconstruct x from a corrupted x̃ (equations 1-4).

    Extra parameters
    ----------------
    noise : "mask" or "gaussian"
    nu : float in [0, 1)
        Masking probability ν (noise="mask").
    sigma : float >= 0
        Standard deviation σ of the additive noise (noise="gaussian").

    Everything else as ``Autoencoder``. The validation curve (``fit(X, X_val=...)``) is the
    denoising objective on X_val corrupted with a fixed seed, the same x̃ every epoch.
    """

    def __init__(self, n_hidden=64, *, noise="mask", nu=0.25, sigma=0.1, tied=True,
                 decoder="sigmoid", loss="cross_entropy", optimizer="adam", learning_rate=1e-3,
                 n_epochs=10, batch_size=128, dtype="float64", random_state=None,
                 verbose=False):
        super().__init__(n_hidden, tied=tied, decoder=decoder, loss=loss, optimizer=optimizer,
                         learning_rate=learning_rate, n_epochs=n_epochs, batch_size=batch_size,
                         dtype=dtype, random_state=random_state, verbose=verbose)
        self.noise = noise
        self.nu = nu
        self.sigma = sigma

    def _check_params(self):
        super()._check_params()
        check_param("noise", self.noise, options=("mask", "gaussian"))
        check_param("nu", self.nu, low=0.0, high=1.0, high_open=True)
        check_param("sigma", self.sigma, low=0.0)

    _noisy_objective = True     # each epoch's loss is of another random corruption

    def _training_input(self, X, rng):
        return corrupt(X, self.noise, self.nu, self.sigma, rng)

    def corrupt(self, X, rng=0):
        """x̃ for the rows of X, drawn with ``np.random.default_rng(rng)`` (equation 1 or 1')."""
        X = self._validate(X)
        return self._training_input(X, np.random.default_rng(rng))
