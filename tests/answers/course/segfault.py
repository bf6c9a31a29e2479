"""ridge_grad dereferences a null pointer; tanh_layer_grad is right."""
import ctypes

from right import tanh_layer_grad  # noqa: F401


def ridge_grad(X, y, w, lam):
    return ctypes.string_at(0)
