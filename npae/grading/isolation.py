"""Running a student's answers in a separate process (the checker never imports them).

``AnswerProcess`` starts ``runner.py`` (standard library and NumPy only) in its own process
group and session, sends it the inputs of one exercise at a time as an .npz blob and reads
back the function's outputs and the inputs as they were after the call -- plain arrays,
loaded with ``allow_pickle=False`` from the process's private pipe (what the answers print
is discarded). Each request has a deadline: past it the whole process group is killed
(``AnswerTimeout``); a process that dies or sends an unreadable reply is an ``AnswerCrash``.
Either way the caller starts a fresh process for the next exercise.

The answer process's address space is capped (``memory_mb``, RLIMIT_AS, where the platform
has it), so a runaway allocation is a MemoryError there, not a machine out of memory.
"""
from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from ..exceptions import AnswerCrash, AnswersImportError, AnswerTimeout
from . import protocol

__all__ = ["AnswerProcess", "AnswerTimeout", "AnswerCrash", "AnswersImportError",
           "DEFAULT_TIMEOUT", "DEFAULT_MEMORY_MB"]

#: seconds an exercise (all its input sets) may take, and the import of the answers file
DEFAULT_TIMEOUT = 60.0
#: the answer process's address-space cap in MiB (NumPy and BLAS reserve a few hundred)
DEFAULT_MEMORY_MB = 4096
#: the largest reply accepted from the answer process
MAX_REPLY = protocol.MAX_MESSAGE

_RUNNER = Path(__file__).with_name("runner.py")


def _signal_name(num):
    try:
        name = signal.Signals(num).name
    except ValueError:
        return f"signal {num}"
    return name + {"SIGSEGV": " (a segmentation fault)", "SIGKILL": " (killed, e.g. out of "
                   "memory)", "SIGABRT": " (aborted)", "SIGBUS": " (a bus error)"}.get(name, "")


