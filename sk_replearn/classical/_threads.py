"""Threads for the classical estimators' passes over the rows of X.

:class:`_Workers` shares the row blocks of one pass among Python threads,
each running torch (and the BLAS behind numpy) single-threaded, so that a
pass has one join, as scikit-learn's OpenMP loops do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import numpy as np
import torch
from threadpoolctl import ThreadpoolController

from ..data import batch_slices

T = TypeVar("T")

_CONTROLLER: ThreadpoolController | None = None


def _blas_one_thread():
    """numpy's BLAS held to one thread (a context manager).

    The controller lists the loaded BLAS libraries once (that scan costs
    milliseconds per fit otherwise); numpy's is loaded by the time we run.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """torch's CPU operations on one thread inside the block, then as before.

    For the small operations around a pass (a (k, d) block of centers, a
    small matrix's eigh): at two threads torch wakes its second thread for
    each, which can cost more than the operation (6 ms of a 30 ms predict).
    """
    threads = torch.get_num_threads()
    if threads > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if threads > 1:
            torch.set_num_threads(threads)


class _Workers:
    """Share the row blocks of a pass among threads that run torch serially.

    torch's own CPU threads meet at a barrier after every operation; a Lloyd
    iteration runs ~10 small operations per block, so thousands of barriers.
    That is cheap on an idle machine, but when other processes compete for
    the cores each barrier waits for a time slice (measured: a 2-thread fit
    50x slower than a 1-thread one). With ``torch.get_num_threads()`` Python
    threads, each running torch single-threaded on a contiguous share of the
    blocks, a pass has one join, as scikit-learn's OpenMP loop does. Torch
    ops release the GIL, so the threads run in parallel. On an accelerator,
    or with one thread, blocks run in order in the calling thread.

    ``blas=True`` also holds numpy's BLAS to one thread while the workers
    exist (as scikit-learn's ``KMeans`` does), for passes whose blocks call
    numpy's matrix products: the thread count is then torch's, in total.
    """

    def __init__(self, device: torch.device, *, blas: bool = False):
        self.n = torch.get_num_threads() if device.type == "cpu" else 1
        self._blas = blas and device.type == "cpu"
        self._pool = None
        self._limits = None

    def __enter__(self) -> _Workers:
        if self._blas:
            self._limits = _blas_one_thread()
        if self.n > 1:
            torch.set_num_threads(1)
            # MKL's thread count is per thread: set it in each worker too
            self._pool = ThreadPoolExecutor(
                self.n, initializer=torch.set_num_threads, initargs=(1,)
            )
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
            torch.set_num_threads(self.n)
        if self._limits is not None:
            self._limits.restore_original_limits()
            self._limits = None

    def map(self, fn: Callable[[list[slice]], T], n_rows: int, chunk: int) -> list[T]:
        """``fn(blocks)`` for each thread's share of the rows ``range(n_rows)``.

        Each thread gets an equal contiguous share of the rows, cut into
        blocks of at most ``chunk`` rows (7 blocks split 3 and 4 would give
        one thread a third more work).
        """
        if self._pool is None or n_rows <= chunk:
            return [fn(list(batch_slices(n_rows, chunk)))]
        threads = min(self.n, -(-n_rows // chunk))
        bounds = np.linspace(0, n_rows, threads + 1).astype(int)
        shares = [
            [slice(lo + b.start, lo + b.stop) for b in batch_slices(hi - lo, chunk)]
            for lo, hi in zip(bounds[:-1], bounds[1:])
        ]
        return list(self._pool.map(fn, shares))


_SERIAL = _Workers(torch.device("meta"))
