"""The contractive penalty's passes (``npae.models.contractive``), each with its NumPy twin.

With the codes h (n, k) of the sigmoid encoder, its weights W (k, d) and c = 2λ/n, the
penalty and the two gradient terms it adds are (the model's docstring derives them)

    (3)  λ P = (λ/n) sum_t sum_j s_tj^2 q_j,    s_tj = h_tj (1 - h_tj),   q_j = sum_k W_jk^2
    (4)  ∂(λP)/∂a_tj  = s_tj^2 (1 - 2 h_tj) c q_j                added into ∇_a, in place
    (6)  ∂(λP)/∂W_jk += (c sum_t s_tj^2) W_jk                    added into ∇_W, in place

Written as NumPy expressions, (3)-(6) make about a dozen passes over (n, k) and (k, d) arrays
and two temporaries the size of W, as much work per mini-batch as a tenth of the plain
autoencoder's step. The kernels read W once: a pass over h gives the column sums of s^2
(they need no q), one pass over W then forms q and adds (6) into ∇_W, and a last pass over h
gives P and adds (4) into ∇_a. They take C-contiguous arrays of one float dtype and compute
in it; anything else goes to the twin, and so does every call when Numba is off
(``npae._numba``). The kernels sum q, P and the column sums in their own order (LLVM's SIMD
lanes, under the 'reassoc' licence), so they agree with the twin to rounding (a test holds
them to it), not to the bit; one process never mixes the two.
"""
from __future__ import annotations

import numpy as np

from .._numba import NUMBA_ENABLED, njit

__all__ = ["jacobian_penalty_add", "jacobian_penalty_add_numpy"]


def jacobian_penalty_add_numpy(h, W, lam, da=None, dW=None):
    """λ P of (3) as a float; with ``da`` (n, k) adds (4) into it, with ``dW`` (k, d) adds
    (6)'s explicit term into it (both in place)."""
    n = h.shape[0]
    s2 = h * (1.0 - h)
    s2 *= s2                                    # s_tj^2
    q = np.einsum("jk,jk->j", W, W)             # q_j
    P = lam * float((s2 @ q).sum()) / n         # (3)
    c = 2.0 * lam / n
    if da is not None:
        d = s2 * (1.0 - 2.0 * h)
        d *= c * q
        da += d                                 # (4)
    if dW is not None:
        dW += (c * s2.sum(axis=0))[:, None] * W  # (6), the term through q
    return P


@njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def _column_sums(h, S, one):
    """S_j = sum_t s_tj^2 (S zero on entry)."""
    for t in range(h.shape[0]):
        ht = h[t]
        for j in range(ht.size):
            s = ht[j] * (one - ht[j])
            S[j] += s * s


@njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def _weight_pass(W, coef, dW, q, zero, need_dW):
    """q_j = sum_k W_jk^2 and, if ``need_dW``, dW_jk += coef_j W_jk: one read of W."""
    for j in range(W.shape[0]):
        row = W[j]
        s = zero
        if need_dW:
            cj, dst = coef[j], dW[j]
            for k in range(row.size):
                w = row[k]
                s += w * w
                dst[k] += cj * w
        else:
            for k in range(row.size):
                s += row[k] * row[k]
        q[j] = s


@njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def _code_pass(h, q, da, c, one, need_da):
    """Returns sum_tj s_tj^2 q_j (float64); da += (4) if ``need_da``. ``one`` and ``c`` come
    in the arrays' dtype: a float64 constant would widen every entry."""
    zero = one - one
    two = one + one
    total = 0.0
    for t in range(h.shape[0]):
        ht = h[t]
        row = zero
        for j in range(ht.size):
            s = ht[j] * (one - ht[j])
            row += (s * s) * q[j]
        total += np.float64(row)
        if need_da:         # a loop of its own: a branch inside would keep LLVM from SIMD
            dt = da[t]
            for j in range(ht.size):
                hj = ht[j]
                s = hj * (one - hj)
                dt[j] += (s * s) * (one - two * hj) * (c * q[j])
    return total


def _kernel_ready(h, W, *outs):
    if not NUMBA_ENABLED or h.ndim != 2 or W.ndim != 2 or h.shape[0] == 0:
        return False
    return all(a.dtype == W.dtype and a.dtype in (np.float32, np.float64)
               and a.flags.c_contiguous for a in (h, W) + tuple(o for o in outs if o is not None))


def jacobian_penalty_add(h, W, lam, da=None, dW=None):
    """``jacobian_penalty_add_numpy`` in three passes where the kernels can run."""
    if not _kernel_ready(h, W, da, dW):
        return jacobian_penalty_add_numpy(h, W, lam, da, dW)
    T = W.dtype.type
    n = h.shape[0]
    c = T(2.0 * lam / n)
    q = np.empty(W.shape[0], W.dtype)
    need_dW = dW is not None
    coef = np.zeros(W.shape[0], W.dtype)
    if need_dW:
        _column_sums(h, coef, T(1))
        coef *= c                                # c sum_t s_tj^2, (6)'s factor
    _weight_pass(W, coef, dW if need_dW else W, q, T(0), need_dW)
    need_da = da is not None
    total = _code_pass(h, q, da if need_da else h, c, T(1), need_da)
    return lam * total / n
