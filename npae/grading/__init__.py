"""The grading engine: runs a student's answers apart and judges them.

``checker`` judges (finite differences, the reference, the catalogued mistakes); ``isolation``
runs the answers in a process of their own, which executes ``runner.py``; ``protocol`` is the
one definition of the messages between the two (standard library and NumPy only, loaded by path
in the answer process); ``report`` writes the results for machines; ``submission`` checks a whole file (.py or
notebook), under a uid of its own where the grader is root (``sandbox``). The exercises themselves
are ``npae.exercises``.
"""
from .checker import ExerciseResult, check_exercise, format_results, load_answers
from .submission import check_answers

__all__ = ["ExerciseResult", "check_answers", "check_exercise", "format_results",
           "load_answers"]
