"""The lecture's losses: values against the slide's formulas, gradients against finite
differences in float64. Central differences with h = 1e-6|x| err by about eps*|L|/h ~ 1e-9
absolute, hence atol=1e-8; a wrong factor, sign or term is off by >1e-2."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npae import losses
from npae.gradcheck import numerical_gradient

shapes = st.tuples(st.integers(1, 8), st.integers(1, 16))
seeds = st.integers(0, 2**32 - 1)


def sample(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.random(shape)
    x_hat = rng.uniform(0.05, 0.95, shape)
    a_hat = rng.normal(0, 3, shape)
    return x, x_hat, a_hat


def test_values_match_the_slides_per_example_formulas():
    x = np.array([[1.0, 0.0, 0.5], [0.2, 1.0, 0.0]])
    x_hat = np.array([[0.9, 0.2, 0.5], [0.1, 0.7, 0.3]])
    n = 2
    se = sum(0.5 * sum((x_hat[t, k] - x[t, k]) ** 2 for k in range(3)) for t in range(n)) / n
    ce = sum(-sum(x[t, k] * np.log(x_hat[t, k]) + (1 - x[t, k]) * np.log(1 - x_hat[t, k])
                  for k in range(3)) for t in range(n)) / n
    assert losses.squared_error(x_hat, x) == pytest.approx(se, rel=1e-14)
    assert losses.cross_entropy(x_hat, x) == pytest.approx(ce, rel=1e-14)
    a_hat = np.log(x_hat / (1 - x_hat))  # the logits of x_hat
    assert losses.cross_entropy_with_logits(a_hat, x) == pytest.approx(ce, rel=1e-12)
    assert losses.l1(np.array([[1.0, -2.0], [0.0, 3.0]])) == pytest.approx(3.0)


@given(shapes, seeds)
def test_squared_error_gradient(shape, seed):
    x, x_hat, _ = sample(shape, seed)
    num = numerical_gradient(lambda p: losses.squared_error(p, x), x_hat)
    np.testing.assert_allclose(losses.squared_error_grad(x_hat, x), num, rtol=1e-6, atol=1e-8)


@given(shapes, seeds)
def test_cross_entropy_gradient(shape, seed):
    x, x_hat, _ = sample(shape, seed)
    num = numerical_gradient(lambda p: losses.cross_entropy(p, x), x_hat)
    np.testing.assert_allclose(losses.cross_entropy_grad(x_hat, x), num, rtol=1e-6, atol=1e-8)


@given(shapes, seeds)
def test_logits_cross_entropy_gradient_is_x_hat_minus_x(shape, seed):
    x, _, a_hat = sample(shape, seed)
    num = numerical_gradient(lambda p: losses.cross_entropy_with_logits(p, x), a_hat)
    g = losses.cross_entropy_with_logits_grad(a_hat, x)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)
    x_hat = 1 / (1 + np.exp(-a_hat))
    np.testing.assert_allclose(g, (x_hat - x) / shape[0], rtol=1e-12, atol=1e-15)


@given(shapes, seeds)
def test_l1_gradient_away_from_zero(shape, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(shape)
    z[np.abs(z) < 1e-3] = 0.1
    num = numerical_gradient(losses.l1, z)
    np.testing.assert_allclose(losses.l1_grad(z), num, rtol=1e-6, atol=1e-8)


def test_reduction_is_sum_over_features_mean_over_batch():
    x = np.zeros((4, 10))
    x_hat = np.ones((4, 10))
    assert losses.squared_error(x_hat, x) == pytest.approx(5.0)   # 1/2 * 10, not 1/2 or 20
    assert losses.l1(x_hat) == pytest.approx(10.0)


def test_logits_form_is_finite_for_huge_logits():
    a = np.array([[-1e4, 1e4, 0.0]])
    x = np.array([[0.0, 1.0, 1.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        v = losses.cross_entropy_with_logits(a, x)
        g = losses.cross_entropy_with_logits_grad(a, x)
    assert v == pytest.approx(np.log(2.0))  # the saturated terms are right, so cost ~0
    assert np.all(np.isfinite(g))
    # confident wrong predictions cost |a| each: large and finite, never inf or nan
    wrong = losses.cross_entropy_with_logits(a, np.array([[1.0, 0.0, 1.0]]))
    assert wrong == pytest.approx(2e4 + np.log(2.0))


def test_cross_entropy_targets_outside_unit_interval_raise():
    with pytest.raises(ValueError, match=r"targets in \[0, 1\]"):
        losses.cross_entropy_with_logits(np.zeros((1, 2)), np.array([[0.5, 255.0]]))
    with pytest.raises(ValueError, match=r"targets in \[0, 1\]"):
        losses.cross_entropy(np.full((1, 2), 0.5), np.array([[-0.1, 0.5]]))


def test_cross_entropy_refuses_logits_as_probabilities():
    with pytest.raises(ValueError, match="logits"):
        losses.cross_entropy(np.array([[2.0, -1.0]]), np.array([[1.0, 0.0]]))


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        losses.squared_error(np.zeros((2, 3)), np.zeros((2, 4)))


def test_nan_input_raises_instead_of_returning_nan():
    with pytest.raises(ValueError, match="non-finite"):
        losses.squared_error(np.array([[np.nan]]), np.array([[0.0]]))


def test_get_loss_names_the_choices():
    assert losses.get_loss("squared").value is losses.squared_error
    with pytest.raises(ValueError, match="'mse'.*'squared'"):
        losses.get_loss("mse")


# -- ReconstructionLoss: the output unit and the loss as the network's last layer -------------

def _chain_rule(output, name, a_hat, x):
    """L and dL/dâ the plain way: x̂ = o(â), the loss and its gradient, back through o."""
    x_hat = output.forward(a_hat)
    L = getattr(losses, name)(x_hat, x)
    return L, output.backward(getattr(losses, name + "_grad")(x_hat, x))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_sigmoid_cross_entropy_layer_equals_the_plain_path(rng, dtype):
    """The fused pass behind ReconstructionLoss(Sigmoid(), "cross_entropy") gives npae.losses'
    value and gradient from the logits, and the chain rule through Sigmoid where that is
    well conditioned (x̂ away from 0 and 1)."""
    from npae.nn import Sigmoid
    eps = np.finfo(dtype).eps
    layer = losses.ReconstructionLoss(Sigmoid(), "cross_entropy")
    assert layer.from_logits
    for scale in (0.1, 3.0, 50.0, 1e4):  # 1e4: fully saturated, still finite
        a_hat = (scale * rng.standard_normal((9, 13))).astype(dtype)
        x = rng.random((9, 13)).astype(dtype)
        x[0] = x[0] > 0.5  # binary entries too
        L = layer.forward(a_hat, x)
        g = layer.backward()
        ref = losses.cross_entropy_with_logits(a_hat, x)
        assert np.isfinite(L) and abs(L - ref) <= 20 * eps * abs(ref)
        np.testing.assert_allclose(g, losses.cross_entropy_with_logits_grad(a_hat, x),
                                   rtol=4 * eps, atol=float(np.finfo(dtype).tiny))
        assert g.dtype == dtype
        if scale == 0.1 and dtype == np.float64:
            L_plain, g_plain = _chain_rule(Sigmoid(), "cross_entropy", a_hat, x)
            assert abs(L - L_plain) <= 1e-12 * abs(L)
            np.testing.assert_allclose(g, g_plain, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(layer.backward(dout=2.5), 2.5 * g, rtol=0, atol=0)


@pytest.mark.parametrize("out, name", [("Sigmoid", "squared"), ("Identity", "squared")])
def test_unfused_reconstruction_loss_is_the_chain_rule(rng, out, name):
    import npae.nn as nn
    a_hat, x = rng.standard_normal((7, 5)), rng.random((7, 5))
    layer = losses.ReconstructionLoss(getattr(nn, out)(), name)
    assert not layer.from_logits
    L = layer.forward(a_hat, x)
    L_plain, g_plain = _chain_rule(getattr(nn, out)(), "squared_error", a_hat, x)
    g = layer.backward()
    assert L == L_plain
    np.testing.assert_array_equal(g, g_plain)
    num = numerical_gradient(lambda a: layer.forward(a, x), a_hat.copy())
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)


def test_reconstruction_loss_needs_forward_with_gradient():
    from npae.nn import Sigmoid
    layer = losses.ReconstructionLoss(Sigmoid(), "cross_entropy")
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward()
    layer.forward(np.zeros((2, 3)), np.ones((2, 3)), need_grad=False)
    with pytest.raises(RuntimeError, match="need_grad=True"):
        layer.backward()
    with pytest.raises(TypeError, match="Sigmoid"):
        losses.ReconstructionLoss("sigmoid", "cross_entropy")
    with pytest.raises(ValueError, match="loss"):
        losses.ReconstructionLoss(Sigmoid(), "hinge")
