"""Hot loops of max pooling: Numba kernels, each with a plain-NumPy twin (in
``npae.nn.conv_twins``, re-exported here under the same names). The arrays and the threads
are laid out as in ``npae.nn.conv_kernels`` (batch-last memory, NCHW shapes).

Max pooling of x (N, C, H, W), window (kH, kW), stride (sH, sW), padding (pH, pW) (padding
counts as -inf, so a padded position never wins):

    (4)  y[n,c,p,q] = max_{i,j} x[n, c, p sH + i - pH, q sW + j - pW],   a[n,c,p,q] = its arg-max
    (5)  dL/dx[n,c,h,w] = sum_{p,q : a[n,c,p,q] = (h,w)} g[n,c,p,q]

Ties in (4) go to the first position in row-major window order (smallest i, then smallest j):
the comparison is strict (">"), so a later equal value never replaces the current maximum.
A NaN propagates: the first NaN of a window is its maximum (and arg-max). ``np.argmax``
follows the same rules, so the twin agrees. (5) is a scatter into zeros; where the windows do
not overlap (stride >= kernel, as in the lecture's first pooling) each input entry is written
once instead, by a select on the arg-max, which vectorises (the same bits).
"""
from __future__ import annotations

import numpy as np

from .._numba import NUMBA_ENABLED, Deferred, njit, prange
from . import elementwise_kernels as ew  # ReLU's backward: the fused pair's unfused form
from .conv_kernels import _mask_in, batch_last
from .conv_twins import maxpool2d_backward_numpy, maxpool2d_forward_numpy  # noqa: F401

__all__ = ["maxpool2d_forward", "maxpool2d_backward", "maxpool2d_forward_numpy",
           "maxpool2d_backward_numpy"]


# The pooling kernels are compiled in the background (see ``_deferred_pool_forward``), so
# ``parallel=True``'s longer compile costs a first fit nothing. Each thread owns whole rows of
# the forward's output: the same bits with any number of threads. (The backward's scatter
# is too little work to share.)
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
                    flat = np.int32(h * Wd + w)  # arg_ is int32: no conversion in the loop
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
                            # (selects and unconditional stores, not a branch: LLVM
                            # vectorises the loop)
                            take = (v > cur) | ((v != v) & (cur == cur))
                            y_[c, p, q, n] = v if take else cur
                            arg_[c, p, q, n] = flat if take else arg_[c, p, q, n]
    return y_, arg_


@njit(cache=True)
def _maxpool2d_backward(g_, arg_, H, Wd):
    """(5) on batch-last arrays: dx_[c, a, n] += g_[c, p, q, n] with a = arg_[c, p, q, n]."""
    C, Ho, Wo, N = g_.shape
    dx_ = np.zeros((C, H * Wd, N), dtype=g_.dtype)
    for c in range(C):
        for p in range(Ho):
            for q in range(Wo):
                for n in range(N):
                    dx_[c, arg_[c, p, q, n], n] += g_[c, p, q, n]
    return dx_.reshape(C, H, Wd, N)


