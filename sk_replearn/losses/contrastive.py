"""Contrastive losses: NT-Xent (SimCLR), InfoNCE (MoCo) and a queue of keys.

All losses take embeddings (the projection head's output), L2-normalise them
inside, and compute in at least float32 so that they are safe under autocast.
The momentum encoder that produces MoCo's keys lives in
:mod:`sk_replearn.nn.momentum`.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F

from ._checks import check_pair, check_positive, matmul32, normalize

__all__ = ["InfoNCELoss", "MemoryQueue", "NTXentLoss", "gather_batch"]


def _world() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group, ``(0, 1)`` if none."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _GatherRows(torch.autograd.Function):
    """All-gather along the rows; the backward all-reduces, then slices.

    Both collectives are blocking calls of :mod:`torch.distributed`. torch's
    asynchronous functional all-gather (``all_gather_single_autograd``) is
    not used: on two gloo processes (torch 2.13) it crashed one of them in 3
    of 8 runs of 3,000 NT-Xent steps (a segmentation fault, or glibc's
    "malloc(): unaligned tcache chunk detected"); this function crashed in
    none of 14.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        rank, world = _world()
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x)
        ctx.rows = slice(rank * x.shape[0], (rank + 1) * x.shape[0])
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()  # all_reduce works in place
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rows]


