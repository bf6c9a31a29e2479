"""Element-wise non-linearities g(a): forward caches its output (or mask), backward is g'(a)."""
from __future__ import annotations

import numpy as np

from .base import Layer
from .elementwise_kernels import relu, relu_backward, sigmoid_backward, tanh, tanh_backward
from .elementwise_kernels import sigmoid as _sigmoid

__all__ = ["sigmoid", "Sigmoid", "ReLU", "Tanh", "Identity"]


def sigmoid(a):
    """sigm(a) = 1 / (1 + exp(-a)), computed without overflow and to full relative precision.

    The textbook formula overflows exp(-a) for a < -709 (float64) and warns. Multiplying
    numerator and denominator by exp(min(a, 0)) gives

        sigm(a) = exp(min(a, 0)) / (1 + exp(-|a|)),

    whose exponentials never see a positive argument: finite and silent for |a| up to 1e4
    and beyond, exactly 1.0 only where the true value rounds to it, and within two ulps
    everywhere (a tiny sigm(-40) = 4.2e-18 keeps its digits, unlike 0.5 tanh(a/2) + 0.5).
    Values below the smallest normal number (sigm(a) for a < -87.3 in float32, a < -708 in
    float64) are returned as 0.0: subnormal numbers send every later product down a slow
    path (``npae.nn.elementwise_kernels`` says why). One Numba pass after NumPy's exp, with a NumPy
    twin (``npae.nn.elementwise_kernels.sigmoid_numpy``).
    """
    a = np.asarray(a)
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    if a.ndim == 0:
        return sigmoid(a[None])[0]
    return _sigmoid(a)  # one Numba pass after NumPy's exp (npae.nn.elementwise_kernels, with twin)


class Sigmoid(Layer):
    """h = sigm(a); cache: h."""

    def forward(self, a):
        a = self._check_input(a, "a")
        h = sigmoid(a)
        self.cache = h
        return h

    def backward(self, dout):
        """dL/da = dL/dh * sigm'(a) = dout * h (1 - h)."""
        h = self.cache
        dout = self._check_dout(dout, None if h is None else h.shape)
        return sigmoid_backward(dout, h)


class Tanh(Layer):
    """y = tanh(a); cache: y."""

    def forward(self, a):
        a = self._check_input(a, "a")
        y = tanh(a)  # float32: one Numba pass, within 1 ulp as NumPy's (elementwise_kernels)
        self.cache = y
        return y

    def backward(self, dout):
        """dL/da = dout * (1 - y^2)."""
        y = self.cache
        dout = self._check_dout(dout, None if y is None else y.shape)
        return tanh_backward(dout, y)  # one Numba pass, twin: tanh_backward_numpy


class ReLU(Layer):
    """y = max(a, 0); cache: y (y > 0 exactly where a > 0, so y alone gives the derivative).

    At a = 0 the derivative is taken as 0, as in PyTorch.
    """

    def forward(self, a):
        a = self._check_input(a, "a")
        y = relu(a)  # one Numba pass, twin relu_numpy; keeps a's memory order (the conv layout)
        self.cache = y
        return y

    def absorb(self, y):
        """``forward`` for an input the layer before has already passed through max(., 0)
        (its ``forward_relu``, which ``Sequential`` calls): cache y and return it, as
        ``forward`` would have on that layer's plain output."""
        self.cache = y
        return y

    def backward(self, dout):
        """dL/da = dout * 1[a > 0] = dout * 1[y > 0]."""
        y = self.cache
        dout = self._check_dout(dout, None if y is None else y.shape)
        return relu_backward(dout, y)  # one Numba pass, twin: relu_backward_numpy


#: the forward and backward that ``absorb`` and the conv kernels' fused ReLU reproduce
ReLU._fusable = (ReLU.forward, ReLU.backward)


class Identity(Layer):
    """y = a (the linear output unit of the squared-error autoencoder)."""

    def forward(self, a):
        a = self._check_input(a, "a")
        self.cache = a.shape
        return a

    def backward(self, dout):
        """dL/da = dout."""
        return self._check_dout(dout, self.cache)
