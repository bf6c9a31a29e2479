"""What every npae estimator shares: scikit-learn's conventions, without scikit-learn.

* The constructor stores hyper-parameters only (no validation, no work), under the same
  names, so ``get_params``/``set_params``/``clone`` work.
* ``fit`` validates, learns attributes whose names end in ``_``, and returns ``self``.
* Gradient-trained models also open their objective (DESIGN.md): ``parameters()`` (live
  arrays), ``objective(X)`` and ``gradients(X)`` -- so any gradient can be checked from
  outside. Hyper-parameters are plain values (``loss="cross_entropy"`` is a string).
"""
from __future__ import annotations

import inspect
import json
import numbers
import os

import numpy as np

from .. import __version__
from .._io import atomic_savez, read_npz
from .._validation import as_float_array, check_param
from ..exceptions import FileFormatError, NotFittedError, not_fitted_error

__all__ = ["BaseEstimator", "GradientModelMixin", "NotFittedError", "check_is_fitted", "load"]

_FORMAT = "npae-model-1"


def check_is_fitted(estimator, attribute):
    if not hasattr(estimator, attribute):
        raise not_fitted_error()(f"This {type(estimator).__name__} instance is not fitted "
                                 "yet; call fit(X) before using it")


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

    def fit_transform(self, X, y=None, **fit_params):
        """``fit(X, y, **fit_params).transform(X)`` (models may override with a faster path)."""
        return self.fit(X, y, **fit_params).transform(X)

    def __sklearn_tags__(self):
        """scikit-learn's estimator tags, so its ``check_estimator`` and meta-estimators
        accept npae's models without npae inheriting from (or importing) scikit-learn.

        Only scikit-learn calls this method, so importing it here costs npae nothing: npae
        itself never needs scikit-learn. Unsupervised (y optional); models with
        ``transform`` are transformers whose output keeps the dtypes in
        ``_preserved_dtypes()``.
        """
        from sklearn.utils import Tags, TargetTags, TransformerTags

        tags = Tags(estimator_type=None, target_tags=TargetTags(required=False))
        if callable(getattr(type(self), "transform", None)):
            tags.transformer_tags = TransformerTags(preserves_dtype=self._preserved_dtypes())
        return tags

    def _preserved_dtypes(self):
        """Input dtypes that ``transform`` returns unchanged: the model's working precision
        where it has a ``dtype`` hyper-parameter (it casts every input to it), else float64."""
        dtype = self.get_params().get("dtype")
        try:
            return [np.dtype(dtype).name] if dtype is not None else ["float64"]
        except TypeError:
            return ["float64"]

    # -- save / load: one .npz, hyper-parameters as JSON, arrays as arrays, no pickle -----
    def _state(self):
        """(header, arrays): everything ``save`` writes, recursively for nested estimators.

        The header (JSON) holds the class name, the hyper-parameters and the fitted
        attributes (names ending in ``_``) that are numbers, strings, dtypes or lists/dicts/
        tuples of them (such as ``history_``). Fitted arrays go to ``attr/NAME``, the live
        parameters to ``param/NAME``, a fitted estimator (``Eigenfaces.pca_``) to its own
        header under ``estimators`` and its arrays under ``est/NAME/``. Anything else (layer
        objects) is rebuilt by ``_restore_network``.
        """
        params = self.get_params()
        for k, v in params.items():
            try:
                json.dumps(_to_json(v))
            except TypeError:
                raise TypeError(f"cannot save {type(self).__name__}: hyper-parameter {k}={v!r} "
                                "is not a number, string or list; set it to a seed (int) or None "
                                "before saving") from None
        header = {"class": type(self).__name__, "params": _to_json(params), "attributes": {},
                  "estimators": {}}
        arrays = {}
        for name, value in vars(self).items():
            if not name.endswith("_") or name.startswith("_"):
                continue
            if isinstance(value, np.ndarray):
                arrays[f"attr/{name}"] = value
            elif isinstance(value, BaseEstimator):
                sub_header, sub_arrays = value._state()
                header["estimators"][name] = sub_header
                arrays.update({f"est/{name}/{k}": v for k, v in sub_arrays.items()})
            elif isinstance(value, (np.dtype, type)) and np.dtype(value).kind in "biuf":
                header["attributes"][name] = {"__dtype__": np.dtype(value).name}
            elif isinstance(value, (numbers.Number, str, bool, list, dict, tuple)) or value is None:
                header["attributes"][name] = _to_json(value)
        if isinstance(self, GradientModelMixin):
            try:
                arrays.update({f"param/{k}": v for k, v in self.parameters().items()})
            except (NotFittedError, AttributeError):
                pass  # an unfitted model saves its hyper-parameters only
        return header, arrays

    def save(self, path):
        """Write the model to ``path`` (.npz) atomically: an interrupted save keeps the old file.

        The file holds plain arrays and a JSON header only, so ``npae.load`` reads it with
        ``allow_pickle=False``: loading someone else's file cannot run their code.
        """
        header, arrays = self._state()
        meta = {"format": _FORMAT, "npae_version": __version__, **header}
        return atomic_savez(path, __npae__=np.array(json.dumps(meta)), **arrays)

    def _restore_network(self):
        """Rebuild whatever ``parameters()`` lives in, from the fitted attributes.

        Called by ``npae.load`` before the saved parameter values are copied in. Models with
        a network override it (build the layers with the fitted sizes); others need nothing.
        """

    # -- input validation with n_features_in_ bookkeeping ---------------------------------
    def _validate_data(self, X, reset, name="X", dtype=None):
        X = as_float_array(X, name, ndim=2, dtype=dtype)
        if reset:
            self.n_features_in_ = X.shape[1]
        elif hasattr(self, "n_features_in_") and X.shape[1] != self.n_features_in_:
            raise ValueError(f"{name} has {X.shape[1]} features, but {type(self).__name__} "
                             f"is expecting {self.n_features_in_} features as input (it was "
                             f"fitted with {self.n_features_in_}); pass rows of the same "
                             "length as in fit")
        return X


