"""Seconds per epoch of the lecture's convolutional autoencoder: npae beside PyTorch (CPU).

    python benchmarks/bench_conv.py                 # 100 batches, extrapolated to an epoch
    python benchmarks/bench_conv.py --full          # one true epoch (469 batches)
    python benchmarks/bench_conv.py --epochs 5      # + test MSE of both after 5 epochs
    python benchmarks/bench_conv.py --threads 1     # both libraries on one thread
    python benchmarks/bench_conv.py --algorithms    # npae's kernels vs direct NCHW, im2col

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
from npae.nn import conv_kernels as K
from npae.optim import Adam

try:  # the estimator users run; fall back to the bare layers if it is absent
    from npae.models import ConvAutoencoder
except ImportError:
    ConvAutoencoder = None

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conv_common import DECODER, ENCODER, batches, load_images, run_torch, torch_net  # noqa: E402


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
            # batch-last memory, as the activations inside the net are (no layout copies)
            x = K.batch_last(rng.standard_normal(shape).astype(np.float32)).transpose(3, 0, 1, 2)
            g = K.batch_last(rng.standard_normal(out).astype(np.float32)).transpose(3, 0, 1, 2)
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


# -- the algorithms npae's kernels were chosen against (``--algorithms``) ---------------------
# Same maths as npae.nn.conv_kernels (1)-(3); only the loop order and the memory layout differ.

@numba.njit(cache=True)
def _nchw_forward(x, W, sh, sw, ph, pw, Ho, Wo):
    """Direct loops on C-ordered NCHW arrays, innermost loop over the output channels."""
    N, C, H, Wd = x.shape
    O, _, kh, kw = W.shape
    Wt = np.ascontiguousarray(W.transpose(2, 3, 1, 0))
    y = np.zeros((N, O, Ho, Wo), dtype=x.dtype)
    acc = np.empty(O, dtype=x.dtype)
    for n in range(N):
        for p in range(Ho):
            for q in range(Wo):
                acc[:] = 0
                for i in range(kh):
                    h = p * sh + i - ph
                    if 0 <= h < H:
                        for j in range(kw):
                            w = q * sw + j - pw
                            if 0 <= w < Wd:
                                for c in range(C):
                                    xv = x[n, c, h, w]
                                    for o in range(O):
                                        acc[o] += xv * Wt[i, j, c, o]
                for o in range(O):
                    y[n, o, p, q] = acc[o]
    return y


@numba.njit(cache=True)
def _nchw_backward_weight(x, g, kh, kw, sh, sw, ph, pw):
    N, C, H, Wd = x.shape
    O, Ho, Wo = g.shape[1], g.shape[2], g.shape[3]
    dWt = np.zeros((kh, kw, C, O), dtype=x.dtype)
    gv = np.empty(O, dtype=x.dtype)
    for n in range(N):
        for p in range(Ho):
            for q in range(Wo):
                for o in range(O):
                    gv[o] = g[n, o, p, q]
                for i in range(kh):
                    h = p * sh + i - ph
                    if 0 <= h < H:
                        for j in range(kw):
                            w = q * sw + j - pw
                            if 0 <= w < Wd:
                                for c in range(C):
                                    xv = x[n, c, h, w]
                                    for o in range(O):
                                        dWt[i, j, c, o] += xv * gv[o]
    return np.ascontiguousarray(dWt.transpose(3, 2, 0, 1))


@numba.njit(cache=True)
def _im2col(x, kh, kw, sh, sw, ph, pw, Ho, Wo):
    """cols[(n, p, q), (c, i, j)] = x[n, c, p sh + i - ph, q sw + j - pw] (0 in the padding)."""
    N, C, H, Wd = x.shape
    cols = np.zeros((N, Ho, Wo, C, kh, kw), dtype=x.dtype)
    for n in range(N):
        for p in range(Ho):
            for q in range(Wo):
                for c in range(C):
                    for i in range(kh):
                        h = p * sh + i - ph
                        if 0 <= h < H:
                            for j in range(kw):
                                w = q * sw + j - pw
                                if 0 <= w < Wd:
                                    cols[n, p, q, c, i, j] = x[n, c, h, w]
    return cols.reshape(N * Ho * Wo, C * kh * kw)


@numba.njit(cache=True)
def _col2im(dcols, N, C, H, Wd, kh, kw, sh, sw, ph, pw, Ho, Wo):
    d = dcols.reshape(N, Ho, Wo, C, kh, kw)
    dx = np.zeros((N, C, H, Wd), dtype=dcols.dtype)
    for n in range(N):
        for p in range(Ho):
            for q in range(Wo):
                for c in range(C):
                    for i in range(kh):
                        h = p * sh + i - ph
                        if 0 <= h < H:
                            for j in range(kw):
                                w = q * sw + j - pw
                                if 0 <= w < Wd:
                                    dx[n, c, h, w] += d[n, p, q, c, i, j]
    return dx


def _rows(g):  # (N, O, Ho, Wo) -> ((n, p, q), O)
    return np.ascontiguousarray(g.transpose(0, 2, 3, 1)).reshape(-1, g.shape[1])


def compare_algorithms(batch=128, reps=15):
    """Best-of-``reps`` ms of forward / input gradient / weight gradient of each conv layer
    (seen as the convolution whose adjoint a ConvTranspose2d is), one thread, float32:
    npae's batch-last kernels, direct loops on NCHW, im2col/col2im + BLAS (sgemm)."""
    numba.set_num_threads(1)
    rng = np.random.default_rng(0)

    def best(fn, *a):
        fn(*a)
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            fn(*a)
            ts.append(time.perf_counter() - t)
        return 1e3 * min(ts)

    # conv view: input (C, H), weight (O, C, k, k), stride, padding, output size
    layers = [("Conv2d(1, 16, 3, s3, p1)", 1, 28, 16, 3, 3, 1, 10),
              ("Conv2d(16, 8, 3, s2, p1)", 16, 5, 8, 3, 2, 1, 3),
              ("ConvTranspose2d(8, 16, 3, s2)", 16, 5, 8, 3, 2, 0, 2),
              ("ConvTranspose2d(16, 8, 5, s3, p1)", 8, 15, 16, 5, 3, 1, 5),
              ("ConvTranspose2d(8, 1, 2, s2, p1)", 1, 28, 8, 2, 2, 1, 15)]
    print(f"\nalgorithms, ms per call (forward / input gradient / weight gradient of the "
          f"convolution), batch {batch}, float32, 1 thread")
    print(f"  {'layer':34s} {'npae (batch-last)':>22s} {'direct NCHW':>22s} "
          f"{'im2col + BLAS':>22s}")
    for name, C, H, O, k, s, p, Ho in layers:
        x = rng.standard_normal((batch, C, H, H)).astype(np.float32)
        W = (0.1 * rng.standard_normal((O, C, k, k))).astype(np.float32)
        g = rng.standard_normal((batch, O, Ho, Ho)).astype(np.float32)
        xb = K.batch_last(x).transpose(3, 0, 1, 2)
        gb = K.batch_last(g).transpose(3, 0, 1, 2)
        args = ((s, s), (p, p), (1, 1))
        ours = (best(K.conv2d_forward, xb, W, None, *args, (Ho, Ho)),
                best(K.conv2d_backward_input, gb, W, None, *args, (H, H)),
                best(K.conv2d_backward_weight, xb, gb, (k, k), *args))
        direct = (best(_nchw_forward, x, W, s, s, p, p, Ho, Ho),
                  best(lambda: _nchw_forward_adjoint(g, W, s, p, H)),
                  best(_nchw_backward_weight, x, g, k, k, s, s, p, p))
        Wm = W.reshape(O, -1)
        im2col = (best(lambda: _rows_to_nchw(_im2col(x, k, k, s, s, p, p, Ho, Ho) @ Wm.T, Ho)),
                  best(lambda: _col2im(_rows(g) @ Wm, batch, C, H, H, k, k, s, s, p, p, Ho, Ho)),
                  best(lambda: (_rows(g).T @ _im2col(x, k, k, s, s, p, p, Ho, Ho))))
        fmt = lambda t: " / ".join(f"{v:5.2f}" for v in t)  # noqa: E731
        print(f"  {name:34s} {fmt(ours):>22s} {fmt(direct):>22s} {fmt(im2col):>22s}")
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def _rows_to_nchw(y, Ho):
    N = y.shape[0] // (Ho * Ho)
    return np.ascontiguousarray(y.reshape(N, Ho, Ho, -1).transpose(0, 3, 1, 2))


