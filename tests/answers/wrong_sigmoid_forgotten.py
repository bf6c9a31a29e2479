"""Classic mistake: the sigmoid's derivative forgotten in the chain rule."""
from correct import _sigm


def sigmoid_cross_entropy_grad(A_hat, X):
    x_hat = _sigm(A_hat)                 # stops at dL/dx_hat
    return (x_hat - X) / (x_hat * (1 - x_hat)) / X.shape[0]


def tied_weight_grad(X, W, b, c):
    n = X.shape[0]
    h = _sigm(X @ W.T + b)
    g = (_sigm(h @ W + c) - X) / n
    da = g @ W.T                         # dL/dh, not dL/da: h (1 - h) forgotten
    return da.T @ X + h.T @ g


def psd_W_grad(X, Z, W):
    h = _sigm(X @ W.T)
    return (2.0 / X.shape[0] * (h - Z)).T @ X
