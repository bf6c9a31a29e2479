"""The layer contract every piece of npae's networks follows.

A layer owns two dictionaries of the same keys and shapes:

* ``params``: name -> the live parameter array (optimisers update it in place);
* ``grads``:  name -> dL/d(param), filled by ``backward``.

``forward(x)`` computes the output and caches exactly what ``backward`` needs.
``backward(dout)`` takes dL/d(output), returns dL/dx and *adds* each parameter's
gradient into ``grads`` (``+=``, never ``=``). Accumulation is what makes a parameter used
twice -- the tied weight W of an encoder and its decoder W* = W^T -- receive the sum of the
gradients of both uses, which is the lecture's point about tied weights. Call
``zero_grad()`` before each backward pass of a training step.

A layer whose input is the data itself (the first layer of a network) needs no dL/dx:
setting ``needs_input_grad = False`` (PyTorch's name for the same idea) lets ``backward``
skip that product and return None.
"""
from __future__ import annotations

import numpy as np

from .._validation import as_float_array

__all__ = ["Layer", "Sequential"]


class Layer:
    """Base class: a differentiable map with parameters ``params`` and gradients ``grads``."""

    #: Whether ``forward`` checks its input (finite, float). Sequential turns it off for the
    #: inner layers so the check runs once per pass, not once per layer.
    check_input = True

    #: Whether ``backward`` returns dL/dx. A network's first layer sets it to False: nothing
    #: upstream of the data needs a gradient, and dL/dx costs a product as large as forward's.
    needs_input_grad = True

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.cache = None

    # -- the contract -------------------------------------------------------------------
    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    # -- helpers shared by all layers ------------------------------------------------------
    def zero_grad(self):
        """Reset every gradient to zero (keeps the arrays, so references stay valid)."""
        for name, p in self.params.items():
            g = self.grads.get(name)
            if g is None or g.shape != p.shape or g.dtype != p.dtype:
                self.grads[name] = np.zeros_like(p)
            else:
                g.fill(0.0)

    def _init_grads(self):
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}

    def _check_input(self, x, name="x"):
        if not self.check_input:
            return x
        return as_float_array(x, name=f"{type(self).__name__} input {name}", allow_empty=True)

    def _check_dout(self, dout, shape=None):
        """``dout`` as an array; ``shape`` is the forward output's, which it must match
        exactly (broadcasting would silently give a wrong gradient)."""
        if self.cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward; "
                               "run forward(x) first so the layer can cache what it needs")
        # the same checks as the input (NaN, inf, complex, object...): a bad upstream gradient
        # would otherwise come back as NaN parameter gradients without a word
        dout = (as_float_array(dout, f"{type(self).__name__}.backward dout", allow_empty=True)
                if self.check_input else np.asarray(dout))
        if shape is not None and dout.shape != tuple(shape):
            raise ValueError(f"{type(self).__name__}.backward got dout of shape {dout.shape}; "
                             f"it must have the shape of the forward output, {tuple(shape)}")
        return dout

    def parameters(self, prefix=""):
        """Dict name -> live parameter array (names prefixed for nesting)."""
        return {prefix + k: v for k, v in self.params.items()}

    def gradients(self, prefix=""):
        return {prefix + k: v for k, v in self.grads.items()}

    def n_parameters(self):
        return int(sum(p.size for p in self.params.values()))

    def output_shape(self, input_shape):
        """Shape of ``forward``'s output for an input of ``input_shape`` (batch included)."""
        return tuple(input_shape)

    def extra_repr(self):
        return ""

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"


def _as_written(layer):
    """Whether ``layer``'s forward and backward are the ones its fused path reproduces (its
    class's ``_fusable``): a subclass that overrides either runs on its own, unfused."""
    cls = type(layer)
    return getattr(cls, "_fusable", None) == (cls.forward, cls.backward)


class Sequential(Layer):
    """Layers applied in order: forward left to right, backward right to left (chain rule).

    ``backward`` needs no maths of its own: dL/dx of layer i is the ``dout`` of layer i-1.
    Parameter names are prefixed by the layer's position, e.g. ``"0.W"``; a parameter shared
    by two layers (a tied W) appears once, under its owner.

    Fused pairs (``fuse``, True by default): a layer with ``forward_relu`` (Conv2d,
    ConvTranspose2d) followed by a ReLU runs as one kernel call, the kernel taking max(., 0)
    as it stores the output and the ReLU only caching it (``ReLU.absorb``); in backward, a
    ReLU followed by a layer with ``backward_relu`` is folded into that layer's input
    gradient, which the kernel multiplies by 1[x > 0] as it stores it. Each layer's
    cache, output and gradients are the bits the layers give one at a time (a test holds
    the two ways to that). ``Sequential.fuse = False`` (or ``net.fuse = False`` for one net)
    runs every layer on its own.
    """

    #: Whether a conv layer and the ReLU beside it run as one kernel call (see above).
    fuse = True

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential item {i} is {type(layer).__name__}, not a Layer")
        self.layers = list(layers)
        self.cache = ()

    @property
    def params(self):
        return self.parameters()

    @params.setter
    def params(self, value):  # Layer.__init__ assigns {}; a Sequential's params are derived
        pass

    @property
    def grads(self):
        return self.gradients()

    @grads.setter
    def grads(self, value):
        pass

    def forward(self, x):
        x = self._check_input(x)
        layers, i = self.layers, 0
        while i < len(layers):
            layer = layers[i]
            outer, layer.check_input = layer.check_input, False
            try:
                if i + 1 < len(layers) and self._fused_forward(layer, layers[i + 1]):
                    x = layers[i + 1].absorb(layer.forward_relu(x))
                    i += 2
                    continue
                x = layer.forward(x)
            finally:
                layer.check_input = outer
            i += 1
        return x

    def backward(self, dout):
        layers, i = self.layers, len(self.layers) - 1
        while i >= 0:
            layer = layers[i]
            if (i > 0 and layer.needs_input_grad and self._fused_backward(layers[i - 1], layer)
                    and layers[i - 1].cache is not None):
                dout = layer.backward_relu(dout)   # this layer's backward, then the ReLU's
                i -= 2
            else:
                dout = layer.backward(dout)
                i -= 1
        return dout

    def _fused_forward(self, layer, relu):
        """Whether ``layer`` and the ``relu`` after it run forward as one kernel call."""
        return (self.fuse and hasattr(layer, "forward_relu") and hasattr(relu, "absorb")
                and _as_written(layer) and _as_written(relu))

    def _fused_backward(self, relu, layer):
        """Whether ``layer``'s backward takes on the ``relu`` before it (one kernel call)."""
        return (self.fuse and hasattr(relu, "absorb") and hasattr(layer, "backward_relu")
                and _as_written(layer) and _as_written(relu))

    def zero_grad(self):
        for layer in self.layers:
            layer.zero_grad()

    def parameters(self, prefix=""):
        out, seen = {}, set()
        for i, layer in enumerate(self.layers):
            for k, v in layer.parameters(prefix=f"{prefix}{i}.").items():
                if id(v) not in seen:
                    seen.add(id(v))
                    out[k] = v
        return out

    def gradients(self, prefix=""):
        params = self.parameters(prefix)
        out = {}
        for i, layer in enumerate(self.layers):
            for k, v in layer.gradients(prefix=f"{prefix}{i}.").items():
                if k in params:
                    out[k] = v
        return out

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self):
        inner = "\n".join(f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"
