"""Features from any block of an encoder, one vector per sample.

The blocks are those of :func:`~sk_replearn.nn.surgery.encoder_blocks`,
the layers the fine-tuners freeze and re-initialise, so that block ``k``
means the same thing to ``transform_layer`` and to ``freeze_layers``.
:func:`block_features` runs a :class:`~sk_replearn.nn.surgery.TransferEncoder`
through its first blocks only and reduces what the last of them returns to
a vector: a ConvNet's feature map ``(B, C, *spatial)`` by global average
pooling, as linear probes of intermediate layers do (Zhang et al. 2016,
Kolesnikov et al. 2019); the tokens of a transformer as its ``pooling``
says. The last block is the encoder's own output.

References
----------
.. [1] R. Zhang, P. Isola and A. A. Efros. "Colorful Image Colorization."
   ECCV 2016.
.. [2] A. Kolesnikov, X. Zhai and L. Beyer. "Revisiting Self-Supervised
   Visual Representation Learning." CVPR 2019.
"""

from __future__ import annotations

import torch
from torch import nn

from ._user_modules import probe_zeros
from .conv import CNNEncoder, ResNetEncoder
from .heads import Bottleneck
from .mlp import MLPEncoder
from .sequence import TokenEncoder, pool_tokens
from .surgery import Block, TransferEncoder, _body_blocks, encoder_blocks
from .transformer import ViTEncoder

__all__ = ["LayerEncoder", "block_features", "block_widths", "cut_encoder"]

#: Bodies whose blocks are consecutive layers of one ``nn.Sequential``.
_SEQUENTIAL = (MLPEncoder, CNNEncoder, ResNetEncoder)


def _pool_map(h: torch.Tensor) -> torch.Tensor:
    """Global average pooling of ``(B, C, *spatial)`` to ``(B, C)``."""
    return h.flatten(2).mean(dim=2) if h.dim() > 2 else h


def _tapped(body: nn.Module, h: torch.Tensor, block: Block) -> torch.Tensor:
    # A module of unknown structure: what the block's last sub-module
    # returns when the whole body runs (read by a forward hook).
    if not block.modules:
        raise ValueError(
            f"block of {type(body).__name__} holds loose parameters only; "
            "it returns nothing that could be read as features."
        )
    seen: list[torch.Tensor] = []
    handle = block.modules[-1].register_forward_hook(
        lambda module, args, out: seen.append(out)
    )
    try:
        body(h)
    finally:
        handle.remove()
    if not seen or not isinstance(seen[-1], torch.Tensor):
        raise ValueError(
            f"{type(block.modules[-1]).__name__} in {type(body).__name__} "
            "returned no tensor in the forward pass; choose another layer."
        )
    return _pool_map(seen[-1])


def _body_features(body: nn.Module, h: torch.Tensor, k: int) -> torch.Tensor:
    """Pooled output ``(B, width)`` of block ``k`` of ``body`` on its input ``h``."""
    blocks = _body_blocks(body)
    if k == len(blocks) - 1:
        return body(h)  # the body's own output
    if isinstance(body, Bottleneck):
        return _body_features(body.encoder, h, k)  # k < the linear layer
    if isinstance(body, _SEQUENTIAL):
        if isinstance(body, MLPEncoder):
            h = h.flatten(1)
        for block in blocks[: k + 1]:
            for module in block.modules:
                h = module(h)
        return _pool_map(h)  # (B, C) of a feature map (B, C, *spatial)
    if isinstance(body, ViTEncoder):
        # Block 0 is the patch embedding (with the class token).
        return body.forward_pooled(body.embed(h), n_blocks=k)
    if isinstance(body, TokenEncoder):
        hidden = body.forward_tokens(h, n_blocks=k)  # (B, T, D); h holds ids
        return pool_tokens(hidden, h, body.pooling)
    return _tapped(body, h, blocks[k])


