"""What GPTTransformer and BERTTransformer share: tokens in, vectors out.

:class:`_SequenceTransformer` holds the constraints of the token
encoder's parameters (``tokenizer``, ``vocab_size``, ``max_length``,
``embed_dim``, ``depth``, ...), the vocabulary learned in ``fit`` (kept
with a warm start), the encoding of sequences with it, and ``transform``,
which maps the encoder over batches of sequences sorted by length; each
estimator adds its ``__init__``, ``fit``, ``score`` and the objective it
trains.
:class:`~sk_replearn.transfer.PretrainedTransformer` reads Hugging Face
text models with the same batched ``_map_tokens``.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._fingerprint import _model_repr
from .._heap import batch_within_budget, kept_heap, widest_output
from .._util import with_article
from ..tokens import (
    TOKENIZERS,
    Codec,
    TokenDataset,
    check_learnable,
    check_sequences,
    fit_codec,
    pad_sequences,
    warn_unknown,
)
from .base import _SIZED_FROM, NeuralRepresentation, _check_finite_output

#: Most tokens (sequences x padded length) in one batch of ``transform``.
_TRANSFORM_TOKENS = 2**15


class _SequenceTransformer(NeuralRepresentation):
    """Fit, transform and tokenisation shared by GPT and BERT (not public)."""

    _parameter_constraints: dict = {
        **{
            k: v
            for k, v in NeuralRepresentation._parameter_constraints.items()
            if k not in ("input_shape", "num_workers")  # strings, not Datasets
        },
        "tokenizer": [
            StrOptions(set(TOKENIZERS)),
            HasMethods(["encode_batch", "to_str"]),
        ],
        "vocab_size": [Interval(Integral, 1, None, closed="left"), None],
        "token_pattern": [str],
        "max_length": [Interval(Integral, 2, None, closed="left")],
        "embed_dim": [Interval(Integral, 1, None, closed="left")],
        "depth": [Interval(Integral, 1, None, closed="left")],
        "num_heads": [Interval(Integral, 1, None, closed="left")],
        "mlp_ratio": [Interval(Real, 0, None, closed="neither")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "conv_kernel_size": [Interval(Integral, 1, None, closed="left"), None],
    }
    #: Whether a sequence cut at ``max_length`` keeps its next token where
    #: ``[SEP]`` would go (see :func:`~sk_replearn.tokens.pad_sequences`):
    #: a language model must not learn an end at the cut.
    _cut_continues = False

    # -- input ---------------------------------------------------------------
    def _codec(self) -> Codec:
        """The fitted vocabulary (rebuilt from plain data after ``load``)."""
        check_is_fitted(self, "_codec_state")
        codec = getattr(self, "_codec_cache", None)
        if codec is None or codec.state is not self._codec_state:
            codec = self._codec_cache = Codec(self._codec_state)
        return codec

    def _token_data(self, X, y=None, *, owner: str | None = None) -> TokenDataset:
        """Encode X with the fitted vocabulary: padded ids (and targets ``y``)."""
        who = type(self).__name__
        owner = owner or who
        kind, sequences = check_sequences(X, owner)
        codec = self._same_kind(kind, owner, "X")
        positions = self.net_.module_.encoder.pos_embed.shape[1]
        encoded = codec.encode(sequences)
        warn_unknown(encoded, getattr(self, "_unknown_fraction", 0.0), owner)
        fix = None
        if owner != who:  # a fine-tuner, which has no max_length of its own
            fix = (
                f"The cut is its representation's, {with_article(who)} fitted "
                f"with max_length={positions - 2} (its position table has that "
                "many rows): to keep them whole, pre-train the representation "
                "with a larger max_length."
            )
        ids, lengths = pad_sequences(
            encoded, positions - 2, owner, fix, continues=self._cut_continues
        )
        return TokenDataset(ids, lengths, y)

    def _same_kind(self, kind: str, owner: str, what: str) -> Codec:
        """The fitted vocabulary, if ``kind`` is the kind of sequences fit got."""
        codec = self._codec()
        if (kind == "ids") != (codec.kind == "ids"):
            fitted = "integer token ids" if codec.kind == "ids" else "strings"
            given = "integer token ids" if kind == "ids" else "strings"
            who = type(self).__name__
            if owner != who:  # a fine-tuner passing X to its representation
                who = f"{owner}'s representation, {with_article(who)},"
            raise TypeError(
                f"{who} was fitted on {fitted} but {what} holds {given}; pass "
                "the same kind of sequences as in fit."
            )
        return codec

    def _training_data(self, X, *, reset: bool) -> TokenDataset:
        name = type(self).__name__
        kind, sequences = check_sequences(X, name)
        if reset:
            codec = fit_codec(
                self.tokenizer,
                sequences,
                vocab_size=self.vocab_size,
                token_pattern=self.token_pattern,
            )
            self._codec_state, self._codec_cache = codec.state, codec
            self._codec_settings = self._vocabulary_settings()
            self.vocabulary_ = dict(codec.vocabulary)
            self.vocab_size_ = codec.vocab_size
        else:  # warm start: the vocabulary of the first fit reads X
            self._same_kind(kind, name, "X")
            self._check_same_vocabulary_settings()
        encoded = self._codec().encode(sequences)
        if reset:
            self._unknown_fraction = check_learnable(encoded, name)
        else:
            warn_unknown(encoded, getattr(self, "_unknown_fraction", 0.0), name)
        ids, lengths = pad_sequences(
            encoded, self.max_length, name, continues=self._cut_continues
        )
        return TokenDataset(ids, lengths)

    #: The vocabulary's parameters, compared as far as they matter.
    _WARM_OWN_CHECK = frozenset({"tokenizer", "vocab_size", "token_pattern"})

    def _vocabulary_settings(self) -> tuple:
        """The parameters that make the vocabulary, as far as they matter."""
        tokenizer = self.tokenizer
        if not isinstance(tokenizer, str):  # a ready tokenizer, by its contents
            contents = getattr(tokenizer, "to_str", lambda: repr(tokenizer))()
            return ("a ready tokenizer", contents)
        if tokenizer == "word":
            return (tokenizer, self.vocab_size, self.token_pattern)
        return (tokenizer, self.vocab_size)

    def _model_params(self, text=_model_repr) -> dict:
        """The base's, less the vocabulary's parameters that do not matter.

        ``token_pattern`` splits only ``tokenizer="word"``'s words, and a
        ready tokenizer ignores ``vocab_size`` too (see
        :meth:`_vocabulary_settings`): a change of them is no change.
        """
        params = super()._model_params(text)
        unused = {"token_pattern"} if self.tokenizer != "word" else set()
        if not isinstance(self.tokenizer, str):
            unused.add("vocab_size")
        codec = getattr(self, "_codec_state", None)
        if isinstance(codec, dict) and codec.get("kind") == "ids":  # no tokenizer
            unused |= {"tokenizer", "vocab_size", "token_pattern"}
        return {k: v for k, v in params.items() if k not in unused}

    def _check_same_vocabulary_settings(self) -> None:
        """A warm start reads X with the first fit's vocabulary: refuse another."""
        fitted = getattr(self, "_codec_settings", None)
        if fitted is None or self._codec().kind == "ids":  # ids: no tokenizer
            return
        if self._vocabulary_settings() != fitted:
            raise ValueError(
                "warm_start=True continues the fitted network on the vocabulary "
                "of the first fit, but tokenizer, vocab_size or token_pattern "
                f"changed since (the first fit's tokenizer: {fitted[0]}); set "
                "them back, or warm_start=False to learn a new vocabulary."
            )

    def _token_source(self):
        return self

    def _map_tokens(
        self, X, fn, n_out: int, *, device, owner: str, probe: nn.Module | None = None
    ) -> np.ndarray:
        """Encode X and map ``fn(ids)`` over padded batches, in X's order.

        The sequences are sorted by length and cut into batches of at most
        :data:`_TRANSFORM_TOKENS` tokens, so that memory stays flat in
        ``n_samples`` and little compute goes to padding; the rows of the
        output come back in the order of X. On the CPU, with ``probe`` (the
        module ``fn`` runs; ``fn`` then deterministic) and more than
        :data:`_SIZED_FROM` sequences, a batch also keeps its widest
        activation within :data:`~sk_replearn._heap.BATCH_BYTES`, measured
        on the two longest sequences; the memory a batch frees serves the
        next.
        """
        data = self._token_data(X, owner=owner)
        lengths = data.lengths
        order = torch.sort(lengths, stable=True).indices
        out = np.empty((len(data), n_out), dtype=np.float32)
        on_cpu = torch.device(device).type == "cpu"
        budget = _TRANSFORM_TOKENS
        if probe is not None and on_cpu and len(order) > _SIZED_FROM:
            ids = data.take(order[-2:])  # (2, T): the longest, padded
            widest = widest_output(probe, lambda: fn(ids))
            budget = batch_within_budget(widest / ids.numel(), budget)
        several = on_cpu and int(lengths.sum()) > budget
        start = 0
        with kept_heap(several), torch.inference_mode():
            while start < len(order):
                # Sorted by length, a batch's longest sequence is its last:
                # grow the batch while its padded size fits the budget.
                stop = start + 1
                while (
                    stop < len(order)
                    and (stop - start + 1) * int(lengths[order[stop]]) <= budget
                ):
                    stop += 1
                idx = order[start:stop]
                ids = data.take(idx).to(device, non_blocking=True)
                out[idx.numpy()] = fn(ids).detach().to("cpu").numpy()
                start = stop
        _check_finite_output(out, None, owner, trained=self._trains_network)
        return out

    # -- fit -----------------------------------------------------------------
    @property
    def _n_features_out(self) -> int:
        # The fitted width, even if embed_dim was set again after fit.
        return getattr(self, "n_components_", self.embed_dim)

    def _fit_sequences(self, X):
        self._fit(X)
        self.n_components_ = self.embed_dim
        return self

    def _build_net(self, X_t: TokenDataset, device: torch.device):
        try:
            return super()._build_net(X_t, device)
        except (RuntimeError, MemoryError) as exc:
            # The position table has max_length + 2 rows, whatever X holds.
            if "allocate" not in str(exc) and not isinstance(exc, MemoryError):
                raise
            d = self.embed_dim
            raise ValueError(
                f"{type(self).__name__} could not allocate its network. Its "
                f"largest tables: the positions, max_length={self.max_length} "
                f"+ 2 rows of embed_dim={d} values ({(self.max_length + 2) * d:.3g}); "
                f"the tokens, {self.vocab_size_} x {d} ({self.vocab_size_ * d:.3g}); "
                f"{self.depth} blocks of about {12 * d * d:.3g} values each. The "
                f"longest sequence of X has {X_t.ids.shape[1] - 2} tokens: a "
                "max_length of about that is enough; or lower embed_dim or depth."
            ) from exc

    def _encoder_kwargs(self) -> dict:
        return {
            "embed_dim": self.embed_dim,
            "depth": self.depth,
            "num_heads": self.num_heads,
            "mlp_ratio": self.mlp_ratio,
            "dropout": self.dropout,
            "pooling": self.pooling,
            "conv_kernel_size": self.conv_kernel_size,
        }

    def transform(self, X) -> np.ndarray:
        """Encode sequences into their learned representation.

        Parameters
        ----------
        X : iterable of str, or integer sequences
            One string per sample (a list, an array of str, a pandas
            Series), or integer token ids if ``fit`` got those.

        Returns
        -------
        Z : ndarray of shape (n_samples, embed_dim), dtype float32
            The pooled hidden states (see ``pooling``) of the last block, or
            of the block ``transform_layer`` names.
        """
        check_is_fitted(self)
        return self._apply(X, *self._layer_encoding(self._module()), sized=True)

    def _transfer_encoder(self):
        check_is_fitted(self, "net_")
        return self.net_.module_.transfer_encoder().cpu()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags
