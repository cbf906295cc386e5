"""The neural representation learners."""

from .clustering import SwAVTransformer
from .cmc import CMCTransformer
from .context import ContextEncoderTransformer
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
from .sequence import BERTTransformer, GPTTransformer
from .two_view import CollapseWarning

__all__ = [
    "AutoencoderTransformer",
    "BERTTransformer",
    "BYOLTransformer",
    "BarlowTwinsTransformer",
    "CMCTransformer",
    "CollapseWarning",
    "ContextEncoderTransformer",
    "DINOTransformer",
    "GPTTransformer",
    "MAETransformer",
    "MoCoTransformer",
    "SimCLRTransformer",
    "SimSiamTransformer",
    "SwAVTransformer",
    "VICRegTransformer",
]
