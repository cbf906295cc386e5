"""Representation learning as scikit-learn estimators."""

from .classical import KMeansTransformer, PCATransformer
from .methods import (
    AutoencoderTransformer,
    BarlowTwinsTransformer,
    BYOLTransformer,
    CollapseWarning,
    DINOTransformer,
    MAETransformer,
    MoCoTransformer,
    SimCLRTransformer,
    SimSiamTransformer,
    VICRegTransformer,
)
from .transfer import FineTuner, FineTunerRegressor

__version__ = "0.1.0.dev0"

__all__ = [
    "AutoencoderTransformer",
    "BYOLTransformer",
    "BarlowTwinsTransformer",
    "CollapseWarning",
    "DINOTransformer",
    "FineTuner",
    "FineTunerRegressor",
    "KMeansTransformer",
    "MAETransformer",
    "MoCoTransformer",
    "PCATransformer",
    "SimCLRTransformer",
    "SimSiamTransformer",
    "VICRegTransformer",
]
