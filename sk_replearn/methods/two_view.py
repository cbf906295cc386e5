"""What the two-view self-supervised estimators share.

:class:`_SSLTransformer` holds the parameters every SimCLR-like method has
(encoder, views, projection head sizes), the collapse check after ``fit``,
``score`` and the objective's construction; each method adds its
hyperparameters, a keyword-only ``__init__`` and ``_objective_params``.
Docstrings are completed by :func:`_fill_doc` from shared fragments, with
each estimator's own defaults.
"""

from __future__ import annotations

import inspect
import math
import textwrap
import warnings
from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from ..data import dataset_head, training_samples
from ..losses import collapse_std
from ..nn import ENCODER_NAMES
from ..objectives.two_view import TwoViewObjective
from .base import NeuralRepresentation, seeded

__all__ = ["CollapseWarning"]

#: Rows of X whose representation the collapse check looks at.
_COLLAPSE_SAMPLE = 2048
#: Seed of the views drawn by ``score``, so that it is deterministic.
_SCORE_SEED = 0


class CollapseWarning(UserWarning):
    """The learned representation has (nearly) collapsed to a point.

    Raised by the self-supervised estimators after ``fit`` when the mean
    standard deviation of the L2-normalised representation, ``collapse_std_``,
    is below ``0.1 / sqrt(D)`` (``D`` its width; spread-out outputs give
    about ``1 / sqrt(D)``, a constant output 0).
    """


class _SSLTransformer(NeuralRepresentation):
    """Base of the two-view self-supervised estimators (not used directly)."""

    _parameter_constraints: dict = {
        **NeuralRepresentation._parameter_constraints,
        # a batch of one has no negatives and no batch statistics
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "encoder": [StrOptions(set(ENCODER_NAMES)), type],
        "encoder_kwargs": [dict, None],
        "views": [StrOptions({"auto"}), callable, None],
        "projection_dim": [Interval(Integral, 1, None, closed="left")],
        "hidden_dim": [Interval(Integral, 1, None, closed="left"), None],
    }

    #: The objective the estimator trains; set by each subclass.
    _objective: type[TwoViewObjective]
    #: ``collapse_std_`` below ``collapse_threshold / sqrt(D)`` warns.
    collapse_threshold = 0.1

    @_fit_context(prefer_skip_nested_validation=True)
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
        """
        module = self._module()
        X = self._validate_X(X, reset=False)
        if X.shape[0] < 2:
            raise ValueError(
                f"{type(self).__name__}.score compares samples with each other "
                f"and needs at least 2; got {X.shape[0]}."
            )
        X_t = training_samples(X, self.input_shape_)
        device = next(module.parameters()).device
        # array_split gives chunks of >= batch_size >= 2 rows: none is alone.
        chunks = np.array_split(
            np.arange(len(X_t)), max(len(X_t) // self.batch_size, 1)
        )
        total = 0.0
        with seeded(_SCORE_SEED, device), torch.inference_mode():
            for idx in chunks:
                xb = X_t[torch.from_numpy(idx)].to(device)  # (b, *input_shape)
                total += float(module.loss(module(xb), xb)) * len(idx)
        return -total / len(X_t)

    @property
    def _n_features_out(self) -> int:
        return self.net_.module_.backbone.out_features

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
        Z = torch.from_numpy(Z)
        self.collapse_std_ = float(collapse_std(Z))
        bound = self.collapse_threshold / math.sqrt(Z.shape[1])
        if self.collapse_std_ < bound:
            warnings.warn(
                f"{type(self).__name__} learned a collapsed representation: the "
                f"std of its L2-normalised outputs is {self.collapse_std_:.3g}, "
                f"below {bound:.3g} = {self.collapse_threshold} / sqrt({Z.shape[1]})"
                " (spread-out outputs give about 1 / sqrt(D)). Try other views, a "
                "lower lr, or more epochs.",
                CollapseWarning,
                stacklevel=4,  # the caller of fit (through _fit_context)
            )


# -- docstrings ----------------------------------------------------------------
_COMMON_PARAMS = """\
encoder : {{"auto", "mlp", "cnn", "resnet", "vit"}} or nn.Module class, \
default={encoder}
    The encoder network, whose output is the representation. "auto" picks
    an MLP for tabular data, a CNN for images and a small ResNet for 1-D
    signals (see ``input_shape``), which on MNIST-1D learns far better
    features than the plain CNN. A class is called as
    ``encoder(input_shape=..., **encoder_kwargs)``.
encoder_kwargs : dict, default={encoder_kwargs}
    Keyword arguments of the encoder, e.g. ``{{"channels": (32, 64)}}`` for
    "cnn"; None uses its defaults.
views : "auto", views object or None, default={views}
    The random augmentation that makes the two views of a sample, applied
    to the standardised batch. "auto" picks
    :class:`~sk_replearn.views.ImageViews`,
    :class:`~sk_replearn.views.SequenceViews` or
    :class:`~sk_replearn.views.TabularViews` by ``input_shape``, with their
    defaults; pass one of these to set its parameters (they can be
    grid-searched as ``views__<param>``), or any callable mapping a batch to
    a batch of the same shape. None uses the sample itself (no
    augmentation: nothing to learn, for tests only).
projection_dim : int, default={projection_dim}
    Output width of the projection head, where the loss is computed.
