"""npae.data: IDX files, the MNIST layouts, data-set choice, synthetic digits, other loaders.

Files are written here byte by byte (struct, gzip), independently of the reader; the real
data sets are checked against published facts (checksums, label counts, first labels).
"""
import gzip
import hashlib
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.io import savemat

from conftest import require_fashion_mnist, require_shared
from npae import data
from npae.data import (denormalize, find_dataset, load_att_faces, load_fashion_mnist,
                       load_mnist, load_olivetti_mat, load_optdigits, normalize, read_idx,
                       read_pgm, synthetic_digits)

# ---------------------------------------------------------------------------------------------
# IDX files written by hand
# ---------------------------------------------------------------------------------------------

IDX_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def idx_bytes(arr):
    """The IDX encoding of ``arr``, from the format's description (not from npae)."""
    code = IDX_CODES[arr.dtype.str[1:]]
    header = struct.pack(">BBBB", 0, 0, code, arr.ndim)
    header += struct.pack(">" + "I" * arr.ndim, *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write(path, payload, gz=False):
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def random_array(rng, dtype, shape):
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True, dtype=dtype)


@given(dtype=st.sampled_from(list(IDX_CODES)),
       shape=st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple),
       gz=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_idx_round_trip(tmp_path_factory, dtype, shape, gz, seed):
    arr = random_array(np.random.default_rng(seed), np.dtype(dtype), shape)
    path = write(tmp_path_factory.mktemp("idx") / "a.idx", idx_bytes(arr), gz)
    out = read_idx(path)
    assert out.shape == shape
    assert out.dtype == np.dtype(dtype).newbyteorder("=")  # native order, same kind
    assert out.dtype.isnative
    np.testing.assert_array_equal(out, arr)
    out[...] = 0  # a writable copy, not a view of the file's bytes


def test_idx_gzip_is_detected_by_content_not_suffix(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    plain_named_gz = write(tmp_path / "x.gz", idx_bytes(arr))
    gz_named_plain = write(tmp_path / "x-idx3-ubyte", idx_bytes(arr), gz=True)
    np.testing.assert_array_equal(read_idx(plain_named_gz), arr)
    np.testing.assert_array_equal(read_idx(gz_named_plain), arr)


def test_idx_zero_length_axis(tmp_path):
    arr = np.zeros((0, 28, 28), dtype=np.uint8)
    assert read_idx(write(tmp_path / "e", idx_bytes(arr))).shape == (0, 28, 28)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated_data(tmp_path, gz):
    arr = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    payload = idx_bytes(arr)[:-7]
    with pytest.raises(ValueError, match=r"truncated IDX file.*\(3, 4, 5\).*120 data bytes.*113"):
        read_idx(write(tmp_path / "t", payload, gz))


def test_idx_truncated_gzip_stream(tmp_path):
    arr = np.arange(1000, dtype=np.uint8)
    blob = gzip.compress(idx_bytes(arr))
    path = tmp_path / "t.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="cannot be decompressed.*truncated"):
        read_idx(path)


def test_idx_truncated_header(tmp_path):
    arr = np.zeros((2, 3, 4), np.uint8)
    with pytest.raises(ValueError, match="truncated IDX header: expected 16 bytes.*found 10"):
        read_idx(write(tmp_path / "h", idx_bytes(arr)[:10]))


def test_idx_trailing_bytes(tmp_path):
    arr = np.zeros((2, 3), np.uint8)
    with pytest.raises(ValueError, match="trailing bytes.*6 data bytes.*but 8 follow"):
        read_idx(write(tmp_path / "x", idx_bytes(arr) + b"\0\0"))


def test_idx_wrong_magic(tmp_path):
    payload = bytearray(idx_bytes(np.zeros((2, 2), np.uint8)))
    payload[0] = 0x08
    with pytest.raises(ValueError, match="not an IDX file.*0x00 0x00, found 0x08 0x00"):
        read_idx(write(tmp_path / "m", bytes(payload)))
    payload[0], payload[2] = 0, 0x0A  # a type code the format does not define
    with pytest.raises(ValueError, match="type byte 0x0a is not one of"):
        read_idx(write(tmp_path / "m", bytes(payload)))
    payload[2], payload[3] = 0x08, 0
    with pytest.raises(ValueError, match="0 dimensions"):
        read_idx(write(tmp_path / "m", bytes(payload)))


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n" + b"\0" * 40, b"hello, world\n", b"",
                                     b"\0\0"])
