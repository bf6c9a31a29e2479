"""model.save(path) / npae.load(path) for every model: exact round trips, clear errors for
truncated, damaged and foreign files, no code run from a file, atomic writes."""
import json
import os
import pickle

import numpy as np
import pytest

import npae
from npae.models import (PCA, Autoencoder, ContractiveAutoencoder, ConvAutoencoder,
                         DenoisingAutoencoder, Eigenfaces, LinearAutoencoder, NotFittedError,
                         PredictiveSparseDecomposition, StackedAutoencoder)

_rng = np.random.default_rng(7)
X = _rng.random((24, 6))                       # in [0, 1]: valid for the cross-entropy too
Y = np.tile(["cat", "dog", "owl"], 8)          # string labels survive as a unicode array
IMAGES = (2 * _rng.random((6, 1, 8, 8)) - 1).astype(np.float32)
_TINY_CONV = dict(encoder=(("conv", 2, 3, 2, 1), ("relu",), ("maxpool", 2, 1)),
                  decoder=(("convT", 2, 3, 1, 0), ("relu",), ("convT", 1, 4, 2, 2), ("tanh",)),
                  n_epochs=1, batch_size=4, random_state=0, verbose=False)

#: name -> (unfitted model, fit arguments)
MODELS = {
    "PCA": (PCA(3), (X,)),
    "PCA-eigh": (PCA(2, solver="eigh"), (X,)),
    "LinearAutoencoder": (LinearAutoencoder(2, n_epochs=3, random_state=0), (X,)),
    "LinearAutoencoder-tied": (LinearAutoencoder(2, tied=True, center=False, n_epochs=3,
                                                 random_state=0), (X,)),
    "Autoencoder": (Autoencoder(3, n_epochs=2, batch_size=8, random_state=0), (X,)),
    "Autoencoder-untied-float32": (Autoencoder(3, tied=False, decoder="linear", loss="squared",
                                               dtype="float32", n_epochs=2, batch_size=8,
                                               random_state=0), (X,)),
    "DenoisingAutoencoder": (DenoisingAutoencoder(3, noise="gaussian", n_epochs=2,
                                                  decoder="linear", loss="squared",
                                                  batch_size=8, random_state=0), (X,)),
    "ContractiveAutoencoder": (ContractiveAutoencoder(3, lam=0.5, n_epochs=2, batch_size=8,
                                                      random_state=0), (X,)),
    "PSD": (PredictiveSparseDecomposition(4, lam=0.1, n_iter=1, batch_size=8, random_state=0),
            (X,)),
    "PSD-tanh-nobias": (PredictiveSparseDecomposition(4, encoder="tanh", encoder_bias=False,
                                                      n_iter=1, batch_size=8, random_state=0),
                        (X,)),
    "StackedAutoencoder": (StackedAutoencoder((4, 2), pretrain_epochs=1, finetune_epochs=1,
                                              batch_size=8, random_state=0), (X,)),
    "StackedAutoencoder-classifier": (StackedAutoencoder((4, 2), kind="denoising",
                                                         pretrain_epochs=1, finetune_epochs=1,
                                                         batch_size=8, random_state=0), (X, Y)),
    "Eigenfaces": (Eigenfaces(3, match="mean"), (X.reshape(24, 2, 3), Y)),
    "ConvAutoencoder": (ConvAutoencoder(**_TINY_CONV), (IMAGES,)),
}

_OUTPUTS = ("transform", "reconstruct", "predict", "predict_proba", "score",
            "distance_from_face_space", "sparse_code")


def _outputs(model, data):
    """Everything the model computes from data, by method name (failures recorded too)."""
    out = {}
    for name in _OUTPUTS:
        if hasattr(model, name):
            try:
                out[name] = getattr(model, name)(data)
            except (ValueError, TypeError) as exc:      # e.g. predict without labels
                out[name] = (type(exc), str(exc))
    codes = out.get("transform")
    if isinstance(codes, np.ndarray) and hasattr(model, "inverse_transform"):
        out["inverse_transform"] = model.inverse_transform(codes)
    return out


def _assert_identical(a, b, what):
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape, what
        assert np.array_equal(a, b), f"{what} differs after load"        # bit for bit
    else:
        assert type(a) is type(b) and a == b, what


@pytest.fixture(scope="module")
def fitted():
    return {name: model.fit(*args) for name, (model, args) in MODELS.items()}


