"""``npae check`` and ``npae exercises``: the course's gradient exercises and the homework
checker (answers run in their own process)."""
from __future__ import annotations

import sys
import time

from ..exceptions import UsageError
from ._args import natural, seconds


def _exercises_option(p):
    p.add_argument("--exercises", metavar="FILE", default=None,
                   help="a course file of exercises to use instead of the built-in ones "
                        "(see README, 'For course staff')")


def _exercise_table(args):
    """The exercises ``--exercises FILE`` registers (a UsageError if it cannot be loaded),
    or the built-in ones."""
    if getattr(args, "exercises", None) is None:
        from ..exercises import EXERCISES
        return EXERCISES
    from ..exercises.course import CourseFileError, load_course
    try:
        return load_course(args.exercises)
    except CourseFileError as exc:
        raise UsageError(str(exc)) from None


def _selected(names, table):
    unknown = [n for n in (names or []) if n not in table]
    if unknown:
        raise UsageError(f"no exercise named {unknown[0]!r}; the exercises are: "
                         + ", ".join(table))
    return list(dict.fromkeys(names or table))


def _add_check(sub):
    p = sub.add_parser(
        "check", help="check homework answers to gradient exercises",
        description="Run ANSWERS (a .py file or a notebook) in a separate process (as a user "
        "of its own when run as root), call each exercise's "
        "function by name on generated inputs and check the gradients it returns against "
        "finite differences and the reference gradient. Exit status: 0 when every checked "
        "exercise passed, 1 when any did not, 2 when the check could not run (usage error, "
        "missing or unimportable ANSWERS, broken --exercises file).")
    p.add_argument("answers", metavar="ANSWERS", help="the file with your functions: a .py "
                   "file or a notebook (.ipynb: its code cells, without %%/! lines)")
    p.add_argument("--exercise", "-e", action="append", metavar="NAME",
                   help="check only this exercise (repeatable; default: all)")
    _exercises_option(p)
    p.add_argument("--seed", type=natural, default=None, metavar="N",
                   help="draw the inputs from seed N (default: the same fixed inputs on "
                        "every run); give each student or submission its own")
    p.add_argument("--timeout", type=seconds, default=None, metavar="SECONDS",
                   help="time limit per exercise (default: 60); an answer still running is "
                        "stopped and marked timeout")
    p.add_argument("--total-timeout", type=seconds, default=None, metavar="SECONDS",
                   help="time limit of the whole submission (default: the course file's "
                        "TOTAL_TIMEOUT, else 300); exercises not reached are marked timeout")
    p.add_argument("--memory-limit", type=natural, default=None, metavar="MB",
                   help="address-space cap of the process the answers run in, in MiB "
                        "(default: 4096; 0: no cap)")
    p.add_argument("--all", action="store_true",
                   help="check every entry of each gradient (default: a random sample of "
                        "large arrays)")
    p.add_argument("--format", choices=("text", "json", "gradescope"), default="text",
                   help="text (default), json, or Gradescope's results.json")
    p.add_argument("--output", "-o", metavar="PATH", default=None,
                   help="write the results to PATH (atomically) instead of stdout")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="for a failure, also print the gradient checker's table of worst entries")
    p.set_defaults(func=_cmd_check)


def _emit(text, path):
    if path is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    import os

    from .._io import atomic_write
    if os.path.isdir(path):
        raise UsageError(f"--output {path!r} is a directory; give a file name")
    data = text.encode("utf-8")
    try:
        atomic_write(path, lambda f: f.write(data))
    except OSError as exc:
        raise UsageError(f"cannot write --output {path!r}: {exc.strerror or exc}") from None


