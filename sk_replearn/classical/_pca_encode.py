"""How :class:`~sk_replearn.classical.pca.PCATransformer` encodes X.

:class:`PCAEncodingMixin` holds the projection ``(X - mean_) @ W`` behind
``transform`` and ``fit_transform``: in cache-sized blocks on the CPU
threads, or batch by batch on another device; the whitening scale, the
batched map in X's own precision that ``inverse_transform`` and
``score_samples`` use too, the error for codes or statistics that
overflow, and the encoder as a trainable layer for fine-tuning.
"""

from __future__ import annotations

from typing import NoReturn

import numpy as np
import torch
from sklearn.utils import assert_all_finite
from sklearn.utils.validation import check_is_fitted

from ..nn.surgery import TransferEncoder, linear_encoder
from ._moments import _acc_dtype, _compute_dtype, _cpu_block_rows, _no_tf32, _subtractor
from ._threads import _Workers


class PCAEncodingMixin:
    """The encoding of :class:`~sk_replearn.classical.pca.PCATransformer`.

    Mixed into ``PCATransformer``: it reads the fitted attributes, the
    batching of :class:`~sk_replearn.base.BaseRepresentation`
    (``_map_batches``) and ``_rows_per_batch`` of
    :class:`~sk_replearn.classical._pca_solvers.PCASolversMixin`.
    """

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
