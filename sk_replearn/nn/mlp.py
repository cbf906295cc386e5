"""Multi-layer perceptrons on flattened samples: the encoder and its mirror."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ._checks import (
    activation_layer,
    check_dropout,
    check_input_shape,
    check_int,
    check_sizes,
    make_norm,
)

__all__ = ["MLPDecoder", "MLPEncoder", "mlp_layers"]


def mlp_layers(
    widths: Sequence[int], activation: str, norm: bool | str | None, dropout: float
) -> list[nn.Module]:
    # Linear -> norm -> activation -> dropout between widths; the last Linear
    # stays bare so the output (a code or a reconstruction) is unconstrained.
    activation_layer(activation)  # validate now: a single Linear uses neither
    make_norm(norm, 1)
    layers: list[nn.Module] = []
    for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(w_in, w_out))
        if i == len(widths) - 2:
            break
        norm_layer = make_norm(norm, w_out)
        if norm_layer is not None:
            layers.append(norm_layer)
        layers.append(activation_layer(activation))
        if dropout:
            layers.append(nn.Dropout(dropout))
    return layers


class MLPEncoder(nn.Module):
    """Multi-layer perceptron on the flattened sample.

    ``Linear -> norm -> activation -> dropout`` for every hidden size but the
    last, then a bare ``Linear`` to ``hidden_sizes[-1]``: the code is left
    unconstrained (no activation clips it), which suits both reconstruction
    bottlenecks and linear probes.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one sample; any shape, it is flattened.
    hidden_sizes : sequence of int, default=(256, 128)
        Widths of the layers; the last is ``out_features``.
    activation : {"relu", "gelu"}, default="relu"
        Non-linearity between layers.
    norm : bool or {"layer", "batch", "none"}, default=True
        ``True`` / ``"layer"`` is LayerNorm, which behaves the same in
        training and inference and for any batch size; ``"batch"`` is
        BatchNorm1d; ``False`` / ``None`` / ``"none"`` disables it.
    dropout : float, default=0.0
        Dropout probability after each hidden activation.

    Attributes
    ----------
    out_features : int
        Width of the output, ``hidden_sizes[-1]``.
    layers : torch.nn.Sequential
        The layers, applied to ``x.flatten(1)``.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn import MLPEncoder
    >>> enc = MLPEncoder((64,), hidden_sizes=(32, 16))
    >>> enc(torch.randn(5, 64)).shape
    torch.Size([5, 16])
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        hidden_sizes: Sequence[int] = (256, 128),
        activation: str = "relu",
        norm: bool | str | None = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.input_shape = check_input_shape(input_shape)
        self.hidden_sizes = check_sizes("hidden_sizes", hidden_sizes)
        self.activation, self.norm = activation, norm
        self.dropout = check_dropout(dropout)
        widths = (math.prod(self.input_shape), *self.hidden_sizes)
        layers = mlp_layers(widths, activation, norm, self.dropout)
        self.layers = nn.Sequential(*layers)
        self.out_features = self.hidden_sizes[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode ``(B, *input_shape)`` to ``(B, out_features)``."""
        return self.layers(x.flatten(1))


class MLPDecoder(nn.Module):
    """Multi-layer perceptron from a code back to a sample of ``input_shape``.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one reconstructed sample.
    in_features : int
        Width of the incoming code.
    hidden_sizes : sequence of int, default=(128, 256)
        Widths of the hidden layers (the default mirrors
        :class:`MLPEncoder`'s); may be empty for a linear decoder.
    activation : {"relu", "gelu"}, default="relu"
        Non-linearity between layers.
    norm : bool or {"layer", "batch", "none"}, default=True
        As in :class:`MLPEncoder`.
    dropout : float, default=0.0
        Dropout probability after each hidden activation.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn import MLPDecoder
    >>> MLPDecoder((1, 8, 8), in_features=16)(torch.randn(5, 16)).shape
    torch.Size([5, 1, 8, 8])
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        in_features: int,
        hidden_sizes: Sequence[int] = (128, 256),
        activation: str = "relu",
        norm: bool | str | None = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.input_shape = check_input_shape(input_shape)
        in_features = check_int("in_features", in_features)
        hidden = check_sizes("hidden_sizes", hidden_sizes) if hidden_sizes else ()
        widths = (in_features, *hidden, math.prod(self.input_shape))
        dropout = check_dropout(dropout)
        self.layers = nn.Sequential(*mlp_layers(widths, activation, norm, dropout))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Decode ``(B, in_features)`` to ``(B, *input_shape)``."""
        return self.layers(z).reshape(-1, *self.input_shape)
