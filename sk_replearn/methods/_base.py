"""The scikit-learn face of every neural representation learner.

:class:`NeuralRepresentation` turns the engine parameters into a
:class:`~sk_replearn.training.RepresentationNet` and runs it; a method adds
only its hyperparameters and ``_build_objective``.
"""

from __future__ import annotations

import contextlib
import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import EarlyStopping, LRScheduler, ProgressBar

from ..base import BaseRepresentation, seed_from_random_state
from ..objectives.base import Objective
from ..training import RandomSplit, RepresentationNet, StopOnNonFiniteLoss, WarmupCosine

__all__ = ["NeuralRepresentation", "OPTIMIZERS", "seeded"]

OPTIMIZERS = {
    "adamw": torch.optim.AdamW,
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
}

#: Rows per batch in ``transform``: large, since no gradients are kept.
_TRANSFORM_BATCH = 1024


@contextlib.contextmanager
def seeded(seed: int, device: torch.device):
    """Seed torch inside the block, leaving the caller's RNG state untouched."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


class NeuralRepresentation(BaseRepresentation):
    """Base class of the neural estimators (not used directly).

    Holds the engine parameters every neural method shares and the fit /
    transform logic around the training net ``net_``. A subclass sets
    ``_n_features_out`` and implements ``_build_objective``.

    Parameters shared by every subclass are documented on each estimator
    (see :class:`~sk_replearn.AutoencoderTransformer`).
    """

    _parameter_constraints: dict = {
        **BaseRepresentation._parameter_constraints,
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
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
    }

    # -- fit -----------------------------------------------------------------
    def _fit(self, X) -> NeuralRepresentation:
        """Validate, build, train and record; shared by every subclass's fit."""
        warm = self.warm_start and hasattr(self, "net_")
        X = self._validate_X(X, reset=not warm)
        self._check_params_against_data(X)
        device = self._device()
        X_t = self._as_samples(X)
        with seeded(seed_from_random_state(self.random_state), device):
            net = self.net_ if warm else self._build_net(X_t, device)
            net.partial_fit(X_t, None)
        self._record_fit(net)
        return self

    def _check_params_against_data(self, X: np.ndarray) -> None:
        """Errors the data reveals: too few samples, an impossible precision."""
        if X.shape[0] < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 samples to train; got "
                "1 sample."
            )
        if self.early_stopping and round(self.validation_fraction * X.shape[0]) < 1:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves no "
                f"validation sample out of {X.shape[0]}; raise it or set "
                "early_stopping=False."
            )
        if self.precision == "16" and self._device().type != "cuda":
            raise ValueError(
                "precision='16' (float16 with a gradient scaler) needs a CUDA "
                "device; use precision='bf16' or '32' on the CPU."
            )

    def _as_samples(self, X: np.ndarray) -> torch.Tensor:
        """2-D validated X as a float32 tensor ``(n, *input_shape_)``."""
        X = np.asarray(X, dtype=np.float32)
        if not X.flags.writeable:  # torch warns on read-only memory
            X = X.copy()
        return torch.from_numpy(X).reshape(X.shape[0], *self.input_shape_)

    def _build_net(self, X_t: torch.Tensor, device: torch.device) -> RepresentationNet:
        module = self._build_objective()
        module.set_input_scale(X_t)
        net = RepresentationNet(module, **self._engine_kwargs(X_t.shape[0], device))
        return net.initialize()

    def _engine_kwargs(self, n_samples: int, device: torch.device) -> dict:
        """The training net's keyword arguments from the engine parameters."""
        optimizer = (
            OPTIMIZERS[self.optimizer]
            if isinstance(self.optimizer, str)
            else self.optimizer
        )
        return {
            "optimizer": optimizer,
            "optimizer__weight_decay": self.weight_decay,
            "lr": self.lr,
            "max_epochs": self.max_epochs,
            "batch_size": self.batch_size,
            "train_split": RandomSplit(self.validation_fraction)
            if self.early_stopping
            else None,
            "callbacks": self._callbacks(n_samples),
            "device": str(device),
            "precision": self.precision,
            "compile": self.compile,
            "verbose": int(self.verbose),
        }

    def _callbacks(self, n_samples: int) -> list:
        callbacks = [("finite_loss", StopOnNonFiniteLoss())]
        if self.lr_schedule == "cosine":
            n_train = n_samples
            if self.early_stopping:
                n_train -= max(int(round(self.validation_fraction * n_samples)), 1)
            steps = math.ceil(n_train / self.batch_size)
            callbacks.append(
                (
                    "lr_schedule",
                    LRScheduler(
                        policy=torch.optim.lr_scheduler.LambdaLR,
                        lr_lambda=WarmupCosine(
                            self.max_epochs * steps, self.warmup_epochs * steps
                        ),
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
        if self.verbose:
            callbacks.append(("progress_bar", ProgressBar()))
        for i, cb in enumerate(self.callbacks or []):
            callbacks.append(cb if isinstance(cb, tuple) else (f"user_{i}", cb))
        return callbacks

    def _record_fit(self, net: RepresentationNet) -> None:
        self.net_ = net
        self.history_ = net.history
        self.loss_curve_ = [float(v) for v in net.history[:, "train_loss"]]
        self.n_epochs_ = len(net.history)

    def _build_objective(self) -> Objective:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- transform -------------------------------------------------------------
    def _module(self) -> Objective:
        check_is_fitted(self, "net_")
        module = self.net_.module_
        module.eval()
        return module

    def _apply(self, X, fn, n_out: int) -> np.ndarray:
        """Validate X and map ``fn(module, batch)`` over batches.

        Each batch reaches ``fn`` shaped ``(B, *input_shape_)`` on the
        module's device; ``fn``'s output is flattened to ``(B, n_out)``.
        """
        module = self._module()
        X = self._validate_X(X, reset=False)
        shape = tuple(self.input_shape_)
        return self._map_batches(
            X,
            lambda xb: fn(module, xb.view(-1, *shape)).float().flatten(1),
            n_out,
            device=next(module.parameters()).device,
            batch_size=max(self.batch_size, _TRANSFORM_BATCH),
        )

    def transform(self, X) -> np.ndarray:
        """Encode X into its learned representation.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Samples to encode.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components), dtype float32
            The representation.
        """
        return self._apply(X, lambda m, xb: m.encode(xb), self._n_features_out)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def _silent(*args, **kwargs) -> None:
    """A print sink that drops its message (early stopping when verbose=0)."""
