"""The homework checker: import a student's file, check each exercise's function.

Every exercise is checked on all of its generated inputs, two ways:

* against finite differences of the exercise's objective, by ``npae.gradcheck`` (float64;
  ``check_terms`` where the exercise names the terms of its gradient, so a missing term is
  named), which also supplies the hint when the answer is wrong;
* against the reference, npae's own implementation (a gradient can only pass if it agrees
  with the code npae trains with, to ~1e-8 relative).

Nothing a student's file does -- fail to import, lack a function, raise, return the wrong
shape, None or NaN -- escapes as a traceback of npae: it becomes a message on that
exercise's line.
"""
from __future__ import annotations

import difflib
import importlib.util
import inspect
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..gradcheck import check_gradient, check_terms
from .registry import EXERCISES, get_exercise

__all__ = ["ExerciseResult", "load_answers", "check_exercise", "check_answers",
           "format_results", "describe_exception"]

PASS, FAIL, MISSING, ERROR, SKIP = "PASS", "FAIL", "MISSING", "ERROR", "SKIP"

#: agreement with npae's reference: |a - r| <= REF_RTOL * max|r| entry-wise. The reference
#: and a correct answer differ only by the order of floating-point operations (~1e-15).
REF_RTOL = 1e-8


@dataclass
class ExerciseResult:
    """The verdict on one exercise. ``ok`` only for PASS."""
    name: str
    status: str
    max_rel_error: float | None = None
    message: str = ""
    hint: str = ""
    n_cases: int = 0
    report: str = ""          # the gradient checker's full report for the failing case
    ref_error: float | None = None   # max |answer - npae's reference| / max |reference|
    notes: list = field(default_factory=list)

    @property
    def ok(self):
        return self.status == PASS

    def line(self):
        """One line: status, name, worst relative error (and the message)."""
        parts = [f"{self.status:<7} {self.name:<28}"]
        if self.status == PASS:
            parts.append(f"max rel. error {self.max_rel_error:.1e} vs finite differences, "
                         f"{self.ref_error:.1e} vs npae ({self.n_cases} input sets)")
        elif self.max_rel_error is not None:
            parts.append(f"max rel. error {self.max_rel_error:.1e}")
        if self.message:
            parts.append(self.message)
        return "  ".join(parts)

    def lines(self, verbose=False):
        out = [self.line()]
        if self.hint:
            out.append(f"        hint: {self.hint}")
        out.extend(f"        note: {n}" for n in self.notes)
        if verbose and self.report:
            out.extend("        " + ln for ln in self.report.splitlines())
        return out


