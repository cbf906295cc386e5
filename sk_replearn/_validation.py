"""The input checks of every estimator: ``_validate_X`` and its helpers.

:class:`InputChecksMixin` gives :class:`~sk_replearn.base.BaseRepresentation`
``_validate_X`` and the checks of values, range and ``input_shape`` it runs.

N-D samples flattened to rows and their layout warned about
(:func:`flatten_samples`), the float dtype an input is read in
(:func:`float_dtypes`; a memmap of integers, booleans or float16 kept in
its dtype), strides numpy and torch both take (:func:`positive_strides`),
``input_shape`` checked, values past float32's range refused, and input
that is not numbers named for what it is.
"""

from __future__ import annotations

import math
from typing import NoReturn

import numpy as np
import torch
from sklearn.utils import assert_all_finite
from sklearn.utils.validation import validate_data

from ._warn import warn_user
from .data import check_float32_precision, is_memory_mapped, tensor_to_numpy
from .data._precision import _float32_square_limit


def _warn_unlikely_layout(shape: tuple[int, ...]) -> None:
    """Warn when N-D samples look like a layout other than channels first.

    Images usually come channels last from image libraries (``(H, W, 3)``)
    and grey ones without a channel axis (``(H, W)``), and signals time
    first from Keras and tslearn (``(T, C)``); read channels first, as torch
    does, they train without an error on a wrong picture of the data (a
    signal of 100 steps as 100 channels of one step, which no crop or shift
    can change). Square ``(H, W)`` samples and more channels than steps
    are warned of; ``(C, T)`` with fewer channels than steps, the usual
    multichannel signal, is not. An explicit ``input_shape`` keeps the
    reading without a warning.
    """
    if len(shape) == 3 and shape[0] > 4 and shape[2] in (1, 3, 4):
        c, h, w = shape
        warn_user(
            f"X's samples have shape {shape}, read channels first: {c} channels "
            f"of {h} x {w} images. If the channels are last (height, width, "
            "channels), pass X.transpose(0, 3, 1, 2) (from a torch Dataset, "
            "items x.permute(2, 0, 1), or x.transpose(2, 0, 1) for numpy "
            "items); to keep this reading, "
            f"set input_shape={shape}.",
            UserWarning,
        )
    elif len(shape) == 2 and shape[0] >= max(shape[1], 8):
        c, length = shape
        reorder = ". For"
        if c > length:
            reorder = (
                ": more channels than time steps. If time comes first (samples "
                "of shape (length, channels), as Keras and tslearn store "
                "signals), pass X.transpose(0, 2, 1) (from a torch Dataset, "
                "items x.T); for"
            )
        warn_user(
            f"X's samples have shape {shape}, read as signals of {c} channels "
            f"and length {length}{reorder} one-channel images, pass X[:, None] "
            f"(samples of shape (1, {c}, {length}); from a torch Dataset, "
            "items x[None]); to keep this reading, set "
            f"input_shape={shape}.",
            UserWarning,
        )


def _raise_unreadable(X, exc: ValueError, owner: str) -> NoReturn:
    """Re-raise scikit-learn's conversion error of X with its cause named.

    ``check_array`` says "could not convert string to float: 'x'" for a
    DataFrame's text or categorical column, naming no column, and prints
    the whole of a complex array; other errors pass as they are.
    """
    text = str(exc)
    if text.startswith("Complex data not supported"):
        raise ValueError(
            "Complex data not supported: X holds complex numbers "
            f"({getattr(X, 'dtype', 'complex')}), and {owner} takes real "
            "values. Pass X.real, np.abs(X), or both parts side by side, "
            "np.hstack([X.real, X.imag])."
        ) from None
    if "could not convert" in text and hasattr(X, "columns"):
        bad = [
            str(c)
            for c in X.columns
            if not (
                X[c].dtype.kind in "biuf"
                or (X[c].dtype.kind == "O" and _numbers_only(X[c]))
            )
        ]
        if bad:
            raise ValueError(
                f"X's column(s) {', '.join(map(repr, bad[:5]))} hold text or "
                f"categories, and {owner} takes numbers: encode them first "
                "(e.g. OneHotEncoder in a ColumnTransformer) or leave them out. "
                f"({text})"
            ) from None
    raise exc


