"""ridge_grad calls sys.exit; tanh_layer_grad asks for more memory than allowed."""
import sys

import numpy as np


def ridge_grad(X, y, w, lam):
    sys.exit(3)


def tanh_layer_grad(X, W, G):
    return np.ones((1 << 20, 1 << 20))       # 8 TiB
