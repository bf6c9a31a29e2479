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

import importlib.util
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..gradcheck import check_gradient, numerical_gradient
from ..gradcheck.verdict import check_tolerances
from .._memory import check_fits_in_memory
from ..exceptions import (AnswerCrash, AnswersImportError, AnswerTimeout, UsageError,
                          UserCodeError)
from ..grading import protocol
from ..grading.isolation import DEFAULT_TIMEOUT, AnswerProcess
from .._tracebacks import describe_exception

__all__ = ["split_spec", "parse_shape", "gradcheck_function", "AdhocResult", "UserCodeError"]


def parse_shape(text):
    """"3,4" or "3x4" or "(3, 4)" -> (3, 4); every size a positive int, and an x of that
    shape must fit in memory (UsageError otherwise)."""
    raw = str(text).strip().strip("()[]").replace("x", ",").replace(" ", "")
    parts = [p for p in raw.split(",") if p != ""]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise UsageError(f"--shape {text!r} is not a list of integers; write e.g. --shape 3,4") \
            from None
    if not shape or any(s < 1 for s in shape):
        raise UsageError(f"--shape {text!r}: give one or more positive sizes, e.g. --shape 3,4")
    check_fits_in_memory(math.prod(shape), 8, what=f"--shape {text} (the array x)",
                         error=UsageError)
    return shape


def split_spec(spec, option="MODULE:FUNCTION"):
    """"MODULE:FUNCTION" -> ({"path": P} or {"module": M}, FUNCTION), without importing it;
    a UsageError if MODULE is neither a .py file nor an installed module."""
    module_part, sep, func_name = str(spec).rpartition(":")
    if not sep or not module_part or not func_name:
        raise UsageError(f"{option} {spec!r} is not MODULE:FUNCTION; write e.g. answers.py:loss "
                         "or mypackage.mymodule:loss")
    path = Path(module_part)
    if module_part.endswith(".py") or path.is_file():
        if not path.is_file():
            raise UsageError(f"{option} {spec!r}: file {module_part!r} not found"
                             + (" (it is a directory)" if path.is_dir() else ""))
        return {"path": str(path.resolve())}, func_name
    top = module_part.split(".")[0]
    if not top.isidentifier() or importlib.util.find_spec(top) is None:
        raise UsageError(f"{option} {spec!r}: no module named {module_part!r} (give a path "
                         "ending in .py or an importable module name)")
    return {"module": module_part}, func_name


class _Remote:
    """``f(x)`` run in an answer process, under one deadline shared by every call."""

    def __init__(self, proc, name, label, spec, deadline):
        self.proc, self.name, self.label, self.spec = proc, name, label, spec
        self.deadline = deadline

    def __call__(self, x):
        header, arrays = self.proc.evaluate(self.name, x, self.deadline)
        kind = header.get("kind")
        if kind == protocol.MISSING:
            raise UsageError(f"no function {self.name!r} in {self.spec}")
        if kind == protocol.NOT_CALLABLE:
            raise UsageError(f"{self.name!r} in {self.spec} is a {header.get('type')}, "
                             "not a function")
        try:
            if kind not in (protocol.RESULTS, protocol.PAIR):
                raise protocol.ProtocolError(kind)
            values = [self._value(i, c, arrays) for i, c in enumerate(header["cases"])]
        except (KeyError, TypeError, protocol.ProtocolError):
            raise AnswerCrash("its reply was malformed") from None
        return tuple(values) if kind == protocol.PAIR else values[0]

    def _value(self, i, entry, arrays):
        kind, source, message = protocol.parse_case(entry)
        if kind == protocol.ARRAY:
            return arrays[protocol.output_key(i)]
        if kind == protocol.NONE:
            return None
        if kind in (protocol.TYPE, protocol.OBJECT):
            raise UserCodeError(f"{self.label} returned {source or 'an object'}, not an array "
                                "of numbers")
        if kind == protocol.EXIT:
            raise UserCodeError(f"{self.label} called sys.exit({message}): a function to check "
                                "must return its value, not end the program")
        if kind == protocol.MEMORY:
            raise UserCodeError(f"{self.label} ran out of memory (MemoryError)")
        if kind == protocol.NOT_IMPLEMENTED:
            raise UserCodeError(f"{self.label} raised NotImplementedError")
        raise UserCodeError(f"{self.label} raised {message}")


