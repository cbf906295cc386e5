"""Momentum (exponential moving average) networks of MoCo, BYOL and DINO.

A target network ``ξ`` follows an online network ``θ`` by
``ξ ← m·ξ + (1 − m)·θ`` after each optimiser step; it receives no gradient.
"""

from __future__ import annotations

import copy
import math
from typing import TypeVar

import torch
from torch import nn

__all__ = ["copy_frozen", "cosine_momentum", "update_momentum"]

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def copy_frozen(module: ModuleT) -> ModuleT:
    """Deep copy of a module whose parameters do not require gradients.

    The starting point of a momentum (target / teacher) network: same
    weights as the online network, updated only by :func:`update_momentum`.

    Parameters
    ----------
    module : torch.nn.Module
        The online network.

    Returns
    -------
    torch.nn.Module
        A frozen copy, of the same class and training mode.

    References
    ----------
    .. [1] K. He, H. Fan, Y. Wu, S. Xie and R. Girshick, "Momentum Contrast
       for Unsupervised Visual Representation Learning", CVPR 2020 (MoCo).
    .. [2] J.-B. Grill et al., "Bootstrap Your Own Latent: A New Approach to
       Self-Supervised Learning", NeurIPS 2020 (BYOL).

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn.momentum import copy_frozen
    >>> online = torch.nn.Linear(3, 2)
    >>> target = copy_frozen(online)
    >>> any(p.requires_grad for p in target.parameters())
    False
    >>> torch.equal(target.weight, online.weight)
    True
    """
    frozen = copy.deepcopy(module)
    frozen.requires_grad_(False)
    return frozen


@torch.no_grad()
def update_momentum(online: nn.Module, target: nn.Module, m: float) -> None:
    """In-place EMA ``target = m·target + (1 − m)·online`` of the parameters.

    Buffers (e.g. batch-norm running statistics) are copied from ``online``.
    Parameters and buffers are matched in registration order, so ``target``
    should be a copy of ``online`` (see :func:`copy_frozen`). ``m=1`` leaves
    ``target`` unchanged and ``m=0`` copies ``online`` exactly.

    Parameters
    ----------
    online : torch.nn.Module
        The network trained by gradient descent (``θ``).
    target : torch.nn.Module
        The momentum network (``ξ``), modified in place.
    m : float
        Momentum in ``[0, 1]``: MoCo uses 0.999, BYOL starts at 0.996 (see
        :func:`cosine_momentum`).

    References
    ----------
    .. [1] K. He, H. Fan, Y. Wu, S. Xie and R. Girshick, "Momentum Contrast
       for Unsupervised Visual Representation Learning", CVPR 2020 (MoCo),
       eq. (2).
    .. [2] J.-B. Grill et al., "Bootstrap Your Own Latent: A New Approach to
       Self-Supervised Learning", NeurIPS 2020 (BYOL), Sec. 3.1.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.nn.momentum import update_momentum
    >>> online, target = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)
    >>> with torch.no_grad():
    ...     _ = online.weight.fill_(1.0), target.weight.fill_(0.0)
    >>> update_momentum(online, target, m=0.75)
    >>> target.weight.item()
    0.25
    """
    m = float(m)
    if not 0.0 <= m <= 1.0:
        raise ValueError(f"momentum m must be in [0, 1], got {m!r}.")
    pairs = [
        (list(online.parameters()), list(target.parameters()), "parameters"),
        (list(online.buffers()), list(target.buffers()), "buffers"),
    ]
    for src, dst, kind in pairs:
        if len(src) != len(dst) or any(s.shape != d.shape for s, d in zip(src, dst)):
            raise ValueError(
                f"online and target must have matching {kind} (same count and "
                "shapes); build target with copy_frozen(online)."
            )
    online_params, target_params, _ = pairs[0]
    for o, t in zip(online_params, target_params):
        # lerp is exact at both ends: weight 0 returns t, weight 1 returns o.
        t.lerp_(o.detach().to(t.dtype), 1.0 - m)
    online_buffers, target_buffers, _ = pairs[1]
    for o, t in zip(online_buffers, target_buffers):
        t.copy_(o)


def cosine_momentum(
    step: int, total_steps: int, base: float = 0.996, final: float = 1.0
) -> float:
    """BYOL's cosine schedule of the target momentum.

    ``m(k) = final − (final − base)·(cos(π k / K) + 1) / 2``: ``base`` at
    ``k = 0``, rising to ``final`` at ``k = K``; ``step`` is clipped to
    ``[0, K]``.

    Parameters
    ----------
    step : int
        Current training step ``k``.
    total_steps : int
        Total number of steps ``K`` (>= 1).
    base : float, default=0.996
        Momentum at the start.
    final : float, default=1.0
        Momentum at the end.

    Returns
    -------
    float

    References
    ----------
    .. [1] J.-B. Grill et al., "Bootstrap Your Own Latent: A New Approach to
       Self-Supervised Learning", NeurIPS 2020 (BYOL), Sec. 3.2,
       ``τ = 1 − (1 − τ_base)(cos(πk/K) + 1)/2``.

    Examples
    --------
    >>> from sk_replearn.nn.momentum import cosine_momentum
    >>> [round(cosine_momentum(k, 10), 4) for k in (0, 5, 10)]
    [0.996, 0.998, 1.0]
    """
    if int(total_steps) < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps!r}.")
    progress = min(max(step, 0), total_steps) / total_steps
    return final - (final - base) * (math.cos(math.pi * progress) + 1.0) / 2.0
