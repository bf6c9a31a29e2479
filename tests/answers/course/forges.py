"""ridge_grad forges the answer process's reply: it writes, on the checker's channel, a reply
that claims success and holds one right gradient (for the first input set only), then never
returns. The checker must not count it as a pass. tanh_layer_grad is right."""
import sys
import time

import __main__
from right import ridge_grad as _right, tanh_layer_grad  # noqa: F401


def ridge_grad(X, y, w, lam):
    g = _right(X, y, w, lam)
    __main__.send(int(sys.argv[2]), {"kind": "results", "status": "passed", "ok": True,
                                     "cases": [{"kind": "array"}]},
                  {"out0": g, "in0.X": X, "in0.y": y, "in0.w": w})
    time.sleep(600)
