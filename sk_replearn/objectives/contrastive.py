"""Contrastive two-view objectives: SimCLR and MoCo (v2).

The other samples of the batch (SimCLR) or a queue of keys from a momentum
encoder (MoCo) are the negatives; the losses are
:class:`~sk_replearn.losses.NTXentLoss` and
:class:`~sk_replearn.losses.InfoNCELoss`.
"""

from __future__ import annotations

import torch

from ..losses.contrastive import InfoNCELoss, MemoryQueue, NTXentLoss, gather_batch
from ..nn import ProjectionHead
from ..nn.momentum import copy_frozen
from .two_view import TwoViewObjective, embed_pair

__all__ = ["MoCoObjective", "SimCLRObjective"]


class SimCLRObjective(TwoViewObjective):
    """SimCLR: NT-Xent between the projections of two views.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one sample.
    **two_view
        ``encoder``, ``encoder_kwargs``, ``views``, ``total_steps`` and
        ``n_components``: see
        :class:`~sk_replearn.objectives.two_view.TwoViewObjective`.
    projection_dim : int, default=128
        Output width of the 2-layer projection head.
    hidden_dim : int or None, default=None
        Hidden width of the head; None is the encoder's width.
    temperature : float, default=0.1
        NT-Xent temperature.

    References
    ----------
    .. [1] T. Chen, S. Kornblith, M. Norouzi and G. Hinton, "A Simple
       Framework for Contrastive Learning of Visual Representations",
       ICML 2020.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.objectives.contrastive import SimCLRObjective
    >>> obj = SimCLRObjective((1, 40), projection_dim=16)
    >>> x = torch.randn(8, 1, 40)
    >>> obj.loss(obj(x), x).shape, obj.encode(x).shape
    (torch.Size([]), torch.Size([8, 128]))
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        *,
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        temperature: float = 0.1,
        **two_view,
    ) -> None:
        super().__init__(input_shape, **two_view)
        self.projector = ProjectionHead(
            self.backbone.out_features, hidden_dim, projection_dim
        )
        self.criterion = NTXentLoss(temperature)


class MoCoObjective(TwoViewObjective):
    """MoCo v2: queries against a momentum key encoder and a queue of keys.

    The query encoder is the backbone with a 2-layer MLP head (v2); the key
    encoder is its EMA copy. The loss is symmetrised (each view is once the
    query, once the key), as in MoCo v3 and the authors' CIFAR demo, and
    both views' keys are queued after the loss's snapshot of the queue. In
    evaluation mode (``score``, a validation split) the queue is neither
    read nor filled: the negatives are the batch's other keys, as in MoCo
    v3, since the queued keys were drawn in training mode.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one sample.
    **two_view
        ``encoder``, ``encoder_kwargs``, ``views``, ``total_steps`` and
        ``n_components``: see
        :class:`~sk_replearn.objectives.two_view.TwoViewObjective`.
    projection_dim : int, default=128
        Width of the keys and queries.
    hidden_dim : int or None, default=None
        Hidden width of the head; None is the encoder's width.
    temperature : float, default=0.2
        InfoNCE temperature.
    queue_size : int, default=4096
        Number of negative keys kept.
    momentum : float, default=0.99
        Starting momentum of the key encoder (cosine schedule to 1).

    Attributes
    ----------
    key_backbone, key_projector : torch.nn.Module
        The momentum key encoder (no gradients).
    queue : MemoryQueue
        The negative keys.

    References
    ----------
    .. [1] K. He, H. Fan, Y. Wu, S. Xie and R. Girshick, "Momentum Contrast
       for Unsupervised Visual Representation Learning", CVPR 2020.
    .. [2] X. Chen, H. Fan, R. Girshick and K. He, "Improved Baselines with
       Momentum Contrastive Learning", arXiv:2003.04297, 2020 (MoCo v2).

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.objectives.contrastive import MoCoObjective
    >>> obj = MoCoObjective((1, 40), projection_dim=16, queue_size=32)
    >>> x = torch.randn(8, 1, 40)
    >>> obj.loss(obj(x), x).shape, int(obj.queue.ptr)  # 2 x 8 keys queued
    (torch.Size([]), 16)
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        *,
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        temperature: float = 0.2,
        queue_size: int = 4096,
        momentum: float = 0.99,
        **two_view,
    ) -> None:
        super().__init__(input_shape, **two_view)
        self.projector = ProjectionHead(
            self.backbone.out_features, hidden_dim, projection_dim
        )
        self.key_backbone = copy_frozen(self.backbone)
        self.key_projector = copy_frozen(self.projector)
        self.queue = MemoryQueue(projection_dim, queue_size)
        self.criterion = InfoNCELoss(temperature)
        self.momentum = float(momentum)

    def forward_views(self, v1, v2):
        """Queries, keys and the queue before this batch's keys are pushed.

        Returns
        -------
        tuple of torch.Tensor
            ``(q1, q2, k1, k2, queue)``: ``(B, projection_dim)`` each and
            ``(queue_size, projection_dim)``.
        """
        if self.training:
            self.momentum_update(
                [
                    (self.backbone, self.key_backbone),
                    (self.projector, self.key_projector),
                ],
                self.momentum,
            )
        q1, q2 = embed_pair(lambda v: self.projector(self.backbone(v)), v1, v2)
        with torch.no_grad():
            k1, k2 = embed_pair(
                lambda v: self.key_projector(self.key_backbone(v)), v1, v2
            )
        if not self.training:
            # Evaluation (score, a validation split): the queue holds keys of
            # the training batches, drawn in training mode (batch statistics);
            # queries in evaluation mode (running statistics) sit apart from
            # them, so that the loss could fall as the network got worse. The
            # negatives are the batch's other keys instead (InfoNCE without a
            # queue): one mode throughout, and nothing but X read.
            return q1, q2, k1, k2, None
        queue = self.queue.queue  # (K, D), a copy: safe from the enqueue below
        # every rank's keys, as MoCo's concat_all_gather
        self.queue.enqueue(gather_batch(torch.cat([k1, k2])))
        return q1, q2, k1, k2, queue

    def loss(self, output, x: torch.Tensor) -> torch.Tensor:
        """Symmetrised InfoNCE: query of each view, key of the other."""
        q1, q2, k1, k2, queue = output
        return (self.criterion(q1, k2, queue) + self.criterion(q2, k1, queue)) / 2
