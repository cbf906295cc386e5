"""Context encoders: fill in hidden regions of a sample from their context.

Pathak et al. (2016), "Context Encoders: Feature Learning by Inpainting": a
region of the input is hidden (a central block, random blocks, or random
regions of arbitrary shape), a convolutional encoder reads what is left (the
*context*), and a decoder paints the hidden region back. The loss is the
squared error on the hidden region (the paper's reconstruction loss; the
context may be weighted lightly). To fill a hole plausibly the encoder must
know what the samples look like, which is the representation one wants.

The stages are callable on their own, as in :mod:`.masked`:
:func:`context_mask` (a pure tensor function, "1 is hidden, 0 is visible"),
:meth:`ContextEncoderObjective.forward_encoder`,
:meth:`ContextEncoderObjective.forward_decoder` and
:meth:`ContextEncoderObjective.forward_loss`. The masks' geometry is defined
in the private ``_context_masks.py`` and public from here.
"""

from __future__ import annotations

import torch

from ._context_masks import MASKS, center_extent, context_mask, resolve_block_size
from ._keyed_noise import KeyedNoise
from .reconstruction import AutoencoderObjective

__all__ = [
    "MASKS",
    "ContextEncoderObjective",
    "center_extent",
    "context_mask",
    "resolve_block_size",
]


class ContextEncoderObjective(AutoencoderObjective):
    """Convolutional encoder-decoder trained to fill in hidden regions.

    The autoencoder's networks (:class:`.AutoencoderObjective`: encoder,
    linear code of ``n_components``, mirrored decoder), trained on another
    task: the encoder reads the sample with a region hidden (set to the
    mean, 0 in standardised units, as the paper fills it) and the decoder
    predicts the whole sample, scored on the hidden region.

    Parameters
    ----------
    input_shape : tuple of int
        ``(d,)``, ``(C, L)`` or ``(C, H, W)``.
    n_components : int
        Width of the code between encoder and decoder.
    encoder, decoder : str or type, default="auto"
        As for :class:`.AutoencoderObjective` (a strided CNN and its mirror
        on images and signals, MLPs on tables).
    encoder_kwargs, decoder_kwargs : dict or None
        Keyword arguments of the encoder / decoder.
    mask : {"center", "blocks", "regions"}, default="center"
        See :func:`context_mask`.
    mask_ratio : float, default=0.25
        Fraction of each sample hidden in training.
    block_size : int or "auto", default="auto"
        See :func:`resolve_block_size`; ignored by ``"center"``.
    context_weight : float, default=0.0
        Weight of the squared error on the visible values, relative to the
        hidden ones' (0 scores the hidden region alone).

    References
    ----------
    .. [1] D. Pathak, P. Krähenbühl, J. Donahue, T. Darrell and A. A. Efros.
       "Context Encoders: Feature Learning by Inpainting." CVPR 2016.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.objectives.context import ContextEncoderObjective
    >>> obj = ContextEncoderObjective((1, 8, 8), n_components=4)
    >>> x = torch.randn(3, 1, 8, 8)
    >>> z, mask = obj.forward_encoder(x)
    >>> z.shape, mask.shape
    (torch.Size([3, 4]), torch.Size([3, 1, 8, 8]))
    >>> pred = obj.forward_decoder(z)
    >>> pred.shape, obj.forward_loss(x, pred, mask).shape
    (torch.Size([3, 1, 8, 8]), torch.Size([]))
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        n_components: int,
        encoder="auto",
        encoder_kwargs: dict | None = None,
        decoder="auto",
        decoder_kwargs: dict | None = None,
        mask: str = "center",
        mask_ratio: float = 0.25,
        block_size: int | str = "auto",
        context_weight: float = 0.0,
    ) -> None:
        super().__init__(
            input_shape,
            n_components,
            encoder=encoder,
            encoder_kwargs=encoder_kwargs,
            decoder=decoder,
            decoder_kwargs=decoder_kwargs,
        )
        self.input_shape = tuple(int(s) for s in input_shape)
        self.mask = mask
        self.mask_ratio = float(mask_ratio)
        # "center" draws no blocks: its block_size is ignored, never checked
        used = "auto" if mask == "center" else block_size
        self.block_size = resolve_block_size(used, self.input_shape)
        self.context_weight = float(context_weight)

    def draw_mask(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """:func:`context_mask` for the batch ``x``, on its device.

        With a :class:`~sk_replearn.objectives.masked.KeyedNoise` for
        ``generator``, each sample's mask is drawn from its own values.
        """

        def draw(n: int, source) -> torch.Tensor:
            return context_mask(
                n,
                self.input_shape,
                self.mask,
                self.mask_ratio,
                self.block_size,
                generator=source,
                device=x.device,
            )

        if isinstance(generator, KeyedNoise) and len(x):
            return torch.cat([draw(1, g) for g in generator.generators(x)])
        return draw(len(x), None if isinstance(generator, KeyedNoise) else generator)

    def forward_encoder(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hide a region of a raw batch and encode the context.

        Parameters
        ----------
        x : torch.Tensor of shape (N, *input_shape)
            Raw input (standardised here).
        generator : torch.Generator, optional
            Source of the mask.

        Returns
        -------
        code : torch.Tensor of shape (N, n_components)
        mask : torch.Tensor of shape (N, d), (N, 1, L) or (N, 1, H, W)
            1 is hidden, 0 is visible.
        """
        mask = self.draw_mask(x, generator)
        context = self.normalize(x) * (1.0 - mask)  # hidden values at the mean, 0
        return self.bottleneck(self.backbone(context)), mask

    def forward_decoder(self, code: torch.Tensor) -> torch.Tensor:
        """The whole sample ``(N, *input_shape)`` predicted, standardised."""
        return self.decoder(code)

    def forward_loss(
        self, x: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Mean squared error on the hidden values (plus the weighted context).

        Parameters
        ----------
        x : torch.Tensor of shape (N, *input_shape)
            Raw input.
        pred : torch.Tensor of shape (N, *input_shape)
            Output of :meth:`forward_decoder`, standardised.
        mask : torch.Tensor
            Output of :meth:`forward_encoder`, 1 on hidden values.

        Returns
        -------
        torch.Tensor of shape ()
            ``mean over hidden values of (pred - x)^2``, plus
            ``context_weight`` times the same mean over the visible values.
        """
        sq = (pred.float() - self.normalize(x)).pow(2)  # (N, *input_shape)
        hidden = mask.expand_as(sq)
        loss = (sq * hidden).sum() / hidden.sum().clamp_min(1)
        if self.context_weight > 0:
            visible = 1.0 - hidden
            context = (sq * visible).sum() / visible.sum().clamp_min(1)
            loss = loss + self.context_weight * context
        return loss

    # -- the Objective contract ---------------------------------------------
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass: the prediction ``(N, *input_shape)`` and the mask."""
        code, mask = self.forward_encoder(x)
        return self.forward_decoder(code), mask

    def loss(self, output, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward_loss` of the training pass's output."""
        pred, mask = output
        return self.forward_loss(x, pred, mask)

    @torch.no_grad()
    def fill(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hide a region of a raw batch and paint it back, in the input's units.

        Returns
        -------
        filled : torch.Tensor of shape (N, *input_shape)
            ``x`` on the visible values, the prediction on the hidden ones.
        mask : torch.Tensor of shape (N, *input_shape)
            1 on hidden values, 0 elsewhere.
        """
        code, mask = self.forward_encoder(x, generator)
        prediction = self.denormalize(self.forward_decoder(code).float())
        mask = mask.expand_as(prediction)
        return torch.where(mask.bool(), prediction, x), mask
