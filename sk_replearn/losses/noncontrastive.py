"""Non-contrastive losses: BYOL / SimSiam, Barlow Twins, DINO and VICReg.

These methods use no negatives; what keeps them from collapsing to a constant
is a stop-gradient and predictor (BYOL, SimSiam), decorrelation (Barlow
Twins), centering and sharpening of a teacher (DINO) or a floor on each
dimension's spread with decorrelation (VICReg);
:func:`~sk_replearn.losses.collapse_std` measures collapse. All losses
compute in at least float32 (autocast-safe).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import (
    check_non_negative,
    check_pair,
    check_positive,
    matmul32,
    upcast,
)
from .clustering import _all_reduce
from .contrastive import _world

__all__ = ["BarlowTwinsLoss", "DINOLoss", "NegativeCosineLoss", "VICRegLoss"]


class NegativeCosineLoss(nn.Module):
    """Negative cosine similarity with a stop-gradient on the target.

    ``D(p, z) = −mean_i cos(p_i, stopgrad(z_i))``, in ``[−1, 1]``; the
    gradient never reaches ``z``. This is SimSiam's ``D``; BYOL's
    ``‖p̄ − z̄‖² = 2 − 2 cos(p, z)`` is the affine map ``2 + 2·D`` of it, so
    both give the same gradients up to a factor 2. The symmetric losses
    (``D(p1, z2)/2 + D(p2, z1)/2`` in SimSiam, the sum in BYOL) are two
    calls.

    References
    ----------
    .. [1] X. Chen and K. He, "Exploring Simple Siamese Representation
       Learning", CVPR 2021 (SimSiam), eq. (1)-(3) and Algorithm 1.
    .. [2] J.-B. Grill et al., "Bootstrap Your Own Latent: A New Approach to
       Self-Supervised Learning", NeurIPS 2020 (BYOL), eq. (2).

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.losses.noncontrastive import NegativeCosineLoss
    >>> loss = NegativeCosineLoss()
    >>> p = torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True)
    >>> z = torch.tensor([[3.0, 0.0], [1.0, 0.0]], requires_grad=True)
    >>> loss(p, z)
    tensor(-0.5000, grad_fn=<NegBackward0>)
    >>> loss(p, z).backward()
    >>> z.grad is None
    True
    """

    def forward(self, p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Mean negative cosine similarity.

        Parameters
        ----------
        p : torch.Tensor of shape (N, D)
            Predictions (online branch); receives the gradient.
        z : torch.Tensor of shape (N, D)
            Targets (other branch); detached inside.

        Returns
        -------
        torch.Tensor of shape ()
        """
        check_pair(p, z, "p and z")
        p = F.normalize(upcast(p), dim=1)  # (N, D)
        z = F.normalize(upcast(z.detach()), dim=1)  # (N, D)
        return -(p * z).sum(dim=1).mean()


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
    >>> from sk_replearn.losses.noncontrastive import BarlowTwinsLoss
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


