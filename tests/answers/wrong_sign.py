"""Typical mistake: the residual the wrong way round, (x - x_hat) instead of (x_hat - x)."""
import numpy as np

from correct import _sigm, conv2d_grad_input as _conv_dx, conv2d_grad_weight as _conv_dw, \
    maxpool2d_backward as _pool


def linear_ae_grad_U(X, U, V):
    H = X @ V.T
    R = X - H @ U.T                       # should be U V x - x
    return 2.0 * R.T @ H


def linear_ae_grad_V(X, U, V):
    R = X - X @ V.T @ U.T
    return 2.0 * (R @ U).T @ X


def sigmoid_cross_entropy_grad(A_hat, X):
    return (X - _sigm(A_hat)) / X.shape[0]


def linear_squared_error_grad(A_hat, X):
    return (X - A_hat) / X.shape[0]


def tied_weight_grad(X, W, b, c):
    n = X.shape[0]
    h = _sigm(X @ W.T + b)
    g = (X - _sigm(h @ W + c)) / n
    da = (g @ W.T) * h * (1 - h)
    return da.T @ X + h.T @ g


def contractive_grad_b(X, W, b, lam):
    h = _sigm(X @ W.T + b)
    s = h * (1 - h)
    # d(s^2)/da = 2 s^2 (1 - 2h), written here as 2 s^2 (2h - 1)
    return (2 * lam / X.shape[0] * s ** 2 * (2 * h - 1) * (W ** 2).sum(axis=1)).sum(axis=0)


def psd_z_grad(X, Z, D, W):
    return 2.0 / X.shape[0] * ((X - Z @ D.T) @ D + _sigm(X @ W.T) - Z)


def psd_W_grad(X, Z, W):
    h = _sigm(X @ W.T)
    return (2.0 / X.shape[0] * (Z - h) * h * (1 - h)).T @ X


def conv2d_grad_input(x, W, g, stride, padding):
    return _conv_dx(x, W, -g, stride, padding)


def conv2d_grad_weight(x, W, g, stride, padding):
    return _conv_dw(x, W, -g, stride, padding)


def maxpool2d_backward(x, g, kernel_size, stride):
    return _pool(x, -g, kernel_size, stride)
