"""Padded storage of encoded sequences, and their batches.

:func:`pad_sequences` turns encoded sequences into ``[CLS] ids [SEP]`` rows
of one padded tensor, :class:`TokenDataset` holds them (with optional
targets), and :class:`TokenBatches` serves batches each cut to its longest
sequence, grouping sequences of similar length in training.
"""

from __future__ import annotations

import numpy as np
import torch

from .._warn import warn_user
from ..data import Batches, shuffled_order
from ._codec import CLS, PAD, SEP

#: Sequences per length-sorted pool, in batches (see :class:`TokenBatches`).
_POOL_BATCHES = 32


# -- padded storage and batches -------------------------------------------------
def pad_sequences(
    encoded: list[list[int]],
    max_length: int,
    owner: str,
    fix: str | None = None,
    *,
    continues: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``[CLS] ids [SEP]`` of each sequence, padded into one tensor.

    Sequences of more than ``max_length`` tokens keep their first
    ``max_length`` (one warning says how many were cut, and ``fix``, how to
    keep them whole: by default, raise ``max_length``). With ``continues``
    (a language model's input), a cut sequence keeps its next token in the
    place of ``[SEP]``: the text goes on past the cut, and a ``[SEP]`` there
    would teach the model an end the text does not have.

    Returns
    -------
    ids : torch.Tensor of shape (n, T), dtype int32
        ``T`` is the longest sequence plus 2 (2 when ``encoded`` is empty);
        padding is ``PAD``.
    lengths : torch.Tensor of shape (n,), dtype int64
        Tokens per sequence, ``[CLS]`` and ``[SEP]`` included.

    Examples
    --------
    >>> from sk_replearn.tokens import pad_sequences
    >>> ids, lengths = pad_sequences([[7, 8, 9], []], 3, "GPTTransformer")
    >>> ids.tolist(), lengths.tolist()
    ([[2, 7, 8, 9, 3], [2, 3, 0, 0, 0]], [5, 2])
    """
    n_cut = sum(len(s) > max_length for s in encoded)
    if n_cut:
        longest = max(len(s) for s in encoded)
        warn_user(
            f"{owner}: {n_cut} of {len(encoded)} sequences are longer than "
            f"max_length={max_length} tokens (the longest has {longest}); "
            f"they are cut to their first {_cut_to(max_length, continues)}. "
            f"{fix or 'Raise max_length to keep them whole.'}",
            UserWarning,
        )
    lengths = np.fromiter(
        (min(len(s), max_length) + 2 for s in encoded),
        dtype=np.int64,
        count=len(encoded),
    )
    width = int(lengths.max()) if len(encoded) else 2  # none: (0, 2)
    ids = np.full((len(encoded), width), PAD, dtype=np.int32)
    ids[:, 0] = CLS
    for i, s in enumerate(encoded):
        n = lengths[i] - 2
        ids[i, 1 : n + 1] = s[:n]
        ids[i, n + 1] = s[n] if continues and len(s) > n else SEP
    return torch.from_numpy(ids), torch.from_numpy(lengths)


def _cut_to(max_length: int, continues: bool) -> str:
    """What a cut sequence keeps, in :func:`pad_sequences`' warning."""
    if continues:
        return (
            f"{max_length + 1} tokens, the last in the place of [SEP] (the text "
            "goes on)"
        )
    return "max_length tokens"


class TokenDataset(torch.utils.data.Dataset):
    """Padded token ids of ``n`` sequences, with optional targets.

    Parameters
    ----------
    ids : torch.Tensor of shape (n, T), integer
        From :func:`pad_sequences`.
    lengths : torch.Tensor of shape (n,)
        Tokens per sequence (the rest of each row is padding).
    y : torch.Tensor or None, default=None
        Targets ``(n, ...)``, or None for unlabelled data.

    Examples
    --------
    >>> from sk_replearn.tokens import TokenDataset, pad_sequences
    >>> data = TokenDataset(*pad_sequences([[5], [6, 7, 8]], 10, "GPT"))
    >>> len(data), data[0][0].tolist()
    (2, [2, 5, 3])
    """

    def __init__(
        self, ids: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor | None = None
    ) -> None:
        self.ids, self.lengths, self.y = ids, lengths, y

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i):
        ids = self.ids[i, : int(self.lengths[i])].long()
        return ids, (torch.zeros(()) if self.y is None else self.y[i])

    def subset(self, idx) -> TokenDataset:
        """The sequences (and targets) at the indices ``idx``."""
        y = None if self.y is None else self.y[idx]
        return TokenDataset(self.ids[idx], self.lengths[idx], y)

    def take(self, idx) -> torch.Tensor:
        """Ids of the sequences ``idx``, cut to the longest: ``(B, T_b)`` int64."""
        width = int(self.lengths[idx].max())
        return self.ids[idx, :width].long()


class TokenBatches:
    """``(ids, y)`` batches of a :class:`TokenDataset`, each cut to its longest.

    In training the order is reshuffled each epoch from torch's global
    generator (which the estimator seeds); the shuffled order is cut into
    pools of 32 batches, each pool sorted by length, and the batches are
    served in a random order, so a batch holds sequences of similar length
    (little padding) while every epoch still mixes them. As in
    :class:`~sk_replearn.data.Batches`, a last training batch of one is
    dropped and a last evaluation batch of one joins the one before it.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.tokens import TokenBatches, TokenDataset, pad_sequences
    >>> data = TokenDataset(*pad_sequences([[5], [6, 7, 8], [9]], 10, "GPT"))
    >>> [xb.shape for xb, _ in TokenBatches(data, 2, training=False)]
    [torch.Size([3, 5])]
    """

    def __init__(self, dataset: TokenDataset, batch_size: int, training: bool) -> None:
        self.dataset = dataset
        n = len(dataset)
        self.batch_size = Batches.size(n, batch_size)
        self.training = training
        self._count = Batches.count(n, self.batch_size)

    def __len__(self) -> int:
        return self._count

    def _batch(self, idx):
        y = self.dataset.y
        return self.dataset.take(idx), None if y is None else y[idx]

    def training_batches(self, generator=None) -> list[torch.Tensor]:
        """One epoch's batches of indices, length-grouped, in random order."""
        n, size = len(self.dataset), self.batch_size
        # The sample a last batch of one leaves out is drawn at random
        # before the pools are sorted by length (after, it was always the
        # longest of the last pool, never trained on).
        order = shuffled_order(n, generator)[: min(n, self._count * size)]
        n = len(order)
        pool = size * _POOL_BATCHES
        lengths = self.dataset.lengths
        for start in range(0, n, pool):
            chunk = order[start : start + pool]
            order[start : start + pool] = chunk[
                torch.sort(lengths[chunk], stable=True).indices
            ]
        n_batches = self._count
        batches = [order[k * size : (k + 1) * size] for k in range(n_batches)]
        return [batches[k] for k in torch.randperm(n_batches, generator=generator)]

    def __iter__(self):
        if not self.training:
            for sl in Batches.eval_slices(len(self.dataset), self.batch_size):
                yield self._batch(torch.arange(sl.start, sl.stop))
            return
        for idx in self.training_batches():
            yield self._batch(idx)
