r"""Predictive Sparse Decomposition (PSD): a sparse-coding decoder with a fast predictor.

The lecture's slide "Predictive Sparse Decomposition", at training time::

    (1)  min over D, W, z of   ||D z - x||^2 + lam ||z||_1  +  ||sigma(W x) - z||^2
                               \__________ decoder ______/    \_____ encoder ____/

D (d, m) is a dictionary of m atoms (its columns d_j), z (m,) the sparse code of x (d,),
and h(x) = sigma(W x) the encoder's *prediction* of that code (W is (m, d)). At test time
the code costs one matrix product, h(x), instead of an iterative solve: that is the point.

Notation and conventions
------------------------
* The slide's objective is used exactly: no 1/2 factors. In npae.losses' convention
  (``squared_error`` = 1/2 ||x_hat - x||^2) the decoder term is 2 * squared_error(Dz, x).
* Reduction as everywhere in npae: sum over features, **mean over the batch**. For rows
  x^(t), z^(t), t = 1..n (X is (n, d), Z is (n, m); a row's reconstruction is D z, so the
  batch's is Z D^T)::

    (2)  E(D, W, Z) = (1/n) sum_t [ ||D z^(t) - x^(t)||^2 + lam ||z^(t)||_1
                                    + ||h(x^(t)) - z^(t)||^2 ]

* The encoder has a bias: a = W x + b, h = sigma(a). The slide's sigma(W x) is the special
  case b = 0 (or b folded into W by a constant input 1). The bias matters for a sigmoid: a
  sparse code is mostly 0, and sigma(Wx) can only get near 0 through a large negative Wx; a
  learned b < 0 gives every unit a cheap "off" state. ``encoder_bias=False`` fixes b = 0
  and gives the slide's form literally.
* ``encoder="sigmoid"`` is the lecture's sigma: h = sigm(a), a prediction in (0, 1).
  ``encoder="tanh"`` is Kavukcuoglu, Ranzato & LeCun (2008), "Fast inference in sparse
  coding algorithms with applications to object recognition": h = g * tanh(a) with a learned
  per-unit gain g (their diagonal matrix G), so the prediction can be negative and larger
  than 1. Their objective also weights the prediction term by alpha; the slide's alpha = 1
  is used here. Mind the scale with the sigmoid: with unit-norm atoms the optimal codes of
  [0, 1] images run to several units and can be negative, which sigm cannot predict (its
  relative code error stays near 1 on MNIST); the tanh with gain has no such limit.
* Training: mini-batches from ``npae.train.iterate_minibatches``, one block per batch.
  ``npae.train.fit_loop`` is not used on purpose: a block is three exact or line-searched
  minimisation steps in turn, with a projection, not one optimiser step on all parameters.

Alternating minimisation (one *block* per mini-batch; ``_block``)
-----------------------------------------------------------------
z-step, D and W fixed. Per row, minimise (1)'s z-part, convex in z::

    (3)  f(z) = ||D z - x||^2 + ||z - h||^2  (smooth)   +   lam ||z||_1  (non-smooth)

    (4)  grad f(z) = 2 D^T (D z - x) + 2 (z - h) = 2 (H z - c),   H = D^T D + I,  c = D^T x + h

The Hessian of f is 2H, so grad f is Lipschitz with constant

    (5)  L = 2 lambda_max(H) = 2 ||D||_2^2 + 2        (||D||_2: the largest singular value)

(||grad f(z) - grad f(z')|| = 2 ||H (z - z')|| <= 2 lambda_max(H) ||z - z'||.) With step 1/L
the quadratic upper bound of f is minimised, together with lam ||z||_1, by the proximal
step of ISTA, a soft-threshold S_t(v) = sign(v) max(|v| - t, 0):

    (6)  z <- S_{lam/L}( y - grad f(y) / L )

ISTA takes y = the previous z. FISTA (Beck & Teboulle, 2009) extrapolates,
y = z_k + (t_k - 1)/t_{k+1} (z_k - z_{k-1}), t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2, and
restarts the momentum (t = 1) whenever it points uphill, (y - z_{k+1}) . (z_{k+1} - z_k) > 0
(O'Donoghue & Candes, 2015). Everything is done in the Gram form (4): H and c are computed
once per solve, so an iteration costs O(m * nnz(z)) per row, independent of d.

Stopping: the duality gap. f + lam||.||_1 is a lasso with the stacked dictionary
[D; I] and target [x; h]; for theta = s r, r the stacked residual and
s = min(1, lam / (2 ||c - H z||_inf)), the dual value 2 s (||x||^2 + ||h||^2 - c.z) - s^2 ||r||^2
is a lower bound on the optimum, so stopping when gap <= tol * objective guarantees the
objective is within a factor (1 + tol) of the optimum. The solver returns the best iterate
it saw, so a warm start is never made worse. With the encoder term off (``h=None``:
H = D^T D, c = D^T x) the same code solves the plain lasso, which the benchmark compares
with scikit-learn.

Coordinate descent (``z_solver="cd"``, the default). In the Gram form, f(z) + lam ||z||_1 =
z.Hz - 2 c.z + k + lam ||z||_1. As a function of the one coordinate z_j, the others fixed,
with rho = c - H z the current residual of (4) (grad f = -2 rho)::

    F(z_j) = H_jj z_j^2 - 2 z_j (rho_j + H_jj z_j_old) + lam |z_j| + const

(the cross terms sum_{i != j} H_ji z_i - c_j equal -(rho_j + H_jj z_j_old)). Divided by
H_jj > 0 this is (z_j - v)^2 + (lam / H_jj) |z_j| + const with v = z_j_old + rho_j / H_jj,
whose minimiser is the soft-threshold at half the l1 weight (the quadratic has curvature 2,
not 1, so the threshold is lam / (2 H_jj), not lam / H_jj)::

    (10)  z_j <- S_{lam/(2 H_jj)}( z_j_old + rho_j / H_jj ) = S_{lam/2}( H_jj z_j_old + rho_j ) / H_jj

(the second form is the one computed). Each update is exact minimisation along a coordinate,
so the objective never increases; after a change by delta, H z is updated by delta * H[j]
(O(m)), and a coordinate that stays 0 costs O(1). (An atom d_j = 0 without the encoder
term has H_jj = 0 and no effect on the fit: its z_j is set to 0.) Cycling through all m
coordinates is a *full sweep*.

Active set, per row: a full sweep; then sweeps over the coordinates non-zero after it (the
active set A) until the lasso restricted to A meets the stopping rule; then a full sweep
again, which lets violators of the optimality conditions (|rho_j| > lam / 2 off A) in, and
the duality gap of the full problem is checked after it (on a freshly computed H z, so no
drift of the running H z can fake it). Because z vanishes off A, the restricted problem's
gap is the same function evaluated on the entries in A.

Exact steps. Sweeps converge slowly when the atoms in A are coherent (H_AA ill-conditioned:
a PSD dictionary learned on MNIST has condition numbers of thousands on a 100-atom support,
and CD then needs thousands of sweeps, as does scikit-learn's lasso_cd). Once a sweep has
left the signs s = sign(z_A) unchanged, the restricted objective with those signs is a
quadratic, z_A.H_AA z_A - 2 c_A.z_A + k + lam s.z_A, minimised by

    (11)  z*_A = H_AA^{-1} (c_A - (lam/2) s)          (Cholesky of H_AA)

Along the segment from z_A to z*_A the true objective equals that quadratic until the first
coordinate reaches 0, and the quadratic decreases all the way to z*_A: the step goes to
z*_A if no sign changes, else to the first zero, which leaves A (Lee, Battle, Raina & Ng,
2007, "feature-sign search"). It costs O(|A|^3), so it is taken only when the sweeps are
slow: when the gap's last reduction factor predicts more than |A|^2 / m further sweeps
(each O(|A| m)). A singular H_AA (possible without the encoder term when |A| > d) refuses
(11); sweeps alone then finish, slowly if lam is small. ``max_iter`` counts sweeps and
exact steps.

lam path (glmnet's pathwise warm starts; Friedman, Hastie & Tibshirani, 2010): from a
start where only a few atoms enter, the first full sweep at a small lam lets in nearly every
coherent atom, and removing them again costs hundreds of sweeps. So each row is first
solved loosely (gap <= 1e-2 E) at lam_1 = ||c - H z0||_inf (half the penalty that makes the
start optimal), lam_2 = lam_1 / 2, ..., until lam, and then at lam itself with the stopping
rule; supports grow a few atoms at a time. The answer's guarantee is the final stage's gap.
A start that already meets the stopping rule (a good warm start) still gets one full sweep:
the encoder's h has no zeros at all, and the sweep sets to exactly 0 every coordinate whose
optimum, given the others, is 0 (returned untouched, such a start would report no sparsity).

Rows are independent, so the kernel runs them in parallel (Numba ``prange``), each row on
one thread with the same operations in the same order whatever the thread count:
the result is bit-identical run to run.

D-step, Z fixed. Only the decoder term depends on D::

    (7)  grad_D (1/n) sum_t ||D z - x||^2 = (2/n) sum_t (D z - x) z^T = (2/n) R^T Z,   R = Z D^T - X

A step of 1/L_D, L_D = 2 lambda_max(Z^T Z) / n (the Lipschitz constant of (7) in D), then
every column is projected back to unit norm, d_j <- d_j / ||d_j||. Why: the objective is
unchanged by D -> D S, z -> S^{-1} z for any diagonal S > 0 except for lam ||z||_1, which
shrinks as S grows; without a norm constraint the optimiser drives ||z||_1 -> 0 by blowing
the atoms up, and the sparsity penalty stops meaning anything. (The convex unit-ball
constraint ||d_j|| <= 1 is equivalent at the optimum for every atom in use, by the same
scaling argument.) Normalising is a projection onto a non-convex set, so the step is
backtracked (halved) until the decoder term does not increase: the block never increases (2).

W-step, Z fixed. Only the encoder term depends on W (and b, g). With a = W x + b::

    (8)  sigmoid:  h = sigm(a),        delta = dE/da = (2/n) (h - z) * h (1 - h)
         tanh:     h = g * tanh(a),    delta = (2/n) (h - z) * g (1 - tanh(a)^2),
                                       dE/dg = (2/n) sum_t (h - z) * tanh(a)
         dE/dW = sum_t delta x^T = delta^T X (rows as samples),   dE/db = sum_t delta

(sigm'(a) = sigm(a)(1 - sigm(a)), tanh' = 1 - tanh^2.) A gradient step with Armijo
backtracking (the step halves until the encoder term decreases enough), so the W-step never
increases (2) either.

``objective(X)`` and ``gradients(X)``: z is a latent variable, not a parameter, so the loss of
the parameters is the objective at the optimal codes::

    (9)  loss(D, W) = (1/n) sum_t min_z E(x^(t), z)

The inner problem is strongly convex (Hessian 2H >= 2I), so its minimiser z* is unique and,
by Danskin's theorem, the gradient of (9) is the partial gradient of E at z = z* (the
dependence of z* on D, W does not contribute, because dE/dz = 0 there, in the subgradient
sense): gradients(X) returns (7) and (8) evaluated at z*. ``objective(X, Z)`` and
``objective_gradients(X, Z)`` give (2) and its gradients at any Z, including the smooth
part's gradient in Z, (4) / n.

Performance: the z-step's inner loops are Numba kernels (``_fista_kernel``, ``_cd_kernel``)
exploiting the sparsity of z (H z costs m * nnz(z)); ``_fista_numpy`` and ``_cd_numpy`` are
their plain-NumPy twins (same arithmetic; the FISTA twin vectorised over the batch, the CD
twin row by row and coordinate by coordinate, so it is slow), which the tests hold the
kernels to and which ``backend="numpy"`` selects. FISTA's iteration count grows with the
conditioning of the atoms in use: for incoherent (random) atoms it needs 10-30 iterations;
for coherent learned atoms (a PSD dictionary on MNIST) it needs hundreds to thousands and
loses to scikit-learn's lasso_cd, while "cd" beats lasso_cd on both (one thread, 1000 MNIST
rows, 256 atoms: time ratios 0.24 / 0.93 on random atoms at ~10 / ~100 non-zeros, 0.27 /
0.73 on learned ones; benchmarks/bench_psd.py). Hence ``z_solver="cd"`` is the default.
"""
from __future__ import annotations

