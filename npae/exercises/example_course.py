"""An example course file: two gradient exercises a lecturer wrote (``--exercises FILE``).

    npae exercises list --exercises example_course.py
    npae exercises template hw.py --exercises example_course.py
    npae check hw.py --exercises example_course.py --seed 12345 --format json

A course file is plain Python run by the checker (it is trusted, unlike the students'
answers, which run in a separate process). Each exercise needs a name (the function the
students write), a statement, the argument names, the argument the gradient is taken
with respect to, the objective, a reference gradient, and the inputs to check on; the
rest is optional (see ``npae.exercises.Exercise``).
"""
import numpy as np

from npae.exercises import Exercise, register

# -- the minimal form: only the required fields -------------------------------------------


def ridge_cases(rng):
    """Several input sets of varied shapes, drawn from ``rng`` (``--seed`` decides it)."""
    cases = []
    for n, d in [(5, 3), (1, 4), (8, 2)]:
        cases.append({"X": rng.standard_normal((n, d)), "y": rng.standard_normal(n),
                      "w": rng.standard_normal(d), "lam": float(rng.uniform(0.1, 1.0))})
    return cases


register(Exercise(
    name="ridge_grad",
    statement="""Ridge regression: dL/dw of L(w) = (1/n) ||X w - y||^2 + lam ||w||^2

X is (n, d), y is (n,), w is (d,), lam a float. Return dL/dw, an array of w's shape (d,).""",
    args=("X", "y", "w", "lam"),
    wrt="w",
    objective=lambda inp: float(np.mean((inp["X"] @ inp["w"] - inp["y"]) ** 2)
                                + inp["lam"] * inp["w"] @ inp["w"]),
    reference=lambda inp: (2 * inp["X"].T @ (inp["X"] @ inp["w"] - inp["y"]) / len(inp["y"])
                           + 2 * inp["lam"] * inp["w"]),
    cases=ridge_cases,
))


# -- with the optional fields: a catalogue of known mistakes, and points --------------------


def tanh_cases(rng):
    cases = []
    for n, d, k in [(4, 3, 2), (1, 5, 3), (6, 2, 1)]:
        cases.append({"X": rng.standard_normal((n, d)), "W": rng.standard_normal((k, d)),
                      "G": rng.standard_normal((n, k))})
    return cases


def tanh_objective(inp):
    return float(np.sum(inp["G"] * np.tanh(inp["X"] @ inp["W"].T)))


def tanh_reference(inp):
    H = np.tanh(inp["X"] @ inp["W"].T)
    return ((1 - H ** 2) * inp["G"]).T @ inp["X"]


register(Exercise(
    name="tanh_layer_grad",
    title="a tanh layer: dL/dW of L = sum(G * tanh(X W^T))",
    statement="""A tanh layer h = tanh(W x) on the rows of X, with upstream gradient G:

    L(W) = sum_{t,j} G[t, j] tanh(W x^(t))_j

X is (n, d), W is (k, d), G is (n, k). Return dL/dW, an array of W's shape (k, d).""",
    args=("X", "W", "G"),
    wrt="W",
    objective=tanh_objective,
    reference=tanh_reference,
    cases=tanh_cases,
    mistakes={
        "the derivative of tanh is missing: dL/da = G * (1 - h^2), with h = tanh(a)":
            lambda inp: inp["G"].T @ inp["X"],
        "tanh'(a) is 1 - tanh(a)^2, not 1 - a^2":
            lambda inp: ((1 - (inp["X"] @ inp["W"].T) ** 2) * inp["G"]).T @ inp["X"],
    },
    points=2,
))
