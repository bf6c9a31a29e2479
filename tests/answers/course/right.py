"""Right answers to the example course file (npae/exercises/example_course.py)."""
import numpy as np


def ridge_grad(X, y, w, lam):
    return 2 * X.T @ (X @ w - y) / len(y) + 2 * lam * w


def tanh_layer_grad(X, W, G):
    H = np.tanh(X @ W.T)
    return ((1 - H ** 2) * G).T @ X