def _numbers_only(column) -> bool:
    try:
        np.asarray(column, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return True


def flatten_samples(X):
    """Flatten N-D samples: ``(X_2d, sample_shape)``, shape None for 2-D input.

    A torch tensor comes back as a numpy array (bfloat16 as float32), and
    lists of numbers (rows, or N-D samples ``(n, *shape)``) as the float64
    array they hold; anything else not N-D is returned as it is, for
    :func:`~sklearn.utils.validation.validate_data`.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_replearn.base import flatten_samples
    >>> X2, shape = flatten_samples(np.zeros((5, 1, 8, 8)))
    >>> X2.shape, shape
    ((5, 64), (1, 8, 8))
    """
    if isinstance(X, torch.Tensor):
        X = tensor_to_numpy(X)
    elif isinstance(X, (list, tuple)):
        nested = _nested_numbers(X)
        if nested is not None:
            X = nested  # rows or N-D samples: the float64 array they hold
    if isinstance(X, np.ndarray) and X.ndim > 2:
        # the width spelt out: -1 cannot be inferred for 0 samples, which
        # validate_data then refuses with scikit-learn's message
        return X.reshape(X.shape[0], math.prod(X.shape[1:])), tuple(X.shape[1:])
    return X, None


def _nested_numbers(X) -> np.ndarray | None:
    """Nested lists of numbers as a float64 array (as lists are read); else None."""
    try:
        array = np.asarray(X)
    except ValueError:  # ragged: validation says so
        return None
    if array.dtype.kind not in "biuf":
        return None
    return array.astype(np.float64)


def positive_strides(X):
    """X, copied where a stride is negative (``X[::-1]``, ``np.flip``).

    torch cannot view such an array (``torch.from_numpy`` raises); numpy and
    scikit-learn take it, so a validated array never keeps one.
    """
    if isinstance(X, np.ndarray) and any(s < 0 for s in X.strides):
        return np.ascontiguousarray(X)
    return X


def float_dtypes(X, integers: type = np.float32) -> list:
    """The float dtypes validation keeps for X, the one others become first.

    Arrays keep float32 or float64, and other dtypes (integers, booleans)
    become ``integers``: float32 by default, the networks' precision,
    without a float64 copy; the classical estimators, which compute in
    float64 where precision needs it, pass float64, as scikit-learn does
    (integer timestamps near 1.7e9 would round to float32's steps of 128).
    Python lists and tuples hold float64 numbers: they become float64, as
    numpy would make them, so that ``fit(X.tolist())`` is ``fit(X)``; so
    does another array-like without a ``dtype`` whose values numpy reads as
    float64 (an object with ``__array__``).

    Examples
    --------
    >>> import numpy as np
    >>> from sk_replearn._validation import float_dtypes
    >>> float_dtypes([[0.5]])[0], float_dtypes(np.zeros((1, 1), np.uint8))[0]
    (<class 'numpy.float64'>, <class 'numpy.float32'>)
    >>> float_dtypes(np.zeros((1, 1), np.int64), np.float64)[0]
    <class 'numpy.float64'>
    """
    if isinstance(X, (list, tuple)) or integers is np.float64:
        return [np.float64, np.float32]
    if not hasattr(X, "dtype") and hasattr(X, "__array__"):
        # Validation converts what has no dtype to the first of the list.
        if np.asarray(X).dtype == np.float64:
            return [np.float64, np.float32]
    return [np.float32, np.float64]


#: dtypes of a memory-mapped X that torch reads as they are and casts to
#: float32 a batch at a time (see ``_validate_X``'s ``keep_mapped``).
_MAPPED_AS_IS = frozenset(
    np.dtype(t)
    for t in (np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64, np.float16)
)


def _holds_integers(X) -> bool:
    """Whether X is a numpy array of integers (which a cast to float32 rounds)."""
    return isinstance(X, np.ndarray) and X.dtype.kind in "iu"


def _castable_mapped(X) -> bool:
    """Whether X is memory-mapped in a dtype of :data:`_MAPPED_AS_IS`."""
    return getattr(X, "dtype", None) in _MAPPED_AS_IS and is_memory_mapped(X)


def _check_input_shape(input_shape) -> tuple[int, ...] | None:
    if input_shape is None:
        return None
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"input_shape={input_shape!r} must be a tuple of positive ints such "
            "as (1, 8, 8) for images or (1, 40) for signals, or None."
        ) from exc
    if (
        len(shape) == 0
        or any(s < 1 for s in shape)
        or any(isinstance(v, (bool, np.bool_)) for v in input_shape)
        or any(s != v for s, v in zip(shape, input_shape))
    ):
        raise ValueError(
            f"input_shape={input_shape!r} must be a non-empty tuple of positive "
            "ints such as (1, 8, 8) for images or (1, 40) for signals, or None."
        )
    return shape


