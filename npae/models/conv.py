"""The lecture's convolutional autoencoder ("Autoencoder example", "Example: MNIST").

Equations (x: a batch of images (n, 1, 28, 28); the layers are npae.nn's, NCHW as PyTorch):

    (1)  h = f(x):   Conv2d(1, 16, 3, stride 3, padding 1) -> ReLU -> MaxPool2d(2, stride 2)
                  -> Conv2d(16, 8, 3, stride 2, padding 1) -> ReLU -> MaxPool2d(2, stride 1)
         shapes  1x28x28 -> 16x10x10 -> 16x5x5 -> 8x3x3 -> 8x2x2          (the code h)
    (2)  x̂ = g(h):  ConvTranspose2d(8, 16, 3, stride 2)            -> ReLU
                  -> ConvTranspose2d(16, 8, 5, stride 3, padding 1) -> ReLU
                  -> ConvTranspose2d(8, 1, 2, stride 2, padding 1)  -> Tanh
         shapes  8x2x2 -> 16x5x5 -> 8x15x15 -> 1x28x28
    (3)  L = 1/(n d) sum_t ||x̂^(t) - x^(t)||^2     (d = 784: PyTorch's nn.MSELoss, mean over
                                                     every pixel, the lecture's loss)
    (4)  dL/dx̂ = 2 (x̂ - x) / (n d), sent back through (2) and (1) by the layers' backward

Trained as on the slide: Adam, learning rate 0.001, batch 128, 20 epochs, shuffled, images
normalised with mean 0.5 and std 0.5 (``npae.data.normalize``: [0, 1] -> [-1, 1], the range of
the final Tanh).

The first ConvTranspose2d: the slide gives it padding=1, but then the decoder's shapes are
8x2x2 -> 16x3x3 -> 8x9x9 -> 1x16x16, and a 16x16 reconstruction of a 28x28 image cannot be
compared with it. With padding 0 (H_out = (2 - 1) 2 - 0 + 3 = 5) the decoder mirrors the
encoder's 16x5x5 and ends at 28x28, so npae uses padding 0. ``encoder``/``decoder`` accept
other listings; a net whose output shape differs from its input is refused with the shapes of
every layer and the name of the layer where they go wrong.
"""
from __future__ import annotations

import numpy as np

from .._validation import as_float_array
from ..nn import (Conv2d, ConvTranspose2d, MaxPool2d, ReLU, Sequential, Sigmoid, Tanh,
                  set_dtype)
from ..nn import conv_kernels as kernels
from ..optim import make_optimizer
from ..train import fit_loop
from .base import (BaseEstimator, GradientModelMixin, check_is_fitted, check_size,
                   check_training_params)

__all__ = ["ConvAutoencoder", "LECTURE_ENCODER", "LECTURE_DECODER"]

#: (1) as specs: ("conv", out_channels, kernel, stride, padding), ("maxpool", kernel, stride)
LECTURE_ENCODER = (("conv", 16, 3, 3, 1), ("relu",), ("maxpool", 2, 2),
                   ("conv", 8, 3, 2, 1), ("relu",), ("maxpool", 2, 1))
#: (2) as specs: ("convT", out_channels, kernel, stride, padding[, output_padding]); the first
#: padding is 0, not the slide's 1 (see the module docstring)
LECTURE_DECODER = (("convT", 16, 3, 2, 0), ("relu",), ("convT", 8, 5, 3, 1), ("relu",),
                   ("convT", 1, 2, 2, 1), ("tanh",))

_KINDS = ("conv", "convT", "maxpool", "relu", "tanh", "sigmoid")
_INFER_CHUNK = 1024  # images per forward pass outside training (bounds the memory used)


