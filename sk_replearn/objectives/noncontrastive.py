"""Non-contrastive two-view objectives that predict one view's embedding
from the other's: BYOL (an EMA target and a predictor) and SimSiam (a
stop-gradient and a predictor).

Barlow Twins and VICReg are in :mod:`~sk_replearn.objectives.redundancy`,
DINO in :mod:`~sk_replearn.objectives.dino`; they are imported here too,
where pickles made before the split look for them. The losses live in
:mod:`sk_replearn.losses`, in modules of the same names.
"""

from __future__ import annotations

import torch

from ..losses.noncontrastive import NegativeCosineLoss
from ..nn import ProjectionHead
from ..nn.momentum import copy_frozen
from .dino import DINOObjective
from .redundancy import BarlowTwinsObjective, VICRegObjective
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
