"""The scikit-learn face shared by every sk_replearn estimator.

Everything an estimator has in common with the others lives here, once:
resolving ``device="auto"``, seeding from ``random_state``, validating the
input (2-D ``(n, d)`` with an optional ``input_shape``, or N-D
``(n, C, H, W)`` / ``(n, C, L)``), moving data to the device one batch at a
time, and the feature names that make ``set_output(transform="pandas")``
work. The input checks (``_validate_X``) are the mixin in ``_validation.py``,
``save`` and ``load`` the one in ``persistence/_mixin.py``; the device is
resolved in ``_device.py``, the seeds in ``_seeding.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._param_validation import Interval, InvalidParameterError
from sklearn.utils.validation import _generate_get_feature_names_out, check_is_fitted

from ._device import no_autocast, resolve_device
from ._heap import kept_heap
from ._seeding import seed_from_random_state
from ._util import is_fitted
from ._validation import InputChecksMixin, _hashable, flatten_samples
from .data import eval_chunks
from .persistence._mixin import SaveLoadMixin

__all__ = [
    "BaseRepresentation",
    "fit_context",
    "flatten_samples",
    "is_fitted",
    "resolve_device",
    "seed_from_random_state",
    "store_params",
]


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
    SaveLoadMixin,
    InputChecksMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    BaseEstimator,
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
