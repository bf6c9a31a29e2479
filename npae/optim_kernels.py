"""Adam's update as one Numba pass, beside its plain-NumPy twin (``npae.optim`` uses it).

Written as NumPy expressions the update is ~10 passes over memory with temporaries, and costs
as much as a small layer's matrix product; the kernel is one pass over flat views. The kernel
takes its scalars in the parameters' dtype (``adam_scalars``), so a float32 model is updated
in float32 arithmetic, as NumPy (and PyTorch) do: float64 scalars would make LLVM widen every
element. Kernel and twin do the same operations in the same order and dtype, so their results
are equal to the last bit.
"""
from __future__ import annotations

import numpy as np

from ._numba import NUMBA_ENABLED, Deferred, njit

__all__ = ["adam_update", "adam_update_numpy", "adam_scalars"]


def adam_update_numpy(p, g, m, v, beta1, beta2, step, eps, weight_decay):
    """Adam's update in plain NumPy, in place (the twin of ``_adam_kernel``).

    ``step`` = lr sqrt(1 - beta2^t) / (1 - beta1^t), ``eps`` = eps sqrt(1 - beta2^t).
    """
    if weight_decay:
        g = g + weight_decay * p
    m *= beta1
    m += (1.0 - beta1) * g
    v *= beta2
    v += (1.0 - beta2) * (g * g)
    denom = np.sqrt(v)
    denom += eps
    p -= step * (m / denom)


# error_model="numpy": no Python zero-division check in the loop (the denominator is >= eps
# anyway), which lets LLVM vectorise it; same results
@njit(cache=True, error_model="numpy")
def _adam_kernel(p, g, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, step, eps,
                 weight_decay):
    """``adam_update_numpy`` fused into one loop over flat (1-D) views; same formulas, same
    order of operations, so in the same dtype the results are equal to the last bit."""
    for i in range(p.size):
        gi = g[i]
        if weight_decay != 0.0:
            gi = gi + weight_decay * p[i]
        mi = beta1 * m[i] + one_minus_beta1 * gi
        vi = beta2 * v[i] + one_minus_beta2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        p[i] -= step * (mi / (np.sqrt(vi) + eps))


def adam_scalars(dtype, beta1, beta2, step, eps, weight_decay):
    """The kernel's seven scalars in ``dtype`` (a caller may compute them once per step)."""
    T = np.dtype(dtype).type
    return (T(beta1), T(1.0 - beta1), T(beta2), T(1.0 - beta2), T(step), T(eps),
            T(weight_decay))


#: the twin gives the kernel's bits, so a run's first updates take the twin and the kernel
#: compiles later, in the background (``npae._numba.Deferred``); a model has a few
#: parameter arrays, each updated once per step
_deferred = Deferred(_adam_kernel, after=64)


def adam_update(p, g, m, v, beta1, beta2, step, eps, weight_decay, scalars=None):
    """Adam's update in place: the kernel on C-contiguous arrays of one dtype (with Numba,
    once compiled), else ``adam_update_numpy``, which gives the same bits. ``scalars``:
    ``adam_scalars(p.dtype, ...)`` if already made."""
    if (NUMBA_ENABLED and p.dtype == g.dtype == m.dtype == v.dtype and p.flags.c_contiguous
            and g.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous):
        if scalars is None:
            scalars = adam_scalars(p.dtype, beta1, beta2, step, eps, weight_decay)
        flat = (p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1)) + tuple(scalars)
        if _deferred.ready(*flat):
            _adam_kernel(*flat)
            return
    adam_update_numpy(p, g, m, v, beta1, beta2, step, eps, weight_decay)
