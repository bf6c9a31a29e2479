"""``npae exercises template FILE``: a file of stubs, one per exercise, ready to fill in."""
from __future__ import annotations

import os
import textwrap

from .._io import atomic_write
from .registry import EXERCISES, get_exercise

__all__ = ["template_source", "write_template"]

_HEADER = '''\
"""Answers to {what}.

Replace each `raise NotImplementedError` with your answer, then check your work:

    npae check {filename}{course}                  # every exercise
    npae check {filename}{course} --exercise NAME  # one of them

Keep the functions' names and arguments: the checker finds them by name and calls them
with float64 NumPy arrays (rows are samples; conv tensors are NCHW) in this order. It
compares your gradient with finite differences and with the reference gradient, and
when an answer is wrong it says how (a factor of 2, a sign, a transpose, a missing term,
the batch size, ...). `npae exercises list{course}` lists the exercises.
"""
import numpy as np
'''


def _docstring(text):
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return textwrap.indent(f'"""{text}\n"""', "    ")


def template_source(names=None, filename="answers.py", exercises=None, course=None):
    """The stub file's text for the exercises ``names`` (default: all) of the table
    ``exercises`` (default: the built-in ones; ``course`` names their course file)."""
    table = EXERCISES if exercises is None else exercises
    selected = [get_exercise(n, table) for n in (names or list(table))]
    what = ("the course's gradient exercises" if course else
            "npae's gradient exercises (from the autoencoder lecture)")
    flag = f" --exercises {os.path.basename(os.fspath(course))}" if course else ""
    parts = [_HEADER.format(filename=filename, what=what, course=flag)]
    for ex in selected:
        parts.append(f"\n\n{ex.signature}\n{_docstring(ex.statement)}\n"
                     "    raise NotImplementedError\n")
    return "".join(parts)


def write_template(path, names=None, force=False, exercises=None, course=None):
    """Write the stubs to ``path``; refuse to replace an existing file unless ``force``."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a directory; give a file name such as answers.py")
    if os.path.exists(path) and not force:
        raise FileExistsError(f"{path!r} already exists; not overwriting your answers "
                              "(choose another name, or pass --force to replace it)")
    text = template_source(names, filename=os.path.basename(path), exercises=exercises,
                           course=course)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    return path
