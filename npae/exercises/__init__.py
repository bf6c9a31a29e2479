"""Course exercises from the lecture, and the homework checker.

    from npae.exercises import EXERCISES, check_answers
    for r in check_answers("my_answers.py"):
        print(r.line())

From the shell: ``npae exercises list``, ``npae exercises template answers.py``,
``npae check answers.py [--exercise NAME]``, ``npae gradcheck MODULE:FUNCTION --shape 3,4``.
"""
from .registry import EXERCISES, Exercise, exercise_names, get_exercise, register
from . import lecture  # noqa: F401,E402  (registers the lecture's exercises)

__all__ = ["EXERCISES", "Exercise", "exercise_names", "get_exercise", "register"]
