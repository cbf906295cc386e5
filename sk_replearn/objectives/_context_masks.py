"""The regions a context encoder hides: a central block, random blocks or
random regions of arbitrary shape (Pathak et al. 2016), as masks "1 is
hidden, 0 is visible" (public from :mod:`sk_replearn.objectives.context`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.nn import functional as F

#: The kinds of hidden region ``mask`` names.
MASKS = ("center", "blocks", "regions")


def resolve_block_size(block_size: int | str, input_shape: Sequence[int]) -> int:
    """Side of a random block (length of a random segment) for ``input_shape``.

    Parameters
    ----------
    block_size : int or "auto"
        ``"auto"`` is a quarter of the smallest spatial size, at least 1
        (7 on 28x28 images, 2 on 8x8, 10 on signals of length 40).
    input_shape : tuple of int
        ``(C, L)`` or ``(C, H, W)``; a table ``(d,)`` has no blocks and
        resolves to 1.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``block_size`` is not smaller than every spatial size (a block
        would hide the whole sample along an axis).

    Examples
    --------
    >>> from sk_replearn.objectives.context import resolve_block_size
    >>> resolve_block_size("auto", (1, 28, 28)), resolve_block_size(3, (2, 40))
    (7, 3)
    """
    spatial = tuple(int(s) for s in input_shape[1:])
    if not spatial:
        return 1
    if min(spatial) < 2:
        raise ValueError(
            f"Samples of shape {tuple(input_shape)} have a side of 1, which any "
            "block hides whole. Drop that axis: signals are (C, L) (reshape X, "
            "or pass such an input_shape)."
        )
    if block_size == "auto":
        return max(1, min(spatial) // 4)
    if block_size >= min(spatial):
        raise ValueError(
            f"block_size={block_size} is not smaller than the samples' spatial "
            f"size {spatial}: one block would hide a whole side. Use a "
            f"block_size below {min(spatial)}, or 'auto'."
        )
    return int(block_size)


def center_extent(spatial: Sequence[int], mask_ratio: float) -> tuple[int, ...]:
    """Sides of the central block hiding ``mask_ratio`` of a grid ``spatial``.

    Every side is the grid's side times ``mask_ratio ** (1 / ndim)``,
    rounded, at least 1 (28x28 at 0.25 -> 14x14).

    Raises
    ------
    ValueError
        If the block would cover the whole grid (at any ``mask_ratio`` for a
        grid of one cell).

    Examples
    --------
    >>> from sk_replearn.objectives.context import center_extent
    >>> center_extent((28, 28), 0.25), center_extent((40,), 0.25)
    ((14, 14), (10,))
    """
    if all(s == 1 for s in spatial):
        raise ValueError(
            f"Samples of spatial size {tuple(spatial)} hold one value a channel, "
            "which a central block hides whole at any mask_ratio. Pass them as "
            "rows (X.reshape(len(X), -1)): on a table the context encoder hides "
            "some features and predicts them from the others."
        )
    root = mask_ratio ** (1.0 / len(spatial))
    sides = tuple(max(1, round(s * root)) for s in spatial)
    if all(side >= s for side, s in zip(sides, spatial)):
        raise ValueError(
            f"mask_ratio={mask_ratio} makes the central block {sides} as large "
            f"as the samples {tuple(spatial)}, so nothing stays visible; lower "
            "mask_ratio."
        )
    return sides


def _hidden_count(size: int, mask_ratio: float) -> int:
    """``round(mask_ratio * size)``, kept within ``[1, size - 1]``."""
    return min(max(round(mask_ratio * size), 1), size - 1)


def _top_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """1 on the ``k`` highest of each row of ``scores`` ``(B, n)``, else 0."""
    index = scores.topk(k, dim=1).indices  # (B, k)
    return torch.zeros_like(scores).scatter_(1, index, 1.0)


def _block_at(
    starts: torch.Tensor, spatial: Sequence[int], block_size: int
) -> torch.Tensor:
    """1 on one block per sample: ``starts`` ``(B, ndim)`` -> ``(B, *spatial)``."""
    block = None
    for axis, size in enumerate(spatial):
        coords = torch.arange(size, device=starts.device)  # (S,)
        start = starts[:, axis : axis + 1]  # (B, 1)
        inside = (coords >= start) & (coords < start + block_size)  # (B, S)
        shape = [len(starts)] + [1] * len(spatial)
        shape[axis + 1] = size
        inside = inside.reshape(shape)
        block = inside if block is None else block & inside
    return block


def _random_blocks(
    n: int,
    spatial: Sequence[int],
    mask_ratio: float,
    block_size: int,
    rand,
    device: torch.device | str | None,
) -> torch.Tensor:
    """Blocks at uniform positions, added until ``mask_ratio`` is hidden.

    Blocks may overlap; each sample gets blocks until at least
    ``mask_ratio`` of it is hidden, so it ends hiding less than one block
    more than that.
    """
    area = math.prod(spatial)
    target = _hidden_count(area, mask_ratio)
    mask = torch.zeros(n, *spatial, dtype=torch.bool, device=device)
    high = torch.tensor([s - block_size + 1 for s in spatial], device=mask.device)
    need = torch.ones(n, dtype=torch.bool, device=mask.device)
    while bool(need.any()):
        starts = (rand(n, len(spatial)) * high).long()  # (B, ndim)
        block = _block_at(starts, spatial, block_size)  # (B, *spatial)
        mask |= block & need.reshape(-1, *[1] * len(spatial))
        need = mask.flatten(1).sum(1) < target
    return mask.float()


def _random_regions(
    n: int,
    spatial: Sequence[int],
    mask_ratio: float,
    block_size: int,
    rand,
) -> torch.Tensor:
    """Smooth random regions hiding exactly ``round(mask_ratio * size)`` values.

    Uniform noise on a coarse grid (one cell per ``block_size``), upsampled
    (bi)linearly to the sample's grid; each sample's highest values are
    hidden, which gives blobs of irregular shape: the paper takes its random
    regions' shapes from segmentation masks, which smooth noise stands in
    for.
    """
    coarse = [max(2, math.ceil(s / block_size)) for s in spatial]
    noise = rand(n, 1, *coarse)  # (B, 1, *coarse)
    mode = "linear" if len(spatial) == 1 else "bilinear"
    smooth = F.interpolate(noise, size=tuple(spatial), mode=mode, align_corners=False)
    flat = _top_k_mask(smooth.flatten(1), _hidden_count(math.prod(spatial), mask_ratio))
    return flat.reshape(n, *spatial)


def context_mask(
    n: int,
    input_shape: Sequence[int],
    mask: str = "center",
    mask_ratio: float = 0.25,
    block_size: int | str = "auto",
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw the hidden regions of ``n`` samples.

    Parameters
    ----------
    n : int
        Number of samples.
    input_shape : tuple of int
        ``(d,)`` (a table), ``(C, L)`` (signals) or ``(C, H, W)`` (images).
    mask : {"center", "blocks", "regions"}, default="center"
        ``"center"``: the central block (segment) hiding ``mask_ratio`` of
        the sample, the same for every sample. ``"blocks"``: random,
        possibly overlapping blocks of side ``block_size`` until at least
        ``mask_ratio`` is hidden. ``"regions"``: random smooth regions of
        scale ``block_size`` hiding exactly ``round(mask_ratio * size)``
        values. On a table every kind hides ``round(mask_ratio * d)``
        random features of each row (features have no neighbours).
    mask_ratio : float, default=0.25
        Fraction of the sample to hide, in (0, 1); at least one value is
        hidden, and one stays visible except under overlapping blocks at a
        ratio close to 1.
    block_size : int or "auto", default="auto"
        See :func:`resolve_block_size`; ignored by ``"center"``.
    generator : torch.Generator, optional
        Source of the randomness (its device draws it); torch's global
        generator by default.
    device : torch.device or str, optional
        Device of the result; the generator's (or the CPU) by default.

    Returns
    -------
    torch.Tensor of shape (n, d), (n, 1, L) or (n, 1, H, W)
        1 is hidden, 0 is visible; the channel axis broadcasts over the
        sample's channels (a pixel is hidden in every channel).

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.objectives.context import context_mask
    >>> m = context_mask(2, (1, 8, 8), "center", 0.25)
    >>> m.shape, float(m.mean()), m[0, 0, 2:6, 2:6].min().item()
    (torch.Size([2, 1, 8, 8]), 0.25, 1.0)
    >>> g = torch.Generator().manual_seed(0)
    >>> float(context_mask(3, (1, 28, 28), "regions", 0.25, generator=g).mean())
    0.25
    >>> context_mask(4, (10,), "blocks", 0.3, generator=g).sum(1)
    tensor([3., 3., 3., 3.])
    """
    shape = tuple(int(s) for s in input_shape)
    if mask not in MASKS:
        raise ValueError(f"mask={mask!r} is not one of {list(MASKS)}.")
    source = generator.device if generator is not None else device

    def rand(*size: int) -> torch.Tensor:
        return torch.rand(*size, generator=generator, device=source)

    if len(shape) == 1:  # a table
        hidden = _top_k_mask(rand(n, shape[0]), _hidden_count(shape[0], mask_ratio))
        return hidden.to(device) if device is not None else hidden
    spatial = shape[1:]
    # "center" draws no blocks: its block_size is ignored, never checked
    block = resolve_block_size("auto" if mask == "center" else block_size, shape)
    if mask == "center":
        sides = center_extent(spatial, mask_ratio)
        starts = torch.tensor([[(s - c) // 2 for s, c in zip(spatial, sides)]])
        hidden = torch.zeros(n, *spatial)
        slices = tuple(slice(b, b + c) for b, c in zip(starts[0].tolist(), sides))
        hidden[(slice(None), *slices)] = 1.0
    elif mask == "blocks":
        hidden = _random_blocks(n, spatial, mask_ratio, block, rand, source)
    else:
        hidden = _random_regions(n, spatial, mask_ratio, block, rand)
    hidden = hidden.unsqueeze(1)  # (n, 1, *spatial)
    return hidden.to(device if device is not None else hidden.device)
