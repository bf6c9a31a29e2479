"""The shared training loop: it learns, it records, it stops loudly, it resumes exactly."""
import os

import numpy as np
import pytest

from npae import losses
from npae.nn import Linear
from npae.optim import SGD, Adam
from npae.train import TrainingDiverged, fit_loop, iterate_minibatches


def regression(seed=0, n=64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    W_true = np.array([[1.0, -2.0, 0.5]])
    return X, X @ W_true.T + 0.3, W_true


def make_problem(seed=0):
    X, Y, W_true = regression(seed)
    layer = Linear(3, 1, rng=seed)
    data = np.hstack([X, Y])

    def loss_and_grad(batch):
        x, y = batch[:, :3], batch[:, 3:]
        y_hat = layer.forward(x)
        layer.zero_grad()
        layer.backward(losses.squared_error_grad(y_hat, y))
        return losses.squared_error(y_hat, y), {k: v.copy() for k, v in layer.grads.items()}

    return layer, data, loss_and_grad, W_true


def test_loop_learns_a_linear_map_and_records_history():
    layer, data, lg, W_true = make_problem()
    hist = fit_loop(layer.parameters(), lg, data, optimizer=Adam(layer.parameters(), lr=0.05),
                    n_epochs=150, batch_size=16, rng=0,
                    val_loss=lambda d: lg(d)[0], X_val=data)
    assert len(hist["loss"]) == 150 and len(hist["val_loss"]) == 150
    assert hist["loss"][-1] < 1e-6 < hist["loss"][0]
    np.testing.assert_allclose(layer.params["W"], W_true, atol=1e-3)
    np.testing.assert_allclose(layer.params["b"], [0.3], atol=1e-3)


def test_minibatches_cover_every_sample_once():
    seen = np.concatenate(list(iterate_minibatches(10, 3, rng=1)))
    assert sorted(seen) == list(range(10))
    assert [len(b) for b in iterate_minibatches(10, 3, shuffle=False)] == [3, 3, 3, 1]


def test_divergence_stops_with_epoch_and_loss():
    layer, data, lg, _ = make_problem()
    data = data * 1e3
    with pytest.raises(TrainingDiverged, match=r"epoch \d+.*learning rate"):
        fit_loop(layer.parameters(), lg, data, optimizer=SGD(layer.parameters(), lr=10.0),
                 n_epochs=50, batch_size=64, rng=0)


def test_checkpoint_resume_equals_an_uninterrupted_run(tmp_path):
    ckpt = str(tmp_path / "run.npz")
    layer, data, lg, _ = make_problem()
    fit_loop(layer.parameters(), lg, data, optimizer=Adam(layer.parameters(), lr=0.01),
             n_epochs=6, batch_size=10, rng=3)
    full = layer.params["W"].copy()

    layer2, _, lg2, _ = make_problem()
    opt2 = Adam(layer2.parameters(), lr=0.01)
    rng = np.random.default_rng(3)
    fit_loop(layer2.parameters(), lg2, data, optimizer=opt2, n_epochs=4, batch_size=10,
             rng=rng, checkpoint=ckpt)
    assert os.path.exists(ckpt)
    # a fresh process: new layer, new optimiser, new generator; everything comes from the file
    layer3, _, lg3, _ = make_problem(seed=0)
    layer3.params["W"][...] = 0.0
    hist = fit_loop(layer3.parameters(), lg3, data, optimizer=Adam(layer3.parameters(), lr=0.01),
                    n_epochs=6, batch_size=10, rng=99, checkpoint=ckpt, resume=True)
    assert len(hist["loss"]) == 6
    np.testing.assert_array_equal(layer3.params["W"], full)


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path):
    ckpt = str(tmp_path / "run.npz")
    layer, data, lg, _ = make_problem()
    fit_loop(layer.parameters(), lg, data, optimizer=SGD(layer.parameters(), lr=0.01),
             n_epochs=1, batch_size=10, checkpoint=ckpt)
    other = Linear(4, 1)
    with pytest.raises(ValueError, match="does not match this model"):
        fit_loop(other.parameters(), lg, data, optimizer=SGD(other.parameters(), lr=0.01),
                 n_epochs=2, batch_size=10, checkpoint=ckpt, resume=True)


def test_interrupted_checkpoint_leaves_the_previous_file(tmp_path):
    ckpt = str(tmp_path / "run.npz")
    layer, data, lg, _ = make_problem()
    fit_loop(layer.parameters(), lg, data, optimizer=SGD(layer.parameters(), lr=0.01),
             n_epochs=1, batch_size=10, checkpoint=ckpt)
    before = open(ckpt, "rb").read()
    calls = {"n": 0}

    def failing(batch):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return lg(batch)

    with pytest.raises(KeyboardInterrupt):
        fit_loop(layer.parameters(), failing, data, optimizer=SGD(layer.parameters(), lr=0.01),
                 n_epochs=3, batch_size=10, checkpoint=ckpt, resume=True)
    assert open(ckpt, "rb").read() == before
    assert [f for f in os.listdir(tmp_path) if f.startswith(".npae-")] == []


def test_bad_arguments_are_named():
    layer, data, lg, _ = make_problem()
    opt = SGD(layer.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="batch_size=0"):
        fit_loop(layer.parameters(), lg, data, optimizer=opt, n_epochs=1, batch_size=0)
    with pytest.raises(ValueError, match="resume=True needs"):
        fit_loop(layer.parameters(), lg, data, optimizer=opt, n_epochs=1, batch_size=4,
                 resume=True)


def test_atomic_write_gives_files_the_usual_permissions(tmp_path):
    from npae._io import atomic_write
    old = os.umask(0o022)
    try:
        path = tmp_path / "a.bin"
        atomic_write(path, lambda f: f.write(b"x"))
        assert os.stat(path).st_mode & 0o777 == 0o644  # not mkstemp's private 0600
        os.chmod(path, 0o640)
        atomic_write(path, lambda f: f.write(b"y"))   # replacing keeps the file's own mode
        assert os.stat(path).st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
