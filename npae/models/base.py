"""What every npae estimator shares: scikit-learn's conventions, without scikit-learn.

* The constructor stores hyper-parameters only (no validation, no work), under the same
  names, so ``get_params``/``set_params``/``clone`` work.
* ``fit`` validates, learns attributes whose names end in ``_``, and returns ``self``.
* Hyper-parameters are plain values (``loss="cross_entropy"`` is a string).

The model contract (docs/design.md, "Model contract"), followed by every gradient-trained
estimator (``GradientModelMixin``), so any gradient can be checked from outside:

* ``parameters()``: name -> the live parameter arrays (changing them changes the model).
* ``objective(X, *, rng=0)``: the training objective at the current parameters (all its
  terms, mean over the rows of X); ``gradients(X, *, rng=0)``: name -> its hand-derived
  gradient (copies), exactly the keys of ``parameters()``. ``rng`` seeds the objective's
  noise (the denoising model's corruption, the VAE's ε) afresh on every call: with the same
  int seed (the default 0) both see the same draw, so
  ``check_gradient(lambda _: m.objective(X), m.gradients(X)[k], m.parameters()[k])`` works.
  Models without noise accept ``rng`` and ignore it. Inputs a model needs besides X are
  further keyword arguments (``StackedAutoencoder``'s labels ``y=``, PSD's codes ``Z=``);
  gradients in anything but the parameters have methods of their own (PSD's
  ``code_gradient``).
* One private hook computes both: ``_objective_and_gradients(X, rng, need_grad=True, **kw)``
  on validated input, ``rng`` a Generator; it returns (L, the layers' own gradient arrays)
  and is what ``npae.train`` steps on, with the model's own generator.
* One hyper-parameter check, ``_check_params()``, and one fit preamble, ``_fit_start``:
  hyper-parameters, sizes against the machine's memory, the data (dtype, shape, the range
  the model's output can reach, written once in ``check_data_range``) and the random state.
"""
from __future__ import annotations

import inspect
import json
import numbers
import os

import numpy as np

from .. import __version__
from .._io import read_npae_file, write_npae_file
from .._memory import check_fits_in_memory
from .._validation import as_float_array, check_param
from ..exceptions import FileFormatError, NotFittedError, not_fitted_error

__all__ = ["BaseEstimator", "GradientModelMixin", "NotFittedError", "check_is_fitted", "load",
           "check_data_range", "check_random_state", "check_size", "check_training_params"]

_FORMAT = "npae-model-1"
#: the model file's layout; npae 0.1 wrote no version (read as 1)
FORMAT_VERSION = 1


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
        meta = {"format": _FORMAT, "version": FORMAT_VERSION, "npae_version": __version__,
                **header}
        return write_npae_file(path, meta, arrays)

    def _restore_network(self):
        """Rebuild whatever ``parameters()`` lives in, from the fitted attributes.

        Called by ``npae.load`` before the saved parameter values are copied in. Models with
        a network override it (build the layers with the fitted sizes); others need nothing.
        """

    # -- input validation with n_features_in_ bookkeeping ---------------------------------
    def _validate_data(self, X, reset, name="X", dtype=None, finite=True):
        X = as_float_array(X, name, ndim=2, dtype=dtype, finite=finite)
        if reset:
            self.n_features_in_ = X.shape[1]
        elif hasattr(self, "n_features_in_") and X.shape[1] != self.n_features_in_:
            raise ValueError(f"{name} has {X.shape[1]} features, but {type(self).__name__} "
                             f"is expecting {self.n_features_in_} features as input (it was "
                             f"fitted with {self.n_features_in_}); pass rows of the same "
                             "length as in fit")
        return X


