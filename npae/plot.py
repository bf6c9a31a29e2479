"""Figures for the lecture's examples, drawn with matplotlib.

Every function returns the matplotlib ``Figure`` (so a notebook shows it and a script can
adjust it), accepts ``ax=`` to draw into an existing axes where that makes sense, and with
``path=`` also saves the figure atomically (a crash mid-save never leaves half a PNG). Figures
are built with ``matplotlib.figure.Figure``, not pyplot: nothing here needs a display or
touches pyplot's global list of open figures, so it is safe on headless machines and in loops.

Sections: generic helpers first (image grids, originals beside reconstructions, loss curves,
2-D codes); topic-specific figures (eigenfaces, scree plot, dictionary atoms...) go in their
own sections below, built on these helpers.
"""
from __future__ import annotations

import math
import os

import numpy as np

from ._io import atomic_write

__all__ = ["image_grid", "side_by_side", "loss_curves", "codes_2d", "save_figure",
           "as_image_stack"]


# --------------------------------------------------------------------------------------------
# Generic helpers
# --------------------------------------------------------------------------------------------

def _new_figure(figsize):
    from matplotlib.figure import Figure
    return Figure(figsize=figsize, layout="constrained")


def save_figure(fig, path, *, dpi=100):
    """Save ``fig`` to ``path`` atomically; the format follows the suffix (PNG if none)."""
    fmt = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"
    atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=dpi))
    return path


def _finish(fig, path, dpi=100):
    if path is not None:
        save_figure(fig, path, dpi=dpi)
    return fig


def as_image_stack(images, image_shape=None, name="images"):
    """``images`` as an (n, H, W) float array.

    Accepts (n, H, W), (n, 1, H, W) (one-channel NCHW, as the conv layers use), or flattened
    rows (n, d) with ``image_shape=(H, W)``; square rows (d = 784 -> 28x28) need no
    ``image_shape``. A 2-D array is always rows: a single image goes in as ``image[None]``.
    """
    X = np.asarray(images)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} has dtype {X.dtype}; pass a numeric array")
    X = X.astype(np.float64, copy=False)
    if image_shape is not None:
        H, W = (int(s) for s in image_shape)
        if X.size % (H * W):
            raise ValueError(f"{name} of shape {X.shape} cannot be cut into images of shape "
                             f"{(H, W)}: {X.size} values is not a multiple of {H * W}")
        return X.reshape(-1, H, W)
    if X.ndim == 2:  # rows are images (one image: pass image[None])
        side = math.isqrt(X.shape[1])
        if side * side != X.shape[1] or side == 0:
            raise ValueError(f"{name} has shape {X.shape}: rows of {X.shape[1]} values are not "
                             "square images; pass image_shape=(H, W) (for a single image, "
                             "pass image[None])")
        return X.reshape(-1, side, side)
    if X.ndim == 4 and X.shape[1] == 1:
        return X[:, 0]
    if X.ndim == 3:
        return X
    raise ValueError(f"{name} has shape {X.shape}; expected (n, H, W), (n, 1, H, W), or "
                     "(n, d) with image_shape=(H, W)")


def _grid_shape(n, nrow, ncol):
    if nrow is None and ncol is None:
        ncol = max(1, math.ceil(math.sqrt(n)))
    if nrow is None:
        nrow = max(1, math.ceil(n / ncol))
    if ncol is None:
        ncol = max(1, math.ceil(n / nrow))
    if nrow < 1 or ncol < 1:
        raise ValueError(f"nrow={nrow}, ncol={ncol}: both must be at least 1")
    return int(nrow), int(ncol)


def _mosaic(X, nrow, ncol, pad, scale, top=0):
    """Tile (n, H, W) into one array, NaN in the gaps (drawn in the axes' background);
    ``top`` extra rows above each tile leave room for its title."""
    n, H, W = X.shape
    if scale == "each":  # every tile stretched to [0, 1] on its own (filters, eigen-images)
        lo = X.min(axis=(1, 2), keepdims=True)
        span = X.max(axis=(1, 2), keepdims=True) - lo
        X = (X - lo) / np.where(span > 0, span, 1)
    h, w = H + pad + top, W + pad
    out = np.full((nrow * h - pad, ncol * w - pad), np.nan)
    for k in range(min(n, nrow * ncol)):
        i, j = divmod(k, ncol)
        out[i * h + top:i * h + top + H, j * w:j * w + W] = X[k]
    return out


