"""The sparse autoencoder with a KL-divergence sparsity penalty (Ng, CS294A lecture notes;
the UFLDL "sparse autoencoder" exercise).

Beyond the lecture's slides, in their notation (rows of ``X`` are the examples x^(t), n of
them; W is (k, d), b is (k,), W* is (d, k), c is (d,); nothing is tied):

    (1)  a = b + W x,            h = sigm(a)                 encoder, k hidden units
    (2)  â = c + W* h,           x̂ = sigm(â)                 decoder (sigmoid output, as UFLDL)
    (3)  ρ̂_j = (1/n) sum_t h_j(x^(t))                        mean activation of unit j
    (4)  KL(ρ || ρ̂_j) = ρ log(ρ / ρ̂_j) + (1 - ρ) log((1 - ρ) / (1 - ρ̂_j))
    (5)  J = (1/n) sum_t 1/2 ||x̂^(t) - x^(t)||^2
             + (weight_decay / 2) (sum W^2 + sum W*^2)  +  beta sum_j KL(ρ || ρ̂_j)

The gradient (back-propagation, then the sparsity term's own delta). With g = ∂J/∂x̂ and the
sigmoid's derivative,

    (6)  ∂J/∂x̂ = (x̂ - x) / n                                (``npae.losses.squared_error_grad``)
    (7)  ∂J/∂â = ∂J/∂x̂ ⊙ x̂ (1 - x̂)                         (``Sigmoid.backward``)
    (8)  ∂J/∂W* = (∂J/∂â)^T h + weight_decay W*,  ∂J/∂c = sum_t ∂J/∂â
    (9)  ∂J/∂h_tj = (W*^T ∂J/∂â_t)_j  +  (beta / n) (-ρ / ρ̂_j + (1 - ρ) / (1 - ρ̂_j))
    (10) ∂J/∂a = ∂J/∂h ⊙ h (1 - h),   ∂J/∂W = (∂J/∂a)^T x + weight_decay W,  ∂J/∂b = sum_t ∂J/∂a

The second term of (9) is the KL penalty's: d KL / d ρ̂_j = -ρ/ρ̂_j + (1 - ρ)/(1 - ρ̂_j), and
ρ̂_j depends on h_tj with weight d ρ̂_j / d h_tj = 1/n, for *every* sample t of the batch.
This is UFLDL's "sparsity delta" added to every sample's hidden delta.

Why a per-sample view is wrong here. The reconstruction term is a mean of per-sample terms,
so its gradient is the mean of per-sample gradients and can be accumulated one example at a
time. The KL term is not: it is a function of ρ̂, an average over the batch, so every
sample's delta (9) needs ρ̂, and ρ̂ needs a forward pass over *all* samples before any
backward pass. Taking ρ̂_j = h_j(x^(t)) for each sample alone penalises each activation
towards ρ (a different objective: sum_t KL(ρ || h_tj), which pushes every activation to ρ
instead of letting most be near 0 and a few near 1); the gradient that results is not the
gradient of (5). With mini-batches (``optimizer="adam"``) ρ̂ is the mini-batch's mean: the
objective of each step is (5) on that batch, a noisy stand-in for the full-data ρ̂ that
L-BFGS (the original exercise) uses.

The network is npae's layers (``Linear``, ``Sigmoid``, ``Linear``, ``Sigmoid``) run forward
and backward; the model adds the two terms that are its own: the sparsity delta of (9),
between the decoder's and the encoder's backward, and the weight decay of (8) and (10).
"""
from __future__ import annotations

import numpy as np

from .._validation import check_param
from ..losses import squared_error, squared_error_grad
from ..nn import Linear, Sequential, Sigmoid
from ..optim import make_optimizer
from ..train import fit_lbfgs, fit_loop
from .base import (BaseEstimator, DecoderMixin, GradientModelMixin, check_is_fitted,
                   check_size, check_training_params)

__all__ = ["SparseAutoencoder", "kl_sparsity", "kl_sparsity_grad"]


def kl_sparsity(rho, rho_hat):
    """(4) summed over the hidden units: sum_j KL(ρ || ρ̂_j), for ρ in (0, 1) and ρ̂ in (0, 1)."""
    return float(np.sum(rho * np.log(rho / rho_hat)
                        + (1.0 - rho) * np.log((1.0 - rho) / (1.0 - rho_hat))))


