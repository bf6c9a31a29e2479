"""The variational autoencoder (Kingma & Welling, 2014): a generative autoencoder.

The lecture ends its list of what autoencoders are for with "build some generative models";
a plain autoencoder only reconstructs, this one can draw new images. The architecture is
PyTorch's VAE example (784-400 ReLU, two 400-20 heads, 20-400 ReLU, 400-784), in the
lecture's notation (rows of ``X`` are the examples x^(t), n of them; k = ``n_latent``):

    (1)  h = relu(b + W x)                                    encoder, (n_hidden,)
    (2)  μ = b_mu + W_mu h,   log σ² = b_logvar + W_logvar h   the two heads, (k,) each
    (3)  z = μ + σ ⊙ ε,       σ = exp(log σ² / 2),  ε ~ N(0, I)   the reparameterization
    (4)  h' = relu(b_dec + W_dec z),   â = c + W* h'            decoder, â (d,)
    (5)  Bernoulli:  -log p(x | z) = sum_i [softplus(â_i) - x_i â_i]   (BCE from the logits)
         Gaussian:   -log p(x | z) = sum_i [(x_i - â_i)² / (2 s²) + log(2π s²) / 2],
                     s² = output_variance fixed, or exp(log_var_x) learned
    (6)  KL(q(z|x) || N(0, I)) = -1/2 sum_j (1 + log σ²_j - μ_j² - σ²_j)   (closed form)
    (7)  L = (1/n) sum_t [-log p(x^(t) | z^(t)) + KL^(t)]       the mean negative ELBO, in nats

(7) is what PyTorch's example prints as its loss (its sum over a batch divided by the batch
size). x̂ = E[x | z] is sigm(â) (Bernoulli) or â (Gaussian).

Gradients, with ε held fixed (it is an input to (3), not a function of the parameters):

    (8)  g = ∂L/∂â = (sigm(â) - x) / n      (Bernoulli: fused in ``npae.nn.elementwise_kernels``)
             = (â - x) / (s² n)               (Gaussian: ``npae.losses.squared_error_grad`` / s²)
         ∂L/∂log_var_x = (1/n) sum_t sum_i [1/2 - (x_i - â_i)² / (2 s²)]   (learned s²)
    (9)  ∂L/∂z = W_dec^T [(W*^T g) ⊙ 1[h' > 0]]            (the decoder's layers' backward)
    (10) ∂L/∂μ = ∂L/∂z + μ / n                              (∂z/∂μ = 1; KL: ∂/∂μ = μ)
    (11) ∂L/∂log σ² = ∂L/∂z ⊙ ε ⊙ σ / 2 + (σ² - 1) / (2n)
         (∂z/∂log σ² = ε ∂σ/∂log σ² = ε σ / 2, since σ = exp(log σ² / 2); the KL term:
          ∂/∂log σ² of -1/2 (1 + log σ² - σ²) = (σ² - 1) / 2)
    (12) ∂L/∂h = W_mu^T ∂L/∂μ + W_logvar^T ∂L/∂log σ²      (both heads read h: the sum)
    and the parameter gradients of each layer from its ``backward`` (g^T input, sum of g).

The network is npae's layers (``Linear``, ``ReLU``) run forward and backward; the model adds
its own terms: the loss's gradient (8), the reparameterization path and the KL (10)-(11),
the sum (12) of the two heads' input gradients, and the learned output variance log_var_x, a
scalar model term (no layer holds it) whose gradient (8) is accumulated (``+=``) like a
layer's, after the same zeroing.
"""
from __future__ import annotations

import numpy as np

from .._validation import check_param
from ..losses import squared_error, squared_error_grad
from ..nn import Identity, Linear, ReLU, Sequential, Sigmoid
from ..nn.elementwise_kernels import cross_entropy_logits
from ..optim import make_optimizer
from ..train import fit_loop
from .base import (BaseEstimator, DecoderMixin, GradientModelMixin, check_is_fitted,
                   check_size, check_training_params)

__all__ = ["VariationalAutoencoder", "gaussian_kl", "gaussian_kl_grad", "latent_manifold",
           "interpolate"]


_LOG_2PI = float(np.log(2.0 * np.pi))


def gaussian_kl(mu, logvar):
    """(6) summed over the latent units, mean over the rows: (1/n) sum_t KL^(t)."""
    n = mu.shape[0]
    return float(-0.5 * np.sum(1.0 + logvar - mu * mu - np.exp(logvar)) / n)


