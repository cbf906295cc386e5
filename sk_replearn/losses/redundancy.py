"""Redundancy-reduction losses: Barlow Twins' (the cross-correlation of the
two views' embeddings driven to the identity) and VICReg's (variance,
invariance and covariance terms).

No negatives: decorrelation, and VICReg's floor on each dimension's spread,
keep the embeddings from collapsing to a constant;
:func:`~sk_replearn.losses.collapse_std` measures collapse. Both compute in
at least float32 (autocast-safe).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import check_non_negative, check_pair, check_positive, matmul32, upcast

__all__ = ["BarlowTwinsLoss", "VICRegLoss"]


class BarlowTwinsLoss(nn.Module):
    """Barlow Twins redundancy-reduction loss.

    Each view's embeddings are standardised along the batch (mean 0,
    variance 1 per dimension, ``(z − μ) / sqrt(σ² + eps)`` with the biased
    variance, as a parameter-free batch norm); with the cross-correlation
    ``C = z̃1ᵀ z̃2 / N`` of shape ``(D, D)``,

    .. math::

        \\mathcal{L} = \\sum_i (1 - C_{ii})^2
        + \\lambda \\sum_i \\sum_{j \\ne i} C_{ij}^2 .

    Parameters
    ----------
    lambd : float, default=5e-3
        Weight ``λ`` (>= 0) of the redundancy-reduction (off-diagonal) term.
    eps : float, default=1e-5
        Added to the variance before the square root (>= 0). With 0, a
        dimension constant over the batch (collapse) divides by zero: the
        loss is NaN.

    References
    ----------
    .. [1] J. Zbontar, L. Jing, I. Misra, Y. LeCun and S. Deny, "Barlow
       Twins: Self-Supervised Learning via Redundancy Reduction", ICML 2021,
       eq. (1)-(2) and Algorithm 1.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.losses.redundancy import BarlowTwinsLoss
    >>> _ = torch.manual_seed(0)
    >>> z = torch.randn(32, 4)
    >>> loss = BarlowTwinsLoss(lambd=5e-3)
    >>> bool(loss(z, z) < loss(z, torch.randn(32, 4)))
    True
    """

    def __init__(self, lambd: float = 5e-3, eps: float = 1e-5) -> None:
        super().__init__()
        self.lambd = check_non_negative("lambd", lambd)
        self.eps = check_non_negative("eps", eps)

    def standardize(self, z: torch.Tensor) -> torch.Tensor:
        """Standardise ``(N, D)`` embeddings along the batch, per dimension."""
        z = upcast(z)
        mean = z.mean(dim=0, keepdim=True)  # (1, D)
        var = z.var(dim=0, unbiased=False, keepdim=True)  # (1, D)
        return (z - mean) / torch.sqrt(var + self.eps)  # (N, D)

    def cross_correlation(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """The ``(D, D)`` cross-correlation of the standardised views."""
        n = z1.shape[0]
        return matmul32(self.standardize(z1).T, self.standardize(z2)) / n  # (D, D)

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """Barlow Twins loss of two views.

        Parameters
        ----------
        z1, z2 : torch.Tensor of shape (N, D)
            Embeddings of two views of the same ``N >= 2`` samples.

        Returns
        -------
        torch.Tensor of shape ()
        """
        check_pair(z1, z2, "z1 and z2")
        if z1.shape[0] < 2:
            raise ValueError(
                "BarlowTwinsLoss standardises along the batch and needs N >= 2; "
                f"got N={z1.shape[0]}."
            )
        c = self.cross_correlation(z1, z2)  # (D, D)
        on_diag = (torch.diagonal(c) - 1).pow(2).sum()
        eye = torch.eye(c.shape[0], dtype=torch.bool, device=c.device)
        off_diag = c.masked_fill(eye, 0).pow(2).sum()
        return on_diag + self.lambd * off_diag


class VICRegLoss(nn.Module):
    """Variance-invariance-covariance regularisation loss of VICReg.

    With ``v(z) = mean_j max(0, γ - sqrt(Var(z_j) + eps))`` (unbiased
    variance along the batch) and ``c(z) = sum_{i≠j} Cov(z)_{ij}² / D``,

    .. math::

        \\mathcal{L} = \\lambda \\, \\frac{1}{N} \\lVert z_1 - z_2 \\rVert^2_F / D
        + \\mu \\, [v(z_1) + v(z_2)] + \\nu \\, [c(z_1) + c(z_2)] .

    The invariance term pulls the two views together, the variance term
    keeps every dimension spread out (no collapse) and the covariance term
    decorrelates the dimensions.

    Parameters
    ----------
    invariance_weight : float, default=25.0
        Weight ``λ`` (>= 0) of the mean squared distance between the views.
    variance_weight : float, default=25.0
        Weight ``μ`` (>= 0) of the hinge on each dimension's std.
    covariance_weight : float, default=1.0
        Weight ``ν`` (>= 0) of the off-diagonal covariance.
    gamma : float, default=1.0
        Target standard deviation ``γ`` (> 0).
    eps : float, default=1e-4
        Added to the variance before the square root (>= 0). With 0, a
        dimension constant over the batch (collapse) has no gradient of its
        standard deviation: it is not finite.

    References
    ----------
    .. [1] A. Bardes, J. Ponce and Y. LeCun, "VICReg: Variance-Invariance-
       Covariance Regularization for Self-Supervised Learning", ICLR 2022,
       eq. (1)-(6) and Algorithm 1.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.losses import VICRegLoss
    >>> _ = torch.manual_seed(0)
    >>> z = torch.randn(32, 4)
    >>> loss = VICRegLoss()
    >>> bool(loss(z, z) < loss(z, torch.randn(32, 4)))
    True
    """

    def __init__(
        self,
        invariance_weight: float = 25.0,
        variance_weight: float = 25.0,
        covariance_weight: float = 1.0,
        gamma: float = 1.0,
        eps: float = 1e-4,
    ) -> None:
        super().__init__()
        self.invariance_weight = check_non_negative(
            "invariance_weight", invariance_weight
        )
        self.variance_weight = check_non_negative("variance_weight", variance_weight)
        self.covariance_weight = check_non_negative(
            "covariance_weight", covariance_weight
        )
        self.eps = check_non_negative("eps", eps)
        self.gamma = check_positive("gamma", gamma)

    def variance(self, z: torch.Tensor) -> torch.Tensor:
        """Mean hinge ``max(0, γ - std)`` over the dimensions of ``(N, D)``."""
        std = torch.sqrt(z.var(dim=0) + self.eps)  # (D,)
        return torch.relu(self.gamma - std).mean()

    def covariance(self, z: torch.Tensor) -> torch.Tensor:
        """Sum of squared off-diagonal covariances of ``(N, D)``, over ``D``."""
        n, d = z.shape
        z = z - z.mean(dim=0)
        cov = matmul32(z.T, z) / (n - 1)  # (D, D)
        off_diag = cov.pow(2).sum() - torch.diagonal(cov).pow(2).sum()
        return off_diag / d

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """VICReg loss of two views.

        Parameters
        ----------
        z1, z2 : torch.Tensor of shape (N, D)
            Embeddings of two views of the same ``N >= 2`` samples.

        Returns
        -------
        torch.Tensor of shape ()
        """
        check_pair(z1, z2, "z1 and z2")
        if z1.shape[0] < 2:
            raise ValueError(
                "VICRegLoss takes variances along the batch and needs N >= 2; "
                f"got N={z1.shape[0]}."
            )
        z1, z2 = upcast(z1), upcast(z2)
        invariance = F.mse_loss(z1, z2)
        variance = self.variance(z1) + self.variance(z2)
        covariance = self.covariance(z1) + self.covariance(z2)
        return (
            self.invariance_weight * invariance
            + self.variance_weight * variance
            + self.covariance_weight * covariance
        )
