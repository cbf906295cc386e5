"""What float32 can hold: the sample the input standardisation is set
from (:func:`scale_sample`), the warning for values that float32 blurs
(:func:`check_float32_precision`, on arrays and on a float64 Dataset),
and the global generators kept while a Dataset is read
(:func:`generators_kept`)."""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterator

import numpy as np
import torch

from .._warn import warn_user
from ._datasets import ArrayRows, sample_of

#: Most values read to set the input standardisation of streamed data
#: (32 MiB in float64); data with fewer is read whole, as an array is.
SCALE_SAMPLE_VALUES = 2**22

#: float32's largest finite value, the bound of every rate and value that
#: training or a float32 computation must hold.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _float32_square_limit(n_features: int) -> float:
    """The largest magnitude whose square, summed over ``n_features``, fits float32."""
    return math.sqrt(FLOAT32_MAX / n_features)


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


def check_float32_precision(rows: np.ndarray, owner: str) -> None:
    """Warn when float32, the training precision, blurs X's float64 or integer values.

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
        The input before its cast to float32: float64 or integers (a memmap
        is read on the sampled rows only); other dtypes are not looked at,
        nor samples holding NaN or infinity, which the value checks name.
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
    exact = rows.dtype == np.float64 or rows.dtype.kind in "iu"
    if not exact or rows.size == 0 or rows.ndim != 2:
        return
    step = max(1, rows.size // SCALE_SAMPLE_VALUES)
    sample = np.asarray(rows[::step], dtype=np.float64)
    if len(sample) < 2 or not np.isfinite(sample).all():
        return  # NaN or infinity: the value checks that follow name it
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
