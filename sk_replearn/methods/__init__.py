"""The neural representation learners."""

from ._ssl import CollapseWarning
from .autoencoder import AutoencoderTransformer
from .contrastive import MoCoTransformer, SimCLRTransformer
from .masked import MAETransformer
from .noncontrastive import (
    BarlowTwinsTransformer,
    BYOLTransformer,
    DINOTransformer,
    SimSiamTransformer,
)

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
]
