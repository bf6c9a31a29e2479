"""The homework checker: run a student's file, check each exercise's function.

The student's file is imported and called in a separate process (``isolation``): this
process only sends it inputs and receives arrays back, so nothing the file does -- patch
numpy or npae, loop forever, exit, crash -- can change a verdict. Every exercise is checked
on all of its generated inputs (``--seed`` chooses them), here, two ways:

* against finite differences of the exercise's objective, by ``npae.gradcheck`` (float64;
  ``check_terms`` where the exercise names the terms of its gradient, so a missing term is
  named), which also supplies the hint when the answer is wrong -- unless the answer equals
  one of the exercise's catalogued ``mistakes``, whose own hint is then given;
* against the reference, the course's own implementation (a gradient can only pass if it
  agrees with the code npae trains with, to ~1e-8 relative).

An answer must be a real float64 array of the argument's shape, finite, and must leave its
inputs unchanged. Nothing a student's file does -- fail to import, lack a function, raise,
return the wrong thing -- escapes as a traceback of npae: it becomes a status and a message
on that exercise's line.
"""
from __future__ import annotations

import difflib
import importlib.util
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..gradcheck import check_gradient, check_terms
from ..gradcheck.answers import describe_answer_type
from .isolation import (DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, AnswerCrash, AnswerProcess,
                        AnswersImportError, AnswerTimeout)
from .registry import EXERCISES, get_exercise
from ..exceptions import ExerciseCodeError

__all__ = ["ExerciseResult", "load_answers", "check_exercise", "check_answers",
           "format_results", "describe_exception", "STATUS_NAMES", "ExerciseCodeError"]

PASS, FAIL, MISSING, ERROR, SKIP = "PASS", "FAIL", "MISSING", "ERROR", "SKIP"
TIMEOUT, CRASHED = "TIMEOUT", "CRASHED"

#: the statuses of the machine-readable results (``--format json``); an exercise this
#: installation cannot check (SKIP) is an error there
STATUS_NAMES = {PASS: "passed", FAIL: "wrong", ERROR: "error", MISSING: "missing",
                TIMEOUT: "timeout", CRASHED: "crashed", SKIP: "error"}

#: agreement with npae's reference: |a - r| <= REF_RTOL * max|r| entry-wise. The reference
#: and a correct answer differ only by the order of floating-point operations (~1e-15).
REF_RTOL = 1e-8
#: a wrong answer "is" a catalogued mistake when |a - m| <= MISTAKE_RTOL * max|m| entry-wise
#: (m the mistake's gradient on the same inputs): rounding apart, the same formula
MISTAKE_RTOL = 1e-6


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
    points: float = 1

    @property
    def ok(self):
        return self.status == PASS

    @property
    def status_name(self):
        """passed, wrong, error, missing, timeout or crashed."""
        return STATUS_NAMES[self.status]

    def line(self):
        """One line: status, name, worst relative error (and the message)."""
        parts = [f"{self.status:<7} {self.name:<28}"]
        if self.status == PASS:
            parts.append(f"max rel. error {self.max_rel_error:.1e} vs finite differences, "
                         f"{self.ref_error:.1e} vs the reference ({self.n_cases} input sets)")
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

    def to_dict(self):
        """The exercise's entry of ``--format json``."""
        def num(v):
            return float(v) if v is not None and np.isfinite(v) else None
        return {"name": self.name, "status": self.status_name, "message": self.message,
                "hint": self.hint, "max_rel_error": num(self.max_rel_error),
                "ref_error": num(self.ref_error), "n_cases": self.n_cases,
                "notes": list(self.notes), "points": float(self.points),
                "score": float(self.points) if self.ok else 0.0}


# -------------------------------------------------------------------------------------------
# the student's file, in this process (``check_exercise``, ``npae gradcheck``)
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
    """Import the file at ``path`` as a fresh module *in this process*; return (module,
    None) or (None, why). For a student's own use (``npae gradcheck``, a notebook); the
    grader, ``check_answers``, never imports the file here.

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


# -------------------------------------------------------------------------------------------
# one call's outcome, wherever it ran
# -------------------------------------------------------------------------------------------


class _Malformed(Exception):
    """The answer process's reply is not what the protocol says (it cannot forge a pass)."""


