r"""Predictive Sparse Decomposition (PSD): a sparse-coding decoder with a fast predictor.

The lecture's slide "Predictive Sparse Decomposition", at training time::

    (1)  min over D, W, z of   ||D z - x||^2 + lam ||z||_1  +  ||sigma(W x) - z||^2
                               \__________ decoder ______/    \_____ encoder ____/

D (d, m) is a dictionary of m atoms (its columns d_j), z (m,) the sparse code of x (d,),
and h(x) = sigma(W x) the encoder's *prediction* of that code (W is (m, d)). At test time
the code costs one matrix product, h(x), instead of an iterative solve: that is the point.

Conventions
-----------
* The slide's objective is used exactly: no 1/2 factors. In npae.losses' convention
  (``squared_error`` = 1/2 ||x_hat - x||^2) the decoder term is 2 * squared_error(Dz, x).
* Reduction as everywhere in npae: sum over features, **mean over the batch**. For rows
  x^(t), z^(t), t = 1..n (X is (n, d), Z is (n, m); a row's reconstruction is D z, so the
  batch's is Z D^T)::

    (2)  E(D, W, Z) = (1/n) sum_t [ ||D z^(t) - x^(t)||^2 + lam ||z^(t)||_1
                                    + ||h(x^(t)) - z^(t)||^2 ]

* The encoder has a bias: a = W x + b, h = sigma(a). The slide's sigma(W x) is the special
  case b = 0. The bias matters for a sigmoid: a sparse code is mostly 0, and sigma(Wx) can
  only get near 0 through a large negative Wx; a learned b < 0 gives every unit a cheap
  "off" state. ``encoder_bias=False`` fixes b = 0 and gives the slide's form literally.
* ``encoder="sigmoid"`` is the lecture's sigma: h = sigm(a), a prediction in (0, 1).
  ``encoder="tanh"`` is Kavukcuoglu, Ranzato & LeCun (2008), "Fast inference in sparse
  coding algorithms with applications to object recognition": h = g * tanh(a) with a learned
  per-unit gain g (their diagonal matrix G), so the prediction can be negative and larger
  than 1 (their weight alpha of the prediction term is the slide's 1). With unit-norm atoms
  the optimal codes of [0, 1] images run to several units and can be negative, which sigm
  cannot predict; the tanh with gain has no such limit.

Training: alternating minimisation, one *block* per mini-batch
--------------------------------------------------------------
Training runs through ``npae.train.fit_loop`` like every gradient-trained model (shared
mini-batches, checkpoints, ``resume`` and divergence rules), but a block is not one
optimiser step on all parameters: it is three exact or line-searched minimisation steps in
turn, with a projection. The loop's loss is the z-step (the objective (2) at the batch's
optimal codes) and its "optimiser" (``_AlternatingSteps``) takes the D- and W-steps. Each
step never increases (2).

z-step (``_z_step``), D and W fixed. Per row, (1)'s z-part, convex in z::

    (3)  z* = argmin_z  ||D z - x||^2 + lam ||z||_1 + ||z - h||^2

a lasso with a prediction term, solved by ``npae.sparse_coding.sparse_encode`` (coordinate
descent by default, or ISTA/FISTA; stopped by the duality gap; warm-started at h). The
sparse-coding module derives the solvers; nothing about them is PSD-specific.

D-step (``_d_step``), Z fixed. Only the decoder term depends on D::

    (4)  grad_D (1/n) sum_t ||D z - x||^2 = (2/n) sum_t (D z - x) z^T = (2/n) R^T Z,   R = Z D^T - X

A step of 1/lipschitz_D, lipschitz_D = 2 lambda_max(Z^T Z) / n (the Lipschitz constant of (4)
in D), then every column is projected back to unit norm, d_j <- d_j / ||d_j||. Why: the
objective is unchanged by D -> D S, z -> S^{-1} z for any diagonal S > 0 except for
lam ||z||_1, which shrinks as S grows; without a norm constraint the optimiser drives
||z||_1 -> 0 by blowing the atoms up, and the sparsity penalty stops meaning anything.
Normalising is a projection onto a non-convex set, so the step is backtracked (halved) until
the decoder term does not increase.

W-step (``_w_step``), Z fixed. Only the encoder term depends on W (and b, g). With a = W x + b::

    (5)  sigmoid:  h = sigm(a),        delta = dE/da = (2/n) (h - z) * h (1 - h)
         tanh:     h = g * tanh(a),    delta = (2/n) (h - z) * g (1 - tanh(a)^2),
                                       dE/dg = (2/n) sum_t (h - z) * tanh(a)
         dE/dW = sum_t delta x^T = delta^T X (rows as samples),   dE/db = sum_t delta

(sigm'(a) = sigm(a)(1 - sigm(a)), tanh' = 1 - tanh^2.) A gradient step with Armijo
backtracking (the step halves until the encoder term decreases enough).

The loss of the parameters
--------------------------
``objective(X)`` and ``gradients(X)``: z is a latent variable, not a parameter, so the loss of
the parameters is the objective at the optimal codes::

    (6)  J(D, W) = (1/n) sum_t min_z E(x^(t), z)

The inner problem is strongly convex (its Hessian is at least 2I), so its minimiser z* is
unique and, by Danskin's theorem, the gradient of (6) is the partial gradient of E at z = z*
(the dependence of z* on D, W does not contribute, because dE/dz = 0 there, in the
subgradient sense): gradients(X) returns (4) and (5) evaluated at z*. ``objective(X, Z=Z)``
and ``gradients(X, Z=Z)`` give (2) and its parameter gradients at any Z; ``code_gradient(X,
Z)`` the smooth part's gradient in Z, 2 (D^T (D z - x) + (z - h)) / n per row.

The encoder is npae's layers: ``Linear`` (W, b) then ``Sigmoid`` or ``Tanh``; their backward
passes give (5)'s W and b gradients. The tanh encoder's gain g is the model's own term.
"""
from __future__ import annotations

