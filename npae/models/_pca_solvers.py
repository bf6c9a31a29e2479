"""PCA's solver helpers, beside the lecture's two closed forms (``svd_of_X`` and
``eigh_of_A`` in ``npae.models.pca``, next to the slide's equations).

Every solver returns a ``Spectrum``: the top eigenpairs of the covariance
A = sum_t (x^(t) - mu)(x^(t) - mu)^T / (T - 1), the total variance and what is known of the
rest; the estimator chooses K from it and stores the attributes. Here: what answers "what
if d and T are both large and only k << min(T, d) directions are wanted?"
(``truncated_svd``: randomized SVD or ARPACK), the helpers every solver shares (the sign
convention, centring, the scatter matrices formed without a centred copy of X, the random
state) and "which K?" (Minka's ``infer_dimension``).
"""
from __future__ import annotations

import numbers
from math import lgamma, log
from typing import NamedTuple, Optional

import numpy as np
import scipy.linalg
from scipy.linalg import blas

__all__ = ["Spectrum", "truncated_svd", "centre", "flip_signs",
           "scatter_matrix", "covariance_scatter", "column_scatter", "CentredMatrix",
           "randomized_svd", "arpack_svd", "check_random_state", "assess_dimension",
           "infer_dimension"]

#: the largest cancellation factor rho the uncentred shortcut may suffer (about 4 digits)
_MAX_CANCELLATION = 1e4

#: rows per block when accumulating the covariance: a few MB of buffer, large enough that
#: dsyrk runs at full speed, small enough to stay in cache-friendly territory.
_BLOCK_BYTES = 8 * 2**20


class Spectrum(NamedTuple):
    """What every solver returns: the top r eigenpairs of the covariance A, decreasing.

    ``components`` (r, d): eigenvectors of A as rows (W of (4)), signs by ``flip_signs``;
    ``explained`` (r,): their eigenvalues lambda_j (divisor T - 1); ``singular`` (r,): the
    singular values of the centred X, sqrt(lambda_j (T - 1)); ``total``: the sum of all
    eigenvalues of A (the total variance); ``n_eigenvalues``: how many A's spectrum has as
    the solver sees it (d for A itself, min(T, d) for an SVD of X); ``tail``: the sum of the
    eigenvalues after the r returned, or None when ``explained`` is the whole spectrum;
    ``U`` (T, r) or None: X_c's left singular vectors, when the solver computed them (the
    codes are U S); ``X``: the data, centred in place when ``centred`` (copy=False allowed
    it), else the caller's array untouched.
    """
    components: np.ndarray
    explained: np.ndarray
    singular: np.ndarray
    total: float
    n_eigenvalues: int
    tail: Optional[float]
    U: Optional[np.ndarray]
    X: np.ndarray
    centred: bool

    def noise_variance(self, k, n_samples):
        """PPCA's sigma^2 when the top k are kept: the mean of the discarded eigenvalues
        (0 when none is discarded, k >= min(T, d))."""
        if k >= min(n_samples, self.components.shape[1]):
            return 0.0
        if self.tail is None:
            return float(self.explained[k:].sum() / (self.n_eigenvalues - k))
        return float(self.tail / (self.n_eigenvalues - k))


# -- the truncated solvers -----------------------------------------------------------------