@dataclass
class _Outcome:
    """What one call of the answer gave: ``kind`` is array (``value``), none, type, object,
    raised, notimplemented, exit or memory; ``after`` holds the array inputs after the call."""
    kind: str
    value: np.ndarray | None = None
    source: str = ""
    message: str = ""
    after: dict = field(default_factory=dict)


def _outcome_here(func, inp, ex):
    """Call ``func`` in this process on copies of ``inp`` (``check_exercise``)."""
    args = [v.copy() if isinstance(v, np.ndarray) else v for v in (inp[a] for a in ex.args)]
    try:
        out = func(*args)
    except NotImplementedError:
        return _Outcome("notimplemented")
    except KeyboardInterrupt:
        raise
    except SystemExit as exc:
        return _Outcome("exit", message=repr(exc.code))
    except MemoryError:
        return _Outcome("memory")
    except BaseException as exc:
        path = getattr(getattr(func, "__code__", None), "co_filename", None)
        return _Outcome("raised", message=describe_exception(exc, path))
    after = {a: v for a, v in zip(ex.args, args) if isinstance(v, np.ndarray)}
    if out is None:
        return _Outcome("none", after=after)
    source = type(out).__name__
    if not isinstance(out, (np.ndarray, np.generic, list, tuple, int, float, complex)):
        return _Outcome("type", source=source, after=after)
    try:
        arr = np.array(out)
    except Exception:
        return _Outcome("type", source=source, after=after)
    if arr.dtype.hasobject or arr.dtype.kind not in "biufcUS":
        return _Outcome("object", source=source, after=after)
    return _Outcome("array", value=arr, source=source, after=after)


def _outcomes_from_reply(ex, header, arrays):
    """The answer process's reply as outcomes; _Malformed if it is not a valid reply."""
    try:
        out = []
        for i, c in enumerate(header["cases"]):
            kind = str(c["kind"])
            if kind == "array":
                value = arrays[f"out{i}"]
            elif kind in ("none", "type", "object", "raised", "notimplemented", "exit",
                          "memory"):
                value = None
            else:
                raise _Malformed(kind)
            after = {a: arrays[f"in{i}.{a}"] for a in ex.args if f"in{i}.{a}" in arrays}
            out.append(_Outcome(kind, value, str(c.get("from", c.get("type", "")))[:60],
                                str(c.get("message", c.get("code", "")))[:400], after))
        return out
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise _Malformed(str(exc)) from None


# -------------------------------------------------------------------------------------------
# the verdict (always in this process)
# -------------------------------------------------------------------------------------------
def _passed(res):
    """The one place a gradient checker's verdict becomes pass or fail: only a truthy verdict
    passes; a falsy one (wrong, or nothing verifiable) does not."""
    return bool(res)


def _describe_case(ex, i, inp):
    shapes = ", ".join(f"{k} {tuple(v.shape)}" if isinstance(v, np.ndarray) else
                       f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in inp.items() if k in ex.args)
    return f"input set {i + 1} ({shapes})"


def _entries(mask, limit=5):
    idx = [tuple(int(j) for j in i) for i in np.argwhere(mask)[:limit]]
    more = int(mask.sum()) - len(idx)
    return ", ".join(map(str, idx)) + (f" and {more} more" if more > 0 else "")


def _mutation(ex, inp, after):
    """A message naming the first input the answer changed in place, or None."""
    for a in ex.args:
        sent = inp[a]
        if not isinstance(sent, np.ndarray):
            continue
        got = after.get(a)
        if got is None or got.shape != sent.shape or got.dtype != sent.dtype:
            changed = "its shape or type"
        elif np.array_equal(got, sent, equal_nan=True):
            continue
        else:
            diff = ~((got == sent) | (np.isnan(got) & np.isnan(sent)))
            changed = f"entries {_entries(diff)}" if sent.ndim else "its value"
        return (f"changed its input {a!r} in place ({changed}): an answer must leave its "
                f"arguments as they are; work on a copy ({a} = {a}.copy()) or use "
                "operations that make new arrays (x = x * 2, not x *= 2)")
    return None


