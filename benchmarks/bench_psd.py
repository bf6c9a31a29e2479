"""PSD's z-step against scikit-learn's sparse_encode, and PSD's fast inference against its z-step.

Part 1 (issue 6's target): the lasso  min_z ||D z - x||^2 + lam ||z||_1  (PSD's z-step with the
encoder term off) for 1000 MNIST images (784-dim) and a 256-atom unit-norm dictionary, at
penalties giving about 10 and about 100 non-zeros per code. scikit-learn's objective is
1/2 ||x - zD||^2 + alpha ||z||_1, so lam = 2 alpha. Rows: npae's "cd"
(coordinate descent with an active set and exact steps on it), "fista", "ista" (Numba) and
the NumPy twin of "fista". Columns: seconds (best of --repeat),
ratio to the faster scikit-learn solver, and the relative objective difference
(ours - sklearn) / sklearn (negative: ours is lower). Target: |difference| <= 1e-6 and
ratio < 1. Two dictionaries: random Gaussian atoms (well conditioned) and a dictionary learned
by PSD on other MNIST images (coherent atoms: a harder problem for every solver, and one that
FISTA alone loses to lasso_cd). "iters": per row, iterations (FISTA) or sweeps plus exact
steps (CD).

Part 2 (issue 6, item 3): a PSD trained on MNIST; sparsity of z*, reconstruction error of
D z* and of D h (h = the encoder's fast prediction), the relative error ||h - z*|| / ||z*||,
and the time of h = g tanh(Wx + b) against the iterative z-step; figures of the atoms and
the encoder filters (npae.plot.image_grid) in --out.

    python benchmarks/bench_psd.py [--threads 1] [--repeat 3] [--no-lars] [--out /tmp/psd]

--threads n limits BLAS/OpenMP (numpy, scikit-learn) and Numba (npae's "cd" runs rows in
parallel) to n threads; without it every library uses its default.

Every number in one table comes from the same run; on a shared, busy machine compare the
ratios, not the seconds.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

# run from a checkout without installing: the repository root holds the npae package
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _limit_threads(n):
    """n threads for BLAS/OpenMP (numpy, scikit-learn) and for Numba's prange (npae's "cd")."""
    import numba
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(n)
    except ImportError:  # env vars only work before numpy loads its BLAS; best effort
        os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(n)


def load_images():
    """MNIST training images (n, 784) in [0, 1]: ../shared/data/mnist, else Fashion-MNIST,
    else npae's synthetic digits. Returns (X, name)."""
    from npae import data
    shared = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          os.pardir, "shared", "data", "mnist")
    for name, load in (("MNIST", lambda: data.load_mnist(shared, "train")),
                       ("Fashion-MNIST", lambda: data.load_fashion_mnist(kind="train"))):
        try:
            X, _ = load()
            return np.ascontiguousarray(X.reshape(len(X), -1)), name
        except (FileNotFoundError, OSError):
            continue
    X, _ = data.synthetic_digits(12000, seed=0)
    return X.reshape(len(X), -1), "synthetic digits"


def best_time(fn, repeat, budget=3.0):
    """Best of ``repeat`` runs; runs slower than ``budget`` seconds are not repeated."""
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
        if sum(times) > budget:
            break
    return min(times), out


def objective(X, D, Z, lam):
    R = Z @ D.T - X
    return float(np.vdot(R, R) + lam * np.abs(Z).sum())


def calibrate_lam(X, D, target_nnz):
    """The penalty giving about ``target_nnz`` non-zeros per code (bisection in log lam)."""
    from npae.sparse_coding import sparse_encode
    lo, hi = 1e-3, 2.0 * np.abs(X @ D).max()      # lam >= 2 max|D^T x| gives z = 0
    for _ in range(25):
        mid = np.sqrt(lo * hi)
        nnz = np.count_nonzero(sparse_encode(X, D, mid, tol=1e-4)) / len(X)
        lo, hi = (mid, hi) if nnz > target_nnz else (lo, mid)
    return float(np.sqrt(lo * hi))


