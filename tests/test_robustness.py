"""Numerical robustness and bad input, for every public estimator and layer.

* saturated units: logits of +-1e4 keep the sigmoid, the cross-entropy and every model's
  loss, gradients and codes finite (and equal to values computed independently);
* a diverging learning rate stops with an error naming the epoch and the loss, and leaves
  finite parameters behind (no silent NaN weights);
* float32 stays float32 through the conv path;
* a hypothesis property test: random bad inputs (wrong ranks and sizes, NaN, inf, empty,
  object and string dtypes, complex, huge values) give a correct result or a ValueError /
  TypeError with a message -- never another exception, never a NaN (or inf) output. The
  suite turns RuntimeWarnings into errors (setup.cfg), so an overflow warning fails too.
"""
import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npae import losses, nn
from npae._validation import max_magnitude
from npae.models import (PCA, Autoencoder, ContractiveAutoencoder, ConvAutoencoder,
                         DenoisingAutoencoder, Eigenfaces, LinearAutoencoder,
                         PredictiveSparseDecomposition, StackedAutoencoder)
from npae.train import TrainingDiverged

_rng = np.random.default_rng(11)
X = _rng.random((16, 5))
Y = np.tile([0, 1], 8)
IMAGES = 2 * _rng.random((6, 1, 8, 8)) - 1
_CONV = dict(encoder=(("conv", 2, 3, 2, 1), ("relu",), ("maxpool", 2, 1)),
             decoder=(("convT", 2, 3, 1, 0), ("relu",), ("convT", 1, 4, 2, 2), ("tanh",)),
             n_epochs=1, batch_size=4, random_state=0, verbose=False)


def _softplus(a):
    return np.logaddexp(0.0, a)            # numpy's own stable log(1 + e^a)


# -- saturated units ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("cls", [Autoencoder, DenoisingAutoencoder, ContractiveAutoencoder])
def test_logits_of_1e4_keep_every_output_finite_and_right(cls, dtype):
    model = cls(3, tied=False, n_epochs=0, dtype=dtype, random_state=0).fit(X)
    p = model.parameters()
    # encoder and decoder pre-activations of exactly +-1e4: every unit saturated
    p["W"][...] = 0.0
    p["b"][...] = np.array([1e4, -1e4, 1e4])
    p["W_star"][...] = 0.0
    p["c"][...] = np.where(np.arange(5) % 2, 1e4, -1e4)
    Xb = (X > 0.5).astype(float)
    h = model.transform(Xb)
    assert np.array_equal(h, np.tile([1.0, 0.0, 1.0], (16, 1)))
    x_hat = model.reconstruct(Xb)
    assert np.array_equal(x_hat, np.tile(np.where(np.arange(5) % 2, 1.0, 0.0), (16, 1)))
    a_hat = p["c"].astype(np.float64)
    # (5) from the logits, independently: softplus(a) - x a, summed over features
    expected = float((_softplus(a_hat) - Xb * a_hat).sum(axis=1).mean())
    assert model.score(Xb) == pytest.approx(expected, rel=1e-6 if dtype == "float32" else 1e-13)
    extra = model.objective(Xb)
    assert np.isfinite(extra)
    grads = model.gradients(Xb)
    assert all(np.isfinite(g).all() for g in grads.values())
    # the decoder's logit gradient (7) is x_hat - x: exactly 0 or +-1 per entry
    np.testing.assert_array_equal(grads["c"], (x_hat - Xb).mean(axis=0).astype(grads["c"].dtype))


def test_saturated_stacked_and_psd_stay_finite():
    sae = StackedAutoencoder((3, 2), pretrain_epochs=0, finetune_epochs=0,
                             random_state=0).fit(X, Y)
    for v in sae.parameters().values():
        v[...] = np.sign(np.arange(v.size).reshape(v.shape) % 3 - 1) * 1e4
    for out in (sae.transform(X), sae.reconstruct(X), sae.predict_proba(X), sae.score(X),
                *sae.gradients(X).values(), *sae.gradients(X, y=Y).values(), sae.objective(X, y=Y)):
        assert np.isfinite(out).all()
    psd = PredictiveSparseDecomposition(3, n_iter=1, random_state=0).fit(X)
    psd.parameters()["W"][...] = 1e4
    assert np.array_equal(psd.transform(X), np.ones((16, 3)))
    assert all(np.isfinite(g).all() for g in psd.gradients(X).values())


