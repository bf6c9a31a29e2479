"""Typical mistake: a transpose, x^T g where g^T x belongs (rows are samples)."""
import numpy as np

from correct import _sigm


def linear_ae_grad_U(X, U, V):
    H = X @ V.T
    return 2.0 * H.T @ (H @ U.T - X)      # (k, d): the transpose of df/dU


def linear_ae_grad_V(X, U, V):
    R = X @ V.T @ U.T - X
    return 2.0 * X.T @ (R @ U)


def sigmoid_cross_entropy_grad(A_hat, X):
    return ((_sigm(A_hat) - X) / X.shape[0]).T


def psd_W_grad(X, Z, W):
    h = _sigm(X @ W.T)
    return X.T @ (2.0 / X.shape[0] * (h - Z) * h * (1 - h))


def conv2d_grad_weight(x, W, g, stride, padding):
    import correct
    return correct.conv2d_grad_weight(x, W, g, stride, padding).transpose(1, 0, 2, 3)
