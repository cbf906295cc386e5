"""Non-contrastive two-view objectives: BYOL, SimSiam, Barlow Twins, DINO, VICReg.

No negatives: an EMA target and a predictor (BYOL), a stop-gradient and a
predictor (SimSiam), decorrelation (Barlow Twins), a centred, sharpened EMA
teacher (DINO) or a variance floor and decorrelation (VICReg) keep the
representation from collapsing. The losses live in
:mod:`sk_replearn.losses.noncontrastive`.
"""

from __future__ import annotations

import torch
from torch import nn

from ..losses._checks import check_positive, upcast
from ..losses.noncontrastive import (
    BarlowTwinsLoss,
    DINOLoss,
    NegativeCosineLoss,
    VICRegLoss,
)
from ..nn import ProjectionHead, Prototypes
from ..nn._checks import check_int
from ..nn.momentum import copy_frozen
from .two_view import TwoViewObjective, embed_pair

__all__ = [
    "BYOLObjective",
    "BarlowTwinsObjective",
    "DINOObjective",
    "SimSiamObjective",
    "VICRegObjective",
]


class BYOLObjective(TwoViewObjective):
    """BYOL: an online predictor regresses an EMA target's projection.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one sample.
    **two_view
        ``encoder``, ``encoder_kwargs``, ``views``, ``total_steps`` and
        ``n_components``: see
        :class:`~sk_replearn.objectives.two_view.TwoViewObjective`.
    projection_dim : int, default=256
        Output width of the projector and the predictor.
    hidden_dim : int or None, default=None
        Hidden width of both 2-layer heads; None is the encoder's width.
    momentum : float, default=0.99
        Starting momentum of the target (cosine schedule to 1).

    References
    ----------
    .. [1] J.-B. Grill et al., "Bootstrap Your Own Latent: A New Approach to
       Self-Supervised Learning", NeurIPS 2020.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.objectives.noncontrastive import BYOLObjective
    >>> obj = BYOLObjective((1, 40), projection_dim=16)
    >>> x = torch.randn(8, 1, 40)
    >>> 0 <= obj.loss(obj(x), x).item() <= 8
    True
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        *,
        projection_dim: int = 256,
        hidden_dim: int | None = None,
        momentum: float = 0.99,
        **two_view,
    ) -> None:
        super().__init__(input_shape, **two_view)
        width = self.backbone.out_features
        self.projector = ProjectionHead(width, hidden_dim or width, projection_dim)
        self.predictor = ProjectionHead(
            projection_dim, hidden_dim or width, projection_dim
        )
        self.target_backbone = copy_frozen(self.backbone)
        self.target_projector = copy_frozen(self.projector)
        self.criterion = NegativeCosineLoss()
        self.momentum = float(momentum)

    def forward_views(self, v1, v2):
        """Online predictions ``(p1, p2)`` and target projections ``(t1, t2)``."""
        if self.training:
            self.momentum_update(
                [
                    (self.backbone, self.target_backbone),
                    (self.projector, self.target_projector),
                ],
                self.momentum,
            )
        p = embed_pair(
            lambda v: self.predictor(self.projector(self.backbone(v))), v1, v2
        )
        with torch.no_grad():
            t = embed_pair(
                lambda v: self.target_projector(self.target_backbone(v)), v1, v2
            )
        return p, t

    def loss(self, output, x: torch.Tensor) -> torch.Tensor:
        """``‖p̄1 − t̄2‖² + ‖p̄2 − t̄1‖²`` (each ``2 − 2 cos``), batch means."""
        (p1, p2), (t1, t2) = output
        return 4 + 2 * (self.criterion(p1, t2) + self.criterion(p2, t1))


class SimSiamObjective(TwoViewObjective):
    """SimSiam: a predictor matches the other view's stop-gradient projection.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one sample.
    **two_view
        ``encoder``, ``encoder_kwargs``, ``views``, ``total_steps`` and
        ``n_components``: see
        :class:`~sk_replearn.objectives.two_view.TwoViewObjective`.
    projection_dim : int, default=256
        Output width of the 3-layer projector (last layer batch-normalised).
    hidden_dim : int or None, default=None
        Hidden width of the projector; None is the encoder's width.
    predictor_dim : int or None, default=None
        Bottleneck width of the 2-layer predictor; None is
        ``projection_dim // 4`` (the paper's 2048 -> 512).

    References
    ----------
    .. [1] X. Chen and K. He, "Exploring Simple Siamese Representation
       Learning", CVPR 2021.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.objectives.noncontrastive import SimSiamObjective
    >>> obj = SimSiamObjective((1, 40), projection_dim=16)
    >>> x = torch.randn(8, 1, 40)
    >>> -1 <= obj.loss(obj(x), x).item() <= 1
    True
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        *,
        projection_dim: int = 256,
        hidden_dim: int | None = None,
        predictor_dim: int | None = None,
        **two_view,
    ) -> None:
        super().__init__(input_shape, **two_view)
        self.projector = ProjectionHead(
            self.backbone.out_features,
            hidden_dim,
            projection_dim,
            num_layers=3,
            last_bn=True,
        )
        self.predictor = ProjectionHead(
            projection_dim, predictor_dim or max(projection_dim // 4, 1), projection_dim
        )
        self.criterion = NegativeCosineLoss()

    def forward_views(self, v1, v2):
        """Projections ``(z1, z2)`` and predictions ``(p1, p2)``."""
        z = embed_pair(lambda v: self.projector(self.backbone(v)), v1, v2)
        p = embed_pair(self.predictor, *z)
        return z, p

    def loss(self, output, x: torch.Tensor) -> torch.Tensor:
        """``D(p1, z2) / 2 + D(p2, z1) / 2``, ``D`` the negative cosine."""
        (z1, z2), (p1, p2) = output
        return (self.criterion(p1, z2) + self.criterion(p2, z1)) / 2


class BarlowTwinsObjective(TwoViewObjective):
    """Barlow Twins: cross-correlation of the two views' projections to identity.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one sample.
    **two_view
        ``encoder``, ``encoder_kwargs``, ``views``, ``total_steps`` and
        ``n_components``: see
        :class:`~sk_replearn.objectives.two_view.TwoViewObjective`.
    projection_dim : int, default=512
        Output width of the 3-layer projector.
    hidden_dim : int or None, default=None
        Hidden width of the projector; None is the encoder's width.
    lambd : float, default=5e-3
        Weight of the off-diagonal (redundancy) term.

    References
    ----------
    .. [1] J. Zbontar, L. Jing, I. Misra, Y. LeCun and S. Deny, "Barlow
       Twins: Self-Supervised Learning via Redundancy Reduction", ICML 2021.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.objectives.noncontrastive import BarlowTwinsObjective
    >>> obj = BarlowTwinsObjective((1, 40), projection_dim=16)
    >>> x = torch.randn(8, 1, 40)
    >>> obj.loss(obj(x), x).shape
    torch.Size([])
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        *,
        projection_dim: int = 512,
        hidden_dim: int | None = None,
        lambd: float = 5e-3,
        **two_view,
    ) -> None:
        super().__init__(input_shape, **two_view)
        width = self.backbone.out_features
        self.projector = ProjectionHead(
            width, hidden_dim or width, projection_dim, num_layers=3
        )
        self.criterion = BarlowTwinsLoss(lambd)


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
    >>> from sk_replearn.objectives.noncontrastive import DINOObjective
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


class VICRegObjective(TwoViewObjective):
    """VICReg: invariance, variance and covariance terms on an expander's output.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one sample.
    **two_view
        ``encoder``, ``encoder_kwargs``, ``views``, ``total_steps`` and
        ``n_components``: see
        :class:`~sk_replearn.objectives.two_view.TwoViewObjective`.
    projection_dim : int, default=512
        Output width of the 3-layer expander.
    hidden_dim : int or None, default=None
        Hidden width of the expander; None is ``projection_dim``.
    invariance_weight, variance_weight, covariance_weight : float
        The weights ``λ``, ``μ``, ``ν`` of :class:`~sk_replearn.losses.VICRegLoss`
        (defaults 25, 25 and 1).

    References
    ----------
    .. [1] A. Bardes, J. Ponce and Y. LeCun, "VICReg: Variance-Invariance-
       Covariance Regularization for Self-Supervised Learning", ICLR 2022.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.objectives.noncontrastive import VICRegObjective
    >>> obj = VICRegObjective((1, 40), projection_dim=16)
    >>> x = torch.randn(8, 1, 40)
    >>> obj.loss(obj(x), x).shape
    torch.Size([])
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        *,
        projection_dim: int = 512,
        hidden_dim: int | None = None,
        invariance_weight: float = 25.0,
        variance_weight: float = 25.0,
        covariance_weight: float = 1.0,
        **two_view,
    ) -> None:
        super().__init__(input_shape, **two_view)
        self.projector = ProjectionHead(
            self.backbone.out_features,
            hidden_dim or projection_dim,
            projection_dim,
            num_layers=3,
        )
        self.criterion = VICRegLoss(
            invariance_weight, variance_weight, covariance_weight
        )
