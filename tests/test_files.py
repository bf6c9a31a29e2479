"""npae's own files (models, checkpoints): one reader, a class and a version in every file,
resume refusing what it cannot continue, and every damaged file a FileFormatError naming it.

tests/data/npae01_*.npz were written by npae 0.1 (commit 6fc7852), with
``Autoencoder(3, n_epochs=2, batch_size=5, random_state=0).fit(X, checkpoint=...)`` and
``save`` for ``X = np.random.default_rng(0).random((10, 4))``; the .npy holds that model's
``transform(X[:3])``.
"""
import json
import os
import shutil

import numpy as np
import pytest

import npae
from npae import train
from npae.exceptions import FileFormatError
from npae.models import PSD, Autoencoder, SparseAutoencoder, VariationalAutoencoder
from npae.optim import SGD

DATA = os.path.join(os.path.dirname(__file__), "data")
X = np.random.default_rng(0).random((10, 4))


def _rewrite(path, change):
    """Rewrite the .npz at ``path`` with ``change(arrays)`` applied (a hand-edited file)."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _header(arrays):
    return json.loads(str(arrays["__npae__"]))


def _set_header(arrays, **changes):
    meta = _header(arrays)
    for key, value in changes.items():
        meta[key] = value
    arrays["__npae__"] = np.array(json.dumps(meta))


# -- files written by npae 0.1 --------------------------------------------------------------

def test_a_model_file_of_npae_0_1_still_loads():
    model = npae.load(os.path.join(DATA, "npae01_autoencoder.npz"))
    expected = np.load(os.path.join(DATA, "npae01_autoencoder_expected_codes.npy"))
    np.testing.assert_array_equal(model.transform(X[:3]), expected)


def test_a_checkpoint_of_npae_0_1_still_resumes(tmp_path):
    ckpt = str(tmp_path / "old.npz")
    shutil.copy(os.path.join(DATA, "npae01_autoencoder_checkpoint.npz"), ckpt)
    with np.load(ckpt) as f:
        assert "__npae__" not in f.files and int(f["epoch"]) == 2
        saved = list(f["history/loss"])
    m = Autoencoder(3, n_epochs=3, batch_size=5, random_state=0).fit(X, checkpoint=ckpt,
                                                                      resume=True)
    assert m.history_["loss"][:2] == saved and len(m.history_["loss"]) == 3


# -- what files carry -----------------------------------------------------------------------

def test_model_files_and_checkpoints_carry_class_and_version(tmp_path):
    ckpt, path = str(tmp_path / "c.npz"), str(tmp_path / "m.npz")
    Autoencoder(3, n_epochs=1, batch_size=5, random_state=0).fit(X, checkpoint=ckpt).save(path)
    with np.load(ckpt) as f:
        meta = _header(f)
    assert (meta["format"], meta["version"], meta["class"], meta["epoch"]) == (
        "npae-checkpoint", 1, "Autoencoder", 1)
    with np.load(path) as f:
        meta = _header(f)
    assert (meta["format"], meta["version"], meta["class"]) == ("npae-model-1", 1,
                                                                "Autoencoder")


# -- resume refuses what it cannot continue -------------------------------------------------

def test_resume_refuses_a_checkpoint_of_another_model_naming_both(tmp_path):
    ckpt = str(tmp_path / "vae.npz")
    VariationalAutoencoder(3, 2, n_epochs=1, random_state=0).fit(X, checkpoint=ckpt)
    with pytest.raises(FileFormatError, match=r"vae\.npz.*written by a VariationalAutoencoder "
                                              r"run, not a Autoencoder"):
        Autoencoder(3, n_epochs=2).fit(X, checkpoint=ckpt, resume=True)


@pytest.mark.parametrize("epoch, match", [(-3, r"epoch -3.*negative"),
                                          (7, r"run of 7 epochs, more than n_epochs=2")])
def test_resume_refuses_an_impossible_epoch(tmp_path, epoch, match):
    ckpt = str(tmp_path / "c.npz")
    Autoencoder(3, n_epochs=1, batch_size=5, random_state=0).fit(X, checkpoint=ckpt)
    _rewrite(ckpt, lambda a: a.__setitem__("epoch", np.array(epoch)))
    with pytest.raises(FileFormatError, match=match):
        Autoencoder(3, n_epochs=2, batch_size=5).fit(X, checkpoint=ckpt, resume=True)


def test_fit_loop_stops_when_its_callback_returns_true():
    params = {"w": np.zeros(1)}
    seen = []

    def callback(epoch, history):
        seen.append(epoch)
        return epoch == 2      # stop after the third epoch
    hist = train.fit_loop(params, lambda _: (1.0 / (1 + params["w"][0]), {"w": -np.ones(1)}),
                          np.zeros((4, 1)), optimizer=SGD(params, lr=0.5), n_epochs=10,
                          batch_size=4, callback=callback)
    assert seen == [0, 1, 2] and len(hist["loss"]) == 3 and params["w"][0] == 1.5


# -- damaged files: always FileFormatError naming the file ----------------------------------

def _checkpoint(tmp_path):
    ckpt = str(tmp_path / "ckpt.npz")
    Autoencoder(3, n_epochs=1, batch_size=5, random_state=0).fit(X, checkpoint=ckpt)
    return ckpt


def _model_file(tmp_path):
    path = str(tmp_path / "model.npz")
    Autoencoder(3, n_epochs=1, batch_size=5, random_state=0).fit(X).save(path)
    return path


def _truncate(path):
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])


def _bad_zip(path):
    data = bytearray(open(path, "rb").read())
    data[40:200] = b"\x00" * 160     # inside the first member: a bad CRC or a bad header
    open(path, "wb").write(bytes(data))


def _array_edit(value):
    def edit(path):
        _rewrite(path, lambda a: a.__setitem__("param/W", value(a["param/W"])))
    return edit


DAMAGE = {
    "truncated (EOF)": _truncate,
    "bad zip member": _bad_zip,
    "NaN weight": _array_edit(lambda W: np.where(np.eye(*W.shape) > 0, np.nan, W)),
    "complex weight": _array_edit(lambda W: W + 1j),
    "string weight": _array_edit(lambda W: W.astype(str)),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_checkpoint_is_a_file_format_error(tmp_path, damage):
    ckpt = _checkpoint(tmp_path)
    DAMAGE[damage](ckpt)
    with pytest.raises(FileFormatError, match=r"ckpt\.npz"):
        Autoencoder(3, n_epochs=2, batch_size=5).fit(X, checkpoint=ckpt, resume=True)


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_model_file_is_a_file_format_error(tmp_path, damage):
    path = _model_file(tmp_path)
    DAMAGE[damage](path)
    with pytest.raises(FileFormatError, match=r"model\.npz"):
        npae.load(path)


@pytest.mark.parametrize("units", [10**12, -3])
def test_a_header_edited_to_impossible_sizes_is_damaged_not_memory_error(tmp_path, units):
    path = _model_file(tmp_path)

    def edit(a):
        meta = _header(a)
        meta["params"]["n_hidden"] = units
        a["__npae__"] = np.array(json.dumps(meta))
    _rewrite(path, edit)
    with pytest.raises(FileFormatError, match=r"model\.npz.*(damaged|not a valid).*n_hidden"):
        npae.load(path)


def test_a_directory_is_not_a_file(tmp_path):
    with pytest.raises(FileFormatError, match=r"is a directory"):
        npae.load(str(tmp_path))
    with pytest.raises(FileFormatError, match=r"is a directory"):
        Autoencoder(3, n_epochs=1).fit(X, checkpoint=str(tmp_path), resume=True)


def test_a_newer_file_version_is_refused_naming_it(tmp_path):
    path = _model_file(tmp_path)
    _rewrite(path, lambda a: _set_header(a, version=2))
    with pytest.raises(FileFormatError, match=r"model\.npz.*version 2.*reads.*version 1"):
        npae.load(path)


@pytest.mark.parametrize("damage", ["truncated (EOF)", "NaN weight"])
def test_the_sparse_autoencoders_lbfgs_checkpoint_goes_through_the_one_reader(tmp_path,
                                                                              damage):
    ckpt = str(tmp_path / "ckpt.npz")
    SparseAutoencoder(3, max_iter=2, random_state=0).fit(X, checkpoint=ckpt)
    DAMAGE[damage](ckpt)
    with pytest.raises(FileFormatError, match=r"ckpt\.npz"):
        SparseAutoencoder(3, max_iter=4).fit(X, checkpoint=ckpt, resume=True)


def test_psd_resumes_from_its_checkpoint_bit_identically(tmp_path):
    full = PSD(4, lam=0.1, n_iter=3, batch_size=5, random_state=0).fit(X)
    ckpt = str(tmp_path / "psd.npz")
    PSD(4, lam=0.1, n_iter=2, batch_size=5, random_state=0).fit(X, checkpoint=ckpt)
    resumed = PSD(4, lam=0.1, n_iter=3, batch_size=5, random_state=0).fit(
        X, checkpoint=ckpt, resume=True)
    for k, v in full.parameters().items():
        np.testing.assert_array_equal(resumed.parameters()[k], v)
    assert resumed.history_ == full.history_


@pytest.mark.slow
def test_the_sparse_autoencoders_resume_after_a_kill_reaches_the_uninterrupted_objective(
        tmp_path):
    """scipy's L-BFGS cannot be handed its memory: a resumed run restarts it (with
    ``npae.train.RESTART_ITERATIONS`` more iterations to rebuild the memory) and ends within
    1 % of the uninterrupted run's objective."""
    from sklearn.datasets import load_digits
    data = load_digits().data[:300] / 16.0
    kw = dict(n_hidden=25, rho=0.1, beta=3.0, weight_decay=1e-3, random_state=0)
    J_full = SparseAutoencoder(**kw).fit(data).objective(data)
    ckpt = str(tmp_path / "sae.npz")
    killed = SparseAutoencoder(**kw)
    evaluate, calls = killed._objective_and_gradients, [0]

    def dies_after_30(*args, **kwargs):
        calls[0] += 1
        if calls[0] > 30:
            raise KeyboardInterrupt     # the kill, between two checkpoints
        return evaluate(*args, **kwargs)
    killed._objective_and_gradients = dies_after_30
    with pytest.raises(KeyboardInterrupt):
        killed.fit(data, checkpoint=ckpt)
    resumed = SparseAutoencoder(**kw).fit(data, checkpoint=ckpt, resume=True)
    assert abs(resumed.objective(data) - J_full) <= 0.01 * J_full
    assert resumed.n_iter_ <= kw.get("max_iter", 400) + train.RESTART_ITERATIONS
