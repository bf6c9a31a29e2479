"""``npae demo`` and ``npae train``: train one of the lecture's models on the best data set at
hand and write its figures, its test loss and the saved model (``--resume`` continues)."""
from __future__ import annotations

import os

from ..exceptions import UsageError
from ._args import (data_folder, finite_float, output_folder, positive_int, probability,
                    refuse_folder_at, seed)

# MNIST's image: what --n-train images and the dense models' weight matrices are sized by
_PIXELS = 28 * 28


def _add_demo(sub):
    p = sub.add_parser(
        "demo", help="train the lecture's conv autoencoder briefly and draw its figures",
        description="Train the lecture's convolutional autoencoder for a short run (under two "
                    "minutes on 2 cores) on the best data set present -- MNIST (--data or "
                    "NPAE_DATA), else Fashion-MNIST if installed, else the built-in synthetic "
                    "digits -- and write the lecture's figure (100 test samples beside their "
                    "reconstructions) and the loss curve.")
    p.add_argument("--data", type=data_folder, default=None,
                   help="folder with MNIST files, a mnist.npz, or one of mnist, "
                        "fashion-mnist, synthetic (default: the best one found)")
    p.add_argument("--out", type=output_folder, default="npae-demo",
                   help="folder for the figures (default: %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=5, help="epochs (default: %(default)s)")
    p.add_argument("--n-train", type=positive_int, default=None,
                   help="use only the first N training images (default: all of them)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_demo)


def _add_train(sub):
    p = sub.add_parser(
        "train", help="run the lecture's full MNIST example (20 epochs, Adam, batch 128), or "
                      "train a dense, denoising or contractive autoencoder",
        description="Train a model with the lecture's settings, writing a checkpoint after "
                    "every epoch (resume with --resume), the trained model and the figures.")
    p.add_argument("model", choices=["conv", "autoencoder", "denoising", "contractive",
                                      "sparse", "vae"],
                   help="the lecture's conv autoencoder, or a tied sigmoid autoencoder with "
                        "cross-entropy: plain, denoising (masking noise --nu) or contractive "
                        "(penalty weight --lam); beyond the lecture: the sparse autoencoder "
                        "(KL penalty --rho, --beta; L-BFGS for --iters iterations) or the "
                        "variational autoencoder (PyTorch's example: 784-400-20)")
    p.add_argument("--data", type=data_folder, default=None, help="as for `npae demo`")
    p.add_argument("--hidden", type=positive_int, default=None,
                   help="hidden units of the dense models (default: 256; sparse: 196, the "
                        "UFLDL exercise's; vae: 400, PyTorch's example)")
    p.add_argument("--rho", type=probability(low_open=True, high_open=True), default=0.1,
                   help="sparse: target mean activation (default: %(default)s, UFLDL's MNIST "
                        "setting)")
    p.add_argument("--beta", type=finite_float(0.0), default=3.0,
                   help="sparse: weight of the KL penalty (default: %(default)s)")
    p.add_argument("--weight-decay", type=finite_float(0.0), default=3e-3,
                   help="sparse: weight decay on W and W* (default: %(default)s, UFLDL's "
                        "MNIST setting; it is what makes the filters clean strokes)")
    p.add_argument("--iters", type=positive_int, default=400,
                   help="sparse: L-BFGS iterations (default: %(default)s; --epochs is not "
                        "used); --resume adds up to 10 to rebuild L-BFGS's memory")
    p.add_argument("--latent", type=positive_int, default=20,
                   help="vae: latent dimension (default: %(default)s); a second model with "
                        "2 latent units is trained for the manifold figure unless this is 2")
    p.add_argument("--nu", type=probability(high_open=True), default=0.3,
                   help="denoising: masking probability (default: %(default)s)")
    p.add_argument("--lam", type=finite_float(0.0), default=0.1,
                   help="contractive: weight of the Jacobian penalty (default: %(default)s)")
    p.add_argument("--out", type=output_folder, default="npae-train",
                   help="output folder (default: %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=20,
                   help="epochs (default: the lecture's 20)")
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--lr", type=finite_float(0.0, low_open=True), default=1e-3,
                   help="Adam's learning rate (default: 0.001)")
    p.add_argument("--n-train", type=positive_int, default=None,
                   help="use only the first N images")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--resume", action="store_true",
                   help="continue the run whose OUT/checkpoint.npz a previous run wrote")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)


