"""The course commands: ``npae check``, ``npae exercises list|show|template``,
``npae gradcheck``. Through ``main(argv)`` with capsys, and once through a real process.

A student's broken file must end in a clear message on the exercise's line and a non-zero
exit status, never in a traceback of npae.
"""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from npae.cli import main
from npae.exercises import EXERCISES

ANSWERS = Path(__file__).parent / "answers"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def write(tmp_path, text, name="answers.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def line_of(out, name):
    lines = [ln for ln in out.splitlines() if f" {name} " in f" {ln} "]
    assert len(lines) == 1, out
    return lines[0]


# -------------------------------------------------------------------------------------------
# npae check
# -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_check_correct_answers_exits_0(capsys):
    code, out, _ = run(capsys, "check", ANSWERS / "correct.py")
    assert code == 0
    for name in EXERCISES:
        assert line_of(out, name).startswith("PASS")
    assert "max rel. error" in out and f"{len(EXERCISES)} pass" in out


def test_check_a_wrong_answer_exits_1_with_the_hint(capsys):
    code, out, _ = run(capsys, "check", ANSWERS / "wrong_sign.py", "--exercise",
                       "linear_ae_grad_U", "-e", "psd_W_grad")
    assert code == 1
    assert line_of(out, "linear_ae_grad_U").startswith("FAIL")
    assert line_of(out, "psd_W_grad").startswith("FAIL")
    assert out.count("hint: opposite sign") == 2
    assert len([ln for ln in out.splitlines() if ln[:4] in ("PASS", "FAIL")]) == 2


def test_check_verbose_prints_the_worst_entries(capsys):
    code, out, _ = run(capsys, "check", ANSWERS / "wrong_factor2.py", "-e", "psd_W_grad", "-v")
    assert code == 1 and "analytic" in out and "numeric" in out


def test_check_only_selected_exercises_decide_the_exit_status(capsys):
    # wrong_sign.py has no answer for contractive_grad_W (MISSING); selecting passing
    # exercises of another file gives 0
    code, _, _ = run(capsys, "check", ANSWERS / "correct.py", "-e", "linear_squared_error_grad")
    assert code == 0
    code, out, _ = run(capsys, "check", ANSWERS / "wrong_sign.py", "-e", "contractive_grad_W")
    assert code == 1 and line_of(out, "contractive_grad_W").startswith("MISSING")


def test_check_unknown_exercise_and_missing_file(capsys, tmp_path):
    """The check cannot run: exit status 2 and a one-line message."""
    code, _, err = run(capsys, "check", ANSWERS / "correct.py", "-e", "no_such_exercise")
    assert code == 2 and "no exercise named 'no_such_exercise'" in err
    assert "linear_ae_grad_U" in err          # lists the valid names
    code, _, err = run(capsys, "check", tmp_path / "nope.py")
    assert code == 2 and "not found" in err and len(err.strip().splitlines()) == 1


def test_check_a_file_that_does_not_import(capsys, tmp_path):
    path = write(tmp_path, """\
        import numpy as np

        def linear_ae_grad_U(X, U, V)
            return X
        """)
    code, out, err = run(capsys, "check", path, "-e", "linear_ae_grad_U", "-e", "psd_W_grad")
    assert code == 2              # the check could not run
    assert "could not import" in err and "SyntaxError" in err and "line 3" in err
    assert out == "" and len(err.strip().splitlines()) == 1

    path = write(tmp_path, "import numpy as np\nraise RuntimeError('half-finished file')\n")
    code, out, err = run(capsys, "check", path, "-e", "psd_W_grad")
    assert code == 2 and "RuntimeError: half-finished file" in err and "line 2" in err


def test_check_each_kind_of_broken_function_gets_its_message(capsys, tmp_path):
    path = write(tmp_path, """\
        import numpy as np

        def linear_ae_grad_u(X, U, V):          # misspelt: linear_ae_grad_U is missing
            return 0 * U

        def linear_ae_grad_V(X, U, V):          # wrong shape
            return np.zeros((3, 3))

        def sigmoid_cross_entropy_grad(A_hat, X):
            return 1 / 0                         # raises

        def linear_squared_error_grad(A_hat, X):
            (A_hat - X) / X.shape[0]             # no return

        def tied_weight_grad(X, W, b):           # wrong signature
            return W

        def contractive_grad_b(X, W, b, lam):    # NaN
            return np.full(b.shape, np.nan)

        def psd_W_grad(X, Z, W):
            return "a string"

        psd_z_grad = 3
        """)
    code, out, _ = run(capsys, "check", path)
    assert code == 1
    msg = {name: line_of(out, name) for name in EXERCISES}
    assert msg["linear_ae_grad_U"].startswith("MISSING")
    assert "no function 'linear_ae_grad_U'" in msg["linear_ae_grad_U"]
    assert "is 'linear_ae_grad_u' meant to be 'linear_ae_grad_U'?" in msg["linear_ae_grad_U"]
    # another exercise's function is never offered as the misspelling
    assert "meant to be" not in msg["contractive_grad_W"]
    assert msg["linear_ae_grad_V"].startswith("FAIL")
    assert "shape mismatch" in out and "(3, 3)" in out
    assert msg["sigmoid_cross_entropy_grad"].startswith("ERROR")
    assert "ZeroDivisionError" in msg["sigmoid_cross_entropy_grad"]
    assert "line 10" in msg["sigmoid_cross_entropy_grad"]
    assert msg["linear_squared_error_grad"].startswith("ERROR")
    assert "returned None" in msg["linear_squared_error_grad"]
    assert msg["tied_weight_grad"].startswith("ERROR")
    assert "wrong signature" in msg["tied_weight_grad"]
    assert "def tied_weight_grad(X, W, b, c):" in msg["tied_weight_grad"]
    assert msg["contractive_grad_b"].startswith("ERROR") and "non-finite" in \
        msg["contractive_grad_b"]
    assert "(0,), (1,), (2,)" in msg["contractive_grad_b"]     # names the entries
    assert msg["psd_W_grad"].startswith("ERROR") and "returned str, not a float array" in \
        msg["psd_W_grad"]
    assert msg["psd_z_grad"].startswith("MISSING") and "not a function" in msg["psd_z_grad"]
    for name in ("contractive_grad_W", "conv2d_grad_input", "maxpool2d_backward"):
        assert msg[name].startswith("MISSING")


# -------------------------------------------------------------------------------------------
# npae exercises
# -------------------------------------------------------------------------------------------
def test_exercises_list_and_show(capsys):
    code, out, _ = run(capsys, "exercises", "list")
    assert code == 0
    for name, ex in EXERCISES.items():
        assert name in line_of(out, name) and ex.slide in line_of(out, name)
    code, out, _ = run(capsys, "exercises", "show", "tied_weight_grad")
    assert code == 0 and "def tied_weight_grad(X, W, b, c):" in out and "sum of two" in out
    code, _, _ = run(capsys, "exercises")
    assert code == 2


def test_template_then_check_reports_not_implemented(capsys, tmp_path):
    path = tmp_path / "hw.py"
    code, out, _ = run(capsys, "exercises", "template", path)
    assert code == 0 and path.exists() and "npae check" in out
    code, out, _ = run(capsys, "check", path)
    assert code == 1
    for name in EXERCISES:
        assert line_of(out, name).startswith("MISSING")
        assert "NotImplementedError" in line_of(out, name)
    # refuses to overwrite the student's work, unless --force
    path.write_text("my answers\n")
    code, _, err = run(capsys, "exercises", "template", path)
    assert code == 1 and "already exists" in err and path.read_text() == "my answers\n"
    code, _, _ = run(capsys, "exercises", "template", path, "--force", "-e", "psd_W_grad")
    assert code == 0 and "def psd_W_grad" in path.read_text()


# -------------------------------------------------------------------------------------------
# npae gradcheck
# -------------------------------------------------------------------------------------------
@pytest.fixture
def mine(tmp_path):
    return write(tmp_path, """\
        import numpy as np

        def f(x):
            return float((x ** 2).sum())

        def grad_ok(x):
            return 2 * x

        def grad_half(x):
            return x

        def f_and_grad(x):
            return float(np.sin(x).sum()), np.cos(x)

        def boom(x):
            raise ValueError("boom")

        def vector(x):
            return x
        """, name="mine.py")


def test_gradcheck_passes_a_right_gradient_and_fails_a_wrong_one(capsys, mine):
    code, out, _ = run(capsys, "gradcheck", f"{mine}:f", "--shape", "3,4", "--grad",
                       f"{mine}:grad_ok")
    assert code == 0 and "ok" in out and "(3, 4)" in out
    code, out, _ = run(capsys, "gradcheck", f"{mine}:f", "--shape", "3x4", "--grad",
                       f"{mine}:grad_half")
    assert code == 1 and "FAILED" in out and "hint: a factor of 2" in out


def test_gradcheck_value_and_gradient_pair_and_numeric_only(capsys, mine):
    code, out, _ = run(capsys, "gradcheck", f"{mine}:f_and_grad", "--shape", "5")
    assert code == 0 and "ok" in out and "second value" in out
    code, out, _ = run(capsys, "gradcheck", f"{mine}:f", "--shape", "2", "--seed", "1")
    assert code == 0 and "numerical gradient" in out
    code, out, _ = run(capsys, "gradcheck", "numpy:sum", "--shape", "3")
    assert code == 0 and "[1. 1. 1.]" in out


def test_gradcheck_user_errors_are_messages(capsys, mine):
    code, _, err = run(capsys, "gradcheck", f"{mine}:boom", "--shape", "3")
    assert code == 1 and "ValueError: boom" in err and "line 16" in err
    code, _, err = run(capsys, "gradcheck", f"{mine}:vector", "--shape", "3")
    assert code == 1 and "scalar" in err
    code, _, err = run(capsys, "gradcheck", f"{mine}:nothing", "--shape", "3")
    assert code == 2 and "no function 'nothing'" in err   # misuse: the name given
    code, _, err = run(capsys, "gradcheck", "no_such_module_xyz:f", "--shape", "3")
    assert code == 2 and "no module named" in err
    code, _, err = run(capsys, "gradcheck", f"{mine}", "--shape", "3")
    assert code == 2 and "MODULE:FUNCTION" in err
    code, _, err = run(capsys, "gradcheck", f"{mine}:f", "--shape", "3,a")
    assert code == 2 and "--shape" in err   # misuse (the contract)


@pytest.mark.slow
def test_the_installed_command_runs_in_a_fresh_process(tmp_path):
    """``python -m npae check`` from another directory, as a student would run it."""
    proc = subprocess.run([sys.executable, "-m", "npae", "check",
                           str(ANSWERS / "wrong_batch.py"), "-e", "linear_squared_error_grad"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "FAIL" in proc.stdout and "batch size" in proc.stdout
    assert "Traceback" not in proc.stderr
