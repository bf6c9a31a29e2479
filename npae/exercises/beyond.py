"""Exercises beyond the lecture's slides: the sparse autoencoder's KL penalty (the UFLDL
homework) and the variational autoencoder's KL and reparameterization gradients.

Registered on import, after the lecture's. Each exercise states its objective with its
reduction spelled out; its ``objective`` is written here from the formula (the checker takes
finite differences of it) and its ``reference`` runs npae's own layers and the functions
``npae.models.sparse`` and ``npae.models.vae`` train with.

Each exercise also has a catalogue of its classic mistakes, ``MISTAKES[name]``: hint ->
function(inputs dict) -> the wrong gradient that mistake gives, registered as the
exercise's ``mistakes`` so that the checker names the mistake; the tests hold every
catalogued mistake to a FAIL with its own hint.
"""
from __future__ import annotations

import numpy as np

from ..losses import squared_error_grad
from ..models.sparse import kl_sparsity, kl_sparsity_grad
from ..models.vae import gaussian_kl, gaussian_kl_grad
from ..nn import Sigmoid
from ..nn.activations import sigmoid
from .lecture import _linear
from .registry import Exercise, register

__all__ = ["MISTAKES"]

#: exercise name -> {hint: function(inputs) -> the wrong gradient of that mistake}
MISTAKES: dict = {}


def _register(mistakes, **kwargs):
    MISTAKES[kwargs["name"]] = mistakes
    register(Exercise(mistakes=mistakes, **kwargs))


# -------------------------------------------------------------------------------------------
# 1. The sparse autoencoder's KL penalty: d/dW of beta sum_j KL(rho || rho_hat_j)
# -------------------------------------------------------------------------------------------
_SPARSE_STATEMENT = """\
Slide "Overcomplete Representation": an overcomplete code can copy its input; the sparse
autoencoder (Ng's CS294A notes, the UFLDL exercise) adds a penalty that keeps each hidden
unit off most of the time. With the encoder h(x) = sigm(b + W x) on the rows x^(t) of
X (n, d), W (k, d), b (k,), the mean activation of hidden unit j over the batch is

    rho_hat_j = (1/n) sum_t h_j(x^(t))                  (a MEAN over the n samples)

and the penalty, for a target rho in (0, 1) and a weight beta, is a SUM over the k units:

    P(W) = beta sum_j KL(rho || rho_hat_j),
    KL(rho || q) = rho log(rho / q) + (1 - rho) log((1 - rho) / (1 - q))

Return dP/dW, an array of W's shape (k, d). (rho_hat couples the samples: every sample's
hidden delta gets the same sparsity term.)"""


def _sparse_h(inp):
    return sigmoid(inp["X"] @ inp["W"].T + inp["b"])


def _sparse_objective(inp):
    return inp["beta"] * kl_sparsity(inp["rho"], _sparse_h(inp).mean(axis=0))


def _sparse_backprop(inp, dh):
    """Send ∂P/∂h (n, k) back through npae's Sigmoid and Linear layers; returns ∂P/∂W."""
    enc, act = _linear(inp["W"], inp["b"]), Sigmoid()
    act.forward(enc.forward(inp["X"]))
    enc.backward(act.backward(dh))
    return enc.grads["W"]


def _sparse_reference(inp):
    n = inp["X"].shape[0]
    rho_hat = _sparse_h(inp).mean(axis=0)
    delta = (inp["beta"] / n) * kl_sparsity_grad(inp["rho"], rho_hat)   # d rho_hat / d h = 1/n
    return _sparse_backprop(inp, np.broadcast_to(delta, (n, rho_hat.size)).copy())


def _sparse_per_sample(inp):
    """rho_hat treated per sample: KL(rho || h_j(x^(t))) for each t, as if rho_hat_j = h_tj."""
    h = _sparse_h(inp)
    return _sparse_backprop(inp, inp["beta"] / len(h) * kl_sparsity_grad(inp["rho"], h))


