"""What the two-view self-supervised estimators share.

:class:`_TwoViewTransformer` holds the parameters every SimCLR-like method
has (``n_components``, encoder, views, projection head sizes), the collapse
check after ``fit``, ``score`` and the objective's construction; each method
adds its hyperparameters, its ``__init__`` and ``_objective_params``.
Their docstrings are filled from the shared entries of
:mod:`sk_replearn._docstrings`, with each estimator's own defaults.
"""

from __future__ import annotations

import math
import textwrap
from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from .._warn import warn_user
from ..base import fit_context
from ..data import SampleDataset, dataset_head, input_rows, training_samples
from ..losses import collapse_std
from ..nn import ENCODER_NAMES
from ..objectives.two_view import TwoViewObjective
from ..training import NonFiniteLossError
from .base import NeuralRepresentation, seeded

__all__ = ["IN_BATCH_NEGATIVES_DOC", "LOCAL_VIEWS", "TWO_VIEW_DOCS", "CollapseWarning"]

#: Constraint of ``n_local_views`` (multi-crop), for the methods that use it.
LOCAL_VIEWS = [StrOptions({"auto"}), Interval(Integral, 0, None, closed="left")]

#: ``max_epochs="auto"``: the epochs that show the encoder about this many
#: samples (a class may set its own ``_auto_samples_seen``), within
#: ``_AUTO_EPOCHS_RANGE``.
_AUTO_SAMPLES_SEEN = 120_000
#: The fewest and most epochs ``max_epochs="auto"`` gives.
_AUTO_EPOCHS_RANGE = (10, 60)


def _auto_epochs(n_samples: int, samples_seen: int = _AUTO_SAMPLES_SEEN) -> int:
    """What ``max_epochs="auto"`` gives a fit on ``n_samples``.

    ``ceil(samples_seen / n_samples)`` epochs, within ``_AUTO_EPOCHS_RANGE``:
    with the default 120,000, 60 on up to 2,000 samples (1,347 digits), 30
    on MNIST-1D's 4,000, 10 from 12,000 on.
    """
    low, high = _AUTO_EPOCHS_RANGE
    return min(max(math.ceil(samples_seen / n_samples), low), high)


def _auto_epochs_doc(
    samples_seen: int = _AUTO_SAMPLES_SEEN, signal_samples_seen: int | None = None
) -> tuple[str, str]:
    """The ``max_epochs`` entry of an estimator whose "auto" shows ``samples_seen``.

    ``signal_samples_seen``: the number for 1-D signals, where it differs.
    """
    low, high = _AUTO_EPOCHS_RANGE
    signals = signal_samples_seen or samples_seen
    if signals == samples_seen:
        shown = f"about {samples_seen:,} samples, ``ceil({samples_seen} / n_samples)``"
        short = f"{low} from {math.ceil(samples_seen / low):,} samples on"
    else:
        shown = (
            f"about {samples_seen:,} images or tables and {signals:,} 1-D "
            "signals, ``ceil(samples / n_samples)``"
        )
        short = (
            f"{low} from {math.ceil(samples_seen / low):,} images or "
            f"{math.ceil(signals / low):,} signals on"
        )
    text = (
        f'Passes over the training data. "auto": enough to show the encoder {shown} '
        f"within {low} to {high}: {_auto_epochs(1347, samples_seen)} epochs on "
        f"the 1,347 digits, {_auto_epochs(4000, signals)} on MNIST-1D's "
        f"4,000 signals, {short}. ``max_epochs_`` holds the number a fit used."
    )
    return 'int or "auto"', textwrap.fill(text, width=72)


#: ``batch_size`` of the methods whose negatives are the batch's other samples.
IN_BATCH_NEGATIVES_DOC = """\
Samples per optimisation step (>= 2); larger batches give more negatives
(each sample's other views in the batch) and steadier batch statistics."""

#: What the two-view methods say differently of a shared parameter.
TWO_VIEW_DOCS = {
    "batch_size": """\
Samples per optimisation step (>= 2); larger batches give steadier batch
statistics.""",
    "max_epochs": _auto_epochs_doc(),
}

#: Rows of X whose representation the collapse check looks at.
_COLLAPSE_SAMPLE = 2048
#: Seed of the views drawn by ``score``, so that it is deterministic.
_SCORE_SEED = 0


