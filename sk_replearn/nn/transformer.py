"""The Vision Transformer, and the transformer block it is built of.

:class:`ViTEncoder` and :class:`ViTDecoder` stack the package's one
pre-norm transformer block (attention and MLP, GELU),
:class:`TransformerBlock`, which MAE's decoder and the token encoder of
GPT and BERT stack too; it is defined, with ``transformer_blocks`` and
``init_transformer``, in the private ``_block.py`` and public from here.
Patches and positions come from ``sk_replearn.nn.patches``.

References
----------
.. [1] A. Dosovitskiy et al. "An Image is Worth 16x16 Words: Transformers for
   Image Recognition at Scale." ICLR 2021.
.. [2] A. Vaswani et al. "Attention Is All You Need." NeurIPS 2017.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ._block import TransformerBlock, init_transformer, transformer_blocks
from ._checks import check_dropout, check_input_shape, check_int, is_int, spatial_sizes
from .patches import patchify, sincos_pos_embed_1d, sincos_pos_embed_2d, unpatchify

__all__ = [
    "TransformerBlock",
    "ViTDecoder",
    "ViTEncoder",
    "check_transformer",
    "init_transformer",
    "pos_embed",
    "resolve_patch_size",
    "transformer_blocks",
]

_MAX_AUTO_PATCHES = 64  # attention is O(L^2); 64 tokens keeps CPU training quick


def resolve_patch_size(patch_size: int | str, shape: tuple[int, ...], owner: str):
    sizes = spatial_sizes(shape, owner)
    common = math.gcd(*sizes)
    divisors = [p for p in range(1, common + 1) if common % p == 0]
    if isinstance(patch_size, str) and patch_size == "auto":
        # Smallest patch giving 4..64 tokens. A length with few divisors (a
        # prime, or 262 = 2 x 131) has none: then the fewest tokens from 65
        # to 256 (one token per position for a short prime length), where
        # attention over them is still cheap.
        def n_tokens(p: int) -> int:
            return math.prod(s // p for s in sizes)

        for p in divisors:
            if p >= 2 and 4 <= n_tokens(p) <= _MAX_AUTO_PATCHES:
                return p
        for p in reversed(divisors):
            if 4 <= n_tokens(p) <= 4 * _MAX_AUTO_PATCHES:
                return p
        if math.prod(sizes) <= 4 * _MAX_AUTO_PATCHES:
            return 1  # fewer than 4 values: one token each
        raise ValueError(
            f"{owner} could not choose a patch_size for input_shape={shape}: "
            f"no patch gives 4 to {4 * _MAX_AUTO_PATCHES} tokens; pass "
            f"patch_size= one of {divisors}, the ints dividing {sizes}, or crop "
            "or pad the samples to a length with more divisors."
        )
    if not is_int(patch_size) or patch_size not in divisors:
        raise ValueError(
            f"patch_size={patch_size!r} must divide every spatial size {sizes} "
            f"of input_shape={shape}; use 'auto' or one of {divisors}."
        )
    return int(patch_size)


def check_transformer(embed_dim: int, num_heads: int, ndim: int) -> None:
    check_int("num_heads", num_heads)
    multiple = 4 if ndim == 2 else 2  # sin-cos needs sin+cos per axis
    if check_int("embed_dim", embed_dim) % multiple or embed_dim % num_heads:
        raise ValueError(
            f"embed_dim={embed_dim} must be a multiple of {multiple} (sin-cos "
            f"positions for {ndim}-D patches) and of num_heads={num_heads}."
        )


def pos_embed(embed_dim: int, grid: tuple[int, ...]) -> torch.Tensor:
    if len(grid) == 2:
        return sincos_pos_embed_2d(embed_dim, *grid)[None]  # (1, L, D)
    return sincos_pos_embed_1d(embed_dim, grid[0])[None]  # (1, L, D)


#: Values of :class:`ViTEncoder`'s ``pooling``.
POOLINGS = ("mean", "cls", "blocks")


class ViTEncoder(nn.Module):
    """Vision Transformer for images or 1-D signals (Dosovitskiy et al. 2021).

    Non-overlapping patches (``p x p`` squares, or length-``p`` segments of a
    signal) are embedded linearly, fixed sine-cosine positions are added, a
    class token is prepended, and pre-norm transformer blocks followed by a
    LayerNorm process the sequence. The stages are separate methods so a
    masked autoencoder (He et al. 2022) can drop tokens in between::

        tokens = enc.embed(x)                              # (B, L, D)
        visible, mask, ids_restore = random_masking(tokens, 0.75)
        latent = enc.forward_tokens(visible)               # (B, 1 + L_keep, D)

    or, cheaper in training, drop the patches before embedding them, so
    that only the visible ones are embedded::

        patches = patchify(x, enc.patch_size)              # (B, L, p**k * C)
        visible, mask, ids_restore = random_masking(patches, 0.75)
        keep = ids_restore.argsort(dim=1)[:, : visible.shape[1]]
        latent = enc.forward_tokens(enc.embed_patches(visible, keep))

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, L)`` or ``(C, H, W)``.
    patch_size : int or "auto", default="auto"
        Patch side (images) or segment length (signals); must divide every
        spatial size. ``"auto"`` takes the smallest ``p >= 2`` giving 4 to 64
        patches (8x8 -> 2, 28x28 -> 4, 32x32 -> 4, length 40 -> 2); for
        sizes with no such divisor, the ``p`` giving the fewest tokens from
        4 to 256 (length 37 -> 1, 254 -> 2), else a ValueError (length 997).
    embed_dim : int, default=64
        Token width ``D``; a multiple of ``num_heads`` and of 4 (images) or
        2 (signals).
    depth : int, default=4
        Number of transformer blocks.
    num_heads : int, default=4
        Attention heads per block.
    mlp_ratio : float, default=4.0
        Hidden width of each block's MLP, relative to ``embed_dim``.
    pooling : {"mean", "cls", "blocks"}, default="mean"
        Output of :meth:`forward`: the mean of the patch tokens (better for
        linear probes of MAE features, per He et al.), the class token, or,
        with ``"blocks"``, the class token and the mean of the patch tokens
        after every block, concatenated (``2 * depth * embed_dim`` values;
        the last block's after the final norm): the multi-layer features of
        linear probes (Chen et al. 2020, iGPT; Caron et al. 2021, DINO).
    dropout : float, default=0.0
        Dropout inside the blocks.
    regions : int, default=1
        With ``"mean"`` or ``"blocks"``, the patch tokens are averaged over
        this many contiguous parts, in their order (segments of a signal;
        bands of patch rows of an image), parts of near-equal size as
        :func:`torch.tensor_split` cuts them, instead of over all of them:
        each mean becomes ``regions`` means side by side. A linear probe then
        sees where along the sample a feature is.

    Attributes
    ----------
    patch_size : int
        The resolved patch size.
    grid_size : tuple of int
        Patches along each spatial axis.
    num_patches : int
        ``L``, the number of patch tokens.
    out_features : int
        Width of :meth:`forward`'s output: ``embed_dim`` with ``"cls"``,
        ``regions * embed_dim`` with ``"mean"``, ``(1 + regions) * depth *
        embed_dim`` with ``"blocks"``.
    patch_embed : torch.nn.Conv1d or torch.nn.Conv2d
        Linear patch embedding, stored as a convolution with stride = kernel
        = p (the layout of the ViT's published weights) and applied as a
        matrix product to the patches of
        :func:`~sk_replearn.nn.patchify`.
    pos_embed : torch.Tensor of shape (1, L, D)
        Fixed sine-cosine positions (a buffer, not trained).
    cls_token : torch.nn.Parameter of shape (1, 1, D)
    blocks : torch.nn.ModuleList of torch.nn.TransformerEncoderLayer
    norm : torch.nn.LayerNorm

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn import ViTEncoder
    >>> enc = ViTEncoder((1, 28, 28), depth=2)
    >>> enc.patch_size, enc.num_patches, enc.out_features
    (4, 49, 64)
    >>> x = torch.randn(3, 1, 28, 28)
    >>> enc(x).shape
    torch.Size([3, 64])
    >>> enc.forward_tokens(enc.embed(x)[:, :10]).shape
    torch.Size([3, 11, 64])
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        patch_size: int | str = "auto",
        embed_dim: int = 64,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        pooling: str = "mean",
        dropout: float = 0.0,
        regions: int = 1,
    ) -> None:
        super().__init__()
        self.input_shape = check_input_shape(input_shape)
        self.patch_size = resolve_patch_size(patch_size, self.input_shape, "ViTEncoder")
        sizes = self.input_shape[1:]
        check_transformer(embed_dim, num_heads, len(sizes))
        self.embed_dim, self.num_heads, self.mlp_ratio = embed_dim, num_heads, mlp_ratio
        self.grid_size = tuple(s // self.patch_size for s in sizes)
        self.num_patches = math.prod(self.grid_size)
        conv = nn.Conv1d if len(sizes) == 1 else nn.Conv2d
        p = self.patch_size
        self.patch_embed = conv(self.input_shape[0], embed_dim, p, stride=p)
        self.register_buffer("pos_embed", pos_embed(embed_dim, self.grid_size))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.blocks = transformer_blocks(
            embed_dim, depth, num_heads, mlp_ratio, check_dropout(dropout)
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.set_pooling(pooling, regions)
        init_transformer(self)
        # The patch embedding is a linear map of a flattened patch: init it so.
        nn.init.xavier_uniform_(self.patch_embed.weight.view(embed_dim, -1))
        nn.init.zeros_(self.patch_embed.bias)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Embed patches and add positions: ``(B, *input_shape) -> (B, L, D)``.

        Parameters
        ----------
        x : torch.Tensor of shape (B, *input_shape)

        Returns
        -------
        torch.Tensor of shape (B, num_patches, embed_dim)
            Patch tokens in the row-major order of
            :func:`~sk_replearn.nn.patchify`.
        """
        return self.embed_patches(patchify(x, self.patch_size))

    def embed_patches(
        self, patches: torch.Tensor, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Embed flattened patches and add the positions they come from.

        A masked autoencoder embeds only its visible patches this way: the
        embedding is per patch, so this equals embedding every patch and
        keeping the visible tokens, at a fraction of the cost.

        Parameters
        ----------
        patches : torch.Tensor of shape (B, L', p**k * C)
            Patches laid out as :func:`~sk_replearn.nn.patchify`
            cuts them.
        positions : torch.Tensor of shape (B, L'), optional
            The index (in ``0 .. num_patches - 1``, row-major) of each
            patch's place in its sample. None: the patches are all
            ``num_patches`` of each sample, in order.

        Returns
        -------
        torch.Tensor of shape (B, L', embed_dim)

        Examples
        --------
        >>> import torch
        >>> from sk_replearn.nn import ViTEncoder
        >>> from sk_replearn.nn.patches import patchify
        >>> enc = ViTEncoder((1, 8, 8), patch_size=2)
        >>> x = torch.randn(3, 1, 8, 8)
        >>> keep = torch.tensor([[0, 5], [7, 1], [15, 2]])
        >>> patches = patchify(x, 2).gather(1, keep[:, :, None].expand(-1, -1, 4))
        >>> tokens = enc.embed_patches(patches, keep)
        >>> expected = enc.embed(x).gather(1, keep[:, :, None].expand(-1, -1, 64))
        >>> tokens.shape, torch.allclose(tokens, expected, atol=1e-6)
        (torch.Size([3, 2, 64]), True)
        """
        # The convolution's weight (D, C, p[, p]) reordered to patchify's
        # layout (p[, p], C): the same linear map, as one matrix product.
        weight = self.patch_embed.weight.movedim(1, -1).flatten(1)
        pos = self.pos_embed if positions is None else self.pos_embed[0][positions]
        return nn.functional.linear(patches, weight, self.patch_embed.bias) + pos

    def set_pooling(self, pooling: str, regions: int | None = None) -> ViTEncoder:
        """Read the tokens another way; the weights stay as they are.

        Pooling has no parameters, so an encoder trained with one pooling
        can be read, or fine-tuned, with another.

        Parameters
        ----------
        pooling : {"mean", "cls", "blocks"}
            As in the constructor; ``out_features`` follows it.
        regions : int, optional
            As in the constructor; None keeps the encoder's.

        Returns
        -------
        self : ViTEncoder

        Examples
        --------
        >>> from sk_replearn.nn import ViTEncoder
        >>> enc = ViTEncoder((1, 40), embed_dim=16, depth=3, pooling="blocks")
        >>> enc.out_features, enc.set_pooling("mean").out_features
        (96, 16)
        >>> enc.set_pooling("blocks", regions=4).out_features  # 3 x (1 + 4) x 16
        240
        """
        if pooling not in POOLINGS:
            raise ValueError(
                f"pooling={pooling!r} must be one of {', '.join(map(repr, POOLINGS))}."
            )
        regions = check_int("regions", self._regions() if regions is None else regions)
        if regions > self.num_patches:
            raise ValueError(
                f"regions={regions} is more than the {self.num_patches} patch "
                "tokens it averages over; use at most that many."
            )
        if regions > 1 and pooling == "cls":
            raise ValueError(
                f"regions={regions} averages the patch tokens, which "
                "pooling='cls' does not read; use 'mean' or 'blocks', or regions=1."
            )
        self.pooling, self.regions = pooling, regions
        depth, width = len(self.blocks), self.embed_dim
        self.out_features = {
            "cls": width,
            "mean": regions * width,
            "blocks": (1 + regions) * depth * width,
        }[pooling]
        return self

    def _regions(self) -> int:
        # An encoder pickled before regions existed averages over all tokens.
        return getattr(self, "regions", 1)

    def _patch_mean(self, patches: torch.Tensor) -> torch.Tensor:
        """``(B, L', D)`` patch tokens to their mean(s), ``(B, regions * D)``."""
        regions = self._regions()
        if regions == 1:
            return patches.mean(dim=1)
        parts = patches.tensor_split(regions, dim=1)
        return torch.cat([part.mean(dim=1) for part in parts], dim=1)

    def _with_class_token(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, L', D)`` tokens with the class token first, ``(B, 1 + L', D)``."""
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)  # (B, 1, D)
        return torch.cat([cls, tokens], dim=1)

    def forward_tokens(
        self, tokens: torch.Tensor, n_blocks: int | None = None
    ) -> torch.Tensor:
        """Prepend the class token, run the blocks and the final norm.

        Parameters
        ----------
        tokens : torch.Tensor of shape (B, L', D)
            Any subset of the tokens from :meth:`embed` (positions already
            added), e.g. the visible ones after masking.
        n_blocks : int or None, default=None
            Run only the first ``n_blocks`` transformer blocks and no final
            norm: the tokens of an inner layer. None runs every block, then
            the norm.

        Returns
        -------
        torch.Tensor of shape (B, 1 + L', D)
            Class token first.
        """
        tokens = self._with_class_token(tokens)
        for block in self.blocks[:n_blocks]:
            tokens = block(tokens)
        return self.norm(tokens) if n_blocks is None else tokens

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """Reduce the tokens of one layer, ``(B, 1 + L', D)``, to ``(B, width)``.

        The class token (``"cls"``), the mean of the patch tokens
        (``"mean"``; one per region), or both, concatenated (``"blocks"``,
        which :meth:`forward_pooled` gathers from every block).
        """
        if self.pooling == "cls":
            return tokens[:, 0]
        mean = self._patch_mean(tokens[:, 1:])
        if self.pooling == "blocks":
            return torch.cat([tokens[:, 0], mean], dim=1)
        return mean

    def forward_pooled(
        self, tokens: torch.Tensor, n_blocks: int | None = None
    ) -> torch.Tensor:
        """Run the blocks on embedded tokens and pool them as ``pooling`` says.

        Parameters
        ----------
        tokens : torch.Tensor of shape (B, L', D)
            Tokens from :meth:`embed` (positions already added).
        n_blocks : int or None, default=None
            As in :meth:`forward_tokens`: the first ``n_blocks`` blocks
            only, without the final norm; None runs them all, then the norm.

        Returns
        -------
        torch.Tensor of shape (B, pooled_width(n_blocks))
            With ``pooling="blocks"``, the pooled tokens of each block run,
            in order; at ``n_blocks=0`` (no block) the mean of the embedded
            patches (one per region), as ``"mean"`` gives.

        Examples
        --------
        >>> import torch
        >>> from sk_replearn.nn import ViTEncoder
        >>> enc = ViTEncoder((1, 40), embed_dim=16, depth=3, pooling="blocks")
        >>> tokens = enc.embed(torch.randn(5, 1, 40))
        >>> enc.forward_pooled(tokens).shape, enc.forward_pooled(tokens, 1).shape
        (torch.Size([5, 96]), torch.Size([5, 32]))
        """
        if self.pooling != "blocks":
            return self.pool(self.forward_tokens(tokens, n_blocks))
        blocks = self.blocks[:n_blocks]
        if not len(blocks):  # the embedding alone (or an encoder cut there)
            return self._patch_mean(tokens)
        tokens = self._with_class_token(tokens)
        pooled = []
        for i, block in enumerate(blocks):
            tokens = block(tokens)
            last = n_blocks is None and i == len(blocks) - 1
            pooled.append(self.pool(self.norm(tokens) if last else tokens))
        return torch.cat(pooled, dim=1)

    def pooled_width(self, n_blocks: int | None = None) -> int:
        """Width of :meth:`forward_pooled`'s output after ``n_blocks`` blocks.

        Parameters
        ----------
        n_blocks : int or None, default=None
            As in :meth:`forward_pooled`; None is the whole encoder.

        Returns
        -------
        int
            ``out_features`` for None or a pooling of one layer; with
            ``pooling="blocks"``, ``(1 + regions) * n * embed_dim`` for the
            ``n`` blocks run, or ``regions * embed_dim`` when none runs.

        Examples
        --------
        >>> from sk_replearn.nn import ViTEncoder
        >>> enc = ViTEncoder((1, 40), embed_dim=16, depth=3, pooling="blocks")
        >>> [enc.pooled_width(k) for k in (0, 1, 2, None)]
        [16, 32, 64, 96]
        """
        if self.pooling != "blocks" or n_blocks is None:
            return self.out_features
        run, regions = len(self.blocks[:n_blocks]), self._regions()
        return self.embed_dim * ((1 + regions) * run if run else regions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode ``(B, *input_shape)`` to ``(B, out_features)``."""
        return self.forward_pooled(self.embed(x))


class ViTDecoder(nn.Module):
    """Light transformer decoder from a code back to an image or signal.

    The code is projected to one ``embed_dim`` vector, copied to every patch
    position and added to that position's fixed sine-cosine embedding; a few
    pre-norm transformer blocks let the positions exchange information, and
    a linear layer predicts each patch's pixels, which are reassembled with
    :func:`~sk_replearn.nn.unpatchify`. It is the decoder of an
    autoencoder whose encoder is a :class:`ViTEncoder`; a masked autoencoder
    decodes tokens instead and builds its own decoder.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, L)`` or ``(C, H, W)`` of one reconstructed sample.
    in_features : int
        Width of the incoming code.
    patch_size : int or "auto", default="auto"
        As in :class:`ViTEncoder`.
    embed_dim : int, default=64
        Token width.
    depth : int, default=2
        Number of transformer blocks.
    num_heads : int, default=4
        Attention heads per block.
    mlp_ratio : float, default=4.0
        Hidden width of each block's MLP, relative to ``embed_dim``.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn import ViTDecoder
    >>> ViTDecoder((1, 8, 8), in_features=16)(torch.randn(2, 16)).shape
    torch.Size([2, 1, 8, 8])
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        in_features: int,
        patch_size: int | str = "auto",
        embed_dim: int = 64,
        depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        self.input_shape = check_input_shape(input_shape)
        self.patch_size = resolve_patch_size(patch_size, self.input_shape, "ViTDecoder")
        sizes = self.input_shape[1:]
        check_transformer(embed_dim, num_heads, len(sizes))
        grid = tuple(s // self.patch_size for s in sizes)
        self.proj = nn.Linear(check_int("in_features", in_features), embed_dim)
        self.register_buffer("pos_embed", pos_embed(embed_dim, grid))
        self.blocks = transformer_blocks(embed_dim, depth, num_heads, mlp_ratio, 0.0)
        self.norm = nn.LayerNorm(embed_dim)
        patch_values = self.patch_size ** len(sizes) * self.input_shape[0]
        self.head = nn.Linear(embed_dim, patch_values)
        init_transformer(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Decode ``(B, in_features)`` to ``(B, *input_shape)``."""
        tokens = self.proj(z)[:, None, :] + self.pos_embed  # (B, L, D)
        for block in self.blocks:
            tokens = block(tokens)
        patches = self.head(self.norm(tokens))  # (B, L, p**ndim * C)
        return unpatchify(patches, self.patch_size, self.input_shape)