def gather_batch(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every process, differentiably.

    With :mod:`torch.distributed` initialised and more than one process, the
    ``(N, D)`` tensors of the ``W`` ranks are concatenated in rank order to
    ``(W N, D)``; otherwise ``x`` is returned as it is. In the backward pass
    each rank receives the sum over ranks of the gradients that reached its
    rows (an all-reduce of the gathered gradient, then this rank's rows),
    which is what a loss averaged by DistributedDataParallel needs (see
    :class:`NTXentLoss`). Every rank must call it with the same ``N``.

    Parameters
    ----------
    x : torch.Tensor of shape (N, ...)
        This rank's batch.

    Returns
    -------
    torch.Tensor of shape (W * N, ...)
        Rows ``r N`` to ``(r + 1) N`` are rank ``r``'s ``x``.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.losses.contrastive import gather_batch
    >>> gather_batch(torch.ones(2, 3)).shape  # one process: unchanged
    torch.Size([2, 3])
    """
    _, world = _world()
    if world == 1:
        return x
    return _GatherRows.apply(x.contiguous())


class NTXentLoss(nn.Module):
    """Normalised temperature-scaled cross-entropy (NT-Xent) of SimCLR.

    For two views ``z1[i]``, ``z2[i]`` of the same ``N`` samples, each of the
    ``2N`` embeddings is an anchor whose positive is its other view and whose
    negatives are the remaining ``2N - 2`` embeddings:

    .. math::

        \\ell_a = -\\log \\frac{\\exp(\\mathrm{sim}(z_a, z_{a^+}) / \\tau)}
        {\\sum_{b \\ne a} \\exp(\\mathrm{sim}(z_a, z_b) / \\tau)},

    with cosine similarity ``sim``; the loss is the mean of ``l_a`` over the
    ``2N`` anchors. It is computed as a cross-entropy over the ``(2N, 2N)``
    similarity matrix with its diagonal set to ``-inf`` (log-sum-exp keeps it
    stable for small ``temperature``).

    In training under :mod:`torch.distributed` with ``W > 1`` processes the
    negatives are those of the global batch, as in SimCLR's multi-device
    training: each rank's ``2N`` anchors are scored against the ``2 W N``
    embeddings gathered by :func:`gather_batch`. The mean of the ranks'
    losses is then the loss of one process on the concatenated batch, and,
    since the gather's backward sums the ranks' gradients and
    DistributedDataParallel averages them, so is the weights' gradient.

    Parameters
    ----------
    temperature : float, default=0.1
        Softmax temperature ``τ`` (> 0).

    References
    ----------
    .. [1] T. Chen, S. Kornblith, M. Norouzi and G. Hinton, "A Simple
       Framework for Contrastive Learning of Visual Representations",
       ICML 2020 (SimCLR), eq. (1).

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.losses.contrastive import NTXentLoss
    >>> _ = torch.manual_seed(0)
    >>> z = torch.randn(8, 16)
    >>> loss = NTXentLoss(temperature=0.1)
    >>> bool(loss(z, z) < loss(z, torch.randn(8, 16)))
    True
    >>> loss(z, z).shape
    torch.Size([])
    """

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        self.temperature = check_positive("temperature", temperature)

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """Mean NT-Xent over the ``2N`` anchors.

        Parameters
        ----------
        z1, z2 : torch.Tensor of shape (N, D)
            Embeddings of two views; row ``i`` of each comes from sample ``i``.
            ``N >= 2`` (with one sample there are no negatives).

        Returns
        -------
        torch.Tensor of shape ()
        """
        check_pair(z1, z2, "z1 and z2")
        n = z1.shape[0]
        if n < 2:
            raise ValueError(
                f"NTXentLoss needs a batch of at least 2 samples (N >= 2) to have "
                f"negatives; got N={n}."
            )
        rank, world = _world() if self.training else (0, 1)
        z = normalize(torch.cat([z1, z2]))  # (2N, D) this rank's anchors
        if world > 1:  # candidates: both views of the global batch
            z1_all, z2_all = gather_batch(z[:n]), gather_batch(z[n:])  # (WN, D)
            candidates = torch.cat([z1_all, z2_all])  # (2WN, D)
        else:
            candidates = z
        m = world * n  # samples in the global batch
        logits = matmul32(z, candidates.T) / self.temperature  # (2N, 2WN)
        idx = torch.arange(n, device=z.device) + rank * n  # global sample index
        own = torch.cat([idx, idx + m])  # (2N,) column of each anchor itself
        self_mask = torch.zeros_like(logits, dtype=torch.bool)  # (2N, 2WN)
        self_mask[torch.arange(2 * n, device=z.device), own] = True
        logits = logits.masked_fill(self_mask, float("-inf"))
        targets = torch.cat([idx + m, idx])  # (2N,) anchor a -> its other view
        return F.cross_entropy(logits, targets)


class InfoNCELoss(nn.Module):
    """InfoNCE of MoCo, with a queue of negatives or in-batch negatives.

    With a ``queue`` of ``K`` keys (MoCo v1/v2), query ``q[i]`` is scored
    against its positive key ``k[i]`` and the ``K`` queued keys,
    ``logits = [q·k₊, q·queue] / τ`` with target 0. Without a queue (MoCo v3),
    the negatives of ``q[i]`` are the other keys ``k[j], j ≠ i`` of the batch:
    ``logits = q kᵀ / τ`` of shape ``(N, N)`` with target ``i``.

    Gradients flow into ``k`` as given: pass keys from a momentum encoder
    under ``torch.no_grad()`` (or detached) as MoCo does. The queue is always
    treated as a constant. MoCo v3 additionally scales its loss by ``2τ``;
    that is left to the caller.

    Parameters
    ----------
    temperature : float, default=0.2
        Softmax temperature ``τ`` (> 0).

    References
    ----------
    .. [1] K. He, H. Fan, Y. Wu, S. Xie and R. Girshick, "Momentum Contrast
       for Unsupervised Visual Representation Learning", CVPR 2020 (MoCo),
       eq. (1) and Algorithm 1.
    .. [2] X. Chen, S. Xie and K. He, "An Empirical Study of Training
       Self-Supervised Vision Transformers", ICCV 2021 (MoCo v3).
    .. [3] A. van den Oord, Y. Li and O. Vinyals, "Representation Learning
       with Contrastive Predictive Coding", arXiv:1807.03748, 2018 (InfoNCE).

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.losses.contrastive import InfoNCELoss, MemoryQueue
    >>> _ = torch.manual_seed(0)
    >>> q, k = torch.randn(4, 8), torch.randn(4, 8)
    >>> queue = MemoryQueue(dim=8, size=32)
    >>> loss = InfoNCELoss(temperature=0.2)
    >>> loss(q, k, queue.queue).shape
    torch.Size([])
    >>> bool(loss(q, q) < loss(q, k))  # in-batch negatives
    True
    """

    def __init__(self, temperature: float = 0.2) -> None:
        super().__init__()
        self.temperature = check_positive("temperature", temperature)

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean InfoNCE over the ``N`` queries.

        Parameters
        ----------
        q : torch.Tensor of shape (N, D)
            Queries (online encoder).
        k : torch.Tensor of shape (N, D)
            Positive keys; ``k[i]`` is the positive of ``q[i]``.
        queue : torch.Tensor of shape (K, D) or None, default=None
            Negative keys. ``None`` uses the other keys of the batch, which
            needs ``N >= 2``.

        Returns
        -------
        torch.Tensor of shape ()
        """
        check_pair(q, k, "q and k")
        q, k = normalize(q), normalize(k)  # (N, D)
        n = q.shape[0]
        if queue is None:
            if n < 2:
                raise ValueError(
                    "InfoNCELoss without a queue uses the other keys of the batch "
                    f"as negatives and needs N >= 2; got N={n}."
                )
            logits = matmul32(q, k.T) / self.temperature  # (N, N)
            targets = torch.arange(n, device=q.device)  # (N,)
            return F.cross_entropy(logits, targets)
        if queue.ndim != 2 or queue.shape[1] != q.shape[1]:
            raise ValueError(
                f"queue must have shape (K, {q.shape[1]}); got {tuple(queue.shape)}."
            )
        negatives = normalize(queue.detach()).to(q.dtype)  # (K, D)
        pos = (q * k).sum(dim=1, keepdim=True)  # (N, 1)
        neg = matmul32(q, negatives.T)  # (N, K)
        logits = torch.cat([pos, neg], dim=1) / self.temperature  # (N, 1 + K)
        targets = torch.zeros(n, dtype=torch.long, device=q.device)  # (N,)
        return F.cross_entropy(logits, targets)


class MemoryQueue(nn.Module):
    """First-in first-out queue of L2-normalised keys (MoCo's dictionary).

    The queue starts as ``size`` random-normal keys, normalised, as in MoCo's
    reference implementation; :meth:`enqueue` overwrites the oldest entries.
    Keys are buffers, so the queue moves with ``.to(device)`` and is saved in
    the ``state_dict``.

    Parameters
    ----------
    dim : int
        Width ``D`` of a key.
    size : int
        Number ``K`` of keys held (>= 1).

    Attributes
    ----------
    keys : torch.Tensor of shape (size, dim)
        Storage, a buffer; row ``ptr`` is the oldest key.
    ptr : torch.Tensor of shape ()
        Index (long) of the next row to be overwritten.

    References
    ----------
    .. [1] K. He, H. Fan, Y. Wu, S. Xie and R. Girshick, "Momentum Contrast
       for Unsupervised Visual Representation Learning", CVPR 2020 (MoCo),
       Sec. 3.2 "Dictionary as a queue".

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.losses.contrastive import MemoryQueue
    >>> queue = MemoryQueue(dim=2, size=3)
    >>> queue.enqueue(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    >>> queue.enqueue(torch.tensor([[0.0, -1.0], [-3.0, 0.0]]))
    >>> queue.queue  # oldest first
    tensor([[ 0.,  1.],
            [ 0., -1.],
            [-1.,  0.]])
    """

    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        if int(size) < 1:
            raise ValueError(f"size must be >= 1, got {size!r}.")
        if int(dim) < 1:
            raise ValueError(f"dim must be >= 1, got {dim!r}.")
        self.dim, self.size = int(dim), int(size)
        keys = F.normalize(torch.randn(self.size, self.dim), dim=1)  # (K, D)
        self.register_buffer("keys", keys)
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @property
    def queue(self) -> torch.Tensor:
        """The ``(size, dim)`` keys, oldest first, as a detached copy.

        A copy, not a view: :meth:`enqueue` writes the storage in place, which
        would otherwise break the backward pass of a loss computed before it.
        """
        rows = torch.arange(self.size, device=self.keys.device)  # (K,)
        order = (self.ptr + rows) % self.size  # (K,) oldest to newest
        return self.keys.detach().index_select(0, order)  # (size, dim)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Normalise a batch of keys and push it, dropping the oldest entries.

        Equivalent to pushing the rows one by one, in order: a batch that
        does not divide ``size`` wraps around, and a batch larger than
        ``size`` leaves only its last ``size`` rows.

        Parameters
        ----------
        keys : torch.Tensor of shape (B, dim)
        """
        if keys.ndim != 2 or keys.shape[1] != self.dim:
            raise ValueError(
                f"keys must have shape (B, {self.dim}); got {tuple(keys.shape)}."
            )
        b = keys.shape[0]
        skipped = max(b - self.size, 0)  # rows overwritten within this batch
        new = F.normalize(keys[skipped:].detach().to(self.keys.dtype), dim=1)
        rows = torch.arange(skipped, b, device=self.keys.device)  # (min(B, K),)
        self.keys[(self.ptr + rows) % self.size] = new.to(self.keys.device)
        self.ptr.copy_((self.ptr + b) % self.size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, size={self.size}"
