"""Numba kernels of the sparse-coding solvers, each the twin of a NumPy function in
``npae.sparse_coding`` (the equations (1)-(7) are that module's; read it first).

``_fista_kernel`` is the twin of ``_fista_numpy`` and ``_cd_kernel`` of ``_cd_numpy``; the
helpers below them are twins of the NumPy helpers of the same name without ``_numpy``. The
kernels exploit the sparsity of z (H z costs m * nnz(z)) and run rows in parallel (Numba
``prange``), each row on one thread in a fixed order, so results do not depend on the thread
count. Their inputs are finite: ``npae.sparse_coding._solve_gram`` refuses anything else.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

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

