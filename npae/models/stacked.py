"""Stacked autoencoders (lecture: "Stacked Autoencoders").

Greedy layer-wise pre-training, then fine-tuning of the whole deep network (Bengio et al.
2007; Vincent et al. 2010, "stacked denoising autoencoders"):

    (1)  h^(0) = x;   for l = 1..L:  train an autoencoder on h^(l-1), then
         h^(l) = sigm(b^(l) + W^(l) h^(l-1))                 (its code feeds the next one)
    (2)  the deep autoencoder:  encoders 1..L, then decoders L..1,
         ĥ^(l-1) = o_l(c^(l) + W*^(l) ĥ^(l)),   ĥ^(L) = h^(L),   x̂ = ĥ^(0)
    (3)  unsupervised fine-tuning: minimise l(x̂, x) (cross-entropy or squared error, as for
         one autoencoder) over all W, b, c jointly by back-propagation through (2)
    (4)  supervised fine-tuning (``fit(X, y)``): a softmax layer on the top code,
         p(y | x) = softmax(V h^(L)(x) + e),  minimise -log p(y | x) over V, e and the
         encoders' W, b by back-propagation.

Gradients: (3) is the chain rule through npae's layers (each layer's backward states its own
step; a tied W receives its encoder and decoder terms, as in one autoencoder). For (4), with
z = V h + e and p = softmax(z), the per-example loss is logsumexp(z) - z_y and

    (5)  ∂/∂z = p - onehot(y),   ∂/∂V = (p - onehot(y)) h^T,   ∂/∂h = V^T (p - onehot(y)),

then back through the encoders as in (3). Inner layers (l >= 2) model codes in (0, 1), so
they use the sigmoid decoder with cross-entropy; the first layer uses ``decoder``/``loss``.
``kind`` chooses the autoencoder used for pre-training (plain, denoising, contractive);
fine-tuning uses clean inputs and no penalty.
"""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax

from .._validation import as_float_array, check_param
from ..nn import Linear, Sequential
from ..optim import make_optimizer
from ..train import fit_loop
from .autoencoder import UNIT_INTERVAL, Autoencoder
from .base import (BaseEstimator, GradientModelMixin, NotFittedError, check_is_fitted,
                   check_size)
from .contractive import ContractiveAutoencoder
from .denoising import DenoisingAutoencoder

__all__ = ["StackedAutoencoder", "softmax_cross_entropy"]


def softmax_cross_entropy(z, y):
    """Mean of -log softmax(z)_y over the rows, and its gradient (5) with respect to z.

    ``y`` holds class indices 0..C-1; logsumexp keeps it finite for any finite z.
    """
    n = z.shape[0]
    rows = np.arange(n)
    L = float((logsumexp(z, axis=1) - z[rows, y]).sum()) / n
    g = softmax(z, axis=1)
    g[rows, y] -= 1.0
    g /= n
    return L, g


