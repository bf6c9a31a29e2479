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

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..gradcheck import check_gradient, check_terms
from . import protocol
from .protocol import describe_exception
from ..exercises.registry import get_exercise
from ..gradcheck.answers import describe_answer_type
from ..exceptions import ExerciseCodeError

__all__ = ["ExerciseResult", "load_answers", "check_exercise", "format_results",
           "describe_exception", "STATUS_NAMES", "ExerciseCodeError"]

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
    credit: float = 0.0       # the fraction of the points a catalogued mistake earns
    visibility: str = "visible"

    @property
    def ok(self):
        return self.status == PASS

    @property
    def score(self):
        """The points earned: all for a pass, the mistake's credit for a known mistake."""
        return float(self.points) if self.ok else float(self.points) * float(self.credit)

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
                "score": self.score}


# -------------------------------------------------------------------------------------------
# the student's file, in this process (``check_exercise``, ``npae gradcheck``)
# -------------------------------------------------------------------------------------------
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
    entry, value = protocol.call_case(func, args, passthrough=KeyboardInterrupt)
    kind, source, message = protocol.parse_case(entry)
    after = {a: v for a, v in zip(ex.args, args) if isinstance(v, np.ndarray)}
    return _Outcome(kind, value, source, message, after)


def _outcomes_from_reply(ex, header, arrays):
    """The answer process's reply as outcomes; _Malformed if it is not a valid reply."""
    try:
        out = []
        for i, c in enumerate(header["cases"]):
            kind, source, message = protocol.parse_case(c)
            value = arrays[protocol.output_key(i)] if kind == protocol.ARRAY else None
            after = {a: arrays[protocol.after_key(i, a)] for a in ex.args
                     if protocol.after_key(i, a) in arrays}
            out.append(_Outcome(kind, value, source, message, after))
        return out
    except (KeyError, TypeError, protocol.ProtocolError) as exc:
        raise _Malformed(str(exc)) from None


# -------------------------------------------------------------------------------------------
# the verdict (always in this process)
# -------------------------------------------------------------------------------------------
def _passed(res):
    """The one place a gradient checker's verdict becomes pass or fail: only a truthy verdict
    passes; a falsy one (wrong, or nothing verifiable) does not."""
    return bool(res)


def _describe_case(ex, i, inp, n_visible=None):
    if n_visible is not None and i >= n_visible:
        return f"hidden input set {i - n_visible + 1}"
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
    if oc.kind == protocol.NONE:
        return None, f"returned None (a missing `return`?), not {want}"
    if oc.kind == protocol.TYPE:
        return None, f"returned {oc.source or 'an object'}, not {want}"
    if oc.kind == protocol.OBJECT:
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


def constant_in_wrt(ex, inp, rng=None):
    """True if the objective does not move when ``wrt`` is perturbed (three directions)."""
    rng = np.random.default_rng(0) if rng is None else rng
    x = np.asarray(inp[ex.wrt], dtype=np.float64)
    f0 = ex.objective({**_copy(inp), ex.wrt: x.copy()})
    scale = max(abs(f0), 1.0)
    for _ in range(3):
        d = rng.standard_normal(x.shape) * 1e-3 * max(float(np.abs(x).max()), 1.0)
        if abs(ex.objective({**_copy(inp), ex.wrt: x + d}) - f0) > 1e-12 * scale:
            return False
    return True


def _zero_where_constant(ex, inp, a):
    """The answer is 0 (to rounding) and so is the reference, on an input set where the
    objective is locally constant: right, although finite differences only bound it."""
    r = np.asarray(ex.reference(_copy(inp)), dtype=np.float64)
    tiny = 1e-10 * max(float(np.abs(np.asarray(inp[ex.wrt], dtype=np.float64)).max()), 1.0)
    return (r.shape == a.shape and float(np.abs(r).max(initial=0)) <= tiny
            and float(np.abs(a).max(initial=0)) <= tiny and constant_in_wrt(ex, inp))


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


def _judge(ex, cases, outcomes, all_entries=False, n_visible=None):
    """The verdict on an exercise from each input set's outcome (an iterable, consumed until
    the first input set that fails); the input sets past ``n_visible`` are hidden ones."""
    n = len(cases)
    worst, worst_ref = 0.0, 0.0
    credits = ex.mistake_credit or {}
    for i, (inp, oc) in enumerate(zip(cases, outcomes)):
        where = _describe_case(ex, i, inp, n_visible)

        def result(status, message, **kw):
            if status == FAIL and kw.get("hint") in credits:
                kw["credit"] = float(credits[kw["hint"]])
            return ExerciseResult(ex.name, status, n_cases=n, message=message,
                                  points=ex.points, visibility=ex.visibility, **kw)
        if oc.kind == protocol.NOT_IMPLEMENTED:
            return result(MISSING, "not implemented yet (the function raises "
                                   "NotImplementedError)")
        if oc.kind == protocol.RAISED:
            return result(ERROR, f"raised {oc.message} on {where}")
        if oc.kind == protocol.EXIT:
            return result(CRASHED, f"called sys.exit({oc.message}) on {where}")
        if oc.kind == protocol.MEMORY:
            return result(CRASHED, f"ran out of memory (MemoryError) on {where}")
        changed = _mutation(ex, inp, oc.after)
        if changed:
            return result(ERROR, f"{changed}; on {where}")
        a, why = _as_gradient(oc, ex, inp)
        if a is None:
            return result(ERROR, f"{why} on {where}")
        res, hint, report = _check_case(ex, inp, a, all_entries)
        if getattr(res, "status", None) == "inconclusive" and _zero_where_constant(ex, inp, a):
            continue        # a gradient 0 of an objective that is constant here: not a kink
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
                          n_cases=n, points=ex.points, visibility=ex.visibility)


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
