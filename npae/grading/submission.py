"""Checking a student's file (a .py or a notebook), isolated: ``check_answers``.

The file runs in an answer process (``isolation``), as a uid of its own where the grader is
root (``sandbox``); one process for the whole run, restarted after a timeout or a crash. Each
exercise has its time limit and the whole submission one more (``total_timeout``), so a file
that makes every exercise time out (each restart re-imports it) cannot run for long.
"""
from __future__ import annotations

import difflib
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from . import protocol
from .checker import (CRASHED, ERROR, MISSING, SKIP, TIMEOUT, ExerciseCodeError,
                      ExerciseResult, _judge, _Malformed, _outcomes_from_reply)
from .isolation import (DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, AnswerCrash, AnswerProcess,
                        AnswersImportError, AnswerTimeout)
from .notebook import is_notebook, notebook_code
from .protocol import describe_exception
from .sandbox import Sandbox, can_isolate
from ..exercises.registry import EXERCISES, get_exercise

__all__ = ["check_answers", "DEFAULT_TOTAL_TIMEOUT"]

#: seconds a whole submission may take (all its exercises, restarts included)
DEFAULT_TOTAL_TIMEOUT = 300.0


def _from_reply(ex, cases, header, arrays, table, all_entries, n_visible=None):
    try:
        kind = header["kind"]
        if kind == protocol.MISSING:
            names = [str(k) for k in header["callables"] if str(k) not in table]
            close = difflib.get_close_matches(ex.name, names, n=1)
            also = (f"; is {close[0]!r} meant to be {ex.name!r}? (names must match exactly)"
                    if close else "")
            return ExerciseResult(ex.name, MISSING, points=ex.points, message=(
                f"no function {ex.name!r} in the file (expected `{ex.signature}`){also}"))
        if kind == protocol.NOT_CALLABLE:
            return ExerciseResult(ex.name, MISSING, points=ex.points, message=(
                f"{ex.name!r} is a {str(header['type'])[:60]}, not a function (expected "
                f"`{ex.signature}`)"))
        if kind == protocol.SIGNATURE:
            return ExerciseResult(ex.name, ERROR, points=ex.points, message=(
                f"wrong signature: the checker calls `{ex.signature}` (positionally, in that "
                f"order), the file has `{str(header['theirs'])[:200]}`"))
    except (KeyError, TypeError):
        raise _Malformed("a reply without its keys") from None
    if kind != protocol.RESULTS:
        raise _Malformed(kind)
    outcomes = _outcomes_from_reply(ex, header, arrays)
    # one outcome per input set, unless the answer stopped early (raised, exited, returned
    # something other than an array): a reply cannot skip the input sets it gets wrong
    stopped = [i for i, oc in enumerate(outcomes) if oc.kind != protocol.ARRAY]
    if (stopped and stopped[0] != len(outcomes) - 1) or len(outcomes) > len(cases) or (
            not stopped and len(outcomes) != len(cases)):
        raise _Malformed("wrong number of outcomes")
    try:
        return _judge(ex, cases, outcomes, all_entries, n_visible)
    except Exception as exc:
        raise ExerciseCodeError(f"checking exercise {ex.name!r} failed in the exercise's own "
                                f"code: {describe_exception(exc)}") from None


