"""Hot loops of the convolutional layers: Numba kernels, each with a plain-NumPy twin (in
``npae.nn.conv_twins``, re-exported here under the same names).

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

Max pooling, (4) and (5), is ``npae.nn.pool_kernels``'s.

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

Each source row loaded serves two output channels at once in (1) and (2), and each pair of
rows two output and four input channels in (3): per multiply-add, fewer loads and stores of
the accumulators, which bound these loops more than the arithmetic does.

Threads split output rows: each kernel computes the rows [r0, r1) of its output (a pair of
channels x row for (1) and (2)), and ``_split`` cuts the rows into one contiguous range per
thread (``get_num_threads``).
A run's first calls run the ranges at once in Python threads, the kernels releasing the GIL
(``nogil``); after a few dozen calls a ``parallel=True`` wrapper of each kernel (a prange over
the same ranges, each the serial kernel's call) is compiled in the background
(``npae._numba.Deferred``) and takes over, because Numba's threads hand over work far more
cheaply than a Python thread wakes up, which matters for kernels of a tenth of a millisecond.
Each output element is written by one thread in a fixed order, and each entry of (3) is one
thread's dot product (vectorised by LLVM under the 'reassoc' licence, in an order fixed at
compile time), so results are bit-identical run to run, whichever of the two ran them and
with any number of threads (a test holds the two ways to the same bits). Why not
``parallel=True`` from the first call: it makes a kernel far longer to compile, and a
student's first fit would wait on it.

Compile time is kept small in other ways too: one kernel (``_gather``) serves both (1) and
(2); the tap tables are made in NumPy (``npae.nn.conv_taps``), not compiled. The valid
kernel offsets of each output row/column are tabulated once per shape (``forward_taps``,
``adjoint_taps``, ``offset_taps``), so no division or bounds test sits in the inner
loops.

The batch-last direct loops beat both alternatives -- the same loops on C-ordered NCHW arrays
with the channel axis innermost, and im2col/col2im with BLAS products -- on every layer of
the lecture's net, in float32 at batch 128, so they are the only algorithm here
(``python benchmarks/bench_conv.py --algorithms`` compares the three).
"""
from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .._numba import NUMBA_ENABLED, Deferred, get_num_threads, njit, prange
from .conv_taps import adjoint_taps, forward_taps, offset_taps  # the tap tables
from .conv_twins import (bias_gradient_numpy, conv2d_backward_input_numpy,  # noqa: F401
                         conv2d_backward_weight_numpy, conv2d_forward_numpy)
from . import elementwise_kernels as ew  # ReLU's maps: the fused pairs' unfused form

