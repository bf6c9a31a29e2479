"""Course exercises: the lecture's, those beyond it, and a course's own (the content).

The engine that runs answers and judges them is ``npae.grading`` (``check_answers``,
``check_exercise``, ``ExerciseResult``, ``load_answers``): it reads this package, never the
other way round.

    from npae.exercises import EXERCISES
    from npae.grading import check_answers, check_exercise
    results, import_error = check_answers("my_answers.py")
    for r in results:
        print(r.line())
    check_exercise("tied_weight_grad", my_function).ok

From the shell: ``npae exercises list``, ``npae exercises template answers.py``,
``npae check answers.py [--exercise NAME]``, ``npae gradcheck MODULE:FUNCTION --shape 3,4``.
A course's own exercises: a course file (``load_course``; ``--exercises FILE`` on the
command line), e.g. ``npae/exercises/example_course.py``.
"""
from .registry import EXERCISES, Exercise, exercise_names, get_exercise, register
from . import lecture  # noqa: F401,E402  (registers the lecture's exercises)
from . import beyond  # noqa: F401,E402  (then the sparse autoencoder's and the VAE's)
from .template import template_source, write_template  # noqa: E402
from .course import CourseFileError, load_course  # noqa: E402

__all__ = ["EXERCISES", "Exercise", "exercise_names", "get_exercise", "register",
           "template_source", "write_template", "load_course", "CourseFileError"]

