"""The transformer over token sequences shared by GPT and BERT.

:class:`TokenEncoder` embeds token ids, adds learned positions and runs the
package's one transformer block
(:class:`~sk_replearn.nn.transformer.TransformerBlock`, shared with the
Vision Transformer) with a padding mask and, for a language model, a causal
mask. Its :meth:`TokenEncoder.forward` pools the hidden states to one vector
per sequence, so it is the body of a
:class:`~sk_replearn.nn.surgery.TransferEncoder` that the fine-tuners train.

References
----------
.. [1] A. Radford, K. Narasimhan, T. Salimans and I. Sutskever. "Improving
   Language Understanding by Generative Pre-Training." 2018.
.. [2] J. Devlin, M.-W. Chang, K. Lee and K. Toutanova. "BERT: Pre-training
   of Deep Bidirectional Transformers for Language Understanding." NAACL 2019.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..tokens import PAD
from ._block import init_transformer, transformer_blocks
from ._checks import check_dropout, check_int

__all__ = [
    "POOLINGS",
    "ConvMixer",
    "ConvTransformerBlock",
    "TokenEncoder",
    "pool_tokens",
]

#: How hidden states become one vector per sequence.
POOLINGS = ("mean", "cls", "last")


def pool_tokens(hidden: torch.Tensor, ids: torch.Tensor, pooling: str) -> torch.Tensor:
    """One vector per sequence from its hidden states.

    Parameters
    ----------
    hidden : torch.Tensor of shape (B, T, D)
    ids : torch.Tensor of shape (B, T)
        The token ids; ``PAD`` marks padding.
    pooling : {"mean", "cls", "last"}
        The mean over the sequence's tokens (padding left out), the first
        token (``[CLS]``) or the last one (``[SEP]``, which a causal model
        reaches after reading the whole sequence).

    Returns
    -------
    torch.Tensor of shape (B, D)

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn.sequence import pool_tokens
    >>> h = torch.arange(6.0).reshape(1, 3, 2)
    >>> pool_tokens(h, torch.tensor([[2, 3, 0]]), "mean")
    tensor([[1., 2.]])
    >>> pool_tokens(h, torch.tensor([[2, 3, 0]]), "last")
    tensor([[2., 3.]])
    """
    if pooling == "cls":
        return hidden[:, 0]
    real = ids != PAD  # (B, T)
    if pooling == "last":
        last = real.sum(dim=1) - 1  # (B,)
        return hidden[torch.arange(len(hidden), device=hidden.device), last]
    real = real.unsqueeze(-1)  # (B, T, 1); padding never counts, even if NaN
    total = hidden.masked_fill(~real, 0.0).sum(dim=1)  # (B, D)
    return total / real.sum(dim=1).clamp_min(1).to(hidden.dtype)


class ConvMixer(nn.Module):
    """Residual convolution over neighbouring tokens, before a transformer block.

    ``x + drop(W gelu(dwconv(LN(x))))``: a pre-norm depthwise convolution
    of width ``kernel_size`` along the sequence, GELU and a pointwise
    linear layer, as the convolution module of Conformer (Gulati et al.
    2020) and, in spirit, ConvBERT's mixing of local spans (Jiang et al.
    2020). Attention has to learn from data that neighbours matter; the
    convolution has it built in, which helps with few training sequences.

    Padding is set to zero before the convolution, so a sequence's output
    does not depend on how much padding follows it; with ``causal=True``
    the convolution is padded on the left only, so a token sees only itself
    and the ``kernel_size - 1`` tokens before it.

    Parameters
    ----------
    embed_dim : int
        Token width ``D``.
    kernel_size : int
        Tokens the convolution reads at once.
    dropout : float, default=0.0
        Dropout of the residual branch.
    causal : bool, default=False
        Read only the current and earlier tokens.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn.sequence import ConvMixer
    >>> mix = ConvMixer(8, 3, causal=True)
    >>> mix(torch.randn(2, 5, 8), torch.zeros(2, 5, dtype=torch.bool)).shape
    torch.Size([2, 5, 8])
    """

    def __init__(
        self, embed_dim: int, kernel_size: int, dropout: float = 0.0, causal=False
    ) -> None:
        super().__init__()
        k = check_int("conv_kernel_size", kernel_size)
        # Causal: all k - 1 zeros on the left; otherwise split as 'same'.
        self.pad = (k - 1, 0) if causal else ((k - 1) // 2, k // 2)
        self.norm = nn.LayerNorm(embed_dim)
        self.conv = nn.Conv1d(embed_dim, embed_dim, k, groups=embed_dim)
        self.act = nn.GELU()
        self.proj = nn.Linear(embed_dim, embed_dim)
        self.drop = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, padding: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mix ``x`` ``(B, T, D)``; ``padding`` ``(B, T)`` is True at padding."""
        h = self.norm(x)  # (B, T, D)
        if padding is not None:
            h = h.masked_fill(padding.unsqueeze(-1), 0.0)
        h = F.pad(h.transpose(1, 2), self.pad)  # (B, D, T + k - 1)
        h = self.act(self.conv(h)).transpose(1, 2)  # (B, T, D)
        return x + self.drop(self.proj(h))


