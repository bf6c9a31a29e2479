"""A right ridge_grad and a tanh_layer_grad with a catalogued mistake (tanh' forgotten)."""
from right import ridge_grad  # noqa: F401


def tanh_layer_grad(X, W, G):
    return G.T @ X