# -------------------------------------------------------------------------------------------
# the student's file
# -------------------------------------------------------------------------------------------
def describe_exception(exc, path=None):
    """``Type: message (file.py, line N, in f)`` naming the frame in the student's code."""
    if isinstance(exc, SyntaxError):
        where = f"line {exc.lineno}" if exc.lineno else "unknown line"
        text = (exc.text or "").strip()
        return f"SyntaxError: {exc.msg} ({Path(exc.filename or path or '?').name}, {where})" + (
            f": {text}" if text else "")
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if path is not None and _same_file(f.filename, path)]
    frame = mine[-1] if mine else (frames[-1] if frames else None)
    where = (f" ({Path(frame.filename).name}, line {frame.lineno}, in {frame.name})"
             if frame is not None else "")
    msg = str(exc)
    return f"{type(exc).__name__}{': ' + msg if msg else ''}{where}"


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def load_answers(path):
    """Import the file at ``path`` as a fresh module; return (module, None) or (None, why).

    The file's directory is on ``sys.path`` while it runs, so it may import its neighbours.
    Its ``if __name__ == "__main__":`` block does not run. A missing file raises
    FileNotFoundError; any failure inside the file (including ``sys.exit``) is returned as
    a message.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"answers file {str(path)!r} not found"
                                + (" (it is a directory)" if path.is_dir() else ""))
    name = f"_npae_answers_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        return None, f"cannot import {path.name}: give a Python file (.py)"
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:
        raise
    except SystemExit as exc:
        sys.modules.pop(name, None)
        return None, f"the file called sys.exit({exc.code!r}) while being imported"
    except BaseException as exc:
        sys.modules.pop(name, None)
        return None, describe_exception(exc, path)
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:
            pass
    return module, None


def _find_function(module, ex):
    """(function, None) or (None, ExerciseResult explaining why not)."""
    f = getattr(module, ex.name, None)
    if f is None:
        names = [k for k, v in vars(module).items()
                 if callable(v) and not k.startswith("_") and k not in EXERCISES]
        close = difflib.get_close_matches(ex.name, names, n=1)
        also = (f"; is {close[0]!r} meant to be {ex.name!r}? (names must match exactly)"
                if close else "")
        return None, ExerciseResult(ex.name, MISSING, message=(
            f"no function {ex.name!r} in the file (expected `{ex.signature}`){also}"))
    if not callable(f):
        return None, ExerciseResult(ex.name, MISSING, message=(
            f"{ex.name!r} is a {type(f).__name__}, not a function (expected `{ex.signature}`)"))
    try:
        inspect.signature(f).bind(*ex.args)
    except TypeError:
        try:
            theirs = f"def {ex.name}{inspect.signature(f)}:"
        except (TypeError, ValueError):
            theirs = "another signature"
        return None, ExerciseResult(ex.name, ERROR, message=(
            f"wrong signature: the checker calls `{ex.signature}` (positionally, in that "
            f"order), the file has `{theirs}`"))
    except ValueError:  # builtins without a signature: just try calling it
        pass
    return f, None


# -------------------------------------------------------------------------------------------
# checking one function
# -------------------------------------------------------------------------------------------
def _copy(inp):
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in inp.items()}


def _describe_case(ex, i, inp):
    shapes = ", ".join(f"{k} {tuple(v.shape)}" if isinstance(v, np.ndarray) else f"{k}={v}"
                       for k, v in inp.items() if k in ex.args)
    return f"input set {i + 1} ({shapes})"


def _as_gradient(out, ex, inp):
    """The student's return value as a float64 array, or a message saying what is wrong."""
    if out is None:
        return None, "returned None (a missing `return`?)"
    kind = getattr(getattr(out, "dtype", None), "kind", None)
    if kind == "f" and out.dtype.itemsize < 8:
        return None, (f"returned a {out.dtype} array: the inputs are float64 and the check "
                      f"needs float64 answers ({out.dtype} keeps ~7 digits, too few to tell a "
                      "right gradient from a slightly wrong one); is there an astype or a "
                      f"np.{out.dtype} in your code?")
    try:
        a = np.array(out, dtype=np.float64)
    except (TypeError, ValueError):
        return None, (f"returned {type(out).__name__}, not an array of numbers of "
                      f"{ex.wrt}'s shape {tuple(np.shape(inp[ex.wrt]))}")
    if not np.isfinite(a).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0]) if a.ndim else ()
        return None, (f"returned non-finite values (first at index {bad}: "
                      f"{a[bad] if a.ndim else a}); a log(0) or a division by 0?")
    return a, None


def _reference_error(a, r):
    scale = float(np.abs(r).max()) if r.size else 0.0
    diff = np.abs(a - r)
    return float(diff.max() / scale) if scale > 0 else float(diff.max())


