"""Batched, on-device data augmentations ("views") for self-supervised learning.

One family per modality: :class:`ImageViews` for ``(B, C, H, W)`` images,
:class:`SequenceViews` for ``(B, C, L)`` signals and :class:`TabularViews` for
``(B, d)`` rows. Each is a scikit-learn style object whose keyword parameters
are stored as given (so ``clone``, ``get_params`` and ``GridSearchCV`` over
``rep__views__crop_scale`` work) and whose ``__call__`` augments a whole batch
on the batch's device. All randomness is drawn as ``(B, ...)`` tensors from
torch's global generator, so a batch costs a handful of tensor ops, never a
per-sample Python loop, and ``torch.manual_seed`` makes the result repeatable.

Views receive *standardised* inputs (the objectives shift and scale the data to
roughly zero mean and unit variance first), so every intensity change is stated
in standardised units rather than assuming pixels in ``[0, 1]``; ``0`` is the
data mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ._base import _Views
from .image import ImageViews
from .sequence import SequenceViews
from .tabular import TabularViews

__all__ = ["ImageViews", "SequenceViews", "TabularViews", "make_views"]

_FAMILIES = {3: ImageViews, 2: SequenceViews, 1: TabularViews}
#: What ``views="auto"`` gives single-channel images: no crop, but the small
#: warps of handwriting (Simard et al. 2003). On scikit-learn's 8x8 digits, a
#: LogisticRegression() on SimCLR's representation, trained on 2 labels a
#: class, scored 0.84 with ImageViews() and 0.87 with these
#: (benchmarks/bench_labels.py).
_SINGLE_CHANNEL = {
    "crop_scale": None,
    "rotation": 15.0,
    "shear": 0.2,
    "zoom": (0.8, 1.2),
    "translate": 0.15,
    "elastic": 0.04,
}


def _identity(x: torch.Tensor) -> torch.Tensor:
    """No augmentation: the batch itself."""
    return x


def make_views(
    views: str | Callable[[torch.Tensor], torch.Tensor] | None,
    input_shape: Sequence[int],
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Turn an estimator's ``views`` parameter into a batch augmentation.

    Parameters
    ----------
    views : "auto", callable or None
        ``"auto"`` gives the family that fits ``input_shape`` with its
        defaults: :class:`ImageViews` for ``(C, H, W)``, :class:`SequenceViews`
        for ``(C, L)``, :class:`TabularViews` for ``(d,)``. Single-channel
        images ``(1, H, W)`` (handwriting, scans, microscopy) get
        ``ImageViews(crop_scale=None, rotation=15, shear=0.2, zoom=(0.8,
        1.2), translate=0.15, elastic=0.04)`` instead: a random resized crop
        of an 8x8 digit keeps a few pixels of one stroke, while small
        rotations, slants, shifts and elastic warps change the writer, not
        the digit. A views object (or
        any callable mapping a batch to a batch of the same shape) is returned
        as is, after checking its parameters and that it fits
        ``input_shape``. ``None`` gives the identity: no augmentation.
    input_shape : tuple of int
        Shape of one sample, without the batch axis.

    Returns
    -------
    callable
        Maps a batch ``(B, *input_shape)`` to an augmented batch of the same
        shape, dtype and device.

    Raises
    ------
    ValueError
        If ``views`` is an unknown string or not callable, if its parameters
        are invalid, or if its family does not fit ``input_shape``; if a
        callable changes the shape or dtype of a batch of 2 samples.
    TypeError
        If ``views`` is a views class rather than an instance.

    Examples
    --------
    >>> from sk_replearn.views import ImageViews, make_views
    >>> make_views("auto", (1, 40))
    SequenceViews()
    >>> make_views("auto", (1, 8, 8)).elastic
    0.04
    >>> make_views(ImageViews(flip_prob=0.5), (3, 32, 32))
    ImageViews(flip_prob=0.5)
    >>> make_views(ImageViews(), (64,))
    Traceback (most recent call last):
    ...
    ValueError: views=ImageViews() augments samples of shape (C, H, W) but ...
    """
    input_shape = tuple(int(s) for s in input_shape)
    if isinstance(views, str):
        if views != "auto":
            raise ValueError(
                f"views={views!r} is not a valid choice; use 'auto', None, or a "
                "views object such as ImageViews(), SequenceViews() or "
                "TabularViews()."
            )
        if len(input_shape) not in _FAMILIES:
            raise ValueError(
                f"views='auto' has no family for input_shape={input_shape}; "
                "expected (d,), (C, L) or (C, H, W)."
            )
        if len(input_shape) == 3 and input_shape[0] == 1:
            return ImageViews(**_SINGLE_CHANNEL)
        return _FAMILIES[len(input_shape)]()
    if views is None:
        return _identity
    if isinstance(views, type) and issubclass(views, _Views | torch.nn.Module):
        raise TypeError(
            f"views={views.__name__} is a class; pass an instance of it, such as "
            f"views={views.__name__}()."
        )
    if not callable(views):
        raise ValueError(
            f"views={views!r} is not a valid choice; use 'auto', None, or a "
            "callable views object such as ImageViews()."
        )
    if isinstance(views, _Views):
        views._validate_params()
        views._resolved_params()
        views._check_input_shape(input_shape)
    else:
        _check_views_shape(views, input_shape)
    return views


def _check_views_shape(views: Callable, input_shape: tuple[int, ...]) -> None:
    """A user's views callable keeps a batch's shape and dtype (tried on 2).

    It must also leave the batch it is given as it was: the methods call it
    twice on one batch for a sample's two views, which a callable that adds
    its noise in place (``x.add_(noise)``) would make one and the same.
    """
    size = 2 * math.prod(input_shape)
    batch = torch.linspace(-1.0, 1.0, size).reshape(2, *input_shape)
    given = batch.clone()
    with torch.random.fork_rng(devices=[]):  # the probe draws nothing of the fit's
        try:
            out = views(batch)
        except Exception:  # e.g. a callable made for CUDA tensors: training calls
            return  # it on the device, where its own error is reported
    if not torch.equal(batch, given):
        raise ValueError(
            f"views={views!r} changed the batch it was given in place. The two "
            "views of a sample are two calls on the same batch, which would "
            "then be one and the same view: augment out of place, e.g. "
            "x + noise rather than x.add_(noise), or x = x.clone() first."
        )
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if shape != tuple(batch.shape):
        raise ValueError(
            f"views={views!r} must map (batch, *input_shape) to a batch of the "
            f"same shape, {tuple(batch.shape)} for 2 samples of shape "
            f"{input_shape}; it returned {shape}."
        )
    if out.dtype != batch.dtype:
        raise ValueError(
            f"views={views!r} must return a batch of the dtype it is given "
            f"({batch.dtype}); it returned {out.dtype}. Cast its result back, "
            "e.g. with .to(batch.dtype)."
        )