@contextmanager
def _answer_processes(path, *, timeout, memory_mb, isolate, neighbours):
    """A factory of answer processes for the file at ``path`` (a notebook's code cells
    written out first), each under this check's sandbox if ``isolate``."""
    scratch = None
    run_path, folders = path, ([str(path.resolve().parent)] if neighbours else [])
    try:
        if is_notebook(path):
            source, _ = notebook_code(path)
            scratch = Path(tempfile.mkdtemp(prefix="npae-notebook-"))
            run_path = scratch / (path.stem + ".py")
            run_path.write_text(source, encoding="utf-8")
        sandbox = None
        if isolate:     # the answers' uid may not read their folder: their neighbours go along
            near = ([p for p in sorted(path.resolve().parent.glob("*.py"))
                     if p.is_file() and p.resolve() != path.resolve()][:200]
                    if neighbours else [])
            sandbox = Sandbox(run_path, near)
            folders = [str(sandbox.folder)]
        try:
            def spawn(limit):
                return AnswerProcess(run_path, timeout=min(timeout, limit),
                                     memory_mb=memory_mb, sandbox=sandbox,
                                     folders=folders).start()
            yield spawn
        finally:
            if sandbox is not None:
                sandbox.close()
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def check_answers(path, names=None, *, exercises=None, seed=None, timeout=DEFAULT_TIMEOUT,
                  memory_mb=DEFAULT_MEMORY_MB, all_entries=False,
                  total_timeout=DEFAULT_TOTAL_TIMEOUT, isolate=None, neighbours=True):
    """Check the functions in the file at ``path`` (.py, or .ipynb: its code cells); return
    (results, import_error or None).

    ``exercises`` is the table to check (default: the built-in exercises), ``names`` selects
    some of them (default: all, in order); ``seed`` chooses the inputs (None: each
    exercise's fixed inputs); ``timeout`` is the time limit per exercise in seconds,
    ``total_timeout`` the limit of the whole submission (None: none); ``memory_mb`` the
    answer process's address-space cap (0: none); ``all_entries`` checks every entry instead
    of a sample of large arrays. ``isolate`` runs the answers as a uid of their own (default:
    where the grader is root); ``neighbours`` lets them import the files beside them (not for
    a folder of submissions). An exercise whose own code fails raises ExerciseCodeError.
    """
    table = EXERCISES if exercises is None else exercises
    selected = [get_exercise(n, table) for n in dict.fromkeys(names or table)]
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"answers file {str(path)!r} not found"
                                + (" (it is a directory)" if path.is_dir() else ""))
    isolate = can_isolate() if isolate is None else bool(isolate)
    deadline = time.monotonic() + (float("inf") if total_timeout is None else total_timeout)
    with _answer_processes(path, timeout=timeout, memory_mb=memory_mb, isolate=isolate,
                           neighbours=neighbours) as spawn:
        return _check(selected, table, spawn, seed, all_entries, deadline, total_timeout)


def _check(selected, table, spawn, seed, all_entries, deadline, total_timeout):
    def left():
        return deadline - time.monotonic()
    try:
        proc = spawn(left())
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
            if left() <= 0:
                results.append(_out_of_time(ex, total_timeout))
                continue
            try:
                cases = ex.inputs(seed)
                n_visible = len(cases)
                cases = list(cases) + ex.hidden_inputs(seed)
            except Exception as exc:
                raise ExerciseCodeError(f"exercise {ex.name!r}: its cases failed: "
                                        f"{describe_exception(exc)}") from None
            if proc is None:
                try:
                    proc = spawn(left())
                except AnswersImportError as exc:
                    if left() <= 0:
                        results.append(_out_of_time(ex, total_timeout))
                        continue
                    results.append(ExerciseResult(ex.name, ERROR, points=ex.points, message=(
                        f"not checked: the file did not import again after a restart: {exc}")))
                    continue
            proc.timeout = min(proc.timeout, max(left(), 0.001))
            try:
                try:
                    header, arrays = proc.call(ex.name, ex.args, cases)
                except TypeError as exc:       # inputs that cannot be sent: the exercise's fault
                    raise ExerciseCodeError(f"exercise {ex.name!r}: {exc}") from None
                results.append(_from_reply(ex, cases, header, arrays, table, all_entries,
                                           n_visible))
            except (AnswerTimeout, AnswerCrash, _Malformed) as exc:
                if isinstance(exc, AnswerTimeout) and left() <= 0:
                    results.append(_out_of_time(ex, total_timeout, "stopped"))
                else:
                    results.append(_lost_answer(ex, cases, exc))
                proc.close()        # the next exercise gets a fresh process
                proc = None
    finally:
        if proc is not None:
            proc.close()
    return results, None


def _out_of_time(ex, total_timeout, what="not checked"):
    return ExerciseResult(ex.name, TIMEOUT, points=ex.points, message=(
        f"{what}: the submission's total time limit of {total_timeout:g} s ran out"))


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
