"""Predictive learning of token sequences: next-token (GPT) and masked-token (BERT).

Both objectives train a :class:`~sk_replearn.nn.sequence.TokenEncoder` to
predict tokens of the sequence itself, with a cross-entropy over the
vocabulary whose output layer is tied to the token embedding (Press and Wolf
2017):

- :class:`GPTObjective` (Radford et al. 2018): a causal encoder reads
  ``[CLS] t_1 ... t_n`` and predicts ``t_1 ... t_n [SEP]``, each token from
  the ones before it;
- :class:`BERTObjective` (Devlin et al. 2019): 15% of the tokens are chosen
  (:func:`bert_masking`); of those 80% become ``[MASK]``, 10% a random
  token and 10% stay; a bidirectional encoder predicts the chosen tokens.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .._seeding import keyed_uniform
from ..nn._checks import check_fraction
from ..nn.sequence import TokenEncoder
from ..nn.surgery import TransferEncoder
from ..tokens import MASK, N_SPECIAL, PAD
from .base import Objective

__all__ = ["BERTObjective", "GPTObjective", "bert_masking", "content_noise"]


def bert_masking(
    ids: torch.Tensor,
    mask_ratio: float,
    vocab_size: int,
    generator: torch.Generator | None = None,
    corrupt: bool = True,
    noise: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose tokens to predict and corrupt them, as BERT's pre-training does.

    In each sequence ``max(1, round(mask_ratio * n))`` of its ``n`` text
    tokens are chosen at random (special tokens and padding never are; a
    sequence without text tokens has none chosen). With ``corrupt=True``,
    80% of the chosen become ``[MASK]``, 10% a random text token and 10%
    stay as they are; with ``corrupt=False`` all become ``[MASK]``.

    Parameters
    ----------
    ids : torch.Tensor of shape (B, T), int64
    mask_ratio : float
        Fraction of the text tokens chosen, in (0, 1).
    vocab_size : int
        Number of ids; random replacements are drawn from the text tokens.
    generator : torch.Generator or None, default=None
        A CPU generator for the draws (None: torch's global one, on the
        device of ``ids``).
    corrupt : bool, default=True
        The 80/10/10 corruption (training) or ``[MASK]`` only (scoring).
    noise : torch.Tensor of shape (B, T) or None, default=None
        Uniform draws in [0, 1) that choose the tokens (the lowest of each
        sequence's), instead of drawing them (see :func:`content_noise`).

    Returns
    -------
    inputs : torch.Tensor of shape (B, T)
        ``ids`` with the chosen tokens corrupted.
    targets : torch.Tensor of shape (B, T)
        The original ids at the chosen positions, ``PAD`` elsewhere.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn.sequence import TokenEncoder
    >>> from sk_replearn.objectives.sequence import bert_masking
    >>> ids = torch.tensor([[2, 5, 6, 7, 8, 3], [2, 3, 0, 0, 0, 0]])
    >>> g = torch.Generator().manual_seed(0)
    >>> inputs, targets = bert_masking(ids, 0.5, 9, g, corrupt=False)
    >>> (inputs == 4).sum(dim=1).tolist(), (targets != 0).sum(dim=1).tolist()
    ([2, 0], [2, 0])
    """

    def rand(*shape):
        if generator is None:
            return torch.rand(*shape, device=ids.device)
        return torch.rand(*shape, generator=generator).to(ids.device)

    # 1 or more would choose special tokens
    check_fraction("mask_ratio", mask_ratio, "the fraction of text tokens chosen")
    text = ids >= N_SPECIAL  # (B, T)
    n_text = text.sum(dim=1)  # (B,)
    k = torch.where(
        n_text > 0, (n_text * mask_ratio).round().clamp_min(1), torch.zeros_like(n_text)
    )
    draws = rand(*ids.shape) if noise is None else noise.to(ids.device)
    scores = draws.masked_fill(~text, 2.0)  # (B, T); non-text last
    rank = scores.argsort(dim=1).argsort(dim=1)  # (B, T): each token's rank
    chosen = rank < k[:, None]
    targets = ids.masked_fill(~chosen, PAD)
    if not corrupt:
        return ids.masked_fill(chosen, MASK), targets
    u = rand(*ids.shape)
    inputs = ids.masked_fill(chosen & (u < 0.8), MASK)
    swap = chosen & (u >= 0.8) & (u < 0.9)
    random_ids = (rand(*ids.shape) * (vocab_size - N_SPECIAL)).long() + N_SPECIAL
    return torch.where(swap, random_ids.clamp_max(vocab_size - 1), inputs), targets


