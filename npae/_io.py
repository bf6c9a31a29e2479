"""Atomic file writes: a save that is interrupted leaves the previous file intact."""
from __future__ import annotations

import os
import tempfile

import numpy as np

__all__ = ["atomic_savez", "atomic_write"]


def atomic_write(path, write):
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then rename it over ``path``.

    ``os.replace`` is atomic on POSIX and Windows: readers see the old file or the new one,
    never half of one, and a crash mid-write leaves only a stray temporary file.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".npae-", suffix=".tmp", dir=directory)
    try:
        # mkstemp creates the file private (0600); give it the mode a plain open() would
        # (or keep the mode of the file it replaces), so a saved figure stays readable
        os.chmod(tmp, _target_mode(path))
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def _target_mode(path):
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_savez(path, **arrays):
    """``np.savez`` to ``path`` atomically (no pickled objects: plain arrays only)."""
    for name, v in arrays.items():
        if np.asarray(v).dtype == object:
            raise TypeError(f"array {name!r} has dtype object; npae files hold plain arrays only")
    return atomic_write(path, lambda f: np.savez(f, **arrays))
