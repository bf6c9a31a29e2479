"""The checks of functions: one gradient, a sum of named terms, several live arrays, or
random directions."""
from __future__ import annotations

import numpy as np

from .._validation import check_finite, check_param
from .answers import answer_array, call_unchanged, mutation_message
from .hints import _float32_values, _shape_mismatch, _terms_hint
from .kinks import MULTS as _MULTS
from .kinks import Prober
from .numeric import (MAX_ENTRIES, STEP, Float32Error, _float32_message, _prepare, _Probe,
                      _probe, _scalar, _select)
from .verdict import CheckReport, GradCheckResult, _evaluate, _full, check_tolerances

__all__ = ["check_gradient", "check_terms", "check_params", "check_directional"]


def _analytic(grad, x, name, who="grad"):
    """(the answer as a float64 array, a message if computing it changed x, else None)."""
    value, changed = call_unchanged(grad, x, who, name) if callable(grad) else (grad, None)
    a = answer_array(value, what=f"the analytic gradient of {name}" + (
        f" ({who}'s return value)" if callable(grad) else ""), shape=x.shape)
    return a, changed


def _unchanged_f(before, x, name, who="f"):
    """f must leave x as it is: the finite differences perturb x entry by entry (restoring
    each) and rely on it. ``before`` is x's copy from before the probes."""
    changed = mutation_message(who, name, before, x)
    if changed:
        x[...] = before
        raise ValueError(changed + "; the finite differences perturb x entry by entry and "
                         "need f to leave it unchanged")


def _flag_mutation(res, changed):
    """A gradient that changes its input is wrong whatever it returns."""
    if changed:
        also = f"; besides, the returned gradient is wrong: {res.hint}" if (
            res.status == "wrong" and res.hint) else ""
        res.status, res.ok = "wrong", False
        res.hint = changed + also
    return res


def check_gradient(f, grad, x, rtol=1e-6, atol=0.0, *, batch_size=None, overlap=None,
                   max_entries=MAX_ENTRIES, rng=None, step=STEP, name="x", upcast=False):
    """Check an analytic gradient against finite differences; return a ``GradCheckResult``.

    f
        scalar function of x. x is perturbed in place (and restored) when it is a float64
        array, so ``f`` may also close over it.
    grad
        the analytic gradient at x: an array, or a callable ``grad(x)``.
    rtol, atol
        pass rule per entry: |a - n| <= atol + rtol max(|a|, |n|) + 2 err, err being the
        finite difference's own error estimated from the pair (h, h/2) (module docstring).
    batch_size
        n, to recognise a gradient off by the batch size (else x.shape[0] is suggested).
    overlap
        boolean mask of entries where several uses/windows meet: errors confined to it,
        while the entries outside it (at least one with a nonzero gradient) are right, give
        the "assignment instead of accumulation" hint.
    max_entries, rng
        arrays larger than ``max_entries`` are checked on a random sample (``rng``, seed 0
        by default) that includes the largest analytic entry; ``None`` checks everything.
    step
        relative step h; ``upcast``: check a float64 copy of a float32 x (else Float32Error).

    Returns a ``GradCheckResult``. What a grader reads from it:

    ``status``
        "ok" (right), "wrong" (some entry, or the entries tied at a kink jointly, disagree
        with the finite differences; also a wrong shape) or "inconclusive" (nothing
        disagrees but every checked entry sits on a kink, so nothing was verified).
    ``ok``, ``bool(result)``
        ``status == "ok"``: "inconclusive" is falsy, never a pass.
    ``hint``
        why, in one paragraph ("" when ok); ``str(result)`` is the full report.
    ``max_rel_error``, ``max_abs_error``
        over the entries checked exactly (inf for a shape mismatch).
    ``n_checked``, ``n_exact``, ``n_bounded``, ``n_failed``
        entries checked; checked exactly (near-kink entries included); only bounded at a
        kink; wrong.
    """
    check_tolerances(rtol, atol)
    x = _prepare(x, name, upcast)
    a, changed = _analytic(grad, x, name)
    before = x.copy()
    rng = np.random.default_rng(0 if rng is None else rng)
    if a.shape != x.shape:
        flat = _select(x.size, max_entries, rng)
        probe = _probe(lambda: f(x), x, flat, step)
        _unchanged_f(before, x, name)
        numeric = np.full(x.shape, np.nan)
        numeric.reshape(-1)[flat] = probe.central
        return _flag_mutation(GradCheckResult(
            ok=False, max_abs_error=np.inf, max_rel_error=np.inf, worst_index=None,
            analytic=a, numeric=numeric, name=name,
            hint=_shape_mismatch(a, x.shape, numeric, name)), changed)
    check_finite(a, f"analytic gradient of {name}")
    flat = _select(x.size, max_entries, rng, a.reshape(-1))
    fun = lambda: f(x)  # noqa: E731
    probe = _probe(fun, x, flat, step)
    _unchanged_f(before, x, name)
    res = _evaluate(a, probe, flat, x.shape, name=name, rtol=rtol, atol=atol,
                    batch_size=batch_size, overlap=overlap, step=step, rng=rng,
                    prober=Prober([fun], x, flat, probe.f0), values=x.reshape(-1)[flat],
                    answer_float32=_float32_values(a), x=x)
    return _flag_mutation(res, changed)


