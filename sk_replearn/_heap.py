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
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

__all__ = ["release_heap", "retain_heap"]

#: mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

#: glibc's ceiling for its dynamic mmap threshold (DEFAULT_MMAP_THRESHOLD_MAX:
#: 32 MiB with 8-byte longs), and the trim threshold it pairs with it (2x).
_MMAP_THRESHOLD = 4 * 1024 * 1024 * ctypes.sizeof(ctypes.c_long)
_TRIM_THRESHOLD = 2 * _MMAP_THRESHOLD

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
