"""The scikit-learn face of every neural representation learner.

:class:`NeuralRepresentation` turns the engine parameters into a
:class:`~sk_replearn.training.RepresentationNet` and runs it; a method adds
only its hyperparameters and ``_build_objective``.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import os
import sys
import threading
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback, EarlyStopping, LRScheduler, ProgressBar
from torch import nn

from .._fingerprint import _model_repr
from .._heap import batch_within_budget, widest_output
from .._util import with_article
from .._warn import warn_user
from ..base import BaseRepresentation, seed_from_random_state
from ..checkpoint import TrainingCheckpoint, fingerprint
from ..data import eval_chunks, input_rows, scale_sample, training_samples
from ..distributed import accelerated_net_class, shared_seed, world_size
from ..nn.layers import LayerEncoder, block_features, block_widths
from ..nn.surgery import TransferEncoder, trainable
from ..objectives.base import Objective
from ..training import (
    FreshLRScheduler,
    RandomSplit,
    RepresentationNet,
    StopOnNonFiniteLoss,
    WarmupCosine,
    seeded_generators,
    trained_module,
)

__all__ = ["NeuralRepresentation", "OPTIMIZERS", "seeded"]

OPTIMIZERS = {
    "adamw": torch.optim.AdamW,
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
}

#: Rows per batch in ``transform``: large, since no gradients are kept.
_TRANSFORM_BATCH = 1024
#: On the CPU, ``transform`` of more rows than this cuts its batches so that
#: their widest activation fits :data:`~sk_replearn._heap.BATCH_BYTES`: an MAE
#: on MNIST-1D (the former recipe's 21 tokens of 256) encoded 8,000 signals in
#: 4.2 s in batches of 64 to 256 rows against 6.8 s in batches of 1,024 (2
#: threads), whose 84 MiB MLP activations glibc maps afresh, and the kernel
#: zeroes, at every batch. Fewer rows than this make one batch, which needs no
#: probe.
_SIZED_FROM = 256

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


#: Held by every block that seeds torch's generator (:func:`seeded`).
_RNG_LOCK = threading.RLock()


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | None = None):
    """Seed torch inside the block, leaving the caller's RNG state untouched.

    torch's default generator is one per process, and weight
    initialisation, dropout and the random views draw from it, so blocks
    running at once in threads of one process (joblib's threading
    backend, a thread pool) would share one stream and give other models
    for the same ``random_state``: such blocks take turns, under one
    re-entrant lock (a fit within a fit, as a fine-tuner's pre-training,
    goes on). Processes, as joblib's default workers, each have their own.
    Only the CPU's generator and ``device``'s are seeded, and put back
    after (see :func:`~sk_replearn.training.seeded_generators`). A thread
    of the caller's that draws from torch's global generator meanwhile
    draws from the block's stream, and the block's draws then differ: a
    fit is reproducible while no other thread draws.
    """
    with _RNG_LOCK, seeded_generators(seed, device):
        yield


class NeuralRepresentation(BaseRepresentation):
    """Base class of the neural estimators (not used directly).

    Holds the engine parameters every neural method shares and the fit /
    transform logic around the training net ``net_``. A subclass sets
    ``_n_features_out`` (the width of its encoder's output) and implements
    ``_build_objective``.

    Every subclass declares ``transform_layer=-1`` (just before
    ``accelerator``) so that it can be probed at every layer; the logic is
    here. Parameters shared by every subclass are documented on each
    estimator (see :class:`~sk_replearn.AutoencoderTransformer`).
    """

    _parameter_constraints: dict = {
        **BaseRepresentation._parameter_constraints,
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="left")],  # 0: the untrained baseline
        "optimizer": [StrOptions(set(OPTIMIZERS)), type],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "lr_schedule": [StrOptions({"cosine"}), None],
        "warmup_epochs": [Interval(Integral, 0, None, closed="left")],
        "callbacks": [list, None],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "precision": [StrOptions({"32", "bf16", "16"})],
        "compile": ["boolean"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "checkpoint_dir": [str, os.PathLike, None],
        "accelerator": [HasMethods(["prepare", "backward"]), None],
        # Checked against the encoder's blocks, which only the fitted (or
        # built) encoder knows: see _check_transform_layer.
        "transform_layer": "no_validation",
    }

    # -- fit -----------------------------------------------------------------
    def _fit(self, X) -> NeuralRepresentation:
        """Validate, build, train and record; shared by every subclass's fit."""
        warm = self.warm_start and hasattr(self, "net_")
        if warm:  # before reading X, whose encoding may use the changed values
            self._check_warm_params()
        X_t = self._training_data(X, reset=not warm)
        self._resolve_epochs(len(X_t))
        self._check_params_against_data(len(X_t))
        self._total_steps = self._optimizer_steps(len(X_t))
        device = self._device()
        seed = shared_seed(self.accelerator, seed_from_random_state(self.random_state))
        with seeded(seed, device):
            if warm:
                net = self.net_
                self._check_warm_start(net)
                # The engine parameters set since the last fit apply to this
                # one (the optimiser keeps its state); the learning-rate and
                # momentum schedules span it.
                engine = self._engine_kwargs(len(X_t), device)
                net.set_params(
                    **{
                        k: engine[k]
                        for k in (
                            "max_epochs",
                            "lr",
                            "optimizer__weight_decay",
                            "batch_size",
                            "train_split",
                            "verbose",
                        )
                    }
                )
                # Not set_params(callbacks=...): skorch's builds the callbacks
                # from the old list first, which initialised again (and so
                # emptied) a callback the user had since taken out.
                net.callbacks = engine["callbacks"]
                net.initialize_callbacks()
                net.module_.restart_schedule(self._total_steps)
            else:
                net = self._build_net(X_t, device)
            self._inner_layer(net.module_)  # a bad transform_layer: now
            if warm:
                _partial_fit_or_restore(net, X_t)
            else:
                net.partial_fit(X_t, None)
        self._record_fit(net)
        self._fitted_params = self._model_params()
        return self

    #: Fewest validation samples early stopping can score (a loss that
    #: compares the samples of a batch needs 2).
    _min_validation = 1
    #: Whether early stopping holds out each class in its share (a
    #: classifier's targets are class indices).
    _stratified_validation = False

    #: Parameters a warm start applies to the network it continues (the
    #: engine's: epochs, learning rate and schedule, batches, early
    #: stopping, callbacks, seed) or that need no refit (transform_layer).
    _WARM_APPLIED = frozenset(
        {
            "max_epochs",
            "batch_size",
            "lr",
            "weight_decay",
            "lr_schedule",
            "warmup_epochs",
            "callbacks",
            "early_stopping",
            "validation_fraction",
            "n_iter_no_change",
            "verbose",
            "checkpoint_dir",
            "random_state",
            "warm_start",
            "transform_layer",
        }
    )
    #: Parameters a subclass checks itself in a warm start (``optimizer``
    #: is checked by :meth:`_check_warm_start`); ``save`` compares them too.
    _WARM_OWN_CHECK: frozenset = frozenset()

    def _model_params(self, text=_model_repr) -> dict:
        """What the fitted model was built and trained with, each value as
        ``text`` reads it (see :func:`~sk_replearn._fingerprint._model_repr`).

        The optimiser counts (its saved state is its class's) by its name
        where it has one: ``torch.optim.AdamW`` is ``"adamw"``.
        """
        skip = self._WARM_APPLIED  # _WARM_OWN_CHECK's too: save compares them
        params = self.get_params(deep=False)
        if "optimizer" in params:
            named = {cls: name for name, cls in OPTIMIZERS.items()}
            params["optimizer"] = named.get(params["optimizer"], params["optimizer"])
        return {k: text(v) for k, v in params.items() if k not in skip}

    def _changed_since_fit(self) -> list[tuple[str, str, str]]:
        """``(name, fitted value, present value)``, as text, of each model
        parameter that ``set_params`` changed since ``fit`` (none for an
        unfitted estimator, or one fitted by a version that did not record
        them).

        Values are compared as :func:`~sk_replearn._fingerprint._model_repr`
        reads them: equal settings of other types (``np.int64(4)`` and
        ``4``, a list and a tuple) and a function or object unpickled in
        another process are no change. A parameter the fit did not record
        (one added since) is not compared.
        """
        fitted = getattr(self, "_fitted_params", None)
        if fitted is None:
            return []
        now = self._model_params()
        changed = [k for k in sorted(fitted.keys() & now.keys()) if fitted[k] != now[k]]
        if changed:  # fitted by a version that recorded plain reprs?
            plain = self._model_params(repr)
            changed = [k for k in changed if fitted[k] != plain[k]]
        return [(k, fitted[k], now[k]) for k in changed]

    def _check_warm_params(self) -> None:
        """Refuse a warm start after a change it would not apply.

        A warm start continues the fitted network and objective: a changed
        ``temperature``, ``views``, ``momentum``, width, ``device`` or
        ``precision`` would be reported by ``get_params`` but not used.
        (A changed ``optimizer`` is refused by :meth:`_check_warm_start`.)
        """
        own = self._WARM_OWN_CHECK | {"optimizer"}  # refused with their own words
        changed = [c for c in self._changed_since_fit() if c[0] not in own]
        if changed:
            was = ", ".join(f"{k}={fitted}" for k, fitted, _ in changed[:4])
            raise ValueError(
                "warm_start=True continues the fitted model, which these changed "
                f"parameters would not reach (it was fitted with {was}"
                f"{', ...' if len(changed) > 4 else ''}); only the training "
                "settings (max_epochs, lr, batch_size, the schedule, early "
                "stopping, callbacks) apply to a warm start. Set them back, or "
                "warm_start=False to fit anew."
            )

    def _check_warm_start(self, net) -> None:
        """Refuse a warm start the fitted network or optimiser cannot follow.

        ``warm_start=True`` continues the same network with the same
        optimiser: parameters that would build another network (other
        shapes: ``n_components``, widths, ...) or choose another optimiser
        need a new fit.
        """
        optimizer = (
            OPTIMIZERS[self.optimizer]
            if isinstance(self.optimizer, str)
            else self.optimizer
        )
        if net.optimizer is not optimizer:  # the class (an accelerator wraps it)
            raise ValueError(
                f"warm_start=True continues the fitted {net.optimizer.__name__} "
                f"optimiser, but optimizer={self.optimizer!r} now; set "
                "warm_start=False to train anew."
            )
        with torch.random.fork_rng(devices=[]):  # draws nothing of the fit's
            fresh = self._build_objective().state_dict()
        fitted = trained_module(net).state_dict()
        changed = [
            k
            for k in sorted({*fresh, *fitted})
            if k not in fresh or k not in fitted or fresh[k].shape != fitted[k].shape
        ]
        if changed:
            raise ValueError(
                "warm_start=True continues the fitted network, but the parameters "
                f"now build one of other shapes ({', '.join(changed[:4])}"
                f"{', ...' if len(changed) > 4 else ''}): a parameter such as "
                "n_components or a width changed since the last fit. Set "
                "warm_start=False to train a new network."
            )

    def _training_data(self, X, *, reset: bool):
        """Validate X (setting the input shape when ``reset``); what the net slices.

        A float32 tensor ``(n, *input_shape_)``, a memmap's rows or a
        Dataset (see :func:`~sk_replearn.data.training_samples`).
        """
        rows = input_rows(self, X, reset=reset)
        return training_samples(rows, self.input_shape_, type(self).__name__)

    def _is_signal(self) -> bool:
        """Whether the samples are 1-D signals ``(C, L)`` (fitted, or given).

        The kind of sample that "auto" settings tell apart from images and
        tables.
        """
        shape = getattr(self, "input_shape_", self.input_shape)
        return shape is not None and len(shape) == 2

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

    def _check_params_against_data(self, n_samples: int) -> None:
        """Errors the data reveals: too few samples, an impossible precision.

        Only checks: it sets nothing.
        """
        if n_samples < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 samples to train; got "
                "1 sample."
            )
        n_valid = round(self.validation_fraction * n_samples)
        if self.early_stopping and n_valid < self._min_validation:
            why = (
                ""
                if n_valid < 1
                else f", and {type(self).__name__}'s loss compares the samples "
                f"of a batch (at least {self._min_validation})"
            )
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves "
                f"{n_valid or 'no'} validation sample out of {n_samples}{why}; "
                "raise it or set early_stopping=False."
            )
        if (
            self.early_stopping
            and n_samples - round(self.validation_fraction * n_samples) < 2
        ):
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves fewer than "
                f"2 of the {n_samples} samples to train on; lower it or set "
                "early_stopping=False."
            )
        _check_optimizer_class(self.optimizer, self.weight_decay)
        if self.precision == "16" and self._device().type != "cuda":
            raise ValueError(
                "precision='16' (float16 with a gradient scaler) needs a CUDA "
                "device; use precision='bf16' or '32' on the CPU."
            )
        device = self._device()
        # The capability of this device, not of the current one; and not
        # torch.cuda.is_bf16_supported(), which says True where bfloat16 is
        # only emulated (its default including_emulation=True).
        if (
            self.precision == "bf16"
            and device.type == "cuda"
            and torch.cuda.get_device_capability(device) < (8, 0)
        ):
            warn_user(
                f"precision='bf16' on {torch.cuda.get_device_name(device)}, "
                "which has no bfloat16 products (GPUs before NVIDIA's Ampere, "
                "compute capability 8.0): they are emulated, more slowly than "
                "float32's. precision='16' uses its float16 tensor cores.",
                UserWarning,
            )

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
        n_train //= world_size(self.accelerator)
        if n_train % self.batch_size == 1 and n_train > 1:
            n_train -= 1  # a last batch of one is dropped
        return n_train

    def _build_net(self, X_t: torch.Tensor, device: torch.device) -> RepresentationNet:
        module = self._build_objective()
        if module.standardizes_input:
            module.set_input_scale(scale_sample(X_t))
        net_class = accelerated_net_class(RepresentationNet, self.accelerator)
        net = net_class(module, **self._engine_kwargs(len(X_t), device))
        return net.initialize()

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

    def _record_fit(self, net: RepresentationNet) -> None:
        self.net_ = net
        self.history_ = net.history
        # Every row is a finished epoch (an interrupted one's is dropped); an
        # interrupt in the first epoch leaves none, and an empty curve.
        self.loss_curve_ = [float(row["train_loss"]) for row in net.history]
        self.n_epochs_ = len(net.history)

    # -- persistence -----------------------------------------------------------
    def _restore_net(self, n_samples: int) -> RepresentationNet:
        """An initialised net of the fitted architecture, for :meth:`load`.

        The weights are drawn under a fixed seed (leaving the caller's
        random state alone) and then overwritten by the loaded ones.
        """
        device = self._device()
        with seeded(0, device):
            module = self._build_objective()
            net = RepresentationNet(module, **self._engine_kwargs(n_samples, device))
            return net.initialize()

    def _build_objective(self) -> Objective:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- transform -------------------------------------------------------------
    def _module(self) -> Objective:
        check_is_fitted(self, "net_")
        module = self.net_.module_
        module.eval()
        return module

    def _token_source(self):
        """The fitted estimator whose vocabulary reads X, or None for arrays.

        A sequence estimator returns itself; a fine-tuner its sequence
        representation.
        """
        return None

    def _layout_of(self, X) -> tuple[int, ...]:
        """The shape in which per-value outputs for X (a fill, a reconstruction)
        come back: ``(-1, *input_shape_)`` for N-D X and for a Dataset (whose
        items are read as samples of that shape, and not read again here);
        ``(-1, n_features_in_)`` for rows."""
        if isinstance(X, np.ndarray | torch.Tensor):
            samples = X.ndim > 2
        else:  # a Dataset's items are samples; lists may nest them
            samples = isinstance(X, torch.utils.data.Dataset) or _is_nested_samples(X)
        return (-1, *self.input_shape_) if samples else (-1, self.n_features_in_)

    def _apply(self, X, fn, n_out: int, *, sized: bool = False) -> np.ndarray:
        """Validate X and map ``fn(module, batch)`` over batches.

        Each batch reaches ``fn`` shaped ``(B, *input_shape_)`` on the
        module's device (padded token ids ``(B, T)`` for sequences);
        ``fn``'s output is flattened to ``(B, n_out)``. With ``sized``, for
        a deterministic ``fn`` (a probe runs it once more), batches on the
        CPU are cut by the memory of their widest activation
        (:func:`_cpu_batch_rows`), measured on the module ``fn.runs`` names
        (an inner layer's encoder) or else the fitted module; otherwise they
        hold the larger of ``batch_size`` and :data:`_TRANSFORM_BATCH` rows.
        """
        module = self._module()
        device = next(module.parameters()).device
        runs = getattr(fn, "runs", module)  # an inner layer runs its own copy
        source = self._token_source()
        if source is not None:
            return source._map_tokens(
                X,
                lambda ids: fn(module, ids).float().flatten(1),
                n_out,
                device=device,
                owner=type(self).__name__,
                probe=runs if sized else None,
            )
        X = input_rows(self, X, reset=False)  # an array, or a Dataset read in order
        shape = tuple(self.input_shape_)

        def call(xb: torch.Tensor) -> torch.Tensor:
            return fn(module, xb.view(-1, *shape)).float().flatten(1)

        rows = max(self.batch_size, _TRANSFORM_BATCH)
        if sized and device.type == "cpu" and len(X) > _SIZED_FROM:
            rows = _cpu_batch_rows(runs, call, X, rows)
        out = self._map_batches(X, call, n_out, device=device, batch_size=rows)
        _check_finite_output(out, X, type(self).__name__)
        return out

    def transform(self, X) -> np.ndarray:
        """Encode X into its learned representation.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or \
(n_samples, *input_shape), or torch Dataset
            Samples to encode. A map-style :class:`torch.utils.data.Dataset`
            (as ``fit`` accepts) is read batch by batch, in order.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components), dtype float32
            The representation: the encoder's output, or the pooled output
            of the block ``transform_layer`` names (as wide as that block).
        """
        check_is_fitted(self)  # before _n_features_out, which reads the net
        return self._apply(X, *self._layer_encoding(self._module()), sized=True)

    # -- the layer transform returns ---------------------------------------------
    def _layer_encoding(self, module: Objective):
        """``fn(module, batch)`` and its width at ``transform_layer``.

        The default, -1, is ``module.encode`` itself. Another block runs a
        :class:`~sk_replearn.nn.surgery.TransferEncoder` of ``module``
        (:meth:`_layer_encoder`) up to that block; nothing is stored, so
        ``set_params(transform_layer=...)`` after ``fit`` needs no refit.
        """
        inner = self._inner_layer(module)
        if inner is None:
            return (lambda m, xb: m.encode(xb)), self._n_features_out
        encoder, layer, width = inner

        def encode(m, xb):
            return block_features(encoder, xb, layer)

        encode.runs = encoder  # the network a probe of its memory must watch
        return encode, width

    def _inner_layer(self, module) -> tuple[TransferEncoder, int, int] | None:
        """The encoder, block index and width of an inner ``transform_layer``.

        None for the last block, which ``module.encode`` gives (bit for
        bit as before the parameter existed); a ValueError for a value
        that is no block.
        """
        if self.transform_layer == -1 and _is_int(self.transform_layer):
            return None
        encoder = self._layer_encoder(module)
        widths = block_widths(encoder)
        layer = self._check_transform_layer(len(widths))
        return None if layer == len(widths) - 1 else (encoder, layer, widths[layer])

    def _layer_encoder(self, module: Objective) -> TransferEncoder:
        """The encoder whose blocks ``transform_layer`` counts, in eval mode.

        A copy of the weights (made per call, so that it never goes stale)
        on the module's device; the fine-tuners use their own encoder.
        """
        make = module.transfer_encoder  # (through a torch.compile wrapper too)
        if getattr(make, "__func__", None) is Objective.transfer_encoder:
            raise ValueError(
                f"transform_layer={self.transform_layer!r}: "
                f"{type(self).__name__} cannot return an inner layer, as its "
                f"objective {type(module).__name__} defines no "
                "transfer_encoder(); use transform_layer=-1."
            )
        return make(getattr(self, "input_shape_", None)).eval()

    def _check_transform_layer(self, n_blocks: int) -> int:
        """``transform_layer`` as an index in ``[0, n_blocks)``, or a ValueError."""
        layer = self.transform_layer
        if not _is_int(layer) or not -n_blocks <= layer < n_blocks:
            raise ValueError(
                f"transform_layer={layer!r} is not a block of the encoder of "
                f"{type(self).__name__}, which has {n_blocks} blocks (those "
                "that freeze_layers counts); pass an int from "
                f"{-n_blocks} to {n_blocks - 1}, -1 (the default) being the "
                "last block, the encoder's output."
            )
        return int(layer) % n_blocks

    def _transform_width(self) -> int:
        return self._layer_encoding(self._module())[1]

    def _transfer_encoder(self, **options):
        """A CPU copy of the encoder, up to the representation's output.

        ``options`` go to the objective's ``transfer_encoder`` (MAE's
        ``pooling``).
        """
        check_is_fitted(self, "net_")
        shape = tuple(self.input_shape_)
        return self.net_.module_.transfer_encoder(shape, **options).cpu()

    def export_encoder(self) -> nn.Module:
        """The trained encoder as a plain torch module: raw input to ``transform``.

        The module holds everything between a raw sample and the
        representation (the input standardisation, the network, the
        bottleneck; the blocks up to ``transform_layer``), so that it runs
        with torch alone: save it with ``torch.save(module.state_dict(),
        ...)``, or as a program with :func:`torch.export.export` and
        :func:`torch.export.save`, which a process without sk_replearn can
        load with :func:`torch.export.load`; or give that file to
        :class:`~sk_replearn.PretrainedTransformer` to fine-tune it on
        another data set.

        Returns
        -------
        torch.nn.Module
            A copy on the CPU, in eval mode, with trainable weights. It maps
            ``(B, *input_shape_)`` (or flat rows ``(B, n_features_in_)``) to
            ``(B, width)``, equal to :meth:`transform`'s output; a sequence
            model's takes the padded token ids ``(B, T)`` of its vocabulary.
            Its ``out_features`` attribute is the width.

        Examples
        --------
        >>> import numpy as np, torch
        >>> from sk_replearn import AutoencoderTransformer
        >>> X = np.random.default_rng(0).normal(size=(40, 6)).astype("float32")
        >>> ae = AutoencoderTransformer(2, max_epochs=1, random_state=0).fit(X)
        >>> encoder = ae.export_encoder()
        >>> z = encoder(torch.from_numpy(X)).detach().numpy()
        >>> bool(np.allclose(z, ae.transform(X), atol=1e-6))
        True
        """
        check_is_fitted(self)
        inner = self._inner_layer(self._module())
        if inner is None:
            encoder = self._transfer_encoder()  # a copy already
        else:
            encoder = LayerEncoder(copy.deepcopy(inner[0]), inner[1])
        # A fine-tuner's frozen blocks come back trainable, as documented.
        return trainable(encoder.cpu().eval())

    def __sklearn_is_fitted__(self) -> bool:
        # Fitted once training has produced a net: validation alone (which
        # sets n_features_in_) before a failed fit does not count.
        return hasattr(self, "net_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def _partial_fit_or_restore(net, X_t) -> None:
    """A warm start's training; if it raises, the model before.

    The fitted model must survive a continuation that diverges or fails
    (a non-finite loss, a user's callback, memory): its weights, optimiser
    state and history are put back before the error propagates, as
    :func:`~sk_replearn.base.fit_context` puts back the estimator's
    attributes.
    """
    module = copy.deepcopy(net.module_.state_dict())
    optimizer = copy.deepcopy(net.optimizer_.state_dict())
    n_epochs = len(net.history)
    try:
        net.partial_fit(X_t, None)
    except Exception:
        net.module_.load_state_dict(module)
        net.optimizer_.load_state_dict(optimizer)
        del net.history[n_epochs:]
        raise


def _is_nested_samples(X) -> bool:
    """Whether list-like X holds N-D samples (nested lists of 3 levels or more)."""
    try:
        return np.ndim(X) > 2
    except ValueError:  # ragged: rows of unequal length are no N-D samples
        return False


def _is_int(value) -> bool:
    return isinstance(value, Integral | np.integer) and not isinstance(value, bool)


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


def _check_finite_output(
    out: np.ndarray, X, owner: str, *, trained: bool = True
) -> None:
    """Never answer NaN silently: an error that says where it likely came from.

    X is the validated array (its largest value is quoted), a Dataset (whose
    items nobody checked), or None for token ids (always finite).
    ``trained=False`` for a network that ``fit`` did not train (a
    pre-trained one), whose weights no lr can have grown.
    """
    finite = np.isfinite(out)
    if finite.all():
        return
    n_bad = int((~finite).reshape(len(out), -1).any(axis=1).sum())
    head = (
        f"{owner} computed non-finite values (inf or NaN) for {n_bad} of "
        f"{len(out)} samples"
    )
    model = (
        "the model itself overflows: its weights may have grown too large in "
        "fit (refit with a lower lr and check loss_curve_ or history), or its "
        "network produces NaN (e.g. divides by zero)"
        if trained
        else "the network itself produces them on these inputs (it overflows, "
        "or divides by zero): run it on a batch of X to see where; fit did "
        "not change its weights"
    )
    if isinstance(X, np.ndarray) and X.size:
        if not np.isfinite(X).all():
            raise ValueError(
                f"{head}: X holds NaN or infinite values; remove or impute them."
            )
        peak = max(abs(float(X.max())), abs(float(X.min())))
        raise ValueError(
            f"{head} from X holding values up to {peak:.3g} in magnitude: "
            f"{model}. If such values are extreme for X, rescale it (e.g. with "
            "StandardScaler) before fitting and predicting."
        )
    if X is not None and not isinstance(X, np.ndarray):  # a Dataset, unchecked
        raise ValueError(
            f"{head}. X is a Dataset, whose items are not checked ahead: NaN, "
            f"infinite or extreme values in them give this; otherwise {model}."
        )
    raise ValueError(f"{head}: {model}.")


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


def _cpu_batch_rows(module: nn.Module, call, X, rows: int) -> int:
    """Rows of a ``transform`` batch on the CPU: at most ``rows``, within budget.

    The budget is :data:`~sk_replearn._heap.BATCH_BYTES` for the widest
    activation of a batch. ``call`` runs once on the first two rows of X,
    with a forward hook on every submodule of ``module`` measuring its
    output.
    """
    head = next(iter(eval_chunks(X, 2)))[1].to(torch.float32)
    widest = widest_output(module, lambda: call(head))
    return batch_within_budget(widest / len(head), rows)
