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
once at the end of the last saved epoch (batch order, views, masks). A
user's scheduler whose state holds objects that are not data (a rule object
holding a function, in ``LambdaLR``) is saved without them: the resumed fit
takes them from the scheduler as built again, and its counts from the file.
"""

from __future__ import annotations

import os
import tempfile

import torch
from skorch.callbacks import Callback, EarlyStopping, LRScheduler
from skorch.history import History

from ._fingerprint import _data_fingerprint, _digest_of, fingerprint
from ._util import with_article
from .persistence import from_plain, to_plain
from .persistence._codec import _load_weights
from .persistence._files import _CHECKPOINT_FORMAT, _VERSION, _atomic_save, _read
from .training import net_device, trained_module

__all__ = ["TrainingCheckpoint", "check_checkpoint_dir", "fingerprint"]


def _rng_state(net) -> dict:
    device = net_device(net)
    cuda = None
    if device.type == "cuda" and torch.cuda.is_available():
        cuda = torch.cuda.get_rng_state(device)
    return {"cpu": torch.get_rng_state(), "cuda": cuda}


def _set_rng_state(net, state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    device = net_device(net)
    if state.get("cuda") is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def _callback_states(net) -> dict:
    """The bookkeeping of the callbacks a resumed fit must carry on with."""
    states = {}
    for name, cb in net.callbacks_:
        state = {}
        if isinstance(cb, LRScheduler) and getattr(cb, "lr_scheduler_", None):
            state["lr_scheduler"] = _plain_items(cb.lr_scheduler_.state_dict())
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
                continue  # a user's callback whose best_score_ is not data
    return states


def _plain_items(state: dict) -> dict:
    """The entries of a scheduler's state that are plain data.

    A user's scheduler may hold objects that are not (``LambdaLR``'s
    ``lr_lambdas`` of a rule object holding a function): those entries are
    left out, and a resumed fit takes them from the scheduler as it is built
    again, with its counts (``last_epoch``, the last rates) from the
    checkpoint.
    """
    kept = {}
    for key, value in state.items():
        try:
            to_plain(value, "scheduler state")
        except TypeError:
            continue
        kept[key] = value
    return kept


def _restore_callback_states(net, states: dict) -> None:
    callbacks = dict(net.callbacks_)
    for name, state in states.items():
        cb = callbacks.get(name)
        if cb is None:
            continue
        state = from_plain(state)
        scheduler = state.pop("lr_scheduler", None)
        if scheduler is not None and getattr(cb, "lr_scheduler_", None):
            # entries the checkpoint left out: the scheduler's own, as built
            cb.lr_scheduler_.load_state_dict(
                {**cb.lr_scheduler_.state_dict(), **scheduler}
            )
        for attr, value in state.items():
            setattr(cb, attr, value)


def _state_digest(net) -> str:
    """A digest of the weights and optimizer state a warm start goes on from."""
    state = {"module": trained_module(net).state_dict()}
    return _digest_of({**state, "optimizer": net.optimizer_.state_dict()})


def check_checkpoint_dir(dirname: str | os.PathLike) -> None:
    """Make the directory ``dirname`` if needed and check that it takes files.

    Run when training begins, so that a directory no checkpoint can be
    written to fails the fit before its first epoch rather than after it.

    Parameters
    ----------
    dirname : str or path-like
        The ``checkpoint_dir``.

    Raises
    ------
    ValueError
        Naming ``checkpoint_dir``, the path and the system's reason, where
        the directory cannot be made (a path below a file, an empty path)
        or a file cannot be created in it (a read-only folder).

    Examples
    --------
    >>> import os, tempfile
    >>> from sk_replearn.checkpoint import check_checkpoint_dir
    >>> d = os.path.join(tempfile.mkdtemp(), "run")
    >>> check_checkpoint_dir(d)
    >>> os.listdir(d)
    []
    """
    directory = os.fspath(dirname)
    try:
        if not directory:
            raise FileNotFoundError("the path is empty")
        if os.path.exists(directory) and not os.path.isdir(directory):
            raise NotADirectoryError(f"{directory!r} is a file")
        os.makedirs(directory, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".write-test-", dir=directory)
        os.close(handle)
        os.remove(probe)
    except OSError as exc:
        raise ValueError(
            f"checkpoint_dir={dirname!r} is not a directory where a checkpoint "
            f"can be written ({type(exc).__name__}: {exc}); pass a directory "
            "this process can write to, or None to save no checkpoint."
        ) from exc


class TrainingCheckpoint(Callback):
    """Save the training state after every epoch; resume a killed fit from it.

    The callback behind the estimators' ``checkpoint_dir``. After every
    epoch it writes ``checkpoint.pt`` in ``dirname`` (atomically: a kill
    during the write leaves the previous checkpoint): the module's weights,
    the optimizer, the history, the callbacks' bookkeeping (learning-rate
    schedules, early stopping, best scores, the user's as the engine's),
    the gradient scaler and torch's random state. When training begins and
    the file holds an unfinished run of the same estimator and data that
    started where this fit starts, the state is loaded and only the
    remaining epochs run; on the CPU, at the same number of threads, the
    result equals an uninterrupted fit's, bit for bit. A fit from scratch
    resumes a run from scratch; a warm start (``warm_start=True``) resumes
    one that went on from the same epoch of the same fitted model (its
    weights and optimizer state).

    It must come after the callbacks whose state it saves (the estimators
    put it last): it restores their bookkeeping once they all have begun
    training, and the estimators' net lets every callback see an epoch
    before any error raised at its end (a stop, a crash) propagates, so
    that the checkpoint saves the epoch after them all.

    A checkpoint of a run that finished (all its epochs, or stopped early)
    is *not* resumed: a new fit starts over and overwrites it, as a fit
    without ``checkpoint_dir`` would. Neither is one of a run that started
    at another epoch: the warm-start continuation of a script's first fit
    when the script runs again from the start, whose first fit starts over
    (the continuation then runs again after it). An unfinished checkpoint
    of another estimator, other parameters or other data, or of a warm
    start of another fitted model, raises a ValueError rather than being
    overwritten, and so does a file that cannot be read (a truncated copy).

    Parameters
    ----------
    dirname : str or path-like
        Directory of the checkpoint (created if needed; training begins
        with a check that a file can be written there).
    fingerprint : dict or None, default=None
        What must match for a resume (see :func:`fingerprint`); the shape
        and a digest of the training data are added to it.

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
        self._start = 0
        self._target = None
        self._train_begin_rng = None
        return self

    @property
    def path(self) -> str:
        """The checkpoint file."""
        return os.path.join(os.fspath(self.dirname), self.filename)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        check_checkpoint_dir(self.dirname)
        net.checkpoint_dir_ = os.fspath(self.dirname)  # for its interrupt warning
        self._start = start = len(net.history)  # a warm start goes on from it
        self.fingerprint_ = {**(self.fingerprint or {}), **_data_fingerprint(X, y)}
        if start:  # ... and from the weights and optimizer state it holds
            self.fingerprint_["start_state"] = _state_digest(net)
        checkpoint = self._unfinished_run(start)
        if checkpoint is None:
            self._target = start + net.max_epochs
            self._train_begin_rng = _rng_state(net)
            return
        # Every callback has begun (this one comes last): load over their state.
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
        if getattr(net, "_early_stopped", lambda: False)():
            # Killed in the epoch whose end stopped it early: no epoch is
            # left (another would count a miss past the patience, which
            # EarlyStopping never stops on), and the end runs as it would.
            net.max_epochs = 0
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
        if self._resume is not None:  # resumed with no epoch left to run
            net.max_epochs = self._resume[0]
            self._resume = None
        stopped = getattr(net, "_early_stopped", lambda: False)()
        if stopped or len(net.history) >= self._target:
            self._write(net, finished=True)
        # else interrupted mid-epoch: keep the last epoch's checkpoint

    def _unfinished_run(self, start: int) -> dict | None:
        """The checkpoint's run that this fit, begun at epoch ``start``, resumes.

        None where there is none to resume: no file, a finished run, or a
        run begun at another epoch (another round of warm starts of the
        same training), which this fit overwrites. Raises a ValueError for
        a file that cannot be read and for another model's unfinished run.
        """
        if not os.path.exists(self.path):
            return None
        try:
            checkpoint = _read(self.path, _CHECKPOINT_FORMAT)
        except ValueError as exc:
            raise ValueError(
                f"checkpoint_dir={os.fspath(self.dirname)!r} holds a checkpoint "
                f"that cannot be resumed: {exc} Delete {self.path!r} to start "
                "over, or use another checkpoint_dir."
            ) from exc
        # A file written before starts were recorded counts as from scratch.
        begun = checkpoint.get("start_epoch", 0)
        if checkpoint["finished"] or begun != start:
            return None  # finished, or another round of warm starts: start over
        self._check_fingerprint(checkpoint["fingerprint"])
        return checkpoint

    def _check_fingerprint(self, saved: dict) -> None:
        ours = self.fingerprint_
        if "data_digest" not in saved:  # written before digests: shapes only
            ours = {k: v for k, v in ours.items() if k != "data_digest"}
        elif not saved.get("data_shape"):  # before Datasets' shapes: digests
            ours = {**ours, "data_shape": saved.get("data_shape", [])}
        if saved == ours:
            return
        keys = sorted(
            k
            for k in {*saved.get("params", {}), *ours.get("params", {})}
            if saved.get("params", {}).get(k) != ours.get("params", {}).get(k)
        )
        if saved.get("estimator") != ours.get("estimator"):
            what = with_article(str(saved.get("estimator")))
        elif saved.get("data_shape") != ours.get("data_shape"):
            what = f"data of shape {tuple(saved.get('data_shape', ()))}"
        elif saved.get("data_digest") != ours.get("data_digest"):
            what = (
                "other data of the same shape (another fold of a "
                "cross-validation running at the same time, say: there, run "
                "the folds one at a time, n_jobs=1; or a Dataset that draws "
                "its samples at random from a generator of its own, which "
                "cannot be told from other data)"
            )
        elif keys:
            what = (
                "other parameters ("
                + ", ".join(
                    f"{k}={saved.get('params', {}).get(k, '<unset>')}" for k in keys
                )
                + ")"
            )
        else:
            what = (
                f"a warm start of another fitted model (other weights or "
                f"optimizer state at epoch {self._start})"
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
            "start_epoch": self._start,
            "target_epochs": self._target,
            "finished": finished,
            "module": trained_module(net).state_dict(),
            "optimizer": to_plain(net.optimizer_.state_dict(), "optimizer state"),
            "history": to_plain(list(net.history), "history"),
            "callbacks": _callback_states(net),
            "grad_scaler": to_plain(scaler.state_dict(), "scaler") if scaler else None,
            "rng": {"train_begin": self._train_begin_rng, "epoch_end": _rng_state(net)},
        }
        os.makedirs(os.fspath(self.dirname), exist_ok=True)
        _atomic_save(payload, self.path)