def _nchw_forward_adjoint(g, W, s, p, H):
    """The input gradient by direct NCHW loops: scatter g W back (col2im without the matrix)."""
    return _nchw_scatter(g, W, s, s, p, p, H, H)


@numba.njit(cache=True)
def _nchw_scatter(g, W, sh, sw, ph, pw, H, Wd):
    N, O, Ho, Wo = g.shape
    _, C, kh, kw = W.shape
    dx = np.zeros((N, C, H, Wd), dtype=g.dtype)
    for n in range(N):
        for p in range(Ho):
            for q in range(Wo):
                for i in range(kh):
                    h = p * sh + i - ph
                    if 0 <= h < H:
                        for j in range(kw):
                            w = q * sw + j - pw
                            if 0 <= w < Wd:
                                for o in range(O):
                                    gv = g[n, o, p, q]
                                    for c in range(C):
                                        dx[n, c, h, w] += gv * W[o, c, i, j]
    return dx


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, default=100, help="timed batches per library")
    ap.add_argument("--full", action="store_true", help="time one true epoch")
    ap.add_argument("--epochs", type=int, default=0,
                    help="also train both for this many epochs and report their test MSE")
    ap.add_argument("--threads", type=int, default=numba.config.NUMBA_NUM_THREADS)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--algorithms", action="store_true",
                    help="only compare npae's kernels with direct NCHW loops and im2col + BLAS")
    args = ap.parse_args(argv)

    if args.algorithms:
        compare_algorithms(args.batch_size)
        return
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
    if ConvAutoencoder is not None:
        ConvAutoencoder(n_epochs=1, verbose=False).fit(X[:256])
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
        if ConvAutoencoder is not None:  # the whole estimator: fit_loop, shuffling, Adam
            sub = X[rng.permutation(len(X))[:h * args.batch_size]]
            t = time.perf_counter()
            ConvAutoencoder(n_epochs=1, batch_size=args.batch_size, random_state=0,
                            verbose=False).fit(sub)
        else:
            run_npae(net, opt, X, args.batch_size, h, rng)
        t_np += time.perf_counter() - t
        if torch is not None:
            t = time.perf_counter()
            run_torch(tnet, topt, Xt, args.batch_size, h, rng)
            t_t += time.perf_counter() - t
    scale = n_per_epoch / n_batches
    what = "ConvAutoencoder.fit" if ConvAutoencoder is not None else "npae layers"
    print(f"\nseconds per epoch   npae {t_np * scale:7.2f}"
          + (f"   torch {t_t * scale:7.2f}   ratio npae/torch {t_np / t_t:5.2f}"
             if torch is not None else "") + f"   (npae timed through {what})")
    print(f"ms per batch        npae {t_np / n_batches * 1e3:7.2f}"
          + (f"   torch {t_t / n_batches * 1e3:7.2f}" if torch is not None else ""))

    if args.epochs:
        if ConvAutoencoder is not None:
            model = ConvAutoencoder(n_epochs=args.epochs, batch_size=args.batch_size,
                                    random_state=0, verbose=False).fit(X)
            mse = model.score(X_test)
        else:
            net, opt = npae_net(), None
            opt = Adam(net.parameters(), lr=1e-3)
            for epoch in range(args.epochs):
                run_npae(net, opt, X, args.batch_size, n_per_epoch, np.random.default_rng(epoch))
            mse = test_mse_npae(net, X_test)
        line = f"\ntest MSE after {args.epochs} epoch(s): npae {mse:.4f}"
        if torch is not None:
            tnet = torch_net()
            topt = torch.optim.Adam(tnet.parameters(), lr=1e-3)
            for epoch in range(args.epochs):
                run_torch(tnet, topt, Xt, args.batch_size, n_per_epoch,
                          np.random.default_rng(epoch))
            tmse = test_mse_torch(tnet, torch.from_numpy(X_test))
            line += f"   torch {tmse:.4f}   ratio npae/torch {mse / tmse:.3f}"
        print(line)

    rows, peak = conv_layer_gflops(args.threads, args.batch_size)
    print(f"\nconv layers, forward + backward, batch {args.batch_size} "
          f"(machine float32 matmul: {peak:.1f} GFLOP/s)")
    for name, macs, gflops, ms in rows:
        print(f"  {name:70s} {macs / 1e6:6.2f} M mult-add/pass {ms:7.3f} ms "
              f"{gflops:6.1f} GFLOP/s ({100 * gflops / peak:4.1f} % of matmul)")


if __name__ == "__main__":
    main()
