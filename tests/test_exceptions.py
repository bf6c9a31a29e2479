"""npae's error classes live in npae.exceptions and are the same objects wherever they were
importable before (so ``except`` clauses written against either name keep working)."""
import pickle

import pytest

from npae import exceptions


@pytest.mark.parametrize("module, name", [
    ("npae.models", "NotFittedError"),
    ("npae.models.base", "NotFittedError"),
    ("npae.train", "TrainingDiverged"),
    ("npae._validation", "DataTypeError"),
    ("npae._validation", "NonFiniteError"),
    ("npae.gradcheck", "Float32Error"),
    ("npae.exercises", "CourseFileError"),
    ("npae.cli.gradcheck", "UserCodeError"),
    ("npae.grading.checker", "ExerciseCodeError"),
    ("npae.grading.isolation", "AnswerTimeout"),
    ("npae.grading.isolation", "AnswerCrash"),
    ("npae.grading.isolation", "AnswersImportError"),
    ("npae.cli", "UsageError"),
])
def test_reexported_from_where_they_were(module, name):
    import importlib
    assert getattr(importlib.import_module(module), name) is getattr(exceptions, name)


def test_bases_keep_their_meaning():
    assert issubclass(exceptions.TrainingDiverged, ValueError)
    assert issubclass(exceptions.TrainingDiverged, FloatingPointError)
    assert issubclass(exceptions.NotFittedError, ValueError)
    assert issubclass(exceptions.NotFittedError, AttributeError)
    assert issubclass(exceptions.DataTypeError, TypeError)
    assert issubclass(exceptions.DataTypeError, ValueError)
    assert not issubclass(exceptions.NonFiniteError, TypeError)
    err = exceptions.NonFiniteError("W overflowed", name="W")
    assert err.name == "W" and str(err) == "W overflowed"


def test_every_error_class_is_module_level_and_picklable():
    for name in exceptions.__all__:
        cls = getattr(exceptions, name)
        assert cls.__module__ == "npae.exceptions"
        again = pickle.loads(pickle.dumps(cls("message")))
        assert type(again) is cls and again.args == ("message",)
