"""Classic mistake: the sigmoid's derivative applied twice."""
from correct import _sigm


def tied_weight_grad(X, W, b, c):
    n = X.shape[0]
    h = _sigm(X @ W.T + b)
    g = (_sigm(h @ W + c) - X) / n
    dh = (g @ W.T) * h * (1 - h)         # already dL/da ...
    da = dh * h * (1 - h)                # ... and once more
    return da.T @ X + h.T @ g


def psd_W_grad(X, Z, W):
    h = _sigm(X @ W.T)
    return (2.0 / X.shape[0] * (h - Z) * (h * (1 - h)) ** 2).T @ X