class GradientModelMixin:
    """Models trained by gradient descent implement ``_loss_and_gradients(X)``; this mixin
    turns it into the public ``objective`` and ``gradients`` that students check from outside
    (models whose objective takes more, such as the denoising model's ``rng``, override both).
    """

    def _loss_and_gradients(self, X):  # pragma: no cover - every model overrides
        raise NotImplementedError

    def parameters(self):
        """Dict name -> the live parameter arrays (changing them changes the model)."""
        raise NotImplementedError

    def objective(self, X):
        """The training objective at the current parameters (all its terms, mean over X)."""
        return self._loss_and_gradients(self._validate_data(X, reset=False))[0]

    def gradients(self, X):
        """Dict name -> the hand-derived gradient of ``objective(X)``, same shapes as
        ``parameters()``."""
        return self._loss_and_gradients(self._validate_data(X, reset=False))[1]



def check_training_params(model):
    """The hyper-parameters every mini-batch gradient model shares, checked one way:
    learning_rate > 0, n_epochs >= 0, batch_size >= 1, dtype float32 or float64."""
    check_param("learning_rate", model.learning_rate, low=0.0, low_open=True)
    check_param("n_epochs", model.n_epochs, kind="int", low=0)
    check_param("batch_size", model.batch_size, kind="int", low=1)
    try:
        ok = np.dtype(model.dtype).name in ("float32", "float64")
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"dtype={model.dtype!r} is not supported; use 'float64' (what gradient "
                         "checks need) or 'float32' (faster training)")

class DecoderMixin:
    """``inverse_transform`` and ``reconstruct`` of a model whose codes (size given by the
    hyper-parameter named ``_code_size``) are decoded by its ``decoder_`` network."""

    _code_size = "n_hidden"

    def inverse_transform(self, H):
        """Decode codes: x̂ = decoder_(H), shape (n, n_features_in_)."""
        check_is_fitted(self, "decoder_")
        H = as_float_array(H, "H", ndim=2, dtype=self.dtype)
        k = getattr(self, self._code_size)
        if H.shape[1] != k:
            raise ValueError(f"the codes have {H.shape[1]} columns but the model has "
                             f"{self._code_size}={k}; pass codes from transform()")
        return self.decoder_.forward(H)

    def reconstruct(self, X):
        """x̂ = inverse_transform(transform(X)): the reconstruction of X."""
        return self.inverse_transform(self.transform(X))

