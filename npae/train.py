"""The one training loop every gradient-trained model in npae shares.

A model hands the loop three things and keeps its maths to itself:

* ``params``: name -> live parameter arrays (updated in place by the optimiser);
* ``loss_and_grad(X_batch)`` -> (L, {name: dL/dparam}) with L the mean over the batch;
* optionally ``val_loss(X)`` -> float, evaluated on held-out data after each epoch.

The loop shuffles, cuts mini-batches, steps the optimiser, records ``history`` (mean training
loss per epoch and the validation loss), shows a tqdm bar with the running loss, and writes
an atomic .npz checkpoint after each epoch that ``resume=True`` continues from.

Divergence. The same rules stop every model and optimiser, with ``TrainingDiverged`` (what
happened, in which epoch, what to do) and the parameters of the last good epoch put back:

1. a loss or a parameter that is NaN or infinite (or a value inside the model too large to
   compute with): parameters restored to the start of that epoch;
2. a mini-batch loss above ``GROWTH_LIMIT`` (1e6) times the run's starting loss (the first
   mini-batch's, at the initial parameters): the run explodes even while still finite;
   parameters restored to the start of that epoch;
3. a mean epoch loss that grew ``GROWTH_EPOCHS`` (3) epochs in a row and is above the first
   epoch's: parameters restored to the epoch with the lowest loss;
4. a run that ends with a mean epoch loss above its first epoch's, or above ``END_LIMIT``
   (10) times its starting loss (an explosion in the first epoch that settled high, which
   the first epoch's mean already contains): training made the model worse; parameters
   restored to the epoch with the lowest loss.

"Above" in 3 and 4 means by more than ``NOISE_MARGIN`` (1e-3) relative: the epoch means of a
run that barely moves differ by rounding. A model whose objective is random (a denoising
model's corruption) passes ``noisy=True``: its epoch means also differ by that noise, so the
margin is ``NOISY_MARGIN`` (10 %), and with a single mini-batch per epoch (one sample's
corruption decides the mean) rules 3 and 4 are off. So a run that returns normally has a
last mean epoch loss at most (1 + margin) times its first.
"""
from __future__ import annotations

import os

import numpy as np

from ._allocator import keep_freed_memory
from ._io import read_npae_file, write_npae_file
from ._validation import check_param
from .exceptions import FileFormatError, NonFiniteError, TrainingDiverged

__all__ = ["fit_loop", "fit_lbfgs", "iterate_minibatches", "RESTART_ITERATIONS", "TrainingDiverged", "GROWTH_LIMIT",
           "GROWTH_EPOCHS", "END_LIMIT", "NOISE_MARGIN", "NOISY_MARGIN"]

#: a loss this many times the run's starting loss means the run has exploded (rule 2)
GROWTH_LIMIT = 1e6
#: a run that ends above this many times its starting loss has diverged (rule 4); far above
#: the spread between one mini-batch's loss and the mean over the data
END_LIMIT = 10.0
#: epochs in a row of growing mean loss that count as divergence (rule 3)
GROWTH_EPOCHS = 3
#: relative slack for "above the first epoch's loss" (rules 3 and 4)
NOISE_MARGIN = 1e-3
#: the same for an objective that is random (``noisy=True``)
NOISY_MARGIN = 0.1

_ADVICE = "Lower the learning rate (or check the data's scale) and fit again."


def iterate_minibatches(n, batch_size, rng=None, shuffle=True):
    """Yield index arrays covering range(n) in batches of ``batch_size`` (the last may be short)."""
    order = np.random.default_rng(rng).permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def _diverged(params, restore, epoch, what, history, where):
    """Put the parameters back as ``restore`` holds them (a failed fit leaves no NaN, inf or
    exploded weights behind) and raise the error that says where and what to do."""
    for name, v in params.items():
        v[...] = restore[name]
    last = (f" (mean loss of epoch {len(history['loss'])}: {history['loss'][-1]:.4g})"
            if history["loss"] else "")
    raise TrainingDiverged(
        f"{what} in epoch {epoch + 1}{last}; the run diverged. {_ADVICE} The parameters were "
        f"restored to {where}.")


