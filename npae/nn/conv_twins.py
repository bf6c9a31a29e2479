"""The convolution and pooling kernels' plain-NumPy twins (``npae.nn.conv_kernels``,
``npae.nn.pool_kernels``), written for reading: the same maths as the Numba kernels,
equations (1)-(3) and (4)-(5) of those modules, on
ordinary NCHW arrays. The tests hold each kernel to its twin (and where a run may switch from
one to the other, to the same bits); with Numba off, the kernels' entry points call these.
"""
from __future__ import annotations

import numpy as np

__all__ = ["conv2d_forward_numpy", "conv2d_backward_input_numpy",
           "conv2d_backward_weight_numpy", "maxpool2d_forward_numpy",
           "maxpool2d_backward_numpy", "bias_gradient_numpy"]


# ------------------------------------------------------------------------------------------
# NumPy twins: the same maths written for reading, on ordinary NCHW arrays. Kernel offset
# (i, j) picks a strided slice of the zero-padded input, and (1)-(5) become sums over offsets.
# ------------------------------------------------------------------------------------------

def _window(i, j, stride, dilation, out_hw):
    """The slice of the padded input that offset (i, j) reads at all Ho x Wo output places."""
    (sh, sw), (dh, dw), (Ho, Wo) = stride, dilation, out_hw
    return (slice(None), slice(None), slice(i * dh, i * dh + sh * (Ho - 1) + 1, sh),
            slice(j * dw, j * dw + sw * (Wo - 1) + 1, sw))


def _pad(a, kernel, stride, padding, dilation, out_hw, fill=0.0):
    """``a`` inside a border of ``fill``, big enough for every window of the output."""
    N, C, H, Wd = a.shape
    Hp = max(H + 2 * padding[0], (kernel[0] - 1) * dilation[0] + stride[0] * (out_hw[0] - 1) + 1)
    Wp = max(Wd + 2 * padding[1], (kernel[1] - 1) * dilation[1] + stride[1] * (out_hw[1] - 1) + 1)
    out = np.full((N, C, Hp, Wp), fill, dtype=a.dtype)
    out[:, :, padding[0]:padding[0] + H, padding[1]:padding[1] + Wd] = a
    return out


def conv2d_forward_numpy(x, W, b, stride, padding, dilation, out_hw):
    """(1): y = sum over offsets (i, j) of W[:, :, i, j] applied to the shifted input."""
    kernel = W.shape[2:]
    x_pad = _pad(x, kernel, stride, padding, dilation, out_hw)
    y = np.zeros((x.shape[0], W.shape[0]) + tuple(out_hw), dtype=x.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            y += np.einsum("oc,nchw->nohw", W[:, :, i, j],
                           x_pad[_window(i, j, stride, dilation, out_hw)])
    if b is not None:
        y += b[None, :, None, None]
    return y


def conv2d_backward_input_numpy(g, W, b, stride, padding, dilation, in_hw):
    """(2): each offset (i, j) sends W[:, :, i, j]^T g back to the positions it read."""
    N, _, Ho, Wo = g.shape
    kernel = W.shape[2:]
    H, Wd = in_hw
    dx_pad = _pad(np.zeros((N, W.shape[1], H, Wd), g.dtype), kernel, stride, padding,
                  dilation, (Ho, Wo))
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            dx_pad[_window(i, j, stride, dilation, (Ho, Wo))] += np.einsum(
                "oc,nohw->nchw", W[:, :, i, j], g)
    # what reached the zero padding is dropped: the padding is a constant, not an input
    dx = dx_pad[:, :, padding[0]:padding[0] + H, padding[1]:padding[1] + Wd].copy()
    if b is not None:
        dx += b[None, :, None, None]
    return dx


def conv2d_backward_weight_numpy(x, g, kernel, stride, padding, dilation):
    """(3): dW[:, :, i, j] = sum over n, p, q of g times the input slice offset (i, j) read."""
    out_hw = g.shape[2:]
    x_pad = _pad(x, kernel, stride, padding, dilation, out_hw)
    # where offset (i, j) reads the padding there is no term at all (the kernel skips it),
    # not 0 times g: with a NaN or inf in g, 0 * g would be NaN
    inside = _pad(np.ones((1, 1) + x.shape[2:], bool), kernel, stride, padding, dilation,
                  out_hw, fill=False)
    dW = np.zeros((g.shape[1], x.shape[1]) + tuple(kernel), dtype=x.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            window = _window(i, j, stride, dilation, out_hw)
            dW[:, :, i, j] = np.einsum("nohw,nchw->oc", np.where(inside[window], g, 0),
                                       x_pad[window])
    return dW


def maxpool2d_forward_numpy(x, kernel, stride, padding, out_hw):
    """(4): stack the kH*kW shifted views in row-major order; the first position holding
    the window's maximum wins (a NaN is the maximum). Padded positions never win, not even
    against an input of -inf: they are marked invalid, not compared."""
    Wd = x.shape[3]
    x_pad = _pad(x, kernel, stride, padding, (1, 1), out_hw, fill=-np.inf)
    inside = _pad(np.ones((1, 1) + x.shape[2:], bool), kernel, stride, padding, (1, 1), out_hw,
                  fill=False)
    views = np.stack([x_pad[_window(i, j, stride, (1, 1), out_hw)]
                      for i in range(kernel[0]) for j in range(kernel[1])], axis=-1)
    valid = np.stack([inside[_window(i, j, stride, (1, 1), out_hw)]
                      for i in range(kernel[0]) for j in range(kernel[1])], axis=-1)
    y = views.max(axis=-1)              # padding is -inf: it never raises a maximum
    winner = valid & ((views == y[..., None]) | (np.isnan(views) & np.isnan(y)[..., None]))
    best = np.argmax(winner, axis=-1)   # the first True
    i, j = np.divmod(best, kernel[1])
    h = np.arange(out_hw[0])[:, None] * stride[0] + i - padding[0]
    w = np.arange(out_hw[1])[None, :] * stride[1] + j - padding[1]
    return y, (h * Wd + w).astype(np.int32)   # the kernel's index type


def maxpool2d_backward_numpy(g, arg, in_hw):
    """(5): np.add.at adds every g[n,c,p,q] into dx at its arg-max (repeats accumulate)."""
    N, C, Ho, Wo = g.shape
    dx = np.zeros((N, C, in_hw[0] * in_hw[1]), dtype=g.dtype)
    n, c = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    np.add.at(dx, (n[..., None], c[..., None], arg.reshape(N, C, Ho * Wo)),
              g.reshape(N, C, Ho * Wo))
    return dx.reshape(N, C, in_hw[0], in_hw[1])


def bias_gradient_numpy(g_):
    """dL/db for a batch-last g_ (O, Ho, Wo, N): sum each lane over the positions, then the
    lanes (a sum in the order the kernel keeps; any order is the same sum in exact arithmetic)."""
    O, N = g_.shape[0], g_.shape[-1]
    return g_.reshape(O, g_.shape[1] * g_.shape[2], N).sum(axis=1).sum(axis=1)
