"""How MAE cuts a sample into tokens: the shape that is cut, and the patch
size that ``"auto"`` chooses for it (public from
:mod:`sk_replearn.objectives.masked`)."""

from __future__ import annotations

from collections.abc import Sequence

from ..nn import transformer

#: "auto" aims at no more tokens than this (attention is quadratic in them).
_MAX_AUTO_TOKENS = 64
#: ... and at no more than this for a table, whose tokens carry one value
#: each: 64 one-feature tokens made a digits fit 3x slower for no accuracy.
_MAX_AUTO_TABLE_TOKENS = 32


def token_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    """The ``(C, L)`` or ``(C, H, W)`` shape that is cut into tokens.

    A table ``(d,)`` is read as a 1-channel signal ``(1, d)``: its tokens are
    single features or groups of consecutive features, and their "positions"
    are feature identities rather than places in space or time.

    Examples
    --------
    >>> from sk_replearn.objectives.masked import token_shape
    >>> token_shape((64,)), token_shape((1, 8, 8))
    ((1, 64), (1, 8, 8))
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 1:
        return (1, shape[0])
    if len(shape) not in (2, 3):
        raise ValueError(
            f"input_shape={shape} must be (d,) for tables, (C, L) for signals "
            "or (C, H, W) for images."
        )
    return shape


def resolve_patch_size(patch_size: int | str, input_shape: Sequence[int]) -> int:
    """Resolve the ``patch_size`` parameter for a sample shape.

    Parameters
    ----------
    patch_size : int or "auto"
        Side of a square patch (images), length of a segment (signals) or
        number of consecutive features per token (tables).
    input_shape : tuple of int
        ``(d,)``, ``(C, L)`` or ``(C, H, W)``.

    Returns
    -------
    int
        For images and signals, ``"auto"`` is the smallest ``p >= 2`` giving
        4 to 64 tokens (8x8 -> 2, 28x28 -> 4, length 40 -> 2), else the
        ``p`` giving the fewest tokens from 4 to 256 (length 127 -> 1,
        254 -> 2), as
        :class:`~sk_replearn.nn.ViTEncoder` chooses. For
        tables it is 1 (one token per feature) when ``d <= 32``, else the
        smallest divisor of ``d`` giving at most 32 tokens and at least 4,
        else 1 up to ``d = 256``.

    Raises
    ------
    ValueError
        If an int ``patch_size`` does not divide the spatial sizes (naming
        ``patch_size`` and the valid values), or if "auto" finds no patch
        for a table of more than 256 features (a prime number of them, say),
        which would otherwise get one token per feature.

    Examples
    --------
    >>> from sk_replearn.objectives.masked import resolve_patch_size
    >>> resolve_patch_size("auto", (1, 8, 8)), resolve_patch_size("auto", (30,))
    (2, 1)
    >>> resolve_patch_size("auto", (64,)), resolve_patch_size("auto", (100,))
    (2, 4)
    >>> resolve_patch_size(5, (1, 40))
    5
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 1 and patch_size == "auto":
        d = shape[0]
        if d <= _MAX_AUTO_TABLE_TOKENS:
            return 1
        for p in range(2, d + 1):
            if d % p == 0 and d // p <= _MAX_AUTO_TABLE_TOKENS:
                if d // p >= 4:
                    return p
                break
        if d <= 4 * _MAX_AUTO_TOKENS:  # as for signals without a patch
            return 1
        others = [p for p in range(2, d // 2 + 1) if d % p == 0]
        other = f" (or another divisor of {d}: {others[:8]})" if others else ""
        raise ValueError(
            f"MAETransformer could not choose a patch_size for {d} features: "
            f"no divisor of {d} cuts them into 4 to {_MAX_AUTO_TABLE_TOKENS} "
            f"tokens, and one token per feature would make {d} (attention's "
            "cost grows with their square: 997 took 13 s an epoch for 256 "
            "rows on one core). Pass patch_size=1 to accept that"
            f"{other}, or reduce the features first (PCATransformer, or fewer "
            "columns)."
        )
    return transformer.resolve_patch_size(
        patch_size, token_shape(shape), "MAETransformer"
    )