def _train_and_test_images(args, n_train, n_test, dtype="float32"):
    """The data set ``--data`` names (or the best one found), said aloud: train, test images."""
    from ..data import find_dataset
    try:
        choice = find_dataset(args.data)
        print(f"data: {choice}")
        X, _ = choice.load("train", n=n_train, dtype=dtype, seed=args.seed)
        X_test, _ = choice.load("test", n=n_test, dtype=dtype, seed=args.seed)
    except FileNotFoundError as exc:   # the message names the files it looked for
        where = "--data" if args.data is not None else "NPAE_DATA"
        raise UsageError(f"{where}: {exc}") from None
    return X, X_test


def _conv_run(args, *, epochs, n_train, n_test, checkpoint=None, resume=False, batch_size=128,
              lr=1e-3):
    """Shared by demo and train: load, normalise as the lecture does, fit, draw, report."""
    import time

    from .. import plot
    from ..data import normalize
    from ..models import ConvAutoencoder

    X, X_test = _train_and_test_images(args, n_train, n_test)
    X, X_test = normalize(X), normalize(X_test)   # mean 0.5, std 0.5: [0, 1] -> [-1, 1]
    model = ConvAutoencoder(n_epochs=epochs, batch_size=batch_size, learning_rate=lr,
                            random_state=args.seed, verbose=not args.quiet)
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    model.fit(X, X_val=X_test, checkpoint=checkpoint, resume=resume)
    seconds = time.perf_counter() - start
    recon = model.reconstruct(X_test[:100])
    fig_path = os.path.join(args.out, "reconstructions.png")
    plot.side_by_side(X_test[:100], recon, vmin=-1, vmax=1, path=fig_path)
    curve_path = os.path.join(args.out, "loss_curve.png")
    plot.loss_curves(model.history_, title="ConvAutoencoder (MSE per pixel)", path=curve_path)
    print(f"trained {epochs} epoch(s) on {len(X)} images in {seconds:.1f} s; "
          f"test MSE per pixel {model.history_['val_loss'][-1]:.4f} (images in [-1, 1])")
    print(f"wrote {fig_path} and {curve_path}")
    return model


def _dense_run(args, *, epochs, n_train, n_test, checkpoint=None, resume=False,
               batch_size=128, lr=1e-3):
    """``npae train autoencoder|denoising|contractive``: pixels in [0, 1] as rows, a tied
    sigmoid autoencoder with cross-entropy, then its figures and the test loss."""
    import time

    from .. import plot
    from ..models import Autoencoder, ContractiveAutoencoder, DenoisingAutoencoder

    X, X_test = _train_and_test_images(args, n_train, n_test)
    shape = X.shape[1:]
    X, X_test = X.reshape(len(X), -1), X_test.reshape(len(X_test), -1)
    kw = dict(n_epochs=epochs, batch_size=batch_size, learning_rate=lr, dtype="float32",
              random_state=args.seed, verbose=not args.quiet)
    hidden = _hidden(args)
    model = {"autoencoder": lambda: Autoencoder(hidden, **kw),
             "denoising": lambda: DenoisingAutoencoder(hidden, nu=args.nu, **kw),
             "contractive": lambda: ContractiveAutoencoder(hidden, lam=args.lam, **kw),
             }[args.model]()
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    model.fit(X, X_val=X_test, checkpoint=checkpoint, resume=resume)
    seconds = time.perf_counter() - start
    paths = [os.path.join(args.out, f) for f in ("reconstructions.png", "filters.png",
                                                   "loss_curve.png")]
    plot.side_by_side(X_test[:100], model.reconstruct(X_test[:100]), image_shape=shape,
                      vmin=0, vmax=1, path=paths[0])
    plot.encoder_filters(model, image_shape=shape, path=paths[1])
    plot.loss_curves(model.history_, title=f"{type(model).__name__} (per image)",
                     path=paths[2])
    print(f"trained {epochs} epoch(s) on {len(X)} images in {seconds:.1f} s; test "
          f"cross-entropy per image {model.score(X_test):.2f}")
    print("wrote " + ", ".join(paths))
    return model


