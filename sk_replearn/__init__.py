"""Representation learning as scikit-learn estimators."""

from .classical import KMeansTransformer, PCATransformer
from .methods import (
    AutoencoderTransformer,
    BarlowTwinsTransformer,
    BYOLTransformer,
    DINOTransformer,
    MAETransformer,
    MoCoTransformer,
    SimCLRTransformer,
    SimSiamTransformer,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "AutoencoderTransformer",
    "BYOLTransformer",
    "BarlowTwinsTransformer",
    "DINOTransformer",
    "KMeansTransformer",
    "MAETransformer",
    "MoCoTransformer",
    "PCATransformer",
    "SimCLRTransformer",
    "SimSiamTransformer",
]
