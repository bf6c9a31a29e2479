"""Hot loops of the convolutional layers: Numba kernels, each with a plain-NumPy twin.

Notation (NCHW, as in PyTorch). A convolution (really a cross-correlation, as in every deep
learning library) with weight W (O, C, kH, kW), stride (sH, sW), zero padding (pH, pW) and
dilation (dH, dW) maps x (N, C, H, W) to y (N, O, Ho, Wo):

    (1)  y[n,o,p,q]   = b[o] + sum_{c,i,j} W[o,c,i,j] x[n, c, p sH + i dH - pH, q sW + j dW - pW]

(entries of x outside [0, H) x [0, W) are the zero padding). Its gradients, for an upstream
g = dL/dy of y's shape, are

    (2)  dL/dx[n,c,h,w] = sum_{o,i,j,p,q : p sH + i dH - pH = h, q sW + j dW - pW = w}
                                 g[n,o,p,q] W[o,c,i,j]                  (the adjoint of (1))
    (3)  dL/dW[o,c,i,j] = sum_{n,p,q} g[n,o,p,q] x[n, c, p sH + i dH - pH, q sW + j dW - pW]
         dL/db[o]       = sum_{n,p,q} g[n,o,p,q]

Map (2) is linear in g: it *is* the transposed convolution. ``ConvTranspose2d`` runs
``conv2d_backward_input`` as its forward pass and ``conv2d_forward`` as its input gradient,
so one pair of kernels serves both layers -- the tied-weight idea W* = W^T once more.

Max pooling (padding counts as -inf, so a padded position never wins):

    (4)  y[n,c,p,q] = max_{i,j} x[n, c, p sH + i - pH, q sW + j - pW],   a[n,c,p,q] = its arg-max
    (5)  dL/dx[n,c,h,w] = sum_{p,q : a[n,c,p,q] = (h,w)} g[n,c,p,q]

Ties in (4) go to the first position in row-major window order (smallest i, then smallest j):
the comparison is strict (">"), so a later equal value never replaces the current maximum.
A NaN propagates: the first NaN of a window is its maximum (and arg-max). ``np.argmax``
follows the same rules, so the twin agrees.

Algorithm and memory layout (measured, not guessed)
---------------------------------------------------
The lecture's net has 1 to 16 channels. Loops whose innermost axis is a channel run 1-16
iterations, too short for SIMD; im2col hands BLAS thin matrices (K = 9 in the first layer)
and its copies cost more than the products. The kernels therefore keep the *batch* as the
innermost, contiguous axis: the arrays have NCHW shape (indexing is PyTorch's), but their
memory is ordered (C, H, W, N) ("batch-last", like PyTorch's channels_last memory format is
a layout, not a shape). Then every term of (1)-(3) is an axpy y[o,p,q,:] += W[o,c,i,j] *
x[c,h,w,:] of length N = 128 that LLVM turns into packed FMAs. Outputs are returned as
NCHW-shaped views of batch-last buffers; element-wise layers (ReLU, Tanh) keep that order,
so the next kernel reads them without a copy. An input in ordinary C order is copied into
batch-last order once.

Threads split output rows (prange over channel x row); each output element is written by
one thread in a fixed order, and each entry of (3) is one thread's dot product (vectorised
by LLVM under the 'reassoc' licence, in an order fixed at compile time), so results are
bit-identical run to run and independent of the number of threads.

The valid kernel offsets of each output row/column are tabulated once per call
(``_forward_taps``, ``_adjoint_taps``, ``_offset_taps``), so no division or bounds test sits
in the inner loops.

Measured on the project's 2-core machine (shared with other jobs, so +-30 %), float32, batch
128, one thread, best of 15, milliseconds for forward / input gradient / weight gradient of
each layer of the lecture's net:

  layer (as a convolution)           npae (batch-last)      direct NCHW loops     im2col + BLAS
  Conv2d(1, 16, 3, s3, p1)           0.25 / 0.21 / 0.25     0.75 / 7.69 / 0.62    0.41 / 0.47 / 0.48
  Conv2d(16, 8, 3, s2, p1)           0.07 / 0.06 / 0.08     0.31 / 0.42 / 0.25    0.33 / 0.32 / 0.37
  ConvTranspose2d(8, 16, 3, s2)      0.06 / 0.05 / 0.06     0.22 / 0.31 / 0.23    0.16 / 0.17 / 0.15
  ConvTranspose2d(16, 8, 5, s3, p1)  0.78 / 0.63 / 0.91     2.16 / 9.98 / 2.24    1.11 / 1.06 / 1.13
  ConvTranspose2d(8, 1, 2, s2, p1)   0.11 / 0.08 / 0.10     0.85 / 1.81 / 0.63    0.55 / 0.57 / 0.54

("direct NCHW": the same loops on C-ordered NCHW arrays with the channel axis innermost;
"im2col": Numba im2col/col2im and OpenBLAS sgemm. For a ConvTranspose2d the columns are those
of the Conv2d it is the adjoint of, so its forward is the middle figure.) The batch-last
direct loops are the fastest for every layer, by 1.4-10x, so they are the only algorithm here.
Reproduce with ``python benchmarks/bench_conv.py --algorithms``.
"""
from __future__ import annotations

