"""The lecture's classic wrong answers, catalogued per exercise (``Exercise.mistakes``).

Each entry maps the hint a student gets to the gradient that mistake produces on the same
inputs; the checker gives the hint when a wrong answer equals that gradient (to rounding).
The mistakes below are the ones students make on these exercises, also where the generic
diagnosis could name the pattern (a factor that is lam, a factor 2 that is the square's):
a derivative applied the wrong number of times or at the output, the chain of another
loss, a forgotten lam, a flipped kernel, max pooling's gradient routed like average
pooling's, to the minimum, or with the stride ignored.
"""
from __future__ import annotations

import numpy as np

from ..nn.activations import sigmoid

__all__ = ["SIGMOID_CROSS_ENTROPY", "TIED", "CONTRACTIVE_W", "CONTRACTIVE_B", "PSD_W",
           "CONV_INPUT", "CONV_WEIGHT", "MAXPOOL"]

# -------------------------------------------------------------------------------------------
# the sigmoid output with cross-entropy (dL/da_hat)
# -------------------------------------------------------------------------------------------
_SE_CHAIN = (
    "an extra factor x_hat (1 - x_hat): this is the squared-error chain (dl/dx_hat = "
    "x_hat - x, times the sigmoid's derivative), or the sigmoid's derivative applied twice. "
    "With cross-entropy dl/dx_hat = (x_hat - x) / (x_hat (1 - x_hat)), and the sigmoid's "
    "derivative x_hat (1 - x_hat) cancels that denominator: dl/da_hat = x_hat - x")
_AT_X_HAT = (
    "this is the gradient at the sigmoid's output, dL/dx_hat = (x_hat - x) / (x_hat (1 - "
    "x_hat)) / n: the sigmoid's derivative x_hat (1 - x_hat) is missing (the chain rule's "
    "last step to a_hat, which cancels the denominator)")
_NO_SIGMOID = (
    "(a_hat - x) / n: the sigmoid is missing, x_hat = sigm(a_hat); the gradient is "
    "(x_hat - x) / n")


def _fused(inp):
    x_hat = sigmoid(inp["A_hat"])
    return x_hat, (x_hat - inp["X"]) / inp["X"].shape[0]


SIGMOID_CROSS_ENTROPY = {
    _SE_CHAIN: lambda inp: (lambda s, g: g * s * (1 - s))(*_fused(inp)),
    _AT_X_HAT: lambda inp: (lambda s, g: g / (s * (1 - s)))(*_fused(inp)),
    _NO_SIGMOID: lambda inp: (inp["A_hat"] - inp["X"]) / inp["X"].shape[0],
}


# -------------------------------------------------------------------------------------------
# tied weights: dL/dW = encoder term + decoder term
# -------------------------------------------------------------------------------------------
def _tied(inp, out_chain=False, sigm_power=1, encoder=True, decoder=True):
    X, W, b, c = inp["X"], inp["W"], inp["b"], inp["c"]
    h = sigmoid(X @ W.T + b)
    x_hat = sigmoid(h @ W + c)
    g = (x_hat - X) / X.shape[0]                        # dL/da_hat
    if out_chain:
        g = g * x_hat * (1 - x_hat)
    da = (g @ W.T) * (h * (1 - h)) ** sigm_power        # dL/da, a = b + W x
    return (da.T @ X if encoder else 0.0) + (h.T @ g if decoder else 0.0)


TIED = {
    "'decoder term (W^T in a_hat = c + W^T h)' is missing: W is used twice, as W in the "
    "encoder and as W^T in the decoder, so dL/dW is the sum of two gradients; the decoder's "
    "is h^T (dL/da_hat), a (k, d) array like W":
        lambda inp: _tied(inp, decoder=False),
    "'encoder term (W in a = b + W x)' is missing: W is used twice, so dL/dW is the sum of "
    "two gradients; the encoder's is (dL/da)^T x, with dL/da = (dL/da_hat W^T) * h (1 - h)":
        lambda inp: _tied(inp, encoder=False),
    "the encoder term lacks the sigmoid's derivative: dL/da = (dL/dh) * h (1 - h), where "
    "dL/dh = dL/da_hat W^T":
        lambda inp: _tied(inp, sigm_power=0),
    "the encoder term applies the sigmoid's derivative h (1 - h) twice":
        lambda inp: _tied(inp, sigm_power=2),
    "the output gradient has an extra factor x_hat (1 - x_hat) (the squared-error chain): "
    "with a sigmoid output and cross-entropy, dL/da_hat = (x_hat - x) / n":
        lambda inp: _tied(inp, out_chain=True),
}


