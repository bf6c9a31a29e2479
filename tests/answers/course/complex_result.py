"""Right values, returned as complex numbers (ridge) and as strings (tanh)."""
import right


def ridge_grad(X, y, w, lam):
    return right.ridge_grad(X, y, w, lam) + 0j


def tanh_layer_grad(X, W, G):
    return right.tanh_layer_grad(X, W, G).astype(str)
