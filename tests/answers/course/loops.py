"""tanh_layer_grad never returns; ridge_grad is right (and must still pass)."""
from right import ridge_grad  # noqa: F401


def tanh_layer_grad(X, W, G):
    while True:
        pass
