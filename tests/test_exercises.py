"""The exercise registry and the homework checker (npae.exercises).

The fixtures in tests/answers/ are student files: correct.py derives every answer by hand
without npae; each wrong_<kind>.py makes one typical mistake in several exercises. A
correct answer must PASS, and every typical mistake must FAIL *with the hint that names it*.
"""
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import require_lecture
from npae.exercises import EXERCISES, Exercise, get_exercise
from npae.grading.submission import check_answers
from npae.grading.checker import ERROR, FAIL, MISSING, PASS, SKIP, check_exercise, load_answers
from npae.exercises.template import template_source, write_template
from npae.gradcheck import check_gradient

ANSWERS = Path(__file__).parent / "answers"

REQUIRED = {"linear_ae_grad_U", "linear_ae_grad_V", "sigmoid_cross_entropy_grad",
            "linear_squared_error_grad", "tied_weight_grad", "contractive_grad_W",
            "contractive_grad_b", "psd_z_grad", "psd_W_grad", "conv2d_grad_input",
            "conv2d_grad_weight", "maxpool2d_backward"}


@pytest.fixture(scope="module")
def correct():
    module, error = load_answers(ANSWERS / "correct.py")
    assert error is None
    return module


def _copy(inp):
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in inp.items()}


# -------------------------------------------------------------------------------------------
# the registry
# -------------------------------------------------------------------------------------------
def test_registry_holds_the_lecture_exercises():
    assert REQUIRED <= set(EXERCISES)
    for ex in EXERCISES.values():
        assert ex.signature.startswith(f"def {ex.name}(") and ex.wrt in ex.args
        assert "Slide" in ex.statement and "Return" in ex.statement
        # the reduction is stated, since it decides the answer's factor
        assert re.search(r"\b(SUM|MEAN)\b|sum\(g \* y\)", ex.statement), ex.name
        assert ex.missing_requirements() == []


def test_slides_named_by_the_statements_exist_in_the_lecture():
    headings = {ln[2:].strip() for ln in require_lecture().read_text().splitlines()
                if ln.startswith("# ")}
    for ex in EXERCISES.values():
        quoted = re.findall(r'[Ss]lides? "([^"]+)"(?: and "([^"]+)")?', ex.statement)
        names = [n for pair in quoted for n in pair if n]
        assert names, ex.name
        for n in names:
            assert n in headings, (ex.name, n)


# which argument holds the hidden units / code, and on which axis: an edge case every
# dense exercise must include (a single hidden unit)
HIDDEN_AXIS = {"linear_ae_grad_U": ("U", 1), "linear_ae_grad_V": ("V", 0),
               "tied_weight_grad": ("W", 0), "contractive_grad_W": ("W", 0),
               "contractive_grad_b": ("W", 0), "psd_z_grad": ("Z", 1), "psd_W_grad": ("W", 0),
               "sigmoid_cross_entropy_grad": ("A_hat", 1),
               "linear_squared_error_grad": ("A_hat", 1),
               "conv2d_grad_input": ("W", 0), "conv2d_grad_weight": ("W", 0),
               "maxpool2d_backward": ("x", 1)}


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_inputs_vary_and_include_the_edge_cases(name):
    ex = get_exercise(name)
    cases = ex.generate()
    assert len(cases) >= 4
    assert len({tuple(c[ex.wrt].shape) for c in cases}) >= 3      # varied shapes
    assert any(ex.batch_size(c) == 1 for c in cases)                 # batch of 1
    arg, axis = HIDDEN_AXIS[name]
    assert any(c[arg].shape[axis] == 1 for c in cases)               # a single hidden unit
    for c in cases:
        for v in c.values():
            if isinstance(v, np.ndarray):
                assert v.dtype == np.float64 and np.isfinite(v).all()
    # the same inputs on every run (a student must see reproducible results)
    again = ex.generate()
    for c1, c2 in zip(cases, again):
        for k in c1:
            np.testing.assert_array_equal(c1[k], c2[k])


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_reference_agrees_with_finite_differences(name):
    """npae's reference vs central differences of the slide's objective, float64.

    Expected relative error of a correct gradient ~1e-9 (the checker's own error estimate
    sets the per-entry threshold; rtol 1e-6 on top).
    """
    ex = get_exercise(name)
    for inp in ex.generate():
        r = ex.reference(_copy(inp))
        x = inp[ex.wrt].copy()
        others = {k: v for k, v in inp.items() if k != ex.wrt}
        res = check_gradient(lambda v: ex.objective({**others, ex.wrt: v}), r, x, rtol=1e-6)
        assert res.ok, str(res)
        assert res.max_rel_error < 1e-5


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_reference_agrees_with_an_independent_derivation(name, correct):
    """The hand-derived answers in tests/answers/correct.py (no npae inside) agree with the
    reference to rounding: expected ~1e-15 relative, asserted at 1e-12."""
    ex = get_exercise(name)
    for inp in ex.generate():
        r = ex.reference(_copy(inp))
        a = getattr(correct, name)(*[_copy(inp)[k] for k in ex.args])
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12 * np.abs(r).max())


