"""`npae train sparse` and `npae train vae`: figures, saved model, --resume (small runs)."""
import numpy as np
import pytest

import npae
from npae.train import RESTART_ITERATIONS
from npae.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_train_vae_writes_samples_manifold_interpolation_and_resumes(tmp_path, capsys):
    out = tmp_path / "vae"
    args = ["train", "vae", "--data", "synthetic", "--n-train", "256", "--hidden", "32",
            "--latent", "3", "--out", str(out), "--quiet"]
    assert main(args + ["--epochs", "1"]) == 0
    text = capsys.readouterr().out
    assert "test negative ELBO" in text and "n_latent=2 model for the manifold" in text
    for name in ("samples.png", "manifold.png", "interpolation.png", "loss_curve.png"):
        assert (out / name).read_bytes()[:8] == PNG, name
    assert main(args + ["--epochs", "2", "--resume"]) == 0
    model = npae.load(out / "model.npz")
    assert type(model).__name__ == "VariationalAutoencoder"
    assert (model.n_hidden, model.n_latent, len(model.history_["loss"])) == (32, 3, 2)
    assert npae.load(out / "model_2d.npz").n_latent == 2
    assert model.sample(4, random_state=0).shape == (4, 784)


@pytest.mark.slow
def test_train_sparse_writes_filters_and_resumes(tmp_path, capsys):
    out = tmp_path / "sparse"
    args = ["train", "sparse", "--data", "synthetic", "--n-train", "200", "--hidden", "16",
            "--rho", "0.1", "--out", str(out), "--quiet"]
    assert main(args + ["--iters", "4"]) == 0
    assert "mean activations" in capsys.readouterr().out
    for name in ("filters.png", "reconstructions.png", "loss_curve.png"):
        assert (out / name).read_bytes()[:8] == PNG, name
    first = npae.load(out / "model.npz")
    assert main(args + ["--iters", "8", "--resume"]) == 0
    model = npae.load(out / "model.npz")
    assert model.rho == 0.1 and model.n_hidden == 16
    # a resumed L-BFGS restarts with an empty memory and may run RESTART_ITERATIONS more
    assert first.n_iter_ <= 4 < model.n_iter_ <= 8 + RESTART_ITERATIONS
    np.testing.assert_allclose(model.history_["loss"][:first.n_iter_], first.history_["loss"])


def test_train_sparse_bad_arguments_are_clear_errors(tmp_path, capsys):
    base = ["train", "sparse", "--data", "synthetic", "--n-train", "50", "--quiet"]
    assert main(base + ["--iters", "0", "--out", str(tmp_path / "a")]) == 2
    assert "argument --iters: 0 is out of range" in capsys.readouterr().err
    assert main(base + ["--rho", "1.5", "--iters", "2", "--out", str(tmp_path / "b")]) == 2
    assert "argument --rho: 1.5 is out of range: expected a finite number in (0, 1)" in \
        capsys.readouterr().err