#: the checkpoint file's kind and layout; npae 0.1's checkpoints had no header (version 0)
CHECKPOINT_FORMAT, CHECKPOINT_VERSION = "npae-checkpoint", 1


def _save_checkpoint(path, params, optimizer, epoch, history, rng, start_loss, owner):
    arrays = {f"param/{name}": v for name, v in params.items()}
    if optimizer is not None:
        arrays.update({f"optim/{name}": v for name, v in optimizer.state_dict().items()})
    arrays["epoch"] = np.array(epoch)
    arrays["start_loss"] = np.array(np.nan if start_loss is None else start_loss)
    for key, values in history.items():
        arrays[f"history/{key}"] = np.asarray(values, dtype=np.float64)
    if rng is not None:
        # the generator's state as a string would need pickle; its 128-bit state fits in uint64s
        st = rng.bit_generator.state
        arrays["rng_state"] = np.array(
            [st["state"]["state"] >> 64, st["state"]["state"] & (2**64 - 1),
             st["state"]["inc"] >> 64, st["state"]["inc"] & (2**64 - 1),
             st["has_uint32"], st["uinteger"]], dtype=np.uint64)
    header = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "class": owner,
              "epoch": int(epoch)}
    write_npae_file(path, header, arrays)


def _read_checkpoint(path, params, owner=None, n_epochs=None):
    """The checkpoint's arrays, checked: a checkpoint (npae's reader: not damaged), of the
    same kind of model (``owner``, a class name), at a possible epoch (0..``n_epochs``),
    every parameter present, of the model's shape and finite, and a finite optimiser state;
    else FileFormatError naming the file and what is wrong."""
    header, data = read_npae_file(path, "a checkpoint")
    if header is not None:
        version = header.get("version")
        if header.get("format") != CHECKPOINT_FORMAT or version != CHECKPOINT_VERSION:
            raise FileFormatError(
                f"{path!r} is not an npae checkpoint this npae reads (format "
                f"{header.get('format')!r} version {version!r}; this npae reads "
                f"{CHECKPOINT_FORMAT!r} version {CHECKPOINT_VERSION}); pass the checkpoint a "
                "training run wrote, or start without resume")
        saved = header.get("class")
        if owner is not None and saved is not None and saved != owner:
            raise FileFormatError(
                f"checkpoint {path!r} was written by a {saved} run, not a {owner}: resume "
                f"a {saved} from it, or start this {owner} without resume")
    if "epoch" not in data or data["epoch"].shape != () or data["epoch"].dtype.kind not in "iu":
        raise FileFormatError(f"{path!r} is not an npae checkpoint (no epoch count); pass the "
                              "checkpoint.npz a training run wrote, or start without resume")
    epoch = int(data["epoch"])
    if epoch < 0:
        raise FileFormatError(f"checkpoint {path!r} is damaged: it holds epoch {epoch}, and a "
                              "run cannot have run a negative number of epochs; start without "
                              "resume")
    if n_epochs is not None and epoch > n_epochs:
        raise FileFormatError(
            f"checkpoint {path!r} holds a run of {epoch} epochs, more than n_epochs="
            f"{n_epochs}; ask for at least {epoch} epochs to continue it (exactly that many "
            "returns it as saved), or start without resume")
    for name, v in params.items():
        key = f"param/{name}"
        if key not in data or data[key].shape != v.shape:
            raise FileFormatError(
                f"checkpoint {path!r} does not match this model: parameter {name!r} "
                f"{'is missing' if key not in data else 'has shape ' + str(data[key].shape)}"
                f" (the model has {v.shape}); build the model with the same hyper-parameters "
                "or start without resume")
    return data


