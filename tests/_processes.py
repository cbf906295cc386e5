"""Running a test function in several gloo processes started from this one."""

from __future__ import annotations

import multiprocessing
import socket
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    """A TCP port of this machine that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(target, rank: int, world: int, port: int, out: Path) -> None:
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        target(rank, world, out)
    finally:
        dist.destroy_process_group()


def run_ranks(target: Callable[[int, int, Path], None], out: Path, world: int = 2):
    """Run ``target(rank, world, out)`` in ``world`` processes of one gloo group.

    The processes are forked (they start with the package imported), or
    spawned where a CUDA device exists: there autograd starts its device
    threads at a backward pass, and a forked child of such a process cannot
    run autograd (on an H200, forking whenever ``torch.cuda.is_initialized()``
    was False still failed so). Each writes what the test compares under ``out``.
    Fails the test if one of them does not exit cleanly within two minutes.
    """
    import torch

    port = free_port()
    method = "spawn" if torch.cuda.is_available() else "fork"
    context = multiprocessing.get_context(method)
    procs = [
        context.Process(target=_rank_main, args=(target, r, world, port, out))
        for r in range(world)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0, f"rank process exited with {proc.exitcode}"
