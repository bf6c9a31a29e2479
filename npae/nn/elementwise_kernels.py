"""Element-wise hot loops of the dense autoencoders: Numba kernels, each with a NumPy twin.

A training step of the lecture's tied autoencoder 784-256 (batch 128) does five matrix
products and a handful of element-wise maps over the batch. Written as NumPy expressions,
each map is several passes over memory with a temporary per operator: the sigmoid of (4)
plus the cross-entropy (5) and its gradient (7) take 16 passes. Here each map is one pass,
except for the exponential, which stays NumPy's: its SIMD ``exp`` beats the scalar libm call
a Numba loop makes (no SVML here), so the kernels take e = exp(-|a|) as an input.

All three maps rest on the same identity (see ``npae.nn.activations.sigmoid``):

    (1)  sigm(a) = exp(min(a, 0)) / (1 + exp(-|a|)) = (e if a < 0 else 1) / (1 + e)
    (2)  softplus(a) = log(1 + exp(a)) = max(a, 0) + log(1 + e)

and for the cross-entropy from the logits â (rows = examples, n of them)

    (3)  L = (1/n) sum [softplus(â) - x â] = (1/n) sum [max(â, 0) - x â + log(1 + e)]
    (4)  ∇_â L = (sigm(â) - x) / n

The sum of logs in (3) is taken as the log of products, one log per ``_chunk`` entries:
1 + e lies in [1, 2], so a product of 64 factors is at most 2^64 (float32 reaches 2^128) and
of 512 at most 2^512 (float64: 2^1024); none can underflow. That turns 100,352 logs into
1,568, the rest being multiplications LLVM vectorises.

Subnormal results are flushed to zero, by the kernels and their twins alike: every value
below the dtype's smallest normal number (1.2e-38 in float32, 2.2e-308 in float64) that
(1), its derivative or (4) would return becomes 0.0. A sigmoid unit driven below a = -87
(float32) gives such values late in training, and each one makes every product it enters
take a slow microcode path on x86, so a few of them slow the whole step down (PyTorch has
the same hazard; it flushes only on ``torch.set_flush_denormal(True)``, which sets a
processor flag for the whole process -- npae would rather change numbers than a flag its
user did not ask about). The change is below 1.2e-38 in absolute value, far under the
rounding of any quantity it meets.

Each kernel does the twin's operations in the same order and dtype, so x̂, h and gradients
are equal to the last bit; only the loss value's summation order differs (~1e-7 relative in
float32, ~1e-15 in float64). The kernels take flat views of C-contiguous arrays of one float
dtype; anything else (views with strides, mixed dtypes) goes to the twin, and so does
every call when Numba is off (``npae._numba``).

``python benchmarks/bench_autoencoder.py --kernels`` times each kernel next to its twin at
the benchmark's sizes.

The convolutional autoencoder's ReLU and Tanh layers use the last four kernels (ReLU's
forward and backward, Tanh's forward in float32 and its backward): NumPy's ``maximum``
against a scalar and its multiplication by a boolean mask take a slow path, several times a
single pass over memory, and its float32 ``tanh`` is not vectorised here.
Those arrays are NCHW views of batch-last buffers (``npae.nn.conv_kernels``), not C-ordered,
so these kernels take C-ordered arrays and batch-last views alike, every argument laid out as
the first. Their twins give the same bits, so they run deferred
(``npae._numba.Deferred``): a short first fit never waits for them to compile. A long array
is cut into one contiguous range per thread (``_run``), each the serial kernel's call, so the
bits do not depend on the number of threads either.
"""
from __future__ import annotations

import math

import numpy as np

from .._numba import NUMBA_ENABLED, Deferred, get_num_threads, njit, prange

__all__ = ["sigmoid", "sigmoid_numpy", "sigmoid_backward", "sigmoid_backward_numpy",
           "cross_entropy_logits", "cross_entropy_logits_numpy",
           "relu", "relu_numpy", "relu_backward", "relu_backward_numpy",
           "tanh", "tanh_numpy", "tanh_backward", "tanh_backward_numpy"]


def _flat(*arrays):
    """1-D views of the arrays if the kernels can take them (Numba on, same float dtype,
    C order); None sends the call to the twin."""
    if not NUMBA_ENABLED:
        return None
    dtype = arrays[0].dtype
    if dtype not in (np.float32, np.float64) or arrays[0].size == 0:
        return None
    for a in arrays:
        if a.dtype != dtype or not a.flags.c_contiguous or a.shape != arrays[0].shape:
            return None
    return [a.reshape(-1) for a in arrays]


@njit(cache=True)
def _minus_abs_kernel(a, out):
    for i in range(a.size):
        out[i] = -abs(a[i])


