"""The lecture's gradient exercises (registered on import, in the lecture's order).

Each exercise states its objective with its reduction spelled out, because most wrong
answers to a gradient exercise are right up to a factor that the reduction decides: a
sum over the samples (the PCA slide's f) or npae's mean over the batch (every loss), a 1/2
or not. Each one's ``objective`` is written straight from the slide (the checker takes
finite differences of it) and its ``reference`` calls npae's own layers, losses and models,
so an exercise checks the student against the code the library trains with.

Shapes follow npae (docs/design.md): rows are samples, W is (k, d), conv tensors are NCHW.
"""
from __future__ import annotations

import numpy as np

from ..losses import get_loss
from ..nn import Identity, Linear, Sequential, Sigmoid, TiedLinear
from ..nn.activations import sigmoid
from . import mistakes
from .registry import Exercise, register

__all__ = []


# -------------------------------------------------------------------------------------------
# helpers
# -------------------------------------------------------------------------------------------
def _linear(W, b=None):
    """npae's Linear layer holding the given W (out, in) and bias b (or none)."""
    layer = Linear(W.shape[1], W.shape[0], bias=b is not None)
    layer.params["W"][...] = W
    if b is not None:
        layer.params["b"][...] = b
    return layer


def _rows(inputs, key="X"):
    return inputs[key].shape[0]


def _cross_entropy(x_hat, X):
    """The slide's l summed over features, mean over the rows (written out, not npae's)."""
    return float(-(X * np.log(x_hat) + (1 - X) * np.log(1 - x_hat)).sum() / X.shape[0])


def _targets(rng, shape, binary):
    if binary:
        return (rng.random(shape) < 0.5).astype(float)
    return rng.uniform(0.05, 0.95, shape)


def _reconstruction_grad(a_hat, X, loss, output):
    from ..models.autoencoder import reconstruction_loss
    return reconstruction_loss(a_hat, X, get_loss(loss), output)[1]


# -------------------------------------------------------------------------------------------
# 1, 2. The linear autoencoder: slide "PCA", f(U, V) = sum_i ||x_i - U V x_i||^2
# -------------------------------------------------------------------------------------------
_PCA_STATEMENT = """\
Slide "PCA" (the totally linear case): the linear autoencoder x -> U V x minimises

    f(U, V) = sum_{i=1}^m ||x_i - U V x_i||_2^2

X is (m, d) with the x_i as rows; U is (d, k) (the "decompressor"), V is (k, d) (the
"compressor"). The reduction is exactly the slide's: a SUM over the m samples, no 1/2 and
no 1/m.
"""


def _pca_objective(inp):
    X, U, V = inp["X"], inp["U"], inp["V"]
    R = X - X @ V.T @ U.T          # row i: x_i - U V x_i
    return float(np.vdot(R, R))


def _pca_layers(inp):
    """V then U as npae Linear layers without bias; backward from df/dx_hat = 2 (x_hat - x)."""
    X = inp["X"]
    enc, dec = _linear(inp["V"]), _linear(inp["U"])
    net = Sequential(enc, dec)
    x_hat = net.forward(X)
    net.backward(2.0 * (x_hat - X))
    return dec.grads["W"], enc.grads["W"]


def _pca_cases(rng):
    out = []
    for m, d, k in [(6, 5, 2), (4, 3, 3), (1, 4, 1), (7, 6, 1), (3, 2, 4)]:
        out.append({"X": rng.standard_normal((m, d)),
                    "U": 0.7 * rng.standard_normal((d, k)),
                    "V": 0.7 * rng.standard_normal((k, d))})
    return out


register(Exercise(
    name="linear_ae_grad_U",
    title="linear autoencoder: df/dU of f(U, V) = sum_i ||x_i - U V x_i||^2",
    slide="PCA",
    statement=_PCA_STATEMENT + "\nReturn df/dU, an array of U's shape (d, k).",
    args=("X", "U", "V"), wrt="U",
    objective=_pca_objective,
    reference=lambda inp: _pca_layers(inp)[0],
    cases=_pca_cases, batch_size=_rows,
))

register(Exercise(
    name="linear_ae_grad_V",
    title="linear autoencoder: df/dV of f(U, V) = sum_i ||x_i - U V x_i||^2",
    slide="PCA",
    statement=_PCA_STATEMENT + "\nReturn df/dV, an array of V's shape (k, d).",
    args=("X", "U", "V"), wrt="V",
    objective=_pca_objective,
    reference=lambda inp: _pca_layers(inp)[1],
    cases=_pca_cases, batch_size=_rows,
))


