"""Keep freed memory for reuse during training, instead of handing it back to the system.

A training step allocates the same arrays every mini-batch (each layer's output and
gradients, up to about a megabyte each). With glibc's default settings, the C allocator gives
freed memory at the top of its heap back to the kernel as soon as more than twice the largest
block freed so far lies unused there, and takes it back on the next step: every page of it is
then zeroed and mapped again by the kernel (a "page fault"), about 250 pages a step for the
lecture's conv autoencoder, some 15 % of its step in a virtual machine.

``keep_freed_memory`` sets the two thresholds to the values glibc's own rule reaches after it
has freed a 32 MiB block (its largest mmap threshold on 64-bit systems): blocks under 32 MiB
come from the heap, and up to 64 MiB of free heap is kept. A process then holds on to up to
64 MiB it no longer uses; no result changes. The training loop (``npae.train.fit_loop``) calls
it once per process. It is process-wide, like any allocator setting, so the user can decline:
``NPAE_DEFAULT_MALLOC=1`` leaves the allocator as it was. On other C libraries (macOS,
Windows, musl) it does nothing.
"""
from __future__ import annotations

import ctypes
import os
import platform

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1   # <malloc.h>
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024     # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD   # what its dynamic rule pairs with it

_done = None


def keep_freed_memory():
    """Set glibc's mmap and trim thresholds as described above, once per process.

    Returns True if they are set (now or by an earlier call), False where nothing was done:
    not glibc, ``NPAE_DEFAULT_MALLOC=1``, or ``mallopt`` refused.
    """
    global _done
    if _done is None:
        _done = False
        if os.environ.get("NPAE_DEFAULT_MALLOC", "") not in ("", "0"):
            return False
        if platform.libc_ver()[0] != "glibc":
            return False
        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):
            return False
        mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
        # mallopt returns 1 on success
        _done = (mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
    return _done
