"""Training data larger than memory: memmaps and torch datasets.

``fit`` of the neural estimators takes, besides in-memory arrays, a
:class:`numpy.memmap` (or any array backed by one), whose rows are read one
batch at a time (:class:`~sk_replearn.training.ArrayRows`), and a map-style
:class:`torch.utils.data.Dataset` yielding samples or ``(sample, target)``
pairs, read through a :class:`~torch.utils.data.DataLoader`
(:class:`~sk_replearn.training.SampleDataset`). Neither is copied whole:
the input standardisation is computed from a sample of at most
:data:`SCALE_SAMPLE_VALUES` values, and a dataset's shape is read off its
first item.
"""

from __future__ import annotations

import math
import mmap

import numpy as np
import torch

from .training import ArrayRows, SampleDataset

__all__ = [
    "SCALE_SAMPLE_VALUES",
    "dataset_head",
    "is_memory_mapped",
    "sample_dataset",
    "scale_sample",
]

#: Most values read to set the input standardisation of streamed data
#: (32 MiB in float64); data with fewer is read whole, as an array is.
SCALE_SAMPLE_VALUES = 2**22


def is_memory_mapped(X) -> bool:
    """Whether the numpy array ``X`` is (a view of) a memory-mapped file.

    ``validate_data`` turns a :class:`numpy.memmap` into a plain ndarray
    view of the same mapping; this looks through such views.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from sk_replearn.streaming import is_memory_mapped
    >>> path = os.path.join(tempfile.mkdtemp(), "x.dat")
    >>> X = np.memmap(path, dtype=np.float32, mode="w+", shape=(4, 2))
    >>> is_memory_mapped(np.asarray(X)[1:]), is_memory_mapped(np.zeros(3))
    (True, False)
    """
    while isinstance(X, np.ndarray):
        if isinstance(X, np.memmap):
            return True
        X = X.base
    return isinstance(X, mmap.mmap)


def _sample_of(item) -> np.ndarray:
    """The sample of a dataset item (a sample, or a (sample, target) pair)."""
    if isinstance(item, (tuple, list)):
        item = item[0]
    if isinstance(item, torch.Tensor):
        item = item.detach().cpu().numpy()
    return np.asarray(item)


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
    >>> from sk_replearn.streaming import sample_dataset
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
            f"{name}.fit takes a map-style torch Dataset with __len__ and "
            f"__getitem__; got {type(dataset).__name__}. Wrap the stream in a "
            "map-style Dataset, or pass a numpy memmap."
        )
    if len(dataset) == 0:
        raise ValueError(f"{name}.fit got an empty Dataset (0 samples).")
    first = _sample_of(dataset[0])
    if first.ndim == 0:
        raise ValueError(
            f"The first item of the Dataset is a scalar; {name} needs samples of "
            "shape (n_features,) or (C, L) / (C, H, W)."
        )
    estimator._validate_X(first[None], reset=reset)  # (1, *shape)
    return SampleDataset(dataset, estimator.input_shape_)


def dataset_head(dataset, n: int) -> np.ndarray:
    """The first ``n`` samples of a dataset, as an array ``(m, *shape)``.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.streaming import dataset_head
    >>> dataset_head(torch.utils.data.TensorDataset(torch.ones(6, 3)), 4).shape
    (4, 3)
    """
    return np.stack([_sample_of(dataset[i]) for i in range(min(n, len(dataset)))])


def scale_sample(X_t, max_values: int = SCALE_SAMPLE_VALUES) -> torch.Tensor:
    """The samples to set the input standardisation from.

    A tensor is used whole. Streamed data (:class:`ArrayRows`,
    :class:`SampleDataset`) is read whole when it holds at most
    ``max_values`` values (so that fitting a memmap gives the model of the
    same array in memory), else a random subset of rows drawn from torch's
    generator (which ``fit`` seeds) is read, in file order.

    Parameters
    ----------
    X_t : torch.Tensor, ArrayRows or SampleDataset
    max_values : int, default=SCALE_SAMPLE_VALUES

    Returns
    -------
    torch.Tensor of shape (m, *input_shape)

    Examples
    --------
    >>> import numpy as np
    >>> from sk_replearn.streaming import scale_sample
    >>> from sk_replearn.training import ArrayRows
    >>> rows = ArrayRows(np.zeros((1000, 10), np.float32), (10,))
    >>> scale_sample(rows, max_values=2000).shape
    torch.Size([200, 10])
    """
    if isinstance(X_t, torch.Tensor):
        return X_t
    n, shape = len(X_t), X_t.sample_shape  # ArrayRows or SampleDataset
    k = min(n, max(2, max_values // max(math.prod(shape), 1)))
    rows = (
        torch.arange(n) if k == n else torch.sort(torch.randperm(n)[:k]).values
    )  # (k,)
    if isinstance(X_t, ArrayRows):
        return X_t[rows]
    return torch.stack([X_t[int(i)][0] for i in rows])
