"""The lecture's convolutional autoencoder as PyTorch builds it, and its data, for the
benchmarks that time npae's ConvAutoencoder beside it (bench_conv.py, run_all.py).

Only NumPy and npae's public data loaders at import time, so that a script can import this
module whatever npae's internals look like; PyTorch is imported where the net is built.
"""
from __future__ import annotations

import numpy as np

# (kind, in, out, kernel, stride, padding) of the lecture's listing (issue 5; padding 0 in
# the first ConvTranspose2d)
ENCODER = [("conv", 1, 16, 3, 3, 1), ("relu",), ("pool", 2, 2), ("conv", 16, 8, 3, 2, 1),
           ("relu",), ("pool", 2, 1)]
DECODER = [("convT", 8, 16, 3, 2, 0), ("relu",), ("convT", 16, 8, 5, 3, 1), ("relu",),
           ("convT", 8, 1, 2, 2, 1), ("tanh",)]


def load_images(n=None):
    """Fashion-MNIST's training and test images, (n, 1, 28, 28) float32 in [-1, 1], and the
    source's name; uniform noise of the same shape where the data set is absent (the timings
    do not depend on the pixel values)."""
    try:
        from npae.data import load_fashion_mnist, normalize
        X, _ = load_fashion_mnist(kind="train", dtype=np.float32)
        Xt, _ = load_fashion_mnist(kind="test", dtype=np.float32)
        src = "Fashion-MNIST"
        X, Xt = normalize(X)[:, None], normalize(Xt)[:, None]
    except Exception as exc:  # absent data set
        print(f"(Fashion-MNIST not available: {exc}; using synthetic images)")
        rng = np.random.default_rng(0)
        X = rng.uniform(-1, 1, (60000, 1, 28, 28)).astype(np.float32)
        Xt = rng.uniform(-1, 1, (10000, 1, 28, 28)).astype(np.float32)
        src = "synthetic"
    return (X if n is None else X[:n]), Xt, src


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


def run_torch(net, opt, Xt, batch_size, n_batches, rng):
    """``n_batches`` Adam steps of MSE (mean over all entries, as torch.nn.MSELoss) on
    shuffled batches of the tensor ``Xt``; returns the mean loss."""
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
