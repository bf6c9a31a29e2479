"""Seconds per epoch of the lecture's convolutional autoencoder: npae beside PyTorch (CPU).

    python benchmarks/bench_conv.py                 # 100 batches, extrapolated to an epoch
    python benchmarks/bench_conv.py --full          # one true epoch (469 batches)
    python benchmarks/bench_conv.py --epochs 5      # + test MSE of both after 5 epochs
    python benchmarks/bench_conv.py --threads 1     # both libraries on one thread

The net (issue 5; padding 0 in the first ConvTranspose2d), Fashion-MNIST training images
normalised to [-1, 1] (synthetic noise if the data set is absent), MSE (mean over all
entries, as torch.nn.MSELoss), Adam lr 1e-3, batch 128, float32, same thread count for both
(numba.set_num_threads / torch.set_num_threads; BLAS is not used by npae's conv kernels).
Prints npae/torch per epoch, then each conv layer's achieved GFLOP/s (forward + backward)
next to the machine's float32 matmul GFLOP/s. torch is optional: its column is skipped if it
is not importable. Timings depend on what else runs on the machine; both libraries are timed
in the same run, alternating, so the ratio is the figure to trust.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numba
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # checkout
from npae.nn import (Conv2d, ConvTranspose2d, MaxPool2d, ReLU, Sequential, Tanh, set_dtype)
from npae.nn import kernels as K
from npae.optim import Adam

# (kind, in, out, kernel, stride, padding) of the lecture's listing
ENCODER = [("conv", 1, 16, 3, 3, 1), ("relu",), ("pool", 2, 2), ("conv", 16, 8, 3, 2, 1),
           ("relu",), ("pool", 2, 1)]
DECODER = [("convT", 8, 16, 3, 2, 0), ("relu",), ("convT", 16, 8, 5, 3, 1), ("relu",),
           ("convT", 8, 1, 2, 2, 1), ("tanh",)]


def load_images(n=None):
    try:
        from npae.data import load_fashion_mnist, normalize
        X, _ = load_fashion_mnist(kind="train", dtype=np.float32)
        Xt, _ = load_fashion_mnist(kind="test", dtype=np.float32)
        src = "Fashion-MNIST"
        X, Xt = normalize(X)[:, None], normalize(Xt)[:, None]
    except Exception as exc:  # absent data set: timings do not depend on the pixel values
        print(f"(Fashion-MNIST not available: {exc}; using synthetic images)")
        rng = np.random.default_rng(0)
        X = rng.uniform(-1, 1, (60000, 1, 28, 28)).astype(np.float32)
        Xt = rng.uniform(-1, 1, (10000, 1, 28, 28)).astype(np.float32)
        src = "synthetic"
    return (X if n is None else X[:n]), Xt, src


def npae_net(seed=0):
    rng = np.random.default_rng(seed)
    layers = []
    for spec in ENCODER + DECODER:
        kind = spec[0]
        if kind == "conv":
            layers.append(Conv2d(*spec[1:4], stride=spec[4], padding=spec[5], rng=rng))
        elif kind == "convT":
            layers.append(ConvTranspose2d(*spec[1:4], stride=spec[4], padding=spec[5], rng=rng))
        elif kind == "pool":
            layers.append(MaxPool2d(spec[1], stride=spec[2]))
        else:
            layers.append(ReLU() if kind == "relu" else Tanh())
    return set_dtype(Sequential(layers), np.float32)


def torch_net():
    import torch.nn as tnn
    layers = []
    for spec in ENCODER + DECODER:
        kind = spec[0]
        if kind == "conv":
            layers.append(tnn.Conv2d(*spec[1:4], stride=spec[4], padding=spec[5]))
        elif kind == "convT":
            layers.append(tnn.ConvTranspose2d(*spec[1:4], stride=spec[4], padding=spec[5]))
        elif kind == "pool":
            layers.append(tnn.MaxPool2d(spec[1], stride=spec[2]))
        else:
            layers.append(tnn.ReLU() if kind == "relu" else tnn.Tanh())
    return tnn.Sequential(*layers)


def batches(n, batch_size, n_batches, rng):
    order = rng.permutation(n)
    for b in range(n_batches):
        yield order[b * batch_size:(b + 1) * batch_size]


def run_npae(net, opt, X, batch_size, n_batches, rng):
    params = net.parameters()
    grads = net.gradients()
    total = 0.0
    for idx in batches(len(X), batch_size, n_batches, rng):
        # the target in the kernels' batch-last memory order, like the network's output, so
        # the loss and its gradient run over matching layouts (the first Conv2d then reads x
        # without another copy)
        x = K.batch_last(X[idx]).transpose(3, 0, 1, 2)
        net.zero_grad()
        x_hat = net.forward(x)
        r = x_hat - x
        total += float(np.mean(r * r))
        net.backward(r * np.float32(2.0 / r.size))  # d mean(r^2) / d x_hat
        opt.step(grads)
    assert set(params) == set(grads)
    return total / n_batches


def run_torch(net, opt, Xt, batch_size, n_batches, rng):
    import torch
    loss_fn = torch.nn.MSELoss()
    total = 0.0
    for idx in batches(len(Xt), batch_size, n_batches, rng):
        x = Xt[torch.from_numpy(idx)]
        opt.zero_grad()
        loss = loss_fn(net(x), x)
        loss.backward()
        opt.step()
        total += loss.item()
    return total / n_batches


def test_mse_npae(net, X, batch=1000):
    return float(np.mean([np.mean((net.forward(X[i:i + batch]) - X[i:i + batch]) ** 2)
                          for i in range(0, len(X), batch)]))


def test_mse_torch(net, Xt, batch=1000):
    import torch
    with torch.no_grad():
        return float(np.mean([float(torch.mean((net(Xt[i:i + batch]) - Xt[i:i + batch]) ** 2))
                              for i in range(0, len(Xt), batch)]))


def conv_layer_gflops(threads, batch=128, reps=20):
    """Best-of-``reps`` time of forward + backward of each conv layer alone, as GFLOP/s.

    FLOPs = 2 x multiply-adds; forward, input gradient and weight gradient each do the same
    number of multiply-adds, the first layer skips nothing (npae computes its dL/dx too)."""
    rng = np.random.default_rng(0)
    shape, rows = (batch, 1, 28, 28), []
    for layer in npae_net():
        out = layer.output_shape(shape)
        if isinstance(layer, (Conv2d, ConvTranspose2d)):
            x = rng.standard_normal(shape).astype(np.float32)
            g = rng.standard_normal(out).astype(np.float32)
            W = layer.params["W"]
            spatial = out[2] * out[3] if isinstance(layer, Conv2d) else shape[2] * shape[3]
            macs = batch * spatial * W.size  # per pass
            ts = []
            for _ in range(reps):
                t = time.perf_counter()
                layer.forward(x)
                layer.backward(g)
                ts.append(time.perf_counter() - t)
            rows.append((repr(layer), macs, 3 * 2 * macs / min(ts) / 1e9, min(ts) * 1e3))
        shape = out
    n = 2048
    A = rng.standard_normal((n, n)).astype(np.float32)
    A @ A
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        A @ A
        ts.append(time.perf_counter() - t)
    return rows, 2 * n ** 3 / min(ts) / 1e9


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, default=100, help="timed batches per library")
    ap.add_argument("--full", action="store_true", help="time one true epoch")
    ap.add_argument("--epochs", type=int, default=0,
                    help="also train both for this many epochs and report their test MSE")
    ap.add_argument("--threads", type=int, default=numba.config.NUMBA_NUM_THREADS)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args(argv)

    numba.set_num_threads(args.threads)
    try:
        if args.no_torch:
            raise ImportError("--no-torch")
        import torch
        torch.set_num_threads(args.threads)
        torch.manual_seed(0)
    except ImportError as exc:
        torch = None
        print(f"(torch not importable: {exc}; npae only)")

    X, X_test, src = load_images()
    n_per_epoch = -(-len(X) // args.batch_size)
    n_batches = n_per_epoch if args.full else min(args.batches, n_per_epoch)
    print(f"data: {src}, {len(X)} training images; batch {args.batch_size}; float32; "
          f"{args.threads} thread(s); {os.cpu_count()} CPU(s) visible; timing {n_batches} batches"
          + ("" if args.full else f" (x {n_per_epoch / n_batches:.2f} = one epoch)"))

    net = npae_net()
    opt = Adam(net.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    run_npae(net, opt, X, args.batch_size, 3, rng)  # compile / warm up (Numba's cache)
    if torch is not None:
        tnet = torch_net()
        topt = torch.optim.Adam(tnet.parameters(), lr=1e-3)
        Xt = torch.from_numpy(X)
        run_torch(tnet, topt, Xt, args.batch_size, 3, rng)

    # alternate halves so that a burst of load on the shared machine hits both libraries
    t_np = t_t = 0.0
    halves = [n_batches // 2, n_batches - n_batches // 2]
    for h in halves:
        t = time.perf_counter()
        run_npae(net, opt, X, args.batch_size, h, rng)
        t_np += time.perf_counter() - t
        if torch is not None:
            t = time.perf_counter()
            run_torch(tnet, topt, Xt, args.batch_size, h, rng)
            t_t += time.perf_counter() - t
    scale = n_per_epoch / n_batches
    print(f"\nseconds per epoch   npae {t_np * scale:7.2f}"
          + (f"   torch {t_t * scale:7.2f}   ratio npae/torch {t_np / t_t:5.2f}"
             if torch is not None else ""))
    print(f"ms per batch        npae {t_np / n_batches * 1e3:7.2f}"
          + (f"   torch {t_t / n_batches * 1e3:7.2f}" if torch is not None else ""))

    if args.epochs:
        net, tnet = npae_net(), (torch_net() if torch is not None else None)
        opt = Adam(net.parameters(), lr=1e-3)
        if tnet is not None:
            topt = torch.optim.Adam(tnet.parameters(), lr=1e-3)
        for epoch in range(args.epochs):
            run_npae(net, opt, X, args.batch_size, n_per_epoch, np.random.default_rng(epoch))
            if tnet is not None:
                run_torch(tnet, topt, Xt, args.batch_size, n_per_epoch,
                          np.random.default_rng(epoch))
        mse = test_mse_npae(net, X_test)
        line = f"\ntest MSE after {args.epochs} epoch(s): npae {mse:.4f}"
        if tnet is not None:
            tmse = test_mse_torch(tnet, torch.from_numpy(X_test))
            line += f"   torch {tmse:.4f}   ratio {mse / tmse:.3f}"
        print(line)

    rows, peak = conv_layer_gflops(args.threads, args.batch_size)
    print(f"\nconv layers, forward + backward, batch {args.batch_size} "
          f"(machine float32 matmul: {peak:.1f} GFLOP/s)")
    for name, macs, gflops, ms in rows:
        print(f"  {name:70s} {macs / 1e6:6.2f} M mult-add/pass {ms:7.3f} ms "
              f"{gflops:6.1f} GFLOP/s ({100 * gflops / peak:4.1f} % of matmul)")


if __name__ == "__main__":
    main()