def test_idx_foreign_file(tmp_path, content):
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(write(tmp_path / "f", content))


# ---------------------------------------------------------------------------------------------
# MNIST layouts built here
# ---------------------------------------------------------------------------------------------

def fake_mnist(rng, n_train=7, n_test=5):
    return {"train": (rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
                      rng.integers(0, 10, n_train, dtype=np.uint8)),
            "test": (rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
                     rng.integers(0, 10, n_test, dtype=np.uint8))}


def write_idx_set(directory, sets, gz=True, dotted=False):
    directory.mkdir(parents=True, exist_ok=True)
    for kind, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = sets[kind]
        sep = "." if dotted else "-"
        for what, arr, nd in (("images", images, 3), ("labels", labels, 1)):
            name = f"{prefix}-{what}{sep}idx{nd}-ubyte" + (".gz" if gz else "")
            write(directory / name, idx_bytes(arr), gz)
    return directory


def check_loaded(loaded, images, labels):
    X, y = loaded
    assert X.dtype == np.float64 and X.shape == images.shape
    np.testing.assert_array_equal(X, images / 255.0)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, labels)


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("dotted", [False, True])
def test_load_mnist_standard_folder(tmp_path, rng, gz, dotted):
    sets = fake_mnist(rng)
    write_idx_set(tmp_path, sets, gz=gz, dotted=dotted)
    for kind in ("train", "test"):
        check_loaded(load_mnist(tmp_path, kind), *sets[kind])


def test_load_mnist_torchvision_layout(tmp_path, rng):
    sets = fake_mnist(rng)
    write_idx_set(tmp_path / "MNIST" / "raw", sets, gz=False)
    # torchvision's root, its MNIST folder, and the raw folder itself all work
    for p in (tmp_path, tmp_path / "MNIST", tmp_path / "MNIST" / "raw"):
        check_loaded(load_mnist(p, "test"), *sets["test"])


def test_load_mnist_keras_npz(tmp_path, rng):
    sets = fake_mnist(rng)
    np.savez(tmp_path / "mnist.npz", x_train=sets["train"][0], y_train=sets["train"][1],
             x_test=sets["test"][0], y_test=sets["test"][1])
    check_loaded(load_mnist(tmp_path / "mnist.npz", "train"), *sets["train"])
    check_loaded(load_mnist(tmp_path, "test"), *sets["test"])  # the folder that holds it


def test_load_mnist_npz_refuses_pickles_and_missing_arrays(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.array([{"a": 1}], dtype=object),
             y_train=np.zeros(1))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_mnist(tmp_path / "mnist.npz")
    np.savez(tmp_path / "other.npz", images=np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="expected arrays x_train, y_train.*found images"):
        load_mnist(tmp_path / "other.npz")


def test_load_mnist_dtypes_and_raw(tmp_path, rng):
    sets = fake_mnist(rng)
    write_idx_set(tmp_path, sets)
    X32, _ = load_mnist(tmp_path, dtype=np.float32)
    assert X32.dtype == np.float32
    np.testing.assert_allclose(X32, sets["train"][0] / 255.0, rtol=1e-7, atol=0)
    raw, _ = load_mnist(tmp_path, raw=True)
    assert raw.dtype == np.uint8
    np.testing.assert_array_equal(raw, sets["train"][0])
    with pytest.raises(ValueError, match="dtype=.*float16.*not supported"):
        load_mnist(tmp_path, dtype=np.float16)
    with pytest.raises(ValueError, match="kind='validation' is not supported"):
        load_mnist(tmp_path, "validation")


def test_load_mnist_not_found_lists_what_it_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_mnist(tmp_path, "test")
    msg = str(err.value)
    for name in ("t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz", str(tmp_path / "MNIST" / "raw"), "mnist.npz"):
        assert name in msg