def _exp_minus_abs(a):
    """e = exp(-|a|) in (0, 1] for a C-contiguous float32/64 ``a``: a new array, two passes."""
    e = np.empty_like(a)
    _minus_abs_kernel(a.reshape(-1), e.reshape(-1))
    np.exp(e, out=e)
    return e


def _flush_subnormal(v):
    """v with its subnormal entries (0 < |v| < smallest normal) set to 0, in place."""
    v[np.abs(v) < np.finfo(v.dtype).tiny] = 0.0
    return v


# -- (1) the sigmoid ---------------------------------------------------------------------------

def sigmoid_numpy(a):
    """(1) in NumPy: exp(min(a, 0)) / (1 + exp(-|a|)) for a float array ``a``; a new array,
    subnormal values flushed to 0."""
    num = np.minimum(a, 0.0, dtype=a.dtype)
    np.exp(num, out=num)                       # exp(min(a, 0)) in (0, 1]
    den = np.abs(a)
    np.negative(den, out=den)
    np.exp(den, out=den)                       # exp(-|a|) in (0, 1]
    den += 1.0
    num /= den
    return _flush_subnormal(num)


@njit(cache=True, error_model="numpy")
def _sigmoid_kernel(a, e, one, tiny):
    """e <- (e if a < 0 else 1) / (1 + e), e = exp(-|a|) on entry: (1) in place."""
    zero = one - one
    for i in range(a.size):
        ei = e[i]
        h = (ei if a[i] < zero else one) / (one + ei)
        e[i] = zero if h < tiny else h     # NaN stays NaN (a comparison with NaN is false)


def sigmoid(a):
    """(1) for a float array: the kernel on contiguous arrays, else ``sigmoid_numpy``."""
    if _flat(a) is None:
        return sigmoid_numpy(a)
    e = _exp_minus_abs(a)  # C-contiguous like a: NumPy keeps the input's layout
    _sigmoid_kernel(a.reshape(-1), e.reshape(-1), *_one_tiny(a.dtype))
    return e


def _one_tiny(dtype):
    """1 and the smallest normal number, as scalars of ``dtype`` (the kernels' constants)."""
    return dtype.type(1), dtype.type(np.finfo(dtype).tiny)


# -- sigm'(a) = h (1 - h) ----------------------------------------------------------------------

def sigmoid_backward_numpy(dout, h):
    """dL/da = dout * h * (1 - h), with h = sigm(a) cached by the forward pass (subnormal
    values flushed to 0)."""
    return _flush_subnormal(dout * h * (1.0 - h))


@njit(cache=True, error_model="numpy")
def _sigmoid_backward_kernel(dout, h, out, one, tiny):
    zero = one - one
    for i in range(h.size):
        hi = h[i]
        v = dout[i] * hi * (one - hi)
        out[i] = zero if abs(v) < tiny else v


def sigmoid_backward(dout, h):
    """``sigmoid_backward_numpy`` in one pass (no temporaries) where the kernel can run."""
    out = np.empty_like(h)
    flat = _flat(h, dout, out)
    if flat is None:
        return sigmoid_backward_numpy(dout, h)
    _sigmoid_backward_kernel(flat[1], flat[0], flat[2], *_one_tiny(h.dtype))
    return out


# -- (3), (4): cross-entropy from the logits ---------------------------------------------------

def cross_entropy_logits_numpy(a_hat, X, need_grad=True):
    """(3) and (4) in NumPy: returns (L, ∇_â L or None); the twin of the fused kernel.

    x̂ = sigm(â) is computed once and shared; the softplus of (3) is taken from it,

        softplus(â) = max(â, 0) + log(1 + exp(-|â|)) = max(â, 0) - log max(x̂, 1 - x̂),

    stable because max(x̂, 1 - x̂) lies in [1/2, 1].
    """
    n = a_hat.shape[0]
    x_hat = sigmoid_numpy(a_hat)
    s = np.maximum(x_hat, 1.0 - x_hat)
    np.log(s, out=s)
    # max(â, 0) - x â per entry, as the kernel sums it: two separate sums would cancel
    # catastrophically for large |â| (and overflow to inf - inf where the kernel does not)
    L = (float((np.maximum(a_hat, 0.0) - X * a_hat).sum()) - float(s.sum())) / n
    if not need_grad:
        return L, None
    x_hat -= X                                     # (4): x̂ - x, mean over the batch
    x_hat *= 1.0 / n
    return L, _flush_subnormal(x_hat)


def _chunk(dtype):
    """Factors per product in (3): 2^chunk must stay far below the dtype's largest value."""
    return 64 if dtype == np.float32 else 512


