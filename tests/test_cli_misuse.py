"""Misuse of `npae demo`, `train`, `pca` and `bench` exits 2 with one line naming the option.

The command line's contract (npae/cli/__init__.py, README): 0 success, 1 a run that failed,
2 misuse -- always one line on stderr, never a traceback; a bug keeps its traceback. Each
class of misuse below is one parametrised test; all run in this process and stop before any
data is read, except the few subprocess runs at the end (slow).
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from npae.cli import main

HUGE = "1000000000000"   # 10**12: arrays of petabytes, on any machine


def run(capsys, argv):
    """main(argv) -> (exit status, the one stderr line); asserts it is exactly one line."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return code, lines[0]


# (command words, option, bad value, words the line must hold besides the option)
BAD_NUMBERS = [
    *[(cmd, "--epochs", v, r) for cmd in (["demo"], ["train", "conv"])
      for v, r in [("0", ">= 1"), ("-3", ">= 1"), ("x", "not a whole number"),
                   ("1.5", "not a whole number"), ("nan", "not a whole number")]],
    *[(["train", "autoencoder"], "--lr", v, r)
      for v, r in [("nan", "not finite"), ("inf", "not finite"), ("0", "(0, inf)"),
                   ("-0.5", "(0, inf)"), ("abc", "not a number"), ("1e400", "not finite")]],
    *[(["train", "vae"], "--batch-size", v, ">= 1") for v in ("0", "-1")],
    *[(["train", "denoising"], "--nu", v, r)
      for v, r in [("1", "[0, 1)"), ("1.5", "[0, 1)"), ("-0.1", "[0, 1)"), ("nan", "not finite")]],
    *[(["train", "sparse"], "--rho", v, r)
      for v, r in [("0", "(0, 1)"), ("1", "(0, 1)"), ("nan", "not finite")]],
    (["train", "sparse"], "--beta", "-1", "[0, inf)"),
    (["train", "sparse"], "--weight-decay", "inf", "not finite"),
    (["train", "sparse"], "--iters", "0", ">= 1"),
    (["train", "contractive"], "--lam", "-0.1", "[0, inf)"),
    (["train", "contractive"], "--lam", "nan", "not finite"),
    *[(["train", "vae"], "--latent", v, ">= 1") for v in ("0", "-2")],
    *[(["train", model], "--hidden", "0", ">= 1")
      for model in ("autoencoder", "denoising", "contractive", "sparse", "vae")],
    (["train", "autoencoder"], "--hidden", "-5", ">= 1"),
    *[(cmd, "--n-train", "0", ">= 1") for cmd in (["demo"], ["train", "autoencoder"])],
    (["pca"], "--n-train", "0", ">= 2"),
    (["pca"], "--n-train", "1", ">= 2"),
    *[(cmd, "--seed", v, "[0, 4294967295]") for cmd in (["demo"], ["train", "vae"], ["pca"])
      for v in ("-1", str(2 ** 32))],
    (["pca"], "-k", "0", ">= 1"),
    (["pca"], "--n-components", "-3", ">= 1"),
    *[(["pca"], "--variance", v, r) for v, r in [("0", "(0, 1)"), ("1", "(0, 1)"),
                                                ("1.5", "(0, 1)"), ("nan", "not finite")]],
    (["bench"], "--steps", "0", ">= 1"),
    (["bench"], "--repeats", "0", ">= 1"),
    (["bench"], "--threads", "0", ">= 1"),
]


@pytest.mark.parametrize("cmd, option, value, words", BAD_NUMBERS,
                         ids=[f"{' '.join(c)} {o} {v}" for c, o, v, _ in BAD_NUMBERS])
def test_a_bad_number_exits_2_naming_the_option_its_value_and_range(
        cmd, option, value, words, tmp_path, capsys):
    out = tmp_path / "out"
    argv = cmd + [f"{option}={value}"]   # = keeps argparse from reading -3 as an option
    if cmd[0] != "bench":
        argv += ["--data", "synthetic", "--out", out]
    code, line = run(capsys, argv)
    assert code == 2
    assert line.startswith(f"npae {cmd[0]}: error: argument ")
    assert option in line and value in line and words in line, line
    assert not out.exists()          # refused before anything was written


