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


# ---------------------------------------------------------------------------------------
# answers that are not float64 arrays
# ---------------------------------------------------------------------------------------
def tanh_case(rng, shape=(3, 4)):
    """f(x) = sum(w tanh(x)), df/dx = w (1 - tanh(x)^2) (derived by hand)."""
    w = rng.standard_normal(shape)
    return (lambda v: float(np.sum(w * np.tanh(v)))), (lambda v: w * (1 - np.tanh(v) ** 2)), \
        rng.standard_normal(shape)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
@pytest.mark.parametrize("convert, words", [
    (lambda g: g.tolist(), "a list"),
    (lambda g: np.asmatrix(g), "np.matrix"),
    (lambda g: g.astype(np.longdouble), "longdouble"),
    (lambda g: g.astype(np.complex128), "complex128"),
    (lambda g: g.astype(object), "object"),
    (lambda g: (g > 0), "bool"),
    (lambda g: tuple(g), "a tuple")])
def test_an_answer_that_is_not_a_float64_array_is_an_error_naming_it(rng, convert, words):
    f, g, x = tanh_case(rng)
    with pytest.raises(TypeError, match="float64 numpy.ndarray") as exc:
        check_gradient(f, lambda v: convert(g(v)), x)
    assert words in str(exc.value)


def test_a_float32_answer_is_refused_with_the_reason(rng):
    f, g, x = tanh_case(rng)
    for grad in (lambda v: g(v).astype(np.float32), g(x).astype(np.float32)):
        with pytest.raises(Float32Error, match="float32 is refused.*float64|float32.*refused"):
            check_gradient(f, grad, x)
    with pytest.raises(Float32Error):
        check_terms({"f": (f, lambda v: g(v).astype(np.float32))}, x)


def test_a_right_float64_answer_passes_and_a_0d_x_takes_a_float(rng):
    f, g, x = tanh_case(rng)
    assert check_gradient(f, g, x).ok
    assert check_gradient(lambda v: float(np.sin(v)), lambda v: np.cos(float(v)),
                          np.array(0.3)).ok


# ---------------------------------------------------------------------------------------
# inputs changed in place
# ---------------------------------------------------------------------------------------
def test_an_answer_that_changes_its_input_is_told_so_not_a_factor(rng):
    f = lambda v: float(np.sum(v ** 2))  # noqa: E731   df/dx = 2x

    def doubles(v):
        v *= 2          # the classic: the right values, computed in place
        return v

    x = rng.standard_normal((3, 4))
    x0 = x.copy()
    res = check_gradient(f, doubles, x)
    assert not res.ok and res.hint.startswith("grad changed its input x in place")
    assert "factor" not in res.hint.split(";")[0]
    np.testing.assert_array_equal(x, x0)          # restored for the caller


def test_an_answer_that_zeroes_its_input_is_refused_although_its_values_are_right(rng):
    f, g, x = tanh_case(rng)

    def zeroes(v):
        out = g(v)
        v[0, :] = 0.0
        return out

    res = check_gradient(f, zeroes, x)
    assert res.status == "wrong" and "changed its input x in place" in res.hint
    assert "(0, 0)" in res.hint


def test_a_function_that_changes_its_input_is_an_error(rng):
    f, g, x = tanh_case(rng)

    def f_bad(v):
        v[0, 0] += 1.0
        return f(v)

    with pytest.raises(ValueError, match="f changed its input x in place"):
        check_gradient(f_bad, g, x)


def test_check_terms_reports_a_gradient_that_changes_its_input(rng):
    f, g, x = tanh_case(rng)

    def bad(v):
        v *= 1.0 + 1e-3
        return g(v / (1.0 + 1e-3))

    rep = check_terms({"a": (f, bad), "b": (f, g)}, x)
    assert not rep.ok and "changed its input" in rep.hint


