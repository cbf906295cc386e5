"""The datasets the training net reads: rows of a memmap read on demand
(:class:`ArrayRows`), a user's map-style Dataset as fixed-shape samples
(:class:`SampleDataset`), samples in one tensor (:class:`ArrayDataset`),
targets with weights (:class:`WeightedTargets`), and how one item of a
user's Dataset becomes a sample (:func:`sample_of`)."""

from __future__ import annotations

import math
import mmap
import reprlib
from numbers import Real

import numpy as np
import torch

from .._util import with_article


class ArrayRows:
    """Rows of a numpy array (a memmap) read on demand as float32 batches.

    Stands in for the tensor of an :class:`ArrayDataset` when the data does
    not fit in memory: indexing with a slice or an index tensor reads only
    those rows from the array and returns them as a float32 tensor
    ``(B, *sample_shape)``. :meth:`subset` is lazy too (it composes indices).

    Parameters
    ----------
    array : numpy.ndarray of shape (n, n_features)
        The rows, typically a :class:`numpy.memmap`; never copied whole.
    sample_shape : tuple of int
        Shape of one sample, of product ``n_features``.
    index : numpy.ndarray of int or None, default=None
        Rows of ``array`` that make up this view, in order; None for all.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sk_replearn.data import ArrayRows
    >>> rows = ArrayRows(np.arange(12.0).reshape(6, 2), (1, 2))
    >>> rows[torch.tensor([4, 1])].shape, len(rows.subset(torch.tensor([0, 5])))
    (torch.Size([2, 1, 2]), 2)
    """

    def __init__(self, array, sample_shape, index=None) -> None:
        self.array = array
        self.sample_shape = tuple(sample_shape)
        self.index = index

    def __len__(self) -> int:
        return len(self.array) if self.index is None else len(self.index)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.sample_shape)

    def _rows(self, idx) -> np.ndarray | slice:
        if isinstance(idx, torch.Tensor):
            idx = idx.numpy()
        return idx if self.index is None else self.index[idx]

    def __getitem__(self, idx) -> torch.Tensor:
        """Float32 tensor of the rows ``idx`` (an int gives one sample)."""
        if isinstance(idx, (int, np.integer)):
            n = len(self)
            if not -n <= idx < n:
                raise IndexError(f"index {idx} is out of range for {n} rows.")
            idx = int(idx) % n
            return self[slice(idx, idx + 1)][0]
        block = np.array(self.array[self._rows(idx)], dtype=np.float32)  # (B, d)
        return torch.from_numpy(block).reshape(-1, *self.sample_shape)

    def subset(self, idx) -> ArrayRows:
        """The rows ``idx`` of this view, still unread."""
        rows = self._rows(idx)
        if self.index is None:  # a slice or indices of the whole array
            rows = np.arange(len(self.array))[rows]
        return ArrayRows(self.array, self.sample_shape, np.asarray(rows))


class SampleDataset(torch.utils.data.Dataset):
    """A user's map-style dataset as ``(sample, target)`` pairs of fixed shape.

    Items of ``dataset`` may be a sample or a ``(sample, target, ...)``
    tuple (see :func:`sample_of`); the sample (anything
    :func:`torch.as_tensor` takes) is returned as a float32 tensor of shape
    ``sample_shape``, with a 0-d zero for its target, so that a
    :class:`~torch.utils.data.DataLoader` collates ``(X, y)`` batches for
    skorch. The representations learn without labels: the dataset's own
    targets are left out, so that targets a DataLoader cannot collate
    (boxes or captions of varying sizes, None) do no harm.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        Map-style dataset with ``__len__``.
    sample_shape : tuple of int
        Shape every sample is reshaped to.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.data import SampleDataset
    >>> data = SampleDataset(torch.utils.data.TensorDataset(torch.zeros(5, 4)), (1, 4))
    >>> len(data), data[0][0].shape
    (5, torch.Size([1, 4]))
    """

    def __init__(self, dataset, sample_shape) -> None:
        self.dataset = dataset
        self.sample_shape = tuple(sample_shape)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i):
        sample = sample_of(self.dataset[i])
        if (held := _what_it_holds(sample)) is not None:
            raise ValueError(
                f"Item {i} of the Dataset holds {held}: every sample must be an "
                "array or tensor of real numbers."
            )
        # torch warns on read-only memory and cannot read an object array
        if not sample.flags.writeable or sample.dtype.kind == "O":
            sample = sample.astype(np.float32)  # a copy of one sample
        x = torch.as_tensor(sample, dtype=torch.float32)
        if x.numel() != math.prod(self.sample_shape):
            values = "1 value" if x.numel() == 1 else f"{x.numel()} values"
            raise ValueError(
                f"Item {i} of the Dataset has {values} (shape "
                f"{tuple(x.shape)}), but the samples have shape {self.sample_shape}, "
                "as its first item set: every item must have the same shape."
            )
        return x.reshape(self.sample_shape), torch.zeros(())


