"""The exercise registry: what a gradient exercise is, and the table of them by name.

An exercise asks for one gradient, dL/d(wrt), of a scalar objective L taken from a slide.
The student writes a function with the registry's ``name`` and ``args`` (in that order);
the checker calls it on generated inputs and compares its output with finite differences of
``objective`` and with ``reference``, the course's own implementation of the same gradient.

A course adds its own exercises in a course file (``npae check --exercises FILE``): a Python
file that builds ``Exercise`` objects and hands them to ``register``. ``load_course`` runs
such a file with a fresh, empty registry, so only its exercises are checked.
"""
from __future__ import annotations

import contextlib
import keyword
import numbers
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = ["Exercise", "register", "get_exercise", "exercise_names", "EXERCISES",
           "collecting"]

#: name -> Exercise, in the lecture's order (insertion order)
EXERCISES: dict = {}

#: where ``register`` puts exercises: the built-in table, or a course file's fresh one
_TARGET = [EXERCISES]

#: Gradescope's visibility settings of a test
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
_REQUIRED = ("name", "statement", "args", "wrt", "objective", "reference", "cases")


def _first_axis(exercise):
    """The default batch size: the first axis of the first array argument (1 if none)."""
    def batch_size(inputs):
        for arg in exercise.args:
            v = inputs.get(arg)
            if isinstance(v, np.ndarray) and v.ndim:
                return int(v.shape[0])
        return 1
    return batch_size


