"""What goes wrong always speaks: a NaN weight in a model file, a run that explodes while
staying finite, data a ConvAutoencoder cannot reconstruct, damaged checkpoints, an --out
that is a file, a resume with fewer epochs than the checkpoint holds, and the temporary
files of interrupted saves. Each test is a reproducer that passed silently before."""
import os
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import npae
from npae import train
from npae._io import atomic_write, remove_stale_temporaries
from npae.exceptions import FileFormatError, TrainingDiverged
from npae.models import (PCA, Autoencoder, ContractiveAutoencoder, ConvAutoencoder,
                         LinearAutoencoder)
from npae.optim import SGD

_rng = np.random.default_rng(0)
X = _rng.random((40, 6))
IMAGES = 2 * _rng.random((8, 1, 8, 8)) - 1
_CONV = dict(encoder=(("conv", 2, 3, 2, 1), ("relu",), ("maxpool", 2, 1)),
             decoder=(("convT", 2, 3, 1, 0), ("relu",), ("convT", 1, 4, 2, 2), ("tanh",)),
             batch_size=4, random_state=0, verbose=False)


def _rewrite_npz(path, **changes):
    """The .npz at ``path`` with some arrays replaced (as a damaged or edited file)."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays.update(changes)
    np.savez(path, **arrays)


# -- 1. loading checks what it loads ---------------------------------------------------------

def test_load_refuses_a_nan_weight_naming_file_and_array(tmp_path):
    path = str(tmp_path / "ae.npz")
    Autoencoder(3, n_epochs=1, random_state=0).fit(X).save(path)
    with np.load(path) as f:
        W = f["param/W"].copy()
    W[1, 2] = np.nan
    _rewrite_npz(path, **{"param/W": W})
    with pytest.raises(ValueError, match=r"ae\.npz'?: array 'param/W' holds 1 NaN or inf "
                                         r"value\(s\) \(first at index \(1, 2\)\)"):
        npae.load(path)


def test_load_refuses_inf_in_a_fitted_array_too(tmp_path):
    path = str(tmp_path / "pca.npz")
    PCA(2).fit(X).save(path)
    with np.load(path) as f:
        C = f["attr/components_"].copy()
    C[0, 0] = -np.inf
    _rewrite_npz(path, **{"attr/components_": C})
    with pytest.raises(FileFormatError, match=r"pca\.npz'?: array 'attr/components_' holds 1"):
        npae.load(path)


def test_load_refuses_a_parameter_of_the_wrong_shape(tmp_path):
    path = str(tmp_path / "lin.npz")
    LinearAutoencoder(2, tied=True, n_epochs=2, learning_rate=0.01).fit(X).save(path)
    _rewrite_npz(path, **{"param/W": np.ones((3, 6))})
    with pytest.raises(ValueError, match=r"lin\.npz'?: parameter 'W' has shape \(3, 6\).*"
                                         r"hyper-parameters describe has \(2, 6\)"):
        npae.load(path)


def test_load_of_a_python_file_says_it_is_not_an_npae_model_file(tmp_path):
    path = tmp_path / "train.py"
    path.write_text("import numpy as np\nprint('hello')\n")
    with pytest.raises(ValueError) as info:
        npae.load(path)
    assert "train.py' is not an npae model file" in str(info.value)
    assert "pickle" not in str(info.value)


def test_load_refuses_a_save_s_temporary_file(tmp_path):
    path = str(tmp_path / "m.npz")
    PCA(2).fit(X).save(path)
    tmp = tmp_path / ".npae-abc123.tmp"
    tmp.write_bytes(open(path, "rb").read())      # even a complete one
    with pytest.raises(FileFormatError, match="temporary file of an interrupted npae save"):
        npae.load(tmp)


# -- 3. divergence: every model and optimiser, one loop ---------------------------------------

@pytest.mark.parametrize("make, data", [
    (lambda: LinearAutoencoder(2, optimizer="adam", learning_rate=1e6, n_epochs=20,
                               random_state=0), X),
    (lambda: Autoencoder(3, optimizer="adam", learning_rate=1e6, n_epochs=20, batch_size=8,
                         random_state=0), X),
    (lambda: Autoencoder(3, optimizer="sgd", learning_rate=1e6, n_epochs=20, batch_size=8,
                         random_state=0), X),
    (lambda: Autoencoder(3, decoder="linear", loss="squared", optimizer="adam",
                         learning_rate=1e6, n_epochs=20, batch_size=8, random_state=0), X),
    (lambda: ContractiveAutoencoder(3, optimizer="adam", learning_rate=1e6, n_epochs=20,
                                    batch_size=8, random_state=0), X),
    (lambda: ConvAutoencoder(**{**_CONV, "learning_rate": 1e6, "n_epochs": 20}), IMAGES),
], ids=["linear-adam", "ae-adam", "ae-sgd", "ae-squared-adam", "contractive-adam", "conv-adam"])
def test_a_run_that_explodes_while_finite_stops(make, data):
    """Before: the loss went from ~7 to ~1e22 and fit returned normally."""
    model = make()
    with pytest.raises(TrainingDiverged, match=r"in epoch \d+\b.*the run diverged\. Lower the "
                                               r"learning rate.*restored to"):
        model.fit(data)
    assert all(np.isfinite(v).all() for v in model.parameters().values())
    assert np.isfinite(model.objective(data))


def _scripted_loop(epoch_losses, n_epochs, noisy=False, n=8, batch_size=4):
    """fit_loop on a parameter w whose loss per epoch follows ``epoch_losses``; the
    parameter records the epoch it was stepped in, so the restore point can be read off."""
    params = {"w": np.zeros(1)}
    calls = {"batches": 0}
    per_epoch = -(-n // batch_size)

    def loss_and_grad(_):
        epoch = calls["batches"] // per_epoch
        calls["batches"] += 1
        return epoch_losses[epoch], {"w": -np.ones(1)}   # each step adds lr * 1 to w
    hist = train.fit_loop(params, loss_and_grad, np.zeros((n, 1)),
                          optimizer=SGD(params, lr=1.0), n_epochs=n_epochs,
                          batch_size=batch_size, shuffle=False, noisy=noisy)
    return params, hist


def test_growth_past_a_million_times_the_start_stops_at_once():
    params = {"w": np.zeros(1)}
    losses = iter([1.0, 2.0, 5e6])

    def loss_and_grad(_):
        return next(losses), {"w": -np.ones(1)}
    with pytest.raises(TrainingDiverged, match=r"reached 5e\+06, more than 1e\+06 times its "
                                               r"start \(1\) in epoch 2.*start of epoch 2"):
        train.fit_loop(params, loss_and_grad, np.zeros((2, 1)), optimizer=SGD(params, lr=1.0),
                       n_epochs=3, batch_size=1, shuffle=False)
    assert params["w"][0] == 2.0          # the values epoch 2 started from


def test_a_loss_growing_epoch_after_epoch_stops_with_the_best_epoch_restored():
    with pytest.raises(TrainingDiverged, match=r"grew 3 epochs in a row, from 1 in epoch 1 to "
                                               r"1\.3 in epoch 5.*after epoch 2 \(mean loss 0\.9\)"):
        _scripted_loop([1.0, 0.9, 1.1, 1.2, 1.3, 1.0], n_epochs=6)


def test_a_run_ending_above_its_start_is_not_returned_as_a_fit():
    with pytest.raises(TrainingDiverged, match=r"ended with a mean training loss of 1\.5, above "
                                               r"its first epoch's 1 .*after epoch 1"):
        _scripted_loop([1.0, 1.5], n_epochs=2)
    # a run that stays level within rounding, or goes down, returns
    _scripted_loop([1.0, 1.0 + 1e-9], n_epochs=2)
    _, hist = _scripted_loop([1.0, 0.5, 0.7], n_epochs=3)
    assert hist["loss"] == [1.0, 0.5, 0.7]


def test_a_noisy_objective_gets_the_noise_margin():
    _scripted_loop([1.0, 1.05], n_epochs=2, noisy=True)               # corruption noise
    with pytest.raises(TrainingDiverged):
        _scripted_loop([1.0, 1.2], n_epochs=2, noisy=True)
    _scripted_loop([1.0, 1.5], n_epochs=2, noisy=True, n=4, batch_size=4)   # one batch: off


# -- 4. ConvAutoencoder's data against its output layer ----------------------------------------

def test_conv_autoencoder_refuses_data_outside_its_tanh_range():
    far = 100 + np.random.default_rng(0).standard_normal((8, 1, 8, 8))
    with pytest.raises(ValueError, match=r"X has values in \[9\d\.\d+, 10\d\.\d+\], but the "
                                         r"decoder ends in Tanh.*\[-1, 1\].*"
                                         r"npae\.data\.normalize"):
        ConvAutoencoder(**{**_CONV, "n_epochs": 1}).fit(far)
    with pytest.raises(ValueError, match=r"X_val has values in .*Tanh"):
        ConvAutoencoder(**{**_CONV, "n_epochs": 1}).fit(IMAGES, X_val=IMAGES + 3)
    # a decoder without the Tanh fits any range, and sigmoid fits [0, 1]
    linear_out = {**_CONV, "decoder": _CONV["decoder"][:-1], "n_epochs": 1}
    assert np.isfinite(ConvAutoencoder(**linear_out).fit(far / 100).history_["loss"]).all()
    sig = {**_CONV, "decoder": _CONV["decoder"][:-1] + (("sigmoid",),), "n_epochs": 1}
    ConvAutoencoder(**sig).fit((IMAGES + 1) / 2)
    with pytest.raises(ValueError, match="decoder ends in Sigmoid.*X / 255"):
        ConvAutoencoder(**sig).fit(IMAGES)


# -- 5. checkpoints, --out, resume -----------------------------------------------------------

def _checkpointed(tmp_path, n_epochs=3):
    ckpt = str(tmp_path / "ckpt.npz")
    Autoencoder(3, n_epochs=n_epochs, batch_size=8, random_state=0).fit(X, checkpoint=ckpt)
    return ckpt


def test_resuming_from_a_truncated_checkpoint_names_it(tmp_path):
    ckpt = _checkpointed(tmp_path)
    data = open(ckpt, "rb").read()
    open(ckpt, "wb").write(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"ckpt\.npz' is damaged or truncated.*a checkpoint"):
        Autoencoder(3, n_epochs=5, batch_size=8, random_state=0).fit(
            X, checkpoint=ckpt, resume=True)


def test_resuming_from_a_checkpoint_with_a_nan_weight_names_the_array(tmp_path):
    ckpt = _checkpointed(tmp_path)
    with np.load(ckpt) as f:
        b = f["param/b"].copy()
    b[0] = np.nan
    _rewrite_npz(ckpt, **{"param/b": b})
    with pytest.raises(ValueError, match=r"ckpt\.npz': array 'param/b' holds \d+ NaN or inf"):
        Autoencoder(3, n_epochs=5, batch_size=8, random_state=0).fit(
            X, checkpoint=ckpt, resume=True)


def test_resuming_with_fewer_epochs_than_the_checkpoint_says_so(tmp_path):
    ckpt = _checkpointed(tmp_path, n_epochs=4)
    with pytest.raises(ValueError, match=r"holds a run of 4 epochs, more than n_epochs=3; ask "
                                         r"for at least 4"):
        Autoencoder(3, n_epochs=3, batch_size=8, random_state=0).fit(
            X, checkpoint=ckpt, resume=True)
    same = Autoencoder(3, n_epochs=4, batch_size=8, random_state=0).fit(
        X, checkpoint=ckpt, resume=True)
    assert len(same.history_["loss"]) == 4


def _cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(npae.__file__)),
           # without Numba (NPAE_DISABLE_NUMBA=1), npae's one warning about it is not the
           # stderr line these tests are about
           "PYTHONWARNINGS": "ignore:npae runs its slower plain-NumPy path:UserWarning"}
    return subprocess.run([sys.executable, "-m", "npae", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


def test_cli_train_out_that_is_a_file_is_a_one_line_usage_error(tmp_path):
    (tmp_path / "results").write_text("not a folder")
    r = _cli("train", "autoencoder", "--data", "synthetic", "--out", "results", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert "argument --out: results is an existing file, not a folder" in r.stderr


def test_cli_train_resume_from_a_damaged_checkpoint_is_one_line(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.npz").write_bytes(b"PK\x03\x04" + b"\0" * 40)   # a zip cut short
    r = _cli("train", "autoencoder", "--data", "synthetic", "--out", "run", "--resume",
             cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert "checkpoint.npz' is damaged or truncated" in r.stderr


# -- 6. temporary files of interrupted saves ----------------------------------------------------

def test_a_killed_save_leaves_a_temporary_file_the_next_save_removes(tmp_path):
    target = tmp_path / "model.npz"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from npae._io import atomic_write
        def write(f):
            f.write(b"x" * 1000)
            f.flush()
            time.sleep(120)            # killed here, mid-save
        atomic_write({str(target)!r}, write)
        """)], env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(npae.__file__))})
    try:
        deadline = time.time() + 60
        while not list(tmp_path.glob(".npae-*.tmp")) and time.time() < deadline:
            time.sleep(0.05)
        stale = list(tmp_path.glob(".npae-*.tmp"))
        assert len(stale) == 1
        # while the writer lives, its temporary file is left alone
        assert remove_stale_temporaries(str(tmp_path)) == []
    finally:
        child.kill()
        child.wait()
    assert stale[0].exists() and not target.exists()
    PCA(2).fit(X).save(target)                       # the next save to the folder
    assert not stale[0].exists()
    assert list(tmp_path.glob(".npae-*.tmp")) == []
    assert isinstance(npae.load(target), PCA)


def test_a_save_keeps_a_live_writer_s_temporary_file(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    live = tmp_path / ".npae-live.tmp"
    fd = os.open(live, os.O_CREAT | os.O_WRONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        atomic_write(tmp_path / "other.bin", lambda f: f.write(b"data"))
        assert live.exists()
    finally:
        os.close(fd)
    atomic_write(tmp_path / "other.bin", lambda f: f.write(b"data"))
    assert not live.exists()


def test_a_truncated_model_file_names_itself(tmp_path):
    path = tmp_path / "m.npz"
    Autoencoder(3, n_epochs=1, random_state=0).fit(X).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 200])
    with pytest.raises(ValueError, match=r"m\.npz' is damaged or truncated"):
        npae.load(path)
    assert zipfile.is_zipfile(path) is False
