"""The scikit-learn face shared by every sk_replearn estimator.

Everything an estimator has in common with the others lives here, once:
resolving ``device="auto"``, seeding from ``random_state``, validating the
input (2-D ``(n, d)`` with an optional ``input_shape``, or N-D
``(n, C, H, W)`` / ``(n, C, L)``), moving data to the device one batch at a
time, and the feature names that make ``set_output(transform="pandas")``
work. The input checks ``_validate_X`` calls are in ``_validation.py``, the
seeds in ``_seeding.py``.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Callable, Iterator
from numbers import Integral, Real
from typing import NoReturn

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import assert_all_finite
from sklearn.utils._param_validation import Interval, InvalidParameterError
from sklearn.utils.validation import (
    _generate_get_feature_names_out,
    check_is_fitted,
    validate_data,
)

from . import persistence
from ._heap import kept_heap
from ._seeding import seed_from_random_state
from ._util import is_fitted, with_article
from ._validation import (
    _castable_mapped,
    _check_float32_range,
    _check_input_shape,
    _hashable,
    _holds_integers,
    _raise_unreadable,
    _warn_unlikely_layout,
    flatten_samples,
    float_dtypes,
    positive_strides,
)
from .data import check_float32_precision, eval_chunks

__all__ = [
    "BaseRepresentation",
    "fit_context",
    "flatten_samples",
    "is_fitted",
    "resolve_device",
    "seed_from_random_state",
    "store_params",
]


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn the ``device`` parameter into a :class:`torch.device`.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` picks CUDA when it is available and the CPU otherwise.
        Anything :class:`torch.device` understands (``"cpu"``, ``"cuda"``,
        ``"cuda:1"``, ``"mps"``) is accepted as long as that device exists.

    Returns
    -------
    torch.device
        The device to compute on.

    Raises
    ------
    ValueError
        If ``device`` is not a device name, or names a device this machine
        does not have.

    Examples
    --------
    >>> from sk_replearn.base import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a device name; use 'auto', 'cpu', "
            "'cuda', 'cuda:<index>' or 'mps'."
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} asks for CUDA but no CUDA device is "
                "available; use device='auto' or device='cpu'."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} names CUDA device {dev.index} but only "
                f"{torch.cuda.device_count()} are visible."
            )
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(
                f"device={device!r} asks for Apple MPS, which is not "
                "available here; use device='auto' or device='cpu'."
            )
    return dev


def store_params(estimator, params: dict) -> None:
    """Store an ``__init__``'s arguments as attributes of the same names.

    Called as ``store_params(self, locals())`` first thing in an estimator's
    ``__init__``: it stores and does nothing else, as scikit-learn requires,
    without a line per parameter.

    Examples
    --------
    >>> from sk_replearn.base import store_params
    >>> class Probe:
    ...     def __init__(self, *, lr=0.1, max_epochs=5):
    ...         store_params(self, locals())
    >>> vars(Probe(lr=0.5))
    {'lr': 0.5, 'max_epochs': 5}
    """
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


@contextlib.contextmanager
def no_autocast(device) -> Iterator[None]:
    """The caller's autocast off for the CPU and ``device`` inside the block.

    A ``transform`` computes in the precision its estimator's parameters
    say (a network's ``precision`` enters autocast again inside), not in
    that of an ``autocast`` block around the call, which would give
    bfloat16 distances and features numpy cannot read. Autocast is
    per thread: a worker thread enters this block itself.
    """
    kind = torch.device(device).type
    with contextlib.ExitStack() as stack:
        for each in {"cpu", kind} & {"cpu", "cuda", "mps", "xpu"}:
            stack.enter_context(torch.autocast(device_type=each, enabled=False))
        yield


def fit_context(*, prefer_skip_nested_validation: bool) -> Callable:
    """scikit-learn's ``_fit_context``; and a fit that raises changes nothing.

    Wraps a ``fit`` or ``partial_fit`` as scikit-learn's decorator does
    (the parameters validated first, nested validation skipped if
    preferred), outside any ``torch.inference_mode`` of the caller's (in
    which no network could train). If the method raises, the estimator's
    attributes are put back as they were before the call: a refused refit
    does not leave a fitted model that claims the refused data's width, and
    a refused first fit does not leave an estimator that looks fitted.
    (Arrays the method changed in place are not copied back: fits check
    their input before they change any.)

    Parameters
    ----------
    prefer_skip_nested_validation : bool
        As scikit-learn's: skip the validation of the parameters of the
        estimators that the method fits in its turn.

    Returns
    -------
    decorator : callable
        The decorator of a ``fit``-like method.

    Examples
    --------
    >>> from sklearn.base import BaseEstimator
    >>> from sk_replearn.base import fit_context
    >>> class Sizes(BaseEstimator):
    ...     _parameter_constraints = {}
    ...     @fit_context(prefer_skip_nested_validation=True)
    ...     def fit(self, X):
    ...         self.n_seen_ = len(X)
    ...         if not len(X):
    ...             raise ValueError("X is empty")
    ...         return self
    >>> est = Sizes().fit([1, 2, 3])
    >>> try:
    ...     est.fit([])
    ... except ValueError:
    ...     pass
    >>> est.n_seen_
    3
    """

    def decorate(fit_method: Callable) -> Callable:
        validated = _fit_context(
            prefer_skip_nested_validation=prefer_skip_nested_validation
        )(fit_method)

        @functools.wraps(fit_method)
        def fit(estimator, *args, **kwargs):
            before = dict(vars(estimator))
            try:
                # Trains under a caller's inference_mode too, as under no_grad:
                # the weights and batches made inside are ordinary tensors.
                with torch.inference_mode(False):
                    return validated(estimator, *args, **kwargs)
            except Exception:
                vars(estimator).clear()
                vars(estimator).update(before)
                raise

        return fit

    return decorate


class BaseRepresentation(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Base class of every sk_replearn transformer.

    Subclasses declare their hyperparameters in ``__init__`` (keyword-only,
    stored as given), extend ``_parameter_constraints`` and set
    ``_n_features_out`` once fitted. This class supplies the rest:
    ``_validate_X`` for input checking and shape handling,
    ``_device`` for ``device="auto"``, ``_map_batches`` for a
    transform whose memory stays flat in ``n_samples``, and the feature names
    ``<classname>0, <classname>1, ...`` used by ``set_output``.

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen during ``fit`` (the flattened width for N-D
        input).
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during ``fit``, when X was a DataFrame with
        string column names.
    input_shape_ : tuple of int
        Shape of one sample: ``input_shape`` if given, the trailing shape of
        N-D input, else ``(n_features_in_,)`` (tabular data).
    """

    _parameter_constraints: dict = {
        "input_shape": [tuple, list, None],
        "device": [str, torch.device],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    #: What integer and boolean X becomes (see :func:`float_dtypes`).
    _integers_as: type = np.float32
    #: Whether the model reads N-D samples by their layout (channels, then
    #: height and width): False for a model of flat rows, for which any
    #: reading of the axes gives the same result and no warning is due.
    _reads_layout: bool = True
    #: Whether ``fit`` trains the network that ``transform`` runs (not a
    #: network pre-trained elsewhere), for the advice of its errors.
    _trains_network: bool = True

    def save(self, path) -> None:
        """Save the fitted estimator to ``path``, as data that runs no code.

        The file holds the parameters, the fitted attributes and, for a
        neural estimator, the network's weights (and optimizer state and
        history), in a format ``torch.load(path, weights_only=True)`` reads,
        with a checksum of it all; :meth:`load` rebuilds the network from
        the parameters and loads the weights into it.
        ``callbacks`` and ``accelerator`` are saved as None (they say how a
        fit runs, not what it learned). A parameter that is code, such as an
        ``encoder`` class or a ``head`` function, cannot be saved: ``save``
        raises a TypeError. Pickling (``joblib.dump``) works too, but
        loading a pickle runs code: use it only for files you trust, and
        prefer ``save``/``load`` to exchange models.

        Parameters
        ----------
        path : str or path-like
            The file to write, conventionally ``*.pt``.

        Raises
        ------
        TypeError
            If a parameter or fitted attribute is not data.
        ValueError
            If ``set_params`` changed a parameter of what the estimator
            built (a width, a fine-tuner's ``head`` or
            ``representation__n_components``, ...) since ``fit``: set it
            back, or fit again.

        See Also
        --------
        sk_replearn.persistence.save : The same for any sk_replearn estimator.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> from sk_replearn import AutoencoderTransformer
        >>> X = np.random.default_rng(0).normal(size=(40, 6)).astype("float32")
        >>> ae = AutoencoderTransformer(n_components=2, max_epochs=1,
        ...                             random_state=0).fit(X)
        >>> path = os.path.join(tempfile.mkdtemp(), "ae.pt")
        >>> ae.save(path)
        >>> same = AutoencoderTransformer.load(path)
        >>> np.array_equal(same.transform(X), ae.transform(X))
        True
        """
        check_is_fitted(self)
        persistence.save(self, path)

    @classmethod
    def load(cls, path, *, device=None):
        """Load an estimator written by :meth:`save`.

        The file is read with ``torch.load(weights_only=True)``: it can hold
        tensors and plain data only, so loading it never runs code; a file
        holding anything else is refused with a ValueError.

        Parameters
        ----------
        path : str or path-like
            A file written by :meth:`save`.
        device : str, torch.device or None, default=None
            Device for the network (sets the ``device`` parameter), e.g.
            ``"cpu"`` for a model trained on a GPU; None keeps the saved one.

        Returns
        -------
        estimator : fitted estimator of this class
            Its outputs equal the saved estimator's.

        Raises
        ------
        ValueError
            If the file is not an sk_replearn file, holds more than data, or
            is damaged (cut off, or what it holds does not match its
            checksum).
        TypeError
            If it holds an estimator of another class.
        OSError
            If the file cannot be opened (``FileNotFoundError``, ...).

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> from sk_replearn import AutoencoderTransformer
        >>> X = np.random.default_rng(0).normal(size=(40, 6)).astype("float32")
        >>> path = os.path.join(tempfile.mkdtemp(), "ae.pt")
        >>> AutoencoderTransformer(max_epochs=1, random_state=0).fit(X).save(path)
        >>> AutoencoderTransformer.load(path, device="cpu").n_features_in_
        6
        """
        estimator = persistence.load(path, device=device)
        if not isinstance(estimator, cls):
            name = type(estimator).__name__
            raise TypeError(
                f"{os.fspath(path)!r} holds {with_article(name)}, not "
                f"{with_article(cls.__name__)}; load "
                f"it with {name}.load or sk_replearn.persistence.load."
            )
        return estimator

    def set_params(self, **params):
        """Set the parameters, as scikit-learn's ``set_params`` does.

        A nested ``<param>__<name>`` (``views__noise_std``, as a grid over
        it sets) needs ``<param>`` to be an object with parameters. Where it
        is a name or None (``views="auto"``), a ValueError says so and what
        to pass, where scikit-learn raised an AttributeError on
        ``str.set_params``.

        Parameters
        ----------
        **params : dict
            Estimator parameters, ``<param>__<name>`` for those of a
            parameter that is an object.

        Returns
        -------
        self : estimator
            The estimator.
        """
        own = self.get_params(deep=False)
        for key, value in params.items():
            name, sep, _ = key.partition("__")
            if not sep or name not in own:
                continue  # scikit-learn names an unknown parameter itself
            target = params.get(name, own[name])
            if not hasattr(target, "set_params"):
                hint = (
                    " (a views object of sk_replearn.views: make_views('auto', "
                    "input_shape) returns the one 'auto' picks)"
                    if name in ("views", "augmentation")
                    else ""
                )
                raise ValueError(
                    f"{key}={value!r} sets a parameter of {name}, but "
                    f"{name}={target!r} has no parameters to set; pass {name} "
                    f"as an object that has them{hint}, in the same call or "
                    "before."
                )
        return super().set_params(**params)

    def _validate_params(self) -> None:
        """scikit-learn's parameter validation, and no bool for a number.

        ``Interval(Integral, ...)`` and ``Interval(Real, ...)`` take
        ``True`` as 1, so ``n_components=True`` would pass validation and
        fail deep inside torch; a bool is refused wherever the constraints
        do not list booleans; before scikit-learn's checks, so that
        ``np.True_`` (which is no number to them) is told the same.
        """
        for name, constraints in self._parameter_constraints.items():
            value = getattr(self, name, None)
            if not isinstance(value, bool | np.bool_) or not isinstance(
                constraints, list
            ):
                continue
            if {"boolean", "verbose", bool} & {c for c in constraints if _hashable(c)}:
                continue
            numeric = [
                c
                for c in constraints
                if isinstance(c, Interval) and c.type in (Integral, Real)
            ]
            if numeric:
                kind = "an int" if numeric[0].type is Integral else "a float"
                raise InvalidParameterError(
                    f"The {name!r} parameter of {type(self).__name__} must be "
                    f"{kind}, not a bool; got {value!r}."
                )
        super()._validate_params()

    # -- input -----------------------------------------------------------
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

    def _output_layout(self, X2d: np.ndarray) -> np.ndarray:
        """Reshape a 2-D ``(n, n_features_in_)`` result like the fit input."""
        if getattr(self, "_nd_input", False):
            return X2d.reshape(X2d.shape[0], *self.input_shape_)
        return X2d

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Output feature names: ``<classname>0``, ``<classname>1``, ...

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored, as by scikit-learn's transformers that make new features;
            checked against ``feature_names_in_`` when given.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per column of ``transform``'s output.
        """
        check_is_fitted(self)
        return _generate_get_feature_names_out(
            self, self._transform_width(), input_features=input_features
        )

    def _transform_width(self) -> int:
        """Columns of :meth:`transform`'s output: ``_n_features_out`` here."""
        return self._n_features_out

    # -- transfer --------------------------------------------------------------
    def _transfer_encoder(self):
        """A trainable copy of the fitted encoder, for the fine-tuners.

        Returns a :class:`~sk_replearn.nn.surgery.TransferEncoder` whose
        output equals :meth:`transform`'s; every representation that has
        weights to fine-tune overrides this.
        """
        raise TypeError(
            f"{type(self).__name__} has no weights to fine-tune; use "
            "PCATransformer or a neural estimator (AutoencoderTransformer, "
            "SimCLRTransformer, MAETransformer, ...) as the representation."
        )

    # -- device and batches ------------------------------------------------
    def _device(self) -> torch.device:
        """The resolved ``device`` parameter (never stored over the user's)."""
        return resolve_device(self.device)

    def _map_batches(
        self,
        X: np.ndarray,
        fn: Callable[[torch.Tensor], torch.Tensor],
        n_out: int,
        *,
        device: torch.device | None = None,
        batch_size: int | None = None,
        dtype=np.float32,
        in_dtype: torch.dtype | None = torch.float32,
    ) -> np.ndarray:
        """Apply ``fn`` to X one batch at a time on ``device``.

        Only one batch of X lives on the device at once, and the output is
        written into a preallocated array, so memory stays flat in
        ``n_samples`` apart from the output itself. On the CPU, the memory a
        batch frees stays in glibc's heap for the next one
        (:func:`~sk_replearn._heap.kept_heap`).

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features) or torch Dataset
            Validated input, or a map-style dataset of ``(sample, target)``
            pairs (:class:`~sk_replearn.data.SampleDataset`), read in
            order by a :class:`~torch.utils.data.DataLoader`.
        fn : callable
            Maps a float32 tensor ``(B, n_features)`` on ``device`` to a
            tensor ``(B, n_out)`` (or ``(B,)`` when ``n_out`` is 0).
        n_out : int
            Output width; 0 for a 1-D output.
        in_dtype : torch.dtype or None, default=torch.float32
            dtype of the batches given to ``fn``; None keeps X's own dtype
            (float32 or float64), for computations that need float64 input.
        """
        device = self._device() if device is None else device
        batch_size = batch_size or getattr(self, "batch_size", None) or 4096
        shape = (len(X), n_out) if n_out else (len(X),)
        out = np.empty(shape, dtype=dtype)
        # Several batches on the CPU: the memory one frees serves the next.
        several = torch.device(device).type == "cpu" and len(X) > batch_size
        with kept_heap(several), torch.inference_mode(), no_autocast(device):
            workers = getattr(self, "num_workers", 0)  # those reading Datasets
            for sl, xb in eval_chunks(X, batch_size, workers):
                xb = xb.to(device, in_dtype, non_blocking=True)
                out[sl] = fn(xb).detach().to("cpu").numpy()
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