import warnings

import numpy as np
from numba import njit, prange
from scipy.linalg import solve_triangular

from .._validation import as_float_array, check_param
from ..nn.activations import sigmoid
from ..train import iterate_minibatches
from .base import BaseEstimator, GradientModelMixin, check_is_fitted

__all__ = ["PredictiveSparseDecomposition", "PSD", "sparse_encode", "soft_threshold"]


def soft_threshold(v, t):
    """S_t(v) = sign(v) max(|v| - t, 0), the proximal operator of t ||.||_1."""
    return np.sign(v) * np.maximum(np.abs(v) - t, 0.0)


# --------------------------------------------------------------------------------------------
# z-step: ISTA / FISTA in Gram form, stopped by the duality gap
# --------------------------------------------------------------------------------------------

def _energy_and_gap_numpy(Z, U, C, k, lam, mu):
    """Per row: objective E = z.Hz - 2 c.z + k + lam ||z||_1 and an upper bound on E - E*.

    U = Z H. For lam > 0 the duality gap (module docstring); for lam = 0 (no l1 term) the
    smooth bound E - E* = rho^T H^{-1} rho <= ||rho||^2 / mu, rho = c - Hz, mu = lambda_min(H).
    """
    cz = np.einsum("ij,ij->i", C, Z)
    smooth = np.maximum(np.einsum("ij,ij->i", Z, U) - 2.0 * cz + k, 0.0)
    E = smooth + lam * np.abs(Z).sum(axis=1)
    rho = C - U
    if lam > 0:
        rho_inf = np.abs(rho).max(axis=1, initial=0.0)    # initial: CD's empty active set
        s = np.where(2.0 * rho_inf <= lam, 1.0, lam / (2.0 * np.maximum(rho_inf, 1e-300)))
        dual = 2.0 * s * (k - cz) - s * s * smooth
        gap = E - dual
    elif mu > 0:
        gap = np.einsum("ij,ij->i", rho, rho) / mu
    else:
        gap = np.full(len(E), np.inf)
    return E, gap


