"""Training checkpoints: resume a killed fit exactly where it stopped.

:class:`TrainingCheckpoint` is the skorch callback behind the estimators'
``checkpoint_dir``: it saves the whole training state after every epoch and
resumes a killed fit so exactly that, on the CPU, it ends with the same
weights as an uninterrupted one. Its files are written and read like
:mod:`sk_replearn.persistence`'s: plain data that
``torch.load(path, weights_only=True)`` reads.

What an *identical* resume needs, beyond skorch's own ``Checkpoint``
(weights, optimizer, history): the learning-rate scheduler's step count,
the early-stopping and best-score bookkeeping of the callbacks, the float16
gradient scaler, and torch's random state twice: once as it was when
training began (so the train/validation split is drawn again the same) and
once at the end of the last saved epoch (batch order, views, masks).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping

import numpy as np
import torch
from sklearn.base import BaseEstimator
from skorch.callbacks import Callback, EarlyStopping, LRScheduler
from skorch.history import History

from .base import is_fitted
from .persistence import (
    _CHECKPOINT_FORMAT,
    _NOT_FINGERPRINTED,
    _VERSION,
    _atomic_save,
    _load_weights,
    _objective,
    _read,
    from_plain,
    to_plain,
)

__all__ = ["TrainingCheckpoint", "fingerprint"]


def fingerprint(estimator) -> dict:
    """What must match for a checkpoint to be resumed by ``estimator``.

    The class and every (nested) parameter but those that only say how a
    fit runs (``verbose``, ``device``, ``callbacks``, ``checkpoint_dir``, ...).
    A parameter that is an unfitted estimator counts by its own parameters
    (listed under ``name__param``); one that is fitted (a fine-tuner's
    pre-trained ``representation``) also by a digest of what it learned,
    since two representations of equal parameters fitted on other data
    start two different fine-tunings. A fine-tuner that pre-trains its
    representation on ``pretrain_X`` counts that data too (its digest, set
    by the fit as ``_pretrain_digest``).

    Parameters
    ----------
    estimator : sk_replearn estimator
        The estimator about to fit.

    Returns
    -------
    dict
        ``{"estimator": class name, "params": {name: text}}``.

    Examples
    --------
    >>> from sk_replearn import AutoencoderTransformer
    >>> from sk_replearn.checkpoint import fingerprint
    >>> fingerprint(AutoencoderTransformer())["params"]["n_components"]
    '16'
    """
    params = {}
    for k, v in sorted(estimator.get_params(deep=True).items()):
        if k.rsplit("__", 1)[-1] in _NOT_FINGERPRINTED:
            continue
        if not isinstance(v, BaseEstimator):
            params[k] = repr(v)
        elif is_fitted(v):
            params[k] = f"a fitted {type(v).__name__} (learned state {_learned(v)})"
    pretrain = getattr(estimator, "_pretrain_digest", None)
    if pretrain is not None:  # a fine-tuner's pre-training data
        params["pretrain_X"] = f"data of digest {pretrain}"
    return {"estimator": type(estimator).__name__, "params": params}


def pretrain_digest(pretrain_X) -> str | None:
    """A digest of a fine-tuner's ``pretrain_X``, as of its training data.

    None when there is none, or for data whose rows cannot be read by index
    (a user's Dataset, ragged sequences): its shape is not known either.
    """
    if pretrain_X is None:
        return None
    rows = pretrain_X
    if hasattr(rows, "to_numpy"):  # a DataFrame
        rows = rows.to_numpy()
    elif isinstance(rows, (list, tuple)):
        try:
            rows = np.asarray(rows)
        except ValueError:  # ragged sequences
            return None
        if rows.dtype == object:
            return None
    return _data_digest(rows)


#: Fitted attributes that record how a fit ran (its timings), not what it learned.
_NOT_LEARNED = ("history_",)


def _learned(estimator) -> str:
    """A digest of what a fitted estimator learned: its public fitted attributes.

    A network (``net_``) counts by its module's weights and buffers, arrays
    and tensors by their bytes, nested estimators by what they learned, and
    numbers, strings and containers of them by their repr; anything else
    (a history of timings, a cache) is left out.
    """
    digest = hashlib.blake2b(digest_size=16)
    _digest_learned(digest, estimator)
    return digest.hexdigest()


def _digest_learned(digest, estimator) -> None:
    digest.update(type(estimator).__name__.encode())
    for key, value in sorted(vars(estimator).items()):
        if key.startswith("_") or not key.endswith("_") or key in _NOT_LEARNED:
            continue
        if hasattr(value, "module_") and hasattr(value, "history"):  # a net
            value = _objective(value).state_dict()
        _digest_value(digest, key, value)


def _digest_value(digest, key: str, value) -> None:
    if isinstance(value, BaseEstimator):
        digest.update(f"{key}:estimator".encode())
        _digest_learned(digest, value)
    elif isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{key}:{value.dtype}:{tuple(value.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, np.ndarray) and value.dtype.kind in "biufc":
        digest.update(f"{key}:{value.dtype.str}:{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, np.ndarray):
        digest.update(f"{key}:{value.dtype.str}:{value.shape}".encode())
        digest.update(repr(value.ravel().tolist()).encode())
    elif isinstance(value, Mapping):
        digest.update(f"{key}:mapping:{len(value)}".encode())
        for k, v in value.items():
            _digest_value(digest, f"{key}[{k!r}]", v)
    elif isinstance(value, (list, tuple)):
        digest.update(f"{key}:sequence:{len(value)}".encode())
        for i, v in enumerate(value):
            _digest_value(digest, f"{key}[{i}]", v)
    elif value is None or isinstance(value, (bool, int, float, str, np.generic)):
        digest.update(f"{key}={value!r}".encode())


def _device(net) -> torch.device:
    """Where the net trains: an accelerated net says (``_dev``), else ``device``."""
    device = net._dev() if hasattr(net, "_dev") else net.device
    return torch.device("cpu" if device is None else device)


def _rng_state(net) -> dict:
    device = _device(net)
    cuda = None
    if device.type == "cuda" and torch.cuda.is_available():
        cuda = torch.cuda.get_rng_state(device)
    return {"cpu": torch.get_rng_state(), "cuda": cuda}


def _set_rng_state(net, state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    device = _device(net)
    if state.get("cuda") is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


#: Rows of the training data a checkpoint's fingerprint reads, evenly spaced.
_DIGEST_ROWS = 1024


def _data_digest(X, y=None) -> str | None:
    """A digest of evenly spaced rows of the training data (and targets).

    Two folds of a cross-validation have data of one shape: without it, a
    fold running beside another would resume the other's checkpoint and
    train on its rows. None for data whose rows cannot be read by index.
    """
    digest = hashlib.blake2b(digest_size=16)
    for part in (X, y):
        if part is None:
            continue
        rows = getattr(part, "ids", part)  # a TokenDataset: its padded ids
        if not isinstance(rows, (torch.Tensor, np.ndarray)) and not hasattr(
            rows, "subset"
        ):
            return None  # a user's Dataset: its shape alone
        n = len(rows)
        if n == 0:
            continue
        idx = torch.linspace(0, n - 1, min(n, _DIGEST_ROWS)).round().long()
        block = rows[idx.numpy()] if isinstance(rows, np.ndarray) else rows[idx]
        block = block.numpy() if isinstance(block, torch.Tensor) else np.asarray(block)
        digest.update(np.ascontiguousarray(block).tobytes())
        labels = getattr(part, "y", None)  # a TokenDataset's targets
        if isinstance(labels, torch.Tensor) and len(labels):
            digest.update(np.ascontiguousarray(labels[idx].numpy()).tobytes())
    return digest.hexdigest()


def _callback_states(net) -> dict:
    """The bookkeeping of the callbacks a resumed fit must carry on with."""
    states = {}
    for name, cb in net.callbacks_:
        state = {}
        if isinstance(cb, LRScheduler) and getattr(cb, "lr_scheduler_", None):
            state["lr_scheduler"] = cb.lr_scheduler_.state_dict()
            state["batch_idx_"] = cb.batch_idx_
        if isinstance(cb, EarlyStopping):
            for attr in ("misses_", "dynamic_threshold_", "best_epoch_"):
                state[attr] = getattr(cb, attr, None)
            state["best_model_weights_"] = getattr(cb, "best_model_weights_", None)
        if hasattr(cb, "best_score_"):
            state["best_score_"] = cb.best_score_
        if state:
            try:
                states[name] = to_plain(state, f"callback {name!r}")
            except TypeError:
                continue  # e.g. a user's scheduler holding a lambda
    return states


def _restore_callback_states(net, states: dict) -> None:
    callbacks = dict(net.callbacks_)
    for name, state in states.items():
        cb = callbacks.get(name)
        if cb is None:
            continue
        state = from_plain(state)
        if "lr_scheduler" in state and getattr(cb, "lr_scheduler_", None):
            cb.lr_scheduler_.load_state_dict(state.pop("lr_scheduler"))
        for attr, value in state.items():
            setattr(cb, attr, value)


class TrainingCheckpoint(Callback):
    """Save the training state after every epoch; resume a killed fit from it.

    The callback behind the estimators' ``checkpoint_dir``. After every
    epoch it writes ``checkpoint.pt`` in ``dirname`` (atomically: a kill
    during the write leaves the previous checkpoint): the module's weights,
    the optimizer, the history, the callbacks' bookkeeping (learning-rate
    schedule, early stopping, best scores), the gradient scaler and torch's
    random state. When training begins on a fresh net and the file holds an
    unfinished run of the same estimator and data, the state is loaded and
    only the remaining epochs run; on the CPU, at the same number of
    threads, the result equals an uninterrupted fit's, bit for bit.

    A checkpoint of a run that finished (all its epochs, or stopped early)
    is *not* resumed: a new fit starts over and overwrites it, as a fit
    without ``checkpoint_dir`` would. An unfinished checkpoint of another
    estimator, other parameters or other data raises a ValueError rather
    than being overwritten.

    Parameters
    ----------
    dirname : str or path-like
        Directory of the checkpoint (created if needed).
    fingerprint : dict or None, default=None
        What must match for a resume (see :func:`fingerprint`); the shape of
        the training data is added to it.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from sk_replearn.objectives.reconstruction import AutoencoderObjective
    >>> from sk_replearn.checkpoint import TrainingCheckpoint
    >>> from sk_replearn.training import RepresentationNet
    >>> d = tempfile.mkdtemp()
    >>> net = RepresentationNet(
    ...     AutoencoderObjective(input_shape=(4,), n_components=2), max_epochs=2,
    ...     callbacks=[("checkpoint", TrainingCheckpoint(d))], verbose=0)
    >>> _ = net.fit(torch.randn(16, 4), None)
    >>> sorted(os.listdir(d))
    ['checkpoint.pt']
    """

    filename = "checkpoint.pt"

    def __init__(self, dirname, fingerprint: dict | None = None) -> None:
        self.dirname = dirname
        self.fingerprint = fingerprint

    def initialize(self):
        self._resume = None
        self._target = None
        self._train_begin_rng = None
        return self

    @property
    def path(self) -> str:
        """The checkpoint file."""
        return os.path.join(os.fspath(self.dirname), self.filename)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        shape = list(getattr(X, "shape", ()))
        self.fingerprint_ = {**(self.fingerprint or {}), "data_shape": shape}
        digest = _data_digest(X, y)
        if digest is not None:
            self.fingerprint_["data_digest"] = digest
        checkpoint = None
        if len(net.history) == 0 and os.path.exists(self.path):
            checkpoint = _read(self.path, _CHECKPOINT_FORMAT)
            if checkpoint["finished"]:
                checkpoint = None  # a finished run: start over
        if checkpoint is None:
            self._target = len(net.history) + net.max_epochs
            self._train_begin_rng = _rng_state(net)
            return
        self._check_fingerprint(checkpoint["fingerprint"])
        # The callbacks before this one have begun; load over their state.
        _load_weights(
            net,
            checkpoint["module"],
            f"checkpoint_dir={os.fspath(self.dirname)!r} holds an unfinished "
            "training run of a network of other shapes than this fit's, with the "
            "same parameters (a version of sk_replearn with other defaults wrote "
            "it), which this fit cannot resume. Use another checkpoint_dir, or "
            "delete the checkpoint to start over.",
        )
        net.optimizer_.load_state_dict(from_plain(checkpoint["optimizer"]))
        net.history = History(from_plain(checkpoint["history"]))
        _restore_callback_states(net, checkpoint["callbacks"])
        if checkpoint.get("grad_scaler") and getattr(net, "grad_scaler_", None):
            net.grad_scaler_.load_state_dict(from_plain(checkpoint["grad_scaler"]))
        self._target = checkpoint["target_epochs"]
        # The loop reads max_epochs after this hook: run only what is left.
        self._resume = (net.max_epochs, checkpoint["rng"]["epoch_end"])
        net.max_epochs = self._target - len(net.history)
        # Draw the train/validation split as the interrupted fit did.
        _set_rng_state(net, checkpoint["rng"]["train_begin"])
        self._train_begin_rng = checkpoint["rng"]["train_begin"]

    def on_epoch_begin(self, net, **kwargs):
        if self._resume is None:
            return
        max_epochs, rng = self._resume
        self._resume = None
        net.max_epochs = max_epochs
        _set_rng_state(net, rng)  # where the saved epoch left the generator

    def on_epoch_end(self, net, **kwargs):
        self._write(net, finished=False)

    def on_train_end(self, net, **kwargs):
        stopped = getattr(net, "_early_stopped", lambda: False)()
        if stopped or len(net.history) >= self._target:
            self._write(net, finished=True)
        # else interrupted mid-epoch: keep the last epoch's checkpoint

    def _check_fingerprint(self, saved: dict) -> None:
        ours = self.fingerprint_
        if "data_digest" not in saved:  # written before digests: shapes only
            ours = {k: v for k, v in ours.items() if k != "data_digest"}
        if saved == ours:
            return
        keys = sorted(
            k
            for k in {*saved.get("params", {}), *self.fingerprint_.get("params", {})}
            if saved.get("params", {}).get(k)
            != self.fingerprint_.get("params", {}).get(k)
        )
        if saved.get("estimator") != self.fingerprint_.get("estimator"):
            what = f"a {saved.get('estimator')}"
        elif saved.get("data_shape") != self.fingerprint_.get("data_shape"):
            what = f"data of shape {tuple(saved.get('data_shape', ()))}"
        elif saved.get("data_digest") != ours.get("data_digest"):
            what = (
                "other data of the same shape (another fold of a "
                "cross-validation running at the same time, say: there, run "
                "the folds one at a time, n_jobs=1)"
            )
        else:
            what = (
                "other parameters ("
                + ", ".join(
                    f"{k}={saved.get('params', {}).get(k, '<unset>')}" for k in keys
                )
                + ")"
            )
        raise ValueError(
            f"checkpoint_dir={os.fspath(self.dirname)!r} holds an unfinished "
            f"training run of {what}, which this fit cannot resume. Use another "
            "checkpoint_dir (one per model), or delete the checkpoint to start "
            "over."
        )

    def _write(self, net, finished: bool) -> None:
        accelerator = getattr(net, "accelerator", None)
        if accelerator is not None and not accelerator.is_main_process:
            return  # the processes hold the same weights: the main one writes
        scaler = getattr(net, "grad_scaler_", None)
        payload = {
            "format": _CHECKPOINT_FORMAT,
            "version": _VERSION,
            "fingerprint": self.fingerprint_,
            "target_epochs": self._target,
            "finished": finished,
            "module": _objective(net).state_dict(),
            "optimizer": to_plain(net.optimizer_.state_dict(), "optimizer state"),
            "history": to_plain(list(net.history), "history"),
            "callbacks": _callback_states(net),
            "grad_scaler": to_plain(scaler.state_dict(), "scaler") if scaler else None,
            "rng": {"train_begin": self._train_begin_rng, "epoch_end": _rng_state(net)},
        }
        os.makedirs(os.fspath(self.dirname), exist_ok=True)
        _atomic_save(payload, self.path)