def block_features(
    encoder: TransferEncoder, x: torch.Tensor, block: int
) -> torch.Tensor:
    """The output of one block of ``encoder``, one vector per sample.

    Only the blocks up to ``block`` run (a module of another type than the
    package's encoders runs whole, its block's output read by a hook), so
    the activations of one layer at a time are held.

    Parameters
    ----------
    encoder : TransferEncoder
        Its blocks are :func:`~sk_replearn.nn.surgery.encoder_blocks`'.
    x : torch.Tensor of shape (B, *input_shape)
        A raw batch, as ``encoder`` takes it (padded token ids ``(B, T)``
        for a sequence model).
    block : int
        Index of the block, from 0 to ``len(encoder_blocks(encoder)) - 1``.

    Returns
    -------
    torch.Tensor of shape (B, block_widths(encoder)[block])
        The last block gives ``encoder(x)`` exactly. An MLP block gives its
        activations; a ConvNet block its feature map averaged over space
        (global average pooling); a transformer block its tokens pooled as
        the encoder's ``pooling`` says (a ViT's block 0, the patch
        embedding, gives the embedded patches with their positions, the
        class token still untouched by attention).

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn import ResNetEncoder
    >>> from sk_replearn.nn.layers import block_features, block_widths
    >>> from sk_replearn.nn.surgery import TransferEncoder
    >>> enc = TransferEncoder(ResNetEncoder((1, 40)), (1, 40), 128).eval()
    >>> block_widths(enc)
    [32, 32, 64, 128]
    >>> block_features(enc, torch.randn(5, 1, 40), 2).shape
    torch.Size([5, 64])
    """
    n = len(encoder_blocks(encoder))
    if not 0 <= block < n:
        raise IndexError(f"block={block} is not one of the encoder's {n} blocks.")
    if block == n - 1:
        return encoder(x)
    if encoder.input_shape is not None:
        x = x.reshape(x.shape[0], *encoder.input_shape)
    h = encoder.prep(x)
    if block >= len(_body_blocks(encoder.body)):  # the head, below loose weights
        return encoder.head(encoder.body(h))
    return _body_features(encoder.body, h, block)


def _body_widths(body: nn.Module) -> list[int] | None:
    """Widths of the pooled block outputs of a known body; None if unknown."""
    if isinstance(body, Bottleneck):
        inner = _body_widths(body.encoder)
        return None if inner is None else [*inner, body.out_features]
    blocks = _body_blocks(body)
    if isinstance(body, ViTEncoder):  # block 0 is the patch embedding
        return [body.pooled_width(k) for k in range(len(blocks) - 1)] + [
            body.out_features
        ]
    if isinstance(body, TokenEncoder):
        return [body.out_features] * len(blocks)
    if isinstance(body, MLPEncoder):
        widths = [b.modules[0].out_features for b in blocks]
    elif isinstance(body, CNNEncoder):
        widths = [b.modules[0].out_channels for b in blocks]
    elif isinstance(body, ResNetEncoder):  # the stem's convolution, then blocks
        widths = [blocks[0].modules[0].out_channels]
        widths += [b.modules[0].conv2.out_channels for b in blocks[1:]]
    else:
        return None
    widths[-1] = body.out_features  # the encoder's own pooling
    return widths


def block_widths(encoder: TransferEncoder) -> list[int]:
    """Width of the features of every block of ``encoder``.

    The width of :func:`block_features`' output at each block, read off the
    layers for the package's encoders; for any other module, measured by one
    pass of a zero batch of two samples (in eval mode).

    Parameters
    ----------
    encoder : TransferEncoder

    Returns
    -------
    list of int
        One width per block of :func:`~sk_replearn.nn.surgery.encoder_blocks`;
        the last is ``encoder.out_features``.

    Examples
    --------
    >>> from sk_replearn.nn import MLPEncoder
    >>> from sk_replearn.nn.layers import block_widths
    >>> from sk_replearn.nn.surgery import TransferEncoder
    >>> block_widths(TransferEncoder(MLPEncoder((6,), hidden_sizes=(8, 4)), (6,), 4))
    [8, 4]
    """
    n = len(encoder_blocks(encoder))
    widths = _body_widths(encoder.body)
    if widths is None:
        if encoder.input_shape is None:
            raise ValueError(
                f"the widths of the blocks of {type(encoder.body).__name__} "
                "cannot be measured without an input_shape."
            )
        was_training = encoder.training
        x = probe_zeros(encoder, 2, *encoder.input_shape)
        encoder.eval()
        try:
            with torch.no_grad():
                widths = [block_features(encoder, x, k).shape[1] for k in range(n)]
        finally:
            encoder.train(was_training)
    widths = widths[:n] + [encoder.out_features] * (n - len(widths))
    widths[-1] = encoder.out_features
    return widths