class ArrayDataset(torch.utils.data.Dataset):
    """Samples held in one tensor ``(n, *input_shape)``, with optional targets.

    Parameters
    ----------
    X : torch.Tensor or ArrayRows
        The samples, float32, on the CPU; an :class:`ArrayRows` reads them
        from a memmap one batch at a time.
    y : torch.Tensor or None, default=None
        Targets ``(n, ...)`` (class indices or regression values), or None
        for unlabelled data.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.data import ArrayDataset
    >>> len(ArrayDataset(torch.zeros(5, 1, 8, 8)))
    5
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor | None = None) -> None:
        self.X = X
        self.y = y

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], (torch.zeros(()) if self.y is None else self.y[i])

    def subset(self, idx: torch.Tensor) -> ArrayDataset:
        """The samples (and targets) at the indices ``idx``."""
        X = self.X.subset(idx) if isinstance(self.X, ArrayRows) else self.X[idx]
        return ArrayDataset(X, None if self.y is None else self.y[idx])


class WeightedTargets:
    """Targets with a weight for each sample, sliced together.

    What a fine-tuner given ``sample_weight`` trains on in place of its
    targets tensor: the ``y`` of an :class:`ArrayDataset` or a
    :class:`~sk_replearn.tokens.TokenDataset`, so that every batch's
    targets come with their weights, and
    :class:`~sk_replearn.training.SupervisedNet` weighs each sample's loss
    by them.

    Parameters
    ----------
    y : torch.Tensor
        The targets ``(n, ...)``.
    weight : torch.Tensor of shape (n,)
        A float32 weight for each sample.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.data import WeightedTargets
    >>> y, weight = torch.tensor([0, 1, 1]), torch.tensor([1.0, 2.0, 0.0])
    >>> targets = WeightedTargets(y, weight)
    >>> batch = targets[torch.tensor([2, 0])]
    >>> batch.y, batch.weight, len(targets)
    (tensor([1, 0]), tensor([0., 1.]), 3)
    """

    def __init__(self, y: torch.Tensor, weight: torch.Tensor) -> None:
        self.y, self.weight = y, weight

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, idx) -> WeightedTargets:
        return WeightedTargets(self.y[idx], self.weight[idx])

    def to(self, *args, **kwargs) -> WeightedTargets:
        """Both tensors moved (as :meth:`torch.Tensor.to` moves one)."""
        return WeightedTargets(
            self.y.to(*args, **kwargs), self.weight.to(*args, **kwargs)
        )


def is_memory_mapped(X) -> bool:
    """Whether the numpy array ``X`` is (a view of) a memory-mapped file.

    ``validate_data`` turns a :class:`numpy.memmap` into a plain ndarray
    view of the same mapping; this looks through such views.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from sk_replearn.data import is_memory_mapped
    >>> path = os.path.join(tempfile.mkdtemp(), "x.dat")
    >>> X = np.memmap(path, dtype=np.float32, mode="w+", shape=(4, 2))
    >>> is_memory_mapped(np.asarray(X)[1:]), is_memory_mapped(np.zeros(3))
    (True, False)
    """
    while isinstance(X, np.ndarray):
        if isinstance(X, np.memmap):
            return True
        X = X.base
    if isinstance(X, memoryview):  # np.frombuffer's base: a view of the buffer
        X = X.obj
    return isinstance(X, mmap.mmap)


def tensor_to_numpy(X: torch.Tensor) -> np.ndarray:
    """A tensor's values as a numpy array on the CPU (bfloat16 as float32).

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.data import tensor_to_numpy
    >>> tensor_to_numpy(torch.ones(2, dtype=torch.bfloat16)).dtype
    dtype('float32')
    """
    X = X.detach().cpu()
    if X.dtype == torch.bfloat16 or (
        X.is_floating_point() and X.dtype not in _NUMPY_FLOATS
    ):
        X = X.float()  # numpy has no bfloat16 (nor float8)
    return X.numpy()


#: Floating-point tensor dtypes numpy can hold.
_NUMPY_FLOATS = (torch.float16, torch.float32, torch.float64)


def _what_it_holds(sample: np.ndarray) -> str | None:
    """None if ``sample`` holds real numbers (an object array of them too);
    else what it holds, for an error message.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_replearn.data._datasets import _what_it_holds
    >>> _what_it_holds(np.array([1.0, 2.0], dtype=object)) is None
    True
    >>> _what_it_holds(np.array([1.0, None], dtype=object))
    'None'
    >>> _what_it_holds(np.array(["CCO", "c1ccccc1"]))
    "strings ('CCO', ...)"
    """
    kind = sample.dtype.kind
    if kind in "biuf":
        return None
    if kind not in "OSU":  # complex, datetime64, timedelta64, structured
        return f"values of dtype {sample.dtype}, not real numbers"
    for value in sample.ravel().tolist():
        if value is None:
            return "None"
        if isinstance(value, (str, bytes)):
            return f"strings ({value!r}, ...)"
        if not isinstance(value, Real) or isinstance(value, complex):
            return f"{with_article(type(value).__name__)} ({reprlib.repr(value)})"
    return None


def sample_of(item) -> np.ndarray:
    """The sample of a dataset item, as an array.

    A tuple is ``(sample, target, ...)`` (a :class:`~torch.utils.data.TensorDataset`'s
    items, torchvision's): its first element is the sample. So is a list
    whose first element is a tensor or an array (``[sample, target]``). Any
    other item is the sample itself, a list of numbers or of rows included.
    A tensor of a dtype numpy lacks (bfloat16) is read as float32.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sk_replearn.data import sample_of
    >>> sample_of((torch.ones(2), 3)).shape, sample_of([[1.0, 2.0], [3.0, 4.0]]).shape
    ((2,), (2, 2))
    """
    if isinstance(item, tuple) or (
        isinstance(item, list)
        and item
        and isinstance(item[0], (torch.Tensor, np.ndarray))
    ):
        item = item[0]
    if isinstance(item, torch.Tensor):
        return tensor_to_numpy(item)
    try:
        return np.asarray(item)
    except ValueError as exc:  # ragged: numpy's "inhomogeneous shape"
        raise ValueError(
            f"A Dataset item of type {type(item).__name__} cannot be read as one "
            f"array ({str(exc).splitlines()[0]}). A list is the sample itself "
            "unless its first element is a tensor or an array: return the "
            "sample as an array or tensor, or (sample, target) as a tuple."
        ) from None