__all__ = [
    "conv_output_size", "conv_transpose_output_size", "batch_last",
    "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
    "bias_gradient",
    "conv2d_forward_numpy", "conv2d_backward_input_numpy", "conv2d_backward_weight_numpy",
    "bias_gradient_numpy",
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

# Inlined into its callers (Numba's IR inlining: no compile of its own, so a first fit
# compiles one kernel, ``_gather``, for (1) and (2)).
@njit(inline="always")
def _accumulate(src_, Wk, b, ti, ts, nti, tj, tt, ntj, a, a1, p, q, acc0, acc1):
    """acc0[:] = b[a] + sum over the taps (i, s) of p and (j, t) of q, and over k, of
    Wk[a,k,i,j] src_[k,s,t,:], and acc1 the same for channel a1: the output place (p, q) of
    the channel pair (a, a1), which share each load of a source row."""
    K, N = src_.shape[0], src_.shape[3]
    has_b = b.shape[0] == Wk.shape[0]
    b0 = b[a] if has_b else 0.0
    b1 = b[a1] if has_b else 0.0
    for n in range(N):
        acc0[n] = b0
        acc1[n] = b1
    for e1 in range(nti[p]):
        i, s = ti[p, e1], ts[p, e1]
        for e2 in range(ntj[q]):
            j, t = tj[q, e2], tt[q, e2]
            k = 0
            while k + 4 <= K:  # four channels per pass: one load/store of acc, not four
                w0, w1, w2, w3 = Wk[a, k, i, j], Wk[a, k + 1, i, j], \
                    Wk[a, k + 2, i, j], Wk[a, k + 3, i, j]
                v0, v1, v2, v3 = Wk[a1, k, i, j], Wk[a1, k + 1, i, j], \
                    Wk[a1, k + 2, i, j], Wk[a1, k + 3, i, j]
                for n in range(N):
                    x0, x1 = src_[k, s, t, n], src_[k + 1, s, t, n]
                    x2, x3 = src_[k + 2, s, t, n], src_[k + 3, s, t, n]
                    acc0[n] += w0 * x0 + w1 * x1 + w2 * x2 + w3 * x3
                    acc1[n] += v0 * x0 + v1 * x1 + v2 * x2 + v3 * x3
                k += 4
            for k in range(k, K):
                w0, v0 = Wk[a, k, i, j], Wk[a1, k, i, j]
                for n in range(N):
                    x0 = src_[k, s, t, n]
                    acc0[n] += w0 * x0
                    acc1[n] += v0 * x0


# 'contract' lets LLVM fuse each multiply and add into one FMA (one rounding instead of two:
# fixed at compile time, so still deterministic); no other fast-math licence.
@njit(cache=True, nogil=True, fastmath={"contract"})
def _gather(src_, Wk, b, ti, ts, nti, tj, tt, ntj, out_, r0, r1):
    """out_[a,p,q,:] = b[a] + sum over the taps (i, s) of p and (j, t) of q, and over k, of
    Wk[a,k,i,j] src_[k,s,t,:] (``_accumulate``).

    (1) is this with src_ = x_, Wk = W and the forward taps; (2) is it with src_ = g_,
    Wk = W transposed to (C, O, kH, kW) and the adjoint taps, so one kernel (one compile)
    serves both. ``b`` is empty for no bias. Output channels go in pairs (a, a + 1); row
    r = (a // 2) Ho + p for r in [r0, r1) computes out_[a, p] and out_[a + 1, p] of out_
    (A, Ho, Wo, N)."""
    N, A = src_.shape[3], Wk.shape[0]
    Ho, Wo = out_.shape[1], out_.shape[2]
    acc0 = np.empty(N, dtype=src_.dtype)
    acc1 = np.empty(N, dtype=src_.dtype)
    for r in range(r0, r1):
        a, p = 2 * (r // Ho), r % Ho
        # the pair (a, a1); an odd A's last channel pairs with itself (computed twice: one
        # loop body, not two, keeps the compile short)
        a1 = min(a + 1, A - 1)
        for q in range(Wo):
            _accumulate(src_, Wk, b, ti, ts, nti, tj, tt, ntj, a, a1, p, q, acc0, acc1)
            for n in range(N):
                out_[a, p, q, n] = acc0[n]
                out_[a1, p, q, n] = acc1[n]


@njit(cache=True, nogil=True, fastmath={"contract"})
def _gather_relu(src_, Wk, b, ti, ts, nti, tj, tt, ntj, m_, out_, r0, r1):
    """``_gather`` with a ReLU folded into its store (``npae.nn.Sequential``'s fused pairs):
    for an empty m_, max(out, 0) (the ReLU after the layer, with ``_relu_kernel``'s
    expression, so its bits); else out 1[m_ > 0] (the backward of the ReLU before the
    layer, m_ its output, with ``_relu_backward_kernel``'s expression). A kernel of its own,
    compiled in the background (``_deferred_gather_relu``): a first fit compiles ``_gather``
    only."""
    N, A = src_.shape[3], Wk.shape[0]
    Ho, Wo = out_.shape[1], out_.shape[2]
    acc0 = np.empty(N, dtype=src_.dtype)
    acc1 = np.empty(N, dtype=src_.dtype)
    zero, one = np.zeros(1, dtype=src_.dtype)[0], np.ones(1, dtype=src_.dtype)[0]
    after = m_.size == 0
    for r in range(r0, r1):
        a, p = 2 * (r // Ho), r % Ho
        a1 = min(a + 1, A - 1)
        for q in range(Wo):
            _accumulate(src_, Wk, b, ti, ts, nti, tj, tt, ntj, a, a1, p, q, acc0, acc1)
            if after:
                for n in range(N):
                    u, v = acc0[n], acc1[n]
                    out_[a, p, q, n] = u if (u > zero or u != u) else zero
                    out_[a1, p, q, n] = v if (v > zero or v != v) else zero
            else:
                for n in range(N):
                    out_[a, p, q, n] = acc0[n] * (one if m_[a, p, q, n] > zero else zero)
                    out_[a1, p, q, n] = acc1[n] * (one if m_[a1, p, q, n] > zero else zero)


def _gather_rows(A, Ho):
    """The rows of ``_gather``'s work: one per output row of each pair of channels."""
    return (A + 1) // 2 * Ho


# 'reassoc' lets LLVM keep several partial sums of the dot product in vector registers (a
# fixed order, decided at compile time: still deterministic); no other fast-math licence.
@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _conv2d_backward_weight(x_, g_, tp, th, ntp, tq, tw, ntq, dW, r0, r1):
    """(3) on batch-last arrays: each weight entry is one thread's dot product of the
    g_[o, p, q, :] and x_[c, h, w, :] rows over all (p, q) its offset pairs (the offset
    taps of i and j). A block of two output channels and four input channels shares each
    load of a g row and an x row (eight dot products at once). Writes dW (O, C, kH, kW) for
    the rows r = (o // 2) nb + c // 4 in [r0, r1), nb = ceil(C / 4)."""
    C, H, Wd, N = x_.shape
    O = g_.shape[0]
    kh, kw = ntp.shape[0], ntq.shape[0]
    zero = np.zeros(1, dtype=x_.dtype)[0]  # accumulate in the data's dtype, like PyTorch
    nb = (C + 3) // 4
    for r in range(r0, r1):
        o, c0 = 2 * (r // nb), (r % nb) * 4
        pair = o + 1 < O
        for i in range(kh):
            for j in range(kw):
                if c0 + 4 <= C and pair:
                    s0 = s1 = s2 = s3 = u0 = u1 = u2 = u3 = zero
                    for a in range(ntp[i]):
                        p, h = tp[i, a], th[i, a]
                        for e in range(ntq[j]):
                            q, w = tq[j, e], tw[j, e]
                            for n in range(N):
                                gs, gu = g_[o, p, q, n], g_[o + 1, p, q, n]
                                x0, x1 = x_[c0, h, w, n], x_[c0 + 1, h, w, n]
                                x2, x3 = x_[c0 + 2, h, w, n], x_[c0 + 3, h, w, n]
                                s0 += gs * x0
                                s1 += gs * x1
                                s2 += gs * x2
                                s3 += gs * x3
                                u0 += gu * x0
                                u1 += gu * x1
                                u2 += gu * x2
                                u3 += gu * x3
                    dW[o, c0, i, j], dW[o, c0 + 1, i, j] = s0, s1
                    dW[o, c0 + 2, i, j], dW[o, c0 + 3, i, j] = s2, s3
                    dW[o + 1, c0, i, j], dW[o + 1, c0 + 1, i, j] = u0, u1
                    dW[o + 1, c0 + 2, i, j], dW[o + 1, c0 + 3, i, j] = u2, u3
                else:  # the last, incomplete block: one dot product at a time
                    for oo in range(o, o + 2 if pair else o + 1):
                        for c in range(c0, min(c0 + 4, C)):
                            acc = zero
                            for a in range(ntp[i]):
                                p, h = tp[i, a], th[i, a]
                                for e in range(ntq[j]):
                                    q, w = tq[j, e], tw[j, e]
                                    for n in range(N):
                                        acc += g_[oo, p, q, n] * x_[c, h, w, n]
                            dW[oo, c, i, j] = acc


@njit(cache=True, nogil=True)
def _lane_sums(g3, out, zero):
    """out[o, n] = sum over m of g3[o, m, n], m increasing from 0.0: NumPy's order for
    ``g3.sum(axis=1)`` (one row of N lanes added at a time), so the bits are the twin's."""
    O, M, N = g3.shape
    for o in range(O):
        for n in range(N):
            out[o, n] = zero
        for m in range(M):
            for n in range(N):
                out[o, n] += g3[o, m, n]


# ------------------------------------------------------------------------------------------
# Public kernels: NCHW-shaped in and out (memory batch-last, see above). The arguments
# mirror the twins so the tests can hold one to the other; with Numba off (``npae._numba``)
# each calls its twin.
# ------------------------------------------------------------------------------------------

#: Below this many multiply-adds a call runs on one thread: handing work to the other
#: threads costs more than the work, badly so when other jobs share the cores. The result is
#: the same either way (see the determinism note above).
SMALL_WORK = 1 << 16


_pool = None


def _workers(n):
    """A pool of at least n threads, made on first use and kept (threads are cheap to keep
    and slow to start)."""
    global _pool
    if _pool is None or _pool._max_workers < n:
        _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="npae-conv")
    return _pool


@functools.lru_cache(maxsize=256)
def _cuts(rows, threads):
    """[0, rows) cut into ``threads`` contiguous ranges: their bounds (shared between calls;
    no kernel writes them)."""
    return np.array([rows * t // threads for t in range(threads + 1)], dtype=np.int64)


def _split(kernel, work, rows, out, *args):
    """kernel(*args, out, r0, r1) over the rows [0, rows), cut into one contiguous range per
    thread. Returns out.

    Two ways to run the ranges at once, with the same bits (each row's arithmetic is the same
    compiled kernel): Python threads, the calling thread taking the first range, while the
    kernel's ``parallel=True`` wrapper compiles in the background; then that wrapper, whose
    Numba threads hand over work far more cheaply than a Python thread wakes up."""
    threads = min(get_num_threads(), rows) if work >= SMALL_WORK else 1
    if threads <= 1:
        kernel(*args, out, 0, rows)
        return out
    cuts = _cuts(rows, threads)
    parallel, deferred = _PARALLEL[kernel]
    if deferred.ready(*args, out, cuts):
        parallel(*args, out, cuts)
        return out
    pool = _workers(threads - 1)
    jobs = [pool.submit(kernel, *args, out, cuts[t], cuts[t + 1]) for t in range(1, threads)]
    try:
        kernel(*args, out, cuts[0], cuts[1])
    finally:
        for job in jobs:
            job.result()
    return out


# The parallel wrappers: one range of rows per Numba thread, each range the serial kernel's
# call, so a row's result does not depend on which wrapper or thread computed it.
@njit(cache=True, parallel=True)
def _gather_parallel(src_, Wk, b, ti, ts, nti, tj, tt, ntj, out_, cuts):
    for t in prange(cuts.shape[0] - 1):
        _gather(src_, Wk, b, ti, ts, nti, tj, tt, ntj, out_, cuts[t], cuts[t + 1])


@njit(cache=True, parallel=True)
def _gather_relu_parallel(src_, Wk, b, ti, ts, nti, tj, tt, ntj, m_, out_, cuts):
    for t in prange(cuts.shape[0] - 1):
        _gather_relu(src_, Wk, b, ti, ts, nti, tj, tt, ntj, m_, out_, cuts[t], cuts[t + 1])


@njit(cache=True, parallel=True)
def _conv2d_backward_weight_parallel(x_, g_, tp, th, ntp, tq, tw, ntq, dW, cuts):
    for t in prange(cuts.shape[0] - 1):
        _conv2d_backward_weight(x_, g_, tp, th, ntp, tq, tw, ntq, dW, cuts[t], cuts[t + 1])


#: kernel -> (its parallel wrapper, the wrapper's deferred compile). A fit calls each kernel
#: 2-4 times a batch: a first fit on a few batches never waits for these compiles.
_PARALLEL = {_gather: (_gather_parallel, Deferred(_gather_parallel, after=64)),
             _gather_relu: (_gather_relu_parallel, Deferred(_gather_relu_parallel, after=96)),
             _conv2d_backward_weight: (_conv2d_backward_weight_parallel,
                                       Deferred(_conv2d_backward_weight_parallel, after=32))}


def _bias(b, n, dtype):
    return np.empty(0, dtype) if b is None else np.ascontiguousarray(b, dtype=dtype)


def _macs(x_or_g, W, out_hw):
    """Multiply-adds of (1): N * Ho * Wo * O * C * kH * kW (the same for (2) and (3))."""
    return x_or_g.shape[0] * out_hw[0] * out_hw[1] * W.size


def _fold(relu, mask, shape, dtype):
    """``_gather_relu``'s m_ for an output of NCHW ``shape`` with a ReLU after it (``relu``)
    or the backward of a ReLU before it whose output is ``mask``; None for neither."""
    if mask is None:
        return np.empty((0, 0, 0, 0), dtype) if relu else None
    if relu or mask.shape != tuple(shape):
        raise ValueError(f"mask of shape {mask.shape} for an output of shape {tuple(shape)}"
                         f"{' with relu=True' if relu else ''}: the mask is the output of the "
                         "ReLU before the layer, of the layer's input shape, without relu")
    return _mask_in(mask, dtype)


def _mask_in(mask, dtype):
    """The batch-last ``mask`` in ``dtype`` for the kernels' 1[m > 0]; another dtype is
    compared in its own first, as the twin does (a float64 1e-50 is > 0, its float32 is not)."""
    m_ = batch_last(mask)
    return m_ if m_.dtype == dtype else (m_ > 0).astype(dtype)


def _unfolded(y, relu, mask):
    """The ReLU's forward or backward after the call, by the ReLU layer's own functions
    (its kernel or its twin: the same bits as ``_gather_relu``)."""
    if mask is not None:
        return ew.relu_backward(y, mask)
    return ew.relu(y) if relu else y


def _run_gather(work, rows, out_, args, relu, mask):
    """``_gather`` over ``rows`` into out_ (batch-last); with ``relu`` or ``mask``, the ReLU
    folded into the store by ``_gather_relu`` once that is compiled, else applied after."""
    m_ = _fold(relu, mask, (out_.shape[3],) + out_.shape[:3], out_.dtype)
    out = out_.transpose(3, 0, 1, 2)
    if m_ is not None and _deferred_gather_relu.ready(*args, m_, out_, 0, 0):
        _split(_gather_relu, work, rows, out_, *args, m_)
        return out
    _split(_gather, work, rows, out_, *args)
    return _unfolded(out, relu, mask)


def conv2d_forward(x, W, b, stride, padding, dilation, out_hw, relu=False, mask=None):
    """(1): y (N, O, Ho, Wo) for x (N, C, H, W), W (O, C, kH, kW), b (O,) or None.

    ``relu=True`` returns max(y, 0); ``mask`` (an array of y's shape) returns y 1[mask > 0]
    (for ConvTranspose2d's input gradient when a ReLU precedes it): the bits of
    ``npae.nn.elementwise_kernels``' ``relu`` and ``relu_backward`` applied after the call,
    taken as y is stored once ``_gather_relu`` is compiled (``npae.nn.Sequential``'s fused
    pairs)."""
    if not NUMBA_ENABLED:
        _fold(relu, mask, (x.shape[0], W.shape[0]) + tuple(out_hw), x.dtype)   # its checks
        return _unfolded(conv2d_forward_numpy(x, W, b, stride, padding, dilation, out_hw),
                         relu, mask)
    x_ = batch_last(x)
    W = np.ascontiguousarray(W, dtype=x_.dtype)
    (_, _, H, Wd), (kh, kw) = x.shape, W.shape[2:]
    O, N = W.shape[0], x.shape[0]
    y_ = np.empty((O, out_hw[0], out_hw[1], N), dtype=x_.dtype)
    args = (x_, W, _bias(b, O, x_.dtype),
            *forward_taps(out_hw[0], H, kh, stride[0], padding[0], dilation[0]),
            *forward_taps(out_hw[1], Wd, kw, stride[1], padding[1], dilation[1]))
    return _run_gather(_macs(x, W, out_hw), _gather_rows(O, out_hw[0]), y_, args, relu, mask)


def conv2d_backward_input(g, W, b, stride, padding, dilation, in_hw, relu=False, mask=None):
    """(2): dL/dx (N, C, H, W) for g (N, O, Ho, Wo); plus b (C,) unless None. ``relu`` and
    ``mask`` as in ``conv2d_forward`` (ConvTranspose2d's forward runs this one)."""
    if not NUMBA_ENABLED:
        _fold(relu, mask, (g.shape[0], W.shape[1]) + tuple(in_hw), g.dtype)   # its checks
        return _unfolded(
            conv2d_backward_input_numpy(g, W, b, stride, padding, dilation, in_hw), relu, mask)
    g_ = batch_last(g)
    Wt = np.ascontiguousarray(W.transpose(1, 0, 2, 3), dtype=g_.dtype)   # (C, O, kH, kW)
    (_, _, Ho, Wo), (kh, kw) = g.shape, W.shape[2:]
    C, N = W.shape[1], g.shape[0]
    dx_ = np.empty((C, in_hw[0], in_hw[1], N), dtype=g_.dtype)
    args = (g_, Wt, _bias(b, C, g_.dtype),
            *adjoint_taps(in_hw[0], Ho, kh, stride[0], padding[0], dilation[0]),
            *adjoint_taps(in_hw[1], Wo, kw, stride[1], padding[1], dilation[1]))
    return _run_gather(_macs(g, W, g.shape[2:]), _gather_rows(C, in_hw[0]), dx_, args, relu,
                       mask)


def conv2d_backward_weight(x, g, kernel, stride, padding, dilation):
    """(3): dL/dW (O, C, kH, kW) for x (N, C, H, W) and g (N, O, Ho, Wo)."""
    if not NUMBA_ENABLED:
        return conv2d_backward_weight_numpy(x, g, kernel, stride, padding, dilation)
    x_ = batch_last(x)
    g_ = batch_last(g).astype(x_.dtype, copy=False)
    work = g.shape[0] * g.shape[1] * g.shape[2] * g.shape[3] * x.shape[1] * kernel[0] * kernel[1]
    (H, Wd), (Ho, Wo) = x.shape[2:], g.shape[2:]
    O, C = g.shape[1], x.shape[1]
    dW = np.empty((O, C) + tuple(kernel), dtype=x_.dtype)
    return _split(_conv2d_backward_weight, work, (O + 1) // 2 * ((C + 3) // 4), dW, x_, g_,
                  *offset_taps(Ho, H, kernel[0], stride[0], padding[0], dilation[0]),
                  *offset_taps(Wo, Wd, kernel[1], stride[1], padding[1], dilation[1]))


def bias_gradient(g_):
    """dL/db[o] = sum_{n,p,q} g[n,o,p,q] for a batch-last g_ (O, Ho, Wo, N): the sum over
    the images' positions of each batch lane first (N lanes at a time, one pass over g_),
    then over the N lanes; ``bias_gradient_numpy``'s bits (a deferred kernel)."""
    O, N = g_.shape[0], g_.shape[-1]
    g3 = g_.reshape(O, g_.shape[1] * g_.shape[2], N)   # (not -1: an empty batch has N = 0)
    lanes = np.empty((O, N), g_.dtype)
    # one lane (N = 1): NumPy would sum the contiguous axis pairwise, in another order
    if N < 2 or not _deferred_lanes.ready(g3, lanes, g_.dtype.type(0)):
        return bias_gradient_numpy(g_)
    _lane_sums(g3, lanes, g_.dtype.type(0))
    return lanes.sum(axis=1)


#: the fused pairs' kernel: until it is compiled, the ReLU runs after the plain kernel
_deferred_gather_relu = Deferred(_gather_relu, after=24)
_deferred_lanes = Deferred(_lane_sums, after=64)
