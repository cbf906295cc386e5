"""Redundancy-reduction two-view objectives: Barlow Twins (decorrelation)
and VICReg (a variance floor and decorrelation) on the embeddings of two
views. The losses live in :mod:`sk_replearn.losses.redundancy`.
"""

from __future__ import annotations

from ..losses.redundancy import BarlowTwinsLoss, VICRegLoss
from ..nn import ProjectionHead
from .two_view import TwoViewObjective

__all__ = ["BarlowTwinsObjective", "VICRegObjective"]


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
    >>> from sk_replearn.objectives.redundancy import BarlowTwinsObjective
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
    >>> from sk_replearn.objectives.redundancy import VICRegObjective
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
