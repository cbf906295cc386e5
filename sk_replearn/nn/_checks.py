"""Argument checks and small layer factories shared by the nn building blocks.

Each check names the argument, its value and what is allowed, so that a
mistake in ``encoder_kwargs`` reads as a scikit-learn error, not a torch
traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real

from torch import nn

from .._util import is_int

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


def check_input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"input_shape={input_shape!r} must be a tuple of positive ints: "
            "(d,) for tabular data, (C, L) for signals, (C, H, W) for images."
        ) from exc
    if not 1 <= len(shape) <= 3 or any(s < 1 for s in shape):
        raise ValueError(
            f"input_shape={input_shape!r} must be a tuple of 1 to 3 positive "
            "ints: (d,) for tabular data, (C, L) for signals, (C, H, W) for "
            "images."
        )
    return shape


def check_int(name: str, value, low: int = 1) -> int:
    # numbers.Integral so numpy ints from a parameter grid are accepted.
    if not is_int(value) or value < low:
        raise ValueError(f"{name}={value!r} must be an int >= {low}.")
    return int(value)


def check_sizes(name: str, value) -> tuple[int, ...]:
    if is_int(value):
        value = (value,)
    try:
        sizes = tuple(value)
    except TypeError:
        sizes = ()
    if not sizes or any(not is_int(s) or s < 1 for s in sizes):
        raise ValueError(
            f"{name}={value!r} must be a non-empty sequence of positive ints, "
            "e.g. (32, 64)."
        )
    return tuple(int(s) for s in sizes)


def activation_layer(name: str) -> nn.Module:
    if not isinstance(name, str) or name not in _ACTIVATIONS:
        raise ValueError(
            f"activation={name!r} is not supported; use one of {sorted(_ACTIVATIONS)}."
        )
    return _ACTIVATIONS[name]()


def make_norm(norm: bool | str | None, width: int) -> nn.Module | None:
    if norm is True or norm == "layer":
        return nn.LayerNorm(width)
    if norm == "batch":
        return nn.BatchNorm1d(width)
    if norm is False or norm is None or norm == "none":
        return None
    raise ValueError(
        f"norm={norm!r} must be True or 'layer' (LayerNorm), 'batch' "
        "(BatchNorm1d), or False / None / 'none'."
    )


def check_dropout(dropout: float) -> float:
    if (
        not isinstance(dropout, Real)
        or isinstance(dropout, bool)
        or not 0.0 <= float(dropout) < 1.0
    ):
        raise ValueError(f"dropout={dropout!r} must be a float in [0, 1).")
    return float(dropout)


def check_fraction(name: str, value, what: str) -> float:
    """``value`` as a float strictly between 0 and 1, or a ValueError naming
    ``name`` and saying ``what`` it is the fraction of."""
    if not isinstance(value, Real) or isinstance(value, bool) or not 0 < value < 1:
        raise ValueError(
            f"{name}={value!r} must be a float strictly between 0 and 1 ({what})."
        )
    return float(value)


def spatial_sizes(shape: tuple[int, ...], owner: str) -> tuple[int, ...]:
    if len(shape) not in (2, 3):
        param = "decoder" if owner.endswith("Decoder") else "encoder"
        hint = (
            f"; for tabular data use {param}='mlp', or pass input_shape=(1, "
            f"{shape[0]}) to treat each row as a 1-channel signal"
            if len(shape) == 1
            else ""
        )
        raise ValueError(
            f"{owner} needs input_shape (C, L) for signals or (C, H, W) for "
            f"images, got input_shape={shape}{hint}."
        )
    return shape[1:]