def content_noise(ids: torch.Tensor, seed: int) -> torch.Tensor:
    """Uniform draws ``(B, T)`` that depend on each sequence alone.

    Row ``i`` is drawn from a generator seeded by ``seed`` and the row's
    tokens (its padding left out), so a sequence gets the same draws
    whatever else is in its batch, in whatever order, however padded:
    what makes :meth:`BERTObjective.masked_accuracy` a function of the
    sequence.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.objectives.sequence import content_noise
    >>> a = content_noise(torch.tensor([[2, 7, 8, 3]]), 0)
    >>> b = content_noise(torch.tensor([[2, 9, 3, 0, 0], [2, 7, 8, 3, 0]]), 0)
    >>> torch.equal(a[0], b[1, :4])
    True
    """
    rows = [row[row != PAD].to(torch.int64).numpy() for row in ids.cpu()]
    keys = [row.tobytes() for row in rows]
    return keyed_uniform(keys, seed, [len(row) for row in rows], ids.shape[1])


class _SequenceObjective(Objective):
    """What GPT and BERT share: the encoder, tied logits, encode, transfer."""

    causal = False
    standardizes_input = False  # token ids

    def __init__(
        self,
        vocab_size: int,
        max_positions: int,
        *,
        embed_dim: int = 128,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.1,
        pooling: str = "mean",
        conv_kernel_size: int | None = None,
    ) -> None:
        super().__init__(None)
        self.vocab_size = int(vocab_size)
        self.encoder = TokenEncoder(
            vocab_size,
            max_positions,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            dropout=dropout,
            causal=self.causal,
            pooling=pooling,
            conv_kernel_size=conv_kernel_size,
        )
        self.output_bias = nn.Parameter(torch.zeros(vocab_size))

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores over the vocabulary, the output layer tied to the embedding."""
        return F.linear(hidden, self.encoder.token_embed.weight, self.output_bias)

    def encode(self, ids: torch.Tensor) -> torch.Tensor:
        """The representation ``(B, embed_dim)`` of a padded batch of ids."""
        return self.encoder(ids)

    @property
    def out_features(self) -> int:
        """Width of :meth:`encode`'s output."""
        return self.encoder.out_features

    def transfer_encoder(self, input_shape=None) -> nn.Module:
        """A copy of the encoder, ids ``(B, T)`` to pooled ``(B, embed_dim)``."""
        return TransferEncoder(copy.deepcopy(self.encoder), None, self.out_features)


