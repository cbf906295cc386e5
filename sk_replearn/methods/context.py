"""ContextEncoderTransformer: learn features by filling in hidden regions."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._docstrings import fill_doc
from .._seeding import seed_from_random_state
from .._validation import check_flag
from ..base import fit_context, store_params
from ..nn.build import DECODER_NAMES
from ..objectives.context import (
    MASKS,
    ContextEncoderObjective,
    center_extent,
    resolve_block_size,
)
from ..objectives.masked import KeyedNoise
from .base import NeuralRepresentation

__all__ = ["ContextEncoderTransformer"]

#: Seed of the masks drawn by :meth:`ContextEncoderTransformer.score`.
_SCORE_SEED = 0


@fill_doc(
    docs={
        "net_": """\
The trained skorch net; ``net_.module_`` is the objective holding the
encoder (``backbone`` + ``bottleneck``) and the ``decoder``.""",
        "loss_curve_": "Training loss (squared error on the hidden values, in "
        "standardised units) at each epoch.",
    }
)
class ContextEncoderTransformer(NeuralRepresentation):
    """Context encoder representation: learn features by inpainting [1]_.

    In training, a region of every sample is hidden (set to the mean): the
    central block, random blocks or random regions of an image, segments of
    a 1-D signal. A convolutional encoder reads the rest, the *context*,
    into a code of ``n_components`` values, and a decoder of transposed
    convolutions paints the whole sample back; the loss is the mean squared
    error on the hidden region (the paper's reconstruction loss), plus, with
    ``context_weight > 0``, a lightly weighted error on the context. To fill
    a hole plausibly the encoder has to know what the samples look like.

    :meth:`transform` encodes the full, unmasked input: an
    ``(n_samples, n_components)`` representation.
    :meth:`reconstruct` hides the estimator's seeded regions and returns the
    filled-in samples, for pictures.

    The paper adds an adversarial loss (a discriminator judging the fills)
    to make the fills sharp. It is not implemented: a GAN term needs its own
    optimiser and schedule, is unstable on small data, and sharper fills
    are not what a representation is judged by; the fills here are the
    (blurry) least-squares predictions.

    Parameters
    ----------
    n_components : int, default=256
        Width of the code between encoder and decoder, the dimension of the
        representation.
    mask : {"center", "blocks", "regions"}, default="regions"
        The region hidden in training. ``"center"``: the central block
        (central segment of a signal), the same for every sample.
        ``"blocks"``: random, possibly overlapping blocks of side
        ``block_size`` until at least ``mask_ratio`` is hidden.
        ``"regions"``: random regions of irregular shape and scale
        ``block_size`` (smooth random noise above its quantile; the paper
        takes the shapes from segmentation masks), hiding exactly
        ``mask_ratio``. On a table (no ``input_shape``) features have no
        neighbours: every kind hides a random ``mask_ratio`` of each row's
        features, and the encoder and decoder are MLPs. Random regions are
        the paper's choice for feature learning; on MNIST (4,000 digits,
        10 epochs, a quarter hidden) a linear probe scored 0.945 with
        them, 0.946 with blocks and 0.935 with the central block.
    mask_ratio : float, default=0.4
        Fraction of each sample hidden, in (0, 1): the central block's area
        (0.25 is the paper's block of half the side), or the area of the
        blocks or regions. At least one value is hidden, and one stays
        visible except under overlapping blocks at a ratio close to 1. On
        MNIST (4,000 digits, 10 epochs, random regions) a linear probe
        scored 0.945 at 0.25, 0.950 at 0.4 and 0.952 at 0.5.
    block_size : int or "auto", default="auto"
        Side of the random blocks (length of random segments), and the
        scale of the random regions; must be smaller than every spatial
        size. ``"auto"`` is a quarter of the smallest one (7 on 28×28
        images). Ignored by ``"center"`` and on tables.
    context_weight : float, default=0.0
        Weight of the squared error on the visible values relative to the
        hidden ones; 0 trains on the hidden region alone.
    {params encoder..decoder_kwargs}
    {params input_shape..accelerator}

    Attributes
    ----------
    {attributes net_ n_components_ training input}
    block_size_ : int
        The resolved ``block_size`` (``"auto"``'s value for ``"center"``,
        which draws no blocks).

    See Also
    --------
    MAETransformer : Hide most tokens; a transformer predicts them.
    AutoencoderTransformer : Reconstruct the whole, unhidden input.

    References
    ----------
    .. [1] D. Pathak, P. Krähenbühl, J. Donahue, T. Darrell and A. A. Efros.
       "Context Encoders: Feature Learning by Inpainting." CVPR 2016.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_replearn import ContextEncoderTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> ce = ContextEncoderTransformer(16, mask="center", mask_ratio=0.25,
    ...                                input_shape=(1, 8, 8), max_epochs=2,
    ...                                random_state=0)
    >>> ce.fit_transform(X[:200]).shape
    (200, 16)
    >>> filled, mask = ce.reconstruct(X[:3], return_mask=True)
    >>> filled.shape, float(mask.mean())
    ((3, 64), 0.25)
    """

    _parameter_constraints: dict = {
        **NeuralRepresentation._parameter_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "mask": [StrOptions(set(MASKS))],
        "mask_ratio": [Interval(Real, 0, 1, closed="neither")],
        "block_size": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "context_weight": [Interval(Real, 0, None, closed="left")],
        "encoder": [StrOptions({"auto", "mlp", "cnn", "resnet", "vit"}), callable],
        "encoder_kwargs": [dict, None],
        "decoder": [StrOptions(set(DECODER_NAMES)), callable],
        "decoder_kwargs": [dict, None],
    }

    def __init__(
        self,
        n_components: int = 256,
        *,
        mask: str = "regions",
        mask_ratio: float = 0.4,
        block_size: int | str = "auto",
        context_weight: float = 0.0,
        encoder="auto",
        encoder_kwargs: dict | None = None,
        decoder="auto",
        decoder_kwargs: dict | None = None,
        input_shape: tuple[int, ...] | None = None,
        max_epochs: int = 20,
        batch_size: int = 128,
        num_workers: int = 0,
        lr: float = 3e-3,
        optimizer="adamw",
        weight_decay: float = 1e-4,
        lr_schedule: str | None = "cosine",
        warmup_epochs: int = 0,
        callbacks: list | None = None,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        device="auto",
        precision: str = "32",
        compile: bool = False,
        verbose: int = 0,
        random_state=None,
        warm_start: bool = False,
        checkpoint_dir=None,
        transform_layer: int = -1,
        accelerator=None,
    ) -> None:
        store_params(self, locals())

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None) -> ContextEncoderTransformer:
        """Train the context encoder on X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Training samples.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : ContextEncoderTransformer
            The fitted estimator.

        Raises
        ------
        ValueError
            For a ``block_size`` not smaller than the samples, a
            ``mask_ratio`` whose central block covers the whole sample, a
            table of one feature, or an ``input_shape`` that does not match X.
        """
        self._fit(X)
        self.block_size_ = self._module().block_size
        self.n_components_ = self.n_components
        return self

    def reconstruct(self, X, *, return_mask: bool = False):
        """Hide regions of X and fill them in with the decoder.

        The regions are drawn as in training, from ``random_state`` and
        each sample's own values (so an int gives a sample the same regions
        at every call, whatever the other rows of X; None draws new ones).
        For pictures like the paper's: ``X`` with the mask's values blanked
        is the input, ``filled`` the fill, ``X`` the original.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Samples.
        return_mask : bool, default=False
            Also return the mask.

        Returns
        -------
        filled : ndarray of the shape of X, dtype float32
            X on the visible values, the decoder's prediction (in X's units)
            on the hidden ones.
        mask : ndarray of the shape of X, dtype float32
            1 on the hidden values, 0 on the visible ones; only with
            ``return_mask=True``.
        """
        check_is_fitted(self, "net_")
        check_flag(return_mask, "return_mask")
        generator = KeyedNoise(seed_from_random_state(self.random_state))
        n_out = self.n_features_in_
        both = self._apply(
            X,
            lambda m, xb: torch.cat([t.flatten(1) for t in m.fill(xb, generator)], 1),
            2 * n_out,
        )
        shape = self._layout_of(X)
        filled, mask = both[:, :n_out].reshape(shape), both[:, n_out:].reshape(shape)
        return (filled, mask) if return_mask else filled

    def score(self, X, y=None) -> float:
        """Negative mean squared error of the fills (higher is better).

        The regions are drawn from a fixed seed and each sample's own values,
        so a sample is masked alike whatever the other rows of X and their
        order: a model's score on the same samples is always the same.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Samples.
        y : None
            Ignored.

        Returns
        -------
        score : float
            ``-mean((X - filled) ** 2)`` over the hidden values, in the
            units of X.
        """
        generator = KeyedNoise(_SCORE_SEED)

        def hidden_errors(module, xb):
            # Per sample: the squared errors summed over its hidden values,
            # and how many it hides (masks of "blocks" hide more in some).
            filled, mask = module.fill(xb, generator)
            sq = ((filled - xb).pow(2) * mask).flatten(1)  # (B, n_features)
            return torch.stack([sq.sum(1), mask.flatten(1).sum(1)], 1)

        sums = self._apply(X, hidden_errors, 2).astype(np.float64).sum(0)
        return -float(sums[0] / sums[1])

    @property
    def _n_features_out(self) -> int:
        # The fitted width, even if n_components was set again after fit.
        return self.net_.module_.bottleneck.out_features

    def _check_params_against_data(self, n_samples: int) -> None:
        """Also check the mask against the samples' shape."""
        super()._check_params_against_data(n_samples)
        shape = tuple(self.input_shape_)
        if len(shape) > 3:
            raise ValueError(
                f"ContextEncoderTransformer takes samples of shape (d,), (C, L) "
                f"or (C, H, W); got input_shape={shape}. Reshape X or pass "
                "input_shape."
            )
        if len(shape) == 1 and shape[0] < 2:
            raise ValueError(
                "ContextEncoderTransformer hides some features and predicts them "
                f"from the others, which needs at least 2; got {shape[0]} "
                "feature(s). Use another representation for one feature."
            )
        if self.mask != "center":  # which ignores block_size
            resolve_block_size(self.block_size, shape)
        if len(shape) > 1 and self.mask == "center":
            center_extent(shape[1:], self.mask_ratio)

    def _build_objective(self) -> ContextEncoderObjective:
        return ContextEncoderObjective(
            input_shape=self.input_shape_,
            n_components=self.n_components,
            encoder=self.encoder,
            encoder_kwargs=self.encoder_kwargs,
            decoder=self.decoder,
            decoder_kwargs=self.decoder_kwargs,
            mask=self.mask,
            mask_ratio=self.mask_ratio,
            block_size=self.block_size,
            context_weight=self.context_weight,
        )