def _to_json(value):
    """JSON-able form of a header value; tuples are tagged so that they come back as tuples
    (``layer_sizes=(256, 64)``, ``image_shape_``: a list would compare unequal to a shape)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return {"__tuple__": [_to_json(v) for v in value]}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    return value


def _from_json(value):
    """Inverse of ``_to_json`` (and of the dtype tag of ``_state``)."""
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_from_json(v) for v in value["__tuple__"])
        if set(value) == {"__dtype__"}:
            return np.dtype(value["__dtype__"])
        return {k: _from_json(v) for k, v in value.items()}
    return value


def _model_classes():
    from .. import models
    return {name: obj for name, obj in vars(models).items()
            if isinstance(obj, type) and issubclass(obj, BaseEstimator)}


def load(path):
    """Load a model saved with ``model.save(path)``.

    Reads with ``allow_pickle=False`` and builds only npae's own model classes, so a file
    from someone else cannot run code. Anything that is not an intact npae model file (not
    an .npz, truncated, another format, a header that describes no model) and any saved
    array that is not finite or not of the shape the saved hyper-parameters imply gives a
    ``FileFormatError`` (a ValueError) naming the file and, where one is at fault, the array.
    """
    path = os.fspath(path)
    what = "an npae model file"
    data = read_npz(path, what)
    if "__npae__" not in data:
        raise FileFormatError(f"{path!r} is not {what} (an .npz archive with no npae "
                              "header); was it written by model.save()?")
    try:
        meta = json.loads(str(data.pop("__npae__")))
    except Exception as exc:
        raise FileFormatError(f"{path!r} is damaged: its npae header is not JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        fmt = meta.get("format") if isinstance(meta, dict) else None
        version = meta.get("npae_version") if isinstance(meta, dict) else None
        raise FileFormatError(f"{path!r} has format {fmt!r}; this npae reads {_FORMAT!r} "
                              f"(saved by npae {version})")
    try:
        return _build(meta, data, path)
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        # a header edited by hand or written by something else: say so, do not crash inside
        raise FileFormatError(f"{path!r} is not a valid npae model file: its header or arrays "
                              f"do not describe a model ({type(exc).__name__}: {exc})") from None


def _check_finite_array(path, key, value):
    """A saved float array with NaN or inf would make the model compute garbage silently
    (a sigmoid of NaN, a product with inf): refuse it, naming the file and the array."""
    if value.dtype.kind in "fc" and not np.isfinite(value).all():
        bad = ~np.isfinite(value)
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise FileFormatError(f"{path!r}: array {key!r} holds {int(bad.sum())} NaN or inf "
                              f"value(s) (first at index {first}); the file is damaged or was "
                              "saved from a diverged model; retrain or use another file")


def _build(meta, data, path):
    """The model described by ``meta`` (a header of ``_state``) with the arrays ``data``."""
    cls = _model_classes().get(meta.get("class"))
    if cls is None:
        raise FileFormatError(f"{path!r} holds a {meta.get('class')!r}, which is not an npae "
                              "model")
    model = cls(**_from_json(meta["params"]))
    for k, v in meta.get("attributes", {}).items():
        setattr(model, k, _from_json(v))
    for name, sub in meta.get("estimators", {}).items():
        prefix = f"est/{name}/"
        setattr(model, name, _build(sub, {k[len(prefix):]: v for k, v in data.items()
                                          if k.startswith(prefix)}, path))
    for k, v in data.items():
        if k.startswith("attr/"):
            _check_finite_array(path, k, v)
            setattr(model, k[len("attr/"):], v)
    params = {k[len("param/"):]: v for k, v in data.items() if k.startswith("param/")}
    if params:
        model._restore_network()
        live = model.parameters()
        if set(live) != set(params):
            raise FileFormatError(f"{path!r} does not match {cls.__name__}: saved parameters "
                                  f"{sorted(params)}, the model has {sorted(live)}")
        for k, v in params.items():
            if live[k].shape != v.shape:
                raise FileFormatError(f"{path!r}: parameter {k!r} has shape {v.shape} (array "
                                      f"'param/{k}'), but the model its saved hyper-parameters "
                                      f"describe has {live[k].shape}")
            _check_finite_array(path, "param/" + k, v)
            live[k][...] = v
    return model
