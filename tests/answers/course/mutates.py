"""Right gradients, but each answer overwrites one of its inputs on the way."""
import numpy as np


def ridge_grad(X, y, w, lam):
    r = X @ w - y
    y[...] = 0.0                             # "y is not needed any more"
    return 2 * X.T @ r / len(r) + 2 * lam * w


def tanh_layer_grad(X, W, G):
    G *= 1 - np.tanh(X @ W.T) ** 2           # in place: the caller's G changes
    return G.T @ X