class StackedAutoencoder(GradientModelMixin, BaseEstimator):
    """Deep autoencoder pre-trained greedily layer by layer, then fine-tuned (equations 1-5).

    Parameters
    ----------
    layer_sizes : sequence of int >= 1
        Hidden sizes k_1, ..., k_L of the encoder (e.g. (256, 64) for 784-256-64).
    kind : "plain", "denoising" or "contractive"
        The autoencoder used for pre-training each layer (with ``noise``/``nu``/``sigma`` or
        ``lam``).
    tied, decoder, loss : as ``Autoencoder`` (``decoder``/``loss`` apply to the first layer)
    pretrain_epochs, finetune_epochs : int >= 0
        Epochs per pre-trained layer, and epochs of (unsupervised or supervised) fine-tuning.
    optimizer, learning_rate, batch_size, dtype, random_state, verbose : as ``Autoencoder``

    Attributes
    ----------
    autoencoders_ : list of the pre-trained autoencoders; the deep network is built from
        their very layers, so fine-tuning changes them as well.
    network_ : Sequential, encoders 1..L then decoders L..1 (output: the logits â of x̂).
    classes_ : labels seen by ``fit(X, y)`` (only when fitted with labels).
    history_ : {"pretrain": [history per layer], "finetune": history}.

    ``score(X)`` is the deep reconstruction loss (lower is better); ``score(X, y)`` is the
    classification accuracy (higher is better), scikit-learn's classifier convention.
    """

    def __init__(self, layer_sizes=(256, 64), *, kind="plain", noise="mask", nu=0.25,
                 sigma=0.1, lam=0.1, tied=True, decoder="sigmoid", loss="cross_entropy",
                 optimizer="adam", learning_rate=1e-3, pretrain_epochs=10, finetune_epochs=10,
                 batch_size=128, dtype="float64", random_state=None, verbose=False):
        self.layer_sizes = layer_sizes
        self.kind = kind
        self.noise = noise
        self.nu = nu
        self.sigma = sigma
        self.lam = lam
        self.tied = tied
        self.decoder = decoder
        self.loss = loss
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.pretrain_epochs = pretrain_epochs
        self.finetune_epochs = finetune_epochs
        self.batch_size = batch_size
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    @property
    def autoencoders_(self):
        """The pre-trained autoencoders, layer 1 first (their layers make up ``network_``).

        Kept behind a property so that ``save`` stores their parameters (via ``parameters()``)
        rather than trying to write the objects themselves.
        """
        check_is_fitted(self, "_autoencoders")
        return self._autoencoders

    # -- building ------------------------------------------------------------------------------
    _fitted_attribute = "network_"

    def _check_params(self):
        sizes = self.layer_sizes
        if isinstance(sizes, (int, np.integer)) or not hasattr(sizes, "__len__") or not sizes:
            raise ValueError(f"layer_sizes={sizes!r} must be a non-empty sequence of hidden "
                             "sizes, e.g. (256, 64)")
        for i, k in enumerate(sizes):
            check_param(f"layer_sizes[{i}]", k, kind="int", low=1)
        check_param("kind", self.kind, options=("plain", "denoising", "contractive"))
        check_param("pretrain_epochs", self.pretrain_epochs, kind="int", low=0)
        check_param("finetune_epochs", self.finetune_epochs, kind="int", low=0)
        check_param("verbose", self.verbose, options=(True, False))
        # every kind's parameters, whichever kind is used (a typo is refused either way)
        check_param("noise", self.noise, options=("mask", "gaussian"))
        check_param("nu", self.nu, low=0.0, high=1.0, high_open=True)
        check_param("sigma", self.sigma, low=0.0)
        check_param("lam", self.lam, low=0.0)
        # the rest (tied, decoder, loss, the training parameters) is what the first layer's
        # autoencoder checks
        self._layer_model(0, None)._check_params()

    def _check_sizes(self, d):
        sizes = [d] + [int(k) for k in self.layer_sizes]
        n_weights = sum(a * b for a, b in zip(sizes, sizes[1:])) * (1 if self.tied else 2)
        check_size(4 * n_weights, f"layer_sizes={tuple(self.layer_sizes)!r} (the weight "
                   f"matrices of a {'-'.join(map(str, sizes))} network)", self.dtype)

    def _data_range(self):
        return UNIT_INTERVAL if self.loss == "cross_entropy" else None

    def _layer_model(self, l, seed):
        """The autoencoder that pre-trains layer l (0-based)."""
        common = dict(tied=self.tied, optimizer=self.optimizer,
                      learning_rate=self.learning_rate, n_epochs=self.pretrain_epochs,
                      batch_size=self.batch_size, dtype=self.dtype, random_state=seed,
                      decoder=self.decoder if l == 0 else "sigmoid",
                      loss=self.loss if l == 0 else "cross_entropy")
        k = self.layer_sizes[l]
        if self.kind == "denoising":
            return DenoisingAutoencoder(k, noise=self.noise, nu=self.nu, sigma=self.sigma,
                                        **common)
        if self.kind == "contractive":
            return ContractiveAutoencoder(k, lam=self.lam, **common)
        return Autoencoder(k, **common)

    def _assemble(self):
        """Equation (2) from the pre-trained layers: encoders 1..L, decoders L..2 with their
        sigmoid outputs, decoder 1 (its output unit is applied by the loss)."""
        aes = self._autoencoders
        layers = []
        for l, ae in enumerate(aes):
            # only the first encoder reads the data; the others pass dL/dh down the stack
            ae._enc.needs_input_grad = l > 0
            layers += [ae._enc, ae._act]
        for ae in reversed(aes[1:]):
            layers += [ae._dec, ae._out]
        layers.append(aes[0]._dec)
        self.network_ = Sequential(layers)
        self.encoder_ = Sequential(layers[:2 * len(aes)])
        # inputs are validated once at the model's entry points, not on every mini-batch
        self.network_.check_input = self.encoder_.check_input = False
        self._n_enc_layers = 2 * len(aes)

    def _seeds(self, rng):
        return [int(s) for s in rng.integers(0, 2**31 - 1, size=len(self.layer_sizes) + 1)]

    def _restore_network(self):
        """Rebuild the layers with the fitted sizes (``npae.load`` copies the values in)."""
        self._check_params()
        rng = np.random.default_rng(0)
        d, self._autoencoders = self.n_features_in_, []
        for l, k in enumerate(self.layer_sizes):
            ae = self._layer_model(l, 0)
            ae.n_features_in_ = d
            ae._build(d, rng)
            self._autoencoders.append(ae)
            d = k
        self._assemble()
        if getattr(self, "classes_", None) is not None:
            self._make_classifier(len(self.classes_), rng)

    def _make_classifier(self, n_classes, rng):
        self.classifier_ = Linear(self.layer_sizes[-1], n_classes, rng=rng,
                                  dtype=np.dtype(self.dtype))
        self.classifier_.check_input = False

    # -- the objective --------------------------------------------------------------------------
    def parameters(self):
        """Dict "l.name" -> live array for layer l = 1..L (W, b, c, W_star as in one
        autoencoder), plus "softmax.V", "softmax.e" once a classifier was fitted."""
        check_is_fitted(self, "network_")
        p = {}
        for l, ae in enumerate(self._autoencoders, start=1):
            p.update({f"{l}.{k}": v for k, v in ae.parameters().items()})
        if hasattr(self, "classifier_"):
            p["softmax.V"] = self.classifier_.params["W"]
            p["softmax.e"] = self.classifier_.params["b"]
        return p

    def _grads(self):
        g = {}
        for l, ae in enumerate(self._autoencoders, start=1):
            g.update({f"{l}.{k}": v for k, v in ae._grads().items()})
        if hasattr(self, "classifier_"):
            g["softmax.V"] = self.classifier_.grads["W"]
            g["softmax.e"] = self.classifier_.grads["b"]
        return g

    def _reconstruction_objective(self, X, need_grad=True):
        """(3) through the layers of (2): forward, then backward from the first autoencoder's
        output unit and loss (its ``ReconstructionLoss`` layer)."""
        net, loss = self.network_, self._autoencoders[0]._loss_layer
        L = loss.forward(net.forward(X), X, need_grad)
        if not need_grad:
            return L, None
        self._zero_grad()
        net.backward(loss.backward())
        return L, self._grads()

    def _supervised_objective(self, X, y_idx, need_grad=True):
        h = self.encoder_.forward(X)
        z = self.classifier_.forward(h)
        L, g = softmax_cross_entropy(z, y_idx)
        if not need_grad:
            return L, None
        self._zero_grad()
        self.encoder_.backward(self.classifier_.backward(g))
        return L, self._grads()

    def _zero_grad(self):
        self.network_.zero_grad()
        if hasattr(self, "classifier_"):
            self.classifier_.zero_grad()

    def _objective_and_gradients(self, X, rng=None, need_grad=True, y=None):
        """The contract's hook: (3) of the batch X, or (4) with the label indices ``y``
        (positions in ``classes_``); ``rng`` is unused (fine-tuning has no noise)."""
        if y is None:
            return self._reconstruction_objective(X, need_grad)
        return self._supervised_objective(X, y, need_grad)

    def objective(self, X, *, rng=0, y=None):
        """The fine-tuning objective at the current parameters: (3), or (4) with labels y."""
        return self._evaluate(X, rng, need_grad=False, y=y)[0]

    def gradients(self, X, *, rng=0, y=None):
        """Gradients of ``objective(X)`` or ``objective(X, y=y)`` (copies), keys of
        ``parameters()``."""
        return self._evaluate(X, rng, need_grad=True, y=y)[1]

    def _evaluate(self, X, rng, need_grad, y=None):
        if y is None:
            return super()._evaluate(X, rng, need_grad)
        X = self._validate(X)     # labels: no range to check, the softmax takes any code
        y_idx = self._encode_labels(y)
        if len(y_idx) != len(X):
            raise ValueError(f"y has {len(y_idx)} labels for {len(X)} rows of X; pass one "
                             "label per row")
        L, grads = self._objective_and_gradients(X, None, need_grad, y=y_idx)
        return L, (None if grads is None else {k: v.copy() for k, v in grads.items()})

    def _encode_labels(self, y):
        if not hasattr(self, "classifier_"):
            raise NotFittedError("this StackedAutoencoder has no classifier; fit(X, y) with "
                                 "labels y to train one")
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y must be a 1-D array of labels, got shape {y.shape}")
        idx = np.clip(np.searchsorted(self.classes_, y), 0, len(self.classes_) - 1)
        unknown = y[self.classes_[idx] != y]
        if unknown.size:
            raise ValueError(f"y holds label(s) {np.unique(unknown)[:5].tolist()} not seen in "
                             f"fit; the classifier knows {self.classes_.tolist()}")
        return idx

    # -- fitting -------------------------------------------------------------------------------
    def fit(self, X, y=None, *, X_val=None, y_val=None):
        """Pre-train layer by layer (1), then fine-tune: (3) without labels, (4) with y.

        ``X_val`` gives validation curves (per pre-trained layer and for fine-tuning); with
        labels, the fine-tuning curve needs ``y_val`` as well.
        """
        X, X_val, rng = self._fit_start(X, X_val)
        seeds = self._seeds(rng)
        if y is not None:
            y = np.asarray(y)
            if y.ndim != 1 or len(y) != len(X):
                raise ValueError(f"y must be 1-D with one label per row of X ({len(X)}), got "
                                 f"shape {y.shape}")
            self.classes_ = np.unique(y)
            if len(self.classes_) < 2:
                raise ValueError("y has 1 class; a classifier needs at least two")
        elif hasattr(self, "classes_"):
            del self.classes_
        if hasattr(self, "classifier_"):
            del self.classifier_

        # (1) greedy layer-wise pre-training
        self._autoencoders, history = [], {"pretrain": [], "finetune": {}}
        H, H_val = X, X_val
        for l in range(len(self.layer_sizes)):
            ae = self._layer_model(l, seeds[l])
            ae.set_params(verbose=self.verbose)
            ae.fit(H, X_val=H_val)
            history["pretrain"].append(ae.history_)
            self._autoencoders.append(ae)
            H = ae.transform(H)
            H_val = None if H_val is None else ae.transform(H_val)
        self._assemble()

        # (3) or (4): fine-tune everything by back-propagation
        ft_rng = np.random.default_rng(seeds[-1])
        if y is None:
            step = self._training_loss(ft_rng)
            val = self._validation_loss
            Xv, data = X_val, X
        else:
            self._make_classifier(len(self.classes_), ft_rng)
            y_idx = self._encode_labels(y)
            # the loop cuts batches of rows; carry the label as an extra column
            data = _Labelled(X, y_idx)
            step = (lambda b: self._objective_and_gradients(b.X, ft_rng, y=b.y))
            Xv = None
            if X_val is not None and y_val is not None:
                Xv = _Labelled(X_val, self._encode_labels(y_val))
            val = (lambda V: self._objective_and_gradients(V.X, None, False, y=V.y)[0])
        params = self.parameters()
        opt = make_optimizer(self.optimizer, params, self.learning_rate)
        history["finetune"] = fit_loop(params, step, data, optimizer=opt,
                                       n_epochs=self.finetune_epochs,
                                       batch_size=self.batch_size, rng=ft_rng, val_loss=val,
                                       X_val=Xv, verbose=self.verbose, desc="fine-tuning",
                                       owner=type(self).__name__)
        self.history_ = history
        return self

    # -- using the model -----------------------------------------------------------------------
    def transform(self, X):
        """The top code h^(L)(x), shape (n, layer_sizes[-1])."""
        X = self._validate(X)
        return self.encoder_.forward(X)

    def inverse_transform(self, H):
        """Decode top codes through decoders L..1: x̂, shape (n, n_features_in_)."""
        check_is_fitted(self, "network_")
        H = as_float_array(H, "H", ndim=2, dtype=self.dtype)
        if H.shape[1] != self.layer_sizes[-1]:
            raise ValueError(f"H has {H.shape[1]} columns; the top layer has "
                             f"{self.layer_sizes[-1]} units")
        for layer in self.network_.layers[self._n_enc_layers:]:
            H = layer.forward(H)
        return self._autoencoders[0]._out.forward(H)

    def reconstruct(self, X):
        return self.inverse_transform(self.transform(X))

    def predict_proba(self, X):
        """p(y | x) = softmax(V h^(L)(x) + e), columns in the order of ``classes_``."""
        X = self._validate(X)
        if not hasattr(self, "classifier_"):
            raise NotFittedError("predict needs a classifier: fit(X, y) with labels first")
        return softmax(self.classifier_.forward(self.encoder_.forward(X)), axis=1)

    def predict(self, X):
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X, y=None):
        """Mean deep reconstruction loss (no y), or classification accuracy (with y)."""
        if y is not None:
            return float(np.mean(self.predict(X) == np.asarray(y)))
        return self._reconstruction_objective(self._input(X), need_grad=False)[0]


class _Labelled:
    """Rows of X with their label indices, indexable like an array by ``fit_loop``."""

    def __init__(self, X, y):
        self.X, self.y = X, y
        self.shape = X.shape

    def __getitem__(self, idx):
        return _Labelled(self.X[idx], self.y[idx])

    def __len__(self):
        return len(self.X)
