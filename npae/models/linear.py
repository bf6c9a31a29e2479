"""The linear autoencoder: the lecture's "Totally Linear Case", trained and in closed form.

Rows of ``X`` are the examples x_i (the slide's x_1 .. x_m). The slides:

    (1)  x_tilde = U V x                     one hidden layer, linear activations
    (2)  f(U, V) = sum_i ||x_i - U V x_i||^2,    U (d, k) "decompressor", V (k, d) "compressor"
    (3)  optimum: U = W, V = W^T, W^T W = I,  W = U_{., <=k} (top-k eigenvectors of sum_i x_i x_i^T)
    (4)  U V x = W W^T x is the orthogonal projection of x onto span(W)
    (5)  min f = sum_{j > k} sigma_j         sigma_j the eigenvalues of sum_i x_i x_i^T
    (6)  f(U, .) and f(., V) are convex; f(., .) is not

``optimal_linear_autoencoder`` computes (3) directly. ``LinearAutoencoder`` finds it by
gradient descent with npae's layers (``Linear`` without bias for V and for U, or
``TiedLinear`` for the tied decoder U = V^T), npae's optimisers and ``npae.train.fit_loop``.

Centring. The lecture's linear autoencoder has no bias, and the slide "Optimality of the
Linear Autoencoder" normalises the inputs, x <- (x - mean)/sqrt(T), before its optimum is
PCA. ``LinearAutoencoder(center=True)`` (the default) does exactly that preprocessing: ``fit``
stores ``mean_`` and every entry point works on x - mean_. The 1/sqrt(T) factor of the slide
is the mean over the batch below, so with ``center=True`` the model's objective is one half of
(2) on the lecture-normalised data. ``center=False`` trains (2) on X as given.

The training objective (npae's reduction: sum over features, mean over the batch, and the
squared error's 1/2), for a batch of n centred rows x_i with h_i = V x_i, x_hat_i = U h_i,
r_i = x_hat_i - x_i:

    (7)  L(U, V) = (1/n) sum_i 1/2 ||U V x_i - x_i||^2 = f(U, V) / (2n)

Gradients, derived by hand. dL/dx_hat_i = r_i / n. x_hat_i = U h_i is linear in U, so

    (8)  dL/dU = (1/n) sum_i r_i h_i^T = (1/n) R^T H                         (d, k)

and dL/dh_i = U^T r_i / n; h_i = V x_i is linear in V, so

    (9)  dL/dV = (1/n) sum_i (U^T r_i) x_i^T = (1/n) (R U)^T X               (k, d)

(R, H, X stack r_i, h_i, x_i as rows.) Tied weights, U = W^T and V = W with W (k, d): W is
used twice and its gradient is the sum of the two uses -- the encoder term (9) with U = W^T
plus the transpose of the decoder term (8):

    (10) dL/dW = (1/n) (R W^T)^T X + (1/n) H^T R                              (k, d)

``Linear.backward`` and ``TiedLinear.backward`` compute exactly these terms; the tests check
(8)-(10) against central differences in float64.

Why (6) holds: for fixed U, x_hat is linear in V, so f(U, .) is a convex quadratic (its
Hessian is 2 (sum_i x_i x_i^T) kron (U^T U), positive semi-definite); the same for f(., V).
Jointly f is quartic: (U, V) and (-U, -V) are both optimal, but their midpoint (0, 0) gives
f = sum_i ||x_i||^2, the worst value a projection can have.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from .._validation import as_float_array, check_param
from ..losses import squared_error, squared_error_grad
from ..nn import Linear, TiedLinear
from ..optim import make_optimizer
from ..train import fit_loop
from .base import BaseEstimator, GradientModelMixin, check_is_fitted
from .pca import check_n_components, check_n_samples, flip_signs

__all__ = ["LinearAutoencoder", "optimal_linear_autoencoder", "linear_autoencoder_loss"]


def linear_autoencoder_loss(U, V, X):
    """The lecture's f(U, V) = sum_i ||x_i - U V x_i||^2 (2), on X exactly as given."""
    X = as_float_array(X, "X", ndim=2)
    U = as_float_array(U, "U", ndim=2)
    V = as_float_array(V, "V", ndim=2)
    d = X.shape[1]
    if U.shape[0] != d or V.shape[1] != d or U.shape[1] != V.shape[0]:
        raise ValueError(f"U must be (d, k) and V (k, d) with d = {d} (the columns of X); got "
                         f"U {U.shape} and V {V.shape}")
    R = (X @ V.T) @ U.T - X
    return float(np.vdot(R, R))


