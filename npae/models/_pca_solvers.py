"""PCA's helpers beside the lecture's two closed forms: randomized SVD, ARPACK, Minka's choice
of K, and the random-state convention they share with scikit-learn.

``npae.models.pca`` keeps the slide's SVD and the eigendecomposition of A as its readable
heart; what is here answers "what if d and T are both large and only k << min(T, d)
directions are wanted?" (``randomized_svd``, ``arpack_svd``) and "which K?" (``infer_dimension``).
"""
from __future__ import annotations

import numbers
from math import lgamma, log

import numpy as np
import scipy.linalg

__all__ = ["check_random_state", "column_scatter", "CentredMatrix", "randomized_svd", "arpack_svd",
           "assess_dimension", "infer_dimension"]


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