# -------------------------------------------------------------------------------------------
# 3, 4. The output gradients: slides "Loss Function (Examples)" and "Loss Function"
# -------------------------------------------------------------------------------------------
def _output_cases(binary_first):
    def cases(rng):
        out = []
        for i, (n, d) in enumerate([(5, 4), (1, 3), (8, 1), (3, 7)]):
            out.append({"A_hat": rng.uniform(-3, 3, (n, d)),
                        "X": _targets(rng, (n, d), binary=(i % 2 == 0) == binary_first)})
        return out
    return cases


register(Exercise(
    name="sigmoid_cross_entropy_grad",
    title="sigmoid output + cross-entropy: dL/da_hat (the fused output gradient)",
    slide="Loss Function (Examples) / Loss Function",
    statement="""\
Slides "Loss Function (Examples)" and "Loss Function": for binary inputs the decoder's
output is x_hat = sigm(a_hat) and the loss is the cross-entropy

    l(f(x)) = - sum_k [ x_k log(x_hat_k) + (1 - x_k) log(1 - x_hat_k) ]

The lecture back-propagates the gradient at the pre-activation, grad_{a_hat} l. For a batch
A_hat (n, d) of pre-activations (rows a_hat^(t)) and targets X (n, d) in [0, 1], npae's
objective is the MEAN over the batch, summed over the features:

    L = (1/n) sum_t l(f(x^(t)))

Return dL/dA_hat, an array of shape (n, d).""",
    args=("A_hat", "X"), wrt="A_hat",
    objective=lambda inp: _cross_entropy(sigmoid(inp["A_hat"]), inp["X"]),
    reference=lambda inp: _reconstruction_grad(inp["A_hat"], inp["X"], "cross_entropy_logits",
                                               Sigmoid()),
    cases=_output_cases(binary_first=True), batch_size=lambda inp: _rows(inp, "A_hat"),
    mistakes=mistakes.SIGMOID_CROSS_ENTROPY,
))

register(Exercise(
    name="linear_squared_error_grad",
    title="linear output + squared error: dL/da_hat",
    slide="Loss Function (Examples)",
    statement="""\
Slide "Loss Function (Examples)": for real-valued inputs the output unit is linear,
x_hat = a_hat, and the loss is the sum of squared differences

    l(f(x)) = 1/2 sum_k (x_hat_k - x_k)^2

For a batch A_hat (n, d) of pre-activations and targets X (n, d), npae's objective is the
MEAN over the batch, summed over the features (note the slide's 1/2):

    L = (1/n) sum_t l(f(x^(t)))

Return dL/dA_hat, an array of shape (n, d).""",
    args=("A_hat", "X"), wrt="A_hat",
    objective=lambda inp: float(0.5 * ((inp["A_hat"] - inp["X"]) ** 2).sum()
                                / inp["X"].shape[0]),
    reference=lambda inp: _reconstruction_grad(inp["A_hat"], inp["X"], "squared", Identity()),
    cases=_output_cases(binary_first=False), batch_size=lambda inp: _rows(inp, "A_hat"),
))


# -------------------------------------------------------------------------------------------
# 5. Tied weights: slide "Loss Function", "the sum of two gradients (show this as an exercise)"
# -------------------------------------------------------------------------------------------
def _tied_objective(X, W_enc, W_dec, b, c):
    """L with the encoder's W and the decoder's W^T as separate arguments (equal when tied)."""
    h = sigmoid(X @ W_enc.T + b)
    x_hat = sigmoid(h @ W_dec + c)       # rows: (c + W^T h)^T
    return _cross_entropy(x_hat, X)


def _tied_reference(inp):
    X = inp["X"]
    enc = _linear(inp["W"], inp["b"])
    dec = TiedLinear(enc)
    dec.params["c"][...] = inp["c"]
    net = Sequential(enc, Sigmoid(), dec)
    a_hat = net.forward(X)
    net.backward(_reconstruction_grad(a_hat, X, "cross_entropy_logits", Sigmoid()))
    return enc.grads["W"]


def _tied_terms(inp):
    X, W, b, c = inp["X"], inp["W"].copy(), inp["b"], inp["c"]
    return {"encoder term (W in a = b + W x)": lambda v: _tied_objective(X, v, W, b, c),
            "decoder term (W^T in a_hat = c + W^T h)": lambda v: _tied_objective(X, W, v, b, c)}