def _fista_numpy(H, C, k, Z0, lam, L, mu, tol, max_iter, accelerate):
    """Plain-NumPy twin of ``_fista_kernel``: every row of the batch at once.

    Rows that have met the stopping rule are frozen (no longer updated), exactly as the
    kernel stops its per-row loop. Returns (Z, n_iter) with Z the best iterate of each row.
    """
    n, m = C.shape
    step, thr = 2.0 / L, lam / L
    Z = Z0.copy()
    U = Z @ H
    E, _ = _energy_and_gap_numpy(Z, U, C, k, lam, mu)
    best, best_E = Z.copy(), E
    Y, HY = Z.copy(), U.copy()
    t = np.ones(n)
    n_iter = np.zeros(n, dtype=np.int64)
    active = np.arange(n)
    for it in range(1, max_iter + 1):
        if active.size == 0:
            break
        a = active
        Z_new = soft_threshold(Y[a] - step * (HY[a] - C[a]), thr)      # (6)
        U_new = Z_new @ H
        E_new, gap = _energy_and_gap_numpy(Z_new, U_new, C[a], k[a], lam, mu)
        better = E_new < best_E[a]
        best[a[better]] = Z_new[better]
        best_E[a[better]] = E_new[better]
        n_iter[a] = it
        done = gap <= tol * E_new
        if accelerate:
            dz = Z_new - Z[a]
            restart = np.einsum("ij,ij->i", Y[a] - Z_new, dz) > 0
            t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t[a] ** 2))
            beta = np.where(restart, 0.0, (t[a] - 1.0) / t_new)
            t[a] = np.where(restart, 1.0, t_new)
            Y[a] = Z_new + beta[:, None] * dz
            # H y is a combination of the H z's already computed: no extra product
            HY[a] = (1.0 + beta[:, None]) * U_new - beta[:, None] * U[a]
        else:
            Y[a], HY[a] = Z_new, U_new
        Z[a], U[a] = Z_new, U_new
        active = a[~done]
    return best, n_iter


@njit(cache=True)
def _sparse_matvec(H, z, u):
    """u = H z touching only the non-zeros of z (H symmetric: row j is column j)."""
    m = z.shape[0]
    for i in range(m):
        u[i] = 0.0
    for j in range(m):
        zj = z[j]
        if zj != 0.0:
            Hj = H[j]
            for i in range(m):
                u[i] += zj * Hj[i]


@njit(cache=True)
def _energy_and_gap(z, u, c, k, lam, mu):
    m = z.shape[0]
    cz = 0.0
    zu = 0.0
    l1 = 0.0
    rho_inf = 0.0
    rho2 = 0.0
    for i in range(m):
        cz += c[i] * z[i]
        zu += z[i] * u[i]
        l1 += abs(z[i])
        r = c[i] - u[i]
        rho2 += r * r
        if abs(r) > rho_inf:
            rho_inf = abs(r)
    smooth = max(zu - 2.0 * cz + k, 0.0)
    E = smooth + lam * l1
    if lam > 0:
        s = 1.0 if 2.0 * rho_inf <= lam else lam / (2.0 * rho_inf)
        gap = E - (2.0 * s * (k - cz) - s * s * smooth)
    elif mu > 0:
        gap = rho2 / mu
    else:
        gap = np.inf
    return E, gap


@njit(cache=True)
def _fista_kernel(H, C, k, Z0, lam, L, mu, tol, max_iter, accelerate, Z, n_iter):
    """Numba twin of ``_fista_numpy``, one row at a time, writing into Z and n_iter."""
    n, m = C.shape
    step = 2.0 / L
    thr = lam / L
    z = np.empty(m)
    z_new = np.empty(m)
    u = np.empty(m)
    u_new = np.empty(m)
    y = np.empty(m)
    hy = np.empty(m)
    for r in range(n):
        c = C[r]
        for i in range(m):
            z[i] = Z0[r, i]
        _sparse_matvec(H, z, u)
        best_E, _ = _energy_and_gap(z, u, c, k[r], lam, mu)
        for i in range(m):
            Z[r, i] = z[i]
            y[i] = z[i]
            hy[i] = u[i]
        t = 1.0
        it = 0
        while it < max_iter:
            it += 1
            for i in range(m):
                v = y[i] - step * (hy[i] - c[i])
                if v > thr:
                    z_new[i] = v - thr
                elif v < -thr:
                    z_new[i] = v + thr
                else:
                    z_new[i] = 0.0
            _sparse_matvec(H, z_new, u_new)
            E_new, gap = _energy_and_gap(z_new, u_new, c, k[r], lam, mu)
            if E_new < best_E:
                best_E = E_new
                for i in range(m):
                    Z[r, i] = z_new[i]
            if gap <= tol * E_new:
                break
            beta = 0.0
            if accelerate:
                dot = 0.0
                for i in range(m):
                    dot += (y[i] - z_new[i]) * (z_new[i] - z[i])
                t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
                if dot > 0:
                    t = 1.0
                else:
                    beta = (t - 1.0) / t_new
                    t = t_new
            for i in range(m):
                y[i] = z_new[i] + beta * (z_new[i] - z[i])
                hy[i] = (1.0 + beta) * u_new[i] - beta * u[i]
                z[i] = z_new[i]
                u[i] = u_new[i]
        n_iter[r] = it


# --------------------------------------------------------------------------------------------
# z-step: cyclic coordinate descent (10) with an active set and exact steps (11)
# --------------------------------------------------------------------------------------------

#: a Cholesky pivot below this fraction of its diagonal entry means H_AA is numerically
#: singular: the exact step (11) is skipped and coordinate descent carries on alone
_PIVOT_TOL = 1e-10
_STABLE_SWEEPS = 1
_PATH_RATIO = 0.5
_PATH_TOL = 1e-2
_ROUNDING = 1e-12


def _cd_diagonal(H):
    """H_jj and 1 / H_jj (0 where H_jj = 0: a zero atom, whose z_j (10) then sets to 0)."""
    diag = np.ascontiguousarray(np.diag(H))
    inv_diag = np.zeros_like(diag)
    np.divide(1.0, diag, out=inv_diag, where=diag > 0)
    return diag, inv_diag


def _cd_sweep_numpy(H, c, z, u, idx, lam, diag, inv_diag):
    """One cyclic pass of (10) over the coordinates idx, keeping u = H z up to date.
    Returns the largest |change| (0: z is a fixed point of the pass)."""
    max_delta = 0.0
    for j in idx:
        z_j = soft_threshold(diag[j] * z[j] + (c[j] - u[j]), 0.5 * lam) * inv_diag[j]   # (10)
        delta = z_j - z[j]
        if delta != 0.0:
            z[j] = z_j
            u += delta * H[j]
            max_delta = max(max_delta, abs(delta))
    return max_delta


