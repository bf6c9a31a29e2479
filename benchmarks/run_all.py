"""Every row of the performance table (issue 29) in one run: npae beside its peer.

    python benchmarks/run_all.py [--mnist DIR] [--rows dense,sparse,...] [--repeats 3]
                                 [--threads 2] [--quick] [--json FILE]

Rows (``--rows``, comma-separated; all by default):

    dense        tied sigmoid AE 784-256, Adam, BCE from logits, one epoch of Fashion-MNIST's
                 60,000 training images, float32 and float64, vs PyTorch (float32)
                 BCEWithLogitsLoss from the same initial weights (bench_autoencoder.py)
    sparse       sparse AE objective + gradient, 10,000 MNIST images, 784 -> 196, float64,
                 vs PyTorch autograd of the same J (bench_vae.py --sparse)
    pca          exact PCA, k = 50, MNIST's 60,000 x 784 training images, float64, vs
                 scikit-learn PCA(svd_solver="covariance_eigh")
    conv         the lecture's conv AE, one epoch of 12,800 Fashion-MNIST images in [-1, 1],
                 float32, vs the same net in PyTorch (bench_conv.py)
    contractive  one epoch of the contractive AE / the plain AE (20,000 images, float32 and
                 float64): npae against itself
    vae          VariationalAutoencoder 784-400-20, one epoch of MNIST, float32, vs PyTorch's
                 VAE example (bench_vae.py)
    firstfit     ``import npae`` + ConvAutoencoder fit for one epoch on 256 images, in a
                 fresh process with an empty NUMBA_CACHE_DIR, vs the same in a second fresh
                 process that finds the first one's cache

Both sides get ``--threads`` threads (BLAS through threadpoolctl, numba.set_num_threads,
torch.set_num_threads). Each row runs its contenders interleaved (npae, peer, npae, peer,
...) ``--repeats`` times after an untimed warm-up and keeps the best wall time of each. The
load average is printed before and after: on a busy machine the ratios, not the seconds, are
what compare, and even they move.

Data: MNIST from ``--mnist DIR`` (default: $NPAE_DATA, else ``../shared/data/mnist`` beside
the repository), Fashion-MNIST from Debian's dataset-fashion-mnist; where a data set is
absent the row uses synthetic data of the same shape and says so. ``--quick`` shrinks every
size so that the whole command runs in a minute or two: a smoke test, not a measurement.

The npae measured is the one ``import npae`` finds: with PYTHONPATH set, that one (so
``PYTHONPATH=/path/to/other/tree python benchmarks/run_all.py`` times another tree with
this script); without it, this checkout. Its path is printed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, ROOT)  # this checkout, not an installed npae
import npae  # noqa: E402  (first, so that the bench_* modules' own path edits cannot swap it)

import bench_autoencoder  # noqa: E402
import bench_pca  # noqa: E402
import bench_vae  # noqa: E402
import conv_common  # noqa: E402

ROWS = ("dense", "sparse", "pca", "conv", "contractive", "vae", "firstfit")
DEFAULT_MNIST = os.environ.get("NPAE_DATA") or os.path.join(ROOT, os.pardir, "shared", "data",
                                                            "mnist")
FULL = dict(dense_n=60000, contractive_n=20000, sparse_n=10000, pca_n=60000, k=50,
            conv_n=12800, vae_n=60000, vae_test=10000, firstfit_n=256)
QUICK = dict(dense_n=1024, contractive_n=512, sparse_n=500, pca_n=2000, k=50, conv_n=512,
             vae_n=1024, vae_test=256, firstfit_n=256)


# -- the harness ---------------------------------------------------------------------------

def limit_threads(n):
    """``n`` threads for BLAS (both NumPy's and SciPy's), Numba and PyTorch."""
    from threadpoolctl import threadpool_limits
    limiter = threadpool_limits(n)
    try:
        import numba
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass
    try:
        import torch
        torch.set_num_threads(n)
    except ImportError:
        pass
    return limiter


def have_torch():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


class Seconds(NamedTuple):
    """What a contender returns when it times itself (around its training loop only)."""
    wall: float
    cpu: float = float("nan")


def clock(fn):
    """Wall and CPU seconds of ``fn()``."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def interleaved(contenders, repeats, pause=0.0):
    """Best wall seconds (and the CPU seconds of that run) of each of ``contenders``
    (name -> callable; one that returns ``Seconds`` has timed itself, any other return value
    is ignored and the call is timed whole), run in turn ``repeats`` times."""
    best = {name: (np.inf, np.inf) for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            if pause:
                time.sleep(pause)  # lets the previous call's BLAS threads park
            timed = [None]

            def run(fn=fn):
                timed[0] = fn()
            wall, cpu = clock(run)
            if isinstance(timed[0], Seconds):
                wall, cpu = timed[0]
            if wall < best[name][0]:
                best[name] = (wall, cpu)
    return best


def row(name, npae_t, peer_t, goal, peer_name, data, unit="s", **extra):
    ratio = npae_t[0] / peer_t[0] if peer_t is not None else None
    return dict(row=name, npae=npae_t[0], npae_cpu=npae_t[1],
                peer=None if peer_t is None else peer_t[0],
                peer_cpu=None if peer_t is None else peer_t[1],
                ratio=ratio, goal=goal, peer_name=peer_name, data=data, unit=unit, **extra)


def why(exc):
    """An exception's first line, for a one-line note."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def mnist_rows(path, n, dtype, kind="train"):
    """The first ``n`` MNIST images as rows in [0, 1], and what they are; uniform noise of
    the same shape where MNIST is absent."""
    try:
        from npae.data import load_mnist
        X = load_mnist(path, kind, dtype=dtype)[0]
        return np.ascontiguousarray(X.reshape(len(X), -1)[:n]), f"MNIST {kind} ({path})"
    except Exception as exc:  # absent data set: the timings do not depend on the pixels
        X = np.random.default_rng(0).uniform(0, 1, (n, 784)).astype(dtype)
        return X, f"synthetic {n} x 784 in [0, 1] (no MNIST {kind} set at {path})"


def fashion_rows(n, dtype):
    try:
        return bench_autoencoder.load_data(n, dtype), "Fashion-MNIST train"
    except Exception as exc:
        X = np.random.default_rng(0).uniform(0, 1, (n, 784)).astype(dtype)
        return X, f"synthetic {n} x 784 in [0, 1] (no Fashion-MNIST: {why(exc)})"


# -- the rows ------------------------------------------------------------------------------

def bench_dense(args, size):
    from npae.models import Autoencoder
    X64, data = fashion_rows(size["dense_n"], np.float64)
    X32 = X64.astype(np.float32)
    # npae's initial W (same seed) for PyTorch too, so both train the same network
    W0 = Autoencoder(256, n_epochs=0, random_state=0).fit(X64[:10]).parameters()["W"]
    bench_autoencoder.time_npae(X32[:256], 1, "float32")  # warm-up (Numba's cache)
    bench_autoencoder.time_npae(X64[:256], 1, "float64")
    contenders = {
        "npae32": lambda: bench_autoencoder.time_npae(X32, 1, "float32"),
        "npae64": lambda: bench_autoencoder.time_npae(X64, 1, "float64"),
    }
    if args.torch:
        bench_autoencoder.time_torch(X32[:256], 1, W0, True)
        contenders["torch"] = lambda: bench_autoencoder.time_torch(X32, 1, W0, True)
    best = interleaved(contenders, args.repeats)
    peer = best.get("torch")
    data = f"{data}, {len(X64)} images, batch 128, one epoch"
    return [row("dense tied AE 784-256, Adam, BCE from logits, float32, one epoch",
                best["npae32"], peer, "<= 0.8", "PyTorch BCEWithLogits (float32)", data),
            row("the same, npae in float64", best["npae64"], peer, "<= 1.2",
                "PyTorch BCEWithLogits (float32)", data)]


def bench_contractive(args, size):
    X64, data = fashion_rows(size["contractive_n"], np.float64)
    out = []
    for dtype in ("float32", "float64"):
        X = X64.astype(dtype)
        bench_autoencoder.time_npae(X[:256], 1, dtype, "contractive")  # warm-up
        best = interleaved({
            "contractive": lambda: bench_autoencoder.time_npae(X, 1, dtype, "contractive"),
            "plain": lambda: bench_autoencoder.time_npae(X, 1, dtype)}, args.repeats)
        out.append(row(f"contractive / plain step, {dtype}", best["contractive"],
                       best["plain"], "<= 1.05", f"npae's plain Autoencoder ({dtype})",
                       f"{data}, {len(X)} images, one epoch each, lam = 0.1"))
    return out


def bench_sparse(args, size):
    X, data = mnist_rows(args.mnist, size["sparse_n"], np.float64)
    m = bench_vae.sparse_model(X)
    ours = bench_vae.npae_sparse_eval(m, X)
    ours()  # warm-up
    contenders = {"npae": ours}
    if args.torch:
        evaluate, P = bench_vae.torch_sparse_eval(m, X)
        bench_vae.check_sparse_agree(m, X, evaluate, P)  # same J and gradient, to 1e-8
        contenders["torch"] = evaluate
    best = interleaved(contenders, args.repeats)
    return [row("sparse AE objective + gradient, 784 -> 196, float64", best["npae"],
                best.get("torch"), "<= 0.8", "PyTorch autograd of the same J",
                f"{data}, {len(X)} images; J and gradient checked equal to 1e-8")]


def bench_pca_row(args, size):
    from npae.models import PCA
    X, data = bench_pca.load_mnist_or_synthetic(args.mnist)
    X = np.ascontiguousarray(X[:size["pca_n"]], dtype=np.float64)
    k = size["k"]
    fitted = {}

    def fit(name, make):
        def run():
            fitted[name] = make().fit(X)
        return run

    contenders = {"npae": fit("npae", lambda: PCA(k, svd_solver="covariance_eigh"))}
    try:
        from sklearn.decomposition import PCA as SKPCA
        contenders["sklearn"] = fit("sklearn", lambda: SKPCA(k, svd_solver="covariance_eigh"))
    except ImportError:
        print("(scikit-learn not installed: the PCA row has no peer)")
    for run in contenders.values():
        run()  # warm-up
    best = interleaved(contenders, args.repeats, pause=0.3)
    extra = {}
    if "sklearn" in fitted:
        ev, ref = fitted["npae"].explained_variance_, fitted["sklearn"].explained_variance_
        extra["max_rel_diff_explained_variance"] = float(np.max(np.abs(ev - ref) / ref))
    return [row(f"exact PCA, k = {k}, {X.shape[0]} x {X.shape[1]}, float64", best["npae"],
                best.get("sklearn"), "<= 0.9", 'scikit-learn PCA(svd_solver="covariance_eigh")',
                data + "".join(f"; explained variances agree to {v:.1e} (relative)"
                               for v in extra.values()), **extra)]


def bench_conv_row(args, size):
    from npae.models import ConvAutoencoder
    X, _, src = conv_common.load_images()
    X = np.ascontiguousarray(X[:size["conv_n"]])
    batch = 128
    n_batches = -(-len(X) // batch)

    def ours(sub=X):
        ConvAutoencoder(n_epochs=1, batch_size=batch, random_state=0, verbose=False).fit(sub)

    # warm-up: Numba compiles or loads its cache, the kernels a run defers to its background
    # compiles included (the epoch timed is one of a long run's; firstfit times a cold start)
    try:
        from npae._numba import use_kernels_now
        use_kernels_now()
    except ImportError:  # a tree from before npae._numba
        pass
    ours(X[:256])
    contenders = {"npae": ours}
    if args.torch:
        import torch
        Xt = torch.from_numpy(X)

        def theirs(n=n_batches):
            torch.manual_seed(0)
            net = conv_common.torch_net()
            opt = torch.optim.Adam(net.parameters(), lr=1e-3)
            conv_common.run_torch(net, opt, Xt, batch, n, np.random.default_rng(0))

        theirs(2)
        contenders["torch"] = theirs
    best = interleaved(contenders, args.repeats)
    return [row(f"the lecture's conv AE, one epoch of {len(X)} images, float32", best["npae"],
                best.get("torch"), "<= 0.25", "the same net in PyTorch, Adam, MSE",
                f"{src} in [-1, 1], batch {batch}, {n_batches} batches")]


def bench_vae_row(args, size):
    X, data = mnist_rows(args.mnist, size["vae_n"], np.float32)
    X_test, _ = mnist_rows(args.mnist, size["vae_test"], np.float32, "test")
    bench_vae.run_npae(X[:256], X_test[:256], 1, 0)  # warm-up
    # each side's seconds per epoch, measured by bench_vae around the training loop only
    contenders = {"npae": lambda: Seconds(bench_vae.run_npae(X, X_test, 1, 0)[0])}
    if args.torch:
        bench_vae.run_torch(X[:256], X_test[:256], 1, 0)
        contenders["torch"] = lambda: Seconds(bench_vae.run_torch(X, X_test, 1, 0)[0])
    best = interleaved(contenders, args.repeats)
    return [row("VAE 784-400-20, one epoch, float32", best["npae"], best.get("torch"),
                "<= 1.0", "PyTorch's VAE example (same net, loss, Adam)",
                f"{data}, {len(X)} images, batch 128")]


FIRST_FIT = r"""
import time
t0 = time.perf_counter()
import numpy as np
import npae
from npae.models import ConvAutoencoder
t1 = time.perf_counter()
X = np.random.default_rng(0).uniform(-1, 1, ({n}, 1, 28, 28)).astype(np.float32)
t2 = time.perf_counter()
ConvAutoencoder(n_epochs=1, batch_size=128, random_state=0, verbose=False).fit(X)
t3 = time.perf_counter()
print(repr((t1 - t0, t3 - t2, npae.__file__)))
"""


def first_fit(cache_dir, n, threads):
    """(import seconds, fit seconds) of a fresh interpreter with ``cache_dir`` as Numba's
    cache, importing the npae this process imported."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, NUMBA_NUM_THREADS=str(threads),
               OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(npae.__file__)))]
        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    out = subprocess.run([sys.executable, "-c", FIRST_FIT.format(n=n)], env=env,
                         capture_output=True, text=True, cwd=tempfile.gettempdir())
    if out.returncode:
        raise RuntimeError(f"the first-fit subprocess failed:\n{out.stderr[-3000:]}")
    imp, fit, where = eval(out.stdout.strip().splitlines()[-1])
    if os.path.abspath(where) != os.path.abspath(npae.__file__):
        raise RuntimeError(f"the subprocess imported {where}, not {npae.__file__}")
    return imp, fit


