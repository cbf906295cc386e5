"""Representation learning as scikit-learn estimators."""

from .classical import KMeansTransformer, PCATransformer
from .methods import (
    AutoencoderTransformer,
    BarlowTwinsTransformer,
    BERTTransformer,
    BYOLTransformer,
    CMCTransformer,
    CollapseWarning,
    ContextEncoderTransformer,
    DINOTransformer,
    GPTTransformer,
    MAETransformer,
    MoCoTransformer,
    SimCLRTransformer,
    SimSiamTransformer,
    SwAVTransformer,
    VICRegTransformer,
)
from .transfer import FineTuner, FineTunerRegressor, PretrainedTransformer

__version__ = "0.1.0.dev0"

__all__ = [
    "AutoencoderTransformer",
    "BERTTransformer",
    "BYOLTransformer",
    "BarlowTwinsTransformer",
    "CMCTransformer",
    "CollapseWarning",
    "ContextEncoderTransformer",
    "DINOTransformer",
    "FineTuner",
    "FineTunerRegressor",
    "GPTTransformer",
    "KMeansTransformer",
    "MAETransformer",
    "MoCoTransformer",
    "PCATransformer",
    "PretrainedTransformer",
    "SimCLRTransformer",
    "SimSiamTransformer",
    "SwAVTransformer",
    "VICRegTransformer",
]
