"""npae.gradcheck's verdict: the result's status, and hints that do not mislead (float32
answers, tied weights whose one term is 0 on the inputs, tiny arrays, pooling windows that
skip inputs)."""
import numpy as np
import pytest

from npae.gradcheck import GradCheckResult, check_gradient, check_layer, check_terms
from npae.nn import Linear, MaxPool2d, Sequential, Sigmoid, TiedLinear


def tanh_objective(rng, n=6, k=4, d=5):
    """f(W) = sum(D * tanh(X W^T)) and its gradient (D * (1 - tanh^2))^T X."""
    X, D = rng.standard_normal((n, d)), rng.standard_normal((n, k))

    def f(W):
        return np.sum(D * np.tanh(X @ W.T))

    def grad(W, dtype=np.float64):
        X_, D_, W_ = X.astype(dtype), D.astype(dtype), W.astype(dtype)
        return (D_ * (1 - np.tanh(X_ @ W_.T) ** 2)).T @ X_

    return f, grad, rng.standard_normal((k, d))


# --------------------------------------------------------------------------------------
# status
# --------------------------------------------------------------------------------------
def test_status_ok_wrong_and_bool(rng):
    f, grad, W = tanh_objective(rng)
    good, bad = check_gradient(f, grad, W), check_gradient(f, lambda V: -grad(V), W)
    assert good.status == "ok" and good.ok and bool(good)
    assert bad.status == "wrong" and not bad.ok and not bad
    assert good.n_exact == W.size and good.n_bounded == 0 and good.extra_evals == 0
    mismatch = check_gradient(f, grad(W).T, W)
    assert mismatch.status == "wrong" and "shape mismatch" in mismatch.hint
    with pytest.raises(ValueError, match="status must be one of"):
        GradCheckResult(ok=True, max_abs_error=0.0, max_rel_error=0.0, worst_index=None,
                        analytic=W, numeric=W, status="passed")


def test_check_terms_report_is_inconclusive_when_every_entry_sits_at_a_kink():
    w = np.array([1.0, 2.0])  # with w = -1 the sum would be smooth, -v, at entry 1
    terms = {"relu": (lambda v: np.sum(w * np.maximum(v, 0)), lambda v: w * (v > 0)),
             "abs": (lambda v: np.sum(np.abs(v)), np.sign)}
    rep = check_terms(terms, np.zeros(2))
    assert rep.status == "inconclusive" and not rep and rep.failed == []
    assert set(rep.inconclusive) == {"relu", "abs", "sum"}
    assert "sit on a kink" in rep.hint and "INCONCLUSIVE" in str(rep)


# --------------------------------------------------------------------------------------
# float32 answers: one clear message
# --------------------------------------------------------------------------------------
def conv_like_objective(rng):
    """A sum over many products, whose float32 rounding shows at rtol 1e-6:
    f(W) = sum(D * (X W^T)^2) / 2, dL/dW = (D * X W^T)^T X."""
    X, D = 10 * rng.standard_normal((50, 40)), rng.standard_normal((50, 6))

    def f(W):
        return 0.5 * np.sum(D * (X @ W.T) ** 2)

    def grad(W, dtype=np.float64):
        X_, D_, W_ = X.astype(dtype), D.astype(dtype), W.astype(dtype)
        return ((D_ * (X_ @ W_.T)).T @ X_).astype(np.float64)

    return f, grad, rng.standard_normal((6, 40))


def test_a_right_answer_in_float32_gets_one_float32_message(rng):
    f, grad, W = conv_like_objective(rng)
    assert check_gradient(f, grad, W).ok
    r = check_gradient(f, lambda V: grad(V, np.float32), W)
    assert r.status == "wrong" and r.answer_float32
    assert r.hint.startswith("the answer is float32") and "float64" in r.hint
    for misleading in ("wrong only", "factor", "no simple pattern", "transposed"):
        assert misleading not in r.hint
    # an answer in float64 is never taken for float32
    assert not check_gradient(f, lambda V: grad(V) * (1 + 1e-4), W).answer_float32


def test_a_wrong_answer_in_float32_gets_its_hint_and_the_float32_note(rng):
    f, grad, W = conv_like_objective(rng)
    r = check_gradient(f, lambda V: 2 * grad(V, np.float32), W)
    assert r.hint.startswith("a factor of 2") and "the answer is float32" in r.hint


# --------------------------------------------------------------------------------------
# tied weights: the missing decoder term, also where the other term is 0
# --------------------------------------------------------------------------------------
def sigm(z):
    return 1.0 / (1.0 + np.exp(-z))


def tied_case(rng, n, d, k, zero_cols=()):
    X = rng.uniform(0.05, 0.95, (n, d))
    X[:, list(zero_cols)] = 0.0
    W, b, c = rng.standard_normal((k, d)), rng.standard_normal(k), rng.standard_normal(d)

    def obj(W_enc, W_dec):
        h = sigm(X @ W_enc.T + b)
        x_hat = sigm(h @ W_dec + c)
        return -np.mean(np.sum(X * np.log(x_hat) + (1 - X) * np.log(1 - x_hat), axis=1))

    h = sigm(X @ W.T + b)
    g = (sigm(h @ W + c) - X) / n                       # dL/da_hat
    decoder = h.T @ g                                   # W^T's use
    encoder = ((g @ W.T) * h * (1 - h)).T @ X           # W's use
    terms = {"encoder term": lambda v: obj(v, W), "decoder term": lambda v: obj(W, v)}
    return obj, terms, W, encoder, decoder


