"""Typical mistake: a factor of 2, dropped from d/dx x^2 = 2x or added against a 1/2."""
import numpy as np

from correct import _sigm


def linear_ae_grad_U(X, U, V):
    H = X @ V.T
    return (H @ U.T - X).T @ H           # the slide's f has no 1/2: the 2 stays


def linear_ae_grad_V(X, U, V):
    R = X @ V.T @ U.T - X
    return (R @ U).T @ X


def linear_squared_error_grad(A_hat, X):
    return 2 * (A_hat - X) / X.shape[0]  # the loss has 1/2: the 2 cancels


def contractive_grad_W(X, W, b, lam):
    n = X.shape[0]
    h = _sigm(X @ W.T + b)
    s2 = (h * (1 - h)) ** 2
    da = lam / n * s2 * (1 - 2 * h) * (W ** 2).sum(axis=1)       # 2 dropped everywhere
    return da.T @ X + lam / n * s2.sum(axis=0)[:, None] * W


def contractive_grad_b(X, W, b, lam):
    h = _sigm(X @ W.T + b)
    s2 = (h * (1 - h)) ** 2
    return (lam / X.shape[0] * s2 * (1 - 2 * h) * (W ** 2).sum(axis=1)).sum(axis=0)


def psd_z_grad(X, Z, D, W):
    return 1.0 / X.shape[0] * ((Z @ D.T - X) @ D + Z - _sigm(X @ W.T))


def psd_W_grad(X, Z, W):
    h = _sigm(X @ W.T)
    return (1.0 / X.shape[0] * (h - Z) * h * (1 - h)).T @ X
