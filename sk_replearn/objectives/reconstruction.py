"""Reconstruction objective: the (denoising) autoencoder.

``x -> E(x) = z -> D(z) ≈ x``, trained on ``||D(E(x̃)) - x||²`` where ``x̃`` is
``x`` itself or a corrupted copy (Vincent et al., 2008, "Extracting and
composing robust features with denoising autoencoders").
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from ..nn import build_decoder, build_encoder, resolve_encoder
from ..nn.build import builder_kwargs
from ..nn.surgery import TransferEncoder
from .base import Objective

__all__ = ["AutoencoderObjective", "corrupt"]


#: The corruptions of :func:`corrupt`.
_NOISE_TYPES = frozenset({"gaussian", "mask"})


def _check_noise_type(noise_type) -> None:
    """Refuse a ``noise_type`` that is not one of :data:`_NOISE_TYPES`."""
    if noise_type not in _NOISE_TYPES:
        raise ValueError(
            f"noise_type={noise_type!r} is not a kind of corruption; use one "
            f"of {sorted(_NOISE_TYPES)}."
        )


def corrupt(x: torch.Tensor, noise: float, noise_type: str) -> torch.Tensor:
    """Corrupt a batch for a denoising autoencoder.

    Parameters
    ----------
    x : torch.Tensor of shape (B, ...)
        Standardised input.
    noise : float
        Gaussian standard deviation (``noise_type="gaussian"``) or the
        fraction of input values set to zero (``noise_type="mask"``).
    noise_type : {"gaussian", "mask"}
        Kind of corruption.

    Returns
    -------
    torch.Tensor of the same shape as ``x``

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.objectives.reconstruction import corrupt
    >>> x = torch.ones(2, 1000)
    >>> frac_zeroed = float((corrupt(x, 0.25, "mask") == 0).float().mean())
    >>> abs(frac_zeroed - 0.25) < 0.05
    True
    """
    _check_noise_type(noise_type)
    if noise <= 0:
        return x
    if noise_type == "gaussian":
        return x + noise * torch.randn_like(x)
    keep = torch.rand_like(x) >= noise
    return x * keep


class AutoencoderObjective(Objective):
    """Encoder, linear bottleneck and decoder trained on reconstruction MSE.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one sample.
    n_components : int
        Width of the bottleneck code ``z``.
    encoder, decoder : str or type, default="auto"
        See :func:`sk_replearn.nn.build_encoder` and
        :func:`sk_replearn.nn.build_decoder`.
    encoder_kwargs, decoder_kwargs : dict or None
        Keyword arguments of the encoder / decoder.
    noise : float, default=0.0
        Corruption of the training input (denoising autoencoder).
    noise_type : {"gaussian", "mask"}, default="gaussian"
        Kind of corruption.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.objectives.reconstruction import AutoencoderObjective
    >>> obj = AutoencoderObjective(input_shape=(1, 8, 8), n_components=4)
    >>> obj.encode(torch.zeros(3, 1, 8, 8)).shape
    torch.Size([3, 4])
    >>> obj(torch.zeros(3, 1, 8, 8)).shape
    torch.Size([3, 1, 8, 8])
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        n_components: int,
        encoder="auto",
        encoder_kwargs: dict | None = None,
        decoder="auto",
        decoder_kwargs: dict | None = None,
        noise: float = 0.0,
        noise_type: str = "gaussian",
    ) -> None:
        super().__init__(tuple(input_shape))
        encoder = resolve_encoder(encoder, tuple(input_shape), mirrored=True)
        kwargs = builder_kwargs(encoder_kwargs, "encoder_kwargs", ["input_shape"])
        self.backbone = build_encoder(encoder, tuple(input_shape), **kwargs)
        self.bottleneck = nn.Linear(self.backbone.out_features, n_components)
        # Given the built encoder, "auto" mirrors its actual sizes.
        self.decoder = build_decoder(
            decoder,
            self.backbone,
            tuple(input_shape),
            n_components,
            **builder_kwargs(
                decoder_kwargs, "decoder_kwargs", ["input_shape", "in_features"]
            ),
        )
        self.noise = float(noise)
        _check_noise_type(noise_type)  # now, not at the first training step
        self.noise_type = noise_type

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Bottleneck code ``(B, n_components)`` of a raw batch."""
        return self.bottleneck(self.backbone(self.normalize(x)))

    def transfer_encoder(self, input_shape: tuple[int, ...]) -> nn.Module:
        """Copies of the standardisation, backbone and bottleneck."""
        return TransferEncoder(
            copy.deepcopy(self.backbone),
            input_shape,
            self.bottleneck.out_features,
            prep=self._standardize(),
            head=copy.deepcopy(self.bottleneck),
        )

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``(B, *input_shape)`` in the input's units."""
        return self.denormalize(self.decoder(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction, in standardised units, of a (corrupted) batch."""
        xn = self.normalize(x)
        if self.training:
            xn = corrupt(xn, self.noise, self.noise_type)
        return self.decoder(self.bottleneck(self.backbone(xn)))

    def loss(self, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Mean squared error against the clean, standardised input."""
        return F.mse_loss(output.float(), self.normalize(x))
