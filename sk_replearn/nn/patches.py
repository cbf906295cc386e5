"""Pure tensor functions for Vision Transformers and masked autoencoding.

Patches, fixed sin-cos positions and random masking, written for both images
``(N, C, H, W)`` and 1-D signals ``(N, C, L)``. Nothing here holds parameters;
:class:`~sk_replearn.nn.ViTEncoder` and the MAE objective build on
these. Conventions follow MAE (He et al. 2022): patches are numbered in
row-major order, a patch's values are laid out position-major then channel
(``(p, q, c)``), and a mask has ``0`` for keep and ``1`` for remove. One
difference: the 2-D positional embedding puts the rows' half first, where
MAE's code puts the columns' first (the same set of values, which a model
trained with either learns to read).

References
----------
.. [1] K. He, X. Chen, S. Xie, Y. Li, P. Dollár and R. Girshick. "Masked
   Autoencoders Are Scalable Vision Learners." CVPR 2022.
.. [2] A. Vaswani et al. "Attention Is All You Need." NeurIPS 2017.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .._util import is_int
from ._checks import check_fraction

__all__ = [
    "patchify",
    "random_masking",
    "sincos_pos_embed_1d",
    "sincos_pos_embed_2d",
    "unpatchify",
]


def _check_divides(patch_size: int, sizes: Sequence[int]) -> None:
    if not is_int(patch_size) or patch_size < 1 or any(s % patch_size for s in sizes):
        raise ValueError(
            f"patch_size={patch_size!r} must be a positive int dividing every "
            f"spatial size {tuple(sizes)}."
        )


def patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut a batch of images or signals into flattened, non-overlapping patches.

    Parameters
    ----------
    x : torch.Tensor of shape (N, C, H, W) or (N, C, L)
        Images, or 1-D signals with ``C`` channels.
    patch_size : int
        Side ``p`` of a square patch (images) or length of a segment
        (signals). Must divide ``H`` and ``W`` (or ``L``).

    Returns
    -------
    torch.Tensor
        ``(N, H*W / p**2, p*p*C)`` for images, patches in row-major order, each
        laid out as ``(p, q, c)``; ``(N, L / p, p*C)`` for signals, each laid
        out as ``(p, c)``.

    Raises
    ------
    ValueError
        If ``x`` is not 3-D or 4-D, or ``patch_size`` does not divide its
        spatial sizes.

    See Also
    --------
    unpatchify : The inverse.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn.patches import patchify
    >>> patchify(torch.zeros(2, 3, 8, 8), 4).shape
    torch.Size([2, 4, 48])
    >>> patchify(torch.zeros(2, 1, 40), 5).shape
    torch.Size([2, 8, 5])
    """
    if x.dim() == 4:
        n, c, h, w = x.shape
        _check_divides(patch_size, (h, w))
        gh, gw, p = h // patch_size, w // patch_size, patch_size
        x = x.reshape(n, c, gh, p, gw, p)
        x = x.permute(0, 2, 4, 3, 5, 1)  # (N, gh, gw, p, p, C)
        return x.reshape(n, gh * gw, p * p * c)
    if x.dim() == 3:
        n, c, length = x.shape
        _check_divides(patch_size, (length,))
        g, p = length // patch_size, patch_size
        x = x.reshape(n, c, g, p).permute(0, 2, 3, 1)  # (N, g, p, C)
        return x.reshape(n, g, p * c)
    raise ValueError(
        f"patchify needs images (N, C, H, W) or signals (N, C, L); got a "
        f"tensor of shape {tuple(x.shape)}."
    )


