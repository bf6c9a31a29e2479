"""Element-wise non-linearities g(a): forward caches its output (or mask), backward is g'(a)."""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from .base import Layer

__all__ = ["sigmoid", "Sigmoid", "ReLU", "Tanh", "Identity"]


def sigmoid(a):
    """sigm(a) = 1 / (1 + exp(-a)), computed without overflow.

    The textbook formula overflows exp(-a) for a < -709 (float64) and warns; scipy's
    ``expit`` evaluates exp(-|a|) only, so it stays finite and silent for |a| up to 1e4 and
    beyond, and returns exactly 0.0 or 1.0 in the saturated tails.
    """
    return expit(a)


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
        return dout * h * (1.0 - h)


class Tanh(Layer):
    """y = tanh(a); cache: y."""

    def forward(self, a):
        a = self._check_input(a, "a")
        y = np.tanh(a)
        self.cache = y
        return y

    def backward(self, dout):
        """dL/da = dout * (1 - y^2)."""
        y = self.cache
        dout = self._check_dout(dout, None if y is None else y.shape)
        return dout * (1.0 - y * y)


class ReLU(Layer):
    """y = max(a, 0); cache: y (y > 0 exactly where a > 0, so y alone gives the derivative).

    At a = 0 the derivative is taken as 0, as in PyTorch.
    """

    def forward(self, a):
        a = self._check_input(a, "a")
        y = np.maximum(a, 0.0, dtype=a.dtype)  # keeps a's memory order (the conv layout)
        self.cache = y
        return y

    def backward(self, dout):
        """dL/da = dout * 1[a > 0] = dout * 1[y > 0]."""
        y = self.cache
        dout = self._check_dout(dout, None if y is None else y.shape)
        return dout * (y > 0)


class Identity(Layer):
    """y = a (the linear output unit of the squared-error autoencoder)."""

    def forward(self, a):
        a = self._check_input(a, "a")
        self.cache = a.shape
        return a

    def backward(self, dout):
        """dL/da = dout."""
        return self._check_dout(dout, self.cache)