def _as_gradient(oc, ex, inp):
    """The answer's return value as a float64 array, or a message saying what is wrong."""
    want = f"a float array of {ex.wrt}'s shape {tuple(np.shape(inp[ex.wrt]))}"
    if oc.kind == "none":
        return None, f"returned None (a missing `return`?), not {want}"
    if oc.kind == "type":
        return None, f"returned {oc.source or 'an object'}, not {want}"
    if oc.kind == "object":
        return None, (f"returned {oc.source or 'an object'} holding Python objects (an array "
                      f"of dtype object: arrays of different shapes, or None entries?), not "
                      f"{want}")
    if oc.source and oc.source != "ndarray":   # the answer rules (npae.gradcheck.answers)
        return None, (f"returned {describe_answer_type(oc.source)}, not {want}: an answer "
                      "returns a float64 numpy.ndarray (np.asarray(g, dtype=np.float64))")
    v = oc.value
    kind, dtype = v.dtype.kind, v.dtype
    if kind == "c":
        return None, (f"returned a complex ({dtype}) result: the gradient of a real objective "
                      f"is real; the checker does not drop imaginary parts (where does a "
                      f"complex number come from: np.sqrt of a negative, np.fft, 1j?)")
    if kind in "US":
        return None, f"returned strings ({dtype}), not {want}"
    if kind in "biu":
        return None, (f"returned a {'bool' if kind == 'b' else 'integer'} ({dtype}) array, "
                      f"not {want}: an integer array cannot hold a gradient (np.zeros_like of "
                      "an int array, or np.zeros(..., dtype=int)?)")
    if dtype.itemsize < 8:
        return None, (f"returned a {dtype} array: the answer is {dtype}, and the check needs "
                      f"float64 (the inputs are float64; {dtype} keeps ~7 digits, too few to "
                      "tell a right gradient from a slightly wrong one): is there an astype or "
                      f"a np.{dtype} in your code?")
    a = np.array(v, dtype=np.float64)
    if not np.isfinite(a).all():
        bad = ~np.isfinite(a)
        where = f"at {_entries(bad)}" if a.ndim else ""
        return None, (f"returned non-finite values (NaN or inf) {where}; a log(0), a "
                      "division by 0 or an overflowing exp?").replace("  ", " ")
    return a, None


def _reference_error(a, r):
    scale = float(np.abs(r).max()) if r.size else 0.0
    diff = np.abs(a - r)
    return float(diff.max() / scale) if scale > 0 else float(diff.max())


def _copy(inp):
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in inp.items()}


def _mistake(ex, inp, a):
    """(hint, note): the catalogued mistake the wrong answer ``a`` equals, if any."""
    for hint, grad in (ex.mistakes or {}).items():
        try:
            m = np.asarray(grad(_copy(inp)), dtype=np.float64)
        except Exception as exc:          # the course's code: say so, keep the generic hint
            return "", f"the mistake {hint[:40]!r} could not be computed: {exc}"
        if m.shape != a.shape or not np.isfinite(m).all():
            continue
        scale = float(np.abs(m).max()) if m.size else 0.0
        if np.all(np.abs(a - m) <= MISTAKE_RTOL * scale):
            return hint, ""
    return "", ""