# reassoc: lets LLVM keep several partial sums/products in SIMD lanes (the sums' order is the
# only thing that differs from the twin; the gradient entries are computed exactly as there)
@njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def _cross_entropy_logits_kernel(a, x, e, g, inv_n, need_grad, chunk, zero, one, tiny):
    """Returns n L (float64); writes (4) into g if ``need_grad``. e = exp(-|â|) on entry."""
    size = a.size
    total = 0.0
    for start in range(0, size, chunk):
        # slices, so the inner index runs from 0 and LLVM sees it non-negative and loads
        # contiguously (indexing a[start + j] made it gather and scatter)
        stop = min(start + chunk, size)
        ac, xc, ec, gc = a[start:stop], x[start:stop], e[start:stop], g[start:stop]
        s = zero
        prod = one
        for j in range(ac.size):
            aj = ac[j]
            s += max(aj, zero) - xc[j] * aj
            prod *= one + ec[j]
        total += np.float64(s) + math.log(np.float64(prod))
        # the stores in a loop of their own: LLVM guards a loop that stores with a run-time
        # check of how far apart the arrays lie and takes a scalar path when they are close
        # (small arrays, neighbours in memory), which would change the sums' order with the
        # addresses malloc happened to give; the chunk is in L1 cache for this second pass
        if need_grad:
            for j in range(ac.size):
                aj, ej = ac[j], ec[j]
                x_hat = (ej if aj < zero else one) / (one + ej)
                x_hat = zero if x_hat < tiny else x_hat
                gj = (x_hat - xc[j]) * inv_n
                gc[j] = zero if abs(gj) < tiny else gj
    return total


def cross_entropy_logits(a_hat, X, need_grad=True):
    """(3) and (4) fused: (L, ∇_â L or None), one pass after NumPy's exp.

    Takes the model's arrays as they are (the model validates its input once, at its entry
    points; the training loop would otherwise repeat the checks on every mini-batch).
    """
    if _flat(a_hat, X) is None:
        return cross_entropy_logits_numpy(a_hat, X, need_grad)
    e = _exp_minus_abs(a_hat)
    g = np.empty_like(a_hat) if need_grad else e  # (not written to without need_grad)
    flat = [a.reshape(-1) for a in (a_hat, X, e, g)]
    T = a_hat.dtype.type
    n = a_hat.shape[0]
    nL = _cross_entropy_logits_kernel(*flat, T(1.0 / n), need_grad, _chunk(a_hat.dtype),
                                      T(0), *_one_tiny(a_hat.dtype))
    return nL / n, (g if need_grad else None)


# -- ReLU and Tanh: y = max(a, 0), dL/da = dout 1[y > 0], dL/da = dout (1 - y^2) -----------------

def _flat_alike(*arrays):
    """``_flat``, or, for the conv layers' batch-last views ((N, C, H, W) over (C, H, W, N)
    memory, all laid out alike), 1-D views in that memory order; None sends the call to the
    twin."""
    if arrays[0].ndim == 4 and not arrays[0].flags.c_contiguous:   # the conv layout first
        if all(a.ndim == 4 for a in arrays):
            return _flat(*(a.transpose(1, 2, 3, 0) for a in arrays))
        return None
    return _flat(*arrays)


def relu_numpy(a):
    """y = max(a, 0) for a float array: NaN stays NaN, -0.0 and -inf give +0.0."""
    return np.maximum(a, 0.0, dtype=a.dtype)


@njit(cache=True, nogil=True)
def _relu_kernel(a, y, zero):
    for i in range(a.size):
        ai = a[i]
        # np.maximum's bits: a NaN propagates, both zeros give +0.0
        y[i] = ai if (ai > zero or ai != ai) else zero


def relu(a):
    """``relu_numpy`` in one pass; the output has ``a``'s memory order."""
    y = np.empty_like(a)
    flat = _flat_alike(a, y)
    if flat is None or not _deferred_relu.ready(*flat, a.dtype.type(0)):
        return relu_numpy(a)
    _run(_relu_kernel, flat, a.dtype.type(0))
    return y


def relu_backward_numpy(dout, y):
    """dL/da = dout * 1[y > 0] (y = max(a, 0) > 0 exactly where a > 0; the derivative at
    a = 0 is taken as 0)."""
    return dout * (y > 0)


@njit(cache=True, nogil=True)
def _relu_backward_kernel(dout, y, out, zero, one):
    for i in range(y.size):
        # the twin's product by the mask, NaN and signed zeros included (inf * 0 is NaN)
        out[i] = dout[i] * (one if y[i] > zero else zero)


