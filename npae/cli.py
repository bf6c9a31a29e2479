"""Command line: ``npae <command> ...`` (also ``python -m npae``).

Each command is a pair: ``_add_<name>(subparsers)`` declares its arguments and
``_cmd_<name>(args)`` runs it and returns the exit status.
"""
from __future__ import annotations

import argparse
import sys

from . import __version__
from .exceptions import UsageError


class _Parser(argparse.ArgumentParser):
    """A usage error is one line on stderr and exit status 2 (no usage block, no traceback)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser():
    parser = _Parser(
        prog="npae", description="Autoencoders in plain NumPy: the lecture, runnable.")
    parser.add_argument("--version", action="version", version=f"npae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, obj in sorted(globals().items()):
        if name.startswith("_add_"):
            obj(sub)
    return parser


# -------------------------------------------------------------------------------------------
# the course commands: check, exercises, gradcheck
# -------------------------------------------------------------------------------------------
def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


def _natural(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _exercises_option(p):
    p.add_argument("--exercises", metavar="FILE", default=None,
                   help="a course file of exercises to use instead of the built-in ones "
                        "(see README, 'For course staff')")


def _exercise_table(args):
    """The exercises ``--exercises FILE`` registers (a UsageError if it cannot be loaded),
    or the built-in ones."""
    if getattr(args, "exercises", None) is None:
        from .exercises import EXERCISES
        return EXERCISES
    from .exercises.course import CourseFileError, load_course
    try:
        return load_course(args.exercises)
    except CourseFileError as exc:
        raise UsageError(str(exc)) from None


def _selected(names, table):
    unknown = [n for n in (names or []) if n not in table]
    if unknown:
        raise UsageError(f"no exercise named {unknown[0]!r}; the exercises are: "
                         + ", ".join(table))
    return list(dict.fromkeys(names or table))


def _add_check(sub):
    p = sub.add_parser(
        "check", help="check homework answers to gradient exercises",
        description="Run ANSWERS (a .py file) in a separate process, call each exercise's "
        "function by name on generated inputs and check the gradients it returns against "
        "finite differences and the reference gradient. Exit status: 0 when every checked "
        "exercise passed, 1 when any did not, 2 when the check could not run (usage error, "
        "missing or unimportable ANSWERS, broken --exercises file).")
    p.add_argument("answers", metavar="ANSWERS.py", help="the file with your functions")
    p.add_argument("--exercise", "-e", action="append", metavar="NAME",
                   help="check only this exercise (repeatable; default: all)")
    _exercises_option(p)
    p.add_argument("--seed", type=_natural, default=None, metavar="N",
                   help="draw the inputs from seed N (default: the same fixed inputs on "
                        "every run); give each student or submission its own")
    p.add_argument("--timeout", type=_positive_float, default=None, metavar="SECONDS",
                   help="time limit per exercise (default: 60); an answer still running is "
                        "stopped and marked timeout")
    p.add_argument("--memory-limit", type=_natural, default=None, metavar="MB",
                   help="address-space cap of the process the answers run in, in MiB "
                        "(default: 4096; 0: no cap)")
    p.add_argument("--all", action="store_true",
                   help="check every entry of each gradient (default: a random sample of "
                        "large arrays)")
    p.add_argument("--format", choices=("text", "json", "gradescope"), default="text",
                   help="text (default), json, or Gradescope's results.json")
    p.add_argument("--output", "-o", metavar="PATH", default=None,
                   help="write the results to PATH (atomically) instead of stdout")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="for a failure, also print the gradient checker's table of worst entries")
    p.set_defaults(func=_cmd_check)


def _emit(text, path):
    if path is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    import os

    from ._io import atomic_write
    if os.path.isdir(path):
        raise UsageError(f"--output {path!r} is a directory; give a file name")
    data = text.encode("utf-8")
    try:
        atomic_write(path, lambda f: f.write(data))
    except OSError as exc:
        raise UsageError(f"cannot write --output {path!r}: {exc.strerror or exc}") from None


def _cmd_check(args):
    from pathlib import Path

    from .exercises import report
    from .exercises.checker import (ERROR, MISSING, ExerciseCodeError, ExerciseResult,
                                    check_answers, format_results)
    from .exercises.isolation import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT
    table = _exercise_table(args)
    names = _selected(args.exercise, table)
    error = None
    if not Path(args.answers).is_file():
        what = "is a directory" if Path(args.answers).is_dir() else "not found"
        error = f"answers file {args.answers!r} {what}"
        results = [ExerciseResult(n, MISSING, points=table[n].points,
                                  message="not checked: no answers file") for n in names]
    else:
        timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
        memory = DEFAULT_MEMORY_MB if args.memory_limit is None else args.memory_limit
        try:
            results, import_error = check_answers(args.answers, names, exercises=table,
                                                  seed=args.seed, timeout=timeout,
                                                  memory_mb=memory, all_entries=args.all)
        except ExerciseCodeError as exc:
            raise UsageError(str(exc)) from None
        if import_error:
            error = f"could not import {args.answers}: {import_error}"
            results = [ExerciseResult(r.name, ERROR, points=r.points, message=(
                "not checked: the answers file did not import")) for r in results]
    if args.format == "json":
        text = report.results_json(results, answers=args.answers, seed=args.seed, error=error,
                                   exercises_file=args.exercises)
    elif args.format == "gradescope":
        text = report.gradescope_json(results, error=error, seed=args.seed)
    elif not error:
        text = format_results(results, verbose=args.verbose)
        if args.seed is not None:
            text += f"\n(inputs drawn with --seed {args.seed})"
    else:
        text = None         # for a person, the one-line message says it all
    if text is not None:
        _emit(text, args.output)
    if error:
        print(f"npae check: error: {error}", file=sys.stderr)
        return 2
    return 0 if results and all(r.ok for r in results) else 1


def _add_exercises(sub):
    p = sub.add_parser("exercises", help="list the gradient exercises or write a file of stubs",
                       description="The gradient exercises (the lecture's, or a course "
                       "file's with --exercises FILE); see `npae check`.")
    esub = p.add_subparsers(dest="action", metavar="ACTION")
    lst = esub.add_parser("list", help="name, slide and title of every exercise")
    _exercises_option(lst)
    s = esub.add_parser("show", help="print one exercise's statement and signature")
    s.add_argument("name", metavar="NAME")
    _exercises_option(s)
    t = esub.add_parser("template", help="write FILE with a stub per exercise "
                        "(the statements as docstrings)")
    t.add_argument("file", metavar="FILE")
    t.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    t.add_argument("--exercise", "-e", action="append", metavar="NAME",
                   help="only this exercise (repeatable; default: all)")
    _exercises_option(t)
    p.set_defaults(func=_cmd_exercises, _parser=p)


def _cmd_exercises(args):
    if args.action is None:
        args._parser.print_help()
        return 2
    table = _exercise_table(args)
    if args.action == "list":
        width = max(len(n) for n in table)
        for ex in table.values():
            missing = ex.missing_requirements()
            note = f"  [unavailable: needs {', '.join(missing)}]" if missing else ""
            slide = f"  (slide: {ex.slide})" if ex.slide else ""
            points = f"  [{ex.points:g} points]" if ex.points != 1 else ""
            print(f"{ex.name:<{width}}  {ex.title}{slide}{points}{note}")
        return 0
    if args.action == "show":
        ex = table[_selected([args.name], table)[0]]
        print(f"{ex.signature}\n\n{ex.statement}")
        return 0
    from .exercises.template import write_template
    names = _selected(args.exercise, table)
    try:
        path = write_template(args.file, names, force=args.force, exercises=table,
                              course=args.exercises)
    except FileExistsError as exc:
        print(f"npae exercises: error: {exc}", file=sys.stderr)
        return 1
    course = f" --exercises {args.exercises}" if args.exercises else ""
    print(f"wrote {path}: fill in the functions, then run `npae check {path}{course}`")
    return 0


def _add_gradcheck(sub):
    p = sub.add_parser("gradcheck", help="check the gradient of any scalar function of an array",
                       description="Check grad(x) against finite differences of f(x) at a "
                       "random x of the given shape (float64). Without --grad, f may return "
                       "(value, gradient); otherwise its numerical gradient is printed.")
    p.add_argument("function", metavar="MODULE:FUNCTION",
                   help="f, e.g. answers.py:loss or mypackage.module:loss")
    p.add_argument("--shape", required=True, help="shape of x, e.g. 3,4")
    p.add_argument("--grad", metavar="MODULE:FUNCTION", help="the gradient of f to check")
    p.add_argument("--seed", type=int, default=0, help="seed of the random x (default 0)")
    p.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance (default 1e-6)")
    p.add_argument("--atol", type=float, default=0.0, help="absolute tolerance (default 0)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="n, to recognise a gradient off by the batch size")
    p.add_argument("--all", action="store_true",
                   help="check every entry (default: a random sample of large arrays)")
    p.set_defaults(func=_cmd_gradcheck)


def _cmd_gradcheck(args):
    from .exercises.adhoc import (UserCodeError, gradcheck_function, parse_shape,
                                  resolve_function)
    shape = parse_shape(args.shape)
    try:
        f = resolve_function(args.function)
        g = resolve_function(args.grad) if args.grad else None
        res = gradcheck_function(f, shape, g, seed=args.seed, rtol=args.rtol, atol=args.atol,
                                 batch_size=args.batch_size, f_label=args.function,
                                 grad_label=args.grad or "grad", all_entries=args.all)
    except UserCodeError as exc:
        print(f"npae gradcheck: {exc}", file=sys.stderr)
        return 1
    print(res.text)
    return 0 if res.ok else 1


def _add_demo(sub):
    p = sub.add_parser(
        "demo", help="train the lecture's conv autoencoder briefly and draw its figures",
        description="Train the lecture's convolutional autoencoder for a short run (under two "
                    "minutes on 2 cores) on the best data set present -- MNIST (--data or "
                    "NPAE_DATA), else Fashion-MNIST if installed, else the built-in synthetic "
                    "digits -- and write the lecture's figure (100 test samples beside their "
                    "reconstructions) and the loss curve.")
    p.add_argument("--data", default=None,
                   help="folder with MNIST files, a mnist.npz, or one of mnist, "
                        "fashion-mnist, synthetic (default: the best one found)")
    p.add_argument("--out", default="npae-demo", help="folder for the figures (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=5, help="epochs (default: %(default)s)")
    p.add_argument("--n-train", type=int, default=None,
                   help="use only the first N training images (default: all of them)")
    p.add_argument("--seed", type=int, default=0)
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
    p.add_argument("--data", default=None, help="as for `npae demo`")
    p.add_argument("--hidden", type=int, default=None,
                   help="hidden units of the dense models (default: 256; sparse: 196, the "
                        "UFLDL exercise's; vae: 400, PyTorch's example)")
    p.add_argument("--rho", type=float, default=0.1,
                   help="sparse: target mean activation (default: %(default)s, UFLDL's MNIST "
                        "setting)")
    p.add_argument("--beta", type=float, default=3.0,
                   help="sparse: weight of the KL penalty (default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=3e-3,
                   help="sparse: weight decay on W and W* (default: %(default)s, UFLDL's "
                        "MNIST setting; it is what makes the filters clean strokes)")
    p.add_argument("--iters", type=int, default=400,
                   help="sparse: L-BFGS iterations (default: %(default)s; --epochs is not "
                        "used)")
    p.add_argument("--latent", type=int, default=20,
                   help="vae: latent dimension (default: %(default)s); a second model with "
                        "2 latent units is trained for the manifold figure unless this is 2")
    p.add_argument("--nu", type=float, default=0.3,
                   help="denoising: masking probability (default: %(default)s)")
    p.add_argument("--lam", type=float, default=0.1,
                   help="contractive: weight of the Jacobian penalty (default: %(default)s)")
    p.add_argument("--out", default="npae-train", help="output folder (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=20, help="epochs (default: the lecture's 20)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (default: 0.001)")
    p.add_argument("--n-train", type=int, default=None, help="use only the first N images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.npz if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)


def _train_and_test_images(args, n_train, n_test, dtype="float32"):
    """The data set ``--data`` names (or the best one found), said aloud: train, test images."""
    from .data import find_dataset
    choice = find_dataset(args.data)
    print(f"data: {choice}")
    X, _ = choice.load("train", n=n_train, dtype=dtype, seed=args.seed)
    X_test, _ = choice.load("test", n=n_test, dtype=dtype, seed=args.seed)
    return X, X_test


def _conv_run(args, *, epochs, n_train, n_test, checkpoint=None, resume=False, batch_size=128,
              lr=1e-3):
    """Shared by demo and train: load, normalise as the lecture does, fit, draw, report."""
    import os
    import time

    from . import plot
    from .data import normalize
    from .models import ConvAutoencoder

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
    import os
    import time

    from . import plot
    from .models import Autoencoder, ContractiveAutoencoder, DenoisingAutoencoder

    X, X_test = _train_and_test_images(args, n_train, n_test)
    shape = X.shape[1:]
    X, X_test = X.reshape(len(X), -1), X_test.reshape(len(X_test), -1)
    kw = dict(n_epochs=epochs, batch_size=batch_size, learning_rate=lr, dtype="float32",
              random_state=args.seed, verbose=not args.quiet)
    hidden = args.hidden or 256
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
    import os
    import time

    from . import plot
    from .models import SparseAutoencoder

    if args.iters < 1:
        raise ValueError(f"--iters={args.iters} must be at least 1")
    X, X_test = _train_and_test_images(args, n_train or 10000, n_test, dtype="float64")
    shape = X.shape[1:]
    X, X_test = X.reshape(len(X), -1), X_test.reshape(len(X_test), -1)
    model = SparseAutoencoder(args.hidden or 196, rho=args.rho, beta=args.beta,
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
    import os
    import time

    from . import plot
    from .models import VariationalAutoencoder
    from .models.vae import interpolate, latent_manifold

    X, X_test = _train_and_test_images(args, n_train, n_test)
    shape = X.shape[1:]
    X, X_test = X.reshape(len(X), -1), X_test.reshape(len(X_test), -1)
    kw = dict(n_epochs=epochs, batch_size=batch_size, learning_rate=lr, dtype="float32",
              random_state=args.seed, verbose=not args.quiet)
    model = VariationalAutoencoder(args.hidden or 400, args.latent, **kw)
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    model.fit(X, X_val=X_test, checkpoint=checkpoint, resume=resume)
    seconds = time.perf_counter() - start
    print(f"trained {epochs} epoch(s) on {len(X)} images in {seconds:.1f} s; test negative "
          f"ELBO {model.history_['val_loss'][-1]:.2f} nats per image")
    model2 = model
    if args.latent != 2:
        model2 = VariationalAutoencoder(args.hidden or 400, 2, **kw)
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


def _cmd_demo(args):
    if args.epochs < 1 or (args.n_train is not None and args.n_train < 1):
        raise ValueError("--epochs and --n-train must be at least 1")
    _conv_run(args, epochs=args.epochs, n_train=args.n_train, n_test=1000)
    return 0


def _cmd_train(args):
    """Exit 2, one line on stderr, for what the user must fix before a run can start or go
    on: an --out that is a file, a damaged checkpoint (a usage error, like argparse's)."""
    import os

    from .exceptions import FileFormatError
    if args.epochs < 1:
        raise ValueError(f"--epochs={args.epochs} must be at least 1")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        return _usage_error(f"--out {args.out} is an existing file, not a folder; name a "
                            "folder (it is created if missing) for the checkpoint, model and "
                            "figures")
    checkpoint = os.path.join(args.out, "checkpoint.npz")
    if os.path.exists(checkpoint) and not args.resume:
        raise ValueError(f"{checkpoint} exists: pass --resume to continue that run, or choose "
                         "another --out (the old run is never overwritten)")
    run = {"conv": _conv_run, "sparse": _sparse_run, "vae": _vae_run}.get(args.model,
                                                                         _dense_run)
    try:
        if args.resume and os.path.exists(checkpoint):
            from ._io import read_npz
            read_npz(checkpoint, "a checkpoint")   # a damaged file: say so before loading data
        model = run(args, epochs=args.epochs, n_train=args.n_train, n_test=None,
                    checkpoint=checkpoint, resume=args.resume, batch_size=args.batch_size,
                    lr=args.lr)
    except FileFormatError as exc:
        return _usage_error(f"{exc} (delete it to start afresh, or choose another --out)")
    path = model.save(os.path.join(args.out, "model.npz"))
    print(f"saved the trained model to {path} (load it with npae.load)")
    return 0


def _usage_error(message):
    print(f"npae train: error: {message}", file=sys.stderr)
    return 2


def _add_pca(sub):
    p = sub.add_parser(
        "pca", help="PCA of an image data set: eigen-images, scree plot, k-term reconstructions",
        description="Fit PCA (the optimal linear autoencoder of the lecture's 'Totally Linear "
                    "Case') to the training images and report how much each number k of "
                    "components explains and reconstructs on the test images.")
    p.add_argument("--data", default=None, help="as for `npae demo`")
    p.add_argument("-k", "--n-components", type=int, default=50,
                   help="components to keep (default: %(default)s)")
    p.add_argument("--variance", type=float, default=None, metavar="F",
                   help="instead of -k: keep the smallest number of components that explains "
                        "more than the fraction F of the variance, e.g. 0.95 (reports the k kept)")
    p.add_argument("--n-train", type=int, default=10000,
                   help="training images used (default: %(default)s)")
    p.add_argument("--out", default="npae-pca", help="folder for the figures "
                   "(default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic digits")
    p.set_defaults(func=_cmd_pca)


def _cmd_pca(args):
    import os

    import numpy as np

    from . import plot
    from .models import PCA

    if args.n_train < 2:
        raise ValueError(f"--n-train={args.n_train} must be at least 2")
    if args.variance is not None and not 0 < args.variance < 1:
        raise ValueError(f"--variance={args.variance} must lie in (0, 1): the fraction of the "
                         "variance to keep, e.g. --variance 0.95")
    if args.variance is None and args.n_components < 1:
        raise ValueError(f"--n-components={args.n_components}: n_components must be at least 1 "
                         "(or pass --variance F to choose it from the explained variance)")
    X, X_test = _train_and_test_images(args, args.n_train, 1000, dtype="float64")
    rows, rows_test = X.reshape(len(X), -1), X_test.reshape(len(X_test), -1)
    # the lecture's closed forms (exact, deterministic); PCA checks k against the data
    pca = PCA(args.variance or args.n_components, solver="auto").fit(rows)
    ratio = np.cumsum(pca.explained_variance_ratio_)
    if args.variance is not None:
        print(f"kept k = {pca.n_components_} components: they explain {ratio[-1]:.4f} of the "
              f"variance (the fewest that explain more than --variance {args.variance})")
    ks = [k for k in (1, 2, 5, 10, 20, 50, 100, 200) if k <= pca.n_components_]
    if pca.n_components_ not in ks:
        ks.append(pca.n_components_)
    print(f"PCA of {len(rows)} images of {rows.shape[1]} pixels, k = {pca.n_components_} "
          f"(solver {pca.solver_})")
    print(f"{'k':>5s} {'explained variance':>19s} {'test MSE per pixel':>19s}")
    codes = pca.transform(rows_test)
    for k in ks:
        recon = codes[:, :k] @ pca.components_[:k] + pca.mean_
        mse = float(np.mean((recon - rows_test) ** 2))
        print(f"{k:5d} {ratio[k - 1]:19.3f} {mse:19.5f}")
    os.makedirs(args.out, exist_ok=True)
    paths = [os.path.join(args.out, f) for f in ("components.png", "scree.png",
                                                   "reconstructions.png")]
    plot.image_grid(pca.components_[:min(50, pca.n_components_)], image_shape=X.shape[1:],
                    scale="each", title="principal components (eigen-images)", path=paths[0])
    plot.scree_plot(pca, path=paths[1])
    plot.pca_reconstructions(pca, rows_test, ks=ks, image_shape=X.shape[1:], path=paths[2])
    print("wrote " + ", ".join(paths))
    return 0


def _add_bench(sub):
    p = sub.add_parser(
        "bench", help="how fast this machine trains the lecture's models (estimates)",
        description="Time a few hundred training steps of the lecture's conv autoencoder and "
                    "of the dense autoencoders on synthetic digits, scaled to an epoch of "
                    "60,000 images, and each fast path next to its plain-NumPy twin. "
                    "Comparisons with PyTorch and scikit-learn: the repository's benchmarks/.")
    p.add_argument("--steps", type=int, default=100,
                   help="mini-batches per timed run (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed runs per model; the best is reported (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for BLAS and Numba (default: as configured)")
    p.add_argument("--no-kernels", action="store_true", help="skip the kernel table")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args):
    from .bench import run
    if args.repeats < 1:
        raise ValueError(f"--repeats={args.repeats} must be at least 1")
    if args.threads is not None:
        import numba
        if not 1 <= args.threads <= numba.config.NUMBA_NUM_THREADS:
            raise ValueError(f"--threads={args.threads} must be between 1 and "
                             f"{numba.config.NUMBA_NUM_THREADS} (this machine's)")
        numba.set_num_threads(args.threads)
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            print("note: threadpoolctl is not installed, so BLAS keeps its own thread count "
                  "(set OPENBLAS_NUM_THREADS before starting instead)")
        else:
            threadpool_limits(args.threads)
    run(steps=args.steps, repeats=args.repeats, kernels=not args.no_kernels)
    return 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"npae {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, TypeError) as exc:
        print(f"npae {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
