"""The sparse-coding solvers of ``npae.sparse_coding``: Numba kernels first, then their
plain-NumPy twins (the equations (1)-(7) are that module's; read it first).

``_fista_kernel`` is the twin of ``_fista_numpy`` and ``_cd_kernel`` of ``_cd_numpy``; the
kernels' helpers are twins of the NumPy helpers of the same name with ``_numpy``. The
kernels exploit the sparsity of z (H z costs m * nnz(z)) and run rows in parallel (Numba
``prange``), each row on one thread in a fixed order, so results do not depend on the thread
count. Their inputs are finite: ``npae.sparse_coding.solve_gram`` refuses anything else.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular

from ._numba import njit, prange

#: a Cholesky pivot below this fraction of its diagonal entry means H_AA is numerically
#: singular: the exact step (7) is skipped and coordinate descent carries on alone
_PIVOT_TOL = 1e-10
#: sweeps with unchanged signs before an exact step (7) is tried
_STABLE_SWEEPS = 1
#: the lam path: each stage halves lam and is solved to a relative gap of _PATH_TOL
_PATH_RATIO = 0.5
_PATH_TOL = 1e-2
#: an exact step may raise the objective by this much relative rounding and still count
_ROUNDING = 1e-12


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
def _energy_and_gap(z, u, c, sq, lam, mu):
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
    smooth = max(zu - 2.0 * cz + sq, 0.0)
    E = smooth + lam * l1
    if lam > 0:
        s = 1.0 if 2.0 * rho_inf <= lam else lam / (2.0 * rho_inf)
        gap = E - (2.0 * s * (sq - cz) - s * s * smooth)
    elif mu > 0:
        gap = rho2 / mu
    else:
        gap = np.inf
    return E, gap


@njit(cache=True)
def _fista_kernel(H, C, sq, Z0, lam, lipschitz, mu, tol, max_iter, accelerate, Z, n_iter):
    """Numba twin of ``_fista_numpy``, one row at a time, writing into Z and n_iter."""
    n, m = C.shape
    step = 2.0 / lipschitz
    thr = lam / lipschitz
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
        best_E, _ = _energy_and_gap(z, u, c, sq[r], lam, mu)
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
            E_new, gap = _energy_and_gap(z_new, u_new, c, sq[r], lam, mu)
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



def _sweeps_left_numpy(gap, gap_prev, target):
    """Sweeps still needed if the gap keeps shrinking by the last sweep's factor (inf if it
    did not shrink; 0 after an exact step or a full sweep, gap_prev = inf)."""
    if gap_prev == np.inf:
        return 0.0
    if gap >= gap_prev:
        return np.inf
    if gap <= target:
        return 0.0
    return np.log(target / gap) / np.log(gap / gap_prev)


#: the same scalar function compiled, for the kernels (so it is its own twin)
_sweeps_left = njit(cache=True)(_sweeps_left_numpy)


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
    for a in range(n_A):                # Cholesky, H_AA = M M^T, in M's lower triangle
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
    for a in range(n_A):                # M y = c_A - lam/2 sign(z_A)
        j = idx[a]
        v = c[j] - 0.5 * lam * np.sign(z[j])
        for p in range(a):
            v -= M[a, p] * z_star[p]
        z_star[a] = v / M[a, a]
    for a in range(n_A - 1, -1, -1):    # M^T z* = y
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
def _cd_solve(H, c, sq, z, u, lam, mu, tol, max_iter, diag, inv_diag, work, M, idx):
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
        E, gap = _energy_and_gap(z, u, c, sq, lam, mu)
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
            E_A, gap_A = _energy_and_gap(z_A[:n_A], u_A[:n_A], c_A[:n_A], sq, lam, mu)
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
                    E_new, _ = _energy_and_gap(z, u, c, sq, lam, mu)
                    if E_new > E_A + _ROUNDING * (abs(E_A) + sq):
                        exact = False            # (7) inaccurate: H_AA ill-conditioned
                        for a in range(n_A):
                            z[idx[a]] = z_A[a]
                        _sparse_matvec(H, z, u)
                    n_kept = 0
                    for a in range(n_A):
                        if z[idx[a]] != 0.0:
                            idx[n_kept] = idx[a]
                            n_kept += 1
                    if n_kept == n_A and E_new >= E_A:
                        exact = False            # no progress left in (7): sweeps finish
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
def _cd_row(H, c, sq, z, lam, mu, tol, max_iter, diag, inv_diag, work, M):
    """``_cd_numpy``'s loop for one row, in place on z; returns the iterations used.
    work: (6, m) scratch, M: (m, m) scratch."""
    m = z.shape[0]
    u, z0 = work[0], work[1]
    idx = np.empty(m, dtype=np.int64)
    for i in range(m):
        z0[i] = z[i]
    _sparse_matvec(H, z, u)
    E0, gap = _energy_and_gap(z, u, c, sq, lam, mu)
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
            it_s, _ = _cd_solve(H, c, sq, z, u, lam_s, mu, _PATH_TOL, max_iter - it, diag,
                                inv_diag, work, M, idx)
            it += it_s
            _sparse_matvec(H, z, u)
            lam_s *= _PATH_RATIO
        it_s, converged = _cd_solve(H, c, sq, z, u, lam, mu, tol, max_iter - it, diag,
                                    inv_diag, work, M, idx)
        it += it_s
    _sparse_matvec(H, z, u)
    E, gap = _energy_and_gap(z, u, c, sq, lam, mu)
    if E > E0:
        for i in range(m):
            z[i] = z0[i]
    return it


#: rows per parallel task: scratch (an (m, m) buffer) is allocated once per task
_CD_CHUNK = 8


@njit(cache=True, parallel=True)
def _cd_kernel(H, C, sq, Z0, lam, mu, tol, max_iter, diag, inv_diag, Z, n_iter):
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
            n_iter[r] = _cd_row(H, C[r], sq[r], Z[r], lam, mu, tol, max_iter, diag, inv_diag,
                                work, M)


# ============================================================================================
# Plain-NumPy twins of the kernels above (``backend="numpy"``, and every call without Numba)
# ============================================================================================

def soft_threshold(v, t):
    """S_t(v) = sign(v) max(|v| - t, 0), the proximal operator of t ||.||_1.

    Thresholded entries are +0.0, as the kernels write them (sign(v) * 0 alone would give
    -0.0 for negative v; adding 0.0 turns -0.0 into +0.0 and changes nothing else)."""
    return np.sign(v) * np.maximum(np.abs(v) - t, 0.0) + 0.0


# --------------------------------------------------------------------------------------------
# The NumPy twins: ISTA / FISTA (4) in Gram form, stopped by the duality gap (5)
# --------------------------------------------------------------------------------------------

def _energy_and_gap_numpy(Z, U, C, sq, lam, mu):
    """Per row: objective E = z.Hz - 2 c.z + sq + lam ||z||_1 and an upper bound on E - E*.

    U = Z H. For lam > 0 the duality gap (module docstring); for lam = 0 (no l1 term) the
    smooth bound E - E* = rho^T H^{-1} rho <= ||rho||^2 / mu, rho = c - Hz, mu = lambda_min(H).
    """
    cz = np.einsum("ij,ij->i", C, Z)
    smooth = np.maximum(np.einsum("ij,ij->i", Z, U) - 2.0 * cz + sq, 0.0)
    E = smooth + lam * np.abs(Z).sum(axis=1)
    rho = C - U
    if lam > 0:
        rho_inf = np.abs(rho).max(axis=1, initial=0.0)    # initial: CD's empty active set
        s = np.where(2.0 * rho_inf <= lam, 1.0, lam / (2.0 * np.maximum(rho_inf, 1e-300)))
        dual = 2.0 * s * (sq - cz) - s * s * smooth
        gap = E - dual
    elif mu > 0:
        gap = np.einsum("ij,ij->i", rho, rho) / mu
    else:
        gap = np.full(len(E), np.inf)
    return E, gap


def _fista_numpy(H, C, sq, Z0, lam, lipschitz, mu, tol, max_iter, accelerate):
    """Plain-NumPy twin of ``_fista_kernel``: every row of the batch at once.

    Rows that have met the stopping rule are frozen (no longer updated), exactly as the
    kernel stops its per-row loop. Returns (Z, n_iter) with Z the best iterate of each row.
    """
    n, m = C.shape
    step, thr = 2.0 / lipschitz, lam / lipschitz
    Z = Z0.copy()
    U = Z @ H
    E, _ = _energy_and_gap_numpy(Z, U, C, sq, lam, mu)
    best, best_E = Z.copy(), E
    Y, HY = Z.copy(), U.copy()
    t = np.ones(n)
    n_iter = np.zeros(n, dtype=np.int64)
    active = np.arange(n)
    for it in range(1, max_iter + 1):
        if active.size == 0:
            break
        a = active
        Z_new = soft_threshold(Y[a] - step * (HY[a] - C[a]), thr)      # (4)
        U_new = Z_new @ H
        E_new, gap = _energy_and_gap_numpy(Z_new, U_new, C[a], sq[a], lam, mu)
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



# --------------------------------------------------------------------------------------------
# Cyclic coordinate descent (6) with an active set and exact steps (7)
# --------------------------------------------------------------------------------------------

def _cd_diagonal(H):
    """H_jj and 1 / H_jj (0 where H_jj = 0: a zero atom, whose z_j (6) then sets to 0)."""
    diag = np.ascontiguousarray(np.diag(H))
    inv_diag = np.zeros_like(diag)
    np.divide(1.0, diag, out=inv_diag, where=diag > 0)
    return diag, inv_diag


def _cd_sweep_numpy(H, c, z, u, idx, lam, diag, inv_diag):
    """One cyclic pass of (6) over the coordinates idx, keeping u = H z up to date.
    Returns the largest |change| (0: z is a fixed point of the pass)."""
    max_delta = 0.0
    for j in idx:
        z_j = soft_threshold(diag[j] * z[j] + (c[j] - u[j]), 0.5 * lam) * inv_diag[j]   # (6)
        delta = z_j - z[j]
        if delta != 0.0:
            z[j] = z_j
            u += delta * H[j]
            max_delta = max(max_delta, abs(delta))
    return max_delta


def _exact_target_numpy(H, c, z, A, lam):
    """(7): z*_A = H_AA^{-1} (c_A - lam/2 sign(z_A)), or None if H_AA is numerically singular."""
    H_AA = H[np.ix_(A, A)]
    try:
        chol = np.linalg.cholesky(H_AA)
    except np.linalg.LinAlgError:
        return None
    if np.any(np.diag(chol) ** 2 <= _PIVOT_TOL * np.diag(H_AA)):
        return None
    y = solve_triangular(chol, c[A] - 0.5 * lam * np.sign(z[A]), lower=True)
    return solve_triangular(chol.T, y, lower=False)


def _exact_step_numpy(z_A, z_star):
    """From z_A towards z*_A, stopping where the first coordinate reaches 0 (there (7)'s
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


def _cd_solve_numpy(H, c, sq, z, lam, mu, tol, max_iter, diag, inv_diag):
    """Full sweeps of (6) and active-set phases on one row z (in place) until the duality
    gap is at most tol * E. Returns (iterations, converged); iterations count sweeps and
    exact steps (7)."""
    m = z.shape[0]

    def energy_and_gap(z, u, c):
        E, gap = _energy_and_gap_numpy(z[None], u[None], c[None], np.array([sq]), lam, mu)
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
            slow = _sweeps_left_numpy(gap_A, gap_prev, tol * E_A) * m > A.size ** 2
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
                    if E_new > E_A + _ROUNDING * (abs(E_A) + sq):
                        exact = False    # (7) inaccurate: H_AA ill-conditioned
                        z[A] = z_A
                        u = z @ H
                    kept = A[z[A] != 0]
                    if kept.size == A.size and E_new >= E_A:
                        exact = False    # no progress left in (7): sweeps finish
                    A = kept
                    continue
            if _cd_sweep_numpy(H, c, z, u, A, lam, diag, inv_diag) == 0.0:
                break
            stable = stable + 1 if np.array_equal(np.sign(z[A]), np.sign(z_A)) else 0
    return it, converged


def _cd_numpy(H, C, sq, Z0, lam, mu, tol, max_iter):
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
        E0, gap = _energy_and_gap_numpy(z[None], u[None], c[None], sq[r:r + 1], lam, mu)
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
                it += _cd_solve_numpy(H, c, sq[r], z, lam_s, mu, _PATH_TOL, max_iter - it,
                                      diag, inv_diag)[0]
                lam_s *= _PATH_RATIO
            it += _cd_solve_numpy(H, c, sq[r], z, lam, mu, tol, max_iter - it, diag,
                                  inv_diag)[0]
        E, _ = _energy_and_gap_numpy(z[None], (z @ H)[None], c[None], sq[r:r + 1], lam, mu)
        if E[0] > E0[0]:         # only rounding can do this: keep the warm start
            z[:] = Z0[r]
        n_iter[r] = it
    return Z, n_iter