class GPTObjective(_SequenceObjective):
    """Next-token prediction with a causal transformer (Radford et al. 2018).

    Parameters
    ----------
    vocab_size : int
        Number of token ids, special tokens included.
    max_positions : int
        Longest sequence, ``[CLS]`` and ``[SEP]`` included.
    embed_dim, depth, num_heads, mlp_ratio, dropout, pooling, conv_kernel_size
        Of the :class:`~sk_replearn.nn.sequence.TokenEncoder`.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.objectives.sequence import GPTObjective
    >>> obj = GPTObjective(10, 8, embed_dim=8, depth=1, num_heads=2)
    >>> ids = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]])
    >>> logits = obj(ids)
    >>> logits.shape, obj.loss(logits, ids).shape
    (torch.Size([2, 3, 10]), torch.Size([]))
    """

    causal = True

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``(B, T - 1, V)`` at every position but the last."""
        return self.logits(self.encoder.forward_tokens(ids[:, :-1]))

    def loss(self, logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the next tokens (padding left out)."""
        targets = ids[:, 1:]  # (B, T - 1)
        return F.cross_entropy(
            logits.flatten(0, 1).float(), targets.flatten(), ignore_index=PAD
        )

    @torch.no_grad()
    def token_nll(self, ids: torch.Tensor) -> torch.Tensor:
        """Per sequence: summed negative log-likelihood and token count, ``(B, 2)``.

        The tokens are ``t_1 ... t_n [SEP]``, each predicted from the ones
        before it.
        """
        targets = ids[:, 1:]
        nll = F.cross_entropy(
            self(ids).float().transpose(1, 2),
            targets,
            ignore_index=PAD,
            reduction="none",
        )  # (B, T - 1)
        real = (targets != PAD).to(nll.dtype)
        return torch.stack([(nll * real).sum(1), real.sum(1)], dim=1)

    @torch.no_grad()
    def next_logits(self, ids: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, V)`` of the token after each (unpadded) sequence."""
        return self.logits(self.encoder.forward_tokens(ids)[:, -1]).float()


class BERTObjective(_SequenceObjective):
    """Masked-token prediction with a bidirectional transformer (Devlin et al. 2019).

    Parameters
    ----------
    vocab_size : int
        Number of token ids, special tokens included.
    max_positions : int
        Longest sequence, ``[CLS]`` and ``[SEP]`` included.
    mask_ratio : float, default=0.15
        Fraction of the text tokens chosen for prediction (see
        :func:`bert_masking`).
    embed_dim, depth, num_heads, mlp_ratio, dropout, pooling, conv_kernel_size
        Of the :class:`~sk_replearn.nn.sequence.TokenEncoder`.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.objectives.sequence import BERTObjective
    >>> obj = BERTObjective(10, 8, embed_dim=8, depth=1, num_heads=2)
    >>> ids = torch.tensor([[2, 5, 6, 7, 3], [2, 7, 3, 0, 0]])
    >>> logits, targets = obj(ids)
    >>> logits.shape[1], obj.loss((logits, targets), ids).shape
    (10, torch.Size([]))
    """

    def __init__(
        self, vocab_size: int, max_positions: int, *, mask_ratio: float = 0.15, **kw
    ) -> None:
        super().__init__(vocab_size, max_positions, **kw)
        self.mask_ratio = check_fraction(
            "mask_ratio", mask_ratio, "the fraction of text tokens chosen"
        )
        d = self.encoder.out_features
        # BERT's prediction head: a dense layer, GELU and LayerNorm before
        # the tied output layer.
        self.transform = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d))

    def predict_masked(
        self, inputs: torch.Tensor, chosen: torch.Tensor
    ) -> torch.Tensor:
        """Logits ``(K, V)`` at the ``K`` chosen positions of corrupted inputs."""
        hidden = self.encoder.forward_tokens(inputs)[chosen]  # (K, D)
        return self.logits(self.transform(hidden))

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Corrupt ``ids``; logits ``(K, V)`` and targets ``(K,)`` of the chosen."""
        inputs, targets = bert_masking(
            ids, self.mask_ratio, self.vocab_size, corrupt=self.training
        )
        chosen = targets != PAD  # (B, T)
        return self.predict_masked(inputs, chosen), targets[chosen]

    def loss(self, output, ids: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the chosen tokens (0 when none were chosen)."""
        logits, targets = output
        if targets.numel() == 0:  # a batch of empty strings: nothing to predict
            return logits.sum() * 0.0
        return F.cross_entropy(logits.float(), targets)

    @torch.no_grad()
    def masked_accuracy(self, ids: torch.Tensor, seed: int) -> torch.Tensor:
        """Per sequence: correct predictions and chosen tokens, ``(B, 2)``.

        The chosen tokens all become ``[MASK]``; which are chosen depends on
        ``seed`` and the sequence alone (:func:`content_noise`).
        """
        inputs, targets = bert_masking(
            ids,
            self.mask_ratio,
            self.vocab_size,
            corrupt=False,
            noise=content_noise(ids, seed),
        )
        chosen = targets != PAD
        correct = torch.zeros(ids.shape, dtype=torch.float32, device=ids.device)
        if chosen.any():
            hits = self.predict_masked(inputs, chosen).argmax(dim=1) == targets[chosen]
            correct[chosen] = hits.float()
        return torch.stack([correct.sum(1), chosen.sum(1).float()], dim=1)