import numpy as np

from .._numba import NUMBA_ENABLED, get_num_threads, njit, prange, set_num_threads

__all__ = [
    "conv_output_size", "conv_transpose_output_size", "batch_last",
    "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
    "maxpool2d_forward", "maxpool2d_backward",
    "conv2d_forward_numpy", "conv2d_backward_input_numpy", "conv2d_backward_weight_numpy",
    "maxpool2d_forward_numpy", "maxpool2d_backward_numpy",
]


def conv_output_size(size, kernel, stride, padding, dilation=1):
    """floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1 (PyTorch's rule)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_transpose_output_size(size, kernel, stride, padding, output_padding=0, dilation=1):
    """(size - 1) stride - 2 padding + dilation (kernel - 1) + output_padding + 1 (PyTorch)."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def batch_last(a):
    """``a`` (N, C, H, W) as a C-contiguous (C, H, W, N) array; no copy if it already is one."""
    return np.ascontiguousarray(a.transpose(1, 2, 3, 0))


# ------------------------------------------------------------------------------------------
# Numba kernels on batch-last arrays: x_ is (C, H, W, N), g_ is (O, Ho, Wo, N).
# ------------------------------------------------------------------------------------------

@njit(cache=True)
def _forward_taps(n_out, n_in, kernel_size, s, pad, d):
    """For each output index p: the offsets i and input indices h = p s + i d - pad in range."""
    ti = np.zeros((n_out, kernel_size), np.int64)
    th = np.zeros((n_out, kernel_size), np.int64)
    nt = np.zeros(n_out, np.int64)
    for p in range(n_out):
        for i in range(kernel_size):
            h = p * s + i * d - pad
            if 0 <= h < n_in:
                ti[p, nt[p]] = i
                th[p, nt[p]] = h
                nt[p] += 1
    return ti, th, nt


@njit(cache=True)
def _adjoint_taps(n_in, n_out, kernel_size, s, pad, d):
    """For each input index h: the pairs (i, p) with p s + i d - pad = h and 0 <= p < n_out."""
    ti = np.zeros((n_in, kernel_size), np.int64)
    tp = np.zeros((n_in, kernel_size), np.int64)
    nt = np.zeros(n_in, np.int64)
    for p in range(n_out):
        for i in range(kernel_size):
            h = p * s + i * d - pad
            if 0 <= h < n_in:
                ti[h, nt[h]] = i
                tp[h, nt[h]] = p
                nt[h] += 1
    return ti, tp, nt