class AnswerProcess:
    """One answer process for the answers file at ``path`` (or the importable ``module``);
    ``start`` imports it."""

    def __init__(self, path=None, timeout=DEFAULT_TIMEOUT, memory_mb=DEFAULT_MEMORY_MB, *,
                 module=None, sandbox=None, folders=None):
        if (path is None) == (module is None):
            raise TypeError("give the answers' path or their module, not both")
        if sandbox is not None and path is None:
            raise TypeError("a sandbox runs an answers file, not a module")
        self.path = None if path is None else str(Path(path).resolve())
        self.module = module
        self.sandbox = sandbox
        # where the answers' imports are found first: by default their own folder, so they may
        # import their neighbours (not when grading a folder of submissions, where the
        # neighbours are other students' files)
        self.folders = (list(folders) if folders is not None else
                        [os.path.dirname(self.path)] if self.path else [])
        self.timeout = float(timeout)
        self.memory_mb = int(memory_mb)
        self.proc = None

    # -- life cycle ---------------------------------------------------------------------
    def start(self):
        """Spawn the process and import the answers (AnswersImportError if that fails)."""
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        import npae
        root = str(Path(npae.__file__).resolve().parent.parent)
        pythonpath = os.pathsep.join([root] + [p for p in os.environ.get(
            "PYTHONPATH", "").split(os.pathsep) if p])
        argv = [sys.executable, str(_RUNNER), str(to_child_r), str(from_child_w),
                str(self.memory_mb)]
        if self.sandbox is not None:
            env, cwd = self.sandbox.env(pythonpath), str(self.sandbox.folder)
            argv += self.sandbox.runner_args()
        else:
            env = {**os.environ, "PYTHONPATH": pythonpath, "OMP_NUM_THREADS": "1",
                   "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
            cwd = os.getcwd() if self.path is None else os.path.dirname(self.path)
        posix = os.name == "posix"
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, env=env, cwd=cwd,
                pass_fds=(to_child_r, from_child_w),
                start_new_session=posix, close_fds=True)
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self._w, self._r = to_child_w, from_child_r
        os.set_blocking(self._w, False)
        os.set_blocking(self._r, False)
        deadline = time.monotonic() + self.timeout
        try:
            if self.path is None:
                target = {"module": self.module}
            else:
                path = self.path if self.sandbox is None else str(self.sandbox.answers)
                target = {"path": path, "folders": self.folders}
            self._send({"op": "load", **target}, None, deadline)
            reply, _ = self._receive(deadline)
        except AnswerTimeout:
            self.close()
            raise AnswersImportError(f"importing the file took longer than the time limit "
                                     f"({self.timeout:g} s): is there a loop at its top "
                                     "level?") from None
        except AnswerCrash as exc:
            self.close()
            raise AnswersImportError(f"the file ended the process while being imported "
                                     f"({exc})") from None
        except BaseException:
            self.close()
            raise
        if not reply.get("ok"):
            self.close()
            raise AnswersImportError(str(reply.get("error") or "the file did not import")[:600])
        return self

    def close(self):
        """End the process and everything it started (its process group)."""
        if self.proc is None:
            return
        for fd in (self._w, self._r):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
        self._kill()
        self.proc = None
        if self.sandbox is not None:
            self.sandbox.kill()       # what the answers left running, detached or not

    def _kill(self):
        if self.proc is None:
            return
        try:
            if os.name == "posix":
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.kill()
        except (ProcessLookupError, PermissionError, OSError):
            pass
        try:
            self.proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- one exercise -------------------------------------------------------------------
    def call(self, name, args, cases):
        """Call ``name(*args)`` on every inputs dict of ``cases``; (header, arrays).

        The deadline covers all the cases. Raises AnswerTimeout or AnswerCrash (and the
        process is then dead: start a new one).
        """
        arrays, scalars = {}, []
        for i, inp in enumerate(cases):
            plain = {}
            for a in args:
                v = inp[a]
                if isinstance(v, np.ndarray):
                    arrays[protocol.input_key(i, a)] = v
                elif isinstance(v, (bool, int, float, str, np.integer, np.floating,
                                    np.bool_)) or v is None:
                    plain[a] = v.item() if isinstance(v, np.generic) else v
                else:
                    raise TypeError(f"the exercise's input {a!r} is a {type(v).__name__}: "
                                    "only arrays, numbers and strings can be sent to the "
                                    "answers")
            scalars.append(plain)
        deadline = time.monotonic() + self.timeout
        self._send({"op": "call", "name": name, "args": list(args), "cases": scalars},
                   arrays, deadline)
        return self._receive(deadline)

    def evaluate(self, name, x, deadline):
        """One call ``name(x)`` (``npae gradcheck``): (reply header, arrays), the deadline
        shared by all the calls of one check."""
        self._send({"op": "eval", "name": name}, {"x": np.asarray(x)}, deadline)
        return self._receive(deadline)

    # -- the protocol's framing, over non-blocking pipes with a deadline ----------------
    def _send(self, header, arrays, deadline):
        data = memoryview(protocol.encode(header, arrays))
        with selectors.DefaultSelector() as sel:
            sel.register(self._w, selectors.EVENT_WRITE)
            while data:
                self._wait(sel, deadline)
                try:
                    n = os.write(self._w, data)
                except BlockingIOError:
                    continue
                except (BrokenPipeError, OSError):
                    self._died("it stopped reading its input")
                data = data[n:]

    def _receive(self, deadline):
        with selectors.DefaultSelector() as sel:
            sel.register(self._r, selectors.EVENT_READ)

            def read_exact(n):
                chunks, got = [], 0
                while got < n:
                    self._wait(sel, deadline)
                    try:
                        b = os.read(self._r, min(n - got, 1 << 20))
                    except BlockingIOError:
                        continue
                    if not b:
                        self._died()
                    chunks.append(b)
                    got += len(b)
                return b"".join(chunks)
            try:
                return protocol.read_message(read_exact, MAX_REPLY)
            except protocol.ProtocolError as exc:
                self._died(f"its reply was malformed ({exc})")

    def _wait(self, sel, deadline):
        left = deadline - time.monotonic()
        if left <= 0 or not sel.select(timeout=left):
            if time.monotonic() >= deadline:
                self._kill()
                raise AnswerTimeout(f"still running after the time limit of "
                                    f"{self.timeout:g} s, stopped")

    def _died(self, why=None):
        """Raise AnswerCrash describing how the process ended (killing what is left)."""
        if why is None:
            try:
                code = self.proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                code = None
            if code is None:
                why = "it closed its channel to the checker"
            elif code < 0:
                why = f"the process was killed by {_signal_name(-code)}"
            else:
                why = f"the process exited with status {code} (os._exit or a crash)"
        self._kill()
        raise AnswerCrash(why)
