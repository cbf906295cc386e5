"""DINO's loss: a student's distribution over the prototypes matched to its
momentum teacher's, centred and sharpened (the centre a running mean of the
teacher's outputs).

No negatives: the centring and sharpening keep the teacher from collapsing
to one prototype or to the uniform distribution. Computes in at least
float32 (autocast-safe).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import check_positive, upcast
from .clustering import _all_reduce
from .contrastive import _world

__all__ = ["DINOLoss"]


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
    >>> from sk_replearn.losses.dino import DINOLoss
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