def test_objectives_are_not_the_references_in_disguise():
    """The objective must depend on the argument (a constant would make any answer 0 pass)."""
    rng = np.random.default_rng(0)
    for ex in EXERCISES.values():
        inp = ex.generate()[0]
        moved = {**inp, ex.wrt: inp[ex.wrt] + 0.1 * rng.standard_normal(inp[ex.wrt].shape)}
        assert ex.objective(moved) != ex.objective(inp), ex.name


# -------------------------------------------------------------------------------------------
# the checker on the answer fixtures
# -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_correct_answers_pass():
    results, error = check_answers(ANSWERS / "correct.py")
    assert error is None
    assert [r.status for r in results] == [PASS] * len(EXERCISES), \
        "\n".join(r.line() for r in results)
    for r in results:
        assert r.max_rel_error < 1e-4          # vs finite differences (~1e-9 typical)
        assert r.ref_error < 1e-12             # vs npae (rounding only)
        assert "PASS" in r.line() and r.name in r.line()


SIGN, TWO, BATCH = "opposite sign", "factor of 2", "off by the batch size"
TRANSPOSE, MISSING_TERM, ACCUMULATE = "transpose", "missing term", "assignment instead of accum"
SHAPE = "shape mismatch"

# (fixture, exercise, the words the hint must contain); at least three per exercise
WRONG = [
    ("sign", "linear_ae_grad_U", SIGN), ("factor2", "linear_ae_grad_U", TWO),
    ("batch", "linear_ae_grad_U", BATCH), ("transpose", "linear_ae_grad_U", TRANSPOSE),
    ("sign", "linear_ae_grad_V", SIGN), ("factor2", "linear_ae_grad_V", TWO),
    ("batch", "linear_ae_grad_V", BATCH), ("transpose", "linear_ae_grad_V", TRANSPOSE),
    ("sign", "sigmoid_cross_entropy_grad", SIGN), ("batch", "sigmoid_cross_entropy_grad", BATCH),
    ("transpose", "sigmoid_cross_entropy_grad", TRANSPOSE),
    ("sign", "linear_squared_error_grad", SIGN), ("factor2", "linear_squared_error_grad", TWO),
    ("batch", "linear_squared_error_grad", BATCH),
    ("sign", "tied_weight_grad", SIGN), ("batch", "tied_weight_grad", BATCH),
    ("missing_term", "tied_weight_grad", "'decoder term (W^T in a_hat = c + W^T h)' is missing"),
    ("missing_other_term", "tied_weight_grad", "'encoder term (W in a = b + W x)' is missing"),
    ("factor2", "contractive_grad_W", TWO), ("batch", "contractive_grad_W", BATCH),
    ("missing_term", "contractive_grad_W", "'direct (W_jk in dh_j/dx_k"),
    ("missing_other_term", "contractive_grad_W", "'through h (W in a = b + W x)' is missing"),
    ("sign", "contractive_grad_b", SIGN), ("factor2", "contractive_grad_b", TWO),
    ("batch", "contractive_grad_b", BATCH),
    ("sign", "psd_z_grad", SIGN), ("factor2", "psd_z_grad", TWO), ("batch", "psd_z_grad", BATCH),
    ("missing_term", "psd_z_grad", "'encoder term ||sigma(W x) - z||^2' is missing"),
    ("missing_other_term", "psd_z_grad", "'decoder term ||D z - x||^2' is missing"),
    ("sign", "psd_W_grad", SIGN), ("factor2", "psd_W_grad", TWO), ("batch", "psd_W_grad", BATCH),
    ("transpose", "psd_W_grad", TRANSPOSE),
    ("sign", "conv2d_grad_input", SIGN), ("batch", "conv2d_grad_input", BATCH),
    ("accumulate", "conv2d_grad_input", ACCUMULATE),
    ("sign", "conv2d_grad_weight", SIGN), ("batch", "conv2d_grad_weight", BATCH),
    ("transpose", "conv2d_grad_weight", SHAPE),
    ("sign", "maxpool2d_backward", SIGN), ("batch", "maxpool2d_backward", BATCH),
    ("accumulate", "maxpool2d_backward", ACCUMULATE),
]


