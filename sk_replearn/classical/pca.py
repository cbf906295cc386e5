"""Principal component analysis in PyTorch: the linear encoder ``W``.

PCA is the representation learner whose encoder is ``z = W (x - mean)`` and
whose decoder is ``x = Wᵀ z + mean`` with orthonormal rows, ``W Wᵀ = I``;
minimising the reconstruction error ``‖x − WᵀW x‖²`` picks the top
eigenvectors of the covariance matrix. It is solved in closed form, not by
gradient descent.

The default solver for tall data streams X through the device one batch at a
time and merges exact per-batch statistics (count, mean, centred scatter) in
float64, so float32 data far from the origin keeps its small eigenvalues; the
same merge makes :meth:`PCATransformer.partial_fit` exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from numbers import Integral
from typing import NoReturn

import numpy as np
import torch
from scipy.linalg import LinAlgWarning
from sklearn.utils import assert_all_finite
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from .._seeding import seed_from_random_state
from .._validation import float_dtypes, positive_strides
from .._warn import warn_user
from ..base import BaseRepresentation, fit_context
from ..data import batch_slices
from ..nn.surgery import TransferEncoder, linear_encoder
from ._moments import (
    _acc_dtype,
    _batch_moments,
    _column_sum,
    _compute_dtype,
    _covariance_block_rows,
    _cpu_block_rows,
    _eigh,
    _flip_signs,
    _merge_moments,
    _Moments,
    _no_tf32,
    _numpy_moments,
    _subtractor,
)
from ._threads import _Workers

__all__ = ["PCATransformer"]

_N_OVERSAMPLES = 10  # extra random directions of the randomized solver (Halko)
#: get_precision forms the complement of the components as ``I - WᵀW`` when
#: the noise variance is at least this fraction of the largest eigenvalue;
#: below it, from a Householder QR (see get_precision).
_DIRECT_COMPLEMENT = 1e-6


def _checks_own_result(device: torch.device, solver: str) -> bool:
    """Whether the fit's pass finds NaN and overflow in its own result."""
    return device.type == "cpu" and solver == "covariance_eigh"


class _SpectrumNotFinite(ArithmeticError):
    """An SVD solver's variances or axes came out NaN or infinite."""


def _finite(moments: _Moments) -> bool:
    return bool(torch.isfinite(moments.mean).all() and torch.isfinite(moments.m2).all())