def _exact_target_numpy(H, c, z, A, lam):
    """(11): z*_A = H_AA^{-1} (c_A - lam/2 sign(z_A)), or None if H_AA is numerically singular."""
    H_AA = H[np.ix_(A, A)]
    try:
        L = np.linalg.cholesky(H_AA)
    except np.linalg.LinAlgError:
        return None
    if np.any(np.diag(L) ** 2 <= _PIVOT_TOL * np.diag(H_AA)):
        return None
    y = solve_triangular(L, c[A] - 0.5 * lam * np.sign(z[A]), lower=True)
    return solve_triangular(L.T, y, lower=False)


def _exact_step_numpy(z_A, z_star):
    """From z_A towards z*_A, stopping where the first coordinate reaches 0 (there (11)'s
    sign pattern stops being the l1 term's): that coordinate is set to 0 exactly."""
    s = np.sign(z_A)
    crossing = np.flatnonzero(z_star * s <= 0)
    if crossing.size == 0:
        return z_star.copy()
    t = z_A[crossing] / (z_A[crossing] - z_star[crossing])
    first = crossing[np.argmin(t)]
    z_new = z_A + t.min() * (z_star - z_A)
    z_new[first] = 0.0
    z_new[z_new * s < 0] = 0.0          # a sign flipped by rounding alone
    return z_new


def _cd_solve_numpy(H, c, k, z, lam, mu, tol, max_iter, diag, inv_diag):
    """Full sweeps of (10) and active-set phases on one row z (in place) until the duality
    gap is at most tol * E. Returns (iterations, converged); iterations count sweeps and
    exact steps (11)."""
    m = z.shape[0]

    def energy_and_gap(z, u, c):
        E, gap = _energy_and_gap_numpy(z[None], u[None], c[None], np.array([k]), lam, mu)
        return E[0], gap[0]

    u = z @ H
    it, converged = 0, False
    while it < max_iter and not converged:
        moved = _cd_sweep_numpy(H, c, z, u, np.arange(m), lam, diag, inv_diag)
        it += 1
        u = z @ H                # fresh: the certificate never rests on drifted sums
        E, gap = energy_and_gap(z, u, c)
        converged = gap <= tol * E or moved == 0.0
        A = np.flatnonzero(z)
        exact, stable, gap_prev = True, 0, np.inf
        while not converged and it < max_iter:
            z_A = z[A].copy()
            E_A, gap_A = energy_and_gap(z_A, u[A], c[A])   # z = 0 off A: A's own lasso
            if gap_A <= tol * E_A:
                break
            it += 1
            slow = _sweeps_left(gap_A, gap_prev, tol * E_A) * m > A.size ** 2
            gap_prev = gap_A
            if exact and stable >= _STABLE_SWEEPS and slow:
                gap_prev = np.inf
                stable = 0
                z_star = _exact_target_numpy(H, c, z, A, lam)
                exact = z_star is not None
                if exact:
                    z[A] = _exact_step_numpy(z_A, z_star)
                    u = z @ H
                    E_new, _ = energy_and_gap(z, u, c)
                    if E_new > E_A + _ROUNDING * (abs(E_A) + k):
                        exact = False    # (11) inaccurate: H_AA ill-conditioned
                        z[A] = z_A
                        u = z @ H
                    kept = A[z[A] != 0]
                    if kept.size == A.size and E_new >= E_A:
                        exact = False    # no progress left in (11): sweeps finish
                    A = kept
                    continue
            if _cd_sweep_numpy(H, c, z, u, A, lam, diag, inv_diag) == 0.0:
                break
            stable = stable + 1 if np.array_equal(np.sign(z[A]), np.sign(z_A)) else 0
    return it, converged


def _cd_numpy(H, C, k, Z0, lam, mu, tol, max_iter):
    """Plain-NumPy twin of ``_cd_kernel``, row by row (slow: a Python loop per coordinate).

    Per row: the path lam_1 > lam_2 > ... > lam (each solved loosely from the previous
    answer), then lam itself to gap <= tol * E. Returns (Z, n_iter); a row no better than
    its start keeps Z0."""
    n, m = C.shape
    diag, inv_diag = _cd_diagonal(H)
    Z = Z0.copy()
    n_iter = np.zeros(n, dtype=np.int64)
    for r in range(n):
        z, c = Z[r], C[r]
        u = z @ H
        E0, gap = _energy_and_gap_numpy(z[None], u[None], c[None], k[r:r + 1], lam, mu)
        if gap[0] <= tol * E0[0]:
            # within tol already (a good warm start), yet one sweep still sets to exactly 0
            # every coordinate whose optimum given the others is 0: a warm start h from the
            # encoder has no zeros at all, and the codes are meant to be sparse
            _cd_sweep_numpy(H, c, z, u, np.arange(m), lam, diag, inv_diag)
            it = 1
        else:
            # the path (lam = 0 has none: the l1 term and its support problem are gone)
            lam_s = 2.0 * np.abs(c - u).max() * _PATH_RATIO if lam > 0 else 0.0
            it = 0
            while lam_s > lam and it < max_iter:
                it += _cd_solve_numpy(H, c, k[r], z, lam_s, mu, _PATH_TOL, max_iter - it,
                                      diag, inv_diag)[0]
                lam_s *= _PATH_RATIO
            it += _cd_solve_numpy(H, c, k[r], z, lam, mu, tol, max_iter - it, diag,
                                  inv_diag)[0]
        E, _ = _energy_and_gap_numpy(z[None], (z @ H)[None], c[None], k[r:r + 1], lam, mu)
        if E[0] > E0[0]:         # only rounding can do this: keep the warm start
            z[:] = Z0[r]
        n_iter[r] = it
    return Z, n_iter


@njit(cache=True)
def _sweeps_left(gap, gap_prev, target):
    """Sweeps still needed if the gap keeps shrinking by the last sweep's factor (inf if it
    did not shrink; 0 after an exact step or a full sweep, gap_prev = inf)."""
    if gap_prev == np.inf:
        return 0.0
    if gap >= gap_prev:
        return np.inf
    if gap <= target:
        return 0.0
    return np.log(target / gap) / np.log(gap / gap_prev)


@njit(cache=True)
def _cd_sweep(H, c, z, u, idx, n_idx, lam, diag, inv_diag):
    """Numba twin of ``_cd_sweep_numpy`` over idx[:n_idx]."""
    m = z.shape[0]
    thr = 0.5 * lam
    max_delta = 0.0
    for p in range(n_idx):
        j = idx[p]
        w = diag[j] * z[j] + (c[j] - u[j])
        if w > thr:
            z_j = (w - thr) * inv_diag[j]
        elif w < -thr:
            z_j = (w + thr) * inv_diag[j]
        else:
            z_j = 0.0
        delta = z_j - z[j]
        if delta != 0.0:
            z[j] = z_j
            Hj = H[j]
            for i in range(m):
                u[i] += delta * Hj[i]
            if abs(delta) > max_delta:
                max_delta = abs(delta)
    return max_delta