hidden_dim : int or None, default={hidden_dim}
    Hidden width of the projection head (and predictor); None uses
    {hidden_default}."""

_ENGINE_PARAMS = """\
input_shape : tuple of int, default={input_shape}
    Shape of one sample when X is 2-D, e.g. ``(1, 8, 8)`` for 8×8 images or
    ``(1, 40)`` for signals; None means tabular unless X itself is N-D
    ``(n, C, H, W)`` or ``(n, C, L)``.
max_epochs : int, default={max_epochs}
    Passes over the training data.
batch_size : int, default={batch_size}
    Samples per optimisation step (>= 2); larger batches give more
    negatives and steadier batch statistics.
lr : float, default={lr}
    Learning rate.
optimizer : {{"adamw", "adam", "sgd"}} or torch optimizer class, \
default={optimizer}
    The optimiser.
weight_decay : float, default={weight_decay}
    Decoupled weight decay (L2 penalty for "adam"/"sgd").
lr_schedule : {{"cosine"}} or None, default={lr_schedule}
    Cosine decay of the learning rate to zero over training, after
    ``warmup_epochs`` of linear warm-up; None keeps ``lr`` constant.
warmup_epochs : int, default={warmup_epochs}
    Epochs of linear learning-rate warm-up.
callbacks : list of skorch callbacks, default={callbacks}
    Extra callbacks (instances or ``(name, callback)`` tuples), appended to
    the defaults.
early_stopping : bool, default={early_stopping}
    Hold out ``validation_fraction`` of the data and stop when its loss has
    not improved for ``n_iter_no_change`` epochs; the best weights are
    restored.
validation_fraction : float, default={validation_fraction}
    Share of the data held out when ``early_stopping=True``.
n_iter_no_change : int, default={n_iter_no_change}
    Patience of early stopping, in epochs.
device : str or torch.device, default={device}
    "auto" trains on CUDA when present, else on the CPU; or "cpu", "cuda",
    "cuda:1", "mps".
precision : {{"32", "bf16", "16"}}, default={precision}
    Float precision of the forward pass: "bf16" autocasts to bfloat16 (CPU
    or CUDA), "16" uses float16 with a gradient scaler (CUDA only).
compile : bool, default={compile}
    Compile the module with :func:`torch.compile`: for large models on
    a GPU. On a CPU the small default networks gain nothing (12
    epochs of an MAE on MNIST-1D took 161 s compiled, 58 s not).
verbose : int, default={verbose}
    0 is silent; 1 prints a progress bar and one line per epoch.
random_state : int, RandomState instance or None, default={random_state}
    Seeds weight initialisation, shuffling and the views; an int makes CPU
    training bit-for-bit repeatable.
warm_start : bool, default={warm_start}
    When True, a second ``fit`` continues training the same network (the
    momentum schedule, if any, starts again).
checkpoint_dir : str, path-like or None, default=None
    Directory where the training state (weights, optimiser, history) is
    saved after every epoch. A ``fit`` that finds a checkpoint there
    resumes after its last finished epoch, so a killed run loses at most
    one epoch. None saves nothing.
accelerator : accelerate.Accelerator or None, default=None
    Train through Hugging Face Accelerate (several GPUs or machines,
    started with ``accelerate launch``; see the user guide). None trains
    in this process on ``device``.
    Data-parallel: ``batch_size`` is per process, ``precision`` must stay
    "32" (set ``mixed_precision`` on the accelerator) and ``device`` is the
    accelerator's. An estimator with an accelerator cannot be pickled: use
    ``save``/``load``. See :mod:`sk_replearn.distributed`."""

_ATTRIBUTES = """\
net_ : sk_replearn.training.RepresentationNet
    The trained skorch net; ``net_.module_`` is the objective, holding the
    encoder ``backbone`` and the heads.
history_ : skorch.History
    Per-epoch (and per-batch) training record.
loss_curve_ : list of float
    Training loss at each epoch.
n_epochs_ : int
    Epochs run (fewer than ``max_epochs`` after early stopping).
collapse_std_ : float
    Mean over dimensions of the std of the L2-normalised representation of
    (up to 2048 rows of) the training data: about ``1 / sqrt(D)`` when
    spread out, 0 when collapsed; see :class:`CollapseWarning`.
input_shape_ : tuple of int
    Shape of one sample.
n_features_in_ : int
    Number of features seen during fit.
feature_names_in_ : ndarray of shape (n_features_in_,)
    Names of the features seen during fit, for DataFrames with string column
    names."""


def _show(value) -> str:
    """A default as numpydoc writes it: strings in double quotes."""
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _fill_doc(hidden_default: str):
    """Class decorator: put the shared Parameters and Attributes in the docstring.

    The docstring holds the markers ``{common_params}``, ``{engine_params}``
    and ``{attributes}`` on lines of their own; they are replaced by the
    fragments above, indented like the marker, with the defaults read from
    the class's ``__init__``.
    """

    def decorate(cls):
        defaults = {
            name: p.default
            for name, p in inspect.signature(cls.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty
        }
        fields = {
            **{k: _show(v) for k, v in defaults.items()},
            "hidden_default": hidden_default,
        }
        doc = cls.__doc__
        for marker, text in [
            ("{common_params}", _COMMON_PARAMS),
            ("{engine_params}", _ENGINE_PARAMS),
            ("{attributes}", _ATTRIBUTES),
        ]:
            line = next(ln for ln in doc.splitlines() if ln.strip() == marker)
            indent = line[: len(line) - len(line.lstrip())]
            doc = doc.replace(line, textwrap.indent(text.format(**fields), indent))
        cls.__doc__ = doc
        return cls

    return decorate
