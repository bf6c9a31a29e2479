"""Command line: ``npae <command> ...`` (also ``python -m npae``).

Each command is a pair: ``_add_<name>(subparsers)`` declares its arguments and
``_cmd_<name>(args)`` runs it and returns the exit status.
"""
from __future__ import annotations

import argparse
import sys

from . import __version__


def build_parser():
    parser = argparse.ArgumentParser(
        prog="npae", description="Autoencoders in plain NumPy: the lecture, runnable.")
    parser.add_argument("--version", action="version", version=f"npae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, obj in sorted(globals().items()):
        if name.startswith("_add_"):
            obj(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, TypeError) as exc:
        print(f"npae {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
