"""How a neural estimator's engine parameters become its training net's.

:class:`TrainingEngineMixin` turns the parameters every
:class:`~sk_replearn.methods.base.NeuralRepresentation` shares (epochs,
batches, optimiser, learning-rate schedule and warm-up, early stopping,
the user's callbacks, the checkpoint) into the keyword arguments of its
:class:`~sk_replearn.training.RepresentationNet`: the optimiser class
(:data:`OPTIMIZERS`, fused where it can be) and its checks, the callbacks
in their order, and the step counts the schedules span.
"""

from __future__ import annotations

import inspect
import math
import sys

import torch
from sklearn.utils._param_validation import HasMethods
from skorch.callbacks import Callback, EarlyStopping, LRScheduler, ProgressBar

from .._callbacks import (
    FreshLRScheduler,
    RandomSplit,
    StopOnNonFiniteLoss,
    WarmupCosine,
)
from .._util import with_article
from ..checkpoint import TrainingCheckpoint, fingerprint
from ..distributed import world_size

#: The methods of an ``accelerate.Accelerator`` that training calls.
_ACCELERATOR_METHODS = [
    "prepare",
    "backward",
    "autocast",
    "accumulate",
    "gather_for_metrics",
    "unwrap_model",
    "wait_for_everyone",
]
#: The attributes of an ``accelerate.Accelerator`` that training reads.
_ACCELERATOR_ATTRIBUTES = [
    "device",
    "device_placement",
    "is_main_process",
    "num_processes",
    "process_index",
]


class _AcceleratorLike(HasMethods):
    """An object with an accelerator's methods and the attributes read.

    ``HasMethods`` alone let an object without ``num_processes`` through,
    to fail inside the fit with an ``AttributeError``.
    """

    def __init__(self):
        super().__init__(_ACCELERATOR_METHODS)

    def is_satisfied_by(self, val) -> bool:
        return super().is_satisfied_by(val) and all(
            hasattr(val, name) for name in _ACCELERATOR_ATTRIBUTES
        )

    def __str__(self) -> str:
        names = ", ".join(map(repr, _ACCELERATOR_ATTRIBUTES[:-1]))
        return (
            f"{super().__str__()}, with the attributes {names} and "
            f"{_ACCELERATOR_ATTRIBUTES[-1]!r} (an accelerate.Accelerator)"
        )


OPTIMIZERS = {
    "adamw": torch.optim.AdamW,
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
}

#: The callbacks every skorch net has (``NeuralNet._default_callbacks``): a
#: user's callback of the same name would meet skorch's "duplicate" error.
_SKORCH_DEFAULT_CALLBACKS = ["epoch_timer", "train_loss", "valid_loss", "print_log"]

#: torch has had fused (one-kernel) Adam and AdamW steps on the CPU since 2.4.
_CPU_FUSED_ADAM = tuple(int(v) for v in torch.__version__.split(".")[:2]) >= (2, 4)


def fused_optimizer_kwargs(optimizer, device: torch.device) -> dict:
    """``{"optimizer__fused": True}`` where the named Adam/AdamW can fuse.

    The fused step updates every tensor of the model in one kernel instead
    of a Python loop over them: an AdamW step of MAE's 72 tensors (626,000
    weights) takes 1.5 ms instead of 7.9 ms on one CPU thread, SimCLR's
    MNIST-1D network (32 tensors) 0.55 instead of 2.8 ms. The update is the
    same up to float rounding. Only the names ``"adam"`` / ``"adamw"`` are
    fused: a class passed in may not take the argument.
    """
    if optimizer not in ("adam", "adamw"):
        return {}
    if device.type == "cuda" or (device.type == "cpu" and _CPU_FUSED_ADAM):
        return {"optimizer__fused": True}
    return {}


