"""Encoders cut out of a trained representation, ready to be fine-tuned.

:class:`TransferEncoder` is the part of a trained objective that maps raw
input to the representation (the input standardisation, the backbone and,
for an autoencoder, its bottleneck), copied so that training it leaves the
original untouched. :func:`encoder_blocks` lists its layers from input to
output as :class:`Block` s, the unit the transfer strategies freeze,
re-initialise and give learning rates to.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ._block import init_transformer
from .conv import CNNEncoder, ResNetEncoder, _BasicBlock, init_conv
from .heads import Bottleneck
from .mlp import MLPEncoder
from .sequence import TokenEncoder
from .transformer import ViTEncoder

__all__ = ["Block", "TransferEncoder", "encoder_blocks", "linear_encoder", "trainable"]


class TransferEncoder(nn.Module):
    """Raw input to representation: ``head(body(prep(x)))``.

    Parameters
    ----------
    body : torch.nn.Module
        The backbone, mapping a standardised batch to ``(B, D)``.
    input_shape : tuple of int or None
        Shape of one raw sample; None for inputs taken as they come (the
        padded token ids of a sequence model).
    out_features : int
        Width of the representation.
    prep : torch.nn.Module or None, default=None
        Input standardisation (:class:`~sk_replearn.nn.Standardize`); None for none.
    head : torch.nn.Module or None, default=None
        A last layer on top of ``body`` (an autoencoder's bottleneck).

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn import MLPEncoder
    >>> from sk_replearn.nn.surgery import TransferEncoder, encoder_blocks
    >>> enc = TransferEncoder(MLPEncoder((6,), hidden_sizes=(8, 4)), (6,), 4)
    >>> enc(torch.randn(3, 6)).shape
    torch.Size([3, 4])
    >>> len(encoder_blocks(enc))
    2
    """

    def __init__(
        self,
        body: nn.Module,
        input_shape: Sequence[int],
        out_features: int,
        prep: nn.Module | None = None,
        head: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.prep = prep if prep is not None else nn.Identity()
        self.body = body
        self.head = head if head is not None else nn.Identity()
        self.input_shape = (
            None if input_shape is None else tuple(int(s) for s in input_shape)
        )
        self.out_features = int(out_features)

    def forward(self, x: torch.Tensor, augment=None) -> torch.Tensor:
        """Encode a raw batch ``(B, *input_shape)`` (or flat) to ``(B, D)``.

        ``augment``, if given, maps the standardised batch to another of the
        same shape before the body (the fine-tuners' ``views``).
        """
        if self.input_shape is not None:
            x = x.reshape(x.shape[0], *self.input_shape)
        x = self.prep(x)
        if augment is not None:
            x = augment(x)
        return self.head(self.body(x))


@dataclass
class Block:
    """One layer of an encoder, as the transfer strategies see it.

    Attributes
    ----------
    modules : list of torch.nn.Module
        The sub-modules that make up the layer (re-initialised with their
        ``reset_parameters``; put in eval mode when frozen).
    params : list of torch.nn.Parameter
        Every parameter of the layer, including loose ones such as a class
        token that belong to no sub-module.
    init : callable or None
        The initialisation the encoder gave the block at construction,
        called with the block after the layers' own ``reset_parameters``;
        None where that is all there was.

    See Also
    --------
    encoder_blocks : The blocks of an encoder.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn.surgery import Block
    >>> block = Block.of(torch.nn.Linear(3, 2))
    >>> [tuple(p.shape) for p in block.params]
    [(2, 3), (2,)]
    >>> before = block.params[0].detach().clone()
    >>> block.reset_parameters()  # drawn again, as nn.Linear draws them
    >>> torch.equal(block.params[0], before)
    False
    """

    modules: list[nn.Module] = field(default_factory=list)
    params: list[nn.Parameter] = field(default_factory=list)
    init: Callable[[Block], None] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, *modules: nn.Module, extra: Sequence[nn.Parameter] = ()) -> Block:
        """The block made of ``modules`` plus loose parameters ``extra``."""
        params = [p for m in modules for p in m.parameters()] + list(extra)
        return cls(list(modules), params)

    def reset_parameters(self) -> None:
        """Re-draw every weight of the block as at construction.

        Each layer's ``reset_parameters``, then the encoder's own scheme
        (``init``): a ResNet's Kaiming-normal convolutions and zeroed last
        norm of each residual branch, a transformer's Xavier linears, a
        token model's embeddings drawn from N(0, 0.02²). A layer without
        ``reset_parameters`` (such as the layers of a program loaded by
        :func:`torch.export.load`, which have lost their types) is re-drawn
        by the names of torch's layers: ``weight`` of two or more dimensions
        as ``nn.Linear`` and ``nn.Conv2d`` draw it (Kaiming uniform), a 1-D
        ``weight`` (a norm's scale) to ones, ``bias`` to zeros. Other loose
        parameters, such as a class token, are drawn from a normal of
        standard deviation 0.02.
        """
        owned = set()
        with torch.no_grad():
            for module in self.modules:
                for m in _children_first(module):
                    # (nn.MultiheadAttention's is private)
                    reset = getattr(m, "reset_parameters", None) or getattr(
                        m, "_reset_parameters", None
                    )
                    if callable(reset):
                        reset()
                        owned.update(id(p) for p in m.parameters(recurse=False))
                        continue
                    for name, p in m.named_parameters(recurse=False):
                        if _reset_by_name(name, p):
                            owned.add(id(p))
            for p in self.params:
                if id(p) not in owned:
                    nn.init.trunc_normal_(p, std=0.02)
            if self.init is not None:
                self.init(self)


def _children_first(module: nn.Module) -> list[nn.Module]:
    """``module`` and its sub-modules, each after its own sub-modules.

    The order of construction: a layer that resets the parameters of its
    children (``nn.MultiheadAttention`` zeroes its output projection's
    bias, which that ``nn.Linear`` drew) does so after they are drawn.
    Siblings keep their order; a shared sub-module is visited once.
    """
    order: list[nn.Module] = []
    seen: set[int] = set()

    def visit(m: nn.Module) -> None:
        if id(m) in seen:
            return
        seen.add(id(m))
        for child in m.children():
            visit(child)
        order.append(m)

    visit(module)
    return order


def _init_conv_block(block: Block) -> None:
    """A ConvNet's construction: Kaiming-normal convolutions, unit norms."""
    for module in block.modules:
        init_conv(module)


def _init_residual_block(block: Block) -> None:
    """A ResNet's: a ConvNet's, with each residual branch's last norm at 0."""
    _init_conv_block(block)
    for module in block.modules:
        for m in module.modules():
            if isinstance(m, _BasicBlock):
                nn.init.zeros_(m.bn2.weight)


def _init_transformer_block(block: Block) -> None:
    """A transformer block's: Xavier-uniform linears, zero biases."""
    for module in block.modules:
        init_transformer(module)


def _init_patch_embedding(vit: ViTEncoder) -> Callable[[Block], None]:
    def init(block: Block) -> None:
        # A linear map of a flattened patch; the class token N(0, 0.02²).
        weight = vit.patch_embed.weight
        nn.init.xavier_uniform_(weight.view(weight.shape[0], -1))
        nn.init.zeros_(vit.patch_embed.bias)
        nn.init.trunc_normal_(vit.cls_token, std=0.02)

    return init


def _init_token_embedding(enc: TokenEncoder) -> Callable[[Block], None]:
    def init(block: Block) -> None:
        nn.init.normal_(enc.token_embed.weight, std=0.02)  # GPT-2 / BERT
        nn.init.normal_(enc.pos_embed, std=0.02)

    return init


def _reset_by_name(name: str, p: nn.Parameter) -> bool:
    """Re-draw ``p`` as torch's layers draw a parameter of that name, if known."""
    if name == "weight" and p.dim() >= 2:
        nn.init.kaiming_uniform_(p, a=5**0.5)  # nn.Linear's and nn.ConvNd's
        return True
    if name == "weight" and p.dim() == 1:
        nn.init.ones_(p)
        return True
    if name == "bias":
        nn.init.zeros_(p)
        return True
    return False


def _split_at(layers: nn.Sequential, kinds: tuple[type, ...]) -> list[Block]:
    """Group a Sequential into blocks, one starting at each layer of ``kinds``."""
    groups: list[list[nn.Module]] = []
    for layer in layers:
        if isinstance(layer, kinds) or not groups:
            groups.append([])
        groups[-1].append(layer)
    return [Block.of(*g) for g in groups]


def _transformer_blocks(first: Block, blocks, norm: nn.LayerNorm) -> list[Block]:
    """The embedding block, then one per transformer block, the norm with the last."""
    out = [first]
    for b in blocks:
        block = Block.of(b)
        block.init = _init_transformer_block
        out.append(block)
    last = out[-1]
    out[-1] = Block(
        last.modules + [norm], last.params + list(norm.parameters()), last.init
    )
    return out


def _vit_blocks(vit: ViTEncoder) -> list[Block]:
    first = Block.of(vit.patch_embed, extra=[vit.cls_token])
    first.init = _init_patch_embedding(vit)
    return _transformer_blocks(first, vit.blocks, vit.norm)


def _token_blocks(enc: TokenEncoder) -> list[Block]:
    # The embeddings' dropout is the block's: frozen, it runs in eval mode.
    first = Block.of(enc.token_embed, enc.drop, extra=[enc.pos_embed])
    first.init = _init_token_embedding(enc)
    return _transformer_blocks(first, enc.blocks, enc.norm)


def _with_init(blocks: list[Block], init: Callable[[Block], None]) -> list[Block]:
    for block in blocks:
        block.init = init
    return blocks


def _body_blocks(body: nn.Module) -> list[Block]:
    if isinstance(body, Bottleneck):
        return _body_blocks(body.encoder) + [Block.of(body.linear)]
    if isinstance(body, MLPEncoder):
        return _split_at(body.layers, (nn.Linear,))
    if isinstance(body, CNNEncoder):
        blocks = _split_at(body.features, (nn.Conv1d, nn.Conv2d))
        return _with_init(blocks, _init_conv_block)
    if isinstance(body, ResNetEncoder):
        # The stem is conv, norm, activation; each residual block follows.
        stem = Block.of(*body.features[:3])
        blocks = [stem] + [Block.of(m) for m in body.features[3:]]
        return _with_init(blocks, _init_residual_block)
    if isinstance(body, ViTEncoder):
        return _vit_blocks(body)
    if isinstance(body, TokenEncoder):
        return _token_blocks(body)
    if isinstance(body, (nn.Linear, nn.Conv1d, nn.Conv2d)):
        return [Block.of(body)]
    if callable(getattr(body, "transfer_blocks", None)):  # it knows its blocks
        return body.transfer_blocks()
    # Any other module: its children in registration order, loose
    # parameters with the first.
    children = [c for c in body.children() if any(True for _ in c.parameters())]
    loose = list(body.parameters(recurse=False))
    if not children:
        return [Block(params=loose)] if loose else []
    blocks = [Block.of(c) for c in children]
    blocks[0].params += loose
    return blocks


def trainable(module: nn.Module) -> nn.Module:
    """``module`` with every floating-point weight trainable again (in place).

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn.surgery import trainable
    >>> layer = torch.nn.Linear(2, 2).requires_grad_(False)
    >>> all(p.requires_grad for p in trainable(layer).parameters())
    True
    """
    for p in module.parameters():
        if p.is_floating_point() or p.is_complex():
            p.requires_grad_(True)
    return module


def encoder_blocks(encoder: TransferEncoder) -> list[Block]:
    """The encoder's layers from input to output, as a list of blocks.

    Each is a :class:`Block`, the unit that the fine-tuners freeze,
    re-initialise and give learning rates to, and that
    :func:`~sk_replearn.nn.layers.block_features` reads features from.

    MLP: one block per ``Linear`` (with its norm and activation); CNN: one
    per convolution stage; ResNet: the stem, then one per residual block;
    ViT: the patch embedding (with the class token), then one per
    transformer block (the final norm joins the last); a token encoder
    likewise, from its token and position embeddings. An autoencoder's
    bottleneck, or the linear layer of a :class:`~sk_replearn.nn.Bottleneck`,
    is one more block on top. A module of any other type is
    split into its children.

    Parameters
    ----------
    encoder : TransferEncoder

    Returns
    -------
    list of Block
        In order from input to output; every trainable parameter of the
        encoder is in exactly one block.

    Examples
    --------
    >>> from sk_replearn.nn import MLPEncoder
    >>> from sk_replearn.nn.surgery import TransferEncoder, encoder_blocks
    >>> enc = TransferEncoder(MLPEncoder((6,), hidden_sizes=(8, 4)), (6,), 4)
    >>> [[type(m).__name__ for m in b.modules] for b in encoder_blocks(enc)]
    [['Linear', 'LayerNorm', 'ReLU'], ['Linear']]
    """
    blocks = _body_blocks(encoder.body)
    if not isinstance(encoder.head, nn.Identity):
        blocks.append(Block.of(encoder.head))
    seen = {id(p) for b in blocks for p in b.params}
    missing = [p for p in encoder.parameters() if id(p) not in seen]
    if missing:  # never leave a weight outside every block
        blocks.append(Block(params=missing))
    return blocks


def linear_encoder(components, mean, scale=None) -> TransferEncoder:
    """The encoder of PCA as a module: ``z = ((x - mean) @ W.T) / scale``.

    A :class:`~sk_replearn.nn.surgery.TransferEncoder`, which a fine-tuner
    of :class:`~sk_replearn.PCATransformer` trains as any other network.

    Parameters
    ----------
    components : array-like of shape (k, d)
        The rows of W.
    mean : array-like of shape (d,)
    scale : array-like of shape (k,) or None
        Whitening divisors, or None.

    Returns
    -------
    encoder : sk_replearn.nn.surgery.TransferEncoder
        A single ``Linear(d, k)`` layer holding W and ``-W @ mean``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sk_replearn.nn.surgery import linear_encoder
    >>> enc = linear_encoder(np.eye(2, 3), np.ones(3))
    >>> enc(torch.tensor([[1.0, 2.0, 3.0]]))
    tensor([[0., 1.]], grad_fn=<AddmmBackward0>)
    """
    W = torch.as_tensor(components, dtype=torch.float64)
    mu = torch.as_tensor(mean, dtype=torch.float64)
    if scale is not None:
        W = W / torch.as_tensor(scale, dtype=torch.float64)[:, None]
    k, d = W.shape
    layer = nn.Linear(d, k)
    with torch.no_grad():
        layer.weight.copy_(W.float())
        layer.bias.copy_((-W @ mu).float())
    return TransferEncoder(layer, (d,), k)
