"""How an exception raised by someone else's code is told: its type, message and the line
of *their* file it came from (``describe_exception``), in a length a report can hold.

Standard library only: the grader's protocol uses it in the answer process, which loads it
by path (``npae.grading.protocol``), and a course file's errors are told the same way
(``npae.exercises.course``).
"""
import os
import traceback


def short(text, n=300):
    """``text`` cut to at most ``n`` characters (an ellipsis says it was cut)."""
    text = str(text)
    return text if len(text) <= n else text[:n - 3] + "..."


def describe_exception(exc, path=None):
    """``Type: message (file.py, line N, in f)``, naming the frame in the file at ``path``."""
    if isinstance(exc, SyntaxError):
        where = f"line {exc.lineno}" if exc.lineno else "unknown line"
        text = (exc.text or "").strip()
        name = os.path.basename(exc.filename or path or "?")
        return short(f"SyntaxError: {exc.msg} ({name}, {where})" + (f": {text}" if text
                                                                     else ""))
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if path is not None and _same_file(f.filename, path)]
    frame = mine[-1] if mine else (frames[-1] if frames else None)
    where = (f" ({os.path.basename(frame.filename)}, line {frame.lineno}, in {frame.name})"
             if frame is not None else "")
    try:
        msg = str(exc)
    except Exception:
        msg = "(its message could not be printed)"
    return short(f"{type(exc).__name__}{': ' + msg if msg else ''}", 240) + where


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