def _sparse_run(args, *, epochs, n_train, n_test, checkpoint=None, resume=False,
                batch_size=128, lr=1e-3):
    """``npae train sparse``: the UFLDL exercise on the images (10000 by default), L-BFGS,
    then the filters, the mean activations against rho, reconstructions and the curve."""
    import time

    from .. import plot
    from ..models import SparseAutoencoder

    X, X_test = _train_and_test_images(args, n_train or 10000, n_test, dtype="float64")
    shape = X.shape[1:]
    X, X_test = X.reshape(len(X), -1), X_test.reshape(len(X_test), -1)
    model = SparseAutoencoder(_hidden(args), rho=args.rho, beta=args.beta,
                              weight_decay=args.weight_decay, max_iter=args.iters,
                              random_state=args.seed,
                              verbose=not args.quiet)
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    model.fit(X, checkpoint=checkpoint, resume=resume)
    seconds = time.perf_counter() - start
    paths = [os.path.join(args.out, f) for f in ("filters.png", "reconstructions.png",
                                                   "loss_curve.png")]
    plot.encoder_filters(model, image_shape=shape, path=paths[0])
    plot.side_by_side(X_test[:100], model.reconstruct(X_test[:100]), image_shape=shape,
                      vmin=0, vmax=1, path=paths[1])
    plot.loss_curves(model.history_, title="SparseAutoencoder (J per L-BFGS iteration)",
                     path=paths[2])
    dev = float(abs(model.rho_hat_ - args.rho).max())
    print(f"trained {model.n_iter_} L-BFGS iteration(s) on {len(X)} images in {seconds:.1f} s;"
          f" mean activations {model.rho_hat_.mean():.4f} (rho = {args.rho}, largest "
          f"deviation {dev:.4f}); test reconstruction error per image {model.score(X_test):.2f}")
    print("wrote " + ", ".join(paths))
    return model


def _vae_run(args, *, epochs, n_train, n_test, checkpoint=None, resume=False,
             batch_size=128, lr=1e-3):
    """``npae train vae``: PyTorch's example (float32, Adam, batch 128), then 100 samples
    from the prior, the 2-D latent manifold (a second model with n_latent=2 unless --latent
    is 2), an interpolation between two test digits and the loss curve."""
    import time

    from .. import plot
    from ..models import VariationalAutoencoder
    from ..models.vae import interpolate, latent_manifold

    X, X_test = _train_and_test_images(args, n_train, n_test)
    shape = X.shape[1:]
    X, X_test = X.reshape(len(X), -1), X_test.reshape(len(X_test), -1)
    kw = dict(n_epochs=epochs, batch_size=batch_size, learning_rate=lr, dtype="float32",
              random_state=args.seed, verbose=not args.quiet)
    model = VariationalAutoencoder(_hidden(args), args.latent, **kw)
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    model.fit(X, X_val=X_test, checkpoint=checkpoint, resume=resume)
    seconds = time.perf_counter() - start
    print(f"trained {epochs} epoch(s) on {len(X)} images in {seconds:.1f} s; test negative "
          f"ELBO {model.history_['val_loss'][-1]:.2f} nats per image")
    model2 = model
    if args.latent != 2:
        model2 = VariationalAutoencoder(_hidden(args), 2, **kw)
        ck2 = None if checkpoint is None else os.path.join(os.path.dirname(checkpoint),
                                                           "checkpoint_2d.npz")
        model2.fit(X, X_val=X_test, checkpoint=ck2, resume=resume)
        path2 = model2.save(os.path.join(args.out, "model_2d.npz"))
        print(f"n_latent=2 model for the manifold: test negative ELBO "
              f"{model2.history_['val_loss'][-1]:.2f}; saved to {path2}")
    paths = [os.path.join(args.out, f) for f in ("samples.png", "manifold.png",
                                                   "interpolation.png", "loss_curve.png")]
    plot.image_grid(model.sample(100, random_state=args.seed), 10, 10, image_shape=shape,
                    vmin=0, vmax=1, title="100 samples from the prior, decoded",
                    path=paths[0])
    plot.image_grid(latent_manifold(model2, 20), 20, 20, image_shape=shape, vmin=0, vmax=1,
                    title="the 2-D latent manifold (n_latent=2)", path=paths[1])
    a, b = X_test[0], X_test[1]
    plot.image_grid(interpolate(model, a, b, 10), 1, 10, image_shape=shape, vmin=0, vmax=1,
                    title="interpolation between two test digits", path=paths[2])
    plot.loss_curves(model.history_, title="VariationalAutoencoder (negative ELBO, nats)",
                     path=paths[3])
    print("wrote " + ", ".join(paths))
    return model


