"""Damage a saved file the way a disk or a copy can: one flipped bit."""

from __future__ import annotations

from pathlib import Path

import torch


def flip_a_bit_of(tensor: torch.Tensor, path: Path) -> None:
    """Flip one bit of ``tensor``'s bytes where ``path`` stores them."""
    raw = bytearray(path.read_bytes())
    at = bytes(raw).find(tensor.numpy().tobytes())
    assert at > 0, "the tensor's bytes are not in the file"
    raw[at + 1] ^= 0x10
    path.write_bytes(bytes(raw))
