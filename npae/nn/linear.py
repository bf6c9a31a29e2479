"""Affine layers: the encoder's a(x) = b + Wx and the decoder's â = c + W* h.

Rows are samples, so for a batch X of shape (n, d) the lecture's a(x) = b + Wx is written
``A = X @ W.T + b``; W has the lecture's shape (k, d) = (out_features, in_features), the same
layout as PyTorch's ``nn.Linear.weight``.
"""
from __future__ import annotations

import numpy as np

from .._validation import check_param
from .base import Layer

__all__ = ["Linear", "TiedLinear", "glorot_uniform"]


def glorot_uniform(fan_out, fan_in, rng=None, dtype=np.float64, gain=1.0):
    """W ~ U(-r, r), r = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010).

    Keeps the variance of activations and gradients about equal across layers; the Theano
    tutorials use gain = 4 for sigmoid units because sigm'(0) = 1/4.
    """
    rng = np.random.default_rng(rng)
    r = gain * np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-r, r, size=(fan_out, fan_in)).astype(dtype)


class Linear(Layer):
    """a = b + W x for every row x of the input.

    Parameters: ``W`` (out_features, in_features), ``b`` (out_features,).
    forward:  x (n, in_features) -> a (n, out_features); cache: x.
    """

    def __init__(self, in_features, out_features, bias=True, rng=None, dtype=np.float64,
                 gain=1.0):
        super().__init__()
        check_param("in_features", in_features, kind="int", low=1)
        check_param("out_features", out_features, kind="int", low=1)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.params["W"] = glorot_uniform(out_features, in_features, rng, dtype, gain)
        if bias:
            self.params["b"] = np.zeros(out_features, dtype=dtype)
        self._init_grads()

    @property
    def W(self):
        return self.params["W"]

    def forward(self, x):
        x = self._check_input(x)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}, {self.out_features}) expects input of "
                             f"shape (n, {self.in_features}), got {x.shape}")
        self.cache = x
        a = x @ self.params["W"].T
        if "b" in self.params:
            a += self.params["b"]
        return a

    def backward(self, dout):
        """With a = b + W x and upstream g = dL/da (n, out):

            dL/dW = sum_n g_n x_n^T = g^T x          (out, in)
            dL/db = sum_n g_n                          (out,)
            dL/dx = g W                                (n, in)

        Parameter gradients are accumulated (``+=``). Returns None instead of dL/dx when
        ``needs_input_grad`` is False (the layer reads the data itself).
        """
        x = self.cache
        dout = self._check_dout(dout, None if x is None else (x.shape[0], self.out_features))
        self.grads["W"] += dout.T @ x
        if "b" in self.params:
            self.grads["b"] += dout.sum(axis=0)
        return dout @ self.params["W"] if self.needs_input_grad else None

    def output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.out_features,)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={'b' in self.params}"


class TiedLinear(Layer):
    """The tied decoder â = c + W* h with W* = W^T, W being the *same array* as ``encoder.W``.

    The decoder owns only its bias ``c``; W belongs to the encoder. Its backward therefore
    adds the decoder's gradient term into the encoder's gradient array, and after a full
    backward pass

        dL/dW = (encoder term) + (decoder term)

    which is the lecture's "sum of two gradients" for tied weights.
    forward: h (n, k) -> â (n, d); cache: h.
    """

    def __init__(self, encoder: Linear, bias=True):
        super().__init__()
        if not isinstance(encoder, Linear):
            raise TypeError(f"TiedLinear needs the encoder's Linear layer, got "
                            f"{type(encoder).__name__}")
        self.encoder = encoder
        if bias:
            self.params["c"] = np.zeros(encoder.in_features, dtype=encoder.W.dtype)
        self._init_grads()

    @property
    def W_star(self):
        """W* = W^T, a view of the encoder's array (no copy: the weights really are shared)."""
        return self.encoder.params["W"].T

    def forward(self, h):
        h = self._check_input(h, "h")
        k = self.encoder.out_features
        if h.ndim != 2 or h.shape[1] != k:
            raise ValueError(f"TiedLinear expects codes of shape (n, {k}), got {h.shape}")
        self.cache = h
        a_hat = h @ self.encoder.params["W"]  # rows: (W* h)^T = h^T W
        if "c" in self.params:
            a_hat += self.params["c"]
        return a_hat

    def backward(self, dout):
        """With â = c + W^T h and upstream g = dL/dâ (n, d):

            dL/dW* = g^T h  (d, k),  so the decoder's term in dL/dW is (g^T h)^T = h^T g
            dL/dc  = sum_n g_n
            dL/dh  = g W* ^T = g W^T                        (n, k)

        The decoder's term is *added* to the encoder's gradient: micrograd's ``+=``.
        """
        h = self.cache
        dout = self._check_dout(dout, None if h is None else (h.shape[0], self.encoder.in_features))
        W = self.encoder.params["W"]
        self.encoder.grads["W"] += h.T @ dout  # the second use of W: accumulate, never assign
        if "c" in self.params:
            self.grads["c"] += dout.sum(axis=0)
        return dout @ W.T

    def output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.encoder.in_features,)

    def extra_repr(self):
        return f"{self.encoder.out_features}, {self.encoder.in_features}, tied"