def gaussian_kl_grad(mu, logvar):
    """∂/∂μ and ∂/∂log σ² of ``gaussian_kl``: μ / n and (σ² - 1) / (2n)."""
    n = mu.shape[0]
    return mu / n, (np.exp(logvar) - 1.0) / (2.0 * n)


def _torch_like_linear(fan_in, fan_out, rng, dtype):
    """A Linear layer initialised as PyTorch's ``nn.Linear`` is: W and b ~ U(-r, r) with
    r = 1/sqrt(fan_in), so a run starts where the PyTorch example's does (in distribution)."""
    # glorot's r = gain sqrt(6 / (fan_in + fan_out)); this gain makes it 1/sqrt(fan_in)
    gain = np.sqrt((fan_in + fan_out) / (6.0 * fan_in))
    layer = Linear(fan_in, fan_out, rng=rng, dtype=dtype, gain=gain)
    r = 1.0 / np.sqrt(fan_in)
    layer.params["b"][...] = rng.uniform(-r, r, size=fan_out)
    layer.check_input = False  # the model checks its input once, at its entry points
    return layer


class VariationalAutoencoder(DecoderMixin, GradientModelMixin, BaseEstimator):
    """Variational autoencoder with a Gaussian encoder q(z|x) and a N(0, I) prior (1-7).

    Parameters
    ----------
    n_hidden : int >= 1
        Width of the encoder's and the decoder's hidden ReLU layer (PyTorch's example: 400).
    n_latent : int >= 1
        k, the dimension of z (PyTorch's example: 20; 2 draws a latent manifold).
    likelihood : "bernoulli" or "gaussian"
        p(x|z) of (5): Bernoulli for images in [0, 1] (binary cross-entropy from the logits,
        summed over pixels), Gaussian for real-valued data.
    output_variance : float > 0 or "learned"
        s² of the Gaussian likelihood: fixed, or one learned log-variance ``log_var_x``
        shared by all features. Ignored by the Bernoulli likelihood.
    optimizer, learning_rate, n_epochs, batch_size
        As PyTorch's example: Adam, 1e-3, batch 128.
    dtype : "float32" (default, as PyTorch trains) or "float64" (gradient checks)
    random_state : None, int or Generator
        Drives the initialisation, the shuffling and the training noise ε.
    verbose : bool

    Attributes
    ----------
    encoder_, decoder_ : Sequential
        (Linear, ReLU) to h, and (Linear, ReLU, Linear, output) from z to x̂.
    mu_head_, logvar_head_ : Linear
    history_ : dict
        ``"loss"``: (7) per epoch; ``"val_loss"``: (7) on ``X_val`` (ε drawn with seed 0).
    n_features_in_ : int
    """

    _code_size = "n_latent"      # the codes that inverse_transform decodes are z

    def __init__(self, n_hidden=400, n_latent=20, *, likelihood="bernoulli",
                 output_variance=1.0, optimizer="adam", learning_rate=1e-3, n_epochs=10,
                 batch_size=128, dtype="float32", random_state=None, verbose=False):
        self.n_hidden = n_hidden
        self.n_latent = n_latent
        self.likelihood = likelihood
        self.output_variance = output_variance
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    # -- hyper-parameters -------------------------------------------------------------------
    def _check_params(self):
        check_param("n_hidden", self.n_hidden, kind="int", low=1)
        check_param("n_latent", self.n_latent, kind="int", low=1)
        check_param("likelihood", self.likelihood, options=("bernoulli", "gaussian"))
        if self.output_variance != "learned":
            if isinstance(self.output_variance, str):
                raise ValueError(f"output_variance={self.output_variance!r} is not supported; "
                                 "pass a float > 0 (fixed) or 'learned'")
            check_param("output_variance", self.output_variance, low=0.0, low_open=True)
        check_training_params(self)

    def _check_sizes(self, d):
        H, k = int(self.n_hidden), int(self.n_latent)
        # the weights, their gradients and Adam's two moments
        check_size(4 * (2 * d * H + 3 * H * k), f"n_hidden={H}, n_latent={k} (the weight "
                   f"matrices of a {d}-{H}-{k} network)", self.dtype)

    def _data_range(self):
        if self.likelihood != "bernoulli":
            return None
        return (0.0, 1.0, "likelihood='bernoulli' needs", "pixel intensities; rescale the data (e.g. "
                "X / 255) or use likelihood='gaussian' for real-valued data")

    def _learned_variance(self):
        return self.likelihood == "gaussian" and self.output_variance == "learned"

    # -- the network --------------------------------------------------------------------------
    def _build(self, d, rng):
        dtype = np.dtype(self.dtype)
        H, k = self.n_hidden, self.n_latent
        self.encoder_ = Sequential(_torch_like_linear(d, H, rng, dtype), ReLU())       # (1)
        self.mu_head_ = _torch_like_linear(H, k, rng, dtype)                            # (2)
        self.logvar_head_ = _torch_like_linear(H, k, rng, dtype)
        out = Sigmoid() if self.likelihood == "bernoulli" else Identity()
        self.decoder_ = Sequential(_torch_like_linear(k, H, rng, dtype), ReLU(),        # (4)
                                   _torch_like_linear(H, d, rng, dtype), out)
        for layer in self.decoder_.layers + self.encoder_.layers:
            layer.check_input = False
        self.encoder_.layers[0].needs_input_grad = False   # its input is the data: no dL/dx
        # s² = exp(log_var_x), learned; starts at 1 (log 1 = 0). A model term, not a layer's:
        # its gradient lives with the model's other own terms
        self.log_var_x_ = (np.zeros(1, dtype=dtype) if self._learned_variance() else None)
        self._term_grads = {"log_var_x": np.zeros(1, dtype=dtype)}

    def _restore_network(self):
        self._build(self.n_features_in_, np.random.default_rng(0))

    def _layers(self):
        enc, relu1 = self.encoder_.layers
        dec, relu2, out_lin, _ = self.decoder_.layers
        return enc, relu1, self.mu_head_, self.logvar_head_, dec, relu2, out_lin

    def parameters(self):
        """Dict name -> live array: W, b (encoder), W_mu, b_mu, W_logvar, b_logvar (the
        heads), W_dec, b_dec (decoder hidden), W_star, c (output) and, for a learned
        Gaussian variance, log_var_x."""
        check_is_fitted(self, "encoder_")
        return self._named("params")

    def _named(self, store):
        enc, _, mu_h, lv_h, dec, _, out = self._layers()
        named = {}
        for layer, (wn, bn) in ((enc, ("W", "b")), (mu_h, ("W_mu", "b_mu")),
                                (lv_h, ("W_logvar", "b_logvar")), (dec, ("W_dec", "b_dec")),
                                (out, ("W_star", "c"))):
            arrays = getattr(layer, store)
            named[wn], named[bn] = arrays["W"], arrays["b"]
        if self._learned_variance():
            named["log_var_x"] = (self.log_var_x_ if store == "params"
                                  else self._term_grads["log_var_x"])
        return named

    def _variance(self):
        """s² of the Gaussian likelihood (a float)."""
        if self._learned_variance():
            return float(np.exp(self.log_var_x_[0]))
        return float(self.output_variance)

    # -- the objective (7) and its gradients (8)-(12) ----------------------------------------
    def _draw_eps(self, n, rng):
        return rng.standard_normal((n, self.n_latent), dtype=np.dtype(self.dtype))

    def _reconstruction(self, a_hat, X, need_grad):
        """(5) mean over the rows, and g = ∂/∂â (8) (None without ``need_grad``)."""
        if self.likelihood == "bernoulli":
            return cross_entropy_logits(a_hat, X, need_grad)
        s2 = self._variance()
        half_sq = squared_error(a_hat, X)                     # (1/n) sum_t 1/2 ||â - x||^2
        L = half_sq / s2 + 0.5 * X.shape[1] * (_LOG_2PI + np.log(s2))
        if not need_grad:
            return L, None
        if self._learned_variance():
            # the model term log_var_x: ∂/∂log s² of the two terms, -half_sq / s² and d/2 (8)
            self._term_grads["log_var_x"] += -half_sq / s2 + 0.5 * X.shape[1]
        return L, squared_error_grad(a_hat, X) / a_hat.dtype.type(s2)

    def _objective_and_gradients(self, X, rng, need_grad=True):
        """The contract's hook: L (7) of the batch X with ε drawn from the generator ``rng``,
        and its gradients (the layers' own arrays, overwritten by the next call)."""
        enc, relu1, mu_h, lv_h, dec, relu2, out = self._layers()
        if need_grad:
            for layer in (enc, mu_h, lv_h, dec, out):
                layer.zero_grad()
            for g in self._term_grads.values():
                g[...] = 0.0
        eps = self._draw_eps(X.shape[0], rng)
        h = relu1.forward(enc.forward(X))                           # (1)
        mu, logvar = mu_h.forward(h), lv_h.forward(h)               # (2)
        sigma = np.exp(0.5 * logvar)
        z = mu + sigma * eps                                        # (3)
        a_hat = out.forward(relu2.forward(dec.forward(z)))          # (4)
        rec, g = self._reconstruction(a_hat, X, need_grad)          # (5), (8)
        L = rec + gaussian_kl(mu, logvar)                           # (6), (7)
        if not need_grad:
            return L, None
        dz = dec.backward(relu2.backward(out.backward(g)))          # (9)
        dkl_mu, dkl_logvar = gaussian_kl_grad(mu, logvar)
        dmu = dz + dkl_mu                                           # (10)
        dlogvar = dz * eps * (0.5 * sigma) + dkl_logvar             # (11)
        dh = mu_h.backward(dmu) + lv_h.backward(dlogvar)            # (12)
        enc.backward(relu1.backward(dh))
        return L, self._named("grads")

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, X, y=None, *, X_val=None, checkpoint=None, resume=False):
        """Train on the rows of X (y is ignored) with mini-batches, ε drawn afresh for each
        batch from the model's generator; ``X_val`` adds a validation curve (7).
        ``checkpoint``/``resume`` as ``npae.train.fit_loop``."""
        X, X_val, rng = self._fit_start(X, X_val)
        self._build(X.shape[1], rng)
        params = self.parameters()
        opt = make_optimizer(self.optimizer, params, self.learning_rate)
        self.history_ = fit_loop(
            params, self._training_loss(rng), X, optimizer=opt, n_epochs=self.n_epochs,
            batch_size=self.batch_size, rng=rng, val_loss=self._validation_loss, X_val=X_val,
            verbose=self.verbose, checkpoint=checkpoint, resume=resume,
            desc=type(self).__name__, noisy=self._noisy_objective, owner=type(self).__name__,
            monitor=self._monitor(X))
        return self

    _noisy_objective = True    # each step draws a new ε

    # -- using the model ------------------------------------------------------------------------
    def transform(self, X):
        """μ(x), the mean of q(z|x), shape (n, n_latent). Deterministic."""
        X = self._validate(X)
        return self.mu_head_.forward(self.encoder_.forward(X))

    def encode(self, X):
        """(μ, log σ²) of q(z|x), each (n, n_latent)."""
        X = self._validate(X)
        h = self.encoder_.forward(X)
        return self.mu_head_.forward(h), self.logvar_head_.forward(h)

    def sample(self, n=100, random_state=None):
        """n new images: z ~ N(0, I) from the prior, decoded to E[x | z], shape (n, d)."""
        check_is_fitted(self, "encoder_")
        check_param("n", n, kind="int", low=1)
        rng = np.random.default_rng(random_state)
        return self.inverse_transform(self._draw_eps(n, rng))

    def score(self, X, y=None):
        """The mean negative ELBO (7) of X with ε drawn with seed 0 (lower is better)."""
        return self.objective(X, rng=0)


