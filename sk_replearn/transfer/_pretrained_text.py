"""Text models from Hugging Face in :class:`~sk_replearn.PretrainedTransformer`
(``model="hf:<name>"``): strings in, tokenised by the model's own tokenizer,
pooled over the real tokens."""

from __future__ import annotations

from sklearn.utils.validation import check_is_fitted

from .._seeding import seed_from_random_state
from ..methods._sequence_base import _SequenceTransformer
from ..methods.base import seeded
from ..nn.pretrained import HFTextBackbone
from ..nn.surgery import TransferEncoder
from ..tokens import TokenDataset, check_sequences
from ._loading import _hf_model


class PretrainedTextMixin:
    """Fit and tokenisation of a Hugging Face text model (not public)."""

    def _is_text(self) -> bool:
        return isinstance(self.model, str) and self.model.startswith("hf:")

    def _fit_text(self, X) -> PretrainedTextMixin:
        self._check_strings(X)
        if self.blocks is not None:
            raise ValueError(
                f"blocks={self.blocks!r} groups the modules of an image network; "
                f"a Hugging Face text model (model={self.model!r}) has its "
                "embeddings and one block a transformer layer. Leave blocks=None."
            )
        name = self.model.partition(":")[2]
        with seeded(seed_from_random_state(self.random_state)):
            self.tokenizer_, network = _hf_model(name)
        pad = self.tokenizer_.pad_token_id
        backbone = HFTextBackbone(
            network, 0 if pad is None else pad, self.pooling, self.layer
        )
        return self._set_encoder(TransferEncoder(backbone, None, backbone.out_features))

    def _check_strings(self, X) -> list[str]:
        owner = f"{type(self).__name__}(model={self.model!r})"
        kind, sequences = check_sequences(X, owner, strings_only=True)
        if kind != "str":
            raise TypeError(
                f"{type(self).__name__}(model={self.model!r}) reads strings, which "
                "its own tokenizer encodes; X holds integer token ids."
            )
        return sequences

    def _token_source(self):
        """Itself for a text model (the fine-tuners encode strings through it)."""
        return self if self._is_text() else None

    def _token_data(self, X, y=None, *, owner: str | None = None) -> TokenDataset:
        """X tokenised by the model's tokenizer: padded ids, lengths, targets."""
        check_is_fitted(self, "tokenizer_")
        sequences = self._check_strings(X)
        network = self.encoder_.body.model
        limit = getattr(network.config, "max_position_embeddings", 512)
        length = min(self.max_length or limit, limit)
        enc = self.tokenizer_(
            sequences,
            truncation=True,
            max_length=length,
            padding="longest",
            return_tensors="pt",
        )
        lengths = enc["attention_mask"].sum(1)
        return TokenDataset(enc["input_ids"], lengths, y)

    _map_tokens = _SequenceTransformer._map_tokens
