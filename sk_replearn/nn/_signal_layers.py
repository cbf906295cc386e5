"""The convolutional layers of 1-D signals, computed as one-row images.

:class:`SignalConv`, :class:`SignalBatchNorm` and :class:`SignalAvgPool`
have the parameters, the state dict and the results (to rounding) of
``Conv1d``, ``BatchNorm1d`` and ``AdaptiveAvgPool1d``, and compute on the
CPU in the channels-last layout of a one-row image, a quarter faster. The
encoders of :mod:`sk_replearn.nn.conv` build them (public from there and
from :mod:`sk_replearn.nn`).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SignalAvgPool", "SignalBatchNorm", "SignalConv"]


#: Whether the encoders' signal layers compute in the channels-last layout
#: (:class:`SignalConv`, :class:`SignalBatchNorm`); read at every call.
_CHANNELS_LAST_SIGNALS = True


def _as_channels_last_image(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, L)`` as a one-row image ``(B, C, 1, L)`` in channels-last layout.

    A view when ``x`` already has channels-last strides (what the signal
    layers return), a copy otherwise, and always for a single channel.
    """
    if x.shape[1] == 1:
        # One channel (a network's input): torch reads the strides of any
        # (B, 1, 1, L) layout as channels first unless told, so the first
        # convolution would return channels first and the batch norm after
        # it would copy its output. Copy the B * L input values instead.
        n, _, length = x.shape
        image = torch.empty_strided(
            (n, 1, 1, length), (length, 1, length, 1), dtype=x.dtype, device=x.device
        )
        return image.copy_(x.unsqueeze(2))
    return x.unsqueeze(2).contiguous(memory_format=torch.channels_last)


class SignalConv(nn.Conv1d):
    """:class:`torch.nn.Conv1d` computed as a channels-last one-row image.

    The same module, parameters and result as ``Conv1d`` (to rounding): the
    input ``(B, C, L)`` is viewed as an image ``(B, C, 1, L)`` stored
    channels last, convolved by the ``(1, k)`` kernel, and the output
    ``(B, C', L')`` comes back as a view with channels-last strides
    (``stride(1) == 1``), which the next signal layer uses without a copy.
    On the CPU, oneDNN convolves that layout directly and batch norm runs
    its channels-last kernel (see :class:`SignalBatchNorm`), where
    ``Conv1d``'s layout is reordered at every call: a ResNet training step
    on MNIST-1D (batches of 256 signals of length 40) took 25% less time at
    one thread and at two. Images gain nothing from the same layout here,
    so :class:`CNNEncoder` and :class:`ResNetEncoder` use it for signals
    only.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn import SignalConv
    >>> conv = SignalConv(3, 8, 5, padding=2)
    >>> x = torch.randn(4, 3, 40)
    >>> y = conv(x)
    >>> y.shape, y.stride(1)
    (torch.Size([4, 8, 40]), 1)
    >>> torch.allclose(y, torch.nn.functional.conv1d(x, conv.weight, conv.bias,
    ...                                              padding=2), atol=1e-5)
    True
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve ``(B, C, L)`` to ``(B, C', L')`` (other inputs as ``Conv1d``)."""
        if (
            not _CHANNELS_LAST_SIGNALS
            or x.dim() != 3
            or self.padding_mode != "zeros"
            or x.device.type != "cpu"
        ):
            return super().forward(x)
        padding = self.padding if isinstance(self.padding, str) else (0, *self.padding)
        out = nn.functional.conv2d(
            _as_channels_last_image(x),
            self.weight.unsqueeze(2),
            self.bias,
            (1, *self.stride),
            padding,
            (1, *self.dilation),
            self.groups,
        )
        return out.squeeze(2)


class SignalBatchNorm(nn.BatchNorm1d):
    """:class:`torch.nn.BatchNorm1d` of signals ``(B, C, L)``, channels last.

    The same module, parameters, running statistics and result as
    ``BatchNorm1d`` (to rounding); a signal is normalised as a one-row
    image in channels-last layout, where torch's CPU kernel reads each
    position's channels as one vector, and comes back with channels-last
    strides (see :class:`SignalConv`). Inputs ``(B, C)`` are normalised as
    ``BatchNorm1d`` does.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn import SignalBatchNorm
    >>> bn = SignalBatchNorm(8)
    >>> x = torch.randn(4, 8, 40)
    >>> torch.allclose(bn(x), torch.nn.BatchNorm1d(8)(x), atol=1e-5)
    True
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``(B, C, L)`` (or ``(B, C)``), keeping the shape."""
        if not _CHANNELS_LAST_SIGNALS or x.dim() != 3 or x.device.type != "cpu":
            return super().forward(x)
        return super().forward(_as_channels_last_image(x)).squeeze(2)

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() == 4 and input.shape[2] == 1:
            return  # a signal as a one-row image, from forward
        super()._check_input_dim(input)


class SignalAvgPool(nn.AdaptiveAvgPool1d):
    """:class:`torch.nn.AdaptiveAvgPool1d` whose gradient keeps channels last.

    The same module and result as ``AdaptiveAvgPool1d``, bit for bit. For
    global pooling (``output_size=1``) of a float32 or float64 signal in the
    channels-last layout on the CPU (what :class:`SignalConv` and
    :class:`SignalBatchNorm` return), the mean is taken as a sum along the
    length divided by it: the same additions in the same order, but the
    gradient flowing back is the output's gradient broadcast along the
    length, in the layout of the activations. ``AdaptiveAvgPool1d``'s
    gradient is a new channels-first tensor, and the ReLU's backward that
    meets it mixes the two layouts, which torch computes several times
    slower than either one.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn import SignalAvgPool
    >>> x = torch.randn(4, 40, 8).transpose(1, 2)  # (4, 8, 40), channels last
    >>> y = SignalAvgPool(1)(x)
    >>> y.shape, torch.equal(y, torch.nn.AdaptiveAvgPool1d(1)(x))
    (torch.Size([4, 8, 1]), True)
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool ``(B, C, L)`` to ``(B, C, output_size)``."""
        if (
            _CHANNELS_LAST_SIGNALS
            and self.output_size in (1, (1,))
            and x.dim() == 3
            and x.stride(1) == 1
            and x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.float64)
        ):
            # (in half precision the sum would be rounded before the division)
            return x.sum(2, keepdim=True) / x.shape[2]
        return super().forward(x)