def bench_firstfit(args, size):
    n = size["firstfit_n"]
    cold = warm = (np.inf, np.inf)
    for _ in range(args.repeats):  # a fresh cache each repeat: cold, then warm on it
        with tempfile.TemporaryDirectory(prefix="npae-numba-cache-") as cache:
            c = first_fit(cache, n, args.threads)
            w = first_fit(cache, n, args.threads)
        cold = min(cold, (sum(c), c[1]))
        warm = min(warm, (sum(w), w[1]))
    return [row(f"first conv fit in a fresh process: import npae + one epoch on {n} images",
                (cold[0], np.nan), (warm[0], np.nan), "npae <= 3 s",
                "the same, warm (Numba's cache filled by the first)",
                f"synthetic images; empty NUMBA_CACHE_DIR; fit alone {cold[1]:.2f} s cold, "
                f"{warm[1]:.2f} s warm", cold_fit=cold[1], warm_fit=warm[1])]


BENCH = {"dense": bench_dense, "sparse": bench_sparse, "pca": bench_pca_row,
         "conv": bench_conv_row, "contractive": bench_contractive, "vae": bench_vae_row,
         "firstfit": bench_firstfit}


# -- the report ----------------------------------------------------------------------------

def versions():
    out = {"python": platform.python_version(), "numpy": np.__version__,
           "npae": getattr(npae, "__version__", "?"), "npae_path": os.path.dirname(npae.__file__)}
    for mod in ("numba", "scipy", "sklearn", "torch"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = None
    try:
        out["npae_commit"] = subprocess.run(
            ["git", "-C", out["npae_path"], "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True).stdout.strip() or None
    except OSError:
        out["npae_commit"] = None
    return out


def fmt_seconds(s):
    if s is None or not np.isfinite(s):
        return "n/a"
    return f"{s * 1e3:.0f} ms" if s < 1 else f"{s:.2f} s"


def finite(v):
    """``v`` with NaN and infinities as None (JSON has neither) and NumPy scalars as floats."""
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [finite(x) for x in v]
    if isinstance(v, (float, np.floating)):
        return float(v) if np.isfinite(v) else None
    return v


def markdown(results):
    lines = ["| row | npae | peer | ratio | goal |", "|---|---|---|---|---|"]
    for r in results:
        ratio = "n/a" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(f"| {r['row']} | {fmt_seconds(r['npae'])} | {fmt_seconds(r['peer'])} "
                     f"({r['peer_name']}) | {ratio} | {r['goal']} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mnist", default=DEFAULT_MNIST,
                    help="folder with MNIST's IDX files (default: $NPAE_DATA, else "
                         "../shared/data/mnist beside the repository)")
    ap.add_argument("--rows", default=",".join(ROWS),
                    help=f"comma-separated rows to run, of: {', '.join(ROWS)}")
    ap.add_argument("--repeats", type=int, default=None,
                    help="interleaved timed runs per contender, the best kept (default 3; "
                         "1 with --quick)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes: a smoke test of the script, not a measurement")
    ap.add_argument("--json", metavar="FILE", help="also save the results as JSON")
    args = ap.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in BENCH]
    if unknown:
        ap.error(f"--rows: unknown row(s) {unknown}; choose from {', '.join(ROWS)}")
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.repeats < 1:
        ap.error(f"--repeats must be >= 1, got {args.repeats}")
    size = QUICK if args.quick else FULL
    args.torch = have_torch()
    limiter = limit_threads(args.threads)  # noqa: F841  (kept alive for the whole run)

    info = versions()
    load_before = os.getloadavg()
    print(f"npae {info['npae']} from {info['npae_path']} (commit {info['npae_commit']}); "
          + ", ".join(f"{k} {info[k]}" for k in ("python", "numpy", "scipy", "numba",
                                                 "sklearn", "torch")))
    print(f"{args.threads} thread(s) each side, best of {args.repeats} interleaved repeat(s)"
          f"{', QUICK sizes (smoke test, not a measurement)' if args.quick else ''}; "
          f"{os.cpu_count()} CPU(s); load average before: "
          + " ".join(f"{x:.2f}" for x in load_before))
    if not args.torch:
        print("(PyTorch is not installed: the PyTorch peers are skipped)")
    results = []
    for name in rows:
        t = time.perf_counter()
        print(f"\n[{name}] ...", flush=True)
        for r in BENCH[name](args, size):
            results.append(r)
            ratio = "" if r["ratio"] is None else f", ratio {r['ratio']:.2f}"
            print(f"  {r['row']}: npae {fmt_seconds(r['npae'])}, peer "
                  f"{fmt_seconds(r['peer'])}{ratio} (goal {r['goal']})\n  data: {r['data']}",
                  flush=True)
        print(f"  ({time.perf_counter() - t:.0f} s for the row)")
    load_after = os.getloadavg()
    print(f"\nload average (1, 5, 15 min) before: {' '.join(f'{x:.2f}' for x in load_before)}"
          f"; after: {' '.join(f'{x:.2f}' for x in load_after)}\n")
    print(markdown(results))
    if args.json:
        doc = dict(results=results, load_before=load_before, load_after=load_after,
                   threads=args.threads, repeats=args.repeats, quick=args.quick,
                   versions=info, argv=sys.argv[1:])
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(finite(doc), f, indent=1)
        os.replace(tmp, args.json)  # atomic: never a half-written file
        print(f"\nsaved {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
