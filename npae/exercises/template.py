"""``npae exercises template FILE``: a file of stubs, one per exercise, ready to fill in."""
from __future__ import annotations

import os
import textwrap

from .._io import atomic_write
from .registry import EXERCISES, get_exercise

__all__ = ["template_source", "write_template"]

_HEADER = '''\
"""Answers to npae's gradient exercises (from the autoencoder lecture).

Replace each `raise NotImplementedError` with your answer, then check your work:

    npae check {filename}                       # every exercise
    npae check {filename} --exercise NAME       # one of them

Keep the functions' names and arguments: the checker finds them by name and calls them
with float64 NumPy arrays (rows are samples; conv tensors are NCHW) in this order. It
compares your gradient with finite differences and with npae's own implementation, and
when an answer is wrong it says how (a factor of 2, a sign, a transpose, a missing term,
the batch size, ...). `npae exercises list` lists the exercises.
"""
import numpy as np
'''


def _docstring(text):
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return textwrap.indent(f'"""{text}\n"""', "    ")


def template_source(names=None, filename="answers.py"):
    """The stub file's text for the exercises ``names`` (default: all)."""
    exercises = [get_exercise(n) for n in (names or list(EXERCISES))]
    parts = [_HEADER.format(filename=filename)]
    for ex in exercises:
        parts.append(f"\n\n{ex.signature}\n{_docstring(ex.statement)}\n"
                     "    raise NotImplementedError\n")
    return "".join(parts)


def write_template(path, names=None, force=False):
    """Write the stubs to ``path``; refuse to replace an existing file unless ``force``."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a directory; give a file name such as answers.py")
    if os.path.exists(path) and not force:
        raise FileExistsError(f"{path!r} already exists; not overwriting your answers "
                              "(choose another name, or pass --force to replace it)")
    text = template_source(names, filename=os.path.basename(path))
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    return path