def truncated_svd(X, mean, k, solver, *, copy=True, random_state=None, n_oversamples=10,
                  n_iter="auto", power_iteration_normalizer="auto", tol=0.0):
    """The top k singular triplets of the centred X by ``randomized_svd`` (solver
    "randomized") or ``arpack_svd`` ("arpack"), 1 <= k <= min(T, d); the total variance
    from the columns' scatter, so ``tail`` = total - the top k eigenvalues."""
    n, d = X.shape
    scatter = column_scatter(X, mean, _BLOCK_BYTES)
    total = float(scatter.sum()) / (n - 1)
    rng = check_random_state(random_state)
    centred = False
    if solver == "randomized" and X.dtype == np.float64 and not _cancels(scatter, mean, n):
        M = CentredMatrix(X, mean)              # no copy of X: centre inside the products
    else:
        Xc, centred = centre(X, mean, copy)
        M = CentredMatrix(Xc)
        X = Xc if centred else X
    if solver == "randomized":
        U, S, Vt = randomized_svd(M, k, n_oversamples=n_oversamples, n_iter=n_iter,
                                  power_iteration_normalizer=power_iteration_normalizer,
                                  random_state=rng)
    else:
        U, S, Vt = arpack_svd(M.X, k, tol=tol, random_state=rng)
    Vt, U = np.array(Vt), np.array(U)
    U *= flip_signs(Vt)
    explained = S**2 / (n - 1)
    return Spectrum(Vt, explained, S, total, min(n, d), total - explained.sum(), U, X,
                    centred)


def randomized_svd(M, k, *, n_oversamples=10, n_iter="auto", power_iteration_normalizer="auto",
                   random_state=None):
    """Top-k singular triplets of M (T, d), a ``CentredMatrix``: Halko, Martinsson and Tropp
    (2011), Algorithms 4.3-4.4 and 5.1. Returns (U (T, k), s (k,), Vt (k, d)), s decreasing.

    Why it works. If Q (T, l) has orthonormal columns whose span contains the top-k left
    singular vectors of M, then M ~ Q (Q^T M), and the SVD of the small l x d matrix
    B = Q^T M = Uhat s Vt gives M's: U = Q Uhat. A Gaussian test matrix Omega (d, l),
    l = k + n_oversamples, gives Y = M Omega whose columns are random combinations of M's
    columns; with high probability they span the top-k directions up to an error of about
    sigma_{k+1} (the oversampling makes "with high probability" overwhelming: the failure
    probability decays like p^-p in p = l - k). When the spectrum decays slowly, q power
    iterations Y = (M M^T)^q M Omega raise every singular value to the power 2q + 1, so the
    wanted directions dominate the rest by (sigma_k / sigma_{k+1})^(2q+1); each product is
    re-orthonormalised (LU or QR) so that rounding does not collapse Y onto the first vector.

    What it costs. 2 (q + 1) + 1 products of M with a thin (., l) matrix, O(T d l (2q + 3))
    flops, plus O((T + d) l^2) for the factorisations and the small SVD; memory O((T + d) l).
    A full SVD costs O(T d min(T, d)): with l << min(T, d) that is the saving.

    scikit-learn's conventions, so that the same ``random_state`` gives the same Omega and the
    same answer: Omega ~ N(0, 1) drawn as ``random_state.normal(size=(d, l))`` (in M's dtype),
    "auto" means q = 7 when k < 0.1 min(T, d) else 4, the normaliser "auto" means none for
    q <= 2 else LU, and the algorithm runs on M^T when T < d (its range is then the smaller).
    """
    n, d = M.shape
    l = k + n_oversamples
    if n_iter == "auto":
        n_iter = 7 if k < 0.1 * min(n, d) else 4
    if power_iteration_normalizer == "auto":
        power_iteration_normalizer = "none" if n_iter <= 2 else "LU"
    transpose = n < d
    fwd, bwd = (M.tdot, M.dot) if transpose else (M.dot, M.tdot)
    width = n if transpose else d
    rng = check_random_state(random_state)
    Q = rng.normal(size=(width, l)).astype(M.X.dtype, copy=False)

    def qr(Y):
        return scipy.linalg.qr(Y, mode="economic", check_finite=False)[0]

    def lu(Y):
        return scipy.linalg.lu(Y, permute_l=True, check_finite=False)[0]

    normalise = {"QR": qr, "LU": lu, "none": lambda Y: Y}[power_iteration_normalizer]
    for _ in range(n_iter):
        Q = normalise(fwd(Q))
        Q = normalise(bwd(Q))
    Q = qr(fwd(Q))                                      # range finder: span(Q) ~ span(U_k)
    B = bwd(Q).T                                        # B = Q^T M (or Q^T M^T), (l, width')
    Uhat, s, Vt = scipy.linalg.svd(B, full_matrices=False, check_finite=False)
    U = Q @ Uhat
    if transpose:
        U, Vt = Vt.T, U.T
    return U[:, :k], s[:k], Vt[:k]


