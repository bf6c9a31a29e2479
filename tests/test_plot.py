"""npae.plot: what each figure holds (axes, images, lines, points) and how it is saved."""
import os

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from npae import plot
from npae.plot import as_image_stack, codes_2d, image_grid, loss_curves, save_figure, \
    side_by_side

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tiles_of(mosaic, nrow, ncol, H, W, pad=1, top=0):
    """Cut a mosaic back into tiles, with the layout written out here (not npae's)."""
    return np.stack([mosaic[i * (H + pad + top) + top:i * (H + pad + top) + top + H,
                            j * (W + pad):j * (W + pad) + W]
                     for i in range(nrow) for j in range(ncol)])


@pytest.mark.parametrize("layout", ["nhw", "n1hw", "flat", "flat_shape"])
def test_image_grid_layouts(rng, layout):
    X = rng.random((6, 5, 4))
    arg = {"nhw": X, "n1hw": X[:, None], "flat": None, "flat_shape": X.reshape(6, 20)}[layout]
    kw = {"image_shape": (5, 4)} if layout == "flat_shape" else {}
    if layout == "flat":  # square rows need no image_shape
        X = rng.random((6, 3, 3))
        arg = X.reshape(6, 9)
    fig = image_grid(arg, nrow=2, ncol=3, **kw)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    (im,) = fig.axes[0].images
    mosaic = im.get_array()
    H, W = X.shape[1:]
    assert mosaic.shape == (2 * (H + 1) - 1, 3 * (W + 1) - 1)
    np.testing.assert_array_equal(tiles_of(mosaic, 2, 3, H, W), X)
    assert mosaic.mask[H, :].all() and mosaic.mask[:, W].all()  # the gaps are masked out


def test_image_grid_shape_defaults_and_truncation(rng):
    X = rng.random((10, 4, 4))
    mosaic = image_grid(X).axes[0].images[0].get_array()
    assert mosaic.shape == (3 * 5 - 1, 4 * 5 - 1)  # 10 images: 3 rows of 4
    assert mosaic.mask[10:, 10:].all()  # the last two places stay empty
    assert image_grid(X, nrow=5).axes[0].images[0].get_array().shape == (5 * 5 - 1, 2 * 5 - 1)
    shown = image_grid(X, nrow=2, ncol=2).axes[0].images[0].get_array()
    np.testing.assert_array_equal(tiles_of(shown, 2, 2, 4, 4), X[:4])


def test_image_grid_colour_scales(rng):
    X = rng.random((4, 3, 3)) * np.array([1, 10, 100, 1000])[:, None, None]
    im = image_grid(X, vmin=-1, vmax=2).axes[0].images[0]
    assert im.get_clim() == (-1, 2) and im.get_cmap().name == "gray"
    each = image_grid(X, scale="each").axes[0].images[0]
    tiles = tiles_of(each.get_array(), 2, 2, 3, 3)
    np.testing.assert_allclose(tiles.min(axis=(1, 2)), 0, atol=1e-15)
    np.testing.assert_allclose(tiles.max(axis=(1, 2)), 1)
    lo, hi = X.min(axis=(1, 2), keepdims=True), X.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(tiles, (X - lo) / (hi - lo))
    flat = image_grid(np.ones((2, 3, 3)), scale="each").axes[0].images[0].get_array()
    assert np.isfinite(flat.compressed()).all()  # a constant tile is not divided by 0


