"""The gradient checker's rules for its arguments and for answers: tolerances, answers that
are not float64 arrays, answers and functions that change their inputs, float32."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npae.gradcheck import Float32Error, check_gradient, check_layer, check_terms
from npae.nn import Linear


def quad(rng, k=4):
    """f(W) = sum(A * (W B)), dL/dW = A B^T (derived by hand): not symmetric, so W's
    transposed gradient differs from the gradient."""
    A, B = rng.standard_normal((k, k)), rng.standard_normal((k, k))
    return (lambda W: float(np.sum(A * (W @ B)))), (lambda W: A @ B.T), rng.standard_normal((k, k))


# ---------------------------------------------------------------------------------------
# tolerances
# ---------------------------------------------------------------------------------------
BAD_TOLS = [np.nan, np.inf, -np.inf, -1e-9, -1.0]


@pytest.mark.parametrize("which", ["rtol", "atol"])
@pytest.mark.parametrize("value", BAD_TOLS)
def test_nan_inf_or_negative_tolerances_are_refused_everywhere(rng, which, value):
    f, g, W = quad(rng)
    calls = [lambda **kw: check_gradient(f, g, W, **kw),
             lambda **kw: check_terms({"f": (f, g)}, W, **kw),
             lambda **kw: check_layer(Linear(3, 2, rng=rng), rng.standard_normal((2, 3)), **kw)]
    for call in calls:
        with pytest.raises(ValueError) as exc:
            call(**{which: value})
        msg = str(exc.value)
        assert f"{which}=" in msg and repr(value) in msg and "[0, " in msg


def test_a_tolerance_that_is_not_a_number_is_a_type_error(rng):
    f, g, W = quad(rng)
    with pytest.raises(TypeError, match="rtol must be a real number"):
        check_gradient(f, g, W, rtol="1e-6")


def test_rtol_above_its_range_is_refused_naming_the_range(rng):
    f, g, W = quad(rng)
    with pytest.raises(ValueError, match=r"rtol=0\.5 .*\[0, 0\.1\]"):
        check_gradient(f, g, W, rtol=0.5)


def test_atol_as_large_as_the_gradient_is_refused(rng):
    f, g, W = quad(rng)
    scale = np.abs(g(W)).max()
    with pytest.raises(ValueError, match="atol=.*below 0.1 times the gradient"):
        check_gradient(f, g, W, atol=float(scale))
    assert check_gradient(f, g, W, atol=1e-3 * float(scale)).ok


@settings(max_examples=60, deadline=None)
@given(rtol=st.floats(allow_nan=True, allow_infinity=True),
       atol=st.floats(allow_nan=True, allow_infinity=True))
def test_a_transposed_gradient_fails_under_every_accepted_tolerance(rtol, atol):
    f, g, W = quad(np.random.default_rng(3))
    try:
        res = check_gradient(f, lambda V: g(V).T, W, rtol=rtol, atol=atol)
    except ValueError:
        return
    assert not res.ok and res.status == "wrong"


def test_right_gradients_pass_at_the_edges_of_the_ranges(rng):
    f, g, W = quad(rng)
    assert check_gradient(f, g, W, rtol=0.0, atol=0.0).ok
    assert check_gradient(f, g, W, rtol=0.1).ok
