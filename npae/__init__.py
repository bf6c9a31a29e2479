"""npae: the autoencoder lecture in plain NumPy, every gradient derived by hand and checked."""
__version__ = "0.1.0"

from . import losses, nn, optim  # noqa: E402
from .models.base import load  # noqa: E402

__all__ = ["nn", "losses", "optim", "load", "__version__"]
