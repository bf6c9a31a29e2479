"""``npae exercises validate COURSE.py --seeds N``: a course file checked before the class is.

For every exercise and each seed 0 .. N-1, on every input set (hidden ones included):

* the reference, given as an answer, must pass;
* each catalogued mistake, given as an answer, must fail *with its own hint* (not pass, not
  be undecidable, not be taken for another mistake);
* the objective must depend on the argument the gradient is taken in (an input set on which
  it is constant -- e.g. batch normalisation of 2 rows, where every normalised entry is
  +-1 -- cannot tell any answer with a zero-ish gradient from the right one).

Every finding names the exercise, the seed and the input set.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checker import FAIL, PASS, _judge, _outcome_here, constant_in_wrt

__all__ = ["validate_course", "Finding"]


@dataclass
class Finding:
    exercise: str
    seed: int
    case: int
    what: str

    def line(self):
        return f"{self.exercise:<28} seed {self.seed}, input set {self.case + 1}: {self.what}"


def _as_answer(ex, grad_of_inputs, inp):
    """A function of the exercise's arguments returning ``grad_of_inputs`` on them."""
    def answer(*args):
        return np.asarray(grad_of_inputs({**inp, **dict(zip(ex.args, args))}),
                          dtype=np.float64)
    return answer


def validate_course(table, seeds=5):
    """The findings (a list of Finding) over ``seeds`` seeds of every exercise in ``table``."""
    findings = []
    rng = np.random.default_rng(0)
    for ex in table.values():
        if ex.missing_requirements():
            continue
        for seed in range(seeds):
            cases = list(ex.inputs(seed)) + ex.hidden_inputs(seed)
            for i, inp in enumerate(cases):
                def verdict(grad):
                    return _judge(ex, [inp], [_outcome_here(_as_answer(ex, grad, inp), inp,
                                                            ex)])
                if constant_in_wrt(ex, inp, rng):
                    findings.append(Finding(ex.name, seed, i, (
                        f"the objective does not depend on {ex.wrt} at all on this input set "
                        "(its gradient is 0): any answer returning zeros passes it")))
                ref = verdict(ex.reference)
                if ref.status != PASS:
                    findings.append(Finding(ex.name, seed, i, (
                        f"the reference does not pass ({ref.status_name}): {ref.message}")))
                for hint, grad in (ex.mistakes or {}).items():
                    got = verdict(grad)
                    short = hint[:50]
                    if got.status == PASS:
                        findings.append(Finding(ex.name, seed, i, (
                            f"the mistake {short!r} passes: it cannot be told from the right "
                            "answer here")))
                    elif got.status != FAIL:
                        findings.append(Finding(ex.name, seed, i, (
                            f"the check cannot decide on the mistake {short!r} "
                            f"({got.status_name}: {got.message[:120]})")))
                    elif got.hint != hint:
                        other = [h for h in ex.mistakes if h == got.hint]
                        what = (f"the mistake {other[0][:50]!r}" if other
                                else "the generic hint")
                        findings.append(Finding(ex.name, seed, i, (
                            f"the mistake {short!r} gets {what} instead of its own")))
    return findings
