"""Nearest-centre assignment as torch tensor operations, on any device.

``_nearest`` labels a block of rows with its nearest centre, ties going to
the lowest index; ``_assign`` labels every row of x, and ``_assign_and_sum``
also brings the per-cluster sums up to date (``_sum_rows_by_label`` and
``_pool`` add them), a block of rows at a time. The Hamerly-bounded pass and
the compiled loop are in ``_hamerly``, Lloyd's loop in ``_lloyd``.
"""

from __future__ import annotations

import torch

from ._threads import _SERIAL, _Workers


# -- tensor math ------------------------------------------------------------
def _nearest(
    xb: torch.Tensor,
    c_t: torch.Tensor,
    c_sqnorm: torch.Tensor,
    rev: torch.Tensor,
    *,
    out: torch.Tensor | None = None,
    buf: torch.Tensor | None = None,
) -> torch.Tensor:
    """Index of the nearest center of each row, ties going to the lowest index.

    Parameters
    ----------
    xb : Tensor (B, d)
    c_t : Tensor (d, k)
        Centers, transposed.
    c_sqnorm : Tensor (k,)
        Squared norms of the centers.
    rev : Tensor (k,)
        ``k, k-1, ..., 1`` in the dtype of ``xb``.
    out : Tensor (B,) of int64, optional
        Where to write the labels.
    buf : Tensor (B, k), optional
        Scratch space for the distances.
    """
    # ||x||^2 is the same for every center of a row, so argmin can skip it.
    dist = torch.addmm(c_sqnorm, xb, c_t, alpha=-2.0, out=buf)  # (B, k)
    if xb.device.type == "cuda":
        # One reduction reading the block once, where the CPU's route below
        # makes six passes over it; CUDA's argmin returns the first minimum.
        first = dist.argmin(1)
        return first if out is None else out.copy_(first)
    # On CPU torch's argmin over a short last axis is ~8x slower than amin and
    # amax (it is not vectorised), so find the first minimum as
    # k - max_j [d_j == min] * (k - j).
    dist.eq_(dist.amin(1, keepdim=True)).mul_(rev)  # (B, k): k-j at minima
    first = dist.amax(1).neg_().add_(rev[0])  # (B,) float, exact below 2**24
    if out is None:
        return first.long()
    return out.copy_(first)


def _centers_t(
    centers: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Transposed centers, their squared norms and ``rev`` for :func:`_nearest`."""
    k = centers.shape[0]
    rev = torch.arange(k, 0, -1, dtype=centers.dtype, device=centers.device)
    return centers.T.contiguous(), centers.square().sum(1), rev


def _assign(x, centers, labels, chunk: int, workers: _Workers = _SERIAL) -> None:
    """Write the nearest center of every row of x (n, d) into labels (n,)."""
    c_t, c_sq, rev = _centers_t(centers)

    def work(blocks: list[slice]) -> None:
        buf = x.new_empty((min(chunk, x.shape[0]), centers.shape[0]))
        for sl in blocks:
            xb = x[sl]
            _nearest(xb, c_t, c_sq, rev, out=labels[sl], buf=buf[: xb.shape[0]])

    workers.map(work, x.shape[0], chunk)


def _assign_and_sum(
    x: torch.Tensor,
    centers: torch.Tensor,
    labels: torch.Tensor,
    sums: torch.Tensor,
    chunk: int,
    *,
    incremental: bool,
    workers: _Workers = _SERIAL,
    xw: torch.Tensor | None = None,
) -> int:
    """Relabel every row of x (n, d) and bring the per-cluster sums up to date.

    ``labels`` (n,) and ``sums`` (k, d, float64) are updated in place and the
    number of rows whose label changed is returned. ``incremental=False``
    recomputes ``sums`` from scratch; ``incremental=True`` assumes ``sums``
    matches the old ``labels`` and only moves the rows that changed cluster
    (after the first few Lloyd iterations few do, so this skips most of the
    update). ``xw`` (n, d), optional: the rows times their sample weights,
    summed in their stead (weighted sums).
    """
    k, d = centers.shape
    c_t, c_sq, rev = _centers_t(centers)
    # nonzero waits for an accelerator to finish (its size is data-dependent):
    # there, count the changes on the device and always sum all rows.
    on_cpu = x.device.type == "cpu"
    incremental = incremental and on_cpu

    def work(blocks: list[slice]) -> tuple[torch.Tensor, int | torch.Tensor]:
        buf = x.new_empty((min(chunk, x.shape[0]), k))
        part = x.new_empty((k, d))
        delta = torch.zeros_like(sums)  # (k, d) float64
        n_changed = 0
        for sl in blocks:
            xb, old = x[sl], labels[sl]  # (B, d), (B,)
            new = _nearest(xb, c_t, c_sq, rev, buf=buf[: xb.shape[0]])  # (B,)
            if not on_cpu:
                n_changed = (new != old).sum() + n_changed  # stays on the device
                moved = None
            else:
                moved = torch.nonzero(new != old)[:, 0]  # (m,)
                n_changed += moved.shape[0]
            if not incremental:
                # float32 sums within a block, float64 across blocks: as exact
                # as sklearn's (float32 over each thread's share of X).
                sb = xb if xw is None else xw[sl]  # (B, d): rows summed
                delta += _sum_rows_by_label(part.zero_(), new, sb)  # no one-hot
            elif moved.shape[0]:
                xm = (xb if xw is None else xw[sl])[moved].double()  # (m, d)
                delta.index_add_(0, new[moved], xm)
                delta.index_add_(0, old[moved], xm, alpha=-1)
            old.copy_(new)
        return delta, n_changed

    return _pool(workers.map(work, x.shape[0], chunk), sums, incremental)


def _pool(results: list, sums: torch.Tensor, incremental: bool) -> int:
    """Add the threads' ``(delta, n_changed)`` to ``sums``; the total changed."""
    if not incremental:
        sums.zero_()
    for delta, _ in results:
        sums += delta
    return int(sum(n for _, n in results))  # one wait for the device per pass


def _sum_rows_by_label(
    out: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor
) -> torch.Tensor:
    """``out[labels[i]] += rows[i]`` for every i, in the same order every run.

    ``out`` (k, ...) is updated in place and returned. On CUDA,
    ``index_add_`` adds with atomics, so the order of the float additions,
    and the last bits of a cluster's sum, change from run to run; there the
    sort-based ``index_put_(accumulate=True)`` is used, which PyTorch keeps
    deterministic. Elsewhere ``index_add_`` is deterministic and faster.
    """
    if out.device.type == "cuda":
        return out.index_put_((labels,), rows, accumulate=True)
    return out.index_add_(0, labels, rows)