class CollapseWarning(UserWarning):
    """The learned representation has (nearly) collapsed to a point.

    Raised by the self-supervised estimators after ``fit`` when the mean
    standard deviation of the L2-normalised representation, ``collapse_std_``,
    is below ``0.1 / sqrt(D)`` (``D`` its width; spread-out outputs give
    about ``1 / sqrt(D)``, a constant output 0). At ``D = 1`` the normalised
    output is the sign alone, so there the warning asks for a constant
    output itself.
    """


class _TwoViewTransformer(NeuralRepresentation):
    """Base of the two-view self-supervised estimators (not used directly)."""

    _parameter_constraints: dict = {
        **NeuralRepresentation._parameter_constraints,
        # a batch of one has no negatives and no batch statistics
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "encoder": [StrOptions(set(ENCODER_NAMES)), callable],
        "encoder_kwargs": [dict, None],
        "views": [StrOptions({"auto"}), callable, None],
        "projection_dim": [Interval(Integral, 1, None, closed="left")],
        "hidden_dim": [Interval(Integral, 1, None, closed="left"), None],
        "max_epochs": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
    }

    #: The objective the estimator trains; set by each subclass.
    _objective: type[TwoViewObjective]
    #: ``collapse_std_`` below ``collapse_threshold / sqrt(D)`` warns.
    collapse_threshold = 0.1
    #: Samples shown to the encoder by ``max_epochs="auto"`` (see
    #: :func:`_auto_epochs`); a method that learns faster or slower sets its own.
    _auto_samples_seen = _AUTO_SAMPLES_SEEN
    #: The same for 1-D signals where a method's differs (None: the same).
    _auto_signal_samples_seen: int | None = None

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the encoder on two random views of every sample of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Training samples.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.

        Warns
        -----
        CollapseWarning
            If the learned representation of (a sample of) X has collapsed.
        """
        self._fit(X)
        self.n_components_ = self._n_features_out
        self._check_collapse(X)
        return self

    def score(self, X, y=None) -> float:
        """Negative mean training objective on X (higher is better).

        The views are drawn from a fixed seed, so the score of a fitted
        estimator on the same X is always the same; momentum networks,
        queues and centers are left untouched.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            At least 2 samples.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Minus the objective's loss, averaged over batches of about
            ``batch_size`` samples (weighted by their size).

        Notes
        -----
        Scores compare fits of the same loss only: its hyperparameters
        (``temperature``, the loss weights, ``batch_size``, the widths of
        the heads) change its scale, so a grid search over them on this
        score picks the setting with the smallest loss, not the best
        representation (on 400 of the digits, VICReg's
        ``invariance_weight`` 5 by this score, 100 by a linear probe in
        the pipeline). Choose those by a downstream
        score: search a pipeline that ends in the task's model.
        """
        module = self._module()
        rows = input_rows(self, X, reset=False)  # an array, or a Dataset
        if len(rows) < 2:
            raise ValueError(
                f"{type(self).__name__}.score compares samples with each other "
                f"and needs at least 2; got {len(rows)}."
            )
        X_t = training_samples(rows, self.input_shape_)
        device = next(module.parameters()).device
        # array_split gives chunks of >= batch_size >= 2 rows: none is alone.
        chunks = np.array_split(
            np.arange(len(X_t)), max(len(X_t) // self.batch_size, 1)
        )
        total = 0.0
        with seeded(_SCORE_SEED, device), torch.inference_mode():
            for idx in chunks:
                xb = _rows_of(X_t, idx).to(device)  # (b, *input_shape)
                total += float(module.loss(module(xb), xb)) * len(idx)
        if not math.isfinite(total):
            raise ValueError(
                f"{type(self).__name__}.score is not finite: X holds NaN or "
                "infinite values (a Dataset's items are not checked ahead), or "
                "its values are too large; remove or impute them."
            )
        return -total / len(X_t)

    @property
    def _n_features_out(self) -> int:
        return self.net_.module_.backbone.out_features

    #: What ``n_local_views="auto"`` gives on images (multi-crop).
    _auto_local_views = 2

    def _n_local_views(self) -> int:
        """``n_local_views`` resolved.

        "auto" gives local views to images when the views can make them and
        the encoder is one of the package's convolutional ones, which end in
        global pooling and so take the smaller crops. 1-D signals get none:
        on MNIST-1D, SwAV and DINO probed higher in less time without them
        and with more epochs (the user guide's contrastive page).
        """
        if self.n_local_views != "auto":
            return int(self.n_local_views)
        if self._is_signal():
            return 0
        if isinstance(self.views, str):  # "auto": the family of the input
            crops = len(self.input_shape_) == 3
        else:
            crops = callable(getattr(self.views, "local", None))
        pooled = self.encoder in ("auto", "cnn", "resnet")
        return self._auto_local_views if crops and pooled else 0

    def _resolve_epochs(self, n_samples: int) -> None:
        samples_seen = self._auto_samples_seen
        if self._is_signal() and self._auto_signal_samples_seen is not None:
            samples_seen = self._auto_signal_samples_seen
        self.max_epochs_ = (
            _auto_epochs(n_samples, samples_seen)
            if self.max_epochs == "auto"
            else self.max_epochs
        )

    def _steps_per_epoch(self) -> int:
        """Optimiser steps of one epoch of this fit (schedules in epochs)."""
        return max(self._total_steps // max(self._epochs(), 1), 1)

    # -- private helpers -----------------------------------------------------
    def _objective_params(self) -> dict:  # pragma: no cover - abstract
        """The method's own hyperparameters, as keyword arguments."""
        raise NotImplementedError

    def _build_objective(self) -> TwoViewObjective:
        views = (
            clone(self.views) if isinstance(self.views, BaseEstimator) else self.views
        )
        return self._objective(
            input_shape=self.input_shape_,
            encoder=self.encoder,
            encoder_kwargs=self.encoder_kwargs,
            views=views,
            total_steps=self._total_steps,
            n_components=self.n_components,
            projection_dim=self.projection_dim,
            hidden_dim=self.hidden_dim,
            **self._objective_params(),
        )

    def _check_collapse(self, X) -> None:
        """Set ``collapse_std_`` on a sample of X and warn if it is tiny."""
        if isinstance(X, torch.utils.data.Dataset):  # its first samples
            X = dataset_head(X, _COLLAPSE_SAMPLE)
        X = self._validate_X(X, reset=False)  # (n, n_features_in_)
        if X.shape[0] > _COLLAPSE_SAMPLE:
            rows = check_random_state(0).choice(X.shape[0], _COLLAPSE_SAMPLE, False)
            X = X[np.sort(rows)]
        module, shape = self._module(), tuple(self.input_shape_)
        Z = self._map_batches(
            X,
            lambda xb: module.encode(xb.view(-1, *shape)).float(),
            self._n_features_out,
            device=next(module.parameters()).device,
        )  # (m, D)
        if not np.isfinite(Z).all():
            raise NonFiniteLossError(
                f"{type(self).__name__} finished training, but its encoder now "
                "maps training samples to NaN or infinite values: the weights "
                f"grew too large. Lower lr (lr={self.lr}) or add warm-up "
                "(warmup_epochs>0)."
            )
        Z = torch.from_numpy(Z)
        self.collapse_std_ = float(collapse_std(Z))
        bound = self.collapse_threshold / math.sqrt(Z.shape[1])
        what = (
            f"the std of its L2-normalised outputs is {self.collapse_std_:.3g}, "
            f"below {bound:.3g} = {self.collapse_threshold} / sqrt({Z.shape[1]}) "
            "(spread-out outputs give about 1 / sqrt(D))"
        )
        collapsed = self.collapse_std_ < bound
        if Z.shape[1] == 1:  # normalised, one value is its sign: ask for more
            collapsed = float(Z.std()) <= 1e-6 * max(float(Z.abs().mean()), 1e-30)
            what = "its one output is the same for every sample"
        if collapsed:
            rows = np.asarray(X, dtype=np.float32)  # as the network reads them
            cure = (
                "Every sample of X is the same (in float32, as the network "
                "reads them): there is nothing to tell apart."
                if (rows == rows[:1]).all()
                else "Try other views, a lower lr, or more epochs."
            )
            warn_user(
                f"{type(self).__name__} learned a collapsed representation: "
                f"{what}. {cure}",
                CollapseWarning,
            )


def _rows_of(X_t, idx: np.ndarray) -> torch.Tensor:
    """The samples ``idx`` of a tensor or a Dataset."""
    if isinstance(X_t, SampleDataset):  # read item by item, in order
        return torch.stack([X_t[int(i)][0] for i in idx])
    return X_t[torch.from_numpy(idx)]
