"""The base shared by the views of every modality.

:class:`_Views` checks parameters and batches, augments half-precision batches
in float32 and hooks into :func:`~sk_replearn.views.make_views`;
:class:`_MultiCrop` adds multi-crop's local views; ``_uniform`` and ``_coin``
draw the ``(B, ...)`` random tensors the families share.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from numbers import Real

import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval

_Prob = Interval(Real, 0, 1, closed="both")
_NonNeg = Interval(Real, 0, None, closed="left")


def _uniform(shape: tuple[int, ...], low: float, high: float, like: torch.Tensor):
    """``U(low, high)`` samples of ``shape`` on ``like``'s device and dtype."""
    u = torch.rand(shape, device=like.device, dtype=like.dtype)
    return u * (high - low) + low


def _coin(n: int, p: float, like: torch.Tensor) -> torch.Tensor:
    """``(n,)`` bool tensor, each True with probability ``p``."""
    return torch.rand(n, device=like.device) < p


def _compiling() -> bool:
    """Whether :func:`torch.compile` is tracing the caller (torch >= 2.3)."""
    is_compiling = getattr(torch.compiler, "is_compiling", None)
    return is_compiling is not None and is_compiling()


@functools.cache
def _param_names(cls: type) -> list[str]:
    """The constructor parameters of a views class (read once per class)."""
    return cls._get_param_names()


#: Batches of these dtypes are augmented in float32 and cast back: sample
#: positions above 256 are not whole numbers in bfloat16 (a crop of a
#: 300-step signal moved 173 of its 600 values), and torch's CPU grid_sample
#: read out of bounds in bfloat16 and float16 on images of 200 pixels and up
#: (NaN and 1e37 in a flipped image of ones).
_HALF_DTYPES = (torch.bfloat16, torch.float16)


class _Views(BaseEstimator):
    """Shared machinery: parameter checks, input checks, ``make_views`` hooks."""

    _ndim: int  # dimensions of a batch, B included
    _layout: str  # shape of one sample, for messages

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Return one random view of every sample of the batch ``x``.

        Parameters
        ----------
        x : torch.Tensor
            A float batch of the family's layout (see the class docstring).

        Returns
        -------
        torch.Tensor
            The augmented batch, with ``x``'s shape, dtype and device.
        """
        self._check_batch(x)
        params = self._resolved_params()  # checked for an empty batch too
        if x.shape[0] == 0:
            return x.clone()
        if x.dtype in _HALF_DTYPES:  # see _HALF_DTYPES
            return self(x.float()).to(x.dtype)
        params.pop("local_crop_scale", None)
        return self._augment(x, **params)

    def _check_batch(self, x) -> None:
        """``x`` a float batch of the family's layout, and the parameters valid.

        The parameters are validated when they have changed since the last
        call (a views object called directly, as to look at its views, is
        checked as ``make_views`` checks it; training pays once).
        """
        if not _compiling():  # traced by torch.compile: checked when called eager
            state = repr([getattr(self, n) for n in _param_names(type(self))])
            if self.__dict__.get("_valid_params") != state:
                self._validate_params()
                self.__dict__["_valid_params"] = state
        if not isinstance(x, torch.Tensor) or x.ndim != self._ndim:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x)
            raise ValueError(
                f"{type(self).__name__} augments batches of shape (B, "
                f"{self._layout}); got {shape}."
            )
        if not x.is_floating_point():
            raise ValueError(
                f"{type(self).__name__} needs a floating point batch; got {x.dtype}."
            )

    def _check_input_shape(self, input_shape: tuple[int, ...]) -> None:
        if len(input_shape) != self._ndim - 1:
            raise ValueError(
                f"views={self!r} augments samples of shape ({self._layout}) but "
                f"input_shape={input_shape} has {len(input_shape)} dimension(s); "
                "use views='auto' or the family that fits: TabularViews for "
                "(d,), SequenceViews for (C, L), ImageViews for (C, H, W)."
            )

    def _resolved_params(self) -> dict:
        """The parameters as floats, pairs checked; raises ValueError if wrong."""
        params = {}
        # _pairs: name -> (exclusive lower bound, upper bound, None allowed)
        for name, (low, high, optional) in self._pairs.items():
            params[name] = _check_pair(name, getattr(self, name), low, high, optional)
        return params

    def _augment(self, x: torch.Tensor, **pairs) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover


def _check_pair(name: str, value, low: float, high: float, optional: bool):
    """``value`` as a float pair ``(lo, hi)`` with ``low < lo <= hi <= high``."""
    if value is None and optional:
        return None
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        lo, hi = math.nan, math.nan
    if not (low < lo <= hi <= high and math.isfinite(hi)):
        what = "None or " if optional else ""
        bounds = "low <= high" if low == -math.inf else f"{low:g} < low <= high"
        bounds += f" <= {high:g}" if high < math.inf else " (finite)"
        raise ValueError(
            f"{name}={value!r} must be {what}a pair (low, high) with {bounds}."
        )
    return lo, hi


class _MultiCrop(_Views):
    """Local views for multi-crop: small crops at a reduced size."""

    def local(self, x: torch.Tensor) -> torch.Tensor:
        """Return one random *local* view of every sample of the batch ``x``.

        Multi-crop (Caron et al. 2020): a crop of ``local_crop_scale`` of the
        sample, resized to ``local_size`` times its size (rounded, at least
        1), then the same augmentations as :meth:`__call__`. Small crops are
        cheap to encode and teach a network to match a part to the whole.
        The encoder must accept the smaller size (the package's convolutional
        encoders end in global pooling and do).

        Parameters
        ----------
        x : torch.Tensor
            A float batch of the family's layout (see the class docstring).

        Returns
        -------
        torch.Tensor
            The local views: ``x``'s batch size, channels, dtype and device,
            the spatial size scaled by ``local_size``.
        """
        self._check_batch(x)
        size = self.local_shape(x.shape[2:])
        params = self._resolved_params()  # checked for an empty batch too
        if x.shape[0] == 0:
            return x.new_empty(*x.shape[:2], *size)
        if x.dtype in _HALF_DTYPES:
            return self.local(x.float()).to(x.dtype)
        params["crop_scale"] = params.pop("local_crop_scale")
        return self._augment(x, size=size, **params)

    def local_shape(self, size: Sequence[int]) -> tuple[int, ...]:
        """Spatial size of the local views of samples of spatial ``size``."""
        if not 0 < self.local_size <= 1:
            raise ValueError(
                f"local_size={self.local_size!r} must be in (0, 1]: the size of "
                "the local views as a fraction of the input's."
            )
        return tuple(max(1, round(self.local_size * int(n))) for n in size)