def check_terms(terms, x, grad=None, rtol=1e-6, atol=0.0, *, batch_size=None, overlap=None,
                max_entries=MAX_ENTRIES, rng=None, step=STEP, name="x", upcast=False):
    """Check an objective made of named terms, e.g. reconstruction + lam * penalty.

    terms
        dict name -> f_term or (f_term, grad_term); f_term(x) is scalar, grad_term is an
        array or callable. Terms that come with a gradient are checked one by one.
    grad
        the analytic gradient of the sum; by default the sum of the terms' gradients.

    The sum is checked too; when it fails, the report names the failing term, or says
    which terms the analytic gradient actually contains ("missing term: ... equals the
    numeric gradient of 'encoder' alone"), or which term has the wrong factor. A factor
    common to every term (sign, 2, n) is told as ``check_gradient`` tells it, as are
    failures the terms do not explain (``batch_size`` and ``overlap`` as there), so the
    report's hint is always the most specific one.
    """
    check_tolerances(rtol, atol)
    if not isinstance(terms, dict) or not terms:
        raise TypeError("terms must be a non-empty dict name -> f or (f, grad)")
    x = _prepare(x, name, upcast)
    rng = np.random.default_rng(0 if rng is None else rng)
    parts = {t: (v if isinstance(v, tuple) else (v, None)) for t, v in terms.items()}
    analytic, changed = {}, None
    for t, (f_t, g) in parts.items():
        if g is not None:
            analytic[t], ch = _analytic(g, x, f"term {t!r}", f"term {t!r}'s gradient")
            changed = changed or ch
    if grad is not None:
        total_a, ch = _analytic(grad, x, name)
        changed = changed or ch
    elif len(analytic) == len(parts):
        total_a = sum(analytic.values())
    else:
        raise ValueError("give grad= (the gradient of the sum) or a gradient for every term")
    if total_a.shape != x.shape:
        res = check_gradient(lambda v: sum(f(v) for f, _ in parts.values()), total_a, x,
                             name=f"{name} (sum)", max_entries=max_entries, rng=rng, step=step)
        return CheckReport(f"check_terms {name}", {"sum": res}, hint=res.hint)
    flat = _select(x.size, max_entries, rng, total_a.reshape(-1))
    before = x.copy()
    probes = {}
    for t, (f, _) in parts.items():
        probes[t] = _probe(lambda f=f: f(x), x, flat, step, f"term {t!r}")
        _unchanged_f(before, x, name, f"term {t!r}'s function")
    funs = {t: (lambda f=f: f(x)) for t, (f, _) in parts.items()}
    values = x.reshape(-1)[flat]
    kw = dict(rtol=rtol, atol=atol, batch_size=batch_size, step=step, rng=rng, values=values)
    results = {}
    for t, a in analytic.items():
        if a.shape != x.shape:
            results[t] = check_gradient(parts[t][0], a, x, name=f"term {t!r}")
        else:
            results[t] = _evaluate(a, probes[t], flat, x.shape, name=f"term {t!r}",
                                   prober=Prober([funs[t]], x, flat, probes[t].f0),
                                   answer_float32=_float32_values(a), x=x, **kw)
    total_probe = sum(list(probes.values())[1:], list(probes.values())[0])
    total = _evaluate(total_a, total_probe, flat, x.shape, name=f"{name} (sum)",
                      overlap=overlap, prober=Prober(funs.values(), x, flat, total_probe.f0),
                      answer_float32=_float32_values(total_a), x=x, **kw)
    hint = ""
    wrong = [t for t, r in results.items() if r.status == "wrong"]
    if wrong:
        hint = "; ".join(f"term {t!r} is wrong ({results[t].hint})" for t in wrong)
        if total.status == "wrong":
            total.hint = f"the sum fails because of term{'s' if len(wrong) > 1 else ''} " + \
                ", ".join(repr(t) for t in wrong)
    elif total.status == "wrong" and not total.hint.startswith("the answer is float32"):
        numeric = {t: _full(p.central, flat, x.shape) for t, p in probes.items()}
        th = _terms_hint(total_a, numeric, total.threshold,
                         total.checked & ~total.kinks & ~total.near_kinks)
        if th:
            total.hint = th
        hint = total.hint
    else:
        hint = total.hint or next((r.hint for r in results.values() if r.hint), "")
    results["sum"] = _flag_mutation(total, changed)
    if changed:
        hint = total.hint
    return CheckReport(f"check_terms {name} ({' + '.join(parts)})", results, hint=hint)


