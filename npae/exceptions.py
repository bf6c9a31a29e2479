"""npae's error classes, in one place.

Each is also a built-in error (ValueError, TypeError, ...), so ``except ValueError`` written
for NumPy or scikit-learn catches npae's too; each is importable from here and, as before,
from the module that raises it.
"""
from __future__ import annotations

import sys

__all__ = ["AnswerCrash", "AnswerTimeout", "AnswersImportError", "CourseFileError",
           "DataTypeError", "ExerciseCodeError", "FileFormatError", "Float32Error",
           "NonFiniteError", "NotFittedError", "NumbaUnavailableWarning", "TrainingDiverged",
           "UsageError", "UserCodeError"]


class DataTypeError(TypeError, ValueError):
    """Input whose values are of the wrong kind (complex, object, strings, sparse).

    A TypeError by nature; also a ValueError because that is what numpy and scikit-learn
    raise for such data, so code written against either catches npae's error too.
    """


class FileFormatError(ValueError):
    """A file that is not what npae expected: not an npae file at all, damaged, truncated,
    or holding arrays that do not fit the model (wrong shape, NaN or inf). The message names
    the file and, where one is at fault, the array."""


class NonFiniteError(ValueError):
    """An array holds NaN or inf, or values so large that computing with them overflows.
    ``name`` is the array's name in the message.

    Its own class so that the training loop can tell an overflow inside a diverging model
    (weights grown huge) from any other ValueError and report it as divergence.
    """

    def __init__(self, message, name=None):
        super().__init__(message)
        self.name = name


class NumbaUnavailableWarning(UserWarning):
    """npae runs its plain-NumPy twins of the Numba kernels: Numba could not be imported, or
    ``NPAE_DISABLE_NUMBA=1`` asked for the twins. Results are correct, only slower; given once
    per process, when npae is imported."""


class NotFittedError(ValueError, AttributeError):
    """Raised when a model is used before ``fit`` (same bases as scikit-learn's)."""


class TrainingDiverged(FloatingPointError, ValueError):
    """The training loss became NaN or infinite, or grew far past its start (usually: the
    learning rate is too large). The message names what happened, the epoch and what to do;
    the model's parameters are those of the last good epoch.

    Also a ValueError: like any other refusal of what ``fit`` was given (here a learning
    rate or a data scale the optimisation cannot survive), ``except ValueError`` catches it.
    """


# -- the gradient checker, the homework checker and the command line ---------------------


class Float32Error(ValueError):
    """A finite-difference check was asked for in float32, where it cannot be trusted."""


class UserCodeError(Exception):
    """The user's module or function failed; the message says where, without a traceback."""


class CourseFileError(Exception):
    """The course file is missing, does not run, or registers no exercise (one-line message)."""


class ExerciseCodeError(Exception):
    """An exercise's own code (cases, objective, reference) failed: the check cannot run."""


class AnswerTimeout(Exception):
    """The answer process did not reply before the deadline; it has been killed."""


class AnswerCrash(Exception):
    """The answer process died (or broke the protocol); the message says how."""


class AnswersImportError(Exception):
    """The answers file did not import (its message names the line)."""


class UsageError(Exception):
    """The command cannot run as asked (exit status 2); the message is one line."""


def not_fitted_error():
    """npae's NotFittedError; once scikit-learn is loaded, also an instance of its own.

    Code that mixes the two libraries (pipelines, ``except NotFittedError`` written for
    scikit-learn) then catches npae's error too. scikit-learn is only looked up among the
    modules already imported, never imported here.
    """
    sk = sys.modules.get("sklearn.exceptions")
    if sk is None:
        return NotFittedError
    cls = _SKLEARN_NOT_FITTED.get(sk.NotFittedError)
    if cls is None:
        cls = type("NotFittedError", (NotFittedError, sk.NotFittedError),
                   {"__module__": __name__, "__doc__": NotFittedError.__doc__,
                    # pickles as npae's own class (this one has no importable name)
                    "__reduce__": lambda self: (NotFittedError, self.args)})
        _SKLEARN_NOT_FITTED[sk.NotFittedError] = cls
    return cls


_SKLEARN_NOT_FITTED = {}