@dataclass(frozen=True)
class Exercise:
    """One gradient exercise.

    Required (a course file's minimal exercise):

    name        the function the student implements (also the exercise's name)
    statement   the maths: the objective with its reduction stated, the shapes, the answer's
                shape; becomes the stub's docstring
    args        the signature, in order; the checker calls ``f(*args)`` positionally
    wrt         the argument the gradient is taken with respect to (the answer has its shape)
    objective   inputs dict -> float, the L whose gradient is asked (finite differences use it)
    reference   inputs dict -> ndarray, the right gradient (npae's, or the course's own)
    cases       numpy Generator -> list of inputs dicts (float64 arrays, ints, floats)

    Optional:

    title       one line, for ``npae exercises list`` (default: the statement's first line)
    slide       the lecture slide it comes from (default: none)
    batch_size  inputs dict -> n, the number of samples, for the "batch-size factor" hint
                (default: the first axis of the first array argument)
    terms       inputs dict -> {term name: scalar function of inputs[wrt]} whose gradients
                at inputs[wrt] add up to the answer; lets the checker name a missing term
    overlap     inputs dict -> bool mask of inputs[wrt]'s shape, the entries used by several
                windows/uses (for the "assignment instead of accumulation" hint)
    requires    modules the objective/reference need (an exercise whose module is missing
                is reported as unavailable instead of failing)
    mistakes    {hint text: inputs dict -> the gradient that mistake produces}: a wrong
                answer equal to one of them on the checked inputs gets that hint
    points      the exercise's weight in a grade (``--format gradescope``), default 1
    visibility  Gradescope's visibility of its test: visible (default), hidden,
                after_due_date or after_published
    hidden_cases  rng -> more input sets, checked after ``cases``; a failure on one is
                reported without its shapes ("a hidden input set"). They live in the course
                file, which students never get (they get the template)
    mistake_credit  {hint text of ``mistakes``: fraction in [0, 1]}: partial credit for an
                answer that is that catalogued mistake (default: none)
    """
    name: str = ""
    title: str = ""
    slide: str = ""
    statement: str = ""
    args: tuple = ()
    wrt: str = ""
    objective: Callable | None = None
    reference: Callable | None = None
    cases: Callable | None = None
    batch_size: Callable | None = None
    terms: Callable | None = None
    overlap: Callable | None = None
    requires: tuple = field(default=())
    mistakes: dict | None = None
    points: float = 1
    visibility: str = "visible"
    hidden_cases: Callable | None = None
    mistake_credit: dict | None = None

    def __post_init__(self):
        missing = [f for f in _REQUIRED if getattr(self, f) in (None, "", ())]
        if missing:
            raise ValueError(f"Exercise {self.name or '(no name)'!r} needs "
                             + ", ".join(missing) + " (the required fields are "
                             + ", ".join(_REQUIRED) + ")")
        if not isinstance(self.name, str) or not self.name.isidentifier() \
                or keyword.iskeyword(self.name):
            raise ValueError(f"Exercise name={self.name!r} must be a Python function name")
        args = tuple(self.args) if not isinstance(self.args, str) else (self.args,)
        if not all(isinstance(a, str) and a.isidentifier() for a in args) \
                or len(set(args)) != len(args):
            raise ValueError(f"Exercise {self.name!r}: args={self.args!r} must be distinct "
                             "argument names, e.g. ('X', 'W')")
        object.__setattr__(self, "args", args)
        if self.wrt not in args:
            raise ValueError(f"exercise {self.name!r}: wrt={self.wrt!r} is not one of its "
                             f"arguments {args}")
        for f in ("objective", "reference", "cases", "batch_size", "terms", "overlap",
                  "hidden_cases"):
            v = getattr(self, f)
            if v is not None and not callable(v):
                raise ValueError(f"Exercise {self.name!r}: {f} must be a function, got "
                                 f"{type(v).__name__}")
        if self.mistakes is not None:
            if not isinstance(self.mistakes, dict) or not all(
                    isinstance(k, str) and k and callable(v) for k, v in self.mistakes.items()):
                raise ValueError(f"Exercise {self.name!r}: mistakes must be a dict "
                                 "{hint text: function(inputs) -> gradient}")
        if isinstance(self.points, bool) or not isinstance(self.points, numbers.Real) \
                or not np.isfinite(self.points) or self.points < 0:
            raise ValueError(f"Exercise {self.name!r}: points={self.points!r} must be a "
                             "number >= 0")
        if self.visibility not in VISIBILITIES:
            raise ValueError(f"Exercise {self.name!r}: visibility={self.visibility!r} must be "
                             "one of " + ", ".join(VISIBILITIES))
        credit = self.mistake_credit or {}
        if not isinstance(credit, dict) or any(
                k not in (self.mistakes or {}) or isinstance(v, bool)
                or not isinstance(v, numbers.Real) or not 0 <= v <= 1
                for k, v in credit.items()):
            raise ValueError(f"Exercise {self.name!r}: mistake_credit must map hint texts of "
                             "its mistakes to fractions in [0, 1]")
        if isinstance(self.requires, str):
            object.__setattr__(self, "requires", (self.requires,))
        if not self.title:
            first = self.statement.strip().splitlines()[0].strip()
            object.__setattr__(self, "title", first)
        if self.batch_size is None:
            object.__setattr__(self, "batch_size", _first_axis(self))

    def missing_requirements(self):
        """The modules this exercise needs that are not importable (yet)."""
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

    def inputs(self, seed=None):
        """The inputs for ``--seed seed``: the fixed ones when None, else a stream drawn from
        (seed, the exercise's name), so every exercise gets its own inputs per seed and the
        same seed gives the same inputs, bit for bit."""
        if seed is None:
            return self.generate()
        return self.generate(np.random.SeedSequence([int(seed), self.seed]))

    def hidden_inputs(self, seed=None):
        """The hidden input sets for ``seed`` (none without ``hidden_cases``), drawn from a
        stream of their own."""
        if self.hidden_cases is None:
            return []
        entropy = [self.seed, 1] if seed is None else [int(seed), self.seed, 1]
        return list(self.hidden_cases(np.random.default_rng(np.random.SeedSequence(entropy))))


def register(exercise):
    """Add ``exercise`` to the registry (the built-in one, or the course file's)."""
    if not isinstance(exercise, Exercise):
        raise TypeError(f"register() takes an npae.exercises.Exercise, got "
                        f"{type(exercise).__name__}")
    target = _TARGET[-1]
    if exercise.name in target:
        raise ValueError(f"exercise {exercise.name!r} is registered twice")
    if exercise.wrt not in exercise.args:
        raise ValueError(f"exercise {exercise.name!r}: wrt={exercise.wrt!r} is not one of its "
                         f"arguments {exercise.args}")
    target[exercise.name] = exercise
    return exercise


@contextlib.contextmanager
def collecting():
    """Within the block, ``register`` adds to a fresh dict (yielded), not the built-ins."""
    fresh = {}
    _TARGET.append(fresh)
    try:
        yield fresh
    finally:
        _TARGET.remove(fresh)


def exercise_names(exercises=None):
    return list(EXERCISES if exercises is None else exercises)


def get_exercise(name, exercises=None):
    table = EXERCISES if exercises is None else exercises
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"no exercise named {name!r}; the exercises are: "
                         + ", ".join(table) + " (see `npae exercises list`)") from None
