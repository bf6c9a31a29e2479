"""Estimators, one module per lecture topic (see docs/design.md)."""
from .autoencoder import Autoencoder
from .base import BaseEstimator, NotFittedError
from .contractive import ContractiveAutoencoder
from .conv import ConvAutoencoder
from .denoising import DenoisingAutoencoder
from .eigenfaces import Eigenfaces
from .linear import LinearAutoencoder, linear_autoencoder_loss, optimal_linear_autoencoder
from .pca import PCA, lecture_normalize
from .psd import PSD, PredictiveSparseDecomposition
from .sparse import SparseAutoencoder
from .stacked import StackedAutoencoder
from .vae import VariationalAutoencoder

__all__ = [
    "BaseEstimator", "NotFittedError",
    # the linear case: PCA, the closed-form optimum, the trained linear autoencoder, eigenfaces
    "PCA", "lecture_normalize", "optimal_linear_autoencoder", "linear_autoencoder_loss",
    "LinearAutoencoder", "Eigenfaces",
    # nonlinear autoencoders
    "Autoencoder", "DenoisingAutoencoder", "ContractiveAutoencoder", "StackedAutoencoder",
    "ConvAutoencoder",
    # sparse coding
    "PredictiveSparseDecomposition", "PSD",
    # beyond the lecture: the sparse autoencoder exercise, a generative model
    "SparseAutoencoder", "VariationalAutoencoder",
]
