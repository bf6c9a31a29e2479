"""Numerical gradients and gradient checks (to be extended: see issue 2, item 5)."""
from __future__ import annotations

import numpy as np

__all__ = ["numerical_gradient"]


def numerical_gradient(f, x, eps=None, method="central"):
    """Central differences of a scalar function ``f`` at ``x`` (float64), any shape.

    (f(x + h e_i) - f(x - h e_i)) / 2h with a relative step h = 1e-6 * max(1, |x_i|);
    the truncation error is O(h^2), the rounding error O(eps_mach / h): about 1e-9 overall.
    ``x`` is perturbed in place and restored, so ``f`` may close over it.
    """
    x = np.asarray(x)
    grad = np.zeros(x.shape, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = float(x[i])
        h = (1e-6 if eps is None else eps) * max(1.0, abs(old))
        x[i] = old + h
        fp = float(f(x))
        x[i] = old - h
        fm = float(f(x))
        x[i] = old
        grad[i] = (fp - fm) / (2 * h)
    return grad
