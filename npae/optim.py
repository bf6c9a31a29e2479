"""Optimisers acting in place on a dict of parameter arrays.

Both take ``params`` (name -> live array: a layer's ``parameters()`` or a model's) and
``step(grads)`` with the same names. Their update rules and defaults are PyTorch's, so a run
can be compared with ``torch.optim`` step by step.
"""
from __future__ import annotations

import math

import numpy as np

from ._validation import check_param
from .optim_kernels import adam_scalars, adam_update

__all__ = ["Optimizer", "SGD", "Adam", "make_optimizer"]


class Optimizer:
    def __init__(self, params, lr):
        if hasattr(params, "parameters") and callable(params.parameters):
            params = params.parameters()
        if not isinstance(params, dict) or not params:
            raise ValueError("an optimiser needs a non-empty dict name -> parameter array "
                             "(e.g. layer.parameters())")
        for name, p in params.items():
            if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
                raise TypeError(f"parameter {name!r} must be a float ndarray, got "
                                f"{type(p).__name__}")
        self.params = params
        self.lr = check_param("lr", lr, low=0.0, low_open=True)
        self.t = 0

    def _check(self, grads):
        missing = set(self.params) - set(grads)
        if missing:
            raise KeyError(f"step() got no gradient for parameter(s) {sorted(missing)}")
        for name, p in self.params.items():
            if grads[name].shape != p.shape:
                raise ValueError(f"gradient of {name!r} has shape {grads[name].shape}, "
                                 f"the parameter has {p.shape}")

    def step(self, grads):
        self._check(grads)
        self.t += 1
        for name, p in self.params.items():
            self._update(name, p, grads[name])

    def _update(self, name, p, g):
        raise NotImplementedError

    # state for checkpoints (plain arrays, so it can live in an .npz)
    def state_dict(self):
        out = {"t": np.array(self.t)}
        for key, store in self._stores().items():
            for name, arr in store.items():
                out[f"{key}/{name}"] = arr
        return out

    def load_state_dict(self, state):
        self.t = int(state["t"])
        for key, store in self._stores().items():
            for name in self.params:
                k = f"{key}/{name}"
                if k in state:
                    store[name] = np.array(state[k], dtype=self.params[name].dtype)

    def _stores(self):
        return {}


class SGD(Optimizer):
    """Stochastic gradient descent with momentum and weight decay (PyTorch's rule).

        g <- g + weight_decay * p
        v <- g                                  (first step)
        v <- momentum * v + (1 - dampening) * g (later steps)
        p <- p - lr * (g + momentum * v if nesterov else v)

    With momentum = 0 this is plain p <- p - lr * g.
    """

    def __init__(self, params, lr=0.01, momentum=0.0, weight_decay=0.0, dampening=0.0,
                 nesterov=False):
        super().__init__(params, lr)
        self.momentum = check_param("momentum", momentum, low=0.0)
        self.weight_decay = check_param("weight_decay", weight_decay, low=0.0)
        self.dampening = check_param("dampening", dampening, low=0.0, high=1.0)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov=True needs momentum > 0 and dampening = 0")
        self.nesterov = bool(nesterov)
        self.velocity = {}

    def _update(self, name, p, g):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            v = self.velocity.get(name)
            if v is None:
                v = self.velocity[name] = np.array(g, dtype=p.dtype, copy=True)
            else:
                v *= self.momentum
                v += (1.0 - self.dampening) * g
            g = g + self.momentum * v if self.nesterov else v
        p -= self.lr * g

    def _stores(self):
        return {"velocity": self.velocity}


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction, PyTorch's defaults.

        g <- g + weight_decay * p
        m <- beta1 m + (1 - beta1) g,    v <- beta2 v + (1 - beta2) g^2
        p <- p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)

    computed, as in the paper's "more efficient" ordering (Kingma & Ba, Sec. 2), with one
    division per entry: with c1 = 1 - beta1^t and c2 = sqrt(1 - beta2^t) the last line is

        p <- p - (lr c2 / c1) m / (sqrt(v) + eps c2)

    the same number up to rounding (1e-16 relative in float64), and cheaper: a float32
    update is bound by the divider, not by memory.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        b1, b2 = betas
        self.beta1 = check_param("betas[0]", b1, low=0.0, high=1.0, high_open=True)
        self.beta2 = check_param("betas[1]", b2, low=0.0, high=1.0, high_open=True)
        self.eps = check_param("eps", eps, low=0.0)
        self.weight_decay = check_param("weight_decay", weight_decay, low=0.0)
        self.m = {name: np.zeros_like(p) for name, p in self.params.items()}
        self.v = {name: np.zeros_like(p) for name, p in self.params.items()}
        self._cached_key, self._cached = None, None

    def _scalars(self, dtype):
        """step, eps and the kernel's scalars for step t in ``dtype`` (once per step and dtype)."""
        key = (self.t, dtype)
        if self._cached_key != key:
            c2 = math.sqrt(1.0 - self.beta2 ** self.t)
            step, eps = self.lr * c2 / (1.0 - self.beta1 ** self.t), self.eps * c2
            self._cached_key = key
            self._cached = (step, eps, adam_scalars(dtype, self.beta1, self.beta2, step, eps,
                                                    self.weight_decay))
        return self._cached

    def _update(self, name, p, g):
        step, eps, scalars = self._scalars(p.dtype)
        adam_update(p, g, self.m[name], self.v[name], self.beta1, self.beta2, step, eps,
                    self.weight_decay, scalars)

    def _stores(self):
        return {"m": self.m, "v": self.v}


def make_optimizer(name, params, learning_rate, **kwargs):
    """``"adam"`` or ``"sgd"`` by name, as the estimators' ``optimizer=`` takes it."""
    check_param("optimizer", name, options=("adam", "sgd"))
    cls = Adam if name == "adam" else SGD
    return cls(params, lr=learning_rate, **kwargs)