@njit(cache=True, parallel=True)
def _conv2d_forward(x_, W, b, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """(1) on batch-last arrays: y_[o,p,q,:] = b[o] + sum W[o,c,i,j] x_[c,h,w,:]."""
    C, H, Wd, N = x_.shape
    O, _, kh, kw = W.shape
    ti, th, nti = _forward_taps(Ho, H, kh, sh, ph, dh)
    tj, tw, ntj = _forward_taps(Wo, Wd, kw, sw, pw, dw)
    has_b = b.shape[0] == O
    y_ = np.empty((O, Ho, Wo, N), dtype=x_.dtype)
    for r in prange(O * Ho):
        o, p = r // Ho, r % Ho
        acc = np.empty(N, dtype=x_.dtype)
        for q in range(Wo):
            b0 = b[o] if has_b else 0.0
            for n in range(N):
                acc[n] = b0
            for a in range(nti[p]):
                i, h = ti[p, a], th[p, a]
                for e in range(ntj[q]):
                    j, w = tj[q, e], tw[q, e]
                    c = 0
                    while c + 4 <= C:  # four channels per pass: one load/store of acc, not four
                        w0, w1, w2, w3 = W[o, c, i, j], W[o, c + 1, i, j], W[o, c + 2, i, j], \
                            W[o, c + 3, i, j]
                        for n in range(N):
                            acc[n] += (w0 * x_[c, h, w, n] + w1 * x_[c + 1, h, w, n]
                                       + w2 * x_[c + 2, h, w, n] + w3 * x_[c + 3, h, w, n])
                        c += 4
                    for c in range(c, C):
                        wv = W[o, c, i, j]
                        for n in range(N):
                            acc[n] += wv * x_[c, h, w, n]
            for n in range(N):
                y_[o, p, q, n] = acc[n]
    return y_


@njit(cache=True, parallel=True)
def _conv2d_backward_input(g_, W, b, sh, sw, ph, pw, dh, dw, H, Wd):
    """(2) on batch-last arrays, as a gather: each dx_[c,h,w,:] sums the (i, p), (j, q) pairs
    that read position (h, w), so no two threads write the same entry. ``b`` (C,) is added
    for ConvTranspose2d's forward pass; Conv2d's input gradient passes an empty array."""
    O, Ho, Wo, N = g_.shape
    _, C, kh, kw = W.shape
    ti, tp, nti = _adjoint_taps(H, Ho, kh, sh, ph, dh)
    tj, tq, ntj = _adjoint_taps(Wd, Wo, kw, sw, pw, dw)
    has_b = b.shape[0] == C
    dx_ = np.empty((C, H, Wd, N), dtype=g_.dtype)
    for r in prange(C * H):
        c, h = r // H, r % H
        acc = np.empty(N, dtype=g_.dtype)
        for w in range(Wd):
            b0 = b[c] if has_b else 0.0
            for n in range(N):
                acc[n] = b0
            for a in range(nti[h]):
                i, p = ti[h, a], tp[h, a]
                for e in range(ntj[w]):
                    j, q = tj[w, e], tq[w, e]
                    o = 0
                    while o + 4 <= O:  # four channels per pass: one load/store of acc, not four
                        w0, w1, w2, w3 = W[o, c, i, j], W[o + 1, c, i, j], W[o + 2, c, i, j], \
                            W[o + 3, c, i, j]
                        for n in range(N):
                            acc[n] += (w0 * g_[o, p, q, n] + w1 * g_[o + 1, p, q, n]
                                       + w2 * g_[o + 2, p, q, n] + w3 * g_[o + 3, p, q, n])
                        o += 4
                    for o in range(o, O):
                        wv = W[o, c, i, j]
                        for n in range(N):
                            acc[n] += wv * g_[o, p, q, n]
            for n in range(N):
                dx_[c, h, w, n] = acc[n]
    return dx_


@njit(cache=True)
def _offset_taps(n_out, n_in, kernel_size, s, pad, d):
    """For each kernel offset i: the output indices p and input indices h = p s + i d - pad
    that it pairs (those with 0 <= h < n_in)."""
    tp = np.zeros((kernel_size, n_out), np.int64)
    th = np.zeros((kernel_size, n_out), np.int64)
    nt = np.zeros(kernel_size, np.int64)
    for i in range(kernel_size):
        for p in range(n_out):
            h = p * s + i * d - pad
            if 0 <= h < n_in:
                tp[i, nt[i]] = p
                th[i, nt[i]] = h
                nt[i] += 1
    return tp, th, nt


# 'reassoc' lets LLVM keep several partial sums of the dot product in vector registers (a
# fixed order, decided at compile time: still deterministic); no other fast-math licence.
@njit(cache=True, parallel=True, fastmath={"reassoc", "contract"})
def _conv2d_backward_weight(x_, g_, kh, kw, sh, sw, ph, pw, dh, dw):
    """(3) on batch-last arrays: each weight entry is one thread's dot product of the
    g_[o, p, q, :] and x_[c, h, w, :] rows over all (p, q) its offset pairs."""
    C, H, Wd, N = x_.shape
    O, Ho, Wo = g_.shape[0], g_.shape[1], g_.shape[2]
    tp, th, ntp = _offset_taps(Ho, H, kh, sh, ph, dh)
    tq, tw, ntq = _offset_taps(Wo, Wd, kw, sw, pw, dw)
    dW = np.empty((O, C, kh, kw), dtype=x_.dtype)
    zero = np.zeros(1, dtype=x_.dtype)[0]  # accumulate in the data's dtype, like PyTorch
    nb = (C + 3) // 4  # blocks of four input channels share each load of a g row
    for r in prange(O * nb):
        o, c0 = r // nb, (r % nb) * 4
        for i in range(kh):
            for j in range(kw):
                if c0 + 4 <= C:
                    s0 = s1 = s2 = s3 = zero
                    for a in range(ntp[i]):
                        p, h = tp[i, a], th[i, a]
                        for e in range(ntq[j]):
                            q, w = tq[j, e], tw[j, e]
                            for n in range(N):
                                gv = g_[o, p, q, n]
                                s0 += gv * x_[c0, h, w, n]
                                s1 += gv * x_[c0 + 1, h, w, n]
                                s2 += gv * x_[c0 + 2, h, w, n]
                                s3 += gv * x_[c0 + 3, h, w, n]
                    dW[o, c0, i, j], dW[o, c0 + 1, i, j] = s0, s1
                    dW[o, c0 + 2, i, j], dW[o, c0 + 3, i, j] = s2, s3
                else:
                    for c in range(c0, C):
                        acc = zero
                        for a in range(ntp[i]):
                            p, h = tp[i, a], th[i, a]
                            for e in range(ntq[j]):
                                q, w = tq[j, e], tw[j, e]
                                for n in range(N):
                                    acc += g_[o, p, q, n] * x_[c, h, w, n]
                        dW[o, c, i, j] = acc
    return dW


@njit(cache=True, parallel=True)
def _maxpool2d_forward(x_, kh, kw, sh, sw, ph, pw, Ho, Wo):
    """(4) on batch-last arrays; the arg-max is the flat index h W + w (int32).

    Window positions outside the input are skipped, which is the same as padding with -inf
    (PyTorch's rule padding <= kernel / 2 guarantees every window holds an input entry)."""
    C, H, Wd, N = x_.shape
    y_ = np.empty((C, Ho, Wo, N), dtype=x_.dtype)
    arg_ = np.empty((C, Ho, Wo, N), dtype=np.int32)
    for r in prange(C * Ho):
        c, p = r // Ho, r % Ho
        for q in range(Wo):
            first = True
            for i in range(kh):
                h = p * sh + i - ph
                if h < 0 or h >= H:
                    continue
                for j in range(kw):
                    w = q * sw + j - pw
                    if w < 0 or w >= Wd:
                        continue
                    flat = h * Wd + w
                    if first:
                        for n in range(N):
                            y_[c, p, q, n] = x_[c, h, w, n]
                            arg_[c, p, q, n] = flat
                        first = False
                    else:
                        for n in range(N):
                            v = x_[c, h, w, n]
                            cur = y_[c, p, q, n]
                            # strict: a tie keeps the earlier position; the first NaN wins
                            # and stays (np.argmax's rule, so the twin agrees)
                            if v > cur or (v != v and cur == cur):
                                y_[c, p, q, n] = v
                                arg_[c, p, q, n] = flat
    return y_, arg_


@njit(cache=True, parallel=True)
def _maxpool2d_backward(g_, arg_, H, Wd):
    """(5) on batch-last arrays: dx_[c, a, n] += g_[c, p, q, n] with a = arg_[c, p, q, n]."""
    C, Ho, Wo, N = g_.shape
    dx_ = np.zeros((C, H * Wd, N), dtype=g_.dtype)
    for c in prange(C):
        for p in range(Ho):
            for q in range(Wo):
                for n in range(N):
                    dx_[c, arg_[c, p, q, n], n] += g_[c, p, q, n]
    return dx_.reshape(C, H, Wd, N)


# ------------------------------------------------------------------------------------------
# Public kernels: NCHW-shaped in and out (memory batch-last, see above). The arguments
# mirror the twins so the tests can hold one to the other; with Numba off (``npae._numba``)
# each calls its twin.
# ------------------------------------------------------------------------------------------

#: Below this many multiply-adds (or compared entries) a call runs on one thread: waking the
#: other threads costs more than the work, badly so when other jobs share the cores. The
#: result is the same either way (see the determinism note above).
SMALL_WORK = 1 << 16


def _run(kernel, work, *args):
    threads = get_num_threads()
    if work >= SMALL_WORK or threads == 1:
        return kernel(*args)
    set_num_threads(1)
    try:
        return kernel(*args)
    finally:
        set_num_threads(threads)


def _bias(b, n, dtype):
    return np.empty(0, dtype) if b is None else np.ascontiguousarray(b, dtype=dtype)


def _macs(x_or_g, W, out_hw):
    """Multiply-adds of (1): N * Ho * Wo * O * C * kH * kW (the same for (2) and (3))."""
    return x_or_g.shape[0] * out_hw[0] * out_hw[1] * W.size


def conv2d_forward(x, W, b, stride, padding, dilation, out_hw):
    """(1): y (N, O, Ho, Wo) for x (N, C, H, W), W (O, C, kH, kW), b (O,) or None."""
    if not NUMBA_ENABLED:
        return conv2d_forward_numpy(x, W, b, stride, padding, dilation, out_hw)
    x_ = batch_last(x)
    W = np.ascontiguousarray(W, dtype=x_.dtype)
    y_ = _run(_conv2d_forward, _macs(x, W, out_hw), x_, W, _bias(b, W.shape[0], x_.dtype),
              stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1],
              out_hw[0], out_hw[1])
    return y_.transpose(3, 0, 1, 2)


