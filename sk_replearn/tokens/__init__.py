"""Strings and token ids in, padded batches of token ids out.

The sequence estimators (:class:`~sk_replearn.GPTTransformer`,
:class:`~sk_replearn.BERTTransformer`) take what scikit-learn's text
vectorizers take: an iterable of strings (a list, an array of str or object,
a pandas Series or a one-column DataFrame). Users with their own tokens pass
a list of integer sequences or a 2-D integer array padded with negative
values. This module

- validates that input with clear errors (:func:`check_sequences`);
- learns a vocabulary in ``fit`` and maps strings to ids and back
  (:class:`Codec`; :func:`fit_codec`): one token per character, per word
  (a regular expression), or subwords learned by Hugging Face ``tokenizers``
  (byte-pair encoding, WordPiece), or a ready ``tokenizers.Tokenizer``;
- stores encoded sequences as one padded tensor (:class:`TokenDataset`) and
  batches them (:class:`TokenBatches`): every batch is cut to its longest
  sequence, and training batches group sequences of similar length, so that
  little of the compute goes to padding.

Ids ``0..4`` are the special tokens :data:`SPECIAL_TOKENS`; a sequence is
``[CLS] t_1 ... t_n [SEP]`` followed by ``[PAD]``.
"""

from __future__ import annotations

from . import _codec
from ._batches import TokenBatches, TokenDataset, pad_sequences
from ._checks import check_learnable, check_sequences, warn_unknown
from ._codec import (
    CLS,
    MASK,
    N_SPECIAL,
    PAD,
    SEP,
    UNK,
    Codec,
    fit_codec,
)
from ._codec import MAX_IDS as MAX_IDS  # public, outside __all__
from ._codec import TOKENIZERS as TOKENIZERS  # public, outside __all__

__all__ = [
    "CLS",
    "MASK",
    "N_SPECIAL",
    "PAD",
    "SEP",
    "SPECIAL_TOKENS",
    "UNK",
    "Codec",
    "TokenBatches",
    "TokenDataset",
    "check_learnable",
    "check_sequences",
    "fit_codec",
    "pad_sequences",
    "warn_unknown",
]

# Named here too: Sphinx reads a constant's "#:" comment in the module that
# the API page documents it under, this one.
#: The special tokens, by id: padding, unknown token, start, end, mask.
SPECIAL_TOKENS = _codec.SPECIAL_TOKENS
