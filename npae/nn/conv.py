"""Convolutional layers of the lecture's autoencoder: Conv2d, ConvTranspose2d, MaxPool2d.

Shapes, argument meanings, weight layouts and output-size rules are PyTorch's, so a student
can hold a layer next to ``torch.nn`` and compare shapes or load weights (NCHW tensors):

    Conv2d           W (out, in, kH, kW)    H_out = floor((H + 2p - d (kH - 1) - 1) / s) + 1
    ConvTranspose2d  W (in, out, kH, kW)    H_out = (H - 1) s - 2p + d (kH - 1) + output_padding + 1
    MaxPool2d        no parameters          H_out = floor((H + 2p - kH) / s) + 1

(kH, kW: the ``kernel_size``; s the stride, p the padding, d the dilation; widths alike.)

The maths (equations (1)-(5)) and the fast loops live in ``npae.nn.conv_kernels``; this module
holds the shape logic, the checks and the layer contract of ``npae.nn.base`` (``forward``
caches what ``backward`` needs; ``backward`` returns dL/dx and *adds* into ``grads``).

The transposed convolution is the adjoint of the convolution: ConvTranspose2d's forward is
Conv2d's input gradient (2), and its input gradient is Conv2d's forward (1), with the same
weight array read as W^T. Nothing new is needed -- it is the tied-weight W* = W^T idea again.

Outputs are NCHW-shaped arrays whose memory is ordered batch-last (see ``npae.nn.conv_kernels``);
they index, broadcast and compute like any array. ``np.ascontiguousarray`` gives a
C-ordered copy if some other code needs one.

Float32 and float64: a layer computes in the dtype of its input (float32 in, float32 out);
its parameters are created in the ``dtype`` given at construction (float64 by default) and
``set_dtype(layer_or_model, np.float32)`` converts them, e.g. before training in float32.
"""
from __future__ import annotations

import numbers

import numpy as np

from .._validation import check_param
from . import conv_kernels as kernels
from . import pool_kernels
from .base import Layer

__all__ = ["Conv2d", "ConvTranspose2d", "MaxPool2d", "set_dtype"]


def _pair(name, value, low):
    """An int or a pair of ints -> (height, width), each >= ``low``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be an int or a pair (height, width) of ints, "
                        f"got {value!r}")
    for axis, v in zip(("height", "width"), value):
        check_param(f"{name} ({axis})", v, kind="int", low=low)
    return int(value[0]), int(value[1])


def _uniform_init(shape, fan_in, rng, dtype):
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default, kaiming_uniform(a=sqrt(5))."""
    bound = 1.0 / np.sqrt(fan_in)
    return np.random.default_rng(rng).uniform(-bound, bound, size=shape).astype(dtype)


def set_dtype(layer, dtype):
    """Convert every parameter of ``layer`` (a Layer, Sequential or model exposing ``layers``)
    to ``dtype`` in place, resetting the gradients. Build optimisers *after* this call: they
    hold references to the parameter arrays, which are replaced."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype={dtype} is not supported; use np.float32 or np.float64")
    children = getattr(layer, "layers", None)
    if children is not None:
        for child in children:
            set_dtype(child, dtype)
        return layer
    for name, p in list(layer.params.items()):
        layer.params[name] = p.astype(dtype)
    layer._init_grads()
    return layer


class _Spatial(Layer):
    """Shared checks of the NCHW layers: rank, channels and an output of at least 1 x 1."""

    in_channels = None

    def _check_nchw(self, shape):
        shape = tuple(shape)
        if len(shape) != 4:
            raise ValueError(f"{self!r} expects a 4-D input (N, C, H, W), got shape {shape}; "
                             "a single image needs a batch axis: x[None] or x.reshape(1, C, H, W)")
        if self.in_channels is not None and shape[1] != self.in_channels:
            raise ValueError(f"{self!r} expects {self.in_channels} input channel(s), got "
                             f"shape {shape} with {shape[1]}; the channel axis is axis 1 (NCHW)")
        return shape

    def _check_out(self, shape, out_hw, why):
        for axis, n_in, n_out in zip(("height", "width"), shape[2:], out_hw):
            if n_out < 1:
                raise ValueError(f"{self!r}: an input of {axis} {n_in} gives an output {axis} "
                                 f"of {n_out} < 1 ({why(axis)}); use a larger input, more "
                                 "padding or a smaller kernel/stride/dilation")
        return out_hw

    def _prepare(self, x):
        x = self._check_input(x)
        self._check_nchw(x.shape)
        # one copy into the kernels' batch-last order now, so backward can reuse it for free
        return kernels.batch_last(x).transpose(3, 0, 1, 2)

    def _upstream(self, dout):
        """(x, g, g_): the cached input, dout checked against the forward output's shape (as
        an NCHW view g) and in the kernels' batch-last order g_ (out, H_out, W_out, N)."""
        x = self.cache
        g = self._check_dout(dout, None if x is None else self.output_shape(x.shape))
        g_ = kernels.batch_last(g)
        return x, g_.transpose(3, 0, 1, 2), g_

    def _accumulate_bias_grad(self, g_):
        """dL/db[o] += sum_{n,p,q} g[n,o,p,q] (``kernels.bias_gradient`` on the batch-last g_)."""
        if "b" in self.params:
            self.grads["b"] += kernels.bias_gradient(g_)


