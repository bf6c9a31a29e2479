"""``npae grade FOLDER --exercises COURSE.py --jobs N``: a class's submissions into a gradebook.

Every ``.py`` and ``.ipynb`` file directly in FOLDER is one submission (as an LMS exports
them), checked as ``npae check`` would (isolated: as a uid of its own when run as root; its
neighbours, other students' files, are not importable), several at a time. Each submission's
seed is derived from its file name, so a regrade draws the same inputs. Writes each
submission's results (``--format json``) to ``--results DIR`` and the gradebook CSV (one row
per submission, one column per exercise, the total) to ``--out``.
"""
from __future__ import annotations

import csv
import io
import os
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from ..exceptions import UsageError


def seed_of(path):
    """The seed of a submission: from its file name, so a regrade reproduces it."""
    return zlib.crc32(Path(path).stem.encode()) % 2 ** 31


def _grade_one(path, table_file, timeout, total_timeout, results_dir):
    """(name, {exercise: score}, error or "") for one submission; writes its json results."""
    from ..exercises import EXERCISES
    from ..exercises.course import load_course
    from ..grading import report
    from ..grading.submission import check_answers
    table = EXERCISES if table_file is None else load_course(table_file)
    total = total_timeout or getattr(table, "total_timeout", None) or 300.0
    seed = seed_of(path)
    error = None
    try:
        results, import_error = check_answers(path, exercises=table, seed=seed,
                                              timeout=timeout, total_timeout=total,
                                              neighbours=False)
        if import_error:
            error = f"could not import: {import_error}"
    except Exception as exc:      # a broken notebook: that submission's error, not the run's
        results, error = [], f"{type(exc).__name__}: {exc}"
    text = report.results_json(results, answers=path.name, seed=seed, error=error,
                               exercises_file=table_file)
    (Path(results_dir) / (path.name + ".json")).write_text(text)
    return path.name, {r.name: r.score for r in results}, error or "", list(table)


def grade_folder(folder, table_file=None, jobs=1, timeout=60.0, total_timeout=None,
                 results_dir="results", out="gradebook.csv", progress=sys.stderr):
    folder = Path(folder)
    subs = sorted(p for p in folder.iterdir() if p.is_file()
                  and p.suffix.lower() in (".py", ".ipynb"))
    if not subs:
        raise UsageError(f"no .py or .ipynb file in {str(folder)!r}")
    Path(results_dir).mkdir(parents=True, exist_ok=True)
    rows, names = {}, None
    start = time.monotonic()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_grade_one, p, table_file, timeout, total_timeout,
                               results_dir) for p in subs]
        for done, fut in enumerate(as_completed(futures), 1):
            name, scores, error, names = fut.result()
            rows[name] = (scores, error)
            if progress is not None:
                width = 30
                filled = width * done // len(subs)
                progress.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{len(subs)} "
                               f"graded, {time.monotonic() - start:.0f} s")
                progress.flush()
    if progress is not None:
        progress.write("\n")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["submission", *names, "total", "error"])
    for name in sorted(rows):
        scores, error = rows[name]
        w.writerow([name, *(f"{scores.get(n, 0.0):g}" for n in names),
                    f"{sum(scores.values()):g}", error])
    from .._io import atomic_write
    data = buf.getvalue().encode()
    atomic_write(out, lambda f: f.write(data))
    return len(subs), time.monotonic() - start


def _add_grade(sub):
    from ._args import natural, seconds
    p = sub.add_parser("grade", help="grade a folder of submissions into a gradebook CSV",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("folder", metavar="FOLDER", help="the submissions (.py and .ipynb files)")
    p.add_argument("--exercises", metavar="FILE", default=None,
                   help="the course file (default: the built-in exercises)")
    p.add_argument("--jobs", "-j", type=natural, default=1, metavar="N",
                   help="submissions checked at a time (default 1)")
    p.add_argument("--timeout", type=seconds, default=60.0, metavar="SECONDS",
                   help="time limit per exercise (default 60)")
    p.add_argument("--total-timeout", type=seconds, default=None, metavar="SECONDS",
                   help="time limit per submission (default: the course's, else 300)")
    p.add_argument("--results", metavar="DIR", default="results",
                   help="where each submission's json results go (default: results)")
    p.add_argument("--out", "-o", metavar="CSV", default="gradebook.csv",
                   help="the gradebook (default: gradebook.csv)")
    p.set_defaults(func=_cmd_grade)


def _cmd_grade(args):
    from ..exercises.course import CourseFileError, load_course
    if not os.path.isdir(args.folder):
        raise UsageError(f"{args.folder!r} is not a folder")
    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: give 1 or more")
    if args.exercises is not None:
        try:
            load_course(args.exercises)
        except CourseFileError as exc:
            raise UsageError(str(exc)) from None
    from ..grading.sandbox import announce_unprivileged
    announce_unprivileged()
    n, seconds = grade_folder(args.folder, args.exercises, args.jobs, args.timeout,
                              args.total_timeout, args.results, args.out)
    print(f"graded {n} submission{'s' if n != 1 else ''} in {seconds:.1f} s: {args.out}, "
          f"results in {args.results}/")
    return 0
