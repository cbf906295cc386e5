"""Views of tabular rows ``(B, d)``: :class:`TabularViews` (SCARF)."""

from __future__ import annotations

import torch

from ._base import _NonNeg, _Prob, _Views

__all__ = ["TabularViews"]


class TabularViews(_Views):
    """SCARF random views of a batch of tabular rows ``(B, d)``.

    Each row has ``round(corruption_rate * d)`` of its features, chosen at
    random, replaced by draws from the feature's empirical marginal: the same
    feature of another random row of the batch. Gaussian noise may be added
    after. A batch of one row has no other row to draw from and is left
    uncorrupted.

    Parameters
    ----------
    corruption_rate : float, default=0.6
        Fraction of each row's features that are replaced.
    noise_std : float, default=0.0
        Standard deviation of additive Gaussian noise, in standardised units.

    See Also
    --------
    ImageViews : Views of images.
    SequenceViews : Views of 1-D signals.
    make_views : Pick the family that fits the input.

    References
    ----------
    .. [1] D. Bahri, H. Jiang, Y. Tay and D. Metzler, "SCARF: Self-Supervised
       Contrastive Learning using Random Feature Corruption", ICLR 2022.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.views import TabularViews
    >>> x = torch.arange(12.0).view(4, 3)
    >>> v = TabularViews(corruption_rate=1.0)(x)
    >>> v.shape
    torch.Size([4, 3])
    >>> all(set(v[:, j].tolist()) <= set(x[:, j].tolist()) for j in range(3))
    True
    """

    _ndim, _layout = 2, "d"
    _pairs: dict = {}
    _parameter_constraints: dict = {
        "corruption_rate": [_Prob],
        "noise_std": [_NonNeg],
    }

    def __init__(self, *, corruption_rate: float = 0.6, noise_std: float = 0.0):
        self.corruption_rate = corruption_rate
        self.noise_std = noise_std

    def _augment(self, x):
        B, d = x.shape
        n_corrupt = round(self.corruption_rate * d)
        if n_corrupt > 0 and B > 1:
            which = torch.rand(B, d, device=x.device).argsort(1)[:, :n_corrupt]
            mask = torch.zeros(B, d, dtype=torch.bool, device=x.device)
            mask.scatter_(1, which, True)  # (B, d): exactly n_corrupt per row
            # a donor row other than the row itself, per (row, feature)
            offset = torch.randint(1, B, (B, d), device=x.device)
            donor = (torch.arange(B, device=x.device)[:, None] + offset) % B
            x = torch.where(mask, x.gather(0, donor), x)
        if self.noise_std > 0:
            x = x + self.noise_std * torch.randn_like(x)
        return x
