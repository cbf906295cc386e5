"""The neural representation learners."""

from .autoencoder import AutoencoderTransformer

__all__ = ["AutoencoderTransformer"]