# ---------------------------------------------------------------------------------------
# float32 computed, float64 returned: one fixed verdict
# ---------------------------------------------------------------------------------------
def _mlp_case(seed):
    """f(W) = sum(D tanh(X W^T)), dL/dW = (D (1 - tanh(X W^T)^2))^T X (by hand)."""
    rng = np.random.default_rng(seed)
    n, d, k = rng.integers(2, 7, size=3)
    X, D, W = rng.standard_normal((n, d)), rng.standard_normal((n, k)), rng.standard_normal((k, d))

    def f(V):
        return float(np.sum(D * np.tanh(X @ V.T)))

    def grad(V, dtype=np.float64, scale=1.0):
        X_, D_, V_ = (a.astype(dtype) for a in (X, D, V))
        out = ((D_ * (1 - np.tanh(X_ @ V_.T) ** 2)).T @ X_).astype(np.float64)
        return out * scale
    return f, grad, W


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_float32_inside_gets_one_verdict_and_float64_always_passes(seed):
    f, grad, W = _mlp_case(seed)
    assert check_gradient(f, grad, W).ok          # no right float64 answer is rejected
    for g32 in (lambda V: grad(V, np.float32),                       # float32 values
                lambda V: grad(V, np.float32, scale=1.0 + 2**-40)):  # float32, rescaled
        r = check_gradient(f, g32, W)
        assert r.status == "wrong" and r.hint.startswith("the answer is float32"), r.hint
        assert "float32 is refused whatever the seed" in r.hint


def test_the_float32_verdict_holds_in_check_terms_and_check_layer(rng):
    f, grad, W = _mlp_case(5)
    rep = check_terms({"f": (f, lambda V: grad(V, np.float32))}, W)
    assert not rep.ok and "the answer is float32" in rep.hint


def test_a_small_constant_factor_is_not_taken_for_float32(rng):
    f, grad, W = _mlp_case(7)
    r = check_gradient(f, lambda V: grad(V) * (1 + 3e-6), W)
    assert "float32" not in r.hint


# ---------------------------------------------------------------------------------------
# check_layer: the answer rules, the sub-layer at fault, a flipped kernel
# ---------------------------------------------------------------------------------------
def _bad_sigmoid():
    from npae.nn import Sigmoid

    class Twice(Sigmoid):
        def backward(self, dout):
            h = self.cache
            return dout * (h * (1 - h)) ** 2
    return Twice()


def test_check_layer_names_the_sub_layer_and_the_extra_derivative(rng):
    from npae.nn import Sequential
    net = Sequential(Linear(4, 3, rng=rng), _bad_sigmoid())
    rep = check_layer(net, rng.standard_normal((5, 4)))
    assert not rep.ok
    assert rep.hint.startswith("layer 1 (Twice) of the Sequential is wrong on its own")
    assert "extra sigmoid derivative" in rep.hint


def test_check_layer_refuses_a_backward_returning_a_list(rng):
    class Listy(Linear):
        def backward(self, dout):
            return super().backward(dout).tolist()
    with pytest.raises(TypeError, match="backward's return value .* a list"):
        check_layer(Listy(3, 2, rng=rng), rng.standard_normal((2, 3)))


def test_check_layer_reports_a_forward_that_changes_its_input(rng):
    class Inplace(Linear):
        def forward(self, x):
            out = super().forward(x.copy())
            x[0, 0] = 0.0
            return out
    rep = check_layer(Inplace(3, 2, rng=rng), rng.standard_normal((2, 3)))
    assert any(not c.ok and "forward changed its input x in place" in c.message
               for c in rep.contract)


def test_check_layer_names_a_flipped_kernel_in_conv_backward(rng):
    from npae.nn.conv import Conv2d

    class Flipped(Conv2d):
        def backward(self, dout):
            W = self.params["W"].copy()
            self.params["W"][...] = W[:, :, ::-1, ::-1]
            try:
                return super().backward(dout)
            finally:
                self.params["W"][...] = W
    layer = Flipped(2, 3, 3, rng=rng)
    rep = check_layer(layer, rng.standard_normal((2, 2, 5, 5)), contract=False)
    assert not rep["x"].ok and rep["x"].hint.startswith("the kernel is flipped in backward")