def _cmd_check(args):
    from pathlib import Path

    from ..grading import report
    from ..grading.checker import (ERROR, MISSING, ExerciseCodeError, ExerciseResult,
                                    format_results)
    from ..grading.notebook import NotebookError, is_notebook, notebook_code
    from ..grading.sandbox import announce_unprivileged
    from ..grading.submission import DEFAULT_TOTAL_TIMEOUT, check_answers
    from ..grading.isolation import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT
    started = time.monotonic()
    table = _exercise_table(args)
    names = _selected(args.exercise, table)
    error = None
    if not Path(args.answers).is_file():
        what = "is a directory" if Path(args.answers).is_dir() else "not found"
        error = f"answers file {args.answers!r} {what}"
        results = [ExerciseResult(n, MISSING, points=table[n].points,
                                  message="not checked: no answers file") for n in names]
    else:
        timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
        memory = DEFAULT_MEMORY_MB if args.memory_limit is None else args.memory_limit
        total = (args.total_timeout or getattr(table, "total_timeout", None)
                 or DEFAULT_TOTAL_TIMEOUT)
        if is_notebook(args.answers):
            try:
                skipped = notebook_code(args.answers)[1]
            except NotebookError as exc:
                raise UsageError(str(exc)) from None
            if skipped:
                print(f"npae check: note: left out {skipped} line{'s' if skipped != 1 else ''}"
                      f" of {args.answers} starting with % or ! (IPython magics and shell "
                      "commands are not Python)", file=sys.stderr)
        announce_unprivileged()
        try:
            results, import_error = check_answers(args.answers, names, exercises=table,
                                                  seed=args.seed, timeout=timeout,
                                                  memory_mb=memory, all_entries=args.all,
                                                  total_timeout=total)
        except ExerciseCodeError as exc:
            raise UsageError(str(exc)) from None
        if import_error:
            error = f"could not import {args.answers}: {import_error}"
            results = [ExerciseResult(r.name, ERROR, points=r.points, message=(
                "not checked: the answers file did not import")) for r in results]
    if args.format == "json":
        text = report.results_json(results, answers=args.answers, seed=args.seed, error=error,
                                   exercises_file=args.exercises)
    elif args.format == "gradescope":
        text = report.gradescope_json(results, error=error, seed=args.seed,
                                      execution_time=time.monotonic() - started)
    elif not error:
        text = format_results(results, verbose=args.verbose)
        if args.seed is not None:
            text += f"\n(inputs drawn with --seed {args.seed})"
    else:
        text = None         # for a person, the one-line message says it all
    if text is not None:
        _emit(text, args.output)
    if error:
        print(f"npae check: error: {error}", file=sys.stderr)
        return 2
    return 0 if results and all(r.ok for r in results) else 1


def _add_exercises(sub):
    p = sub.add_parser("exercises", help="list the gradient exercises or write a file of stubs",
                       description="The gradient exercises (the lecture's, or a course "
                       "file's with --exercises FILE); see `npae check`.")
    esub = p.add_subparsers(dest="action", metavar="ACTION")
    lst = esub.add_parser("list", help="name, slide and title of every exercise")
    _exercises_option(lst)
    s = esub.add_parser("show", help="print one exercise's statement and signature")
    s.add_argument("name", metavar="NAME")
    _exercises_option(s)
    t = esub.add_parser("template", help="write FILE with a stub per exercise "
                        "(the statements as docstrings)")
    t.add_argument("file", metavar="FILE")
    t.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    t.add_argument("--exercise", "-e", action="append", metavar="NAME",
                   help="only this exercise (repeatable; default: all)")
    _exercises_option(t)
    v = esub.add_parser("validate", help="run a course file's references and catalogued "
                        "mistakes on many seeds, naming the input sets the check cannot decide")
    v.add_argument("course", metavar="COURSE.py", help="the course file to validate")
    v.add_argument("--seeds", type=natural, default=5, metavar="N",
                   help="check the input sets of seeds 0 .. N-1 (default 5)")
    p.set_defaults(func=_cmd_exercises, _parser=p)


def _cmd_exercises(args):
    if args.action is None:
        args._parser.print_help()
        return 2
    if args.action == "validate":
        return _validate(args)
    table = _exercise_table(args)
    if args.action == "list":
        width = max(len(n) for n in table)
        for ex in table.values():
            missing = ex.missing_requirements()
            note = f"  [unavailable: needs {', '.join(missing)}]" if missing else ""
            slide = f"  (slide: {ex.slide})" if ex.slide else ""
            points = f"  [{ex.points:g} points]" if ex.points != 1 else ""
            print(f"{ex.name:<{width}}  {ex.title}{slide}{points}{note}")
        return 0
    if args.action == "show":
        ex = table[_selected([args.name], table)[0]]
        print(f"{ex.signature}\n\n{ex.statement}")
        return 0
    from ..exercises.template import write_template
    names = _selected(args.exercise, table)
    try:
        path = write_template(args.file, names, force=args.force, exercises=table,
                              course=args.exercises)
    except FileExistsError as exc:
        print(f"npae exercises: error: {exc}", file=sys.stderr)
        return 1
    course = f" --exercises {args.exercises}" if args.exercises else ""
    print(f"wrote {path}: fill in the functions, then run `npae check {path}{course}`")
    return 0


def _validate(args):
    from ..exercises.course import CourseFileError, load_course
    from ..grading.validate import validate_course
    if args.seeds < 1:
        raise UsageError(f"--seeds {args.seeds}: give 1 or more")
    try:
        table = load_course(args.course)
    except CourseFileError as exc:
        raise UsageError(str(exc)) from None
    findings = validate_course(table, args.seeds)
    for f in findings:
        print(f.line())
    print(f"{len(findings)} finding{'s' if len(findings) != 1 else ''} over {len(table)} "
          f"exercise{'s' if len(table) != 1 else ''} and seeds 0..{args.seeds - 1}")
    return 1 if findings else 0