def _judge(ex, cases, outcomes, all_entries=False):
    """The verdict on an exercise from each input set's outcome (an iterable, consumed until
    the first input set that fails)."""
    n = len(cases)
    worst, worst_ref = 0.0, 0.0
    for i, (inp, oc) in enumerate(zip(cases, outcomes)):
        where = _describe_case(ex, i, inp)

        def result(status, message, **kw):
            return ExerciseResult(ex.name, status, n_cases=n, message=message,
                                  points=ex.points, **kw)
        if oc.kind == "notimplemented":
            return result(MISSING, "not implemented yet (the function raises "
                                   "NotImplementedError)")
        if oc.kind == "raised":
            return result(ERROR, f"raised {oc.message} on {where}")
        if oc.kind == "exit":
            return result(CRASHED, f"called sys.exit({oc.message}) on {where}")
        if oc.kind == "memory":
            return result(CRASHED, f"ran out of memory (MemoryError) on {where}")
        changed = _mutation(ex, inp, oc.after)
        if changed:
            return result(ERROR, f"{changed}; on {where}")
        a, why = _as_gradient(oc, ex, inp)
        if a is None:
            return result(ERROR, f"{why} on {where}")
        res, hint, report = _check_case(ex, inp, a, all_entries)
        if getattr(res, "status", None) == "inconclusive":
            return result(ERROR, (f"could not be verified on {where}: every checked entry "
                                  "sits on a kink of the objective, where finite differences "
                                  "only bound the gradient (the exercise's inputs must move "
                                  "off the kinks; tell the course staff)"), hint=hint,
                          report=report)
        if not _passed(res):
            rel = res.max_rel_error if np.isfinite(res.max_rel_error) else None
            found, note = _mistake(ex, inp, a)
            if found and hint:   # -v shows one diagnosis: the catalogue's, in the report too
                report = report.replace(hint, found)
            return result(FAIL, f"wrong on {where}", max_rel_error=rel, hint=found or hint,
                          report=report, notes=[note] if note else [])
        worst = max(worst, res.max_rel_error)
        r = np.asarray(ex.reference(_copy(inp)), dtype=np.float64)
        ref_err = _reference_error(a, r)
        if ref_err > REF_RTOL:
            found, note = _mistake(ex, inp, a)
            return result(FAIL, (f"differs from the reference gradient on {where}, by "
                                 f"{ref_err:.1e} relative to its largest entry, although "
                                 "within the accuracy of finite differences: a small missing "
                                 "or extra term?"), max_rel_error=ref_err, hint=found,
                          notes=[note] if note else [])
        worst_ref = max(worst_ref, ref_err)
    return ExerciseResult(ex.name, PASS, max_rel_error=worst, ref_error=worst_ref,
                          n_cases=n, points=ex.points)


def _check_case(ex, inp, a, all_entries=False):
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
    every = {"max_entries": None} if all_entries else {}
    res = check_gradient(lambda v: ex.objective({**others, ex.wrt: v}), a, x, batch_size=n,
                         overlap=overlap, name=ex.wrt, **every)
    if _passed(res) or ex.terms is None or a.shape != x.shape:
        return res, res.hint, str(res)
    rep = check_terms(ex.terms(inp), x.copy(), grad=a, batch_size=n, overlap=overlap,
                      name=ex.wrt, **every)
    if rep.hint:  # empty only if the terms' sum passes at the edge of the tolerance
        return res, rep.hint, str(rep)
    return res, res.hint, str(res)


def check_exercise(ex, func, seed=None, all_entries=False):
    """Check ``func`` (an answer to exercise ``ex``) on all of ex's inputs, *in this process*
    (for a student's own use, e.g. in a notebook; ``check_answers`` isolates the answers)."""
    if isinstance(ex, str):
        ex = get_exercise(ex)
    missing = ex.missing_requirements()
    if missing:
        return ExerciseResult(ex.name, SKIP, points=ex.points, message=(
            f"needs {', '.join(missing)}, which this installation of npae does not have"))
    cases = ex.inputs(seed)
    return _judge(ex, cases, (_outcome_here(func, inp, ex) for inp in cases), all_entries)


# -------------------------------------------------------------------------------------------
# checking a file, isolated
# -------------------------------------------------------------------------------------------
def _from_reply(ex, cases, header, arrays, table, all_entries):
    kind = header.get("kind")
    if kind == "missing":
        names = [str(k) for k in header.get("callables", []) if str(k) not in table]
        close = difflib.get_close_matches(ex.name, names, n=1)
        also = (f"; is {close[0]!r} meant to be {ex.name!r}? (names must match exactly)"
                if close else "")
        return ExerciseResult(ex.name, MISSING, points=ex.points, message=(
            f"no function {ex.name!r} in the file (expected `{ex.signature}`){also}"))
    if kind == "notcallable":
        return ExerciseResult(ex.name, MISSING, points=ex.points, message=(
            f"{ex.name!r} is a {str(header.get('type'))[:60]}, not a function (expected "
            f"`{ex.signature}`)"))
    if kind == "signature":
        return ExerciseResult(ex.name, ERROR, points=ex.points, message=(
            f"wrong signature: the checker calls `{ex.signature}` (positionally, in that "
            f"order), the file has `{str(header.get('theirs'))[:200]}`"))
    if kind != "results":
        raise _Malformed(kind)
    outcomes = _outcomes_from_reply(ex, header, arrays)
    # one outcome per input set, unless the answer stopped early (raised, exited, returned
    # something other than an array): a reply cannot skip the input sets it gets wrong
    stopped = [i for i, oc in enumerate(outcomes) if oc.kind != "array"]
    if (stopped and stopped[0] != len(outcomes) - 1) or len(outcomes) > len(cases) or (
            not stopped and len(outcomes) != len(cases)):
        raise _Malformed("wrong number of outcomes")
    try:
        return _judge(ex, cases, outcomes, all_entries)
    except Exception as exc:
        raise ExerciseCodeError(f"checking exercise {ex.name!r} failed in the exercise's own "
                                f"code: {describe_exception(exc)}") from None


