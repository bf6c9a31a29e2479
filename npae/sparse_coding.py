r"""Sparse coding: the lasso with an optional prediction term, solved row by row.

For a dictionary D (d, m) of m atoms (its columns d_j), a sample x (d,) and optionally a
prediction h (m,) of its code, the sparse code is

    (1)  z* = argmin_z  ||D z - x||^2 + lam ||z||_1  [ + ||z - h||^2 ]

the z-step of Predictive Sparse Decomposition (``npae.models.psd``), and with the bracket
dropped (``h=None``) the plain lasso of sparse coding. ``sparse_encode`` is the public entry;
it needs no model. Everything below works on one row at a time (rows are independent).

Gram form. With f(z) the smooth part of (1),

    (2)  grad f(z) = 2 D^T (D z - x) [+ 2 (z - h)] = 2 (H z - c),
         H = D^T D [+ I],   c = D^T x [+ h],   sq = ||x||^2 [+ ||h||^2]

and f(z) = z.Hz - 2 c.z + sq. H and c are computed once per solve, so an iteration costs
O(m * nnz(z)) per row, independent of d. The Hessian of f is 2H, so grad f is Lipschitz with

    (3)  lipschitz = 2 lambda_max(H) = 2 ||D||_2^2 [+ 2]        (||D||_2: largest singular value)

ISTA / FISTA (``solver="ista"``, ``"fista"``). With step 1/lipschitz the quadratic upper bound
of f is minimised, together with lam ||z||_1, by the proximal step, a soft-threshold
S_t(v) = sign(v) max(|v| - t, 0):

    (4)  z <- S_{lam/lipschitz}( y - grad f(y) / lipschitz )

ISTA takes y = the previous z. FISTA (Beck & Teboulle, 2009) extrapolates,
y = z_i + (t_i - 1)/t_{i+1} (z_i - z_{i-1}), t_{i+1} = (1 + sqrt(1 + 4 t_i^2)) / 2 (i counts
iterations), and restarts the momentum (t = 1) whenever it points uphill,
(y - z_{i+1}) . (z_{i+1} - z_i) > 0
(O'Donoghue & Candes, 2015).

Stopping: the duality gap. (1) is a lasso with the stacked dictionary [D; I] and target
[x; h]; for theta = s r, r the stacked residual and s = min(1, lam / (2 ||c - H z||_inf)),

    (5)  dual(z) = 2 s (sq - c.z) - s^2 ||r||^2  <=  min (1)

so stopping when gap = E(z) - dual(z) <= tol * E(z) guarantees the objective is within a
factor (1 + tol) of the optimum. (lam = 0: the smooth bound E - E* <= ||c - Hz||^2 / mu, mu =
lambda_min(H).) The solvers return the best iterate they saw, so a warm start is never made
worse.

Coordinate descent (``solver="cd"``, the default). As a function of one coordinate z_j, the
others fixed, with rho = c - H z the current residual of (2) (grad f = -2 rho), the objective
is H_jj z_j^2 - 2 z_j (rho_j + H_jj z_j_old) + lam |z_j| + const. Divided by H_jj > 0 it is
(z_j - v)^2 + (lam / H_jj) |z_j| + const with v = z_j_old + rho_j / H_jj, whose minimiser is
the soft-threshold at half the l1 weight (the quadratic has curvature 2, not 1)::

    (6)  z_j <- S_{lam/(2 H_jj)}( z_j_old + rho_j / H_jj ) = S_{lam/2}( H_jj z_j_old + rho_j ) / H_jj

(the second form is the one computed). Each update is exact minimisation along a coordinate,
so the objective never increases; after a change by delta, H z is updated by delta * H[j]
(O(m)), and a coordinate that stays 0 costs O(1). (An atom d_j = 0 without the prediction
term has H_jj = 0 and no effect on the fit: its z_j is set to 0.) Cycling through all m
coordinates is a *full sweep*.

Active set, per row: a full sweep; then sweeps over the coordinates non-zero after it (the
active set A) until the lasso restricted to A meets the stopping rule; then a full sweep
again, which lets violators of the optimality conditions (|rho_j| > lam / 2 off A) in, and
the duality gap of the full problem is checked after it (on a freshly computed H z, so no
drift of the running H z can fake it).

Exact steps. Sweeps converge slowly when the atoms in A are coherent (H_AA ill-conditioned:
a PSD dictionary learned on MNIST has condition numbers of thousands on a 100-atom support).
Once a sweep has left the signs s = sign(z_A) unchanged, the restricted objective with those
signs is a quadratic, minimised by

    (7)  z*_A = H_AA^{-1} (c_A - (lam/2) s)          (Cholesky of H_AA)

Along the segment from z_A to z*_A the true objective equals that quadratic until the first
coordinate reaches 0: the step goes to z*_A if no sign changes, else to the first zero,
which leaves A (Lee, Battle, Raina & Ng, 2007, "feature-sign search"). It costs O(|A|^3), so
it is taken only when the sweeps are slow: when the gap's last reduction factor predicts
more than |A|^2 / m further sweeps. A numerically singular H_AA refuses (7); sweeps alone
then finish. ``max_iter`` counts sweeps and exact steps.

lam path (glmnet's pathwise warm starts; Friedman, Hastie & Tibshirani, 2010): each row is
first solved loosely (gap <= 1e-2 E) at lam_1 = ||c - H z0||_inf, lam_2 = lam_1 / 2, ...,
until lam, then at lam itself with the stopping rule; supports grow a few atoms at a time.
A start that already meets the stopping rule (a good warm start) still gets one full sweep,
which sets to exactly 0 every coordinate whose optimum, given the others, is 0 (a
prediction h has no zeros at all).

Kernels and twins. The loops run as Numba kernels in ``npae.sparse_coding_kernels``, beside
their plain-NumPy twins (``_fista_numpy``: every row of the batch at once; ``_cd_numpy``: row
by row, coordinate by coordinate, slow but readable), which the tests hold the kernels to,
which ``backend="numpy"`` selects, and which run whenever Numba is off (``npae._numba``).
The kernels run rows in parallel, each row on one thread with the same operations in the
same order whatever the thread count, so results are bit-identical run to run. Why "cd" is the default (FISTA's iteration
count grows with the coherence of the atoms in use; CD's exact steps do not) is measured in
``benchmarks/bench_psd.py``.
"""
from __future__ import annotations

