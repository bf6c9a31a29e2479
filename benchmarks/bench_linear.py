"""LinearAutoencoder with its defaults on MNIST (60000 x 784, float64, k = 50) vs PCA.

    python benchmarks/bench_linear.py [--k 50] [--n 60000] [--timed-epochs 10]
                                      [--models tied,untied] [--full] [--path DIR]

For each model (``LinearAutoencoder(k, tied=...)`` with its defaults: full batch,
``learning_rate="auto"``, conjugate-gradient directions with an exact line search, stopping on
``tol``, ``n_epochs=3000`` a cap) it reports the epochs to the stopping rule, the largest
principal angle between the decoder's columns and PCA's top-k components
(``scipy.linalg.subspace_angles``; the lesson needs < 1e-3 rad), the seconds per epoch on
the n x 784 data, and the time to the stopping rule against scikit-learn's ``PCA(k)`` (its
default solver) fitted to the same data in the same run.

The objective (7) depends on the data only through C = Xc^T Xc / n, so the run is the same
(same initialisation, same iterates up to rounding) on any data with that C. By default the
epochs and the angle come from a fit on the 784 rows sqrt(784) C^{1/2} (``center=False``),
and the time is that number of epochs times the seconds per epoch measured on the n rows over
``--timed-epochs`` epochs: the column says "est". ``--full`` fits the n rows to the stopping
rule instead (hours on a busy 2-core machine). MNIST comes from ../shared/data/mnist beside
the repository (or one level up) unless ``--path`` says otherwise. On a shared machine
absolute times swing: compare ratios within one run.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.linalg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from npae.data import load_mnist  # noqa: E402
from npae.models import PCA, LinearAutoencoder  # noqa: E402


def _default_path():
    """../shared/data/mnist beside the repository (or beside the folder holding it)."""
    for base in ROOT.parents:
        if (base / "shared" / "data" / "mnist").exists():
            return str(base / "shared" / "data" / "mnist")
    return str(ROOT.parent / "shared" / "data" / "mnist")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--n", type=int, default=60000, help="first n training images")
    ap.add_argument("--timed-epochs", type=int, default=10,
                    help="epochs timed on the n rows (without --full)")
    ap.add_argument("--full", action="store_true", help="fit the n rows to the stopping rule")
    ap.add_argument("--models", default="tied,untied")
    ap.add_argument("--path", default=_default_path())
    args = ap.parse_args(argv)

    if not Path(args.path).exists():
        sys.exit(f"MNIST not found at {args.path}; pass --path")
    X = load_mnist(args.path)[0][:args.n].reshape(-1, 784)
    k = args.k
    print(f"MNIST {X.shape} {X.dtype}, k = {k}; load average {os.getloadavg()}")

    t0 = time.perf_counter()
    try:
        from sklearn.decomposition import PCA as SKPCA
        ref = SKPCA(k).fit(X)
        peer = "scikit-learn PCA"
    except ImportError:
        ref = PCA(k).fit(X)
        peer = "npae PCA (scikit-learn not installed)"
    t_pca = time.perf_counter() - t0
    Q = ref.components_.T
    ev = ref.explained_variance_
    print(f"{peer}: {t_pca:.2f} s; lambda_1 = {ev[0]:.4g}, lambda_k = {ev[-1]:.4g}")

    Xc = X - X.mean(axis=0)
    w, E = np.linalg.eigh(Xc.T @ Xc / len(X))
    X_eq = (E * np.sqrt(np.clip(w, 0.0, None))) @ E.T * np.sqrt(X.shape[1])  # same C, 784 rows

    print(f"\n{'model':<8}{'epochs':>8}{'on tol':>8}{'angle rad':>11}{'s/epoch':>9}"
          f"{'time s':>10}{'/ PCA':>8}")
    for name in args.models.split(","):
        tied = name == "tied"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the cap's ConvergenceWarning: "on tol" says it
            if args.full:
                t0 = time.perf_counter()
                model = LinearAutoencoder(k, tied=tied, random_state=0).fit(X)
                t = time.perf_counter() - t0
                per_epoch, kind = t / max(model.n_iter_, 1), ""
            else:
                model = LinearAutoencoder(k, tied=tied, center=False, random_state=0).fit(X_eq)
                t0 = time.perf_counter()
                LinearAutoencoder(k, tied=tied, n_epochs=args.timed_epochs, tol=0.0,
                                  random_state=0).fit(X)
                per_epoch = (time.perf_counter() - t0) / args.timed_epochs
                t, kind = per_epoch * model.n_iter_, " est"
        angle = scipy.linalg.subspace_angles(model.U_, Q).max()
        print(f"{name:<8}{model.n_iter_:>8}{str(model.converged_):>8}{angle:11.2e}"
              f"{per_epoch:9.2f}{t:10.0f}{t / t_pca:8.0f}{kind}", flush=True)


if __name__ == "__main__":
    main()
