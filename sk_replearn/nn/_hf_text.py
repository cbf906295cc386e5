"""A Hugging Face text model as an encoder of padded token ids (public
from :mod:`sk_replearn.nn.pretrained`)."""

from __future__ import annotations

import torch
from torch import nn

from ._cut import _has_params, _output_of, _submodule
from .surgery import Block


class HFTextBackbone(nn.Module):
    """A Hugging Face text model on padded token ids: ``(B, T) -> (B, D)``.

    Parameters
    ----------
    model : torch.nn.Module
        A ``transformers`` model without a task head (``AutoModel``), whose
        output has ``last_hidden_state``.
    pad_id : int
        The tokenizer's padding id: positions holding it are masked out of
        attention and of the pooling.
    pooling : {"avg", "max", "cls"}, default="avg"
        Mean (or max) of the hidden states over the real tokens, or the
        first token's ([CLS]).
    layer : str or None, default=None
        A sub-module (``"encoder.layer.5"``), as ``model.named_modules()``
        names it, whose hidden states ``(B, T, D)`` (the first element of a
        tuple output) are pooled; the layers after it are not run. None
        pools the last hidden states.

    Attributes
    ----------
    out_features : int
        The model's hidden size.
    """

    def __init__(
        self,
        model: nn.Module,
        pad_id: int,
        pooling: str = "avg",
        layer: str | None = None,
    ) -> None:
        super().__init__()
        if pooling not in ("avg", "max", "cls"):
            raise ValueError(
                f"pooling={pooling!r} is not available for a text model; use "
                "'avg', 'max' or 'cls'."
            )
        self.model = model
        self.pad_id = int(pad_id)
        self.pooling = pooling
        self.layer = layer
        if layer is not None:
            _submodule(model, layer, "layer")  # a wrong name fails here
        self.out_features = int(model.config.hidden_size)

    def _hidden(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The hidden states ``(B, T, D)`` of the last layer, or of ``layer``."""
        if self.layer is None:
            return self.model(
                input_ids=ids, attention_mask=mask.long()
            ).last_hidden_state
        hidden = _output_of(
            _submodule(self.model, self.layer, "layer"),
            lambda: self.model(input_ids=ids, attention_mask=mask.long()),
        )
        if isinstance(hidden, (tuple, list)) and hidden:
            hidden = hidden[0]  # a transformer layer's (states, attention, ...)
        if not isinstance(hidden, torch.Tensor) or hidden.shape[:2] != ids.shape:
            raise ValueError(
                f"layer={self.layer!r} of {type(self.model).__name__} gives no "
                "hidden states of one vector a token (batch, tokens, features) "
                "in the forward pass; cut at a transformer layer (e.g. "
                "'encoder.layer.0') or at the embeddings."
            )
        return hidden

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Pooled hidden states of a padded batch of ids, in float32."""
        mask = ids != self.pad_id  # (B, T)
        hidden = self._hidden(ids, mask)
        # A bf16 or fp16 model's states are pooled (summed over the tokens)
        # in float32, the features' dtype.
        hidden = hidden.float()  # (B, T, D)
        if self.pooling == "cls":
            return hidden[:, 0]
        m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        if self.pooling == "avg":
            return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
        return hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).amax(1)

    def transfer_blocks(self) -> list:
        """The embeddings, then one block per transformer layer (BERT-like
        models); otherwise the model's weighted children."""
        embeddings = getattr(self.model, "embeddings", None)
        layers = getattr(getattr(self.model, "encoder", None), "layer", None)
        if embeddings is None or layers is None:
            return [Block.of(c) for c in self.model.children() if _has_params(c)]
        blocks = [Block.of(embeddings)] + [Block.of(layer) for layer in layers]
        used = {id(p) for b in blocks for p in b.params}
        rest = [p for p in self.model.parameters() if id(p) not in used]
        blocks[-1].params += rest  # a pooler, which the features do not use
        return blocks