def check_exercise(ex, func):
    """Check ``func`` (the student's answer to exercise ``ex``) on all of ex's inputs."""
    if isinstance(ex, str):
        ex = get_exercise(ex)
    missing = ex.missing_requirements()
    if missing:
        return ExerciseResult(ex.name, SKIP, message=(
            f"needs {', '.join(missing)}, which this installation of npae does not have"))
    cases = ex.generate()
    worst, worst_ref = 0.0, 0.0
    for i, inp in enumerate(cases):
        where = _describe_case(ex, i, inp)
        args = [_copy(inp)[name] for name in ex.args]
        try:
            out = func(*args)
        except NotImplementedError:
            return ExerciseResult(ex.name, MISSING, n_cases=len(cases), message=(
                "not implemented yet (the function raises NotImplementedError)"))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            path = getattr(getattr(func, "__code__", None), "co_filename", None)
            return ExerciseResult(ex.name, ERROR, n_cases=len(cases), message=(
                f"raised {describe_exception(exc, path)} on {where}"))
        a, why = _as_gradient(out, ex, inp)
        if a is None:
            return ExerciseResult(ex.name, FAIL, n_cases=len(cases), message=f"{why} on {where}")
        res, hint, report = _check_case(ex, inp, a)
        if not res.ok:
            rel = res.max_rel_error if np.isfinite(res.max_rel_error) else None
            return ExerciseResult(ex.name, FAIL, max_rel_error=rel, n_cases=len(cases),
                                  message=f"wrong on {where}", hint=hint, report=report)
        worst = max(worst, res.max_rel_error)
        r = np.asarray(ex.reference(_copy(inp)), dtype=np.float64)
        ref_err = _reference_error(a, r)
        if ref_err > REF_RTOL:
            return ExerciseResult(ex.name, FAIL, max_rel_error=ref_err, n_cases=len(cases),
                                  message=(f"differs from npae's reference on {where}, by "
                                           f"{ref_err:.1e} relative to its largest entry, "
                                           "although within the accuracy of finite "
                                           "differences: a small missing or extra term?"))
        worst_ref = max(worst_ref, ref_err)
    return ExerciseResult(ex.name, PASS, max_rel_error=worst, ref_error=worst_ref,
                          n_cases=len(cases))


def _check_case(ex, inp, a):
    """(result with ok/max_rel_error, hint, full report) from npae.gradcheck.

    The verdict is ``check_gradient`` on the whole objective. When it fails and the
    exercise names the terms of its gradient, ``check_terms`` is asked too and its hint is
    given: it names a missing term or a term with the wrong factor where the terms explain
    the answer, and otherwise (a factor common to all terms, no pattern) says what
    ``check_gradient`` says.
    """
    x = np.array(inp[ex.wrt], dtype=np.float64)
    n = ex.batch_size(inp)
    others = {k: v for k, v in inp.items() if k != ex.wrt}
    overlap = ex.overlap(inp) if ex.overlap is not None else None
    res = check_gradient(lambda v: ex.objective({**others, ex.wrt: v}), a, x, batch_size=n,
                         overlap=overlap, name=ex.wrt)
    if res.ok or ex.terms is None or a.shape != x.shape:
        return res, res.hint, str(res)
    rep = check_terms(ex.terms(inp), x.copy(), grad=a, batch_size=n, overlap=overlap,
                      name=ex.wrt)
    if rep.hint:  # empty only if the terms' sum passes at the edge of the tolerance
        return res, rep.hint, str(rep)
    return res, res.hint, str(res)


# -------------------------------------------------------------------------------------------
# checking a file
# -------------------------------------------------------------------------------------------
def check_answers(path, names=None):
    """Check the functions in the file at ``path``; return (results, import_error or None).

    ``names`` selects exercises (default: all of them, in the lecture's order).
    """
    exercises = [get_exercise(n) for n in dict.fromkeys(names or EXERCISES)]
    module, error = load_answers(path)
    if module is None:
        return [ExerciseResult(ex.name, ERROR, message="not checked: the file did not import")
                for ex in exercises], error
    results = []
    for ex in exercises:
        func, bad = _find_function(module, ex)
        results.append(bad if bad is not None else check_exercise(ex, func))
    return results, None


def format_results(results, import_error=None, path=None, verbose=False):
    lines = []
    if import_error:
        lines.append(f"could not import {path or 'the answers file'}: {import_error}")
    for r in results:
        lines.extend(r.lines(verbose=verbose))
    counts = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    lines.append(", ".join(f"{v} {k.lower()}" for k, v in counts.items())
                 + f" ({len(results)} exercise{'s' if len(results) != 1 else ''})")
    return "\n".join(lines)
