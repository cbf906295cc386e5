"""Batches: a training epoch's shuffled order (:func:`shuffled_order`),
the batches of one tensor (:class:`Batches`), their sampler for a
DataLoader (:class:`EvalBatchSampler`), and the row slices of a batched
transform (:func:`batch_slices`, :func:`eval_chunks`)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch


def shuffled_order(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random permutation of ``range(n)``, 4 bytes an index where it fits.

    :func:`torch.randperm` of ``n``, drawn from ``generator`` (torch's
    global generator when None), as int32 when ``n < 2**31``: the same
    permutation as the default int64 one, for the same generator state, at
    half the memory. An epoch's order is the one allocation of a fit that
    grows with ``n`` beyond the data (8 bytes a sample as int64; a sample
    of MNIST-1D is 160). Tensors and arrays take int32 indices as they take
    int64 ones.

    Parameters
    ----------
    n : int
        Number of indices.
    generator : torch.Generator or None, default=None
        Source of randomness.

    Returns
    -------
    torch.Tensor of shape (n,)
        int32 when ``n < 2**31``, else int64.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.data import shuffled_order
    >>> order = shuffled_order(5, torch.Generator().manual_seed(0))
    >>> order.dtype, sorted(order.tolist())
    (torch.int32, [0, 1, 2, 3, 4])
    >>> same = torch.randperm(5, generator=torch.Generator().manual_seed(0))
    >>> torch.equal(order.long(), same)
    True
    """
    dtype = torch.int32 if n < 2**31 else torch.int64
    return torch.randperm(n, generator=generator, dtype=dtype)


class Batches:
    """Iterate over ``(X[idx], y[idx])`` batches sliced from one tensor.

    Slicing a whole batch at once costs one gather, where a DataLoader over
    a map-style dataset costs one ``__getitem__`` and a collate per sample;
    on small models that difference dominates the epoch time. In training
    the order is reshuffled each epoch from torch's global generator (which
    the estimator seeds), and a last batch of one sample is dropped so that
    batch normalisation never sees a batch of one. In evaluation no sample
    is dropped: a last batch of one joins the batch before it, so that
    losses that compare samples within a batch (InfoNCE, Barlow Twins) are
    defined on every batch. ``y`` is None for unlabelled data.
    """

    def __init__(
        self,
        X: torch.Tensor,
        batch_size: int,
        training: bool,
        y: torch.Tensor | None = None,
    ) -> None:
        self.X, self.y = X, y
        self.batch_size = self.size(len(X), batch_size)
        self.training = training

    def __len__(self) -> int:
        return self.count(len(self.X), self.batch_size)

    @staticmethod
    def size(n: int, batch_size: int) -> int:
        """Rows per batch of ``n`` samples: ``batch_size``, at least 1; -1 for
        one batch of every row (of at least one, for empty data)."""
        return max(n, 1) if batch_size == -1 else max(int(batch_size), 1)

    @staticmethod
    def count(n: int, batch_size: int) -> int:
        """Number of batches of ``n`` samples (a last batch of one is not one)."""
        n_batches = math.ceil(n / batch_size)
        if n > 1 and n % batch_size == 1:
            n_batches -= 1  # dropped in training, merged in evaluation
        return max(n_batches, 1) if n else 0

    @classmethod
    def eval_slices(cls, n: int, batch_size: int):
        """Slices of ``range(n)`` in order, a last batch of one merged."""
        n_batches = cls.count(n, batch_size)
        for k in range(n_batches):
            stop = n if k == n_batches - 1 else (k + 1) * batch_size
            yield slice(k * batch_size, stop)

    def _take(self, idx):
        return self.X[idx], None if self.y is None else self.y[idx]

    def __iter__(self):
        n, size = len(self.X), self.batch_size
        if self.training:
            order = shuffled_order(n)
            for k in range(len(self)):
                yield self._take(order[k * size : (k + 1) * size])
            return
        for sl in self.eval_slices(n, size):
            yield self._take(sl)


class EvalBatchSampler(torch.utils.data.Sampler):
    """Index batches in order for evaluation, a last batch of one merged.

    The :class:`~torch.utils.data.DataLoader` counterpart of :class:`Batches`
    in evaluation: consecutive batches of ``batch_size`` indices, except that
    a last batch of one sample joins the batch before it.
    """

    def __init__(self, n: int, batch_size: int) -> None:
        self.n, self.batch_size = int(n), max(int(batch_size), 1)

    def __len__(self) -> int:
        return Batches.count(self.n, self.batch_size)

    def __iter__(self):
        for sl in Batches.eval_slices(self.n, self.batch_size):
            yield list(range(sl.start, sl.stop))


def eval_chunks(
    X, batch_size: int, num_workers: int = 0
) -> Iterator[tuple[slice, torch.Tensor]]:
    """``(rows, batch)`` pairs covering X in order: an array or a Dataset
    (read by ``num_workers`` worker processes; an array is sliced here)."""
    if isinstance(X, torch.utils.data.Dataset):
        start = 0
        loader = torch.utils.data.DataLoader(
            X, batch_size=batch_size, num_workers=num_workers
        )
        for xb, _ in loader:
            yield slice(start, start + len(xb)), xb
            start += len(xb)
        return
    for sl in batch_slices(X.shape[0], batch_size):
        chunk = X[sl]
        if not chunk.flags.writeable:  # torch warns on read-only memory
            chunk = chunk.copy()
        yield sl, torch.from_numpy(chunk)


def batch_slices(n: int, batch_size: int | None) -> Iterator[slice]:
    """Yield consecutive slices covering ``range(n)`` in chunks.

    Parameters
    ----------
    n : int
        Number of rows.
    batch_size : int or None
        Rows per chunk; ``None`` means one chunk.

    Yields
    ------
    slice
        ``slice(start, stop)`` of at most ``batch_size`` rows.

    Examples
    --------
    >>> from sk_replearn.data import batch_slices
    >>> list(batch_slices(5, 2))
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    step = n if batch_size is None else max(int(batch_size), 1)
    for start in range(0, n, max(step, 1)):
        yield slice(start, min(start + step, n))
