"""Data sets for the lecture's examples: real digits from files, and digits that need no download.

* ``read_idx``: the IDX format MNIST and Fashion-MNIST are stored in (gzipped or not).
* ``load_mnist`` / ``load_fashion_mnist``: the four standard files in a folder, torchvision's
  ``MNIST/raw`` layout, or Keras' ``mnist.npz``. Fashion-MNIST is found where Debian's package
  ``dataset-fashion-mnist`` installs it.
* ``find_dataset``: the best data present (``NPAE_DATA``, an explicit path, Fashion-MNIST,
  else the built-in digits), as used by ``npae demo`` and ``--data``.
* ``synthetic_digits``: 28x28 digits rendered from the fonts matplotlib ships, warped like
  handwriting, so the demo, the tests and the notebooks run on a fresh install.
* ``normalize`` / ``denormalize``: the lecture's normalisation (mean 0.5, std 0.5 -> [-1, 1]).
* Path-only loaders for data a user brings: UCI optdigits, AT&T/ORL faces, Olivetti faces.

npae never downloads anything: every loader reads a path, and the error says where it looked.
"""
from __future__ import annotations

import functools
import gzip
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._validation import as_float_array, check_param
from .train import iterate_minibatches as batches

__all__ = [
    "read_idx", "load_mnist", "load_fashion_mnist", "find_dataset", "DatasetChoice",
    "synthetic_digits", "normalize", "denormalize", "load_optdigits", "load_att_faces",
    "load_olivetti_mat", "read_pgm", "batches", "FASHION_MNIST_DIR",
]

#: Where Debian's ``dataset-fashion-mnist`` package puts the four IDX files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

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
    the data: it is an error, not a silent fall-back, when it does not.
    """
    if preferred == "synthetic":
        return DatasetChoice("synthetic", None, "asked for")
    if preferred == "fashion-mnist":
        load_fashion_mnist(kind="test", raw=True)  # raises with the apt-get hint if absent
        return DatasetChoice("fashion-mnist", str(FASHION_MNIST_DIR), "asked for")
    env = os.environ.get("NPAE_DATA")
    if preferred == "mnist" and not env:
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
    if _has_idx_set(FASHION_MNIST_DIR, load_fashion_mnist):
        return DatasetChoice("fashion-mnist", str(FASHION_MNIST_DIR), "installed")
    return DatasetChoice("synthetic", None, "no MNIST (NPAE_DATA) or Fashion-MNIST found")


# --------------------------------------------------------------------------------------------
# The lecture's normalisation
# --------------------------------------------------------------------------------------------

def normalize(X, mean=0.5, std=0.5):
    """(X - mean) / std: with the lecture's mean 0.5 and std 0.5, [0, 1] maps to [-1, 1]
    (the range of the decoder's final Tanh). float32 stays float32."""
    check_param("std", std, low=0, low_open=True)
    X = as_float_array(X, "X", allow_empty=True)
    return (X - X.dtype.type(mean)) / X.dtype.type(std)


def denormalize(X, mean=0.5, std=0.5):
    """The inverse of ``normalize``: X * std + mean."""
    check_param("std", std, low=0, low_open=True)
    X = as_float_array(X, "X", allow_empty=True)
    return X * X.dtype.type(std) + X.dtype.type(mean)


# --------------------------------------------------------------------------------------------
# Built-in synthetic digits
# --------------------------------------------------------------------------------------------
#
# Each digit of each font is rasterised once, at high resolution, into a signed distance
# field (positive inside the glyph, in glyph pixels). A sample is then one bilinear look-up
# per output pixel through a random affine map plus a gentle elastic field, and the intensity
# is a ramp on the distance: shifting the ramp thickens or thins the stroke continuously, so
# stroke width costs nothing extra and every font ends up with pen-like strokes of the same
# range of widths. Size and position follow MNIST's recipe: the digit's box is scaled to about
# 20 px, then the image is translated so the centre of mass sits at the centre of the 28x28
# field (pixel (14, 14), as in the real files).

# Fonts in matplotlib's own mpl-data (shipped with every install); italics and serif faces
# give the shapes variety (open 4s, flagged 1s, curly 2s) that shear alone does not.
# (DejaVu Sans Mono is left out: its zero carries a dot no handwritten zero has.)
_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif.ttf",
          "DejaVuSerif-Italic.ttf", "STIXGeneral.ttf", "STIXGeneralItalic.ttf", "cmr10.ttf",
          "cmss10.ttf", "cmtt10.ttf", "cmti10.ttf")