@pytest.mark.parametrize("name", list(MODELS))
def test_round_trip_is_exact(name, fitted, tmp_path):
    model = fitted[name]
    data = MODELS[name][1][0]
    path = tmp_path / "model.npz"
    assert model.save(path) == os.fspath(path)
    loaded = npae.load(path)
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()          # tuples stay tuples
    for attr, value in vars(model).items():                    # every public fitted attribute
        if attr.endswith("_") and not attr.startswith("_") and not hasattr(value, "forward"):
            got = getattr(loaded, attr)
            if isinstance(value, np.ndarray):
                _assert_identical(value, got, attr)
            elif isinstance(value, BaseException) or hasattr(value, "get_params"):
                assert type(got) is type(value)
            else:
                assert got == value, attr
    if hasattr(model, "parameters"):
        p, q = model.parameters(), loaded.parameters()
        assert p.keys() == q.keys()
        for k in p:
            _assert_identical(p[k], q[k], f"parameter {k}")
    before, after = _outputs(model, data), _outputs(loaded, data)
    assert before.keys() == after.keys()
    for k in before:
        _assert_identical(before[k], after[k], k)


def test_loaded_model_keeps_float32_through_the_conv_path(fitted, tmp_path):
    fitted["ConvAutoencoder"].save(tmp_path / "c.npz")
    loaded = npae.load(tmp_path / "c.npz")
    assert loaded.dtype_ == np.float32 and loaded.transform(IMAGES).dtype == np.float32
    assert all(v.dtype == np.float32 for v in loaded.parameters().values())


def test_unfitted_model_saves_its_hyperparameters_only(tmp_path):
    model = StackedAutoencoder((5, 3), kind="contractive", lam=0.3)
    model.save(tmp_path / "u.npz")
    loaded = npae.load(tmp_path / "u.npz")
    assert loaded.get_params() == model.get_params() and loaded.layer_sizes == (5, 3)
    with pytest.raises(NotFittedError):
        loaded.transform(X)


def test_a_generator_random_state_is_refused_with_the_fix(tmp_path):
    ae = Autoencoder(2, n_epochs=1, random_state=np.random.default_rng(0)).fit(X)
    with pytest.raises(TypeError, match=r"random_state=Generator.*set it to a seed"):
        ae.save(tmp_path / "g.npz")
    assert not os.listdir(tmp_path)
    ae.set_params(random_state=0).save(tmp_path / "ok.npz")        # a seed is fine
    assert npae.load(tmp_path / "ok.npz").random_state == 0


# -- damaged and foreign files ------------------------------------------------------------

@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "ae.npz"
    Autoencoder(3, n_epochs=1, random_state=0).fit(X).save(path)
    return path.read_bytes()


@pytest.mark.parametrize("keep", [0, 1, 30, 0.25, 0.5, 0.9, -22, -1])
def test_truncated_file_gives_a_clear_error(keep, good_bytes, tmp_path):
    n = len(good_bytes)
    cut = keep if isinstance(keep, int) and keep >= 0 else (
        n + keep if isinstance(keep, int) else int(keep * n))
    path = tmp_path / "cut.npz"
    path.write_bytes(good_bytes[:cut])
    with pytest.raises(ValueError, match=r"cut\.npz.*(not a readable|damaged|not an npae)"):
        npae.load(path)


