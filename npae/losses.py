"""The lecture's reconstruction losses and their gradients.

Reduction, everywhere in npae: **sum over features, mean over the batch**. For a batch of
n rows, L = (1/n) sum_t l(x^(t)), where l is the per-example loss the lecture writes. The
gradient functions return dL/d(prediction) for that same L, so they carry the 1/n.

* squared error (real-valued inputs, linear output):   l = 1/2 sum_k (x̂_k - x_k)^2
* cross-entropy (binary inputs, sigmoid output):        l = -sum_k [x_k log x̂_k + (1 - x_k) log(1 - x̂_k)]
* the same cross-entropy from the logits â, x̂ = sigm(â) (stable; see ``cross_entropy_with_logits``)
* L1 (the sparsity penalty of PSD):                     l = sum_k |z_k|

``ReconstructionLoss`` is the last layer of an autoencoder: the output unit x̂ = o(â) and one
of these losses, with a forward (L) and a backward (dL/dâ) like every ``npae.nn`` layer.
"""
from __future__ import annotations

import numpy as np
from scipy.special import xlog1py, xlogy

from ._validation import as_float_array, check_param
from .nn.activations import Sigmoid, sigmoid
from .nn.base import Layer
from .nn.elementwise_kernels import cross_entropy_logits

__all__ = [
    "squared_error", "squared_error_grad",
    "cross_entropy", "cross_entropy_grad",
    "cross_entropy_with_logits", "cross_entropy_with_logits_grad",
    "l1", "l1_grad", "LOSSES", "get_loss", "ReconstructionLoss",
]


def _pair(pred, target, pred_name):
    pred = as_float_array(pred, pred_name, min_ndim=1)
    target = as_float_array(target, "target x", min_ndim=1)
    if pred.shape != target.shape:
        raise ValueError(f"{pred_name} has shape {pred.shape} but the target x has shape "
                         f"{target.shape}; they must match")
    return pred, target


def _check_binary_target(x):
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"cross-entropy needs targets in [0, 1], got values in [{lo:.4g}, "
                         f"{hi:.4g}]; rescale the data (e.g. X / 255) or use the squared error")


def _n(pred):
    return pred.shape[0] if pred.ndim > 1 else 1


def squared_error(x_hat, x):
    """L = (1/n) sum_t 1/2 ||x̂^(t) - x^(t)||^2."""
    x_hat, x = _pair(x_hat, x, "x_hat")
    r = x_hat - x
    return float(0.5 * np.vdot(r, r) / _n(x_hat))


def squared_error_grad(x_hat, x):
    """dL/dx̂ = (x̂ - x) / n."""
    x_hat, x = _pair(x_hat, x, "x_hat")
    return (x_hat - x) / _n(x_hat)


def cross_entropy(x_hat, x):
    """L = -(1/n) sum_t sum_k [x_k log x̂_k + (1 - x_k) log(1 - x̂_k)], x̂ in [0, 1].

    Terms with x_k = 0 (or 1) contribute exactly 0 even where x̂_k = 0 (or 1), by
    xlogy's convention 0 log 0 = 0. A confident wrong prediction (x̂_k = 0 with x_k > 0)
    costs +inf; train from logits to avoid it.
    """
    x_hat, x = _pair(x_hat, x, "x_hat")
    _check_binary_target(x)
    if x_hat.min() < 0 or x_hat.max() > 1:
        raise ValueError("x_hat must lie in [0, 1] for the cross-entropy (a probability); "
                         "did you pass logits? Use cross_entropy_with_logits for those")
    return float(-(xlogy(x, x_hat) + xlog1py(1.0 - x, -x_hat)).sum() / _n(x_hat))


def cross_entropy_grad(x_hat, x):
    """dL/dx̂_k = (1/n) (x̂_k - x_k) / (x̂_k (1 - x̂_k)).

    From d/dx̂ [-x log x̂ - (1-x) log(1-x̂)] = -x/x̂ + (1-x)/(1-x̂). Blows up as x̂ -> 0 or 1:
    chain it with the sigmoid and the denominator cancels (see the logits form).
    """
    x_hat, x = _pair(x_hat, x, "x_hat")
    _check_binary_target(x)
    return (x_hat - x) / (x_hat * (1.0 - x_hat)) / _n(x_hat)


def cross_entropy_with_logits(a_hat, x):
    """The cross-entropy of x̂ = sigm(â), computed from the logits â without overflow.

    With log sigm(â) = -softplus(-â) and log(1 - sigm(â)) = -softplus(â),

        l = sum_k [softplus(â_k) - x_k â_k],   softplus(a) = max(a, 0) + log(1 + exp(-|a|)),

    which is finite for any finite â (no log(0), no exp overflow, even for |â| = 1e4).
    """
    a_hat, x = _pair(a_hat, x, "a_hat (logits)")
    _check_binary_target(x)
    softplus = np.maximum(a_hat, 0.0) + np.log1p(np.exp(-np.abs(a_hat)))
    return float((softplus - x * a_hat).sum() / _n(a_hat))


