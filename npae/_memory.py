"""Refuse sizes whose arrays could never fit in this machine's memory.

A hyper-parameter such as ``n_hidden=10**12`` would otherwise reach NumPy's allocator and end
in a ``MemoryError`` ("Unable to allocate 43.7 TiB") that names neither the argument nor what
to do. Estimators, the model-file reader and the command line call :func:`check_fits_in_memory`
with the number of array entries a size implies, before allocating anything.
"""
from __future__ import annotations

import math
import os

__all__ = ["total_memory_bytes", "check_fits_in_memory"]


def total_memory_bytes():
    """The machine's total physical memory in bytes, as the system reports it.

    POSIX ``sysconf`` where it exists; elsewhere (Windows) no figure is available and 2**63 is
    returned, so that only sizes beyond any machine are refused there.
    """
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        page_size = os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 2 ** 63
    if pages <= 0 or page_size <= 0:
        return 2 ** 63
    return int(pages) * int(page_size)


def check_fits_in_memory(n_entries, itemsize=8, *, what, error=ValueError):
    """Raise ``error`` naming ``what`` if ``n_entries`` entries of ``itemsize`` bytes exceed memory.

    ``what`` says in the user's words where the size came from, for example
    ``"n_hidden=1000000000000 (the 784 x n_hidden weight matrix W)"``. ``n_entries`` may be a
    Python int of any size (no overflow), or a float.
    """
    n_entries = int(n_entries) if not isinstance(n_entries, float) else n_entries
    if isinstance(n_entries, float) and not math.isfinite(n_entries):
        raise error(f"{what}: the size is not finite")
    n_bytes = n_entries * int(itemsize)
    total = total_memory_bytes()
    if n_bytes > total:
        raise error(f"{what} needs {_human(n_bytes)} for its arrays, more than this machine's "
                    f"{_human(total)} of memory: choose a smaller size")
    return n_bytes


def _human(n_bytes):
    n = float(n_bytes)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n_bytes} bytes"  # pragma: no cover