def optimal_linear_autoencoder(X, k):
    """The closed form (3): U = W = U_{., <=k}, V = W^T, for the rows of X as given.

    W holds the top-k eigenvectors of sum_i x_i x_i^T, i.e. the top-k left singular vectors
    of the data matrix [x_1 ... x_m] (d, m) -- the right singular vectors of X (m, d). Each
    column of W is signed so that its largest-magnitude entry is positive (as ``PCA``).
    Centre X first (``X - X.mean(0)``, or ``lecture_normalize(X)[0]``) to get PCA's subspace;
    uncentred, the optimum is the best k-dimensional subspace through the origin.

    Returns ``(U, V)``, shapes (d, k) and (k, d), with V = U^T and U^T U = I.
    """
    X = as_float_array(X, "X", ndim=2, dtype=np.float64)
    check_n_samples(X, "optimal_linear_autoencoder")
    k = check_n_components(k, X, "k")
    _, _, Vt = scipy.linalg.svd(X, full_matrices=False, check_finite=False)
    W_T = np.ascontiguousarray(Vt[:k])  # rows: the top-k eigenvectors, i.e. W^T
    flip_signs(W_T)
    return W_T.T.copy(), W_T


def _top_variance(Xc, rng, n_iter=50):
    """lambda_1 of (1/n) Xc^T Xc by power iteration (the Rayleigh quotient, never above it)."""
    v = rng.standard_normal(Xc.shape[1])
    lam = 0.0
    for _ in range(n_iter):
        w = Xc.T @ (Xc @ v) / Xc.shape[0]
        lam = float(v @ w) / float(v @ v)
        norm = np.linalg.norm(w)
        if norm == 0.0:  # all rows equal: nothing to learn, any step is stable
            return 1.0
        v = w / norm
    return lam


