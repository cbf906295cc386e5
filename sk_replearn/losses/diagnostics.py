"""Diagnostics of a learned representation: is it collapsing?"""

from __future__ import annotations

import torch

from ._checks import normalize

__all__ = ["collapse_std"]


@torch.no_grad()
def collapse_std(z: torch.Tensor) -> torch.Tensor:
    """Mean over dimensions of the batch std of L2-normalised outputs.

    About ``1 / sqrt(D)`` for outputs spread over the sphere, and 0 when
    every sample maps to the same point (complete collapse); SimSiam's
    diagnostic.

    Parameters
    ----------
    z : torch.Tensor of shape (N, D)
        Embeddings, ``N >= 2``.

    Returns
    -------
    torch.Tensor of shape ()
        Detached.

    References
    ----------
    .. [1] X. Chen and K. He, "Exploring Simple Siamese Representation
       Learning", CVPR 2021 (SimSiam), Sec. 4.1 and Fig. 2 (middle).

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.losses import collapse_std
    >>> _ = torch.manual_seed(0)
    >>> round(float(collapse_std(torch.randn(4096, 64))), 2)  # 1 / sqrt(64)
    0.12
    >>> float(collapse_std(torch.ones(10, 64)))
    0.0
    """
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(
            f"collapse_std needs z of shape (N, D) with N >= 2; got {tuple(z.shape)}."
        )
    return normalize(z).std(dim=0).mean()  # std: (D,)