def _make_layer(spec, channels, rng, where):
    if not isinstance(spec, (tuple, list)) or not spec or spec[0] not in _KINDS:
        raise ValueError(f"{where}: {spec!r} is not a layer spec; use one of "
                         "('conv', out, kernel, stride, padding), ('convT', out, kernel, stride, "
                         "padding[, output_padding]), ('maxpool', kernel[, stride[, padding]]), "
                         "('relu',), ('tanh',), ('sigmoid',)")
    kind, args = spec[0], tuple(spec[1:])
    try:
        if kind == "conv":
            return Conv2d(channels, *args, rng=rng), args[0]
        if kind == "convT":
            out, k, s, p, *op = args
            return ConvTranspose2d(channels, out, k, stride=s, padding=p,
                                   output_padding=op[0] if op else 0, rng=rng), out
        if kind == "maxpool":
            return MaxPool2d(*args), channels
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{where} {spec!r}: {exc}") from None
    return {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}[kind](), channels


def _output_shape(specs, input_shape):
    """Shape of one image after the encoder and decoder ``specs``, or None if they fail."""
    shape, channels = (1,) + tuple(input_shape), input_shape[0]
    try:
        for part in ("encoder", "decoder"):
            for spec in specs[part]:
                layer, channels = _make_layer(spec, channels, None, part)
                shape = layer.output_shape(shape)
    except (TypeError, ValueError):
        return None
    return shape[1:]