# -------------------------------------------------------------------------------------------
# the contractive penalty: d/da [h (1 - h)]^2 = 2 [h (1 - h)]^2 (1 - 2h)
# -------------------------------------------------------------------------------------------
_NO_1M2H = (
    "the factor (1 - 2h) is missing: the penalty holds [h_j (1 - h_j)]^2 and d/da_j of "
    "h_j (1 - h_j) is h_j (1 - h_j) (1 - 2 h_j), so d/da_j [h_j (1 - h_j)]^2 = "
    "2 [h_j (1 - h_j)]^2 (1 - 2 h_j)")


_NO_LAM = ("lam is forgotten: the penalty is lam ||J_h(x)||_F^2, so its gradient carries the "
           "factor lam (the answer is the gradient of ||J_h(x)||_F^2 alone)")
_SIGM_TWICE = ("the sigmoid's derivative h (1 - h) is applied once more in the chain to a = "
               "b + W x: d/da_j [h_j (1 - h_j)]^2 = 2 [h_j (1 - h_j)]^2 (1 - 2 h_j) already "
               "holds the chain through h")


def _cae(inp, lam=None, power=1, one_m_2h=True):
    """The penalty's gradients (dP/dW, dP/db) with the slips above switched in."""
    X, W, b = inp["X"], inp["W"], inp["b"]
    lam = inp["lam"] if lam is None else lam
    n = X.shape[0]
    h = sigmoid(X @ W.T + b)
    d = h * (1 - h)
    s2 = d ** 2
    da = 2 * lam / n * s2 * (W ** 2).sum(axis=1) * ((1 - 2 * h) if one_m_2h else 1.0) * (
        d ** (power - 1))
    return da.T @ X + 2 * lam / n * s2.sum(axis=0)[:, None] * W, da.sum(axis=0)


CONTRACTIVE_W = {_NO_1M2H: lambda inp: _cae(inp, one_m_2h=False)[0],
                 _NO_LAM: lambda inp: _cae(inp, lam=1.0)[0],
                 _SIGM_TWICE: lambda inp: _cae(inp, power=2)[0]}
CONTRACTIVE_B = {_NO_1M2H: lambda inp: _cae(inp, one_m_2h=False)[1],
                 _NO_LAM: lambda inp: _cae(inp, lam=1.0)[1],
                 _SIGM_TWICE: lambda inp: _cae(inp, power=2)[1]}


# -------------------------------------------------------------------------------------------
# PSD's encoder term: E(W) = (1/n) sum ||sigma(W x) - z||^2
# -------------------------------------------------------------------------------------------
def _psd_w(inp, power):
    X, Z, W = inp["X"], inp["Z"], inp["W"]
    s = sigmoid(X @ W.T)
    return (2.0 / X.shape[0] * (s - Z) * (s * (1 - s)) ** power).T @ X


def _psd_w_at_output(inp):
    X, Z, W = inp["X"], inp["Z"], inp["W"]
    s = sigmoid(X @ W.T)
    return (2.0 / X.shape[0] * (s - Z) * sigmoid(s) * (1 - sigmoid(s))).T @ X


PSD_W = {
    "the sigmoid's derivative sigma (1 - sigma) is missing: dE/d(W x) = 2 (sigma(W x) - z) "
    "sigma (1 - sigma) / n": lambda inp: _psd_w(inp, 0),
    "the sigmoid's derivative sigma (1 - sigma) is applied twice":
        lambda inp: _psd_w(inp, 2),
    "the sigmoid's derivative evaluated at its output: sigma'(s) = sigma(s) (1 - sigma(s)) "
    "with s = sigma(W x) already the output; from the output it is s (1 - s)":
        _psd_w_at_output,
    "a factor of 2: analytic = numeric / 2, the 2 of d/ds ||s - z||^2 = 2 (s - z) is "
    "missing": lambda inp: _psd_w(inp, 1) / 2,
}


