"""MNIST-style data: the IDX file format, MNIST and Fashion-MNIST, and the data-set choice.

* ``read_idx``: the IDX format MNIST and Fashion-MNIST are stored in (gzipped or not).
* ``load_mnist`` / ``load_fashion_mnist``: the four standard files in a folder, torchvision's
  ``MNIST/raw`` layout, or Keras' ``mnist.npz``. Fashion-MNIST is found in
  ``FASHION_MNIST_DIR``, where Debian's package ``dataset-fashion-mnist`` installs it.
* ``find_dataset`` / ``DatasetChoice``: the best data present (``NPAE_DATA``, an explicit
  path, Fashion-MNIST, else the built-in digits), as used by ``npae demo`` and ``--data``.
* ``fresh_machine``: whether ``NPAE_FRESH_MACHINE`` asks npae to behave as on a machine with
  nothing but Python (no ``NPAE_DATA``, no Debian package), so that what a new user gets can be
  tried, and tested, on a machine that has the data.
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._validation import check_param
from .synthetic import synthetic_digits

#: Where Debian's ``dataset-fashion-mnist`` package puts the four IDX files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

#: The environment variable that makes npae (and its tests) act as on a fresh machine.
FRESH_MACHINE_ENV = "NPAE_FRESH_MACHINE"


def fresh_machine():
    """True when ``NPAE_FRESH_MACHINE`` is set to anything but "" or "0".

    npae then looks for data as it would on a machine with only Python on it: ``NPAE_DATA`` is
    ignored and Fashion-MNIST counts as not installed, so ``find_dataset`` (the demo, the CLI,
    the notebooks) falls back to the built-in digits. Paths passed explicitly are still read:
    they are data the user brought. The tests read the same switch to skip their real-data
    tests, so one variable shows what a new user's machine runs.
    """
    return os.environ.get(FRESH_MACHINE_ENV, "") not in ("", "0")


def _hidden_by_fresh_machine(what):
    return FileNotFoundError(f"{what} is hidden: {FRESH_MACHINE_ENV}="
                             f"{os.environ.get(FRESH_MACHINE_ENV)!r} makes npae behave as on a "
                             f"fresh machine (no NPAE_DATA, no {FASHION_MNIST_DIR}); unset it to "
                             "use the data installed here")

# --------------------------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------------------------

# Third byte of the magic number -> element type (IDX data are big-endian).
_IDX_DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path):
    """The file's content, decompressed when it starts with gzip's magic bytes."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == _GZIP_MAGIC:
        # the suffix is not trusted: torchvision and Keras leave both kinds with varied names
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, gzip.BadGzipFile) as exc:
            raise ValueError(f"{path}: the file starts like gzip but cannot be decompressed "
                             f"({exc}); it is probably truncated: download it again") from None
    return data


def read_idx(path):
    """Read an IDX file (the format of MNIST and Fashion-MNIST) into a NumPy array.

    The header is ``0x00 0x00 <type> <ndim>`` followed by ``ndim`` big-endian uint32 sizes,
    then the data, big-endian. The returned array has the sizes as its shape and the native
    byte order of the element type (uint8 for the MNIST files). Gzipped files are recognised by
    their first two bytes, whatever their name. A file that is truncated, has bytes left over,
    or is not IDX at all raises ValueError saying what was expected and what was found.
    """
    path = os.fspath(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: not an IDX file: expected a 4-byte magic number, found a "
                         f"file of {len(data)} byte(s)")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file: expected the magic number to start with "
                         f"bytes 0x00 0x00, found 0x{data[0]:02x} 0x{data[1]:02x}")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02x} ({d.name})" for c, d in _IDX_DTYPES.items())
        raise ValueError(f"{path}: not an IDX file: type byte 0x{code:02x} is not one of {known}")
    if ndim == 0:
        raise ValueError(f"{path}: not an IDX file: the magic number gives 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header: expected {header} bytes for {ndim} "
                         f"dimension sizes, found {len(data)}")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    if found != expected:
        what = "truncated IDX file" if found < expected else "IDX file with trailing bytes"
        raise ValueError(f"{path}: {what}: the header announces shape {shape} of "
                         f"{dtype.newbyteorder('=').name}, i.e. {expected} data bytes, "
                         f"but {found} follow the header")
    arr = np.frombuffer(data, dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))  # a writable, native-order copy


# --------------------------------------------------------------------------------------------
# MNIST and Fashion-MNIST
# --------------------------------------------------------------------------------------------

_KINDS = {"train": "train", "test": "t10k"}