def conv2d_backward_input(g, W, b, stride, padding, dilation, in_hw):
    """(2): dL/dx (N, C, H, W) for g (N, O, Ho, Wo); plus b (C,) unless None."""
    if not NUMBA_ENABLED:
        return conv2d_backward_input_numpy(g, W, b, stride, padding, dilation, in_hw)
    g_ = batch_last(g)
    W = np.ascontiguousarray(W, dtype=g_.dtype)
    dx_ = _run(_conv2d_backward_input, _macs(g, W, g.shape[2:]), g_, W,
               _bias(b, W.shape[1], g_.dtype), stride[0], stride[1], padding[0], padding[1],
               dilation[0], dilation[1], in_hw[0], in_hw[1])
    return dx_.transpose(3, 0, 1, 2)


def conv2d_backward_weight(x, g, kernel, stride, padding, dilation):
    """(3): dL/dW (O, C, kH, kW) for x (N, C, H, W) and g (N, O, Ho, Wo)."""
    if not NUMBA_ENABLED:
        return conv2d_backward_weight_numpy(x, g, kernel, stride, padding, dilation)
    x_ = batch_last(x)
    g_ = batch_last(g).astype(x_.dtype, copy=False)
    work = g.shape[0] * g.shape[1] * g.shape[2] * g.shape[3] * x.shape[1] * kernel[0] * kernel[1]
    return _run(_conv2d_backward_weight, work, x_, g_, kernel[0], kernel[1], stride[0],
                stride[1], padding[0], padding[1], dilation[0], dilation[1])