def check_params(f, params, grads, rtol=1e-6, atol=0.0, *, batch_size=None,
                 max_entries=MAX_ENTRIES, rng=None, step=STEP, title="check_params"):
    """Check the gradients of a scalar ``f()`` with respect to several live arrays.

    f
        no-argument function returning the objective at the current values of ``params``
        (e.g. ``lambda: model.objective(X)``); each array is perturbed in place and restored.
    params
        dict name -> live float64 array (``model.parameters()``, ``layer.params``).
    grads
        dict name -> analytic gradient (``model.gradients(X)``), or a callable returning it.

    Sampled mode gives every array its own budget: arrays up to ``max_entries`` are checked
    fully, larger ones on ``max_entries`` random entries, so a bias is never crowded out by
    a large W.
    """
    check_tolerances(rtol, atol)
    grads = grads() if callable(grads) else grads
    rng = np.random.default_rng(0 if rng is None else rng)
    results = {}
    for k, p in params.items():
        results[k] = _check_live(f, p, grads.get(k), k, rng, rtol=rtol, atol=atol,
                                 batch_size=batch_size, max_entries=max_entries, step=step)
    return CheckReport(title, results)


def _check_live(f, p, g, name, rng, *, rtol, atol, batch_size, max_entries, step):
    if not (isinstance(p, np.ndarray) and p.dtype.kind == "f"):
        raise TypeError(f"parameter {name!r} must be a float ndarray, got "
                        f"{type(p).__name__}")
    if p.dtype != np.float64:
        raise Float32Error(_float32_message(f"parameter {name!r}", p.dtype))
    if g is None:
        return GradCheckResult(ok=False, max_abs_error=np.inf, max_rel_error=np.inf,
                               worst_index=None, analytic=np.zeros(0), numeric=np.zeros(0),
                               name=name, hint=f"no gradient for {name!r}: the gradients "
                               "dict has no entry of that name")
    a, _ = _analytic(g, p, name)
    if a.shape != p.shape:
        return GradCheckResult(ok=False, max_abs_error=np.inf, max_rel_error=np.inf,
                               worst_index=None, analytic=a, numeric=np.full(p.shape, np.nan),
                               name=name, hint=_shape_mismatch(a, p.shape, None, name))
    flat = _select(p.size, max_entries, rng, a.reshape(-1))
    what = f"objective (perturbing {name!r})"
    probe = _probe(f, p, flat, step, what)
    return _evaluate(a, probe, flat, p.shape, name=name, rtol=rtol, atol=atol,
                     batch_size=batch_size, step=step, rng=rng,
                     prober=Prober([f], p, flat, probe.f0, what), values=p.reshape(-1)[flat],
                     answer_float32=_float32_values(a), x=p)


