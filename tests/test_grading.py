"""Course-grade grading through the command line: course files (``--exercises``), answers
run in a separate process (timeouts, crashes, patching), strict answers, seeds, the json and
Gradescope formats and the exit codes.

Every check runs ``python -m npae check`` in a fresh process, as a course's grading script
would (the answers then run in a third one). The answer fixtures are in
tests/answers/course/, written against the example course file that ships with npae.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from npae.cli import main
from npae.exercises import EXERCISES, Exercise
from npae.exercises.course import EXAMPLE_COURSE, CourseFileError, load_course

ANSWERS = Path(__file__).parent / "answers"
COURSE = ANSWERS / "course"
STATUSES = {"passed", "wrong", "error", "missing", "timeout", "crashed"}


def npae(*args, cwd=None, env=None, timeout=180):
    """``python -m npae ARGS`` in a fresh process; PYTHONPATH (this checkout) is inherited.
    Without Numba (NPAE_DISABLE_NUMBA=1) npae's one warning about it is silenced, so the
    tests of what npae writes to stderr hold either way."""
    quiet = {"PYTHONWARNINGS": "ignore:npae runs its slower plain-NumPy path:UserWarning"}
    return subprocess.run([sys.executable, "-m", "npae", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, **quiet, **(env or {})},
                          timeout=timeout)


def check_json(answers, *extra, **kw):
    """(exit code, the json document, stderr) of checking ``answers`` on the example course."""
    proc = npae("check", answers, "--exercises", EXAMPLE_COURSE, "--format", "json", *extra,
                **kw)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def check_here(capsys, answers, *extra, exercises=EXAMPLE_COURSE):
    """The same through ``npae.cli.main`` in this process (the answers still run in their
    own): (exit code, the json document, stderr)."""
    args = ["check", str(answers), "--format", "json", *map(str, extra)]
    if exercises is not None:
        args += ["--exercises", str(exercises)]
    code = main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, json.loads(out), err


@pytest.fixture
def unisolated(monkeypatch):
    """The answers run as the grader's own user even as root: for the tests of what the
    answer process alone guarantees (its process group, its own numpy), with answers that
    need the grader's environment and files."""
    from npae.grading import sandbox
    monkeypatch.setattr(sandbox, "can_isolate", lambda: False)
    monkeypatch.setattr("npae.grading.submission.can_isolate", lambda: False)


def by_name(doc):
    return {e["name"]: e for e in doc["exercises"]}


def assert_schema(doc):
    """The json format: {"exercises": [{"name", "status", "message", "hint",
    "max_rel_error", ...}], "passed": n, "total": n}."""
    assert isinstance(doc["exercises"], list) and doc["total"] == len(doc["exercises"])
    for e in doc["exercises"]:
        assert isinstance(e["name"], str) and e["status"] in STATUSES
        assert isinstance(e["message"], str) and isinstance(e["hint"], str)
        assert e["max_rel_error"] is None or isinstance(e["max_rel_error"], float)
        assert e["score"] == (e["points"] if e["status"] == "passed" else 0.0)
    assert doc["passed"] == sum(e["status"] == "passed" for e in doc["exercises"])
    assert doc["score"] == sum(e["score"] for e in doc["exercises"])


# -------------------------------------------------------------------------------------------
# course files
# -------------------------------------------------------------------------------------------
def test_a_minimal_exercise_gets_the_defaults():
    ex = Exercise(name="double_grad", statement="d/dx of sum(x^2)\n\nReturn an array.",
                  args=("x", "y"), wrt="x", objective=lambda inp: float((inp["x"] ** 2).sum()),
                  reference=lambda inp: 2 * inp["x"],
                  cases=lambda rng: [{"x": rng.standard_normal((3, 2)), "y": 1.0}])
    assert ex.title == "d/dx of sum(x^2)" and ex.slide == ""
    assert ex.points == 1 and ex.mistakes is None and ex.terms is None and ex.overlap is None
    assert ex.batch_size(ex.generate()[0]) == 3                # the first axis
    with pytest.raises(ValueError, match="reference"):
        Exercise(name="f", statement="s", args=("x",), wrt="x", objective=len, cases=len)
    with pytest.raises(ValueError, match="wrt='z'"):
        Exercise(name="f", statement="s", args=("x",), wrt="z", objective=len, reference=len,
                 cases=len)
    with pytest.raises(ValueError, match="points"):
        Exercise(name="f", statement="s", args=("x",), wrt="x", objective=len, reference=len,
                 cases=len, points=-1)


def test_a_course_file_registers_into_a_fresh_table():
    before = list(EXERCISES)
    course = load_course(EXAMPLE_COURSE)
    assert list(course) == ["ridge_grad", "tanh_layer_grad"]
    assert list(EXERCISES) == before                          # the built-ins are untouched
    assert course["tanh_layer_grad"].points == 2 and course["tanh_layer_grad"].mistakes
    assert course["ridge_grad"].title.startswith("Ridge regression")


def test_broken_course_files_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "course.py"
    cases = {"import numpy as np\nraise RuntimeError('unfinished')\n": "RuntimeError: unfinished",
             "import numpy as np\n": "registers no exercise",
             "from npae.exercises import Exercise, register\nregister(Exercise(name='f'))\n":
                 "needs statement"}
    for text, words in cases.items():
        bad.write_text(text)
        with pytest.raises(CourseFileError, match=words):
            load_course(bad)
        code = main(["check", str(COURSE / "right.py"), "--exercises", str(bad)])
        _, err = capsys.readouterr()
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1
    code = main(["exercises", "list", "--exercises", str(tmp_path / "nope.py")])
    _, err = capsys.readouterr()
    assert code == 2 and "not found" in err


