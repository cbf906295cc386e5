"""Every accepted input, turned once into samples and batches.

``fit``, ``transform`` and ``score`` take in-memory arrays, a
:class:`numpy.memmap` (or any array backed by one), whose rows are read one
batch at a time (:class:`ArrayRows`) and cast to float32 then (a memmap of
integers, booleans or float16 stays in its dtype), and a map-style
:class:`torch.utils.data.Dataset` yielding samples or ``(sample, target)``
pairs, read through a :class:`~torch.utils.data.DataLoader`
(:class:`SampleDataset`). :func:`input_rows` validates any of them against
the estimator (a 2-D array, or a :class:`SampleDataset`),
:func:`training_samples` turns the result into what the training net slices
batches from, and :class:`Batches` / :func:`eval_chunks` are the batches.
Nothing is copied whole: the input standardisation of streamed data is
computed from a sample of at most :data:`SCALE_SAMPLE_VALUES` values, and a
dataset's shape is read off its first item.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import random
import reprlib
from collections.abc import Iterator, Mapping

import numpy as np
import torch

from ._util import with_article
from ._warn import warn_user

__all__ = [
    "SCALE_SAMPLE_VALUES",
    "ArrayDataset",
    "ArrayRows",
    "Batches",
    "EvalBatchSampler",
    "SampleDataset",
    "WeightedTargets",
    "sample_of",
    "tensor_to_numpy",
    "batch_slices",
    "check_float32_precision",
    "dataset_head",
    "eval_chunks",
    "generators_kept",
    "input_rows",
    "is_memory_mapped",
    "sample_dataset",
    "scale_sample",
    "shuffled_order",
    "training_samples",
]


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
        # torch warns on read-only memory and cannot read an object array
        if not sample.flags.writeable or sample.dtype.kind in "OSU":
            try:
                if sample.dtype.kind in "SU":
                    raise ValueError(f"strings of dtype {sample.dtype}")
                sample = sample.astype(np.float32)  # a copy of one sample
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"Item {i} of the Dataset holds values that are not numbers "
                    f"({str(exc).splitlines()[0]}): every sample must be an "
                    "array or tensor of numbers."
                ) from None
        x = torch.as_tensor(sample, dtype=torch.float32)
        if x.numel() != math.prod(self.sample_shape):
            raise ValueError(
                f"Item {i} of the Dataset has {x.numel()} values (shape "
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


def shuffled_order(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random permutation of ``range(n)``, 4 bytes an index where it fits.

    :func:`torch.randperm` of ``n``, drawn from ``generator`` (torch's
    global generator when None), as int32 when ``n < 2**31``: the same
    permutation as the default int64 one, for the same generator state, at
    half the memory. An epoch's order is the one allocation of a fit that
    grows with ``n`` beyond the data (8 bytes a sample as int64; a sample
    of MNIST-1D is 160). Tensors and arrays take int32 indices as they take
    int64 ones.

    Parameters
    ----------
    n : int
        Number of indices.
    generator : torch.Generator or None, default=None
        Source of randomness.

    Returns
    -------
    torch.Tensor of shape (n,)
        int32 when ``n < 2**31``, else int64.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.data import shuffled_order
    >>> order = shuffled_order(5, torch.Generator().manual_seed(0))
    >>> order.dtype, sorted(order.tolist())
    (torch.int32, [0, 1, 2, 3, 4])
    >>> same = torch.randperm(5, generator=torch.Generator().manual_seed(0))
    >>> torch.equal(order.long(), same)
    True
    """
    dtype = torch.int32 if n < 2**31 else torch.int64
    return torch.randperm(n, generator=generator, dtype=dtype)


class Batches:
    """Iterate over ``(X[idx], y[idx])`` batches sliced from one tensor.

    Slicing a whole batch at once costs one gather, where a DataLoader over
    a map-style dataset costs one ``__getitem__`` and a collate per sample;
    on small models that difference dominates the epoch time. In training
    the order is reshuffled each epoch from torch's global generator (which
    the estimator seeds), and a last batch of one sample is dropped so that
    batch normalisation never sees a batch of one. In evaluation no sample
    is dropped: a last batch of one joins the batch before it, so that
    losses that compare samples within a batch (InfoNCE, Barlow Twins) are
    defined on every batch. ``y`` is None for unlabelled data.
    """

    def __init__(
        self,
        X: torch.Tensor,
        batch_size: int,
        training: bool,
        y: torch.Tensor | None = None,
    ) -> None:
        self.X, self.y = X, y
        self.batch_size = len(X) if batch_size == -1 else max(int(batch_size), 1)
        self.training = training

    def __len__(self) -> int:
        return self.count(len(self.X), self.batch_size)

    @staticmethod
    def count(n: int, batch_size: int) -> int:
        """Number of batches of ``n`` samples (a last batch of one is not one)."""
        n_batches = math.ceil(n / batch_size)
        if n > 1 and n % batch_size == 1:
            n_batches -= 1  # dropped in training, merged in evaluation
        return max(n_batches, 1) if n else 0

    @classmethod
    def eval_slices(cls, n: int, batch_size: int):
        """Slices of ``range(n)`` in order, a last batch of one merged."""
        n_batches = cls.count(n, batch_size)
        for k in range(n_batches):
            stop = n if k == n_batches - 1 else (k + 1) * batch_size
            yield slice(k * batch_size, stop)

    def _take(self, idx):
        return self.X[idx], None if self.y is None else self.y[idx]

    def __iter__(self):
        n, size = len(self.X), self.batch_size
        if self.training:
            order = shuffled_order(n)
            for k in range(len(self)):
                yield self._take(order[k * size : (k + 1) * size])
            return
        for sl in self.eval_slices(n, size):
            yield self._take(sl)


