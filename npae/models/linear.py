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

Training with ``learning_rate="auto"`` (the default): a step that cannot diverge.
Write C = X^T X / n for the (centred) data's second-moment matrix, lambda_1 = ||C||_2 its
largest eigenvalue (sigma_1(X)^2 / n), E = U V - I, so that L = 1/2 tr(E C E^T). Along a
direction P = (P_U, P_V) the product is quadratic in the step t,

    (11) (U + t P_U)(V + t P_V) = U V + t (P_U V + U P_V) + t^2 P_U P_V,

so the residuals are R(t) = R + t R1 + t^2 R2 with R1 = H P_U^T + G U^T, R2 = G P_U^T
(H = X V^T, G = X P_V^T) and the objective along the line is a quartic polynomial

    (12) L(t) = (1/2n) [c0 + c1 t + c2 t^2 + c3 t^3 + c4 t^4],   c0 = ||R||^2,
         c1 = 2 <R, R1> = 2n <grad L, P>,  c2 = ||R1||^2 + 2 <R, R2>,  c3 = 2 <R1, R2>,
         c4 = ||R2||^2

(tied: P_U = P_W^T, P_V = P_W). Its coefficients cost two more products with X per epoch;
the step is the exact minimiser t* >= 0 of (12), a root of the cubic L'(t). Since L >= 0,
(12) is bounded below and t* is finite; and L(t*) <= L(t) for every t >= 0, so each step
decreases L at least as much as any step size along that line would -- in particular as
much as a backtracking (Armijo) search would. The objective therefore never increases: no
data scale, offset or initialisation can make the run diverge. (Offsets: with ``center=True``
the mean is removed first. Scales: (7) is homogeneous of degree 2 in X and the line search
is scale-free, so ``fit`` divides the centred data by the power of two nearest its largest
magnitude -- the same iterates, without overflow or underflow for data of 1e-150 or 1e70 --
and reports ``history_["loss"]`` in the data's own units.)

Momentum. The search direction is P = -S(g) + beta P_prev (nonlinear conjugate gradients),
g = grad L. Tied, S(g) = g. Untied, S(g) = (g_U (V V^T)^{-1}, (U^T U)^{-1} g_V): each
factor's gradient in the metric of the other factor ("scaled gradient descent"). The
objective does not change under U -> U A, V -> A^{-1} V (A invertible), but plain gradients
do: an imbalance between ||U|| and ||V|| slows them down, and the scaled step is the same in
every such parameterisation. With ``momentum="auto"`` beta is Polak-Ribiere's
<g - g_prev, S(g)> / <g_prev, S(g_prev)>, floored at 0 (PR+); a number fixes beta.
Momentum only chooses the *direction*; the line search still chooses the step, so the
guarantee above holds for any beta. After an exact line search g is orthogonal to P_prev, so
<g, P> = -<g, S(g)> < 0: P is downhill. If rounding (or a fixed beta) ever makes
<g, P> > -<g, S(g)> / 2, the momentum is dropped and P = -S(g) (a restart), so every step
is a descent step with sufficient slope and the gradient goes to zero.

Why a fixed step failed. The old rule was eta = 0.2 / lambda_1 with heavy-ball momentum
beta = 0.9. The curvature of L is not bounded by a multiple of lambda_1 alone: its second
derivative along (dU, dV) is

    (13) ||(dU V + U dV) C^{1/2}||^2 + 2 tr(E C (dU dV)^T)
             <= lambda_1 (1 + 3/2 (||U||_2^2 + ||V||_2^2)) (||dU||^2 + ||dV||^2) =: M(U, V)

(Cauchy-Schwarz, ||E C||_2 <= (1 + ||U|| ||V||) lambda_1 and 2ab <= a^2 + b^2; tied: twice
that with ||U|| = ||V|| = ||W||), and it grows with the factors' norms. Heavy ball is stable on
a quadratic of curvature M only while eta M < 2 (1 + beta) = 3.8, i.e. M < 19 lambda_1. Momentum
0.9 lets the steps add up to 1 / (1 - beta) = 10 times a single step, so an early overshoot
grows ||U|| and ||V||, which raises M past that limit, which makes the next overshoot larger:
a runaway that ended in overflow for some seeds (20 samples of 100 + N(0, 1) in R^3 was
enough). The line search removes the fixed step altogether; (13) explains the failure and
bounds the step with mini-batches: there is no full-batch objective to search there, so
"auto" takes eta = 1 / M_B before every step, M_B being (13) evaluated at the current
factors (Frobenius norms, which bound the spectral ones) with lambda_1 replaced by
max_i ||x_i||^2, a bound on the second-moment matrix of *every* mini-batch. On a quadratic of
curvature at most M_B, heavy ball with eta M_B = 1 < 2 (1 + beta) is stable for any beta < 1.

Initialisation. The decoder U (and the tied W) start Glorot uniform; the untied encoder V
starts at 0. (U, 0) is not a stationary point: (9) gives dL/dV = -U^T C there, and every
later V-gradient U^T E C also ends in C. So V is built only from the data's directions,
weighted by their variances, and never carries a random component along a direction of
small variance lambda_j, which the gradient would remove at a rate proportional to lambda_j
(so slowly that, from a random V, the decoder's angle to PCA's subspace fell only like
1 / epochs on MNIST, whose spectrum decays smoothly). The first epoch moves only V (the
U-gradient (8) is R^T H = 0 while H = 0).

Stopping. A step is one epoch (full batch). After each epoch the model measures how far the
decoder's column space moved, delta = sin of the largest principal angle between span(U)
before and after the epoch, and stops once delta < ``tol`` in two epochs in a row (a step
can move V alone) while the objective is not rising (``n_epochs`` is a cap; the second condition matters only for a fixed step, which can
blow U and V up along their own span). Near the optimum the iterates converge linearly, so
the remaining angle to the optimal subspace is delta times a factor set by the convergence
rate (about 1 / (1 - rate)); the default tol = 1e-7 leaves room for rates as slow as 0.999
per epoch and still stops within 1e-4 rad of PCA's subspace on data with a clear eigengap.
Without a gap (lambda_k = lambda_{k+1}) the optimal subspace is not unique and no rule can
promise an angle; with a small gap the convergence is slow (the rate approaches 1 as
(lambda_k - lambda_{k+1}) / lambda_1 shrinks) and the cap may come first: ``fit`` then warns.
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg

from .._validation import as_float_array, check_param
from ..losses import squared_error, squared_error_grad
from ..nn import Linear, TiedLinear
from ..optim import SGD, make_optimizer
from ..train import fit_loop
from .base import BaseEstimator, GradientModelMixin, check_is_fitted
from .pca import check_n_components, check_n_samples, flip_signs

__all__ = ["LinearAutoencoder", "optimal_linear_autoencoder", "linear_autoencoder_loss",
           "quartic_minimizer", "ConvergenceWarning"]


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


class ConvergenceWarning(UserWarning):
    """``fit`` reached its ``n_epochs`` cap before the stopping rule was met."""


def quartic_minimizer(c):
    """argmin over t >= 0 of c0 + c1 t + c2 t^2 + c3 t^3 + c4 t^4, for a quartic bounded below.

    The minimiser is 0 or a positive real root of the derivative c1 + 2 c2 t + 3 c3 t^2 +
    4 c4 t^3; each candidate is compared by its value. Returns 0.0 when no step lowers it.
    """
    c = np.asarray(c, dtype=np.float64)
    deriv = np.array([4 * c[4], 3 * c[3], 2 * c[2], c[1]])
    nz = np.flatnonzero(deriv)
    if nz.size == 0 or nz[0] == 3:  # constant or linear derivative without a root
        return 0.0
    roots = np.roots(deriv[nz[0]:])
    cand = [r.real for r in roots if r.real > 0 and abs(r.imag) <= 1e-7 * abs(r)]
    best_t, best = 0.0, 0.0
    for t in cand:
        # the change from c0, without c0: a decrease far below c0's last digit still counts
        change = t * (c[1] + t * (c[2] + t * (c[3] + t * c[4])))
        if change < best:
            best_t, best = t, change
    return float(best_t)


def _orthonormal_basis(U):
    return np.linalg.qr(U)[0]


def _subspace_change(Q_old, Q_new):
    """sin of the largest principal angle between span(Q_old) and span(Q_new) (orthonormal
    columns): ||(I - Q_new Q_new^T) Q_old||_2, accurate for tiny angles (unlike 1 - cos^2)."""
    return float(np.linalg.norm(Q_old - Q_new @ (Q_new.T @ Q_old), 2))


class _LineSearchCG:
    """Full-batch descent with an exact line search along a conjugate-gradient direction.

    Used by ``LinearAutoencoder`` with ``learning_rate="auto"``; ``coefficients(P)`` gives the
    quartic (12) along P at the point where the last gradient was taken (see the module's
    docstring for why every step lowers the objective).
    """

    def __init__(self, params, coefficients, momentum="auto", scale=None):
        self.params, self.coefficients, self.momentum = params, coefficients, momentum
        self.scale = scale if scale is not None else (lambda g: g)
        self.direction, self.g_prev, self.gs_prev, self.t = None, None, 0.0, 0
        self.lr = 0.0  # the last step length t*, for the curious

    def step(self, grads):
        g = {k: grads[k] for k in self.params}
        s = self.scale(g)                         # S(g): the (scaled) steepest direction
        gs = sum(np.vdot(g[k], s[k]) for k in g)  # <g, S(g)> > 0 unless g = 0
        self.t += 1
        if not gs > 0.0:  # a stationary point: nothing to do
            self.direction, self.lr = None, 0.0
            return
        if self.direction is None:
            beta = 0.0
        elif self.momentum == "auto":  # Polak-Ribiere, floored at 0 (PR+)
            beta = max(0.0, (gs - sum(np.vdot(self.g_prev[k], s[k]) for k in g)) / self.gs_prev)
        else:
            beta = float(self.momentum)
        P = {k: -s[k] + (beta * self.direction[k] if beta else 0.0) for k in g}
        # after an exact line search g is orthogonal to the previous direction, so the slope
        # is -<g, S(g)>; the test guards against rounding (and a fixed beta): restart
        if beta and sum(np.vdot(g[k], P[k]) for k in g) > -0.5 * gs:
            P = {k: -v for k, v in s.items()}
        self.lr = quartic_minimizer(self.coefficients(P))
        for k, p in self.params.items():
            p += self.lr * P[k]
        self.direction = P
        self.g_prev, self.gs_prev = {k: v.copy() for k, v in g.items()}, gs

    def state_dict(self):
        return {"t": np.array(self.t)}

    def load_state_dict(self, state):
        self.t = int(state["t"])


class _BoundedSGD(SGD):
    """SGD whose step is 1 / M_B, M_B the curvature bound (13) at the current factors."""

    def __init__(self, params, max_row_norm2, tied, momentum):
        super().__init__(params, lr=1.0, momentum=momentum)
        self.max_row_norm2, self.tied = max_row_norm2, tied

    def step(self, grads):
        norms2 = sum(np.vdot(p, p) for p in self.params.values())
        if self.tied:   # U = W^T and V = W: twice the untied bound with both norms = ||W||
            bound = 2.0 * self.max_row_norm2 * (1.0 + 3.0 * norms2)
        else:
            bound = self.max_row_norm2 * (1.0 + 1.5 * norms2)
        self.lr = 1.0 / bound if bound > 0 else 1.0
        super().step(grads)


class LinearAutoencoder(GradientModelMixin, BaseEstimator):
    """x_hat = U V (x - mean) + mean, trained by gradient descent on (7).

    With the defaults (full batch, ``learning_rate="auto"``) every epoch is one step along a
    conjugate-gradient direction with an exact line search on (7), so the objective never
    increases, and training stops once span(U) stops moving (see the module's docstring).

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
        "auto" with ``optimizer="sgd"``: full batch, the exact minimiser of (7) along each
        search direction (12); with mini-batches, 1 / M_B from the curvature bound (13),
        re-evaluated before every step; with Adam, 1e-3. The last step length is
        ``learning_rate_``. A number: a fixed step (which can diverge if too large).
    momentum : "auto" or float >= 0
        With ``learning_rate="auto"`` and full batch: the weight beta of the previous
        direction in the search direction -grad L + beta P_prev; "auto" is Polak-Ribiere's
        (nonlinear conjugate gradients). Otherwise SGD's heavy-ball momentum ("auto": 0 with
        the bound's step, 0.9 with a fixed step). Ignored by Adam.
    n_epochs : int >= 0
        The cap on the number of epochs; training usually stops earlier, on ``tol``.
    tol : float >= 0
        Stop once an epoch moves span(U) by less than ``tol`` (sin of the largest principal
        angle between the decoder's column spaces before and after the epoch). 0: run all
        ``n_epochs``.
    batch_size : int >= 1 or None
        None: full batch (one exact gradient step per epoch), the way to reach the closed
        form's subspace to many digits.
    random_state : None, int or Generator
        Initialisation (Glorot uniform for U and the tied W; the untied V starts at 0) and
        shuffling.
    verbose : bool

    Attributes
    ----------
    mean_ : (d,)  (zeros when ``center=False``)
    learning_rate_ : float  the (last) step size used
    U_ : (d, k)   decoder (a view of the live weights; for tied weights V_.T)
    V_ : (k, d)   encoder
    history_ : dict: "loss", the training objective (7) per epoch, and "subspace_change",
        the stopping rule's delta per epoch
    n_iter_ : int  the number of epochs run
    converged_ : bool  whether the stopping rule was met before the cap
    n_features_in_ : int
    """

    def __init__(self, n_components=2, *, tied=False, center=True, optimizer="sgd",
                 learning_rate="auto", momentum="auto", n_epochs=3000, tol=1e-7,
                 batch_size=None, random_state=None, verbose=False):
        self.n_components = n_components
        self.tied = tied
        self.center = center
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.n_epochs = n_epochs
        self.tol = tol
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose

    # -- the network --------------------------------------------------------------------------
    def _check_params(self):
        check_param("tied", self.tied, options=(True, False))
        check_param("center", self.center, options=(True, False))
        check_param("optimizer", self.optimizer, options=("sgd", "adam"))
        if not (isinstance(self.learning_rate, str) and self.learning_rate == "auto"):
            check_param("learning_rate", self.learning_rate, low=0.0, low_open=True)
        if not (isinstance(self.momentum, str) and self.momentum == "auto"):
            check_param("momentum", self.momentum, low=0.0)
        check_param("n_epochs", self.n_epochs, kind="int", low=0)
        check_param("tol", self.tol, low=0.0)
        if self.batch_size is not None:
            check_param("batch_size", self.batch_size, kind="int", low=1)
        check_param("verbose", self.verbose, options=(True, False))

    def _build(self, d, k, rng):
        self.encoder_ = Linear(d, k, bias=False, rng=rng)                 # h = V x
        self.decoder_ = (TiedLinear(self.encoder_, bias=False) if self.tied  # x_hat = U h
                         else Linear(k, d, bias=False, rng=rng))
        for layer in (self.encoder_, self.decoder_):
            layer.check_input = False  # the model validates once at its entry points
        self.encoder_.needs_input_grad = False  # its input is the data: no dL/dx to form

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
    def _objective_and_gradients(self, X, rng=None, need_grad=True):
        """The contract's hook: (7) of the batch X (rows already centred) and its gradients
        (8)-(10), the layers' backward passes; ``rng`` is unused (no noise)."""
        enc, dec = self.encoder_, self.decoder_
        h = enc.forward(X)
        x_hat = dec.forward(h)
        L = squared_error(x_hat, X)                          # (7)
        if not need_grad:
            return L, None
        enc.zero_grad()
        dec.zero_grad()
        r = squared_error_grad(x_hat, X)
        dh = dec.backward(r)                                 # (8); tied: decoder term of (10)
        enc.backward(dh)                                     # (9); tied: encoder term of (10)
        grads = ({"W": enc.grads["W"]} if self.tied
                 else {"U": dec.grads["W"], "V": enc.grads["W"]})
        self._last = (X, h, r, grads)  # what the line search (12) needs at this point
        return L, grads

    def _input(self, X, name="X"):
        """X validated and centred, as the hook takes it."""
        return self._validate(X, name) - self.mean_

    def _line_coefficients(self, P):
        """The coefficients (times 2n) of the quartic (12): the objective of the last batch
        along the direction P (keys of ``parameters()``) from the current point.

        Only k x k Gram matrices and two products with the data are formed (never R1, R2):
        with G = X P_V^T,
            ||R1||^2  = <H^T H, P_U^T P_U> + 2 <H^T G, P_U^T U> + <G^T G, U^T U>,
            <R, R2>   = <R P_U, G>,
            <R1, R2>  = <H^T G, P_U^T P_U> + <G^T G, U^T P_U>,
            ||R2||^2  = <G^T G, P_U^T P_U>,
        and c1 = 2n <grad L, P> from the gradients already computed.
        """
        X, H, r, grads = self._last          # r = R / n, the squared error's gradient
        n = X.shape[0]
        U = self.U_
        if self.tied:
            P_U, P_V = P["W"].T, P["W"]
        else:
            P_U, P_V = P["U"], P["V"]
        G = X @ P_V.T                                       # (n, k)
        HG2 = np.hstack([H, G])
        gram = HG2.T @ HG2                                  # one product for the three Grams
        k = H.shape[1]
        HH, HG, GG = gram[:k, :k], gram[:k, k:], gram[k:, k:]
        PP, PU = P_U.T @ P_U, P_U.T @ U
        c0 = n * n * np.vdot(r, r)
        c1 = 2 * n * sum(np.vdot(grads[k], P[k]) for k in P)
        c2 = (np.vdot(HH, PP) + 2 * np.vdot(HG, PU) + np.vdot(GG, U.T @ U)
              + 2 * n * np.vdot(r @ P_U, G))
        c3 = 2 * (np.vdot(HG, PP) + np.vdot(GG, PU.T))
        c4 = np.vdot(GG, PP)
        return np.array([c0, c1, c2, c3, c4])

    def _scaled_gradient(self, g):
        """S(g) = (g_U (V V^T)^{-1}, (U^T U)^{-1} g_V): each factor's gradient in the metric of
        the other factor (untied model; see the module's docstring)."""
        U, V = self.U_, self.V_
        k = V.shape[0]

        def solve(gram, b):
            trace = np.trace(gram)
            if not trace > 0:  # a zero factor (V at the start): its partner's gradient is 0
                return b
            # a ridge of 1e-12 of the mean eigenvalue keeps a rank-deficient factor usable
            return np.linalg.solve(gram + (1e-12 * trace / k) * np.eye(k), b)

        return {"U": solve(V @ V.T, g["U"].T).T, "V": solve(U.T @ U, g["V"])}

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Train U, V on the rows of X (y is ignored). Returns self."""
        X, _, rng = self._fit_start(X)
        check_n_samples(X, type(self).__name__)
        k = check_n_components(self.n_components, X)
        self.mean_ = X.mean(axis=0) if self.center else np.zeros(X.shape[1])
        Xc = X - self.mean_
        auto = isinstance(self.learning_rate, str)
        # (7) is homogeneous in X: training on Xc / s gives the same U, V (and the "auto"
        # steps are scale-free), so the data is brought to order 1 by an exact power of two,
        # which keeps huge or tiny data from overflowing or underflowing along the way
        top = float(np.abs(Xc).max()) if auto and Xc.size else 0.0
        scale = 2.0 ** np.round(np.log2(top)) if top > 0 else 1.0
        Xs = Xc / scale if scale != 1.0 else Xc
        self._build(X.shape[1], k, rng)
        if not self.tied:
            self.encoder_.params["W"][...] = 0.0  # V = 0: see "Initialisation" above
        params = self.parameters()
        batch = Xs.shape[0] if self.batch_size is None else min(self.batch_size, Xs.shape[0])
        full = batch >= Xs.shape[0]
        momentum = self.momentum
        if self.optimizer == "adam":
            opt = make_optimizer("adam", params, 1e-3 if auto else float(self.learning_rate))
        elif auto and full:
            opt = _LineSearchCG(params, self._line_coefficients, momentum,
                                None if self.tied else self._scaled_gradient)
        elif auto:
            max_row = float(np.max(np.einsum("ij,ij->i", Xs, Xs)))
            opt = _BoundedSGD(params, max_row, self.tied, 0.0 if momentum == "auto" else momentum)
        else:
            opt = make_optimizer("sgd", params, float(self.learning_rate),
                                 momentum=0.9 if momentum == "auto" else momentum)
        basis = [_orthonormal_basis(self.U_)]
        changes = []

        def settled(epoch, history):
            Q = _orthonormal_basis(self.U_)
            changes.append(_subspace_change(basis[0], Q))
            basis[0] = Q
            loss = history["loss"]
            # a fixed step that overshoots can blow U and V up along their own span: the
            # span stands still while the objective grows, which is not convergence
            # two epochs in a row: one step can move V alone and leave span(U) in place
            if (len(changes) >= 2 and max(changes[-2:]) < self.tol
                    and loss[-1] <= loss[-2]):
                self.converged_ = True
                return True     # fit_loop's documented way to stop training
            return False

        self.converged_ = False
        try:
            history = fit_loop(params, self._training_loss(rng), Xs, optimizer=opt,
                               n_epochs=self.n_epochs, batch_size=batch, rng=rng,
                               shuffle=not full, verbose=self.verbose,
                               desc=type(self).__name__, callback=settled,
                               owner=type(self).__name__)
        finally:
            self._last = None
        history["loss"] = [v * scale**2 for v in history["loss"]]
        history["subspace_change"] = changes
        self.history_ = history
        self.n_iter_ = len(history["loss"])
        self.learning_rate_ = float(opt.lr) / (scale**2 if auto and self.optimizer == "sgd" else 1)
        if not self.converged_ and self.n_epochs > 0 and self.tol > 0 and full:
            warnings.warn(f"{type(self).__name__} stopped at the cap n_epochs={self.n_epochs} "
                          f"before the decoder's subspace settled (last change "
                          f"{changes[-1]:.2g} > tol={self.tol:g}); raise n_epochs to train "
                          "further", ConvergenceWarning, stacklevel=2)
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
