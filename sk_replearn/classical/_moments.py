"""PCA's numerics as pure tensor functions: exact moments, merged in float64.

The default solver of :class:`~sk_replearn.PCATransformer` streams X
one batch at a time; each batch gives its count, mean and centred scatter
(:func:`_batch_moments`), and :func:`_merge_moments` merges them exactly
(the pairwise update of Chan, Golub and LeVeque), so float32 data far from
the origin keeps its small eigenvalues and ``partial_fit`` equals ``fit``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import torch

from ._threads import _one_torch_thread, _Workers

try:  # the fused shift-and-sum loop, where a C compiler built it
    from . import _kernels
except ImportError:  # pragma: no cover - NumPy's passes instead
    _kernels = None


# -- numerics: pure tensor functions ------------------------------------------
class _Moments(NamedTuple):
    """Count, mean ``(d,)`` and centred scatter ``Σ (x-mean)(x-mean)ᵀ``.

    ``m2`` is ``(d, d)``, or only its diagonal ``(d,)`` when that is all the
    solver needs.
    """

    n: int
    mean: torch.Tensor
    m2: torch.Tensor


def _batch_moments(xb: torch.Tensor, shift: torch.Tensor, diagonal: bool) -> _Moments:
    """Exact moments of one batch ``xb`` ``(B, d)``, accumulated in ``shift.dtype``.

    The mean is a float64 sum of the raw batch. The scatter is the Gram matrix
    of the batch centred on ``shift`` (close to its mean), so the float32
    products hold small numbers and nothing cancels; the remaining offset
    ``mean - shift`` is removed exactly in float64.
    """
    acc = shift.dtype
    nb = xb.shape[0]
    mean = _column_sum(xb, acc) / nb  # (d,)
    shift = shift.to(xb.dtype)  # the value actually subtracted below
    offset = mean - shift.to(acc)  # (d,)
    xc = xb - shift  # (B, d)
    if diagonal:
        gram = _column_sum(xc * xc, acc)  # (d,)
        return _Moments(nb, mean, gram - nb * offset * offset)
    gram = (xc.T @ xc).to(acc)  # (d, d), in the batch's dtype, never TF32
    return _Moments(nb, mean, torch.addr(gram, offset, offset, alpha=-nb))


# Rows of a block of the CPU passes: about 2**18 values (1 MiB of float32,
# with its 2 MiB float64 copy in the covariance pass), so a block stays in
# the cache between being written and being read again. Measured on 2 cores
# (200k x 256, float32), against 2**20: the fit at two threads went from
# 1.15-1.17 to 0.83-0.85 times scikit-learn's (two workers' 4 MiB blocks
# evicted each other); one thread gained little there, but does on other
# machines (``_ONE_WORKER_BLOCK_ROWS``). Blocks are pooled in float64
# every ``_POOL_ROWS`` rows.
_CPU_BLOCK_VALUES = 2**18
_POOL_ROWS = 2**16
#: A block of the covariance pass on one thread: at least this many rows,
#: within ``_ONE_WORKER_BLOCK_VALUES`` values (4 MiB of float32). BLAS
#: ``syrk`` pays a fixed cost per block (reading and writing the d x d
#: product) against work in proportion to its rows, and a lone worker has
#: the cache to itself. Measured on one thread of an AVX2 machine (float32):
#: 200k x 256 took 218-220 ms in 4096-row blocks against 240 ms in 1024 (0.94
#: against 1.03 times scikit-learn's 233 ms, whose one ``syrk`` over all rows
#: took 193 ms); 60k x 784, 562 ms in 1337-row blocks against 596 in 334
#: (scikit-learn 535). Narrow data, whose 2**18-value blocks already have
#: this many rows, keep them (800k x 64: 78 ms against 79).
_ONE_WORKER_BLOCK_ROWS = 4096
_ONE_WORKER_BLOCK_VALUES = 2**20


def _cpu_block_rows(n_features: int) -> int:
    """Rows of one cache-sized block of ``n_features`` columns."""
    return max(64, _CPU_BLOCK_VALUES // n_features)


def _covariance_block_rows(n_features: int, n_workers: int) -> int:
    """Rows of a block of the covariance pass shared by ``n_workers`` threads.

    :func:`_cpu_block_rows` when several threads share the cache; for one,
    at least ``_ONE_WORKER_BLOCK_ROWS`` rows within
    ``_ONE_WORKER_BLOCK_VALUES`` values.
    """
    rows = _cpu_block_rows(n_features)
    if n_workers > 1:
        return rows
    longest = max(64, _ONE_WORKER_BLOCK_VALUES // n_features)
    return min(max(rows, _ONE_WORKER_BLOCK_ROWS), longest)


def _numpy_moments(
    X: np.ndarray, shift: np.ndarray | None, workers: _Workers, rows: int
) -> _Moments:
    """Exact moments of all of X ``(n, d)`` in one pass over its memory (CPU).

    Each block of ``rows`` rows is summed in float64, shifted into a buffer
    that stays in the cache, and one symmetric rank-k product ``bufᵀ buf``
    (numpy's ``X.T @ X`` calls BLAS ``syrk``, half the work of a general
    product) gives its scatter about ``shift`` while the block is still in
    cache: X is read from memory once, where centring, summing and
    multiplying batch by batch read it three times. Products are in X's
    dtype within ``_POOL_ROWS`` rows and pooled in float64 across them; the
    offset of the mean from ``shift`` is removed exactly in float64, as in
    :func:`_batch_moments`, and the mean is a float64 sum of X.

    The sum and the shift of a block are one compiled loop where the package
    was built with a C compiler (:func:`_shift_summer`).

    Parameters
    ----------
    X : ndarray (n, d), float32 or float64
    shift : ndarray (d,) or None
        A point near the mean; None takes the mean of the first block.
    workers : _Workers
        Threads sharing the blocks (each pools its own share).
    rows : int
        Rows per block.

    Returns
    -------
    _Moments
        On the CPU, in float64. NaN or infinity in X, or an overflow of the
        products, make them non-finite: the caller checks.
    """
    n, d = X.shape
    if shift is None:
        shift = X[:rows].sum(0, dtype=np.float64) / min(rows, n)
    shift = np.asarray(shift).astype(X.dtype)  # the value actually subtracted
    group = max(1, _POOL_ROWS // rows)  # blocks per float64 pooling

    def work(blocks: list[slice]) -> tuple[np.ndarray, np.ndarray]:
        shift_and_sum = _shift_summer(X, shift, min(rows, n))  # own buffers
        buf = np.empty((min(rows, n), d), dtype=X.dtype)
        total = np.zeros((d, d))  # float64
        sums = np.zeros(d)  # float64
        part = np.zeros((d, d), dtype=X.dtype)
        part_sums = np.zeros(d)  # float64
        for i, sl in enumerate(blocks):
            b = buf[: sl.stop - sl.start]
            shift_and_sum(sl, b, part_sums)
            part += b.T @ b  # (d, d)
            if (i + 1) % group == 0 or i + 1 == len(blocks):
                total += part
                part[...] = 0.0
                sums += part_sums
                part_sums[...] = 0.0
        return total, sums

    with np.errstate(all="ignore"):  # NaN and overflow are the caller's check
        results = workers.map(work, n, rows)
        scatter = sum(r[0] for r in results)  # (d, d), float64
        mean = sum(r[1] for r in results) / n  # (d,), float64
        offset = mean - shift.astype(np.float64)
        m2 = scatter - n * np.outer(offset, offset)
    return _Moments(n, torch.from_numpy(mean), torch.from_numpy(m2))


def _shift_summer(
    X: np.ndarray, shift: np.ndarray, rows: int
) -> Callable[[slice, np.ndarray, np.ndarray], object]:
    """``f(block, out, sums)``: ``out = X[block] - shift``, ``sums += X[block]``.

    ``sums`` is float64 and the sum exact per value; ``block`` has at most
    ``rows`` rows, and each thread makes its own ``f`` (NumPy's has buffers).
    With the compiled loop (C-contiguous X) each value of X is read once.
    Otherwise NumPy copies the block into a float64 buffer, sums it by
    multiplying a vector of ones by it (BLAS ``dgemv``), then subtracts
    (:func:`_subtractor`). Measured per pass over 200k x 256 float32 on one
    thread: 16-19 ms for the compiled loop, 35-40 ms for NumPy's two passes,
    47 ms with NumPy's upcasting ``sum(0, dtype=float64)`` instead of dgemv.
    """
    if _kernels is not None and X.flags.c_contiguous:
        is_double = X.dtype == np.float64
        d = X.shape[1]
        return lambda sl, out, sums: _kernels.shift_sum(
            X[sl], shift, out, sums, d, is_double
        )
    shift_into = _subtractor(X, shift)
    ones = np.ones(rows)  # float64
    wide = None if X.dtype == np.float64 else np.empty((rows, X.shape[1]))

    def numpy_pass(sl: slice, out: np.ndarray, sums: np.ndarray) -> None:
        m, xb = sl.stop - sl.start, X[sl]
        if wide is not None:
            np.copyto(wide[:m], xb)  # brings xb into the cache
        sums += ones[:m] @ (xb if wide is None else wide[:m])
        shift_into(sl, out)

    return numpy_pass


def _subtractor(
    X: np.ndarray, value: np.ndarray
) -> Callable[[slice, np.ndarray], object]:
    """``f(rows, out)`` writes ``X[rows] - value`` into ``out`` (X's dtype).

    torch's broadcast subtraction runs at twice NumPy's speed and reads X in
    place, unless X is read-only (a memory map) or laid out backwards: such
    X is subtracted by NumPy (slower, the same values).
    """
    if not (X.flags.writeable and min(X.strides, default=1) > 0):
        return lambda rows, out: np.subtract(X[rows], value, out=out)
    X_t, value_t = torch.from_numpy(X), torch.from_numpy(value)
    return lambda rows, out: torch.sub(X_t[rows], value_t, out=torch.from_numpy(out))


def _column_sum(x: torch.Tensor, acc: torch.dtype) -> torch.Tensor:
    """Sum of the rows of ``x`` ``(B, d)``, accumulated in ``acc``; ``(d,)``.

    On CPU NumPy's upcasting sum is used: torch's ``sum(dtype=float64)`` of a
    float32 tensor was measured 15x slower there (56 ms against 3.5 ms for
    16384 x 256), which would dominate a PCA fit.
    """
    if x.device.type == "cpu":
        return torch.from_numpy(x.numpy().sum(0, dtype=np.float64)).to(acc)
    return x.sum(0, dtype=acc)


def _merge_moments(a: _Moments, b: _Moments) -> _Moments:
    """Pool two sets of moments exactly (Chan, Golub and LeVeque's update)."""
    n = a.n + b.n
    delta = b.mean - a.mean  # (d,)
    weight = a.n * b.n / n
    if a.m2.ndim == 1:
        m2 = a.m2 + b.m2 + weight * delta * delta
    else:  # addr fuses the rank-one update: fewer passes over (d, d)
        m2 = torch.addr(a.m2 + b.m2, delta, delta, alpha=weight)
    return _Moments(n, a.mean + delta * (b.n / n), m2)


def _flip_signs(components: torch.Tensor) -> torch.Tensor:
    """Make the largest-magnitude entry of each row ``(k, d)`` positive.

    scikit-learn 1.9's ``svd_flip(..., u_based_decision=False)``, which it
    applies for every solver, so components agree with ``PCA``'s.
    """
    rows = torch.arange(components.shape[0], device=components.device)
    signs = torch.sign(components[rows, components.abs().argmax(1)])
    signs[signs == 0] = 1.0
    return components * signs[:, None]


def _eigh(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.linalg.eigh``, single-threaded on CPU for matrices up to 1024².

    LAPACK's eigh on a small matrix is a long chain of small steps: extra
    threads add little, and on a shared CPU their barriers can stall it for
    seconds (measured: 0.02 s on one thread, up to 7 s on two).
    """
    if matrix.device.type != "cpu" or matrix.shape[0] > 1024:
        return torch.linalg.eigh(matrix)
    with _one_torch_thread():
        return torch.linalg.eigh(matrix)


@contextmanager
def _tf32(device: torch.device, on: bool) -> Iterator[None]:
    """TF32 matmuls on CUDA switched on or off inside the block, then restored."""
    if device.type != "cuda":
        yield
        return
    matmul = torch.backends.cuda.matmul
    # torch >= 2.9 keeps the setting as fp32_precision (its "none" inherits
    # the global one), which always reads; writing the legacy allow_tf32
    # would turn "none" into an explicit value and mark the legacy and new
    # APIs as mixed, after which torch.get_float32_matmul_precision()
    # raises. The legacy flag only on a torch without fp32_precision.
    if hasattr(matmul, "fp32_precision"):
        name, previous = "fp32_precision", matmul.fp32_precision
        value = "tf32" if on else "ieee"
    else:
        name, previous, value = "allow_tf32", matmul.allow_tf32, on
    setattr(matmul, name, value)
    try:
        yield
    finally:
        setattr(matmul, name, previous)


def _no_tf32(device: torch.device):
    """Disable TF32 matmuls on CUDA (10-bit mantissas ruin PCA's small eigenvalues)."""
    return _tf32(device, on=False)


def _compute_dtype(X: np.ndarray, device: torch.device) -> torch.dtype:
    """The dtype batches are computed in: X's own (float32 on MPS).

    A float32 cast would lose the digits of float64 data with a large mean.
    """
    if X.dtype == np.float64 and device.type != "mps":
        return torch.float64
    return torch.float32


def _acc_dtype(device: torch.device) -> torch.dtype:
    # MPS has no float64; every other device accumulates in double.
    return torch.float32 if device.type == "mps" else torch.float64
