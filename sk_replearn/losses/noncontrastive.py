"""Non-contrastive losses, which use no negatives: BYOL's and SimSiam's
negative cosine, Barlow Twins', VICReg's and DINO's.

A stop-gradient and a predictor (BYOL, SimSiam) keep the first from
collapsing to a constant; the redundancy-reduction losses (Barlow Twins,
VICReg) are in :mod:`~sk_replearn.losses.redundancy`, DINO's in
:mod:`~sk_replearn.losses.dino`, and are imported here too, where pickles made
before they had modules of their own look for them.
:func:`~sk_replearn.losses.collapse_std` measures collapse. All losses
compute in at least float32 (autocast-safe).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import check_pair, upcast
from .dino import DINOLoss
from .redundancy import BarlowTwinsLoss, VICRegLoss

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
