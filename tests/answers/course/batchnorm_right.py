"""The right answer to batchnorm_course.py."""
import numpy as np
def batchnorm_grad_x(X, G):
    n = X.shape[0]
    mu = X.mean(axis=0); var = X.var(axis=0); inv = 1 / np.sqrt(var)
    Y = (X - mu) * inv
    return inv / n * (n * G - G.sum(axis=0) - Y * (G * Y).sum(axis=0))
