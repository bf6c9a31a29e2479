"""Layers with explicit forward/backward passes (the contract is in ``npae.nn.base``)."""
from .activations import Identity, ReLU, Sigmoid, Tanh, sigmoid
from .base import Layer, Sequential
from .conv import Conv2d, ConvTranspose2d, MaxPool2d, set_dtype
from .linear import Linear, TiedLinear

__all__ = ["Layer", "Sequential", "Linear", "TiedLinear", "Sigmoid", "ReLU", "Tanh",
           "Identity", "sigmoid", "Conv2d", "ConvTranspose2d", "MaxPool2d", "set_dtype"]
