"""The exercise registry: what a gradient exercise is, and the table of them by name.

An exercise asks for one gradient, dL/d(wrt), of a scalar objective L taken from a slide.
The student writes a function with the registry's ``name`` and ``args`` (in that order);
the checker calls it on generated inputs and compares its output with finite differences of
``objective`` and with ``reference``, npae's own implementation of the same gradient.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = ["Exercise", "register", "get_exercise", "exercise_names", "EXERCISES"]

#: name -> Exercise, in the lecture's order (insertion order)
EXERCISES: dict = {}


@dataclass(frozen=True)
class Exercise:
    """One gradient exercise.

    name        the function the student implements (also the exercise's name)
    title       one line, for ``npae exercises list``
    slide       the lecture slide it comes from (its heading in the lecture)
    statement   the maths: the objective with its reduction stated, the shapes, the answer's
                shape; becomes the stub's docstring
    args        the signature, in order; the checker calls ``f(*args)`` positionally
    wrt         the argument the gradient is taken with respect to (the answer has its shape)
    objective   inputs dict -> float, the L whose gradient is asked (finite differences use it)
    reference   inputs dict -> ndarray, npae's gradient (calls into npae's layers/models)
    cases       numpy Generator -> list of inputs dicts (float64 arrays, ints)
    terms       optional: inputs dict -> {term name: scalar function of inputs[wrt]} whose
                gradients at inputs[wrt] add up to the answer; lets the checker name a
                missing term
    overlap     optional: inputs dict -> bool mask of inputs[wrt]'s shape, the entries used
                by several windows/uses (for the "assignment instead of accumulation" hint)
    requires    npae modules the objective/reference need (an exercise whose module is
                missing is listed as unavailable instead of failing)
    batch_size  inputs dict -> n, the number of samples (for the "batch-size factor" hint)
    """
    name: str
    title: str
    slide: str
    statement: str
    args: tuple
    wrt: str
    objective: Callable
    reference: Callable
    cases: Callable
    batch_size: Callable
    terms: Callable | None = None
    overlap: Callable | None = None
    requires: tuple = field(default=())

    def missing_requirements(self):
        """The npae modules this exercise needs that are not importable (yet)."""
        import importlib.util
        missing = []
        for mod in self.requires:
            try:
                found = importlib.util.find_spec(mod) is not None
            except ImportError:
                found = False
            if not found:
                missing.append(mod)
        return missing

    @property
    def signature(self):
        return f"def {self.name}({', '.join(self.args)}):"

    @property
    def seed(self):
        """A fixed seed per exercise, so a student sees the same inputs on every run."""
        return zlib.crc32(self.name.encode())

    def generate(self, rng=None):
        """The exercise's inputs: a list of dicts (float64 arrays and ints)."""
        return self.cases(np.random.default_rng(self.seed if rng is None else rng))


def register(exercise):
    if exercise.name in EXERCISES:
        raise ValueError(f"exercise {exercise.name!r} is registered twice")
    if exercise.wrt not in exercise.args:
        raise ValueError(f"exercise {exercise.name!r}: wrt={exercise.wrt!r} is not one of its "
                         f"arguments {exercise.args}")
    EXERCISES[exercise.name] = exercise
    return exercise


def exercise_names():
    return list(EXERCISES)


def get_exercise(name):
    try:
        return EXERCISES[name]
    except KeyError:
        raise ValueError(f"no exercise named {name!r}; the exercises are: "
                         + ", ".join(EXERCISES) + " (see `npae exercises list`)") from None