def _sparse_cases(rng):
    out = []
    for n, d, k in [(6, 5, 3), (1, 4, 2), (9, 3, 1), (4, 7, 5), (12, 2, 4)]:
        out.append({"X": rng.random((n, d)), "W": 0.8 * rng.standard_normal((k, d)),
                    "b": 0.5 * rng.standard_normal(k),
                    "rho": float(rng.choice([0.05, 0.1, 0.2])),
                    "beta": float(rng.uniform(1.0, 4.0))})
    return out


def _sparse_no_sigmoid(inp):
    """The KL's delta sent to W without the sigmoid's derivative h (1 - h)."""
    n = inp["X"].shape[0]
    rho_hat = _sparse_h(inp).mean(axis=0)
    delta = (inp["beta"] / n) * kl_sparsity_grad(inp["rho"], rho_hat)
    return np.broadcast_to(delta, (n, rho_hat.size)).T @ inp["X"]


_SPARSE_MISTAKES = {
    "beta is forgotten: the penalty is beta sum_j KL(rho || rho_hat_j), so its gradient "
    "carries the factor beta":
        lambda inp: _sparse_reference(inp) / inp["beta"],
    "the sigmoid's derivative h (1 - h) is missing: the KL's delta is dP/dh_j; dP/da_j = "
    "dP/dh_j h_j (1 - h_j) before dP/dW = (dP/da)^T x": _sparse_no_sigmoid,
    "rho_hat treated per sample: the KL's derivative must be taken at the batch mean "
    "rho_hat_j, the same for every sample, not at each sample's own h_j(x^(t))":
        _sparse_per_sample,
    "the KL's sign: d KL / d rho_hat_j = -rho / rho_hat_j + (1 - rho) / (1 - rho_hat_j)":
        lambda inp: -_sparse_reference(inp),
    "the 1/n of d rho_hat_j / d h_j(x^(t)) is missing":
        lambda inp: inp["X"].shape[0] * _sparse_reference(inp),
}

_register(
    _SPARSE_MISTAKES,
    name="sparse_kl_grad_W",
    title="sparse autoencoder: d/dW of the KL sparsity penalty beta sum_j KL(rho || rho_hat_j)",
    slide="Overcomplete Representation",
    statement=_SPARSE_STATEMENT,
    args=("X", "W", "b", "rho", "beta"), wrt="W",
    objective=_sparse_objective, reference=_sparse_reference, cases=_sparse_cases,
    batch_size=lambda inp: inp["X"].shape[0],
    requires=("npae.models.sparse",),
)


# -------------------------------------------------------------------------------------------
# 2, 3. The VAE's KL term: d/dmu and d/dlog sigma^2 of KL(N(mu, sigma^2) || N(0, I))
# -------------------------------------------------------------------------------------------
_KL_STATEMENT = """\
Slide "Autoencoders" ("Build some generative models"): the variational autoencoder's
encoder gives, for each row t, the mean mu^(t) and the log-variance log sigma^2^(t) of a
Gaussian q(z | x^(t)) over k latent units. Its distance to the prior N(0, I) is, in closed
form, a SUM over the k units,

    KL^(t) = -1/2 sum_j (1 + logvar_tj - mu_tj^2 - exp(logvar_tj)),

and npae's objective takes the MEAN over the n rows: L = (1/n) sum_t KL^(t). mu and logvar
are (n, k); logvar is log sigma^2 (the network outputs the log-variance, not sigma)."""

