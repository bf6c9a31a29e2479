"""PCA, the lecture's "Totally Linear Case" and "Optimality of the Linear Autoencoder".

Rows of ``X`` are the examples x^(t), t = 1..T (T = n_samples), each in R^d. The slides:

    (1)  f(U, V) = sum_t ||x^(t) - U V x^(t)||^2,   U (d, k) decoder, V (k, d) encoder
    (2)  x^(t) <- (1/sqrt(T)) (x^(t) - (1/T) sum_t' x^(t'))          the lecture's normalisation
    (3)  A = sum_t x^(t) x^(t)T = U Sigma U^T      (after (2): the empirical covariance)
    (4)  h(x) = W x,        W  = (U_{., <=k})^T    (k, d)   encoder: top-k eigenvectors of A
    (5)  x_hat = W* h(x),   W* = U_{., <=k}        (d, k)   decoder
    (6)  min f = sum_{j > k} sigma_j                (the discarded eigenvalues of A)

After (2) the data matrix [x^(1) ... x^(T)] (d, T) has left singular vectors U and squared
singular values equal to the eigenvalues of A = (1/T) sum_t (x - mean)(x - mean)^T: "singular
values and (left) vectors = the eigenvalues/vectors of the covariance matrix". npae stores
samples as rows, so the data matrix is X^T and the lecture's *left* singular vectors are the
*right* singular vectors of X (the rows of ``Vt`` in X = U S Vt).

The estimator ``PCA`` follows scikit-learn's attribute conventions so its results can be
compared with ``sklearn.decomposition.PCA`` entry by entry:

* ``components_`` is W in (4), rows orthonormal;
* ``explained_variance_`` = eigenvalues of the *unbiased* covariance (divisor T - 1), i.e.
  S^2 / (T - 1) with S the singular values of the centred X (``singular_values_``); the
  lecture's (2) divides by T instead, so its sigma_j = explained_variance_ * (T - 1) / T
  (``lecture_normalize`` applies (2) exactly);
* signs: each row of W is flipped so that its entry of largest magnitude is positive
  (scikit-learn's ``svd_flip(..., u_based_decision=False)``, used by its "full" and
  "covariance_eigh" solvers), which makes the result independent of the solver.

Two solvers give the same subspace to machine precision:

* ``"svd"``: thin SVD of the centred X (one centred copy, O(T d min(T, d)));
* ``"eigh"``: eigenvectors of the covariance (3), formed without a centred copy of X
  (``covariance_scatter``): one BLAS ``dsyrk`` call (one triangle of the symmetric product
  X^T X, half the work of a general matrix product) and the shortcut
  sum_t (x - mu)(x - mu)^T = X^T X - T mu mu^T. The shortcut subtracts two large numbers
  when |mean| >> spread: feature j loses about log10(rho_j) digits, rho_j = sum_t x_j^2 /
  sum_t (x_j - mu_j)^2, and rho_j is read off the diagonal for free. Beyond
  rho = 1e4 (more than 4 of 16 digits lost) the matrix is recomputed exactly: blocks of rows
  are centred into one small buffer and added up by ``dsyrk`` (the two-pass formula's
  accuracy, still no copy of X). Then LAPACK's ``syevx`` (``syevr`` when k > d/4) computes
  only the top k eigenpairs.
* ``"auto"``: "eigh" when T >= 10 d (the covariance is small next to X), else "svd".
"""
from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.linalg import blas

from .._validation import as_float_array, check_param
from .base import BaseEstimator, check_is_fitted

__all__ = ["PCA", "lecture_normalize", "flip_signs", "scatter_matrix", "covariance_scatter",
           "check_n_components", "check_n_samples"]

#: the largest cancellation factor rho the uncentred shortcut may suffer (about 4 digits)
_MAX_CANCELLATION = 1e4

#: rows per block when accumulating the covariance: a few MB of buffer, large enough that
#: dsyrk runs at full speed, small enough to stay in cache-friendly territory.
_BLOCK_BYTES = 8 * 2**20


