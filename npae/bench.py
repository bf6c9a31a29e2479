"""``npae bench``: how fast this machine trains the lecture's models, and what each fast path
gains over its plain-NumPy twin.

Training times are estimated from a few hundred mini-batch steps on the built-in synthetic
digits (no data set needed) and scaled to an epoch of 60,000 images. They measure npae
alone; the comparisons with PyTorch and scikit-learn, run in the same process, live in the
repository's ``benchmarks/`` folder. Shared or busy machines vary by tens of percent from
run to run; every figure here is the best of ``repeats`` runs.
"""
from __future__ import annotations

import time

import numpy as np

__all__ = ["training_table", "kernel_table", "run"]

EPOCH = 60000
BATCH = 128


def _best_ms(f, number, repeats):
    """Best over ``repeats`` of the mean time of ``number`` calls of ``f``, in milliseconds."""
    f()  # compiles (or loads from Numba's cache) and warms the caches
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(number):
            f()
        best = min(best, (time.perf_counter() - t) / number)
    return best * 1e3


def _models():
    from .models import Autoencoder, ContractiveAutoencoder, ConvAutoencoder
    kw = dict(n_epochs=1, batch_size=BATCH, dtype="float32", random_state=0)
    return [
        ("ConvAutoencoder (the lecture's MNIST net)", "images", 20,
         lambda: ConvAutoencoder(n_epochs=1, batch_size=BATCH, random_state=0, verbose=False)),
        ("Autoencoder 784-256, tied, cross-entropy", "rows", None,
         lambda: Autoencoder(256, **kw)),
        ("ContractiveAutoencoder 784-256, lam 0.1", "rows", None,
         lambda: ContractiveAutoencoder(256, lam=0.1, **kw)),
    ]


def training_table(steps=100, repeats=3):
    """Rows (name, ms per step, s per 60,000-image epoch, lecture's epochs or None) for the
    lecture's conv autoencoder and the dense autoencoders, trained with Adam, batch 128,
    float32 on ``steps`` mini-batches of synthetic digits."""
    from ._numba import use_kernels_now
    from .data import synthetic_digits
    use_kernels_now()  # no twins serving a run's first calls: the kernels, from the warm-up
    if steps < 1:
        raise ValueError(f"steps={steps} must be at least 1")
    images, _ = synthetic_digits(steps * BATCH, seed=0)
    images = images.astype(np.float32)
    data = {"images": images[:, None], "rows": images.reshape(len(images), -1)}
    rows = []
    for name, kind, epochs, make in _models():
        X = data[kind]
        make().fit(X[:BATCH])  # Numba compiles or loads its cache here, not in the timing
        best = np.inf
        for _ in range(repeats):
            model = make()
            t = time.perf_counter()
            model.fit(X)
            best = min(best, (time.perf_counter() - t) / steps)
        rows.append((name, best * 1e3, best * -(-EPOCH // BATCH), epochs))
    return rows


def kernel_table(dtype=np.float32, n=BATCH, d=784, k=256, number=200, repeats=7):
    """Rows (name, fast ms, twin ms) for each fast path of the dense training step next to its
    plain-NumPy twin, at the lecture-sized model's shapes."""
    from ._numba import use_kernels_now
    from .nn import elementwise_kernels as E
    from .optim_kernels import adam_scalars, adam_update, adam_update_numpy
    use_kernels_now()  # Adam's kernel from the first call, not the twin a run starts with
    rng = np.random.default_rng(0)
    a = (2 * rng.standard_normal((n, k))).astype(dtype)
    a_hat = (2 * rng.standard_normal((n, d))).astype(dtype)
    X = rng.random((n, d)).astype(dtype)
    h, dh = E.sigmoid(a), rng.standard_normal((n, k)).astype(dtype)
    p, gW, m = (rng.standard_normal((k, d)).astype(dtype) for _ in range(3))
    v = rng.random((k, d)).astype(dtype)
    adam = adam_scalars(dtype, 0.9, 0.999, 1e-3, 1e-8, 0.0)

    pairs = [
        (f"sigmoid, {n}x{k}", lambda: E.sigmoid(a), lambda: E.sigmoid_numpy(a)),
        (f"sigmoid backward, {n}x{k}", lambda: E.sigmoid_backward(dh, h),
         lambda: E.sigmoid_backward_numpy(dh, h)),
        (f"cross-entropy and its gradient, {n}x{d}",
         lambda: E.cross_entropy_logits(a_hat, X), lambda: E.cross_entropy_logits_numpy(a_hat, X)),
        (f"Adam update, {k}x{d}",
         lambda: adam_update(p, gW, m, v, 0.9, 0.999, 1e-3, 1e-8, 0.0, adam),
         lambda: adam_update_numpy(p, gW, m, v, 0.9, 0.999, 1e-3, 1e-8, 0.0)),
    ]
    return [(name, _best_ms(fast, number, repeats), _best_ms(twin, number, repeats))
            for name, fast, twin in pairs]


def _blas():
    """The BLAS libraries loaded (NumPy's does the matrix products), as threadpoolctl sees them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS: see numpy.show_config()"
    found = []
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            owner = next((name for name in ("numpy", "scipy")
                          if f"{name}.libs" in info.get("filepath", "")), "")
            found.append(f"{owner + ': ' if owner else ''}{info.get('internal_api', 'BLAS')} "
                         f"{info.get('version', '?')}, {info.get('num_threads', '?')} thread(s)")
    return "; ".join(found) or "BLAS: none found by threadpoolctl"


def run(steps=100, repeats=3, kernels=True, out=print):
    """Print both tables (``npae bench``)."""
    from . import __version__
    from ._numba import NUMBA_ENABLED, NUMBA_VERSION, get_num_threads
    if NUMBA_ENABLED:
        kernels_are = f"Numba {NUMBA_VERSION} ({get_num_threads()} thread(s))"
    else:
        kernels_are = "no Numba: the kernels' NumPy twins run"
    out(f"npae {__version__}, NumPy {np.__version__} ({_blas()}), {kernels_are}")
    out(f"\ntraining: Adam, batch {BATCH}, float32, synthetic 28x28 digits, best of {repeats} "
        f"runs of {steps} steps; s/epoch scaled to {EPOCH:,} images")
    out(f"{'model':44s} {'ms/step':>8s} {'s/epoch':>8s}  lecture's run")
    for name, ms, epoch_s, epochs in training_table(steps, repeats):
        run_s = f"{epochs} epochs: {epochs * epoch_s:.0f} s" if epochs else ""
        out(f"{name:44s} {ms:8.2f} {epoch_s:8.2f}  {run_s}".rstrip())
    if kernels:
        out("\nfast paths vs their NumPy twins (float32, ms per call, best of 7)")
        out(f"{'':48s} {'npae':>7s} {'twin':>7s} {'ratio':>6s}")
        for name, fast, twin in kernel_table():
            out(f"{name:48s} {fast:7.3f} {twin:7.3f} {fast / twin:6.2f}")
    out("\n(comparisons with PyTorch and scikit-learn: the repository's benchmarks/ folder)")
