"""Loss modules of the self-supervised methods, one module per family.

Pure torch: each loss is a small ``nn.Module`` taking embeddings, its
docstring citing its paper. ``contrastive`` holds NT-Xent, InfoNCE and the
queue of keys; ``noncontrastive`` the BYOL / SimSiam loss; ``redundancy``
Barlow Twins' and VICReg's; ``dino`` DINO's; ``clustering`` SwAV's Sinkhorn
codes and swapped prediction; ``multiview`` CMC's InfoNCE between every pair
of views; ``diagnostics`` the collapse measure. The objectives of
:mod:`sk_replearn.objectives` (same family names) build on them.
"""

from .clustering import SwAVLoss, sinkhorn_knopp
from .contrastive import InfoNCELoss, MemoryQueue, NTXentLoss, gather_batch
from .diagnostics import collapse_std
from .dino import DINOLoss
from .multiview import MultiViewInfoNCELoss
from .noncontrastive import NegativeCosineLoss
from .redundancy import BarlowTwinsLoss, VICRegLoss

__all__ = [
    "BarlowTwinsLoss",
    "DINOLoss",
    "InfoNCELoss",
    "MemoryQueue",
    "MultiViewInfoNCELoss",
    "NTXentLoss",
    "NegativeCosineLoss",
    "SwAVLoss",
    "VICRegLoss",
    "collapse_std",
    "gather_batch",
    "sinkhorn_knopp",
]
