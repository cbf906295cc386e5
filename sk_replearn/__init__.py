"""Representation learning as scikit-learn estimators."""

from .classical import KMeansTransformer, PCATransformer
from .methods import AutoencoderTransformer

__version__ = "0.1.0.dev0"

__all__ = ["AutoencoderTransformer", "KMeansTransformer", "PCATransformer"]
