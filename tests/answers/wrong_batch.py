"""Typical mistake: the batch size, a mean where the objective sums or a sum where it averages."""
import numpy as np

import correct
from correct import _sigm


def linear_ae_grad_U(X, U, V):
    return correct.linear_ae_grad_U(X, U, V) / X.shape[0]   # the slide's f sums over samples


def linear_ae_grad_V(X, U, V):
    return correct.linear_ae_grad_V(X, U, V) / X.shape[0]


def sigmoid_cross_entropy_grad(A_hat, X):
    return _sigm(A_hat) - X                 # the per-example answer: L averages over rows


def linear_squared_error_grad(A_hat, X):
    return A_hat - X


def tied_weight_grad(X, W, b, c):
    return correct.tied_weight_grad(X, W, b, c) * X.shape[0]


def contractive_grad_W(X, W, b, lam):
    return correct.contractive_grad_W(X, W, b, lam) * X.shape[0]


def contractive_grad_b(X, W, b, lam):
    return correct.contractive_grad_b(X, W, b, lam) * X.shape[0]


def psd_z_grad(X, Z, D, W):
    return 2.0 * ((Z @ D.T - X) @ D + Z - _sigm(X @ W.T))


def psd_W_grad(X, Z, W):
    return correct.psd_W_grad(X, Z, W) * X.shape[0]


def conv2d_grad_input(x, W, g, stride, padding):
    return correct.conv2d_grad_input(x, W, g, stride, padding) / x.shape[0]


def conv2d_grad_weight(x, W, g, stride, padding):
    return correct.conv2d_grad_weight(x, W, g, stride, padding) / x.shape[0]


def maxpool2d_backward(x, g, kernel_size, stride):
    return correct.maxpool2d_backward(x, g, kernel_size, stride) / x.shape[0]
