"""Lecture experiment: undercomplete versus overcomplete ("Undercomplete Representation",
"Overcomplete Representation", "How to extract meaningful hidden features?").

The lecture: an *undercomplete* hidden layer compresses, and compresses well only for the
training distribution; an *overcomplete* one need not compress at all -- "in some cases each
hidden unit may copy a different input component", and there is "no guarantee that the hidden
units will extract meaningful structure". Denoising and contractive autoencoders are the
lecture's two remedies.

The test of "did it learn structure or did it learn to copy" used here: reconstruct images of
pure noise (uniform in [0, 1]) that resemble nothing in the training set. A model that learned
the training distribution cannot reconstruct them; a model that learned to copy can. The score
of a set A is its relative reconstruction error

    r(A) = sum ||x̂ - x||^2 / sum ||x - mean(A)||^2

the fraction of A's variance the model fails to reproduce (0: perfect, 1: no better than
A's mean image).

A copy can only be learned for input components that vary during training; the 8x8 digits
have border pixels that are always 0, so ``pixel_noise`` adds a small Gaussian noise to the
training and test images (real images always carry some), which makes every component vary.
"""
from __future__ import annotations

import numpy as np

from .._validation import as_float_array, check_param
from .autoencoder import Autoencoder
from .contractive import ContractiveAutoencoder
from .denoising import DenoisingAutoencoder

__all__ = ["relative_error", "undercomplete_vs_overcomplete"]


def relative_error(model, A):
    """r(A) = sum ||x̂ - x||^2 / sum ||x - mean(A)||^2 for a fitted autoencoder."""
    r = model.reconstruct(A) - A
    c = A - A.mean(axis=0)
    return float(np.vdot(r, r) / np.vdot(c, c))


def undercomplete_vs_overcomplete(X_train, X_test, *, n_under=16, n_over=256,
                                  pixel_noise=0.1, sigma=0.2, lam=0.1, n_noise=300,
                                  n_epochs=40, learning_rate=2e-2, batch_size=32,
                                  random_state=0):
    """Train four autoencoders on X_train and score them on X_test and on noise images.

    Models (sigmoid encoder, tied weights, linear decoder, squared error, Adam):

    * ``"undercomplete"``: ``n_under`` hidden units (< d);
    * ``"overcomplete"``: ``n_over`` hidden units (> d), no regularisation;
    * ``"denoising"``: ``n_over`` units, Gaussian corruption ``sigma``;
    * ``"contractive"``: ``n_over`` units, Jacobian penalty ``lam``.

    Returns ``{model: {"train": r, "test": r, "noise": r}}`` with r the relative error above
    (``n_noise`` uniform noise images of X's width), plus ``"n_hidden"`` per model.
    """
    X_train = as_float_array(X_train, "X_train", ndim=2)
    X_test = as_float_array(X_test, "X_test", ndim=2)
    check_param("n_under", n_under, kind="int", low=1)
    check_param("n_over", n_over, kind="int", low=1)
    check_param("pixel_noise", pixel_noise, low=0.0)
    check_param("n_noise", n_noise, kind="int", low=2)
    d = X_train.shape[1]
    if X_test.shape[1] != d:
        raise ValueError(f"X_test has {X_test.shape[1]} features, X_train {d}; they must match")
    if not n_under < d < n_over:
        raise ValueError(f"need n_under < d < n_over to compare under- and overcomplete, got "
                         f"n_under={n_under}, d={d}, n_over={n_over}")
    rng = np.random.default_rng(random_state)
    X_train = X_train + pixel_noise * rng.standard_normal(X_train.shape)
    X_test = X_test + pixel_noise * rng.standard_normal(X_test.shape)
    noise = rng.random((n_noise, d))
    common = dict(tied=True, decoder="linear", loss="squared", n_epochs=n_epochs,
                  learning_rate=learning_rate, batch_size=batch_size, random_state=random_state)
    models = {
        "undercomplete": Autoencoder(n_under, **common),
        "overcomplete": Autoencoder(n_over, **common),
        "denoising": DenoisingAutoencoder(n_over, noise="gaussian", sigma=sigma, **common),
        "contractive": ContractiveAutoencoder(n_over, lam=lam, **common),
    }
    out = {}
    for name, model in models.items():
        model.fit(X_train)
        out[name] = {"n_hidden": model.n_hidden,
                     "train": relative_error(model, X_train),
                     "test": relative_error(model, X_test),
                     "noise": relative_error(model, noise)}
    return out
