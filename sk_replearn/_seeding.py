"""Seeds: a torch seed from a scikit-learn ``random_state``
(:func:`seed_from_random_state`) and draws keyed by sample, the same for a
sample whichever batch it comes in (:func:`keyed_uniform`,
:func:`keyed_generator`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from sklearn.utils import check_random_state


def seed_from_random_state(random_state) -> int:
    """Draw a torch seed from a scikit-learn ``random_state``.

    Parameters
    ----------
    random_state : int, RandomState instance or None
        As everywhere in scikit-learn. An int always gives the same seed;
        ``None`` draws a fresh one from numpy's global generator.

    Returns
    -------
    int
        A seed in ``[0, 2**31 - 1)`` for :func:`torch.manual_seed` or a
        :class:`torch.Generator`.

    Examples
    --------
    >>> from sk_replearn.base import seed_from_random_state
    >>> seed_from_random_state(0) == seed_from_random_state(0)
    True
    """
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def keyed_uniform(
    keys: Sequence[bytes], seed: int, lengths: Sequence[int], width: int
) -> torch.Tensor:
    """Uniform draws ``(len(keys), width)``, row ``i`` seeded by ``keys[i]``.

    Row ``i`` holds ``lengths[i]`` draws from a generator seeded by ``seed``
    and the bytes ``keys[i]`` (a sample's own values), then 2.0: so a
    sample gets the same draws whatever batch it is in, in whatever order,
    however padded. What makes a masked model's score (BERT's, MAE's) a
    function of each sample.

    Examples
    --------
    >>> from sk_replearn._seeding import keyed_uniform
    >>> a = keyed_uniform([b"x", b"yz"], 0, [2, 3], 4)
    >>> b = keyed_uniform([b"yz"], 0, [3], 3)
    >>> bool((a[1, :3] == b[0]).all()), a[0, 2:].tolist()
    (True, [2.0, 2.0])
    """
    out = torch.full((len(keys), width), 2.0)
    for i, (key, n) in enumerate(zip(keys, lengths)):
        out[i, :n] = torch.rand(n, generator=keyed_generator(key, seed))
    return out


def keyed_generator(key: bytes, seed: int) -> torch.Generator:
    """A CPU generator seeded by ``seed`` and the bytes ``key``.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn._seeding import keyed_generator
    >>> a = torch.rand(2, generator=keyed_generator(b"sample", 0))
    >>> torch.equal(a, torch.rand(2, generator=keyed_generator(b"sample", 0)))
    True
    """
    digest = hashlib.blake2b(key, digest_size=7).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") ^ int(seed))
