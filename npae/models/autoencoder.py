"""The nonlinear autoencoder of the lecture ("Nonlinear Autoencoder", "Loss Function").

Equations (rows of ``X`` are the examples x^(t); W is (k, d), b is (k,), c is (d,)):

    (1)  a(x) = b + W x                                   encoder pre-activation
    (2)  h(x) = sigm(a(x))                                the code
    (3)  â(x) = c + W* h(x),   W* = W^T when tied          decoder pre-activation
    (4)  x̂    = sigm(â(x))    (binary inputs)   or   x̂ = â(x)   (real-valued inputs)
    (5)  l(f(x)) = -sum_k [x_k log x̂_k + (1 - x_k) log(1 - x̂_k)]     (with (4) sigm)
    (6)  l(f(x)) = 1/2 sum_k (x̂_k - x_k)^2                          (with (4) linear)

The training objective is the mean of l over the batch (npae's reduction everywhere).

Back-propagation (the lecture: "parameter gradients are obtained by back-propagating
∇_â l like in a regular network"). For (4) sigm with (5) the gradient at the logits is

    (7)  ∇_â l = x̂ - x

because sigm'(â) = x̂(1 - x̂) cancels the cross-entropy's denominator; for (4) linear with (6)
it is the same expression. With g = ∇_â l:

    (8)  ∇_c = g,   ∇_{W*} = g h^T,   ∇_h = W*^T g
    (9)  ∇_a = ∇_h ⊙ h ⊙ (1 - h),   ∇_b = ∇_a,   ∇_W (encoder) = ∇_a x^T

Tied weights (the lecture's exercise): W appears in (1) *and*, as W^T, in (3), so

    (10) ∇_W l = ∇_a x^T  +  (g h^T)^T = ∇_a x^T + h g^T
                 ^encoder term   ^decoder term

The model is a composition of npae's layers, and its gradients are their backward passes,
one equation each: ``ReconstructionLoss`` (``npae.losses``: the output unit with the loss,
(4)-(7); the sigmoid/cross-entropy pair from the logits â, the same objective as (5) without
log(0) or exp overflow), then ``TiedLinear`` or ``Linear`` (8), ``Sigmoid`` (9) and
``Linear`` (9). The sum (10) is built by the layers themselves: ``TiedLinear.backward`` adds
the decoder term into the encoder's gradient array (``+=``), and ``Linear.backward`` adds the
encoder term on top. Training runs through ``npae.train.fit_loop`` with an optimiser from
``npae.optim``. Subclasses change one thing each: ``DenoisingAutoencoder`` the input the
encoder sees (``_training_input``), ``ContractiveAutoencoder`` adds a penalty on the code
(``_penalty``).
"""
from __future__ import annotations

import numpy as np

from .._validation import check_param
from ..losses import ReconstructionLoss
from ..nn import Identity, Linear, Sequential, Sigmoid, TiedLinear
from ..optim import make_optimizer
from ..train import fit_loop
from .base import (BaseEstimator, DecoderMixin, GradientModelMixin, check_is_fitted,
                   check_size, check_training_params)

__all__ = ["Autoencoder", "reconstruction_loss", "UNIT_INTERVAL"]


def reconstruction_loss(a_hat, X, loss, output, need_grad=True):
    """Mean reconstruction loss (5)/(6) from the decoder's pre-activation â, and ∇_â of it.

    ``loss`` is an ``npae.losses`` entry or name and ``output`` the output layer o of (4);
    one ``ReconstructionLoss`` layer's forward and backward. Returns (L, dL/dâ or None).
    """
    layer = ReconstructionLoss(output, loss)
    L = layer.forward(a_hat, X, need_grad)
    return L, (layer.backward() if need_grad else None)


#: (lo, hi, who, fix) of the cross-entropy's [0, 1] targets, for ``check_data_range``
UNIT_INTERVAL = (0.0, 1.0, "loss='cross_entropy' needs",
                 "the lecture's binary inputs; rescale the data (e.g. X / 255 for 8-bit images) "
                 "or use decoder='linear', loss='squared' for real-valued inputs")


