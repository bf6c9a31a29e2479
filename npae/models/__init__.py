"""Estimators, one module per lecture topic (see DESIGN.md)."""
from .base import BaseEstimator, NotFittedError

__all__ = ["BaseEstimator", "NotFittedError"]
