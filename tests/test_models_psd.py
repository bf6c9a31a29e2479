"""Predictive Sparse Decomposition: the z-step's optimality, agreement with independent
lasso solvers, the Numba kernel against its NumPy twin, every gradient against finite
differences (float64), monotone alternating minimisation, and learning on real images."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize

from conftest import require_shared
from npae.gradcheck import numerical_gradient
from npae.models import PSD, NotFittedError, PredictiveSparseDecomposition
from npae.models.psd import (_cd_diagonal, _cd_kernel, _cd_numpy, _fista_kernel, _fista_numpy,
                             _gram_problem, soft_threshold, sparse_encode)


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
    H, C, k = _gram_problem(X, D, h)
    eig = np.linalg.eigvalsh(H)
    L = 2 * max(eig[-1], 1e-300)
    mu = eig[0] if eig[0] > 1e-12 * eig[-1] else 0.0
    return H, C, k, r.standard_normal((n, m)), L, mu


def _run_twins(H, C, k, Z0, lam, L, mu, tol, max_iter, accelerate):
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
    from npae.models.psd import _cd_sweep_numpy
    d, m, lam = 12, 6, 0.9
    X = rng.standard_normal((1, d))
    D = _unit_dictionary(d, m, rng)
    H, C, k = _gram_problem(X, D, None)
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
    import numba
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba has a single thread here")
    X = small_digits[:64]
    D = _unit_dictionary(X.shape[1], 40, rng)
    h = rng.uniform(0, 1, (64, 40))
    before = numba.get_num_threads()
    try:
        runs = []
        for threads in (1, 2, 2):
            numba.set_num_threads(threads)
            runs.append(sparse_encode(X, D, 0.3, h, solver="cd", return_n_iter=True))
    finally:
        numba.set_num_threads(before)
    for Z, it in runs[1:]:
        assert np.array_equal(Z, runs[0][0]) and np.array_equal(it, runs[0][1])


# ---------------------------------------------------------------------------------------------
# gradients (float64 finite differences; central differences: error ~1e-9)
# ---------------------------------------------------------------------------------------------

def _fitted(encoder, X, rng, encoder_bias=True, m=6):
    model = PSD(n_atoms=m, lam=0.3, encoder=encoder, n_iter=1, batch_size=len(X),
                encoder_bias=encoder_bias, random_state=0).fit(X)
    p = model.parameters()
    # move away from the initialisation so every gradient term is non-trivial
    p["W"] += 0.3 * rng.standard_normal(p["W"].shape)
    if "b" in p:
        p["b"] += 0.3 * rng.standard_normal(p["b"].shape)
    if "g" in p:
        p["g"] += 0.3 * rng.standard_normal(p["g"].shape)
    return model


def _rel_err(a, b):
    return np.abs(a - b).max() / max(np.abs(a).max(), np.abs(b).max(), 1e-300)


@pytest.mark.parametrize("encoder", ["sigmoid", "tanh"])
@pytest.mark.parametrize("encoder_bias", [True, False])
def test_objective_gradients_finite_differences(rng, encoder, encoder_bias):
    """(7), (8) and (4)/n against central differences of the objective (2) at random codes Z
    (no entry near 0, where |z| has its kink; the l1 term then adds lam sign(Z)/n)."""
    X = rng.uniform(0, 1, (5, 7))
    model = _fitted(encoder, X, rng, encoder_bias)
    Z = rng.standard_normal((5, 6))
    Z += 0.2 * np.sign(Z)
    grads = model.objective_gradients(X, Z)
    params = model.parameters()
    assert set(grads) == set(params) | {"Z"}
    assert ("b" in params) == encoder_bias and ("g" in params) == (encoder == "tanh")
    for name, p in params.items():
        num = numerical_gradient(lambda _: model.objective(X, Z), p)
        err = _rel_err(grads[name], num)
        assert err < 1e-6, f"{name}: relative error {err:.1e} (expected ~1e-9)"
    num = numerical_gradient(lambda z: model.objective(X, z), Z)
    err = _rel_err(grads["Z"] + model.lam * np.sign(Z) / len(X), num)
    assert err < 1e-6, f"Z: relative error {err:.1e} (expected ~1e-9)"


@pytest.mark.parametrize("encoder", ["sigmoid", "tanh"])
def test_loss_gradients_at_optimal_codes_danskin(rng, encoder):
    """objective(X) = mean_t min_z E (9); gradients(X) = the partial gradients at z* (Danskin).
    Checked along random directions V: (objective(p + eV) - objective(p - eV)) / 2e against
    <grad, V>.
    z* is solved to a relative gap of 1e-14, so the loss is accurate to ~1e-13 and the
    difference quotient (e = 1e-5) to ~1e-8; expected relative error ~1e-7."""
    X = rng.uniform(0, 1, (6, 9))
    model = _fitted(encoder, X, rng, m=7).set_params(z_tol=1e-14, z_max_iter=100000)
    grads = model.gradients(X)
    for name, p in model.parameters().items():
        V = rng.standard_normal(p.shape)
        eps = 1e-5
        p += eps * V
        lp = model.objective(X)
        p -= 2 * eps * V
        lm = model.objective(X)
        p += eps * V
        fd = (lp - lm) / (2 * eps)
        an = float(np.vdot(grads[name], V))
        assert abs(fd - an) <= 1e-6 * max(abs(an), 1e-3), f"{name}: {fd} vs {an}"


def test_encoder_grads_match_layer_chain(rng):
    """The hand-written (8) for the sigmoid against npae's Linear + Sigmoid backward with the
    same upstream gradient dE/dh = 2 (h - z)/n (random, through random z)."""
    from npae.nn.activations import Sigmoid
    from npae.nn.linear import Linear
    X = rng.uniform(0, 1, (4, 5))
    model = _fitted("sigmoid", X, rng, m=3)
    p = model.parameters()
    lin = Linear(5, 3)
    lin.params["W"][...] = p["W"]
    lin.params["b"][...] = p["b"]
    act = Sigmoid()
    h = act.forward(lin.forward(X))
    Z = rng.standard_normal((4, 3))
    lin.backward(act.backward(2 * (h - Z) / 4))
    grads = model.objective_gradients(X, Z)
    np.testing.assert_allclose(grads["W"], lin.grads["W"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grads["b"], lin.grads["b"], rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# alternating minimisation
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("encoder", ["sigmoid", "tanh"])
def test_objective_never_increases_across_blocks(small_digits, encoder):
    """On a fixed batch, chaining the blocks (z-step warm-started at the previous z, D-step
    with unit-norm projection and backtracking, W-step with Armijo backtracking), the full
    objective (2) never increases, after each step and across blocks. Rounding slack: 1e-12
    relative."""
    X = small_digits[:80]
    model = PSD(n_atoms=16, lam=0.5, encoder=encoder, n_iter=1, batch_size=80,
                random_state=3).fit(X)
    Z = model.sparse_code(X)
    E_prev = model.objective(X, Z)
    first = E_prev
    for _ in range(8):
        h = model.transform(X)
        Z = model._z_step(X, h, Z0=Z)
        E_z = model.objective(X, Z)
        model._d_step(X, Z)
        E_d = model.objective(X, Z)
        model._w_step(X, Z)
        E_w = model.objective(X, Z)
        slack = 1e-12 * E_prev
        assert E_z <= E_prev + slack and E_d <= E_z + slack and E_w <= E_d + slack, \
            (E_prev, E_z, E_d, E_w)
        np.testing.assert_allclose(np.linalg.norm(model.components_, axis=1), 1.0, rtol=1e-12)
        E_prev = E_w
    assert E_prev < first          # and it does decrease


@pytest.mark.slow
def test_training_history_and_prediction_approaches_optimal_code(capsys):
    """Trained on digits, the objective goes down epoch by epoch, the prediction h(x) gets
    closer to the optimal code z* (relative error ||h - z*|| / ||z*|| on held-out digits,
    reported), the atoms are unit norm, the codes sparse."""
    X = _digits(700, seed=2)
    X_train, X_test = X[:600], X[600:]
    errors = []
    model = PSD(n_atoms=32, lam=1.5, encoder="tanh", n_iter=1, batch_size=50, random_state=0)
    model.fit(X_train)

    def rel_error():
        Z = model.sparse_code(X_test)
        h = model.transform(X_test)
        return np.linalg.norm(h - Z) / np.linalg.norm(Z)
    errors.append(rel_error())
    model.set_params(n_iter=8).fit(X_train)
    errors.append(rel_error())
    hist = model.history_
    with capsys.disabled():
        print(f"\n[PSD] held-out ||h - z*||/||z*||: 1 epoch {errors[0]:.3f} -> 8 epochs "
              f"{errors[1]:.3f}; training code_rel_error per epoch "
              f"{np.round(hist['code_rel_error'], 3).tolist()}")
    assert errors[1] < 0.85 * errors[0]
    assert hist["code_rel_error"][-1] < hist["code_rel_error"][0]
    assert hist["objective"][-1] < hist["objective"][0]
    np.testing.assert_allclose(hist["objective"], np.add(np.add(
        hist["reconstruction"], hist["sparsity_penalty"]), hist["prediction"]), rtol=1e-12)
    assert all(len(v) == 8 for v in hist.values())
    np.testing.assert_allclose(np.linalg.norm(model.components_, axis=1), 1.0, rtol=1e-12)
    Z = model.sparse_code(X_test)
    assert 0.5 < np.mean(Z == 0) < 0.99


@pytest.mark.slow
def test_mnist_learns_sparse_codes_and_a_useful_predictor():
    """Real MNIST digits: after a few epochs, z* reconstructs better than the fast code h,
    both much better than the mean image, codes mostly zero; the numbers are reported."""
    from npae.data import load_mnist
    path = require_shared("mnist")
    images, _ = load_mnist(path, "train")
    X = images[:1500].reshape(1500, -1)
    X_train, X_test = X[:1200], X[1200:]
    model = PSD(n_atoms=49, lam=1.0, encoder="tanh", n_iter=4, batch_size=100,
                random_state=0).fit(X_train)
    Z = model.sparse_code(X_test, encoder_term=False)
    h = model.transform(X_test)
    rec_z = np.mean(np.sum((model.inverse_transform(Z) - X_test) ** 2, axis=1))
    rec_h = np.mean(np.sum((model.inverse_transform(h) - X_test) ** 2, axis=1))
    rec_mean = np.mean(np.sum((X_test - X_train.mean(0)) ** 2, axis=1))
    zeros = np.mean(Z == 0)
    print(f"[PSD MNIST] ||Dz-x||^2 {rec_z:.2f}, ||D h-x||^2 {rec_h:.2f}, mean image "
          f"{rec_mean:.2f}, zeros in z {zeros:.2f}, code_rel_error "
          f"{model.history_['code_rel_error'][-1]:.3f}")
    assert rec_z < rec_h < rec_mean
    assert rec_z < 0.6 * rec_mean
    assert zeros > 0.5


# ---------------------------------------------------------------------------------------------
# API and bad input
# ---------------------------------------------------------------------------------------------

def test_api_shapes_and_estimator_conventions(small_digits, tmp_path):
    X = small_digits[:60]
    model = PredictiveSparseDecomposition(n_atoms=10, n_iter=2, batch_size=30, random_state=1)
    assert model.fit(X) is model
    assert model.components_.shape == (10, X.shape[1])
    np.testing.assert_allclose(model.components_.T, model.parameters()["D"])
    assert model.transform(X).shape == (60, 10)
    Z = model.sparse_code(X)
    assert model.inverse_transform(Z).shape == X.shape
    np.testing.assert_allclose(model.inverse_transform(Z), Z @ model.parameters()["D"].T)
    np.testing.assert_allclose(model.sparse_code(X, encoder_term=False),
                               sparse_encode(X, model.parameters()["D"], model.lam,
                                             Z0=model.transform(X)))
    assert model.get_params()["n_atoms"] == 10 and "lam=0.5" not in repr(model)
    # same seed, same model
    again = PredictiveSparseDecomposition(n_atoms=10, n_iter=2, batch_size=30, random_state=1)
    np.testing.assert_array_equal(again.fit(X).components_, model.components_)
    # save / load round trip
    import npae
    path = tmp_path / "psd.npz"
    model.save(path)
    loaded = npae.load(path)
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    assert loaded.history_ == model.history_


@pytest.mark.parametrize("kwargs, match", [
    (dict(lam=-0.1), r"lam=-0\.1 is out of range"),
    (dict(n_atoms=0), r"n_atoms=0 is out of range"),
    (dict(encoder="relu"), r"encoder='relu' is not supported; choose one of 'sigmoid', 'tanh'"),
    (dict(z_solver="lars"), r"z_solver='lars' is not supported; choose one of 'cd', 'fista'"),
    (dict(step_scale=0.0), r"step_scale=0\.0 is out of range"),
])
def test_bad_hyper_parameters(kwargs, match):
    X = np.random.default_rng(0).uniform(size=(20, 4))
    with pytest.raises(ValueError, match=match):
        PSD(**kwargs).fit(X)


def test_bad_input_data():
    X = np.random.default_rng(0).uniform(size=(20, 4))
    with pytest.raises(TypeError, match="n_atoms must be an integer"):
        PSD(n_atoms=2.5).fit(X)
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"X contains 1 non-finite value.*NaN at index \(3, 1\)"):
        PSD(n_atoms=3).fit(X_nan)
    with pytest.raises(NotFittedError, match="call fit"):
        PSD().transform(X)
    model = PSD(n_atoms=3, n_iter=1).fit(X)
    with pytest.raises(ValueError, match=r"X has 5 features, but PredictiveSparseDecomposition "
                                         r"is expecting 4 features"):
        model.transform(np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"Z has 4 columns, expected n_atoms = 3"):
        model.inverse_transform(np.ones((2, 4)))
    with pytest.raises(ValueError, match="lam=-1"):
        sparse_encode(X, np.ones((4, 2)), -1)
    with pytest.raises(ValueError, match=r"D has shape \(3, 2\) but X has 4 features"):
        sparse_encode(X, np.ones((3, 2)), 1.0)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_cd_warm_start_within_tol_still_gets_exact_zeros(small_digits, rng, backend):
    """A warm start already within tol of the optimum (the gap test passes before any sweep)
    still gets one sweep, so every coordinate whose optimum is 0 comes back as exactly 0:
    the encoder's h, the z-step's warm start, has no zeros at all. Here the optimum is z = 0
    (lam above 2 ||D^T x||_inf) and the start is 1e-13 everywhere; returned untouched, it
    would have no zeros."""
    from npae.models.psd import _gram_problem, _solve_gram
    X = small_digits[:10]
    D = _unit_dictionary(X.shape[1], 16, rng)
    lam = 3.0 * np.abs(X @ D).max()               # > 2 max |D^T x|: z = 0 is optimal
    Z0 = np.full((10, 16), 1e-13)
    H, C, k = _gram_problem(X, D, None)
    Z, n_iter = _solve_gram(H, C, k, Z0, lam, "cd", 1e-6, 100, backend)
    assert np.all(Z == 0) and np.all(n_iter == 1)


def test_psd_warns_when_lam_leaves_every_code_zero(small_digits):
    """lam so large that z = 0 for every sample: the dictionary cannot learn. fit says so and
    names the bound 2 max |D^T x + h| below which codes can be non-zero."""
    X = small_digits[:60]
    with pytest.warns(RuntimeWarning, match=r"every code z was 0 in epoch 1 \(lam=1000.0"):
        model = PSD(n_atoms=8, lam=1000.0, n_iter=1, batch_size=60, random_state=0).fit(X)
    assert model.history_["zero_fraction"] == [1.0]
    assert np.isnan(model.history_["code_rel_error"][0])
    # the bound itself, at the fitted D and W: just above it every code is 0, below not
    D, h = model.components_.T, model.transform(X)
    lam_max = 2.0 * np.abs(X @ D + h).max()
    for lam, all_zero in ((1.01 * lam_max, True), (0.99 * lam_max, False)):
        model.lam = lam
        assert np.all(model.sparse_code(X) == 0) == all_zero
