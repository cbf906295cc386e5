"""The shared base of the two-view self-supervised objectives.

A two-view objective's ``forward`` draws two random views of the
standardised batch (:meth:`TwoViewObjective.draw_views`) and embeds both
(``forward_views``); its ``loss`` combines the embeddings with a loss of
:mod:`sk_replearn.losses` (each objective's module, such as
:mod:`~sk_replearn.objectives.contrastive`, names its own). ``encode`` returns the
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
from ..nn._user_modules import probe_zeros
from ..nn.build import builder_kwargs
from ..nn.momentum import cosine_momentum, update_momentum
from ..nn.surgery import TransferEncoder
from ..views import make_views
from .base import Objective

__all__ = ["TwoViewObjective", "embed_pair"]

Pair = tuple[torch.Tensor, torch.Tensor]


def embed_pair(net: Callable[[torch.Tensor], torch.Tensor], v1, v2) -> Pair:
    """Run ``net`` on both views in one batch ``(2B, ...)`` and split.

    One pass over the concatenation costs less than two on small models, and
    batch normalisation sees both views, as in SimCLR's implementation
    (SimSiam's, BYOL's, MoCo's, Barlow Twins' and VICReg's run each view
    alone; on MNIST-1D per-view passes probed as well, within the seeds'
    spread: SimSiam 0.900 against 0.895, BYOL 0.871 against 0.868).
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
    n_local_views : int, default=0
        Multi-crop (Caron et al. 2020): small local views drawn besides the
        two global ones (:meth:`draw_local_views`) and passed to
        ``forward_views`` as a third argument. Needs views with a ``local``
        method (:class:`~sk_replearn.views.ImageViews`,
        :class:`~sk_replearn.views.SequenceViews`); only the methods that
        use them (SwAV, DINO) set it.

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
        n_local_views: int = 0,
    ) -> None:
        super().__init__(tuple(input_shape))
        kwargs = builder_kwargs(encoder_kwargs, "encoder_kwargs", ["input_shape"])
        self.backbone = build_encoder(encoder, tuple(input_shape), **kwargs)
        if n_components is not None:
            self.backbone = Bottleneck(self.backbone, n_components)
        self.views = make_views(views, tuple(input_shape))
        self.n_local_views = int(n_local_views)
        if self.n_local_views and not callable(getattr(self.views, "local", None)):
            if views is None:
                given = "views=None (the input as it is)"
            elif views is self.views:
                given = f"views={views!r}"
            else:  # "auto": say what it chose
                given = f"views={views!r} ({type(self.views).__name__} here)"
            raise ValueError(
                f"n_local_views={self.n_local_views} needs views with local crops "
                f"(ImageViews or SequenceViews); {given} has none, "
                f"as for samples of shape {tuple(input_shape)}: set "
                "n_local_views=0, or pass views whose 'local' method returns a "
                "batch of small crops."
            )
        if self.n_local_views:
            self._check_local_size(tuple(input_shape))
        self.total_steps = max(int(total_steps), 1)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def _check_local_size(self, input_shape: tuple[int, ...]) -> None:
        """A dry run of the backbone on two local views: a clear error if it
        fails, or if it gives them another width than the global views (an
        encoder that flattens its feature map, without global pooling)."""
        shape = (input_shape[0], *self.views.local_shape(input_shape[1:]))
        views = (
            f"the local views of shape {shape} (local_size="
            f"{self.views.local_size} of {input_shape})"
        )
        training = self.backbone.training
        try:
            with torch.no_grad():
                out = self.backbone.eval()(probe_zeros(self.backbone, 2, *shape))
        # RuntimeError from a layer's shapes, ValueError from an encoder's own
        # check (a ViT's patches must divide the local views).
        except (RuntimeError, ValueError) as exc:
            problem = f"does not accept {views}: {str(exc).rstrip('.')}"
        else:
            width = self.backbone.out_features
            if tuple(out.shape) == (2, width):
                return
            problem = (
                f"maps {views} to outputs of shape {tuple(out.shape[1:])}, not "
                f"to the {width} features of the global views"
            )
        finally:
            self.backbone.train(training)
        raise ValueError(
            f"n_local_views={self.n_local_views}: the encoder {problem}. Use an "
            "encoder that ends in global pooling (encoder='cnn' or 'resnet'), "
            "local_size=1.0 in the views, or n_local_views=0."
        )

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

    def draw_local_views(self, x: torch.Tensor) -> torch.Tensor:
        """``n_local_views`` local views of the standardised batch, stacked.

        Returns
        -------
        torch.Tensor of shape (n_local_views * B, C, *local size)
            The ``j``-th local views of the batch are rows ``j B`` to
            ``(j + 1) B``: all in one batch, one pass of the encoder.
        """
        xn = self.normalize(x)
        return self.views.local(xn.repeat(self.n_local_views, *[1] * (x.ndim - 1)))

    def backbone_views(self, v1, v2, local=None) -> torch.Tensor:
        """Backbone features of every view, ``(V B, D)``: global views first.

        One pass per size: the two global views together, then the stacked
        local views (multi-crop), as in SwAV's and DINO's implementations,
        so that the heads run once on all views.
        """
        features = self.backbone(torch.cat([v1, v2]))  # (2B, D)
        if local is None:
            return features
        return torch.cat([features, self.backbone(local)])  # (V B, D)

    def forward(self, x: torch.Tensor):
        """Draw the views of ``x`` and embed them (see :meth:`forward_views`).

        Two global views, plus the stacked local views (a third argument)
        when ``n_local_views > 0``.
        """
        views = self.draw_views(x)
        if self.n_local_views:
            views = (*views, self.draw_local_views(x))
        out = self.forward_views(*views)
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
