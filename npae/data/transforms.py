"""The lecture's normalisation: ``normalize`` / ``denormalize`` (mean 0.5, std 0.5 -> [-1, 1])."""
from .._validation import as_float_array, check_param


def normalize(X, mean=0.5, std=0.5):
    """(X - mean) / std: with the lecture's mean 0.5 and std 0.5, [0, 1] maps to [-1, 1]
    (the range of the decoder's final Tanh). float32 stays float32."""
    check_param("std", std, low=0, low_open=True)
    X = as_float_array(X, "X", allow_empty=True)
    return (X - X.dtype.type(mean)) / X.dtype.type(std)


def denormalize(X, mean=0.5, std=0.5):
    """The inverse of ``normalize``: X * std + mean."""
    check_param("std", std, low=0, low_open=True)
    X = as_float_array(X, "X", allow_empty=True)
    return X * X.dtype.type(std) + X.dtype.type(mean)
