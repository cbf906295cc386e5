"""Training objectives: one module per family of methods.

``base`` holds the :class:`Objective` contract; ``reconstruction`` the
autoencoder; ``contrastive`` / ``noncontrastive`` the self-supervised loss
modules and ``ssl_*`` the objectives built on them; ``masked`` the MAE.
"""

from .base import Objective

__all__ = ["Objective"]