class ConvAutoencoder(GradientModelMixin, BaseEstimator):
    """Convolutional autoencoder, the lecture's listing by default (equations 1-4).

    Parameters
    ----------
    encoder, decoder : sequences of layer specs
        Defaults ``LECTURE_ENCODER``, ``LECTURE_DECODER``. Input channels are inferred.
    n_epochs, batch_size, learning_rate : the slide's 20, 128, 0.001
    optimizer : "adam" (the slide's) or "sgd"
    random_state : None, int or Generator (initialisation and shuffling)
    verbose : bool, show the progress bar with the running loss

    Attributes
    ----------
    encoder_, decoder_ : Sequential
    history_ : {"loss": [...], "val_loss": [...]}, per epoch (val_loss when ``X_val`` given)
    input_shape_ : (channels, H, W) of the training images
    code_shape_ : shape of one code h, (8, 2, 2) for the lecture's net
    dtype_ : float32 or float64, the dtype of the training images (kept, never converted)

    Images are (n, C, H, W) or (n, H, W) (one channel), float32 or float64, used as given:
    normalise them first, as the lecture does, with ``npae.data.normalize``. ``fit`` checks
    them against the decoder's output range and refuses what it cannot reconstruct: the
    lecture's Tanh needs data in [-1, 1]; a decoder ending in ``("sigmoid",)`` fits [0, 1]
    images, ``("relu",)`` non-negative ones, and one ending in a ``("convT", ...)`` layer
    (no activation) any range.
    """

    def __init__(self, encoder=LECTURE_ENCODER, decoder=LECTURE_DECODER, *, n_epochs=20,
                 batch_size=128, learning_rate=0.001, optimizer="adam", random_state=None,
                 verbose=True):
        self.encoder = encoder
        self.decoder = decoder
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.random_state = random_state
        self.verbose = verbose

    # -- building and checking the network ------------------------------------------------
    def _build(self, input_shape, rng, dtype=np.float64):
        """Layers for images of ``input_shape`` (C, H, W); every shape checked, the trace kept."""
        channels = input_shape[0]
        parts, trace = {}, [("input", None, (None,) + tuple(input_shape))]
        shape = (1,) + tuple(input_shape)
        for part, specs in (("encoder", self.encoder), ("decoder", self.decoder)):
            if isinstance(specs, (str, bytes)) or not hasattr(specs, "__iter__"):
                raise TypeError(f"{part} must be a sequence of layer specs, got {specs!r}")
            layers = []
            for i, spec in enumerate(specs):
                where = f"{part} layer {i}"
                layer, channels = _make_layer(spec, channels, rng, where)
                try:
                    shape = layer.output_shape(shape)
                except ValueError as exc:
                    raise ValueError(f"the shapes go wrong at {where}, {layer!r}: {exc}\n"
                                     + self._format_trace(trace)) from None
                layer.check_input = False  # the model checks its input once per call
                layers.append(layer)
                trace.append((where, layer, (None,) + shape[1:]))
            if not layers:
                raise ValueError(f"{part} has no layers")
            if part == "encoder":
                layers[0].needs_input_grad = False  # its input is the data: no dL/dx to form
            parts[part] = Sequential(layers)
            # the model checks its input once, at its entry points (fit, transform, ...);
            # within training, a NaN from divergence reaches the loss, where fit_loop reports it
            parts[part].check_input = False
        if shape[1:] != tuple(input_shape):
            raise ValueError(
                f"the decoder's output has shape {shape[1:]} but the input has "
                f"{tuple(input_shape)}; an autoencoder must reconstruct its input's shape. "
                + self._blame(tuple(input_shape), trace)
                + f" Layer by layer:\n{self._format_trace(trace)}")
        for part in parts.values():
            set_dtype(part, dtype)
        return parts["encoder"], parts["decoder"], trace

    def _restore_network(self):
        """For ``npae.load``: rebuild the layers from the saved shapes (values copied in later)."""
        self.input_shape_, self.code_shape_ = tuple(self.input_shape_), tuple(self.code_shape_)
        self.dtype_ = np.dtype(self.dtype_)
        self.encoder_, self.decoder_, _ = self._build(self.input_shape_, None, self.dtype_)

    def _blame(self, input_shape, trace):
        """Name the layer where the shapes go wrong: the (decoder first) conv layer whose
        padding alone, changed, makes the output match; else the last spatial layer."""
        specs = {"encoder": list(self.encoder), "decoder": list(self.decoder)}
        for part in ("decoder", "encoder"):
            for i, spec in enumerate(specs[part]):
                if spec[0] not in ("conv", "convT") or len(spec) < 5:
                    continue
                if not all(isinstance(v, int) for v in spec[2:5]):
                    continue
                for pad in range(spec[2] + 1):
                    trial = dict(specs)
                    trial[part] = specs[part][:i] + [spec[:4] + (pad,) + tuple(spec[5:])] \
                        + specs[part][i + 1:]
                    if pad != spec[4] and _output_shape(trial, input_shape) == input_shape:
                        layer = next(la for w, la, _ in trace if w == f"{part} layer {i}")
                        return (f"The shapes go wrong at {part} layer {i}, {layer!r}: with "
                                f"padding={pad} instead of {spec[4]} the output would be "
                                f"{input_shape}.")
        for where, layer, _ in reversed(trace[1:]):
            if isinstance(layer, (Conv2d, ConvTranspose2d, MaxPool2d)):
                return (f"The last layer that sets the shape is {where}, {layer!r}; fix it or a "
                        "layer before it.")
        return ""

    @staticmethod
    def _format_trace(trace):
        rows = []
        for where, layer, shape in trace:
            n = layer.n_parameters() if layer is not None else 0
            rows.append(f"  {where:18s} {repr(layer) if layer is not None else '':72s} "
                        f"{str(tuple(shape[1:])):>14s} {n:>7,d}")
        return "\n".join(rows)

    def summary(self, input_shape=None):
        """Print (and return) each layer's output shape and parameter count, and the total
        (5,729 for the lecture's net). Before ``fit`` it builds the net for ``input_shape``
        (C, H, W), by default (1, 28, 28)."""
        if input_shape is None:
            input_shape = getattr(self, "input_shape_", (1, 28, 28))
        _, _, trace = self._build(tuple(input_shape), np.random.default_rng(0))
        total = sum(layer.n_parameters() for _, layer, _ in trace if layer is not None)
        text = (f"{type(self).__name__} for input {tuple(input_shape)}\n"
                f"  {'':18s} {'layer':72s} {'output shape':>14s} {'params':>7s}\n"
                + self._format_trace(trace) + f"\n  total parameters: {total:,d}")
        print(text)
        return text

    # -- data -------------------------------------------------------------------------------
    def _data_range(self):
        """The reconstruction x̂ is the decoder's last layer's output: Tanh reaches only
        (-1, 1), Sigmoid (0, 1), ReLU [0, inf). Data outside that range cannot be
        reconstructed: ``check_data_range`` refuses it."""
        spec = self.decoder[-1] if len(self.decoder) else None
        last = spec[0] if isinstance(spec, (tuple, list)) and spec else None
        ranges = {"tanh": (-1.0, 1.0, "Tanh", "npae.data.normalize(X) (mean 0.5, std 0.5: "
                                              "[0, 1] -> [-1, 1], as the lecture does)"),
                  "sigmoid": (0.0, 1.0, "Sigmoid", "X / X.max() for non-negative images, "
                                                   "X / 255 for 8-bit ones"),
                  "relu": (0.0, np.inf, "ReLU", "shift the data to be non-negative")}
        if last not in ranges:
            return None
        lo, hi, layer, fix = ranges[last]
        return (lo, hi, f"the decoder ends in {layer}, so the model can only reconstruct",
                f"normalise them first: {fix}; or end the decoder with a layer whose range "
                "fits the data (a ConvTranspose2d alone, for any range)")

    def _as_input(self, X, name="X", reset=False):
        """Images (n, C, H, W) as given (``fit``: their dtype becomes the model's), or cast
        to the fitted model's dtype and checked against its image shape."""
        X = self._images(X, name)
        if reset:
            self.input_shape_, self.dtype_ = tuple(X.shape[1:]), X.dtype
            return X
        if X.shape[1:] != self.input_shape_:
            raise ValueError(f"{name} has images of shape {X.shape[1:]}, but the model "
                             f"was fitted on {self.input_shape_}")
        return X.astype(self.dtype_, copy=False)

    def _check_params(self):
        check_training_params(self)
        for part in ("encoder", "decoder"):
            specs = getattr(self, part)
            if isinstance(specs, (str, bytes)) or not hasattr(specs, "__iter__"):
                raise TypeError(f"{part} must be a sequence of layer specs, got {specs!r}")

    def _check_sizes(self, d):
        # a layer spec's sizes: (kind, out_channels, kernel, ...); the weights are out x in x k x k
        channels, entries = None, 0
        for spec in tuple(self.encoder) + tuple(self.decoder):
            if isinstance(spec, (tuple, list)) and spec and spec[0] in ("conv", "convT"):
                out, k = spec[1], spec[2]
                if isinstance(out, int) and isinstance(k, int):
                    entries += (channels or 1) * out * k * k
                    channels = out
        check_size(4 * entries, f"encoder={self.encoder!r}, decoder={self.decoder!r} (the "
                   "convolution kernels)", self.dtype_)

    def _images(self, X, name="X"):
        X = as_float_array(X, name)
        if X.ndim == 3:
            X = X[:, None]
        if X.ndim != 4:
            raise ValueError(f"{name} must hold images as (n, C, H, W) or (n, H, W), got "
                             f"shape {X.shape}")
        return X

    # -- the objective (3), (4) -------------------------------------------------------------
    def parameters(self):
        """Dict name -> live array: ``"encoder.0.W"``, ``"encoder.0.b"``, ..., ``"decoder.4.b"``."""
        check_is_fitted(self, "encoder_")
        return {**self.encoder_.parameters("encoder."), **self.decoder_.parameters("decoder.")}

    def _objective(self, x, need_grad=True):
        # batch-last memory order (npae.nn.conv_kernels), the order of the network's output, so the
        # residual below runs over matching layouts; the first Conv2d reads it without a copy
        x = kernels.batch_last(x).transpose(3, 0, 1, 2)
        x_hat = self.decoder_.forward(self.encoder_.forward(x))     # (1), (2)
        r = x_hat - x
        r_flat = r.transpose(1, 2, 3, 0).reshape(-1)  # no copy: r is batch-last too
        L = float(r_flat @ r_flat) / r.size                           # (3)
        if not need_grad:
            return L, None
        self.encoder_.zero_grad()
        self.decoder_.zero_grad()
        r *= r.dtype.type(2.0 / r.size)                               # (4)
        self.encoder_.backward(self.decoder_.backward(r))
        return L, {**self.encoder_.gradients("encoder."), **self.decoder_.gradients("decoder.")}

    def _objective_and_gradients(self, X, rng=None, need_grad=True):
        """The contract's hook: (3) of the batch of images X and its gradients (4); ``rng``
        is unused (no noise)."""
        return self._objective(X, need_grad)

    def _validation_loss(self, X):
        return self._mean_over_chunks(X)

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X, y=None, *, X_val=None, checkpoint=None, resume=False):
        """Train on the images X (y is ignored). ``X_val``: test loss per epoch in
        ``history_["val_loss"]``. ``checkpoint``: an .npz path written atomically after each
        epoch; ``resume=True`` continues from it (same hyper-parameters and data)."""
        X, X_val, rng = self._fit_start(X, X_val)
        self.encoder_, self.decoder_, trace = self._build(X.shape[1:], rng, X.dtype)
        self.code_shape_ = tuple(next(s for w, _, s in reversed(trace)
                                      if w.startswith("encoder"))[1:])
        params = self.parameters()
        opt = make_optimizer(self.optimizer, params, self.learning_rate)
        self.history_ = fit_loop(
            params, self._training_loss(rng), X, optimizer=opt, n_epochs=self.n_epochs,
            batch_size=self.batch_size, rng=rng, X_val=X_val, val_loss=self._validation_loss,
            verbose=self.verbose, checkpoint=checkpoint, resume=resume,
            desc=type(self).__name__, owner=type(self).__name__)
        return self

    def _mean_over_chunks(self, X):
        total = 0.0
        for i in range(0, len(X), _INFER_CHUNK):
            total += self._objective(X[i:i + _INFER_CHUNK], need_grad=False)[0] * len(
                X[i:i + _INFER_CHUNK])
        return total / len(X)

    # -- using the model --------------------------------------------------------------------
    def _map(self, net, A):
        out = [np.ascontiguousarray(net.forward(A[i:i + _INFER_CHUNK]))
               for i in range(0, len(A), _INFER_CHUNK)]
        return np.concatenate(out) if out else np.zeros((0,) + net.output_shape(A.shape)[1:],
                                                        A.dtype)

    def transform(self, X):
        """The codes h = f(x) (1), shape (n,) + code_shape_ ((n, 8, 2, 2) for the lecture)."""
        X = self._validate(X)
        return self._map(self.encoder_, X)

    def inverse_transform(self, H):
        """Decode codes: x̂ = g(h) (2), shape (n,) + input_shape_."""
        check_is_fitted(self, "encoder_")
        H = as_float_array(H, "H").astype(self.dtype_, copy=False)
        if H.shape[1:] != self.code_shape_:
            raise ValueError(f"H has codes of shape {H.shape[1:]}, the model's are "
                             f"{self.code_shape_}; pass codes from transform()")
        return self._map(self.decoder_, H)

    def reconstruct(self, X):
        """x̂ = g(f(x)), in X's own form ((n, H, W) in, (n, H, W) out)."""
        three_d = np.ndim(X) == 3
        x_hat = self.inverse_transform(self.transform(X))
        return x_hat[:, 0] if three_d else x_hat

    def score(self, X, y=None):
        """(3): the mean squared error per pixel of the reconstructions (lower is better),
        the number PyTorch's nn.MSELoss reports."""
        return self._mean_over_chunks(self._validate(X))
