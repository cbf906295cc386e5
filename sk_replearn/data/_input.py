"""Every accepted input validated once against the estimator
(:func:`input_rows`; a Dataset by its first item, :func:`sample_dataset`)
and turned into what the training net slices (:func:`training_samples`)."""

from __future__ import annotations

import reprlib
from collections.abc import Mapping

import numpy as np
import torch

from .._util import with_article
from ._datasets import (
    ArrayRows,
    SampleDataset,
    _what_it_holds,
    is_memory_mapped,
    sample_of,
)
from ._precision import _check_dataset_precision, check_float32_precision


def sample_dataset(estimator, dataset, *, reset: bool) -> SampleDataset:
    """Validate a dataset's first item; the dataset as batches of that shape.

    The first sample sets (``reset=True``) or is checked against the
    estimator's ``n_features_in_`` and ``input_shape_``, with the errors of
    ``_validate_X``; later items must have the same shape (a DataLoader
    cannot batch them otherwise) and non-finite values in them stop
    training with a clear error.

    Parameters
    ----------
    estimator : NeuralRepresentation
    dataset : torch.utils.data.Dataset
        Map-style, with ``__len__``; items are samples or
        ``(sample, target)`` pairs.
    reset : bool
        Whether this fit sets the input shape (False with ``warm_start``).

    Returns
    -------
    SampleDataset
        ``(sample, target)`` pairs of float32 samples ``input_shape_``.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn import AutoencoderTransformer
    >>> from sk_replearn.data import sample_dataset
    >>> ae = AutoencoderTransformer()
    >>> data = sample_dataset(ae, torch.utils.data.TensorDataset(torch.ones(6, 3)),
    ...                       reset=True)
    >>> len(data), ae.n_features_in_, ae.input_shape_
    (6, 3, (3,))
    """
    name = type(estimator).__name__
    if not hasattr(dataset, "__len__") or isinstance(
        dataset, torch.utils.data.IterableDataset
    ):
        raise TypeError(
            f"{name} takes a map-style torch Dataset with __len__ and "
            f"__getitem__; got {type(dataset).__name__}. Wrap the stream in a "
            "map-style Dataset, or pass a numpy memmap."
        )
    if len(dataset) == 0:
        raise ValueError(f"{name} got an empty Dataset (0 samples).")
    item = dataset[0]
    if isinstance(item, Mapping):  # a Hugging Face style {"pixel_values": ...}
        keys = ", ".join(repr(k) for k in list(item)[:4])
        raise TypeError(
            f"The items of the Dataset are dicts (keys {keys}); {name} takes "
            "items that are a sample or a (sample, target) tuple. Wrap the "
            "Dataset so that __getitem__ returns the sample, e.g. "
            f"item[{next(iter(item), 'key')!r}]."
        )
    first = sample_of(item)
    held = _what_it_holds(first)
    if first.ndim == 0 or held is not None:
        what = f"is {_described(first)}" if first.ndim == 0 else f"holds {held}"
        text = (held or "").startswith("strings")  # a str or bytes is one too
        raise ValueError(
            f"The first sample of the Dataset {what}; {name} "
            "needs samples of numbers of shape (n_features,) or (C, L) / "
            "(C, H, W)."
            + (
                " Strings of tokens go to GPTTransformer or BERTTransformer "
                "as a list of strings."
                if text
                else ""
            )
        )
    estimator._validate_X(first[None], reset=reset)  # (1, *shape)
    return SampleDataset(dataset, estimator.input_shape_)


def _described(sample: np.ndarray) -> str:
    """What a 0-d sample is, for an error message."""
    value = sample.item()
    if value is None:
        return "None"
    if isinstance(value, (bool, int, float, complex, np.number)):
        return f"one number ({value!r})"
    if isinstance(value, (str, bytes)):
        kind = "a string" if isinstance(value, str) else "bytes"
        return f"{kind} ({reprlib.repr(value)})"
    return f"{with_article(type(value).__name__)} ({reprlib.repr(value)})"


def dataset_head(dataset, n: int) -> np.ndarray:
    """The first ``n`` samples of a dataset, as an array ``(m, *shape)``.

    In the first sample's shape: a sample of as many values in another
    shape is reshaped to it, as training reads it.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.data import dataset_head
    >>> dataset_head(torch.utils.data.TensorDataset(torch.ones(6, 3)), 4).shape
    (4, 3)
    """
    samples = [sample_of(dataset[i]) for i in range(min(n, len(dataset)))]
    shape = samples[0].shape  # as training reads them: same size, first's shape
    return np.stack(
        [s.reshape(shape) if s.size == samples[0].size else s for s in samples]
    )


def input_rows(estimator, X, *, reset: bool):
    """Validate any accepted input once, against ``estimator``.

    Parameters
    ----------
    estimator : BaseRepresentation
        Sets (``reset=True``) or checks ``n_features_in_`` and
        ``input_shape_``, with the errors of its ``_validate_X``.
    X : array-like, memmap or torch Dataset
        The user's input.
    reset : bool
        Whether this call sets the input shape (``fit`` without
        ``warm_start``).

    Returns
    -------
    ndarray of shape (n_samples, n_features) or SampleDataset
        A memmap stays a view of its file, in its own dtype when that is
        ``uint8``, a signed integer, boolean or float16 one (read in
        float32 batches; ``uint16`` to ``uint64`` are cast whole); a
        Dataset is wrapped, unread.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_replearn import AutoencoderTransformer
    >>> from sk_replearn.data import input_rows
    >>> ae = AutoencoderTransformer(input_shape=(1, 2, 2))
    >>> input_rows(ae, np.zeros((3, 4)), reset=True).shape, ae.input_shape_
    ((3, 4), (1, 2, 2))
    """
    if isinstance(X, torch.utils.data.Dataset):  # streamed by a DataLoader
        return sample_dataset(estimator, X, reset=reset)
    return estimator._validate_X(X, reset=reset, keep_mapped=True)


def training_samples(
    rows, sample_shape, owner: str | None = None
) -> torch.Tensor | ArrayRows | SampleDataset:
    """What the training net slices batches from, given :func:`input_rows`.

    An in-memory array becomes a float32 tensor ``(n, *sample_shape)``
    (sharing its memory where it can); a memmap stays on disk as
    :class:`ArrayRows`, read batch by batch; a :class:`SampleDataset` is
    returned as it is. With ``owner`` (the estimator's name), float64
    rows that float32 would blur get a warning
    (:func:`check_float32_precision`; a float64 Dataset's on 64 evenly
    spaced samples, read for it).

    Examples
    --------
    >>> import numpy as np
    >>> from sk_replearn.data import training_samples
    >>> training_samples(np.zeros((3, 4)), (1, 2, 2)).shape
    torch.Size([3, 1, 2, 2])
    """
    if isinstance(rows, SampleDataset):
        if owner is not None:
            _check_dataset_precision(rows.dataset, owner)
        return rows
    if owner is not None:
        check_float32_precision(rows, owner)
    if is_memory_mapped(rows):
        return ArrayRows(rows, sample_shape)
    rows = np.asarray(rows, dtype=np.float32)
    if not rows.flags.writeable:  # torch warns on read-only memory
        rows = rows.copy()
    return torch.from_numpy(rows).reshape(rows.shape[0], *sample_shape)
