"""Tap tables of the convolution kernels (``npae.nn.conv_kernels``): for each output row
(column), which kernel offsets and input rows (columns) it pairs, so the kernels' inner loops
hold no division and no bounds test. Made once per shape in NumPy and cached, not compiled:
one fewer thing for a first fit to wait on."""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["forward_taps", "adjoint_taps", "offset_taps"]

# ------------------------------------------------------------------------------------------

def _tap_grid(n_out, n_in, kernel_size, s, pad, d):
    """h = p s + i d - pad for every output index p (rows) and offset i (columns), and
    whether it falls inside [0, n_in)."""
    h = np.arange(n_out)[:, None] * s + np.arange(kernel_size)[None, :] * d - pad
    return h, (h >= 0) & (h < n_in)


def _table(groups, width):
    """Rows of (first, second) pairs, left-aligned in two (len(groups), width) int64 tables,
    and the count per row; read-only, as they are cached and shared."""
    first = np.zeros((len(groups), width), np.int64)
    second = np.zeros((len(groups), width), np.int64)
    count = np.zeros(len(groups), np.int64)
    for r, (u, v) in enumerate(groups):
        first[r, :len(u)], second[r, :len(v)], count[r] = u, v, len(u)
    for t in (first, second, count):
        t.flags.writeable = False
    return first, second, count


@functools.lru_cache(maxsize=512)
def forward_taps(n_out, n_in, kernel_size, s, pad, d):
    """For each output index p: the offsets i and input indices h = p s + i d - pad in range
    (i increasing)."""
    h, ok = _tap_grid(n_out, n_in, kernel_size, s, pad, d)
    i = np.arange(kernel_size)
    return _table([(i[ok[p]], h[p, ok[p]]) for p in range(n_out)], kernel_size)


@functools.lru_cache(maxsize=512)
def adjoint_taps(n_in, n_out, kernel_size, s, pad, d):
    """For each input index h: the pairs (i, p) with p s + i d - pad = h and 0 <= p < n_out
    (p increasing, then i)."""
    h, ok = _tap_grid(n_out, n_in, kernel_size, s, pad, d)
    p, i = np.nonzero(ok)             # row-major: p increasing, then i
    hv = h[p, i]
    return _table([(i[hv == t], p[hv == t]) for t in range(n_in)], kernel_size)


@functools.lru_cache(maxsize=512)
def offset_taps(n_out, n_in, kernel_size, s, pad, d):
    """For each kernel offset i: the output indices p and input indices h = p s + i d - pad
    that it pairs (those with 0 <= h < n_in; p increasing)."""
    h, ok = _tap_grid(n_out, n_in, kernel_size, s, pad, d)
    p = np.arange(n_out)
    return _table([(p[ok[:, i]], h[ok[:, i], i]) for i in range(kernel_size)], n_out)