class _ConvNd(_Spatial):
    """What Conv2d and ConvTranspose2d share (PyTorch's ``_ConvNd``): the checked arguments,
    the weight and bias, their initialisation and the repr. ``transposed`` picks the weight
    layout: (out, in, kH, kW) for a convolution, (in, out, kH, kW) for its adjoint, whose
    fan_in is then out_channels kH kW (PyTorch computes fan_in from W.shape[1] in both)."""

    transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 bias, rng, dtype, output_padding=0):
        super().__init__()
        check_param("in_channels", in_channels, kind="int", low=1)
        check_param("out_channels", out_channels, kind="int", low=1)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair("kernel_size", kernel_size, 1)
        self.stride = _pair("stride", stride, 1)
        self.padding = _pair("padding", padding, 0)
        self.output_padding = _pair("output_padding", output_padding, 0)
        self.dilation = _pair("dilation", dilation, 1)
        channels = (self.in_channels, self.out_channels)
        if not self.transposed:
            channels = channels[::-1]
        fan_in = channels[1] * self.kernel_size[0] * self.kernel_size[1]
        rng = np.random.default_rng(rng)
        self.params["W"] = _uniform_init(channels + self.kernel_size, fan_in, rng, dtype)
        if bias:
            self.params["b"] = _uniform_init((self.out_channels,), fan_in, rng, dtype)
        self._init_grads()

    def output_shape(self, input_shape):
        shape = self._check_nchw(input_shape)
        return (shape[0], self.out_channels) + self._out_hw(shape)

    def forward(self, x):
        """y = b + (W applied to x) by the layer's ``_forward_kernel``; cache: x."""
        return self._forward(x, relu=False)

    def forward_relu(self, x):
        """max(forward(x), 0): this layer and the ReLU after it, the maximum taken by the
        kernel as it stores y (one pass over y fewer; the same bits as ``ReLU.forward`` on
        ``forward(x)``). ``Sequential`` calls it for a conv layer followed by a ReLU, whose
        ``absorb`` then caches the result; cache: x, as ``forward``."""
        return self._forward(x, relu=True)

    def _forward(self, x, relu):
        x = self._prepare(x)
        out_hw = self._out_hw(x.shape)
        self.cache = x
        return self._forward_kernel(x, self.params["W"], self.params.get("b"), self.stride,
                                    self.padding, self.dilation, out_hw, relu=relu)

    def backward_relu(self, dout):
        """``backward(dout)`` and then the backward of the ReLU before this layer, whose
        output is this layer's input x: dL/dx 1[x > 0], the product taken by the input
        gradient's kernel as it stores dL/dx (the same bits as ``ReLU.backward``).
        ``Sequential`` calls it in place of the two backward passes."""
        return self._backward(dout, relu_input=True)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}"
                + (f", output_padding={self.output_padding}"
                   if self.output_padding != (0, 0) else "")
                + (f", dilation={self.dilation}" if self.dilation != (1, 1) else "")
                + ("" if "b" in self.params else ", bias=False"))