def check_directional(f, grad, x, n_directions=10, rng=None, rtol=1e-6, atol=0.0, *,
                      batch_size=None, step=STEP, name="x", upcast=False):
    """Check <grad, v> against (f(x + h v) - f(x - h v)) / 2h for random unit directions v.

    Costs 4 evaluations of f per direction whatever the size of x, so it suits large
    parameters where entry-wise checks are too slow. A wrong gradient passes a random
    direction only with probability ~0 (its error would have to be orthogonal to v).
    The result's ``analytic``/``numeric`` are the directional derivatives, one per
    direction; the same pass rule, error estimate and kink test apply per direction.
    """
    check_tolerances(rtol, atol)
    check_param("n_directions", n_directions, kind="int", low=1)
    x = _prepare(x, name, upcast)
    a, _ = _analytic(grad, x, name)
    if a.shape != x.shape:
        return GradCheckResult(ok=False, max_abs_error=np.inf, max_rel_error=np.inf,
                               worst_index=None, analytic=a, numeric=np.full(x.shape, np.nan),
                               name=name, hint=_shape_mismatch(a, x.shape, None, name))
    check_finite(a, f"analytic gradient of {name}")
    rng = np.random.default_rng(0 if rng is None else rng)
    V = rng.standard_normal((n_directions,) + x.shape)
    V /= np.sqrt((V.reshape(n_directions, -1) ** 2).sum(axis=1)).reshape(
        (-1,) + (1,) * x.ndim)
    dirs = _Directions(f, x, V, a)
    probe, _ = dirs.entries(np.arange(n_directions), step)
    a_v = np.tensordot(V, a, axes=x.ndim)
    res = _evaluate(a_v, probe, np.arange(n_directions), (n_directions,),
                    name=f"{name} (directional)", rtol=rtol, atol=atol,
                    batch_size=batch_size, directional=True, prober=dirs, step=step)
    h = step * dirs.scale
    res.notes.append(f"{n_directions} random unit directions, h = {h:.1e}")
    return res


class _Directions:
    """f along the random directions of ``check_directional``, at any step, for the kink
    logic: ``entries(rows, rel_step)`` probes directions ``rows`` with h = rel_step *
    max(1, max|x|) and returns the analytic <a, v> per unit step along the displacement
    actually taken (x + m h v rounds coordinate by coordinate, which matters at the finest
    steps)."""

    def __init__(self, f, x, V, a):
        self.f, self.x, self.V, self.a = f, x, V, a
        self.x0 = x.copy()
        self.scale = max(1.0, float(np.abs(self.x0).max()))
        self.n_evals = 0
        self.f0 = _scalar(f(x))

    def entries(self, rows, rel_step):
        h = rel_step * self.scale
        F = np.empty((len(rows), 4))
        a_v = np.empty(len(rows))
        x, x0 = self.x, self.x0
        try:
            for j, d in enumerate(rows):
                disp = []
                for m_i, m in enumerate(_MULTS):
                    np.add(x0, m * h * self.V[d], out=x)
                    disp.append(x - x0)
                    F[j, m_i] = _scalar(self.f(x), f"f(x + {m:g} h v_{d})")
                    self.n_evals += 1
                a_v[j] = np.vdot(self.a, disp[0] - disp[1]) / (2.0 * h)
        finally:
            x[...] = x0
        H = np.broadcast_to(h * np.array(_MULTS), F.shape).copy()
        return _Probe(F, H, self.f0), a_v
