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

import math
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch

from ._util import with_article
from ._warn import warn_user
from .data import Batches, shuffled_order

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

#: The special tokens, by id: padding, unknown token, start, end, mask.
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD, UNK, CLS, SEP, MASK = range(len(SPECIAL_TOKENS))
N_SPECIAL = len(SPECIAL_TOKENS)

#: Names of the tokenizers trained in ``fit``; a ready
#: ``tokenizers.Tokenizer`` is accepted too.
TOKENIZERS = ("char", "word", "bpe", "wordpiece")

#: Most ids an integer vocabulary may span (0 to the largest id): 2**24, an
#: embedding table of 8 GiB at a width of 128, far above any tokenizer's.
MAX_IDS = 2**24

#: Sequences per length-sorted pool, in batches (see :class:`TokenBatches`).
_POOL_BATCHES = 32

#: A lone surrogate, U+D800 to U+DFFF: half of a UTF-16 pair (a JSON
#: "\ud800" escape), or a byte that ``errors="surrogateescape"`` kept.
_SURROGATE = re.compile("[\ud800-\udfff]")


# -- input ---------------------------------------------------------------------
def _is_int_sequence(item) -> bool:
    if isinstance(item, np.ndarray):
        return item.ndim == 1 and item.dtype.kind in "iu"
    if isinstance(item, torch.Tensor):
        return item.ndim == 1 and not (
            item.is_floating_point() or item.is_complex() or item.dtype == torch.bool
        )
    if isinstance(item, (list, tuple)):
        return all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in item
        )
    return False


def _is_number_sequence(item) -> bool:
    """A list, tuple or 1-D array of numbers that are not all ints (floats)."""
    if isinstance(item, np.ndarray):
        return item.ndim == 1 and item.dtype.kind == "f"
    if isinstance(item, torch.Tensor):
        return item.ndim == 1 and item.is_floating_point()
    if isinstance(item, (list, tuple)) and item:
        return all(
            isinstance(v, (int, float, np.integer, np.floating))
            and not isinstance(v, bool)
            for v in item
        )
    return False


