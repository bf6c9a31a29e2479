"""Estimators, one module per lecture topic (see DESIGN.md)."""
from .autoencoder import Autoencoder
from .base import BaseEstimator, NotFittedError
from .contractive import ContractiveAutoencoder
from .denoising import DenoisingAutoencoder

__all__ = ["BaseEstimator", "NotFittedError", "Autoencoder", "DenoisingAutoencoder",
           "ContractiveAutoencoder"]