def unpatchify(
    tokens: torch.Tensor, patch_size: int, input_shape: Sequence[int]
) -> torch.Tensor:
    """Reassemble flattened patches into images or signals.

    Parameters
    ----------
    tokens : torch.Tensor of shape (N, L, p*p*C) or (N, L, p*C)
        Patches as produced by :func:`patchify`.
    patch_size : int
        The ``p`` used to cut them.
    input_shape : tuple of int
        Shape of one sample, ``(C, H, W)`` or ``(C, L)``.

    Returns
    -------
    torch.Tensor of shape (N, *input_shape)
        The reassembled batch.

    Raises
    ------
    ValueError
        If ``tokens`` does not hold the patches of a sample of
        ``input_shape``.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn.patches import patchify, unpatchify
    >>> x = torch.randn(2, 3, 8, 8)
    >>> torch.equal(unpatchify(patchify(x, 4), 4, (3, 8, 8)), x)
    True
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) not in (2, 3):
        raise ValueError(
            f"input_shape={shape} must be (C, H, W) or (C, L) for unpatchify."
        )
    c, sizes, p = shape[0], shape[1:], patch_size
    _check_divides(p, sizes)
    grid = [s // p for s in sizes]
    expected = (math.prod(grid), p ** len(sizes) * c)
    if tokens.dim() != 3 or tuple(tokens.shape[1:]) != expected:
        raise ValueError(
            f"tokens of shape {tuple(tokens.shape)} are not the patches of a "
            f"sample of shape {shape} with patch_size={p}; expected "
            f"(N, {expected[0]}, {expected[1]})."
        )
    n = tokens.shape[0]
    if len(sizes) == 2:
        gh, gw = grid
        x = tokens.reshape(n, gh, gw, p, p, c)
        x = x.permute(0, 5, 1, 3, 2, 4)  # (N, C, gh, p, gw, p)
        return x.reshape(n, c, gh * p, gw * p)
    x = tokens.reshape(n, grid[0], p, c).permute(0, 3, 1, 2)  # (N, C, g, p)
    return x.reshape(n, c, grid[0] * p)


def _sincos(embed_dim: int, positions: torch.Tensor) -> torch.Tensor:
    # Transformer frequencies 1 / 10000^(2i / D): sin on the first half of
    # the channels, cos on the second, as in MAE's fixed embeddings.
    half = embed_dim // 2
    omega = 1.0 / 10000 ** (torch.arange(half, dtype=torch.float64) / half)  # (D/2,)
    angles = positions.to(torch.float64)[:, None] * omega[None, :]  # (L, D/2)
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()  # (L, D)


def sincos_pos_embed_1d(embed_dim: int, length: int) -> torch.Tensor:
    """Fixed sine-cosine positional embeddings of a sequence.

    Parameters
    ----------
    embed_dim : int
        Width ``D`` of each embedding; must be even.
    length : int
        Number of positions ``L``.

    Returns
    -------
    torch.Tensor of shape (length, embed_dim)
        Row ``i`` is ``[sin(i * w_k), cos(i * w_k)]`` for frequencies
        ``w_k = 10000 ** (-k / (D/2))``, ``k = 0 .. D/2 - 1``, the
        Transformer's frequencies [1]_.

    Raises
    ------
    ValueError
        If ``embed_dim`` is odd or not positive, or ``length < 1``.

    Examples
    --------
    >>> from sk_replearn.nn.patches import sincos_pos_embed_1d
    >>> sincos_pos_embed_1d(8, 10).shape
    torch.Size([10, 8])

    References
    ----------
    .. [1] A. Vaswani et al. "Attention Is All You Need." NeurIPS 2017.
    """
    if embed_dim < 2 or embed_dim % 2:
        raise ValueError(
            f"embed_dim={embed_dim} must be a positive even number for 1-D "
            "sin-cos positional embeddings."
        )
    if length < 1:
        raise ValueError(f"length={length} must be at least 1.")
    return _sincos(embed_dim, torch.arange(length))


def sincos_pos_embed_2d(embed_dim: int, grid_h: int, grid_w: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine positional embeddings of a patch grid.

    The first half of the channels encodes the row, the second half the
    column, each with :func:`sincos_pos_embed_1d`; rows of the result follow
    the row-major patch order of :func:`patchify`.

    Parameters
    ----------
    embed_dim : int
        Width ``D`` of each embedding; must be a multiple of 4.
    grid_h, grid_w : int
        Number of patches along the height and the width.

    Returns
    -------
    torch.Tensor of shape (grid_h * grid_w, embed_dim)
        Row ``i * grid_w + j`` embeds the patch in grid row ``i``, column
        ``j``.

    Raises
    ------
    ValueError
        If ``embed_dim`` is not a positive multiple of 4, or a grid side is
        below 1.

    Examples
    --------
    >>> from sk_replearn.nn.patches import sincos_pos_embed_2d
    >>> sincos_pos_embed_2d(16, 7, 7).shape
    torch.Size([49, 16])
    """
    if embed_dim < 4 or embed_dim % 4:
        raise ValueError(
            f"embed_dim={embed_dim} must be a positive multiple of 4 for 2-D "
            "sin-cos positional embeddings."
        )
    if grid_h < 1 or grid_w < 1:
        raise ValueError(f"grid_h={grid_h} and grid_w={grid_w} must be at least 1.")
    rows = torch.arange(grid_h).repeat_interleave(grid_w)  # (L,) 0,0,..,1,1,..
    cols = torch.arange(grid_w).repeat(grid_h)  # (L,) 0,1,..,0,1,..
    half = embed_dim // 2
    return torch.cat([_sincos(half, rows), _sincos(half, cols)], dim=1)  # (L, D)


