"""ridge_grad never returns; tanh_layer_grad is right (and must still pass after it)."""
from right import tanh_layer_grad  # noqa: F401


def ridge_grad(X, y, w, lam):
    while True:
        pass