def _is_missing(value) -> bool:
    """None, a float NaN or pandas' NA: a missing sample."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    pandas = sys.modules.get("pandas")  # only if the caller uses it
    return pandas is not None and value is getattr(pandas, "NA", None)


def check_sequences(
    X, owner: str, name: str = "X", *, strings_only: bool = False
) -> tuple[str, list]:
    """Validate sequence input: ``("str", strings)`` or ``("ids", arrays)``.

    Parameters
    ----------
    X : iterable of str, or integer sequences
        An iterable of strings (list, tuple, 1-D array of str or object,
        pandas Series, one-column DataFrame), a list of integer sequences
        (lists, 1-D arrays or 1-D tensors), or a 2-D integer array whose
        negative entries are padding.
    owner : str
        The estimator's name, for the messages.
    name : str, default="X"
        The parameter that holds the sequences (``"prompts"``,
        ``"pretrain_X"``), for the messages.
    strings_only : bool, default=False
        Whether the caller reads strings alone (a model with its own
        tokenizer): the messages then offer no token ids.

    Returns
    -------
    kind : {"str", "ids"}
    sequences : list of str, or list of 1-D int64 arrays

    Raises
    ------
    TypeError
        For None, a single string, bytes, a float or boolean array, sparse
        input, a torch Dataset, a set (no order to match the output's rows
        to) or a dict, or items that are neither strings nor integer
        sequences (the first such item's position is named).
    ValueError
        For an empty input (no sequences, including a 2-D array of ids with
        no rows), a missing value (None, NaN, ``pd.NA``) among strings, a
        DataFrame of several columns, or a 2-D array of strings with several
        columns.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_replearn.tokens import check_sequences
    >>> check_sequences(["ACGT", ""], "GPTTransformer")
    ('str', ['ACGT', ''])
    >>> kind, ids = check_sequences(np.array([[3, 1, -1], [2, -1, -1]]), "BERT")
    >>> kind, [s.tolist() for s in ids]
    ('ids', [[3, 1], [2]])
    """
    what = (
        f"{owner} takes an iterable of strings (a list, an array of str, a "
        "pandas Series)"
    )
    if not strings_only:
        what += (
            ", or integer token ids (a list of int sequences, or a 2-D int "
            "array padded with -1)"
        )
    if X is None:
        raise TypeError(f"{what}; got None.")
    if isinstance(X, (str, bytes)):
        raise TypeError(
            f"{what}; got a single {type(X).__name__} object. Wrap one "
            "document in a list: [text]."
        )
    if isinstance(X, torch.utils.data.Dataset):
        raise TypeError(f"{what}; got a torch Dataset, which it cannot read.")
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{what}; got a sparse matrix.")
    if hasattr(X, "iloc") and hasattr(X, "columns"):  # a DataFrame
        if X.shape[1] != 1:
            raise ValueError(
                f"{owner} takes one text column; got a DataFrame with "
                f"{X.shape[1]} columns. Select the column (X['text'], or a "
                "ColumnTransformer with a scalar column name)."
            )
        X = X.iloc[:, 0]
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    if isinstance(X, np.ndarray):
        if X.dtype.kind in "iu":
            if X.ndim != 2:
                raise ValueError(
                    f"{what}; got a {X.ndim}-D integer array. A padded array "
                    "of token ids is 2-D (n_samples, length): reshape a single "
                    "sequence with X[None]."
                )
            if not len(X):
                raise ValueError(f"{owner} got an empty input (0 sequences).")
            return "ids", [row[row >= 0].astype(np.int64) for row in X]
        if X.dtype.kind in "fcb":
            kind = {"f": "float", "c": "complex", "b": "boolean"}[X.dtype.kind]
            raise TypeError(
                f"{what}; got a {kind} array of shape {X.shape}. For numeric "
                "features use a representation of arrays (MAETransformer, "
                "AutoencoderTransformer, ...)."
            )
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 1:
            raise ValueError(
                f"{what}; got an array of shape {X.shape}. Pass one string per "
                "sample (a 1-D array)."
            )
    if not isinstance(X, Iterable):
        raise TypeError(f"{what}; got {type(X).__name__}.")
    if isinstance(X, (set, frozenset)):
        # transform's rows come in the order of X: a set has none to match
        raise TypeError(
            f"{what}; got {with_article(type(X).__name__)}, whose order is "
            "arbitrary, so that the rows of the output could not be matched to "
            f"the samples. Pass a list, e.g. sorted({name})."
        )
    if isinstance(X, Mapping):
        raise TypeError(
            f"{what}; got {with_article(type(X).__name__)}, which iterates over "
            f"its keys. Pass list({name}.values()) for its values, or "
            f"list({name}) for its keys."
        )
    items = list(X)
    if not items:
        raise ValueError(f"{owner} got an empty input (0 sequences).")
    if all(isinstance(s, str) for s in items):
        return "str", [str(s) for s in items]
    if all(_is_int_sequence(s) for s in items):
        ids = [
            np.asarray(
                s.detach().cpu() if isinstance(s, torch.Tensor) else s, dtype=np.int64
            ).reshape(-1)
            for s in items
        ]
        for i, s in enumerate(ids):
            if s.size and s.min() < 0:
                raise ValueError(
                    f"Sequence {i} of {name} holds the negative token id "
                    f"{s.min()}; "
                    "token ids are non-negative (negative values pad only a 2-D "
                    "integer array)."
                )
        return "ids", ids
    strings = isinstance(items[0], str)
    for i, s in enumerate(items):  # name the first item that does not fit
        if isinstance(s, str) if strings else _is_int_sequence(s):
            continue
        if _is_missing(s):  # a value, not a type, is wrong: scikit-learn's
            # CountVectorizer and check_array raise ValueError for NaN too
            raise ValueError(
                f"{name}[{i}] is a missing value ({s!r}); {owner} needs a string for "
                "every sample. Drop the sample or fill it, e.g. with ''."
            )
        if isinstance(s, bytes):
            raise TypeError(
                f"{name}[{i}] is bytes; {owner} takes str. Decode first, e.g. "
                f"[b.decode('utf-8') for b in {name}]."
            )
        if not strings and _is_number_sequence(s):
            raise TypeError(
                f"{name}[{i}] is a sequence of non-integer numbers ({s!r:.40}); "
                "token ids are ints (e.g. np.asarray(ids, dtype=int) if they "
                f"are whole numbers stored as floats). {what}, all of one kind."
            )
        raise TypeError(
            f"{name}[{i}] is {with_article(type(s).__name__)} ({s!r:.40}); {what}, "
            "all of one kind."
        )
    raise TypeError(f"{what}.")  # pragma: no cover - the loop raises


def _check_utf8(strings: Sequence[str], name: str = "X") -> None:
    """Refuse lone surrogates, which Hugging Face ``tokenizers`` cannot read.

    ``tokenizers`` reads strings as UTF-8, which has no encoding of the
    code points U+D800 to U+DFFF: it raised a ``UnicodeEncodeError`` or a
    ``TypeError`` about ``TextEncodeInput`` that named no sample. Called
    before every call of such a tokenizer; the "char" and "word"
    vocabularies take these strings as they are.

    Parameters
    ----------
    strings : sequence of str
        The samples.
    name : str, default="X"
        The parameter that holds them, for the message.

    Raises
    ------
    ValueError
        For the first string that holds a lone surrogate, naming its index,
        the surrogate and its position, and how to replace it.

    Examples
    --------
    >>> from sk_replearn.tokens import _check_utf8
    >>> _check_utf8(["café", "🙂"])
    >>> _check_utf8(["café", b"caf\\xe9".decode("utf-8", "surrogateescape")])
    Traceback (most recent call last):
    ...
    ValueError: X[1] holds a lone surrogate, '\\udce9' at position 3, ...
    """
    for i, s in enumerate(strings):
        if s.isascii():  # O(1) in CPython: most text needs no search
            continue
        found = _SURROGATE.search(s)
        if found is None:
            continue
        raise ValueError(
            f"{name}[{i}] holds a lone surrogate, {found.group()!r} at position "
            f"{found.start()}, which is half of a UTF-16 pair or a byte that "
            "errors='surrogateescape' could not decode, not a character. The "
            "Hugging Face tokenizers (tokenizer='bpe', 'wordpiece' or a "
            "tokenizers.Tokenizer) read UTF-8 text, which cannot hold it. "
            "Decode the bytes with their real encoding (e.g. b.decode('latin-1')), "
            "or replace such code points with '?': "
            f"[s.encode('utf-8', 'replace').decode() for s in {name}]; "
            "tokenizer='char' and 'word' read them as they are."
        )


# -- vocabularies --------------------------------------------------------------
class Codec:
    """A fitted vocabulary: strings to ids and back.

    Built by :func:`fit_codec` (or from its ``state``, plain data that
    :mod:`sk_replearn.persistence` saves). Ids below ``N_SPECIAL`` are
    the special tokens; every token of the vocabulary has an id above.

    Parameters
    ----------
    state : dict
        ``{"kind": "char" | "word" | "ids" | "hf", ...}``: the tokens of a
        character or word vocabulary, the regular expression of words, the
        number of user ids, or a Hugging Face tokenizer as JSON.

    Attributes
    ----------
    vocab_size : int
        Ids in use, special tokens included.
    vocabulary : dict of str to int
        Every token and its id.

    Examples
    --------
    >>> from sk_replearn.tokens import fit_codec
    >>> codec = fit_codec("char", ["ACGT", "GATTACA"])
    >>> codec.vocab_size, codec.encode(["CAT", "CAN"])  # A most frequent: id 5
    (9, [[7, 5, 6], [7, 5, 1]])
    >>> codec.decode([7, 5, 6, 1])  # [UNK] is left out
    'CAT'
    """

    def __init__(self, state: dict) -> None:
        self.state = state
        kind = state["kind"]
        self._hf = None
        if kind == "hf":
            from tokenizers import Tokenizer

            self._hf = Tokenizer.from_str(state["json"])
            # Our own copy: its padding ids would read as tokens, and its
            # truncation would cut sequences silently (``pad_sequences``
            # pads, and cuts to max_length with a warning).
            self._hf.no_padding()
            self._hf.no_truncation()
            self._hf_unk = state.get("unk")
            n = self._hf.get_vocab_size(with_added_tokens=True)
            tokens = [None] * n
            for tok, i in self._hf.get_vocab(with_added_tokens=True).items():
                tokens[i] = tok
            tokens = [t if t is not None else f"[{i}]" for i, t in enumerate(tokens)]
        elif kind == "ids":
            tokens = [str(i) for i in range(state["n_ids"])]
        else:
            tokens = list(state["tokens"])
        self.tokens = tokens
        self.vocabulary = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
        for i, t in enumerate(tokens):
            self.vocabulary.setdefault(t, i + N_SPECIAL)
        self.vocab_size = N_SPECIAL + len(tokens)
        self._index = {t: i + N_SPECIAL for i, t in enumerate(tokens)}
        self._pattern = re.compile(state["pattern"]) if kind == "word" else None

    @property
    def kind(self) -> str:
        """``"char"``, ``"word"``, ``"hf"`` (subwords) or ``"ids"``."""
        return self.state["kind"]

    def encode(self, sequences: Sequence, *, name: str = "X") -> list[list[int]]:
        """Ids of each sequence (no special tokens; unknown tokens ``UNK``).

        Parameters
        ----------
        sequences : sequence of str, or of 1-D int arrays
            As returned by :func:`check_sequences`.
        name : str, default="X"
            The parameter that holds them, for the messages.

        Returns
        -------
        list of list of int

        Raises
        ------
        ValueError
            For an integer id outside the fitted vocabulary, or (with a
            Hugging Face tokenizer, before it reads any string) a string
            that holds a lone surrogate (U+D800 to U+DFFF), which UTF-8
            cannot encode; the message names the sample and how to
            replace it. Also when a Hugging Face tokenizer fails (an
            untrained ``WordLevel`` model has no ``[UNK]``).
        """
        kind = self.kind
        if kind == "ids":
            n = self.state["n_ids"]
            out = []
            for i, s in enumerate(sequences):
                if s.size and s.max() >= n:
                    raise ValueError(
                        f"Sequence {i} of {name} holds the token id {int(s.max())}, "
                        f"outside the vocabulary of the ids seen in fit (0 to "
                        f"{n - 1}); map unseen tokens to an id seen in fit."
                    )
                out.append((s + N_SPECIAL).tolist())
            return out
        if kind == "hf":
            unk = self._hf_unk
            sequences = list(sequences)
            _check_utf8(sequences, name)
            try:
                encoded = self._hf.encode_batch(sequences, add_special_tokens=False)
            except Exception as err:  # the Rust side raises a bare Exception
                raise ValueError(
                    f"The tokenizer could not encode {name}: {err}. A "
                    "tokenizers.Tokenizer passed as tokenizer= is used as it "
                    "is: train it first (e.g. tokenizer.train_from_iterator), "
                    "or pass tokenizer='bpe' or 'wordpiece' to train one on X "
                    "in fit."
                ) from None
            return [
                [UNK if i == unk else i + N_SPECIAL for i in e.ids] for e in encoded
            ]
        index = self._index
        if kind == "char":
            return [[index.get(c, UNK) for c in s] for s in sequences]
        find = self._pattern.findall
        return [[index.get(w, UNK) for w in find(s)] for s in sequences]

    def continuations(self) -> list[int]:
        """Ids of the pieces that continue a word (WordPiece's ``"##ing"``).

        A text cannot begin with one: the decoder joins it to the word
        before, and with none it would print its prefix.
        """
        prefix = getattr(
            getattr(self._hf, "model", None), "continuing_subword_prefix", None
        )
        if not prefix:
            return []
        return [
            i + N_SPECIAL for i, t in enumerate(self.tokens) if t.startswith(prefix)
        ]

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``, special tokens left out."""
        kept = [int(i) - N_SPECIAL for i in ids if int(i) >= N_SPECIAL]
        if self.kind == "hf":
            return self._hf.decode(kept, skip_special_tokens=False)
        if self.kind == "ids":
            return " ".join(str(i) for i in kept)
        sep = "" if self.kind == "char" else " "
        return sep.join(self.tokens[i] for i in kept)

    def __getstate__(self) -> dict:
        return {"state": self.state}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["state"])


def _frequent(tokens: Counter, vocab_size: int | None) -> list[str]:
    """The most frequent tokens (ties by first appearance), at most vocab_size."""
    ranked = sorted(tokens, key=lambda t: -tokens[t])  # stable: ties keep order
    return ranked if vocab_size is None else ranked[:vocab_size]


def _train_hf(kind: str, strings: list[str], vocab_size: int) -> dict:
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"tokenizer={kind!r} trains a subword vocabulary with Hugging Face "
            "'tokenizers', which is not installed: pip install tokenizers (or "
            "pip install sk_replearn[text]); or use tokenizer='char' or 'word'."
        ) from exc
    if kind == "bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
    else:
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, special_tokens=["[UNK]"], show_progress=False
        )
    tok.train_from_iterator(strings, trainer=trainer)
    return {"kind": "hf", "json": tok.to_str(), "unk": tok.token_to_id("[UNK]")}


