"""Sparse coding on its own (no PSD model): the z-step's optimality, agreement with
independent lasso solvers (scikit-learn, SciPy), the Numba kernels against their NumPy twins,
and determinism across thread counts."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize

from npae._numba import NUMBA_ENABLED
from npae.sparse_coding import gram_problem, solve_gram, soft_threshold, sparse_encode
from npae.sparse_coding_kernels import (_cd_diagonal, _cd_kernel, _cd_numpy, _fista_kernel,
                                        _fista_numpy)



def _require_kernels():
    if not NUMBA_ENABLED:
        pytest.skip("holds a Numba kernel to its twin; Numba is off here (npae._numba), so "
                    "every path is the twin")


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------

def _digits(n, seed=0):
    """Real-looking digit images, (n, d) in [0, 1]: npae's synthetic digits (28x28) if
    available, else scikit-learn's 8x8 optdigits scans."""
    try:
        from npae.data import synthetic_digits
    except ImportError:
        from sklearn.datasets import load_digits
        X = load_digits().data / 16.0
        return X[np.random.default_rng(seed).permutation(len(X))[:n]]
    return synthetic_digits(n, seed=seed)[0].reshape(n, -1)


def _unit_dictionary(d, m, rng):
    D = rng.standard_normal((d, m))
    return D / np.linalg.norm(D, axis=0)


def _lasso_objective(X, D, Z, lam, h=None):
    """Per-row objective of the z-step, computed directly (not from the Gram form)."""
    R = Z @ D.T - X
    E = (R * R).sum(axis=1) + lam * np.abs(Z).sum(axis=1)
    if h is not None:
        E += ((Z - h) ** 2).sum(axis=1)
    return E


@pytest.fixture(scope="module")
def small_digits():
    X = _digits(200, seed=1)
    return X


# ---------------------------------------------------------------------------------------------
# z-step
# ---------------------------------------------------------------------------------------------

def test_soft_threshold_values():
    v = np.array([-3.0, -0.5, 0.0, 0.2, 2.5])
    np.testing.assert_array_equal(soft_threshold(v, 1.0), [-2.0, 0.0, 0.0, 0.0, 1.5])


@pytest.mark.parametrize("with_h", [False, True])
@pytest.mark.parametrize("solver", ["cd", "fista", "ista"])
def test_z_step_optimality_conditions(small_digits, rng, with_h, solver):
    """KKT of min_z f(z) + lam ||z||_1: grad f = -lam sign(z) on the support, |grad f| <= lam
    off it. Solved to a relative duality gap of 1e-13 the residual is ~1e-9 * lam; the
    tolerance is 1e-6 * lam."""
    X = small_digits[:40]
    D = _unit_dictionary(X.shape[1], 48, rng)
    lam = 0.8
    h = rng.uniform(0, 1, (len(X), 48)) if with_h else None
    Z = sparse_encode(X, D, lam, h, solver=solver, tol=1e-13, max_iter=20000)
    grad = 2 * (Z @ D.T - X) @ D + (2 * (Z - h) if with_h else 0.0)   # (4), computed directly
    on = Z != 0
    assert on.any() and (~on).any()
    err_on = np.abs(grad[on] + lam * np.sign(Z[on])).max()
    excess_off = max(np.abs(grad[~on]).max() - lam, 0.0)
    assert err_on <= 1e-6 * lam, f"on-support KKT residual {err_on:.2e}"
    assert excess_off <= 1e-6 * lam, f"off-support KKT excess {excess_off:.2e}"


@pytest.mark.parametrize("algorithm", ["lasso_cd", "lasso_lars"])
def test_z_step_matches_sklearn_without_encoder_term(small_digits, rng, algorithm):
    """Encoder term removed, the z-step is the lasso; scikit-learn minimises
    1/2 ||x - zD||^2 + alpha ||z||_1, i.e. ours / 2 with lam = 2 alpha. Both solvers stop at
    relative accuracy ~1e-8 or better: objectives agree to 1e-7, codes to 1e-4."""
    from sklearn.decomposition import sparse_encode as sk_sparse_encode
    X = small_digits[:60]
    D = _unit_dictionary(X.shape[1], 40, rng)
    alpha = 0.3
    Z_sk = sk_sparse_encode(X, D.T, algorithm=algorithm, alpha=alpha, max_iter=5000)
    Z = sparse_encode(X, D, 2 * alpha, tol=1e-12, max_iter=20000)
    E, E_sk = _lasso_objective(X, D, Z, 2 * alpha), _lasso_objective(X, D, Z_sk, 2 * alpha)
    assert np.count_nonzero(Z) > 0
    assert np.all(E <= E_sk * (1 + 1e-7)), np.max(E / E_sk - 1)
    np.testing.assert_allclose(E.sum(), E_sk.sum(), rtol=1e-7)
    np.testing.assert_allclose(Z, Z_sk, atol=1e-4)


