"""Every built-in exercise's catalogue of classic mistakes: each mistake FAILS with its own
hint (not a generic pattern), differs from the right answer on some input set, and the
catalogue covers the mistakes the course's students make (issue list)."""
import numpy as np
import pytest

from npae.exercises import get_exercise
from npae.grading.checker import FAIL, _copy, check_exercise
from npae.exercises.registry import EXERCISES

WITH = sorted(n for n, ex in EXERCISES.items() if ex.mistakes)


def _student(ex, wrong):
    def student(*args):
        return wrong(dict(zip(ex.args, [a.copy() if isinstance(a, np.ndarray) else a
                                        for a in args])))
    return student


@pytest.mark.parametrize("name, hint", [(n, h) for n in WITH for h in EXERCISES[n].mistakes],
                         ids=[f"{n}:{i}" for n in WITH
                              for i in range(len(EXERCISES[n].mistakes))])
def test_every_catalogued_mistake_fails_with_its_own_hint(name, hint):
    ex = get_exercise(name)
    wrong = ex.mistakes[hint]
    res = check_exercise(ex, _student(ex, wrong))
    assert res.status == FAIL, (hint, res.line())
    assert res.hint == hint, (res.hint, hint)
    assert any(np.abs(wrong(_copy(c)) - ex.reference(_copy(c))).max() > 1e-6
               for c in ex.generate())
    # -v shows one diagnosis: the report holds the catalogued hint, not another one
    if res.report:
        assert "no simple pattern" not in res.report


@pytest.mark.parametrize("name, words", [
    ("sparse_kl_grad_W", "beta is forgotten"),
    ("sparse_kl_grad_W", "sigmoid's derivative"),
    ("contractive_grad_W", "lam is forgotten"),
    ("contractive_grad_W", "(1 - 2h)"),
    ("contractive_grad_b", "lam is forgotten"),
    ("vae_kl_grad_logvar", "sigma used for sigma^2"),
    ("vae_kl_grad_logvar", "log-variance taken as log sigma"),
    ("vae_reparam_grad_logvar", "sigma / 2 forgotten"),
    ("vae_reparam_grad_logvar", "log-variance taken as log sigma"),
    ("conv2d_grad_input", "flipped"),
    ("conv2d_grad_weight", "flipped"),
    ("maxpool2d_backward", "spread over the whole window"),
    ("maxpool2d_backward", "window's minimum"),
    ("maxpool2d_backward", "stride is ignored"),
    ("psd_W_grad", "evaluated at its output"),
    ("sigmoid_cross_entropy_grad", "squared-error chain"),
    ("tied_weight_grad", "decoder term"),
])
def test_the_catalogues_cover_the_classic_mistakes(name, words):
    assert any(words in h for h in EXERCISES[name].mistakes), (name, words)


def test_a_mistake_off_by_more_than_rounding_is_not_given_the_catalogued_hint():
    ex = get_exercise("contractive_grad_W")
    hint = next(h for h in ex.mistakes if "lam is forgotten" in h)
    wrong = ex.mistakes[hint]
    res = check_exercise(ex, lambda X, W, b, lam: wrong(
        {"X": X, "W": W, "b": b, "lam": lam}) * (1 + 1e-3 * np.cos(3 * W)))
    assert res.status == FAIL and res.hint != hint