class Conv2d(_ConvNd):
    """y = b + W * x (cross-correlation, equation (1) of ``npae.nn.conv_kernels``).

    Parameters: ``W`` (out_channels, in_channels, kH, kW) and ``b`` (out_channels,), both
    drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in_channels kH kW, as PyTorch.
    forward: x (N, in_channels, H, W) -> y (N, out_channels, H_out, W_out); cache: x.
    """

    _forward_kernel = staticmethod(kernels.conv2d_forward)        # (1)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 bias=True, rng=None, dtype=np.float64):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         bias, rng, dtype)

    def _out_hw(self, shape):
        out = tuple(kernels.conv_output_size(n, ks, s, p, d) for n, ks, s, p, d in
                    zip(shape[2:], self.kernel_size, self.stride, self.padding, self.dilation))
        a = {"height": 0, "width": 1}
        return self._check_out(shape, out, lambda ax: (
            f"the dilated kernel spans {self.dilation[a[ax]] * (self.kernel_size[a[ax]] - 1) + 1}"
            f" but the padded input only {shape[2 + a[ax]] + 2 * self.padding[a[ax]]}"))

    def backward(self, dout):
        """With y = b + W * x and upstream g = dL/dy (N, out, H_out, W_out):

            dL/dW[o,c,i,j] = sum_{n,p,q} g[n,o,p,q] x[n, c, p sH + i dH - pH, q sW + j dW - pW]
            dL/db[o]       = sum_{n,p,q} g[n,o,p,q]
            dL/dx          = W^T g: each x entry collects g[n,o,p,q] W[o,c,i,j] from every
                             (o, i, j, p, q) whose window read it  (= ConvTranspose2d's forward)

        Parameter gradients are accumulated (``+=``). Returns None instead of dL/dx when
        ``needs_input_grad`` is False (the layer reads the data itself).
        """
        return self._backward(dout, relu_input=False)

    def _backward(self, dout, relu_input):
        """``backward``; with ``relu_input``, dL/dx times 1[x > 0] (``backward_relu``)."""
        x, g, g_ = self._upstream(dout)
        self.grads["W"] += kernels.conv2d_backward_weight(x, g, self.kernel_size, self.stride,
                                                          self.padding, self.dilation)
        self._accumulate_bias_grad(g_)
        if not self.needs_input_grad:
            return None
        return kernels.conv2d_backward_input(g, self.params["W"], None, self.stride,
                                             self.padding, self.dilation, x.shape[2:],
                                             mask=x if relu_input else None)


class ConvTranspose2d(_ConvNd):
    """y = b + W^T x: the adjoint of Conv2d (equation (2) of ``npae.nn.conv_kernels``) plus a bias.

    Parameters: ``W`` (in_channels, out_channels, kH, kW) -- PyTorch's layout, which is the
    layout of the Conv2d (out_channels -> in_channels) whose adjoint this is -- and ``b``
    (out_channels,), both U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = out_channels kH kW
    (PyTorch computes fan_in from W.shape[1]).

    One kernel serves both layers: forward runs ``kernels.conv2d_backward_input`` (Conv2d's
    input gradient) and backward runs ``kernels.conv2d_forward`` (Conv2d's forward) with the
    same W. ``output_padding`` adds rows/columns at the bottom/right, choosing among the
    output sizes a strided Conv2d maps onto the same input size; PyTorch requires it to be
    smaller than the stride or the dilation, and so does npae.
    forward: x (N, in_channels, H, W) -> y (N, out_channels, H_out, W_out); cache: x.
    """

    transposed = True
    # the adjoint: forward is Conv2d's input gradient (2), one kernel for both layers
    _forward_kernel = staticmethod(kernels.conv2d_backward_input)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, dilation=1, bias=True, rng=None, dtype=np.float64):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         bias, rng, dtype, output_padding)
        for axis, op, s, d in zip(("height", "width"), self.output_padding, self.stride,
                                  self.dilation):
            if op >= s and op >= d:
                raise ValueError(f"output_padding ({axis}) = {op} must be smaller than the "
                                 f"stride ({s}) or the dilation ({d}), as in PyTorch: a larger "
                                 "value adds rows no input position ever reaches")

    def _out_hw(self, shape):
        out = tuple(kernels.conv_transpose_output_size(n, ks, s, p, op, d) for n, ks, s, p, op, d
                    in zip(shape[2:], self.kernel_size, self.stride, self.padding,
                           self.output_padding, self.dilation))
        return self._check_out(shape, out, lambda ax: (
            "the padding 2p removes more than (H - 1) s + d (kH - 1) + output_padding + 1"))

    def backward(self, dout):
        """With y = b + W^T x (W^T: the adjoint of the convolution by W) and g = dL/dy:

            dL/dx          = W g, the *convolution* of g by W  (= Conv2d's forward)
            dL/dW[a,o,i,j] = sum_{n,p,q} x[n,a,p,q] g[n, o, p sH + i dH - pH, q sW + j dW - pW]
                             (Conv2d's weight gradient with the roles of x and g exchanged)
            dL/db[o]       = sum_{n,h,w} g[n,o,h,w]

        Parameter gradients are accumulated (``+=``). Returns None instead of dL/dx when
        ``needs_input_grad`` is False.
        """
        return self._backward(dout, relu_input=False)

    def _backward(self, dout, relu_input):
        """``backward``; with ``relu_input``, dL/dx times 1[x > 0] (``backward_relu``)."""
        x, g, g_ = self._upstream(dout)
        self.grads["W"] += kernels.conv2d_backward_weight(g, x, self.kernel_size, self.stride,
                                                          self.padding, self.dilation)
        self._accumulate_bias_grad(g_)
        if not self.needs_input_grad:
            return None
        return kernels.conv2d_forward(g, self.params["W"], None, self.stride, self.padding,
                                      self.dilation, x.shape[2:], mask=x if relu_input else None)


