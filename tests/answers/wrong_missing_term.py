"""Typical mistake: one of two terms of a gradient left out (the first use/term only)."""
import numpy as np

from correct import _sigm


def tied_weight_grad(X, W, b, c):
    n = X.shape[0]
    h = _sigm(X @ W.T + b)
    g = (_sigm(h @ W + c) - X) / n
    return ((g @ W.T) * h * (1 - h)).T @ X        # the encoder's term only


def contractive_grad_W(X, W, b, lam):
    n = X.shape[0]
    h = _sigm(X @ W.T + b)
    s2 = (h * (1 - h)) ** 2
    return (2 * lam / n * s2 * (1 - 2 * h) * (W ** 2).sum(axis=1)).T @ X   # through h only


def psd_z_grad(X, Z, D, W):
    return 2.0 / X.shape[0] * ((Z @ D.T - X) @ D)          # the decoder term only
