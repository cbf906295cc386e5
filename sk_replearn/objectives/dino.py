"""DINO's two-view objective: a student and its momentum teacher over
prototypes, the teacher's outputs centred and sharpened. The loss lives in
:mod:`sk_replearn.losses.dino`.
"""

from __future__ import annotations

import torch
from torch import nn

from ..losses._checks import check_positive, upcast
from ..losses.dino import DINOLoss
from ..nn import ProjectionHead, Prototypes
from ..nn._checks import check_int
from ..nn.momentum import copy_frozen
from .two_view import TwoViewObjective, embed_pair

__all__ = ["DINOObjective"]


class DINOObjective(TwoViewObjective):
    """DINO: a student matches a centred, sharpened EMA teacher.

    Two global views go to the teacher and the student, the
    ``n_local_views`` local crops (multi-crop) to the student only; the head
    is a 3-layer MLP to a bottleneck, L2-normalised, then the
    weight-normalised prototype layer. The backbone runs once per size (the
    global views together, the local views together) and the head once on
    all of them, as in DINO's implementation.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one sample.
    **two_view
        ``encoder``, ``encoder_kwargs``, ``views``, ``total_steps``,
        ``n_components`` and ``n_local_views``: see
        :class:`~sk_replearn.objectives.two_view.TwoViewObjective`.
    projection_dim : int, default=1024
        Number of prototypes ``K`` (the head's output width).
    hidden_dim : int or None, default=None
        Hidden width of the head's MLP; None is the encoder's width.
    bottleneck_dim : int, default=64
        Width of the L2-normalised bottleneck.
    teacher_temp, student_temp : float, default=0.04, 0.1
        Temperatures of the teacher's (sharpening) and student's softmax.
    center_momentum : float, default=0.9
        Momentum of the teacher's center.
    momentum : float, default=0.996
        Starting momentum of the teacher (cosine schedule to 1).
    warmup_teacher_temp : float or None, default=None
        Teacher temperature at the first step, rising linearly to
        ``teacher_temp`` over ``warmup_teacher_temp_steps`` training steps
        (counted by the ``step`` buffer, so a resumed fit continues the
        schedule); None is ``teacher_temp`` (no warm-up).
    warmup_teacher_temp_steps : int, default=0
        Length of the warm-up, in optimiser steps.

    References
    ----------
    .. [1] M. Caron et al., "Emerging Properties in Self-Supervised Vision
       Transformers", ICCV 2021.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.objectives.dino import DINOObjective
    >>> obj = DINOObjective((1, 40), projection_dim=32)
    >>> x = torch.randn(8, 1, 40)
    >>> obj.loss(obj(x), x).shape
    torch.Size([])
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        *,
        projection_dim: int = 1024,
        hidden_dim: int | None = None,
        bottleneck_dim: int = 64,
        teacher_temp: float = 0.04,
        student_temp: float = 0.1,
        center_momentum: float = 0.9,
        momentum: float = 0.996,
        warmup_teacher_temp: float | None = None,
        warmup_teacher_temp_steps: int = 0,
        **two_view,
    ) -> None:
        super().__init__(input_shape, **two_view)
        self.head = nn.Sequential(
            ProjectionHead(
                self.backbone.out_features, hidden_dim, bottleneck_dim, num_layers=3
            ),
            Prototypes(bottleneck_dim, projection_dim),
        )
        self.teacher_backbone = copy_frozen(self.backbone)
        self.teacher_head = copy_frozen(self.head)
        self.criterion = DINOLoss(
            projection_dim, teacher_temp, student_temp, center_momentum
        )
        self.momentum = float(momentum)
        self.teacher_temp = float(teacher_temp)
        self.warmup_teacher_temp = (
            self.teacher_temp
            if warmup_teacher_temp is None
            else check_positive("warmup_teacher_temp", warmup_teacher_temp)
        )
        self.warmup_teacher_temp_steps = check_int(
            "warmup_teacher_temp_steps", warmup_teacher_temp_steps, low=0
        )

    def forward_views(self, v1, v2, local=None):
        """Student logits of every view, teacher logits of the global views.

        Returns ``(s, t)``: ``s`` a tuple of ``2 + n_local_views`` tensors
        ``(B, projection_dim)``, the global views first, ``t`` a pair.
        """
        if self.training:
            self.momentum_update(
                [
                    (self.backbone, self.teacher_backbone),
                    (self.head, self.teacher_head),
                ],
                self.momentum,
            )
        features = self.backbone_views(v1, v2, local)  # (V B, D)
        s = self.head(features).chunk(2 + (0 if local is None else self.n_local_views))
        with torch.no_grad():
            t = embed_pair(
                lambda v: self.teacher_head(self.teacher_backbone(v)), v1, v2
            )
        return s, t

    def scheduled_teacher_temp(self) -> float:
        """The teacher temperature of the current step (the warm-up's)."""
        steps = self.warmup_teacher_temp_steps
        done = max(int(self.step) - 1, 0)  # forward counted this step already
        if not self.training or done >= steps:
            return self.teacher_temp
        start = self.warmup_teacher_temp
        return start + (self.teacher_temp - start) * done / steps

    def loss(self, output, x: torch.Tensor) -> torch.Tensor:
        """DINO cross-entropy; updates the center in training mode.

        In evaluation mode (``score``, a validation split) the teacher is
        centred on its own mean over the batch's global views: the running
        center averages outputs of training mode (batch statistics), which
        those of evaluation mode (running statistics) need not share, so
        that the loss could fall as the network got worse.
        """
        s, t = output
        self.criterion.teacher_temp = self.scheduled_teacher_temp()
        center = None
        if not self.training:
            center = upcast(torch.cat(list(t))).mean(0, keepdim=True)  # (1, K)
        return self.criterion(list(s), list(t), center)