def arpack_svd(Xc, k, *, tol=0.0, random_state=None):
    """Top-k singular triplets of the centred Xc by ARPACK (``scipy.sparse.linalg.svds``):
    Lanczos on Xc^T Xc, one product with Xc and one with Xc^T per step, k < min(T, d).
    The start vector is scikit-learn's, ``random_state.uniform(-1, 1, min(T, d))``."""
    from scipy.sparse.linalg import svds

    v0 = check_random_state(random_state).uniform(-1, 1, min(Xc.shape))
    U, s, Vt = svds(Xc, k=k, tol=tol, v0=v0)
    return U[:, ::-1], s[::-1], Vt[::-1]           # svds sorts ascending


class CentredMatrix:
    """M = X - 1 mu^T (T, d) without forming it: M Q = X Q - 1 (mu^T Q) and
    M^T P = X^T P - mu (1^T P). Each product costs one product with X and a rank-one update,
    so the power iterations below never copy X (``X`` may also be an explicitly centred
    array with ``mean=None``)."""

    def __init__(self, X, mean=None):
        self.X, self.mean = X, mean
        self.shape = X.shape

    def dot(self, Q):
        out = self.X @ Q
        if self.mean is not None:
            out -= self.mean @ Q
        return out

    def tdot(self, P):
        out = self.X.T @ P
        if self.mean is not None:
            out -= np.outer(self.mean, P.sum(axis=0))
        return out


# -- helpers: signs, centring, scatter matrices, random state ------------------------------

def flip_signs(W):
    """Flip each row of W (k, d) so that its largest-magnitude entry is positive (in place).

    scikit-learn's ``svd_flip(u, v, u_based_decision=False)``: argmax picks the first entry
    of largest magnitude, so ties are broken the same way. Returns the signs used.
    """
    idx = np.argmax(np.abs(W), axis=1)
    signs = np.sign(W[np.arange(W.shape[0]), idx])
    signs[signs == 0] = 1.0  # an all-zero row keeps its (meaningless) sign
    W *= signs[:, None]
    return signs


def centre(X, mean, copy=True):
    """X - mean, in X's dtype, and whether X itself was centred: in place when ``copy`` is
    False and X is writeable."""
    if not copy and X.flags.writeable:
        X -= mean.astype(X.dtype)
        return X, True
    return X - mean.astype(X.dtype), False


