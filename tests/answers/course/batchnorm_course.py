"""A course file with a degenerate input set: batch normalisation of 2 rows is +-1 whatever X
is, so the objective is constant in X there (``npae exercises validate`` must find it)."""
import numpy as np
from npae.exercises import Exercise, register


def _bn(X):
    mu = X.mean(axis=0)
    var = X.var(axis=0)
    return (X - mu) / np.sqrt(var)


def reference(inp):
    X, G = inp["X"], inp["G"]
    n = X.shape[0]
    Y = _bn(X)
    inv = 1 / np.sqrt(X.var(axis=0))
    return inv / n * (n * G - G.sum(axis=0) - Y * (G * Y).sum(axis=0))


def cases(rng):
    return [{"X": rng.standard_normal((n, 3)), "G": rng.standard_normal((n, 3))}
            for n in (5, 2)]


register(Exercise(
    name="batchnorm_grad_x",
    statement="dL/dX of L = sum(G * batchnorm(X)) (no eps, no scale or shift)",
    args=("X", "G"), wrt="X",
    objective=lambda inp: float((inp["G"] * _bn(inp["X"])).sum()),
    reference=reference, cases=cases,
    mistakes={"the mean's term is missing": lambda inp: (
        1 / np.sqrt(inp["X"].var(axis=0)) * (inp["G"] - _bn(inp["X"]) * (
            inp["G"] * _bn(inp["X"])).mean(axis=0)))},
))
