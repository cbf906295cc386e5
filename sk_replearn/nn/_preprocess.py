"""Adapting raw samples to a pre-trained image network (public from
:mod:`sk_replearn.nn.pretrained`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class ImagePreprocess(nn.Module):
    """Adapt raw samples to a pre-trained image network.

    In this order: ``(x - low) / (high - low)`` (to [0, 1], as the
    networks' training images were), channel repeat (a grey image to the
    three channels an RGB network takes), bilinear resize, then
    ``(x - mean) / std`` with the weights' own statistics.

    Parameters
    ----------
    low, high : float or None, default=None
        The range of the raw values; None for none (no rescaling).
    channels : int or None, default=None
        Repeat a 1-channel image to this many channels; None keeps them.
    size : tuple of int or None, default=None
        ``(H, W)`` to resize to; None keeps the size.
    mean, std : sequence of float or None, default=None
        Per-channel normalisation after the resize; None for none.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn.pretrained import ImagePreprocess
    >>> prep = ImagePreprocess(low=0, high=16, channels=3, size=(28, 28))
    >>> prep(torch.full((2, 1, 8, 8), 16.0)).shape
    torch.Size([2, 3, 28, 28])
    """

    def __init__(
        self,
        low: float | None = None,
        high: float | None = None,
        channels: int | None = None,
        size: Sequence[int] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.rescale = low is not None and high is not None and high > low
        self.register_buffer("low", torch.tensor(float(low) if self.rescale else 0.0))
        self.register_buffer(
            "span", torch.tensor(float(high - low) if self.rescale else 1.0)
        )
        self.channels = None if channels is None else int(channels)
        self.size = None if size is None else tuple(int(s) for s in size)
        self.normalize = mean is not None and std is not None
        shape = (1, -1, 1, 1)
        self.register_buffer(
            "mean", torch.tensor(list(mean) if self.normalize else [0.0]).view(shape)
        )
        self.register_buffer(
            "std", torch.tensor(list(std) if self.normalize else [1.0]).view(shape)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The adapted batch, ``(B, channels, *size)``."""
        if self.rescale:
            x = (x - self.low) / self.span
        if self.channels is not None and x.shape[1] == 1 and self.channels != 1:
            x = x.expand(-1, self.channels, *x.shape[2:])
        if self.size is not None and tuple(x.shape[2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        if self.normalize:
            x = (x - self.mean) / self.std
        return x