class LayerEncoder(nn.Module):
    """An encoder cut after one of its blocks, as a module.

    Its output is :func:`block_features` of that block.

    Parameters
    ----------
    encoder : TransferEncoder
        Used as given (copy it first to keep the original).
    block : int
        Index of the block whose pooled output is returned.

    Attributes
    ----------
    out_features : int
        Width of the output, ``block_widths(encoder)[block]``.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn import ResNetEncoder
    >>> from sk_replearn.nn.layers import LayerEncoder
    >>> from sk_replearn.nn.surgery import TransferEncoder
    >>> enc = TransferEncoder(ResNetEncoder((1, 40)), (1, 40), 128)
    >>> LayerEncoder(enc, 2).eval()(torch.randn(5, 1, 40)).shape
    torch.Size([5, 64])
    """

    def __init__(self, encoder: TransferEncoder, block: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.block = int(block)
        self.input_shape = encoder.input_shape
        self.out_features = block_widths(encoder)[self.block]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled output of the block for a raw batch."""
        return block_features(self.encoder, x, self.block)


def _cut_body(body: nn.Module, k: int, width: int) -> nn.Module:
    """``body`` with its blocks after block ``k`` removed (in place)."""
    blocks = _body_blocks(body)
    if k == len(blocks) - 1:  # the body's own output
        return body
    if isinstance(body, Bottleneck):  # k is below the linear layer
        return _cut_body(body.encoder, k, width)
    if isinstance(body, _SEQUENTIAL):
        kept = [m for block in blocks[: k + 1] for m in block.modules]
        if isinstance(body, MLPEncoder):
            body.layers = nn.Sequential(*kept)
            body.hidden_sizes = body.hidden_sizes[: k + 1]
        else:  # a ConvNet: its feature map averaged over space, as block_features
            body.features = nn.Sequential(*kept)
            # the widths of the stages kept (a ResNet's block 0 is its stem,
            # of the first stage's width, then blocks_per_stage a stage)
            stages = (
                k + 1
                if isinstance(body, CNNEncoder)
                else 1 + max(k - 1, 0) // body.blocks_per_stage
            )
            body.channels = tuple(body.channels[:stages])
            body.pool = type(body.pool)(1)
            body.pool_size = 1
        body.out_features = width
        return body
    if isinstance(body, (ViTEncoder, TokenEncoder)):
        # Block 0 is the embedding: k transformer blocks, and no final norm
        # (the norm belongs to the last block, as in block_features).
        body.blocks = body.blocks[:k]
        body.norm = nn.Identity()
        body.out_features = width
        return body
    raise ValueError(
        f"an encoder of type {type(body).__name__} cannot be cut after block "
        f"{k}: only the blocks of the package's encoders (MLP, CNN, ResNet, "
        "ViT, token transformer) can be dropped. Use transform_layer=-1, the "
        "whole encoder."
    )


def cut_encoder(encoder: TransferEncoder, block: int) -> TransferEncoder:
    """``encoder`` cut after one of its blocks: the blocks above are dropped.

    Network surgery for fine-tuning from an inner layer: the result computes
    :func:`block_features` of ``block`` (a ConvNet's feature map averaged
    over space, a transformer's tokens pooled without the final norm), and
    holds the weights of the blocks up to ``block`` only, so that
    :func:`~sk_replearn.nn.surgery.encoder_blocks` lists those and an
    optimiser sees nothing else.

    Parameters
    ----------
    encoder : TransferEncoder
        Cut in place (copy it first to keep the original).
    block : int
        Index of the last block kept, from 0 to
        ``len(encoder_blocks(encoder)) - 1``; the last block returns
        ``encoder`` unchanged.

    Returns
    -------
    TransferEncoder
        ``encoder``, whose ``out_features`` is now
        ``block_widths(encoder)[block]``; an MLP's ``hidden_sizes`` and a
        ConvNet's ``channels`` list the layers or stages kept (a ResNet cut
        inside a stage keeps that stage's width, and its
        ``blocks_per_stage`` stays as built).

    Raises
    ------
    IndexError
        For a ``block`` that is no block of the encoder.
    ValueError
        For an encoder whose blocks cannot be dropped (a module of another
        type than the package's encoders).

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn import ResNetEncoder
    >>> from sk_replearn.nn.layers import block_features, cut_encoder
    >>> from sk_replearn.nn.surgery import TransferEncoder, encoder_blocks
    >>> enc = TransferEncoder(ResNetEncoder((1, 40)), (1, 40), 128).eval()
    >>> x = torch.randn(5, 1, 40)
    >>> inner = block_features(enc, x, 1)
    >>> cut = cut_encoder(enc, 1)
    >>> len(encoder_blocks(cut)), cut.out_features
    (2, 32)
    >>> torch.allclose(cut(x), inner, atol=1e-6)
    True
    """
    blocks = encoder_blocks(encoder)
    n = len(blocks)
    if not 0 <= block < n:
        raise IndexError(f"block={block} is not one of the encoder's {n} blocks.")
    if block == n - 1:
        return encoder
    width = block_widths(encoder)[block]
    n_body = len(_body_blocks(encoder.body))
    if block >= n_body:  # the head, below a block of loose weights
        raise ValueError(
            f"the encoder cannot be cut after block {block}: the weights above "
            "it belong to no layer that could be dropped. Use transform_layer=-1."
        )
    encoder.body = _cut_body(encoder.body, block, width)
    encoder.head = nn.Identity()
    encoder.out_features = width
    return encoder
