"""Every accepted input, turned once into samples and batches.

``fit``, ``transform`` and ``score`` take in-memory arrays, a
:class:`numpy.memmap` (or any array backed by one), whose rows are read one
batch at a time (:class:`ArrayRows`) and cast to float32 then (a memmap of
``uint8``, signed integers, booleans or float16 stays in its dtype; other
dtypes are cast whole first, in memory), and a map-style
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

from ._batches import (
    Batches,
    EvalBatchSampler,
    batch_slices,
    eval_chunks,
    shuffled_order,
)
from ._datasets import (
    ArrayDataset,
    ArrayRows,
    SampleDataset,
    WeightedTargets,
    is_memory_mapped,
    sample_of,
    tensor_to_numpy,
)
from ._input import dataset_head, input_rows, sample_dataset, training_samples
from ._precision import (
    SCALE_SAMPLE_VALUES,
    check_float32_precision,
    generators_kept,
    scale_sample,
)

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