def fit_codec(
    tokenizer,
    sequences: list,
    *,
    vocab_size: int | None = None,
    token_pattern: str = r"(?u)\w+|[^\w\s]",
) -> Codec:
    """Learn a vocabulary from the training sequences.

    Parameters
    ----------
    tokenizer : {"char", "word", "bpe", "wordpiece"} or tokenizers.Tokenizer
        How strings are cut into tokens; ignored for integer sequences,
        whose vocabulary is the ids ``0..max``.
    sequences : list of str, or list of 1-D int arrays
        As returned by :func:`check_sequences`.
    vocab_size : int or None, default=None
        Most tokens kept ("char", "word": the most frequent; "bpe",
        "wordpiece": the size of the learned vocabulary, 1000 when None).
    token_pattern : str
        Regular expression of a word, for ``"word"``. As in scikit-learn's
        ``CountVectorizer``, with one capturing group the group is the
        token, and more than one is an error.

    Returns
    -------
    Codec

    Raises
    ------
    ValueError
        For integer ids past ``MAX_IDS`` (2**24), input with nothing to learn,
        an invalid ``token_pattern`` or one of several capturing groups, or
        (for "bpe" and "wordpiece", before training) a string that holds a
        lone surrogate (U+D800 to U+DFFF), which UTF-8 cannot encode.

    Examples
    --------
    >>> from sk_replearn.tokens import fit_codec
    >>> fit_codec("word", ["the cat sat.", "the dog"]).encode(["the bird"])
    [[5, 1]]
    """
    if sequences and not isinstance(sequences[0], str):
        n_ids = int(max((int(s.max()) for s in sequences if s.size), default=-1)) + 1
        if n_ids == 0:
            raise ValueError("Every sequence of X is empty: there is nothing to learn.")
        if n_ids > MAX_IDS:
            raise ValueError(
                f"X holds the token id {n_ids - 1}: integer sequences get every id "
                f"from 0 to the largest as their vocabulary, here {n_ids:,} ids "
                f"(at most {MAX_IDS:,}), each with a row of the embedding table. "
                "Map the ids to 0..k-1 first, e.g. with np.unique(..., "
                "return_inverse=True)."
            )
        return Codec({"kind": "ids", "n_ids": n_ids})
    if not any(sequences):
        raise ValueError("Every string of X is empty: there is nothing to learn.")
    if isinstance(tokenizer, str) and tokenizer == "char":
        counts = Counter(c for s in sequences for c in s)
        return Codec({"kind": "char", "tokens": _frequent(counts, vocab_size)})
    if isinstance(tokenizer, str) and tokenizer == "word":
        try:
            pattern = re.compile(token_pattern)
        except re.error as err:
            raise ValueError(
                f"token_pattern={token_pattern!r} is not a valid regular "
                f"expression ({err}); give a pattern that matches one word."
            ) from None
        if pattern.groups > 1:  # re.findall would give tuples of the groups
            raise ValueError(  # scikit-learn's CountVectorizer's words, then ours
                "More than 1 capturing group in token pattern. Only a single "
                f"group should be captured. token_pattern={token_pattern!r} has "
                f"{pattern.groups}: make the others non-capturing, (?:...)."
            )
        counts = Counter(w for s in sequences for w in pattern.findall(s))
        if not counts:
            raise ValueError(
                f"token_pattern={token_pattern!r} finds no word in X; change "
                "the pattern or use tokenizer='char'."
            )
        return Codec(
            {
                "kind": "word",
                "tokens": _frequent(counts, vocab_size),
                "pattern": token_pattern,
            }
        )
    if isinstance(tokenizer, str):
        _check_utf8(sequences)  # before the trainer meets a lone surrogate
        return Codec(_train_hf(tokenizer, sequences, vocab_size or 1000))
    # A ready Hugging Face tokenizer, used as it is (but for padding and
    # truncation, which Codec turns off in its copy).
    unk = None
    model = getattr(tokenizer, "model", None)
    unk_token = getattr(model, "unk_token", None)
    if unk_token:
        unk = tokenizer.token_to_id(unk_token)
    return Codec({"kind": "hf", "json": tokenizer.to_str(), "unk": unk})