class ConvTransformerBlock(nn.Module):
    """A :class:`~sk_replearn.nn.sequence.ConvMixer`, then the transformer block.

    Called as the block itself, ``block(x, src_mask=...,
    src_key_padding_mask=...)``, so that one entry of the ``blocks`` of a
    :class:`TokenEncoder` is one unit to freeze, re-draw or give a
    learning rate when fine-tuning.

    Parameters
    ----------
    mixer : ConvMixer
    block : torch.nn.TransformerEncoderLayer
        Called with ``src_mask`` and ``src_key_padding_mask``.
    """

    def __init__(self, mixer: ConvMixer, block: nn.Module) -> None:
        super().__init__()
        self.mixer, self.block = mixer, block

    def forward(self, x, src_mask=None, src_key_padding_mask=None):
        """Mixer, then block: ``(B, T, D)`` to ``(B, T, D)``."""
        x = self.mixer(x, src_key_padding_mask)
        return self.block(
            x, src_mask=src_mask, src_key_padding_mask=src_key_padding_mask
        )


class TokenEncoder(nn.Module):
    """Transformer encoder of token ids (GPT's when causal, BERT's if not).

    Token embeddings plus learned position embeddings, dropout, pre-norm
    transformer blocks that attend to real tokens only (padding is masked
    out; with ``causal=True`` each token sees only itself and earlier
    ones), and a final LayerNorm. Pre-norm is GPT-2's layout; the GPT and
    BERT papers normalise after each residual addition (post-norm), which
    needs a long learning-rate warm-up to train stably (Xiong et al., "On
    Layer Normalization in the Transformer Architecture", ICML 2020).

    Parameters
    ----------
    vocab_size : int
        Number of token ids.
    max_positions : int
        Longest sequence, special tokens included.
    embed_dim : int, default=128
        Token width; a multiple of ``num_heads``.
    depth : int, default=4
        Transformer blocks.
    num_heads : int, default=4
        Attention heads per block.
    mlp_ratio : float, default=4.0
        Hidden width of each block's MLP, relative to ``embed_dim``.
    dropout : float, default=0.1
        Dropout of the embeddings and inside the blocks.
    causal : bool, default=False
        Mask attention to later tokens (a language model).
    pooling : {"mean", "cls", "last"}, default="mean"
        Output of :meth:`forward` (see :func:`pool_tokens`).
    conv_kernel_size : int or None, default=None
        Width of a :class:`ConvMixer` before each transformer block (causal
        when ``causal=True``); None for none.

    Attributes
    ----------
    out_features : int
        ``embed_dim``.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn.sequence import TokenEncoder
    >>> enc = TokenEncoder(vocab_size=20, max_positions=16, embed_dim=8,
    ...                    depth=1, num_heads=2, causal=True)
    >>> ids = torch.tensor([[2, 7, 9, 3], [2, 5, 3, 0]])
    >>> enc.forward_tokens(ids).shape, enc(ids).shape
    (torch.Size([2, 4, 8]), torch.Size([2, 8]))
    """

    def __init__(
        self,
        vocab_size: int,
        max_positions: int,
        embed_dim: int = 128,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.1,
        causal: bool = False,
        pooling: str = "mean",
        conv_kernel_size: int | None = None,
    ) -> None:
        super().__init__()
        check_int("num_heads", num_heads)
        if check_int("embed_dim", embed_dim) % num_heads:
            raise ValueError(
                f"embed_dim={embed_dim} must be a multiple of num_heads={num_heads}."
            )
        if pooling not in POOLINGS:
            raise ValueError(f"pooling={pooling!r} must be one of {POOLINGS}.")
        self.causal, self.pooling = bool(causal), pooling
        self.out_features = embed_dim
        self.token_embed = nn.Embedding(check_int("vocab_size", vocab_size), embed_dim)
        self.pos_embed = nn.Parameter(
            torch.zeros(1, check_int("max_positions", max_positions), embed_dim)
        )
        self.drop = nn.Dropout(check_dropout(dropout))
        self.blocks = transformer_blocks(
            embed_dim, depth, num_heads, mlp_ratio, dropout
        )
        if conv_kernel_size is not None:
            self.blocks = nn.ModuleList(
                ConvTransformerBlock(
                    ConvMixer(embed_dim, conv_kernel_size, dropout, causal), block
                )
                for block in self.blocks
            )
        self.norm = nn.LayerNorm(embed_dim)
        init_transformer(self)
        # GPT-2 / BERT: embeddings drawn from N(0, 0.02^2).
        nn.init.normal_(self.token_embed.weight, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.02)

    def forward_tokens(
        self, ids: torch.Tensor, n_blocks: int | None = None
    ) -> torch.Tensor:
        """Hidden states ``(B, T, D)`` of a padded batch of ids ``(B, T)``.

        ``n_blocks`` runs only the first transformer blocks, and no final
        norm (the states of an inner layer); None runs them all, then the
        norm.
        """
        T = ids.shape[1]
        x = self.drop(self.token_embed(ids) + self.pos_embed[:, :T])  # (B, T, D)
        padding = ids == PAD  # (B, T): True where attention must not look
        causal = None
        if self.causal:
            causal = torch.ones(T, T, dtype=torch.bool, device=ids.device).triu(1)
        for block in self.blocks[:n_blocks]:
            x = block(x, src_mask=causal, src_key_padding_mask=padding)
        return self.norm(x) if n_blocks is None else x

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """One vector ``(B, D)`` per sequence, pooled as ``pooling`` says."""
        return pool_tokens(self.forward_tokens(ids), ids, self.pooling)
