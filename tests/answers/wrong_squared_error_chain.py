"""Classic mistake: the squared-error chain used for a sigmoid output with cross-entropy,
so the sigmoid's derivative x_hat (1 - x_hat) appears where it should have cancelled."""
from correct import _sigm


def sigmoid_cross_entropy_grad(A_hat, X):
    x_hat = _sigm(A_hat)
    return (x_hat - X) * x_hat * (1 - x_hat) / X.shape[0]


def tied_weight_grad(X, W, b, c):
    n = X.shape[0]
    h = _sigm(X @ W.T + b)
    x_hat = _sigm(h @ W + c)
    g = (x_hat - X) * x_hat * (1 - x_hat) / n       # dL/da_hat, with the extra factor
    da = (g @ W.T) * h * (1 - h)
    return da.T @ X + h.T @ g
