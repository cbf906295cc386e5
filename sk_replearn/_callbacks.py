"""The pieces skorch plugs in around the training net.

The validation split of early stopping (:class:`RandomSplit`), the
learning-rate factor and the scheduler that starts it over at every fit
(:class:`WarmupCosine`, :class:`FreshLRScheduler`), and the callback that
stops training on a non-finite loss (:class:`StopOnNonFiniteLoss`, raising
:class:`NonFiniteLossError` with the likely cause). All but the callback
are public through :mod:`sk_replearn.training`, the engine they serve.
"""

from __future__ import annotations

import math

import torch
from skorch.callbacks import Callback, LRScheduler
from torch.optim.lr_scheduler import ReduceLROnPlateau

from .data import ArrayDataset, WeightedTargets
from .data._precision import _peak_past_float32
from .tokens import TokenDataset
from .views import _Views

__all__ = [
    "FreshLRScheduler",
    "NonFiniteLossError",
    "RandomSplit",
    "StopOnNonFiniteLoss",
    "WarmupCosine",
]


class NonFiniteLossError(FloatingPointError, ValueError):
    """Raised when the training loss becomes NaN or infinite.

    Also a :class:`ValueError`: its cause is a value the user chose (a too
    high ``lr``, or data of extreme magnitude), and ``except ValueError``
    (as in scikit-learn's model selection) should catch it.
    """


class RandomSplit:
    """Hold out a random fraction of the samples for validation.

    A picklable ``train_split`` for skorch: ``split(dataset, y)`` returns
    ``(train, valid)`` :class:`~sk_replearn.data.ArrayDataset` s, drawn from
    torch's global generator (seeded by the estimator). Samples of weight 0
    (:class:`~sk_replearn.data.WeightedTargets`) are never held out: the
    fraction is of those of positive weight, whose validation loss would
    otherwise be 0 whatever the weights.

    Parameters
    ----------
    fraction : float
        Share of the samples in the validation set, in (0, 1).
    stratify : bool, default=False
        Hold out each class in that share, as scikit-learn's
        ``MLPClassifier`` does for its early stopping: the classes are
        ``y``, or the dataset's ``y`` when skorch passes none (class
        indices). Each class gives its share rounded down, and the samples
        left to draw come one each from the classes of the largest
        remainders, ties broken at random; a class's last sample always
        trains. (A random fraction of few labels may hold out none of a
        class, or all of it.)

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.data import ArrayDataset
    >>> from sk_replearn.training import RandomSplit
    >>> train, valid = RandomSplit(0.2)(ArrayDataset(torch.zeros(10, 3)))
    >>> len(train), len(valid)
    (8, 2)
    >>> labelled = ArrayDataset(torch.zeros(10, 3), torch.tensor([0] * 5 + [1] * 5))
    >>> train, valid = RandomSplit(0.2, stratify=True)(labelled)
    >>> valid.y.sort().values
    tensor([0, 1])
    """

    def __init__(self, fraction: float, stratify: bool = False) -> None:
        self.fraction, self.stratify = fraction, stratify

    def __call__(self, dataset, y=None, **fit_params):
        n = len(dataset)
        order = torch.randperm(n)
        targets = y if y is not None else getattr(dataset, "y", None)
        weighted = isinstance(targets, WeightedTargets)
        labels = targets.y if weighted else targets
        stratify = (
            self.stratify and isinstance(labels, torch.Tensor) and len(labels) == n
        )
        if not (weighted or stratify):
            valid = order[: self._count(n)]
        else:
            valid = self._held_out(order, labels if stratify else None, targets)
        if isinstance(dataset, (ArrayDataset, TokenDataset)):
            held = torch.zeros(n, dtype=torch.bool)
            held[valid] = True
            return dataset.subset(order[~held[order]]), dataset.subset(valid)
        held = set(valid.tolist())
        train = [i for i in order.tolist() if i not in held]
        Subset = torch.utils.data.Subset  # any other map-style dataset
        return Subset(dataset, train), Subset(dataset, valid.tolist())

    def _count(self, m: int) -> int:
        """How many of ``m`` samples to hold out: at least one, never all."""
        return min(max(int(round(self.fraction * m)), 1), m - 1)

    def _held_out(self, order: torch.Tensor, labels, targets) -> torch.Tensor:
        """The held-out indices among the samples of positive weight.

        ``order`` is a random permutation of the samples; ``labels`` the
        classes to stratify by, or None.
        """
        eligible = order
        if isinstance(targets, WeightedTargets):
            eligible = order[targets.weight.cpu()[order] > 0]
        m = len(eligible)
        if m < 2:
            raise ValueError(
                f"early_stopping=True holds out samples of positive sample_weight "
                f"for validation, but {m} of them {'has' if m == 1 else 'have'} "
                "one: give more samples a positive weight, or set "
                "early_stopping=False."
            )
        n_valid = self._count(m)
        if labels is None:
            return eligible[:n_valid]
        lab = labels.cpu()[eligible]
        by_class = eligible[torch.sort(lab, stable=True).indices]  # each in order
        _, counts = torch.unique(lab, return_counts=True)  # in by_class's order
        share = counts.double() * n_valid / m
        quota = torch.minimum(share.floor().long(), counts - 1)
        left = n_valid - int(quota.sum())
        shuffled = torch.randperm(len(counts))  # ties broken at random
        remainders = (share - share.floor())[shuffled]
        for c in shuffled[torch.sort(-remainders, stable=True).indices].tolist():
            if left == 0:
                break
            if quota[c] < counts[c] - 1:
                quota[c] += 1
                left -= 1
        if int(quota.sum()) == 0:
            raise ValueError(
                "early_stopping=True holds out each class in its share, but "
                "every class has a single sample (of positive weight), which "
                "must train: set early_stopping=False, or label more samples."
            )
        starts = (torch.cumsum(counts, 0) - counts).tolist()
        return torch.cat(
            [by_class[a : a + q] for a, q in zip(starts, quota.tolist(), strict=True)]
        )