def check_n_samples(X, who):
    """At least 2 rows: one sample has no variance, so no subspace to find."""
    if X.shape[0] < 2:
        raise ValueError(f"{who} needs at least 2 samples (rows), got X with shape {X.shape}; "
                         "pass more samples (each row of X is one sample)")


def check_n_components(k, X, name="n_components"):
    """k must be an integer in [1, min(n_samples, n_features)]; returns it as int."""
    check_param(name, k, kind="int")
    kmax = min(X.shape)
    if not 1 <= k <= kmax:
        raise ValueError(
            f"{name}={k!r} is out of range for X of shape {X.shape}: it must lie in "
            f"[1, min(n_samples, n_features)] = [1, {kmax}]; ask for "
            f"{'fewer' if k > kmax else 'at least 1'} component(s)"
            f"{' or pass more samples/features' if k > kmax else ''}")
    return int(k)


def lecture_normalize(X):
    """Equation (2): x^(t) <- (x^(t) - mean) / sqrt(T), for every row. Returns (X_norm, mean).

    After it, sum_t x^(t) x^(t)T is the empirical covariance (divisor T), so the squared
    singular values of X_norm are that covariance's eigenvalues.
    """
    X = as_float_array(X, "X", ndim=2, dtype=np.float64)
    mean = X.mean(axis=0)
    return (X - mean) / np.sqrt(X.shape[0]), mean


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


def scatter_matrix(X, mean=None, block_rows=None):
    """sum_t (x^(t) - mean)(x^(t) - mean)^T, (d, d), without a centred copy of X.

    Only the UPPER triangle is filled (BLAS ``dsyrk`` writes one triangle of a symmetric
    product); read it with ``scipy.linalg.eigh(..., lower=False)`` or symmetrise it.
    Blocks of ``block_rows`` rows are centred into one reused buffer, so the result is as
    accurate as centring all of X first (the two-pass formula).
    """
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    if mean is None:
        mean = X.mean(axis=0)
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
    """sum_t (x^(t) - mean)(x^(t) - mean)^T (UPPER triangle) and whether it was centred in blocks.

    Fast path: X^T X - T mean mean^T with one ``dsyrk``. If that cancels more than
    ``_MAX_CANCELLATION`` on any diagonal entry (a feature whose mean dwarfs its spread, or a
    constant non-zero feature), falls back to the exact blocked ``scatter_matrix``.
    """
    n = X.shape[0]
    # X.T is (d, n) Fortran-ordered: dsyrk(trans=0) forms X^T X from it without a copy
    S = blas.dsyrk(1.0, X.T, trans=0, lower=0)
    raw = np.diag(S).copy()                       # sum_t x_j^2
    S -= n * np.outer(mean, mean)
    centred = np.diag(S)                          # sum_t (x_j - mu_j)^2, up to rounding
    # rho_j = raw_j / centred_j > limit, written without dividing by a zero variance
    if not np.any(raw > _MAX_CANCELLATION * np.maximum(centred, 0.0)):
        return S, False
    return scatter_matrix(X, mean), True