def _tied_cases(rng):
    out = []
    for n, d, k in [(5, 4, 3), (1, 5, 2), (6, 3, 1), (4, 3, 3), (3, 2, 5)]:
        out.append({"X": _targets(rng, (n, d), binary=n % 2 == 1),
                    "W": rng.standard_normal((k, d)),
                    "b": 0.5 * rng.standard_normal(k),
                    "c": 0.5 * rng.standard_normal(d)})
    return out


register(Exercise(
    name="tied_weight_grad",
    title="tied weights W* = W^T: dL/dW is the sum of two gradients",
    slide="Loss Function / Nonlinear Autoencoder (Example)",
    statement="""\
Slides "Nonlinear Autoencoder (Example)" and "Loss Function": with tied weights W* = W^T,

    h(x) = sigm(b + W x),      x_hat = sigm(c + W^T h(x))

and the cross-entropy l(f(x)) = - sum_k [x_k log x_hat_k + (1 - x_k) log(1 - x_hat_k)].
"When using tied weights, grad_W l is the sum of two gradients (show this as an exercise):
W is present in the encoder and in the decoder."

X is (n, d) with rows x^(t) in [0, 1], W is (k, d), b is (k,), c is (d,). The objective is
the MEAN over the batch: L = (1/n) sum_t l(f(x^(t))).

Return dL/dW, an array of W's shape (k, d).""",
    args=("X", "W", "b", "c"), wrt="W",
    objective=lambda inp: _tied_objective(inp["X"], inp["W"], inp["W"], inp["b"], inp["c"]),
    reference=_tied_reference, terms=_tied_terms,
    cases=_tied_cases, batch_size=_rows, mistakes=mistakes.TIED,
))


# -------------------------------------------------------------------------------------------
# 6, 7. The contractive penalty: slide "Contractive Autoencoder"
# -------------------------------------------------------------------------------------------
_CAE_STATEMENT = """\
Slide "Contractive Autoencoder": the penalty on the encoder h(x) = sigm(b + W x) is

    lam ||grad_x h(x)||_F^2 = lam sum_j sum_k (dh_j(x) / dx_k)^2

X is (n, d) with rows x^(t), W is (k, d), b is (k,), lam a float. The objective is the
penalty alone (no reconstruction term), MEAN over the batch:

    P = (1/n) sum_t lam ||grad_x h(x^(t))||_F^2
"""


def _cae_penalty(X, W_a, W_q, b, lam):
    """P with W's two roles apart: W_a in a = b + W x, W_q as the Jacobian's W_jk."""
    h = sigmoid(X @ W_a.T + b)
    J = (h * (1 - h))[:, :, None] * W_q[None, :, :]       # J[t, j, k] = dh_j/dx_k at x^(t)
    return float(lam * (J ** 2).sum() / X.shape[0])


def _cae_reference(inp):
    from ..models.contractive import jacobian_penalty_terms
    X, W = inp["X"], inp["W"]
    enc = _linear(W, inp["b"])
    h = sigmoid(enc.forward(X))
    _, dP_da, dP_dW = jacobian_penalty_terms(h, W, inp["lam"])
    enc.backward(dP_da)
    return {"W": enc.grads["W"] + dP_dW, "b": enc.grads["b"]}


def _cae_terms(inp):
    X, W, b, lam = inp["X"], inp["W"].copy(), inp["b"], inp["lam"]
    return {"through h (W in a = b + W x)": lambda v: _cae_penalty(X, v, W, b, lam),
            "direct (W_jk in dh_j/dx_k = h_j (1 - h_j) W_jk)":
                lambda v: _cae_penalty(X, W, v, b, lam)}


def _cae_cases(rng):
    out = []
    for (n, d, k), lam in zip([(4, 5, 3), (1, 3, 2), (5, 4, 1), (3, 3, 3), (2, 6, 4)],
                              [0.7, 1.0, 2.5, 0.3, 1.5]):
        out.append({"X": rng.uniform(0, 1, (n, d)), "W": rng.standard_normal((k, d)),
                    "b": 0.5 * rng.standard_normal(k), "lam": lam})
    return out


def _cae_objective(inp):
    return _cae_penalty(inp["X"], inp["W"], inp["W"], inp["b"], inp["lam"])


register(Exercise(
    name="contractive_grad_W",
    title="contractive penalty lam ||J_h(x)||_F^2: dP/dW",
    slide="Contractive Autoencoder",
    statement=_CAE_STATEMENT + "\nReturn dP/dW, an array of W's shape (k, d).",
    args=("X", "W", "b", "lam"), wrt="W",
    objective=_cae_objective, reference=lambda inp: _cae_reference(inp)["W"],
    terms=_cae_terms, cases=_cae_cases, batch_size=_rows, mistakes=mistakes.CONTRACTIVE_W,
))

