"""The one skorch ``NeuralNet`` subclass that trains every objective.

:class:`RepresentationNet` is skorch's training loop with four small
overrides and nothing copied: the loss comes from the objective
(:meth:`~RepresentationNet.get_loss`), batches are sliced straight out of a
tensor instead of collated sample by sample
(:meth:`~RepresentationNet.get_iterator`), the forward pass runs under
autocast when ``precision`` asks for it (:meth:`~RepresentationNet.infer`),
and float16 steps go through a gradient scaler
(:meth:`~RepresentationNet.train_step`). Callbacks stop training on
a non-finite loss and give the learning-rate schedule; they and the
validation split are defined in the private ``_callbacks.py`` and
public from here.
"""

from __future__ import annotations

import contextlib

import torch
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator, to_tensor

from ._callbacks import (
    FreshLRScheduler,
    NonFiniteLossError,
    RandomSplit,
    StopOnNonFiniteLoss,  # noqa: F401 - nets pickled before the move name it here
    WarmupCosine,
)
from ._heap import kept_heap
from ._warn import warn_user
from .data import (
    ArrayDataset,
    ArrayRows,
    Batches,
    EvalBatchSampler,
    WeightedTargets,
)
from .tokens import TokenBatches, TokenDataset

__all__ = [
    "FreshLRScheduler",
    "NonFiniteLossError",
    "RandomSplit",
    "seeded_generators",
    "RepresentationNet",
    "SupervisedNet",
    "WarmupCosine",
    "net_device",
    "trained_module",
]


#: Seed of torch's generators in every validation pass (any fixed value).
_VALIDATION_SEED = 0

#: The start of torch's error for a batch normalisation given one sample to
#: normalise per channel in training.
_BATCH_OF_ONE = "Expected more than 1 value per channel when training"


@contextlib.contextmanager
def seeded_generators(seed: int, device: torch.device | None = None):
    """Seed torch's CPU generator and ``device``'s inside the block only.

    Both generators are saved on entry and put back on exit; no other is
    touched. (:func:`torch.manual_seed` would seed every accelerator, and
    queue the seed of one not yet started, which a caller's later GPU code
    would then draw from.)

    Parameters
    ----------
    seed : int
        The seed of both generators.
    device : torch.device or None, default=None
        Where the block draws besides the CPU (a CUDA, MPS or XPU device);
        None or a CPU device: the CPU alone.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.training import seeded_generators
    >>> before = torch.get_rng_state()
    >>> with seeded_generators(0):
    ...     a = torch.rand(2)
    >>> with seeded_generators(0):
    ...     b = torch.rand(2)
    >>> bool(torch.equal(a, b)), bool(torch.equal(torch.get_rng_state(), before))
    (True, True)
    """
    kind = device.type if device is not None else "cpu"
    index = None if device is None else device.index
    if kind == "cuda" and index is None:  # the current device, as torch places
        index = torch.cuda.current_device()
    accelerator = kind in ("cuda", "mps", "xpu")
    devices = [0 if index is None else index] if accelerator else []
    with torch.random.fork_rng(
        devices=devices, device_type=kind if accelerator else "cuda"
    ):
        torch.default_generator.manual_seed(seed)
        if kind == "cuda":
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        elif accelerator:
            getattr(torch, kind).manual_seed(seed)
        yield


def net_device(net: NeuralNet) -> torch.device:
    """Where ``net`` trains: an accelerated net says (``_dev``), else ``device``.

    An accelerator places the model itself, and such a net's ``device`` is
    None (on the CPU as on a GPU).

    Examples
    --------
    >>> from skorch import NeuralNet
    >>> from torch import nn
    >>> from sk_replearn.training import net_device
    >>> net_device(NeuralNet(nn.Linear(2, 1), nn.MSELoss, device=None))
    device(type='cpu')
    """
    device = net._dev() if hasattr(net, "_dev") else net.device
    return torch.device("cpu" if device is None else device)