def test_exercises_list_show_template_on_a_course_file(tmp_path, capsys):
    assert main(["exercises", "list", "--exercises", str(EXAMPLE_COURSE)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("ridge_grad") and "[2 points]" in out
    assert "linear_ae_grad_U" not in out
    assert main(["exercises", "show", "tanh_layer_grad", "--exercises",
                 str(EXAMPLE_COURSE)]) == 0
    assert "def tanh_layer_grad(X, W, G):" in capsys.readouterr().out
    assert main(["exercises", "show", "linear_ae_grad_U", "--exercises",
                 str(EXAMPLE_COURSE)]) == 2
    hw = tmp_path / "hw.py"
    assert main(["exercises", "template", str(hw), "--exercises", str(EXAMPLE_COURSE)]) == 0
    assert "--exercises" in capsys.readouterr().out
    text = hw.read_text()
    assert "def ridge_grad(X, y, w, lam):" in text and "def linear_ae_grad_U" not in text
    assert "--exercises example_course.py" in text
    code = main(["check", str(hw), "--exercises", str(EXAMPLE_COURSE)])
    out = capsys.readouterr().out
    assert code == 1 and out.count("MISSING") == 2 and "NotImplementedError" in out


# -------------------------------------------------------------------------------------------
# answers, each through the command line
# -------------------------------------------------------------------------------------------
def test_right_answers_pass_exit_0():
    code, doc, _ = check_json(COURSE / "right.py")
    assert_schema(doc)
    assert code == 0 and doc["passed"] == doc["total"] == 2 and doc["error"] is None
    assert doc["score"] == doc["max_score"] == 3.0
    for e in doc["exercises"]:
        assert e["status"] == "passed" and e["max_rel_error"] < 1e-5 and e["ref_error"] < 1e-12


def test_a_catalogued_mistake_gets_its_hint():
    code, doc, _ = check_json(COURSE / "mistake.py")
    assert_schema(doc)
    e = by_name(doc)
    assert code == 1 and e["ridge_grad"]["status"] == "passed"
    assert e["tanh_layer_grad"]["status"] == "wrong"
    assert e["tanh_layer_grad"]["hint"].startswith("the derivative of tanh is missing")


@pytest.mark.slow
def test_an_endless_loop_is_stopped_and_the_rest_still_pass():
    start = time.monotonic()
    code, doc, _ = check_json(COURSE / "loops.py", "--timeout", "5")
    elapsed = time.monotonic() - start
    e = by_name(doc)
    assert code == 1 and e["ridge_grad"]["status"] == "timeout"
    assert "time limit of 5 s" in e["ridge_grad"]["message"]
    assert e["tanh_layer_grad"]["status"] == "passed"         # in a fresh answer process
    assert elapsed < 30, elapsed                               # 5 s plus start-ups, not hung


def _alive(pid):
    """True while ``pid`` runs (a zombie waiting to be reaped has ended)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(ln.startswith("State:") and "Z" in ln.split()[1] for ln in f)
    except FileNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc to see processes")
def test_a_timeout_kills_what_the_answer_started(tmp_path, monkeypatch, capsys, unisolated):
    """The whole process group goes: a helper process the answer started does not outlive
    the check."""
    pidfile = tmp_path / "pid.txt"
    (tmp_path / "a.py").write_text(
        "import os, subprocess, sys\n"
        "def ridge_grad(X, y, w, lam):\n"
        "    p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "    open(os.environ['NPAE_TEST_PIDFILE'], 'w').write(str(p.pid))\n"
        "    while True:\n"
        "        pass\n")
    monkeypatch.setenv("NPAE_TEST_PIDFILE", str(pidfile))
    code, doc, _ = check_here(capsys, tmp_path / "a.py", "--timeout", "4", "-e", "ridge_grad")
    assert code == 1 and doc["exercises"][0]["status"] == "timeout"
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)


@pytest.mark.slow
def test_an_import_that_never_ends_is_exit_2(tmp_path, capsys):
    (tmp_path / "a.py").write_text("while True:\n    pass\n")
    code, doc, err = check_here(capsys, tmp_path / "a.py", "--timeout", "2")
    assert code == 2 and "time limit" in doc["error"] and "time limit" in err


def test_one_answer_process_serves_every_exercise_until_it_dies(monkeypatch):
    """Started once for the whole run, and again only after a crash or a timeout."""
    from npae.grading import isolation, submission
    starts = []
    real = isolation.AnswerProcess.start

    def counting(self):
        starts.append(self.path)
        return real(self)
    monkeypatch.setattr(isolation.AnswerProcess, "start", counting)
    course = load_course(EXAMPLE_COURSE)
    results, _ = submission.check_answers(ANSWERS / "correct.py", ["linear_squared_error_grad",
                                                                "psd_W_grad", "tied_weight_grad"])
    assert [r.status for r in results] == ["PASS"] * 3 and len(starts) == 1
    starts.clear()
    results, _ = submission.check_answers(COURSE / "segfault.py", exercises=course)
    assert [r.status for r in results] == ["CRASHED", "PASS"] and len(starts) == 2


@pytest.mark.slow
@pytest.mark.parametrize("fixture,crashed,passed,words", [
    ("exits.py", "tanh_layer_grad", "ridge_grad", "exited with status 0"),
    ("segfault.py", "ridge_grad", "tanh_layer_grad", "SIGSEGV"),
])
def test_an_answer_that_kills_its_process_is_crashed(fixture, crashed, passed, words):
    code, doc, _ = check_json(COURSE / fixture)
    assert_schema(doc)
    e = by_name(doc)
    assert code == 1 and e[crashed]["status"] == "crashed" and words in e[crashed]["message"]
    assert e[passed]["status"] == "passed"


@pytest.mark.slow
def test_sys_exit_and_running_out_of_memory_are_crashes():
    code, doc, _ = check_json(COURSE / "exhausts.py", "--memory-limit", "1024")
    e = by_name(doc)
    assert code == 1
    assert e["ridge_grad"]["status"] == "crashed" and "sys.exit(3)" in e["ridge_grad"]["message"]
    assert e["tanh_layer_grad"]["status"] == "crashed"
    assert "MemoryError" in e["tanh_layer_grad"]["message"]


def test_complex_and_string_results_are_errors_not_cast():
    code, doc, _ = check_json(COURSE / "complex_result.py")
    e = by_name(doc)
    assert code == 1 and e["ridge_grad"]["status"] == "error"
    assert "complex" in e["ridge_grad"]["message"]
    assert e["tanh_layer_grad"]["status"] == "error"
    assert "strings" in e["tanh_layer_grad"]["message"]


def test_an_answer_that_changes_its_input_fails_naming_it():
    code, doc, _ = check_json(COURSE / "mutates.py")
    e = by_name(doc)
    assert code == 1
    assert e["ridge_grad"]["status"] == "error"
    assert "changed its input 'y' in place" in e["ridge_grad"]["message"]
    assert "changed its input 'G' in place" in e["tanh_layer_grad"]["message"]


@pytest.mark.slow
def test_patching_numpy_npae_and_builtins_changes_no_verdict(capsys, unisolated):
    code, doc, _ = check_here(capsys, COURSE / "patches.py")
    assert code == 1
    assert [e["status"] for e in doc["exercises"]] == ["wrong", "wrong"]
    code = main(["check", str(COURSE / "patches.py"), "--exercises", str(EXAMPLE_COURSE)])
    out = capsys.readouterr().out
    assert code == 1 and "PASS" not in out                 # its print went nowhere


@pytest.mark.slow
def test_a_forged_reply_is_not_a_pass(capsys):
    """An answer that writes its own reply on the checker's channel (claiming success, with
    the right gradient for one input set of three) is a crash, never a pass."""
    code, doc, _ = check_here(capsys, COURSE / "forges.py", "--timeout", "20")
    e = by_name(doc)
    assert code == 1 and e["ridge_grad"]["status"] == "crashed"
    assert "malformed" in e["ridge_grad"]["message"]
    assert e["tanh_layer_grad"]["status"] == "passed"


def test_an_exercise_whose_own_code_fails_is_exit_2(tmp_path, capsys):
    course = tmp_path / "course.py"
    course.write_text(
        "from npae.exercises import Exercise, register\n"
        "register(Exercise(name='f', statement='s', args=('x',), wrt='x',\n"
        "    objective=lambda inp: 1 / 0, reference=lambda inp: inp['x'],\n"
        "    cases=lambda rng: [{'x': rng.standard_normal(3)}]))\n")
    (tmp_path / "a.py").write_text("def f(x):\n    return x\n")
    code = main(["check", str(tmp_path / "a.py"), "--exercises", str(course)])
    _, err = capsys.readouterr()
    assert code == 2 and "exercise 'f'" in err and "ZeroDivisionError" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_hard_coded_answer_fails_under_another_seed(tmp_path, monkeypatch, capsys,
                                                     unisolated):
    """An answer that recorded its inputs (and the right gradients) on one run and replays
    them passes only under the same seed. (The answer process inherits the environment.)"""
    record = tmp_path / "record.npz"
    monkeypatch.setenv("NPAE_TEST_SPY", str(record))
    code, doc, _ = check_here(capsys, COURSE / "spy.py", "--seed", "1")
    assert code == 0 and record.exists()
    first = dict(np.load(record))
    code, doc, _ = check_here(capsys, COURSE / "spy.py", "--seed", "1")
    again = dict(np.load(record))
    assert first.keys() == again.keys()
    for k in first:                                       # same seed: the same inputs, bit for bit
        assert first[k].tobytes() == again[k].tobytes(), k
    monkeypatch.delenv("NPAE_TEST_SPY")
    monkeypatch.setenv("NPAE_TEST_REPLAY", str(record))
    code, doc, _ = check_here(capsys, COURSE / "spy.py", "--seed", "1")
    assert code == 0                                      # the same inputs: the replay fits
    code, doc, _ = check_here(capsys, COURSE / "spy.py", "--seed", "2")
    assert code == 1 and {e["status"] for e in doc["exercises"]} == {"wrong"}
    code, doc, _ = check_here(capsys, COURSE / "spy.py")  # the default inputs
    assert code == 1


def test_seeds_choose_the_inputs_bit_for_bit():
    for ex in list(EXERCISES.values())[:3] + list(load_course(EXAMPLE_COURSE).values()):
        default, s7, s7b, s8 = ex.inputs(), ex.inputs(7), ex.inputs(7), ex.inputs(8)
        for a, b, c, d, e in zip(default, s7, s7b, s8, ex.generate()):
            for k in a:
                if isinstance(a[k], np.ndarray):
                    assert b[k].tobytes() == c[k].tobytes()      # same seed, same inputs
                    assert a[k].tobytes() == e[k].tobytes()      # default: the fixed inputs
                    assert not np.array_equal(b[k], d[k]) and not np.array_equal(a[k], b[k])


# -------------------------------------------------------------------------------------------
# formats, output, exit codes
# -------------------------------------------------------------------------------------------
def test_gradescope_results_have_the_documented_fields(tmp_path):
    out = tmp_path / "results" / "results.json"
    out.parent.mkdir()
    proc = npae("check", COURSE / "mistake.py", "--exercises", EXAMPLE_COURSE, "--format",
                "gradescope", "--output", out, "--seed", "3")
    assert proc.returncode == 1 and proc.stdout == ""
    doc = json.loads(out.read_text())
    assert set(doc) >= {"score", "tests"} and isinstance(doc["score"], float)
    assert doc["score"] == 1.0
    assert [t["name"] for t in doc["tests"]] == ["ridge_grad", "tanh_layer_grad"]
    for t in doc["tests"]:
        assert set(t) >= {"name", "score", "max_score", "output", "status"}
        assert t["status"] in ("passed", "failed") and isinstance(t["output"], str)
        assert isinstance(t["score"], float) and isinstance(t["max_score"], float)
    ridge, tanh = doc["tests"]
    assert (ridge["score"], ridge["max_score"], ridge["status"]) == (1.0, 1.0, "passed")
    assert (tanh["score"], tanh["max_score"], tanh["status"]) == (0.0, 2.0, "failed")
    assert "derivative of tanh is missing" in tanh["output"]
    assert [p.name for p in out.parent.iterdir()] == ["results.json"]   # no temporary left


def test_exit_2_when_the_check_cannot_run(tmp_path, capsys):
    proc = npae("check", tmp_path / "missing.py")          # the process's own exit status
    assert proc.returncode == 2 and "not found" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stdout == ""
    cases = [
        (["check", COURSE / "right.py", "--exercises", EXAMPLE_COURSE, "--timeout", "0"],
         "--timeout"),
        (["check", COURSE / "right.py", "--no-such-option"], "unrecognized arguments"),
        (["check", COURSE / "right.py", "--exercises", EXAMPLE_COURSE, "-e", "nope"],
         "no exercise named 'nope'"),
        (["check", tmp_path / "missing.py", "--exercises", EXAMPLE_COURSE], "not found"),
        (["check", COURSE / "syntax_error.py", "--exercises", EXAMPLE_COURSE],
         "SyntaxError"),
        (["check", COURSE / "right.py", "--exercises", tmp_path / "nope.py"], "not found"),
    ]
    for args, words in cases:
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:                          # argparse's usage errors
            code = exc.code
        _, err = capsys.readouterr()
        assert code == 2, (args, err)
        assert words in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1, err


def test_an_unimportable_file_still_gets_a_json_report(capsys):
    code, doc, err = check_here(capsys, COURSE / "syntax_error.py")
    assert code == 2 and "SyntaxError" in doc["error"] and "line 3" in doc["error"]
    assert_schema(doc)
    assert {e["status"] for e in doc["exercises"]} == {"error"}


def test_check_all_entries_and_gradcheck_all(tmp_path, capsys):
    course = tmp_path / "big_course.py"
    course.write_text(
        "import numpy as np\nfrom npae.exercises import Exercise, register\n"
        "register(Exercise(name='square_grad', statement='d/dx sum(x^2)', args=('x',),\n"
        "    wrt='x', objective=lambda inp: float((inp['x'] ** 2).sum()),\n"
        "    reference=lambda inp: 2 * inp['x'],\n"
        "    cases=lambda rng: [{'x': rng.standard_normal((20, 20))}]))\n")
    answer = tmp_path / "a.py"
    answer.write_text("def square_grad(x):\n    return x\n")
    main(["check", str(answer), "--exercises", str(course), "-v"])
    assert "256/400 entries (sampled)" in capsys.readouterr().out
    main(["check", str(answer), "--exercises", str(course), "-v", "--all"])
    assert "400/400 entries" in capsys.readouterr().out
    (tmp_path / "f.py").write_text("def f(x):\n    return float((x ** 2).sum())\n"
                                   "def g(x):\n    return 2 * x\n")
    spec = str(tmp_path / "f.py")
    assert main(["gradcheck", f"{spec}:f", "--grad", f"{spec}:g", "--shape", "20,20"]) == 0
    assert "(sampled)" in capsys.readouterr().out
    assert main(["gradcheck", f"{spec}:f", "--grad", f"{spec}:g", "--shape", "20,20",
                 "--all"]) == 0
    assert "400/400 entries" in capsys.readouterr().out


# -------------------------------------------------------------------------------------------
# the lecture's classic mistakes, each with its shipped wrong answer
# -------------------------------------------------------------------------------------------
CLASSIC = [
    ("wrong_squared_error_chain.py", "sigmoid_cross_entropy_grad", "squared-error chain"),
    ("wrong_squared_error_chain.py", "tied_weight_grad", "squared-error chain"),
    ("wrong_sigmoid_forgotten.py", "sigmoid_cross_entropy_grad",
     "sigmoid's derivative x_hat (1 - x_hat) is missing"),
    ("wrong_sigmoid_forgotten.py", "tied_weight_grad", "lacks the sigmoid's derivative"),
    ("wrong_sigmoid_forgotten.py", "psd_W_grad", "sigma (1 - sigma) is missing"),
    ("wrong_sigmoid_twice.py", "tied_weight_grad", "h (1 - h) twice"),
    ("wrong_sigmoid_twice.py", "psd_W_grad", "applied twice"),
    ("wrong_kernel_flip.py", "conv2d_grad_input", "the kernel is flipped"),
    ("wrong_kernel_flip.py", "conv2d_grad_weight", "the weight gradient is flipped"),
    ("wrong_pool_spread.py", "maxpool2d_backward", "spread over the whole window"),
    ("wrong_other.py", "maxpool2d_backward", "averaged over the window"),
    ("wrong_no_1m2h.py", "contractive_grad_W", "(1 - 2h) is missing"),
    ("wrong_no_1m2h.py", "contractive_grad_b", "(1 - 2h) is missing"),
    ("wrong_missing_term.py", "tied_weight_grad",
     "'decoder term (W^T in a_hat = c + W^T h)' is missing"),
    ("wrong_missing_other_term.py", "tied_weight_grad",
     "'encoder term (W in a = b + W x)' is missing"),
]


@pytest.fixture(scope="module")
def classic_results(tmp_path_factory):
    """fixture file -> {exercise: json entry}, each file checked once by ``npae check``."""
    out, folder = {}, tmp_path_factory.mktemp("classic")
    for fixture in sorted({f for f, _, _ in CLASSIC}):
        names = [n for f, n, _ in CLASSIC if f == fixture]
        path = folder / f"{fixture}.json"
        code = main(["check", str(ANSWERS / fixture), "--format", "json", "--output",
                     str(path), *[a for n in names for a in ("-e", n)]])
        assert code == 1
        out[fixture] = by_name(json.loads(path.read_text()))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("fixture,name,words", CLASSIC, ids=[f"{f[6:-3]}-{n}"
                                                             for f, n, _ in CLASSIC])
def test_each_classic_mistake_gets_its_own_hint(classic_results, fixture, name, words):
    e = classic_results[fixture][name]
    assert e["status"] == "wrong", e
    assert words in e["hint"], e["hint"]
    others = [w for f, n, w in CLASSIC if n == name and w != words]
    assert not any(w in e["hint"] for w in others), e["hint"]     # its own hint, not another's


def test_inputs_that_sit_on_kinks_are_not_a_pass(tmp_path, capsys):
    """An exercise whose every checked entry sits on a kink verifies nothing: the right
    subgradient is not passed (status error, saying why), a wrong one is still wrong."""
    course = tmp_path / "course.py"
    course.write_text(
        "import numpy as np\n"
        "from npae.exercises import Exercise, register\n"
        "register(Exercise(name='l1_grad', statement='dL/dx of L = sum |x|', args=('x',),\n"
        "    wrt='x', objective=lambda inp: float(np.abs(inp['x']).sum()),\n"
        "    reference=lambda inp: np.sign(inp['x']),\n"
        "    cases=lambda rng: [{'x': np.zeros(4)}]))\n")
    (tmp_path / "right.py").write_text("import numpy as np\n"
                                       "def l1_grad(x):\n    return np.sign(x)\n")
    (tmp_path / "wrong.py").write_text("import numpy as np\n"
                                       "def l1_grad(x):\n    return np.full(x.shape, 3.0)\n")
    code, doc, _ = check_here(capsys, tmp_path / "right.py", exercises=course)
    assert_schema(doc)
    e = by_name(doc)["l1_grad"]
    assert code == 1 and e["status"] == "error" and "kink" in e["message"]
    code, doc, _ = check_here(capsys, tmp_path / "wrong.py", exercises=course)
    assert code == 1 and by_name(doc)["l1_grad"]["status"] == "wrong"


# -------------------------------------------------------------------------------------------
# the answer protocol: one module, standard library and NumPy only, loaded by path
# -------------------------------------------------------------------------------------------
def test_the_protocol_module_imports_only_the_standard_library_and_numpy():
    """protocol.py and the one npae module it uses (_tracebacks.py, which the answer process
    loads by path beside it) import nothing but the standard library and NumPy."""
    import ast
    from npae import _tracebacks
    from npae.grading import protocol
    for module in (protocol, _tracebacks):
        tree = ast.parse(Path(module.__file__).read_text())
        roots = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    assert (module is protocol and node.level == 2
                            and node.module == "_tracebacks"), \
                        f"a relative import of {node.module!r} in {module.__name__}"
                    continue
                roots.add(node.module.split(".")[0])
        assert roots - {"__future__", "numpy"} <= set(sys.stdlib_module_names), roots


def test_the_answer_process_never_imports_npae_or_numba(tmp_path):
    from npae.grading.isolation import AnswerProcess
    from npae.grading import protocol
    f = tmp_path / "spy.py"
    f.write_text("import sys\nimport numpy as np\n"
                 "def f(x):\n"
                 "    bad = [m for m in sys.modules if m.split('.')[0] in ('npae', 'numba')]\n"
                 "    return np.array(float(len(bad)))\n")
    with AnswerProcess(f, timeout=60).start() as proc:
        header, arrays = proc.evaluate("f", np.zeros(3), time.monotonic() + 60)
    assert header["kind"] == protocol.RESULTS
    assert protocol.parse_case(header["cases"][0])[0] == protocol.ARRAY
    assert float(arrays[protocol.output_key(0)]) == 0.0


@pytest.mark.parametrize("entry", [
    {"kind": "array", "source": "ndarray"},                       # a key missing
    {"kind": "array", "from": "ndarray", "source": "", "message": ""},   # a key too many
    {"kind": "passed", "source": "", "message": ""},              # a kind that does not exist
    {"kind": "array", "source": 3, "message": ""},
    ["array", "", ""],
])
def test_a_case_entry_is_read_strictly(entry):
    from npae.grading import protocol
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_case(entry)


# -------------------------------------------------------------------------------------------
# isolation as root: a uid of its own, no course file, no results, nothing left running
# -------------------------------------------------------------------------------------------
needs_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                                reason="answers run as a uid of their own only when the "
                                       "grader is root (as on a grading server or in CI)")

HOSTILE = '''
import os, time
import numpy as np
W = {witness!r}


def _try(name, fn):
    try:
        fn()
        got = "yes"
    except Exception as exc:
        got = "no " + type(exc).__name__
    with open(os.path.join(W, name), "w") as f:
        f.write(got)


_try("uid", lambda: open(os.path.join(W, "uid_value"), "w").write(str(os.getuid())))
_try("read_course", lambda: open({course!r}).read())
_try("write_outside", lambda: open({outside!r}, "w").write("mine"))
_try("read_cwd_parent", lambda: os.listdir({course_dir!r}))
if os.fork() == 0:                      # a detached process that forges the results later
    os.setsid()
    if os.fork() == 0:
        time.sleep(2.5)
        with open({results!r}, "w") as f:
            f.write('{{"score": 999, "tests": []}}')
        os._exit(0)
    os._exit(0)


def ridge_grad(X, y, w, lam):
    ns = {{}}
    try:                                # the course's reference, if the file could be read
        exec(open({course!r}).read(), ns)
    except Exception:
        return np.zeros_like(w)
    return ns["ridge_reference"]({{"X": X, "y": y, "w": w, "lam": lam}})


def tanh_layer_grad(X, W, G):
    H = np.tanh(X @ W.T)
    return ((1 - H ** 2) * G).T @ X
'''


@needs_root
def test_a_hostile_answer_as_root_earns_only_its_points_and_leaves_nothing(tmp_path):
    import shutil
    import tempfile
    from npae.grading.sandbox import UID_RANGE, processes_of
    course_dir = tmp_path / "source"          # under pytest's root-only folder
    course_dir.mkdir()
    course = course_dir / "course.py"
    shutil.copyfile(EXAMPLE_COURSE, course)
    outside = tmp_path / "not_yours.txt"
    public = Path(tempfile.mkdtemp(prefix="npae-test-"))   # reachable by any uid
    try:
        os.chmod(public, 0o777)
        witness, results_dir = public / "w", public / "results"
        witness.mkdir(mode=0o777)
        results_dir.mkdir(mode=0o777)
        os.chmod(witness, 0o777)
        os.chmod(results_dir, 0o777)
        results = results_dir / "results.json"
        answer = tmp_path / "hostile.py"
        answer.write_text(HOSTILE.format(witness=str(witness), course=str(course),
                                         outside=str(outside), course_dir=str(course_dir),
                                         results=str(results)))
        proc = npae("check", answer, "--exercises", course, "--format", "gradescope",
                    "--output", results)
        doc = json.loads(results.read_text())
        uid = int((witness / "uid_value").read_text())
        assert UID_RANGE[0] <= uid < UID_RANGE[1]
        assert processes_of(uid) == [], "a process of the answers' uid outlived the check"
        assert (witness / "read_course").read_text().startswith("no PermissionError")
        assert (witness / "read_cwd_parent").read_text().startswith("no PermissionError")
        assert (witness / "write_outside").read_text().startswith("no PermissionError")
        assert not outside.exists()
        scores = {t["name"]: t["score"] for t in doc["tests"]}
        assert scores == {"ridge_grad": 0.0, "tanh_layer_grad": 2.0}, proc.stderr
        assert doc["score"] == 2.0
        time.sleep(3.5)                       # past the forger's wake-up
        assert json.loads(results.read_text()) == doc
        assert processes_of(uid) == []
        import pwd
        with pytest.raises(KeyError):
            pwd.getpwuid(uid)                 # no account made, none left behind
    finally:
        shutil.rmtree(public, ignore_errors=True)


@needs_root
def test_the_total_time_limit_stops_a_file_that_makes_every_exercise_time_out(tmp_path):
    answer = tmp_path / "slow.py"
    answer.write_text("import time\n"
                      "def ridge_grad(X, y, w, lam):\n    time.sleep(100)\n"
                      "def tanh_layer_grad(X, W, G):\n    time.sleep(100)\n")
    start = time.monotonic()
    code, doc, _ = check_json(answer, "--timeout", "3", "--total-timeout", "4")
    assert time.monotonic() - start < 60
    assert [e["status"] for e in doc["exercises"]] == ["timeout", "timeout"]
    assert "total time limit of 4 s" in doc["exercises"][1]["message"]


# -------------------------------------------------------------------------------------------
# notebooks, and the Gradescope autograder zip run in a simulated /autograder tree
# -------------------------------------------------------------------------------------------
def _notebook(cells):
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": kind, "metadata": {}, "source": text.splitlines(True),
         **({"outputs": [], "execution_count": None} if kind == "code" else {})}
        for kind, text in cells]})


RIGHT_NOTEBOOK = _notebook([
    ("markdown", "# My homework\n"),
    ("code", "%matplotlib inline\n!pip install nothing\nimport numpy as np\n"),
    ("code", "def ridge_grad(X, y, w, lam):\n"
             "    return 2 * X.T @ (X @ w - y) / len(y) + 2 * lam * w\n"),
    ("code", "def tanh_layer_grad(X, W, G):\n    H = np.tanh(X @ W.T)\n"
             "    return ((1 - H ** 2) * G).T @ X\n"),
])


def test_a_notebook_is_checked_from_its_code_cells_saying_what_was_left_out(tmp_path):
    nb = tmp_path / "answers.ipynb"
    nb.write_text(RIGHT_NOTEBOOK)
    code, doc, err = check_json(nb)
    assert code == 0 and [e["status"] for e in doc["exercises"]] == ["passed", "passed"]
    assert "left out 2 lines" in err and "% or !" in err
    bad = tmp_path / "broken.ipynb"
    bad.write_text("not json")
    proc = npae("check", bad, "--exercises", EXAMPLE_COURSE)
    assert proc.returncode == 2 and "not a Jupyter notebook" in proc.stderr


def _run_autograder(tmp_path, files, submission_id=1234):
    import zipfile
    zpath = tmp_path / "autograder.zip"
    assert main(["autograder", str(EXAMPLE_COURSE), "--out", str(zpath)]) == 0
    root = tmp_path / "autograder"
    source = root / "source"
    with zipfile.ZipFile(zpath) as zf:
        zf.extractall(source)
        names = set(zf.namelist())
    assert {"setup.sh", "run_autograder", "example_course.py",
            "npae-src/pyproject.toml", "npae-src/npae/grading/protocol.py"} <= names
    script = source / "run_autograder"
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    (root / "submission").mkdir(parents=True)
    for name, text in files.items():
        (root / "submission" / name).write_text(text)
    (root / "submission_metadata.json").write_text(json.dumps({"id": submission_id}))
    env = {**os.environ, "NPAE_AUTOGRADER_ROOT": str(root), "NPAE_PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env,
                          timeout=400)
    assert proc.returncode == 0, proc.stderr
    return json.loads((root / "results" / "results.json").read_text()), proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("files", [
    {"answers.py": (COURSE / "right.py").read_text()},
    {"Homework 3 - final (2).py": (COURSE / "right.py").read_text()},
    {"answers.ipynb": RIGHT_NOTEBOOK},
], ids=["py", "misnamed", "notebook"])
def test_the_autograder_zip_grades_a_right_submission_with_full_marks(tmp_path, files):
    doc, out = _run_autograder(tmp_path, files)
    assert doc["score"] == 3.0 and all(t["status"] == "passed" for t in doc["tests"])
    import zlib
    seed = zlib.crc32(b"1234") % 2 ** 31
    assert f"seed {seed}" in out and f"seed {seed}" in doc["output"]


@pytest.mark.slow
def test_the_autograder_gives_a_hostile_file_only_what_it_earned(tmp_path):
    src = tmp_path / "autograder" / "source" / "example_course.py"
    hostile = ("import numpy as np\n"
               "def ridge_grad(X, y, w, lam):\n"
               f"    exec(open({str(src)!r}).read(), {{}})\n"
               "    return 2 * X.T @ (X @ w - y) / len(y) + 2 * lam * w\n"
               "def tanh_layer_grad(X, W, G):\n"
               "    H = np.tanh(X @ W.T)\n    return ((1 - H ** 2) * G).T @ X\n")
    doc, _ = _run_autograder(tmp_path, {"mine.py": hostile})
    scores = {t["name"]: t["score"] for t in doc["tests"]}
    if os.geteuid() == 0:        # the course file is unreadable to the answers' uid
        assert scores == {"ridge_grad": 0.0, "tanh_layer_grad": 2.0}
    assert 0 <= doc["score"] <= 3.0


# -------------------------------------------------------------------------------------------
# npae exercises validate; what results.json can say (visibility, hidden sets, credit)
# -------------------------------------------------------------------------------------------
def test_validate_names_the_degenerate_batch_norm_input_set_and_the_right_answer_passes(
        capsys):
    code = main(["exercises", "validate", str(COURSE / "batchnorm_course.py"), "--seeds", "3"])
    out = capsys.readouterr().out
    assert code == 1
    for seed in range(3):
        assert (f"batchnorm_grad_x             seed {seed}, input set 2: the objective does "
                "not depend on X") in out
    assert "input set 1" not in out and "reference does not pass" not in out
    assert "3 findings" in out
    code, doc, _ = check_json(COURSE / "batchnorm_right.py", "--exercises",
                              COURSE / "batchnorm_course.py")
    assert doc["exercises"][0]["status"] == "passed", doc
    assert main(["exercises", "validate", str(EXAMPLE_COURSE), "--seeds", "2"]) == 0


def test_validate_finds_a_mistake_that_cannot_be_told_from_the_right_answer(tmp_path, capsys):
    course = tmp_path / "c.py"
    course.write_text(
        "import numpy as np\nfrom npae.exercises import Exercise, register\n"
        "register(Exercise(name='sq', statement='d/dx sum(x^2)', args=('x',), wrt='x',\n"
        "    objective=lambda inp: float((inp['x'] ** 2).sum()),\n"
        "    reference=lambda inp: 2 * inp['x'],\n"
        "    cases=lambda rng: [{'x': rng.standard_normal(3)}],\n"
        "    mistakes={'x + x is the same': lambda inp: inp['x'] + inp['x'],\n"
        "              'forgot the 2': lambda inp: inp['x']}))\n")
    assert main(["exercises", "validate", str(course), "--seeds", "2"]) == 1
    out = capsys.readouterr().out
    assert "seed 0, input set 1: the mistake 'x + x is the same' passes" in out
    assert "forgot the 2" not in out


def test_gradescope_results_carry_visibility_credit_hidden_sets_and_time(tmp_path):
    course = tmp_path / "c.py"
    course.write_text(
        "import numpy as np\nfrom npae.exercises import Exercise, register\n"
        "def half(inp):\n    return inp['x']\n"
        "register(Exercise(name='sq', statement='d/dx sum(x^2)', args=('x',), wrt='x',\n"
        "    objective=lambda inp: float((inp['x'] ** 2).sum()),\n"
        "    reference=lambda inp: 2 * inp['x'],\n"
        "    cases=lambda rng: [{'x': rng.standard_normal(3)}],\n"
        "    hidden_cases=lambda rng: [{'x': rng.standard_normal((2, 2))}],\n"
        "    mistakes={'forgot the 2': half}, mistake_credit={'forgot the 2': 0.25},\n"
        "    points=4, visibility='after_due_date'))\n"
        "register(Exercise(name='cube', statement='d/dx sum(x^3)', args=('x',), wrt='x',\n"
        "    objective=lambda inp: float((inp['x'] ** 3).sum()),\n"
        "    reference=lambda inp: 3 * inp['x'] ** 2,\n"
        "    cases=lambda rng: [{'x': rng.standard_normal(3)}],\n"
        "    hidden_cases=lambda rng: [{'x': rng.standard_normal(4) + 5}]))\n")
    answer = tmp_path / "a.py"
    answer.write_text("import numpy as np\ndef sq(x):\n    return x\n"
                      "def cube(x):\n    return 3 * x ** 2 if x.ndim == 1 and x.size == 3 "
                      "else np.zeros_like(x)\n")
    proc = npae("check", answer, "--exercises", course, "--format", "gradescope")
    doc = json.loads(proc.stdout)
    tests = {t["name"]: t for t in doc["tests"]}
    assert tests["sq"]["score"] == 1.0 and tests["sq"]["max_score"] == 4.0
    assert tests["sq"]["status"] == "failed" and tests["sq"]["visibility"] == "after_due_date"
    assert tests["cube"]["score"] == 0.0 and tests["cube"]["visibility"] == "visible"
    assert "hidden input set 1" in tests["cube"]["output"] and "(4,)" not in tests["cube"][
        "output"]
    assert doc["score"] == 1.0 and doc["output_format"] == "text"
    assert 0 < doc["execution_time"] < 300
    assert all(t["status"] in ("passed", "failed") and 0 <= t["score"] <= t["max_score"]
               for t in doc["tests"])
    with pytest.raises(ValueError, match="visibility"):
        Exercise(name="e", statement="s", args=("x",), wrt="x", objective=len,
                 reference=len, cases=len, visibility="secret")
    with pytest.raises(ValueError, match="mistake_credit"):
        Exercise(name="e", statement="s", args=("x",), wrt="x", objective=len,
                 reference=len, cases=len, mistakes={"m": len}, mistake_credit={"m": 2})


def test_a_zero_gradient_of_a_locally_constant_objective_passes():
    """Inconclusive finite differences on a constant objective: 0 matched by 0 is right."""
    from npae.grading.checker import check_exercise
    ex = Exercise(name="flat", statement="d/dx of a constant", args=("x",), wrt="x",
                  objective=lambda inp: float(np.sign(inp["x"]).sum()),
                  reference=lambda inp: np.zeros_like(inp["x"]),
                  cases=lambda rng: [{"x": rng.uniform(1, 2, 4)}])
    assert check_exercise(ex, lambda x: np.zeros_like(x)).status == "PASS"
    assert check_exercise(ex, lambda x: np.ones_like(x)).status != "PASS"


def test_grade_a_folder_into_a_gradebook(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    right = (COURSE / "right.py").read_text()
    (subs / "alice.py").write_text(right)
    (subs / "bob.ipynb").write_text(RIGHT_NOTEBOOK)
    (subs / "carol.py").write_text(right.replace("2 * lam * w", "lam * w"))
    (subs / "dave.py").write_text("this is not python")
    (subs / "notes.txt").write_text("ignored")
    out, results = tmp_path / "book.csv", tmp_path / "res"
    proc = npae("grade", subs, "--exercises", EXAMPLE_COURSE, "--jobs", "2", "--out", out,
                "--results", results)
    assert proc.returncode == 0, proc.stderr
    import csv
    rows = {r["submission"]: r for r in csv.DictReader(out.open())}
    assert set(rows) == {"alice.py", "bob.ipynb", "carol.py", "dave.py"}
    assert rows["alice.py"]["total"] == "3" and rows["bob.ipynb"]["total"] == "3"
    assert rows["carol.py"]["ridge_grad"] == "0" and rows["carol.py"]["total"] == "2"
    assert rows["dave.py"]["total"] == "0" and "import" in rows["dave.py"]["error"]
    doc = json.loads((results / "carol.py.json").read_text())
    from npae.cli.grade import seed_of
    assert doc["seed"] == seed_of("carol.py")
    assert "4/4 graded" in proc.stderr
    assert npae("grade", tmp_path / "nothing").returncode == 2


def test_not_as_root_the_answers_run_with_the_users_rights_and_it_is_said_once(monkeypatch,
                                                                                capsys):
    from npae.grading import sandbox
    from npae.grading.submission import check_answers
    monkeypatch.setattr(sandbox, "can_isolate", lambda: False)
    monkeypatch.setattr(sandbox, "_announced", False)
    sandbox.announce_unprivileged()
    sandbox.announce_unprivileged()
    err = capsys.readouterr().err
    assert err.count("your own user's rights") == 1
    results, error = check_answers(COURSE / "right.py", exercises=load_course(EXAMPLE_COURSE),
                                   isolate=False)
    assert error is None and all(r.ok for r in results)