# -- unknown tokens ---------------------------------------------------------------
def _count_unknown(encoded: list[list[int]]) -> tuple[int, int]:
    """``(tokens, of which [UNK])`` of encoded sequences."""
    return sum(map(len, encoded)), sum(s.count(UNK) for s in encoded)


def check_learnable(encoded: list[list[int]], owner: str) -> float:
    """Refuse training sequences with no known token; return the [UNK] share.

    The character and word vocabularies are learned from the training
    strings, but a subword tokenizer can learn nothing (WordPiece on
    whitespace), and a ready ``tokenizers.Tokenizer`` may never have been
    trained (an empty vocabulary reads every string as no token) or may
    know none of X's tokens. A model would then train on nothing but
    ``[CLS] [SEP]`` or ``[UNK]``, and ``transform`` would give every sample
    the same row.

    Parameters
    ----------
    encoded : list of list of int
        The training sequences, as :meth:`Codec.encode` gives them.
    owner : str
        The estimator's name, for the messages.

    Returns
    -------
    fraction : float
        The share of the training tokens that are ``[UNK]``: the baseline
        :func:`warn_unknown` compares later input against.

    Raises
    ------
    ValueError
        If the sequences hold no token, or only ``[UNK]``.

    Examples
    --------
    >>> from sk_replearn.tokens import UNK, check_learnable
    >>> check_learnable([[7, UNK], [8, 9]], "BERTTransformer")
    0.25
    >>> check_learnable([[], []], "BERTTransformer")
    Traceback (most recent call last):
    ...
    ValueError: BERTTransformer: the tokenizer reads no token in any string of X...
    """
    n_tokens, n_unknown = _count_unknown(encoded)
    if n_tokens == 0:
        raise ValueError(
            f"{owner}: the tokenizer reads no token in any string of X, so "
            "there is nothing to learn. A tokenizers.Tokenizer that was never "
            "trained has an empty vocabulary, and strings of whitespace hold "
            "no word: pass a trained tokenizer, or tokenizer='char', 'word' "
            "or 'bpe', which learn their vocabulary from X in fit."
        )
    if n_unknown == n_tokens:
        raise ValueError(
            f"{owner}: every token the tokenizer reads in X ({n_tokens:,}) is "
            "unknown to its vocabulary ([UNK]), so there is nothing to learn. "
            "Pass a tokenizer trained on text like X, or tokenizer='char', "
            "'word', 'bpe' or 'wordpiece', which learn their vocabulary from "
            "X in fit."
        )
    return n_unknown / n_tokens