class WarmupCosine:
    """Learning-rate factor: linear warm-up, then cosine decay to zero.

    Parameters
    ----------
    total_steps : int
        Number of optimiser steps in the whole run.
    warmup_steps : int
        Steps of linear warm-up from ``1 / warmup_steps`` to 1.
    decay : bool, default=True
        Whether the cosine decay follows the warm-up; False holds the
        factor at 1 (``lr_schedule=None`` with ``warmup_epochs``).

    Examples
    --------
    >>> from sk_replearn.training import WarmupCosine
    >>> f = WarmupCosine(total_steps=10, warmup_steps=2)
    >>> [round(f(s), 3) for s in (0, 1, 2, 6, 10)]
    [0.5, 1.0, 1.0, 0.5, 0.0]
    >>> g = WarmupCosine(total_steps=10, warmup_steps=2, decay=False)
    >>> [round(g(s), 3) for s in (0, 1, 2, 6, 10)]
    [0.5, 1.0, 1.0, 1.0, 1.0]
    """

    def __init__(self, total_steps: int, warmup_steps: int, decay: bool = True) -> None:
        self.total_steps = max(int(total_steps), 1)
        self.warmup_steps = max(int(warmup_steps), 0)
        self.decay = decay

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if not self.decay:
            return 1.0
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = min((step - self.warmup_steps) / span, 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))


class FreshLRScheduler(LRScheduler):
    """skorch's :class:`~skorch.callbacks.LRScheduler`, started over at every fit.

    skorch resumes a schedule at the epoch count of the history, and the
    scheduler keeps the ``initial_lr`` of the first fit in the optimiser: a
    warm start would continue the cosine where the last fit ended (at a
    learning rate near zero) and ignore a new ``lr``. Here every fit's
    schedule starts at its first step, from the learning rate set for it.
    A checkpoint restores its own position afterwards. A
    :class:`~torch.optim.lr_scheduler.ReduceLROnPlateau` policy, which
    follows the monitored score rather than a step count, starts over too.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.training import FreshLRScheduler
    >>> cb = FreshLRScheduler(policy=torch.optim.lr_scheduler.LambdaLR,
    ...                       lr_lambda=lambda step: 1.0)
    >>> cb.kwargs["last_epoch"]
    -1
    """

    def __init__(self, policy="WarmRestartLR", monitor="train_loss", **kwargs):
        if policy not in (ReduceLROnPlateau, "ReduceLROnPlateau"):  # no last_epoch
            kwargs.setdefault("last_epoch", -1)
        super().__init__(policy=policy, monitor=monitor, **kwargs)

    def on_train_begin(self, net, **kwargs):
        for group in net.optimizer_.param_groups:
            group.pop("initial_lr", None)  # the last fit's: take the present lr
        super().on_train_begin(net, **kwargs)


