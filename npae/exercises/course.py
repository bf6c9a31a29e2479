"""Course files: a lecturer's own exercises, ``npae check ANSWERS.py --exercises COURSE.py``.

A course file is instructor code (trusted: it runs in the checker's own process). It builds
``npae.exercises.Exercise`` objects and hands them to ``npae.exercises.register``; loaded by
``load_course``, it registers into a fresh table, so exactly its exercises are checked and
listed, never the built-in ones. ``npae/exercises/example_course.py`` is a complete example.
"""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

from .registry import collecting
from .._tracebacks import describe_exception
from ..exceptions import CourseFileError

__all__ = ["CourseFileError", "load_course", "Course", "EXAMPLE_COURSE"]

#: the example course file shipped with npae (the README's example)
EXAMPLE_COURSE = Path(__file__).with_name("example_course.py")


def load_course(path):
    """Run the course file at ``path``; return its exercises, a ``Course`` (a dict name ->
    Exercise with the file's settings, e.g. ``TOTAL_TIMEOUT = 120`` at its top level).

    Its directory is on ``sys.path`` while it runs (it may import its neighbours). Any
    failure is a CourseFileError whose message names the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise CourseFileError(f"exercise file {str(path)!r} not found"
                              + (" (it is a directory)" if path.is_dir() else ""))
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        with collecting() as exercises:
            namespace = runpy.run_path(str(path), run_name="npae_course")
    except KeyboardInterrupt:
        raise
    except SystemExit as exc:
        raise CourseFileError(f"exercise file {path.name} called sys.exit({exc.code!r})") \
            from None
    except BaseException as exc:
        raise CourseFileError(f"exercise file {path.name} failed: "
                              f"{describe_exception(exc, path)}") from None
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:
            pass
    if not exercises:
        raise CourseFileError(f"exercise file {path.name} registers no exercise (build "
                              "npae.exercises.Exercise objects and pass each to "
                              "npae.exercises.register)")
    course = Course(exercises)
    total = namespace.get("TOTAL_TIMEOUT")
    if total is not None:
        if not (isinstance(total, (int, float)) and not isinstance(total, bool)
                and 0 < total < float("inf")):
            raise CourseFileError(f"exercise file {path.name}: TOTAL_TIMEOUT={total!r} must be "
                                  "a positive number of seconds")
        course.total_timeout = float(total)
    return course


class Course(dict):
    """A course file's exercises (name -> Exercise) and its settings: ``total_timeout``, the
    seconds a whole submission may take (the file's ``TOTAL_TIMEOUT``; None: the default)."""
    total_timeout = None
