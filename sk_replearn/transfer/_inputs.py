"""What a fine-tuner's fit reads: X and y checked, sample weights, columns.

:class:`FineTunerInputsMixin` validates X and y as scikit-learn does (N-D
samples flattened; sequences of tokens for a representation that reads
them, checked by its rules; strings, a torch Dataset or non-numeric
regression targets refused by name), checks ``pretrain_X`` against X's
kind, scales ``sample_weight`` to a mean of 1 and checks that a DataFrame's
columns are those the representation was fitted on.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils import get_tags
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_consistent_length,
    column_or_1d,
    validate_data,
)

from .._validation import (
    _check_float32_range,
    _holds_integers,
    flatten_samples,
    float_dtypes,
    positive_strides,
)
from .._warn import warn_user
from ..data import WeightedTargets, check_float32_precision
from ..tokens import check_sequences

__all__ = ["FineTunerInputsMixin"]


def _holds_strings(X) -> bool:
    """Whether X is a list, tuple, 1-D array or Series whose first item is a str."""
    if isinstance(X, np.ndarray):
        if X.ndim != 1 or X.dtype.kind not in "UO":
            return False
    elif not (isinstance(X, (list, tuple)) or hasattr(X, "iloc")):
        return False
    if hasattr(X, "columns") or not len(X):  # a DataFrame: scikit-learn's rules
        return False
    first = X.iloc[0] if hasattr(X, "iloc") else X[0]
    return isinstance(first, str)


def _check_numeric_targets(y, name: str) -> None:
    """Refuse, naming y, targets that are not numbers (class labels, say).

    numpy's own message ("could not convert string to float") names neither
    y nor the fix; the first value ``float`` refuses is quoted. ``y=None``
    and ``None`` entries (read as NaN, as numpy reads them) are left to
    scikit-learn's checks, whose messages name them.
    """
    if y is None:
        return
    values = np.asarray(y)
    if values.dtype.kind not in "USO":
        return
    for value in values.ravel().tolist():
        if value is None:
            continue
        try:
            float(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"y holds values that are not numbers ({value!r} among them); "
                f"{name} predicts numbers: pass numeric targets, or use "
                "FineTuner to predict class labels."
            ) from exc


def _names(names) -> str:
    """The first few column names, for a message."""
    names = [str(n) for n in names]
    return ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")


class FineTunerInputsMixin:
    """The input checks of :class:`~sk_replearn.transfer.base.BaseFineTuner`."""

    def _takes_sequences(self) -> bool:
        """Whether the representation reads strings (or token ids), not arrays."""
        rep = self.representation
        return rep is not None and get_tags(rep).input_tags.string

    def _token_source(self):
        rep = getattr(self, "representation_", None)
        source = getattr(rep, "_token_source", None)
        return None if source is None else source()

    def _validate_Xy(self, X, y, **kwargs):
        """2-D float X (N-D input flattened) and y, as sklearn checks them.

        For a representation of sequences, X is checked as sequences (and
        encoded later by the representation's vocabulary) and y alone by
        scikit-learn's rules.
        """
        if kwargs.get("y_numeric"):
            _check_numeric_targets(y, type(self).__name__)
        if self._takes_sequences():
            _, sequences = check_sequences(X, type(self).__name__)
            y_dtype = None
            if kwargs.get("y_numeric"):  # numbers as text read as on arrays
                text = np.asarray(y).dtype.kind in "US"
                y_dtype = np.float64 if text else "numeric"
            y = check_array(y, ensure_2d=False, dtype=y_dtype, input_name="y")
            if not kwargs.get("multi_output"):
                y = column_or_1d(y, warn=True)
            check_consistent_length(sequences, y)
            return sequences, y, None
        if _holds_strings(X):
            rep = self.representation
            rep = "the default" if rep is None else type(rep).__name__
            raise TypeError(
                f"X holds strings, but {type(self).__name__}'s representation "
                f"({rep}) reads arrays of numbers. To fine-tune on text, "
                "pass a representation of sequences: "
                "representation=BERTTransformer() or GPTTransformer()."
            )
        if isinstance(X, torch.utils.data.Dataset):
            raise TypeError(
                f"{type(self).__name__} takes X and y as arrays, not a torch "
                "Dataset: stack the samples into X and the labels into y. An "
                "unfitted representation can pre-train on a Dataset: pass it "
                "as pretrain_X."
            )
        X, nd_shape = flatten_samples(X)
        if _holds_integers(X):  # rounded by the cast to float32 below
            check_float32_precision(X, type(self).__name__)
        X, y = validate_data(
            self, X, y, dtype=float_dtypes(X), accept_sparse=False, **kwargs
        )
        X = positive_strides(X)
        _check_float32_range(X, type(self).__name__)
        return X, y, nd_shape

    def _check_pretrain_sequences(self, sequences: list, pretrain_X):
        """``pretrain_X`` checked as sequences of X's kind, before pre-training.

        Its errors name ``pretrain_X`` (the representation's own fit would
        name X), and integer ids to pre-train on for string X (or the
        reverse) are refused before the pre-training, not after it. A
        one-pass iterable comes back as the list it held.
        """
        name = type(self).__name__
        kind, checked = check_sequences(pretrain_X, name, "pretrain_X")
        x_kind = "str" if isinstance(sequences[0], str) else "ids"
        if kind != x_kind:
            what = {"str": "strings", "ids": "integer token ids"}
            raise TypeError(
                f"pretrain_X holds {what[kind]} but X holds {what[x_kind]}: the "
                "representation pre-trained on pretrain_X reads X with the "
                "vocabulary it learns there. Pass both as the same kind of "
                "sequences."
            )
        return checked if iter(pretrain_X) is pretrain_X else pretrain_X

    @staticmethod
    def _relative_weights(sample_weight, X) -> np.ndarray | None:
        """``sample_weight`` checked and scaled to a mean of 1; None for
        equal weights (None, or all one value), which are no weights: the
        same loss, computed the unweighted way.
        """
        if sample_weight is None:
            return None
        weight = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        peak = weight.max()  # positive: scikit-learn refuses all zeros
        if (weight == peak).all():
            return None
        weight = weight / peak  # no overflow in the mean
        return weight / weight.mean()

    @staticmethod
    def _weighted(y_t: torch.Tensor, weight: np.ndarray | None):
        """``y_t`` with its samples' weights (of :meth:`_relative_weights`)."""
        if weight is None:
            return y_t
        return WeightedTargets(y_t, torch.as_tensor(weight, dtype=torch.float32))

    def _check_representation_columns(self) -> None:
        """X's column names are those the representation was fitted on, in order.

        The encoder reads columns by position: a DataFrame with the same
        columns in another order would give wrong features without an error.
        """
        theirs = getattr(self.representation_, "feature_names_in_", None)
        ours = getattr(self, "feature_names_in_", None)
        if theirs is None and ours is None:
            return
        if theirs is None or ours is None:
            state = (
                "X has feature names, but the representation was fitted without"
                if theirs is None
                else "X has no feature names, but the representation was fitted with"
            )
            warn_user(
                f"{state} them: the encoder reads the columns by position, so "
                "make sure they are in the pre-training's order.",
                UserWarning,
            )
            return
        if list(ours) != list(theirs):
            raise ValueError(
                "X's columns are not those the representation was fitted on, in "
                f"the same order (X: {_names(ours)}; the representation: "
                f"{_names(theirs)}). The encoder reads columns by position: pass "
                "X[representation.feature_names_in_]."
            )