def _load_checkpoint(data, params, optimizer, history, rng):
    for name, v in params.items():
        v[...] = data[f"param/{name}"]
    if optimizer is not None:
        optimizer.load_state_dict({k[len("optim/"):]: v for k, v in data.items()
                                   if k.startswith("optim/")})
    for key in list(history):
        history[key] = [float(x) for x in data.get(f"history/{key}", np.array([]))]
    for key, values in data.items():   # a model's own per-epoch records (PSD's terms)
        if key.startswith("history/"):
            history[key[len("history/"):]] = [float(x) for x in values]
    if "rng_state" in data and rng is not None:
        s = [int(x) for x in data["rng_state"]]
        st = rng.bit_generator.state
        st["state"] = {"state": (s[0] << 64) | s[1], "inc": (s[2] << 64) | s[3]}
        st["has_uint32"], st["uinteger"] = s[4], s[5]
        rng.bit_generator.state = st
    start = float(data["start_loss"]) if "start_loss" in data else np.nan
    return int(data["epoch"]), (None if np.isnan(start) else start)


def _resume(checkpoint, resume, params, owner, n_epochs):
    """The checked arrays of the checkpoint to resume from, or None (start afresh)."""
    if not resume:
        return None
    if checkpoint is None:
        raise ValueError("resume=True needs the checkpoint path it should resume from")
    if not os.path.lexists(checkpoint):
        return None
    return _read_checkpoint(checkpoint, params, owner, n_epochs)