class GradientModelMixin:
    """The model contract of the module docstring: ``objective`` and ``gradients`` from the
    model's ``_objective_and_gradients`` hook, and the preamble every ``fit`` shares.

    A model provides ``parameters()``, ``_check_params()``, the hook, and (where its output
    cannot reach every value) ``_data_range()``; ``_input`` and ``_as_input`` turn a caller's
    X into what the hook expects.
    """

    #: the attribute that exists once the model is fitted
    _fitted_attribute = "encoder_"

    def objective(self, X, *, rng=0):
        """The training objective at the current parameters (all its terms, mean over the
        rows of X), its noise (if any) drawn with ``np.random.default_rng(rng)``."""
        return self._evaluate(X, rng, need_grad=False)[0]

    def gradients(self, X, *, rng=0):
        """Dict name -> the hand-derived gradient of ``objective(X, rng=rng)`` (copies), the
        keys and shapes of ``parameters()``."""
        return self._evaluate(X, rng, need_grad=True)[1]

    def _evaluate(self, X, rng, need_grad, **inputs):
        X = self._input(X)
        L, grads = self._objective_and_gradients(X, np.random.default_rng(rng),
                                                 need_grad=need_grad, **inputs)
        if not need_grad:
            return L, None
        return L, {k: v.copy() for k, v in grads.items()}

    # -- input -------------------------------------------------------------------------------
    def _as_input(self, X, name="X", reset=False):
        """X validated and cast to the model's working dtype (``reset``: in ``fit``)."""
        return self._validate_data(X, reset=reset, name=name,
                                   dtype=getattr(self, "dtype", "float64"))

    def _validate(self, X, name="X"):
        """X for a fitted model's ``transform`` and the like: validated, in the working dtype."""
        check_is_fitted(self, self._fitted_attribute)
        return self._as_input(X, name)

    def _input(self, X, name="X"):
        """X as ``_objective_and_gradients`` takes it, from a fitted model's entry point:
        ``_validate``, then the data-range check."""
        X = self._validate(X, name)
        self._check_data_range(X, name)
        return X

    def _data_range(self):
        """None, or (low, high, who needs it, how to fix the data) for ``check_data_range``."""
        return None

    def _check_data_range(self, X, name="X"):
        rng = self._data_range()
        if rng is not None:
            check_data_range(X, name, *rng)

    def _check_sizes(self, d):
        """Refuse sizes whose arrays would not fit in memory, for ``d`` input features
        (``check_size``); called by ``_fit_start`` and by ``npae.load``."""

    # -- fitting -----------------------------------------------------------------------------
    def _fit_start(self, X, X_val=None):
        """The preamble of every ``fit``: hyper-parameters, the data (dtype, shape, range),
        sizes against memory, X_val likewise, and the random state. Returns (X, X_val, rng)."""
        self._check_params()
        rng = check_random_state(self.random_state)
        X = self._as_input(X, "X", reset=True)
        self._check_data_range(X, "X")
        self._check_sizes(self._n_features(X))
        if X_val is not None:
            X_val = self._as_input(X_val, "X_val")
            self._check_data_range(X_val, "X_val")
        return X, X_val, rng

    @staticmethod
    def _n_features(X):
        return int(np.prod(X.shape[1:]))

    #: the training objective is random (denoising, the VAE): the loop's divergence rules
    #: allow for it (``npae.train``, ``noisy``)
    _noisy_objective = False

    def _validation_loss(self, X):
        """The objective on held-out X (its noise, if any, drawn with seed 0 every epoch)."""
        return self._objective_and_gradients(X, np.random.default_rng(0), need_grad=False)[0]

    #: rows of the training data whose objective at a fixed noise draw tells ``npae.train``'s
    #: divergence rules, for a noisy objective, whether training makes the model worse
    _MONITOR_ROWS = 1024

    def _monitor(self, X):
        """``fit_loop``'s ``monitor`` for a noisy objective (else None): the objective of the
        first rows of X at the validation's fixed draw (seed 0), a noise-free yardstick."""
        if not self._noisy_objective:
            return None
        rows = X[:self._MONITOR_ROWS]
        return lambda: self._validation_loss(rows)

    def _training_loss(self, rng):
        """The function ``npae.train.fit_loop`` steps on: the hook with the model's generator."""
        return lambda Xb: self._objective_and_gradients(Xb, rng)