def test_z_step_with_encoder_term_matches_scipy(rng):
    """With the encoder term, an independent solution: the smooth reformulation
    z = u - v, u, v >= 0, min f(u - v) + lam 1^T (u + v), by L-BFGS-B (scipy)."""
    X = _digits(3, seed=5)
    d = X.shape[1]
    m = 24
    D = _unit_dictionary(d, m, rng)
    h = rng.uniform(0, 1, (3, m))
    lam = 0.6
    Z = sparse_encode(X, D, lam, h, tol=1e-13, max_iter=20000)
    for x, hz, z in zip(X, h, Z):
        def fun(uv):
            u, v = uv[:m], uv[m:]
            zz = u - v
            r = D @ zz - x
            g = 2 * D.T @ r + 2 * (zz - hz)
            value = r @ r + (zz - hz) @ (zz - hz) + lam * uv.sum()
            return value, np.concatenate([g + lam, -g + lam])
        res = minimize(fun, np.zeros(2 * m), jac=True, method="L-BFGS-B",
                       bounds=[(0, None)] * (2 * m), options={"ftol": 1e-15, "gtol": 1e-12,
                                                              "maxiter": 10000})
        z_ref = res.x[:m] - res.x[m:]
        E_ref = _lasso_objective(x[None], D, z_ref[None], lam, hz[None])[0]
        E = _lasso_objective(x[None], D, z[None], lam, hz[None])[0]
        assert E <= E_ref * (1 + 1e-10)        # ours is at least as good as L-BFGS-B's
        np.testing.assert_allclose(z, z_ref, atol=1e-5)


def test_duality_gap_stop_guarantees_relative_objective(small_digits, rng):
    """Stopping at gap <= tol * E puts every row's objective within (1 + tol) of the optimum
    (here the optimum is a tol=1e-13 solve)."""
    X = small_digits[:50]
    D = _unit_dictionary(X.shape[1], 64, rng)
    E_star = _lasso_objective(X, D, sparse_encode(X, D, 0.5, tol=1e-13, max_iter=50000), 0.5)
    for tol in (1e-3, 1e-6):
        Z, n_iter = sparse_encode(X, D, 0.5, tol=tol, return_n_iter=True)
        E = _lasso_objective(X, D, Z, 0.5)
        assert np.all(E <= E_star * (1 + tol) + 1e-12)
        assert n_iter.max() < 1000


def _twin_problem(n, d, m, with_h, seed):
    r = np.random.default_rng(seed)
    X = r.standard_normal((n, d))
    D = r.standard_normal((d, m))
    h = r.uniform(0, 1, (n, m)) if with_h else None
    H, C, k = gram_problem(X, D, h)
    eig = np.linalg.eigvalsh(H)
    L = 2 * max(eig[-1], 1e-300)
    mu = eig[0] if eig[0] > 1e-12 * eig[-1] else 0.0
    return H, C, k, r.standard_normal((n, m)), L, mu


def _run_twins(H, C, k, Z0, lam, L, mu, tol, max_iter, accelerate):
    _require_kernels()
    Z_np, it_np = _fista_numpy(H, C, k, Z0, lam, L, mu, tol, max_iter, accelerate)
    Z_nb = np.empty_like(C)
    it_nb = np.empty(len(C), dtype=np.int64)
    _fista_kernel(H, C, k, Z0, lam, L, mu, tol, max_iter, accelerate, Z_nb, it_nb)
    return Z_np, it_np, Z_nb, it_nb


@given(n=st.integers(1, 6), d=st.integers(1, 12), m=st.integers(1, 10),
       lam=st.floats(0.0, 2.0), with_h=st.booleans(), accelerate=st.booleans(),
       n_steps=st.integers(1, 30), seed=st.integers(0, 2**32 - 1))