_KL_MISTAKES_MU = {
    "the KL's sign: KL = -1/2 sum (1 + log sigma^2 - mu^2 - sigma^2), so dKL/dmu = +mu":
        lambda inp: -gaussian_kl_grad(inp["mu"], inp["logvar"])[0],
    "the mean over the rows (1/n) is missing":
        lambda inp: inp["mu"].shape[0] * gaussian_kl_grad(inp["mu"], inp["logvar"])[0],
}
_KL_MISTAKES_LOGVAR = {
    "the KL's sign: dKL/dlog sigma^2 = (sigma^2 - 1) / 2, per row, over n":
        lambda inp: -gaussian_kl_grad(inp["mu"], inp["logvar"])[1],
    "differentiated with respect to sigma^2 instead of log sigma^2 (d sigma^2 / d log "
    "sigma^2 = sigma^2 forgotten)":
        lambda inp: (1.0 - np.exp(-inp["logvar"])) / (2.0 * inp["mu"].shape[0]),
    "the mean over the rows (1/n) is missing":
        lambda inp: inp["mu"].shape[0] * gaussian_kl_grad(inp["mu"], inp["logvar"])[1],
    "sigma used for sigma^2: the KL holds sigma^2 = exp(log sigma^2), whose derivative in "
    "log sigma^2 is sigma^2 itself, not sigma = exp(log sigma^2 / 2)":
        lambda inp: (np.exp(0.5 * inp["logvar"]) - 1.0) / (2.0 * inp["mu"].shape[0]),
    "the log-variance taken as log sigma: logvar is log sigma^2, so sigma^2 = exp(logvar), "
    "not exp(2 logvar)":
        lambda inp: (np.exp(2.0 * inp["logvar"]) - 1.0) / inp["mu"].shape[0],
}


def _kl_cases(rng):
    out = []
    for n, k in [(5, 3), (1, 4), (7, 1), (3, 6), (10, 2)]:
        out.append({"mu": rng.standard_normal((n, k)),
                    "logvar": rng.uniform(-2.0, 1.5, (n, k))})
    return out


_register(
    _KL_MISTAKES_MU,
    name="vae_kl_grad_mu",
    title="VAE: dL/dmu of the closed-form KL(q(z|x) || N(0, I)), mean over the rows",
    slide="Autoencoders",
    statement=_KL_STATEMENT + "\n\nReturn dL/dmu, an array of shape (n, k).",
    args=("mu", "logvar"), wrt="mu",
    objective=lambda inp: gaussian_kl(inp["mu"], inp["logvar"]),
    reference=lambda inp: gaussian_kl_grad(inp["mu"], inp["logvar"])[0],
    cases=_kl_cases, batch_size=lambda inp: inp["mu"].shape[0],
    requires=("npae.models.vae",),
)

_register(
    _KL_MISTAKES_LOGVAR,
    name="vae_kl_grad_logvar",
    title="VAE: dL/dlog sigma^2 of the closed-form KL(q(z|x) || N(0, I)), mean over the rows",
    slide="Autoencoders",
    statement=_KL_STATEMENT + "\n\nReturn dL/dlogvar, an array of shape (n, k).",
    args=("mu", "logvar"), wrt="logvar",
    objective=lambda inp: gaussian_kl(inp["mu"], inp["logvar"]),
    reference=lambda inp: gaussian_kl_grad(inp["mu"], inp["logvar"])[1],
    cases=_kl_cases, batch_size=lambda inp: inp["mu"].shape[0],
    requires=("npae.models.vae",),
)


# -------------------------------------------------------------------------------------------
# 4, 5. The reparameterization: a decoder loss through z = mu + sigma * eps, eps given
# -------------------------------------------------------------------------------------------
_REPARAM_STATEMENT = """\
Slide "Autoencoders" ("Build some generative models"): the variational autoencoder samples
its code by the reparameterization

    z^(t) = mu^(t) + sigma^(t) * eps^(t),   sigma = exp(logvar / 2),   eps ~ N(0, I) GIVEN

so that the noise eps is an input and the loss is a differentiable function of mu and
logvar = log sigma^2. Take a linear decoder V (d, k) and the squared error, summed over the
d features, with the MEAN over the n rows:

    L = (1/n) sum_t 1/2 || V z^(t) - x^(t) ||^2

X is (n, d); mu, logvar, eps are (n, k)."""


def _reparam_z(inp):
    return inp["mu"] + np.exp(0.5 * inp["logvar"]) * inp["eps"]


