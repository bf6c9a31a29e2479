"""The exercises beyond the lecture (npae.exercises.beyond): right answers pass, every
catalogued mistake fails the checker, the references agree with finite differences."""
from pathlib import Path

import numpy as np
import pytest

from npae.exercises import EXERCISES, Exercise, get_exercise
from npae.exercises.beyond import MISTAKES
from npae.grading.checker import FAIL, PASS, check_exercise, load_answers
from npae.gradcheck import check_gradient

NAMES = ["sparse_kl_grad_W", "vae_kl_grad_mu", "vae_kl_grad_logvar", "vae_reparam_grad_mu",
         "vae_reparam_grad_logvar"]
ANSWERS = Path(__file__).parent / "answers" / "correct.py"


def _copy(inp):
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in inp.items()}


def test_registered_with_a_catalogue_of_mistakes_each():
    assert set(NAMES) <= set(EXERCISES)
    assert set(MISTAKES) == set(NAMES)
    for name in NAMES:
        assert len(MISTAKES[name]) >= 2, name
        ex = get_exercise(name)
        assert ex.missing_requirements() == []
        if "mistakes" in Exercise.__dataclass_fields__:   # the checker can name them too
            assert set(dict(ex.mistakes)) == set(MISTAKES[name])


@pytest.mark.parametrize("name", NAMES)
def test_inputs_include_a_batch_of_one_and_vary(name):
    ex = get_exercise(name)
    cases = ex.generate()
    assert len(cases) >= 4 and any(ex.batch_size(c) == 1 for c in cases)
    assert len({c[ex.wrt].shape for c in cases}) >= 3
    # a single latent / hidden unit among the cases
    assert any(c[ex.wrt].shape[0 if name == "sparse_kl_grad_W" else 1] == 1 for c in cases)


@pytest.mark.parametrize("name", NAMES)
def test_reference_agrees_with_finite_differences(name):
    ex = get_exercise(name)
    for inp in ex.generate():
        r = ex.reference(_copy(inp))
        others = {k: v for k, v in inp.items() if k != ex.wrt}
        res = check_gradient(lambda v: ex.objective({**others, ex.wrt: v}), r,
                             inp[ex.wrt].copy(), rtol=1e-6)
        assert res.ok and res.max_rel_error < 1e-5, str(res)


@pytest.mark.parametrize("name", NAMES)
def test_a_hand_derived_answer_passes(name):
    """tests/answers/correct.py derives each answer without npae."""
    module, error = load_answers(ANSWERS)
    assert error is None
    res = check_exercise(name, getattr(module, name))
    assert res.status == PASS, res.line()
    assert res.ref_error < 1e-12


@pytest.mark.parametrize("name, hint", [(n, h) for n in NAMES for h in MISTAKES[n]],
                         ids=[f"{n}:{i}" for n in NAMES for i in range(len(MISTAKES[n]))])
def test_every_catalogued_mistake_fails(name, hint):
    ex = get_exercise(name)
    wrong = MISTAKES[name][hint]

    def student(*args):
        return wrong(dict(zip(ex.args, args)))

    res = check_exercise(ex, student)
    assert res.status == FAIL, (hint, res.line())
    assert res.hint == hint            # the catalogued mistake is named, not a generic pattern
    # the mistake really differs from the right answer on some input (not a lucky pass)
    assert any(np.abs(wrong(_copy(c)) - ex.reference(_copy(c))).max() > 1e-6
               for c in ex.generate())


def test_per_sample_rho_hat_agrees_only_for_a_batch_of_one():
    """The coupling through rho_hat is invisible with one sample, which is why the cases
    include larger batches: the per-sample mistake equals the answer at n = 1."""
    ex = get_exercise("sparse_kl_grad_W")
    per_sample = next(f for h, f in MISTAKES[ex.name].items() if "per sample" in h)
    for c in ex.generate():
        same = np.allclose(per_sample(_copy(c)), ex.reference(_copy(c)), rtol=1e-12)
        assert same == (c["X"].shape[0] == 1)