def random_masking(
    x: torch.Tensor,
    mask_ratio: float,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep a random subset of tokens per sample, as in MAE.

    MAE's ``random_masking`` [1]_: each sample draws uniform noise per
    token; the tokens with the smallest noise are kept, so every sample
    keeps the same number but a different subset. Sorting noise instead of
    sampling indices makes the whole batch one ``argsort`` and one
    ``gather``.

    Parameters
    ----------
    x : torch.Tensor of shape (N, L, D)
        Token sequences.
    mask_ratio : float
        Fraction of tokens to remove, strictly between 0 and 1. The number
        kept is ``L_keep = floor(L * (1 - mask_ratio))`` (computed with a
        tiny tolerance so that, e.g., ``L=10, mask_ratio=0.9`` keeps 1 token
        despite floating-point rounding).
    generator : torch.Generator, optional
        Source of the noise, for reproducible masks. Noise is drawn on the
        generator's device and moved to ``x``'s.
    noise : torch.Tensor of shape (N, L), optional
        The uniform draws themselves (the lowest of each row are kept),
        instead of drawing them.

    Returns
    -------
    x_visible : torch.Tensor of shape (N, L_keep, D)
        The kept tokens, in the (random) order they were drawn.
    mask : torch.Tensor of shape (N, L)
        In the original token order: ``0`` is keep, ``1`` is remove.
        Same dtype as ``x``.
    ids_restore : torch.Tensor of shape (N, L)
        Indices that undo the shuffle: appending ``L - L_keep`` mask tokens
        to ``x_visible`` and gathering along dim 1 with ``ids_restore``
        puts every token back at its original position.

    Raises
    ------
    ValueError
        If ``mask_ratio`` is not strictly between 0 and 1, ``x`` is not 3-D,
        or no token would be kept.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn.patches import random_masking
    >>> x = torch.randn(2, 16, 8)
    >>> x_vis, mask, ids_restore = random_masking(x, 0.75)
    >>> x_vis.shape, mask.shape, mask.sum(dim=1).tolist()
    (torch.Size([2, 4, 8]), torch.Size([2, 16]), [12.0, 12.0])

    References
    ----------
    .. [1] K. He, X. Chen, S. Xie, Y. Li, P. Dollár and R. Girshick. "Masked
       Autoencoders Are Scalable Vision Learners." CVPR 2022.
    """
    check_fraction(
        "mask_ratio", mask_ratio, "the fraction of tokens removed; MAE uses 0.75"
    )
    if x.dim() != 3:
        raise ValueError(
            f"random_masking needs tokens (N, L, D); got shape {tuple(x.shape)}."
        )
    n, length, dim = x.shape
    len_keep = int(length * (1.0 - float(mask_ratio)) + 1e-6)
    if len_keep < 1:
        raise ValueError(
            f"mask_ratio={mask_ratio} keeps no token out of {length}; lower "
            "mask_ratio or use more (smaller) patches."
        )
    if noise is not None:
        if tuple(noise.shape) != (n, length):
            raise ValueError(
                f"noise has shape {tuple(noise.shape)}; it must be (N, L) = "
                f"{(n, length)}, one draw per token of x."
            )
        noise = noise.to(x.device)
    elif generator is None:
        # No generator argument at all: torch.compile traces this with a
        # symbolic batch size, which rand(..., generator=None) rejects.
        noise = torch.rand(n, length, device=x.device)  # (N, L)
    else:
        noise = torch.rand(n, length, generator=generator, device=generator.device)
        noise = noise.to(x.device)  # (N, L)
    ids_shuffle = torch.argsort(noise, dim=1)  # (N, L) ascending: keep small
    ids_restore = torch.argsort(ids_shuffle, dim=1)  # (N, L)
    ids_keep = ids_shuffle[:, :len_keep]  # (N, L_keep)
    x_visible = torch.gather(
        x, 1, ids_keep[:, :, None].expand(-1, -1, dim)
    )  # (N, L_keep, D)
    mask = torch.ones(n, length, dtype=x.dtype, device=x.device)
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, 1, ids_restore)  # (N, L) back in original order
    return x_visible, mask, ids_restore