def test_all_zero_data_is_learned_without_nan():
    zeros = np.zeros((12, 4))
    for model in (PCA(2), LinearAutoencoder(2, n_epochs=2, random_state=0),
                  Autoencoder(2, n_epochs=1, random_state=0),
                  PredictiveSparseDecomposition(3, n_iter=1, random_state=0),
                  Eigenfaces(2, standardize=True)):
        assert np.isfinite(model.fit(zeros).transform(zeros)).all(), type(model).__name__


# -- divergence ----------------------------------------------------------------------------

_DIVERGING = {
    "Autoencoder": lambda: Autoencoder(4, decoder="linear", loss="squared", optimizer="sgd",
                                       learning_rate=50.0, batch_size=4, n_epochs=50,
                                       random_state=0),
    "LinearAutoencoder": lambda: LinearAutoencoder(2, learning_rate=100.0, n_epochs=50,
                                                   random_state=0),
    "StackedAutoencoder": lambda: StackedAutoencoder((4, 2), decoder="linear", loss="squared",
                                                     optimizer="sgd", learning_rate=50.0,
                                                     batch_size=4, random_state=0),
    "ConvAutoencoder": lambda: ConvAutoencoder(**{**_CONV, "decoder": _CONV["decoder"][:-1],
                                                  "optimizer": "sgd", "learning_rate": 1e3,
                                                  "n_epochs": 30}),
}


@pytest.mark.parametrize("name", list(_DIVERGING))
def test_diverging_learning_rate_stops_naming_epoch_and_loss(name):
    model = _DIVERGING[name]()
    data = IMAGES if name == "ConvAutoencoder" else X
    with pytest.raises(TrainingDiverged,
                       match=r"(loss became (inf|nan)|too large|times its start).* in epoch "
                             r"\d+\b.*the run diverged.*learning rate"):
        model.fit(data)
    # the parameters are those of the last good epoch: finite, and usable (a stacked model
    # that diverges in its layer-wise pre-training stops before its network exists)
    if name == "StackedAutoencoder" and not hasattr(model, "network_"):
        return
    assert all(np.isfinite(v).all() for v in model.parameters().values())
    assert np.isfinite(model.transform(data)).all()


def test_training_diverged_is_a_value_error_too():
    assert issubclass(TrainingDiverged, ValueError)
    assert issubclass(TrainingDiverged, FloatingPointError)


# -- float32 through the conv path ------------------------------------------------------------

def test_float32_stays_float32_through_the_conv_path():
    x32 = IMAGES.astype(np.float32)
    model = ConvAutoencoder(**_CONV).fit(x32)
    assert model.dtype_ == np.float32
    assert all(v.dtype == np.float32 for v in model.parameters().values())
    assert all(g.dtype == np.float32 for g in model.gradients(x32).values())
    assert model.transform(x32).dtype == np.float32
    assert model.reconstruct(x32).dtype == np.float32
    assert model.reconstruct(x32[:, 0]).shape == (6, 8, 8)
    # float64 input to a float32 model is cast to the model's precision, not upcast
    assert model.transform(IMAGES).dtype == np.float32
    for layer in (nn.Conv2d(1, 2, 3, rng=0), nn.ConvTranspose2d(1, 2, 3, rng=0),
                  nn.MaxPool2d(2)):
        nn.set_dtype(layer, np.float32)
        y = layer.forward(x32)
        assert y.dtype == np.float32
        assert layer.backward(np.ones_like(y)).dtype == np.float32
    model64 = ConvAutoencoder(**_CONV).fit(IMAGES)
    assert model64.transform(IMAGES).dtype == np.float64


def test_values_beyond_the_overflow_bound_are_refused_with_the_fix():
    assert max_magnitude(np.float64) == pytest.approx(1.16e77, rel=1e-2)
    assert max_magnitude(np.float32) == pytest.approx(4.29e9, rel=1e-2)
    with pytest.raises(ValueError, match=r"X has values up to 1e\+200 in magnitude.*Rescale"):
        PCA(2).fit(np.full_like(X, -1e200))
    with pytest.raises(ValueError, match="values up to 5e\\+10.*float32"):
        ConvAutoencoder(**_CONV).fit((IMAGES * 0 + 5e10).astype(np.float32))
    big = X * 1e70                          # below the bound: a correct, finite result
    pca = PCA(2).fit(big)
    np.testing.assert_allclose(pca.transform(big), PCA(2).fit(X).transform(X) * 1e70,
                               rtol=1e-9)


# -- the property test --------------------------------------------------------------------

def _conv():
    return ConvAutoencoder(**_CONV)