def image_grid(images, nrow=None, ncol=None, *, titles=None, cmap="gray", vmin=None,
               vmax=None, scale="shared", image_shape=None, pad=1, title=None, ax=None,
               figsize=None, path=None, dpi=100):
    """Show images as a grid: the lecture's 10x10 panels of digits, filters, eigen-images.

    ``images``: (n, H, W), (n, 1, H, W) or flattened (n, d) (see ``as_image_stack``).
    ``nrow`` x ``ncol`` tiles (default: as square as possible; one given, the other follows);
    extra images beyond nrow*ncol are left out. ``scale="shared"`` draws every tile on one
    colour scale (``vmin``/``vmax``, default the data's range) so brightness compares across
    tiles; ``scale="each"`` stretches each tile to its own range (right for filters and
    eigen-images, whose sign and scale are arbitrary). ``titles``: one string per tile.
    The grid is one image in one axes (fast for hundreds of tiles); gaps show the background.
    """
    if scale not in ("shared", "each"):
        raise ValueError(f"scale={scale!r} is not supported; choose 'shared' or 'each'")
    X = as_image_stack(images, image_shape)
    if len(X) == 0:
        raise ValueError("images is empty; pass at least one image")
    nrow, ncol = _grid_shape(len(X), nrow, ncol)
    n_shown = min(len(X), nrow * ncol)
    if titles is not None and len(titles) < n_shown:
        raise ValueError(f"titles has {len(titles)} entries for {n_shown} images")
    H, W = X.shape[1:]
    if ax is None:
        if figsize is None:
            figsize = (min(12, 0.6 + ncol * W / 28 * 0.8), min(12, 0.6 + nrow * H / 28 * 0.8))
        fig = _new_figure(figsize)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    top = 0 if titles is None else max(3, H // 3)
    mosaic = _mosaic(X[:n_shown], nrow, ncol, pad, scale, top)
    if scale == "each":
        vmin, vmax = 0.0, 1.0
    ax.imshow(np.ma.masked_invalid(mosaic), cmap=cmap, vmin=vmin, vmax=vmax,
              interpolation="nearest")
    ax.set_axis_off()
    if titles is not None:
        for k in range(n_shown):
            i, j = divmod(k, ncol)
            ax.text(j * (W + pad) + W / 2, i * (H + pad + top) + top - 0.5, str(titles[k]),
                    ha="center", va="bottom", fontsize=7)
    if title is not None:
        ax.set_title(title)
    return _finish(fig, path, dpi)


def side_by_side(originals, reconstructions, n=100, nrow=10, *, titles=("test samples",
                 "reconstructions"), cmap="gray", vmin=None, vmax=None, image_shape=None,
                 figsize=None, path=None, dpi=100):
    """The lecture's MNIST figure: ``n`` test samples beside their reconstructions.

    Two grids of the first ``n`` images (10x10 by default) on one colour scale (default: the
    joint range of both), so a dim or washed-out reconstruction looks it.
    """
    A = as_image_stack(originals, image_shape, "originals")
    B = as_image_stack(reconstructions, image_shape, "reconstructions")
    if A.shape != B.shape:
        raise ValueError(f"originals {A.shape} and reconstructions {B.shape} differ in shape; "
                         "pass the reconstructions of exactly these originals")
    A, B = A[:n], B[:n]
    if vmin is None:
        vmin = min(A.min(), B.min())
    if vmax is None:
        vmax = max(A.max(), B.max())
    nrow, ncol = _grid_shape(len(A), nrow, None)
    fig = _new_figure(figsize or (10, 5.2))
    axes = fig.subplots(1, 2)
    for ax, X, t in zip(axes, (A, B), titles):
        image_grid(X, nrow, ncol, cmap=cmap, vmin=vmin, vmax=vmax, ax=ax, title=t)
    return _finish(fig, path, dpi)


_CURVE_LABELS = {"loss": "training", "val_loss": "validation"}


def loss_curves(history, *, ax=None, logy=False, title=None, figsize=(5, 3.5), path=None,
                dpi=100):
    """Loss per epoch from a ``history`` dict ({"loss": [...], "val_loss": [...], ...}).

    Every non-empty entry becomes a curve (training and validation, or each term of an
    objective); epochs are numbered from 1.
    """
    if not isinstance(history, dict):
        history = getattr(history, "history_", history)
    if not isinstance(history, dict):
        raise TypeError("history must be a dict like {'loss': [...], 'val_loss': [...]} or a "
                        "fitted model with history_")
    curves = {k: np.asarray(v, dtype=np.float64) for k, v in history.items() if len(v)}
    if not curves:
        raise ValueError("history holds no values; fit the model first")
    if ax is None:
        fig = _new_figure(figsize)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    for key, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), values, marker="o" if len(values) < 30 else None,
                ms=3, label=_CURVE_LABELS.get(key, key))
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if logy:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    if title is not None:
        ax.set_title(title)
    return _finish(fig, path, dpi)