@njit(cache=True)
def _exact_target(H, c, z, idx, n_A, lam, M, z_star):
    """Numba twin of ``_exact_target_numpy`` into z_star[:n_A] (M: (m, m) scratch for the
    Cholesky factor of H_AA, row by row); False if H_AA is numerically singular."""
    for a in range(n_A):                # Cholesky, H_AA = L L^T, L in M's lower triangle
        i = idx[a]
        for b in range(a + 1):
            v = H[i, idx[b]]
            for p in range(b):
                v -= M[a, p] * M[b, p]
            if b < a:
                M[a, b] = v / M[b, b]
            elif v <= _PIVOT_TOL * H[i, i]:
                return False
            else:
                M[a, a] = np.sqrt(v)
    for a in range(n_A):                # L y = c_A - lam/2 sign(z_A)
        j = idx[a]
        v = c[j] - 0.5 * lam * np.sign(z[j])
        for p in range(a):
            v -= M[a, p] * z_star[p]
        z_star[a] = v / M[a, a]
    for a in range(n_A - 1, -1, -1):    # L^T z* = y
        v = z_star[a]
        for p in range(a + 1, n_A):
            v -= M[p, a] * z_star[p]
        z_star[a] = v / M[a, a]
    return True


@njit(cache=True)
def _exact_step(z, idx, n_A, z_star):
    """Numba twin of ``_exact_step_numpy``, in place on z's entries idx[:n_A]."""
    t = 1.0
    first = -1
    for a in range(n_A):
        z_a = z[idx[a]]
        if z_star[a] * np.sign(z_a) <= 0:
            t_a = z_a / (z_a - z_star[a])
            if first < 0 or t_a < t:
                t = t_a
                first = a
    for a in range(n_A):
        j = idx[a]
        if first < 0:
            z[j] = z_star[a]
        elif a == first:
            z[j] = 0.0
        else:
            v = z[j] + t * (z_star[a] - z[j])
            z[j] = 0.0 if v * np.sign(z[j]) < 0 else v


@njit(cache=True)
def _cd_solve(H, c, k, z, u, lam, mu, tol, max_iter, diag, inv_diag, work, M, idx):
    """Full sweeps, active-set phases, until gap <= tol * E; u = H z fresh on entry.
    Returns (iterations, converged)."""
    m = z.shape[0]
    z_A, u_A, c_A, z_star = work[2], work[3], work[4], work[5]
    everything = np.arange(m)
    it = 0
    converged = False
    while it < max_iter and not converged:
        moved = _cd_sweep(H, c, z, u, everything, m, lam, diag, inv_diag)
        it += 1
        _sparse_matvec(H, z, u)
        E, gap = _energy_and_gap(z, u, c, k, lam, mu)
        converged = gap <= tol * E or moved == 0.0
        n_A = 0
        for j in range(m):
            if z[j] != 0.0:
                idx[n_A] = j
                n_A += 1
        exact = True
        stable = 0
        gap_prev = np.inf
        while not converged and it < max_iter:
            for a in range(n_A):
                j = idx[a]
                z_A[a] = z[j]
                u_A[a] = u[j]
                c_A[a] = c[j]
            E_A, gap_A = _energy_and_gap(z_A[:n_A], u_A[:n_A], c_A[:n_A], k, lam, mu)
            if gap_A <= tol * E_A:
                break
            it += 1
            slow = _sweeps_left(gap_A, gap_prev, tol * E_A) * m > n_A * n_A
            gap_prev = gap_A
            if exact and stable >= _STABLE_SWEEPS and slow:
                gap_prev = np.inf
                stable = 0
                exact = _exact_target(H, c, z, idx, n_A, lam, M, z_star)
                if exact:
                    _exact_step(z, idx, n_A, z_star)
                    _sparse_matvec(H, z, u)
                    E_new, _ = _energy_and_gap(z, u, c, k, lam, mu)
                    if E_new > E_A + _ROUNDING * (abs(E_A) + k):
                        exact = False            # (11) inaccurate: H_AA ill-conditioned
                        for a in range(n_A):
                            z[idx[a]] = z_A[a]
                        _sparse_matvec(H, z, u)
                    n_kept = 0
                    for a in range(n_A):
                        if z[idx[a]] != 0.0:
                            idx[n_kept] = idx[a]
                            n_kept += 1
                    if n_kept == n_A and E_new >= E_A:
                        exact = False            # no progress left in (11): sweeps finish
                    n_A = n_kept
                    continue
            if _cd_sweep(H, c, z, u, idx, n_A, lam, diag, inv_diag) == 0.0:
                break
            stable += 1
            for a in range(n_A):
                if np.sign(z[idx[a]]) != np.sign(z_A[a]):
                    stable = 0
                    break
    return it, converged


@njit(cache=True)
def _cd_row(H, c, k, z, lam, mu, tol, max_iter, diag, inv_diag, work, M):
    """``_cd_numpy``'s loop for one row, in place on z; returns the iterations used.
    work: (6, m) scratch, M: (m, m) scratch."""
    m = z.shape[0]
    u, z0 = work[0], work[1]
    idx = np.empty(m, dtype=np.int64)
    for i in range(m):
        z0[i] = z[i]
    _sparse_matvec(H, z, u)
    E0, gap = _energy_and_gap(z, u, c, k, lam, mu)
    if gap <= tol * E0:
        # within tol already: one sweep for the exact zeros (see ``_cd_numpy``)
        for i in range(m):
            idx[i] = i
        _cd_sweep(H, c, z, u, idx, m, lam, diag, inv_diag)
        it = 1
    else:
        rho_inf = 0.0
        for i in range(m):
            rho_inf = max(rho_inf, abs(c[i] - u[i]))
        lam_s = 2.0 * rho_inf * _PATH_RATIO if lam > 0 else 0.0
        it = 0
        while lam_s > lam and it < max_iter:
            it_s, _ = _cd_solve(H, c, k, z, u, lam_s, mu, _PATH_TOL, max_iter - it, diag,
                                inv_diag, work, M, idx)
            it += it_s
            _sparse_matvec(H, z, u)
            lam_s *= _PATH_RATIO
        it_s, converged = _cd_solve(H, c, k, z, u, lam, mu, tol, max_iter - it, diag,
                                    inv_diag, work, M, idx)
        it += it_s
    _sparse_matvec(H, z, u)
    E, gap = _energy_and_gap(z, u, c, k, lam, mu)
    if E > E0:
        for i in range(m):
            z[i] = z0[i]
    return it


#: rows per parallel task: scratch (an (m, m) buffer) is allocated once per task
_CD_CHUNK = 8


@njit(cache=True, parallel=True)
def _cd_kernel(H, C, k, Z0, lam, mu, tol, max_iter, diag, inv_diag, Z, n_iter):
    """Numba twin of ``_cd_numpy``, rows in parallel (each row on one thread, independent of
    the others: bit-identical results for any thread count), writing into Z and n_iter."""
    n, m = C.shape
    n_chunks = (n + _CD_CHUNK - 1) // _CD_CHUNK
    for chunk in prange(n_chunks):
        work = np.empty((6, m))
        M = np.empty((m, m))
        for r in range(chunk * _CD_CHUNK, min(n, (chunk + 1) * _CD_CHUNK)):
            for i in range(m):
                Z[r, i] = Z0[r, i]
            n_iter[r] = _cd_row(H, C[r], k[r], Z[r], lam, mu, tol, max_iter, diag, inv_diag,
                                work, M)


