"""Gradient checking that says *why* a gradient is wrong, not just *that* it is.

Students use this on their own code::

    from npae.gradcheck import check_gradient, check_layer
    print(check_gradient(f, grad_f, x))     # f(x) -> scalar, grad_f(x) -> array (or an array)
    print(check_layer(my_layer, x))         # any npae Layer: dL/dx and every parameter

Everything runs in float64 (see "float32" in ``numeric``). The package, one job a module:

``numeric``
    finite differences: ``numerical_gradient`` and the probes of the checks; float32.
``verdict``
    the result classes (``GradCheckResult``, ``CheckReport``, ``ContractCheck``), their
    ``status`` ("ok", "wrong", "inconclusive") and the pass rule.
``kinks``
    entries near a kink re-probed at smaller steps; entries at a kink bounded and checked
    jointly (tied maxima); the budget of evaluations that costs.
``hints``
    the diagnosis of a failed check (constant factors, transposes, missing terms, kinks,
    float32 answers, ...).
``diagnose``
    structured differences: activation derivatives, forgotten terms, product rules,
    shifts, flips, pooling routes, a broadcast bias; the ratio seen otherwise.
``answers``
    the rules for answers every entry point shares (float64 ndarray, inputs unchanged,
    one float32 verdict).
``checks``
    ``check_gradient``, ``check_terms``, ``check_params``, ``check_directional``.
``layers``
    ``check_layer``: every gradient of an npae Layer and the Layer contract.
"""
from .checks import check_directional, check_gradient, check_params, check_terms
from .layers import check_layer
from .numeric import (DEFAULT_EPS, EPS, MAX_ENTRIES, METHODS, STEP, TINY, Float32Error,
                      numerical_gradient)
from .verdict import CheckReport, ContractCheck, GradCheckResult, report

__all__ = ["numerical_gradient", "check_gradient", "check_terms", "check_params",
           "check_layer", "check_directional", "report", "GradCheckResult", "CheckReport",
           "ContractCheck", "Float32Error"]
