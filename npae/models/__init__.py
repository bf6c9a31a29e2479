"""Estimators, one module per lecture topic (see DESIGN.md)."""
from .autoencoder import Autoencoder
from .base import BaseEstimator, NotFittedError
from .contractive import ContractiveAutoencoder
from .conv import ConvAutoencoder
from .denoising import DenoisingAutoencoder
from .psd import PSD, PredictiveSparseDecomposition
from .stacked import StackedAutoencoder

__all__ = ["BaseEstimator", "NotFittedError", "Autoencoder", "DenoisingAutoencoder",
           "ContractiveAutoencoder", "ConvAutoencoder", "PredictiveSparseDecomposition", "PSD"]
__all__ += ["StackedAutoencoder"]
