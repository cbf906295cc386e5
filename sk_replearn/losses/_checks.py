"""Argument checks and numerics shared by the loss modules."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def upcast(z: torch.Tensor) -> torch.Tensor:
    """``z`` in at least float32: half-precision logits and sums overflow."""
    return z.to(torch.promote_types(z.dtype, torch.float32))


def matmul32(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` of float32 tensors in float32, even under autocast.

    Autocast runs matrix products in its low precision whatever their
    inputs: a float16 covariance ``z.T @ z`` of 256 embeddings of spread 16
    overflows (65,504), and float16 logits round a cosine to 3 digits.
    """
    kind = a.device.type
    if kind not in ("cpu", "cuda"):
        return a @ b
    with torch.autocast(device_type=kind, enabled=False):
        return a @ b


def normalize(z: torch.Tensor) -> torch.Tensor:
    """L2-normalise rows, in at least float32."""
    return F.normalize(upcast(z), dim=1)


def check_positive(name: str, value: float) -> float:
    """``value`` as a float, or a ValueError naming ``name`` unless finite and > 0."""
    value = float(value)
    if not 0 < value < float("inf"):  # also rejects nan
        raise ValueError(f"{name} must be > 0 and finite, got {value!r}.")
    return value


def check_non_negative(name: str, value: float) -> float:
    """``value`` as a float, or a ValueError naming ``name`` unless it is >= 0."""
    value = float(value)
    if not value >= 0:  # also rejects nan
        raise ValueError(f"{name} must be >= 0, got {value!r}.")
    return value


def check_pair(a: torch.Tensor, b: torch.Tensor, names: str) -> None:
    """Two embeddings of the same shape ``(N, D)``, ``N >= 1``, or a ValueError."""
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(
            f"{names} must both have shape (N, D); got {tuple(a.shape)} and "
            f"{tuple(b.shape)}."
        )
    if a.shape[0] == 0:
        raise ValueError(
            f"{names} hold no samples (N=0): the loss of an empty batch is undefined."
        )
