"""Classic mistake: max pooling's gradient spread over the whole window, not to the winner."""
import numpy as np


def maxpool2d_backward(x, g, kernel_size, stride):
    k = kernel_size
    dx = np.zeros_like(x)
    for p in range(g.shape[2]):
        for q in range(g.shape[3]):
            dx[:, :, p * stride:p * stride + k, q * stride:q * stride + k] += \
                g[:, :, p, q][:, :, None, None]
    return dx