def _guarded(f, label):
    """f with any exception it raises turned into a UserCodeError naming ``label``."""
    path = getattr(getattr(f, "__code__", None), "co_filename", None)

    def call(x):
        try:
            return f(x)
        except (KeyboardInterrupt, UserCodeError, UsageError, AnswerTimeout, AnswerCrash):
            raise
        except SystemExit as exc:
            raise UserCodeError(f"{label} called sys.exit({exc.code!r}): a function to check "
                                "must return its value, not end the program") from None
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
    check). f and grad run in this process; whatever they do wrong (raise, call sys.exit,
    return a complex or non-numeric gradient) becomes a UserCodeError naming them.
    ``all_entries`` checks every entry of x instead of a random sample of a large x.
    """
    check_tolerances(rtol, atol)  # before f runs: a bad tolerance costs no call of it
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
        a = np.asarray(analytic)
    except (TypeError, ValueError):
        a = np.asarray(None)
    if a.dtype.kind == "c":
        raise UserCodeError(f"{grad_label} returned a complex ({a.dtype}) gradient: the "
                            "gradient of a real objective is real, and its imaginary part is "
                            "not dropped (where does a complex number come from: np.sqrt of "
                            "a negative, np.fft, 1j?)")
    if a.dtype.kind not in "biuf":
        raise UserCodeError(f"{grad_label} returned {type(analytic).__name__}, not an array "
                            "of numbers")
    a = a.astype(np.float64)
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
    from ._args import natural, positive_int, seconds, tolerance
    p = sub.add_parser("gradcheck", help="check the gradient of any scalar function of an array",
                       description="Check grad(x) against finite differences of f(x) at a "
                       "random x of the given shape (float64). Without --grad, f may return "
                       "(value, gradient); otherwise its numerical gradient is printed. f and "
                       "grad run in a process of their own, stopped after --timeout seconds. "
                       "Exit status: 0 ok, 1 a failed check or a function that failed, 2 "
                       "misuse.")
    p.add_argument("function", metavar="MODULE:FUNCTION",
                   help="f, e.g. answers.py:loss or mypackage.module:loss")
    p.add_argument("--shape", required=True, help="shape of x, e.g. 3,4")
    p.add_argument("--grad", metavar="MODULE:FUNCTION", help="the gradient of f to check")
    p.add_argument("--seed", type=natural, default=0, help="seed of the random x (default 0)")
    p.add_argument("--rtol", type=tolerance, default=1e-6,
                   help="relative tolerance, finite and >= 0 (default 1e-6)")
    p.add_argument("--atol", type=tolerance, default=0.0,
                   help="absolute tolerance, finite and >= 0 (default 0)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="n, to recognise a gradient off by the batch size")
    p.add_argument("--timeout", type=seconds, default=DEFAULT_TIMEOUT,
                   metavar="SECONDS", help="time limit of the whole check, the import of the "
                   f"functions included (default: {DEFAULT_TIMEOUT:g})")
    p.add_argument("--all", action="store_true",
                   help="check every entry (default: a random sample of large arrays)")
    p.set_defaults(func=_cmd_gradcheck)


def _cmd_gradcheck(args):
    shape = parse_shape(args.shape)
    f_target, f_name = split_spec(args.function)
    g_target, g_name = split_spec(args.grad, "--grad") if args.grad else (None, None)
    deadline = time.monotonic() + args.timeout
    procs = {}

    def remote(target, name, label, spec):
        key = tuple(target.items())
        if key not in procs:
            left = max(deadline - time.monotonic(), 0.001)
            try:
                procs[key] = AnswerProcess(timeout=left, **target).start()
            except AnswersImportError as exc:
                raise UserCodeError(f"could not import {spec.rpartition(':')[0]}: {exc}") \
                    from None
        return _Remote(procs[key], name, label, spec.rpartition(":")[0], deadline)
    try:
        f = remote(f_target, f_name, args.function, args.function)
        g = remote(g_target, g_name, args.grad, args.grad) if args.grad else None
        res = gradcheck_function(f, shape, g, seed=args.seed, rtol=args.rtol, atol=args.atol,
                                 batch_size=args.batch_size, f_label=args.function,
                                 grad_label=args.grad or "grad", all_entries=args.all)
    except UserCodeError as exc:
        print(f"npae gradcheck: {exc}", file=sys.stderr)
        return 1
    except AnswerTimeout:
        print(f"npae gradcheck: still running after the time limit of {args.timeout:g} s "
              "(--timeout), stopped: an endless loop, or far too much work?", file=sys.stderr)
        return 1
    except AnswerCrash as exc:
        print(f"npae gradcheck: the process running the functions ended: {exc}",
              file=sys.stderr)
        return 1
    finally:
        for proc in procs.values():
            proc.close()
    print(res.text)
    return 0 if res.ok else 1