#: name -> (factory, good input, fit labels or None)
ESTIMATORS = {
    "PCA": (lambda: PCA(2), X, None),
    "LinearAutoencoder": (lambda: LinearAutoencoder(2, n_epochs=2, random_state=0), X, None),
    "Autoencoder": (lambda: Autoencoder(3, n_epochs=1, random_state=0), X, None),
    "Autoencoder-squared-f32": (lambda: Autoencoder(3, decoder="linear", loss="squared",
                                                    dtype="float32", n_epochs=1,
                                                    random_state=0), X, None),
    "DenoisingAutoencoder": (lambda: DenoisingAutoencoder(3, n_epochs=1, random_state=0), X,
                             None),
    "ContractiveAutoencoder": (lambda: ContractiveAutoencoder(3, n_epochs=1, random_state=0),
                               X, None),
    "PSD": (lambda: PredictiveSparseDecomposition(3, n_iter=1, z_max_iter=50,
                                                  random_state=0), X, None),
    "StackedAutoencoder": (lambda: StackedAutoencoder((3, 2), pretrain_epochs=1,
                                                      finetune_epochs=1, random_state=0), X, Y),
    "Eigenfaces": (lambda: Eigenfaces(2), X, Y),
    "ConvAutoencoder": (_conv, IMAGES, None),
}
_METHODS = ("transform", "reconstruct", "score", "predict", "predict_proba", "loss",
            "gradients", "sparse_code", "distance_from_face_space", "approximate")


@functools.lru_cache(maxsize=None)
def _fitted(name):
    make, data, y = ESTIMATORS[name]
    model = make().fit(data, y)
    return model, model.transform(data)


def _layers():
    rng = np.random.default_rng(0)
    return {
        "Linear": (nn.Linear(5, 3, rng=0), rng.random((4, 5))),
        "TiedLinear": (nn.TiedLinear(nn.Linear(5, 3, rng=0)), rng.random((4, 3))),
        "Sigmoid": (nn.Sigmoid(), rng.standard_normal((4, 3))),
        "ReLU": (nn.ReLU(), rng.standard_normal((4, 3))),
        "Tanh": (nn.Tanh(), rng.standard_normal((4, 3))),
        "Identity": (nn.Identity(), rng.standard_normal((4, 3))),
        "Conv2d": (nn.Conv2d(2, 3, 3, stride=2, padding=1, rng=0), rng.standard_normal((3, 2, 7, 7))),
        "ConvTranspose2d": (nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, rng=0),
                            rng.standard_normal((3, 2, 5, 5))),
        "MaxPool2d": (nn.MaxPool2d(2), rng.standard_normal((3, 2, 6, 6))),
        "Sequential": (nn.Sequential(nn.Linear(5, 3, rng=0), nn.Sigmoid()), rng.random((4, 5))),
    }


_KINDS = ("rank", "size", "nan", "inf", "empty", "object", "object_bad", "string", "complex",
          "huge", "big_ok", "ints", "list", "scalar", "none")


@st.composite
def bad_inputs(draw, good):
    """A bad (or merely unusual) version of the array ``good``: returns (kind, value)."""
    good = np.asarray(good, dtype=np.float64)
    kind = draw(st.sampled_from(_KINDS))
    shape = good.shape
    if kind == "rank":
        ndim = draw(st.sampled_from([d for d in range(6) if d != good.ndim]))
        return kind, draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim).map(
            lambda s: np.ones(s) * 0.5))
    if kind == "size":
        axis = draw(st.integers(1, good.ndim - 1))
        size = draw(st.integers(1, 9).filter(lambda s: s != shape[axis]))
        return kind, np.resize(good, shape[:axis] + (size,) + shape[axis + 1:])
    if kind in ("nan", "inf"):
        bad = good.copy()
        idx = draw(st.lists(st.integers(0, bad.size - 1), min_size=1, max_size=3))
        bad.flat[idx] = np.nan if kind == "nan" else draw(st.sampled_from([np.inf, -np.inf]))
        return kind, bad
    if kind == "empty":
        axis = draw(st.integers(0, good.ndim - 1))
        return kind, np.zeros(shape[:axis] + (0,) + shape[axis + 1:])
    if kind == "object":
        return kind, good.astype(object)
    if kind == "object_bad":
        bad = good.astype(object)
        bad.flat[draw(st.integers(0, bad.size - 1))] = draw(st.sampled_from(
            [{"a": 1}, "x", None, [1, 2], object()]))
        return kind, bad
    if kind == "string":
        return kind, good.astype(str)
    if kind == "complex":
        return kind, good + 1j * draw(st.sampled_from([0.0, 1.0]))
    if kind in ("huge", "big_ok"):
        # "huge": beyond the overflow bound; "big_ok": large but within it
        lo, hi = (78, 308) if kind == "huge" else (3, 70)
        exponent = draw(st.integers(lo, hi))
        signs = draw(st.sampled_from([1.0, -1.0, "mixed"]))
        scale = np.where(np.arange(good.size).reshape(shape) % 2, 1.0, -1.0) \
            if signs == "mixed" else signs
        unit = good / max(float(np.abs(good).max()), 1.0)   # |unit| <= 1: no overflow here
        return kind, unit * scale * 10.0 ** exponent
    if kind == "ints":
        return kind, np.round(good * 3).astype(draw(st.sampled_from([np.int8, np.int64])))
    if kind == "list":
        return kind, good.tolist()
    if kind == "scalar":
        return kind, draw(st.sampled_from([1.0, 0, np.float64(2.0), "a"]))
    return kind, None