class PCA(BaseEstimator):
    """Principal component analysis: the optimal linear autoencoder (4)-(5) of centred data.

    Parameters
    ----------
    n_components : int in [1, min(n_samples, n_features)] or None
        k, the number of components; None keeps min(n_samples, n_features).
    solver : "auto", "svd" or "eigh"
        How to find the top-k eigenvectors (see the module docstring).

    Attributes
    ----------
    components_ : (k, d)       W of (4), orthonormal rows, sorted by decreasing variance
    mean_ : (d,)               the mean that (2) subtracts
    explained_variance_ : (k,) variance along each component (divisor n - 1, as sklearn)
    explained_variance_ratio_ : (k,)  its share of the total variance
    singular_values_ : (k,)    singular values of the centred X
    n_components_, n_samples_, n_features_in_ : int
    solver_ : str              the solver "auto" chose
    """

    def __init__(self, n_components=None, *, solver="auto"):
        self.n_components = n_components
        self.solver = solver

    # -- fitting -------------------------------------------------------------------------
    def _check(self, X):
        check_param("solver", self.solver, options=("auto", "svd", "eigh"))
        check_n_samples(X, type(self).__name__)
        if self.n_components is None:
            return min(X.shape)
        return check_n_components(self.n_components, X)

    def fit(self, X, y=None):
        """Learn mean_, components_ and the variances from the rows of X (y is ignored)."""
        self._fit(X)
        return self

    def _fit(self, X):
        X = self._validate_data(X, reset=True, dtype=np.float64)
        k = self._check(X)
        n, d = X.shape
        solver = self.solver
        if solver == "auto":
            solver = "eigh" if n >= 10 * d else "svd"
        self.mean_ = X.mean(axis=0)
        if solver == "svd":
            Xc = X - self.mean_
            _, S, Vt = scipy.linalg.svd(Xc, full_matrices=False, check_finite=False)
            explained = S**2 / (n - 1)
            total = explained.sum()
            W = Vt[:k]
            S = S[:k]
            explained = explained[:k]
        else:
            A, self._centred_in_blocks = covariance_scatter(X, self.mean_)  # (3), upper triangle
            A /= n - 1
            total = float(np.trace(A))                 # = the sum of all eigenvalues
            if k < d:
                # bisection + inverse iteration (evx) is the quicker for a few eigenpairs,
                # the MRRR algorithm (evr) for many
                sigma, U = scipy.linalg.eigh(A, lower=False, subset_by_index=[d - k, d - 1],
                                             driver="evx" if 4 * k <= d else "evr",
                                             overwrite_a=True, check_finite=False)
            else:
                sigma, U = scipy.linalg.eigh(A, lower=False, overwrite_a=True,
                                             check_finite=False)
            # eigh sorts ascending; a PSD matrix can still give -1e-17 from rounding
            explained = np.maximum(sigma[::-1], 0.0)
            W = U[:, ::-1].T                           # (4): W = (U_{., <=k})^T
            S = np.sqrt(explained * (n - 1))
        W = np.ascontiguousarray(W)
        flip_signs(W)
        self.components_ = W
        self.explained_variance_ = np.ascontiguousarray(explained)
        self.explained_variance_ratio_ = (self.explained_variance_ / total if total > 0
                                          else np.zeros_like(self.explained_variance_))
        self.singular_values_ = np.ascontiguousarray(S)
        self.n_components_ = k
        self.n_samples_ = n
        self.solver_ = solver
        return X

    # -- using it -------------------------------------------------------------------------
    def _validate(self, X, name="X"):
        check_is_fitted(self, "components_")
        return self._validate_data(X, reset=False, name=name, dtype=np.float64)

    def transform(self, X):
        """Codes h = W (x - mean), equation (4) on centred data: shape (n, k).

        Computed as X W^T - mean W^T so that X is never copied.
        """
        X = self._validate(X)
        W = self.components_
        h = X @ W.T
        h -= self.mean_ @ W.T
        return h

    def fit_transform(self, X, y=None):
        X = self._fit(X)
        return self.transform(X)

    def inverse_transform(self, H):
        """x_hat = W^T h + mean, equation (5) plus the mean (2) removed: shape (n, d)."""
        check_is_fitted(self, "components_")
        H = as_float_array(H, "H", ndim=2, dtype=np.float64)
        if H.shape[1] != self.n_components_:
            raise ValueError(f"H has {H.shape[1]} columns but this PCA has n_components_="
                             f"{self.n_components_}; pass codes from transform()")
        return H @ self.components_ + self.mean_

    def reconstruct(self, X):
        """The orthogonal projection of x onto the affine principal subspace: W^T W (x - m) + m."""
        return self.inverse_transform(self.transform(X))
