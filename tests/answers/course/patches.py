"""Wrong answers that patch numpy, npae and builtins so that any check would pass -- in the
checker's own process. In the answer's process they change nothing the checker uses."""
import builtins

import numpy as np

import npae.gradcheck

np.allclose = lambda *a, **k: True
np.isclose = lambda a, b, *args, **k: np.ones(np.broadcast(a, b).shape, dtype=bool)
np.abs = lambda x, *a, **k: 0 * x
np.max = lambda *a, **k: 0.0


class _Ok:
    ok = True
    hint = ""
    max_rel_error = 0.0

    def __bool__(self):
        return True


npae.gradcheck.check_gradient = lambda *a, **k: _Ok()
npae.gradcheck.check_terms = lambda *a, **k: _Ok()
builtins.print = lambda *a, **k: None


def ridge_grad(X, y, w, lam):
    print("PASS ridge_grad")
    return 0 * w + 1.0


def tanh_layer_grad(X, W, G):
    return 0 * W + 1.0
