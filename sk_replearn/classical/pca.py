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

The solvers come from
:class:`~sk_replearn.classical._pca_solvers.PCASolversMixin`, and the
projection behind ``transform`` from
:class:`~sk_replearn.classical._pca_encode.PCAEncodingMixin`.
"""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np
import torch
from scipy.linalg import LinAlgWarning
from sklearn.utils import assert_all_finite
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from .._validation import float_dtypes, positive_strides
from .._warn import warn_user
from ..base import BaseRepresentation, fit_context
from ._moments import _acc_dtype, _compute_dtype, _no_tf32
from ._pca_encode import PCAEncodingMixin
from ._pca_solvers import PCASolversMixin

__all__ = ["PCATransformer"]

#: get_precision forms the complement of the components as ``I - WᵀW`` when
#: the noise variance is at least this fraction of the largest eigenvalue;
#: below it, from a Householder QR (see get_precision).
_DIRECT_COMPLEMENT = 1e-6


class PCATransformer(PCASolversMixin, PCAEncodingMixin, BaseRepresentation):
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