def _gram_problem(X, D, h):
    """H, C, k of the z-step (4) for a batch:
    H = D^T D (+ I), C = X D (+ h), k = ||x||^2 (+ ||h||^2), the (+) with the encoder term."""
    H = D.T @ D
    C = X @ D
    k = np.einsum("ij,ij->i", X, X)
    if h is not None:
        H[np.diag_indices_from(H)] += 1.0
        C += h
        k += np.einsum("ij,ij->i", h, h)
    return H, C, k


def _solve_gram(H, C, k, Z0, lam, solver, tol, max_iter, backend):
    Z0 = np.ascontiguousarray(Z0)
    # the eigensolve (O(m^3)) gives FISTA's step (5) and, for lam = 0 only, the bound's mu;
    # CD needs no step, so with lam > 0 it skips it
    L, mu = 0.0, 0.0
    if solver != "cd" or lam == 0:
        eig = np.linalg.eigvalsh(H)
        L = 2.0 * max(float(eig[-1]), 1e-300)                              # (5)
        mu = float(eig[0]) if eig[0] > 1e-12 * eig[-1] else 0.0
    if backend == "numpy":
        if solver == "cd":
            return _cd_numpy(H, C, k, Z0, lam, mu, tol, max_iter)
        return _fista_numpy(H, C, k, Z0, lam, L, mu, tol, max_iter, solver == "fista")
    Z = np.empty_like(C)
    n_iter = np.empty(C.shape[0], dtype=np.int64)
    if solver == "cd":
        _cd_kernel(H, np.ascontiguousarray(C), k, Z0, float(lam), mu, float(tol),
                   int(max_iter), *_cd_diagonal(H), Z, n_iter)
    else:
        _fista_kernel(H, np.ascontiguousarray(C), k, Z0, float(lam), L, mu, float(tol),
                      int(max_iter), solver == "fista", Z, n_iter)
    return Z, n_iter


def sparse_encode(X, D, lam, h=None, *, Z0=None, solver="cd", tol=1e-6, max_iter=1000,
                  backend="numba", return_n_iter=False):
    """The z-step: for every row x of X, argmin_z ||D z - x||^2 + lam ||z||_1 (+ ||h - z||^2).

    X (n, d); D (d, m), the dictionary, atoms as columns; h (n, m), the encoder's prediction,
    or None to drop the encoder term (the plain lasso). Z0 (n, m) is the starting point
    (default: h, or zeros). ``solver`` "cd" (coordinate descent (10) with an active set),
    "fista" or "ista"; each stops when the duality gap is at most ``tol`` times the objective
    (so the objective is within a factor 1 + tol of the optimum) or after ``max_iter``
    iterations (sweeps for "cd"). ``backend`` "numba" (fast) or "numpy" (its
    readable twin). Returns Z (n, m) [and the iterations used per row].

    scikit-learn's ``sparse_encode(X, D.T, alpha=...)`` minimises 1/2 ||x - D z||^2 +
    alpha ||z||_1: the same minimiser as here with lam = 2 alpha.
    """
    X = as_float_array(X, "X", ndim=2, dtype=np.float64)
    D = as_float_array(D, "D", ndim=2, dtype=np.float64)
    if D.shape[0] != X.shape[1]:
        raise ValueError(f"D has shape {D.shape} but X has {X.shape[1]} features; D must be "
                         "(n_features, n_atoms), atoms as columns")
    check_param("lam", lam, low=0.0)
    check_param("solver", solver, options=("cd", "fista", "ista"))
    check_param("backend", backend, options=("numba", "numpy"))
    check_param("tol", tol, low=0.0)
    check_param("max_iter", max_iter, kind="int", low=1)
    n, m = X.shape[0], D.shape[1]
    if h is not None:
        h = as_float_array(h, "h", ndim=2, dtype=np.float64)
        if h.shape != (n, m):
            raise ValueError(f"h has shape {h.shape}, expected (n_samples, n_atoms) = {(n, m)}")
    if Z0 is None:
        Z0 = h.copy() if h is not None else np.zeros((n, m))
    else:
        Z0 = as_float_array(Z0, "Z0", ndim=2, dtype=np.float64)
        if Z0.shape != (n, m):
            raise ValueError(f"Z0 has shape {Z0.shape}, expected (n_samples, n_atoms) = {(n, m)}")
    H, C, k = _gram_problem(X, D, h)
    Z, n_iter = _solve_gram(H, C, k, Z0, float(lam), solver, tol, max_iter, backend)
    return (Z, n_iter) if return_n_iter else Z


# --------------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------------