register(Exercise(
    name="contractive_grad_b",
    title="contractive penalty lam ||J_h(x)||_F^2: dP/db",
    slide="Contractive Autoencoder",
    statement=_CAE_STATEMENT + "\nReturn dP/db, an array of b's shape (k,).",
    args=("X", "W", "b", "lam"), wrt="b",
    objective=_cae_objective, reference=lambda inp: _cae_reference(inp)["b"],
    cases=_cae_cases, batch_size=_rows, mistakes=mistakes.CONTRACTIVE_B,
))


# -------------------------------------------------------------------------------------------
# 8, 9. Predictive Sparse Decomposition: slide "Predictive Sparse Decomposition"
# -------------------------------------------------------------------------------------------
_PSD_STATEMENT = """\
Slide "Predictive Sparse Decomposition": at training time

    min_{D, W, z}  ||D z - x||_2^2 + lam ||z||_1  +  ||sigma(W x) - z||_2^2

with sigma the sigmoid and no bias (the slide's form). X is (n, d) with rows x^(t), Z is
(n, m) with rows z^(t), D is (d, m) (the dictionary), W is (m, d). As everywhere in npae the
batch objective is the MEAN over the rows of the per-sample objective.
"""


def _psd_model(D, W):
    """npae's PSD estimator holding D and W (sigmoid encoder, no bias: the slide's form)."""
    from ..models.psd import PredictiveSparseDecomposition
    model = PredictiveSparseDecomposition(n_atoms=W.shape[0], encoder="sigmoid",
                                          encoder_bias=False)
    model.n_features_in_ = W.shape[1]
    model._restore_network()            # the state ``load`` restores: parameters of this shape
    params = model.parameters()
    params["D"][...] = D
    params["W"][...] = W
    return model


def _psd_smooth(X, Z, D, W):
    R = Z @ D.T - X
    E = sigmoid(X @ W.T) - Z
    return float((np.vdot(R, R) + np.vdot(E, E)) / X.shape[0])


def _psd_cases(rng):
    out = []
    for n, d, m in [(4, 5, 3), (1, 4, 6), (5, 3, 1), (3, 4, 4), (6, 2, 3)]:
        Z = rng.standard_normal((n, m)) * (rng.random((n, m)) < 0.6)
        out.append({"X": rng.standard_normal((n, d)), "Z": Z,
                    "D": rng.standard_normal((d, m)), "W": rng.standard_normal((m, d))})
    return out


def _psd_z_terms(inp):
    X, D, W = inp["X"], inp["D"], inp["W"]
    n = X.shape[0]
    return {"decoder term ||D z - x||^2": lambda v: float(((v @ D.T - X) ** 2).sum() / n),
            "encoder term ||sigma(W x) - z||^2":
                lambda v: float(((sigmoid(X @ W.T) - v) ** 2).sum() / n)}


register(Exercise(
    name="psd_z_grad",
    title="PSD z-step: gradient of the smooth part in z",
    slide="Predictive Sparse Decomposition",
    statement=_PSD_STATEMENT + """
The z-step (D and W fixed) handles lam ||z||_1 by a proximal step and needs the gradient
of the smooth part only:

    S(Z) = (1/n) sum_t [ ||D z^(t) - x^(t)||^2 + ||sigma(W x^(t)) - z^(t)||^2 ]

Return dS/dZ, an array of Z's shape (n, m).""",
    args=("X", "Z", "D", "W"), wrt="Z",
    objective=lambda inp: _psd_smooth(inp["X"], inp["Z"], inp["D"], inp["W"]),
    reference=lambda inp: _psd_model(inp["D"], inp["W"]).code_gradient(inp["X"], inp["Z"]),
    terms=_psd_z_terms, cases=_psd_cases, batch_size=_rows,
    requires=("npae.models.psd",),
))


def _psd_w_cases(rng):
    return [{k: v for k, v in case.items() if k != "D"} for case in _psd_cases(rng)]