def test_tied_answer_without_the_decoder_term_is_told_so_when_its_column_is_zero(rng):
    # one input column: X = 0 makes the encoder's term 0, so the answer is all zeros
    obj, terms, W, encoder, decoder = tied_case(rng, 4, 1, 3, zero_cols=[0])
    assert not encoder.any() and decoder.any()
    rep = check_terms(terms, W.copy(), grad=encoder)
    assert rep.status == "wrong"
    assert rep.hint.startswith("missing term") and "'decoder term' is missing" in rep.hint
    assert "0 on these inputs" in rep.hint and "wrong only" not in rep.hint


@pytest.mark.parametrize("zero_cols", [(), (1,)])
def test_tied_answer_with_one_term_is_a_missing_term_not_a_column_pattern(zero_cols, rng):
    obj, terms, W, encoder, decoder = tied_case(rng, 5, 4, 3, zero_cols=zero_cols)
    for answer, missing in ((encoder, "decoder term"), (decoder, "encoder term")):
        rep = check_terms(terms, W.copy(), grad=answer)
        assert rep.hint.startswith("missing term"), rep.hint
        assert f"'{missing}' is missing" in rep.hint and "column" not in rep.hint
    assert check_terms(terms, W.copy(), grad=encoder + decoder).ok


def test_no_wrong_factor_is_fitted_to_as_few_entries_as_terms(rng):
    # W (1, 2): two entries, two terms -- any answer "fits" two factors exactly
    obj, terms, W, encoder, decoder = tied_case(rng, 3, 2, 1)
    answer = encoder + decoder
    answer[0, 0] = 0.0
    rep = check_terms(terms, W.copy(), grad=answer)
    assert rep.status == "wrong" and "wrong factor" not in rep.hint


class NoDecoderTerm(TiedLinear):
    """Forgets to add the decoder's term h^T g into the shared W's gradient."""

    def backward(self, dout):
        self.grads["c"] += dout.sum(axis=0)
        return dout @ self.encoder.params["W"].T


def test_check_layer_missing_decoder_term_with_a_zero_input(rng):
    enc = Linear(1, 3, rng=rng)
    net = Sequential(enc, Sigmoid(), NoDecoderTerm(enc), Sigmoid())
    r = check_layer(net, np.zeros((4, 1)))
    assert r.failed == ["0.W"]
    assert r["0.W"].hint.startswith("missing term") and "decoder use" in r["0.W"].hint


# --------------------------------------------------------------------------------------
# max-pooling with a kernel smaller than the stride (inputs in no window)
# --------------------------------------------------------------------------------------
def test_maxpool_with_kernel_smaller_than_stride(rng):
    layer = MaxPool2d(2, stride=3)
    x = rng.standard_normal((2, 2, 8, 8))
    assert check_layer(layer, x).ok
    G = rng.standard_normal(layer.output_shape(x.shape))

    def f(v):
        return np.sum(G * layer.forward(v))

    right = np.zeros_like(x)        # windows at rows/columns 0-1, 3-4, 6-7
    for i in range(3):
        for j in range(3):
            win = x[:, :, 3 * i:3 * i + 2, 3 * j:3 * j + 2].reshape(2, 2, 4)
            a = win.argmax(axis=2)
            for n in range(2):
                for c in range(2):
                    r_, s_ = divmod(int(a[n, c]), 2)
                    right[n, c, 3 * i + r_, 3 * j + s_] += G[n, c, i, j]
    assert not right[:, :, 2, :].any() and not right[:, :, :, 5].any()
    assert check_gradient(f, right, x.copy()).ok
    # windows taken at stride = kernel (0-1, 2-3, 4-5): the classic slip
    wrong = np.zeros_like(x)
    for i in range(3):
        for j in range(3):
            win = x[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].reshape(2, 2, 4)
            a = win.argmax(axis=2)
            for n in range(2):
                for c in range(2):
                    r_, s_ = divmod(int(a[n, c]), 2)
                    wrong[n, c, 2 * i + r_, 2 * j + s_] += G[n, c, i, j]
    r = check_gradient(f, wrong, x.copy())
    assert r.status == "wrong" and r.n_failed > 0


def test_the_package_keeps_the_public_names():
    import npae.gradcheck as gc
    names = {"check_gradient", "check_layer", "check_terms", "check_params",
             "check_directional", "numerical_gradient", "report", "GradCheckResult",
             "CheckReport", "ContractCheck", "Float32Error"}
    assert set(gc.__all__) == names
    assert all(callable(getattr(gc, n)) for n in names)
    assert gc.MAX_ENTRIES == 256 and gc.STEP == 1e-6 and issubclass(gc.Float32Error, ValueError)