#: the forward and backward that ``forward_relu`` and ``backward_relu`` extend
Conv2d._fusable = (Conv2d.forward, Conv2d.backward)
ConvTranspose2d._fusable = (ConvTranspose2d.forward, ConvTranspose2d.backward)


class MaxPool2d(_Spatial):
    """y = the maximum of each kH x kW window (equation (4) of ``npae.nn.conv_kernels``).

    ``stride`` defaults to ``kernel_size`` (PyTorch's default); ``padding`` counts as -inf,
    never as 0, and must be at most half the kernel (PyTorch's rule), so every window holds
    at least one input entry. Ties go to the first position in row-major window order.
    forward: x (N, C, H, W) -> y (N, C, H_out, W_out); cache: the arg-max of every window.
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _pair("kernel_size", kernel_size, 1)
        self.stride = self.kernel_size if stride is None else _pair("stride", stride, 1)
        self.padding = _pair("padding", padding, 0)
        for axis, p, ks in zip(("height", "width"), self.padding, self.kernel_size):
            if 2 * p > ks:
                raise ValueError(f"padding ({axis}) = {p} must be at most half the kernel "
                                 f"size ({ks}), as in PyTorch; otherwise a window could lie "
                                 "entirely in the padding")

    def _out_hw(self, shape):
        out = tuple(kernels.conv_output_size(n, ks, s, p) for n, ks, s, p in
                    zip(shape[2:], self.kernel_size, self.stride, self.padding))
        a = {"height": 0, "width": 1}
        return self._check_out(shape, out, lambda ax: (
            f"the window spans {self.kernel_size[a[ax]]} but the padded input only "
            f"{shape[2 + a[ax]] + 2 * self.padding[a[ax]]}"))

    def output_shape(self, input_shape):
        shape = self._check_nchw(input_shape)
        return shape[:2] + self._out_hw(shape)

    def forward(self, x):
        x = self._prepare(x)
        y, arg = pool_kernels.maxpool2d_forward(x, self.kernel_size, self.stride, self.padding,
                                           self._out_hw(x.shape))
        self.cache = (arg, x)   # x only for backward_relu's mask (a reference, no copy)
        return y

    def backward(self, dout):
        """With y[n,c,p,q] = x[n,c,a[n,c,p,q]] (a: the arg-max) and g = dL/dy:

            dL/dx[n,c,h,w] = sum_{p,q : a[n,c,p,q] = (h,w)} g[n,c,p,q]

        i.e. each upstream entry goes to the input that won its window (sums where
        overlapping windows share a winner); every other input gets 0.
        """
        return self._backward(dout, relu_input=False)

    def backward_relu(self, dout):
        """``backward(dout)`` and then the backward of the ReLU before this layer (its output
        is this layer's input x): dL/dx 1[x > 0], taken as dL/dx is stored where the windows
        do not overlap (the same bits as ``ReLU.backward``). ``Sequential`` calls it in place
        of the two backward passes."""
        return self._backward(dout, relu_input=True)

    def _backward(self, dout, relu_input):
        g = self._check_dout(dout, None if self.cache is None else self.cache[0].shape)
        arg, x = self.cache
        return pool_kernels.maxpool2d_backward(g, arg, x.shape[2:], self.kernel_size, self.stride,
                                          self.padding, mask=x if relu_input else None)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}")


MaxPool2d._fusable = (MaxPool2d.forward, MaxPool2d.backward)