class EvalBatchSampler(torch.utils.data.Sampler):
    """Index batches in order for evaluation, a last batch of one merged.

    The :class:`~torch.utils.data.DataLoader` counterpart of :class:`Batches`
    in evaluation: consecutive batches of ``batch_size`` indices, except that
    a last batch of one sample joins the batch before it.
    """

    def __init__(self, n: int, batch_size: int) -> None:
        self.n, self.batch_size = int(n), max(int(batch_size), 1)

    def __len__(self) -> int:
        return Batches.count(self.n, self.batch_size)

    def __iter__(self):
        for sl in Batches.eval_slices(self.n, self.batch_size):
            yield list(range(sl.start, sl.stop))


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
    if first.ndim == 0 or first.dtype.kind in "SU":
        text = first.dtype.kind in "SU" or isinstance(first.item(), (str, bytes))
        raise ValueError(
            f"The first sample of the Dataset is {_described(first)}; {name} "
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
    """What a sample that is no array of numbers is, for an error message."""
    if sample.ndim:
        return f"an array of strings, shape {sample.shape}"
    value = sample.item()
    if value is None:
        return "None"
    if isinstance(value, (bool, int, float, complex, np.number)):
        return f"one number ({value!r})"
    return f"{with_article(type(value).__name__)} ({reprlib.repr(value)})"


def dataset_head(dataset, n: int) -> np.ndarray:
    """The first ``n`` samples of a dataset, as an array ``(m, *shape)``.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.data import dataset_head
    >>> dataset_head(torch.utils.data.TensorDataset(torch.ones(6, 3)), 4).shape
    (4, 3)
    """
    return np.stack([sample_of(dataset[i]) for i in range(min(n, len(dataset)))])


def _float32_square_limit(n_features: int) -> float:
    """The largest magnitude whose square, summed over ``n_features``, fits float32."""
    return math.sqrt(float(np.finfo(np.float32).max) / n_features)


def _peak_past_float32(samples: torch.Tensor) -> float | None:
    """The largest magnitude of ``samples`` (n, *shape), if their squares
    summed over a sample overflow float32; else None."""
    if not samples.is_floating_point() or not samples.numel():
        return None
    peak = float(samples.abs().max())
    return peak if peak > _float32_square_limit(samples[0].numel()) else None


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
    >>> from sk_replearn.data import scale_sample
    >>> from sk_replearn.data import ArrayRows
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
        sample = X_t[rows]
    else:
        sample = torch.stack([X_t[int(i)][0] for i in rows])
    if sample.is_floating_point() and not torch.isfinite(sample).all():
        # A Dataset's items are not validated ahead of training: without
        # this, the NaN would spread through the standardisation to every
        # batch, and the loss would turn NaN on batches that hold none.
        raise ValueError(
            "X holds NaN or infinite values (found among the samples read to "
            "set the input standardisation); a Dataset's samples are not "
            "checked ahead of training. Remove or impute them first."
        )
    peak = _peak_past_float32(sample)
    if peak is not None:
        # Arrays are refused so ahead of training; here one such sample
        # would make the standardisation's scale of every feature huge,
        # and the model would learn the same code for every other sample.
        raise ValueError(
            f"X holds values up to {peak:.3g} in magnitude (found among the "
            "samples read to set the input standardisation): squared and "
            f"summed over the {math.prod(shape)} values of a sample they "
            f"overflow float32 (above {_float32_square_limit(math.prod(shape)):.3g}), "
            "the precision in which the "
            "network computes. Rescale the Dataset's samples."
        )
    return sample


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
        an integer, boolean or float16 one (read in float32 batches); a
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


def check_float32_precision(rows: np.ndarray, owner: str) -> None:
    """Warn when float32, the training precision, blurs float64 X's values.

    The networks train in float32, which resolves about 7 significant
    digits: a feature whose values sit at a large common offset (a
    baseline, a timestamp) loses its differences in the cast, before the
    model standardises it (the 17 levels of the digits' pixels at an
    offset of 1e9 became 1, and the representation collapsed). One
    UserWarning names the first such feature when float32's step at the
    feature's largest magnitude exceeds a sixteenth of its standard
    deviation, read on at most :data:`SCALE_SAMPLE_VALUES` values (evenly
    spaced rows, no random draw).

    Parameters
    ----------
    rows : ndarray of shape (n_samples, n_features)
        The validated input (a memmap is read on the sampled rows only).
    owner : str
        The estimator's name, for the message.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from sk_replearn.data import check_float32_precision
    >>> X = np.arange(20.0).reshape(10, 2)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     check_float32_precision(X, "SimCLRTransformer")
    ...     check_float32_precision(X + 1e9, "SimCLRTransformer")
    >>> len(caught), str(caught[0].message)[:55]
    (1, 'SimCLRTransformer: feature 0 of X has values around 1e+')
    """
    if rows.dtype != np.float64 or rows.size == 0 or rows.ndim != 2:
        return
    step = max(1, rows.size // SCALE_SAMPLE_VALUES)
    sample = np.asarray(rows[::step])
    if len(sample) < 2:
        return
    std = sample.std(axis=0)
    top = np.abs(sample).max(axis=0)
    spacing = np.spacing(top.astype(np.float32)).astype(np.float64)
    blurred = np.flatnonzero((std > 0) & (spacing > std / 16))
    if not blurred.size:
        return
    j = int(blurred[0])
    warn_user(
        f"{owner}: feature {j} of X has values around {sample[:, j].mean():.4g} "
        f"that vary by {std[j]:.3g} (standard deviation), and float32, in "
        f"which the network trains, resolves steps of {spacing[j]:.3g} there; "
        f"{blurred.size} feature(s) lose their differences so. Standardise X "
        "first (StandardScaler in a Pipeline), or subtract the offset.",
        UserWarning,
    )


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


@contextlib.contextmanager
def generators_kept(seed: int | None = None) -> Iterator[None]:
    """Put torch's CPU generator, numpy's global one and Python's back on exit.

    For reads of a user's Dataset outside training (checks, digests), which
    may draw from any of them (a random augmentation) and must not change
    what the training draws. With ``seed``, all three are seeded with it
    inside the block, so that such a Dataset reads alike in every fit.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sk_replearn.data import generators_kept
    >>> before = torch.get_rng_state()
    >>> with generators_kept(seed=0):
    ...     a = np.random.rand()
    >>> with generators_kept(seed=0):
    ...     b = np.random.rand()
    >>> a == b, bool(torch.equal(torch.get_rng_state(), before))
    (True, True)
    """
    # numpy's legacy global generator: the one a user's Dataset draws from
    numpy_state = np.random.get_state()  # noqa: NPY002
    python_state = random.getstate()
    try:
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.default_generator.manual_seed(seed)
                np.random.seed(seed)  # noqa: NPY002
                random.seed(seed)
            yield
    finally:
        np.random.set_state(numpy_state)  # noqa: NPY002
        random.setstate(python_state)


#: Samples of a float64 Dataset read to look for values float32 blurs.
_PRECISION_SAMPLES = 64


def _check_dataset_precision(dataset, owner: str) -> None:
    """:func:`check_float32_precision` on evenly spaced samples of a Dataset.

    Only where its first sample is float64: a Dataset's items are cast to
    float32 as they are read, after which nothing is left to see.
    """
    with generators_kept():  # the reads draw nothing of the training's
        first = sample_of(dataset[0])
        if first.dtype != np.float64:
            return
        n = len(dataset)
        picks = np.unique(np.linspace(0, n - 1, min(n, _PRECISION_SAMPLES)).astype(int))
        rows = [first.reshape(-1)]  # picks[0] is 0, read already
        rows += [sample_of(dataset[int(i)]).reshape(-1) for i in picks[1:]]
    if len({row.shape for row in rows}) == 1:  # else the training names the item
        check_float32_precision(np.stack(rows), owner)


def eval_chunks(X, batch_size: int) -> Iterator[tuple[slice, torch.Tensor]]:
    """``(rows, batch)`` pairs covering X in order: an array or a Dataset."""
    if isinstance(X, torch.utils.data.Dataset):
        start = 0
        for xb, _ in torch.utils.data.DataLoader(X, batch_size=batch_size):
            yield slice(start, start + len(xb)), xb
            start += len(xb)
        return
    for sl in batch_slices(X.shape[0], batch_size):
        chunk = X[sl]
        if not chunk.flags.writeable:  # torch warns on read-only memory
            chunk = chunk.copy()
        yield sl, torch.from_numpy(chunk)


def batch_slices(n: int, batch_size: int | None) -> Iterator[slice]:
    """Yield consecutive slices covering ``range(n)`` in chunks.

    Parameters
    ----------
    n : int
        Number of rows.
    batch_size : int or None
        Rows per chunk; ``None`` means one chunk.

    Yields
    ------
    slice
        ``slice(start, stop)`` of at most ``batch_size`` rows.

    Examples
    --------
    >>> from sk_replearn.data import batch_slices
    >>> list(batch_slices(5, 2))
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    step = n if batch_size is None else max(int(batch_size), 1)
    for start in range(0, n, max(step, 1)):
        yield slice(start, min(start + step, n))