def _as_float(value):
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _check_call(f, kind, value, *, allow_inf=False):
    """f(value) raises ValueError/TypeError with a message, or returns finite output; for
    input that is just a different encoding of numbers, the output equals f(float64 input)."""
    try:
        out = f(value)
    except (ValueError, TypeError) as exc:
        assert len(str(exc)) >= 20, f"{kind}: terse error {exc!r}"
        return
    # anything else (IndexError, LinAlgError, a numba TypingError, a RuntimeWarning made an
    # error by the suite's settings) propagates and fails the test
    outs = out.values() if isinstance(out, dict) else (out if isinstance(out, tuple) else [out])
    for o in outs:
        a = _as_float(o)
        if a is not None:
            assert not np.isnan(a).any(), f"{kind}: NaN in the output"
            assert allow_inf or np.isfinite(a).all(), f"{kind}: inf in the output"
    if kind in ("object", "list", "ints") and isinstance(out, np.ndarray):
        ref = f(_as_float(value))
        assert np.array_equal(out, ref), f"{kind}: the result differs from float64 input"


_CI = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
               deadline=None)


@pytest.mark.parametrize("name", list(ESTIMATORS))
@_CI
@given(data=st.data())
def test_estimators_on_bad_input(name, data):
    model, codes = _fitted(name)
    make, good, y = ESTIMATORS[name]
    methods = ["fit"] + [m for m in _METHODS + ("inverse_transform",) if hasattr(model, m)]
    method = data.draw(st.sampled_from(methods), label="method")
    kind, value = data.draw(bad_inputs(codes if method == "inverse_transform" else good),
                            label="input")
    if method == "fit":
        def f(v):
            labels = y if y is not None and np.shape(v)[:1] == y.shape else None
            return make().fit(v, labels).transform(v)
        _check_call(f, kind, value)
    elif method == "score" and y is not None:    # a classifier's score needs the labels
        _check_call(lambda v: model.score(v, y if np.shape(v)[:1] == y.shape else None),
                    kind, value)
    else:
        _check_call(getattr(model, method), kind, value)


@pytest.mark.parametrize("name", list(_layers()))
@_CI
@given(data=st.data())
def test_layers_on_bad_input(name, data):
    layer, x = _layers()[name]
    direction = data.draw(st.sampled_from(["forward", "backward"]), label="direction")
    if direction == "forward":
        kind, value = data.draw(bad_inputs(x), label="x")
        _check_call(layer.forward, kind, value)
    else:
        out = layer.forward(x)
        kind, value = data.draw(bad_inputs(out), label="dout")

        def backward(dout):
            layer.zero_grad()
            dx = layer.backward(dout)
            return (dx, *layer.grads.values())
        _check_call(backward, kind, value)


@pytest.mark.parametrize("name", ["squared_error", "squared_error_grad", "cross_entropy",
                                  "cross_entropy_grad", "cross_entropy_with_logits",
                                  "cross_entropy_with_logits_grad", "l1", "l1_grad"])
@_CI
@given(data=st.data())
def test_losses_on_bad_input(name, data):
    f = getattr(losses, name)
    x = np.random.default_rng(0).random((4, 3))
    which = data.draw(st.sampled_from(["prediction", "target"]))
    kind, value = data.draw(bad_inputs(x))
    if name.startswith("l1"):
        call = f
    elif which == "prediction":
        def call(v):
            return f(v, x)
    else:
        def call(v):
            return f(x, v)
    if name in ("cross_entropy", "cross_entropy_grad"):
        # from probabilities, -log(0) is +inf itself: a prediction of exactly 0 or 1 against
        # the other target is an infinite loss, the right answer (never NaN, though)
        with np.errstate(divide="ignore", over="ignore"):
            _check_call(call, kind, value, allow_inf=True)
    else:
        _check_call(call, kind, value)