register(Exercise(
    name="psd_W_grad",
    title="PSD W-step: gradient of the encoder term in W",
    slide="Predictive Sparse Decomposition",
    statement=_PSD_STATEMENT + """
The W-step (Z fixed) changes only the encoder's prediction term, in which D does not
appear (the function takes X, Z and W only):

    E(W) = (1/n) sum_t ||sigma(W x^(t)) - z^(t)||^2

Return dE/dW, an array of W's shape (m, d).""",
    args=("X", "Z", "W"), wrt="W",
    objective=lambda inp: float(((sigmoid(inp["X"] @ inp["W"].T) - inp["Z"]) ** 2).sum()
                                / inp["X"].shape[0]),
    reference=lambda inp: _psd_model(np.zeros((inp["X"].shape[1], inp["W"].shape[0])),
                                     inp["W"]).gradients(inp["X"], Z=inp["Z"])["W"],
    cases=_psd_w_cases, batch_size=_rows, mistakes=mistakes.PSD_W,
    requires=("npae.models.psd",),
))


# -------------------------------------------------------------------------------------------
# 10-12. The convolutional autoencoder: slide "Autoencoder example" (Conv2d, MaxPool2d)
# -------------------------------------------------------------------------------------------
def _windows(x, k, stride, padding, fill=0.0):
    """(N, C, Ho, Wo, k, k): every k x k window of the padded x, PyTorch's placement."""
    from numpy.lib.stride_tricks import sliding_window_view
    p = padding
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=fill)
    return sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]


def _conv2d(x, W, stride, padding):
    """y[n,o,p,q] = sum_{c,i,j} W[o,c,i,j] x_pad[n, c, p s + i, q s + j] (PyTorch's Conv2d)."""
    return np.einsum("ncpqij,ocij->nopq", _windows(x, W.shape[2], stride, padding), W)


def _coverage(shape, k, stride, padding, out_hw):
    """How many windows read each entry of an input of ``shape`` (N, C, H, W)."""
    N, C, H, Wd = shape
    cover = np.zeros((N, C, H + 2 * padding + k, Wd + 2 * padding + k))
    for i in range(k):
        for j in range(k):
            cover[:, :, i:i + stride * (out_hw[0] - 1) + 1:stride,
                  j:j + stride * (out_hw[1] - 1) + 1:stride] += 1
    return cover[:, :, padding:padding + H, padding:padding + Wd]


def _conv_layer(inp):
    from ..nn.conv import Conv2d
    O, C, k, _ = inp["W"].shape
    layer = Conv2d(C, O, k, stride=inp["stride"], padding=inp["padding"], bias=False)
    layer.params["W"][...] = inp["W"]
    return layer


def _conv_reference(inp):
    layer = _conv_layer(inp)
    layer.forward(inp["x"])
    dx = layer.backward(inp["g"])
    return {"x": np.asarray(dx), "W": layer.grads["W"]}


def _conv_cases(rng):
    out = []
    # first: windows that overlap on some entries only (evidence for the "+=" hint), then
    # no overlap, full overlap with padding, the lecture's first layer (k 3, s 3, p 1), 1x1
    for N, C, H, Wd, O, k, s, p in [(3, 2, 5, 5, 3, 3, 2, 0), (1, 1, 4, 4, 1, 2, 2, 0),
                                    (2, 3, 6, 5, 2, 3, 1, 1), (1, 2, 5, 6, 1, 3, 3, 1),
                                    (2, 1, 4, 4, 2, 1, 1, 0)]:
        Ho, Wo = (H + 2 * p - k) // s + 1, (Wd + 2 * p - k) // s + 1
        out.append({"x": rng.standard_normal((N, C, H, Wd)),
                    "W": rng.standard_normal((O, C, k, k)),
                    "g": rng.standard_normal((N, O, Ho, Wo)), "stride": s, "padding": p})
    return out


_CONV_STATEMENT = """\
Slide "Autoencoder example" (the encoder's "Convolutional layer"): PyTorch's Conv2d without
bias, a cross-correlation on NCHW arrays. x is (N, C, H, W), the weight W is
(O, C, k, k), stride s and zero padding p are ints, and

    y[n,o,p',q'] = sum_{c,i,j} W[o,c,i,j] x_pad[n, c, p' s + i, q' s + j]

with x_pad the input with p zeros around each image, y of shape (N, O, Ho, Wo),
Ho = floor((H + 2p - k) / s) + 1 (Wo likewise). Back-propagation hands the layer the
upstream gradient g = dL/dy (N, O, Ho, Wo); take L = sum(g * y), so dL/dy = g exactly.
"""


def _conv_objective(inp):
    return float(np.vdot(inp["g"], _conv2d(inp["x"], inp["W"], inp["stride"], inp["padding"])))


