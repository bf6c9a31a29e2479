"""``npae pca`` and ``npae bench``: PCA of an image data set, and how fast this machine trains
the lecture's models."""
from __future__ import annotations

import os

from ..exceptions import UsageError
from ._args import (data_folder, int_in, output_folder, positive_int, probability,
                    refuse_folder_at, seed)
from .training import _PIXELS, _train_and_test_images

_PCA_FIGURES = ("components.png", "scree.png", "reconstructions.png")


def _add_pca(sub):
    p = sub.add_parser(
        "pca", help="PCA of an image data set: eigen-images, scree plot, k-term reconstructions",
        description="Fit PCA (the optimal linear autoencoder of the lecture's 'Totally Linear "
                    "Case') to the training images and report how much each number k of "
                    "components explains and reconstructs on the test images.")
    p.add_argument("--data", type=data_folder, default=None, help="as for `npae demo`")
    p.add_argument("-k", "--n-components", type=positive_int, default=50,
                   help="components to keep (default: %(default)s)")
    p.add_argument("--variance", type=probability(low_open=True, high_open=True), default=None,
                   metavar="F",
                   help="instead of -k: keep the smallest number of components that explains "
                        "more than the fraction F of the variance, e.g. 0.95 (reports the k kept)")
    p.add_argument("--n-train", type=int_in(2), default=10000,
                   help="training images used (default: %(default)s)")
    p.add_argument("--out", type=output_folder, default="npae-pca",
                   help="folder for the figures (default: %(default)s)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the synthetic digits")
    p.set_defaults(func=_cmd_pca)


def _cmd_pca(args):
    import numpy as np

    from .. import plot
    from .._memory import check_fits_in_memory
    from ..models import PCA

    check_fits_in_memory(args.n_train * _PIXELS, 8, error=UsageError,
                         what=f"--n-train {args.n_train} ({args.n_train} images of {_PIXELS} "
                              "pixels)")
    if args.variance is None and args.n_components > _PIXELS:
        raise UsageError(f"-k/--n-components {args.n_components} is out of range: an image "
                         f"has {_PIXELS} pixels, so at most {_PIXELS} components")
    for name in _PCA_FIGURES:
        refuse_folder_at(os.path.join(args.out, name), "--out")
    X, X_test = _train_and_test_images(args, args.n_train, 1000, dtype="float64")
    rows, rows_test = X.reshape(len(X), -1), X_test.reshape(len(X_test), -1)
    # the lecture's closed forms (exact, deterministic); PCA checks k against the data
    pca = PCA(args.variance or args.n_components, solver="auto").fit(rows)
    ratio = np.cumsum(pca.explained_variance_ratio_)
    if args.variance is not None:
        print(f"kept k = {pca.n_components_} components: they explain {ratio[-1]:.4f} of the "
              f"variance (the fewest that explain more than --variance {args.variance})")
    ks = [k for k in (1, 2, 5, 10, 20, 50, 100, 200) if k <= pca.n_components_]
    if pca.n_components_ not in ks:
        ks.append(pca.n_components_)
    print(f"PCA of {len(rows)} images of {rows.shape[1]} pixels, k = {pca.n_components_} "
          f"(solver {pca.solver_})")
    print(f"{'k':>5s} {'explained variance':>19s} {'test MSE per pixel':>19s}")
    codes = pca.transform(rows_test)
    for k in ks:
        recon = codes[:, :k] @ pca.components_[:k] + pca.mean_
        mse = float(np.mean((recon - rows_test) ** 2))
        print(f"{k:5d} {ratio[k - 1]:19.3f} {mse:19.5f}")
    os.makedirs(args.out, exist_ok=True)
    paths = [os.path.join(args.out, f) for f in _PCA_FIGURES]
    plot.image_grid(pca.components_[:min(50, pca.n_components_)], image_shape=X.shape[1:],
                    scale="each", title="principal components (eigen-images)", path=paths[0])
    plot.scree_plot(pca, path=paths[1])
    plot.pca_reconstructions(pca, rows_test, ks=ks, image_shape=X.shape[1:], path=paths[2])
    print("wrote " + ", ".join(paths))
    return 0


def _add_bench(sub):
    p = sub.add_parser(
        "bench", help="how fast this machine trains the lecture's models (estimates)",
        description="Time a few hundred training steps of the lecture's conv autoencoder and "
                    "of the dense autoencoders on synthetic digits, scaled to an epoch of "
                    "60,000 images, and each fast path next to its plain-NumPy twin. "
                    "Comparisons with PyTorch and scikit-learn: the repository's benchmarks/.")
    p.add_argument("--steps", type=positive_int, default=100,
                   help="mini-batches per timed run (default: %(default)s)")
    p.add_argument("--repeats", type=positive_int, default=3,
                   help="timed runs per model; the best is reported (default: %(default)s)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="threads for BLAS and Numba (default: as configured)")
    p.add_argument("--no-kernels", action="store_true", help="skip the kernel table")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args):
    from .._memory import check_fits_in_memory
    from ..bench import BATCH, run
    check_fits_in_memory(args.steps * BATCH * _PIXELS, 8, error=UsageError,
                         what=f"--steps {args.steps} ({args.steps} batches of {BATCH} "
                              "synthetic digits)")
    if args.threads is not None:
        from .._numba import max_threads, set_num_threads
        if args.threads > max_threads():
            raise UsageError(f"--threads {args.threads} is out of range: expected a whole "
                             f"number in [1, {max_threads()}] (this machine's threads)")
        set_num_threads(args.threads)
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            print("note: threadpoolctl is not installed, so BLAS keeps its own thread count "
                  "(set OPENBLAS_NUM_THREADS before starting instead)")
        else:
            threadpool_limits(args.threads)
    run(steps=args.steps, repeats=args.repeats, kernels=not args.no_kernels)
    return 0

