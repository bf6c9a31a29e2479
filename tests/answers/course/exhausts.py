"""ridge_grad calls sys.exit; tanh_layer_grad allocates 2 GiB (past a 1 GiB memory limit)."""
import sys

import numpy as np


def ridge_grad(X, y, w, lam):
    sys.exit(3)


def tanh_layer_grad(X, W, G):
    big = np.ones(1 << 28)
    return big[:W.size].reshape(W.shape)