class StopOnNonFiniteLoss(Callback):
    """Stop training with a clear error as soon as the loss is not finite.

    A model whose weights went to NaN must never be reported as fitted.
    The message names the epoch and batch and the likely cause: NaN or
    infinite values in the batch (a Dataset's items are not checked ahead
    of training), else a too high learning rate. The loss is computed
    before each step, so the weights the last step leaves are checked at
    the end of training too.
    """

    def on_batch_end(self, net, batch=None, training=None, loss=None, **kwargs):
        value = float(loss.detach()) if loss is not None else 0.0
        if not math.isfinite(value):
            epoch = len(net.history)
            what = "training" if training else "validation"
            if _holds_non_finite(batch):
                raise NonFiniteLossError(
                    f"The {what} loss became {value} in epoch {epoch}: the batch "
                    "holds NaN or infinite values. X (a Dataset's items are not "
                    "checked before training) must be finite; remove or impute "
                    "those values first."
                )
            peaks = [_peak_past_float32(t) for t in _batch_inputs(batch)]
            peak = max((p for p in peaks if p is not None), default=None)
            if peak is not None:
                raise NonFiniteLossError(
                    f"The {what} loss became {value} in epoch {epoch}: the batch "
                    f"holds values up to {peak:.3g} in magnitude, whose squares "
                    "summed over a sample overflow float32, the precision of "
                    "training. Rescale X (a Dataset's items are not checked "
                    "before training)."
                )
            if _views_give_non_finite(net.module_, batch):
                raise NonFiniteLossError(
                    f"The {what} loss became {value} in epoch {epoch}: the views "
                    f"callable (views={net.module_.views!r}) returns NaN or "
                    "infinite values for a finite batch. Make it return finite "
                    "values (it gets the standardised batch: about zero mean and "
                    "unit variance)."
                )
            raise NonFiniteLossError(
                f"The {what} loss became {value} in epoch {epoch}. " + _too_high_lr(net)
            )

    def on_train_end(self, net, **kwargs):
        tensors = [*net.module_.parameters(), *net.module_.buffers()]
        if any(t.is_floating_point() and not torch.isfinite(t).all() for t in tensors):
            raise NonFiniteLossError(
                "Training left NaN or infinite weights after its last step "
                f"(epoch {len(net.history)}), whose loss was still finite. "
                + _too_high_lr(net)
            )


def _too_high_lr(net) -> str:
    decay = _runaway_decay(net)
    if decay is not None:
        return decay
    reduced = getattr(net, "precision", "32") != "32"
    full = " or use precision='32'" if reduced else ""
    return (
        f"The learning rate (lr={net.lr}) is most likely too high for this model "
        "and data; lower lr, add warm-up (lr_schedule='cosine', "
        f"warmup_epochs>0){full}. "
        "If X holds values of extreme magnitude, rescale it first (e.g. with "
        "StandardScaler); a parameter that scales the data (a view's noise "
        "level, say) must stay in their range too."
    )


def _runaway_decay(net) -> str | None:
    """The advice when weight decay alone makes the weights grow, else None.

    A decay step multiplies the weights by ``1 - lr * weight_decay`` (AdamW's
    decoupled decay, and SGD's as part of its gradient), which grows them in
    magnitude, alternating in sign, once the product is above 2. The weight
    decay is blamed when it is the larger factor of such a product (at a
    group's starting rate, which a schedule only lowers); a huge ``lr`` with
    a usual decay keeps the learning-rate advice.
    """
    groups = getattr(getattr(net, "optimizer_", None), "param_groups", None) or []
    worst = None
    for group in groups:
        lr = float(group.get("initial_lr", group.get("lr", 0.0)))
        decay = float(group.get("weight_decay", 0.0) or 0.0)
        if lr * decay > 2 and decay > lr and (worst is None or lr * decay > worst[0]):
            worst = (lr * decay, lr, decay)
    if worst is None:
        return None
    product, lr, weight_decay = worst
    return (
        f"The weight decay (weight_decay={weight_decay:g}) is too high for the "
        f"learning rate (lr={lr:g}): each step multiplies the weights by "
        f"1 - lr * weight_decay = {1 - product:.3g}, which makes them grow instead "
        "of shrink. Lower weight_decay so that lr * weight_decay stays well under "
        "1 (values from 0 to 0.1 are usual)."
    )


def _views_give_non_finite(module, batch) -> bool:
    """Whether a user's ``views`` callable maps the (finite) batch to NaN or inf.

    Only for an objective that draws views with a callable other than the
    package's own view classes (which keep finite inputs finite); drawn
    again here, outside autograd and on a forked generator, once training
    has already failed.
    """
    views = getattr(module, "views", None)
    draw = getattr(module, "draw_views", None)
    if views is None or draw is None or isinstance(views, _Views) or batch is None:
        return False
    x = batch[0] if isinstance(batch, (tuple, list)) else batch
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        return False
    param = next(module.parameters(), None)
    if param is not None:
        x = x.to(param.device)
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        try:
            drawn = draw(x)
        except Exception:  # noqa: BLE001 - the diagnosis must not mask the error
            return False
    return _holds_non_finite((tuple(drawn),))  # a batch whose X is every view


def _batch_inputs(batch) -> list[torch.Tensor]:
    """The floating-point input tensors of a batch (``(X, y)`` or X, X one
    tensor or several)."""
    if batch is None:
        return []
    inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
    parts = inputs if isinstance(inputs, (tuple, list)) else [inputs]
    return [t for t in parts if isinstance(t, torch.Tensor) and t.is_floating_point()]


def _holds_non_finite(batch) -> bool:
    """Whether a batch's floating-point inputs hold a NaN or an infinity."""
    return any(not torch.isfinite(t).all() for t in _batch_inputs(batch))
