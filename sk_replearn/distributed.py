"""Training on several devices or machines with Hugging Face accelerate.

Pass an :class:`accelerate.Accelerator` as the ``accelerator`` parameter of
any neural estimator and launch the script with ``accelerate launch`` (or
``torchrun``); the estimator then trains with skorch's
:class:`~skorch.hf.AccelerateMixin` on top of its own training net
(:class:`AcceleratedRepresentationNet`, :class:`AcceleratedSupervisedNet`).
Nothing here talks to a cluster: accelerate and :mod:`torch.distributed`
do, and this module only makes the training net compose with them.

* **Data parallel.** Each process trains a replica of the model on its own
  shard of every epoch; the gradients are averaged across processes by
  DistributedDataParallel, so all replicas hold the same weights.
  ``batch_size`` is per process: the global batch is ``batch_size`` times
  the number of processes. Every process must see the same data and the
  same ``random_state`` (with ``random_state=None`` the main process's seed
  is broadcast); the epoch's order is drawn on the main process and each
  process takes its own contiguous part of it (a remainder of fewer than
  one sample per process is left out of that epoch, as
  :class:`~torch.utils.data.DistributedSampler` with ``drop_last`` does;
  with fewer samples than processes each takes one, some the same).
  A :class:`torch.utils.data.Dataset` passed to ``fit`` goes through a
  :class:`~torch.utils.data.DataLoader` that accelerate shards.
* **Contrastive negatives.** SimCLR's NT-Xent scores each sample against the
  whole global batch (:func:`~sk_replearn.losses.gather_batch`,
  a differentiable all-gather), and MoCo queues the keys of every process.
* **Ending the script.** Call ``accelerator.end_training()`` last: it
  destroys the process group, without which gloo's threads can abort a
  process as the interpreter exits.
* **Precision** is the accelerator's: create it with
  ``Accelerator(mixed_precision="bf16")`` (or ``"fp16"``) and leave
  ``precision="32"``; any other ``precision`` with an accelerator is an
  error. The ``device`` parameter is ignored too: the accelerator places
  the model (one GPU per process).
* The validation split (``early_stopping=True``) is not sharded: every
  process scores the whole of it, so all stop at the same epoch. The
  training loss recorded in ``history_`` is the process's own.
* BatchNorm normalises with each process's own batch (as in
  DistributedDataParallel without :class:`~torch.nn.SyncBatchNorm`); at the
  end of training every process gets the main process's buffers (running
  statistics, MoCo's queue), so that all hold the same model.

Caveats (skorch's, see :class:`~skorch.hf.AccelerateMixin`): an estimator
fitted with an accelerator cannot be pickled (its net holds the
accelerator's optimizer wrapper), even after ``set_params(accelerator=None)``;
``save`` then ``load`` gives the same fitted estimator without the
accelerator, which pickles (as does one fitted without it). A fine-tuner's
accelerator trains the fine-tuning: an unfitted representation it
pre-trains runs without it unless given its own
(``representation__accelerator``), so in ``accelerate launch`` each process
would pre-train alone. The accelerated batches are shuffled by their own
generator, so one process does not reproduce the fit without an
accelerator under the same ``random_state`` (two accelerated fits are
alike).
After ``fit`` the model is unwrapped (``net_.module_`` is the plain
objective, on the accelerator's device), so ``transform`` runs in each
process on the data it is given.

Examples
--------
A script run as ``accelerate launch --num_processes 2 train.py`` (here in one
process, where it trains as usual):

>>> import numpy as np
>>> from accelerate import Accelerator
>>> from sk_replearn import AutoencoderTransformer
>>> X = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
>>> ae = AutoencoderTransformer(
...     n_components=2, max_epochs=2, batch_size=16, random_state=0,
...     accelerator=Accelerator(cpu=True),
... ).fit(X)
>>> ae.transform(X).shape
(64, 2)
"""

from __future__ import annotations

import torch
from skorch.hf import AccelerateMixin

from .data import ArrayDataset, Batches, WeightedTargets, shuffled_order
from .tokens import TokenBatches, TokenDataset
from .training import RepresentationNet, SupervisedNet

__all__ = [
    "AcceleratedRepresentationNet",
    "AcceleratedSupervisedNet",
    "accelerated_net_class",
    "shared_seed",
    "world_size",
]


def world_size(accelerator) -> int:
    """Number of training processes: the accelerator's, 1 without one.

    Examples
    --------
    >>> from sk_replearn.distributed import world_size
    >>> world_size(None)
    1
    """
    return 1 if accelerator is None else int(accelerator.num_processes)


def shared_seed(accelerator, seed: int) -> int:
    """The main process's ``seed``, on every process.

    Data-parallel training needs the same random stream on every process
    (the same validation split, the same epoch order to shard); a seed drawn
    from ``random_state=None`` differs between processes until broadcast.

    Parameters
    ----------
    accelerator : accelerate.Accelerator or None
    seed : int
        This process's seed.

    Returns
    -------
    int
        The main process's seed (``seed`` itself without an accelerator or
        with one process).

    Examples
    --------
    >>> from sk_replearn.distributed import shared_seed
    >>> shared_seed(None, 7)
    7
    """
    if world_size(accelerator) == 1:
        return seed
    from accelerate.utils import broadcast_object_list

    return int(broadcast_object_list([seed], from_process=0)[0])