def latent_manifold(model, n=20, quantile=0.05):
    """The decoded images of an n x n grid of z for a model with ``n_latent=2``: both
    coordinates run over the N(0, 1) quantiles from ``quantile`` to 1 - ``quantile`` (Kingma
    & Welling's Fig. 4), so the grid covers the prior's mass evenly. Returns (n * n, d),
    row-major: z_1 varies along a row, z_2 down the columns (top = large z_2)."""
    from scipy.stats import norm

    check_is_fitted(model, "encoder_")
    if model.n_latent != 2:
        raise ValueError(f"latent_manifold needs a model with n_latent=2, got n_latent="
                         f"{model.n_latent}; fit VariationalAutoencoder(n_latent=2) to draw it")
    check_param("n", n, kind="int", low=2)
    check_param("quantile", quantile, low=0.0, high=0.5, low_open=True, high_open=True)
    q = norm.ppf(np.linspace(quantile, 1.0 - quantile, n))
    z1, z2 = np.meshgrid(q, q[::-1])
    return model.inverse_transform(np.column_stack([z1.ravel(), z2.ravel()]))


def interpolate(model, x0, x1, n_steps=10):
    """Decoded images along the straight line from μ(x0) to μ(x1) in latent space:
    (n_steps, d), the first and last being the decodings of the two end points."""
    check_param("n_steps", n_steps, kind="int", low=2)
    mu = model.transform(np.vstack([np.ravel(x0), np.ravel(x1)]))
    t = np.linspace(0.0, 1.0, n_steps, dtype=mu.dtype)[:, None]
    return model.inverse_transform((1.0 - t) * mu[0] + t * mu[1])
