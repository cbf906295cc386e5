"""The input standardisation every objective applies before its encoder."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["Standardize"]


class Standardize(nn.Module):
    """``(x - shift) / scale`` with scalar buffers, then an optional reshape.

    Parameters
    ----------
    shift, scale : float or torch.Tensor
        The objective's input standardisation.
    shape : tuple of int or None, default=None
        Shape of one sample after standardising (e.g. the token layout of
        a masked autoencoder); None keeps the input's.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn import Standardize
    >>> Standardize(1.0, 2.0, shape=(1, 2))(torch.tensor([[3.0, 5.0]]))
    tensor([[[1., 2.]]])
    """

    def __init__(self, shift, scale, shape: Sequence[int] | None = None) -> None:
        super().__init__()
        self.register_buffer("shift", torch.as_tensor(shift, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        self.shape = None if shape is None else tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise (and reshape) a batch ``(B, *input_shape)``."""
        x = (x - self.shift) / self.scale
        return x if self.shape is None else x.reshape(x.shape[0], *self.shape)