def _idx_candidates(directory, prefix, what):
    """File names the IDX files go by: the original, the dotted variant, gzipped or not."""
    nd = 3 if what == "images" else 1
    for stem in (f"{prefix}-{what}-idx{nd}-ubyte", f"{prefix}-{what}.idx{nd}-ubyte"):
        for suffix in ("", ".gz"):
            yield directory / (stem + suffix)


def _search_dirs(path, raw_names):
    """The folder itself, then the layouts torchvision leaves (``<root>/MNIST/raw``)."""
    dirs = [path, path / "raw"] + [path / name / "raw" for name in raw_names]
    return [d for i, d in enumerate(dirs) if d not in dirs[:i]]


def _as_images(raw, dtype, as_uint8):
    if as_uint8:
        return raw
    images = raw.astype(dtype)
    images /= 255  # in place: the float copy of the training set is 376 MB already
    return images


def _check_pair(images, labels, source):
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{source}: expected images (n, H, W) and n labels, found images "
                         f"{images.shape} and labels {labels.shape}")


def _load_npz(file, kind, dtype, as_uint8):
    with np.load(file, allow_pickle=False) as f:
        keys = (f"x_{kind}", f"y_{kind}")
        missing = [k for k in keys if k not in f.files]
        if missing:
            raise ValueError(f"{file}: expected arrays {', '.join(keys)} (Keras' mnist.npz "
                             f"layout), found {', '.join(f.files) or 'none'}")
        raw, labels = f[keys[0]], f[keys[1]]
    if raw.dtype != np.uint8:
        raise ValueError(f"{file}: expected {keys[0]} of dtype uint8, found {raw.dtype}")
    _check_pair(raw, labels, file)
    return _as_images(raw, dtype, as_uint8), labels.astype(np.int64)


def _load_idx_dataset(path, kind, dtype, raw, *, raw_names, npz_name, hint=""):
    check_param("kind", kind, options=tuple(_KINDS))
    if dtype not in (np.float32, np.float64, "float32", "float64"):
        raise ValueError(f"dtype={dtype!r} is not supported; choose np.float32 or np.float64 "
                         "(or raw=True for the uint8 pixels)")
    path = Path(path).expanduser()
    looked = []
    if path.is_file():
        if path.suffix == ".npz":
            return _load_npz(path, kind, dtype, raw)
        raise FileNotFoundError(f"{path} is a file; pass the folder that holds the four IDX "
                                f"files, or a Keras {npz_name}")
    prefix = _KINDS[kind]
    for d in _search_dirs(path, raw_names):
        found = {}
        for what in ("images", "labels"):
            names = list(_idx_candidates(d, prefix, what))
            looked += names
            found[what] = next((f for f in names if f.is_file()), None)
        if found["images"] is not None and found["labels"] is not None:
            images, labels = read_idx(found["images"]), read_idx(found["labels"])
            if images.dtype != np.uint8 or labels.dtype != np.uint8:
                raise ValueError(f"{d}: expected uint8 images and labels, found "
                                 f"{images.dtype} and {labels.dtype}")
            _check_pair(images, labels, d)
            return _as_images(images, dtype, raw), labels.astype(np.int64)
    npz = path / npz_name
    looked.append(npz)
    if npz.is_file():
        return _load_npz(npz, kind, dtype, raw)
    shown = "\n  ".join(str(p) for p in looked)
    raise FileNotFoundError(f"no {kind} set found under {path}. Looked for:\n  {shown}" + hint)


def load_mnist(path, kind="train", *, dtype=np.float64, raw=False):
    """Load MNIST's training (``kind="train"``) or test (``"test"``) set from ``path``.

    ``path`` is a folder holding the standard files (``train-images-idx3-ubyte[.gz]``,
    ``train-labels-idx1-ubyte[.gz]``, ``t10k-...``), or torchvision's root, ``MNIST`` or
    ``MNIST/raw`` folder, or Keras' ``mnist.npz`` (or a folder holding it).

    Returns ``(images, labels)``: images (n, 28, 28) in [0, 1] of ``dtype`` (float64 or
    float32), or the uint8 pixels with ``raw=True``; labels int64.
    """
    return _load_idx_dataset(path, kind, dtype, raw, raw_names=("MNIST",), npz_name="mnist.npz")


def load_fashion_mnist(path=None, kind="train", *, dtype=np.float64, raw=False):
    """Load Fashion-MNIST; by default from where ``apt-get install dataset-fashion-mnist``
    puts it (/usr/share/datasets/fashion-mnist). Same files and return values as ``load_mnist``.
    """
    default = path is None
    if default and fresh_machine():
        raise _hidden_by_fresh_machine("Fashion-MNIST")
    hint = ("\nOn Debian/Ubuntu, `apt-get install dataset-fashion-mnist` installs it in "
            f"{FASHION_MNIST_DIR}; or pass the folder that holds the files.")
    return _load_idx_dataset(FASHION_MNIST_DIR if default else path, kind, dtype, raw,
                             raw_names=("FashionMNIST",), npz_name="fashion_mnist.npz",
                             hint=hint)