def _conv_overlap(inp):
    g = inp["g"]
    return _coverage(inp["x"].shape, inp["W"].shape[2], inp["stride"], inp["padding"],
                     g.shape[2:]) > 1


register(Exercise(
    name="conv2d_grad_input",
    title="Conv2d backward: dL/dx (NCHW, PyTorch's meanings)",
    slide="Autoencoder example (Convolutional layer)",
    statement=_CONV_STATEMENT + """
Return dL/dx, an array of x's shape (N, C, H, W). (Where windows overlap, an input entry
collects a contribution from every window that read it.)""",
    args=("x", "W", "g", "stride", "padding"), wrt="x",
    objective=_conv_objective, reference=lambda inp: _conv_reference(inp)["x"],
    overlap=_conv_overlap, cases=_conv_cases, batch_size=lambda inp: inp["x"].shape[0],
    mistakes=mistakes.CONV_INPUT, requires=("npae.nn.conv",),
))

register(Exercise(
    name="conv2d_grad_weight",
    title="Conv2d backward: dL/dW (NCHW, PyTorch's meanings)",
    slide="Autoencoder example (Convolutional layer)",
    statement=_CONV_STATEMENT + """
Return dL/dW, an array of W's shape (O, C, k, k).""",
    args=("x", "W", "g", "stride", "padding"), wrt="W",
    objective=_conv_objective, reference=lambda inp: _conv_reference(inp)["W"],
    cases=_conv_cases, batch_size=lambda inp: inp["x"].shape[0],
    mistakes=mistakes.CONV_WEIGHT, requires=("npae.nn.conv",),
))


def _pool_objective(inp):
    y = _windows(inp["x"], inp["kernel_size"], inp["stride"], 0).max(axis=(-2, -1))
    return float(np.vdot(inp["g"], y))


def _pool_reference(inp):
    from ..nn.conv import MaxPool2d
    layer = MaxPool2d(inp["kernel_size"], stride=inp["stride"])
    layer.forward(inp["x"])
    return np.asarray(layer.backward(inp["g"]))


def _pool_cases(rng):
    out = []
    # (k 2, s 1) is the lecture's second pooling layer; (k 2, s 2) its first; (k 2, s 3)
    # leaves rows and columns in no window, whose gradient is 0
    for N, C, H, Wd, k, s in [(3, 2, 5, 5, 2, 1), (1, 1, 4, 4, 2, 2), (2, 3, 5, 4, 3, 2),
                              (1, 2, 6, 6, 3, 3), (3, 1, 3, 3, 2, 1), (2, 2, 7, 8, 2, 3)]:
        size = N * C * H * Wd
        # distinct values 0.1 apart: no ties, and no finite-difference step crosses a kink
        x = (rng.permutation(size) - size / 2) * 0.1 + rng.uniform(-0.02, 0.02, size)
        Ho, Wo = (H - k) // s + 1, (Wd - k) // s + 1
        out.append({"x": x.reshape(N, C, H, Wd), "g": rng.standard_normal((N, C, Ho, Wo)),
                    "kernel_size": k, "stride": s})
    return out


register(Exercise(
    name="maxpool2d_backward",
    title="MaxPool2d backward: dL/dx",
    slide="Autoencoder example (MaxPooling)",
    statement="""\
Slide "Autoencoder example" (the encoder's "MaxPooling"): PyTorch's MaxPool2d without
padding on NCHW arrays. x is (N, C, H, W), the window is k x k (kernel_size = k), stride s:

    y[n,c,p,q] = max_{0 <= i, j < k} x[n, c, p s + i, q s + j]

y has shape (N, C, Ho, Wo), Ho = floor((H - k) / s) + 1 (Wo likewise). Back-propagation
hands the layer the upstream gradient g = dL/dy (N, C, Ho, Wo); take L = sum(g * y). The
inputs have no ties, so every window has a single winner.

Return dL/dx, an array of x's shape (N, C, H, W). (With s < k the windows overlap and one
entry can win several windows; with s > k some entries lie in no window at all.)""",
    args=("x", "g", "kernel_size", "stride"), wrt="x",
    objective=_pool_objective, reference=_pool_reference,
    overlap=lambda inp: _coverage(inp["x"].shape, inp["kernel_size"], inp["stride"], 0,
                                  inp["g"].shape[2:]) > 1,
    cases=_pool_cases, batch_size=lambda inp: inp["x"].shape[0],
    mistakes=mistakes.MAXPOOL, requires=("npae.nn.conv",),
))
