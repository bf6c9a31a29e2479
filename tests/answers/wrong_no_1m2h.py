"""Classic mistake: the factor (1 - 2h) of d/da [h (1 - h)] forgotten in the contractive
gradient."""
from correct import _sigm


def _cae(X, W, b, lam):
    n = X.shape[0]
    h = _sigm(X @ W.T + b)
    s = h * (1 - h)
    q = (W ** 2).sum(axis=1)
    da = 2 * lam / n * s ** 2 * q        # (1 - 2h) missing
    return da, 2 * lam / n * (s ** 2).sum(axis=0)[:, None] * W


def contractive_grad_W(X, W, b, lam):
    da, direct = _cae(X, W, b, lam)
    return da.T @ X + direct


def contractive_grad_b(X, W, b, lam):
    return _cae(X, W, b, lam)[0].sum(axis=0)