class PredictiveSparseDecomposition(GradientModelMixin, BaseEstimator):
    """PSD (equation (1) of the module docstring) trained by alternating minimisation.

    Parameters
    ----------
    n_atoms : int >= 1
        m, the number of dictionary atoms (= code size = encoder units).
    lam : float >= 0
        The sparsity weight lam of (1).
    encoder : "sigmoid" | "tanh"
        h = sigm(W x + b) (the lecture's sigma; predictions in (0, 1)) or
        h = g * tanh(W x + b) with a learned gain g (Kavukcuoglu, Ranzato & LeCun, 2008).
    n_iter : int >= 1
        Epochs: passes over the data, one alternating block (z-, D-, W-step) per mini-batch.
    z_solver : "cd" | "fista" | "ista"
        The z-step's algorithm: coordinate descent (10) with an active set, or the proximal
        gradient methods (6). Same stopping rule, same optimum.
    batch_size : int >= 1
    z_tol, z_max_iter : the z-step's stopping rule (relative duality gap) and iteration cap.
    step_scale : float in (0, 1]
        The D-step's step is step_scale / L_D (1: the majoriser's exact step on the batch).
    encoder_bias : bool
        Learn the encoder bias b (True) or keep b = 0, the slide's sigma(W x) literally.
    dict_init : "data" | "random"
        Initial atoms: random training samples (normalised, plus 1% noise) or random
        Gaussian directions. Random atoms far from the data may never enter a code and then
        never move (their D-step gradient (7) is zero): "data" avoids such dead atoms.
    random_state : None, int or Generator
    verbose : bool
        Print the terms of the objective after each epoch.

    Attributes
    ----------
    components_ : (n_atoms, n_features), the atoms as rows (D = components_.T), unit norm.
    history_ : dict of per-epoch lists, means over the samples of the epoch, measured at each
        block's optimal z (before that block's D- and W-steps): "reconstruction"
        ||Dz - x||^2, "sparsity_penalty" lam ||z||_1, "prediction" ||h - z||^2, "objective"
        (their sum), "code_rel_error" ||h - z||_F / ||z||_F over the epoch (nan if every z
        was 0, which ``fit`` warns about: lam too large), "zero_fraction"
        of z, "z_iter" mean z-step iterations.
    n_iter_ : epochs run.  n_features_in_ : d.
    """

    def __init__(self, n_atoms=64, lam=0.5, encoder="sigmoid", n_iter=10, z_solver="cd",
                 batch_size=100, z_tol=1e-6, z_max_iter=500, step_scale=1.0,
                 encoder_bias=True, dict_init="data", random_state=None, verbose=False):
        self.n_atoms = n_atoms
        self.lam = lam
        self.encoder = encoder
        self.n_iter = n_iter
        self.z_solver = z_solver
        self.batch_size = batch_size
        self.z_tol = z_tol
        self.z_max_iter = z_max_iter
        self.step_scale = step_scale
        self.encoder_bias = encoder_bias
        self.dict_init = dict_init
        self.random_state = random_state
        self.verbose = verbose

    # -- hyper-parameters and parameters ------------------------------------------------------
    def _check_params(self):
        check_param("n_atoms", self.n_atoms, kind="int", low=1)
        check_param("lam", self.lam, low=0.0)
        check_param("encoder", self.encoder, options=("sigmoid", "tanh"))
        check_param("n_iter", self.n_iter, kind="int", low=1)
        check_param("z_solver", self.z_solver, options=("cd", "fista", "ista"))
        check_param("batch_size", self.batch_size, kind="int", low=1)
        check_param("z_tol", self.z_tol, low=0.0)
        check_param("z_max_iter", self.z_max_iter, kind="int", low=1)
        check_param("step_scale", self.step_scale, low=0.0, high=1.0, low_open=True)
        check_param("encoder_bias", self.encoder_bias, options=(True, False))
        check_param("dict_init", self.dict_init, options=("data", "random"))

    def _init_params(self, d, rng, X=None):
        m = self.n_atoms
        D = G = rng.standard_normal((d, m))
        if X is not None and self.dict_init == "data":
            # atoms start at random training samples (plus a little noise, so equal or zero
            # samples still give distinct atoms): every atom is used from the first z-step,
            # while random atoms far from the data can stay unused (all-zero codes) for ever
            D = 0.01 * np.linalg.norm(X, axis=1).mean() / np.sqrt(d) * D
            D += X[rng.choice(len(X), m, replace=len(X) < m)].T
        norms = np.linalg.norm(D, axis=0)
        # all-zero samples (or ones so tiny their squares underflow) give no direction:
        # such an atom starts as its random Gaussian direction instead (no division by 0)
        dead = ~(norms > 0)
        D[:, dead] = G[:, dead]
        norms[dead] = np.linalg.norm(G[:, dead], axis=0)
        D /= norms
        params = {"D": D, "W": rng.standard_normal((m, d)) * (0.1 / np.sqrt(d))}
        if self.encoder_bias:
            params["b"] = np.zeros(m)
        if self.encoder == "tanh":
            params["g"] = np.ones(m)
        return params

    def _restore_network(self):
        self._params = self._init_params(self.n_features_in_, np.random.default_rng(0))

    def parameters(self):
        """{"D": (d, m), "W": (m, d)[, "b": (m,)][, "g": (m,) for tanh]}, the live arrays."""
        check_is_fitted(self, "_params")
        return self._params

    @property
    def components_(self):
        check_is_fitted(self, "_params")
        return self._params["D"].T

    # -- the encoder h(x) and its derivative --------------------------------------------------
    def _encode(self, X, params=None):
        """(h, a, s): h the prediction, a = X W^T + b, s = sigm(a) or tanh(a)."""
        p = self._params if params is None else params
        a = X @ p["W"].T
        if "b" in p:
            a += p["b"]
        if self.encoder == "sigmoid":
            s = sigmoid(a)
            return s, a, s
        s = np.tanh(a)
        return p["g"] * s, a, s

    def _encoder_grads(self, X, Z, h, s, params):
        """(8): gradients of (1/n) sum ||h - z||^2 with respect to W, b (and g)."""
        n = X.shape[0]
        e = (2.0 / n) * (h - Z)
        if self.encoder == "sigmoid":
            delta = e * s * (1.0 - s)
            grads = {}
        else:
            delta = e * params["g"] * (1.0 - s * s)
            grads = {"g": (e * s).sum(axis=0)}
        grads["W"] = delta.T @ X
        if "b" in params:
            grads["b"] = delta.sum(axis=0)
        return grads

    # -- the objective (2) and its gradients --------------------------------------------------
    def _terms(self, X, Z, h):
        n = X.shape[0]
        R = Z @ self._params["D"].T - X
        E = h - Z
        return {"reconstruction": float(np.vdot(R, R) / n),
                "sparsity_penalty": float(self.lam * np.abs(Z).sum() / n),
                "prediction": float(np.vdot(E, E) / n)}

    def _check_codes(self, Z, n):
        Z = as_float_array(Z, "Z", ndim=2, dtype=np.float64)
        if Z.shape != (n, self.n_atoms):
            raise ValueError(f"Z has shape {Z.shape}, expected (n_samples, n_atoms) = "
                             f"{(n, self.n_atoms)}")
        return Z

    def objective(self, X, Z=None):
        """(2) at codes Z: the mean over rows of ||Dz - x||^2 + lam ||z||_1 + ||h(x) - z||^2.
        Without Z: (9), (2) at the optimal codes z*, whose gradients are ``gradients(X)``."""
        check_is_fitted(self, "_params")
        if Z is None:
            return self._loss_and_gradients(self._validate_data(X, reset=False))[0]
        X = self._validate_data(X, reset=False, dtype=np.float64)
        Z = self._check_codes(Z, X.shape[0])
        return sum(self._terms(X, Z, self._encode(X)[0]).values())

    def objective_gradients(self, X, Z):
        """Gradients of ``objective(X, Z)``: (7) for D, (8) for W, b (, g), and for Z the
        gradient of the smooth part, (4) / n = (2/n) [(Dz - x)^T D + (z - h)] row-wise (the
        l1 term adds lam sign(z) / n where z != 0; it has no gradient at 0)."""
        check_is_fitted(self, "_params")
        X = self._validate_data(X, reset=False, dtype=np.float64)
        Z = self._check_codes(Z, X.shape[0])
        return self._gradients_at(X, Z, with_z=True)

    def _gradients_at(self, X, Z, with_z=False):
        p = self._params
        n = X.shape[0]
        h, _, s = self._encode(X)
        R = Z @ p["D"].T - X
        grads = {"D": (2.0 / n) * R.T @ Z}                                   # (7)
        grads.update(self._encoder_grads(X, Z, h, s, p))                      # (8)
        if with_z:
            grads["Z"] = (2.0 / n) * (R @ p["D"] + (Z - h))                   # (4) / n
        return grads

    def _loss_and_gradients(self, X):
        """(9): the objective at the optimal codes z*, and its gradients (Danskin)."""
        check_is_fitted(self, "_params")
        X = np.asarray(X, dtype=np.float64)
        h = self._encode(X)[0]
        Z = self._z_step(X, h)
        return sum(self._terms(X, Z, h).values()), self._gradients_at(X, Z)

    # -- the three steps -----------------------------------------------------------------------
    def _z_step(self, X, h, Z0=None, tol=None):
        Z0 = h if Z0 is None else Z0
        H, C, k = _gram_problem(X, self._params["D"], h)
        Z, n_iter = _solve_gram(H, C, k, Z0, float(self.lam), self.z_solver,
                                self.z_tol if tol is None else tol, self.z_max_iter, "numba")
        self._last_z_iter = float(n_iter.mean())
        return Z

    def _d_step(self, X, Z):
        """(7), then unit-norm columns; the step halves until ||ZD^T - X||^2 does not grow."""
        D = self._params["D"]
        n = X.shape[0]
        R = Z @ D.T - X
        rec0 = np.vdot(R, R)
        grad = (2.0 / n) * R.T @ Z
        ZZ = Z.T @ Z if Z.shape[1] <= n else Z @ Z.T   # same non-zero eigenvalues
        L_D = 2.0 * float(np.linalg.eigvalsh(ZZ)[-1]) / n
        if L_D <= 0:   # all codes zero: D does not enter the objective
            return
        eta = self.step_scale / L_D
        for _ in range(30):
            D_new = D - eta * grad
            norms = np.linalg.norm(D_new, axis=0)
            ok = norms > 0
            D_new[:, ok] /= norms[ok]
            D_new[:, ~ok] = D[:, ~ok]   # an atom cannot vanish: keep the old one
            R_new = Z @ D_new.T - X
            if np.vdot(R_new, R_new) <= rec0:
                D[...] = D_new
                return
            eta *= 0.5

    def _w_step(self, X, Z):
        """(8) with Armijo backtracking on (1/n) sum ||h - z||^2 (never increases it)."""
        p = self._params
        h, _, s = self._encode(X)
        n = X.shape[0]
        enc0 = np.vdot(h - Z, h - Z) / n
        grads = self._encoder_grads(X, Z, h, s, p)
        g2 = sum(float(np.vdot(g, g)) for g in grads.values())
        if g2 == 0:
            return
        eta = 2.0 * self._eta_w
        for _ in range(40):
            trial = dict(p)
            for name, g in grads.items():
                trial[name] = p[name] - eta * g
            h_new = self._encode(X, trial)[0]
            if np.vdot(h_new - Z, h_new - Z) / n <= enc0 - 1e-4 * eta * g2:
                for name in grads:
                    p[name][...] = trial[name]
                self._eta_w = eta
                return
            eta *= 0.5
        self._eta_w = eta

    def _block(self, X, Z0=None):
        """One alternating block on the batch X: z-step (warm start Z0, default h), D-step,
        W-step. Returns (Z, h, terms at Z before the D- and W-steps)."""
        h = self._encode(X)[0]
        Z = self._z_step(X, h, Z0)
        terms = self._terms(X, Z, h)
        self._d_step(X, Z)
        self._w_step(X, Z)
        return Z, h, terms

    # -- public API ----------------------------------------------------------------------------
    def fit(self, X, y=None):
        self._check_params()
        X = self._validate_data(X, reset=True, dtype=np.float64)
        rng = np.random.default_rng(self.random_state)
        self._params = self._init_params(X.shape[1], rng, X)
        self._eta_w = 1.0
        keys = ("reconstruction", "sparsity_penalty", "prediction", "objective",
                "code_rel_error", "zero_fraction", "z_iter")
        self.history_ = {key: [] for key in keys}
        n = X.shape[0]
        warned = False
        for epoch in range(self.n_iter):
            acc = dict.fromkeys(keys, 0.0)
            err2 = z2 = 0.0
            for idx in iterate_minibatches(n, self.batch_size, rng):
                Xb = X[idx]
                Z, h, terms = self._block(Xb)
                w = len(idx) / n
                for key, v in terms.items():
                    acc[key] += w * v
                err2 += float(np.vdot(h - Z, h - Z))
                z2 += float(np.vdot(Z, Z))
                acc["zero_fraction"] += w * float(np.mean(Z == 0))
                acc["z_iter"] += w * self._last_z_iter
            acc["objective"] = acc["reconstruction"] + acc["sparsity_penalty"] + acc["prediction"]
            acc["code_rel_error"] = float(np.sqrt(err2 / z2)) if z2 > 0 else float("nan")
            if z2 == 0 and not warned:
                warned = True
                self._warn_all_codes_zero(Xb, h, epoch)
            for key in keys:
                self.history_[key].append(float(acc[key]))
            if self.verbose:
                print(f"epoch {epoch + 1}/{self.n_iter}: " + ", ".join(
                    f"{key} {acc[key]:.4g}" for key in keys))
        self.n_iter_ = self.n_iter
        return self

    def _warn_all_codes_zero(self, X, h, epoch):
        """Every z of an epoch was 0: D then gets no gradient (7) and learns nothing.

        z = 0 minimises (3) exactly when 0 is in its subdifferential there, i.e. when
        ||grad of the smooth part at 0||_inf = 2 ||D^T x + h||_inf <= lam for the row; so
        codes can be non-zero only for lam below the largest such value.
        """
        lam_max = 2.0 * float(np.abs(X @ self._params["D"] + h).max())
        warnings.warn(
            f"PredictiveSparseDecomposition: every code z was 0 in epoch {epoch + 1} "
            f"(lam={self.lam} is too large for this data: with z = 0 the dictionary gets no "
            f"gradient and learns nothing, and history_['code_rel_error'] is nan); codes "
            f"can be non-zero only for lam < 2 max |D^T x + h| = {lam_max:.4g} at the "
            f"current D and W (last batch); lower lam", RuntimeWarning, stacklevel=3)

    def transform(self, X):
        """The fast code: h(x) = sigm(W x + b) (or g tanh(W x + b)), one matrix product."""
        check_is_fitted(self, "_params")
        X = self._validate_data(X, reset=False, dtype=np.float64)
        return self._encode(X)[0]

    def sparse_code(self, X, encoder_term=True, tol=None):
        """The optimal codes z* by the z-step: of (1) with D, W fixed (``encoder_term=True``,
        the training-time z), or of the plain lasso ||Dz - x||^2 + lam ||z||_1 (False)."""
        check_is_fitted(self, "_params")
        X = self._validate_data(X, reset=False, dtype=np.float64)
        tol = self.z_tol if tol is None else check_param("tol", tol, low=0.0)
        h = self._encode(X)[0]
        return sparse_encode(X, self._params["D"], self.lam, h if encoder_term else None,
                             Z0=h, solver=self.z_solver, tol=tol, max_iter=self.z_max_iter)

    def inverse_transform(self, Z):
        """x_hat = D z for every row z of Z (Z D^T)."""
        check_is_fitted(self, "_params")
        Z = as_float_array(Z, "Z", ndim=2)
        if Z.shape[1] != self.n_atoms:
            raise ValueError(f"Z has {Z.shape[1]} columns, expected n_atoms = {self.n_atoms}")
        return Z @ self._params["D"].T


PSD = PredictiveSparseDecomposition