class _ShardedBatches(Batches):
    """Training batches of one process: its contiguous part of each epoch.

    The epoch's order is drawn from a seed broadcast by the main process,
    so that the parts of the ``world`` processes are disjoint; each process
    takes ``len(X) // world`` samples and batches them as :class:`Batches`
    does, so every process runs the same number of equal-sized steps
    (DistributedDataParallel and the NT-Xent all-gather need that). Where
    there are fewer samples than processes, each process takes one, some
    the same: a process without a step would leave the others waiting for
    its gradients. Batches are moved to ``device``.
    """

    def __init__(self, X, batch_size, accelerator, y=None) -> None:
        super().__init__(X, batch_size, True, y=y)
        self.accelerator = accelerator
        self.rank = int(accelerator.process_index)
        self.world = int(accelerator.num_processes)
        self.n_local = max(len(X) // self.world, 1)

    def __len__(self) -> int:
        return self.count(self.n_local, self.batch_size)

    def __iter__(self):
        seed = int(torch.randint(0, 2**62, ()))  # torch's generator, seeded by fit
        generator = torch.Generator().manual_seed(shared_seed(self.accelerator, seed))
        order = shuffled_order(len(self.X), generator)
        if len(order) >= self.world:
            mine = order[self.rank * self.n_local : (self.rank + 1) * self.n_local]
        else:  # one sample a process, wrapping round
            mine = order[self.rank % len(order)].reshape(1)
        size, device = self.batch_size, self.accelerator.device
        for k in range(len(self)):
            xb, yb = self._take(mine[k * size : (k + 1) * size])
            yield xb.to(device), None if yb is None else yb.to(device)


class _ShardedTokenBatches(TokenBatches):
    """Training batches of token sequences for one process.

    Every process draws the same length-grouped batches from a seed the
    main process broadcasts, and takes every ``world``-th of them (the same
    number on each process, so their steps stay in lockstep), moved to the
    device. Where there are fewer batches than processes, each process
    takes one, some the same: a process without a step would leave the
    others waiting for its gradients.
    """

    def __init__(self, dataset, batch_size, accelerator) -> None:
        super().__init__(dataset, batch_size, True)
        self.accelerator = accelerator
        self.rank = int(accelerator.process_index)
        self.world = int(accelerator.num_processes)

    def __len__(self) -> int:
        return max(self._count // self.world, 1)

    def __iter__(self):
        seed = int(torch.randint(0, 2**62, ()))  # torch's generator, seeded by fit
        generator = torch.Generator().manual_seed(shared_seed(self.accelerator, seed))
        batches = self.training_batches(generator)
        device = self.accelerator.device
        for k in range(len(self) if batches else 0):  # every world-th, wrapping round
            idx = batches[(self.rank + k * self.world) % len(batches)]
            xb, yb = self._batch(idx)
            yield xb.to(device), None if yb is None else yb.to(device)


def _on_device(batches, device):
    """Move each ``(X, y)`` batch of an iterable to ``device``."""
    for xb, yb in batches:
        moves = isinstance(yb, (torch.Tensor, WeightedTargets))
        yield xb.to(device), yb.to(device) if moves else yb


class _Reiterable:
    """An iterable of batches moved to a device, iterable once per epoch."""

    def __init__(self, batches, device) -> None:
        self.batches, self.device = batches, device

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return _on_device(self.batches, self.device)


class _Accelerated(AccelerateMixin):
    """What both accelerated nets add to skorch's :class:`AccelerateMixin`.

    * Training batches of an :class:`~sk_replearn.data.ArrayDataset` (and
      of token sequences) are sharded per process (:class:`_ShardedBatches`,
      :class:`_ShardedTokenBatches`), since the tensor slicing iterator is
      not a DataLoader that accelerate could shard; any other dataset's
      DataLoader is prepared (sharded) by accelerate.
    * Validation batches are not sharded, only moved to the device.
    * The loss is the unwrapped objective's (DistributedDataParallel hides
      the objective's ``loss`` method).
    * Each fit re-prepares the model, so that ``warm_start`` trains the
      replicas together again after ``fit`` unwrapped them.
    * Criteria without trainable parameters are not prepared (wrapping them
      in DistributedDataParallel is an error).
    """

    def get_iterator(self, dataset, training=False):
        """Sharded training batches, whole validation batches, on the device."""
        base = super(AccelerateMixin, self)  # the net's own, unprepared
        if not training:
            return _Reiterable(base.get_iterator(dataset, training=False), self._dev())
        if isinstance(dataset, ArrayDataset):
            batch_size = self.get_params_for("iterator_train").get(
                "batch_size", self.batch_size
            )
            return _ShardedBatches(dataset.X, batch_size, self.accelerator, dataset.y)
        if isinstance(dataset, TokenDataset):
            batch_size = self.get_params_for("iterator_train").get(
                "batch_size", self.batch_size
            )
            return _ShardedTokenBatches(dataset, batch_size, self.accelerator)
        return super().get_iterator(dataset, training=True)

    def _initialize_accelerator(self):
        """Prepare as skorch does, leaving out parameter-free criteria.

        accelerate wraps every module it prepares in DistributedDataParallel,
        which refuses a module without trainable parameters, such as the
        criterion (an identity, or a cross-entropy) of these nets.
        """
        criteria = self._criteria
        self._criteria = [
            name
            for name in criteria
            if any(p.requires_grad for p in getattr(self, name + "_").parameters())
        ]
        try:
            return super()._initialize_accelerator()
        finally:
            self._criteria = criteria

    def _initialize_callbacks(self):
        # skorch's PrintLog writes to any sink but ``print`` even when
        # verbose=0, and "auto" means the accelerator's print.
        if not self.verbose and self.callbacks__print_log__sink == "auto":
            self.callbacks__print_log__sink = print
        return super()._initialize_callbacks()

    def _dev(self) -> torch.device:
        return self.accelerator.device if self.device is None else self.device

    def objective(self):
        """The objective inside accelerate's (DistributedDataParallel) wrapper."""
        return self.accelerator.unwrap_model(self.module_)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        """Give every process the main one's buffers, then unwrap (skorch).

        DistributedDataParallel averages gradients, so the weights agree, but
        buffers such as BatchNorm's running statistics are only broadcast
        before each forward pass: after the last one they differ.
        """
        if world_size(self.accelerator) > 1:
            for buffer in self.objective().buffers():
                torch.distributed.broadcast(buffer.data, src=0)
        return super().on_train_end(net, X=X, y=y, **kwargs)

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """skorch's loop, with the model (re)prepared by the accelerator."""
        self._initialize_accelerator()
        return super().fit_loop(X, y, epochs=epochs, **fit_params)


class AcceleratedRepresentationNet(_Accelerated, RepresentationNet):
    """:class:`~sk_replearn.training.RepresentationNet` trained through accelerate.

    Parameters
    ----------
    module : Objective
        As for :class:`~sk_replearn.training.RepresentationNet`.
    accelerator : accelerate.Accelerator
        Places the model, wraps it for data-parallel training and runs the
        backward pass (and mixed precision, if it was created with it).
    **kwargs
        As for :class:`~sk_replearn.training.RepresentationNet`; leave
        ``device=None`` (the accelerator places the model) and
        ``precision="32"``.

    Examples
    --------
    >>> import torch
    >>> from accelerate import Accelerator
    >>> from sk_replearn.distributed import AcceleratedRepresentationNet
    >>> from sk_replearn.objectives.reconstruction import AutoencoderObjective
    >>> _ = torch.manual_seed(0)
    >>> net = AcceleratedRepresentationNet(
    ...     AutoencoderObjective(input_shape=(4,), n_components=2),
    ...     accelerator=Accelerator(cpu=True), max_epochs=2, lr=1e-2, verbose=0,
    ... )
    >>> len(net.fit(torch.randn(32, 4), None).history)
    2
    """


class AcceleratedSupervisedNet(_Accelerated, SupervisedNet):
    """:class:`~sk_replearn.training.SupervisedNet` trained through accelerate.

    Parameters are those of :class:`AcceleratedRepresentationNet`, plus
    ``criterion`` as for :class:`~sk_replearn.training.SupervisedNet`.

    Examples
    --------
    >>> import torch
    >>> from accelerate import Accelerator
    >>> from sk_replearn.distributed import AcceleratedSupervisedNet
    >>> _ = torch.manual_seed(0)
    >>> net = AcceleratedSupervisedNet(
    ...     torch.nn.Linear(3, 2), criterion=torch.nn.CrossEntropyLoss,
    ...     accelerator=Accelerator(cpu=True), max_epochs=2, lr=1e-2, verbose=0,
    ... )
    >>> X, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
    >>> len(net.fit(X, y).history)
    2
    """


_ACCELERATED = {
    RepresentationNet: AcceleratedRepresentationNet,
    SupervisedNet: AcceleratedSupervisedNet,
}


def accelerated_net_class(net_class: type, accelerator) -> type:
    """The training net class to build: ``net_class``, accelerated if asked.

    Parameters
    ----------
    net_class : {RepresentationNet, SupervisedNet}
        The net the estimator trains with.
    accelerator : accelerate.Accelerator or None
        The estimator's ``accelerator`` parameter.

    Returns
    -------
    type
        ``net_class`` without an accelerator, else its accelerated subclass.

    Examples
    --------
    >>> from sk_replearn.distributed import accelerated_net_class
    >>> from sk_replearn.training import RepresentationNet
    >>> accelerated_net_class(RepresentationNet, None).__name__
    'RepresentationNet'
    """
    return net_class if accelerator is None else _ACCELERATED[net_class]