class LinearAutoencoder(GradientModelMixin, BaseEstimator):
    """x_hat = U V (x - mean) + mean, trained by gradient descent on (7).

    Parameters
    ----------
    n_components : int
        k, the number of hidden (linear) units; 1 <= k <= min(n_samples, n_features).
    tied : bool
        False: independent decoder U (d, k) and encoder V (k, d) -- the weight vectors are in
        general *not* orthogonal at the optimum (only U V is determined). True: U = V^T = W^T
        (``TiedLinear``), and the optimum has orthonormal rows W W^T = I.
    center : bool
        Subtract the training mean (the lecture's normalisation) before encoding.
    optimizer : "sgd" or "adam"
    learning_rate : float > 0 or "auto"
        "auto": 0.2 / lambda_1, lambda_1 the largest variance of the (centred) training data.
        Near the optimum the curvature of (7) along the radial direction (s U, s V) is about
        4 lambda_1, so plain gradient descent is stable only for steps below 0.5 / lambda_1;
        0.2 / lambda_1 with momentum 0.9 converges to the closed form in a few hundred
        full-batch steps on data with a clear eigengap. The value used is ``learning_rate_``.
    momentum : float >= 0
        SGD's momentum (ignored by Adam). Momentum lets the encoder's components along
        directions of small variance (whose gradient is proportional to that variance) reach
        their optimum much sooner; it also breaks the gradient flow's conservation of
        U^T U - V V^T, so the untied weights drift further from orthonormal.
    n_epochs : int >= 0
    batch_size : int >= 1 or None
        None: full batch (one exact gradient step per epoch), the way to reach the closed
        form's loss to many digits.
    random_state : None, int or Generator
        Initialisation (Glorot uniform) and shuffling.
    verbose : bool

    Attributes
    ----------
    mean_ : (d,)  (zeros when ``center=False``)
    learning_rate_ : float  the step size used
    U_ : (d, k)   decoder (a view of the live weights; for tied weights V_.T)
    V_ : (k, d)   encoder
    history_ : dict with the training objective per epoch
    n_features_in_ : int
    """

    def __init__(self, n_components=2, *, tied=False, center=True, optimizer="sgd",
                 learning_rate="auto", momentum=0.9, n_epochs=500, batch_size=None,
                 random_state=None, verbose=False):
        self.n_components = n_components
        self.tied = tied
        self.center = center
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose

    # -- the network --------------------------------------------------------------------------
    def _check_hyperparameters(self):
        check_param("tied", self.tied, options=(True, False))
        check_param("center", self.center, options=(True, False))
        check_param("optimizer", self.optimizer, options=("sgd", "adam"))
        if not (isinstance(self.learning_rate, str) and self.learning_rate == "auto"):
            check_param("learning_rate", self.learning_rate, low=0.0, low_open=True)
        check_param("momentum", self.momentum, low=0.0)
        check_param("n_epochs", self.n_epochs, kind="int", low=0)
        if self.batch_size is not None:
            check_param("batch_size", self.batch_size, kind="int", low=1)

    def _build(self, d, k, rng):
        self.encoder_ = Linear(d, k, bias=False, rng=rng)                 # h = V x
        self.decoder_ = (TiedLinear(self.encoder_, bias=False) if self.tied  # x_hat = U h
                         else Linear(k, d, bias=False, rng=rng))
        for layer in (self.encoder_, self.decoder_):
            layer.check_input = False  # the model validates once at its entry points

    def _restore_network(self):
        """Rebuild the layers for ``npae.load`` (the saved weights are copied in afterwards)."""
        self._build(self.n_features_in_, int(self.n_components), np.random.default_rng(0))

    @property
    def V_(self):
        check_is_fitted(self, "encoder_")
        return self.encoder_.params["W"]

    @property
    def U_(self):
        check_is_fitted(self, "encoder_")
        return self.V_.T if self.tied else self.decoder_.params["W"]

    def parameters(self):
        """Live arrays: {"U": (d, k), "V": (k, d)}, or {"W": (k, d)} when tied (U = W^T)."""
        check_is_fitted(self, "encoder_")
        if self.tied:
            return {"W": self.encoder_.params["W"]}
        return {"U": self.decoder_.params["W"], "V": self.encoder_.params["W"]}

    # -- the objective (7) and its gradients (8)-(10) ------------------------------------------
    def _loss_and_gradients(self, X, need_grad=True):
        """X: rows already centred."""
        enc, dec = self.encoder_, self.decoder_
        h = enc.forward(X)
        x_hat = dec.forward(h)
        L = squared_error(x_hat, X)                          # (7)
        if not need_grad:
            return L, None
        enc.zero_grad()
        dec.zero_grad()
        dh = dec.backward(squared_error_grad(x_hat, X))      # (8); tied: decoder term of (10)
        enc.grads["W"] += dh.T @ X                           # (9); tied: encoder term of (10)
        if self.tied:
            return L, {"W": enc.grads["W"]}
        return L, {"U": dec.grads["W"], "V": enc.grads["W"]}

    def _validate(self, X, name="X"):
        check_is_fitted(self, "encoder_")
        return self._validate_data(X, reset=False, name=name, dtype=np.float64)

    def objective(self, X):
        """(7) at the current weights, on x - mean_ (half the mean of the lecture's f)."""
        return self._loss_and_gradients(self._validate(X) - self.mean_, need_grad=False)[0]

    def gradients(self, X):
        """The hand-derived (8)-(10) of ``objective(X)`` (copies), keys of ``parameters()``."""
        grads = self._loss_and_gradients(self._validate(X) - self.mean_)[1]
        return {name: g.copy() for name, g in grads.items()}

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Train U, V on the rows of X (y is ignored). Returns self."""
        self._check_hyperparameters()
        X = self._validate_data(X, reset=True, dtype=np.float64)
        check_n_samples(X, type(self).__name__)
        k = check_n_components(self.n_components, X)
        rng = np.random.default_rng(self.random_state)
        self.mean_ = X.mean(axis=0) if self.center else np.zeros(X.shape[1])
        Xc = X - self.mean_
        self._build(X.shape[1], k, rng)
        params = self.parameters()
        kwargs = {"momentum": self.momentum} if self.optimizer == "sgd" else {}
        self.learning_rate_ = (0.2 / _top_variance(Xc, rng) if self.learning_rate == "auto"
                               else float(self.learning_rate))
        opt = make_optimizer(self.optimizer, params, self.learning_rate_, **kwargs)
        batch = Xc.shape[0] if self.batch_size is None else self.batch_size
        self.history_ = fit_loop(params, self._loss_and_gradients, Xc, optimizer=opt,
                                 n_epochs=self.n_epochs, batch_size=batch, rng=rng,
                                 shuffle=batch < Xc.shape[0], verbose=self.verbose,
                                 desc=type(self).__name__)
        return self

    # -- using the model ------------------------------------------------------------------------
    def transform(self, X):
        """Codes h = V (x - mean_), shape (n, k)."""
        return (self._validate(X) - self.mean_) @ self.V_.T

    def inverse_transform(self, H):
        """x_hat = U h + mean_, shape (n, d)."""
        check_is_fitted(self, "encoder_")
        H = as_float_array(H, "H", ndim=2, dtype=np.float64)
        k = self.V_.shape[0]
        if H.shape[1] != k:
            raise ValueError(f"H has {H.shape[1]} columns but the model has n_components={k}; "
                             "pass codes from transform()")
        return H @ self.U_.T + self.mean_

    def reconstruct(self, X):
        return self.inverse_transform(self.transform(X))