def relu_backward(dout, y):
    """``relu_backward_numpy`` in one pass where the kernel can run."""
    out = np.empty_like(y)
    flat = _flat_alike(dout, y, out)
    T = y.dtype.type
    if flat is None or not _deferred_relu_backward.ready(*flat, T(0), T(1)):
        return relu_backward_numpy(dout, y)
    _run(_relu_backward_kernel, flat, T(0), T(1))
    return out


# (5) tanh in float32, with 2|x| = k ln 2 + r (k an integer, |r| <= ln 2 / 2):
#
#     tanh|x| = m / (m + 2),   m = exp(2|x|) - 1 = 2^k q(r) + (2^k - 1),   q(r) = exp(r) - 1,
#
# q by its Taylor series to r^8 / 8! (relative error < 1e-9 for |r| <= 0.35) and 2^k by
# doubling (exact); |x| is clamped at 9.1, past which tanh rounds to 1 in float32. Below
# |x| = 0.35 the rounding of m / (m + 2) adds up to 3 ulps, so there (c: |x| clamped)
#
#     tanh|x| = c + c s P(s),   s = c^2,   P cubic, fitted (relative error 1.2e-9),
#
# and the sign is x's (copysign: tanh(-0.0) = -0.0); a NaN passes. Every step in float32,
# as the twin does it: within 1 ulp of the correctly rounded tanh, as NumPy's own.
_F = np.float32
_INV_LN2, _LN2_HI, _LN2_LO = _F(1.442695), _F(0.693359375), _F(-2.12194440e-4)  # k LN2_HI exact
_Q = tuple(_F(1.0 / np.prod(np.arange(1, n + 1))) for n in range(1, 9))    # 1/1!, ..., 1/8!
_P = (_F(-0.33333322405815125), _F(0.13332480192184448), _F(-0.053743574768304825),
      _F(0.019519763067364693))
_CLAMP, _SMALL = _F(9.1), _F(0.35)


def tanh_numpy(a):
    """tanh(a): NumPy's for float64; for float32, (5) above in NumPy, the kernel's twin."""
    if a.dtype != np.float32:
        return np.tanh(a)
    one, two = _F(1), _F(2)
    ax = np.abs(a)
    c = np.where(ax < _CLAMP, ax, _CLAMP)   # |x| clamped (and a NaN made finite)
    u = two * c
    k = np.floor(u * _INV_LN2 + _F(0.5))
    r = (u - k * _LN2_HI) - k * _LN2_LO
    q = r * (_Q[0] + r * (_Q[1] + r * (_Q[2] + r * (_Q[3] + r * (_Q[4] + r * (_Q[5] + r * (
        _Q[6] + r * _Q[7])))))))
    f = np.ldexp(one, k.astype(np.int32))
    m = f * q + (f - one)
    s = c * c
    small = c + c * (s * (_P[0] + s * (_P[1] + s * (_P[2] + s * _P[3]))))
    t = np.copysign(np.where(c < _SMALL, small, m / (m + two)), a)
    return np.where(a != a, a, t)


@njit(cache=True, nogil=True, error_model="numpy")
def _tanh32_kernel(a, y):
    one, two = _F(1), _F(2)
    for i in range(a.size):
        x = a[i]
        ax = abs(x)
        c = ax if ax < _CLAMP else _CLAMP
        u = two * c
        k = np.floor(u * _INV_LN2 + _F(0.5))
        r = (u - k * _LN2_HI) - k * _LN2_LO
        q = r * (_Q[0] + r * (_Q[1] + r * (_Q[2] + r * (_Q[3] + r * (_Q[4] + r * (_Q[5] + r * (
            _Q[6] + r * _Q[7])))))))
        # f = 2^k for k in [0, 26], by selects on k's bits (LLVM vectorises them; not ldexp)
        b = k >= _F(16)
        f = _F(65536) if b else one
        k = k - _F(16) if b else k
        b = k >= _F(8)
        f = f * _F(256) if b else f
        k = k - _F(8) if b else k
        b = k >= _F(4)
        f = f * _F(16) if b else f
        k = k - _F(4) if b else k
        b = k >= two
        f = f * _F(4) if b else f
        k = k - two if b else k
        f = f * two if k >= one else f
        m = f * q + (f - one)
        s = c * c
        small = c + c * (s * (_P[0] + s * (_P[1] + s * (_P[2] + s * _P[3]))))
        t = math.copysign(small if c < _SMALL else m / (m + two), x)
        y[i] = x if x != x else t


