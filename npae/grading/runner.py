"""The process a student's answers run in (started by ``npae.grading.isolation``).

Run as a script, not as part of npae: it imports only the standard library, NumPy and the
protocol module (``protocol.py`` beside it, loaded by path, never through npae's package
init), so nothing the answers do here (patching numpy, npae, builtins, exiting, crashing,
looping) can reach the checker, which computes the finite differences, the reference and the
verdict in its own process. It imports the answers, then for each request calls one function
on the inputs it is sent and sends back what the function returned and the inputs as they are
after the call.

    python runner.py READ_FD WRITE_FD MEMORY_MB [UID GID MAX_PROCESSES]

Given UID and GID (the grader runs as root, ``sandbox``), it gives up root for them once its
own imports are done and before the answers are read.
"""
import importlib
import importlib.util
import inspect  # noqa: F401  (imported before the answers run: they may not read the stdlib)
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
# sys.path[0] is this file's folder (npae/grading); the answers must not import from it
if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
    del sys.path[0]


def _load_protocol():
    spec = importlib.util.spec_from_file_location("_npae_answer_protocol",
                                                  os.path.join(_HERE, "protocol.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


P = _load_protocol()


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


# what answers commonly import, imported while the interpreter's own files are still readable
# (the uid the answers run as may not read an interpreter installed under root's home)
_PRELOAD = ("math", "cmath", "functools", "itertools", "collections", "operator", "random",
            "time", "typing", "dataclasses", "warnings", "copy", "re", "string", "statistics",
            "fractions", "decimal", "numbers", "abc", "enum", "numpy.linalg", "numpy.fft",
            "numpy.random", "resource", "encodings.cp437", "tokenize", "linecache")


def _drop_privileges(uid, gid, max_processes):
    """Become ``uid``/``gid`` for good (no supplementary groups, at most ``max_processes``
    processes); exit if that fails, so answers never run as root by accident."""
    for name in _PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    # one round of what the runner itself does, so every module it loads lazily is loaded
    P.read_message(_bytes_reader(P.encode({"kind": P.RESULTS}, {"x": P.np.zeros(1)})))
    try:
        raise ValueError("warm-up")
    except ValueError as exc:
        P.describe_exception(exc, __file__)
    _signature_problem(_drop_privileges, "f", ["a", "b", "c"])
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))
    except (ImportError, ValueError, OSError):
        pass
    try:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    except OSError as exc:
        sys.stderr.write(f"cannot drop privileges: {exc}\n")
        os._exit(70)
    if os.getuid() != uid or os.geteuid() != uid:
        os._exit(70)


def _reader(fd):
    def read_exact(n):
        chunks, got = [], 0
        while got < n:
            b = os.read(fd, min(n - got, 1 << 20))
            if not b:
                raise EOFError
            chunks.append(b)
            got += len(b)
        return b"".join(chunks)
    return read_exact


def _bytes_reader(data):
    view = memoryview(data)

    def read_exact(n):
        nonlocal view
        chunk, view = bytes(view[:n]), view[n:]
        return chunk
    return read_exact


def send(fd, header, arrays=None):
    view = memoryview(P.encode(header, arrays))
    while view:
        view = view[os.write(fd, view):]


def load(header):
    """Import the answers (a file's ``__main__`` block does not run); (module, error)."""
    if "module" in header:
        sys.path.insert(0, os.getcwd())       # as `python -m` would
        try:
            return importlib.import_module(header["module"]), None
        except SystemExit as exc:
            return None, (f"the module called sys.exit({P.short(repr(exc.code), 60)}) "
                          "while being imported")
        except BaseException as exc:
            return None, P.describe_exception(exc)
    path = header["path"]
    sys.path[:0] = [str(f) for f in header["folders"]]
    spec = importlib.util.spec_from_file_location("answers", path)
    if spec is None or spec.loader is None:
        return None, f"cannot import {os.path.basename(path)}: give a Python file (.py)"
    module = importlib.util.module_from_spec(spec)
    sys.modules["answers"] = module
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:
        return None, (f"the file called sys.exit({P.short(repr(exc.code), 60)}) while "
                      "being imported")
    except MemoryError:
        return None, "the file ran out of memory (MemoryError) while being imported"
    except BaseException as exc:
        return None, P.describe_exception(exc, path)
    return module, None


def _signature_problem(f, name, args):
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


def _function(module, name):
    """(function, None) or (None, the reply saying why there is none)."""
    f = getattr(module, name, None)
    if f is None:
        return None, {"kind": P.MISSING, "callables": sorted(
            k for k, v in vars(module).items() if callable(v) and not k.startswith("_"))}
    if not callable(f):
        return None, {"kind": P.NOT_CALLABLE, "type": P.short(type(f).__name__, 60)}
    return f, None


def call(module, path, header, arrays):
    name, args = header["name"], header["args"]
    f, reply = _function(module, name)
    if f is None:
        return reply, {}
    theirs = _signature_problem(f, name, args)
    if theirs is not None:
        return {"kind": P.SIGNATURE, "theirs": P.short(theirs, 200)}, {}
    cases, out_arrays = [], {}
    for i, scalars in enumerate(header["cases"]):
        inputs = [arrays[P.input_key(i, a)] if P.input_key(i, a) in arrays else scalars[a]
                  for a in args]
        entry, value = P.call_case(f, inputs, path)
        if value is not None:
            out_arrays[P.output_key(i)] = value
        if entry["kind"] in P.RETURNED:
            for a, v in zip(args, inputs):
                if P.input_key(i, a) in arrays:
                    out_arrays[P.after_key(i, a)] = v
        cases.append(entry)
        if entry["kind"] != P.ARRAY:
            break
    return {"kind": P.RESULTS, "cases": cases}, out_arrays


def evaluate(module, path, header, arrays):
    """One call f(x); a pair (value, gradient) is sent back as two cases."""
    f, reply = _function(module, header["name"])
    if f is None:
        return reply, {}
    returned = []

    def run(x):
        returned.append(f(x))
        return None if _is_pair(returned[0]) else returned[0]
    entry, value = P.call_case(run, [arrays["x"]], path)
    if returned and _is_pair(returned[0]):
        cases, out = [], {}
        for i, item in enumerate(returned[0]):
            e, v = P.classify(item)
            cases.append(e)
            if v is not None:
                out[P.output_key(i)] = v
        return {"kind": P.PAIR, "cases": cases}, out
    return {"kind": P.RESULTS, "cases": [entry]}, ({P.output_key(0): value}
                                                   if value is not None else {})


def _is_pair(out):
    return isinstance(out, tuple) and len(out) == 2


def main(argv):
    rfd, wfd, memory_mb = int(argv[1]), int(argv[2]), int(argv[3])
    read_exact = _reader(rfd)
    if len(argv) > 6:
        _drop_privileges(int(argv[4]), int(argv[5]), int(argv[6]))
    _limit_memory(memory_mb)
    header, _ = P.read_message(read_exact)
    module, error = load(header)
    send(wfd, {"ok": module is not None, "error": error})
    if module is None:
        return
    path = header.get("path")
    while True:
        try:
            header, arrays = P.read_message(read_exact)
        except EOFError:
            return
        handler = evaluate if header["op"] == "eval" else call
        try:
            reply, out = handler(module, path, header, arrays)
        except MemoryError:
            reply, out = {"kind": P.RESULTS, "cases": [P.case(P.MEMORY)]}, {}
        send(wfd, reply, out)


if __name__ == "__main__":
    main(sys.argv)
