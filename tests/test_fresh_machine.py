"""NPAE_FRESH_MACHINE=1: what a new user's machine (only Python, no data) gets, tried on any
machine. `.ci/run` runs the notebooks and the command line this way too."""
import numpy as np
import pytest

from conftest import require_fashion_mnist, require_shared
from npae.cli import main


@pytest.mark.slow
def test_demo_without_data_uses_the_built_in_digits_on_a_fresh_machine(tmp_path, monkeypatch,
                                                                        capsys):
    """`npae demo` as the README runs it (no --data), with NPAE_DATA set and, where installed,
    Fashion-MNIST present: the switch hides both."""
    monkeypatch.setenv("NPAE_FRESH_MACHINE", "1")
    monkeypatch.setenv("NPAE_DATA", str(tmp_path / "somewhere"))
    out = tmp_path / "demo"
    assert main(["demo", "--n-train", "128", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "data: synthetic (NPAE_FRESH_MACHINE is set" in text
    assert (out / "reconstructions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_real_data_fixtures_skip_on_a_fresh_machine(monkeypatch):
    import conftest
    monkeypatch.setattr(conftest, "FRESH", True)
    for require in (lambda: require_shared("mnist"), require_fashion_mnist,
                    conftest.require_lecture):
        with pytest.raises(pytest.skip.Exception, match="NPAE_FRESH_MACHINE is set"):
            require()
    assert conftest.mnist_path() is None


def test_a_fresh_machine_reads_a_path_the_user_gives(tmp_path, monkeypatch):
    """The switch hides what the machine has, not what the user brings: an explicit path."""
    import gzip
    import struct
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    labels = np.array([3, 7], dtype=np.uint8)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(
        struct.pack(">BBBBIII", 0, 0, 8, 3, 2, 28, 28) + images.tobytes()))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(
        struct.pack(">BBBBI", 0, 0, 8, 1, 2) + labels.tobytes()))
    monkeypatch.setenv("NPAE_FRESH_MACHINE", "1")
    from npae.data import find_dataset
    choice = find_dataset(tmp_path)
    assert (choice.name, choice.reason) == ("mnist", "given path")
    X, y = choice.load("test")
    np.testing.assert_array_equal(X, images / 255.0)
    np.testing.assert_array_equal(y, [3, 7])