# -------------------------------------------------------------------------------------------
# Conv2d: the kernel flipped (or not); MaxPool2d: the gradient not routed to the winner
# -------------------------------------------------------------------------------------------
_FLIP = (
    "the kernel is flipped (W[:, :, ::-1, ::-1]): Conv2d is a cross-correlation, y[p, q] = "
    "sum_ij W[i, j] x[p s + i, q s + j], so g[p, q] W[i, j] goes back to x[p s + i, "
    "q s + j], the entry that position (i, j) of the window read. Written as a convolution "
    "of g, dL/dx needs the flipped kernel; written as that scatter (or a correlation), none: "
    "mixing the two forms flips it once too often or once too few")
_FLIP_W = (
    "the weight gradient is flipped (dW[:, :, ::-1, ::-1]): dL/dW[o, c, i, j] = sum over "
    "windows of g[n, o, p, q] x_pad[n, c, p s + i, q s + j], the input entry that position "
    "(i, j) read -- no flip in a cross-correlation")


def _conv_grads(inp, W):
    from ..nn.conv import Conv2d
    O, C, k, _ = W.shape
    layer = Conv2d(C, O, k, stride=inp["stride"], padding=inp["padding"], bias=False)
    layer.params["W"][...] = W
    layer.forward(inp["x"])
    dx = np.asarray(layer.backward(inp["g"]))
    return dx, layer.grads["W"]


CONV_INPUT = {_FLIP: lambda inp: _conv_grads(inp, inp["W"][:, :, ::-1, ::-1].copy())[0]}
CONV_WEIGHT = {_FLIP_W: lambda inp: _conv_grads(inp, inp["W"])[1][:, :, ::-1, ::-1].copy()}


def _spread(inp, scale):
    """Every window's g added to all k x k entries of the window (times ``scale``)."""
    x, g, k, s = inp["x"], inp["g"], inp["kernel_size"], inp["stride"]
    dx = np.zeros_like(x)
    for p in range(g.shape[2]):
        for q in range(g.shape[3]):
            dx[:, :, p * s:p * s + k, q * s:q * s + k] += scale * g[:, :, p, q][:, :, None, None]
    return dx


def _route(inp, pick, stride=None):
    """Every window's g sent to one entry of the window: ``pick`` (argmax / argmin) of the
    window placed at stride ``stride`` (the exercise's own by default)."""
    x, g, k = inp["x"], inp["g"], inp["kernel_size"]
    s = inp["stride"] if stride is None else stride
    dx = np.zeros_like(x)
    for p in range(g.shape[2]):
        for q in range(g.shape[3]):
            win = x[:, :, p * s:p * s + k, q * s:q * s + k]
            flat = pick(win.reshape(win.shape[0], win.shape[1], -1), axis=-1)
            i, j = np.unravel_index(flat, win.shape[2:])
            for nn in range(x.shape[0]):
                for c in range(x.shape[1]):
                    dx[nn, c, p * s + i[nn, c], q * s + j[nn, c]] += g[nn, c, p, q]
    return dx


MAXPOOL = {
    "the gradient is routed to the window's minimum (argmin where argmax belongs): max "
    "pooling passes g[p, q] to the entry that won the max":
        lambda inp: _route(inp, np.argmin),
    "the stride is ignored: window (p, q) starts at (p s, q s), not at (p, q); the "
    "upstream value g[p, q] goes to the maximum of the window the forward pass read":
        lambda inp: _route(inp, np.argmax, stride=1),
    "the gradient is spread over the whole window: max pooling passes g[p, q] to the "
    "window's winner (its argmax) only; the other entries of the window get nothing from it":
        lambda inp: _spread(inp, 1.0),
    "the gradient is averaged over the window (g / k^2 to every entry): that is average "
    "pooling's backward; max pooling passes all of g[p, q] to the window's winner (its "
    "argmax)": lambda inp: _spread(inp, 1.0 / inp["kernel_size"] ** 2),
}
