"""AutoencoderTransformer: a deep encoder and decoder through a bottleneck."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from .._docstrings import fill_doc
from .._validation import float_dtypes, positive_strides
from ..base import fit_context, store_params
from ..nn.build import DECODER_NAMES
from ..objectives.reconstruction import AutoencoderObjective
from .base import NeuralRepresentation, _check_finite_output

__all__ = ["AutoencoderTransformer"]


@fill_doc(
    docs={
        "net_": """\
The trained skorch net; ``net_.module_`` is the objective holding the
encoder (``backbone`` + ``bottleneck``) and the ``decoder``."""
    }
)
class AutoencoderTransformer(NeuralRepresentation):
    """Autoencoder representation: ``z = E(x)`` trained so that ``D(z) ≈ x``.

    The non-linear generalisation of PCA (Hinton and Salakhutdinov, 2006):
    a deep encoder maps the
    input through a narrow bottleneck of ``n_components`` units and a decoder
    maps it back; minimising the reconstruction error forces the bottleneck
    to keep what matters about the data. With ``noise > 0`` it is a
    denoising autoencoder: the input is corrupted and the clean input
    reconstructed.

    Parameters
    ----------
    n_components : int, default=16
        Width of the bottleneck, the dimension of the representation.
    {params encoder..decoder_kwargs}
    noise : float, default=0.0
        Training-time corruption: a Gaussian standard deviation (in units of
        the standardised input) or a masking fraction (at most 1), by
        ``noise_type``.
    noise_type : {"gaussian", "mask"}, default="gaussian"
        The kind of corruption of a denoising autoencoder.
    {params input_shape..accelerator}

    Attributes
    ----------
    {attributes net_ n_components_ training input}

    See Also
    --------
    PCATransformer : The linear autoencoder, in closed form.

    References
    ----------
    .. [1] Hinton, G. E. & Salakhutdinov, R. R. (2006). Reducing the
       dimensionality of data with neural networks. Science, 313.
    .. [2] Vincent, P. et al. (2008). Extracting and composing robust
       features with denoising autoencoders. ICML.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_replearn import AutoencoderTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(n_components=8, input_shape=(1, 8, 8),
    ...                             max_epochs=2, random_state=0)
    >>> ae.fit_transform(X[:200]).shape
    (200, 8)
    >>> ae.inverse_transform(ae.transform(X[:3])).shape
    (3, 64)
    """

    _parameter_constraints: dict = {
        **NeuralRepresentation._parameter_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "encoder": [StrOptions({"auto", "mlp", "cnn", "resnet", "vit"}), callable],
        "encoder_kwargs": [dict, None],
        "decoder": [StrOptions(set(DECODER_NAMES)), callable],
        "decoder_kwargs": [dict, None],
        "noise": [Interval(Real, 0, None, closed="left")],
        "noise_type": [StrOptions({"gaussian", "mask"})],
    }

    def __init__(
        self,
        n_components: int = 16,
        *,
        encoder="auto",
        encoder_kwargs: dict | None = None,
        decoder="auto",
        decoder_kwargs: dict | None = None,
        noise: float = 0.0,
        noise_type: str = "gaussian",
        input_shape: tuple[int, ...] | None = None,
        max_epochs: int = 100,
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
    def fit(self, X, y=None) -> AutoencoderTransformer:
        """Train the autoencoder on X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Training samples.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : AutoencoderTransformer
            The fitted estimator.
        """
        if self.noise_type == "mask" and self.noise > 1:
            raise ValueError(
                f"noise={self.noise} with noise_type='mask' is the fraction of "
                "input values set to zero, at most 1; pass a fraction such as "
                "noise=0.25 (or noise_type='gaussian' for a standard deviation)."
            )
        self._fit(X)
        self.n_components_ = self._n_features_out  # the bottleneck's width
        return self

    def inverse_transform(self, X) -> np.ndarray:
        """Decode codes back to the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, e.g. from :meth:`transform`.

        Returns
        -------
        X_rec : ndarray of shape (n_samples, n_features_in_) or (n, *input_shape_)
            Reconstructions, in the layout of the data ``fit`` was given.
        """
        module = self._module()
        Z = positive_strides(check_array(X, dtype=float_dtypes(X), input_name="X"))
        width = self._n_features_out  # fitted, even if n_components changed since
        if Z.shape[1] != width:
            layer = (
                ""
                if self.transform_layer == -1
                else f" (the bottleneck's; transform_layer={self.transform_layer} "
                "makes transform return another layer, which does not decode)"
            )
            fitted = (
                f"n_components={width}"
                if self.n_components == width
                else f"{width}, the fitted bottleneck's (n_components has been "
                f"set to {self.n_components!r} since fit)"
            )
            raise ValueError(
                f"X has {Z.shape[1]} features, but inverse_transform expects "
                f"codes of width {fitted}{layer}."
            )
        out = self._map_batches(
            Z,
            lambda zb: module.decode(zb).float().flatten(1),
            self.n_features_in_,
            device=next(module.parameters()).device,
        )
        _check_finite_output(out, Z, type(self).__name__)
        return self._output_layout(out)

    def reconstruct(self, X) -> np.ndarray:
        """Encode and decode X: ``D(E(X))``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Samples.

        Returns
        -------
        X_rec : ndarray of the shape of X, dtype float32
            Reconstructions, rows for rows and samples for N-D samples, so
            that ``X - reconstruct(X)`` is the error of each value.
        """
        check_is_fitted(self)
        out = self._apply(X, lambda m, xb: m.decode(m.encode(xb)), self.n_features_in_)
        return out.reshape(self._layout_of(X))

    def score(self, X, y=None) -> float:
        """Negative mean squared reconstruction error (higher is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Samples.
        y : None
            Ignored.

        Returns
        -------
        score : float
            ``-mean((X - reconstruct(X)) ** 2)``, in the units of X.
        """
        errors = self._apply(
            X,
            lambda m, xb: (
                (m.decode(m.encode(xb)) - xb).pow(2).flatten(1).mean(1, keepdim=True)
            ),
            1,
        )
        return -float(errors.astype(np.float64).mean())

    @property
    def _n_features_out(self) -> int:
        # The fitted width, even if n_components was set again after fit.
        return self.net_.module_.bottleneck.out_features

    def _build_objective(self) -> AutoencoderObjective:
        return AutoencoderObjective(
            input_shape=self.input_shape_,
            n_components=self.n_components,
            encoder=self.encoder,
            encoder_kwargs=self.encoder_kwargs,
            decoder=self.decoder,
            decoder_kwargs=self.decoder_kwargs,
            noise=self.noise,
            noise_type=self.noise_type,
        )