def test_kernel_matches_numpy_twin_iterates(n, d, m, lam, with_h, accelerate, n_steps, seed):
    """The Numba kernel against its NumPy twin, step for step: a fixed number of iterations
    (tol = 0), any problem (even singular ones). The sums differ in order only (~1e-16
    relative per step); after <= 30 steps the codes agree to 1e-9 relative. Exception: once
    converged, consecutive iterates have the same energy to rounding, and which one is "the
    best" may round either way; such rows must agree in energy to 1e-12 relative and in
    code to 1e-6 (one late step)."""
    H, C, k, Z0, L, mu = _twin_problem(n, d, m, with_h, seed)
    Z_np, it_np, Z_nb, it_nb = _run_twins(H, C, k, Z0, lam, L, mu, 0.0, n_steps, accelerate)
    scale = 1 + np.abs(Z_np).max()

    def energy(Z):
        return np.einsum("ij,jk,ik->i", Z, H, Z) - 2 * (C * Z).sum(1) + k + lam * np.abs(Z).sum(1)
    exact = np.abs(Z_nb - Z_np).max(axis=1) <= 1e-9 * scale
    E_nb, E_np = energy(Z_nb), energy(Z_np)
    assert np.all(np.abs(E_nb - E_np)[~exact] <= 1e-12 * np.abs(E_np[~exact]) + 1e-14)
    np.testing.assert_allclose(Z_nb, Z_np, rtol=0, atol=1e-6 * scale)


