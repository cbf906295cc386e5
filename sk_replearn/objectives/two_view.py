"""The shared base of the two-view self-supervised objectives.

A two-view objective's ``forward`` draws two random views of the
standardised batch (:meth:`TwoViewObjective.draw_views`) and embeds both
(``forward_views``); its ``loss`` combines the embeddings with a loss module
of :mod:`~sk_replearn.objectives.contrastive` or
:mod:`~sk_replearn.objectives.noncontrastive`. ``encode`` returns the
encoder's output *before* any projection head: the representation.

Momentum (EMA) networks are updated at the start of each training forward,
after the previous optimiser step, as MoCo's reference code does; the
momentum follows BYOL's cosine schedule from the method's ``momentum`` to 1
over ``total_steps`` (the estimator passes the number of optimiser steps of
a fit), counted by the ``step`` buffer.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from ..nn import Bottleneck, build_encoder
from ..nn.momentum import cosine_momentum, update_momentum
from ..nn.surgery import TransferEncoder
from ..views import make_views
from .base import Objective

__all__ = ["TwoViewObjective", "embed_pair"]

Pair = tuple[torch.Tensor, torch.Tensor]


def embed_pair(net: Callable[[torch.Tensor], torch.Tensor], v1, v2) -> Pair:
    """Run ``net`` on both views in one batch ``(2B, ...)`` and split.

    One pass over the concatenation costs less than two on small models, and
    batch normalisation sees both views, as in SimCLR's implementation.
    """
    return net(torch.cat([v1, v2])).chunk(2)  # 2 x (B, D)


class TwoViewObjective(Objective):
    """Encoder and views shared by the two-view objectives (not used alone).

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one sample.
    encoder : str or type, default="auto"
        See :func:`sk_replearn.nn.build_encoder`.
    encoder_kwargs : dict or None, default=None
        Keyword arguments of the encoder.
    views : "auto", callable or None, default="auto"
        See :func:`sk_replearn.views.make_views`; applied to the
        standardised batch.
    total_steps : int, default=1
        Optimiser steps of the fit, the length of the momentum schedule.
    n_components : int or None, default=None
        Width of the representation: a linear layer to ``n_components``
        ends the backbone (:class:`~sk_replearn.nn.Bottleneck`); None keeps
        the encoder's own width.

    Attributes
    ----------
    backbone : torch.nn.Module
        The encoder; ``backbone.out_features`` is the representation width.
    step : torch.Tensor of shape ()
        Buffer (long): training forwards run so far.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        encoder: str | type = "auto",
        encoder_kwargs: dict | None = None,
        views: str | Callable | None = "auto",
        total_steps: int = 1,
        n_components: int | None = None,
    ) -> None:
        super().__init__(tuple(input_shape))
        self.backbone = build_encoder(
            encoder, tuple(input_shape), **(encoder_kwargs or {})
        )
        if n_components is not None:
            self.backbone = Bottleneck(self.backbone, n_components)
        self.views = make_views(views, tuple(input_shape))
        self.total_steps = max(int(total_steps), 1)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Representation ``(B, backbone.out_features)`` of a raw batch."""
        return self.backbone(self.normalize(x))

    def transfer_encoder(self, input_shape: tuple[int, ...]) -> nn.Module:
        """Copies of the standardisation and the (online) backbone."""
        return TransferEncoder(
            copy.deepcopy(self.backbone),
            input_shape,
            self.backbone.out_features,
            prep=self._standardize(),
        )

    def draw_views(self, x: torch.Tensor) -> Pair:
        """Two random views ``(B, *input_shape)`` of the standardised batch."""
        xn = self.normalize(x)
        return self.views(xn), self.views(xn)

    def forward(self, x: torch.Tensor):
        """Draw two views of ``x`` and embed them (see :meth:`forward_views`)."""
        out = self.forward_views(*self.draw_views(x))
        if self.training:
            self.step += 1
        return out

    def forward_views(self, v1: torch.Tensor, v2: torch.Tensor):
        """Embeddings of two views, the input of :meth:`loss`.

        By default the projections ``(z1, z2)``, each ``(B, D)``, of both
        views through ``backbone`` and the subclass's ``projector``.
        """
        return embed_pair(lambda v: self.projector(self.backbone(v)), v1, v2)

    def loss(self, output, x: torch.Tensor) -> torch.Tensor:
        """By default the subclass's ``criterion`` of the two projections."""
        return self.criterion(*output)

    def restart_schedule(self, total_steps: int) -> None:
        """Start the momentum schedule again, over ``total_steps`` steps."""
        self.step.zero_()
        self.total_steps = max(int(total_steps), 1)

    def momentum_update(self, pairs: list[tuple[nn.Module, nn.Module]], base: float):
        """EMA of each ``(online, target)`` pair at the scheduled momentum."""
        m = cosine_momentum(int(self.step), self.total_steps, base=base)
        for online, target in pairs:
            update_momentum(online, target, m)