def test_image_grid_titles_and_existing_axes(rng):
    from matplotlib.figure import Figure as F
    fig = F()
    ax = fig.add_subplot()
    out = image_grid(rng.random((5, 6, 6)), ncol=5, titles=list("abcde"), title="five", ax=ax)
    assert out is fig and ax.get_title() == "five"
    assert [t.get_text() for t in ax.texts] == list("abcde")
    mosaic = ax.images[0].get_array()
    top = max(3, 6 // 3)  # room above each tile for its title
    assert mosaic.shape == (6 + top, 5 * 7 - 1)
    with pytest.raises(ValueError, match="titles has 2 entries for 5 images"):
        image_grid(rng.random((5, 6, 6)), titles=["a", "b"])


def test_image_grid_bad_input(rng):
    with pytest.raises(ValueError, match="rows of 10 values are not square.*image_shape"):
        image_grid(rng.random((3, 10)))
    with pytest.raises(ValueError, match="not a multiple of 12"):
        image_grid(rng.random((3, 10)), image_shape=(3, 4))
    with pytest.raises(ValueError, match=r"expected \(n, H, W\), \(n, 1, H, W\)"):
        image_grid(rng.random((2, 3, 4, 4)))
    with pytest.raises(ValueError, match="images is empty"):
        image_grid(np.zeros((0, 4, 4)))
    with pytest.raises(ValueError, match="scale='both' is not supported"):
        image_grid(rng.random((2, 4, 4)), scale="both")
    with pytest.raises(TypeError, match="numeric"):
        as_image_stack(np.array([["a"]]))


def test_side_by_side_is_the_lectures_figure(rng):
    X = rng.random((120, 28, 28)) * 2 - 1
    R = 1.2 * X[:, ::-1]  # wider range than the originals: the shared scale must cover both
    fig = side_by_side(X[:, None], R[:, None])  # NCHW, as the conv autoencoder returns them
    assert len(fig.axes) == 2
    left, right = (ax.images[0] for ax in fig.axes)
    assert left.get_array().shape == right.get_array().shape == (10 * 29 - 1, 10 * 29 - 1)
    np.testing.assert_array_equal(tiles_of(left.get_array(), 10, 10, 28, 28), X[:100])
    np.testing.assert_array_equal(tiles_of(right.get_array(), 10, 10, 28, 28), R[:100])
    joint = (min(X[:100].min(), R[:100].min()), max(X[:100].max(), R[:100].max()))
    assert left.get_clim() == right.get_clim() == joint  # one colour scale for both
    assert [ax.get_title() for ax in fig.axes] == ["test samples", "reconstructions"]
    with pytest.raises(ValueError, match="differ in shape"):
        side_by_side(X, R[:50])


def test_loss_curves(rng):
    history = {"loss": [1.0, 0.5, 0.25], "val_loss": [1.2, 0.7, 0.4]}
    fig = loss_curves(history, logy=True)
    ax = fig.axes[0]
    assert [ln.get_label() for ln in ax.lines] == ["training", "validation"]
    for ln, key in zip(ax.lines, history):
        np.testing.assert_array_equal(ln.get_xdata(), [1, 2, 3])
        np.testing.assert_array_equal(ln.get_ydata(), history[key])
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "epoch"
    # no validation data: one curve; other terms keep their names; a fitted model works too
    assert len(loss_curves({"loss": [3, 2], "val_loss": []}).axes[0].lines) == 1

    class Fitted:
        history_ = {"reconstruction": [2.0, 1.0], "sparsity": [0.5, 0.4]}
    labels = [ln.get_label() for ln in loss_curves(Fitted()).axes[0].lines]
    assert labels == ["reconstruction", "sparsity"]
    with pytest.raises(ValueError, match="no values"):
        loss_curves({"loss": [], "val_loss": []})
    with pytest.raises(TypeError, match="history must be a dict"):
        loss_curves([1, 2, 3])


def test_codes_2d(rng):
    Z = rng.standard_normal((30, 2))
    y = np.repeat([0, 1, 2], 10)
    ax = codes_2d(Z, y).axes[0]
    assert len(ax.collections) == 3
    for cls, coll in enumerate(ax.collections):
        np.testing.assert_array_equal(coll.get_offsets(), Z[y == cls])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2"]
    colours = [tuple(c.get_facecolor()[0][:3]) for c in ax.collections]
    assert len(set(colours)) == 3
    assert len(codes_2d(Z).axes[0].collections) == 1
    with pytest.raises(ValueError, match=r"codes must have shape \(n, 2\), got \(30, 3\)"):
        codes_2d(rng.standard_normal((30, 3)))
    with pytest.raises(ValueError, match=r"labels must have shape \(30,\)"):
        codes_2d(Z, y[:5])


@pytest.mark.parametrize("draw", [
    lambda p: image_grid(np.zeros((4, 5, 5)), path=p),
    lambda p: side_by_side(np.zeros((4, 5, 5)), np.ones((4, 5, 5)), path=p),
    lambda p: loss_curves({"loss": [1, 0.5]}, path=p),
    lambda p: codes_2d(np.zeros((3, 2)), [0, 1, 1], path=p),
])
def test_path_writes_a_png(tmp_path, draw):
    path = tmp_path / "sub" / "fig.png"
    fig = draw(path)
    assert isinstance(fig, Figure)
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert os.listdir(path.parent) == ["fig.png"]  # no temporary file left behind


def test_save_is_atomic_and_follows_the_suffix(tmp_path, monkeypatch):
    fig = loss_curves({"loss": [1.0, 0.5]})
    svg = tmp_path / "f.svg"
    save_figure(fig, svg)
    assert b"<svg" in svg.read_bytes()[:500]
    target = tmp_path / "f.png"
    target.write_bytes(b"previous figure")

    def broken_savefig(f, **kw):
        f.write(b"half a PNG")
        raise RuntimeError("disk full")
    monkeypatch.setattr(fig, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        save_figure(fig, target)
    assert target.read_bytes() == b"previous figure"
    assert sorted(os.listdir(tmp_path)) == ["f.png", "f.svg"]


def test_no_pyplot_figures_are_left_open(rng):
    import matplotlib.pyplot as plt
    before = plt.get_fignums()
    image_grid(rng.random((4, 3, 3)))
    side_by_side(rng.random((4, 3, 3)), rng.random((4, 3, 3)))
    loss_curves({"loss": [1.0]})
    codes_2d(rng.random((5, 2)))
    assert plt.get_fignums() == before
    assert matplotlib.get_backend()  # and nothing needed a display to get here


def test_public_names():
    for name in ("image_grid", "side_by_side", "loss_curves", "codes_2d", "save_figure"):
        assert name in plot.__all__