def warn_unknown(
    encoded: list[list[int]], fitted: float, owner: str, name: str = "X"
) -> None:
    """Warn when most tokens of new input are unknown to the fitted vocabulary.

    Text the vocabulary cannot read (another case: ``"acgt"`` for a
    vocabulary of ``"ACGT"``; another alphabet or domain) becomes
    ``[UNK]``, and different sequences then get nearly the same features.
    One UserWarning when the share of ``[UNK]`` is more than halfway from
    the training data's share ``fitted`` to all: more than half with a
    vocabulary that knew every training token, more than three quarters
    where a small ``vocab_size`` left half of them unknown.

    Parameters
    ----------
    encoded : list of list of int
        The sequences, as :meth:`Codec.encode` gives them.
    fitted : float
        The share of ``[UNK]`` among the training tokens
        (:func:`check_learnable`).
    owner : str
        The estimator's name, for the message.
    name : str, default="X"
        The parameter that holds the sequences, for the message.

    Examples
    --------
    >>> import warnings
    >>> from sk_replearn.tokens import UNK, warn_unknown
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_unknown([[UNK, UNK, 7]], 0.0, "GPTTransformer")
    >>> str(caught[0].message)[:60]
    'GPTTransformer: 67% of the tokens of X (2 of 3) are unknown '
    """
    n_tokens, n_unknown = _count_unknown(encoded)
    if not n_tokens or n_unknown / n_tokens <= (1 + fitted) / 2:
        return
    warn_user(
        f"{owner}: {n_unknown / n_tokens:.0%} of the tokens of {name} "
        f"({n_unknown:,} of {n_tokens:,}) are unknown to the vocabulary "
        f"learned in fit ({fitted:.0%} of the training tokens were) and read "
        "as [UNK], so different sequences get much the same features. Text "
        "of another case or alphabet than the training data's (e.g. 'acgt' "
        "for a vocabulary of 'ACGT') reads as unknown: normalise it as the "
        "training data were (str.upper, str.lower), or fit on text like it.",
        UserWarning,
    )