def cross_entropy_with_logits_grad(a_hat, x):
    """The fused sigmoid + cross-entropy gradient: dL/dâ = (x̂ - x) / n, x̂ = sigm(â).

    Chain rule: dl/dâ = dl/dx̂ * dx̂/dâ = (x̂ - x)/(x̂(1 - x̂)) * x̂(1 - x̂) = x̂ - x.
    The sigmoid's derivative cancels the cross-entropy's denominator, which is why the
    lecture back-propagates from ∇_â l rather than from ∇_x̂ l.
    """
    a_hat, x = _pair(a_hat, x, "a_hat (logits)")
    _check_binary_target(x)
    return (sigmoid(a_hat) - x) / _n(a_hat)


def l1(z):
    """L = (1/n) sum_t ||z^(t)||_1."""
    z = as_float_array(z, "z", min_ndim=1)
    return float(np.abs(z).sum() / _n(z))


def l1_grad(z):
    """A subgradient: dL/dz = sign(z) / n (0 at z = 0, the minimum-norm choice)."""
    z = as_float_array(z, "z", min_ndim=1)
    return np.sign(z) / _n(z)


class _Loss:
    """A named loss: ``value(pred, x)`` and ``grad(pred, x)``; ``from_logits`` says whether
    ``pred`` is the output x̂ or the pre-activation â."""

    def __init__(self, name, value, grad, from_logits):
        self.name, self.value, self.grad, self.from_logits = name, value, grad, from_logits

    def __call__(self, pred, x):
        return self.value(pred, x)

    def __repr__(self):
        return f"<loss {self.name}>"


LOSSES = {
    "squared": _Loss("squared", squared_error, squared_error_grad, False),
    "cross_entropy": _Loss("cross_entropy", cross_entropy, cross_entropy_grad, False),
    "cross_entropy_logits": _Loss("cross_entropy_logits", cross_entropy_with_logits,
                                  cross_entropy_with_logits_grad, True),
}


def get_loss(name):
    check_param("loss", name, options=tuple(LOSSES))
    return LOSSES[name]


class ReconstructionLoss(Layer):
    """The output unit and the loss as one layer: L = l(o(â), x), mean over the batch.

    ``output`` is the layer o (``Sigmoid`` or ``Identity``), ``loss`` a name of ``LOSSES``
    (or its entry). With x̂ = o(â), by the chain rule through o:

        forward(â, x):   L = loss.value(x̂, x)
        backward():      dL/dâ = o.backward(loss.grad(x̂, x))

    The sigmoid with the cross-entropy is the pair where this simplifies: o'(â) = x̂ (1 - x̂)
    cancels the loss's denominator and dL/dâ = (x̂ - x) / n (``cross_entropy_with_logits`` and
    ``cross_entropy_with_logits_grad``). For that pair the layer works from the logits â: no
    log(0), no division by x̂ (1 - x̂), and value and gradient come from one fused pass
    (``npae.nn.elementwise_kernels.cross_entropy_logits``, which has a NumPy twin) made in
    ``forward``, whose gradient ``backward`` returns. Tests hold that pass to the chain rule
    above and to the two functions. ``forward(..., need_grad=False)`` skips the gradient
    (evaluation only; ``backward`` then refuses).
    """

    def __init__(self, output, loss):
        super().__init__()
        if not isinstance(output, Layer):
            raise TypeError(f"output must be an npae.nn layer (Sigmoid() or Identity()), got "
                            f"{type(output).__name__}")
        self.output = output
        self.loss = loss if isinstance(loss, _Loss) else get_loss(loss)
        self.from_logits = self.loss.from_logits or (
            self.loss.name == "cross_entropy" and isinstance(output, Sigmoid))

    def forward(self, a_hat, x, need_grad=True):
        """L for the decoder's pre-activation ``a_hat`` and the target ``x`` (same shape)."""
        if self.from_logits:
            L, g = cross_entropy_logits(a_hat, x, need_grad)
            self.cache = ("logits", g)
            return L
        x_hat = self.output.forward(a_hat)
        self.cache = ("output", x_hat, x) if need_grad else ("output", None, None)
        return self.loss.value(x_hat, x)

    def backward(self, dout=1.0):
        """dL/dâ (times ``dout``, the upstream dC/dL of a larger objective C, default 1)."""
        if self.cache is None or self.cache[1] is None:
            raise RuntimeError("ReconstructionLoss.backward needs forward(a_hat, x) with "
                               "need_grad=True first")
        if self.cache[0] == "logits":
            g = self.cache[1]
        else:
            _, x_hat, x = self.cache
            g = self.output.backward(self.loss.grad(x_hat, x))
        return g if dout == 1.0 else g * dout

    def extra_repr(self):
        return f"{self.output!r}, {self.loss.name!r}"
