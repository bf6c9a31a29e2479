"""Estimators, one module per lecture topic (see DESIGN.md)."""
from .autoencoder import Autoencoder
from .base import BaseEstimator, NotFittedError
from .contractive import ContractiveAutoencoder
from .conv import ConvAutoencoder
from .denoising import DenoisingAutoencoder
from .eigenfaces import Eigenfaces
from .linear import LinearAutoencoder, linear_autoencoder_loss, optimal_linear_autoencoder
from .pca import PCA, lecture_normalize
from .psd import PSD, PredictiveSparseDecomposition
from .stacked import StackedAutoencoder

__all__ = ["BaseEstimator", "NotFittedError", "Autoencoder", "DenoisingAutoencoder",
           "ContractiveAutoencoder", "ConvAutoencoder", "PredictiveSparseDecomposition", "PSD"]
__all__ += ["StackedAutoencoder"]
__all__ += ["PCA", "lecture_normalize", "LinearAutoencoder", "optimal_linear_autoencoder",
            "linear_autoencoder_loss", "Eigenfaces"]