def tanh(a):
    """tanh(a) for a float array: (5) in one Numba pass for float32 (twin ``tanh_numpy``),
    NumPy's for float64; the output has ``a``'s memory order."""
    if a.dtype != np.float32:
        return tanh_numpy(a)
    y = np.empty_like(a)
    flat = _flat_alike(a, y)
    if flat is None or not _deferred_tanh.ready(*flat):
        return tanh_numpy(a)
    _run(_tanh32_kernel, flat)
    return y


def tanh_backward_numpy(dout, y):
    """dL/da = dout (1 - y^2), with y = tanh(a) cached by the forward pass."""
    return dout * (1.0 - y * y)


@njit(cache=True, nogil=True)
def _tanh_backward_kernel(dout, y, out, one):
    for i in range(y.size):
        yi = y[i]
        out[i] = dout[i] * (one - yi * yi)


def tanh_backward(dout, y):
    """``tanh_backward_numpy`` in one pass (no temporaries) where the kernel can run."""
    out = np.empty_like(y)
    flat = _flat_alike(dout, y, out)
    if flat is None or not _deferred_tanh_backward.ready(*flat, y.dtype.type(1)):
        return tanh_backward_numpy(dout, y)
    _run(_tanh_backward_kernel, flat, y.dtype.type(1))
    return out


# one batch of the conv autoencoder calls ReLU's four times, Tanh's once: the compiles start
# after some 16 batches, past a first fit's few (while it compiles the kernels it cannot do
# without, a background compile would hold Numba's compiler lock and make it wait)
_deferred_relu = Deferred(_relu_kernel, after=64)
_deferred_relu_backward = Deferred(_relu_backward_kernel, after=64)
_deferred_tanh_backward = Deferred(_tanh_backward_kernel, after=16)
_deferred_tanh = Deferred(_tanh32_kernel, after=16)


# -- the four maps over two or more threads ----------------------------------------------------
# Each wrapper gives every thread one contiguous range of the flat arrays and runs the serial
# kernel on it: an entry's arithmetic does not depend on the range or the thread, so the
# bits are the serial kernel's (and the twin's). Compiled in the background like the kernels
# (``parallel=True`` compiles take longer), after a first fit's batches.

@njit(cache=True, parallel=True)
def _relu_parallel(a, y, zero, cuts):
    for t in prange(cuts.shape[0] - 1):
        _relu_kernel(a[cuts[t]:cuts[t + 1]], y[cuts[t]:cuts[t + 1]], zero)


@njit(cache=True, parallel=True)
def _relu_backward_parallel(dout, y, out, zero, one, cuts):
    for t in prange(cuts.shape[0] - 1):
        r = slice(cuts[t], cuts[t + 1])
        _relu_backward_kernel(dout[r], y[r], out[r], zero, one)


@njit(cache=True, parallel=True)
def _tanh32_parallel(a, y, cuts):
    for t in prange(cuts.shape[0] - 1):
        _tanh32_kernel(a[cuts[t]:cuts[t + 1]], y[cuts[t]:cuts[t + 1]])


@njit(cache=True, parallel=True)
def _tanh_backward_parallel(dout, y, out, one, cuts):
    for t in prange(cuts.shape[0] - 1):
        r = slice(cuts[t], cuts[t + 1])
        _tanh_backward_kernel(dout[r], y[r], out[r], one)


#: serial kernel -> (its parallel wrapper, the wrapper's deferred compile, the fewest entries
#: per thread worth a second thread: waking one costs a few microseconds, about what ReLU
#: takes for 32k entries and Tanh for 8k)
_PARALLEL = {_relu_kernel: (_relu_parallel, Deferred(_relu_parallel, after=256), 1 << 15),
             _relu_backward_kernel: (_relu_backward_parallel,
                                     Deferred(_relu_backward_parallel, after=256), 1 << 15),
             _tanh32_kernel: (_tanh32_parallel, Deferred(_tanh32_parallel, after=64), 1 << 13),
             _tanh_backward_kernel: (_tanh_backward_parallel,
                                     Deferred(_tanh_backward_parallel, after=64), 1 << 15)}


def _run(kernel, flat, *scalars):
    """kernel(*flat, *scalars) on the 1-D arrays ``flat``; over several threads (each a
    contiguous range, cut at multiples of 64 entries) when they are long enough."""
    parallel, deferred, least = _PARALLEL[kernel]
    n = flat[0].size
    threads = min(get_num_threads(), n // least) if n >= 2 * least else 1
    if threads > 1:
        cuts = np.array([n * t // threads // 64 * 64 for t in range(threads)] + [n],
                        dtype=np.int64)
        if deferred.ready(*flat, *scalars, cuts):
            parallel(*flat, *scalars, cuts)
            return
    kernel(*flat, *scalars)