# -- padded storage and batches -------------------------------------------------
def pad_sequences(
    encoded: list[list[int]], max_length: int, owner: str, fix: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``[CLS] ids [SEP]`` of each sequence, padded into one tensor.

    Sequences of more than ``max_length`` tokens keep their first
    ``max_length`` (one warning says how many were cut, and ``fix``, how to
    keep them whole: by default, raise ``max_length``).

    Returns
    -------
    ids : torch.Tensor of shape (n, T), dtype int32
        ``T`` is the longest sequence plus 2 (2 when ``encoded`` is empty);
        padding is ``PAD``.
    lengths : torch.Tensor of shape (n,), dtype int64
        Tokens per sequence, ``[CLS]`` and ``[SEP]`` included.

    Examples
    --------
    >>> from sk_replearn.tokens import pad_sequences
    >>> ids, lengths = pad_sequences([[7, 8, 9], []], 3, "GPTTransformer")
    >>> ids.tolist(), lengths.tolist()
    ([[2, 7, 8, 9, 3], [2, 3, 0, 0, 0]], [5, 2])
    """
    n_cut = sum(len(s) > max_length for s in encoded)
    if n_cut:
        longest = max(len(s) for s in encoded)
        warn_user(
            f"{owner}: {n_cut} of {len(encoded)} sequences are longer than "
            f"max_length={max_length} tokens (the longest has {longest}); "
            "they are cut to their first max_length tokens. "
            f"{fix or 'Raise max_length to keep them whole.'}",
            UserWarning,
        )
    lengths = np.fromiter(
        (min(len(s), max_length) + 2 for s in encoded),
        dtype=np.int64,
        count=len(encoded),
    )
    width = int(lengths.max()) if len(encoded) else 2  # none: (0, 2)
    ids = np.full((len(encoded), width), PAD, dtype=np.int32)
    ids[:, 0] = CLS
    for i, s in enumerate(encoded):
        n = lengths[i] - 2
        ids[i, 1 : n + 1] = s[:n]
        ids[i, n + 1] = SEP
    return torch.from_numpy(ids), torch.from_numpy(lengths)


class TokenDataset(torch.utils.data.Dataset):
    """Padded token ids of ``n`` sequences, with optional targets.

    Parameters
    ----------
    ids : torch.Tensor of shape (n, T), integer
        From :func:`pad_sequences`.
    lengths : torch.Tensor of shape (n,)
        Tokens per sequence (the rest of each row is padding).
    y : torch.Tensor or None, default=None
        Targets ``(n, ...)``, or None for unlabelled data.

    Examples
    --------
    >>> from sk_replearn.tokens import TokenDataset, pad_sequences
    >>> data = TokenDataset(*pad_sequences([[5], [6, 7, 8]], 10, "GPT"))
    >>> len(data), data[0][0].tolist()
    (2, [2, 5, 3])
    """

    def __init__(
        self, ids: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor | None = None
    ) -> None:
        self.ids, self.lengths, self.y = ids, lengths, y

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i):
        ids = self.ids[i, : int(self.lengths[i])].long()
        return ids, (torch.zeros(()) if self.y is None else self.y[i])

    def subset(self, idx) -> TokenDataset:
        """The sequences (and targets) at the indices ``idx``."""
        y = None if self.y is None else self.y[idx]
        return TokenDataset(self.ids[idx], self.lengths[idx], y)

    def take(self, idx) -> torch.Tensor:
        """Ids of the sequences ``idx``, cut to the longest: ``(B, T_b)`` int64."""
        width = int(self.lengths[idx].max())
        return self.ids[idx, :width].long()


class TokenBatches:
    """``(ids, y)`` batches of a :class:`TokenDataset`, each cut to its longest.

    In training the order is reshuffled each epoch from torch's global
    generator (which the estimator seeds); the shuffled order is cut into
    pools of 32 batches, each pool sorted by length, and the batches are
    served in a random order, so a batch holds sequences of similar length
    (little padding) while every epoch still mixes them. As in
    :class:`~sk_replearn.data.Batches`, a last training batch of one is
    dropped and a last evaluation batch of one joins the one before it.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.tokens import TokenBatches, TokenDataset, pad_sequences
    >>> data = TokenDataset(*pad_sequences([[5], [6, 7, 8], [9]], 10, "GPT"))
    >>> [xb.shape for xb, _ in TokenBatches(data, 2, training=False)]
    [torch.Size([3, 5])]
    """

    def __init__(self, dataset: TokenDataset, batch_size: int, training: bool) -> None:
        self.dataset = dataset
        n = len(dataset)
        self.batch_size = n if batch_size == -1 else max(int(batch_size), 1)
        self.training = training
        self._count = Batches.count(n, self.batch_size)

    def __len__(self) -> int:
        return self._count

    def _batch(self, idx):
        y = self.dataset.y
        return self.dataset.take(idx), None if y is None else y[idx]

    def training_batches(self, generator=None) -> list[torch.Tensor]:
        """One epoch's batches of indices, length-grouped, in random order."""
        n, size = len(self.dataset), self.batch_size
        order = shuffled_order(n, generator)
        pool = size * _POOL_BATCHES
        lengths = self.dataset.lengths
        for start in range(0, n, pool):
            chunk = order[start : start + pool]
            order[start : start + pool] = chunk[
                torch.sort(lengths[chunk], stable=True).indices
            ]
        n_batches = self._count
        batches = [order[k * size : (k + 1) * size] for k in range(n_batches)]
        return [batches[k] for k in torch.randperm(n_batches, generator=generator)]

    def __iter__(self):
        if not self.training:
            for sl in Batches.eval_slices(len(self.dataset), self.batch_size):
                yield self._batch(torch.arange(sl.start, sl.stop))
            return
        for idx in self.training_batches():
            yield self._batch(idx)
