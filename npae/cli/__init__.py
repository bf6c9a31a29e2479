"""Command line: ``npae <command> ...`` (also ``python -m npae``).

Each command is a pair: ``_add_<name>(subparsers)`` declares its arguments and
``_cmd_<name>(args)`` runs it and returns the exit status. The pairs live in three modules by
what they serve: ``course`` (check, exercises), ``autograder``, ``grade``, ``gradcheck``, ``training`` (demo, train)
and ``tools`` (pca, bench).
"""
from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..exceptions import UsageError
from . import autograder, course, grade, gradcheck, training, tools


class _Parser(argparse.ArgumentParser):
    """A usage error is one line on stderr and exit status 2 (no usage block, no traceback)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser():
    parser = _Parser(
        prog="npae", description="Autoencoders in plain NumPy: the lecture, runnable.")
    parser.add_argument("--version", action="version", version=f"npae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    adders = {name: obj for module in (autograder, course, grade, gradcheck, training, tools)
              for name, obj in vars(module).items() if name.startswith("_add_")}
    for name in sorted(adders):
        adders[name](sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"npae {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, TypeError) as exc:
        print(f"npae {args.command}: error: {exc}", file=sys.stderr)
        return 1