def _check_float32_range(X: np.ndarray, owner: str) -> None:
    """Refuse values whose squares overflow float32, the models' precision.

    Every estimator computes squared distances, variances or squared errors
    in float32: a row whose squared norm exceeds float32's largest value
    (3.4e38, e.g. any value above 1.8e19) would turn into inf and then NaN
    silently, so it is refused here with a clear message.
    """
    if X.size == 0:
        return
    peak = max(abs(float(X.max())), abs(float(X.min())))  # no copy of X
    limit = _float32_square_limit(X.shape[1])
    if peak > limit:
        raise ValueError(
            f"X holds values up to {peak:.3g} in magnitude: squared and summed "
            f"over its {X.shape[1]} features they overflow float32 (above "
            f"{limit:.3g}), the precision in which {owner} computes; rescale X "
            "(e.g. with StandardScaler)."
        )


def _hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def check_flag(value, name: str) -> None:
    """Refuse a keyword flag that is not True or False (``"no"`` is truthy)."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name}={value!r} must be True or False.")


class InputChecksMixin:
    """The input checks of :class:`~sk_replearn.base.BaseRepresentation`:
    X validated (N-D samples flattened, ``input_shape_`` resolved), its
    values and range checked, and the errors of a result that overflowed."""

    def _validate_X(
        self, X, *, reset: bool, check_values: bool = True, keep_mapped: bool = False
    ) -> np.ndarray:
        """Validate X and return it as a 2-D float32/float64 array.

        N-D input ``(n, *shape)`` is flattened to ``(n, prod(shape))`` and
        ``shape`` becomes (or is checked against) ``input_shape_``. With
        ``reset=True`` the fitted ``n_features_in_``, ``feature_names_in_``
        and ``input_shape_`` are set; otherwise X is checked against them.
        ``check_values=False`` leaves out the two passes over the values
        (finite, within float32's range), for a caller that checks its own
        result and then calls :meth:`_check_values` to name the bad input.
        ``keep_mapped=True`` keeps a memory-mapped X of integers, booleans or
        float16 as it is, for a caller that reads it in float32 batches
        (:func:`~sk_replearn.data.training_samples`), where a cast would
        copy the file into memory whole.
        """
        if isinstance(X, torch.utils.data.Dataset):
            raise TypeError(
                f"{type(self).__name__} takes X as an array (a numpy.memmap for "
                "data larger than memory), not a torch Dataset: stack the "
                "Dataset's samples into an array. The neural estimators' fit, "
                "transform and score take Datasets."
            )
        if X is None:  # scikit-learn's check_array reads it as NaN ("array=nan")
            raise TypeError(
                f"{type(self).__name__} got X=None; pass an array-like of shape "
                "(n_samples, n_features) or (n_samples, *input_shape)."
            )
        X, nd_shape = flatten_samples(X)
        if not reset and nd_shape is not None:
            # Before validate_data, whose message would count the flattened
            # features ("X has 729 features") of images of the wrong size.
            self._check_sample_shape(nd_shape)
        dtype = float_dtypes(X, self._integers_as)
        if keep_mapped and _castable_mapped(X):
            dtype = None  # read in float32 batches, never copied whole
        elif reset and dtype[0] is np.float32 and _holds_integers(X):
            # Integers far from 0 (timestamps near 1.7e9) lose their
            # differences in the cast below, as float64 values would later.
            check_float32_precision(X, type(self).__name__)
        try:
            X = validate_data(
                self,
                X,
                reset=reset,
                dtype=dtype,
                accept_sparse=False,
                ensure_all_finite=check_values,
            )
        except ValueError as exc:
            _raise_unreadable(X, exc, type(self).__name__)
        X = positive_strides(X)
        if check_values:
            self._check_range(X, reset=reset)
        if reset:
            self.input_shape_ = self._resolve_input_shape(X.shape[1], nd_shape)
            # Whether X came N-D: inverse_transform answers in the same layout.
            self._nd_input = nd_shape is not None
        return X

    def _check_sample_shape(self, nd_shape: tuple[int, ...]) -> None:
        """N-D samples at transform time have the fitted ``input_shape_``."""
        fitted = getattr(self, "input_shape_", None)
        if fitted is not None and nd_shape != tuple(fitted):
            raise ValueError(
                f"X has samples of shape {nd_shape}, but {type(self).__name__} "
                f"was fitted on samples of shape {tuple(fitted)}."
            )

    def _check_values(self, X: np.ndarray) -> None:
        """The checks of X's values that ``_validate_X(check_values=False)`` skips."""
        assert_all_finite(X, input_name="X", estimator_name=type(self).__name__)
        self._check_range(X, reset=False)

    def _check_range(self, X: np.ndarray, *, reset: bool) -> None:
        """Refuse finite values the estimator's float32 arithmetic cannot hold.

        Here, values whose squares overflow float32; an estimator that
        shifts X before squaring it checks the shifted values instead.
        """
        _check_float32_range(X, type(self).__name__)

    def _raise_not_finite(self, X: np.ndarray, result: str) -> NoReturn:
        """Raise the error that names why ``result``, computed from X, is not finite.

        For callers of ``_validate_X(check_values=False)`` whose result came
        out NaN or infinite: NaN, infinity or values too large for float32 in
        X get the errors validation would have raised; otherwise the overflow
        happened inside the computation, and the error says so.
        """
        self._check_values(X)
        raise ValueError(
            f"The {result} computed by {type(self).__name__} overflowed: X holds "
            f"values up to {float(np.abs(X).max()):.3g} in magnitude; rescale X "
            "(e.g. with StandardScaler)."
        )

    def _resolve_input_shape(self, n_features: int, nd_shape) -> tuple[int, ...]:
        shape = _check_input_shape(self.input_shape)
        if shape is not None:
            if math.prod(shape) != n_features:
                raise ValueError(
                    f"input_shape={tuple(shape)} holds {math.prod(shape)} values "
                    f"per sample but X has {n_features} features; pass an "
                    "input_shape whose product equals n_features, or None."
                )
            if nd_shape is not None and nd_shape != shape:
                raise ValueError(
                    f"input_shape={tuple(shape)} does not match the shape of "
                    f"the samples in X, {nd_shape}; drop input_shape or reshape X."
                )
            return shape
        if nd_shape is not None:
            if self._reads_layout:
                _warn_unlikely_layout(tuple(nd_shape))
            return nd_shape
        return (n_features,)
