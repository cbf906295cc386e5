"""The device a computation runs on: ``device="auto"`` resolved and checked,
and the caller's autocast kept out of a ``transform``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["no_autocast", "resolve_device"]


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn the ``device`` parameter into a :class:`torch.device`.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` picks CUDA when it is available and the CPU otherwise.
        Anything :class:`torch.device` understands (``"cpu"``, ``"cuda"``,
        ``"cuda:1"``, ``"mps"``) is accepted as long as that device exists.

    Returns
    -------
    torch.device
        The device to compute on.

    Raises
    ------
    ValueError
        If ``device`` is not a device name, or names a device this machine
        does not have.

    Examples
    --------
    >>> from sk_replearn.base import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a device name; use 'auto', 'cpu', "
            "'cuda', 'cuda:<index>' or 'mps'."
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} asks for CUDA but no CUDA device is "
                "available; use device='auto' or device='cpu'."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} names CUDA device {dev.index} but only "
                f"{torch.cuda.device_count()} are visible."
            )
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(
                f"device={device!r} asks for Apple MPS, which is not "
                "available here; use device='auto' or device='cpu'."
            )
    return dev


@contextlib.contextmanager
def no_autocast(device) -> Iterator[None]:
    """The caller's autocast off for the CPU and ``device`` inside the block.

    A ``transform`` computes in the precision its estimator's parameters
    say (a network's ``precision`` enters autocast again inside), not in
    that of an ``autocast`` block around the call, which would give
    bfloat16 distances and features numpy cannot read. Autocast is
    per thread: a worker thread enters this block itself.
    """
    kind = torch.device(device).type
    with contextlib.ExitStack() as stack:
        for each in {"cpu", kind} & {"cpu", "cuda", "mps", "xpu"}:
            stack.enter_context(torch.autocast(device_type=each, enabled=False))
        yield
