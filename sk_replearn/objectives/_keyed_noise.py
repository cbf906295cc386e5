"""Masking noise keyed to each sample, shared by MAE and the context
encoder (public from :mod:`sk_replearn.objectives.masked`)."""

from __future__ import annotations

import torch

from .._seeding import keyed_generator, keyed_uniform


class KeyedNoise:
    """Masking noise drawn from each sample's own values and a seed.

    Passed as the ``generator`` of :meth:`MAEObjective.reconstruct`, it
    makes a sample's mask a function of the sample and ``seed`` alone, not
    of the other rows of its batch or their order (``keyed_uniform``).

    Parameters
    ----------
    seed : int
        Mixed with each sample's bytes.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.objectives.masked import KeyedNoise
    >>> x = torch.randn(3, 1, 8, 8)
    >>> alone = KeyedNoise(0).uniform(x[2:], 16)
    >>> in_batch = KeyedNoise(0).uniform(x, 16)
    >>> torch.equal(alone[0], in_batch[2]), in_batch.shape
    (True, torch.Size([3, 16]))
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def uniform(self, x: torch.Tensor, length: int) -> torch.Tensor:
        """``length`` uniform draws ``(N, length)`` for each sample of ``x``."""
        keys = self._keys(x)
        return keyed_uniform(keys, self.seed, [length] * len(keys), length)

    def generators(self, x: torch.Tensor) -> list[torch.Generator]:
        """One generator per sample of the raw batch ``x``."""
        return [keyed_generator(key, self.seed) for key in self._keys(x)]

    @staticmethod
    def _keys(x: torch.Tensor) -> list[bytes]:
        rows = x.detach().float().cpu().reshape(len(x), -1).numpy()
        return [row.tobytes() for row in rows]