def test_every_exercise_has_three_typical_wrong_answers():
    counts = {}
    for _, name, _ in WRONG:
        counts[name] = counts.get(name, 0) + 1
    assert set(counts) == REQUIRED and min(counts.values()) >= 3


@pytest.fixture(scope="module")
def wrong_results():
    """fixture name -> {exercise: result}, each wrong file checked once."""
    out = {}
    for kind in sorted({k for k, _, _ in WRONG} | {"other"}):
        names = [n for n in EXERCISES if hasattr(_module(kind), n)]
        results, error = check_answers(ANSWERS / f"wrong_{kind}.py", names)
        assert error is None
        out[kind] = {r.name: r for r in results}
    return out


def _module(kind, _cache={}):
    if kind not in _cache:
        _cache[kind] = load_answers(ANSWERS / f"wrong_{kind}.py")[0]
    return _cache[kind]


@pytest.mark.slow
@pytest.mark.parametrize("kind,name,words", WRONG, ids=[f"{k}-{n}" for k, n, _ in WRONG])
def test_typical_wrong_answer_fails_with_its_hint(wrong_results, kind, name, words):
    r = wrong_results[kind][name]
    assert r.status == FAIL, r.line()
    assert words.lower() in r.hint.lower(), f"{kind}/{name}: {r.hint}"
    assert "hint: " in "\n".join(r.lines())


@pytest.mark.parametrize("name,words", [
    ("sigmoid_cross_entropy_grad", "the sigmoid's derivative x_hat (1 - x_hat) is missing"),
    ("contractive_grad_b", "the factor (1 - 2h) is missing"),
    ("conv2d_grad_input", "the kernel is flipped"),
    ("maxpool2d_backward", "averaged over the window")])
def test_mistakes_without_a_generic_pattern_get_their_catalogued_hint(wrong_results, name,
                                                                      words):
    """Forgetting sigm', forgetting (1 - 2h), flipping the kernel, average-pool routing: no
    factor, sign or subset explains them; the exercise's catalogue of mistakes does."""
    r = wrong_results["other"][name]
    assert r.status == FAIL and words in r.hint, r.hint
    for generic in (SIGN, TWO, BATCH, ACCUMULATE, MISSING_TERM):
        assert generic not in r.hint


def test_a_mistake_matches_only_to_rounding():
    """The catalogued hint needs the answer to equal the mistake's gradient to 1e-6 of its
    largest entry: the mistake off by 1e-4 gets the generic diagnosis instead."""
    ex = get_exercise("sigmoid_cross_entropy_grad")
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    exact = lambda A, X: (sig(A) - X) * sig(A) * (1 - sig(A)) / X.shape[0]  # noqa: E731
    r = check_exercise(ex, exact)
    assert r.status == FAIL and "squared-error chain" in r.hint
    r = check_exercise(ex, lambda A, X: exact(A, X) * (1 + 1e-4 * np.cos(7 * A)))
    # not the catalogued hint (the generic diagnosis may still describe the ratio it sees)
    assert r.status == FAIL and "this is the squared-error chain" not in r.hint


def test_a_falsy_verdict_never_passes(monkeypatch):
    """Whatever the gradient checker's verdict object holds, a falsy one is not a pass."""
    from npae.grading import checker

    class Falsy:
        ok = True             # a verdict that claims ok but is falsy (e.g. nothing verified)
        max_rel_error = float("nan")
        hint = "nothing could be verified"

        def __bool__(self):
            return False

        def __str__(self):
            return self.hint
    monkeypatch.setattr(checker, "check_gradient", lambda *a, **k: Falsy())
    r = check_exercise("linear_squared_error_grad", lambda A, X: (A - X) / X.shape[0])
    assert r.status == FAIL and r.hint == "nothing could be verified"
    assert r.to_dict()["status"] == "wrong" and r.to_dict()["max_rel_error"] is None


def test_a_small_error_below_finite_difference_accuracy_fails_against_the_reference():
    """An answer off by 1e-7 relative passes finite differences but not npae's reference."""
    ex = get_exercise("linear_squared_error_grad")
    res = check_exercise(ex, lambda A, X: (A - X) / X.shape[0] * (1 + 1e-7))
    assert res.status == FAIL and "reference" in res.message


