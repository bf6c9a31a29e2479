"""Seconds per epoch of the tied sigmoid autoencoder 784-256, npae next to PyTorch (CPU).

The model of issue 4's benchmark: h = sigm(b + Wx), x̂ = sigm(c + W^T h), cross-entropy,
batch 128, Adam (lr 1e-3), on Fashion-MNIST's 60000 training images. PyTorch (optional: the
column is skipped if it is not importable) runs the same model with the same number of
threads, from the same initial weights, in the same run, twice: with the textbook
sigmoid + BCELoss and with the logits form (BCEWithLogitsLoss), which is what npae computes.
A second table times one training step of the contractive autoencoder relative to the plain
one (target: under 1.5x).

    python benchmarks/bench_autoencoder.py [--epochs 1] [--repeats 3] [--threads 2] [--n 60000]
    python benchmarks/bench_autoencoder.py --kernels    (each fast path next to its NumPy twin)

Timings vary on a shared machine: runs of the contenders are interleaved and the best of
``--repeats`` is reported, and the ratios are measured in the same run.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

# run from a checkout without installing: the repository root holds the npae package
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _limit_threads(n):
    """Pin BLAS (numpy) and PyTorch to ``n`` threads, so both sides get the same cores."""
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(n)
    except ImportError:  # env vars only work before numpy loads its BLAS; best effort
        os.environ["OPENBLAS_NUM_THREADS"] = str(n)


def load_data(n, dtype):
    from npae.data import load_fashion_mnist
    X, _ = load_fashion_mnist(kind="train", dtype=dtype)
    return np.ascontiguousarray(X.reshape(len(X), -1)[:n])


def time_npae(X, epochs, dtype, model="plain", lam=0.1):
    from npae.models.autoencoder import Autoencoder
    from npae.models.contractive import ContractiveAutoencoder
    kw = dict(tied=True, decoder="sigmoid", loss="cross_entropy", optimizer="adam",
              learning_rate=1e-3, n_epochs=epochs, batch_size=128, dtype=dtype, random_state=0)
    m = (ContractiveAutoencoder(256, lam=lam, **kw) if model == "contractive"
         else Autoencoder(256, **kw))
    t = time.perf_counter()
    m.fit(X)
    return (time.perf_counter() - t) / epochs, m


def time_torch(X, epochs, W0, logits):
    import torch
    Xt = torch.from_numpy(X.astype(np.float32))
    W = torch.nn.Parameter(torch.from_numpy(W0.astype(np.float32)))
    b = torch.nn.Parameter(torch.zeros(W0.shape[0]))
    c = torch.nn.Parameter(torch.zeros(W0.shape[1]))
    opt = torch.optim.Adam([W, b, c], lr=1e-3)
    bce_logits = torch.nn.BCEWithLogitsLoss(reduction="sum")
    bce = torch.nn.BCELoss(reduction="sum")
    g = torch.Generator().manual_seed(0)
    n = len(Xt)
    t = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        total = 0.0  # the epoch's mean loss, summed as npae's training loop does
        for s in range(0, n, 128):
            x = Xt[perm[s:s + 128]]
            h = torch.sigmoid(x @ W.T + b)
            a_hat = h @ W + c
            loss = (bce_logits(a_hat, x) if logits else bce(torch.sigmoid(a_hat), x)) / len(x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(x)
    return (time.perf_counter() - t) / epochs, total / n


def kernel_table(dtype):
    """npae's fast paths next to their NumPy twins (``npae.bench.kernel_table``)."""
    from npae.bench import kernel_table as rows
    print(f"\nfast path vs its NumPy twin ({np.dtype(dtype).name}, ms per call, best of 7)")
    print(f"{'':52s} {'npae':>8s} {'twin':>8s} {'ratio':>6s}")
    for name, fast, twin in rows(dtype):
        print(f"{name:52s} {fast:8.3f} {twin:8.3f} {fast / twin:6.2f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=1, help="epochs per timed run")
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed runs per contender, interleaved; the best is reported")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=60000, help="training images used (max 60000)")
    ap.add_argument("--contractive-n", type=int, default=20000,
                    help="images for the contractive/plain step-cost comparison")
    ap.add_argument("--kernels", action="store_true",
                    help="only the table of fast paths next to their NumPy twins")
    args = ap.parse_args(argv)
    _limit_threads(args.threads)
    if args.kernels:
        for dtype in (np.float32, np.float64):
            kernel_table(dtype)
        return

    X64 = load_data(args.n, np.float64)
    X32 = X64.astype(np.float32)
    print(f"Fashion-MNIST train: {X64.shape}, tied sigmoid AE 784-256, cross-entropy, batch 128, "
          f"Adam; {args.epochs} epoch(s) per run, best of {args.repeats} interleaved runs, "
          f"{args.threads} thread(s)")
    from npae.models.autoencoder import Autoencoder
    # npae's initial W (n_epochs=0, same seed) for PyTorch too, so the losses compare
    W0 = Autoencoder(256, n_epochs=0, random_state=0).fit(X64[:10]).parameters()["W"]
    contenders = {
        "npae float64 (logits form)": lambda: time_npae(X64, args.epochs, "float64"),
        "npae float32 (logits form)": lambda: time_npae(X32, args.epochs, "float32"),
    }
    torch_names = []
    try:
        import torch
        torch.set_num_threads(args.threads)
        for logits in (False, True):
            name = (f"PyTorch {torch.__version__} float32 "
                    f"({'BCEWithLogits' if logits else 'sigmoid+BCELoss'})")
            contenders[name] = (lambda lg=logits: time_torch(X32, args.epochs, W0, lg))
            torch_names.append(name)
    except ImportError:
        print("(PyTorch not installed: its columns are skipped)")
    best, loss = {}, {}
    for _ in range(args.repeats):
        for name, run in contenders.items():
            sec, out = run()
            best[name] = min(best.get(name, np.inf), sec)
            loss[name] = out.history_["loss"][-1] if hasattr(out, "history_") else out
    print(f"\n{'model':52s} {'s/epoch':>8s} {'loss':>10s}")
    for name in contenders:
        print(f"{name:52s} {best[name]:8.3f} {loss[name]:10.3f}")
    print("(loss: mean cross-entropy per image over the last epoch, as it was trained)")
    if torch_names:
        s64, s32 = best["npae float64 (logits form)"], best["npae float32 (logits form)"]
        ref, ref0 = best[torch_names[1]], best[torch_names[0]]
        print(f"\nratio npae / PyTorch(BCEWithLogits): float64 {s64 / ref:.2f}, float32 "
              f"{s32 / ref:.2f};  vs PyTorch(sigmoid+BCELoss): float64 {s64 / ref0:.2f}, "
              f"float32 {s32 / ref0:.2f};  target <= 1.0")

    # contractive step cost vs plain, same data and settings
    Xc = X64[:args.contractive_n]
    for dtype, Xd in (("float64", Xc), ("float32", Xc.astype(np.float32))):
        plain = contr = np.inf
        for _ in range(args.repeats):
            plain = min(plain, time_npae(Xd, 1, dtype)[0])
            contr = min(contr, time_npae(Xd, 1, dtype, "contractive")[0])
        print(f"contractive / plain step cost ({dtype}, {len(Xd)} images, best of "
              f"{args.repeats}): {contr / plain:.2f}x  (plain {plain:.3f} s, contractive "
              f"{contr:.3f} s; target < 1.5x)")


if __name__ == "__main__":
    main()