class DINOLoss(nn.Module):
    """Self-distillation cross-entropy of DINO with a centred, sharp teacher.

    For teacher outputs ``t_a`` (global views only) and student outputs
    ``s_b`` (all views; the first ``len(teacher_out)`` are the same crops as
    the teacher's), the loss averages over the pairs ``a ≠ b``

    .. math::

        H(P_t(t_a), P_s(s_b)) = -\\sum_k
        \\mathrm{softmax}\\!\\left(\\frac{t_a - c}{\\tau_t}\\right)_k
        \\log \\mathrm{softmax}\\!\\left(\\frac{s_b}{\\tau_s}\\right)_k ,

    each averaged over the batch; the teacher side is detached. After a
    forward in training mode the center ``c`` moves towards the teacher's
    batch mean, ``c ← m c + (1 − m) mean(t)`` (:meth:`update_center`).

    Parameters
    ----------
    out_dim : int
        Width ``K`` of the DINO head's output.
    teacher_temp : float, default=0.04
        Teacher temperature ``τ_t`` (> 0). A plain attribute: for DINO's
        warm-up the objective sets ``loss.teacher_temp`` at each step (the
        paper: linear from 0.04 to 0.07 over the first 30 epochs).
    student_temp : float, default=0.1
        Student temperature ``τ_s`` (> 0).
    center_momentum : float, default=0.9
        Momentum ``m`` in ``[0, 1]`` of the center's EMA.

    Attributes
    ----------
    center : torch.Tensor of shape (1, out_dim)
        Buffer, the running mean of the teacher's outputs; starts at zero.

    References
    ----------
    .. [1] M. Caron, H. Touvron, I. Misra, H. Jégou, J. Mairal, P. Bojanowski
       and A. Joulin, "Emerging Properties in Self-Supervised Vision
       Transformers", ICCV 2021 (DINO), eq. (2)-(4) and Algorithm 1.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.losses.noncontrastive import DINOLoss
    >>> _ = torch.manual_seed(0)
    >>> loss = DINOLoss(out_dim=16)
    >>> teacher = [torch.randn(4, 16) for _ in range(2)]  # 2 global views
    >>> student = [torch.randn(4, 16) for _ in range(4)]  # + 2 local views
    >>> loss(student, teacher).shape
    torch.Size([])
    >>> bool(loss.center.abs().sum() > 0)  # updated in training mode
    True
    """

    def __init__(
        self,
        out_dim: int,
        teacher_temp: float = 0.04,
        student_temp: float = 0.1,
        center_momentum: float = 0.9,
    ) -> None:
        super().__init__()
        if int(out_dim) < 1:
            raise ValueError(f"out_dim must be >= 1, got {out_dim!r}.")
        center_momentum = float(center_momentum)
        if not 0.0 <= center_momentum <= 1.0:
            raise ValueError(
                f"center_momentum must be in [0, 1], got {center_momentum!r}."
            )
        self.out_dim = int(out_dim)
        self.teacher_temp = check_positive("teacher_temp", teacher_temp)
        self.student_temp = check_positive("student_temp", student_temp)
        self.center_momentum = center_momentum
        self.register_buffer("center", torch.zeros(1, self.out_dim))

    def _check_views(self, views: Sequence[torch.Tensor], name: str) -> None:
        if len(views) == 0 or any(
            v.ndim != 2
            or v.shape != views[0].shape
            or v.shape[1] != self.out_dim
            or v.shape[0] == 0
            for v in views
        ):
            raise ValueError(
                f"{name} must be a non-empty sequence of tensors of the same shape "
                f"(B, {self.out_dim}); got shapes {[tuple(v.shape) for v in views]}."
            )

    def teacher_probs(
        self, teacher_out: torch.Tensor, center: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Centred, sharpened, detached teacher distribution ``(B, K)``.

        ``center`` replaces the running ``center`` when given.
        """
        check_positive("teacher_temp", self.teacher_temp)
        c = self.center if center is None else center
        t = upcast(teacher_out.detach()) - c  # (B, K)
        return F.softmax(t / self.teacher_temp, dim=-1)  # (B, K)

    def forward(
        self,
        student_out: Sequence[torch.Tensor],
        teacher_out: Sequence[torch.Tensor],
        center: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mean cross-entropy over the (teacher view, other student view) pairs.

        Parameters
        ----------
        student_out : sequence of torch.Tensor of shape (B, out_dim)
            Student head outputs (logits) of every view, global views first.
        teacher_out : sequence of torch.Tensor of shape (B, out_dim)
            Teacher head outputs of the global views; ``teacher_out[a]`` is
            the same crop as ``student_out[a]``.
        center : torch.Tensor of shape (1, out_dim) or None, default=None
            The center to subtract from the teacher's outputs; None uses the
            running ``center``. (DINO's objective passes the teacher's
            own mean in evaluation mode, where the running center, a mean
            of training-mode outputs, does not fit.)

        Returns
        -------
        torch.Tensor of shape ()
        """
        self._check_views(student_out, "student_out")
        self._check_views(teacher_out, "teacher_out")
        if student_out[0].shape != teacher_out[0].shape:
            raise ValueError(
                "student_out and teacher_out views must have the same batch size; "
                f"got {tuple(student_out[0].shape)} and {tuple(teacher_out[0].shape)}."
            )
        if len(student_out) < 2:
            raise ValueError(
                "DINOLoss compares different views and needs at least 2 student "
                f"views; got {len(student_out)}."
            )
        if len(teacher_out) > len(student_out):
            raise ValueError(
                f"DINOLoss pairs each of the {len(teacher_out)} teacher views with "
                "the student's view of the same crop, but the student has only "
                f"{len(student_out)}: pass the student's outputs of every view, "
                "the teacher's global views first."
            )
        log_p = [
            F.log_softmax(upcast(s) / self.student_temp, dim=-1)  # (B, K)
            for s in student_out
        ]
        total, n_pairs = 0.0, 0
        for a, t in enumerate(teacher_out):
            q = self.teacher_probs(t, center)  # (B, K)
            for b, lp in enumerate(log_p):
                if a == b:
                    continue
                total = total + (-(q * lp).sum(dim=-1)).mean()
                n_pairs += 1
        loss = total / n_pairs
        if self.training:
            self.update_center(teacher_out)
        return loss

    @torch.no_grad()
    def update_center(self, teacher_out: Sequence[torch.Tensor]) -> None:
        """EMA of the center towards the teacher's mean output.

        Parameters
        ----------
        teacher_out : sequence of torch.Tensor of shape (B, out_dim)
            Teacher head outputs of the global views.
        """
        rows = upcast(torch.cat(list(teacher_out)))  # (V B, K)
        # The mean over the global batch: every process's rows (DINO's
        # all-reduce), so that the processes' centers stay equal.
        total = _all_reduce(rows.sum(0, keepdim=True))  # (1, K)
        count = rows.shape[0] * _world()[1]
        batch_center = total / count
        self.center.lerp_(batch_center.to(self.center.dtype), 1 - self.center_momentum)

    def extra_repr(self) -> str:
        return (
            f"out_dim={self.out_dim}, teacher_temp={self.teacher_temp}, "
            f"student_temp={self.student_temp}, "
            f"center_momentum={self.center_momentum}"
        )


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