def kl_sparsity_grad(rho, rho_hat):
    """d/dρ̂_j of ``kl_sparsity``: -ρ/ρ̂_j + (1 - ρ)/(1 - ρ̂_j), shape of ρ̂."""
    return -rho / rho_hat + (1.0 - rho) / (1.0 - rho_hat)


def _clip_open_unit(p):
    """ρ̂ kept inside (0, 1) by one ulp-sized margin: a unit that is exactly 0 (or 1) on every
    sample of the batch (a sigmoid driven far past saturation) would otherwise make (4) and
    (9) infinite; everywhere else this leaves ρ̂ unchanged."""
    eps = np.finfo(p.dtype).eps
    return np.clip(p, eps, 1.0 - eps)


class SparseAutoencoder(DecoderMixin, GradientModelMixin, BaseEstimator):
    """Sigmoid autoencoder with a KL(ρ || ρ̂) sparsity penalty (equations 1-5).

    Parameters
    ----------
    n_hidden : int >= 1
        k, the number of hidden units (UFLDL's MNIST exercise uses 196 for 28x28 digits).
    rho : float in (0, 1)
        ρ, the target mean activation of each hidden unit.
    beta : float >= 0
        Weight of the sparsity penalty.
    weight_decay : float >= 0
        The weight decay (UFLDL's lambda) on W and W* (not on the biases).
    optimizer : "lbfgs" | "adam" | "sgd"
        "lbfgs": scipy's L-BFGS-B on the whole training set (the original exercise; ρ̂ is the
        full data's mean activation); "adam"/"sgd": mini-batches through ``npae.train``.
    max_iter : int >= 0
        L-BFGS iterations.
    learning_rate, n_epochs, batch_size
        For "adam"/"sgd" only.
    dtype : "float64" (default) or "float32"
    random_state : None, int or Generator
        Drives the initialisation and the mini-batch shuffling.
    verbose : bool

    Attributes
    ----------
    encoder_, decoder_ : Sequential
        (Linear, Sigmoid) and (Linear, Sigmoid).
    history_ : dict
        ``"loss"``: J per L-BFGS iteration or per epoch; ``"val_loss"``: J on ``X_val``.
    rho_hat_ : ndarray (k,)
        ρ̂ on the training data after fitting (compare with ``rho``).
    n_iter_ : int
        L-BFGS iterations run (or epochs, for mini-batch optimisers).
    n_features_in_ : int
    """

    def __init__(self, n_hidden=196, *, rho=0.05, beta=3.0, weight_decay=1e-4,
                 optimizer="lbfgs", max_iter=400, learning_rate=1e-3, n_epochs=10,
                 batch_size=256, dtype="float64", random_state=None, verbose=False):
        self.n_hidden = n_hidden
        self.rho = rho
        self.beta = beta
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    # -- hyper-parameters -------------------------------------------------------------------
    def _check_params(self):
        check_param("n_hidden", self.n_hidden, kind="int", low=1)
        check_param("rho", self.rho, low=0.0, high=1.0, low_open=True, high_open=True)
        check_param("beta", self.beta, low=0.0)
        check_param("weight_decay", self.weight_decay, low=0.0)
        check_param("max_iter", self.max_iter, kind="int", low=0)
        check_training_params(self, optimizers=("lbfgs", "adam", "sgd"))

    def _check_sizes(self, d):
        # W and W*, their gradients, and L-BFGS's float64 copies (or Adam's moments)
        check_size(8 * d * int(self.n_hidden), f"n_hidden={self.n_hidden} (the {d} x n_hidden "
                   "weight matrices W and W*)", self.dtype)

    # -- the network --------------------------------------------------------------------------
    def _build(self, d, rng):
        dtype = np.dtype(self.dtype)
        # gain 4 for sigmoid units (sigm'(0) = 1/4), as the other sigmoid autoencoders
        enc = Linear(d, self.n_hidden, rng=rng, dtype=dtype, gain=4.0)
        enc.needs_input_grad = False  # its input is the data: no dL/dx to form
        dec = Linear(self.n_hidden, d, rng=rng, dtype=dtype, gain=4.0)
        layers = (enc, Sigmoid(), dec, Sigmoid())
        for layer in layers:  # the model checks its input once, at its entry points
            layer.check_input = False
        self.encoder_ = Sequential(layers[0], layers[1])
        self.decoder_ = Sequential(layers[2], layers[3])

    def _restore_network(self):
        self._build(self.n_features_in_, np.random.default_rng(0))

    def parameters(self):
        """Dict name -> live array: W (k, d), b (k,), W_star (d, k), c (d,)."""
        check_is_fitted(self, "encoder_")
        return self._named("params")

    def _named(self, store):
        enc, dec = (getattr(s.layers[0], store) for s in (self.encoder_, self.decoder_))
        return {"W": enc["W"], "b": enc["b"], "W_star": dec["W"], "c": dec["b"]}

    # -- the objective (5) and its gradient (6)-(10) -----------------------------------------
    def _objective(self, X, need_grad=True):
        """J of the batch X and, if ``need_grad``, its gradients (the layers' own arrays)."""
        (enc, act), (dec, out) = self.encoder_.layers, self.decoder_.layers
        n = X.shape[0]
        rho, beta, wd = self.rho, self.beta, self.weight_decay
        h = act.forward(enc.forward(X))                             # (1)
        x_hat = out.forward(dec.forward(h))                         # (2)
        rho_hat = _clip_open_unit(h.mean(axis=0))                   # (3)
        W, W_star = enc.params["W"], dec.params["W"]
        J = (squared_error(x_hat, X)                                # (5), the three terms
             + 0.5 * wd * (float(np.vdot(W, W)) + float(np.vdot(W_star, W_star)))
             + beta * kl_sparsity(rho, rho_hat))
        if not need_grad:
            return J, None
        enc.zero_grad()
        dec.zero_grad()
        dh = dec.backward(out.backward(squared_error_grad(x_hat, X)))   # (6)-(8), first of (9)
        dh += (beta / n) * kl_sparsity_grad(rho, rho_hat)           # (9): every sample's delta
        enc.backward(act.backward(dh))                              # (10)
        enc.grads["W"] += wd * W                                    # weight decay of (10)
        dec.grads["W"] += wd * W_star                               # and of (8)
        return J, self._named("grads")

    def _objective_and_gradients(self, X, rng=None, need_grad=True):
        """The contract's hook: J (5) of the batch X and its gradients; ``rng`` is unused
        (J is deterministic)."""
        return self._objective(X, need_grad)

    def mean_activation(self, X):
        """ρ̂ (3) of the rows of X: the mean of each hidden unit's activation, shape (k,)."""
        return self.transform(X).mean(axis=0)

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, X, y=None, *, X_val=None, checkpoint=None, resume=False):
        """Train on the rows of X (y is ignored); ``X_val`` adds a validation curve.

        ``checkpoint``: an .npz path written atomically after each L-BFGS iteration (or
        epoch); ``resume=True`` continues from it. L-BFGS resumes from the saved parameters
        with a fresh curvature memory (``npae.train.fit_lbfgs``), so a resumed run is close
        to, not bit-identical with, an uninterrupted one; the mini-batch optimisers resume
        exactly. The full-batch L-BFGS path sums over all rows in one matrix product, whose
        last bits depend on the BLAS library's thread count (README, "Reproducibility").
        """
        X, X_val, rng = self._fit_start(X, X_val)
        self._build(X.shape[1], rng)
        params = self.parameters()
        common = dict(val_loss=self._validation_loss, X_val=X_val, verbose=self.verbose,
                      checkpoint=checkpoint, resume=resume, desc=type(self).__name__,
                      owner=type(self).__name__)
        if self.optimizer == "lbfgs":
            self.history_ = fit_lbfgs(params, self._training_loss(rng), X,
                                      max_iter=self.max_iter, **common)
        else:
            opt = make_optimizer(self.optimizer, params, self.learning_rate)
            self.history_ = fit_loop(params, self._training_loss(rng), X, optimizer=opt,
                                     n_epochs=self.n_epochs, batch_size=self.batch_size,
                                     rng=rng, **common)
        self.n_iter_ = len(self.history_["loss"])
        self.rho_hat_ = self.mean_activation(X)
        return self

    # -- using the model ------------------------------------------------------------------------
    def transform(self, X):
        """The codes h(x) = sigm(b + Wx), shape (n, n_hidden)."""
        X = self._validate(X)
        return self.encoder_.forward(X)

    def score(self, X, y=None):
        """Mean reconstruction error (1/n) sum_t 1/2 ||x̂ - x||^2 (no penalties; lower is
        better)."""
        X = self._validate(X)
        return squared_error(self.reconstruct(X), X)
