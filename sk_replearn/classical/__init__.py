"""Closed-form and EM representation learners in PyTorch: K-means and PCA."""

from .kmeans import KMeansTransformer
from .pca import PCATransformer

__all__ = ["KMeansTransformer", "PCATransformer"]
