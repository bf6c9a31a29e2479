"""Correct answers to every npae exercise, derived by hand (no npae imports).

The wrong_*.py fixtures beside this file change one thing each, the typical mistakes.
"""
import numpy as np


def _sigm(a):
    return 1.0 / (1.0 + np.exp(-a))


def linear_ae_grad_U(X, U, V):
    # f = sum_i ||U V x_i - x_i||^2 ; df/dU = 2 sum_i r_i (V x_i)^T
    H = X @ V.T
    R = H @ U.T - X
    return 2.0 * R.T @ H


def linear_ae_grad_V(X, U, V):
    # df/dV = 2 sum_i U^T r_i x_i^T
    R = X @ V.T @ U.T - X
    return 2.0 * (R @ U).T @ X


def sigmoid_cross_entropy_grad(A_hat, X):
    return (_sigm(A_hat) - X) / X.shape[0]


def linear_squared_error_grad(A_hat, X):
    return (A_hat - X) / X.shape[0]


def tied_weight_grad(X, W, b, c):
    n = X.shape[0]
    h = _sigm(X @ W.T + b)
    x_hat = _sigm(h @ W + c)
    g = (x_hat - X) / n                  # dL/da_hat
    da = (g @ W.T) * h * (1 - h)         # dL/da
    return da.T @ X + h.T @ g            # encoder term + decoder term


def _cae(X, W, b, lam):
    n = X.shape[0]
    h = _sigm(X @ W.T + b)
    s = h * (1 - h)
    q = (W ** 2).sum(axis=1)
    da = 2 * lam / n * s ** 2 * (1 - 2 * h) * q
    return da, 2 * lam / n * (s ** 2).sum(axis=0)[:, None] * W


def contractive_grad_W(X, W, b, lam):
    da, direct = _cae(X, W, b, lam)
    return da.T @ X + direct


def contractive_grad_b(X, W, b, lam):
    return _cae(X, W, b, lam)[0].sum(axis=0)


def psd_z_grad(X, Z, D, W):
    n = X.shape[0]
    return 2.0 / n * ((Z @ D.T - X) @ D + Z - _sigm(X @ W.T))


def psd_W_grad(X, Z, W):
    n = X.shape[0]
    h = _sigm(X @ W.T)
    return (2.0 / n * (h - Z) * h * (1 - h)).T @ X


def _pad(x, p):
    return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))


def conv2d_grad_input(x, W, g, stride, padding):
    N, C, H, Wd = x.shape
    O, _, k, _ = W.shape
    dxp = np.zeros((N, C, H + 2 * padding, Wd + 2 * padding))
    for p in range(g.shape[2]):
        for q in range(g.shape[3]):
            hs, ws = p * stride, q * stride
            dxp[:, :, hs:hs + k, ws:ws + k] += np.einsum("no,ocij->ncij", g[:, :, p, q], W)
    return dxp[:, :, padding:padding + H, padding:padding + Wd]


def conv2d_grad_weight(x, W, g, stride, padding):
    xp = _pad(x, padding)
    k = W.shape[2]
    dW = np.zeros_like(W)
    for p in range(g.shape[2]):
        for q in range(g.shape[3]):
            hs, ws = p * stride, q * stride
            dW += np.einsum("no,ncij->ocij", g[:, :, p, q], xp[:, :, hs:hs + k, ws:ws + k])
    return dW


def maxpool2d_backward(x, g, kernel_size, stride):
    k = kernel_size
    dx = np.zeros_like(x)
    N, C = x.shape[:2]
    for n in range(N):
        for c in range(C):
            for p in range(g.shape[2]):
                for q in range(g.shape[3]):
                    win = x[n, c, p * stride:p * stride + k, q * stride:q * stride + k]
                    i, j = np.unravel_index(np.argmax(win), win.shape)
                    dx[n, c, p * stride + i, q * stride + j] += g[n, c, p, q]
    return dx


# -- beyond the lecture: the sparse autoencoder's KL penalty, the VAE's KL and
#    reparameterization (npae.exercises.beyond)

def sparse_kl_grad_W(X, W, b, rho, beta):
    n = X.shape[0]
    h = 1.0 / (1.0 + np.exp(-(X @ W.T + b)))
    rho_hat = h.mean(axis=0)
    # the same sparsity delta for every sample, 1/n from d rho_hat / d h
    dh = np.tile(beta * (-rho / rho_hat + (1 - rho) / (1 - rho_hat)) / n, (n, 1))
    return (dh * h * (1 - h)).T @ X


def vae_kl_grad_mu(mu, logvar):
    return mu / mu.shape[0]


def vae_kl_grad_logvar(mu, logvar):
    return 0.5 * (np.exp(logvar) - 1.0) / mu.shape[0]


def vae_reparam_grad_mu(X, mu, logvar, eps, V):
    z = mu + np.exp(0.5 * logvar) * eps
    return (z @ V.T - X) @ V / X.shape[0]


def vae_reparam_grad_logvar(X, mu, logvar, eps, V):
    z = mu + np.exp(0.5 * logvar) * eps
    dz = (z @ V.T - X) @ V / X.shape[0]
    return dz * eps * 0.5 * np.exp(0.5 * logvar)
