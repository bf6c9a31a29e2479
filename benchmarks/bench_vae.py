"""npae's VariationalAutoencoder next to PyTorch's VAE example (CPU), and the sparse
autoencoder's objective + gradient next to PyTorch's autograd of the same objective.

VAE: PyTorch's example (pytorch/examples, vae/main.py): 784-400 ReLU, two 400-20 heads,
20-400 ReLU, 400-784 sigmoid, loss = BCE summed over pixels + closed-form KL, Adam 1e-3,
batch 128, MNIST in [0, 1], float32. Both sides train from scratch for the same number of
epochs on the 60000 training images with the same number of threads, in the same run; the
table gives seconds per epoch and the test loss (the mean negative ELBO over the 10000 test
images, one ε per image, in nats: what the example prints as "Test set loss"). The PyTorch
side keeps the images in one tensor and cuts shuffled batches from it (the example's
DataLoader converts every image from PIL on the fly, which would only slow PyTorch down).

Sparse autoencoder (--sparse): seconds per evaluation of J and its gradient (what each
L-BFGS iteration costs) for UFLDL's MNIST setting (10000 images, 784-196, float64), npae's
hand-derived layers against the same objective written in PyTorch and differentiated by
autograd.

    python benchmarks/bench_vae.py [--epochs 2] [--threads 2] [--repeats 1]
    python benchmarks/bench_vae.py --sparse [--threads 2]

Timings vary on a shared machine: with --repeats > 1 the contenders alternate and the best
epoch time of each is reported; the ratios are measured in the same run.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SHARED_MNIST = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            os.pardir, "shared", "data", "mnist")


def _limit_threads(n):
    from threadpoolctl import threadpool_limits
    threadpool_limits(n)
    try:
        import torch
        torch.set_num_threads(n)
    except ImportError:
        pass


def load_mnist_rows(path, dtype=np.float32):
    from npae.data import load_mnist
    X, _ = load_mnist(path, "train", dtype=dtype)
    X_test, _ = load_mnist(path, "test", dtype=dtype)
    return (np.ascontiguousarray(X.reshape(len(X), -1)),
            np.ascontiguousarray(X_test.reshape(len(X_test), -1)))


# -- the VAE -------------------------------------------------------------------------------------

def run_npae(X, X_test, epochs, seed):
    from npae.models import VariationalAutoencoder
    m = VariationalAutoencoder(400, 20, n_epochs=epochs, batch_size=128, learning_rate=1e-3,
                               dtype="float32", random_state=seed)
    t = time.perf_counter()
    m.fit(X)
    seconds = (time.perf_counter() - t) / epochs
    return seconds, float(m.objective(X_test, rng=seed))


def run_torch(X, X_test, epochs, seed):
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(seed)

    class VAE(nn.Module):  # pytorch/examples vae/main.py, unchanged
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(784, 400)
            self.fc21 = nn.Linear(400, 20)
            self.fc22 = nn.Linear(400, 20)
            self.fc3 = nn.Linear(20, 400)
            self.fc4 = nn.Linear(400, 784)

        def encode(self, x):
            h1 = F.relu(self.fc1(x))
            return self.fc21(h1), self.fc22(h1)

        def reparameterize(self, mu, logvar):
            std = torch.exp(0.5 * logvar)
            return mu + torch.randn_like(std) * std

        def decode(self, z):
            return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

        def forward(self, x):
            mu, logvar = self.encode(x.view(-1, 784))
            z = self.reparameterize(mu, logvar)
            return self.decode(z), mu, logvar

    def loss_function(recon_x, x, mu, logvar):
        BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
        KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return BCE + KLD

    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    Xt, Xv = torch.from_numpy(X), torch.from_numpy(X_test)
    n = len(Xt)
    t = time.perf_counter()
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n)
        for s in range(0, n, 128):
            x = Xt[perm[s:s + 128]]
            opt.zero_grad()
            recon, mu, logvar = model(x)
            loss = loss_function(recon, x, mu, logvar)
            loss.backward()
            opt.step()
    seconds = (time.perf_counter() - t) / epochs
    model.eval()
    total = 0.0
    with torch.no_grad():
        for s in range(0, len(Xv), 128):
            x = Xv[s:s + 128]
            recon, mu, logvar = model(x)
            total += loss_function(recon, x, mu, logvar).item()
    return seconds, total / len(Xv)


def bench_vae(args):
    X, X_test = load_mnist_rows(args.data)
    X = X[:args.n]
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
        print("PyTorch is not installed: npae's column only")
    print(f"VAE 784-400-20, Adam 1e-3, batch 128, float32, {len(X)} training images, "
          f"{args.epochs} epoch(s), {args.threads} thread(s), {args.repeats} repeat(s)")
    best = {"npae": [np.inf, []], "torch": [np.inf, []]}   # best s/epoch, every test loss
    for r in range(args.repeats):
        runs = [("npae", run_npae)] + ([("torch", run_torch)] if have_torch else [])
        if r % 2:
            runs.reverse()
        for name, run in runs:
            s, loss = run(X, X_test, args.epochs, args.seed + r)
            print(f"  repeat {r + 1} {name:5s}: {s:6.2f} s/epoch, test loss {loss:.2f}",
                  flush=True)
            best[name][0] = min(best[name][0], s)
            best[name][1].append(loss)
    print(f"{'':8s} {'best s/epoch':>12s} {'mean test -ELBO (nats)':>23s}")
    mean = {k: float(np.mean(v[1])) for k, v in best.items() if v[1]}
    for name in mean:
        print(f"{name:8s} {best[name][0]:12.2f} {mean[name]:23.2f}")
    if have_torch:
        print(f"ratio npae / PyTorch: time {best['npae'][0] / best['torch'][0]:.2f}, "
              f"test loss {mean['npae'] / mean['torch']:.4f} "
              f"(target: time <= 1, loss within 2 %: <= 1.02)")


# -- the sparse autoencoder ---------------------------------------------------------------------

def sparse_model(X):
    """npae's sparse autoencoder in UFLDL's MNIST setting, at its initial parameters."""
    from npae.models import SparseAutoencoder
    return SparseAutoencoder(196, rho=0.1, beta=3.0, weight_decay=3e-3, max_iter=0,
                             random_state=0).fit(X)


def npae_sparse_eval(m, X):
    """J and its gradient through the public API: ``gradients`` runs the forward pass that
    J needs and the backward pass (its J is not returned; computing it is the forward's
    last, cheapest step)."""
    return lambda: m.gradients(X)


def torch_sparse_eval(m, X):
    """The same J, written in PyTorch from the model's parameters and differentiated by
    autograd; the callable returns J, the gradients are left in ``P[k].grad``."""
    import torch
    P = {k: torch.tensor(v, requires_grad=True) for k, v in m.parameters().items()}
    Xt = torch.from_numpy(X)
    rho, beta, wd = m.rho, m.beta, m.weight_decay

    def evaluate():
        for p in P.values():
            p.grad = None
        h = torch.sigmoid(Xt @ P["W"].T + P["b"])
        x_hat = torch.sigmoid(h @ P["W_star"].T + P["c"])
        rho_hat = h.mean(dim=0)
        kl = (rho * torch.log(rho / rho_hat)
              + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()
        J = (0.5 * ((x_hat - Xt) ** 2).sum() / len(Xt)
             + 0.5 * wd * ((P["W"] ** 2).sum() + (P["W_star"] ** 2).sum()) + beta * kl)
        J.backward()
        return J

    return evaluate, P


def check_sparse_agree(m, X, evaluate, P):
    """Both sides compute the same J and gradient (to 1e-8), or AssertionError."""
    J_t = float(evaluate().detach())
    J = float(m.objective(X))
    assert abs(J_t - J) < 1e-9 * abs(J_t), (J_t, J)
    grads = m.gradients(X)
    for k in P:
        assert np.allclose(P[k].grad.numpy(), grads[k], rtol=1e-8, atol=1e-12), k


def bench_sparse(args):
    X, _ = load_mnist_rows(args.data, dtype=np.float64)
    X = X[:10000]
    m = sparse_model(X)

    def best_of(f, reps=5):
        f()
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            f()
            times.append(time.perf_counter() - t)
        return min(times)

    t_npae = best_of(npae_sparse_eval(m, X))
    print(f"sparse autoencoder J + gradient, 10000 x 784 -> 196, float64, {args.threads} "
          f"thread(s): npae {t_npae * 1e3:.1f} ms", end="", flush=True)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("; PyTorch not installed")
        return
    evaluate, P = torch_sparse_eval(m, X)
    check_sparse_agree(m, X, evaluate, P)
    t_torch = best_of(evaluate)
    print(f", PyTorch autograd {t_torch * 1e3:.1f} ms; ratio npae / PyTorch "
          f"{t_npae / t_torch:.2f} (same J and gradient to 1e-8)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("NPAE_DATA", SHARED_MNIST),
                   help="folder with the MNIST IDX files (default: $NPAE_DATA, else "
                        "../shared/data/mnist beside the repository)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--n", type=int, default=60000, help="training images used")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sparse", action="store_true",
                   help="time the sparse autoencoder's objective + gradient instead")
    args = p.parse_args(argv)
    _limit_threads(args.threads)
    if args.sparse:
        bench_sparse(args)
    else:
        bench_vae(args)


if __name__ == "__main__":
    main()
