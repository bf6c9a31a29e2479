"""Typical mistake: the other one of two terms left out (the second use/term only)."""
import numpy as np

from correct import _sigm


def tied_weight_grad(X, W, b, c):
    n = X.shape[0]
    h = _sigm(X @ W.T + b)
    g = (_sigm(h @ W + c) - X) / n
    return h.T @ g                                 # the decoder's term only (as if untied)


def contractive_grad_W(X, W, b, lam):
    n = X.shape[0]
    h = _sigm(X @ W.T + b)
    s2 = (h * (1 - h)) ** 2
    return 2 * lam / n * s2.sum(axis=0)[:, None] * W      # W_jk's direct role only


def psd_z_grad(X, Z, D, W):
    return 2.0 / X.shape[0] * (Z - _sigm(X @ W.T))         # the encoder term only