import warnings

import numpy as np

from .._validation import as_float_array, check_param
from ..nn import Linear, Sequential, Sigmoid, Tanh
from ..sparse_coding import gram_problem, solve_gram, soft_threshold, sparse_encode
from ..train import fit_loop
from .base import BaseEstimator, GradientModelMixin, check_is_fitted, check_size

# soft_threshold and sparse_encode live in npae.sparse_coding; importable from here as before
__all__ = ["PredictiveSparseDecomposition", "PSD", "sparse_encode", "soft_threshold"]


# --------------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------------

class PredictiveSparseDecomposition(GradientModelMixin, BaseEstimator):
    """PSD, the slide's (1), trained by alternating minimisation (z-, D-, W-step).

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
        The z-step's algorithm (``npae.sparse_coding``): coordinate descent with an active
        set, or the proximal gradient methods. Same stopping rule, same optimum.
    batch_size : int >= 1
    z_tol, z_max_iter : the z-step's stopping rule (relative duality gap) and iteration cap.
    step_scale : float in (0, 1]
        The D-step's step is step_scale / lipschitz_D (1: the majoriser's exact step on the batch).
    encoder_bias : bool
        Learn the encoder bias b (True) or keep b = 0, the slide's sigma(W x) literally.
    dict_init : "data" | "random"
        Initial atoms: random training samples (normalised, plus 1% noise) or random
        Gaussian directions. Random atoms far from the data may never enter a code and then
        never move (their D-step gradient (4) is zero): "data" avoids such dead atoms.
    random_state : None, int or Generator
    verbose : bool
        Print the terms of the objective after each epoch.

    Attributes
    ----------
    components_ : (n_atoms, n_features), the atoms as rows (D = components_.T), unit norm.
    history_ : dict of per-epoch lists, means over the samples of the epoch, measured at each
        block's optimal z (before that block's D- and W-steps): "reconstruction"
        ||Dz - x||^2, "sparsity_penalty" lam ||z||_1, "prediction" ||h - z||^2, "objective"
        (their sum), "code_rel_error" ||h - z||_F / ||z||_F over the epoch (over ||h||_F
        instead if every z was 0, which ``fit`` warns about: lam too large; never NaN), "zero_fraction"
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
        check_param("verbose", self.verbose, options=(True, False))

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
        lin = self._build_encoder(d, rng.standard_normal((m, d)) * (0.1 / np.sqrt(d)))
        params = {"D": D, "W": lin.params["W"]}
        if self.encoder_bias:
            params["b"] = lin.params["b"]
        if self.encoder == "tanh":
            params["g"] = np.ones(m)      # the gain: a model term, no layer's
        self._params = params

    def _check_sizes(self, d):
        # D, W, their gradients and the trial arrays of the W-step
        check_size(6 * d * int(self.n_atoms), f"n_atoms={self.n_atoms} (the {d} x n_atoms "
                   f"dictionary D and the n_atoms x {d} encoder weights W)")

    def _build_encoder(self, d, W):
        """h(x) of npae's layers: ``Linear`` (W, and b unless ``encoder_bias=False``) and
        ``Sigmoid`` or ``Tanh``; the tanh encoder's gain g is the model's own term."""
        lin = Linear(d, self.n_atoms, bias=bool(self.encoder_bias),
                     rng=np.random.default_rng(0))
        lin.params["W"][...] = W
        lin.check_input = False          # the model validates once, at its entry points
        lin.needs_input_grad = False     # its input is the data: no dL/dx to form
        act = Sigmoid() if self.encoder == "sigmoid" else Tanh()
        act.check_input = False
        self.encoder_ = Sequential(lin, act)
        self.encoder_.check_input = False
        return lin

    def _restore_network(self):
        self._init_params(self.n_features_in_, np.random.default_rng(0))

    def parameters(self):
        """{"D": (d, m), "W": (m, d)[, "b": (m,)][, "g": (m,) for tanh]}, the live arrays
        (W and b are the encoder's ``Linear`` layer's own)."""
        check_is_fitted(self, "_params")
        return self._params

    @property
    def components_(self):
        check_is_fitted(self, "_params")
        return self._params["D"].T

    # -- the encoder h(x) and its derivative --------------------------------------------------
    def _encode(self, X):
        """(h, s): h the prediction, s = sigm(a) or tanh(a), a = X W^T + b, by the encoder's
        layers (whose caches ``_encoder_grads`` then back-propagates through)."""
        s = self.encoder_.forward(X)
        return (s if self.encoder == "sigmoid" else self._params["g"] * s), s

    def _encoder_grads(self, X, Z, h, s):
        """(5): gradients of (1/n) sum ||h - z||^2 with respect to W, b (and g), for the
        encoder's last forward pass (on X): the layers' backward gives W's and b's; the
        tanh encoder's gain g is the model's own term (copies)."""
        n = X.shape[0]
        e = (2.0 / n) * (h - Z)                       # dE/dh
        gain = None
        if self.encoder == "tanh":
            gain = (e * s).sum(axis=0)                # h = g * tanh(a): dE/dg
            e *= self._params["g"]                    # dE/dtanh(a)
        lin, act = self.encoder_.layers
        lin.zero_grad()
        lin.backward(act.backward(e))                 # delta = dE/da, then delta^T X
        grads = {name: g.copy() for name, g in lin.grads.items()}
        if gain is not None:
            grads["g"] = gain
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

    _fitted_attribute = "_params"

    def objective(self, X, *, rng=0, Z=None):
        """(2) at codes Z: the mean over rows of ||Dz - x||^2 + lam ||z||_1 + ||h(x) - z||^2.
        Without Z: (6), (2) at the optimal codes z*. ``rng`` is unused (no noise)."""
        return self._evaluate(X, rng, need_grad=False, Z=Z)[0]

    def gradients(self, X, *, rng=0, Z=None):
        """Gradients of ``objective(X, Z=Z)`` in the parameters (keys of ``parameters()``):
        (4) for D, (5) for W, b (, g); without Z, at the optimal codes z* (Danskin)."""
        return self._evaluate(X, rng, need_grad=True, Z=Z)[1]

    def code_gradient(self, X, Z):
        """The gradient of the smooth part of ``objective(X, Z=Z)`` in the codes Z:
        (2/n) [(Dz - x)^T D + (z - h)] row-wise (the l1 term adds lam sign(z) / n where
        z != 0; it has no gradient at 0)."""
        X = self._input(X)
        Z = self._check_codes(Z, X.shape[0])
        h = self._encode(X)[0]
        D = self._params["D"]
        return (2.0 / X.shape[0]) * ((Z @ D.T - X) @ D + (Z - h))

    def _evaluate(self, X, rng, need_grad, Z=None):
        X = self._input(X)
        if Z is not None:
            Z = self._check_codes(Z, X.shape[0])
        return self._objective_and_gradients(X, rng, need_grad, Z=Z)

    def _objective_and_gradients(self, X, rng=None, need_grad=True, Z=None):
        """The contract's hook: (2) at the codes Z, or (6) at the optimal codes z* (Z None),
        and the gradients (4), (5) in the parameters there (fresh arrays)."""
        h, s = self._encode(X)
        if Z is None:
            Z = self._z_step(X, h)
        L = sum(self._terms(X, Z, h).values())
        if not need_grad:
            return L, None
        R = Z @ self._params["D"].T - X
        grads = {"D": (2.0 / X.shape[0]) * R.T @ Z}                          # (4)
        grads.update(self._encoder_grads(X, Z, h, s))                         # (5)
        return L, grads

    # -- the three steps of a block ------------------------------------------------------------
    def _z_step(self, X, h, Z0=None, tol=None):
        """(3) for every row of X, warm-started at Z0 (default: the prediction h)."""
        Z0 = h if Z0 is None else Z0
        H, C, sq = gram_problem(X, self._params["D"], h)
        Z, n_iter = solve_gram(H, C, sq, Z0, float(self.lam), self.z_solver,
                               self.z_tol if tol is None else tol, self.z_max_iter, "numba")
        self._last_z_iter = float(n_iter.mean())
        return Z

    def _d_step(self, X, Z):
        """(4), then unit-norm columns; the step halves until ||ZD^T - X||^2 does not grow."""
        D = self._params["D"]
        n = X.shape[0]
        R = Z @ D.T - X
        rec0 = np.vdot(R, R)
        grad = (2.0 / n) * R.T @ Z
        ZZ = Z.T @ Z if Z.shape[1] <= n else Z @ Z.T   # same non-zero eigenvalues
        lipschitz_D = 2.0 * float(np.linalg.eigvalsh(ZZ)[-1]) / n
        if lipschitz_D <= 0:   # all codes zero: D does not enter the objective
            return
        eta = self.step_scale / lipschitz_D
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
        """(5) with Armijo backtracking on (1/n) sum ||h - z||^2 (never increases it)."""
        p = self._params
        h, s = self._encode(X)
        n = X.shape[0]
        enc0 = np.vdot(h - Z, h - Z) / n
        grads = self._encoder_grads(X, Z, h, s)
        g2 = sum(float(np.vdot(g, g)) for g in grads.values())
        if g2 == 0:
            return
        old = {name: p[name].copy() for name in grads}
        eta = 2.0 * self._eta_w
        for _ in range(40):
            for name, g in grads.items():       # the trial point, in the live arrays
                np.subtract(old[name], eta * g, out=p[name])
            h_new = self._encode(X)[0]
            if np.vdot(h_new - Z, h_new - Z) / n <= enc0 - 1e-4 * eta * g2:
                self._eta_w = eta
                return
            eta *= 0.5
        for name in grads:
            p[name][...] = old[name]
        self._eta_w = eta

    # -- public API ----------------------------------------------------------------------------
    _HISTORY = ("reconstruction", "sparsity_penalty", "prediction", "objective",
                "code_rel_error", "zero_fraction", "z_iter")

    def fit(self, X, y=None, *, checkpoint=None, resume=False):
        """Alternating minimisation through ``npae.train.fit_loop``: per mini-batch, the
        loop's loss is the z-step's objective (2) and its optimiser step the D- and W-steps
        (``_AlternatingSteps``), so checkpoints, ``resume`` and the divergence rules are the
        loop's. ``checkpoint``/``resume`` as ``fit_loop``."""
        X, _, rng = self._fit_start(X)
        self._init_params(X.shape[1], rng, X)
        self._eta_w = 1.0
        n = X.shape[0]
        acc = _EpochRecord()

        def z_step(Xb):
            Z, h = self._z_step_of_block(Xb)
            terms = self._terms(Xb, Z, h)
            acc.add(Xb, Z, h, terms, len(Xb) / n, self._last_z_iter)
            return sum(terms.values()), {}

        def end_of_epoch(epoch, history):
            record = acc.close()
            if record["all_zero"] and not acc.warned:
                acc.warned = True
                self._warn_all_codes_zero(acc.last_X, acc.last_h, epoch)
            for key in self._HISTORY:
                history.setdefault(key, []).append(float(record[key]))
            if self.verbose:
                print(f"epoch {epoch + 1}/{self.n_iter}: " + ", ".join(
                    f"{key} {record[key]:.4g}" for key in self._HISTORY))
            return False

        history = fit_loop(self._params, z_step, X, optimizer=_AlternatingSteps(self),
                           n_epochs=self.n_iter, batch_size=self.batch_size, rng=rng,
                           checkpoint=checkpoint, resume=resume, callback=end_of_epoch,
                           desc=type(self).__name__, owner=type(self).__name__)
        self.history_ = {key: history.get(key, []) for key in self._HISTORY}
        self.n_iter_ = len(history["loss"])
        return self

    def _z_step_of_block(self, X):
        """The first step of ``_block``: (Z, h), Z the optimal codes warm-started at h; the
        D- and W-steps follow in ``_AlternatingSteps.step``."""
        self._batch = X
        h = self._encode(X)[0]
        self._batch_Z = Z = self._z_step(X, h)
        return Z, h

    def _warn_all_codes_zero(self, X, h, epoch):
        """Every z of an epoch was 0: D then gets no gradient (4) and learns nothing.

        z = 0 minimises (3) exactly when 0 is in its subdifferential there, i.e. when
        ||grad of the smooth part at 0||_inf = 2 ||D^T x + h||_inf <= lam for the row; so
        codes can be non-zero only for lam below the largest such value.
        """
        lam_max = 2.0 * float(np.abs(X @ self._params["D"] + h).max())
        warnings.warn(
            f"PredictiveSparseDecomposition: every code z was 0 in epoch {epoch + 1} "
            f"(lam={self.lam} is too large for this data: with z = 0 the dictionary gets no "
            f"gradient and learns nothing); codes "
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


class _AlternatingSteps:
    """PSD's "optimiser" for ``npae.train.fit_loop``: a step is the D-step and the W-step on
    the batch whose codes the loop's loss (the z-step) just computed. Its state, for
    checkpoints, is the W-step's last step length."""

    def __init__(self, model):
        self.model = model

    def step(self, grads):
        m = self.model
        m._d_step(m._batch, m._batch_Z)
        m._w_step(m._batch, m._batch_Z)

    def state_dict(self):
        return {"eta_w": np.array(self.model._eta_w)}

    def load_state_dict(self, state):
        if "eta_w" in state:
            self.model._eta_w = float(state["eta_w"])


class _EpochRecord:
    """The per-epoch means of ``history_`` (weighted by batch size), accumulated per batch."""

    def __init__(self):
        self.warned = False
        self._reset()

    def _reset(self):
        self.acc = dict.fromkeys(("reconstruction", "sparsity_penalty", "prediction",
                                  "zero_fraction", "z_iter"), 0.0)
        self.err2 = self.z2 = self.h2 = 0.0

    def add(self, X, Z, h, terms, w, z_iter):
        for key, v in terms.items():
            self.acc[key] += w * v
        self.err2 += float(np.vdot(h - Z, h - Z))
        self.z2 += float(np.vdot(Z, Z))
        self.h2 += float(np.vdot(h, h))
        self.acc["zero_fraction"] += w * float(np.mean(Z == 0))
        self.acc["z_iter"] += w * z_iter
        self.last_X, self.last_h = X, h

    def close(self):
        rec = dict(self.acc)
        rec["objective"] = rec["reconstruction"] + rec["sparsity_penalty"] + rec["prediction"]
        # ||h - z|| / ||z||; when every z was 0, relative to ||h|| instead (1, or 0 if h was 0
        # as well): a number, never the NaN of 0 / 0
        ref = self.z2 if self.z2 > 0 else self.h2
        rec["code_rel_error"] = float(np.sqrt(self.err2 / ref)) if ref > 0 else 0.0
        rec["all_zero"] = self.z2 == 0
        self._reset()
        return rec
