"""The built-in synthetic digits: ``synthetic_digits`` and the renderer behind it.

28x28 digits rendered from the fonts matplotlib ships and from two pen "fonts", warped like
handwriting and placed like MNIST, so the demo, the tests and the notebooks run on a fresh
install, without any download.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from .._validation import check_param

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
    gives bit-identical output. The fonts are rasterised once per process, on the first call.
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