class TrainingEngineMixin:
    """The engine parameters of a neural estimator, as its training net's.

    Mixed into :class:`~sk_replearn.methods.base.NeuralRepresentation`,
    whose parameters it reads; a subclass overrides a step count
    (``_epochs``, ``_samples_per_epoch``) or ``_resolve_epochs`` for
    ``max_epochs="auto"``.
    """

    #: Whether early stopping holds out each class in its share (a
    #: classifier's targets are class indices).
    _stratified_validation = False

    def _resolve_epochs(self, n_samples: int) -> None:
        """Set what ``max_epochs="auto"`` means for a fit on ``n_samples``.

        A subclass that takes "auto" sets ``max_epochs_`` here; the others
        train for ``max_epochs``.
        """

    def _epochs(self) -> int:
        """``max_epochs`` as the fit uses it: ``max_epochs_`` where resolved.

        An estimator saved before its class took "auto" has no
        ``max_epochs_`` and loads with its integer ``max_epochs``.
        """
        return getattr(self, "max_epochs_", self.max_epochs)

    def _optimizer_steps(self, n_samples: int) -> int:
        """Optimiser steps of one fit on ``n_samples``: the schedules' length.

        Per process (``batch_size`` is per process), after the early-stopping
        hold-out, without the last batch of one the training iterator drops.
        """
        steps = math.ceil(self._samples_per_epoch(n_samples) / self.batch_size)
        return self._epochs() * max(steps, 1)

    def _samples_per_epoch(self, n_samples: int) -> int:
        """Samples one process trains on an epoch.

        After the early-stopping hold-out, its share of the processes, and
        without the last batch of one the training iterator drops.
        """
        n_train = n_samples
        if self.early_stopping:
            n_train -= max(int(round(self.validation_fraction * n_train)), 1)
        # each process takes one sample where there are fewer than processes
        n_train = max(n_train // world_size(self.accelerator), min(n_train, 1))
        if n_train % self.batch_size == 1 and n_train > 1:
            n_train -= 1  # a last batch of one is dropped
        return n_train

    def _engine_kwargs(self, n_samples: int, device: torch.device) -> dict:
        """The training net's keyword arguments from the engine parameters."""
        optimizer = (
            OPTIMIZERS[self.optimizer]
            if isinstance(self.optimizer, str)
            else self.optimizer
        )
        kwargs = {
            "optimizer": optimizer,
            **fused_optimizer_kwargs(self.optimizer, device),
            "lr": self.lr,
            "max_epochs": self._epochs(),
            "batch_size": self.batch_size,
            "train_split": RandomSplit(
                self.validation_fraction, stratify=self._stratified_validation
            )
            if self.early_stopping
            else None,
            "callbacks": self._callbacks(n_samples),
            "device": str(device),
            "precision": self.precision,
            "compile": self.compile,
            "verbose": int(self.verbose),
        }
        workers = getattr(self, "num_workers", 0)  # GPT's, BERT's: none
        if workers:  # reach the DataLoader of a Dataset (arrays are sliced)
            kwargs["iterator_train__num_workers"] = workers
            kwargs["iterator_valid__num_workers"] = workers
        if self.compile:
            # Random ops (the views' draws, dropout, masks) through torch's
            # own generator, not inductor's: a compiled fit then draws what
            # an eager one with the same random_state draws.
            kwargs["compile__options"] = {"fallback_random": True}
        if _takes_weight_decay(optimizer):  # not Rprop, say (then it is 0)
            kwargs["optimizer__weight_decay"] = self.weight_decay
        if self.accelerator is not None:
            if self.precision != "32":
                raise ValueError(
                    f"precision={self.precision!r} cannot be combined with an "
                    "accelerator, which sets the precision itself: leave "
                    "precision='32' and create the accelerator with "
                    "Accelerator(mixed_precision='bf16') (or 'fp16')."
                )
            kwargs["accelerator"] = self.accelerator
            # The accelerator places the model unless told not to.
            kwargs["device"] = (
                None if self.accelerator.device_placement else str(device)
            )
        return kwargs

    def _warmup_epochs(self) -> int:
        """``warmup_epochs``, at most half of the epochs of this fit.

        A warm-up as long as the run would never reach ``lr`` nor decay
        (``MAETransformer``'s 10 epochs in a fit of 4).
        """
        return min(int(self.warmup_epochs), self._epochs() // 2)

    def _callbacks(self, n_samples: int) -> list:
        callbacks = [("finite_loss", StopOnNonFiniteLoss())]
        cosine = self.lr_schedule == "cosine"
        if cosine or self._warmup_epochs():  # None: a warm-up, then lr held
            # The steps training takes (per process, without a dropped last
            # batch of one), as the momentum schedules count them.
            total = self._optimizer_steps(n_samples)
            steps = max(total // max(self._epochs(), 1), 1)  # an epoch's
            factor = WarmupCosine(total, self._warmup_epochs() * steps, decay=cosine)
            callbacks.append(
                (
                    "lr_schedule",
                    FreshLRScheduler(
                        policy=torch.optim.lr_scheduler.LambdaLR,
                        lr_lambda=factor,
                        step_every="batch",
                    ),
                )
            )
        if self.early_stopping:
            callbacks.append(
                (
                    "early_stopping",
                    EarlyStopping(
                        monitor="valid_loss",
                        patience=self.n_iter_no_change,
                        load_best=True,
                        sink=print if self.verbose else _silent,
                    ),
                )
            )
        if self.verbose and _live_output():
            callbacks.append(("progress_bar", ProgressBar()))
        # Names of the callbacks around the user's: skorch's and the checkpoint.
        reserved = list(_SKORCH_DEFAULT_CALLBACKS)
        if self.checkpoint_dir is not None:
            reserved.append("checkpoint")
        for i, cb in enumerate(self.callbacks or []):
            named = cb if isinstance(cb, tuple) else (f"user_{i}", cb)
            if not (
                len(named) == 2
                and isinstance(named[0], str)
                and (
                    isinstance(named[1], Callback)
                    or (isinstance(named[1], type) and issubclass(named[1], Callback))
                )
            ):
                raise TypeError(
                    f"callbacks[{i}]={cb!r} is not a skorch callback; pass "
                    "instances of skorch.callbacks.Callback, or (name, callback) "
                    "tuples."
                )
            self._check_user_callback(i, named[1])
            taken = [name for name, _ in callbacks] + reserved
            if named[0] in taken:
                raise ValueError(
                    f"callbacks[{i}] is named {named[0]!r}, a name this fit "
                    f"already gives a callback of its own (taken: "
                    f"{', '.join(sorted(set(taken)))}); give it another name, "
                    "e.g. ('my_" + named[0] + "', callback)."
                )
            callbacks.append(named)
        if self.checkpoint_dir is not None:
            # Last (skorch puts only its printed log after it): it restores the
            # callbacks' state once they all have begun, and saves an epoch
            # once they all have seen it (RepresentationNet.notify). It checks
            # that it can write there when training begins.
            checkpoint = TrainingCheckpoint(self.checkpoint_dir, fingerprint(self))
            callbacks.append(("checkpoint", checkpoint))
        return callbacks

    def _check_user_callback(self, i: int, callback) -> None:
        """Refuse a user's callback that this fit's own settings would defeat.

        A learning-rate scheduler while ``lr_schedule`` or a warm-up sets
        the rate at every batch (the user's step showed for one batch,
        then was overwritten); a callback that monitors a validation score
        (skorch's ``EarlyStopping``, ``Checkpoint``) without the validation
        split that ``early_stopping=True`` makes (skorch's KeyError on
        'valid_loss' after the first epoch).
        """
        kind = callback if isinstance(callback, type) else type(callback)
        name = kind.__name__
        if issubclass(kind, LRScheduler) and (
            self.lr_schedule is not None or self._warmup_epochs()
        ):
            setting = (
                f"lr_schedule={self.lr_schedule!r}"
                if self.lr_schedule is not None
                else f"warmup_epochs={self.warmup_epochs}"
            )
            raise ValueError(
                f"callbacks[{i}] is {with_article(name)}, but {setting} sets the "
                "learning rate at every batch too, and would overwrite it. To "
                "use your own scheduler, set lr_schedule=None and "
                "warmup_epochs=0."
            )
        if isinstance(callback, type):  # skorch builds it with its defaults
            default = inspect.signature(kind).parameters.get("monitor")
            monitor = None if default is None else default.default
        else:
            monitor = getattr(callback, "monitor", None)
        if (
            not self.early_stopping
            and isinstance(monitor, str)
            and monitor.startswith("valid")
        ):
            raise ValueError(
                f"callbacks[{i}], {with_article(name)}, monitors {monitor!r}, "
                "which exists only with a validation split: set "
                "early_stopping=True (validation_fraction sets its size; it "
                "stops the fit on valid_loss itself, with n_iter_no_change), "
                f"or give the {name} monitor='train_loss'."
            )


def _takes_weight_decay(optimizer: type) -> bool:
    """Whether the optimiser class takes a ``weight_decay`` argument."""
    try:
        params = inspect.signature(optimizer).parameters
    except (TypeError, ValueError):  # no readable signature: as torch's do
        return True
    return "weight_decay" in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    )


def _check_optimizer_class(optimizer, weight_decay: float = 0.0) -> None:
    """A class given as ``optimizer`` is a torch optimiser stepping without
    closure, and takes ``weight_decay`` unless it is 0."""
    if isinstance(optimizer, str):
        return
    if not issubclass(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer={optimizer!r} is not a torch.optim.Optimizer subclass; "
            f"pass one (e.g. torch.optim.SGD) or one of {sorted(OPTIMIZERS)}."
        )
    try:
        closure = inspect.signature(optimizer.step).parameters.get("closure")
    except (TypeError, ValueError):  # a step without a readable signature
        return
    if closure is not None and closure.default is inspect.Parameter.empty:
        raise ValueError(
            f"optimizer={optimizer.__name__} steps with a closure that "
            "re-evaluates the loss, which mini-batch training does not give; "
            "use a first-order optimiser such as 'adamw' or torch.optim.SGD."
        )
    if weight_decay and not _takes_weight_decay(optimizer):
        raise ValueError(
            f"optimizer={optimizer.__name__} takes no weight_decay, but "
            f"weight_decay={weight_decay}; set weight_decay=0, or use an "
            "optimiser that decays weights (e.g. 'adamw')."
        )


def _live_output() -> bool:
    """Whether stdout redraws a progress bar: a terminal or a notebook.

    Written to a file or a pipe (a log), a bar leaves a fragment such as
    ``0%| | 0/8`` before every epoch line, so there only the epoch lines are
    printed.
    """
    if "ipykernel" in sys.modules:  # Jupyter: tqdm draws a widget
        return True
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def _silent(*args, **kwargs) -> None:
    """A print sink that drops its message (early stopping when verbose=0)."""
