"""Vocabularies: the special tokens, and strings to token ids and back.

:class:`Codec` is a fitted vocabulary (characters, words, integer ids, or a
Hugging Face ``tokenizers`` model) that encodes sequences to ids and decodes
ids to text; :func:`fit_codec` learns one from the training sequences,
training ``tokenizers``' byte-pair encoding or WordPiece for subwords. The
ids of the special tokens (:data:`SPECIAL_TOKENS`, ``0..4``) come first in
every vocabulary, and ``_check_utf8`` refuses the strings that those
tokenizers cannot read (lone surrogates) before they are called.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

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

#: A lone surrogate, U+D800 to U+DFFF: half of a UTF-16 pair (a JSON
#: "\ud800" escape), or a byte that ``errors="surrogateescape"`` kept.
_SURROGATE = re.compile("[\ud800-\udfff]")


# -- input ---------------------------------------------------------------------
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
    >>> from sk_replearn.tokens._codec import _check_utf8
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