def codes_2d(codes, labels=None, *, ax=None, cmap="tab10", s=6, alpha=0.7, title=None,
             figsize=(5, 4.5), path=None, dpi=100):
    """Scatter 2-D codes (a 2-unit bottleneck), coloured by class with a legend."""
    Z = np.asarray(codes, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[1] != 2:
        raise ValueError(f"codes must have shape (n, 2), got {Z.shape}; use a 2-unit "
                         "bottleneck or project the codes to 2-D (e.g. with npae's PCA) first")
    if ax is None:
        fig = _new_figure(figsize)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    if labels is None:
        ax.scatter(Z[:, 0], Z[:, 1], s=s, alpha=alpha)
    else:
        y = np.asarray(labels)
        if y.shape != (len(Z),):
            raise ValueError(f"labels must have shape ({len(Z)},) like the codes, got {y.shape}")
        import matplotlib
        classes = np.unique(y)
        colours = matplotlib.colormaps[cmap].resampled(max(len(classes), 1))
        for i, cls in enumerate(classes):
            sel = y == cls
            ax.scatter(Z[sel, 0], Z[sel, 1], s=s, alpha=alpha, color=colours(i), label=str(cls))
        ax.legend(markerscale=2, fontsize=7, loc="best", ncol=1 + len(classes) // 10)
    ax.set_xlabel("$h_1$")
    ax.set_ylabel("$h_2$")
    if title is not None:
        ax.set_title(title)
    return _finish(fig, path, dpi)


# --------------------------------------------------------------------------------------------
# Topic-specific figures (one section per lecture topic, built on the helpers above)
# --------------------------------------------------------------------------------------------


# -- Nonlinear autoencoders (Autoencoder, Denoising, Contractive, Stacked) ---------------------

def _first_layer_W(model):
    """W (k, d) of the first encoder layer: of an autoencoder, of layer 1 of a stack, or an
    array passed as is."""
    if isinstance(model, np.ndarray):
        return model
    aes = getattr(model, "autoencoders_", None)
    if aes:
        model = aes[0]
    if not hasattr(model, "parameters"):
        raise TypeError(f"expected a fitted autoencoder or a weight array, got "
                        f"{type(model).__name__}")
    return model.parameters()["W"]


def encoder_filters(model, n=100, nrow=None, ncol=None, *, image_shape=None, title=None,
                    cmap="gray", path=None, dpi=100, **kwargs):
    """The encoder's filters: row j of W (the weights of hidden unit j) drawn as an image.

    Each filter is stretched to its own range (``scale="each"``): a filter's sign and scale
    are what the unit happens to use, only its pattern (strokes, blobs, edges) tells what
    the unit detects. Works for ``Autoencoder`` and its subclasses (W) and for
    ``StackedAutoencoder`` (the first layer's W, the only one that lives in pixel space).
    """
    W = _first_layer_W(model)
    n = min(int(n), W.shape[0])
    if title is None:
        title = f"encoder filters (first {n} of {W.shape[0]} rows of W)"
    return image_grid(np.asarray(W[:n], dtype=np.float64), nrow, ncol,
                      image_shape=image_shape, scale="each", cmap=cmap, title=title, path=path,
                      dpi=dpi, **kwargs)


def bottleneck_codes(model, X, labels=None, *, title=None, path=None, dpi=100, **kwargs):
    """``codes_2d`` of ``model.transform(X)`` for a model with a 2-unit bottleneck (an
    ``Autoencoder(2)`` or a ``StackedAutoencoder(..., 2)``), coloured by ``labels``."""
    H = model.transform(X)
    if H.shape[1] != 2:
        raise ValueError(f"the model's code has {H.shape[1]} units; bottleneck_codes needs 2 "
                         "(fit e.g. Autoencoder(2) or StackedAutoencoder((128, 2)))")
    if title is None:
        title = f"2-D codes of {type(model).__name__}"
    return codes_2d(H, labels, title=title, path=path, dpi=dpi, **kwargs)


__all__ += ["encoder_filters", "bottleneck_codes"]


# -- PCA and eigenfaces (the "Totally Linear Case" and "Application of PCA" slides) -----------

def _pca_of(model):
    """The fitted ``PCA`` inside ``model`` (a PCA itself, or an ``Eigenfaces``)."""
    pca = getattr(model, "pca_", model)
    if not hasattr(pca, "components_"):
        raise TypeError(f"expected a fitted PCA or Eigenfaces, got {type(model).__name__} "
                        "(call fit first)")
    return pca


def _k_term(pca, X, K):
    """mean + sum_{j<=K} a_j u_j for the rows of X (the K-term linear approximation)."""
    a = pca.transform(X)[:, :K]
    return a @ pca.components_[:K] + pca.mean_


def scree_plot(model, *, cumulative=True, ax=None, title=None, figsize=(5, 3.5), path=None,
               dpi=100):
    """Explained variance ratio per component (bars) and its running total (line).

    ``model``: a fitted ``PCA`` or ``Eigenfaces``, or an array of explained variances.
    """
    if isinstance(model, np.ndarray) or isinstance(model, (list, tuple)):
        ratio = np.asarray(model, dtype=np.float64)
        ratio = ratio / ratio.sum()
    else:
        ratio = np.asarray(_pca_of(model).explained_variance_ratio_)
    if ax is None:
        fig = _new_figure(figsize)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    j = np.arange(1, len(ratio) + 1)
    ax.bar(j, ratio, color="tab:blue", label="per component")
    if cumulative:
        ax.plot(j, np.cumsum(ratio), color="tab:orange", marker="o" if len(j) < 30 else None,
                ms=3, label="cumulative")
        ax.set_ylim(0, 1.02)
    ax.set_xlabel("component j")
    ax.set_ylabel("explained variance ratio")
    ax.legend()
    ax.grid(alpha=0.3)
    ax.set_title(title or "scree plot")
    return _finish(fig, path, dpi)


def pca_reconstructions(model, X, ks=(1, 2, 5, 10, 20, 50), n=8, *, image_shape=None,
                        cmap="gray", title=None, figsize=None, path=None, dpi=100):
    """Originals (top row) and their k-term reconstructions for each k in ``ks`` (one row each).

    ``model``: a fitted ``PCA`` (rows of X flattened images; give ``image_shape`` unless they
    are square) or ``Eigenfaces`` (X images). ks larger than the model's components are dropped.
    """
    pca = _pca_of(model)
    shape = image_shape or getattr(model, "image_shape_", None)
    X = np.asarray(X, dtype=np.float64)[:n]
    rows = X.reshape(len(X), -1)
    ks = [int(k) for k in ks if 0 <= k <= pca.n_components_]
    if not ks:
        raise ValueError(f"none of ks fits this model's {pca.n_components_} components")
    stack = [rows] + [_k_term(pca, rows, k) for k in ks]
    images = as_image_stack(np.concatenate(stack), shape)
    titles = [""] * len(rows) * (len(ks) + 1)
    titles[0] = "original"
    for i, k in enumerate(ks, start=1):
        titles[i * len(rows)] = f"k = {k}"
    return image_grid(images, len(ks) + 1, len(rows), titles=titles, cmap=cmap,
                      vmin=float(rows.min()), vmax=float(rows.max()), figsize=figsize,
                      title=title or "reconstructions from the first k principal components",
                      path=path, dpi=dpi)


def eigenfaces_panel(model, images, *, n_train=5, n_eigen=3, Ks=(1, 3, 10, 30), index=0,
                     cmap="gray", figsize=None, path=None, dpi=100):
    """The lecture's panel: training images / mean image / eigen-images / linear approximations.

    ``model``: a fitted ``Eigenfaces``; ``images``: its training images (the first
    ``n_train`` are shown); the approximations F + a_1 u_1 + ... + a_K u_K are of
    ``images[index]`` for each K in ``Ks`` (those above ``n_components_`` are dropped).
    """
    if not hasattr(model, "eigenfaces_"):
        raise TypeError("eigenfaces_panel needs a fitted npae.models.Eigenfaces")
    imgs = np.asarray(images, dtype=np.float64)
    if imgs.ndim == 2:
        imgs = imgs.reshape((len(imgs),) + tuple(model.image_shape_))
    Ks = [int(K) for K in Ks if 0 <= K <= model.n_components_]
    target = imgs[index:index + 1]
    approx = np.concatenate([model.approximate(target, K) for K in Ks]) if Ks else None
    n_eigen = min(n_eigen, model.n_components_)
    ncol = max(n_train, n_eigen, len(Ks) + 1, 1)
    fig = _new_figure(figsize or (1.2 * ncol + 0.6, 6.4))
    axes = fig.subplots(4, 1)
    labels = ("training images", "mean image", f"{n_eigen} eigen-images",
              "linear approximations")
    # every row gets titles (blank where there is nothing to say) so all tiles share one size
    rows = [(imgs[:n_train], "shared", [""] * min(n_train, len(imgs))),
            (model.mean_image_[None], "shared", ["F"]),
            (model.eigenfaces_[:n_eigen], "each", [f"u{j + 1}" for j in range(n_eigen)]),
            (np.concatenate([target, approx]) if approx is not None else target, "shared",
             ["image"] + [f"K = {K}" for K in Ks])]
    for ax, label, (X, scale, titles) in zip(axes, labels, rows):
        image_grid(X, 1, ncol, ax=ax, scale=scale, cmap=cmap, titles=titles,
                   image_shape=model.image_shape_ if len(model.image_shape_) == 2 else None)
        ax.set_title(label, loc="left", fontsize=9)
    return _finish(fig, path, dpi)


__all__ += ["scree_plot", "pca_reconstructions", "eigenfaces_panel"]
