"""Path-only loaders for data a user brings (npae never needs them).

* ``load_optdigits``: UCI "Optical Recognition of Handwritten Digits" (8x8).
* ``read_pgm`` / ``load_att_faces``: PGM images; the AT&T (ORL) Database of Faces.
* ``load_olivetti_mat``: Olivetti faces from a MATLAB file.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .._validation import check_param
from .idx import _KINDS


def load_optdigits(path, kind="train", *, raw=False):
    """UCI "Optical Recognition of Handwritten Digits": ``optdigits.tra`` / ``optdigits.tes``.

    ``path`` is one of the two files or the folder holding them (``kind`` "train" picks .tra,
    "test" .tes). Each row: 64 pixel counts (8x8, values 0-16), then the class.
    Returns ``(images, labels)``: images (n, 8, 8) float64 in [0, 1] (counts / 16), or the
    int64 counts with ``raw=True``; labels int64.
    """
    check_param("kind", kind, options=tuple(_KINDS))
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / ("optdigits.tra" if kind == "train" else "optdigits.tes")
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; pass optdigits.tra / optdigits.tes or the "
                                "folder that holds them (UCI data set 80)")
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{path}: expected comma-separated integers (UCI optdigits): {exc}") \
            from None
    if table.shape[1] != 65:
        raise ValueError(f"{path}: expected 65 columns (64 pixels, then the class), found "
                         f"{table.shape[1]}")
    counts, labels = table[:, :64], table[:, 64]
    if counts.min(initial=0) < 0 or counts.max(initial=0) > 16 or \
            labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise ValueError(f"{path}: expected pixel counts in 0..16 and classes 0..9")
    images = counts.reshape(-1, 8, 8)
    return (images if raw else images / 16.0), labels


_PGM_TOKEN = re.compile(rb"(?:\s|#[^\n]*\n?)*([^\s#]+)")


def read_pgm(path):
    """Read a binary (P5) or ASCII (P2) PGM image into a 2-D uint8 or uint16 array."""
    with open(path, "rb") as f:
        data = f.read()
    pos, fields = 0, []
    for _ in range(4):  # magic, width, height, maxval; comments may sit between them
        m = _PGM_TOKEN.match(data, pos)
        if m is None:
            raise ValueError(f"{path}: truncated PGM header")
        fields.append(m.group(1))
        pos = m.end()
    magic = fields[0]
    if magic not in (b"P5", b"P2"):
        raise ValueError(f"{path}: not a PGM image: expected magic P5 or P2, found {magic[:8]!r}")
    try:
        width, height, maxval = (int(x) for x in fields[1:])
    except ValueError:
        raise ValueError(f"{path}: bad PGM header {b' '.join(fields)!r}") from None
    if not (0 < maxval < 65536):
        raise ValueError(f"{path}: PGM maxval must be in 1..65535, found {maxval}")
    dtype = np.dtype(np.uint8 if maxval < 256 else ">u2")
    count = width * height
    if magic == b"P2":
        values = np.array(data[pos:].split()[:count], dtype=np.int64)
        if values.size != count:
            raise ValueError(f"{path}: expected {count} pixel values, found {values.size}")
        return values.astype(dtype.newbyteorder("=")).reshape(height, width)
    pos += 1  # exactly one whitespace byte separates the header from the raster
    need = count * dtype.itemsize
    if len(data) - pos < need:
        raise ValueError(f"{path}: truncated PGM: expected {need} raster bytes for "
                         f"{width}x{height}, found {len(data) - pos}")
    return np.frombuffer(data, dtype, count, pos).astype(dtype.newbyteorder("=")) \
        .reshape(height, width)


def load_att_faces(path):
    """The AT&T (ORL) Database of Faces: folders ``s1`` ... ``s40`` of PGM images.

    Returns ``(images, labels)``: images (n, 112, 92) float64 in [0, 1] (pixel / maxval, in the
    order s1/1.pgm, s1/2.pgm, ...), labels int64 0..39 (subject ``sK`` is label K-1).
    """
    path = Path(path).expanduser()
    subjects = sorted((d for d in path.glob("s*") if d.is_dir() and d.name[1:].isdigit()),
                      key=lambda d: int(d.name[1:]))
    if not subjects:
        raise FileNotFoundError(f"no subject folders s1, s2, ... found in {path}; pass the "
                                "folder of the AT&T/ORL faces (att_faces)")
    images, labels = [], []
    for d in subjects:
        files = sorted(d.glob("*.pgm"), key=lambda f: (len(f.stem), f.stem))
        for f in files:
            img = read_pgm(f)
            images.append(img / (255.0 if img.dtype == np.uint8 else 65535.0))
            labels.append(int(d.name[1:]) - 1)
    if not images:
        raise FileNotFoundError(f"no .pgm images in the subject folders of {path}")
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise ValueError(f"{path}: the images differ in size ({sorted(shapes)}); expected one "
                         "size (112x92 for AT&T/ORL)")
    return np.stack(images), np.array(labels, dtype=np.int64)


def load_olivetti_mat(path):
    """Olivetti faces from a MATLAB file with variable ``faces`` (4096 x 400, uint8).

    Image i is ``faces[:, i].reshape(64, 64).T`` (MATLAB stores columns), subject ``i // 10``.
    Returns ``(images, labels)``: images (400, 64, 64) float64 in [0, 1], labels int64 0..39.
    """
    from scipy.io import loadmat

    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; pass the olivettifaces.mat file")
    mat = loadmat(path)
    if "faces" not in mat:
        names = ", ".join(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{path}: expected a variable 'faces', found {names or 'none'}")
    faces = np.asarray(mat["faces"])
    if faces.ndim != 2 or faces.shape[0] != 4096:
        raise ValueError(f"{path}: expected 'faces' of shape (4096, n), found {faces.shape}")
    images = faces.T.reshape(-1, 64, 64).transpose(0, 2, 1).astype(np.float64)
    if faces.dtype.kind in "ui" or images.max(initial=0) > 1:
        images /= 255.0
    return images, np.arange(len(images), dtype=np.int64) // 10
