"""The checker's results for machines: ``npae check --format json|gradescope``.

json
    ``{"exercises": [{"name", "status", "message", "hint", "max_rel_error", "ref_error",
    "n_cases", "notes", "points", "score"}], "passed": n, "total": n, "score", "max_score",
    "seed", "answers", "error"}``, ``status`` one of passed, wrong, error, missing, timeout,
    crashed; ``error`` is null unless the answers file could not be checked at all.
gradescope
    the ``results.json`` Gradescope's autograder reads: ``score``, ``output`` and one entry of
    ``tests`` per exercise with ``name``, ``score``, ``max_score``, ``output`` and ``status``
    (``passed`` or ``failed``), ``visibility`` (the exercise's) and ``output_format``; an
    exercise is worth its ``points`` (default 1), all of them for a pass and its
    ``mistake_credit`` for a catalogued mistake; ``execution_time`` in seconds at the top.
"""
from __future__ import annotations

import json

__all__ = ["results_json", "gradescope_json", "summary_line"]


def summary_line(results):
    passed = sum(r.ok for r in results)
    return f"{passed} of {len(results)} exercise{'s' if len(results) != 1 else ''} passed"


def _score(results):
    return float(sum(r.score for r in results)), float(sum(r.points for r in results))


def results_json(results, *, answers=None, seed=None, error=None, exercises_file=None):
    score, max_score = _score(results)
    doc = {"exercises": [r.to_dict() for r in results],
           "passed": sum(r.ok for r in results), "total": len(results),
           "score": score, "max_score": max_score, "seed": seed,
           "answers": None if answers is None else str(answers),
           "exercises_file": None if exercises_file is None else str(exercises_file),
           "error": error}
    return json.dumps(doc, indent=2) + "\n"


def gradescope_json(results, *, error=None, seed=None, execution_time=None):
    score, max_score = _score(results)
    tests = []
    for r in results:
        tests.append({"name": r.name, "score": min(max(r.score, 0.0), float(r.points)),
                      "max_score": float(r.points),
                      "status": "passed" if r.ok else "failed",
                      "visibility": r.visibility, "output_format": "text",
                      "output": "\n".join(r.lines())})
    score = float(sum(t["score"] for t in tests))
    head = [summary_line(results) + f" ({score:g} of {max_score:g} points)"]
    if seed is not None:
        head.append(f"inputs drawn with seed {seed}")
    if error:
        head.insert(0, f"the answers could not be checked: {error}")
    doc = {"score": score, "output": "\n".join(head), "output_format": "text",
           "visibility": "visible", "tests": tests}
    if execution_time is not None:
        doc["execution_time"] = round(float(execution_time), 3)
    return json.dumps(doc, indent=2) + "\n"