def scatter_matrix(X, mean=None, block_rows=None):
    """sum_t (x^(t) - mean)(x^(t) - mean)^T, (d, d), without a centred copy of X.

    Only the UPPER triangle is filled (BLAS ``dsyrk`` writes one triangle of a symmetric
    product); read it with ``scipy.linalg.eigh(..., lower=False)`` or symmetrise it.
    Blocks of ``block_rows`` rows are centred into one reused buffer, so the result is as
    accurate as centring all of X first (the two-pass formula).
    """
    X = np.asarray(X)                  # float32 rows are cast block by block into the buffer
    n, d = X.shape
    if mean is None:
        mean = X.mean(axis=0, dtype=np.float64)
    if block_rows is None:
        block_rows = max(1, _BLOCK_BYTES // (8 * d))
    block_rows = min(block_rows, n)
    S = np.zeros((d, d), order="F")
    buf = np.empty((block_rows, d))
    for start in range(0, n, block_rows):
        m = min(block_rows, n - start)
        Xc = buf[:m]
        np.subtract(X[start:start + m], mean, out=Xc)
        # Xc.T is (d, m) Fortran-ordered: dsyrk(trans=0) adds Xc^T Xc into S without a copy
        S = blas.dsyrk(1.0, Xc.T, beta=1.0, c=S, trans=0, lower=0, overwrite_c=1)
    return S


def covariance_scatter(X, mean):
    """sum_t (x^(t) - mean)(x^(t) - mean)^T (at least its UPPER triangle) and whether it was
    centred in blocks.

    Fast path: X^T X - T mean mean^T with one symmetric product. If that cancels more than
    ``_MAX_CANCELLATION`` on any diagonal entry (a feature whose mean dwarfs its spread, or a
    constant non-zero feature), falls back to the exact blocked ``scatter_matrix``.
    """
    n = X.shape[0]
    if X.dtype != np.float64:          # float32 data: accumulate in float64, block by block
        return scatter_matrix(X, mean), True
    # NumPy's matmul sees X.T @ X as a product of X with itself and calls its BLAS's syrk
    # (one triangle's work, mirrored), with no copy of X. NumPy's BLAS rather than SciPy's
    # ``blas.dsyrk``: the two ship separate OpenBLAS builds, and NumPy's is the one
    # scikit-learn's covariance_eigh uses, so both libraries run the same kernel
    S = X.T @ X
    raw = np.diag(S).copy()                       # sum_t x_j^2
    S -= n * np.outer(mean, mean)
    centred = np.diag(S)                          # sum_t (x_j - mu_j)^2, up to rounding
    # rho_j = raw_j / centred_j > limit, written without dividing by a zero variance
    if not np.any(raw > _MAX_CANCELLATION * np.maximum(centred, 0.0)):
        return S, False
    return scatter_matrix(X, mean), True


def _cancels(scatter, mean, n):
    """Would X Q - 1 (mu^T Q) lose more than log10(_MAX_CANCELLATION) digits on a feature?
    rho_j = sum_t x_j^2 / sum_t (x_j - mu_j)^2 = 1 + T mu_j^2 / scatter_j, without dividing."""
    return bool(np.any(n * mean**2 > _MAX_CANCELLATION * scatter))


def column_scatter(X, mean, block_bytes=8 * 2**20):
    """sum_t (x_j^(t) - mu_j)^2 for every feature j, in float64, without a centred copy of X
    (blocks of rows are centred into one buffer of about ``block_bytes``)."""
    n, d = X.shape
    block = max(1, min(n, block_bytes // (8 * d)))
    buf = np.empty((block, d))
    out = np.zeros(d)
    for start in range(0, n, block):
        b = buf[:min(block, n - start)]
        np.subtract(X[start:start + len(b)], mean, out=b)
        out += np.einsum("ij,ij->j", b, b)
    return out


def check_random_state(random_state, name="random_state"):
    """scikit-learn's meaning of ``random_state``: None (numpy's global RandomState), an int
    seed, or a RandomState (or Generator) used as is."""
    if random_state is None:
        return np.random.mtrand._rand
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if not 0 <= random_state < 2**32:
            raise ValueError(f"{name}={random_state!r} is out of range: a seed must lie in "
                             "[0, 2**32 - 1]; pass another seed or None")
        return np.random.RandomState(int(random_state))
    if isinstance(random_state, (np.random.RandomState, np.random.Generator)):
        return random_state
    raise TypeError(f"{name}={random_state!r} ({type(random_state).__name__}) is not a seed: "
                    "pass None, an int, or a numpy RandomState")


# -- Minka's choice of K ------------------------------------------------------------------------
_EPS = 1e-15


def _check_rank(rank, d):
    if not 1 <= rank < d:
        raise ValueError(f"rank={rank!r}: the tested rank should be in [1, n_features - 1] = "
                         f"[1, {d - 1}] (Minka's evidence divides by n_features - rank)")


def assess_dimension(spectrum, rank, n_samples):
    """Minka's (2000) Laplace approximation of log p(X | K = rank) for PPCA.

    ``spectrum``: the d eigenvalues of the sample covariance, decreasing. The evidence of a
    K-dimensional PPCA model integrates W over the Stiefel manifold (the log of its volume,
    ``pu``), keeps the K top eigenvalues as signal (``pl``), the mean of the rest as the noise
    variance v (``pv``), counts m = dK - K(K+1)/2 free parameters (``pp``) and the curvature
    of the likelihood at the optimum, the log-determinant ``pa`` of the Hessian, one factor
    (lam_i - lam_j)(1/lam~_j - 1/lam~_i) T for every pair i < K, j > i. A rank whose K-th
    eigenvalue is below 1e-15 gets -inf (it is noise; its logarithms are meaningless).
    """
    spectrum = np.asarray(spectrum, dtype=np.float64)
    d = spectrum.shape[0]
    _check_rank(rank, d)
    return float(_log_evidence(spectrum, n_samples)[rank])


def infer_dimension(spectrum, n_samples):
    """The K in [1, d - 1] of largest ``assess_dimension``: PCA(n_components="mle")."""
    spectrum = np.asarray(spectrum, dtype=np.float64)
    return int(np.argmax(_log_evidence(spectrum, n_samples)))


def _log_evidence(s, n):
    """ll[K] for K = 1..d-1 (ll[0] = -inf) in O(d^2): the pair sum of ``pa`` splits into the
    pairs inside the top K (a running sum over K) and those with j >= K, whose factor
    log(lam_i - lam_j) + log(1/v - 1/lam_i) needs suffix sums of log(lam_i - lam_j) over j."""
    d = s.shape[0]
    ll = np.full(d, -np.inf)
    if d < 2:
        return ll
    ranks = np.arange(1, d)
    ok = s[ranks - 1] >= _EPS
    with np.errstate(divide="ignore", invalid="ignore"):
        # pu: sum_{i=1..K} lgamma((d - i + 1)/2) - log(pi) (d - i + 1)/2, minus K log 2
        terms = np.array([lgamma((d - i + 1) / 2.0) - log(np.pi) * (d - i + 1) / 2.0
                          for i in range(1, d)])
        pu = np.cumsum(terms) - ranks * log(2.0)
        logs = np.log(np.where(s > 0, s, 1.0))
        pl = -np.cumsum(logs)[:d - 1] * n / 2.0
        tail = np.cumsum(s[::-1])[::-1]                   # tail[K] = sum_{j >= K} lam_j
        v = np.maximum(_EPS, tail[ranks] / (d - ranks))
        pv = -np.log(v) * n * (d - ranks) / 2.0
        m = d * ranks - ranks * (ranks + 1.0) / 2.0
        pp = log(2.0 * np.pi) * (m + ranks) / 2.0
        # L[i, j] = log(lam_i - lam_j) for i < j (the rest unused)
        L = np.log(s[:, None] - s[None, :])
        iu = np.triu(np.ones((d, d), dtype=bool), 1)
        L = np.where(iu, L, 0.0)
        inner = np.log((s[:, None] - s[None, :]) * (1.0 / s[None, :] - 1.0 / s[:, None]))
        inner = np.where(iu, inner, 0.0)
        # suffix[i, K] = sum_{j >= K} L[i, j]
        suffix = np.cumsum(L[:, ::-1], axis=1)[:, ::-1]
        pa = np.empty(d - 1)
        within = 0.0                                      # pairs i < j < K
        for K in range(1, d):
            if K >= 2:
                within += inner[:K - 1, K - 1].sum()
            i = np.arange(K)
            cross = suffix[i, K].sum() + (d - K) * np.log(1.0 / v[K - 1] - 1.0 / s[i]).sum()
            n_pairs = K * (d - 1) - K * (K - 1) / 2.0
            pa[K - 1] = within + cross + n_pairs * log(n)
        ll[1:] = np.where(ok, pu + pl + pv + pp - pa / 2.0 - ranks * log(n) / 2.0, -np.inf)
    return ll
