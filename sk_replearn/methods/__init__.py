"""The neural representation learners."""

from .contrastive import MoCoTransformer, SimCLRTransformer
from .masked import MAETransformer
from .noncontrastive import (
    BarlowTwinsTransformer,
    BYOLTransformer,
    DINOTransformer,
    SimSiamTransformer,
    VICRegTransformer,
)
from .reconstruction import AutoencoderTransformer
from .two_view import CollapseWarning

__all__ = [
    "AutoencoderTransformer",
    "BYOLTransformer",
    "BarlowTwinsTransformer",
    "CollapseWarning",
    "DINOTransformer",
    "MAETransformer",
    "MoCoTransformer",
    "SimCLRTransformer",
    "SimSiamTransformer",
    "VICRegTransformer",
]
