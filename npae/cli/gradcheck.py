"""``npae gradcheck MODULE:FUNCTION --shape 3,4 [--grad MODULE:FUNCTION]``: any function.

For a student's own scalar function f(x) of one array, with or without a gradient:

* with ``--grad``: check grad(x) against finite differences of f (npae.gradcheck's report);
* without it, if f returns a pair (value, gradient) (scipy's ``jac=True`` convention): check
  the pair's gradient;
* otherwise: print f(x) and its numerical gradient.

MODULE is a path to a ``.py`` file (``answers.py:f``) or an importable module
(``mypackage.losses:f``).
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..gradcheck import check_gradient, numerical_gradient
from ..grading.checker import load_answers
from ..grading.protocol import describe_exception
from ..exceptions import UserCodeError

__all__ = ["resolve_function", "parse_shape", "gradcheck_function", "AdhocResult",
           "UserCodeError"]


def parse_shape(text):
    """"3,4" or "3x4" or "(3, 4)" -> (3, 4); every size a positive int."""
    raw = str(text).strip().strip("()[]").replace("x", ",").replace(" ", "")
    parts = [p for p in raw.split(",") if p != ""]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"--shape {text!r} is not a list of integers; write e.g. --shape 3,4") \
            from None
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"--shape {text!r}: give one or more positive sizes, e.g. --shape 3,4")
    return shape


def resolve_function(spec):
    """"MODULE:FUNCTION" -> the function. MODULE: a .py path or a dotted module name."""
    module_part, sep, func_name = str(spec).rpartition(":")
    if not sep or not module_part or not func_name:
        raise ValueError(f"{spec!r} is not MODULE:FUNCTION; write e.g. answers.py:loss or "
                         "mypackage.mymodule:loss")
    path = Path(module_part)
    if module_part.endswith(".py") or path.is_file():
        module, error = load_answers(path)
        if module is None:
            raise UserCodeError(f"could not import {module_part}: {error}")
    else:
        try:
            module = importlib.import_module(module_part)
        except ModuleNotFoundError as exc:
            if exc.name and module_part.startswith(exc.name):
                raise ValueError(f"no module named {module_part!r} (give a path ending in .py "
                                 "or an importable module name)") from None
            raise UserCodeError(f"could not import {module_part}: "
                                f"{describe_exception(exc)}") from None
        except Exception as exc:
            raise UserCodeError(f"could not import {module_part}: "
                                f"{describe_exception(exc)}") from None
    f = getattr(module, func_name, None)
    if f is None or not callable(f):
        what = "no function" if f is None else f"{type(f).__name__}, not a function,"
        raise ValueError(f"{what} {func_name!r} in {module_part}")
    return f


def _guarded(f, label):
    """f with any exception it raises turned into a UserCodeError naming ``label``."""
    path = getattr(getattr(f, "__code__", None), "co_filename", None)

    def call(x):
        try:
            return f(x)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            raise UserCodeError(f"{label} raised {describe_exception(exc, path)}") from None
    return call


@dataclass
class AdhocResult:
    ok: bool
    text: str


def gradcheck_function(f, shape, grad=None, seed=0, rtol=1e-6, atol=0.0, batch_size=None,
                       f_label="f", grad_label="grad", all_entries=False):
    """Check ``grad`` (or f's own (value, gradient) pair) at a random x of ``shape``.

    x ~ N(0, 1) from ``seed``. Returns an AdhocResult (``ok`` False only for a failed
    check); user code that raises becomes a UserCodeError. ``all_entries`` checks every
    entry of x instead of a random sample of a large x.
    """
    x = np.random.default_rng(seed).standard_normal(shape)
    call_f = _guarded(f, f_label)
    head = f"x: shape {shape}, drawn from N(0, 1) with seed {seed}"
    if grad is not None:
        head += f"\nchecking {grad_label}(x) against finite differences of {f_label}(x)"
    value = call_f(x.copy())
    pair = grad is None and isinstance(value, tuple) and len(value) == 2
    if grad is None and not pair:
        fx = _scalar(value, f_label)
        num = numerical_gradient(lambda v: _scalar(call_f(v), f_label), x.copy())
        with np.printoptions(precision=6, suppress=False, threshold=200):
            return AdhocResult(True, f"{head}\n{f_label}(x) = {fx:.10g}\nnumerical gradient "
                                     f"(central differences, no --grad given):\n{num}")
    if pair:
        fun = lambda v: _scalar(call_f(v)[0], f_label)  # noqa: E731
        analytic = call_f(x.copy())[1]
        grad_label = f"{f_label}(x)[1]"
        head += f"\nchecking the gradient {f_label} returns (its second value)"
    else:
        fun = lambda v: _scalar(call_f(v), f_label)  # noqa: E731
        analytic = _guarded(grad, grad_label)(x.copy())
    if analytic is None:
        raise UserCodeError(f"{grad_label} returned None (a missing `return`?)")
    try:
        a = np.array(analytic, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserCodeError(f"{grad_label} returned {type(analytic).__name__}, not an array "
                            "of numbers") from None
    every = {"max_entries": None} if all_entries else {}
    res = check_gradient(fun, a, x, rtol=rtol, atol=atol, batch_size=batch_size,
                         name="x", **every)
    return AdhocResult(bool(res.ok), f"{head}\n{res}")


def _scalar(value, label):
    arr = np.asarray(value)
    if arr.size != 1 or arr.dtype.kind not in "biuf":
        raise UserCodeError(f"{label} must return a real scalar (the objective), got "
                            f"{type(value).__name__}" + (f" of shape {arr.shape}"
                                                         if arr.ndim else ""))
    return float(arr.reshape(()))


# -- the command ---------------------------------------------------------------------------
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
