"""MAETransformer: masked autoencoding of images, signals and tables."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._docstrings import fill_doc
from .._seeding import seed_from_random_state
from .._validation import check_flag
from ..base import fit_context, store_params
from ..objectives.masked import KeyedNoise
from ._mae_settings import _AUTO, MAESettingsMixin
from .base import NeuralRepresentation

__all__ = ["MAETransformer"]

#: Seed of the masks drawn by :meth:`MAETransformer.score`.
_SCORE_SEED = 0


@fill_doc(
    docs={
        "max_epochs": (
            'int or "auto"',
            """\
Passes over the training data. "auto": 32 for 1-D signals (the
short-signal recipe; 40 fine-tune up to 3 points better with few labels,
see the user guide), 150 for images and tables.""",
        ),
        "input_shape": """\
Shape of one sample when X is 2-D: ``(C, H, W)`` for images such as
``(1, 8, 8)``, ``(C, L)`` for signals such as ``(1, 40)``. With None,
2-D X is a table (one token per feature or group of features, whose
"positions" are then just feature identities: columns are never
guessed to be pixels, even when their number is a perfect square),
and N-D X ``(n, C, H, W)`` or ``(n, C, L)`` gives its own shape.
Tables are standardised per column; images and signals by one
global mean and standard deviation.""",
        "loss_curve_": "Training loss (masked MSE in standardised units) at each "
        "epoch.",
    }
)
class MAETransformer(MAESettingsMixin, NeuralRepresentation):
    """Masked autoencoder representation (MAE): predict hidden tokens.

    Each sample is cut into tokens: ``patch_size x patch_size`` patches of an
    image, segments of ``patch_size`` steps of a signal, or single features
    (groups of ``patch_size`` consecutive features) of a table. In training a
    random ``mask_ratio`` of each sample's tokens is hidden; a Vision
    Transformer encoder sees only the visible ones (plus a class token), and
    a light transformer decoder, given mask tokens at the hidden positions,
    predicts their values. The loss is the mean squared error on the hidden
    tokens only. Predicting a large hidden part needs more than local
    interpolation, so the encoder learns semantic features [1]_.

    :meth:`transform` runs the encoder on every token of the unmasked input
    and pools the tokens: by default, the class token and the mean of the
    patch tokens after every block, concatenated (``pooling``).

    Parameters
    ----------
    n_components : int or None, default=None
        Width of the representation, the number of columns of
        ``transform``'s output. An int adds a linear layer that maps every
        encoded token to ``n_components`` values, which the decoder reads
        (so the code is trained by the reconstruction) and ``transform``
        pools (``pooling="mean"`` or ``"cls"``). None uses the encoder's
        tokens directly: ``embed_dim`` values a region, or ``(1 +
        pooling_regions) * depth * embed_dim`` with ``pooling="blocks"``
        (the default; ``2 * depth * embed_dim`` with one region: 768
        columns for a table or an image with the "auto" settings, however
        few its features; pass an int for a narrower code).
    patch_size : int or "auto", default="auto"
        Token size: patch side (images), segment length (signals), features
        per token (tables); must divide the spatial sizes (the number of
        features of a table). ``"auto"`` picks, for images and signals, the
        smallest ``p >= 2`` that gives 4 to 64 tokens (8x8 -> 2, 28x28 -> 4,
        length 40 -> 2); for sizes without one (a prime length), the ``p``
        that gives the fewest tokens from 4 to 256 (length 127 -> 1,
        254 -> 2), else a ValueError (length 997); for a table
        with ``d`` features, 1 when ``d <= 32``, else the smallest divisor of
        ``d`` giving 4 to 32 tokens, else 1 up to 256 features (digits' 64
        pixels -> 2), else a ValueError (257 features: pass ``patch_size``).
    mask_ratio : float or "auto", default="auto"
        Fraction of the tokens hidden in training, in (0, 1). At least one
        token always stays visible: for samples of very few tokens the
        ratio is lowered to ``1 - 1 / n_tokens``. "auto": 0.85 for 1-D
        signals, 0.75 (the MAE paper's) for images and tables. Short,
        smooth signals can take more: on MNIST-1D (20 tokens) 0.85 probed
        best (see the user guide's recipe).
    embed_dim : int or "auto", default="auto"
        Token width of the encoder; a multiple of ``num_heads`` and of 4
        (images) or 2 (signals, tables). "auto": 192 for 1-D signals, 128
        for images and tables. A wide, shallow encoder probed best on digits
        and MNIST-1D: 128 wide and 3 deep gave 0.958 on digits against 0.927
        for 64 and 4; on MNIST-1D, 256 wide and 2 deep with
        ``mask_ratio=0.85`` gave 0.73 to 0.75 in 50 epochs against 0.70 for
        128 wide, 3 deep and 0.75 in 150 (the patch mean of the last block;
        the user guide's recipe).
    depth : int or "auto", default="auto"
        Transformer blocks of the encoder. "auto": 2 for 1-D signals, 3
        for images and tables.
    num_heads : int, default=4
        Attention heads of the encoder.
    decoder_embed_dim : int, default=32
        Token width of the decoder (same rules as ``embed_dim``). A light
        decoder keeps the encoder's features general; a deeper one
        (``decoder_depth=4``, 64 wide) probed a little better on MNIST-1D
        (0.72 against 0.70) at 1.5 times the training time.
    decoder_depth : int, default=2
        Transformer blocks of the decoder.
    decoder_num_heads : int, default=4
        Attention heads of the decoder.
    mlp_ratio : float or "auto", default="auto"
        Hidden width of every block's MLP relative to its token width.
        "auto": 3 for 1-D signals (the short-signal recipe), 4 for images
        and tables.
    norm_pix_loss : bool, default=False
        Normalise each target token by its own mean and standard deviation
        (the MAE paper's best setting on ImageNet). Needs tokens of at least
        two values, so not with one feature per token.
    pooling : {"auto", "blocks", "mean", "cls"}, default="auto"
        Representation given by :meth:`transform`. ``"blocks"``: the class
        token and the mean of the patch tokens after every block,
        concatenated, the last block's after the final norm (``2 * depth *
        embed_dim`` values with one pooling region, ``(1 +
        pooling_regions) * depth * embed_dim`` with several; the multi-layer
        features of linear probes, Chen et al. 2020, Caron et al. 2021).
        ``"mean"``: the mean of the last block's patch tokens (as MAE's
        fine-tuning reads them, as good as the class token there [1]_);
        ``"cls"``: the class token's output. "auto":
        ``"blocks"``, or ``"mean"`` with ``n_components`` (whose code is per
        token of the last block). Pooling does not enter training. On
        MNIST-1D, ``"blocks"`` probed 0.78, 0.73 and 0.75 (seeds 0, 1, 2; 40
        epochs, one region) against 0.71, 0.67 and 0.67 with ``"mean"`` of
        the same encoders; on digits 0.962 against 0.958. With few labels (a
        logistic regression, five draws; ``benchmarks/bench_mae.py``)
        ``"blocks"`` scored 0.819 and 0.858 on the digits with 5 and 10
        labels a class against 0.814 and 0.849, but 0.722 against 0.754 with
        2 (its 768 columns against 128); on MNIST-1D 0.236, 0.315 and 0.406
        with 2, 5 and 10 (its 1,920 columns, the means over the signal's
        quarters, ``pooling_regions``) against 0.228, 0.302 and 0.387. With
        2 labels a class of images, try ``"mean"``. Fine-tuning is another
        matter: a :class:`~sk_replearn.FineTuner` that trains the encoder
        (``strategy="full"``) reads an "auto" encoder by the last block's
        patch mean over all tokens, as MAE is fine-tuned [1]_, since through
        every block it fine-tuned worse (five draws each): on the digits
        0.560, 0.732 and 0.804 with 2, 5 and 10 labels a class against
        0.610, 0.756 and 0.846, on MNIST-1D (40 epochs) 0.302 and 0.393 with
        4 and 10 against 0.318 and 0.412. Its ``transform`` is then
        ``embed_dim`` wide; a frozen fine-tuner, or an explicit
        ``"blocks"``, reads every block. Like every parameter but
        ``transform_layer``, a ``pooling`` set after ``fit`` is read by the
        next fit, not by ``transform`` (``pooling_`` is the fitted one).
    pooling_regions : int or "auto", default="auto"
        With ``"mean"`` or ``"blocks"``, average the patch tokens over this
        many contiguous parts, in token order (segments of a signal; bands
        of patch rows of an image), rather than over all of them: each mean
        becomes ``pooling_regions`` means side by side, so a linear probe
        sees where along the sample a feature is (``"blocks"`` then gives
        ``(1 + pooling_regions) * depth * embed_dim`` values). "auto": 4
        for 1-D signals (at most one per token), 1 for images and tables,
        with ``n_components`` and with ``pooling="cls"``. Pooling does not
        enter training, and a fine-tuner that trains the encoder reads the
        patch tokens over all of them unless both ``pooling`` and
        ``pooling_regions`` are set. On MNIST-1D, 4 regions read from the
        32-epoch fits of the defaults probed 0.789, 0.743, 0.742, 0.739
        and 0.724 (seeds 0 to 4, mean 0.747) against 0.782, 0.720, 0.712,
        0.725 and 0.704 with 1 (mean 0.729; 0.752 after 40 epochs; the
        user guide's recipe). Not with ``n_components``, and at most one
        region per patch token.
    {params input_shape..accelerator}

    Attributes
    ----------
    net_ : sk_replearn.training.RepresentationNet
        The trained skorch net; ``net_.module_`` is the
        :class:`~sk_replearn.objectives.masked.MAEObjective`, whose
        ``encoder`` is a :class:`~sk_replearn.nn.ViTEncoder`.
    n_components_ : int
        Width of the representation, the number of columns of
        ``transform`` at ``transform_layer=-1``.
    patch_size_ : int
        The resolved patch size.
    n_tokens_ : int
        Tokens per sample, ``L``; training encodes
        ``max(1, floor(L * (1 - mask_ratio_)))`` of them.
    mask_ratio_, embed_dim_, depth_, mlp_ratio_, max_epochs_ : float or int
        The values the fit used: the parameters, with "auto" resolved.
        ``mask_ratio_`` is the ratio asked for; where it would hide every
        token, training keeps one visible (``n_tokens_`` above says how
        many are encoded).
    pooling_ : str
        The pooling :meth:`transform` uses, "auto" resolved.
    pooling_regions_ : int
        The regions :meth:`transform` averages over, "auto" resolved.
    {attributes training input}

    See Also
    --------
    AutoencoderTransformer : Reconstructs the whole input through a bottleneck.

    References
    ----------
    .. [1] K. He, X. Chen, S. Xie, Y. Li, P. Dollár and R. Girshick. "Masked
       Autoencoders Are Scalable Vision Learners." CVPR 2022.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_replearn.methods import MAETransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> mae = MAETransformer(input_shape=(1, 8, 8), embed_dim=16, depth=1,
    ...                      decoder_embed_dim=16, decoder_depth=1,
    ...                      max_epochs=2, random_state=0)
    >>> mae.fit_transform(X[:100]).shape  # class token and patch mean, 2 x 16
    (100, 32)
    >>> mae.pooling_
    'blocks'
    >>> mae.n_tokens_, mae.patch_size_
    (16, 2)
    >>> reconstruction, mask = mae.reconstruct(X[:3], random_state=0)
    >>> reconstruction.shape, mask.shape, float(mask.mean())
    ((3, 64), (3, 64), 0.75)
    """

    _parameter_constraints: dict = {
        **NeuralRepresentation._parameter_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "patch_size": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "mask_ratio": [Interval(Real, 0, 1, closed="neither"), StrOptions({"auto"})],
        "embed_dim": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "depth": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_epochs": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "num_heads": [Interval(Integral, 1, None, closed="left")],
        "decoder_embed_dim": [Interval(Integral, 1, None, closed="left")],
        "decoder_depth": [Interval(Integral, 1, None, closed="left")],
        "decoder_num_heads": [Interval(Integral, 1, None, closed="left")],
        "mlp_ratio": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "norm_pix_loss": ["boolean"],
        "pooling": [StrOptions({"auto", "mean", "cls", "blocks"})],
        "pooling_regions": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
    }

    def __init__(
        self,
        n_components: int | None = None,
        *,
        patch_size: int | str = "auto",
        mask_ratio: float | str = "auto",
        embed_dim: int | str = "auto",
        depth: int | str = "auto",
        num_heads: int = 4,
        decoder_embed_dim: int = 32,
        decoder_depth: int = 2,
        decoder_num_heads: int = 4,
        mlp_ratio: float | str = "auto",
        norm_pix_loss: bool = False,
        pooling: str = "auto",
        pooling_regions: int | str = "auto",
        input_shape: tuple[int, ...] | None = None,
        max_epochs: int | str = "auto",
        batch_size: int = 128,
        num_workers: int = 0,
        lr: float = 1e-3,
        optimizer="adamw",
        weight_decay: float = 0.05,
        lr_schedule: str | None = "cosine",
        warmup_epochs: int = 10,
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
    def fit(self, X, y=None) -> MAETransformer:
        """Train the masked autoencoder on X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Training samples.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : MAETransformer
            The fitted estimator.

        Raises
        ------
        ValueError
            For a ``patch_size`` that does not divide the input, an
            ``input_shape`` that does not match X, widths that do not suit
            the heads or the sin-cos positions, or samples of one token.
        """
        self._fit(X)
        self.patch_size_, grid = self._token_grid()
        self.n_tokens_ = math.prod(grid)
        self.n_components_ = self._n_features_out
        for name in _AUTO:
            setattr(self, f"{name}_", self._setting(name))
        self.pooling_ = self._pooling()
        self.pooling_regions_ = self._regions()
        return self

    def reconstruct(
        self,
        X,
        mask_ratio: float | None = None,
        random_state=None,
        *,
        return_mask: bool = True,
    ) -> tuple[np.ndarray, np.ndarray] | np.ndarray:
        """Hide random tokens of X and fill them in with the decoder.

        For pictures like the MAE paper's triplets: ``X * (1 - mask)`` is
        the masked input, ``reconstruction`` the prediction, ``X`` the
        original.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Samples.
        mask_ratio : float, default=None
            Fraction of tokens to hide, in (0, 1); None uses the fit's,
            ``mask_ratio_``.
        random_state : int, RandomState instance or None, default=None
            Seeds the masks; None draws new ones each call. A sample's mask
            depends on the seed and the sample alone, not on the other rows
            of X or their order.
        return_mask : bool, default=True
            Also return the mask (the keyword of
            :meth:`ContextEncoderTransformer.reconstruct
            <sk_replearn.ContextEncoderTransformer.reconstruct>`, whose
            default is False: an MAE's reconstruction is mostly its input,
            and reads only beside its mask).

        Returns
        -------
        reconstruction : ndarray of the shape of X, dtype float32
            X itself on the visible tokens (pasted from the input) and the
            decoder's prediction, in X's units, on the hidden ones. With
            ``norm_pix_loss=True`` each predicted token is mapped back with
            the true token's mean and standard deviation, so only its shape
            within the token is predicted.
        mask : ndarray of the shape of X, dtype float32
            1 on the values of hidden tokens, 0 on visible ones; only with
            ``return_mask=True``.
        """
        check_is_fitted(self, "net_")
        check_flag(return_mask, "return_mask")
        ratio = self._check_mask_ratio(mask_ratio)
        generator = KeyedNoise(seed_from_random_state(random_state))
        n_out = self.n_features_in_
        both = self._apply(
            X,
            lambda m, xb: torch.cat(
                [t.flatten(1) for t in m.reconstruct(xb, ratio, generator)[1:]], dim=1
            ),
            2 * n_out,
        )
        shape = self._layout_of(X)
        filled = both[:, :n_out].reshape(shape)
        return (filled, both[:, n_out:].reshape(shape)) if return_mask else filled

    def score(self, X, y=None) -> float:
        """Negative mean squared error on hidden tokens (higher is better).

        The masks are drawn from a fixed seed and each sample's own values,
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
            ``-mean((X - prediction) ** 2)`` over the values of the hidden
            tokens, in the units of X (see :meth:`reconstruct`), with the
            fit's ``mask_ratio_`` of them hidden.

        Notes
        -----
        Scores compare fits of the same ``mask_ratio`` only: fewer hidden
        tokens are easier to fill in, so a grid search over ``mask_ratio``
        on this score picks the smallest (0.25 of 0.25 to 0.9 on the
        digits), not the best representation. Choose it by a downstream
        score: search a pipeline that ends in the task's model.
        """
        ratio = self._check_mask_ratio(None)
        generator = KeyedNoise(_SCORE_SEED)

        def masked_mse(module, xb):
            prediction, _, mask = module.reconstruct(xb, ratio, generator)
            sq = (prediction - xb).pow(2) * mask  # (B, *input_shape)
            return sq.flatten(1).sum(1, keepdim=True) / mask.flatten(1).sum(
                1, keepdim=True
            )

        return -float(self._apply(X, masked_mse, 1).astype(np.float64).mean())

    @property
    def _n_features_out(self) -> int:
        return self.net_.module_.out_features  # the fitted encoder's, pooled

    def _fine_tuning_encoder(self):
        """The encoder a fine-tuner trains (``strategy="full"``).

        With ``pooling="auto"`` it is read by the last block's patch mean,
        as He et al. (2022) fine-tune MAE, rather than by every block, which
        probes better but fine-tuned worse (the pooling docstring).
        """
        if self.pooling == "auto" and self._pooling() == "blocks":
            return self._transfer_encoder(pooling="mean", regions=1)
        if isinstance(self.pooling_regions, str):  # "auto": over all tokens
            return self._transfer_encoder(regions=1)
        return self._transfer_encoder()
