"""npae's files: atomic writes, and reads that say what a damaged or foreign file is.

A save writes a temporary ``.npae-*.tmp`` file beside its target and renames it over the
target, so readers see the old file or the new one, never half of one. A save killed
midway leaves its temporary file behind; the next save to the same folder removes every
such file whose writer is gone (each writer holds an advisory lock on its own temporary
file while it writes; a lock that can be taken belongs to a dead writer). Nothing ever
loads a temporary file.
"""
from __future__ import annotations

import glob
import json
import os
import tempfile
import time

import numpy as np

from .exceptions import FileFormatError

try:  # POSIX advisory locks; elsewhere stale files are recognised by their age alone
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["atomic_savez", "atomic_write", "read_npz", "read_npae_file",
           "write_npae_file", "remove_stale_temporaries", "TMP_PREFIX", "TMP_SUFFIX",
           "HEADER_KEY"]

#: the array of an npae file that holds its JSON header (kind of file, class, version)
HEADER_KEY = "__npae__"

TMP_PREFIX, TMP_SUFFIX = ".npae-", ".tmp"
#: without locks (Windows), a temporary file this old (seconds) belongs to a dead save
_STALE_AGE = 3600.0


def atomic_write(path, write):
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then rename it over ``path``.

    ``os.replace`` is atomic on POSIX and Windows: readers see the old file or the new one,
    never half of one. Stale temporary files of earlier, interrupted saves to the same
    folder are removed first.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(directory)
    fd, tmp = _locked_temporary(directory)
    try:
        # mkstemp creates the file private (0600); give it the mode a plain open() would
        # (or keep the mode of the file it replaces), so a saved figure stays readable
        os.chmod(tmp, _target_mode(path))
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            if fcntl is not None:
                # renamed while still open and locked: a cleaner never sees it unlocked
                os.replace(tmp, path)
        if fcntl is None:  # pragma: no cover - Windows cannot rename an open file
            os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def _locked_temporary(directory):
    """(fd, name) of a new temporary file in ``directory``, locked by this process.

    A cleaner in another process may take the lock between ``mkstemp`` and ``flock`` and
    unlink the file; the link count then reads 0 and a fresh file is made.
    """
    while True:
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=TMP_SUFFIX, dir=directory)
        if fcntl is None:  # pragma: no cover
            return fd, tmp
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink > 0:
            return fd, tmp
        os.close(fd)


def remove_stale_temporaries(directory):
    """Delete the ``.npae-*.tmp`` files in ``directory`` that no running save is writing.
    Returns the paths removed."""
    removed = []
    for tmp in glob.glob(os.path.join(glob.escape(directory), TMP_PREFIX + "*" + TMP_SUFFIX)):
        try:
            if fcntl is None:  # pragma: no cover
                if time.time() - os.stat(tmp).st_mtime > _STALE_AGE:
                    os.unlink(tmp)
                    removed.append(tmp)
                continue
            fd = os.open(tmp, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # a live save holds it
        try:
            os.unlink(tmp)
            removed.append(tmp)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


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


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def read_npz(path, what="an npae file"):
    """Every array of the .npz at ``path``, as a dict, read without pickle.

    A missing file raises FileNotFoundError; anything that is not a complete .npz archive
    (another kind of file, a truncated or damaged save, a temporary file of an interrupted
    save) raises ``FileFormatError`` (a ValueError) naming the file and saying what it is
    not. ``what`` names the kind of file expected ("an npae model file", "a checkpoint").
    """
    path = os.fspath(path)
    base = os.path.basename(path)
    if os.path.isdir(path):
        raise FileFormatError(f"{path!r} is a directory, not {what}; pass the path of the "
                              "file itself")
    if base.startswith(TMP_PREFIX) and base.endswith(TMP_SUFFIX):
        raise FileFormatError(f"{path!r} is the temporary file of an interrupted npae save, "
                              f"not {what}; load the file that save was writing")
    with open(path, "rb") as f:
        head = f.read(4)
    if head not in _ZIP_MAGIC:
        kind = ("a single .npy array, no npae header" if head.startswith(b"\x93NUM") else
                "an empty file" if not head else f"not a .npz archive: it starts {head!r}")
        raise FileFormatError(f"{path!r} is not {what} ({kind}; npae writes .npz archives); "
                              "check the path")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {name: f[name] for name in f.files}
    except Exception as exc:  # BadZipFile, EOFError, a bad CRC, a damaged .npy header ...
        raise FileFormatError(f"{path!r} is damaged or truncated (an interrupted copy or "
                              f"save?), not {what} npae can read: {type(exc).__name__}: "
                              f"{exc}") from None


def write_npae_file(path, header, arrays):
    """Write ``arrays`` and the JSON ``header`` (a dict: its "format", "version", "class"...)
    to the .npz at ``path`` atomically: the one writer of npae's own files."""
    return atomic_savez(path, **{HEADER_KEY: np.array(json.dumps(header))}, **arrays)


def read_npae_file(path, what, *, finite=("param/", "optim/", "attr/", "est/")):
    """(header or None, arrays) of an npae file (a model or a checkpoint): the one reader.

    Anything damaged is a ``FileFormatError`` naming the file: a directory, another kind of
    file, a truncated archive (``BadZipFile``, ``EOFError``), a header that is not JSON, an
    array that is complex or an object (or, for weights, a string), or a float
    array whose name starts with one of ``finite`` holding NaN or inf. ``None`` for the
    header: a file written before headers (npae 0.1 checkpoints).
    """
    path = os.fspath(path)
    data = read_npz(path, what)
    header = None
    if HEADER_KEY in data:
        raw = data.pop(HEADER_KEY)
        try:
            if raw.shape != () or raw.dtype.kind != "U":
                raise ValueError(f"a {raw.dtype} array of shape {raw.shape}, not a string")
            header = json.loads(str(raw))
        except ValueError as exc:
            raise FileFormatError(f"{path!r} is damaged: its npae header is not JSON "
                                  f"({exc})") from None
        if not isinstance(header, dict):   # JSON, but not the header npae writes: no format
            header = {}
    for key, value in data.items():
        # labels (``classes_``) may be strings; weights and everything else are real numbers
        weight = key.startswith(("param/", "optim/")) or "/param/" in key
        if value.dtype.kind not in ("biuf" if weight else "biufSU"):
            raise FileFormatError(f"{path!r} is damaged: array {key!r} has dtype {value.dtype} "
                                  f"(npae writes {'real numbers' if weight else 'numbers or labels'}"
                                  f" there), not {what} npae wrote")
        if (key.startswith(finite) and value.dtype.kind == "f"
                and not np.isfinite(value).all()):
            bad = ~np.isfinite(value)
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise FileFormatError(f"{path!r}: array {key!r} holds {int(bad.sum())} NaN or inf "
                                  f"value(s) (first at index {first}); the file is damaged or "
                                  "was saved from a diverged model; retrain or use another file")
    return header, data
