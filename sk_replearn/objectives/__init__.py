"""Training objectives: one module per family of methods.

``base`` holds the :class:`Objective` contract; ``reconstruction`` the
autoencoder; ``two_view``, ``contrastive`` and ``noncontrastive`` the
self-supervised objectives of two views; ``masked`` the MAE; ``sequence``
next- and masked-token prediction (GPT, BERT).
"""

from .base import Objective

__all__ = ["Objective"]
