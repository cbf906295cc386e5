"""The preprocessing :class:`~sk_replearn.PretrainedTransformer` puts
before its network: a user's module or function, or, for images, the
rescaling, channel repeat, resize and normalisation the weights ask for."""

from __future__ import annotations

import copy
from collections.abc import Callable
from numbers import Integral

import torch
from torch import nn

from .._util import is_int
from ..nn._user_modules import _dummy_forward
from ..nn.pretrained import ImagePreprocess


class PretrainedPreprocessMixin:
    """The preprocessing module a fit builds (not public)."""

    def _build_preprocess(self, X, network: nn.Module, hints: dict):
        """The preprocessing module (or None) before the network."""
        self.data_range_ = None
        if self.preprocess is None:
            return None
        if self.preprocess != "auto":
            if isinstance(self.preprocess, nn.Module):
                return copy.deepcopy(self.preprocess)
            return _Function(self.preprocess)
        shape = tuple(self.input_shape_)
        if len(shape) != 3:  # only images are adapted
            return None
        channels = _first_conv_channels(network)
        size = self.image_size
        if isinstance(size, str):  # "auto": the weights' own resolution
            size = hints.get("size")
        if isinstance(size, Integral):
            size = (int(size), int(size))
        elif size is not None and (
            len(size) != 2 or not all(is_int(v) for v in size) or min(size) < 1
        ):
            raise ValueError(
                f"image_size={self.image_size!r} must be an int >= 1 or a pair "
                "(height, width) of ints >= 1, e.g. 224 or (224, 224)."
            )
        normalize = hints.get("mean") is not None
        low = high = None
        if normalize:
            low, high = float(X.min()), float(X.max())
            self.data_range_ = (low, high)
        if not normalize and size is None and (channels in (None, shape[0])):
            return None
        return ImagePreprocess(
            low=low,
            high=high,
            channels=channels if channels != shape[0] else None,
            size=size,
            mean=hints.get("mean"),
            std=hints.get("std"),
        )


class _Function(nn.Module):
    """A preprocessing function as a module (it must be picklable)."""

    def __init__(self, fn: Callable) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def _prep_shape(prep: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The sample shape ``prep`` gives, by the encoders' dry run on zeros."""
    out = _dummy_forward(prep, (2, *shape), "preprocess")
    if out.shape[0] != 2:
        raise ValueError(
            "preprocess must map a batch (B, *input_shape) to a tensor (B, ...); "
            f"it returned one of shape {tuple(out.shape)}."
        )
    return tuple(out.shape[1:])


def _first_conv_channels(network: nn.Module) -> int | None:
    for m in network.modules():
        if isinstance(m, nn.Conv2d):
            return int(m.in_channels)
    return None