def test_an_answer_that_overwrites_its_inputs_is_an_error_naming_them():
    """A right gradient computed by overwriting an argument is refused, naming it."""
    def answer(A_hat, X):
        g = (A_hat - X) / X.shape[0]
        X[0, 0] = 0.0
        return g
    r = check_exercise("linear_squared_error_grad", answer)
    assert r.status == ERROR and "changed its input 'X' in place" in r.message
    assert "entries (0, 0)" in r.message


def test_an_unavailable_exercise_is_skipped_not_failed():
    base = get_exercise("linear_squared_error_grad")
    ex = Exercise(**{**base.__dict__, "name": "needs_a_module",
                     "requires": ("npae._no_such_module",)})
    res = check_exercise(ex, lambda A, X: A)
    assert res.status == SKIP and "npae._no_such_module" in res.message


# -------------------------------------------------------------------------------------------
# template and bad student files (API level; the CLI tests cover the messages)
# -------------------------------------------------------------------------------------------
def test_template_imports_and_its_stubs_are_reported_as_not_implemented(tmp_path):
    path = write_template(tmp_path / "answers.py")
    module, error = load_answers(path)
    assert error is None
    for name, ex in EXERCISES.items():
        f = getattr(module, name)
        assert ex.statement.splitlines()[0] in f.__doc__
        with pytest.raises(NotImplementedError):
            f(*[_copy(ex.generate()[0])[k] for k in ex.args])
    results, _ = check_answers(path, ["linear_ae_grad_U", "maxpool2d_backward"])
    assert [r.status for r in results] == [MISSING, MISSING]
    assert all("NotImplementedError" in r.message for r in results)


def test_template_refuses_to_overwrite(tmp_path):
    path = tmp_path / "answers.py"
    path.write_text("my work\n")
    with pytest.raises(FileExistsError, match="--force"):
        write_template(path)
    assert path.read_text() == "my work\n"
    write_template(path, ["psd_W_grad"], force=True)
    text = path.read_text()
    assert "def psd_W_grad(X, Z, W):" in text and "def psd_z_grad" not in text
    compile(template_source(), "t.py", "exec")


def test_import_failures_are_messages(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy as np\ndef f(x:\n    return x\n")
    module, error = load_answers(bad)
    assert module is None and "SyntaxError" in error and "line 2" in error
    bad.write_text("import no_such_module_xyz\n")
    module, error = load_answers(bad)
    assert module is None and "no_such_module_xyz" in error and "line 1" in error
    bad.write_text("import sys\nsys.exit(3)\n")
    assert "sys.exit(3)" in load_answers(bad)[1]
    results, error = check_answers(bad, ["psd_W_grad"])
    assert error and results[0].status == ERROR
    with pytest.raises(FileNotFoundError):
        load_answers(tmp_path / "nope.py")
    assert str(tmp_path) not in sys.path


def test_answers_may_import_their_neighbours(tmp_path):
    (tmp_path / "helpers_xyz.py").write_text("def grad(A, X):\n    return (A - X) / len(X)\n")
    (tmp_path / "answers.py").write_text(
        "from helpers_xyz import grad as linear_squared_error_grad\n")
    results, error = check_answers(tmp_path / "answers.py", ["linear_squared_error_grad"])
    assert error is None and results[0].status == PASS


def test_a_float32_answer_is_refused_with_the_reason():
    res = check_exercise("linear_squared_error_grad",
                         lambda A, X: ((A - X) / X.shape[0]).astype(np.float32))
    assert res.status == ERROR and "the answer is float32" in res.message
    assert "float64" in res.message and not res.hint       # said once, not contradicted


@pytest.mark.slow
@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_on_any_inputs_the_correct_answer_passes_and_its_negation_fails(seed):
    """The verdicts do not depend on the particular generated values (random seeds)."""
    module = load_answers(ANSWERS / "correct.py")[0]
    for name, ex in EXERCISES.items():
        if name.startswith("conv"):      # the slowest to check; covered by the fixed seeds
            continue
        seeded = Exercise(**{**ex.__dict__, "cases": lambda rng, c=ex.cases: c(
            np.random.default_rng(seed))})
        f = getattr(module, name)
        assert check_exercise(seeded, f).status == PASS, name
        bad = check_exercise(seeded, lambda *a, f=f: -f(*a))
        # the generic hint, or the exercise's own catalogued sign mistake where it has one
        named = bad.hint in (ex.mistakes or {}) and "sign" in bad.hint
        assert bad.status == FAIL and ("opposite sign" in bad.hint or named), (name, bad.hint)
