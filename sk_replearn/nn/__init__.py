"""Neural building blocks: encoders, decoders, heads and transformer parts.

Nothing in this subpackage imports scikit-learn or skorch; the estimators
turn their ``encoder`` / ``decoder`` parameters into modules with
:func:`build_encoder` and :func:`build_decoder`. One module a kind of
block: ``mlp``, ``conv`` (CNN, ResNet, conv decoder), ``transformer`` (the
transformer block, ViT encoder and decoder), ``patches`` (patch and
position tensor functions, masking), ``heads`` (projection, prediction,
prototypes), ``momentum`` (EMA copies), ``standardize``, ``surgery``
(blocks and transfer encoders) and ``build`` (the name registry).
"""

from .build import (
    AUTO_ENCODERS,
    DECODER_NAMES,
    ENCODER_NAMES,
    auto_encoder_kwargs,
    build_decoder,
    build_encoder,
    resolve_encoder,
)
from .conv import (
    CNNEncoder,
    ConvDecoder,
    ResNetEncoder,
    SignalAvgPool,
    SignalBatchNorm,
    SignalConv,
)
from .heads import (
    Bottleneck,
    CentredLayerNorm,
    CentredScale,
    ProjectionHead,
    Prototypes,
)
from .mlp import MLPDecoder, MLPEncoder
from .patches import (
    patchify,
    random_masking,
    sincos_pos_embed_1d,
    sincos_pos_embed_2d,
    unpatchify,
)
from .standardize import Standardize
from .transformer import ViTDecoder, ViTEncoder

__all__ = [
    "Bottleneck",
    "AUTO_ENCODERS",
    "DECODER_NAMES",
    "ENCODER_NAMES",
    "CNNEncoder",
    "CentredLayerNorm",
    "CentredScale",
    "ConvDecoder",
    "MLPDecoder",
    "MLPEncoder",
    "ProjectionHead",
    "Prototypes",
    "ResNetEncoder",
    "SignalAvgPool",
    "SignalBatchNorm",
    "SignalConv",
    "Standardize",
    "ViTDecoder",
    "ViTEncoder",
    "auto_encoder_kwargs",
    "build_decoder",
    "build_encoder",
    "patchify",
    "random_masking",
    "resolve_encoder",
    "sincos_pos_embed_1d",
    "sincos_pos_embed_2d",
    "unpatchify",
]