import numpy as np

from ._numba import NUMBA_ENABLED
from ._validation import as_float_array, check_param
from .sparse_coding_kernels import (_cd_diagonal, _cd_kernel, _cd_numpy, _fista_kernel,
                                    _fista_numpy, soft_threshold)

__all__ = ["sparse_encode", "soft_threshold", "gram_problem", "solve_gram"]


# --------------------------------------------------------------------------------------------
# The public entry
# --------------------------------------------------------------------------------------------

def gram_problem(X, D, h):
    """H, C, sq of the Gram form (2) for a batch:
    H = D^T D (+ I), C = X D (+ h), sq = ||x||^2 (+ ||h||^2), the (+) with the encoder term."""
    H = D.T @ D
    C = X @ D
    sq = np.einsum("ij,ij->i", X, X)
    if h is not None:
        H[np.diag_indices_from(H)] += 1.0
        C += h
        sq += np.einsum("ij,ij->i", h, h)
    return H, C, sq


def solve_gram(H, C, sq, Z0, lam, solver, tol, max_iter, backend):
    # finite inputs can still overflow here (atoms or samples near 1e154 square to inf);
    # the solvers assume finite numbers, so say so instead of returning garbage
    for name, v in (("D^T D", H), ("D^T x (+ h)", C), ("||x||^2 (+ ||h||^2)", sq)):
        if not np.isfinite(v).all():
            raise ValueError(f"sparse coding: {name} overflowed to inf or NaN; the data or the "
                             "dictionary is too large in magnitude (squares must stay below "
                             "1.8e308): rescale X, D (or h) first, e.g. to unit scale")
    Z0 = np.ascontiguousarray(Z0)
    # the eigensolve (O(m^3)) gives FISTA's step (3) and, for lam = 0 only, the bound's mu;
    # CD needs no step, so with lam > 0 it skips it
    lipschitz, mu = 0.0, 0.0
    if solver != "cd" or lam == 0:
        eig = np.linalg.eigvalsh(H)
        lipschitz = 2.0 * max(float(eig[-1]), 1e-300)                              # (3)
        mu = float(eig[0]) if eig[0] > 1e-12 * eig[-1] else 0.0
    if backend == "numpy" or not NUMBA_ENABLED:
        if solver == "cd":
            return _cd_numpy(H, C, sq, Z0, lam, mu, tol, max_iter)
        return _fista_numpy(H, C, sq, Z0, lam, lipschitz, mu, tol, max_iter, solver == "fista")
    Z = np.empty_like(C)
    n_iter = np.empty(C.shape[0], dtype=np.int64)
    if solver == "cd":
        _cd_kernel(H, np.ascontiguousarray(C), sq, Z0, float(lam), mu, float(tol),
                   int(max_iter), *_cd_diagonal(H), Z, n_iter)
    else:
        _fista_kernel(H, np.ascontiguousarray(C), sq, Z0, float(lam), lipschitz, mu, float(tol),
                      int(max_iter), solver == "fista", Z, n_iter)
    return Z, n_iter


def sparse_encode(X, D, lam, h=None, *, Z0=None, solver="cd", tol=1e-6, max_iter=1000,
                  backend="numba", return_n_iter=False):
    """(1) for every row x of X: argmin_z ||D z - x||^2 + lam ||z||_1 (+ ||h - z||^2).

    X (n, d); D (d, m), the dictionary, atoms as columns; h (n, m), the encoder's prediction,
    or None to drop the encoder term (the plain lasso). Z0 (n, m) is the starting point
    (default: h, or zeros). ``solver`` "cd" (coordinate descent (6) with an active set),
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
    H, C, sq = gram_problem(X, D, h)
    Z, n_iter = solve_gram(H, C, sq, Z0, float(lam), solver, tol, max_iter, backend)
    return (Z, n_iter) if return_n_iter else Z

