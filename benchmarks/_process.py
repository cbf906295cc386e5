"""A benchmark's measurement in a process of its own, read back as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def child_json(
    script: str, args: list[str], *, threads: int, retain_heap: bool | None = None
) -> dict:
    """Run ``python script *args``; return the JSON of its last output line.

    The child gets ``OMP_NUM_THREADS=threads`` and, unless ``retain_heap``
    is None, ``SK_REPLEARN_RETAIN_HEAP`` set to 1 or 0: settings that belong
    to the whole process, which is why the measurement runs in its own. It
    starts in the benchmarks folder, so it imports the private helpers
    there. A failing child raises :class:`subprocess.CalledProcessError`.
    """
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    if retain_heap is not None:
        env["SK_REPLEARN_RETAIN_HEAP"] = "1" if retain_heap else "0"
    out = subprocess.run(
        [sys.executable, script, *args],
        env=env,
        cwd=Path(__file__).resolve().parent,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def status_kib(field: str) -> int:
    """A field of ``/proc/self/status`` in KiB (Linux), e.g. ``"VmHWM"``.

    ``VmHWM`` is the high-water mark of this process's own memory map. Use
    it rather than ``ru_maxrss``, which a child started by ``subprocess``
    inherits from its parent (the kernel keeps the larger of the two at
    ``exec``), so that a child reports its parent's peak whenever its own
    is smaller.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")
