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

Two solvers give the same subspace to machine precision (scikit-learn's names "full" and
"covariance_eigh", the lecture's ``solver="svd"`` and ``"eigh"``), the first two functions
below, ``svd_of_X`` and ``eigh_of_A``; every solver returns one ``Spectrum``
(``_pca_solvers``, with the helpers and the truncated solvers), from which ``PCA`` chooses K:

* ``"svd"``: thin SVD of the centred X (one centred copy, O(T d min(T, d)));
* ``"eigh"``: eigenvectors of the covariance (3), formed without a centred copy of X
  (``covariance_scatter``): one BLAS ``syrk`` call (NumPy's ``X.T @ X``: one triangle of
  the symmetric product X^T X, half the work of a general matrix product) and the shortcut
  sum_t (x - mu)(x - mu)^T = X^T X - T mu mu^T. The shortcut subtracts two large numbers
  when |mean| >> spread: feature j loses about log10(rho_j) digits, rho_j = sum_t x_j^2 /
  sum_t (x_j - mu_j)^2, and rho_j is read off the diagonal for free. Beyond
  rho = 1e4 (more than 4 of 16 digits lost) the matrix is recomputed exactly: blocks of rows
  are centred into one small buffer and added up by ``dsyrk`` (the two-pass formula's
  accuracy, still no copy of X). Then LAPACK's ``syevx`` (``syevr`` when k > d/4) computes
  only the top k eigenpairs.
* ``solver="auto"``: "eigh" when T >= 10 d (the covariance is small next to X), else "svd".
  Float32 data is accumulated into A in float64 (blocked), so "eigh" loses nothing to it.

More solvers (scikit-learn's names; ``svd_solver_`` records the one that ran):

* ``"full"``: the slide's SVD above; ``"covariance_eigh"``: the eigendecomposition of A above;
* ``"randomized"``: Halko-Martinsson-Tropp randomized SVD of the centred X (``_pca_solvers``),
  for k << min(T, d): a few products of X with a thin matrix instead of a full decomposition;
* ``"arpack"``: Lanczos through ``scipy.sparse.linalg.svds``, k < min(T, d);
* ``"auto"``: scikit-learn's policy: "covariance_eigh" when d <= 1000 and T >= 10 d, else
  "full" when max(T, d) <= 500 or K is "mle", else "randomized" when 1 <= k < 0.8 min(T, d),
  else "full". ``solver="svd" | "eigh" | "auto"`` (the lecture's names) picks one of the two
  closed forms only ("auto": "eigh" when T >= 10 d).

Choosing K. ``n_components`` a float f in (0, 1) keeps the smallest K whose cumulative
explained-variance ratio exceeds f (the eigenfaces slide's "how many terms?"), ``"mle"``
Minka's Bayesian evidence (``_pca_solvers.infer_dimension``).

Whitening. h_white = h / sqrt(explained_variance_): the codes' covariance becomes the identity
(each direction rescaled to unit variance); ``inverse_transform`` multiplies back.

Probabilistic PCA (Tipping & Bishop 1999). The linear-Gaussian latent model

    z ~ N(0, I_K),   x = W_g^T z + mu + eps,   eps ~ N(0, sigma^2 I_d),   W_g (K, d)

has marginal x ~ N(mu, C), C = W_g^T W_g + sigma^2 I. Its maximum-likelihood solution is
W_g = (Lambda_K - sigma^2 I)^(1/2) W (up to a rotation), with W the top-K eigenvectors of A
(``components_``) and lambda_j their eigenvalues, and sigma^2 = mean of the d - K discarded
eigenvalues (``noise_variance_``). So the likelihood's optimum spans the PCA subspace, the
same subspace as the linear autoencoder's optimum (6): PCA is PPCA's sigma^2 -> 0 limit, and
PPCA is the linear-Gaussian latent-variable model that the variational autoencoder
generalises (a nonlinear decoder for W_g^T z, an encoder network for the posterior of z).
Then, with W's rows orthonormal and a_j = lambda_j - sigma^2:

    C      = W^T diag(a) W + sigma^2 I                                      ``get_covariance``
    C^-1   = W^T diag(1/(a + sigma^2)) W + (I - W^T W) / sigma^2            ``get_precision``
    log|C| = sum_j log(a_j + sigma^2) + (d - K) log sigma^2
    log p(x) = -1/2 (d log 2 pi + log|C| + (x - mu)^T C^-1 (x - mu))        ``score_samples``

Why. The mean log-likelihood is -1/2 (d log 2 pi + log|C| + tr(C^-1 S_X)), S_X the sample
covariance; setting its gradient in W_g to zero gives S_X C^-1 W_g^T = W_g^T, so every column
of W_g^T is an eigenvector of S_X, with eigenvalue a_j + sigma^2 = lambda_j; the maximum keeps
the K largest, and the d - K remaining directions have variance sigma^2, whose best value is
their mean. The inverse is the matrix inversion lemma, (sigma^2 I + W^T D W)^-1 = sigma^-2 (I -
W^T diag(a / (a + sigma^2)) W) with D = diag(a): the K x K inner matrix is diagonal because W's
rows are orthonormal, so no d x d inverse; C's eigenvalues give log|C|. ``score`` is the
mean of ``score_samples``; on held-out data it picks K (the notebook does). With
``whiten=True`` scikit-learn scales W by sqrt(lambda) in these formulas (a = lambda (lambda -
sigma^2)); npae follows it so that the numbers agree, but only ``whiten=False`` gives the
density of the data above.
"""
from __future__ import annotations

import numbers
from contextlib import nullcontext

import numpy as np
import scipy.linalg

from .._validation import as_float_array, check_param, max_magnitude
from .._validation import check_finite as _check_finite
from ._pca_solvers import (Spectrum, centre, check_random_state, covariance_scatter,
                           flip_signs, infer_dimension, scatter_matrix, truncated_svd)
from .base import BaseEstimator, check_is_fitted

__all__ = ["PCA", "svd_of_X", "eigh_of_A", "lecture_normalize", "flip_signs", "scatter_matrix",
           "covariance_scatter", "check_n_components", "check_n_samples"]


# -- the lecture's two closed forms --------------------------------------------------------

def svd_of_X(X, mean, *, copy=True):
    """The slide's SVD: the centred X = U S V^T, W = V^T, lambda_j = S_j^2 / (T - 1).

    One centred copy of X (none with ``copy=False``: X is centred in place), then LAPACK's
    thin SVD, O(T d min(T, d)); every singular triplet, so K may be chosen afterwards."""
    n = X.shape[0]
    Xc, centred = centre(X, mean, copy)
    U, S, Vt = scipy.linalg.svd(Xc, full_matrices=False, check_finite=False)
    explained = S**2 / (n - 1)
    U *= flip_signs(Vt)                 # the codes U S keep their sign with W's
    return Spectrum(Vt, explained, S, explained.sum(), len(explained), None, U,
                    Xc if centred else X, centred)


#: above this many features eigh_of_A computes only the top k eigenpairs (SciPy's subset
#: drivers); below it the full decomposition costs little more than a subset
_FULL_EIGH_MAX_D = 1024


def eigh_of_A(X, mean, k, check_finite=False):
    """The slide's eigendecomposition (3)-(4): A = sum_t (x - mu)(x - mu)^T / (T - 1) =
    U Sigma U^T, W = (U_{., <=k})^T, lambda_j = Sigma_jj.

    A is formed without a centred copy of X (``covariance_scatter``); all d eigenpairs are
    computed (``tail``, for an integer k < d, sums the d - k smallest eigenvalues), except
    for d > _FULL_EIGH_MAX_D, where only the top k are (``tail`` is then the trace minus their
    sum).

    ``check_finite``: refuse NaN, inf and values beyond ``max_magnitude`` in X exactly as
    ``npae._validation.check_finite(X, bounded=True)`` does, but without its pass over X
    where the mean and A's diagonal show nothing wrong (any NaN or inf in X makes them
    non-finite; |x| > B makes sum_t x^2 > B^2)."""
    n, d = X.shape
    # a bad X makes warnings here; with check_finite the error below says what is wrong
    with np.errstate(invalid="ignore", over="ignore") if check_finite else nullcontext():
        A, _ = covariance_scatter(X, mean)        # (3), upper triangle
        raw = np.diagonal(A) + n * np.square(mean) if check_finite else None  # sum_t x_j^2
    if check_finite and not (np.isfinite(raw).all()
                             and raw.max() <= 0.5 * max_magnitude(X.dtype) ** 2):
        _check_finite(X, "X", bounded=True)        # raises, naming the first bad value
    A /= n - 1
    total = float(np.trace(A))                    # = the sum of all eigenvalues
    partial = isinstance(k, numbers.Integral) and k < d
    subset = partial and d > _FULL_EIGH_MAX_D
    if subset:
        A_copy = A.copy()   # for sigma^2's exact tail when the trace shortcut would cancel
        # bisection + inverse iteration (evx) is the quicker for a few eigenpairs, the
        # MRRR algorithm (evr) for many (k = 0 asks for one pair: a subset cannot be empty)
        kk = max(k, 1)
        sigma, U = scipy.linalg.eigh(A, lower=False, subset_by_index=[d - kk, d - 1],
                                     driver="evx" if 4 * kk <= d else "evr",
                                     overwrite_a=True, check_finite=False)
    else:
        # NumPy's LAPACK, from the same BLAS build as the product that formed A: SciPy ships
        # its own, whose threads would compete with NumPy's, still spinning after the
        # product (measured: SciPy's eigh then takes twice as long as NumPy's full one)
        sigma, U = np.linalg.eigh(A, UPLO="U")
    # eigh sorts ascending; a PSD matrix can still give -1e-17 from rounding
    explained = np.maximum(sigma[::-1], 0.0)
    W = np.ascontiguousarray(U[:, ::-1].T)        # (4): W = (U_{., <=k})^T
    flip_signs(W)
    S = np.sqrt(explained * (n - 1))
    tail = None
    if partial:
        rest = explained[k:]                       # the other eigenvalues, if computed
        W, explained, S = W[:k], explained[:k], S[:k]
        tail = 0.0
        if k < min(n, d):
            tail = float(rest.sum()) if not subset else total - explained.sum()
            if subset and tail <= 1e-6 * total:   # the subtraction kept < 10 digits: sum it
                tail = np.maximum(scipy.linalg.eigvalsh(A_copy, lower=False,
                                                        check_finite=False), 0.0)[:d - k].sum()
            tail = max(tail, 0.0)
    return Spectrum(W, explained, S, total, d, tail, None, X, False)


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


def _choose_k(k, explained, ratio, n):
    """K itself, or chosen from a whole spectrum: the smallest K whose cumulative
    explained-variance ratio exceeds a fraction k, or Minka's K for "mle"."""
    if k == "mle":
        return infer_dimension(explained, n)
    if 0 < k < 1:
        # the smallest K whose cumulative ratio exceeds k ("right": strictly above)
        k = int(np.searchsorted(np.cumsum(ratio), k, side="right")) + 1
        return min(k, len(explained))
    return k


_SOLVERS = ("auto", "full", "covariance_eigh", "arpack", "randomized")
_LECTURE_SOLVERS = {"svd": "full", "eigh": "covariance_eigh"}


class PCA(BaseEstimator):
    """Principal component analysis: the optimal linear autoencoder (4)-(5) of centred data,
    with scikit-learn's constructor, attributes and numbers (``sklearn.decomposition.PCA``).

    Parameters
    ----------
    n_components : int, float in (0, 1), "mle" or None
        K: an int (0 <= K <= min(T, d); randomized needs K >= 1, arpack K < min(T, d)); a
        float f keeps the smallest K whose cumulative explained-variance ratio exceeds f;
        "mle" Minka's choice (needs T >= d); None keeps min(T, d) (arpack: min(T, d) - 1).
    copy : bool
        False lets "full", "randomized" and "arpack" centre X in place (it is overwritten).
    whiten : bool
        Divide the codes by sqrt(explained_variance_): unit-variance, uncorrelated codes.
    svd_solver : "auto", "full", "covariance_eigh", "randomized" or "arpack"
        See the module docstring.
    tol : float >= 0                  ARPACK's tolerance (0: machine precision)
    iterated_power, n_oversamples, power_iteration_normalizer
        The randomized solver's q ("auto": 7 if K < 0.1 min(T, d), else 4), l - K (>= 1) and
        re-orthonormalisation ("auto": none if q <= 2, else "LU"; or "QR", "none").
    random_state : None, int or numpy RandomState
        Randomized and arpack start vectors, drawn exactly as scikit-learn draws them.
    solver : None, "auto", "svd" or "eigh"
        The lecture's names for the two closed forms (overrides ``svd_solver``): "svd" is
        "full", "eigh" is "covariance_eigh", "auto" picks "eigh" when T >= 10 d, else "svd".

    Attributes
    ----------
    components_ : (K, d)         W of (4), orthonormal rows, sorted by decreasing variance
    mean_ : (d,)                 the mean that (2) subtracts
    explained_variance_ : (K,)   eigenvalues lambda_j of the covariance (divisor T - 1)
    explained_variance_ratio_ : (K,)  their share of the total variance
    singular_values_ : (K,)      singular values of the centred X
    noise_variance_ : float      PPCA's sigma^2: the mean of the discarded eigenvalues
    n_components_, n_samples_, n_features_in_ : int
    svd_solver_ : str            the solver that ran; ``solver_`` the same in the lecture's
                                 names ("svd", "eigh", "randomized", "arpack")

    Float32 input gives float32 attributes and outputs; integers become float64. Sparse
    input is refused with a TypeError (call ``.toarray()`` if it fits in memory).
    """

    def __init__(self, n_components=None, *, copy=True, whiten=False, svd_solver="auto",
                 tol=0.0, iterated_power="auto", n_oversamples=10,
                 power_iteration_normalizer="auto", random_state=None, solver=None):
        self.n_components = n_components
        self.copy = copy
        self.whiten = whiten
        self.svd_solver = svd_solver
        self.tol = tol
        self.iterated_power = iterated_power
        self.n_oversamples = n_oversamples
        self.power_iteration_normalizer = power_iteration_normalizer
        self.random_state = random_state
        self.solver = solver

    # -- checks -----------------------------------------------------------------------------
    def _check_params(self):
        check_param("copy", self.copy, options=(True, False))
        check_param("whiten", self.whiten, options=(True, False))
        check_param("svd_solver", self.svd_solver, options=_SOLVERS)
        if self.solver is not None:
            check_param("solver", self.solver, options=("auto", "svd", "eigh"))
            if self.svd_solver != "auto":
                raise ValueError(f"solver={self.solver!r} and svd_solver={self.svd_solver!r} "
                                 "both choose the solver; pass only one of them")
        check_param("tol", self.tol, low=0.0)
        if self.iterated_power != "auto":
            check_param("iterated_power", self.iterated_power, kind="int", low=0)
        check_param("n_oversamples", self.n_oversamples, kind="int", low=1)
        check_param("power_iteration_normalizer", self.power_iteration_normalizer,
                    options=("auto", "QR", "LU", "none"))
        if not isinstance(self.random_state, (np.random.RandomState, np.random.Generator)):
            check_random_state(self.random_state)      # a bad seed fails before any work
        k = self.n_components
        if k is None or (isinstance(k, str) and k == "mle"):
            return
        if isinstance(k, str):
            raise ValueError(f"n_components={k!r} is not supported: pass an int, a float in "
                             "(0, 1) (a fraction of variance), 'mle' or None")
        if isinstance(k, bool) or not isinstance(k, numbers.Real):
            raise TypeError(f"n_components must be an integer, a float in (0, 1), 'mle' or "
                            f"None, got {k!r} ({type(k).__name__})")
        if not isinstance(k, numbers.Integral) and not 0 < k < 1:
            raise ValueError(f"n_components={k!r} is neither an integer number of components "
                             "nor a fraction of variance in (0, 1) (open interval); pass e.g. "
                             f"{int(k) if np.isfinite(k) and k >= 1 else 2} or 0.95")

    def _choose_solver(self, X, k):
        """The solver that runs (scikit-learn's policy for "auto") and the K to validate."""
        n, d = X.shape
        if self.solver is not None:
            if self.solver == "auto":
                return "covariance_eigh" if n >= 10 * d else "full"
            return _LECTURE_SOLVERS[self.solver]
        solver = self.svd_solver
        if solver == "auto":
            if d <= 1000 and n >= 10 * d:     # tall: A is small next to X
                solver = "covariance_eigh"
            elif max(n, d) <= 500 or k == "mle":
                solver = "full"
            elif not isinstance(k, str) and 1 <= k < 0.8 * min(n, d):
                solver = "randomized"
            else:                             # also K a fraction of variance
                solver = "full"
        return solver

    @staticmethod
    def _check_k(k, X, solver):
        n, d = X.shape
        m = min(n, d)
        where = (f"with svd_solver={solver!r} (X has shape {X.shape}); ask for fewer "
                 "components, pass more samples or features, or choose n_components=None")
        if isinstance(k, str):                 # "mle"
            if solver in ("arpack", "randomized"):
                raise ValueError(f"n_components={k!r} cannot be a string with svd_solver="
                                 f"'{solver}': Minka's choice needs every eigenvalue; use "
                                 "svd_solver='full' or 'covariance_eigh'")
            if n < d:
                raise ValueError("n_components='mle' is only supported if n_samples >= "
                                 f"n_features (X has shape {X.shape}); pass an int K instead")
        elif solver in ("full", "covariance_eigh"):
            if not 0 <= k <= m:
                raise ValueError(f"n_components={k} must be between 0 and min(n_samples, "
                                 f"n_features)={m} {where}")
        elif not 1 <= k <= m:
            raise ValueError(f"n_components={k!r} must be between 1 and min(n_samples, "
                             f"n_features)={m} {where}")
        elif solver == "arpack" and k == m:
            raise ValueError(f"n_components={k!r} must be strictly less than min(n_samples, "
                             f"n_features)={m} {where} (ARPACK cannot find the last one)")

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Learn mean_, components_, the variances and sigma^2 from the rows of X (y ignored)."""
        self._fit(X)
        return self

    def fit_transform(self, X, y=None):
        """fit(X).transform(X), read off the SVD where one was computed (as scikit-learn):
        the codes of the centred X = U S Vt are U S (whitened: U sqrt(T - 1))."""
        sp = self._fit(X)
        X = sp.X
        if sp.U is not None:
            U = np.ascontiguousarray(sp.U[:, :self.n_components_], dtype=X.dtype)
            U *= np.sqrt(X.shape[0] - 1) if self.whiten else self.singular_values_
            return U
        if sp.centred:
            return self._whiten(X @ self.components_.T)
        return self.transform(X)

    def _fit(self, X):
        """Validate, run the solver, choose K, store the attributes; returns the Spectrum."""
        self._check_params()
        # float32 stays, the rest -> float64; NaN, inf and huge values are refused below
        X = self._validate_data(X, reset=True, finite=False)
        check_n_samples(X, type(self).__name__)
        n, d = X.shape
        k = self.n_components
        if k is None:
            k = min(n, d) - 1 if self.svd_solver == "arpack" and self.solver is None \
                else min(n, d)
        solver = self._choose_solver(X, k)
        self._check_k(k, X, solver)
        # covariance_eigh in float64 sees a bad value in the mean and A's diagonal, which it
        # computes anyway: a pass over X saved, the same error raised
        from_A = solver == "covariance_eigh" and X.dtype == np.float64
        if not from_A:
            _check_finite(X, "X", bounded=True)
        with np.errstate(invalid="ignore", over="ignore"):    # inf - inf: checked in eigh_of_A
            mean = X.mean(axis=0, dtype=np.float64)
        if solver == "full":
            sp = svd_of_X(X, mean, copy=self.copy)
        elif solver == "covariance_eigh":
            sp = eigh_of_A(X, mean, k, check_finite=from_A)
        else:
            sp = truncated_svd(X, mean, k, solver, copy=self.copy,
                               random_state=self.random_state, n_oversamples=self.n_oversamples,
                               n_iter=self.iterated_power, tol=self.tol,
                               power_iteration_normalizer=self.power_iteration_normalizer)
        total, explained = sp.total, sp.explained
        ratio = explained / total if total > 0 else np.zeros_like(explained)
        k = _choose_k(k, explained, ratio, n)
        dt = X.dtype
        self.components_ = np.ascontiguousarray(sp.components[:k], dtype=dt)
        self.explained_variance_ = np.ascontiguousarray(explained[:k], dtype=dt)
        self.explained_variance_ratio_ = np.ascontiguousarray(ratio[:k], dtype=dt)
        self.singular_values_ = np.ascontiguousarray(sp.singular[:k], dtype=dt)
        self.noise_variance_ = dt.type(sp.noise_variance(k, n))
        self.mean_ = mean.astype(dt)
        self.n_components_ = int(k)
        self.n_samples_ = n
        self.svd_solver_ = self._fit_svd_solver = solver
        self.solver_ = {v: k_ for k_, v in _LECTURE_SOLVERS.items()}.get(solver, solver)
        return sp

    # -- using it ---------------------------------------------------------------------------
    def _validate(self, X, name="X"):
        check_is_fitted(self, "components_")
        return self._validate_data(X, reset=False, name=name)

    def _whiten(self, h):
        if self.whiten:
            # a direction of (near) zero variance would give inf: clip its scale at eps
            scale = np.sqrt(self.explained_variance_)
            h /= np.maximum(scale, np.finfo(scale.dtype).eps)
        return h

    def transform(self, X):
        """Codes h = W (x - mean), (4) on centred data, (n, K), as X W^T - mean W^T (X is
        never copied); with ``whiten=True`` divided by sqrt(explained_variance_)."""
        X = self._validate(X)
        W = self.components_
        h = X @ W.T
        h -= self.mean_ @ W.T
        return self._whiten(h)

    def inverse_transform(self, H):
        """x_hat = W^T h + mean, equation (5) plus the mean (2) removed: shape (n, d)
        (whitened codes are first multiplied back by sqrt(explained_variance_))."""
        check_is_fitted(self, "components_")
        H = as_float_array(H, "H", ndim=2, allow_empty=self.n_components_ == 0)
        if H.shape[1] != self.n_components_:
            raise ValueError(f"H has {H.shape[1]} columns but this PCA has n_components_="
                             f"{self.n_components_}; pass codes from transform()")
        W = self.components_
        if self.whiten:
            W = np.sqrt(self.explained_variance_)[:, None] * W
        return H @ W + self.mean_

    def reconstruct(self, X):
        """The orthogonal projection of x onto the affine principal subspace: W^T W (x - m) + m."""
        return self.inverse_transform(self.transform(X))

    def get_feature_names_out(self, input_features=None):
        """Names of the codes' columns, as scikit-learn gives them: pca0, pca1, ..."""
        check_is_fitted(self, "components_")
        if input_features is not None and len(input_features) != self.n_features_in_:
            raise ValueError(f"input_features has {len(input_features)} names but this PCA was "
                             f"fitted on {self.n_features_in_} features; pass one per feature")
        return np.array([f"pca{i}" for i in range(self.n_components_)], dtype=object)

    # -- probabilistic PCA (module docstring) -----------------------------------------------
    def _ppca(self):
        """W (K, d), the model's variance a_j + sigma^2 along each row of W, and sigma^2."""
        check_is_fitted(self, "components_")
        lam = self.explained_variance_
        s2 = self.noise_variance_
        a = np.where(lam > s2, lam - s2, 0.0).astype(lam.dtype)
        if self.whiten:            # scikit-learn's convention (module docstring)
            a = a * lam
        return self.components_, a + s2, s2

    def get_covariance(self):
        """C = W^T diag(lambda - sigma^2) W + sigma^2 I (d, d): PPCA's covariance of x."""
        W, c, s2 = self._ppca()
        C = (W.T * (c - s2)) @ W
        C.flat[::C.shape[0] + 1] += s2
        return C

    def get_precision(self):
        """C^-1 by the matrix inversion lemma: W^T diag(1/c) W + (I - W^T W) / sigma^2.

        With sigma^2 = 0 (K = min(T, d)) the model is a Gaussian on the affine span of the
        components: the pseudo-inverse W^T diag(1/c) W over the directions with c > 0 (the
        true inverse when K = d).
        """
        W, c, s2 = self._ppca()
        d = W.shape[1]
        if s2 > 0:
            P = (W.T * (1.0 / c - 1.0 / s2)) @ W
            P.flat[::d + 1] += 1.0 / s2
            return P
        keep = c > 0
        return (W[keep].T / c[keep]) @ W[keep]

    def score_samples(self, X):
        """log N(x | mu, C) for every row x of X: PPCA's per-sample log-likelihood, (n,)."""
        X = self._validate(X)
        W, c, s2 = self._ppca()
        d = X.shape[1]
        R = X - self.mean_
        H = R @ W.T
        keep = c > 0 if s2 == 0 else np.ones(len(c), dtype=bool)
        quad = (H[:, keep] ** 2 / c[keep]).sum(axis=1)
        logdet = np.log(c[keep]).sum()
        if s2 > 0:
            # (x - mu)^T (I - W^T W) (x - mu) = |x - mu|^2 - |h|^2: the part off the subspace
            quad += (np.einsum("ij,ij->i", R, R) - (H**2).sum(axis=1)) / s2
            logdet += (d - len(c)) * np.log(s2)
        return -0.5 * (d * np.log(2.0 * np.pi) + logdet + quad)

    def score(self, X, y=None):
        """Mean PPCA log-likelihood of the rows of X (y ignored): higher fits better."""
        return float(np.mean(self.score_samples(X)))

    def _preserved_dtypes(self):
        return ["float64", "float32"]