def test_flipped_bytes_give_a_clear_error(good_bytes, tmp_path):
    """Each member of the .npz has a CRC: a damaged array is noticed, not loaded silently."""
    for pos in range(40, len(good_bytes) - 200, max(1, len(good_bytes) // 25)):
        data = bytearray(good_bytes)
        data[pos] ^= 0xFF
        path = tmp_path / "flip.npz"
        path.write_bytes(bytes(data))
        try:
            model = npae.load(path)
        except ValueError as exc:
            assert "flip.npz" in str(exc)
        else:  # a flip the checks cannot see (zip padding) must leave a working model
            assert np.isfinite(model.transform(X)).all()


def _write_header(path, meta, **arrays):
    np.savez(path, __npae__=np.array(json.dumps(meta)), **arrays)


@pytest.mark.parametrize("make, message", [
    (lambda p: np.savez(p, W=np.ones(3)), "no npae header"),
    (lambda p: np.save(p, np.ones(3)), r"not an npae model file \(a single \.npy array, no npae header"),
    (lambda p: p.write_text("W,b\n1,2\n"), r"not an npae model file \(not a \.npz archive: it starts b'W,b"),
    (lambda p: p.write_bytes(b""), r"not an npae model file \(an empty file"),
    (lambda p: p.write_text("import os\nos.system('echo hi')\n"),
     r"foreign\.npz' is not an npae model file \(not a \.npz archive"),
    (lambda p: _write_header(p, {"format": "npae-model-99", "npae_version": "9.0"}),
     "format 'npae-model-99'.*npae 9.0"),
    (lambda p: _write_header(p, ["not", "a", "dict"]), "format None"),
    (lambda p: _write_header(p, {"format": "npae-model-1", "class": "Popen", "params": {}}),
     "'Popen', which is not an npae model"),
    (lambda p: _write_header(p, {"format": "npae-model-1", "class": "PCA",
                                 "params": {"n_components": 2, "evil": 1}}),
     "not a valid npae model file.*evil"),
    (lambda p: _write_header(p, {"format": "npae-model-1", "class": "PCA"}),
     "not a valid npae model file.*params"),
    (lambda p: _write_header(p, {"format": "npae-model-1", "class": "LinearAutoencoder",
                                 "params": {"n_components": 2}, "attributes": {
                                     "n_features_in_": 6}},
                             **{"param/U": np.ones((6, 3)), "param/V": np.ones((2, 6))}),
     r"parameter 'U' has shape \(6, 3\).*\(6, 2\)"),
    (lambda p: _write_header(p, {"format": "npae-model-1", "class": "LinearAutoencoder",
                                 "params": {"n_components": 2}, "attributes": {
                                     "n_features_in_": 6}}, **{"param/Q": np.ones(2)}),
     r"saved parameters \['Q'\]"),
])
def test_foreign_file_gives_a_clear_error(make, message, tmp_path):
    path = tmp_path / "foreign.npz"
    make(path)
    if not path.exists():            # np.save appends .npy
        path = tmp_path / "foreign.npz.npy"
    with pytest.raises(ValueError, match=message):
        npae.load(path)


class _Exploit:
    """Unpickling this would run ``open(marker, "w")``: the classic pickle payload."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("wrap", ["raw_pickle", "inside_npz"])
def test_a_file_with_pickled_code_is_refused_and_never_run(wrap, tmp_path):
    marker = str(tmp_path / "pwned")
    path = tmp_path / "evil.npz"
    if wrap == "raw_pickle":
        path.write_bytes(pickle.dumps(_Exploit(marker)))
    else:  # a valid header plus an object array: numpy would unpickle it if allowed
        np.savez(path, __npae__=np.array(json.dumps({"format": "npae-model-1", "class": "PCA",
                                                     "params": {}})),
                 **{"attr/mean_": np.array([_Exploit(marker)], dtype=object)})
    with pytest.raises(ValueError, match="evil.npz"):
        npae.load(path)
    assert not os.path.exists(marker)


def test_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        npae.load(tmp_path / "nope.npz")


# -- atomic writes -------------------------------------------------------------------------

@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_interrupted_save_keeps_the_old_file_and_leaves_no_temporary(error, fitted, tmp_path,
                                                                     monkeypatch):
    path = tmp_path / "model.npz"
    fitted["PCA"].save(path)
    old = path.read_bytes()
    real_savez = np.savez

    def savez_then_fail(file, *args, **kwds):
        real_savez(file, *args, **kwds)       # the new model is half on disk ...
        file.write(b"garbage")
        raise error                           # ... when the save is interrupted

    monkeypatch.setattr(np, "savez", savez_then_fail)
    with pytest.raises(type(error)):
        fitted["Autoencoder"].save(path)
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["model.npz"]
    assert isinstance(npae.load(path), PCA)


def test_save_replaces_the_old_file_and_creates_directories(fitted, tmp_path):
    path = tmp_path / "new" / "dir" / "model.npz"
    fitted["PCA"].save(path)
    fitted["Eigenfaces"].save(path)
    assert isinstance(npae.load(path), Eigenfaces)
    assert os.listdir(path.parent) == ["model.npz"]


def test_object_labels_are_refused_at_save_time(tmp_path):
    labels = np.array([1, "a", 2.5, None] * 6, dtype=object)
    model = Eigenfaces(2).fit(X, labels.astype(str))
    model.labels_ = labels
    with pytest.raises(TypeError, match="dtype object; npae files hold plain arrays"):
        model.save(tmp_path / "obj.npz")
    assert not os.listdir(tmp_path)
