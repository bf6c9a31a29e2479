"""The one training loop every gradient-trained model in npae shares.

A model hands the loop three things and keeps its maths to itself:

* ``params``: name -> live parameter arrays (updated in place by the optimiser);
* ``loss_and_grad(X_batch)`` -> (L, {name: dL/dparam}) with L the mean over the batch;
* optionally ``val_loss(X)`` -> float, evaluated on held-out data after each epoch.

The loop shuffles, cuts mini-batches, steps the optimiser, records ``history`` (mean training
loss per epoch and the validation loss), shows a tqdm bar with the running loss, stops with a
clear error if the loss stops being finite, and writes an atomic .npz checkpoint after each
epoch that ``resume=True`` continues from.
"""
from __future__ import annotations

import os

import numpy as np

from ._io import atomic_savez
from ._validation import check_param
from .exceptions import NonFiniteError, TrainingDiverged

__all__ = ["fit_loop", "iterate_minibatches", "TrainingDiverged"]


def iterate_minibatches(n, batch_size, rng=None, shuffle=True):
    """Yield index arrays covering range(n) in batches of ``batch_size`` (the last may be short)."""
    order = np.random.default_rng(rng).permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def _diverged(params, saved, epoch, what, history):
    """Put the parameters back as the epoch found them (a failed fit leaves no NaN or inf
    weights behind) and raise the error that says where and what to do."""
    for name, v in params.items():
        v[...] = saved[name]
    last = (f" (mean loss of epoch {epoch}: {history['loss'][-1]:.4g})"
            if history["loss"] else "")
    raise TrainingDiverged(
        f"{what} in epoch {epoch + 1}{last}; the run diverged. Lower the learning rate (or "
        "check the data's scale) and fit again. The parameters were restored to their "
        f"values at the start of epoch {epoch + 1}.")


def _save_checkpoint(path, params, optimizer, epoch, history, rng):
    arrays = {f"param/{name}": v for name, v in params.items()}
    arrays.update({f"optim/{name}": v for name, v in optimizer.state_dict().items()})
    arrays["epoch"] = np.array(epoch)
    for key, values in history.items():
        arrays[f"history/{key}"] = np.asarray(values, dtype=np.float64)
    # the generator's state as a string would need pickle; its 128-bit state fits in uint64s
    st = rng.bit_generator.state
    arrays["rng_state"] = np.array([st["state"]["state"] >> 64, st["state"]["state"] & (2**64 - 1),
                                    st["state"]["inc"] >> 64, st["state"]["inc"] & (2**64 - 1),
                                    st["has_uint32"], st["uinteger"]], dtype=np.uint64)
    atomic_savez(path, **arrays)


def _load_checkpoint(path, params, optimizer, history, rng):
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    for k, v in params.items():
        key = f"param/{k}"
        if key not in data or data[key].shape != v.shape:
            raise ValueError(f"checkpoint {path!r} does not match this model: parameter {k!r} "
                             f"{'is missing' if key not in data else 'has shape ' + str(data[key].shape)}"
                             f" (the model has {v.shape}); build the model with the same "
                             "hyper-parameters or start without resume")
        v[...] = data[key]
    optimizer.load_state_dict({k[len("optim/"):]: v for k, v in data.items()
                               if k.startswith("optim/")})
    for k in list(history):
        history[k] = list(data.get(f"history/{k}", np.array([])))
    if "rng_state" in data:
        s = [int(x) for x in data["rng_state"]]
        st = rng.bit_generator.state
        st["state"] = {"state": (s[0] << 64) | s[1], "inc": (s[2] << 64) | s[3]}
        st["has_uint32"], st["uinteger"] = s[4], s[5]
        rng.bit_generator.state = st
    return int(data["epoch"])


def fit_loop(params, loss_and_grad, X, *, optimizer, n_epochs, batch_size, rng=None,
             shuffle=True, val_loss=None, X_val=None, verbose=False, checkpoint=None,
             resume=False, desc="training", callback=None):
    """Mini-batch training. Returns ``history``: {"loss": [...], "val_loss": [...]}.

    ``X`` may be any array whose first axis indexes samples. ``rng`` (a Generator or seed)
    drives the shuffling; pass the model's generator so a run is repeatable. ``callback``,
    if given, is called as ``callback(epoch, history)`` after each epoch.
    """
    check_param("n_epochs", n_epochs, kind="int", low=0)
    check_param("batch_size", batch_size, kind="int", low=1)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n = X.shape[0]
    history = {"loss": [], "val_loss": []}
    start = 0
    if resume:
        if checkpoint is None:
            raise ValueError("resume=True needs the checkpoint path it should resume from")
        if os.path.exists(checkpoint):
            start = _load_checkpoint(checkpoint, params, optimizer, history, rng)
    bar = None
    if verbose:
        from tqdm.auto import tqdm
        bar = tqdm(total=(n_epochs - start) * -(-n // batch_size), desc=desc, leave=True)
    stepped = False
    try:
        for epoch in range(start, n_epochs):
            saved = {name: v.copy() for name, v in params.items()}
            total = 0.0
            for idx in iterate_minibatches(n, batch_size, rng, shuffle):
                try:
                    # overflow is this loop's to report: as TrainingDiverged, below, not as
                    # a RuntimeWarning from deep inside a layer
                    with np.errstate(over="ignore", invalid="ignore"):
                        loss, grads = loss_and_grad(X[idx])
                        if np.isfinite(loss):
                            optimizer.step(grads)
                except NonFiniteError as exc:
                    if not stepped:  # before any step: the data or the start, not divergence
                        raise
                    _diverged(params, saved, epoch, f"{exc.name or 'a value inside the model'}"
                              " became NaN, inf or too large to compute with", history)
                if not np.isfinite(loss):
                    _diverged(params, saved, epoch, f"the training loss became {loss}",
                              history)
                stepped = True
                total += loss * len(idx)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(epoch=epoch + 1, loss=f"{loss:.4f}")
            # the epoch's last step can overflow a weight without any loss seeing it
            if not all(np.isfinite(v).all() for v in params.values()):
                _diverged(params, saved, epoch, "a parameter became NaN or inf", history)
            history["loss"].append(total / n)
            if val_loss is not None and X_val is not None:
                history["val_loss"].append(float(val_loss(X_val)))
            if checkpoint is not None:
                _save_checkpoint(checkpoint, params, optimizer, epoch + 1, history, rng)
            if callback is not None:
                callback(epoch, history)
    finally:
        if bar is not None:
            bar.close()
    return history