def fit_loop(params, loss_and_grad, X, *, optimizer, n_epochs, batch_size, rng=None,
             shuffle=True, val_loss=None, X_val=None, verbose=False, checkpoint=None,
             resume=False, desc="training", callback=None, noisy=False, owner=None,
             monitor=None):
    """Mini-batch training. Returns ``history``: {"loss": [...], "val_loss": [...]}.

    ``X`` may be any array whose first axis indexes samples. ``rng`` (a Generator or seed)
    drives the shuffling; pass the model's generator so a run is repeatable. ``noisy=True``
    says the objective is random (see the module docstring's divergence rules).

    Stopping early: ``callback``, if given, is called as ``callback(epoch, history)`` after
    each epoch, before its checkpoint is written (so what it records in ``history`` is saved
    and restored by ``resume``); if it returns True, training stops there
    and ``fit_loop`` returns the history as usual, with the end-of-run divergence rule (4)
    applied to the epochs run. (Any other return value, None included, continues.)

    ``monitor``, for a noisy objective: a function of no arguments giving the objective at
    one fixed noise draw (a denoising model's fixed corruption of some training rows): rules
    3 and 4 then judge its values, measured after each epoch, instead of the epoch means,
    which differ by the noise as well (after a resume, from the first epoch resumed).

    ``owner`` names the model (its class name): checkpoints carry it and ``resume`` refuses a
    checkpoint another kind of model wrote, or one at an epoch outside 0..``n_epochs``.
    """
    check_param("n_epochs", n_epochs, kind="int", low=0)
    check_param("batch_size", batch_size, kind="int", low=1)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    keep_freed_memory()  # each step's arrays reuse the last step's memory (npae._allocator)
    n = X.shape[0]
    history = {"loss": [], "val_loss": []}
    watched = []        # the monitor's values, one per epoch of this call
    start, start_loss = 0, None
    data = _resume(checkpoint, resume, params, owner, n_epochs)
    if data is not None:
        start, start_loss = _load_checkpoint(data, params, optimizer, history, rng)
    bar = None
    if verbose:
        from tqdm.auto import tqdm
        bar = tqdm(total=(n_epochs - start) * -(-n // batch_size), desc=desc, leave=True)
    stepped = False
    # rules 3 and 4 restore the epoch with the lowest mean loss: its parameters and number
    best = ({k: v.copy() for k, v in params.items()}, start,
            history["loss"][-1] if history["loss"] else np.inf)
    try:
        for epoch in range(start, n_epochs):
            saved = {name: v.copy() for name, v in params.items()}
            at_start = f"their values at the start of epoch {epoch + 1}"
            total = 0.0
            for idx in iterate_minibatches(n, batch_size, rng, shuffle):
                try:
                    # overflow is this loop's to report: as TrainingDiverged, below, not as
                    # a RuntimeWarning from deep inside a layer
                    with np.errstate(over="ignore", invalid="ignore"):
                        loss, grads = loss_and_grad(X[idx])
                        loss = float(loss)
                        if start_loss is None and np.isfinite(loss):
                            start_loss = abs(loss)
                        exploded = (np.isfinite(loss) and start_loss
                                    and abs(loss) > GROWTH_LIMIT * start_loss)
                        if np.isfinite(loss) and not exploded:
                            optimizer.step(grads)
                except NonFiniteError as exc:
                    if not stepped:  # before any step: the data or the start, not divergence
                        raise
                    _diverged(params, saved, epoch, f"{exc.name or 'a value inside the model'}"
                              " became NaN, inf or too large to compute with", history,
                              at_start)
                if not np.isfinite(loss):
                    _diverged(params, saved, epoch, f"the training loss became {loss}",
                              history, at_start)
                if exploded:
                    _diverged(params, saved, epoch, f"the training loss reached {loss:.4g}, "
                              f"more than {GROWTH_LIMIT:.0e} times its start ({start_loss:.4g})",
                              history, at_start)
                stepped = True
                total += loss * len(idx)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(epoch=epoch + 1, loss=f"{loss:.4f}")
            # the epoch's last step can overflow a weight without any loss seeing it
            if not all(np.isfinite(v).all() for v in params.values()):
                _diverged(params, saved, epoch, "a parameter became NaN or inf", history,
                          at_start)
            history["loss"].append(total / n)
            if monitor is not None:
                watched.append(float(monitor()))
            if not (noisy and n <= batch_size):
                _check_growth(params, history, epoch, best, final=epoch + 1 == n_epochs,
                              margin=NOISY_MARGIN if noisy else NOISE_MARGIN,
                              start_loss=start_loss, watched=watched)
            # an epoch that already ended past END_LIMIT is no restore point (rule 4)
            if history["loss"][-1] < best[2] and not (
                    start_loss and abs(history["loss"][-1]) > END_LIMIT * start_loss):
                best = ({k: v.copy() for k, v in params.items()}, epoch + 1, history["loss"][-1])
            if val_loss is not None and X_val is not None:
                history["val_loss"].append(float(val_loss(X_val)))
            stop = callback is not None and callback(epoch, history) is True
            if checkpoint is not None:
                _save_checkpoint(checkpoint, params, optimizer, epoch + 1, history, rng,
                                 start_loss, owner)
            if stop:
                if not (noisy and n <= batch_size) and epoch + 1 < n_epochs:
                    _check_growth(params, history, epoch, best, final=True,
                                  margin=NOISY_MARGIN if noisy else NOISE_MARGIN,
                                  start_loss=start_loss, watched=watched)
                break
    finally:
        if bar is not None:
            bar.close()
    return history


def _check_growth(params, history, epoch, best, final, margin, start_loss, watched=None):
    """Rules 3 and 4 of the module docstring, after ``epoch``'s mean loss is recorded; on
    the ``monitor``'s values (``watched``) where the loop has one."""
    losses = history["loss"]
    if final and start_loss and abs(losses[-1]) > END_LIMIT * start_loss:
        snapshot, best_epoch, best_loss = best
        where = (f"their values after epoch {best_epoch} (mean loss {best_loss:.4g})"
                 if best_epoch else "their initial values")
        _diverged(params, snapshot, epoch, f"the run ended with a mean training loss of "
                  f"{losses[-1]:.4g}, more than {END_LIMIT:g} times its start "
                  f"({start_loss:.4g})", history, where)
    what = "mean training loss"
    if watched:
        losses, what = watched, "objective at a fixed noise draw"
    first, last = losses[0], losses[-1]
    snapshot, best_epoch, best_loss = best
    where = (f"their values after epoch {best_epoch} (mean loss {best_loss:.4g})" if best_epoch
             else "their initial values")
    worse = last > first + margin * abs(first)
    if not worse or len(losses) < 2:
        return
    recent = losses[-GROWTH_EPOCHS - 1:]
    if len(recent) == GROWTH_EPOCHS + 1 and all(b > a for a, b in zip(recent, recent[1:])):
        _diverged(params, snapshot, epoch, f"the {what} grew {GROWTH_EPOCHS} epochs in a row, "
                  f"from {first:.4g} in epoch 1 to {last:.4g}", history, where)
    if final:
        _diverged(params, snapshot, epoch, f"the run ended with a {what} of {last:.4g}, above "
                  f"its first epoch's {first:.4g}", history, where)


def fit_lbfgs(params, loss_and_grad, X, *, max_iter, val_loss=None, X_val=None,
              verbose=False, checkpoint=None, resume=False, desc="L-BFGS", owner=None):
    """Full-batch training with scipy's L-BFGS-B: ``fit_loop``'s sibling for objectives
    that need all of X at once (the sparse autoencoder's ρ̂). Returns ``history``.

    An "epoch" here is one L-BFGS iteration: ``history["loss"]`` holds the objective after
    each, ``val_loss(X_val)`` is recorded likewise, and the checkpoint (``fit_loop``'s
    format, with ``owner``) is written after each. The divergence rules are the module's:
    a non-finite objective at the end, or a run that ends worse than its first iteration,
    raises ``TrainingDiverged`` with the parameters of the best iteration put back.

    Resume. scipy's L-BFGS cannot be handed its curvature memory (the last pairs of steps
    and gradient changes), so ``resume=True`` restarts L-BFGS from the saved parameters with
    an empty memory and runs the iterations left to ``max_iter``, plus as many as L-BFGS
    needs to rebuild its memory (``RESTART_ITERATIONS``, recorded like the others): the
    resumed run is close to, not bit-identical with, an uninterrupted one.
    """
    from scipy.optimize import minimize

    check_param("max_iter", max_iter, kind="int", low=0)
    history = {"loss": [], "val_loss": []}
    data = _resume(checkpoint, resume, params, owner, None)
    extra = 0
    if data is not None:
        _load_checkpoint(data, params, None, history, None)
        extra = RESTART_ITERATIONS if 0 < len(history["loss"]) < max_iter else 0
    remaining = max_iter - len(history["loss"]) + extra
    shapes = [(k, p.shape, p.size) for k, p in params.items()]
    start_loss = [None]
    best = [{k: v.copy() for k, v in params.items()}, len(history["loss"]),
            history["loss"][-1] if history["loss"] else np.inf]

    def unpack(theta):
        i = 0
        for k, shape, size in shapes:
            params[k][...] = theta[i:i + size].reshape(shape)
            i += size

    def fun(theta):
        unpack(theta)
        with np.errstate(over="ignore", invalid="ignore"):
            J, grads = loss_and_grad(X)
        if start_loss[0] is None and np.isfinite(J):
            start_loss[0] = abs(float(J))
        return float(J), np.concatenate([grads[k].ravel() for k, _, _ in shapes]).astype(
            np.float64)

    def callback(intermediate_result):
        unpack(intermediate_result.x)
        J = float(intermediate_result.fun)
        history["loss"].append(J)
        if val_loss is not None and X_val is not None:
            history["val_loss"].append(float(val_loss(X_val)))
        if J < best[2]:
            best[:] = [{k: v.copy() for k, v in params.items()}, len(history["loss"]), J]
        if checkpoint is not None:
            _save_checkpoint(checkpoint, params, None, len(history["loss"]), history, None,
                             start_loss[0], owner)
        if verbose:
            print(f"{desc} iteration {len(history['loss'])}: J = {J:.6g}")

    theta0 = np.concatenate([p.ravel() for p in params.values()]).astype(np.float64)
    if remaining > 0:
        res = minimize(fun, theta0, jac=True, method="L-BFGS-B", callback=callback,
                       options={"maxiter": remaining})
        unpack(res.x)
        if not np.isfinite(res.fun):
            snapshot, it, J = best
            where = (f"their values after iteration {it} (objective {J:.4g})" if it
                     else "their initial values")
            _diverged(params, snapshot, len(history["loss"]) - 1 if history["loss"] else 0,
                      f"the objective became {res.fun}", history, where)
        if history["loss"]:
            _check_growth(params, history, len(history["loss"]) - 1, best, final=True,
                          margin=NOISE_MARGIN, start_loss=start_loss[0])
    return history


#: L-BFGS iterations added to a resumed run to rebuild the curvature memory it lost
RESTART_ITERATIONS = 10