class Autoencoder(DecoderMixin, GradientModelMixin, BaseEstimator):
    """One-hidden-layer autoencoder h = sigm(b + Wx), x̂ = o(c + W* h) (equations 1-6).

    Parameters
    ----------
    n_hidden : int >= 1
        k, the number of hidden units (k < d undercomplete, k > d overcomplete).
    tied : bool
        W* = W^T (one shared array; gradient (10)) or an independent W* of shape (d, k).
    decoder : "sigmoid" or "linear"
        The output unit o in (4).
    loss : "cross_entropy" or "squared"
        (5), for inputs in [0, 1] with the sigmoid decoder, or (6). The lecture pairs the
        sigmoid decoder with (5) and the linear decoder with (6); sigmoid with (6) is also
        allowed, linear with (5) is not (x̂ would not be a probability).
    optimizer, learning_rate : "adam" | "sgd", float > 0
    n_epochs, batch_size : ints (epochs >= 0, batch >= 1)
    dtype : "float64" (default) or "float32" (numpy's types are accepted too)
        Precision of parameters and computation. float32 is faster; gradient checks need
        float64.
    random_state : None, int or Generator
        Drives the initialisation, the shuffling and (for the denoising model) the noise.
    verbose : bool
        Show a progress bar while fitting.

    Attributes
    ----------
    encoder_, decoder_ : Sequential
        (Linear, Sigmoid) and (TiedLinear or Linear, Sigmoid or Identity): the network.
    history_ : dict
        ``"loss"``: training objective per epoch; ``"val_loss"``: the objective on ``X_val``.
    n_features_in_ : int

    Notes
    -----
    ``score(X)`` returns the mean reconstruction loss (lower is better); scikit-learn's own
    convention (higher is better) would be its negative.
    """

    def __init__(self, n_hidden=64, *, tied=True, decoder="sigmoid", loss="cross_entropy",
                 optimizer="adam", learning_rate=1e-3, n_epochs=10, batch_size=128,
                 dtype="float64", random_state=None, verbose=False):
        self.n_hidden = n_hidden
        self.tied = tied
        self.decoder = decoder
        self.loss = loss
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
        check_param("tied", self.tied, options=(True, False))
        check_param("decoder", self.decoder, options=("sigmoid", "linear"))
        check_param("loss", self.loss, options=("cross_entropy", "squared"))
        if self.decoder == "linear" and self.loss == "cross_entropy":
            raise ValueError("decoder='linear' with loss='cross_entropy' is not a valid pair: "
                             "the cross-entropy needs x̂ in [0, 1]; use decoder='sigmoid' for "
                             "binary inputs or loss='squared' for real-valued ones")
        check_training_params(self)

    def _check_sizes(self, d):
        n_weights = (1 if self.tied else 2) * d * int(self.n_hidden)
        # the weights, their gradients and Adam's two moments
        check_size(4 * n_weights, f"n_hidden={self.n_hidden} (the n_hidden x {d} weight "
                   f"matrix W for {d} input features)", self.dtype)

    def _data_range(self):
        return UNIT_INTERVAL if self.loss == "cross_entropy" else None

    # -- the network --------------------------------------------------------------------------
    def _build(self, d, rng):
        dtype = np.dtype(self.dtype)
        # gain 4: sigm'(0) = 1/4, so Glorot's range is scaled by 4 for sigmoid units
        # (Glorot & Bengio 2010; the Theano denoising-autoencoder tutorial does the same)
        enc = Linear(d, self.n_hidden, rng=rng, dtype=dtype, gain=4.0)
        gain = 4.0 if self.decoder == "sigmoid" else 1.0
        dec = TiedLinear(enc) if self.tied else Linear(self.n_hidden, d, rng=rng, dtype=dtype,
                                                      gain=gain)
        out = Sigmoid() if self.decoder == "sigmoid" else Identity()
        layers = (enc, Sigmoid(), dec, out)
        # the model validates its input once at its entry points; inside, layers trust it
        for layer in layers:
            layer.check_input = False
        enc.needs_input_grad = False  # its input is the data: no dL/dx to form
        self.encoder_ = Sequential(layers[0], layers[1])
        self.decoder_ = Sequential(layers[2], layers[3])
        self._set_layers()

    def _restore_network(self):
        """Rebuild the layers for ``npae.load`` (the saved values are copied in afterwards)."""
        self._build(self.n_features_in_, np.random.default_rng(0))

    def _set_layers(self):
        enc, act = self.encoder_.layers
        dec, out = self.decoder_.layers
        self._enc, self._act, self._dec, self._out = enc, act, dec, out
        # (4) with (5) or (6): the output unit and the loss, resolved from the ``loss`` string
        self._loss_layer = ReconstructionLoss(out, self.loss)

    def parameters(self):
        """Dict name -> live array, in the lecture's names: W, b, c and (untied) W_star."""
        check_is_fitted(self, "encoder_")
        return self._lecture_names("params")

    def _grads(self):
        return self._lecture_names("grads")

    def _lecture_names(self, store):
        """The layers' ``params`` or ``grads`` under the lecture's names (one mapping for both)."""
        enc, dec = getattr(self._enc, store), getattr(self._dec, store)
        named = {"W": enc["W"], "b": enc["b"], "c": dec["c" if self.tied else "b"]}
        if not self.tied:
            named["W_star"] = dec["W"]
        return named

    # -- the objective -----------------------------------------------------------------------
    def _training_input(self, X, rng):
        """The input the encoder sees while training: x itself (the denoising model: x̃)."""
        return X

    def _penalty(self, h, da=None, dW=None):
        """An extra term of the objective that depends on the code h and W: returns its value
        (the batch mean taken) and, given ``da`` = ∇_a and ``dW`` = ∇_W, adds its own
        gradient terms into them in place. The plain autoencoder has none;
        ``ContractiveAutoencoder`` overrides it.
        """
        return 0.0

    def _objective(self, X_in, X, need_grad=True):
        """Objective of the batch (encoder input ``X_in``, target ``X``) and its gradients:
        the layers forward (1)-(6), then backward (7)-(10).

        The returned gradient dict holds the layers' own arrays (overwritten by the next call).
        """
        enc, act, dec, loss = self._enc, self._act, self._dec, self._loss_layer
        a = enc.forward(X_in)                                         # (1)
        h = act.forward(a)                                            # (2)
        a_hat = dec.forward(h)                                        # (3)
        L = loss.forward(a_hat, X, need_grad)                         # (4)-(6)
        if not need_grad:
            return L + self._penalty(h), None
        enc.zero_grad()
        dec.zero_grad()
        g = loss.backward()                                           # (7)
        dh = dec.backward(g)                  # (8); tied: adds (10)'s decoder term into ∇_W
        da = act.backward(dh)                                         # (9)
        P = self._penalty(h, da, enc.grads["W"])  # a penalty's own terms, into ∇_a and ∇_W
        enc.backward(da)                      # (9); adds ∇_a x^T, (10)'s encoder term
        return L + P, self._grads()

    def _objective_and_gradients(self, X, rng, need_grad=True):
        """The contract's hook: the objective of the batch X, the encoder reading
        ``_training_input(X, rng)``, and its gradients."""
        return self._objective(self._training_input(X, rng), X, need_grad)

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, X, y=None, *, X_val=None, checkpoint=None, resume=False):
        """Train on the rows of X (y is ignored); ``X_val`` adds a validation curve.
        ``checkpoint``: an .npz path written atomically after each epoch; ``resume=True``
        continues from it (same hyper-parameters and data)."""
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

    # -- using the model ------------------------------------------------------------------------
    def transform(self, X):
        """The codes h(x) = sigm(b + Wx), shape (n, n_hidden). Deterministic."""
        X = self._validate(X)
        return self.encoder_.forward(X)

    def score(self, X, y=None):
        """Mean reconstruction loss (5) or (6) of the clean X (no penalty, no corruption)."""
        X = self._input(X)
        a_hat = self._dec.forward(self._act.forward(self._enc.forward(X)))
        return self._loss_layer.forward(a_hat, X, need_grad=False)
