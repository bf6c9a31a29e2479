"""The one module that imports Numba; every kernel module takes ``njit`` from here.

Numba is a default dependency, but it often trails a new CPython release by months, and a
student may ask for the plain-NumPy path on purpose (``NPAE_DISABLE_NUMBA=1``). Then
``NUMBA_ENABLED`` is False, ``njit`` turns a kernel into a stub that refuses to run (its
Python loops, run un-compiled, would take hours), and every public entry point of a
``*_kernels`` module calls the kernel's NumPy twin (suffix ``_numpy``) instead. The choice
is made once, at import, so one process never mixes a kernel and its twin.
"""
from __future__ import annotations

import functools
import os
import threading
import warnings

from .exceptions import NumbaUnavailableWarning

__all__ = ["NUMBA_ENABLED", "NUMBA_VERSION", "njit", "prange", "get_num_threads",
           "set_num_threads", "max_threads", "Deferred", "use_kernels_now"]

_reason = None
if os.environ.get("NPAE_DISABLE_NUMBA", "").strip() not in ("", "0"):
    _reason = "NPAE_DISABLE_NUMBA is set"
else:
    try:
        import numba as _nb
    except Exception as exc:  # ImportError, or a Numba that does not support this Python
        _reason = f"Numba could not be imported ({type(exc).__name__}: {exc})"

#: True when the Numba kernels run; False when npae runs the NumPy twins throughout.
NUMBA_ENABLED = _reason is None
#: Numba's version string, or None when the twins run.
NUMBA_VERSION = _nb.__version__ if NUMBA_ENABLED else None

if NUMBA_ENABLED:
    njit = _nb.njit
    prange = _nb.prange
    get_num_threads = _nb.get_num_threads
    set_num_threads = _nb.set_num_threads

    def max_threads():
        """The most threads the kernels may use (Numba's NUMBA_NUM_THREADS)."""
        return _nb.config.NUMBA_NUM_THREADS
else:
    prange = range

    def njit(*args, **kwargs):
        """A stand-in for ``numba.njit``: the kernel becomes a stub that raises if called
        (the entry points call its twin instead)."""
        def stub(func):
            @functools.wraps(func)
            def refuse(*a, **k):
                raise RuntimeError(f"{func.__qualname__} is a Numba kernel and Numba is off "
                                   f"({_reason}); call its NumPy twin")
            return refuse
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return stub(args[0])
        return stub

    def get_num_threads():
        return 1

    def set_num_threads(n):
        """Without Numba the twins run NumPy code: one thread for the kernels' share."""
        if n != 1:
            raise ValueError(f"set_num_threads: n={n!r}, but without Numba ({_reason}) "
                             "npae's kernels run on 1 thread only")

    def max_threads():
        return 1

    warnings.warn(f"npae runs its slower plain-NumPy path: {_reason}. For the fast Numba "
                  "kernels, `pip install numba` (on a Python that Numba supports) and unset "
                  "NPAE_DISABLE_NUMBA.", NumbaUnavailableWarning, stacklevel=2)


class Deferred:
    """Compile a kernel only once it has been asked for ``after`` times, in a background
    thread; until it is ready, its caller runs the kernel's NumPy twin.

    Only for a kernel whose twin gives the same bits (a test holds them to that): then which
    one ran, and when, changes no result. A short run (a first fit on a few batches) then
    never waits for the compiler; a long one switches to the kernel once it is compiled,
    in the background, after the start (so the compile does not hold Numba's compiler lock
    while the run still compiles the kernels it cannot do without). If the compile fails,
    the twin keeps serving. Usage in an entry point::

        if not _deferred.ready(*kernel_args):
            return twin(...)
        return kernel(*kernel_args)
    """

    #: every Deferred made, for ``use_kernels_now``
    instances = []

    def __init__(self, kernel, after):
        self.kernel, self.after = kernel, after
        self.calls, self.done, self.thread = 0, False, None
        Deferred.instances.append(self)

    def ready(self, *args):
        if not NUMBA_ENABLED:
            return False
        if self.done:
            return True
        self.calls += 1
        if self.thread is None and self.calls >= self.after:
            sig = tuple(_nb.typeof(a) for a in args)
            # a daemon: a process that ends before the compile does is not kept waiting
            self.thread = threading.Thread(target=self._compile, args=(sig,), daemon=True,
                                           name="npae-compile")
            self.thread.start()
        return False

    def _compile(self, sig):
        try:
            self.kernel.compile(sig)
        except Exception:  # the twin is correct, only slower: keep it
            return
        self.done = True


def use_kernels_now():
    """From now on every deferred kernel runs (compiled at its next call if need be) instead
    of its twin; for the tests that hold a kernel to its twin through the entry point."""
    for d in Deferred.instances:
        d.done = NUMBA_ENABLED
