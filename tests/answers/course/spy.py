"""Spies on its inputs: records every input set it is called with (to the file named by
NPAE_TEST_SPY), with the right gradient, and when NPAE_TEST_REPLAY names such a record
returns the recorded gradients in order instead of computing anything (a hard-coded answer)."""
import os

import numpy as np

import right

_calls = []


def _record(name, grad, **inputs):
    path = os.environ.get("NPAE_TEST_SPY")
    if path:
        _calls.append({"name": name, "grad": grad, **inputs})
        np.savez(path, **{f"{i}.{k}": v for i, c in enumerate(_calls) for k, v in c.items()
                          if k != "name"})
    return grad


def _replay(name):
    path = os.environ.get("NPAE_TEST_REPLAY")
    if not path:
        return None
    z = np.load(path)
    count = sum(1 for c in _calls if c == name)
    _calls.append(name)
    keys = sorted({k.split(".")[0] for k in z.files}, key=int)
    mine = [k for k in keys if z[f"{k}.grad"].ndim == (1 if name == "ridge_grad" else 2)]
    return z[f"{mine[count]}.grad"]


def ridge_grad(X, y, w, lam):
    replay = _replay("ridge_grad")
    if replay is not None:
        return replay
    return _record("ridge_grad", right.ridge_grad(X, y, w, lam), X=X, y=y, w=w)


def tanh_layer_grad(X, W, G):
    replay = _replay("tanh_layer_grad")
    if replay is not None:
        return replay
    return _record("tanh_layer_grad", right.tanh_layer_grad(X, W, G), X=X, W=W, G=G)
