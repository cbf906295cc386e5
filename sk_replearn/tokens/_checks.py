"""Checks of sequence input: what the estimators accept, and what they learn from.

:func:`check_sequences` validates ``X`` (strings, or integer token ids) with
errors that name the parameter and the first sample that does not fit;
:func:`check_learnable` refuses training sequences whose encoding holds no
known token, and :func:`warn_unknown` warns when new input reads mostly as
``[UNK]``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping

import numpy as np
import torch

from .._util import with_article
from .._warn import warn_user
from ._codec import UNK


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