_RES = 96          # glyph canvas (px); the glyph's larger side is _GLYPH px
_GLYPH = 64
_N_BOX = 64        # boundary points kept per glyph to find a warped glyph's box


def _font_files():
    import matplotlib
    from matplotlib import font_manager
    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    files = [ttf / f for f in _FONTS if (ttf / f).is_file()]
    if not files:  # distributions that unbundle the fonts still resolve DejaVu Sans
        files = [Path(font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans")))]
    return files


def _arc(cx, cy, rx, ry, t0, t1):
    """Points on an elliptic arc from angle t0 to t1 (degrees, counter-clockwise as on paper;
    y points down, so the sine is subtracted)."""
    t = np.radians(np.linspace(t0, t1, max(4, int(abs(t1 - t0) / 8))))
    return np.column_stack([cx + rx * np.cos(t), cy - ry * np.sin(t)])


def _line(*points):
    return np.array(points, dtype=np.float64)


# Two pen "fonts": each digit as the centre lines of its strokes, (x, y) in a box about
# 0.6 wide and 1 high, y down. Drawn with a round pen they give the monoline strokes of
# handwriting that no typeface has (plain 1s, open 4s, 7s with a bar, single-loop 2s).
_PEN_FONTS = (
    {0: [_arc(0.3, 0.5, 0.28, 0.48, 0, 360)],
     1: [_line((0.32, 0.0), (0.28, 1.0))],
     2: [np.vstack([_arc(0.3, 0.28, 0.27, 0.26, 160, -40), _line((0.02, 1.0), (0.62, 1.0))])],
     3: [np.vstack([_arc(0.3, 0.25, 0.25, 0.23, 150, -90),
                    _arc(0.3, 0.73, 0.28, 0.26, 90, -150)])],
     4: [_line((0.45, 1.0), (0.45, 0.0), (0.0, 0.68), (0.62, 0.68))],
     5: [np.vstack([_line((0.56, 0.0), (0.12, 0.0), (0.07, 0.45)),
                    _arc(0.3, 0.68, 0.28, 0.3, 140, -150)])],
     6: [np.vstack([_arc(0.55, 0.62, 0.5, 0.62, 100, 190),
                    _arc(0.31, 0.72, 0.26, 0.27, 180, 540)])],
     7: [_line((0.0, 0.0), (0.6, 0.0), (0.22, 1.0))],
     8: [_arc(0.3, 0.25, 0.22, 0.24, 0, 360), _arc(0.3, 0.73, 0.27, 0.26, 0, 360)],
     9: [_arc(0.3, 0.28, 0.27, 0.27, 0, 360), _line((0.57, 0.28), (0.5, 1.0))]},
    {0: [_arc(0.3, 0.5, 0.3, 0.5, 80, 450)],
     1: [_line((0.12, 0.22), (0.36, 0.0), (0.36, 1.0))],
     2: [np.vstack([_arc(0.32, 0.27, 0.26, 0.26, 150, -20),
                    _line((0.55, 0.4), (0.05, 1.0)),
                    _arc(0.14, 0.9, 0.12, 0.1, 140, 380), _line((0.26, 0.96), (0.62, 1.0))])],
     3: [np.vstack([_line((0.05, 0.0), (0.55, 0.0), (0.22, 0.42)),
                    _arc(0.3, 0.7, 0.29, 0.3, 110, -150)])],
     4: [_line((0.1, 0.0), (0.02, 0.6), (0.62, 0.6)), _line((0.48, 0.25), (0.48, 1.0))],
     5: [_line((0.1, 0.02), (0.06, 0.46)), _line((0.1, 0.02), (0.6, 0.0)),
         _arc(0.3, 0.7, 0.3, 0.29, 145, -160)],
     6: [np.vstack([_line((0.5, 0.0)), _arc(0.62, 0.75, 0.6, 0.75, 105, 180),
                    _arc(0.3, 0.75, 0.28, 0.25, 180, 530)])],
     7: [_line((0.0, 0.06), (0.0, 0.0), (0.62, 0.0), (0.2, 1.0)), _line((0.1, 0.5), (0.55, 0.5))],
     8: [np.vstack([_arc(0.3, 0.25, 0.22, 0.25, -60, 240), _arc(0.3, 0.75, 0.3, 0.25, 60, -240),
                    _arc(0.3, 0.25, 0.22, 0.25, -60, -60)])],
     9: [_arc(0.3, 0.26, 0.28, 0.26, 0, 360), np.vstack([_line((0.58, 0.26)),
                                                         _arc(-0.1, 0.3, 0.68, 0.72, 0, -80)])]},
)
_PEN_RADIUS = 4.0  # glyph px: thin enough to keep loops open; the sampler sets the real pen


def _outline_fields(font, grid, to_canvas):
    """Signed distance fields of the ten digits of a font file (positive inside)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.path import Path as MplPath
    from matplotlib.textpath import TextPath
    from scipy import ndimage

    prop = FontProperties(fname=str(font))
    for digit in range(10):
        path = TextPath((0, 0), str(digit), size=100, prop=prop)
        verts = to_canvas(path.vertices * [1, -1], _GLYPH)  # font y points up, rows down
        # even-odd over the outline's closed polygons: a hole (the loops of 0, 4, 6, 8, 9)
        # is a polygon inside another, and the compound path's own test fills it
        mask = np.zeros(len(grid), dtype=bool)
        for poly in MplPath(verts, path.codes).to_polygons():
            mask ^= MplPath(poly).contains_points(grid)
        mask = mask.reshape(_RES, _RES)
        yield np.where(mask, ndimage.distance_transform_edt(mask) - 0.5,
                       0.5 - ndimage.distance_transform_edt(~mask))


def _pen_fields(strokes, grid, to_canvas):
    """Signed distance fields of pen-drawn digits: pen radius minus distance to the strokes."""
    from scipy.spatial import cKDTree

    for digit in range(10):
        lines = strokes[digit]
        allpts = to_canvas(np.vstack(lines), _GLYPH - 2 * _PEN_RADIUS)
        dense, start = [], 0
        for line in lines:
            pts = allpts[start:start + len(line)]
            start += len(line)
            # points every 0.2 px along each segment: the nearest one is within 0.005 px of
            # the true distance to the segment for every grid point outside the stroke's core
            for p, q in zip(pts[:-1], pts[1:]):
                k = max(2, int(np.hypot(*(q - p)) / 0.2) + 1)
                dense.append(p + np.linspace(0, 1, k)[:, None] * (q - p))
        dist, _ = cKDTree(np.vstack(dense)).query(grid)
        yield (_PEN_RADIUS - dist).reshape(_RES, _RES)


@functools.lru_cache(maxsize=1)
def _glyph_bank():
    """Signed distance fields of every digit in every font, with what sampling needs.

    Returns sdf (G, R, R) float32, digit (G,), box points (G, _N_BOX, 2) as (row, col)
    relative to the glyph's mass centre, half stroke width (G,), mass centre (G, 2), and
    whether each glyph is pen-drawn (G,); all in glyph pixels, pixel centres at index + 0.5.
    Glyph g is digit g % 10 of font g // 10.
    """
    from scipy import ndimage

    centres = np.arange(_RES) + 0.5
    cols, rows = np.meshgrid(centres, centres)
    grid = np.column_stack([cols.ravel(), rows.ravel()])

    def to_canvas(xy, side):
        lo, hi = xy.min(0), xy.max(0)
        return (xy - (lo + hi) / 2) * (side / (hi - lo).max()) + _RES / 2

    sources = [(False, _outline_fields(f, grid, to_canvas)) for f in _font_files()]
    sources += [(True, _pen_fields(p, grid, to_canvas)) for p in _PEN_FONTS]
    sdfs, coms, boxes, halfwidths, pen = [], [], [], [], []
    for is_pen, fields in sources:
        for sdf in fields:
            mask = sdf > 0
            boundary = mask & ~ndimage.binary_erosion(mask)
            pts = np.argwhere(boundary).astype(np.float64) + 0.5
            com = np.array(ndimage.center_of_mass(mask)) + 0.5
            take = np.linspace(0, len(pts) - 1, _N_BOX).round().astype(int)
            sdfs.append(sdf.astype(np.float32))
            coms.append(com)
            boxes.append(pts[take] - com)
            # for a stroke of width 2r and length L: area 2rL, perimeter about 2L
            halfwidths.append(mask.sum() / boundary.sum())
            pen.append(is_pen)
    return (np.stack(sdfs), np.arange(len(sdfs)) % 10, np.stack(boxes),
            np.array(halfwidths), np.stack(coms), np.array(pen))


# Distortion ranges (output pixels and radians), chosen by looking at grids beside real MNIST.
_ROTATION = 0.22       # +- radians (about 12 degrees), uniform
_SHEAR = (-0.2, 0.4)   # horizontal shear (slant; MNIST leans right), uniform
_ASPECT = (0.85, 1.35)  # width stretch
_HEIGHT = (18.0, 20.0)  # larger side of the digit's box, px (MNIST: 20)
_HALF_STROKE = (0.9, 1.8)  # half the pen width, px
_RAMP = 1.3            # width of the anti-aliased edge, px
_ELASTIC = 0.9         # std of the smooth displacement field, px
_PEN_SHARE = 0.4       # fraction drawn with the pen fonts rather than typefaces
_CENTRE = 14.0         # MNIST's mass centre (row, col) in pixel-index coordinates


def _elastic_basis(size, knots=4):
    """(size, knots) matrix that interpolates a knots x knots grid to size x size (linear)."""
    t = np.linspace(0, knots - 1, size)
    B = np.maximum(0, 1 - np.abs(t[:, None] - np.arange(knots)[None, :]))
    return B


def _render(fields, coms, g, M, offset, disp, stroke_shift, size):
    """Sample the glyph fields: pixel (i, j) shows glyph point M @ ((i, j) + disp - offset).

    ``M`` (n, 2, 2) maps output pixels to glyph pixels (row, col), ``offset`` (n, 2) is where
    the glyph's mass centre lands, ``disp`` (n, 2, size, size) the elastic displacement.
    Returns float32 intensities in [0, 1]. Float32 throughout: this is memory-bound.
    """
    f4 = np.float32
    M = M.astype(f4)
    idx = np.arange(size, dtype=f4)
    u = disp[:, 0] + idx[None, :, None]              # rows
    u -= offset[:, 0, None, None].astype(f4)
    v = disp[:, 1] + idx[None, None, :]              # cols
    v -= offset[:, 1, None, None].astype(f4)
    origin = (coms[g] - 0.5).astype(f4)              # field index of the mass centre
    r = M[:, 0, 0, None, None] * u
    r += M[:, 0, 1, None, None] * v
    r += origin[:, 0, None, None]
    c = M[:, 1, 0, None, None] * u
    c += M[:, 1, 1, None, None] * v
    c += origin[:, 1, None, None]
    del u, v
    np.clip(r, 0, _RES - 1.01, out=r)  # the canvas edge lies far outside every glyph
    np.clip(c, 0, _RES - 1.01, out=c)
    r0 = np.floor(r)
    c0 = np.floor(c)
    fr = r - r0
    fc = c - c0
    # one flat index and four takes: much faster than 3-D fancy indexing
    at = r0.astype(np.intp)
    at *= _RES
    at += c0.astype(np.intp)
    at += (g * (_RES * _RES))[:, None, None]
    flat = fields.reshape(-1)
    top = flat.take(at)
    top += (flat.take(at + 1) - top) * fc
    at += _RES
    sd = flat.take(at)
    sd += (flat.take(at + 1) - sd) * fc
    sd -= top
    sd *= fr
    sd += top
    # distance in glyph px -> output px, then the pen: shift the edge, anti-alias over _RAMP
    scale = (1 / np.sqrt(np.abs(np.linalg.det(M.astype(np.float64))))).astype(f4)
    sd *= (scale / f4(_RAMP))[:, None, None]
    sd += ((stroke_shift / _RAMP + 0.5).astype(f4))[:, None, None]
    return np.clip(sd, 0, 1, out=sd)


def _centre_of_mass(images):
    size = images.shape[-1]
    idx = np.arange(size, dtype=np.float64)
    mass = images.sum(axis=(1, 2))
    mass = np.where(mass > 0, mass, 1)
    return np.column_stack([images.sum(axis=2) @ idx / mass, images.sum(axis=1) @ idx / mass])


def synthetic_digits(n, seed=0, size=28):
    """``n`` MNIST-like handwritten-looking digits, generated without any download.

    Digits 0-9 from the fonts matplotlib ships (DejaVu, STIX, Computer Modern: sans, serif,
    italic, typewriter) and from two built-in pen "fonts" (stroke centre lines drawn with a
    round pen), each with a random rotation, slant, width, size, pen width and a smooth
    elastic wobble, then placed like MNIST: the box scaled to about 20 px of a 28 px field
    (``size`` scales this), the centre of mass at the field's centre. White on black; pixel
    statistics close to MNIST's (mean 0.13, 13% of pixels above 0.5).

    Returns ``(images, labels)``: images (n, size, size) float64 in [0, 1], labels int64
    balanced over 0-9 (counts differ by at most one), in random order. The same ``seed``
    gives bit-identical output. About a second per 10000 digits, after about a second once
    per process to rasterise the fonts.
    """
    check_param("n", n, kind="int", low=0)
    check_param("size", size, kind="int", low=8)
    rng = np.random.default_rng(seed)
    fields, _, boxes, halfwidths, coms, pen = _glyph_bank()
    px = size / 28  # the recipe is stated for 28 px; other sizes scale it

    labels = rng.permutation(np.arange(n) % 10).astype(np.int64)
    # glyph: a random font for the sample's digit, pen-drawn with probability _PEN_SHARE
    fonts = pen[::10]
    weights = np.where(fonts, _PEN_SHARE / fonts.sum(), (1 - _PEN_SHARE) / (~fonts).sum())
    g = rng.choice(len(fonts), n, p=weights / weights.sum()) * 10 + labels
    theta = rng.uniform(-_ROTATION, _ROTATION, n)
    shear = rng.uniform(*_SHEAR, n)
    aspect = rng.uniform(*_ASPECT, n)
    height = rng.uniform(*_HEIGHT, n) * px
    half = rng.uniform(*_HALF_STROKE, n) * px
    jitter = rng.uniform(-0.5, 0.5, (n, 2)) * px  # MNIST centres to whole pixels
    knots = rng.standard_normal((n, 2, 4, 4))

    # forward map glyph (row, col) -> output (row, col): A = R(theta) @ [[1, 0], [-shear, 1]]
    # @ diag(1, aspect); rows point down, so a positive slant moves the top to the right
    cos, sin = np.cos(theta), np.sin(theta)
    A = np.empty((n, 2, 2))
    A[:, 0, 0] = cos + sin * shear
    A[:, 0, 1] = -sin * aspect
    A[:, 1, 0] = sin - cos * shear
    A[:, 1, 1] = cos * aspect
    # the warped outline's box decides the scale; the pen and the anti-aliased edge then add
    # about 2 * half - 1 px, so the non-zero pixels span about `height` px (measured: median
    # 19-20, like MNIST's 20)
    pts = np.einsum("nij,npj->npi", A, boxes[g])
    extent = (pts.max(axis=1) - pts.min(axis=1)).max(axis=1)
    s = (height - 2 * half + 1) / extent
    A *= s[:, None, None]
    M = np.linalg.inv(A)
    # the font's own stroke is 2 * halfwidth glyph px: move the edge to the wanted pen width
    stroke_shift = half - halfwidths[g] * s

    B = (_elastic_basis(size) * (_ELASTIC * px)).astype(np.float32)
    target = _CENTRE * px + jitter

    images = np.empty((n, size, size))
    chunk = 1024  # keeps the temporaries in cache
    for start in range(0, n, chunk):
        sl = slice(start, start + chunk)
        disp = B @ knots[sl].astype(np.float32) @ B.T
        args = (fields, coms, g[sl], M[sl])
        offset = target[sl].copy()
        img = _render(*args, offset, disp, stroke_shift[sl], size)
        # one correction: the pen and the wobble move the mass centre a little
        offset -= _centre_of_mass(img) - target[sl]
        images[sl] = _render(*args, offset, disp, stroke_shift[sl], size)
    return images, labels


# --------------------------------------------------------------------------------------------
# Path-only loaders for data the user brings (npae never needs them)
# --------------------------------------------------------------------------------------------

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
