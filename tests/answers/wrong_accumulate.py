"""Typical mistake: '=' where '+=' belongs, so overlapping windows keep only the last write."""
import numpy as np


def conv2d_grad_input(x, W, g, stride, padding):
    N, C, H, Wd = x.shape
    k = W.shape[2]
    dxp = np.zeros((N, C, H + 2 * padding, Wd + 2 * padding))
    for p in range(g.shape[2]):
        for q in range(g.shape[3]):
            hs, ws = p * stride, q * stride
            dxp[:, :, hs:hs + k, ws:ws + k] = np.einsum("no,ocij->ncij", g[:, :, p, q], W)
    return dxp[:, :, padding:padding + H, padding:padding + Wd]


def maxpool2d_backward(x, g, kernel_size, stride):
    k = kernel_size
    dx = np.zeros_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for p in range(g.shape[2]):
                for q in range(g.shape[3]):
                    win = x[n, c, p * stride:p * stride + k, q * stride:q * stride + k]
                    i, j = np.unravel_index(np.argmax(win), win.shape)
                    dx[n, c, p * stride + i, q * stride + j] = g[n, c, p, q]
    return dx