def maxpool2d_forward(x, kernel, stride, padding, out_hw):
    """(4): y (N, C, Ho, Wo) and the arg-max a (flat index h W + w into each H x W image)."""
    if not NUMBA_ENABLED:
        return maxpool2d_forward_numpy(x, kernel, stride, padding, out_hw)
    work = x.shape[0] * x.shape[1] * out_hw[0] * out_hw[1] * kernel[0] * kernel[1]
    y_, arg_ = _run(_maxpool2d_forward, work, batch_last(x), kernel[0], kernel[1], stride[0],
                    stride[1], padding[0], padding[1], out_hw[0], out_hw[1])
    return y_.transpose(3, 0, 1, 2), arg_.transpose(3, 0, 1, 2)


def maxpool2d_backward(g, arg, in_hw):
    """(5): dL/dx (N, C, H, W), each g entry added at its arg-max."""
    if not NUMBA_ENABLED:
        return maxpool2d_backward_numpy(g, arg, in_hw)
    g_ = batch_last(g)
    dx_ = _run(_maxpool2d_backward, g.size, g_, batch_last(arg), in_hw[0], in_hw[1])
    return dx_.transpose(3, 0, 1, 2)


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
    return y, h * Wd + w


def maxpool2d_backward_numpy(g, arg, in_hw):
    """(5): np.add.at adds every g[n,c,p,q] into dx at its arg-max (repeats accumulate)."""
    N, C = g.shape[:2]
    dx = np.zeros((N, C, in_hw[0] * in_hw[1]), dtype=g.dtype)
    n, c = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    np.add.at(dx, (n[..., None], c[..., None], arg.reshape(N, C, -1)), g.reshape(N, C, -1))
    return dx.reshape(N, C, in_hw[0], in_hw[1])
