"""Where the grader runs as root: each check's answers run as a uid of their own.

A ``Sandbox`` is one submission's check. It picks an unassigned numeric uid and gid (from a
high range, absent from the password and group databases and owning no process; no account is
created, so none is left behind), makes a private working folder (mode 0700, owned by that
uid) and copies the answers file into it (with the .py files beside it, when they may be
imported). The answer process (``runner.py``) starts as root,
imports what it needs, then gives up root for that uid and gid for good, with no
supplementary groups, a cap on its number of processes, its working folder as cwd and no file
descriptor of the grader's but its two pipes. So the answers cannot read what only root may
read (the course file with its references and hidden inputs, once the deployment makes it
root-only; ``npae autograder``'s run_autograder does), cannot write the results (written by
root, after the check) and cannot signal or trace the grader. When the check ends,
``close`` kills every process of the uid (a detached child included) and removes the folder.

Not root (a student checking their own file), the answers run with the user's own rights:
``announce_unprivileged`` says so, once per process.
"""
from __future__ import annotations

import grp
import os
import pwd
import random
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["Sandbox", "can_isolate", "announce_unprivileged", "processes_of", "UID_RANGE"]

#: the uids (and gids) a sandbox picks from: far above any assigned account's
UID_RANGE = (1_600_000_000, 2_000_000_000)
#: the most processes (threads included) the answers' uid may have at once
MAX_PROCESSES = 64

_announced = False


def can_isolate():
    """True where answers can run as a uid of their own (POSIX, the grader is root)."""
    return os.name == "posix" and hasattr(os, "geteuid") and os.geteuid() == 0


def announce_unprivileged(stream=None):
    """Say once per process that the answers run with the user's own rights (not root)."""
    global _announced
    if _announced or can_isolate():
        return
    _announced = True
    print("npae: note: not running as root, so the answers run with your own user's rights "
          "(as root, as on a grading server, each submission runs as a user of its own)",
          file=stream or sys.stderr)


def processes_of(uid):
    """The pids of the live (not zombie) processes whose real uid is ``uid``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        if (int(fields.get("Uid", "-1").split()[0]) == uid
                and not fields.get("State", "").strip().startswith(("Z", "X"))):
            pids.append(int(entry))
    return pids


def _unassigned(uid):
    try:
        pwd.getpwuid(uid)
        return False
    except KeyError:
        pass
    try:
        grp.getgrgid(uid)
        return False
    except KeyError:
        pass
    return not processes_of(uid)


def _pick_uid():
    rng = random.SystemRandom()
    for _ in range(100):
        uid = rng.randrange(*UID_RANGE)
        if _unassigned(uid):
            return uid
    raise RuntimeError("found no unassigned uid to run the answers as")


def kill_all(uid, gid, wait=5.0):
    """Kill every process of ``uid``: a child of ours becomes that uid and sends SIGKILL to
    every process it may signal (``kill(-1)``: only that uid's), until none is left (Linux's
    kill(-1) does not report whether it found any: /proc says) or ``wait`` runs out."""
    pid = os.fork()
    if pid == 0:               # the child: becomes the uid, kills, _exits
        code = 1
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            me = os.getpid()
            end = time.monotonic() + wait
            while time.monotonic() < end:
                os.kill(-1, signal.SIGKILL)
                if not [p for p in processes_of(uid) if p != me]:
                    code = 0
                    break
                time.sleep(0.005)
        except BaseException:
            pass
        finally:
            os._exit(code)
    os.waitpid(pid, 0)


class Sandbox:
    """One check's uid, gid and private folder (a context manager; see the module)."""

    def __init__(self, answers, neighbours=()):
        self.uid = _pick_uid()
        self.gid = self.uid
        self.folder = Path(tempfile.mkdtemp(prefix="npae-answers-"))
        os.chown(self.folder, self.uid, self.gid)
        os.chmod(self.folder, 0o700)
        src = Path(answers)
        self.answers = self.folder / src.name
        for path in [*neighbours, src]:       # the answers last: they win a name clash
            copy = self.folder / Path(path).name
            shutil.copyfile(path, copy)
            os.chown(copy, self.uid, self.gid)
            os.chmod(copy, 0o600)

    def runner_args(self):
        """The answer process's command-line tail: who to become, and its process cap."""
        return [str(self.uid), str(self.gid), str(MAX_PROCESSES)]

    def env(self, pythonpath):
        """The answer process's whole environment: nothing of the grader's."""
        return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.folder),
                "TMPDIR": str(self.folder), "LANG": "C.UTF-8", "PYTHONPATH": pythonpath,
                "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1",
                "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    def kill(self):
        kill_all(self.uid, self.gid)

    def close(self):
        self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