def _reparam_objective(inp):
    R = _reparam_z(inp) @ inp["V"].T - inp["X"]
    return float(0.5 * np.vdot(R, R) / inp["X"].shape[0])


def _reparam_dz(inp):
    """∂L/∂z from npae's Linear layer (the decoder V, no bias) and npae.losses' gradient."""
    dec = _linear(inp["V"])
    x_hat = dec.forward(_reparam_z(inp))
    return dec.backward(squared_error_grad(x_hat, inp["X"]))


def _reparam_logvar(inp):
    """∂L/∂logvar = ∂L/∂z ⊙ eps ⊙ dsigma/dlogvar, dsigma/dlogvar = sigma / 2."""
    return _reparam_dz(inp) * inp["eps"] * (0.5 * np.exp(0.5 * inp["logvar"]))


def _reparam_cases(rng):
    out = []
    for n, d, k in [(5, 4, 3), (1, 3, 2), (6, 5, 1), (3, 2, 4), (8, 6, 2)]:
        out.append({"X": rng.standard_normal((n, d)), "mu": rng.standard_normal((n, k)),
                    "logvar": rng.uniform(-1.5, 1.0, (n, k)),
                    "eps": rng.standard_normal((n, k)),
                    "V": rng.standard_normal((d, k))})
    return out


_REPARAM_MISTAKES_MU = {
    "the sign: dL/dmu = +dL/dz (dz/dmu = 1)": lambda inp: -_reparam_dz(inp),
    "eps multiplied into the mean's path (dz/dmu = 1, not eps)":
        lambda inp: _reparam_dz(inp) * inp["eps"],
    "the mean over the rows (1/n) is missing":
        lambda inp: inp["X"].shape[0] * _reparam_dz(inp),
}
_REPARAM_MISTAKES_LOGVAR = {
    "d sigma / d log sigma^2 = sigma / 2 forgotten (dL/dz * eps is dL/dsigma, not "
    "dL/dlog sigma^2)": lambda inp: _reparam_dz(inp) * inp["eps"],
    "the 1/2 of sigma = exp(log sigma^2 / 2) forgotten":
        lambda inp: _reparam_dz(inp) * inp["eps"] * np.exp(0.5 * inp["logvar"]),
    "eps forgotten: dz/dsigma = eps": lambda inp: _reparam_dz(inp) * 0.5 * np.exp(
        0.5 * inp["logvar"]),
    "the sign": lambda inp: -_reparam_logvar(inp),
    "the log-variance taken as log sigma (or sigma^2 used for sigma): sigma = "
    "exp(log sigma^2 / 2), so dz/dlog sigma^2 = eps sigma / 2, not eps exp(log sigma^2)":
        lambda inp: _reparam_dz(inp) * inp["eps"] * np.exp(inp["logvar"]),
}

_register(
    _REPARAM_MISTAKES_MU,
    name="vae_reparam_grad_mu",
    title="VAE reparameterization: dL/dmu of a decoder loss of z = mu + sigma * eps",
    slide="Autoencoders",
    statement=_REPARAM_STATEMENT + "\n\nReturn dL/dmu, an array of shape (n, k).",
    args=("X", "mu", "logvar", "eps", "V"), wrt="mu",
    objective=_reparam_objective, reference=_reparam_dz, cases=_reparam_cases,
    batch_size=lambda inp: inp["X"].shape[0],
)

_register(
    _REPARAM_MISTAKES_LOGVAR,
    name="vae_reparam_grad_logvar",
    title="VAE reparameterization: dL/dlog sigma^2 of a decoder loss of z = mu + sigma * eps",
    slide="Autoencoders",
    statement=_REPARAM_STATEMENT + "\n\nReturn dL/dlogvar, an array of shape (n, k).",
    args=("X", "mu", "logvar", "eps", "V"), wrt="logvar",
    objective=_reparam_objective, reference=_reparam_logvar, cases=_reparam_cases,
    batch_size=lambda inp: inp["X"].shape[0],
)
