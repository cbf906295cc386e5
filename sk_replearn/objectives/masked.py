"""Masked autoencoding (MAE): hide most tokens, predict them from the rest.

He et al. (2022), "Masked Autoencoders Are Scalable Vision Learners": the
input is cut into tokens (patches of an image, segments of a signal, single
features or groups of features of a table), a large random subset is hidden,
a ViT encoder sees only the visible tokens (plus a class token), and a light
transformer decoder fills mask tokens in at the hidden positions and predicts
their values. The loss is the mean squared error on the hidden tokens only.

The forward pass is split into the paper's named stages, each callable on its
own: :meth:`MAEObjective.random_masking`, :meth:`MAEObjective.forward_encoder`,
:meth:`MAEObjective.forward_decoder` and :meth:`MAEObjective.forward_loss`.

How a sample is cut into tokens (:func:`token_shape`,
:func:`resolve_patch_size`) is defined in the private ``_mae_tokens.py``,
the masking noise keyed to each sample (:class:`KeyedNoise`, which the
context encoder draws too) in ``_keyed_noise.py``; both are public from
here.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from ..nn import ViTEncoder, transformer
from ..nn._block import init_transformer, transformer_blocks
from ..nn.patches import patchify, random_masking, unpatchify
from ..nn.surgery import TransferEncoder
from ._keyed_noise import KeyedNoise
from ._mae_tokens import resolve_patch_size, token_shape
from .base import Objective

__all__ = ["KeyedNoise", "MAEObjective", "resolve_patch_size", "token_shape"]


def _keep_ratio(num_tokens: int, mask_ratio: float) -> float:
    """``mask_ratio``, moved just enough that one token stays and one is hidden.

    A ratio so high that no token would stay is lowered to keep one; one so
    low (below about ``1e-6 / num_tokens``) that none would be hidden is
    raised to hide one: with nothing hidden, the loss on the hidden tokens
    is 0 / 0.
    """
    kept = int(num_tokens * (1.0 - mask_ratio) + 1e-6)
    if kept < 1:
        return 1.0 - 1.0 / num_tokens
    if kept >= num_tokens > 1:
        return 1.0 / num_tokens
    return mask_ratio


class MAEObjective(Objective):
    """Masked autoencoder: ViT encoder on visible tokens, light decoder.

    Parameters
    ----------
    input_shape : tuple of int
        ``(d,)`` (a table), ``(C, L)`` (signals) or ``(C, H, W)`` (images).
    patch_size : int or "auto", default="auto"
        As the ``patch_size`` of :class:`~sk_replearn.MAETransformer`.
    mask_ratio : float, default=0.75
        Fraction of tokens hidden in training, in (0, 1). At least one token
        always stays visible (for very few tokens the ratio is lowered).
    embed_dim, depth, num_heads : int, default=64, 4, 4
        Width, number of blocks and attention heads of the encoder.
    decoder_embed_dim, decoder_depth, decoder_num_heads : int, default=32, 2, 4
        The same for the decoder.
    mlp_ratio : float, default=4.0
        Hidden width of every block's MLP relative to its token width.
    norm_pix_loss : bool, default=False
        Normalise each target token by its own mean and variance (needs
        tokens of at least two values).
    pooling : {"mean", "cls", "blocks"}, default="mean"
        How :meth:`encode` reduces the encoder's tokens (see
        :class:`~sk_replearn.nn.ViTEncoder`); ``"blocks"`` only without
        ``n_components``.
    n_components : int or None, default=None
        Width of the representation: a linear layer maps every encoded token
        to ``n_components`` values, which the decoder reads and
        :meth:`encode` pools; None uses the encoder's tokens directly.
    pooling_regions : int, default=1
        The ``regions`` of the :class:`~sk_replearn.nn.ViTEncoder`: patch
        means over that many contiguous parts of the tokens; 1 only with
        ``n_components``.

    Attributes
    ----------
    encoder : ViTEncoder
        Patch embedding, class token, fixed positions, blocks and norm.
    decoder_embed : torch.nn.Linear
        Encoder width to decoder width.
    mask_token : torch.nn.Parameter of shape (1, 1, decoder_embed_dim)
    decoder_pos_embed : torch.Tensor of shape (1, L, decoder_embed_dim)
        Fixed sine-cosine positions (a buffer).
    decoder_blocks : torch.nn.ModuleList
    decoder_norm : torch.nn.LayerNorm
    decoder_pred : torch.nn.Linear
        Decoder width to the values of one token.

    References
    ----------
    .. [1] K. He, X. Chen, S. Xie, Y. Li, P. Dollár and R. Girshick. "Masked
       Autoencoders Are Scalable Vision Learners." CVPR 2022.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.objectives.masked import MAEObjective
    >>> obj = MAEObjective((1, 8, 8), depth=1, decoder_depth=1)
    >>> x = torch.randn(3, 1, 8, 8)
    >>> latent, mask, ids_restore = obj.forward_encoder(x, 0.75)
    >>> latent.shape, mask.shape  # class token + 4 of the 16 patches
    (torch.Size([3, 5, 64]), torch.Size([3, 16]))
    >>> pred = obj.forward_decoder(latent, ids_restore)
    >>> pred.shape
    torch.Size([3, 16, 4])
    >>> obj.forward_loss(x, pred, mask).shape
    torch.Size([])
    >>> obj.encode(x).shape
    torch.Size([3, 64])
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        patch_size: int | str = "auto",
        mask_ratio: float = 0.75,
        embed_dim: int = 64,
        depth: int = 4,
        num_heads: int = 4,
        decoder_embed_dim: int = 32,
        decoder_depth: int = 2,
        decoder_num_heads: int = 4,
        mlp_ratio: float = 4.0,
        norm_pix_loss: bool = False,
        pooling: str = "mean",
        n_components: int | None = None,
        pooling_regions: int = 1,
    ) -> None:
        super().__init__(tuple(int(s) for s in input_shape))
        self.input_shape = tuple(int(s) for s in input_shape)
        self.token_shape = token_shape(self.input_shape)
        self.patch_size = resolve_patch_size(patch_size, self.input_shape)
        self.mask_ratio = float(mask_ratio)
        self.norm_pix_loss = bool(norm_pix_loss)
        if pooling == "blocks" and n_components is not None:
            raise ValueError(
                "pooling='blocks' concatenates the tokens of every block, which "
                "the n_components code does not see; use pooling='mean' or "
                "'cls' with n_components, or n_components=None."
            )
        if pooling_regions > 1 and n_components is not None:
            raise ValueError(
                f"pooling_regions={pooling_regions} pools the encoder's tokens "
                "over regions, which the n_components code does not see; use "
                "pooling_regions=1 with n_components, or n_components=None."
            )
        self.encoder = ViTEncoder(
            self.token_shape,
            patch_size=self.patch_size,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            pooling=pooling,
            regions=pooling_regions,
        )
        if self.encoder.num_patches < 2:
            raise ValueError(
                f"MAEObjective needs at least 2 tokens to hide some and see "
                f"others; samples of shape {self.input_shape} with "
                f"patch_size={self.patch_size} give 1: use a smaller patch_size."
            )
        n_values = self.patch_size ** len(self.encoder.grid_size) * self.token_shape[0]
        # A per-token linear code between encoder and decoder; the decoder
        # reads it, so the representation (its pooled value) is trained.
        self.bottleneck = (
            nn.Identity()
            if n_components is None
            else nn.Linear(embed_dim, n_components)
        )
        width = embed_dim if n_components is None else int(n_components)
        self.decoder_embed = nn.Linear(width, decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.register_buffer(
            "decoder_pos_embed",
            transformer.pos_embed(decoder_embed_dim, self.encoder.grid_size),
        )
        self.decoder_blocks = transformer_blocks(
            decoder_embed_dim, decoder_depth, decoder_num_heads, mlp_ratio, 0.0
        )
        self.decoder_norm = nn.LayerNorm(decoder_embed_dim)
        self.decoder_pred = nn.Linear(decoder_embed_dim, n_values)
        for module in (
            self.bottleneck,
            self.decoder_embed,
            self.decoder_blocks,
            self.decoder_norm,
            self.decoder_pred,
        ):
            init_transformer(module)
        nn.init.normal_(self.mask_token, std=0.02)

    @property
    def num_patches(self) -> int:
        """``L``, the number of tokens of one sample."""
        return self.encoder.num_patches

    # -- tokens ----------------------------------------------------------------
    def _signal(self, x: torch.Tensor) -> torch.Tensor:
        """Raw ``(B, *input_shape)`` to standardised ``(B, *token_shape)``."""
        return self.normalize(x).reshape(len(x), *self.token_shape)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """Raw ``(B, *input_shape)`` to standardised tokens ``(B, L, n_values)``."""
        return patchify(self._signal(x), self.patch_size)

    def unpatchify(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens ``(B, L, n_values)`` back to ``(B, *input_shape)``, same units."""
        out = unpatchify(tokens, self.patch_size, self.token_shape)
        return out.reshape(len(tokens), *self.input_shape)

    # -- the named stages ---------------------------------------------------------
    def random_masking(
        self,
        x: torch.Tensor,
        mask_ratio: float,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keep a random subset of each sample's tokens.

        :func:`sk_replearn.nn.random_masking` (argsort of uniform noise
        per sample), except that at least one token is always kept, and
        (of two or more) at least one hidden.

        Parameters
        ----------
        x : torch.Tensor of shape (N, L, D)
            Tokens: the patches themselves in training, or embedded tokens.
        mask_ratio : float
            Fraction to remove, in (0, 1).
        generator : torch.Generator, optional
            Source of the noise; torch's global generator by default.
        noise : torch.Tensor of shape (N, L), optional
            The noise itself, instead of drawing it (see :class:`KeyedNoise`).

        Returns
        -------
        x_visible : torch.Tensor of shape (N, L_keep, D)
        mask : torch.Tensor of shape (N, L)
            0 is keep, 1 is remove.
        ids_restore : torch.Tensor of shape (N, L)
            Gathering with it undoes the shuffle.
        """
        ratio = _keep_ratio(x.shape[1], mask_ratio)
        return random_masking(x, ratio, generator=generator, noise=noise)

    def forward_encoder(
        self,
        x: torch.Tensor,
        mask_ratio: float,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Cut a raw batch into patches, drop the masked ones, encode the rest.

        Parameters
        ----------
        x : torch.Tensor of shape (N, *input_shape)
            Raw input (standardised here).
        mask_ratio : float
            Fraction of tokens to hide, in (0, 1).
        generator : torch.Generator or KeyedNoise, optional
            Source of the masking noise; a :class:`KeyedNoise` draws each
            sample's from its own values.

        Returns
        -------
        latent : torch.Tensor of shape (N, 1 + L_keep, embed_dim)
            Class token then the visible tokens, in their shuffled order.
        mask : torch.Tensor of shape (N, L)
            0 is keep, 1 is remove.
        ids_restore : torch.Tensor of shape (N, L)
        """
        patches = self.patchify(x)  # (N, L, n_values)
        noise = None
        if isinstance(generator, KeyedNoise):  # each sample's own draws
            generator, noise = None, generator.uniform(x, patches.shape[1])
        # Drop the hidden patches before embedding: the embedding is per
        # patch, so only the visible ones need it (and its gradient).
        visible, mask, ids_restore = self.random_masking(
            patches, mask_ratio, generator, noise=noise
        )
        keep = ids_restore.argsort(dim=1)[:, : visible.shape[1]]  # (N, L_keep)
        tokens = self.encoder.embed_patches(visible, keep)  # with positions
        return self.encoder.forward_tokens(tokens), mask, ids_restore

    def forward_decoder(
        self, latent: torch.Tensor, ids_restore: torch.Tensor
    ) -> torch.Tensor:
        """Predict every token's values from the encoded visible tokens.

        Parameters
        ----------
        latent : torch.Tensor of shape (N, 1 + L_keep, embed_dim)
            Output of :meth:`forward_encoder`.
        ids_restore : torch.Tensor of shape (N, L)
            Output of :meth:`forward_encoder`.

        Returns
        -------
        torch.Tensor of shape (N, L, n_values)
            Predicted values of each token (standardised, or per-token
            normalised with ``norm_pix_loss``), in the original order.
        """
        x = self.decoder_embed(self.bottleneck(latent))  # (N, 1 + L_keep, Dd)
        n, length = ids_restore.shape
        n_masked = length - (x.shape[1] - 1)
        masks = self.mask_token.expand(n, n_masked, -1)  # (N, L - L_keep, Dd)
        patches = torch.cat([x[:, 1:], masks], dim=1)  # (N, L, Dd) shuffled
        index = ids_restore[:, :, None].expand(-1, -1, x.shape[2])
        patches = torch.gather(patches, 1, index) + self.decoder_pos_embed  # (N, L, Dd)
        x = torch.cat([x[:, :1], patches], dim=1)  # (N, 1 + L, Dd)
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]  # (N, L, n_values)

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """What the decoder predicts: ``(N, L, n_values)`` from raw ``x``."""
        target = self.patchify(x)  # (N, L, n_values)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6).sqrt()
        return target

    def forward_loss(
        self, x: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Mean squared error on the hidden tokens only.

        Parameters
        ----------
        x : torch.Tensor of shape (N, *input_shape)
            Raw input.
        pred : torch.Tensor of shape (N, L, n_values)
            Output of :meth:`forward_decoder`.
        mask : torch.Tensor of shape (N, L)
            1 on the hidden tokens, which alone are scored.

        Returns
        -------
        torch.Tensor of shape ()
        """
        per_token = (pred.float() - self.target(x)).pow(2).mean(dim=-1)  # (N, L)
        return (per_token * mask).sum() / mask.sum()

    # -- the Objective contract ---------------------------------------------------
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass: ``(pred, mask)``, shapes ``(N, L, n_values)``, ``(N, L)``."""
        latent, mask, ids_restore = self.forward_encoder(x, self.mask_ratio)
        return self.forward_decoder(latent, ids_restore), mask

    def loss(self, output, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward_loss` of the training pass's output."""
        pred, mask = output
        return self.forward_loss(x, pred, mask)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder on every token of a raw batch, pooled, through the bottleneck.

        ``(N, embed_dim)``, or ``(N, n_components)`` with a bottleneck (a
        linear map commutes with the mean over tokens).
        """
        return self.bottleneck(self.encoder(self._signal(x)))

    def transfer_encoder(
        self,
        input_shape: tuple[int, ...],
        pooling: str | None = None,
        regions: int | None = None,
    ) -> nn.Module:
        """Copies of the standardisation (to tokens), the ViT and the bottleneck.

        ``pooling`` and ``regions`` read the copy's tokens another way than
        the encoder's own
        (:meth:`ViTEncoder.set_pooling <sk_replearn.nn.ViTEncoder.set_pooling>`);
        None keeps them.
        """
        head = self.bottleneck
        encoder = copy.deepcopy(self.encoder)
        if pooling is not None or regions is not None:
            encoder.set_pooling(pooling or encoder.pooling, regions)
        plain = isinstance(head, nn.Identity)
        return TransferEncoder(
            encoder,
            input_shape,
            encoder.out_features if plain else head.out_features,
            prep=self._standardize(self.token_shape),
            head=None if plain else copy.deepcopy(head),
        )

    @property
    def out_features(self) -> int:
        """Width of :meth:`encode`'s output."""
        if isinstance(self.bottleneck, nn.Identity):
            return self.encoder.out_features
        return self.bottleneck.out_features

    @torch.no_grad()
    def reconstruct(
        self,
        x: torch.Tensor,
        mask_ratio: float,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mask, encode, decode, and map the prediction to the input's units.

        Parameters
        ----------
        x : torch.Tensor of shape (N, *input_shape)
            Raw input.
        mask_ratio : float
            Fraction of tokens to hide, in (0, 1).
        generator : torch.Generator or KeyedNoise, optional
            Source of the masking noise; a :class:`KeyedNoise` draws each
            sample's from its own values.

        Returns
        -------
        prediction : torch.Tensor of shape (N, *input_shape)
            The decoder's prediction of every token in raw units. With
            ``norm_pix_loss`` each token is mapped back with the mean and
            standard deviation of the true token.
        pasted : torch.Tensor of shape (N, *input_shape)
            ``x`` on the visible tokens, the prediction on the hidden ones.
        mask : torch.Tensor of shape (N, *input_shape)
            1 on the values of hidden tokens, 0 elsewhere.
        """
        latent, mask, ids_restore = self.forward_encoder(x, mask_ratio, generator)
        pred = self.forward_decoder(latent, ids_restore).float()  # (N, L, n_values)
        if self.norm_pix_loss:
            target = self.patchify(x)  # (N, L, n_values)
            std = (target.var(dim=-1, keepdim=True) + 1e-6).sqrt()
            pred = pred * std + target.mean(dim=-1, keepdim=True)
        prediction = self.denormalize(self.unpatchify(pred))  # (N, *input_shape)
        mask_values = mask[:, :, None].expand(-1, -1, pred.shape[-1])
        mask_values = self.unpatchify(mask_values.contiguous())  # (N, *input_shape)
        pasted = torch.where(mask_values.bool(), prediction, x)
        return prediction, pasted, mask_values
