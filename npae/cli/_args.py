"""Argument types for the command line: each option is checked where it enters.

Each function here is an argparse ``type=``: it turns the option's text into a value or
raises ``argparse.ArgumentTypeError`` with the value and the allowed range. argparse then
prefixes the option's name ("argument --lr: ...") and the parser ends with one line on stderr
and exit status 2, before any data is loaded or any model built. Numbers are refused when
they are not finite (nan, inf), whatever their range, because a NaN hyper-parameter would
otherwise pass every comparison unnoticed and poison a run.
"""
from __future__ import annotations

import argparse
import math
import os

from ..exceptions import UsageError

__all__ = ["int_in", "positive_int", "natural", "seed", "finite_float", "seconds",
           "tolerance", "probability",
           "output_folder", "data_folder", "refuse_folder_at"]

# names find_dataset accepts for --data besides a path
DATA_NAMES = ("mnist", "fashion-mnist", "synthetic")


def _int(text, wanted):
    try:
        return int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; expected "
                                         f"{wanted}") from None


def int_in(low, high=None):
    """An argparse type: a whole number from ``low`` to ``high`` (None: no upper bound)."""
    wanted = (f"a whole number >= {low}" if high is None
              else f"a whole number in [{low}, {high}]")

    def parse(text):
        value = _int(text, wanted)
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is out of range: expected {wanted}")
        return value

    parse.__name__ = wanted   # argparse's fallback messages use the name
    return parse


positive_int = int_in(1)
positive_int.__doc__ = "A whole number >= 1 (epochs, sizes, batch sizes)."
natural = int_in(0)
natural.__doc__ = "A whole number >= 0."
# what numpy's and scikit-learn's seeding take everywhere (a seed is saved with the model)
seed = int_in(0, 2 ** 32 - 1)
seed.__doc__ = "A seed: a whole number in [0, 2**32 - 1]."


def _interval(low, high, low_open, high_open):
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    return (f"{left}{'-inf' if low is None else f'{low:g}'}, "
            f"{'inf' if high is None else f'{high:g}'}{right}")


def finite_float(low=None, high=None, *, low_open=False, high_open=False):
    """An argparse type: a finite float in the interval from ``low`` to ``high`` (None: no
    bound on that side; ``*_open``: the bound itself excluded)."""
    where = _interval(low, high, low_open, high_open)

    def parse(text):
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; expected a finite "
                                             f"number in {where}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not finite; expected a finite number "
                                             f"in {where}")
        inside = True
        if low is not None:
            inside = value > low if low_open else value >= low
        if inside and high is not None:
            inside = value < high if high_open else value <= high
        if not inside:
            raise argparse.ArgumentTypeError(f"{text} is out of range: expected a finite "
                                             f"number in {where}")
        return value

    parse.__name__ = f"number in {where}"   # argparse's fallback messages use the name
    return parse


seconds = finite_float(0, low_open=True)
seconds.__doc__ = "A time limit in seconds: a finite number > 0."
tolerance = finite_float(0)
tolerance.__doc__ = "A gradient check's rtol or atol: a finite number >= 0."


def probability(*, low_open=False, high_open=False):
    """A probability: a finite float in [0, 1], either end excluded on request."""
    return finite_float(0.0, 1.0, low_open=low_open, high_open=high_open)


def output_folder(text):
    """A folder that exists, or can be made: not an existing file, nor under one."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path; expected a folder")
    path = os.path.abspath(os.path.expanduser(text))
    if os.path.exists(path) and not os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"{text} is an existing file, not a folder; name a "
                                         "folder (it is created if missing)")
    parent = path
    while not os.path.exists(parent):
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    if os.path.exists(parent) and not os.path.isdir(parent):
        raise argparse.ArgumentTypeError(f"{text}: {parent} is a file, so no folder can be "
                                         "made under it; name a folder")
    return text


def data_folder(text):
    """``--data``: one of the names mnist, fashion-mnist, synthetic, or a path that exists
    (whether it holds the data is told when it is read)."""
    if text in DATA_NAMES:
        return text
    if not os.path.exists(os.path.expanduser(text)):
        raise argparse.ArgumentTypeError(
            f"{text} does not exist; expected a folder with the MNIST files "
            "(train-images-idx3-ubyte.gz, ...), a mnist.npz, or one of "
            + ", ".join(DATA_NAMES))
    return text


def refuse_folder_at(path, option):
    """Raise UsageError when a folder sits at ``path``, where a run is about to write a file
    (a checkpoint, a model, a figure): found before the run, not when it ends."""
    if os.path.isdir(path):
        raise UsageError(f"{path} is a folder, but the run writes a file there (from "
                         f"{option}); remove or rename that folder, or choose another "
                         f"{option}")