def test_load_mnist_inconsistent_files(tmp_path, rng):
    sets = fake_mnist(rng)
    sets["train"] = (sets["train"][0], sets["train"][1][:-1])  # one label short
    write_idx_set(tmp_path, sets)
    with pytest.raises(ValueError, match=r"images \(7, 28, 28\) and labels \(6,\)"):
        load_mnist(tmp_path)


def test_load_fashion_mnist_from_path_and_hint_when_missing(tmp_path, rng, monkeypatch):
    monkeypatch.delenv("NPAE_FRESH_MACHINE", raising=False)
    sets = fake_mnist(rng)
    write_idx_set(tmp_path / "FashionMNIST" / "raw", sets)
    check_loaded(load_fashion_mnist(tmp_path, "test"), *sets["test"])
    monkeypatch.setattr(data.idx, "FASHION_MNIST_DIR", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist()


# ---------------------------------------------------------------------------------------------
# The real files
# ---------------------------------------------------------------------------------------------

# Published facts about MNIST (LeCun et al.), not computed by npae.
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_TRAIN_IMAGES_MD5 = "6bbc9ace898e44ae57da46a324031adb"  # the uncompressed original


@pytest.mark.slow
def test_real_mnist():
    path = require_shared("mnist")
    raw, y = load_mnist(path, "train", raw=True)
    assert raw.shape == (60000, 28, 28) and raw.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(y), MNIST_TRAIN_COUNTS)
    np.testing.assert_array_equal(y[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
    # re-encode what was read: it must be the original file, byte for byte
    assert hashlib.md5(idx_bytes(raw)).hexdigest() == MNIST_TRAIN_IMAGES_MD5
    X, yt = load_mnist(path, "test", dtype=np.float32)
    assert X.shape == (10000, 28, 28) and X.dtype == np.float32
    assert X.min() == 0 and X.max() == 1
    np.testing.assert_array_equal(np.bincount(yt), MNIST_TEST_COUNTS)
    np.testing.assert_array_equal(yt[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    # the pixel statistics everyone normalises MNIST with: mean 0.1307, std 0.3081 (train)
    freq = np.bincount(raw.ravel(), minlength=256) / raw.size
    v = np.arange(256) / 255.0
    mean = freq @ v
    assert abs(mean - 0.1307) < 1e-4 and abs(np.sqrt(freq @ (v - mean) ** 2) - 0.3081) < 1e-4


@pytest.mark.slow
def test_real_fashion_mnist(monkeypatch):
    path = require_fashion_mnist()
    X, y = load_fashion_mnist(kind="test")
    assert X.shape == (10000, 28, 28) and X.dtype == np.float64
    np.testing.assert_array_equal(np.bincount(y), [1000] * 10)
    _, ytr = load_fashion_mnist(path, "train", raw=True)
    np.testing.assert_array_equal(np.bincount(ytr), [6000] * 10)
    # first test labels of Fashion-MNIST (ankle boot, pullover, trouser, trouser, shirt)
    np.testing.assert_array_equal(y[:5], [9, 2, 1, 1, 6])
    monkeypatch.delenv("NPAE_DATA", raising=False)
    choice = find_dataset()
    assert choice.name == "fashion-mnist" and choice.reason == "installed"


# ---------------------------------------------------------------------------------------------
# find_dataset: NPAE_DATA, explicit paths, fall-backs
# ---------------------------------------------------------------------------------------------

def test_find_dataset_prefers_npae_data(tmp_path, rng, monkeypatch):
    monkeypatch.delenv("NPAE_FRESH_MACHINE", raising=False)
    sets = fake_mnist(rng)
    write_idx_set(tmp_path / "mnist", sets)
    monkeypatch.setenv("NPAE_DATA", str(tmp_path / "mnist"))
    choice = find_dataset()
    assert (choice.name, choice.path, choice.reason) == ("mnist", str(tmp_path / "mnist"),
                                                         "NPAE_DATA")
    X, y = choice.load("test", n=3)
    np.testing.assert_array_equal(X, sets["test"][0][:3] / 255.0)
    np.testing.assert_array_equal(y, sets["test"][1][:3])
    assert "NPAE_DATA" in str(choice)
    # an explicit path beats the environment
    write_idx_set(tmp_path / "other", fake_mnist(np.random.default_rng(1)))
    assert find_dataset(tmp_path / "other").reason == "given path"


def test_find_dataset_falls_back_to_synthetic(tmp_path, monkeypatch):
    monkeypatch.delenv("NPAE_FRESH_MACHINE", raising=False)
    monkeypatch.delenv("NPAE_DATA", raising=False)
    monkeypatch.setattr(data.idx, "FASHION_MNIST_DIR", tmp_path / "absent")
    choice = find_dataset()
    assert choice.name == "synthetic" and choice.path is None
    X, y = choice.load("train", n=20)
    Xt, _ = choice.load("test", n=20)
    assert X.shape == (20, 28, 28) and y.shape == (20,)
    assert not np.array_equal(X, Xt)  # the test set is not the training set
    assert find_dataset("synthetic").name == "synthetic"
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        find_dataset("fashion-mnist")
    with pytest.raises(FileNotFoundError, match="NPAE_DATA is not set"):
        find_dataset("mnist")


def test_find_dataset_explicit_paths_must_hold_the_data(tmp_path, monkeypatch):
    monkeypatch.delenv("NPAE_FRESH_MACHINE", raising=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_dataset(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte|t10k-images"):
        find_dataset(tmp_path)  # exists, but empty: no silent fall-back
    monkeypatch.setenv("NPAE_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"\(NPAE_DATA\) does not exist"):
        find_dataset()


@pytest.mark.parametrize("value, fresh", [("1", True), ("yes", True), ("0", False), ("", False)])
def test_fresh_machine_hides_npae_data_and_fashion_mnist(value, fresh, tmp_path, monkeypatch):
    """NPAE_FRESH_MACHINE=1: what a new user's machine chooses, on a machine that has data."""
    write_idx_set(tmp_path / "mnist", fake_mnist(np.random.default_rng(2)))
    write_idx_set(tmp_path / "fashion", fake_mnist(np.random.default_rng(3)))
    monkeypatch.setattr(data.idx, "FASHION_MNIST_DIR", tmp_path / "fashion")
    monkeypatch.setenv("NPAE_FRESH_MACHINE", value)
    assert data.fresh_machine() is fresh
    # an explicit path is data the user brought: read whatever the switch says
    assert find_dataset(tmp_path / "mnist").reason == "given path"
    monkeypatch.delenv("NPAE_DATA", raising=False)
    if not fresh:
        assert find_dataset().name == "fashion-mnist"
        assert find_dataset("fashion-mnist").path == str(tmp_path / "fashion")
        monkeypatch.setenv("NPAE_DATA", str(tmp_path / "mnist"))
        assert find_dataset().reason == find_dataset("mnist").reason == "NPAE_DATA"
        return
    choice = find_dataset()
    assert choice.name == "synthetic" and "NPAE_FRESH_MACHINE" in choice.reason
    for name in ("fashion-mnist", None):
        with pytest.raises(FileNotFoundError,
                           match=f"Fashion-MNIST is hidden: NPAE_FRESH_MACHINE='{value}'"):
            find_dataset(name) if name else load_fashion_mnist(kind="test")
    monkeypatch.setenv("NPAE_DATA", str(tmp_path / "mnist"))
    assert find_dataset().name == "synthetic"  # NPAE_DATA is ignored, as if never set
    with pytest.raises(FileNotFoundError, match=r"MNIST \(NPAE_DATA\) is hidden"):
        find_dataset("mnist")


# ---------------------------------------------------------------------------------------------
# normalize / denormalize
# ---------------------------------------------------------------------------------------------

def test_normalize_maps_unit_interval_to_minus_one_one():
    x = np.array([0.0, 0.25, 0.5, 1.0])
    np.testing.assert_array_equal(normalize(x), [-1.0, -0.5, 0.0, 1.0])
    np.testing.assert_array_equal(normalize(x, mean=0.1307, std=0.3081),
                                  (x - 0.1307) / 0.3081)
    x32 = x.astype(np.float32)
    assert normalize(x32).dtype == np.float32 and denormalize(x32).dtype == np.float32
    assert normalize(np.array([0, 255])).dtype == np.float64


@given(st.lists(st.floats(-10, 10), min_size=1, max_size=20), st.floats(-1, 1),
       st.floats(0.01, 5))
def test_denormalize_inverts_normalize(values, mean, std):
    x = np.array(values)
    np.testing.assert_allclose(denormalize(normalize(x, mean, std), mean, std), x,
                               rtol=1e-12, atol=1e-12 * (1 + abs(mean) / std))


def test_normalize_bad_input():
    with pytest.raises(ValueError, match="std=0 is out of range"):
        normalize(np.ones(3), std=0)
    with pytest.raises(ValueError, match="NaN"):
        normalize(np.array([0.0, np.nan]))


# ---------------------------------------------------------------------------------------------
# synthetic digits
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    return synthetic_digits(3000, seed=0)


def test_synthetic_shapes_range_balance(digits):
    X, y = digits
    assert X.shape == (3000, 28, 28) and X.dtype == np.float64
    assert y.shape == (3000,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y, minlength=10), [300] * 10)
    _, y7 = synthetic_digits(17, seed=3)
    assert np.bincount(y7, minlength=10).max() - np.bincount(y7, minlength=10).min() <= 1


def test_synthetic_deterministic_by_seed(digits):
    X, y = synthetic_digits(300, seed=0)
    X2, y2 = synthetic_digits(300, seed=0)
    assert X.tobytes() == X2.tobytes() and np.array_equal(y, y2)
    X3, _ = synthetic_digits(300, seed=1)
    assert not np.array_equal(X, X3)
    assert synthetic_digits(0)[0].shape == (0, 28, 28)


def centres_of_mass(X):
    idx = np.arange(X.shape[-1])
    m = X.sum(axis=(1, 2))
    return np.stack([(X.sum(2) * idx).sum(1) / m, (X.sum(1) * idx).sum(1) / m], 1)


def test_synthetic_digits_are_placed_like_mnist(digits):
    """MNIST's recipe: box scaled to 20 px, mass centre at pixel (14, 14); white on black."""
    X, _ = digits
    com = centres_of_mass(X)
    # MNIST shifts by whole pixels, so its centres spread +-0.5 px (measured std 0.29)
    assert np.abs(com - 14).max() < 1.0 and 0.15 < com.std(0).min() < 0.45
    rows = (X > 0).any(2)
    heights = 28 - rows[:, ::-1].argmax(1) - rows.argmax(1)
    assert 18 <= np.median(heights) <= 21 and heights.max() <= 24  # MNIST: 20
    # background black, strokes white: MNIST's mean pixel is 0.131, 13% of pixels above 0.5
    assert 0.09 < X.mean() < 0.18 and 0.09 < (X > 0.5).mean() < 0.18
    # like MNIST's (1.2% of images), only a few digits reach the border (top-heavy 7s,
    # pushed down by the mass centring)
    border = np.maximum(X[:, [0, -1], :].max((1, 2)), X[:, :, [0, -1]].max((1, 2)))
    assert (border > 0.5).mean() < 0.02


def test_synthetic_other_size():
    X, _ = synthetic_digits(50, seed=2, size=40)
    assert X.shape == (50, 40, 40)
    assert np.abs(centres_of_mass(X) - 20).max() < 1.5


def test_synthetic_bad_arguments():
    with pytest.raises(ValueError, match="n=-1 is out of range"):
        synthetic_digits(-1)
    with pytest.raises(TypeError, match="n must be an integer"):
        synthetic_digits(2.5)
    with pytest.raises(ValueError, match="size=4 is out of range"):
        synthetic_digits(10, size=4)


def nearest_neighbour_accuracy(X_train, y_train, X_test, y_test):
    A, B = X_train.reshape(len(X_train), -1), X_test.reshape(len(X_test), -1)
    d2 = (B * B).sum(1)[:, None] - 2 * B @ A.T + (A * A).sum(1)[None, :]
    return (y_train[d2.argmin(1)] == y_test).mean()


@pytest.mark.slow
def test_synthetic_digits_are_class_distinguishable(digits):
    X, y = digits
    Xh, yh = synthetic_digits(1000, seed=100)
    centroids = np.stack([X[y == k].mean(0).ravel() for k in range(10)])
    d2 = ((Xh.reshape(len(Xh), 1, -1) - centroids[None]) ** 2).sum(-1)
    # measured 0.87 (nearest centroid) and 0.98 (1-NN); chance is 0.1
    assert (d2.argmin(1) == yh).mean() > 0.8
    assert nearest_neighbour_accuracy(X[:2000], y[:2000], Xh, yh) > 0.93


@pytest.mark.slow
def test_synthetic_digits_look_like_mnist(digits):
    """Trained on synthetic digits only, 1-NN reads real MNIST far above chance (0.1)."""
    path = require_shared("mnist")
    R, yr = load_mnist(path, "test")
    X, y = digits
    acc = nearest_neighbour_accuracy(X[:2000], y[:2000], R[:2000], yr[:2000])
    assert acc > 0.6, acc  # measured 0.70-0.74 over seeds


# ---------------------------------------------------------------------------------------------
# optdigits, AT&T/ORL and Olivetti faces
# ---------------------------------------------------------------------------------------------

def test_optdigits_tiny_files(tmp_path):
    rows = np.array([list(range(16)) * 4 + [3], [16] * 64 + [9], [0] * 64 + [0]])
    (tmp_path / "optdigits.tes").write_text("\n".join(",".join(map(str, r)) for r in rows))
    X, y = load_optdigits(tmp_path, "test")
    assert X.shape == (3, 8, 8) and X.dtype == np.float64
    np.testing.assert_array_equal(X.reshape(3, 64), rows[:, :64] / 16)
    np.testing.assert_array_equal(y, [3, 9, 0])
    raw, _ = load_optdigits(tmp_path / "optdigits.tes", raw=True)
    np.testing.assert_array_equal(raw.reshape(3, 64), rows[:, :64])
    with pytest.raises(FileNotFoundError, match="optdigits.tra"):
        load_optdigits(tmp_path, "train")
    (tmp_path / "bad.tra").write_text("1,2,3\n")
    with pytest.raises(ValueError, match="expected 65 columns.*found 3"):
        load_optdigits(tmp_path / "bad.tra")
    (tmp_path / "big.tra").write_text(",".join(["17"] * 64 + ["1"]))
    with pytest.raises(ValueError, match="0..16"):
        load_optdigits(tmp_path / "big.tra")


def test_optdigits_real():
    path = require_shared("optdigits")
    X, y = load_optdigits(path, "train")
    assert X.shape == (3823, 8, 8) and X.min() == 0 and X.max() == 1
    assert np.bincount(y).tolist() == [376, 389, 380, 389, 387, 376, 377, 387, 380, 382]
    from sklearn.datasets import load_digits  # the same rows as optdigits.tes
    raw, yt = load_optdigits(path, "test", raw=True)
    ref = load_digits()
    np.testing.assert_array_equal(raw, ref.images)
    np.testing.assert_array_equal(yt, ref.target)


def pgm_bytes(img, maxval=255, comment=True):
    header = b"P5\n" + (b"# written by the test\n" if comment else b"")
    header += f"{img.shape[1]} {img.shape[0]}\n{maxval}\n".encode()
    dtype = ">u1" if maxval < 256 else ">u2"
    return header + img.astype(dtype).tobytes()


def test_read_pgm_variants(tmp_path, rng):
    img = rng.integers(0, 256, (5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(read_pgm(write(tmp_path / "a.pgm", pgm_bytes(img))), img)
    img16 = rng.integers(0, 65536, (4, 6)).astype(np.uint16)
    out = read_pgm(write(tmp_path / "b.pgm", pgm_bytes(img16, 65535, comment=False)))
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, img16)
    ascii_pgm = b"P2\n3 2\n# c\n255\n0 1 2\n3 4 255\n"
    np.testing.assert_array_equal(read_pgm(write(tmp_path / "c.pgm", ascii_pgm)),
                                  [[0, 1, 2], [3, 4, 255]])
    with pytest.raises(ValueError, match="truncated PGM: expected 15 raster bytes.*found 10"):
        read_pgm(write(tmp_path / "t.pgm", pgm_bytes(img)[:-5]))
    with pytest.raises(ValueError, match="expected magic P5 or P2, found b'P6'"):
        read_pgm(write(tmp_path / "p6.pgm", b"P6\n1 1\n255\n\0\0\0"))


def test_att_faces_tiny_layout(tmp_path, rng):
    faces = {}
    for subject in (1, 2, 10):  # s10 sorts after s2: numerically, not as text
        (tmp_path / f"s{subject}").mkdir()
        for k in (1, 2, 10):
            img = rng.integers(0, 256, (4, 3), dtype=np.uint8)
            faces[subject, k] = img
            write(tmp_path / f"s{subject}" / f"{k}.pgm", pgm_bytes(img))
    (tmp_path / "README").write_text("not a subject")
    X, y = load_att_faces(tmp_path)
    order = [(s, k) for s in (1, 2, 10) for k in (1, 2, 10)]
    np.testing.assert_array_equal(X, np.stack([faces[o] for o in order]) / 255.0)
    np.testing.assert_array_equal(y, [s - 1 for s, _ in order])
    with pytest.raises(FileNotFoundError, match="no subject folders s1, s2"):
        load_att_faces(tmp_path / "s1")


def symmetry(X):
    """Mean correlation of each image with its left-right and its up-down mirror image."""
    def corr(a, b):
        a = a - a.mean((1, 2), keepdims=True)
        b = b - b.mean((1, 2), keepdims=True)
        return ((a * b).sum((1, 2)) / np.sqrt((a * a).sum((1, 2)) * (b * b).sum((1, 2)))).mean()
    return corr(X, X[:, :, ::-1]), corr(X, X[:, ::-1, :])


@pytest.mark.slow
def test_att_faces_real():
    path = require_shared("faces/att_faces")
    X, y = load_att_faces(path)
    assert X.shape == (400, 112, 92) and X.dtype == np.float64
    np.testing.assert_array_equal(np.bincount(y), [10] * 40)
    raster = (path / "s1" / "1.pgm").read_bytes()[-112 * 92:]  # P5: the raster comes last
    np.testing.assert_array_equal(X[0] * 255, np.frombuffer(raster, np.uint8).reshape(112, 92))
    lr, ud = symmetry(X)
    assert lr > ud + 0.15  # upright faces: mirror-symmetric left-right, not up-down


def test_olivetti_tiny_mat(tmp_path, rng):
    images = rng.integers(0, 256, (20, 64, 64), dtype=np.uint8)
    # MATLAB's layout: column i holds image i in column-major order
    faces = np.stack([img.flatten(order="F") for img in images], axis=1)
    savemat(tmp_path / "o.mat", {"faces": faces})
    X, y = load_olivetti_mat(tmp_path / "o.mat")
    np.testing.assert_array_equal(X, images / 255.0)
    np.testing.assert_array_equal(y, np.arange(20) // 10)
    savemat(tmp_path / "w.mat", {"pixels": faces})
    with pytest.raises(ValueError, match="expected a variable 'faces', found pixels"):
        load_olivetti_mat(tmp_path / "w.mat")


def test_olivetti_real():
    path = require_shared("faces/olivettifaces.mat")
    X, y = load_olivetti_mat(path)
    assert X.shape == (400, 64, 64) and 0 <= X.min() and X.max() <= 1
    np.testing.assert_array_equal(np.bincount(y), [10] * 40)
    lr, ud = symmetry(X)
    assert lr > ud + 0.2  # measured 0.54 against 0.16: upright, not transposed


def test_batches_reexport():
    from npae.train import iterate_minibatches
    assert data.batches is iterate_minibatches


def test_package_exports_every_name_of_its_modules():
    """npae.data re-exports each public name of its modules: the very objects, not copies."""
    from npae.data import idx, other, synthetic, transforms
    for module in (idx, other, synthetic, transforms):
        for name in module.__dict__:
            obj = getattr(module, name)
            if not name.startswith("_") and getattr(obj, "__module__", None) == module.__name__:
                assert name in data.__all__ and getattr(data, name) is obj, name
    assert data.FASHION_MNIST_DIR is idx.FASHION_MNIST_DIR
    assert sorted(data.__all__) == sorted(set(data.__all__))
    for name in data.__all__:
        assert hasattr(data, name), name