def _hidden(args):
    """--hidden, or the model's own default when it is not given."""
    if args.hidden is not None:
        return args.hidden
    return {"sparse": 196, "vae": 400}.get(args.model, 256)


def _check_sizes(args):
    """Refuse, before any data is read, sizes whose arrays could never fit in memory: the
    images --n-train keeps (float64, as the sparse model and PCA read them) and the dense
    models' weight matrices. The estimators check their own sizes too; here the message
    names the option."""
    from .._memory import check_fits_in_memory
    if args.n_train is not None:
        check_fits_in_memory(args.n_train * _PIXELS, 8, error=UsageError,
                             what=f"--n-train {args.n_train} ({args.n_train} images of "
                                  f"{_PIXELS} pixels)")
    model = getattr(args, "model", "conv")
    if model == "conv":
        return
    hidden = _hidden(args)
    check_fits_in_memory(hidden * _PIXELS, 8, error=UsageError,
                         what=f"--hidden {hidden} (the {_PIXELS} x {hidden} weight matrix W)")
    if model == "vae":
        check_fits_in_memory(hidden * args.latent, 8, error=UsageError,
                             what=f"--latent {args.latent} (two {hidden} x {args.latent} "
                                  "weight matrices of the encoder's mu and log-variance)")


def _cmd_demo(args):
    _check_sizes(args)
    for name in ("reconstructions.png", "loss_curve.png"):
        refuse_folder_at(os.path.join(args.out, name), "--out")
    _conv_run(args, epochs=args.epochs, n_train=args.n_train, n_test=1000)
    return 0


# the files each model's run writes into --out, besides the checkpoint and the model
_FIGURES = {"conv": ("reconstructions.png", "loss_curve.png"),
            "sparse": ("filters.png", "reconstructions.png", "loss_curve.png"),
            "vae": ("samples.png", "manifold.png", "interpolation.png", "loss_curve.png",
                    "model_2d.npz", "checkpoint_2d.npz")}
_DENSE_FIGURES = ("reconstructions.png", "filters.png", "loss_curve.png")


def _cmd_train(args):
    """Everything the user must fix before a run can start is found before the data is
    read, and is a UsageError (exit 2, one line): sizes that cannot fit, a checkpoint that
    exists without --resume or is missing with it, a folder where a file is to be written,
    a damaged checkpoint."""
    from ..exceptions import FileFormatError
    _check_sizes(args)
    checkpoint = os.path.join(args.out, "checkpoint.npz")
    for name in ("checkpoint.npz", "model.npz") + _FIGURES.get(args.model, _DENSE_FIGURES):
        refuse_folder_at(os.path.join(args.out, name), "--out")
    if os.path.exists(checkpoint) and not args.resume:
        raise UsageError(f"{checkpoint} exists: pass --resume to continue that run, or choose "
                         "another --out (the old run is never overwritten)")
    if args.resume and not os.path.exists(checkpoint):
        raise UsageError(f"--resume: there is no checkpoint {checkpoint} to continue; start "
                         "the run without --resume (or name the --out of the run to continue)")
    run = {"conv": _conv_run, "sparse": _sparse_run, "vae": _vae_run}.get(args.model,
                                                                         _dense_run)
    try:
        if args.resume:
            from .._io import read_npz
            read_npz(checkpoint, "a checkpoint")   # a damaged file: say so before loading data
        model = run(args, epochs=args.epochs, n_train=args.n_train, n_test=None,
                    checkpoint=checkpoint, resume=args.resume, batch_size=args.batch_size,
                    lr=args.lr)
    except FileFormatError as exc:
        raise UsageError(f"{exc} (delete it to start afresh, or choose another --out)") \
            from None
    path = model.save(os.path.join(args.out, "model.npz"))
    print(f"saved the trained model to {path} (load it with npae.load)")
    return 0