def bench_z_step(X, D, label, repeat, lars, targets=(10, 100)):
    from sklearn.decomposition import sparse_encode as sk_sparse_encode

    from npae.sparse_coding import sparse_encode
    for solver in ("cd", "fista"):      # compile the Numba kernels outside the timings
        sparse_encode(X[:5], D, 1.0, solver=solver)
    print(f"\n== z-step, encoder term off: {X.shape[0]} x {X.shape[1]} images, "
          f"{D.shape[1]} unit-norm atoms ({label}) ==")
    print(f"{'nnz/code':>8} {'lam':>7} {'solver':<22} {'seconds':>8} {'ratio':>7} "
          f"{'rel. objective diff':>20} {'iters':>6}")
    for target in targets:
        lam = calibrate_lam(X[:200], D, target)
        runs = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # lasso_cd's ConvergenceWarnings on coherent D
            runs["sklearn lasso_cd"] = best_time(
                lambda: sk_sparse_encode(X, D.T, algorithm="lasso_cd", alpha=lam / 2), repeat)
            if lars:
                runs["sklearn lasso_lars"] = best_time(
                    lambda: sk_sparse_encode(X, D.T, algorithm="lasso_lars", alpha=lam / 2), 1)
        # "cd" with backend="numpy" is a Python loop per coordinate: too slow to time here
        for solver, backend in (("cd", "numba"), ("fista", "numba"), ("ista", "numba"),
                                ("fista", "numpy")):
            runs[f"npae {solver} ({backend})"] = best_time(
                lambda: sparse_encode(X, D, lam, solver=solver, backend=backend, tol=1e-6,
                                      max_iter=5000, return_n_iter=True), repeat)
        sk_names = [k for k in runs if k.startswith("sklearn")]
        fastest_sk = min(runs[k][0] for k in sk_names)
        ref = min(objective(X, D, runs[k][1], lam) for k in sk_names)
        nnz = np.count_nonzero(runs["sklearn lasso_cd"][1]) / len(X)
        for name, (t, out) in runs.items():
            Z, iters = out if isinstance(out, tuple) else (out, None)
            diff = (objective(X, D, Z, lam) - ref) / ref
            it = f"{iters.mean():6.1f}" if iters is not None else f"{'':>6}"
            print(f"{nnz:8.1f} {lam:7.3f} {name:<22} {t:8.3f} {t / fastest_sk:7.2f} "
                  f"{diff:20.2e} {it}", flush=True)


def train_dictionary(X, n_atoms, lam, n_iter, seed=0):
    from npae.models import PSD
    t = time.perf_counter()
    model = PSD(n_atoms=n_atoms, lam=lam, encoder="tanh", n_iter=n_iter, batch_size=100,
                random_state=seed).fit(X)
    return model, time.perf_counter() - t


def bench_fast_inference(model, X_test, repeat, out):
    t_h, h = best_time(lambda: model.transform(X_test), repeat)
    t_z, Z = best_time(lambda: model.sparse_code(X_test), repeat)
    t_l, Z_lasso = best_time(lambda: model.sparse_code(X_test, encoder_term=False), repeat)

    def rec(C):
        return float(np.mean(np.sum((model.inverse_transform(C) - X_test) ** 2, axis=1)))
    base = float(np.mean(np.sum((X_test - X_test.mean(0)) ** 2, axis=1)))
    print(f"\n== PSD (tanh encoder, {model.n_atoms} atoms, lam {model.lam}) on {len(X_test)} "
          "held-out images ==")
    print(f"{'code':<34} {'seconds':>8} {'zeros':>6} {'||D code - x||^2':>17} "
          f"{'||code - z*||/||z*||':>21}")
    for name, t, C in (("h = g tanh(Wx + b) (fast)", t_h, h),
                       ("z* (z-step, encoder term on)", t_z, Z),
                       ("z* of the lasso (encoder term off)", t_l, Z_lasso)):
        err = np.linalg.norm(C - Z) / np.linalg.norm(Z)
        print(f"{name:<34} {t:8.4f} {np.mean(C == 0):6.2f} {rec(C):17.2f} {err:21.3f}")
    print(f"(mean image: ||x - mean||^2 = {base:.2f}; z-step / fast inference time: "
          f"{t_z / t_h:.0f}x)")
    hist = model.history_
    print("training history per epoch: objective", np.round(hist["objective"], 2).tolist(),
          "code_rel_error", np.round(hist["code_rel_error"], 3).tolist())
    if out:
        from npae.plot import image_grid
        os.makedirs(out, exist_ok=True)
        image_grid(model.components_, scale="each", title="PSD dictionary atoms (D columns)",
                   path=os.path.join(out, "psd_atoms.png"))
        image_grid(model.parameters()["W"], scale="each", title="PSD encoder filters (W rows)",
                   path=os.path.join(out, "psd_filters.png"))
        print(f"figures: {out}/psd_atoms.png, {out}/psd_filters.png")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=None,
                    help="BLAS/OpenMP and Numba threads (default: the libraries' own)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-lars", action="store_true", help="skip lasso_lars (10-70x slower)")
    ap.add_argument("--train-n", type=int, default=10000, help="images to learn the dictionary")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--out", default=os.path.join("/tmp", "npae_psd"),
                    help="folder for the figures ('' for none)")
    args = ap.parse_args(argv)
    if args.threads is not None:
        _limit_threads(args.threads)
    X_all, name = load_images()
    print(f"data: {name}; threads: {args.threads or 'library defaults'}; timings on a shared "
          "machine vary, the ratios are measured in the same run")
    X = X_all[:1000]
    rng = np.random.default_rng(0)
    D = rng.standard_normal((X.shape[1], 256))
    D /= np.linalg.norm(D, axis=0)
    bench_z_step(X, D, "random Gaussian", args.repeat, not args.no_lars)

    X_train = X_all[1000:1000 + args.train_n]
    model, t_fit = train_dictionary(X_train, 256, 1.0, args.epochs)
    print(f"\n(PSD with 256 atoms trained on {len(X_train)} images, {args.epochs} epochs, "
          f"in {t_fit:.1f} s)")
    bench_z_step(X, model.parameters()["D"], "learned by PSD", args.repeat, not args.no_lars)
    bench_fast_inference(model, X, args.repeat, args.out)


if __name__ == "__main__":
    main()