# --------------------------------------------------------------------------------------------
# Choosing a data set: NPAE_DATA, --data, Fashion-MNIST, the built-in digits
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DatasetChoice:
    """Which data set ``find_dataset`` chose, where it lives and why.

    ``name`` is "mnist" (IDX files or mnist.npz at ``path``), "fashion-mnist" or "synthetic"
    (``path`` None). ``load(kind)`` returns ``(images, labels)`` as ``load_mnist`` does.
    """
    name: str
    path: str | None
    reason: str

    def load(self, kind="train", *, n=None, dtype=np.float64, seed=None):
        """Images (n, 28, 28) in [0, 1] and int64 labels; ``n`` keeps the first n samples.

        For the synthetic digits ``n`` defaults to MNIST's sizes (60000 / 10000) and the test
        set uses another seed than the training set (``seed`` overrides: train seed, test
        seed + 1).
        """
        check_param("kind", kind, options=tuple(_KINDS))
        if self.name == "synthetic":
            if n is None:
                n = 60000 if kind == "train" else 10000
            base = 0 if seed is None else seed
            X, y = synthetic_digits(n, seed=base + (kind == "test"))
            return X.astype(dtype, copy=False), y
        loader = load_fashion_mnist if self.name == "fashion-mnist" else load_mnist
        X, y = loader(self.path, kind, raw=True)  # slice the uint8 pixels, then convert
        if n is not None:
            X, y = X[:n], y[:n]
        return _as_images(X, dtype, False), y

    def __str__(self):
        where = f" from {self.path}" if self.path else ""
        return f"{self.name}{where} ({self.reason})"


def _has_idx_set(path, loader):
    try:
        loader(path, "test", raw=True)
    except FileNotFoundError:
        return False
    return True


def find_dataset(preferred=None):
    """Choose the data set for the demo and the CLI's ``--data``; returns a DatasetChoice.

    ``preferred`` is a path (a folder with MNIST-style files, or a mnist.npz), one of the
    names "mnist", "fashion-mnist", "synthetic", or None. With None: the folder named by the
    environment variable ``NPAE_DATA`` if set, else Fashion-MNIST if installed, else the
    built-in synthetic digits. A path given explicitly (argument or ``NPAE_DATA``) must hold
    the data: it is an error, not a silent fall-back, when it does not. With
    ``NPAE_FRESH_MACHINE=1`` (see ``fresh_machine``) ``NPAE_DATA`` and Fashion-MNIST are
    treated as absent.
    """
    if preferred == "synthetic":
        return DatasetChoice("synthetic", None, "asked for")
    if preferred == "fashion-mnist":
        load_fashion_mnist(kind="test", raw=True)  # raises with the apt-get hint if absent
        return DatasetChoice("fashion-mnist", str(FASHION_MNIST_DIR), "asked for")
    fresh = fresh_machine()
    env = None if fresh else os.environ.get("NPAE_DATA")
    if preferred == "mnist" and not env:
        if fresh:
            raise _hidden_by_fresh_machine("MNIST (NPAE_DATA)")
        raise FileNotFoundError("MNIST was asked for by name but NPAE_DATA is not set; set "
                                "NPAE_DATA (or pass --data) to the folder holding its files")
    if preferred not in (None, "mnist"):
        path, reason = os.fspath(preferred), "given path"
    elif env:
        path, reason = env, "NPAE_DATA"
    else:
        path = None
    if path is not None:
        if not Path(path).expanduser().exists():
            raise FileNotFoundError(f"{path} ({reason}) does not exist; point it at a folder "
                                    "with the MNIST files (train-images-idx3-ubyte.gz, ...)")
        load_mnist(path, "test", raw=True)  # raises, listing what it looked for
        name = "fashion-mnist" if "fashion" in str(path).lower() else "mnist"
        return DatasetChoice(name, str(path), reason)
    if fresh:
        return DatasetChoice("synthetic", None, f"{FRESH_MACHINE_ENV} is set: as on a fresh "
                                                "machine")
    if _has_idx_set(FASHION_MNIST_DIR, load_fashion_mnist):
        return DatasetChoice("fashion-mnist", str(FASHION_MNIST_DIR), "installed")
    return DatasetChoice("synthetic", None, "no MNIST (NPAE_DATA) or Fashion-MNIST found")
