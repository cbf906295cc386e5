"""How :class:`~sk_replearn.classical.pca.PCATransformer` finds its axes.

:class:`PCASolversMixin` holds the fit machinery behind ``fit`` and
``partial_fit``: the choice of solver and the check of ``n_components``,
the batches X is streamed in, the count, mean and centred scatter merged
in float64 (``_moments``), and the three solvers (the covariance
eigendecomposition, the exact SVD of ``"full"`` and Halko et al.'s
randomized SVD) which all end in ``_set_spectrum``, setting the fitted
attributes.
"""

from __future__ import annotations

from collections.abc import Iterator
from numbers import Integral

import numpy as np
import torch
from sklearn.utils import assert_all_finite

from .._seeding import seed_from_random_state
from ..data import batch_slices
from ._moments import (
    _acc_dtype,
    _batch_moments,
    _column_sum,
    _covariance_block_rows,
    _eigh,
    _flip_signs,
    _merge_moments,
    _Moments,
    _no_tf32,
    _numpy_moments,
)
from ._threads import _Workers

_N_OVERSAMPLES = 10  # extra random directions of the randomized solver (Halko)


def _checks_own_result(device: torch.device, solver: str) -> bool:
    """Whether the fit's pass finds NaN and overflow in its own result."""
    return device.type == "cpu" and solver == "covariance_eigh"


class _SpectrumNotFinite(ArithmeticError):
    """An SVD solver's variances or axes came out NaN or infinite."""


def _finite(moments: _Moments) -> bool:
    return bool(torch.isfinite(moments.mean).all() and torch.isfinite(moments.m2).all())


class PCASolversMixin:
    """The solvers of :class:`~sk_replearn.classical.pca.PCATransformer`.

    Mixed into ``PCATransformer``, whose parameters it reads; it uses the
    validation of :class:`~sk_replearn.base.BaseRepresentation` and
    ``_raise_not_finite`` of
    :class:`~sk_replearn.classical._pca_encode.PCAEncodingMixin`.
    """

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
