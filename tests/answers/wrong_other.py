"""Other typical mistakes, with no one-word diagnosis (they must still FAIL)."""
import numpy as np

from correct import _sigm, _pad


def sigmoid_cross_entropy_grad(A_hat, X):
    x_hat = _sigm(A_hat)                     # dL/dx_hat: the sigmoid's derivative forgotten
    return (x_hat - X) / (x_hat * (1 - x_hat)) / X.shape[0]


def contractive_grad_b(X, W, b, lam):
    h = _sigm(X @ W.T + b)
    s2 = (h * (1 - h)) ** 2                  # the factor (1 - 2h) of d s / d a forgotten
    return (2 * lam / X.shape[0] * s2 * (W ** 2).sum(axis=1)).sum(axis=0)


def conv2d_grad_input(x, W, g, stride, padding):
    # "the backward of a correlation is a convolution": flipping the kernel once more
    import correct
    return correct.conv2d_grad_input(x, W[:, :, ::-1, ::-1], g, stride, padding)


def maxpool2d_backward(x, g, kernel_size, stride):
    k = kernel_size                          # average pooling's backward, not max pooling's
    dx = np.zeros_like(x)
    for p in range(g.shape[2]):
        for q in range(g.shape[3]):
            dx[:, :, p * stride:p * stride + k, q * stride:q * stride + k] += \
                g[:, :, p, q][:, :, None, None] / k ** 2
    return dx