def trained_module(net: NeuralNet) -> torch.nn.Module:
    """The module ``net`` trains, out of accelerate's and torch.compile's wrappers.

    What its weights are read from and written to: an accelerated net's
    ``objective()``, else its ``module_``, and under a ``torch.compile``
    wrapper the module it compiled.

    Examples
    --------
    >>> import torch
    >>> from skorch import NeuralNet
    >>> from torch import nn
    >>> from sk_replearn.training import trained_module
    >>> net = NeuralNet(nn.Linear(2, 1), nn.MSELoss).initialize()
    >>> net.module_ = torch.compile(net.module_)  # compiled lazily, at its first call
    >>> trained_module(net)
    Linear(in_features=2, out_features=1, bias=True)
    """
    module = net.objective() if hasattr(net, "objective") else net.module_
    return getattr(module, "_orig_mod", module)


class RepresentationNet(NeuralNet):
    """skorch ``NeuralNet`` that trains an objective.

    The module is an :class:`~sk_replearn.objectives.base.Objective`.

    Fitted on unlabelled data: ``net.fit(X, None)`` with ``X`` a float32
    tensor ``(n, *input_shape)``. The module is an ``Objective``; its
    ``forward`` output and the batch go to its ``loss``.

    Parameters
    ----------
    module : Objective
        The objective to train (an instance or a class with ``module__``
        arguments, as in skorch).
    precision : {"32", "bf16", "16"}, default="32"
        Autocast dtype of the forward pass. "16" runs float16 with a
        gradient scaler and needs CUDA.
    **kwargs
        Passed on to :class:`skorch.net.NeuralNet`.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.objectives.reconstruction import AutoencoderObjective
    >>> from sk_replearn.training import RepresentationNet
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> obj = AutoencoderObjective(input_shape=(4,), n_components=2)
    >>> net = RepresentationNet(obj, max_epochs=2, lr=1e-2, verbose=0)
    >>> _ = net.fit(torch.randn(32, 4), None)
    >>> len(net.history)
    2
    """

    #: How the interrupt warning says training can go on, for the estimator
    #: this net trains (the representations have ``warm_start``).
    _go_on = "trained further with warm_start=True"

    def __init__(self, module, *args, precision: str = "32", **kwargs) -> None:
        kwargs.setdefault("criterion", torch.nn.Identity)
        kwargs.setdefault("train_split", None)
        kwargs.setdefault("dataset", ArrayDataset)
        kwargs.setdefault("optimizer", torch.optim.AdamW)
        # Our modules are plain nn.Modules defined in this package; loading
        # them back needs the full unpickler (pickle runs code anyway).
        kwargs.setdefault("torch_load_kwargs", {"weights_only": False})
        super().__init__(module, *args, **kwargs)
        self.precision = precision

    # -- data --------------------------------------------------------------
    def get_dataset(self, X, y=None):
        """Wrap ``X`` in an :class:`~sk_replearn.data.ArrayDataset`.

        ``X`` is a tensor, an array or an :class:`~sk_replearn.data.ArrayRows`;
        Datasets pass through.
        """
        if isinstance(X, torch.utils.data.Dataset):
            return X
        if y is not None and not isinstance(y, WeightedTargets):
            y = torch.as_tensor(y)
        if isinstance(X, ArrayRows):
            return ArrayDataset(X, y)
        return ArrayDataset(torch.as_tensor(X, dtype=torch.float32), y)

    def get_iterator(self, dataset, training=False):
        """Batches sliced from the dataset's tensor.

        An :class:`~sk_replearn.data.ArrayDataset` is cut into
        :class:`~sk_replearn.data.Batches`; token sequences come in
        length-grouped padded batches (:class:`~sk_replearn.tokens.TokenBatches`).

        Any other dataset is read by a :class:`~torch.utils.data.DataLoader`,
        shuffled in training, where, as in :class:`~sk_replearn.data.Batches`,
        a last batch of one sample is dropped (in evaluation it joins the batch
        before it, unless ``iterator_valid__*`` sets a sampler, ``shuffle`` or
        ``drop_last``); ``iterator_train__*`` / ``iterator_valid__*``
        parameters reach it as in skorch.
        """
        prefix = "iterator_train" if training else "iterator_valid"
        kwargs = self.get_params_for(prefix)
        batch_size = kwargs.pop("batch_size", self.batch_size)
        if isinstance(dataset, ArrayDataset):
            return Batches(dataset.X, batch_size, training, y=dataset.y)
        if isinstance(dataset, TokenDataset):
            return TokenBatches(dataset, batch_size, training)
        n = len(dataset)
        batch_size = n if batch_size == -1 else batch_size
        if training:
            kwargs.setdefault("shuffle", True)
            kwargs.setdefault("drop_last", n > 1 and n % batch_size == 1)
        elif not {"sampler", "batch_sampler", "shuffle", "drop_last"} & set(kwargs):
            # As in Batches: a last batch of one joins the one before it.
            sampler = EvalBatchSampler(n, batch_size)
            return getattr(self, prefix)(dataset, batch_sampler=sampler, **kwargs)
        return getattr(self, prefix)(dataset, batch_size=batch_size, **kwargs)

    # -- one step ----------------------------------------------------------
    def _set_training(self, training=True):
        """As skorch's, skipped when every module already has the modes it set.

        skorch calls this before every training step, and
        :meth:`torch.nn.Module.train` walks the whole module tree, setting
        each flag through ``nn.Module.__setattr__``: about 0.1 ms a step on
        a small network, a tenth of an MLP autoencoder's step. A call gives
        the same flags whenever the flags it left are unchanged (``train``
        sets them from ``mode`` alone;
        :class:`~sk_replearn.transfer._head.FineTuneModule` puts back its
        fixed frozen blocks), so the
        call is skipped then; anything that changed a flag since (a
        transform's ``eval()``, a callback) or added or replaced a module
        makes it run. (A module whose ``train`` does more than set flags
        now does it when the mode changes, not at every step.)
        """
        tops = [
            getattr(self, name + "_", None) for name in self._modules + self._criteria
        ]
        # Every module now, in order: one added or replaced since counts too.
        modules = [
            m for top in tops if isinstance(top, torch.nn.Module) for m in top.modules()
        ]
        left = getattr(self, "_modes_left", None)
        if (
            left is not None
            and left[0] == training
            and len(left[1]) == len(modules)
            and all(
                m is seen and m.training == flag
                for m, (seen, flag) in zip(modules, left[1])
            )
        ):
            return
        super()._set_training(training)
        self._modes_left = (training, [(m, m.training) for m in modules])

    def __getstate__(self):
        # The modes' record holds the modules themselves: pickled with the
        # rest of the state it would copy them outside skorch's own pickling
        # of ``module_`` (device-aware). A loaded net records them again.
        state = super().__getstate__()
        state.pop("_modes_left", None)
        return state

    def _autocast(self):
        if self.precision == "32":
            return contextlib.nullcontext()
        device_type = torch.device(self.device).type
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=device_type, dtype=dtype)

    def infer(self, x, **fit_params):
        """Forward pass, under autocast when ``precision`` is not "32".

        A batch normalisation given one sample in training (in a user's own
        network: ``BatchNorm1d`` on ``(1, C)``) fails with torch's message
        alone; the error then says which parameter gave the batch of one.
        """
        with self._autocast():
            try:
                return super().infer(x, **fit_params)
            except ValueError as exc:
                if not str(exc).startswith(_BATCH_OF_ONE):
                    raise
                raise ValueError(self._batch_of_one(exc)) from exc

    def _batch_of_one(self, exc: Exception) -> str:
        if self.batch_size == 1:
            fix = "set batch_size to 2 or more (it is 1)"
        else:
            fix = "give every training batch 2 samples or more"
        return (
            f"A batch normalisation layer of the network got a batch of one "
            f"sample in training, which has no batch statistics ({exc}): {fix}."
        )

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """The objective's loss; labels are ignored."""
        with self._autocast():
            return self.objective().loss(y_pred, torch.as_tensor(X).to(self.device))

    def objective(self):
        """The trained objective, ``module_`` (unwrapped when accelerated)."""
        return self.module_

    def initialize(self):
        """Initialise as skorch does, plus the float16 gradient scaler."""
        super().initialize()
        self.grad_scaler_ = (
            torch.amp.GradScaler("cuda") if self.precision == "16" else None
        )
        return self

    def initialize_optimizer(self, *args, **kwargs):
        """Build the optimiser as skorch does; a refusal names the parameter.

        An optimiser class can refuse some networks at construction (torch's
        ``Muon`` takes only 2-D weights, and every network here has biases
        and norms), with torch's message alone; the error then says which
        estimator parameter chose it and what to pick instead.
        """
        try:
            return super().initialize_optimizer(*args, **kwargs)
        except (TypeError, ValueError, RuntimeError) as exc:
            name = getattr(self.optimizer, "__name__", repr(self.optimizer))
            raise ValueError(
                f"optimizer={name} could not be built for this network's "
                f"parameters: {exc}. Use an optimiser that takes every "
                "parameter, such as 'adamw' or torch.optim.SGD."
            ) from exc

    def _on_device(self, batch):
        """The batch with its inputs on the net's device, copied there once.

        skorch's steps hand the batch's inputs to both :meth:`infer` and
        :meth:`get_loss`, each of which moves them to the device: on a GPU
        that was two host-to-device copies of every batch.
        """
        Xi, yi = unpack_data(batch)
        return to_tensor(Xi, device=self.device), yi

    def validation_step(self, batch, **fit_params):
        """As skorch's, with the batch moved to the device once."""
        return super().validation_step(self._on_device(batch), **fit_params)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """As skorch's; the validation pass draws the same noise every epoch.

        A validation loss of random views or masks, drawn afresh at each
        epoch, moves with the draws as much as with the weights (a context
        encoder at ``lr=0``: 1.050 to 1.086 over eight epochs), and early
        stopping would keep the epoch of the luckiest draws. The validation
        pass runs on torch's generators seeded alike at every epoch, and
        leaves them as they were, so training draws what it would without
        validation.
        """
        if training or iterator is None:
            return super().run_single_epoch(
                iterator, training, prefix, step_fn, **fit_params
            )
        with seeded_generators(_VALIDATION_SEED, net_device(self)):
            return super().run_single_epoch(
                iterator, training, prefix, step_fn, **fit_params
            )

    def train_step_single(self, batch, **fit_params):
        """As skorch's, with the loss scaled before ``backward`` in float16.

        The batch is moved to the device once (``_on_device``).
        """
        batch = self._on_device(batch)
        if getattr(self, "grad_scaler_", None) is None:
            return super().train_step_single(batch, **fit_params)
        self._set_training(True)
        Xi, yi = batch
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        self.grad_scaler_.scale(loss).backward()
        return {"loss": loss, "y_pred": y_pred}

    def train_step(self, batch, **fit_params):
        """As skorch's; in float16 the scaler unscales, steps and updates."""
        scaler = getattr(self, "grad_scaler_", None)
        if scaler is None:
            return super().train_step(batch, **fit_params)
        self._zero_grad_optimizer()
        step = self.train_step_single(batch, **fit_params)
        scaler.unscale_(self.optimizer_)
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        scaler.step(self.optimizer_)
        scaler.update()
        return step

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """skorch's loop; an interrupt keeps the weights and warns.

        On the CPU under glibc, the memory a step frees stays in the heap for
        the next step while the loop runs (instead of going back to the
        kernel and faulting in again, page by page) and is handed back at
        the end; ``SK_REPLEARN_RETAIN_HEAP=0`` or the user's own glibc malloc
        settings turn this off.
        """
        on_cpu = self.device is not None and torch.device(self.device).type == "cpu"
        with kept_heap(on_cpu):
            try:
                return super().fit_loop(X, y, epochs=epochs, **fit_params)
            except KeyboardInterrupt:
                if self._early_stopped():
                    return self  # skorch's EarlyStopping stops by raising it
                epoch = len(self.history)
                if self.history and "train_loss" not in self.history[-1]:
                    # The record keeps finished epochs only: the unfinished
                    # one's row has no loss (loss_curve_, n_epochs_ read it).
                    self.history.pop()
                    when = f"during epoch {epoch}"
                else:  # at an epoch's end (a callback's), or before the first
                    when = f"after epoch {epoch}" if epoch else "before epoch 1"
                go_on = self._go_on
                saved = getattr(self, "checkpoint_dir_", None)
                if saved is not None and go_on == RepresentationNet._go_on:
                    go_on += (
                        f"; a fit with warm_start=False resumes the run saved in "
                        f"checkpoint_dir={saved!r}"
                    )
                warn_user(
                    f"Training was interrupted {when}; the model "
                    "keeps the weights of the last finished step and can be "
                    f"used (or {go_on}); its history_ records the "
                    f"{len(self.history)} finished epoch(s).",
                    RuntimeWarning,
                )
                return self

    def notify(self, method_name, **cb_kwargs):
        """As skorch's; at an epoch's end, every callback sees the epoch.

        A batch of targets with weights reaches the callbacks as its targets
        alone, the tensor a callback (skorch's ``EpochScoring``) reads.

        When the gradients are computed, the objective's ``after_backward``
        (if it has one) runs before the callbacks.

        skorch's :class:`~skorch.callbacks.EarlyStopping` stops by raising
        in ``on_epoch_end``, and a callback may fail there (a crash, an
        interrupt); the callbacks after it (the user's, the checkpoint,
        which saves the epoch after all the others, the printed log) never
        saw the epoch. Here they all see it first; then the first error is
        raised, or the stop if nothing else was raised.
        """
        if method_name == "on_grad_computed":
            # Between backward and the optimiser's step (every training path
            # notifies here): the objective's own hook first, e.g. SwAV's
            # frozen prototypes giving up their gradient.
            after_backward = getattr(self.objective(), "after_backward", None)
            if after_backward is not None:
                after_backward()
        batch = cb_kwargs.get("batch")
        if isinstance(batch, (tuple, list)) and len(batch) == 2:
            if isinstance(batch[1], WeightedTargets):  # callbacks see the targets
                cb_kwargs = {**cb_kwargs, "batch": (batch[0], batch[1].y)}
        if method_name != "on_epoch_end":
            return super().notify(method_name, **cb_kwargs)
        getattr(self, method_name)(self, **cb_kwargs)
        errors, stops = [], []
        for _, cb in self.callbacks_:
            try:
                getattr(cb, method_name)(self, **cb_kwargs)
            except BaseException as exc:  # raised once the rest saw the epoch
                stop = isinstance(exc, KeyboardInterrupt) and self._early_stopped()
                (stops if stop else errors).append(exc)
        if errors or stops:
            raise (errors or stops)[0]

    def _early_stopped(self) -> bool:
        return any(
            isinstance(cb, EarlyStopping) and cb.misses_ >= cb.patience
            for _, cb in self.callbacks_
        )