@njit(cache=True, parallel=True)
def _maxpool2d_backward_tiled(g_, arg_, H, Wd, kh, kw, sh, sw, ph, pw, m_):
    """(5) for windows that do not overlap (stride >= kernel on both axes): each input place
    (h, w) lies in at most one window (p, q), with h + pH = p sH + i, i < kH, so dx_ is
    written once, place by place: 0.0 + g_[c, p, q, n] where the window's arg-max is this
    place, else 0.0. The scatter adds the same g to the same 0.0: the same bits, -0.0 and NaN
    included. No zero-fill and no indexed stores, so LLVM vectorises it; each thread owns
    whole rows. A non-empty m_ (C, H, W, N) multiplies each entry by 1[m_ > 0] as it is
    stored: the backward of a ReLU before the pooling, m_ its output, with
    ``_relu_backward_kernel``'s expression (its bits)."""
    C, Ho, Wo, N = g_.shape
    dx_ = np.empty((C, H, Wd, N), dtype=g_.dtype)
    zero, one = np.zeros(1, dtype=g_.dtype)[0], np.ones(1, dtype=g_.dtype)[0]
    masked = m_.size > 0
    for r in prange(C * H):
        c, h = r // H, r % H
        p, i = (h + ph) // sh, (h + ph) % sh
        row_in = i < kh and p < Ho
        for w in range(Wd):
            q, j = (w + pw) // sw, (w + pw) % sw
            if row_in and j < kw and q < Wo:
                flat = np.int32(h * Wd + w)
                if masked:
                    for n in range(N):
                        v = zero + g_[c, p, q, n]
                        v = v if arg_[c, p, q, n] == flat else zero
                        dx_[c, h, w, n] = v * (one if m_[c, h, w, n] > zero else zero)
                else:
                    for n in range(N):
                        v = zero + g_[c, p, q, n]
                        dx_[c, h, w, n] = v if arg_[c, p, q, n] == flat else zero
            else:  # in no window: 0.0, and 0.0 1[m > 0] is 0.0 as well
                for n in range(N):
                    dx_[c, h, w, n] = zero
    return dx_


def maxpool2d_forward(x, kernel, stride, padding, out_hw):
    """(4): y (N, C, Ho, Wo) and the arg-max a (flat index h W + w into each H x W image)."""
    args = (batch_last(x), kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1],
            out_hw[0], out_hw[1]) if NUMBA_ENABLED else ()
    if not _deferred_pool_forward.ready(*args):
        return maxpool2d_forward_numpy(x, kernel, stride, padding, out_hw)
    y_, arg_ = _maxpool2d_forward(*args)
    return y_.transpose(3, 0, 1, 2), arg_.transpose(3, 0, 1, 2)


def maxpool2d_backward(g, arg, in_hw, kernel=None, stride=None, padding=(0, 0), mask=None):
    """(5): dL/dx (N, C, H, W), each g entry added at its arg-max. Given the pooling's
    ``kernel`` and ``stride`` (and ``padding``), windows that do not overlap take the kernel
    that writes each entry once (``_maxpool2d_backward_tiled``; the same bits). ``mask`` (the
    pooling's input, the output of a ReLU before it) returns dL/dx 1[mask > 0], the ReLU's
    backward too, with its bits (taken as dx is stored where the windows do not overlap)."""
    args = (batch_last(g), batch_last(arg), in_hw[0], in_hw[1]) if NUMBA_ENABLED else ()
    tiled = (NUMBA_ENABLED and kernel is not None and stride[0] >= kernel[0]
             and stride[1] >= kernel[1])
    if tiled:
        m_ = np.empty((0, 0, 0, 0), g.dtype) if mask is None else _mask_in(mask, g.dtype)
        args += (kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1], m_)
        if _deferred_pool_backward_tiled.ready(*args):
            return _maxpool2d_backward_tiled(*args).transpose(3, 0, 1, 2)
        dx = maxpool2d_backward_numpy(g, arg, in_hw)
    elif _deferred_pool_backward.ready(*args):
        dx = _maxpool2d_backward(*args).transpose(3, 0, 1, 2)
    else:
        dx = maxpool2d_backward_numpy(g, arg, in_hw)
    return dx if mask is None else ew.relu_backward(dx, mask)


#: Pooling's twins give the kernels' bits (a maximum and its first position are exact, and
#: (5) adds the same numbers in the same order), so a run's first calls take the twins and the
#: kernels compile later, in the background (``npae._numba.Deferred``): a first fit on a few
#: batches does not wait for them. One batch of a net calls each about twice.
_deferred_pool_forward = Deferred(_maxpool2d_forward, after=8)
_deferred_pool_backward = Deferred(_maxpool2d_backward, after=8)
_deferred_pool_backward_tiled = Deferred(_maxpool2d_backward_tiled, after=8)