def check_random_state(random_state):
    """``np.random.default_rng(random_state)``, the error naming ``random_state``."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    try:
        return np.random.default_rng(random_state)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"random_state={random_state!r} is not supported ({exc}); pass None, "
                         "an int >= 0 or a numpy Generator") from None


def check_size(n_entries, what, dtype="float64"):
    """Refuse a size whose arrays (``n_entries`` entries) would not fit in memory, before
    anything is allocated; ``what`` names the hyper-parameter and its value."""
    check_fits_in_memory(n_entries, np.dtype(dtype).itemsize, what=what)


def check_data_range(X, name, low, high, needs, fix):
    """Refuse X with values outside [low, high], the range the model's output can reach (or
    its loss accepts): training on it ends at a large loss without a word.

    ``needs`` says who needs the range and ends in a verb ("loss='cross_entropy' needs",
    "the decoder ends in Tanh, so the model can only reconstruct"), ``fix`` what to do. Rescaling leaves a few ulps of rounding (scikit-learn's
    MinMaxScaler gives 1 + 2e-16), so only real excess is refused.
    """
    if X.size == 0:
        return
    slack = 4.0 * float(np.finfo(X.dtype).eps)
    lo, hi = float(X.min()), float(X.max())
    if lo < low - slack or hi > high + slack:
        raise ValueError(f"{name} has values in [{lo:.6g}, {hi:.6g}], but {needs} {name} in "
                         f"[{low:g}, {high:g}]: {fix}")


def check_training_params(model, optimizers=("adam", "sgd")):
    """The hyper-parameters every mini-batch gradient model shares, checked one way:
    learning_rate > 0, n_epochs >= 0, batch_size >= 1, dtype float32 or float64, and the
    optimizer and verbose flags."""
    check_param("optimizer", model.optimizer, options=optimizers)
    check_param("learning_rate", model.learning_rate, low=0.0, low_open=True)
    check_param("n_epochs", model.n_epochs, kind="int", low=0)
    check_param("batch_size", model.batch_size, kind="int", low=1)
    check_param("verbose", model.verbose, options=(True, False))
    if "dtype" in model.get_params():
        check_dtype(model.dtype)


def check_dtype(dtype):
    try:
        ok = np.dtype(dtype).name in ("float32", "float64")
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"dtype={dtype!r} is not supported; use 'float64' (what gradient "
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

    Reads with npae's one reader (``npae._io.read_npae_file``: no pickle) and builds only
    npae's own model classes, so a file from someone else cannot run code. Anything that is
    not an intact npae model file (not an .npz, truncated, another format or a newer version,
    a header that describes no model or sizes no machine holds) and any saved array that is
    not real, not finite or not of the shape the saved hyper-parameters imply gives a
    ``FileFormatError`` (a ValueError) naming the file and, where one is at fault, the array.
    Files written by npae 0.1 (no "version" in the header) load as version 1.
    """
    path = os.fspath(path)
    what = "an npae model file"
    meta, data = read_npae_file(path, what)
    if meta is None:
        raise FileFormatError(f"{path!r} is not {what} (an .npz archive with no npae "
                              "header); was it written by model.save()?")
    version = meta.get("version", 1)
    if meta.get("format") != _FORMAT or version != FORMAT_VERSION:
        raise FileFormatError(f"{path!r} has format {meta.get('format')!r}, version {version!r}; "
                              f"this npae reads {_FORMAT!r} version {FORMAT_VERSION} (the file "
                              f"was saved by npae {meta.get('npae_version')})")
    try:
        return _build(meta, data, path)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError, MemoryError) as exc:
        if isinstance(exc, FileFormatError):
            raise
        # a header edited by hand or written by something else: say so, do not crash inside
        raise FileFormatError(f"{path!r} is not a valid npae model file: its header or arrays "
                              f"do not describe a model ({type(exc).__name__}: {exc}); the "
                              "file is damaged or was not written by model.save()") from None


def _build(meta, data, path):
    """The model described by ``meta`` (a header of ``_state``) with the arrays ``data``."""
    cls = _model_classes().get(meta.get("class"))
    if cls is None:
        raise FileFormatError(f"{path!r} holds a {meta.get('class')!r}, which is not an npae "
                              "model")
    model = cls(**_from_json(meta["params"]))
    if isinstance(model, GradientModelMixin):
        model._check_params()   # a header edited to n_hidden=-3 or 10**12 units is damaged
    for k, v in meta.get("attributes", {}).items():
        setattr(model, k, _from_json(v))
    if isinstance(model, GradientModelMixin) and "n_features_in_" in meta.get("attributes", {}):
        model._check_sizes(int(model.n_features_in_))
    for name, sub in meta.get("estimators", {}).items():
        prefix = f"est/{name}/"
        setattr(model, name, _build(sub, {k[len(prefix):]: v for k, v in data.items()
                                          if k.startswith(prefix)}, path))
    for k, v in data.items():
        if k.startswith("attr/"):
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
            live[k][...] = v
    return model
