"""`npae demo` and `npae train conv` do real work and write their figures (small runs)."""
import subprocess
import sys

import numpy as np
import pytest

import npae
from npae.cli import main


@pytest.mark.slow
def test_demo_trains_and_writes_the_lecture_figure(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--data", "synthetic", "--n-train", "256", "--epochs", "2",
                 "--out", str(out), "--quiet"])
    text = capsys.readouterr().out
    assert code == 0
    assert "data: synthetic" in text and "test MSE per pixel" in text
    for name in ("reconstructions.png", "loss_curve.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


@pytest.mark.slow
def test_train_checkpoints_saves_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "conv", "--data", "synthetic", "--n-train", "128", "--epochs", "1",
            "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert (out / "checkpoint.npz").exists() and (out / "model.npz").exists()
    model = npae.load(out / "model.npz")
    assert len(model.history_["loss"]) == 1
    X = np.random.default_rng(0).uniform(-1, 1, (3, 28, 28)).astype(np.float32)
    assert model.reconstruct(X).shape == (3, 28, 28)
    # a second run into the same folder must not clobber the first (misuse: exit 2)
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err
    # resuming to 2 epochs continues the recorded history
    assert main(args[:7] + ["2"] + args[8:] + ["--resume"]) == 0
    assert len(npae.load(out / "model.npz").history_["loss"]) == 2


def test_missing_data_path_is_a_clear_error(tmp_path, capsys):
    code = main(["demo", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "argument --data" in err and "does not exist" in err


@pytest.mark.slow
def test_python_dash_m_runs_the_cli():
    res = subprocess.run([sys.executable, "-m", "npae", "--version"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.startswith("npae ")


@pytest.mark.slow
def test_pca_reports_variance_and_reconstruction_and_writes_figures(tmp_path, capsys):
    from sklearn.decomposition import PCA as SkPCA

    from npae.data import synthetic_digits
    out = tmp_path / "pca"
    code = main(["pca", "--data", "synthetic", "--n-train", "300", "-k", "12",
                 "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    table = [line.split() for line in text.splitlines() if line.split()[:1]
             and line.split()[0].isdigit()]
    ks = [int(r[0]) for r in table]
    explained, mse = [float(r[1]) for r in table], [float(r[2]) for r in table]
    assert ks == [1, 2, 5, 10, 12]
    # an independent reference: scikit-learn's PCA of the same 300 training images
    X, _ = synthetic_digits(300, seed=0)
    ref = np.cumsum(SkPCA(12).fit(X.reshape(300, -1)).explained_variance_ratio_)
    np.testing.assert_allclose(explained, ref[np.array(ks) - 1], atol=6e-4)  # printed to 3 dp
    assert all(a > b for a, b in zip(mse, mse[1:]))  # more components, smaller test error
    for name in ("components.png", "scree.png", "reconstructions.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_pca_bad_arguments_are_clear_errors(tmp_path, capsys):
    assert main(["pca", "--data", "synthetic", "--n-train", "50", "-k", "0",
                 "--out", str(tmp_path)]) == 2
    assert "argument -k/--n-components: 0 is out of range" in capsys.readouterr().err
    assert main(["pca", "--data", "synthetic", "--n-train", "1", "--out", str(tmp_path)]) == 2
    assert "argument --n-train: 1 is out of range: expected a whole number >= 2" in \
        capsys.readouterr().err


@pytest.mark.slow
def test_bench_prints_both_tables(capsys):
    """`npae bench` runs end to end (tiny settings) and prints a positive time for every
    model and fast path; speed itself is never asserted (shared machines are noisy)."""
    from npae._numba import get_num_threads, set_num_threads
    threads = get_num_threads()
    try:
        assert main(["bench", "--steps", "2", "--repeats", "1", "--threads", "1"]) == 0
        assert get_num_threads() == 1
    finally:
        set_num_threads(threads)  # the rest of the suite keeps its own setting
    text = capsys.readouterr().out
    import re
    number = r"\s+(\d+\.\d+)"
    rows = [re.search(number * 2, line) for line in text.splitlines()
            if line.startswith(("ConvAutoencoder", "Autoencoder", "ContractiveAutoencoder"))]
    assert len(rows) == 3 and all(r and float(r[1]) > 0 and float(r[2]) > 0 for r in rows)
    assert "20 epochs:" in text                   # the lecture's run, for the conv net
    kernels = [re.search(number * 3 + r"\s*$", line) for line in text.splitlines()
               if line.startswith(("sigmoid", "cross-entropy", "Adam update"))]
    assert len(kernels) == 4 and all(k and min(map(float, k.groups())) > 0 for k in kernels)


def test_bench_bad_arguments_are_clear_errors(capsys):
    assert main(["bench", "--threads", "0"]) == 2
    assert "argument --threads: 0 is out of range" in capsys.readouterr().err
    assert main(["bench", "--steps", "0", "--no-kernels"]) == 2
    assert "argument --steps: 0 is out of range" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("kind, cls, extra", [
    ("autoencoder", "Autoencoder", []),
    ("denoising", "DenoisingAutoencoder", ["--nu", "0.4"]),
    ("contractive", "ContractiveAutoencoder", ["--lam", "0.2"]),
])
@pytest.mark.slow
def test_train_dense_models_write_figures_and_resume(tmp_path, capsys, kind, cls, extra):
    out = tmp_path / kind
    args = ["train", kind, "--data", "synthetic", "--n-train", "256", "--hidden", "16",
            "--out", str(out), "--quiet", *extra]
    assert main(args + ["--epochs", "1"]) == 0
    assert "test cross-entropy per image" in capsys.readouterr().out
    for name in ("reconstructions.png", "filters.png", "loss_curve.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(args + ["--epochs", "2", "--resume"]) == 0      # continues the same run
    model = npae.load(out / "model.npz")
    assert type(model).__name__ == cls and model.n_hidden == 16
    assert len(model.history_["loss"]) == 2
    if kind == "denoising":
        assert model.nu == 0.4
    if kind == "contractive":
        assert model.lam == 0.2


def test_train_dense_bad_hyper_parameter_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "denoising", "--data", "synthetic", "--n-train", "64", "--nu", "1.5",
                 "--epochs", "1", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "argument --nu: 1.5 is out of range: expected a finite number in [0, 1)" in \
        capsys.readouterr().err
    assert not (tmp_path / "x").exists()      # refused before anything was written