class PCATransformer(BaseRepresentation):
    """Principal component analysis written in PyTorch.

    Learns the linear encoder ``z = W (x - mean_)`` with orthonormal rows
    ``W = components_`` (``W Wᵀ = I``) and decoder ``x ≈ Wᵀ z + mean_`` that
    minimise the squared reconstruction error. Semantics follow
    :class:`sklearn.decomposition.PCA`; the data are moved to ``device`` one
    batch at a time. X is dense: sparse matrices are refused (scikit-learn's
    :class:`~sklearn.decomposition.TruncatedSVD` takes them uncentred).

    Parameters
    ----------
    n_components : int, float or None, default=None
        Number of components to keep. An int ``k`` keeps ``k``; a float in
        ``(0, 1)`` keeps the fewest components whose explained variance ratio
        exceeds it (not with ``svd_solver="randomized"``); None keeps
        ``min(n_samples, n_features)``.
    whiten : bool, default=False
        If True, :meth:`transform` divides each component by
        ``sqrt(explained_variance_)`` so the outputs have unit variance.
    svd_solver : {"auto", "covariance_eigh", "full", "randomized"}, \
            default="auto"
        ``"covariance_eigh"`` streams X in batches, accumulates the centred
        covariance in float64 and eigendecomposes it (memory ``O(d²)``, best
        for ``n_samples >> n_features``); ``"full"`` takes the exact SVD of
        the centred data in float64 (memory ``O(n d)``, on the device: X is
        moved there whole); ``"randomized"`` is Halko et al.'s randomized SVD,
        which streams X in batches but keeps a float64 basis of its range on
        the device (memory ``O(n (k + 10))`` for ``k`` components).
        ``"auto"`` picks as scikit-learn does: ``"covariance_eigh"`` if
        ``n_features <= 1000`` and ``n_samples >= 10 * n_features``, else
        ``"full"`` for problems up to 500 x 500 or a float ``n_components``,
        else ``"randomized"`` when ``n_components < 0.8 * min(n_samples,
        n_features)``, else ``"full"``.
    iterated_power : int or "auto", default="auto"
        Power iterations of the randomized solver; ``"auto"`` uses 7 when
        ``n_components < 0.1 * min(X.shape)`` and 4 otherwise.
    random_state : int, RandomState instance or None, default=None
        Seeds the random test matrix of the randomized solver.
    device : str or torch.device, default="auto"
        Where to compute: ``"auto"`` is CUDA when available, else the CPU.
    batch_size : int or None, default=None
        Rows per batch moved to the device. None uses about 16 M values
        (64 MB of float32) per batch.
    input_shape : tuple of int or None, default=None
        Shape of one sample, e.g. ``(1, 8, 8)``, when X is given flattened.

    Attributes
    ----------
    components_ : ndarray of shape (n_components_, n_features_in_)
        The encoder ``W``: orthonormal principal axes, sorted by decreasing
        ``explained_variance_``.
    explained_variance_ : ndarray of shape (n_components_,)
        Variance along each component (eigenvalues of the covariance matrix,
        ``ddof=1``).
    explained_variance_ratio_ : ndarray of shape (n_components_,)
        Fraction of the total variance explained by each component.
    singular_values_ : ndarray of shape (n_components_,)
        Singular values of the centred data, ``sqrt(explained_variance_ *
        (n_samples_ - 1))``.
    mean_ : ndarray of shape (n_features_in_,)
        Per-feature mean of the training data (float64).
    n_components_ : int
        Number of components kept.
    noise_variance_ : float
        Variance of the isotropic noise of the probabilistic PCA model: the
        mean of the discarded eigenvalues (0.0 when none is discarded).
    n_samples_ : int
        Number of samples seen by ``fit`` (or by all ``partial_fit`` calls).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during ``fit``, for DataFrame input.
    input_shape_ : tuple of int
        Shape of one sample.

    See Also
    --------
    sklearn.decomposition.PCA : The NumPy/SciPy estimator this one mirrors.
    sklearn.decomposition.IncrementalPCA : Out-of-core PCA; here
        :meth:`partial_fit` merges exact statistics instead.

    Notes
    -----
    Accuracy: the ``"covariance_eigh"`` solver computes the mean in float64,
    centres every batch before its Gram matrix and merges batch statistics in
    float64 with Chan et al.'s parallel update, so float32 data with a large
    mean keep their small eigenvalues (scikit-learn's ``X.T @ X - n mean
    meanᵀ`` in float32 does not). TF32 is switched off around the matmuls.
    :meth:`transform` centres before projecting, in the input's precision
    (float64 input is computed in float64), and returns float32.

    Signs follow scikit-learn 1.9: the largest-magnitude entry of each row of
    ``components_`` is positive, for every solver.

    :meth:`score` uses the probabilistic PCA density, which does not depend
    on ``whiten``; scikit-learn's ``get_covariance`` rescales the components
    when ``whiten=True`` (scikit-learn issue #13898), this class does not.

    :meth:`partial_fit` always uses the covariance solver. It continues from
    earlier ``partial_fit`` calls or a ``fit`` (exactly, except after a
    ``"randomized"`` fit, whose discarded spectrum is unknown: then it keeps
    only the new data, on the same features). To continue exactly, a
    ``"full"`` fit keeps the whole spectrum (``min(n, d) * d`` float64
    values) and a covariance fit the ``d x d`` scatter matrix, and both go
    into pickles and saved files: on 500 samples of 3000 features, a pickle
    of 12 MB (``"full"``) or 72 MB (``"covariance_eigh"``) for a model whose
    10 components take 0.24 MB. A ``"randomized"`` fit keeps neither.

    References
    ----------
    .. [1] M. E. Tipping and C. M. Bishop, "Probabilistic principal component
       analysis", Journal of the Royal Statistical Society B, 61(3), 1999.
    .. [2] N. Halko, P.-G. Martinsson and J. A. Tropp, "Finding structure with
       randomness", SIAM Review, 53(2), 2011.
    .. [3] T. F. Chan, G. H. Golub and R. J. LeVeque, "Updating formulae and a
       pairwise algorithm for computing sample variances", 1979.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_replearn.classical.pca import PCATransformer
    >>> X = np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32)
    >>> pca = PCATransformer(n_components=2, device="cpu").fit(X)
    >>> pca.transform(X).shape
    (200, 2)
    >>> bool(np.allclose(pca.components_ @ pca.components_.T, np.eye(2)))
    True
    >>> pca.inverse_transform(pca.transform(X)).shape
    (200, 6)
    """

    #: Integer X becomes float64, as in scikit-learn: the float32 rounding
    #: of integers beyond 2**24 (timestamps) would defeat the float64 paths.
    _integers_as = np.float64
    _reads_layout = False  # flat rows: the axes' meaning changes nothing
    _parameter_constraints: dict = {
        **BaseRepresentation._parameter_constraints,
        "n_components": [
            Interval(Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0, 1, closed="neither"),
            None,
        ],
        "whiten": ["boolean"],
        "svd_solver": [StrOptions({"auto", "covariance_eigh", "full", "randomized"})],
        "iterated_power": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
    }

    def __init__(
        self,
        n_components: int | float | None = None,
        *,
        whiten: bool = False,
        svd_solver: str = "auto",
        iterated_power: int | str = "auto",
        random_state=None,
        device: str | torch.device = "auto",
        batch_size: int | None = None,
        input_shape: tuple[int, ...] | None = None,
    ) -> None:
        self.n_components = n_components
        self.whiten = whiten
        self.svd_solver = svd_solver
        self.iterated_power = iterated_power
        self.random_state = random_state
        self.device = device
        self.batch_size = batch_size
        self.input_shape = input_shape

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None) -> PCATransformer:
        """Fit the principal axes on X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *shape)
            Training data; N-D samples are flattened.
        y : None
            Ignored.

        Returns
        -------
        self : PCATransformer
            The fitted transformer.
        """
        self._fit(X)
        return self

    @fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None) -> np.ndarray:
        """Fit on X and return its codes ``(n_samples, n_components_)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *shape)
            Training data.
        y : None
            Ignored.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components_), float32
            The projections of X.
        """
        return self._encode(self._fit(X))

    @fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None) -> PCATransformer:
        """Update the fit with one more chunk of samples.

        The count, mean and centred scatter matrix of all chunks are merged
        exactly in float64, so fitting chunk by chunk gives the components of
        ``fit`` on the whole data (up to round-off).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *shape)
            A chunk of training data.
        y : None
            Ignored.

        Returns
        -------
        self : PCATransformer
            The updated transformer.
        """
        first = not hasattr(self, "n_features_in_")
        X = self._validate_X(X, reset=first)
        device = self._device()
        previous = self._stored_moments(device)
        if first or previous is None:
            self._fit_dtype = X.dtype.name
        elif X.dtype == np.float64:  # any float64 chunk makes a float64 model
            self._fit_dtype = "float64"
        with _no_tf32(device):
            moments = self._stream_moments(X, device, previous)
        self._fit_svd_solver = "covariance_eigh"
        k, d = self.n_components, X.shape[1]
        needed = k if isinstance(k, Integral) and 2 <= k <= d else 2
        if moments.n < needed:  # the count is over every chunk so far
            raise ValueError(
                f"PCATransformer.partial_fit has seen {moments.n} sample(s), "
                f"and n_components={k!r} needs at least {needed}: pass a first "
                f"chunk of at least {needed} samples (later chunks may be of "
                "any size)."
            )
        k = self._check_n_components(moments.n, d, "covariance_eigh")
        self._set_from_moments(moments, k)
        return self

    def transform(self, X) -> np.ndarray:
        """Encode X: ``(X - mean_) @ components_.T``, whitened if asked.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *shape)
            Data to encode.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components_), float32
            The codes, computed batch by batch.
        """
        check_is_fitted(self)
        # On the CPU the projection checks its own output for NaN and
        # overflow, sparing validation's passes over X (see _encode_cpu).
        cpu = self._device().type == "cpu"
        return self._encode(self._validate_X(X, reset=False, check_values=not cpu))

    def inverse_transform(self, X) -> np.ndarray:
        """Decode codes back to input space: ``X @ components_ + mean_``.

        With ``whiten=True`` the whitening is undone first, so this is the
        exact inverse of :meth:`transform` on the principal subspace.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components_)
            Codes, as returned by :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_) or (n, *input_shape_)
            The reconstructions, in the layout of the data ``fit`` was given
            (N-D samples ``(n, *input_shape_)`` when it was given them, as
            the neural estimators answer; else 2-D): float64 for a model fitted on
            float64 (or integer) data, float32 for one fitted on float32, as
            scikit-learn keeps the fit's dtype. The product ``X @
            components_`` is computed in the codes' precision and ``mean_``
            is added in float64 for a float64 fit, so data far from the
            origin (timestamps) keep their digits.
        """
        check_is_fitted(self)
        Z = positive_strides(
            check_array(X, dtype=float_dtypes(X, self._integers_as), input_name="X")
        )
        if Z.shape[1] != self.n_components_:
            raise ValueError(
                f"X has {Z.shape[1]} columns, but inverse_transform expects codes "
                f"with n_components_={self.n_components_} columns."
            )
        device, dtype = self._device(), _compute_dtype(Z, self._device())
        decoder = self.components_ * self._scale()[:, None]  # (k, d)
        decoder = torch.as_tensor(decoder, dtype=dtype, device=device)
        if getattr(self, "_fit_dtype", "float32") != "float64":
            mean = torch.as_tensor(self.mean_, dtype=dtype, device=device)  # (d,)
            out = self._batched(Z, lambda z: z @ decoder + mean, decoder.shape[1])
            return self._output_layout(out)
        acc = _acc_dtype(device)  # float64 (float32 on MPS, which lacks it)
        mean = torch.as_tensor(self.mean_, dtype=acc, device=device)  # (d,)
        out = self._batched(
            Z, lambda z: (z @ decoder).to(acc) + mean, decoder.shape[1], np.float64
        )
        return self._output_layout(out)

    def score_samples(self, X) -> np.ndarray:
        """Log-likelihood of each sample under the probabilistic PCA model.

        The model is ``x ~ N(mean_, get_covariance())`` (Tipping & Bishop).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *shape)
            The data.

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,), float64
            Log-density of each sample.
        """
        check_is_fitted(self)
        device = self._device()
        acc = _acc_dtype(device)  # float64 whatever X's dtype
        # Scoring computes in float64: X need only be finite, not within
        # float32's range (MPS computes in float32, so there it must be).
        X = self._validate_X(X, reset=False, check_values=acc != torch.float64)
        if acc == torch.float64:
            assert_all_finite(X, input_name="X", estimator_name=type(self).__name__)
        precision = self.get_precision()
        d = precision.shape[0]
        variances = np.maximum(self.explained_variance_, self.noise_variance_)
        logdet_cov = np.log(variances).sum() + (d - len(variances)) * math.log(
            self.noise_variance_ or 1.0
        )  # the eigenvalues of the covariance, known in closed form
        const = 0.5 * (d * math.log(2.0 * math.pi) + logdet_cov)
        prec = torch.as_tensor(precision, dtype=acc, device=device)  # (d, d)
        mean = torch.as_tensor(self.mean_, dtype=acc, device=device)  # (d,)

        def log_density(xb: torch.Tensor) -> torch.Tensor:
            xr = xb.to(acc) - mean  # (B, d)
            return -0.5 * ((xr @ prec) * xr).sum(1) - const  # (B,)

        out = self._batched(X, log_density, 0, out_dtype=np.float64)
        n_bad = int((~np.isfinite(out)).sum())
        if n_bad:
            raise ValueError(
                f"The log-likelihood of {n_bad} of the {len(out)} samples of X "
                f"overflows {str(acc).removeprefix('torch.')}: their squared "
                "distances from mean_ exceed its range (values as large as "
                f"{float(np.abs(X).max()):.3g}); rescale X as the training data were."
            )
        return out

    def score(self, X, y=None) -> float:
        """Average log-likelihood of the samples (see :meth:`score_samples`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *shape)
            The data.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Mean log-likelihood.
        """
        return float(np.mean(self.score_samples(X)))

    def get_covariance(self) -> np.ndarray:
        """Covariance of the probabilistic PCA model.

        ``Wᵀ diag(max(explained_variance_ - σ², 0)) W + σ² I`` with
        ``σ² = noise_variance_``.

        Returns
        -------
        cov : ndarray of shape (n_features_in_, n_features_in_)
            Estimated data covariance.
        """
        check_is_fitted(self)
        W = self.components_  # (k, d)
        excess = np.maximum(self.explained_variance_ - self.noise_variance_, 0.0)
        cov = (W.T * excess) @ W
        cov[np.diag_indices_from(cov)] += self.noise_variance_
        return cov

    def get_precision(self) -> np.ndarray:
        """Inverse of :meth:`get_covariance`, in closed form.

        As ``W Wᵀ = I``, the covariance has eigenvalue
        ``max(explained_variance_, σ²)`` along each component and ``σ²`` on
        their orthogonal complement, so its inverse needs no ``d x d`` solve.
        When ``σ²`` is below ``1e-6`` times the largest eigenvalue, that
        complement is taken from a Householder QR rather than as ``I - WᵀW``,
        which would cancel, so the precision stays accurate when the
        eigenvalues span many decades.

        Returns
        -------
        precision : ndarray of shape (n_features_in_, n_features_in_)
            Estimated data precision.

        Raises
        ------
        ValueError
            If the model covariance is singular: a variance along a component
            or, when components are discarded, the noise variance is zero
            (rank-deficient data, or ``n_samples_ <= n_features_in_``).
            :meth:`score` and :meth:`score_samples` raise it too.

        Warns
        -----
        LinAlgWarning
            If the covariance is ill-conditioned (its smallest eigenvalue
            below ``n_features_in_ * eps`` times its largest), as
            scikit-learn warns; features on very different scales do this,
            and the precision is still formed.
        """
        check_is_fitted(self)
        W = self.components_  # (k, d)
        variances = np.maximum(self.explained_variance_, self.noise_variance_)
        d = W.shape[1]
        if len(W) < d:  # the orthogonal complement has variance σ²
            variances = np.append(variances, np.full(d - len(W), self.noise_variance_))
        if not variances.min() > 0.0:  # also catches NaN
            raise ValueError(
                "The probabilistic PCA covariance is singular: noise_variance_="
                f"{self.noise_variance_:.3g}, so the likelihood is undefined. "
                f"Either the data span fewer than n_features_in_={d} directions "
                "(fit with n_components below their rank), or their smallest "
                "variances are too small beside the largest "
                f"({self.explained_variance_.max():.3g}) for the covariance "
                "solver to resolve (rescale X, e.g. with StandardScaler, or fit "
                "with svd_solver='full')."
            )
        if variances.min() < np.finfo(np.float64).eps * d * variances.max():
            warn_user(
                "The probabilistic PCA covariance is ill-conditioned: its "
                f"eigenvalues range from {variances.min():.3g} to "
                f"{variances.max():.3g}, so the precision and the likelihood may "
                "be inaccurate; rescaling X (e.g. with StandardScaler) helps.",
                LinAlgWarning,
            )
        if len(W) == d:
            return (W.T / variances) @ W  # (d, d)
        noise = self.noise_variance_
        if noise >= _DIRECT_COMPLEMENT * variances.max():
            # ``I - WᵀW`` spans the complement: its round-off, about eps / σ²
            # per entry, is negligible beside the smallest precision 1 / max.
            precision = (W.T * (1.0 / variances[: len(W)] - 1.0 / noise)) @ W
            precision[np.diag_indices_from(precision)] += 1.0 / noise
            return precision
        # A small σ² would magnify the cancellation of ``I - WᵀW``: take a
        # complete orthonormal basis whose first rows span W's by Householder
        # QR (O(d³), as the d x d precision's uses are), and sum terms of one
        # sign.
        W = np.linalg.qr(W.T, mode="complete")[0].T  # (d, d)
        return (W.T / variances) @ W

    # -- fitting --------------------------------------------------------------
    def _fit(self, X) -> np.ndarray:
        """Validate X, run the solver, set the fitted attributes; return X."""
        # The CPU covariance pass checks its own result for NaN and overflow:
        # that saves validation's passes over X (see _numpy_moments).
        X = self._validate_X(X, reset=True, check_values=False)
        self._fit_dtype = X.dtype.name  # inverse_transform answers in it
        n_samples, n_features = X.shape
        solver = self._resolve_solver(n_samples, n_features)
        n_components = self._check_n_components(n_samples, n_features, solver)
        device = self._device()
        if not _checks_own_result(device, solver):
            if solver != "covariance_eigh" and device.type != "mps":
                # the SVD solvers compute in float64: finite is enough
                assert_all_finite(X, input_name="X", estimator_name="PCATransformer")
            else:
                self._check_values(X)
        with _no_tf32(device):
            if solver == "covariance_eigh":
                moments = self._stream_moments(X, device)
                if not _finite(moments):
                    self._raise_not_finite(X, result="covariance")
                self._check_not_underflowed(moments, X)
                self._set_from_moments(moments, n_components)
            else:
                fit = self._fit_full if solver == "full" else self._fit_randomized
                try:
                    fit(X, n_components, device)
                except _SpectrumNotFinite:
                    # finite X whose squares overflow float64 (|X| > 1e154)
                    self._raise_not_finite(X, result="spectrum")
        return X

    def _resolve_solver(self, n_samples: int, n_features: int) -> str:
        solver = self.svd_solver
        if solver == "auto":
            k = self.n_components
            if n_features <= 1_000 and n_samples >= 10 * n_features:
                solver = "covariance_eigh"
            elif max(n_samples, n_features) <= 500:
                solver = "full"
            elif isinstance(k, Integral) and k < 0.8 * min(n_samples, n_features):
                solver = "randomized"
            else:
                solver = "full"
        self._fit_svd_solver = solver
        return solver

    def _check_n_components(
        self, n_samples: int, n_features: int, solver: str
    ) -> int | float:
        """Check ``n_components`` against the data; None becomes the bound."""
        if n_samples < 2:
            raise ValueError(
                f"PCATransformer needs at least 2 samples to estimate a variance; "
                f"got n_samples={n_samples}."
            )
        bound = min(n_samples, n_features)
        k = self.n_components
        if k is None:
            return bound
        if isinstance(k, Integral):
            if k > bound:
                raise ValueError(
                    f"n_components={k} must be at most min(n_samples, n_features)="
                    f"{bound} with svd_solver={solver!r}."
                )
            return int(k)
        if solver == "randomized":
            raise ValueError(
                f"n_components={k} (a variance fraction) is not supported with "
                "svd_solver='randomized'; pass an int, or use svd_solver='auto', "
                "'full' or 'covariance_eigh'."
            )
        return float(k)

    def _rows_per_batch(self, n_features: int) -> int:
        # About 16 M values (64 MB of float32) per batch: measured on 2 CPU
        # cores, 200k x 256 fits 2x faster than with 4 M values (fewer, larger
        # matmuls and merges), while memory stays flat in n_samples.
        return self.batch_size or max(256, (1 << 24) // max(n_features, 1))

    def _batches(self, X: np.ndarray, device: torch.device) -> Iterator[torch.Tensor]:
        """Yield the rows of X as tensors ``(B, d)`` on ``device``, batch by batch."""
        dtype = torch.float32 if device.type == "mps" else None
        for sl in batch_slices(X.shape[0], self._rows_per_batch(X.shape[1])):
            chunk = X[sl]
            if not (chunk.flags.writeable and chunk.flags.c_contiguous):
                chunk = np.array(chunk, order="C")  # torch wants writeable memory
            yield torch.from_numpy(chunk).to(device, dtype=dtype, non_blocking=True)

    def _stream_moments(
        self,
        X: np.ndarray,
        device: torch.device,
        moments: _Moments | None = None,
        diagonal: bool = False,
    ) -> _Moments:
        """Merge the moments of every batch of X into ``moments``."""
        if device.type == "cpu" and not diagonal:
            shift = None if moments is None else moments.mean.numpy()
            with _Workers(device, blas=True) as workers:
                rows = self.batch_size or _covariance_block_rows(X.shape[1], workers.n)
                batch = _numpy_moments(X, shift, workers, rows)
            return batch if moments is None else _merge_moments(moments, batch)
        acc = _acc_dtype(device)
        for xb in self._batches(X, device):
            if moments is None:
                shift = _column_sum(xb, acc) / xb.shape[0]  # (d,)
            else:
                shift = moments.mean
            batch = _batch_moments(xb, shift, diagonal)
            moments = batch if moments is None else _merge_moments(moments, batch)
        return moments

    def _stored_moments(self, device: torch.device) -> _Moments | None:
        """The moments of the data fitted so far, or None if they are unknown.

        The covariance solver keeps the centred scatter matrix itself; the
        ``"full"`` solver keeps the squared singular values and the axes not
        in ``components_``, and the scatter is formed here, only when
        :meth:`partial_fit` continues. An estimator pickled by an earlier
        version may hold ``_scatter`` after a ``"full"`` fit: it is used.
        """
        acc = _acc_dtype(device)
        if hasattr(self, "_scatter"):
            scatter = torch.as_tensor(self._scatter, dtype=acc, device=device)
        elif hasattr(self, "_full_spectrum"):
            squares, rest = self._full_spectrum  # (r,), (r - k, d)
            axes = np.concatenate([self.components_, rest])  # (r, d)
            axes = torch.as_tensor(axes, dtype=acc, device=device)
            squares = torch.as_tensor(squares, dtype=acc, device=device)
            scatter = (axes.T * squares) @ axes  # (d, d)
        else:
            return None
        mean = torch.as_tensor(self.mean_, dtype=acc, device=device)
        return _Moments(self.n_samples_, mean, scatter)

    def _check_not_underflowed(self, moments: _Moments, X: np.ndarray) -> None:
        """Refuse a covariance of no variance from X that is not constant.

        Its squares, formed in X's float32, rounded to 0 (values within
        about 1e-19 of their mean; what is left is the float64 correction
        for the shift, zero or negative), and every component would be
        arbitrary.
        """
        m2 = moments.m2
        total = float(torch.trace(m2) if m2.dim() == 2 else m2.sum())
        if X.dtype != np.float32 or total > 0.0:
            return
        spread = float(np.max(X.max(axis=0) - X.min(axis=0)))
        if spread > 0.0:
            raise ValueError(
                f"X's float32 values spread by at most {spread:.3g}: their "
                "squares round to 0 in float32, in which PCATransformer forms "
                "the covariance's products, and no direction would be found; "
                "rescale X (e.g. with StandardScaler) or pass it as float64."
            )

    def _set_from_moments(self, moments: _Moments, n_components) -> None:
        """Eigendecompose the pooled covariance and set the attributes."""
        n, d = moments.n, moments.mean.shape[0]
        cov = moments.m2 / (n - 1)  # (d, d)
        eigvals, eigvecs = _eigh(cov)  # ascending
        variances = eigvals.flip(0).clamp_min(0.0)[: min(n, d)]  # (min(n, d),)
        components = eigvecs.flip(1).T[: min(n, d)]  # (min(n, d), d)
        total = float(torch.trace(cov))
        self._set_spectrum(components, variances, total, n, moments.mean, n_components)
        self.__dict__.pop("_full_spectrum", None)
        self._scatter = moments.m2.cpu().double().numpy()

    def _fit_full(self, X: np.ndarray, n_components, device: torch.device) -> None:
        """Exact SVD of the centred data in float64 (the whole of X on device)."""
        acc = _acc_dtype(device)
        mean = self._stream_moments(X, device, diagonal=True).mean  # (d,)
        # torch.as_tensor warns of a read-only X (a memmap), which is only
        # read: numpy reads it on the CPU, and a copy goes to a device (a
        # warning filter around it would drop other threads' filters).
        if device.type == "cpu":  # the same float64 differences, one array
            Xc = torch.from_numpy(np.subtract(X, mean.numpy(), dtype=np.float64))
        else:
            Xt = torch.as_tensor(X) if X.flags.writeable else torch.tensor(X)
            Xc = Xt.to(device, acc) - mean  # (n, d)
        _, S, Vt = torch.linalg.svd(Xc, full_matrices=False)
        del Xc
        variances = S * S / (X.shape[0] - 1)  # (min(n, d),)
        total = float(variances.sum())
        self._set_spectrum(Vt, variances, total, X.shape[0], mean, n_components)
        # The whole spectrum is known, so partial_fit can continue exactly:
        # keep S² and the discarded axes (memory O(min(n, d) d)), from which
        # _stored_moments forms the d x d scatter only when it is needed.
        self.__dict__.pop("_scatter", None)
        rest = Vt[self.n_components_ :].cpu().double().numpy()  # (r - k, d)
        self._full_spectrum = ((S * S).cpu().double().numpy(), rest)

    def _fit_randomized(
        self, X: np.ndarray, n_components: int, device: torch.device
    ) -> None:
        """Halko et al.'s randomized SVD of the implicitly centred data."""
        n_samples, n_features = X.shape
        moments = self._stream_moments(X, device, diagonal=True)
        mean, total = moments.mean, float(moments.m2.sum()) / (n_samples - 1)
        n_iter = self.iterated_power
        if n_iter == "auto":
            n_iter = 7 if n_components < 0.1 * min(n_samples, n_features) else 4
        width = min(n_components + _N_OVERSAMPLES, n_samples, n_features)
        # only top components: no scatter
        self.__dict__.pop("_scatter", None)
        self.__dict__.pop("_full_spectrum", None)
        seed = seed_from_random_state(self.random_state)
        generator = torch.Generator().manual_seed(seed)
        omega = torch.randn(n_features, width, generator=generator, dtype=mean.dtype)
        Q = self._centred_matmul(X, omega.to(device), mean, device)  # (n, l)
        for _ in range(n_iter):  # power iterations, re-orthonormalised each time
            Q = torch.linalg.qr(Q).Q
            P = torch.linalg.qr(self._centred_rmatmul(X, Q, mean, device)).Q  # (d, l)
            Q = self._centred_matmul(X, P, mean, device)
        Q = torch.linalg.qr(Q).Q  # (n, l), orthonormal basis of the range
        B = self._centred_rmatmul(X, Q, mean, device).T  # (l, d) = Qᵀ (X - mean)
        _, S, Vt = torch.linalg.svd(B, full_matrices=False)
        variances = S[:n_components] ** 2 / (n_samples - 1)
        self._set_spectrum(
            Vt[:n_components], variances, total, n_samples, mean, n_components
        )
        discarded = min(n_samples, n_features) - n_components
        if discarded > 0:  # the discarded eigenvalues are unknown, their sum is not
            rest = max(total - float(variances.sum()), 0.0)
            self.noise_variance_ = rest / discarded

    def _centred_matmul(self, X, M: torch.Tensor, mean, device) -> torch.Tensor:
        """``(X - mean) @ M`` for ``M`` ``(d, l)``, streamed; returns ``(n, l)``."""
        out = []
        for xb in self._batches(X, device):
            out.append(((xb - mean.to(xb.dtype)) @ M.to(xb.dtype)).to(M.dtype))
        return torch.cat(out)

    def _centred_rmatmul(self, X, N: torch.Tensor, mean, device) -> torch.Tensor:
        """``(X - mean)ᵀ @ N`` for ``N`` ``(n, l)``, streamed; returns ``(d, l)``."""
        out = torch.zeros(X.shape[1], N.shape[1], dtype=N.dtype, device=device)
        start = 0
        for xb in self._batches(X, device):
            nb = N[start : start + xb.shape[0]].to(xb.dtype)  # (B, l)
            out += ((xb - mean.to(xb.dtype)).T @ nb).to(N.dtype)
            start += xb.shape[0]
        return out

    def _set_spectrum(
        self, components, variances, total, n_samples, mean, n_components
    ) -> None:
        """Keep the leading components and set every fitted attribute.

        Raises :class:`_SpectrumNotFinite`, setting nothing, where the
        solver's answer holds NaN or an infinity.
        """
        variances = variances.cpu().double().numpy()
        if not (
            np.isfinite(variances).all()
            and np.isfinite(total)
            and bool(torch.isfinite(torch.as_tensor(components)).all())
        ):
            raise _SpectrumNotFinite
        ratio = variances / total if total > 0 else np.zeros_like(variances)
        if isinstance(n_components, float):  # fewest components exceeding the fraction
            above = np.searchsorted(np.cumsum(ratio), n_components, side="right")
            n_components = min(int(above) + 1, len(variances))
        components = _flip_signs(components[:n_components])
        self.components_ = components.cpu().double().numpy()
        self.explained_variance_ = variances[:n_components].copy()
        self.explained_variance_ratio_ = ratio[:n_components].copy()
        self.singular_values_ = np.sqrt(self.explained_variance_ * (n_samples - 1))
        discarded = variances[n_components:]
        self.noise_variance_ = float(discarded.mean()) if discarded.size else 0.0
        self.mean_ = mean.cpu().double().numpy()
        self.n_components_ = n_components
        self.n_samples_ = n_samples
        self._n_features_out = n_components

    # -- encoding -------------------------------------------------------------
    def _transfer_encoder(self) -> TransferEncoder:
        """W, the mean and (when whitening) the scale as a trainable layer."""
        check_is_fitted(self)
        scale = self._scale() if self.whiten else None
        return linear_encoder(self.components_, self.mean_, scale)

    def _scale(self) -> np.ndarray:
        """Per-component divisor of the codes: sqrt(variance) when whitening."""
        if not self.whiten:
            return np.ones_like(self.explained_variance_)
        # Near-zero variances (rank-deficient data) would give inf codes.
        return np.maximum(np.sqrt(self.explained_variance_), np.finfo(np.float64).eps)

    def _encode(self, X: np.ndarray) -> np.ndarray:
        device, dtype = self._device(), _compute_dtype(X, self._device())
        encoder = (self.components_ / self._scale()[:, None]).T  # (d, k)
        if device.type == "cpu":
            return self._encode_cpu(X, encoder.astype(X.dtype))
        encoder = torch.as_tensor(encoder, dtype=dtype, device=device)
        mean = torch.as_tensor(self.mean_, dtype=dtype, device=device)  # (d,)
        rows = min(self._rows_per_batch(X.shape[1]), X.shape[0])
        scratch = torch.empty(rows, X.shape[1], dtype=dtype, device=device)

        def encode(xb: torch.Tensor) -> torch.Tensor:
            # Centre before projecting: x - mean is small, whereas x @ W - mean @ W
            # cancels in float32 when the mean is large (measured: 30x the error).
            # The reused buffer saves allocating a batch-sized tensor each time.
            xc = torch.sub(xb, mean, out=scratch[: xb.shape[0]])  # (B, d)
            return xc @ encoder  # (B, k)

        return self._batched(X, encode, self.n_components_)

    def _raise_not_finite(self, X: np.ndarray, result: str) -> NoReturn:
        """The base class's error, without its float32 limit for float64 data.

        The covariance and the spectrum of float64 X are float64 wherever
        the device has it (not on MPS), and only the codes ``transform``
        returns are float32: the base class's check would blame float32
        squares (above 5.8e18) for data of 1e100 that fit accepts.
        """
        if X.dtype != np.float64 or _acc_dtype(self._device()) != torch.float64:
            super()._raise_not_finite(X, result)
        assert_all_finite(X, input_name="X", estimator_name=type(self).__name__)
        where = (
            "overflowed float32 (above 3.4e38), in which transform returns them"
            if result == "codes"
            else "overflowed float64"
        )
        raise ValueError(
            f"The {result} computed by {type(self).__name__} {where}: X holds "
            f"values up to {float(np.abs(X).max()):.3g} in magnitude; rescale X "
            "(e.g. with StandardScaler)."
        )

    def _encode_cpu(self, X: np.ndarray, encoder: np.ndarray) -> np.ndarray:
        """``(X - mean_) @ encoder`` in cache-sized blocks, on the CPU threads.

        Each block is centred into a small buffer that stays in cache and
        multiplied straight into the output, so X is read once and nothing
        the size of a batch is allocated. Centring before projecting keeps
        float32 codes exact when the mean is large (``X @ W - mean @ W``
        cancels: measured 30x the error).
        """
        n, d = X.shape
        rows = self.batch_size or _cpu_block_rows(d)
        out = np.empty((n, encoder.shape[1]), dtype=np.float32)
        mean = self.mean_.astype(X.dtype)
        encoder = np.ascontiguousarray(encoder)  # (d, k)
        w = torch.from_numpy(encoder)
        centre_into = _subtractor(X, mean)

        def work(blocks: list[slice]) -> None:
            buf = np.empty((min(rows, n), d), dtype=X.dtype)
            for sl in blocks:
                xc = buf[: sl.stop - sl.start]
                centre_into(sl, xc)
                if X.dtype == np.float32:
                    torch.mm(torch.from_numpy(xc), w, out=torch.from_numpy(out[sl]))
                else:  # float64 data: project in float64, store float32
                    out[sl] = xc @ encoder

        with (
            _Workers(torch.device("cpu"), blas=True) as workers,
            torch.inference_mode(),
            np.errstate(all="ignore"),  # NaN and overflow: checked below
        ):
            workers.map(work, n, rows)
        if not np.isfinite(out).all():  # NaN or inf in X, or an overflow
            self._raise_not_finite(X, result="codes")
        return out

    def _batched(self, X: np.ndarray, fn, n_out: int, out_dtype=np.float32):
        """``_map_batches`` in X's own precision (float64 input stays float64)."""
        device = self._device()
        with _no_tf32(device):
            return self._map_batches(
                X,
                fn,
                n_out,
                device=device,
                batch_size=self._rows_per_batch(X.shape[1]),
                dtype=out_dtype,
                in_dtype=_compute_dtype(X, device),
            )