@pytest.mark.parametrize("cmd", [["demo"], ["train", "conv"], ["train", "sparse"], ["pca"]])
def test_a_missing_data_folder_exits_2_naming_data(cmd, tmp_path, capsys):
    code, line = run(capsys, cmd + ["--data", tmp_path / "nowhere", "--out", tmp_path / "o"])
    assert code == 2
    assert "argument --data" in line and "nowhere does not exist" in line


@pytest.mark.parametrize("cmd", [["demo"], ["train", "autoencoder"], ["pca"]])
def test_a_data_folder_without_mnist_files_exits_2_in_one_line(cmd, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, line = run(capsys, cmd + ["--data", empty, "--out", tmp_path / "o"])
    assert code == 2
    assert line.startswith(f"npae {cmd[0]}: error: --data: ")
    assert str(empty) in line and "t10k-images-idx3-ubyte" in line   # what it looked for


@pytest.mark.parametrize("cmd", [["demo"], ["pca"], ["train", "conv"], ["train", "vae"]])
@pytest.mark.parametrize("where", ["onto", "under"])
def test_out_onto_or_under_a_file_exits_2(cmd, where, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    out = afile if where == "onto" else afile / "sub"
    code, line = run(capsys, cmd + ["--data", "synthetic", "--out", out])
    assert code == 2
    assert "argument --out" in line and str(afile) in line
    assert ("is an existing file, not a folder" if where == "onto"
            else "is a file, so no folder can be made under it") in line
    assert afile.read_text() == "not a folder"


@pytest.mark.parametrize("cmd, name", [
    (["train", "conv"], "checkpoint.npz"), (["train", "conv", "--resume"], "checkpoint.npz"),
    (["train", "autoencoder"], "model.npz"), (["train", "vae"], "checkpoint_2d.npz"),
    (["train", "sparse"], "filters.png"), (["demo"], "loss_curve.png"),
    (["pca"], "scree.png"),
])
def test_a_folder_where_a_file_is_written_exits_2_before_the_run(cmd, name, tmp_path, capsys):
    out = tmp_path / "run"
    (out / name).mkdir(parents=True)
    code, line = run(capsys, cmd + ["--data", "synthetic", "--out", out, "--epochs", "1"]
                     if cmd[0] != "pca" else cmd + ["--data", "synthetic", "--out", out])
    assert code == 2
    assert f"{out / name} is a folder" in line and "--out" in line
    assert sorted(os.listdir(out)) == [name]    # nothing trained, nothing written


def test_resume_without_a_checkpoint_exits_2(tmp_path, capsys):
    code, line = run(capsys, ["train", "conv", "--data", "synthetic", "--resume",
                              "--out", tmp_path / "fresh"])
    assert code == 2
    assert "--resume" in line and "no checkpoint" in line
    assert str(tmp_path / "fresh" / "checkpoint.npz") in line


def test_a_checkpoint_without_resume_exits_2_and_is_kept(tmp_path, capsys):
    (tmp_path / "checkpoint.npz").write_bytes(b"an old run")
    code, line = run(capsys, ["train", "autoencoder", "--data", "synthetic",
                              "--out", tmp_path])
    assert code == 2
    assert "--resume" in line and "checkpoint.npz exists" in line
    assert (tmp_path / "checkpoint.npz").read_bytes() == b"an old run"


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 damaged", b"\x93NUMPY not a zip"])
def test_a_damaged_checkpoint_with_resume_exits_2_naming_the_file(content, tmp_path, capsys):
    (tmp_path / "checkpoint.npz").write_bytes(content)
    code, line = run(capsys, ["train", "conv", "--data", "synthetic", "--resume",
                              "--out", tmp_path])
    assert code == 2
    assert str(tmp_path / "checkpoint.npz") in line and "delete it to start afresh" in line


HUGE_SIZES = [
    *[(["train", model, "--hidden", HUGE], "--hidden")
      for model in ("autoencoder", "denoising", "contractive", "sparse", "vae")],
    (["train", "vae", "--latent", HUGE], "--latent"),
    (["train", "conv", "--n-train", HUGE], "--n-train"),
    (["demo", "--n-train", HUGE], "--n-train"),
    (["pca", "--n-train", HUGE], "--n-train"),
    (["bench", "--steps", HUGE], "--steps"),
]


@pytest.mark.parametrize("argv, option", HUGE_SIZES, ids=[" ".join(a[:2]) + " " + o
                                                         for a, o in HUGE_SIZES])
def test_a_size_that_cannot_fit_in_memory_exits_2_naming_it(argv, option, tmp_path, capsys):
    if argv[0] != "bench":
        argv = argv + ["--data", "synthetic", "--out", tmp_path / "o"]
    code, line = run(capsys, argv)
    assert code == 2
    assert f"{option} {HUGE}" in line and "memory" in line and "choose a smaller size" in line
    assert not (tmp_path / "o").exists()


def test_more_components_than_pixels_exits_2_naming_k(tmp_path, capsys):
    code, line = run(capsys, ["pca", "--data", "synthetic", "-k", "785", "--out", tmp_path])
    assert code == 2
    assert "-k/--n-components 785" in line and "at most 784" in line


def test_more_threads_than_the_machine_has_exits_2(capsys):
    from npae._numba import max_threads   # Numba's NUMBA_NUM_THREADS, 1 without Numba
    n = max_threads()
    code, line = run(capsys, ["bench", "--threads", n + 1])
    assert code == 2
    assert f"--threads {n + 1}" in line and f"[1, {n}]" in line


# -- the contract's other two statuses, and what it must not hide -----------------------------

def test_npae_s_own_refusal_is_misuse_and_a_numpy_error_is_a_bug(monkeypatch, capsys):
    """A ValueError npae raises on purpose (a model refusing its data or settings) is exit 2
    in one line; one from inside NumPy is a bug and keeps its traceback."""
    from npae._validation import check_param
    from npae.cli import training

    monkeypatch.setattr(training, "_cmd_demo", lambda args: check_param("nu", 2.0, high=1.0))
    code, line = run(capsys, ["demo"])
    assert code == 2 and line.startswith("npae demo: error: ") and "nu" in line

    monkeypatch.setattr(training, "_cmd_demo", lambda args: np.zeros(3).reshape(2, 2))
    with pytest.raises(ValueError, match="cannot reshape"):
        main(["demo"])

    def typo(args):
        return args.no_such_option
    monkeypatch.setattr(training, "_cmd_demo", typo)
    with pytest.raises(AttributeError):
        main(["demo"])


def test_a_diverged_run_exits_1_in_one_line(monkeypatch, capsys):
    from npae.cli import training
    from npae.exceptions import TrainingDiverged

    def diverge(args):
        raise TrainingDiverged("the training loss became NaN in epoch 2; lower the "
                               "learning rate")
    monkeypatch.setattr(training, "_cmd_demo", diverge)
    code, line = run(capsys, ["demo"])
    assert code == 1 and line == ("npae demo: error: the training loss became NaN in epoch "
                                  "2; lower the learning rate")


def test_help_and_version_exit_0_and_no_command_exits_2(capsys):
    assert main(["--version"]) == 0
    assert main(["train", "--help"]) == 0
    capsys.readouterr()
    assert main([]) == 2
    code, line = run(capsys, ["train", "nosuchmodel"])
    assert code == 2 and "invalid choice" in line


# -- the installed command, as a shell sees it ------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("argv, words", [
    (["train", "autoencoder", "--hidden", "0"], "argument --hidden: 0 is out of range"),
    (["train", "autoencoder", "--hidden", HUGE, "--data", "synthetic"], "--hidden " + HUGE),
    (["demo", "--out", "{file}"], "is an existing file, not a folder"),
    (["train", "conv", "--seed", "-1"], "argument --seed: -1 is out of range"),
])
def test_python_dash_m_npae_exits_2_with_one_line(argv, words, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    argv = [a.replace("{file}", str(afile)) for a in argv]
    res = subprocess.run([sys.executable, "-m", "npae", *argv], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.splitlines()) == 1 and words in res.stderr, res.stderr
    assert res.stdout == ""
