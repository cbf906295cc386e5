"""Wall-clock time of one benchmarked call, started from a quiet machine."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

#: Seconds to wait before each timed call. A BLAS or OpenMP thread pool
#: keeps spinning on its cores for a while after a call returns, so without
#: a pause each call pays for the previous one's threads. Measured at two
#: threads (PCA on 200k x 256 float32): our fit right after scikit-learn's
#: took a median 198 ms, 157 ms after a 0.3 s pause; our transform 70 ms
#: against 44 ms.
SETTLE_S = 0.3


def timed(fn: Callable[[], object]) -> float:
    """Seconds that ``fn()`` takes, after :data:`SETTLE_S` of rest."""
    time.sleep(SETTLE_S)
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start
