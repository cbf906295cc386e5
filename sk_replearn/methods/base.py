"""The scikit-learn face of every neural representation learner.

:class:`NeuralRepresentation` turns the engine parameters into a
:class:`~sk_replearn.training.RepresentationNet` and runs it; a method adds
only its hyperparameters and ``_build_objective``. The net's arguments
come from :class:`~sk_replearn.methods._engine.TrainingEngineMixin` (with the
``accelerator`` constraint), warm starts and the parameters a fit recorded
from :class:`~sk_replearn.methods._warm_start.WarmStartMixin`, and
``transform_layer`` and ``export_encoder`` from
:class:`~sk_replearn.methods._layers.TransformLayerMixin`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._heap import batch_within_budget, widest_output
from .._seeding import seed_from_random_state
from .._warn import warn_user
from ..base import BaseRepresentation
from ..data import eval_chunks, input_rows, scale_sample, training_samples
from ..data._precision import FLOAT32_MAX
from ..distributed import accelerated_net_class, shared_seed
from ..objectives.base import Objective
from ..training import RepresentationNet, seeded_generators
from ._engine import (
    OPTIMIZERS,
    TrainingEngineMixin,
    _AcceleratorLike,
    _check_optimizer_class,
    _silent,  # noqa: F401 - nets pickled before the move name it here
)
from ._layers import TransformLayerMixin
from ._warm_start import WarmStartMixin, _partial_fit_or_restore

__all__ = ["NeuralRepresentation", "OPTIMIZERS", "seeded"]

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


class NeuralRepresentation(
    WarmStartMixin, TrainingEngineMixin, TransformLayerMixin, BaseRepresentation
):
    """Base class of the neural estimators (not used directly).

    Holds the engine parameters every neural method shares and the fit /
    transform logic around the training net ``net_``. A subclass sets
    ``_n_features_out`` (the width of its encoder's output) and implements
    ``_build_objective``.

    Every subclass declares ``transform_layer=-1`` (just before
    ``accelerator``) so that it can be probed at every layer; the logic is
    the private ``methods._layers.TransformLayerMixin``'s. Parameters
    shared by every subclass are documented on each estimator (see
    :class:`~sk_replearn.AutoencoderTransformer`).
    """

    _parameter_constraints: dict = {
        **BaseRepresentation._parameter_constraints,
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        # Above float32's largest value a rate or decay cannot reach the weights
        # (SGD converts both to their dtype, failing inside torch).
        "lr": [Interval(Real, 0, FLOAT32_MAX, closed="both")],  # 0: untrained
        "optimizer": [StrOptions(set(OPTIMIZERS)), type],
        "weight_decay": [Interval(Real, 0, FLOAT32_MAX, closed="both")],
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
        # What skorch's AccelerateMixin calls, not only what it starts with:
        # an object with prepare and backward alone failed inside the fit.
        "accelerator": [_AcceleratorLike(), None],
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
                self._continue_net(net, len(X_t), device)
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

    def _build_net(self, X_t: torch.Tensor, device: torch.device) -> RepresentationNet:
        module = self._build_objective()
        if module.standardizes_input:
            module.set_input_scale(scale_sample(X_t))
        net_class = accelerated_net_class(RepresentationNet, self.accelerator)
        net = net_class(module, **self._engine_kwargs(len(X_t), device))
        return net.initialize()

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

    def __sklearn_is_fitted__(self) -> bool:
        # Fitted once training has produced a net: validation alone (which
        # sets n_features_in_) before a failed fit does not count.
        return hasattr(self, "net_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def _is_nested_samples(X) -> bool:
    """Whether list-like X holds N-D samples (nested lists of 3 levels or more)."""
    try:
        return np.ndim(X) > 2
    except ValueError:  # ragged: rows of unequal length are no N-D samples
        return False


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