class SupervisedNet(RepresentationNet):
    """:class:`RepresentationNet` for labelled data: the loss is the criterion's.

    The module maps a batch to predictions (logits, or regression values)
    and ``criterion`` (e.g. :class:`torch.nn.CrossEntropyLoss`) scores them
    against the targets; everything else (tensor batches, autocast, the
    gradient scaler, interrupts) is :class:`RepresentationNet`'s.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.training import SupervisedNet
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> X, y = torch.randn(64, 3), torch.randint(0, 2, (64,))
    >>> net = SupervisedNet(
    ...     torch.nn.Linear(3, 2), criterion=torch.nn.CrossEntropyLoss,
    ...     max_epochs=3, lr=1e-2, verbose=0,
    ... )
    >>> _ = net.fit(X, y)
    >>> net.forward(X).shape
    torch.Size([64, 2])
    """

    #: A fine-tuner has no warm_start: each fit starts from the representation.
    _go_on = "resumed by fit again when checkpoint_dir is set"

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """The criterion on the predictions (in float32) and the targets.

        Targets with weights (:class:`~sk_replearn.data.WeightedTargets`)
        give the mean over the batch of each sample's loss times its weight
        (a sample's loss over several outputs is their mean, as the
        unweighted criterion's).
        """
        if not isinstance(y_true, WeightedTargets):
            y_true = torch.as_tensor(y_true).to(self.device)
            return self.criterion_(y_pred.float(), y_true)
        # Where the predictions are (an accelerator's net has no device).
        target = torch.as_tensor(y_true.y).to(y_pred.device)
        weight = y_true.weight.to(y_pred.device, torch.float32)
        losses = type(self.criterion_)(reduction="none")(y_pred.float(), target)
        return (losses.reshape(len(weight), -1).mean(dim=1) * weight).mean()
