"""The contractive autoencoder (lecture: "Contractive Autoencoder").

Add an explicit term to the loss that penalises the encoder's sensitivity to its input, so
that the code keeps only the variations seen in the training set:

    (1)  L(x) = l(f(x)) + λ ||∇_x h(x)||_F^2          reconstruction loss + Jacobian penalty
    (2)  ||∇_x h(x)||_F^2 = sum_j sum_k (∂h_j/∂x_k)^2

For the sigmoid encoder h_j = sigm(a_j), a_j = b_j + sum_k W_jk x_k, the Jacobian entries are
∂h_j/∂x_k = h_j (1 - h_j) W_jk, so the penalty has the closed form

    (3)  J(x) = sum_j s_j^2 q_j,    s_j = h_j (1 - h_j),    q_j = sum_k W_jk^2

which costs O(k d) for q once per batch and O(n k) for the rest: no per-sample Jacobian.

Gradient of the batch mean P = (1/n) sum_t J(x^(t)), derived by hand. With
ds_j/da_j = s_j (1 - 2 h_j):

    (4)  ∂P/∂a_tj = (2/n) s_tj^2 (1 - 2 h_tj) q_j                 (call it δ_tj)
    (5)  ∂P/∂b_j  = sum_t δ_tj
    (6)  ∂P/∂W_jk = sum_t δ_tj x_tk  +  (2/n) (sum_t s_tj^2) W_jk
                    ^through a = b + Wx   ^through q_j (W appears in J directly)

Implementation: (4) is added to the reconstruction loss's ∇_a before the encoder's parameter
gradients are formed, so (5) and the first term of (6) come out of the same product
∇_a x^T that the plain autoencoder's ``Linear.backward`` forms anyway; only the second term
of (6), an O(k d) scaling of W, is extra. (3), (4) and that term are added in place by
``npae.models.contractive_kernels`` (Numba kernels, beside their NumPy twin).
"""
from __future__ import annotations

import numpy as np

from .._validation import check_param
from .autoencoder import Autoencoder
from .contractive_kernels import jacobian_penalty_add

__all__ = ["ContractiveAutoencoder", "jacobian_penalty_terms"]


def jacobian_penalty_terms(h, W, lam=1.0):
    """λ P of (3) for the codes ``h`` (n, k), and its gradients: ∂/∂a (4), explicit ∂/∂W (6)."""
    dP_da, dP_dW = np.zeros_like(h), np.zeros_like(W)
    P = jacobian_penalty_add(h, W, lam, dP_da, dP_dW)
    return P, dP_da, dP_dW


class ContractiveAutoencoder(Autoencoder):
    """Autoencoder with the penalty λ ||∇_x h(x)||_F^2 (equations 1-6).

    Extra parameter
    ---------------
    lam : float >= 0
        λ, the weight of the Jacobian penalty (0 gives the plain autoencoder).

    ``objective(X)`` and ``history_`` include the penalty; ``score(X)`` is the reconstruction term
    alone; ``jacobian_penalty(X)`` is the mean ||∇_x h(x)||_F^2 (without λ).
    """

    def __init__(self, n_hidden=64, *, lam=0.1, tied=True, decoder="sigmoid",
                 loss="cross_entropy", optimizer="adam", learning_rate=1e-3, n_epochs=10,
                 batch_size=128, dtype="float64", random_state=None, verbose=False):
        super().__init__(n_hidden, tied=tied, decoder=decoder, loss=loss, optimizer=optimizer,
                         learning_rate=learning_rate, n_epochs=n_epochs, batch_size=batch_size,
                         dtype=dtype, random_state=random_state, verbose=verbose)
        self.lam = lam

    def _check_params(self):
        super()._check_params()
        check_param("lam", self.lam, low=0.0)

    def _penalty(self, h, da=None, dW=None):
        """λ P (3); adds (4) into ∇_a ``da`` and (6)'s explicit term into ∇_W ``dW``, in
        place (``npae.models.contractive_kernels``: the same formulas in three passes)."""
        if self.lam == 0:
            return 0.0
        return jacobian_penalty_add(h, self._enc.params["W"], self.lam, da, dW)

    def jacobian_penalty(self, X):
        """Mean over the rows of X of ||∇_x h(x)||_F^2, by the closed form (3)."""
        h = self.transform(X)
        return jacobian_penalty_add(h, self._enc.params["W"], 1.0)
