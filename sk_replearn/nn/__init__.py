"""Neural building blocks: encoders, decoders, heads and ViT tensor helpers.

Nothing in this subpackage imports scikit-learn or skorch; the estimators
turn their ``encoder`` / ``decoder`` parameters into modules with
:func:`build_encoder` and :func:`build_decoder`.
"""

from .encoders import (
    DECODER_NAMES,
    ENCODER_NAMES,
    CNNEncoder,
    ConvDecoder,
    MLPDecoder,
    MLPEncoder,
    ResNetEncoder,
    ViTDecoder,
    ViTEncoder,
    build_decoder,
    build_encoder,
)
from .heads import ProjectionHead
from .vit import (
    patchify,
    random_masking,
    sincos_pos_embed_1d,
    sincos_pos_embed_2d,
    unpatchify,
)

__all__ = [
    "DECODER_NAMES",
    "ENCODER_NAMES",
    "CNNEncoder",
    "ConvDecoder",
    "MLPDecoder",
    "MLPEncoder",
    "ProjectionHead",
    "ResNetEncoder",
    "ViTDecoder",
    "ViTEncoder",
    "build_decoder",
    "build_encoder",
    "patchify",
    "random_masking",
    "sincos_pos_embed_1d",
    "sincos_pos_embed_2d",
    "unpatchify",
]
