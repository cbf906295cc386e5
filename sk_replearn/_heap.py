"""glibc's heap during training on the CPU: keep it between steps.

A training step allocates its activations and gradients afresh (tens of
MiB) and frees them all at its end. glibc's ``malloc`` gives the freed top of
its heap back to the kernel once it exceeds the *trim threshold*, so every
step faults the same memory in again, page by page, and the kernel zeroes
each page. glibc raises that threshold by itself (to twice the largest
block it has had to ``mmap`` and has since freed, up to 64 MiB on 64-bit
machines), but only once the process has freed a block that large: a
process that trains on a few MiB of data never gets there. On MNIST-1D,
SimCLR's step faulted in 2,000 to 5,000 pages (8 to 20 MiB), about a tenth
of its time.

:func:`retain_heap`, at the first fit on the CPU, moves the two thresholds
to the ceiling glibc's own adjustment can reach (blocks of up to 32 MiB from
the heap, 64 MiB of free heap kept), where a step's memory stays mapped and
is reused; a step then faults in tens of pages, not thousands. They stay
there for the rest of the process, as glibc's own adjustment would (glibc
has no call that goes back to it). :func:`release_heap`, at the end of every
fit, hands the heap's free memory back (``malloc_trim``), so a fitted model
does not keep its training memory. Both do nothing off glibc, and nothing
when the user has set glibc's malloc parameters (``MALLOC_*_`` variables or
``glibc.malloc`` tunables); ``SK_REPLEARN_RETAIN_HEAP=0`` turns them off.

``transform`` on the CPU keeps the heap across its batches too
(:func:`kept_heap`), and cuts its batches so that their widest tensor fits
:data:`BATCH_BYTES`, a quarter of the mmap threshold: a larger tensor is
mapped afresh at every batch whatever the thresholds, and the kernel zeroes
its pages again. :func:`widest_output` measures that tensor on a small
probe batch, :func:`batch_within_budget` turns it into a batch size.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import sys
from collections.abc import Callable, Iterator

import torch

__all__ = [
    "BATCH_BYTES",
    "batch_within_budget",
    "kept_heap",
    "release_heap",
    "retain_heap",
    "widest_output",
]

#: mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

#: glibc's ceiling for its dynamic mmap threshold (DEFAULT_MMAP_THRESHOLD_MAX:
#: 32 MiB with 8-byte longs), and the trim threshold it pairs with it (2x).
_MMAP_THRESHOLD = 4 * 1024 * 1024 * ctypes.sizeof(ctypes.c_long)
_TRIM_THRESHOLD = 2 * _MMAP_THRESHOLD
#: Most bytes the widest tensor of one ``transform`` batch may take on the CPU:
#: a quarter of the mmap threshold, so that every tensor of a batch comes from
#: the kept heap (a larger one is mapped afresh, and faulted in page by page,
#: at every batch) and a batch's activations stay near the caches.
BATCH_BYTES = _MMAP_THRESHOLD // 4

#: The user's own settings of glibc's malloc, which we leave alone.
_USER_SETTINGS = (
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_MAX_",
)

_state: dict[str, object] = {"libc": None, "retained": False}


def _glibc():
    """The C library's handle where it is glibc and we may tune it, else None."""
    if os.environ.get("SK_REPLEARN_RETAIN_HEAP", "1").strip() == "0":
        return None
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    if any(name in os.environ for name in _USER_SETTINGS):
        return None
    if "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return None
    if _state["libc"] is None:
        try:
            _state["libc"] = ctypes.CDLL(None)
        except OSError:  # pragma: no cover - a static or unusual process
            return None
    return _state["libc"]


def retain_heap() -> bool:
    """Keep freed memory in glibc's heap for the next step (once a process).

    Returns
    -------
    retained : bool
        Whether the thresholds are (now) at glibc's ceiling.
    """
    libc = _glibc()
    if libc is None:
        return False
    if not _state["retained"]:
        mallopt = getattr(libc, "mallopt", None)
        if mallopt is None:  # pragma: no cover - not glibc after all
            return False
        _state["retained"] = bool(
            mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
            and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
        )
    return bool(_state["retained"])


def release_heap() -> None:
    """Give the heap's free memory back to the kernel (after a fit)."""
    libc = _glibc()
    if libc is not None and _state["retained"]:
        libc.malloc_trim(0)


@contextlib.contextmanager
def kept_heap(enabled: bool = True) -> Iterator[None]:
    """Keep the heap between the steps of the block; hand it back after.

    :func:`retain_heap` on entry and :func:`release_heap` on exit (also on
    an error), where ``enabled``: the training loop on the CPU
    (``RepresentationNet.fit_loop``) passes True, and so does batched
    ``transform`` when it has several batches; a single batch passes False
    (nothing to keep between batches, and ``malloc_trim`` costs 20 to 400 µs).

    Parameters
    ----------
    enabled : bool, default=True
        Whether to keep the heap at all.
    """
    if enabled:
        retain_heap()
    try:
        yield
    finally:
        if enabled:
            release_heap()


def widest_output(module: torch.nn.Module, call: Callable[[], object]) -> int:
    """Bytes of the largest tensor a submodule of ``module`` outputs in ``call()``.

    Forward hooks on every submodule (``module`` included) see each output
    (a tensor, or a tuple or list of them); ``call`` runs without gradients.

    Parameters
    ----------
    module : torch.nn.Module
        The network ``call`` runs.
    call : callable
        Runs ``module`` (or part of it) on a small batch.

    Returns
    -------
    int
        The size in bytes of the largest output, 0 when nothing ran.
    """
    widest = 0

    def hook(_module, _inputs, output) -> None:
        nonlocal widest
        outputs = output if isinstance(output, (tuple, list)) else (output,)
        for t in outputs:
            if isinstance(t, torch.Tensor):
                widest = max(widest, t.numel() * t.element_size())

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    try:
        with torch.inference_mode():
            call()
    finally:
        for handle in handles:
            handle.remove()
    return widest


def batch_within_budget(bytes_per_unit: float, most: int) -> int:
    """Units (rows or tokens) of a batch whose widest tensor fits BATCH_BYTES.

    Parameters
    ----------
    bytes_per_unit : float
        Bytes the widest activation takes per row (or token).
    most : int
        The batch size to keep when it fits.

    Returns
    -------
    int
        ``most`` or fewer, at least 1.
    """
    if bytes_per_unit <= 0:
        return most
    return int(min(most, max(1, BATCH_BYTES // bytes_per_unit)))
