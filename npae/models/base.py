"""What every npae estimator shares: scikit-learn's conventions, without scikit-learn.

* The constructor stores hyper-parameters only (no validation, no work), under the same
  names, so ``get_params``/``set_params``/``clone`` work.
* ``fit`` validates, learns attributes whose names end in ``_``, and returns ``self``.
* Gradient-trained models also open their objective (DESIGN.md): ``parameters()`` (live
  arrays), ``loss(X)`` and ``gradients(X)`` -- so any gradient can be checked from outside.
"""
from __future__ import annotations

import inspect

import numpy as np

from .._validation import as_float_array

__all__ = ["BaseEstimator", "GradientModelMixin", "NotFittedError", "check_is_fitted"]


class NotFittedError(ValueError, AttributeError):
    """Raised when a model is used before ``fit`` (same bases as scikit-learn's)."""


def check_is_fitted(estimator, attribute):
    if not hasattr(estimator, attribute):
        raise NotFittedError(f"This {type(estimator).__name__} instance is not fitted yet; "
                             "call fit(X) before using it")


class BaseEstimator:
    """get_params / set_params / repr from the constructor's signature."""

    @classmethod
    def _param_names(cls):
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values()
                      if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        valid = self._param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"invalid parameter {key!r} for {type(self).__name__}; "
                                 f"valid parameters are {valid}")
            setattr(self, key, value)
        return self

    def __repr__(self):
        defaults = {p.name: p.default for p in
                    inspect.signature(type(self).__init__).parameters.values()}
        changed = []
        for k, v in self.get_params().items():
            d = defaults.get(k, inspect.Parameter.empty)
            try:
                same = d is not inspect.Parameter.empty and bool(d == v)
            except Exception:
                same = False
            if not same:
                changed.append(f"{k}={v!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    # -- input validation with n_features_in_ bookkeeping ---------------------------------
    def _validate_data(self, X, reset, name="X", dtype=None):
        X = as_float_array(X, name, ndim=2, dtype=dtype)
        if reset:
            self.n_features_in_ = X.shape[1]
        elif hasattr(self, "n_features_in_") and X.shape[1] != self.n_features_in_:
            raise ValueError(f"{name} has {X.shape[1]} features, but {type(self).__name__} "
                             f"was fitted with {self.n_features_in_} features")
        return X


class GradientModelMixin:
    """Models trained by gradient descent implement ``_loss_and_gradients(X)``; this mixin
    turns it into the public ``loss`` and ``gradients`` that students check from outside."""

    def _loss_and_gradients(self, X):  # pragma: no cover - every model overrides
        raise NotImplementedError

    def parameters(self):
        """Dict name -> the live parameter arrays (changing them changes the model)."""
        raise NotImplementedError

    def loss(self, X):
        """The training objective at the current parameters (all its terms, mean over X)."""
        return self._loss_and_gradients(self._validate_data(X, reset=False))[0]

    def gradients(self, X):
        """Dict name -> the hand-derived gradient of ``loss(X)``, same shapes as ``parameters()``."""
        return self._loss_and_gradients(self._validate_data(X, reset=False))[1]
