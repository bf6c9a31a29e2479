"""The process a student's answers run in (started by ``npae.grading.isolation``).

Run as a script, not as part of npae: it imports only the standard library and NumPy, so
nothing the answers do here (patching numpy, npae, builtins, exiting, crashing, looping) can
reach the checker, which computes the finite differences, the reference and the verdict in
its own process. It imports the answers file, then for each request calls one function on
the inputs it is sent and sends back what the function returned and the inputs as they are
after the call. Messages (both ways) are a length-prefixed JSON header and a length-prefixed
.npz blob, never a pickle.

    python runner.py READ_FD WRITE_FD MEMORY_MB
"""
import io
import json
import os
import struct
import sys

# sys.path[0] is this file's folder (npae/grading); the answers must not import from it
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(
        __file__)):
    del sys.path[0]


def _limit_memory(mb):
    """Cap the address space, so an answer that allocates without bound gets a MemoryError
    (reported as a crash) instead of taking the machine's memory."""
    if mb <= 0:
        return
    try:
        import resource
        limit = int(mb) * 1024 * 1024
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass            # not on this platform: the run goes on without a cap


_HEAD = struct.Struct(">Q")


def _read_exact(fd, n):
    chunks, got = [], 0
    while got < n:
        b = os.read(fd, min(n - got, 1 << 20))
        if not b:
            raise EOFError
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def receive(fd):
    header = json.loads(_read_exact(fd, _HEAD.unpack(_read_exact(fd, 8))[0]))
    size = _HEAD.unpack(_read_exact(fd, 8))[0]
    arrays = {}
    if size:
        import numpy as np
        with np.load(io.BytesIO(_read_exact(fd, size)), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    return header, arrays


def send(fd, header, arrays=None):
    blob = b""
    if arrays:
        import numpy as np
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        blob = buf.getvalue()
    head = json.dumps(header).encode()
    _write_all(fd, _HEAD.pack(len(head)) + head + _HEAD.pack(len(blob)) + blob)


def _short(text, n=300):
    text = str(text)
    return text if len(text) <= n else text[:n - 3] + "..."


def describe_exception(exc, path):
    """``Type: message (file.py, line N, in f)``, naming the frame in the answers file."""
    import traceback
    if isinstance(exc, SyntaxError):
        where = f"line {exc.lineno}" if exc.lineno else "unknown line"
        text = (exc.text or "").strip()
        return _short(f"SyntaxError: {exc.msg} ({os.path.basename(exc.filename or path)}, "
                      f"{where})" + (f": {text}" if text else ""))
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if _same_file(f.filename, path)]
    frame = mine[-1] if mine else (frames[-1] if frames else None)
    where = (f" ({os.path.basename(frame.filename)}, line {frame.lineno}, in {frame.name})"
             if frame is not None else "")
    try:
        msg = str(exc)
    except Exception:
        msg = "(its message could not be printed)"
    return _short(f"{type(exc).__name__}{': ' + msg if msg else ''}", 240) + where


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def load(path):
    """Import the answers file as a module (its ``__main__`` block does not run)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("answers", path)
    if spec is None or spec.loader is None:
        return None, f"cannot import {os.path.basename(path)}: give a Python file (.py)"
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    sys.modules["answers"] = module
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:
        return None, f"the file called sys.exit({_short(repr(exc.code), 60)}) while being imported"
    except MemoryError:
        return None, "the file ran out of memory (MemoryError) while being imported"
    except BaseException as exc:
        return None, describe_exception(exc, path)
    return module, None


def _signature_problem(f, name, args):
    import inspect
    try:
        inspect.signature(f).bind(*args)
    except TypeError:
        try:
            return f"def {name}{inspect.signature(f)}:"
        except (TypeError, ValueError):
            return "another signature"
    except ValueError:      # builtins without a signature: just try calling it
        pass
    return None


def _pack(out, key, arrays):
    """What the function returned, as a header entry (and an array under ``key``)."""
    import numpy as np
    if out is None:
        return {"kind": "none"}
    source = type(out).__name__
    if not isinstance(out, (np.ndarray, np.generic, list, tuple, int, float, complex, bool)):
        return {"kind": "type", "type": _short(source, 60)}
    try:
        arr = np.asarray(out)
    except Exception:
        return {"kind": "type", "type": _short(source, 60)}
    if arr.dtype.hasobject or arr.dtype.kind not in "biufcUS":
        return {"kind": "object", "type": _short(source, 60), "dtype": str(arr.dtype)}
    arrays[key] = np.array(arr)        # a plain copy: no subclass, no view of an input
    return {"kind": "array", "from": _short(source, 60)}


def call(module, path, header, arrays):
    name, args = header["name"], header["args"]
    f = getattr(module, name, None)
    if f is None:
        return {"kind": "missing", "callables": sorted(
            k for k, v in vars(module).items() if callable(v) and not k.startswith("_"))}, {}
    if not callable(f):
        return {"kind": "notcallable", "type": _short(type(f).__name__, 60)}, {}
    theirs = _signature_problem(f, name, args)
    if theirs is not None:
        return {"kind": "signature", "theirs": _short(theirs, 200)}, {}
    cases, out_arrays = [], {}
    for i, scalars in enumerate(header["cases"]):
        inputs = [arrays[f"c{i}.{a}"] if f"c{i}.{a}" in arrays else scalars[a] for a in args]
        try:
            out = f(*inputs)
        except NotImplementedError:
            cases.append({"kind": "notimplemented"})
            break
        except SystemExit as exc:
            cases.append({"kind": "exit", "code": _short(repr(exc.code), 60)})
            break
        except MemoryError:
            cases.append({"kind": "memory"})
            break
        except BaseException as exc:
            cases.append({"kind": "raised", "message": describe_exception(exc, path)})
            break
        entry = _pack(out, f"out{i}", out_arrays)
        for a, v in zip(args, inputs):
            if f"c{i}.{a}" in arrays:
                out_arrays[f"in{i}.{a}"] = v
        cases.append(entry)
        if entry["kind"] != "array":
            break
    return {"kind": "results", "cases": cases}, out_arrays


def main(argv):
    rfd, wfd, memory_mb = int(argv[1]), int(argv[2]), int(argv[3])
    _limit_memory(memory_mb)
    header, _ = receive(rfd)
    path = header["path"]
    module, error = load(path)
    send(wfd, {"ok": module is not None, "error": error})
    if module is None:
        return
    while True:
        try:
            header, arrays = receive(rfd)
        except EOFError:
            return
        try:
            reply, out = call(module, path, header, arrays)
        except MemoryError:
            reply, out = {"kind": "results", "cases": [{"kind": "memory"}]}, {}
        send(wfd, reply, out)


if __name__ == "__main__":
    main(sys.argv)