def check_answers(path, names=None, *, exercises=None, seed=None, timeout=DEFAULT_TIMEOUT,
                  memory_mb=DEFAULT_MEMORY_MB, all_entries=False):
    """Check the functions in the file at ``path``; return (results, import_error or None).

    The file runs in a separate process (one for the whole run, restarted after a timeout
    or a crash). ``exercises`` is the table to check (default: the built-in exercises),
    ``names`` selects some of them (default: all, in order); ``seed`` chooses the inputs
    (None: each exercise's fixed inputs); ``timeout`` is the time limit per exercise in
    seconds and ``memory_mb`` the answer process's address-space cap (0: none);
    ``all_entries`` checks every entry instead of a sample of large arrays. An exercise
    whose own code fails raises ExerciseCodeError.
    """
    table = EXERCISES if exercises is None else exercises
    selected = [get_exercise(n, table) for n in dict.fromkeys(names or table)]
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"answers file {str(path)!r} not found"
                                + (" (it is a directory)" if path.is_dir() else ""))

    def spawn():
        return AnswerProcess(path, timeout=timeout, memory_mb=memory_mb).start()
    try:
        proc = spawn()
    except AnswersImportError as exc:
        return [ExerciseResult(ex.name, ERROR, points=ex.points,
                               message="not checked: the file did not import")
                for ex in selected], str(exc)
    results = []
    try:
        for ex in selected:
            missing = ex.missing_requirements()
            if missing:
                results.append(ExerciseResult(ex.name, SKIP, points=ex.points, message=(
                    f"needs {', '.join(missing)}, which this installation does not have")))
                continue
            try:
                cases = ex.inputs(seed)
            except Exception as exc:
                raise ExerciseCodeError(f"exercise {ex.name!r}: its cases failed: "
                                        f"{describe_exception(exc)}") from None
            if proc is None:
                try:
                    proc = spawn()
                except AnswersImportError as exc:
                    results.append(ExerciseResult(ex.name, ERROR, points=ex.points, message=(
                        f"not checked: the file did not import again after a restart: {exc}")))
                    continue
            try:
                try:
                    header, arrays = proc.call(ex.name, ex.args, cases)
                except TypeError as exc:       # inputs that cannot be sent: the exercise's fault
                    raise ExerciseCodeError(f"exercise {ex.name!r}: {exc}") from None
                results.append(_from_reply(ex, cases, header, arrays, table, all_entries))
            except (AnswerTimeout, AnswerCrash, _Malformed) as exc:
                results.append(_lost_answer(ex, cases, exc))
                proc.close()        # the next exercise gets a fresh process
                proc = None
    finally:
        if proc is not None:
            proc.close()
    return results, None



def _lost_answer(ex, cases, exc):
    """The result of an exercise whose answer process ran past its time, died, or broke the
    protocol (a forged or garbled reply): never a pass."""
    if isinstance(exc, AnswerTimeout):
        status, message = TIMEOUT, f"{exc} (an endless loop, or far too much work?)"
    elif isinstance(exc, AnswerCrash):
        status, message = CRASHED, f"the answer's process ended while it ran: {exc}"
    else:
        status, message = CRASHED, "the answer's process sent a malformed reply"
    return ExerciseResult(ex.name, status, points=ex.points, n_cases=len(cases),
                          message=message)

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