@given(n=st.integers(1, 6), d=st.integers(1, 12), m=st.integers(1, 10),
       lam=st.floats(0.01, 2.0), accelerate=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_kernel_matches_numpy_twin_stopping(n, d, m, lam, accelerate, seed):
    """Same stopping rule: on the strongly convex z-step (encoder term on) both stop within
    one iteration of each other (a gap at the threshold may round either way), at codes
    within the accuracy the gap guarantees (1e-6 here, for tol = 1e-10)."""
    H, C, k, Z0, L, mu = _twin_problem(n, d, m, True, seed)
    Z_np, it_np, Z_nb, it_nb = _run_twins(H, C, k, Z0, lam, L, mu, 1e-10, 5000, accelerate)
    np.testing.assert_allclose(Z_nb, Z_np, rtol=0, atol=1e-6 * (1 + np.abs(Z_np).max()))
    assert np.all(np.abs(it_nb - it_np) <= 1)
    assert it_np.max() < 5000


def test_z_step_never_worse_than_warm_start(small_digits, rng):
    """The solver returns its best iterate: starting at the optimum, it stays there (up to
    rounding: coordinate descent still sweeps once for exact zeros, and its changes at the
    optimum are ~1e-16 relative; a step away from the optimum would cost far more than
    the 1e-12 allowed here)."""
    X = small_digits[:30]
    D = _unit_dictionary(X.shape[1], 32, rng)
    h = rng.uniform(0, 1, (30, 32))
    Z_opt = sparse_encode(X, D, 0.7, h, tol=1e-14, max_iter=20000)
    best = _lasso_objective(X, D, Z_opt, 0.7, h)
    for solver in ("cd", "fista", "ista"):
        Z = sparse_encode(X, D, 0.7, h, Z0=Z_opt, solver=solver, tol=1e-6)
        assert np.all(_lasso_objective(X, D, Z, 0.7, h) <= best * (1 + 1e-12))
        np.testing.assert_array_equal(Z == 0, Z_opt == 0)  # the same support


# ---------------------------------------------------------------------------------------------
# z-step by coordinate descent ("cd")
# ---------------------------------------------------------------------------------------------

def test_cd_coordinate_update_minimises_along_the_coordinate(rng):
    """(10): z_j <- S_{lam/2}(H_jj z_j + rho_j) / H_jj is the exact minimiser of the objective
    along coordinate j (threshold lam/2, not lam: the quadratic has curvature 2 H_jj). Checked
    against a dense grid search of the one-dimensional objective (grid step 1e-5)."""
    from npae.sparse_coding_kernels import _cd_sweep_numpy
    d, m, lam = 12, 6, 0.9
    X = rng.standard_normal((1, d))
    D = _unit_dictionary(d, m, rng)
    H, C, k = gram_problem(X, D, None)
    z = rng.standard_normal(m)
    diag, inv_diag = _cd_diagonal(H)
    for j in range(m):
        z_new = z.copy()
        _cd_sweep_numpy(H, C[0], z_new, z_new @ H, [j], lam, diag, inv_diag)
        grid = z_new[j] + np.linspace(-0.5, 0.5, 100001)
        Zg = np.repeat(z[None], grid.size, axis=0)
        Zg[:, j] = grid
        E = _lasso_objective(np.repeat(X, grid.size, axis=0), D, Zg, lam)
        assert abs(grid[np.argmin(E)] - z_new[j]) <= 1e-5
        assert np.array_equal(np.delete(z_new, j), np.delete(z, j))


@pytest.mark.parametrize("with_h", [False, True])
def test_cd_matches_fista_objective(small_digits, rng, with_h):
    """CD and FISTA, both to a relative duality gap of 1e-10, reach the same objective per row
    to 1e-8 relative (the gap guarantees 1e-10 each)."""
    X = small_digits[:60]
    D = _unit_dictionary(X.shape[1], 64, rng)
    h = rng.uniform(0, 1, (60, 64)) if with_h else None
    for lam in (0.05, 0.8):
        Z_cd = sparse_encode(X, D, lam, h, solver="cd", tol=1e-10, max_iter=5000)
        Z_fi = sparse_encode(X, D, lam, h, solver="fista", tol=1e-10, max_iter=50000)
        E_cd, E_fi = _lasso_objective(X, D, Z_cd, lam, h), _lasso_objective(X, D, Z_fi, lam, h)
        np.testing.assert_allclose(E_cd, E_fi, rtol=1e-8)


def test_cd_matches_sklearn_lasso(small_digits, rng):
    """Against scikit-learn's ``Lasso`` (design D, target x, no intercept), which minimises
    1/(2 d) ||x - D z||^2 + alpha ||z||_1: 2 d times that is ours with lam = 2 d alpha. Both
    solved tightly: codes agree to 1e-6, ours is never worse by more than 1e-10 relative."""
    from sklearn.linear_model import Lasso
    X = small_digits[:8]
    d = X.shape[1]
    D = _unit_dictionary(d, 48, rng)
    lam = 0.4
    Z = sparse_encode(X, D, lam, solver="cd", tol=1e-13, max_iter=5000)
    lasso = Lasso(alpha=lam / (2 * d), fit_intercept=False, tol=1e-14, max_iter=100000)
    Z_sk = np.array([lasso.fit(D, x).coef_ for x in X])
    assert np.count_nonzero(Z) > 0
    E, E_sk = _lasso_objective(X, D, Z, lam), _lasso_objective(X, D, Z_sk, lam)
    assert np.all(E <= E_sk * (1 + 1e-10))
    np.testing.assert_allclose(Z, Z_sk, atol=1e-6)


def test_cd_zero_atom_gets_zero_code(small_digits, rng):
    """An atom d_j = 0 (H_jj = 0, no encoder term) cannot help the fit: its code is 0, and the
    other codes are those of the dictionary without it."""
    X = small_digits[:10]
    D = _unit_dictionary(X.shape[1], 12, rng)
    D0 = D.copy()
    D0[:, 4] = 0.0
    Z0 = np.ones((10, 12))
    Z = sparse_encode(X, D0, 0.5, Z0=Z0, solver="cd", tol=1e-12)
    assert np.all(Z[:, 4] == 0)
    Z_ref = sparse_encode(X, np.delete(D, 4, axis=1), 0.5, solver="cd", tol=1e-12)
    np.testing.assert_allclose(np.delete(Z, 4, axis=1), Z_ref, atol=1e-7)


def _run_cd_twins(H, C, k, Z0, lam, tol, max_iter):
    _require_kernels()
    Z_np, it_np = _cd_numpy(H, C, k, Z0, lam, 0.0, tol, max_iter)
    Z_nb = np.empty_like(C)
    it_nb = np.empty(len(C), dtype=np.int64)
    _cd_kernel(H, C, k, Z0, lam, 0.0, tol, max_iter, *_cd_diagonal(H), Z_nb, it_nb)
    return Z_np, it_np, Z_nb, it_nb


@given(n=st.integers(1, 5), d=st.integers(1, 12), m=st.integers(1, 10),
       lam=st.floats(0.01, 2.0), with_h=st.booleans(), max_iter=st.integers(1, 40),
       tol=st.sampled_from([1e-12, 1e-10, 1e-4]), seed=st.integers(0, 2**32 - 1))
def test_cd_kernel_matches_numpy_twin(n, d, m, lam, with_h, max_iter, tol, seed):
    """The Numba kernel (rows in parallel) against its NumPy twin (row by row): same iterations
    and codes to 1e-9 relative, for a capped number of iterations or the stopping rule, any
    problem (singular H_AA included, where the exact step is refused). The two compute H z
    in different orders (~1e-16 relative), so a choice made on quantities at rounding level
    may differ: tol = 0 is not used (with it, gaps shrink to rounding level, where "did the
    gap shrink?" decides between a sweep and an exact step); a row whose path still
    diverged must agree in objective to 1e-9 relative."""
    H, C, k, Z0, _, _ = _twin_problem(n, d, m, with_h, seed)
    Z_np, it_np, Z_nb, it_nb = _run_cd_twins(H, C, k, Z0, lam, tol, max_iter)
    scale = 1 + np.abs(Z_np).max()

    def energy(Z):
        return np.einsum("ij,jk,ik->i", Z, H, Z) - 2 * (C * Z).sum(1) + k + lam * np.abs(Z).sum(1)
    same = (np.abs(Z_nb - Z_np).max(axis=1) <= 1e-9 * scale) & (it_nb == it_np)
    E_nb, E_np = energy(Z_nb), energy(Z_np)
    assert np.all(np.abs(E_nb - E_np)[~same] <= 1e-9 * np.abs(E_np[~same]) + 1e-12)
    np.testing.assert_allclose(Z_nb, Z_np, rtol=0, atol=1e-6 * scale)


def test_cd_kernel_bit_identical_across_threads_and_runs(small_digits, rng):
    """Rows are independent, each solved on one thread: 1 or 2 threads, run twice, give the
    same bits."""
    from npae._numba import get_num_threads, max_threads, set_num_threads
    _require_kernels()
    if max_threads() < 2:
        pytest.skip("Numba has a single thread here")
    X = small_digits[:64]
    D = _unit_dictionary(X.shape[1], 40, rng)
    h = rng.uniform(0, 1, (64, 40))
    before = get_num_threads()
    try:
        runs = []
        for threads in (1, 2, 2):
            set_num_threads(threads)
            runs.append(sparse_encode(X, D, 0.3, h, solver="cd", return_n_iter=True))
    finally:
        set_num_threads(before)
    for Z, it in runs[1:]:
        assert np.array_equal(Z, runs[0][0]) and np.array_equal(it, runs[0][1])



@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_cd_warm_start_within_tol_still_gets_exact_zeros(small_digits, rng, backend):
    """A warm start already within tol of the optimum (the gap test passes before any sweep)
    still gets one sweep, so every coordinate whose optimum is 0 comes back as exactly 0:
    the encoder's h, the z-step's warm start, has no zeros at all. Here the optimum is z = 0
    (lam above 2 ||D^T x||_inf) and the start is 1e-13 everywhere; returned untouched, it
    would have no zeros."""
    X = small_digits[:10]
    D = _unit_dictionary(X.shape[1], 16, rng)
    lam = 3.0 * np.abs(X @ D).max()               # > 2 max |D^T x|: z = 0 is optimal
    Z0 = np.full((10, 16), 1e-13)
    H, C, k = gram_problem(X, D, None)
    Z, n_iter = solve_gram(H, C, k, Z0, lam, "cd", 1e-6, 100, backend)
    assert np.all(Z == 0) and np.all(n_iter == 1)



def test_sparse_encode_bad_input():
    X = np.random.default_rng(0).uniform(size=(20, 4))
    with pytest.raises(ValueError, match="lam=-1"):
        sparse_encode(X, np.ones((4, 2)), -1)
    with pytest.raises(ValueError, match=r"D has shape \(3, 2\) but X has 4 features"):
        sparse_encode(X, np.ones((3, 2)), 1.0)


def test_sparse_coding_does_not_depend_on_any_model():
    """The solvers stand alone: neither module imports from npae.models (PSD imports them,
    never the other way round)."""
    import ast
    import pathlib

    import npae
    root = pathlib.Path(npae.__file__).parent
    for name in ("sparse_coding.py", "sparse_coding_kernels.py"):
        tree = ast.parse((root / name).read_text())
        sources = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        sources += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [s for s in sources if "models" in s], (name, sources)
