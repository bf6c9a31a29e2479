"""Command line: ``npae <command> ...`` (also ``python -m npae``).

Each command is a pair: ``_add_<name>(subparsers)`` declares its arguments and
``_cmd_<name>(args)`` runs it and returns the exit status. The pairs live in three modules by
what they serve: ``course`` (check, exercises), ``gradcheck``, ``autograder`` and ``grade``
(the grader's commands, over ``npae.grading``), ``training`` (demo, train) and ``tools``
(pca, bench); the argument types they share (each option checked where it enters) are in
``_args``.

The exit status, the same for every command:

* 0 -- the command did what was asked;
* 1 -- it ran, and the run failed: training diverged, a gradient check or a homework check
  did not pass, the disk filled up;
* 2 -- misuse, found before or while the command starts: a bad option (argparse), a file or
  folder that is missing or unsuitable (``--out`` onto a file, a damaged checkpoint or model
  file, a data folder without the data), a size that cannot fit in memory, data or settings
  a model refuses.

Either failure is one line on stderr, ``npae <command>: error: ...``. An error npae did not
anticipate (a bug) keeps its traceback, so that it can be reported and fixed.
"""
from __future__ import annotations

import argparse
import linecache
import os
import sys

from .. import __version__
from ..exceptions import FileFormatError, TrainingDiverged, UsageError
from . import autograder, course, grade, gradcheck, training, tools

# Errors about the files and folders the user named: missing, of the wrong kind, not
# writable. Other OSErrors (a full disk, an I/O error) are failed runs.
_FILE_MISUSE = (FileNotFoundError, NotADirectoryError, IsADirectoryError, FileExistsError,
                PermissionError)

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Parser(argparse.ArgumentParser):
    """A usage error is one line on stderr and exit status 2 (no usage block, no traceback)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser():
    parser = _Parser(
        prog="npae", description="Autoencoders in plain NumPy: the lecture, runnable. Exit "
        "status: 0 success, 1 a run that failed (training diverged, a check did not pass), "
        "2 misuse (bad options, missing or unsuitable files, data a model refuses).")
    parser.add_argument("--version", action="version", version=f"npae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    adders = {name: obj for module in (autograder, course, grade, gradcheck, training, tools)
              for name, obj in vars(module).items() if name.startswith("_add_")}
    for name in sorted(adders):
        adders[name](sub)
    return parser


def _one_line(exc):
    """The exception's message on one line (some messages list what was looked for)."""
    return " ".join(part.strip() for part in str(exc).splitlines() if part.strip()) \
        or type(exc).__name__


def _refused_by_npae(exc):
    """Whether ``exc`` was raised on purpose by npae's own code -- the innermost frame of its
    traceback is a ``raise`` statement in the npae package -- as every refusal of bad data,
    settings or files is. A ValueError from inside NumPy, or from an npae line that is not a
    ``raise``, is not anticipated: a bug, whose traceback must not be hidden."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = os.path.abspath(tb.tb_frame.f_code.co_filename)
    if not filename.startswith(_PACKAGE_DIR + os.sep):
        return False
    return linecache.getline(filename, tb.tb_lineno).lstrip().startswith("raise")


def main(argv=None):
    """Run ``npae`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:   # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        return _fail(args, exc, 2)
    except TrainingDiverged as exc:   # a ValueError too: test it first
        return _fail(args, exc, 1)
    except (FileFormatError, *_FILE_MISUSE) as exc:
        return _fail(args, exc, 2)
    except ValueError as exc:
        if not _refused_by_npae(exc):
            raise
        return _fail(args, exc, 2)
    except OSError as exc:
        return _fail(args, exc, 1)


def _fail(args, exc, status):
    print(f"npae {args.command}: error: {_one_line(exc)}", file=sys.stderr)
    return status
