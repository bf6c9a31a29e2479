"""The answer protocol: the one definition of what the grader and the answer process say.

Imported normally by the grader (``isolation``, ``checker``) and loaded *by path* in the
answer process (``runner.py``), which must not import npae's package init: so this module
imports only the standard library and NumPy.

A message (both ways) is a JSON header and an .npz blob of plain arrays (never a pickle),
each behind an 8-byte big-endian length::

    requests  {"op": "load", "path": P, "folders": [where its imports are found, first]}
              {"op": "load", "module": M}
              {"op": "call", "name": F, "args": [A, ...], "cases": [{A: scalar}, ...]}
                  arrays input_key(i, A) for the array inputs of input set i
              {"op": "eval", "name": F}, array "x": one call F(x)
    replies   to load: {"ok": bool, "error": str}
              to call: {"kind": "missing", "callables": [...]} | {"kind": "notcallable",
                  "type": T} | {"kind": "signature", "theirs": S} | {"kind": "results",
                  "cases": [CASE, ...]}, arrays output_key(i), after_key(i, A)
              to eval: {"kind": "results", "cases": [CASE]} (arrays output_key(0)) or, for a
                  pair (value, gradient), {"kind": "pair", "cases": [CASE, CASE]}

Every CASE has exactly the keys ``kind`` (one of CASE_KINDS), ``source`` (the type the
function returned) and ``message`` (what it raised, or the sys.exit code).
"""
from __future__ import annotations

import io
import json
import os
import struct
import zipfile

import numpy as np

if __package__:
    from .._tracebacks import describe_exception, short
else:   # loaded by path in the answer process (runner.py): the sibling is loaded the same way
    import importlib.util as _util
    _spec = _util.spec_from_file_location(
        "_npae_answer_tracebacks",
        os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "_tracebacks.py"))
    _tracebacks = _util.module_from_spec(_spec)
    _spec.loader.exec_module(_tracebacks)
    describe_exception, short = _tracebacks.describe_exception, _tracebacks.short

#: the largest message either side accepts
MAX_MESSAGE = 1 << 30
HEAD = struct.Struct(">Q")

ARRAY, NONE, TYPE, OBJECT = "array", "none", "type", "object"
RAISED, NOT_IMPLEMENTED, EXIT, MEMORY = "raised", "notimplemented", "exit", "memory"
#: what one call of an answer can give
CASE_KINDS = frozenset({ARRAY, NONE, TYPE, OBJECT, RAISED, NOT_IMPLEMENTED, EXIT, MEMORY})
#: the kinds of a call that returned (the inputs after the call are sent back with them)
RETURNED = frozenset({ARRAY, NONE, TYPE, OBJECT})
#: the kinds of reply to a request
RESULTS, PAIR, MISSING, NOT_CALLABLE, SIGNATURE = (
    "results", "pair", "missing", "notcallable", "signature")
CASE_KEYS = ("kind", "source", "message")


class ProtocolError(Exception):
    """A message that is not what this module says (a garbled or forged reply)."""


def input_key(i, arg):
    return f"c{i}.{arg}"


def output_key(i):
    return f"out{i}"


def after_key(i, arg):
    return f"in{i}.{arg}"


# -- framing --------------------------------------------------------------------------------
def encode(header, arrays=None):
    """The bytes of one message."""
    blob = b""
    if arrays:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        blob = buf.getvalue()
    head = json.dumps(header).encode()
    return HEAD.pack(len(head)) + head + HEAD.pack(len(blob)) + blob


def read_message(read_exact, limit=MAX_MESSAGE):
    """(header dict, arrays dict) read with ``read_exact(n) -> n bytes``; ProtocolError if the
    message is malformed or larger than ``limit`` (``read_exact``'s own errors pass through)."""
    n = HEAD.unpack(read_exact(HEAD.size))[0]
    if n > limit:
        raise ProtocolError("its header was too large")
    try:
        header = json.loads(read_exact(n))
    except ValueError:
        raise ProtocolError("its header was not JSON") from None
    if not isinstance(header, dict):
        raise ProtocolError("its header was not a JSON object")
    size = HEAD.unpack(read_exact(HEAD.size))[0]
    if size > limit:
        raise ProtocolError("it was too large")
    return header, (decode_arrays(read_exact(size), limit) if size else {})


def decode_arrays(blob, limit=MAX_MESSAGE):
    """The arrays of an .npz blob: no pickles, at most ``limit`` bytes once unpacked."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            if sum(i.file_size for i in zf.infolist()) > limit:
                raise ProtocolError("its arrays were too large")
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ProtocolError:
        raise
    except Exception:
        raise ProtocolError("its arrays were unreadable") from None


# -- one call of an answer ------------------------------------------------------------------
def case(kind, source="", message=""):
    """A CASE entry, always with all of CASE_KEYS."""
    return {"kind": kind, "source": short(source, 60), "message": short(message, 400)}


def parse_case(entry):
    """(kind, source, message) of a CASE entry; ProtocolError unless it is exactly one."""
    if not isinstance(entry, dict) or sorted(entry) != sorted(CASE_KEYS):
        raise ProtocolError("a case entry without its keys")
    kind, source, message = (entry[k] for k in CASE_KEYS)
    if kind not in CASE_KINDS or not isinstance(source, str) or not isinstance(message, str):
        raise ProtocolError("a case entry of an unknown kind")
    return kind, source[:60], message[:400]


def classify(out):
    """(CASE entry, array or None): what an answer returned, in the protocol's terms. The
    array is a plain copy (no subclass, no view of an input)."""
    if out is None:
        return case(NONE), None
    source = type(out).__name__
    if not isinstance(out, (np.ndarray, np.generic, list, tuple, int, float, complex, bool)):
        return case(TYPE, source), None
    try:
        arr = np.array(out)
    except Exception:
        return case(TYPE, source), None
    if arr.dtype.hasobject or arr.dtype.kind not in "biufcUS":
        return case(OBJECT, source), None
    return case(ARRAY, source), np.array(arr)


def call_case(f, inputs, path=None, passthrough=()):
    """(CASE entry, array or None) of ``f(*inputs)``: an exception (SystemExit included)
    becomes an entry; those in ``passthrough`` (e.g. KeyboardInterrupt) propagate."""
    try:
        out = f(*inputs)
    except passthrough:
        raise
    except NotImplementedError:
        return case(NOT_IMPLEMENTED), None
    except SystemExit as exc:
        return case(EXIT, message=repr(exc.code)), None
    except MemoryError:
        return case(MEMORY), None
    except BaseException as exc:
        if path is None:
            path = getattr(getattr(f, "__code__", None), "co_filename", None)
        return case(RAISED, message=describe_exception(exc, path)), None
    return classify(out)
