"""Hamerly's bounded assignment pass, in torch and in the compiled C loop.

``_assign_and_sum_bounded`` relabels only the rows whose bounds cannot
settle their label (``_half_gaps``, ``_put``); where the C extension's SIMD
loop runs (``_SIMD``), ``_hamerly_compiled`` makes the pass instead, and
``_nearest_fn`` labels new rows with the same loop (``_padded_centers``).
The module also holds the C extension (``_kernels``), the block sizes
``_CPU_BLOCK`` and ``_DEVICE_BLOCK``, and ``_inertia``, whose pieces
``_CPU_BLOCK`` sizes as it sizes the bounded pass's: each setting lives
once, in the module of the functions that read it.
"""

from __future__ import annotations

import numpy as np
import torch

from ._assign import _centers_t, _nearest, _pool
from ._threads import _SERIAL, _one_torch_thread, _Workers

try:  # the fused Lloyd pass, where a C compiler built it
    from . import _kernels
except ImportError:  # pragma: no cover - torch's tensor operations instead
    _kernels = None
#: Whether the compiled pass runs its SIMD loop here (x86-64 with AVX2 and
#: FMA); elsewhere torch's matrix products beat its portable loop.
_SIMD = _kernels is not None and _kernels.hamerly_simd()

# Elements (rows x max(n_clusters, n_features)) of one block of rows when
# ``batch_size=None``, on the CPU and on an accelerator.
_CPU_BLOCK = 2**19
_DEVICE_BLOCK = 2**24


def _nearest_fn(centers: torch.Tensor):
    """A function mapping a block (B, d) to the nearest of ``centers`` (B,).

    Where the C extension's SIMD loop runs (``_SIMD``), contiguous float32
    blocks on the CPU go through it (``_kernels.nearest_labels``): the
    distances of the compiled Lloyd pass, so a training sample gets the
    label ``fit`` gave it, and no (B, k) block of distances goes through
    memory. The caller has checked the blocks' values.
    """
    if not (_SIMD and centers.device.type == "cpu" and centers.dtype == torch.float32):
        c_t, c_sq, rev = _centers_t(centers)
        return lambda xb: _nearest(xb, c_t, c_sq, rev)
    with _one_torch_thread():  # small products: see _one_torch_thread
        c_t, c_sq, rev = _centers_t(centers)
        c_tp, c_sqp = _padded_centers(centers)

    def nearest(xb: torch.Tensor) -> torch.Tensor:
        if xb.dtype != torch.float32 or not xb.is_contiguous():
            return _nearest(xb, c_t, c_sq, rev)
        labels = np.empty(xb.shape[0], dtype=np.int64)
        # the rows' values were checked when X was validated
        _kernels.nearest_labels(xb.numpy(), None, c_tp, c_sqp, labels)
        return torch.from_numpy(labels)

    return nearest


def _padded_centers(centers: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The centers (k, d) as the compiled loops take them.

    Transposed (d, kp) with zero columns up to kp, the next multiple of 8 (the
    loops take the centers 8 at a time), and their squared norms (kp,), +inf
    beyond k so that no padding column is ever nearest.
    """
    k, d = centers.shape
    kp = -(-k // 8) * 8
    c_t = np.zeros((d, kp), dtype=np.float32)
    c_t[:, :k] = centers.numpy().T
    c_sq = np.full(kp, np.inf, dtype=np.float32)
    c_sq[:k] = centers.square().sum(1).numpy()
    return c_t, c_sq


def _inertia(
    x, centers, labels, chunk: int, workers: _Workers = _SERIAL, w=None
) -> float:
    """Sum of squared distances to the assigned centers, accumulated in float64.

    ``w`` (n,), optional: the sample weights, each row's distance times its
    weight.
    """

    # (rows, d) differences of cache size (the Lloyd blocks are 4x larger)
    piece = max(1024, _CPU_BLOCK // max(x.shape[1], 1))

    def work(blocks: list[slice]) -> float:
        total = torch.zeros((), dtype=torch.float64, device=x.device)
        for block in blocks:
            for start in range(block.start, block.stop, piece):
                sl = slice(start, min(start + piece, block.stop))
                diff = centers.index_select(0, labels[sl]).sub_(x[sl])  # (B, d)
                # float32 within a row, float64 across rows: a float64 sum of
                # all B * d values costs ~10x more, one in float32 drifts
                sq = diff.square_().sum(1)  # (B,)
                if w is not None:
                    sq.mul_(w[sl])
                total += sq.sum(dtype=torch.float64)
        return float(total)

    return sum(workers.map(work, x.shape[0], chunk))


def _put(
    target: torch.Tensor, rows: torch.Tensor | slice, values: torch.Tensor
) -> None:
    """``target[rows] = values``; ``rows`` is a slice or an index tensor."""
    if isinstance(rows, slice):
        target[rows].copy_(values)
    else:
        target.index_copy_(0, rows, values)


def _half_gaps(centers: torch.Tensor) -> torch.Tensor:
    """Half the distance from each center (k, d) to its nearest other (k,)."""
    k = centers.shape[0]
    if k == 1:
        return centers.new_full((1,), float("inf"))
    c = centers.double()
    gaps = torch.cdist(c, c).fill_diagonal_(float("inf"))  # (k, k)
    return (gaps.amin(1) / 2).to(centers.dtype)


def _assign_and_sum_bounded(
    x: torch.Tensor,
    x_sq: torch.Tensor,
    centers: torch.Tensor,
    labels: torch.Tensor,
    upper: torch.Tensor,
    lower: torch.Tensor,
    sums: torch.Tensor,
    chunk: int,
    *,
    incremental: bool,
    slack: float,
    fresh: bool = False,
    workers: _Workers = _SERIAL,
    xw: torch.Tensor | None = None,
    w: torch.Tensor | None = None,
    moves: torch.Tensor | None = None,
) -> int:
    """``_assign_and_sum`` that skips the rows whose label cannot change.

    See :func:`~sk_replearn.classical._assign._assign_and_sum`.

    Hamerly's bounds (Hamerly 2010, "Making k-means even faster"): ``upper``
    (n,) bounds each row's distance to its center from above, ``lower`` (n,)
    its distance to every other center from below. A row whose upper bound
    is below both its lower bound and half the gap from its center to the
    nearest other center keeps its label, by the triangle inequality, and
    costs no distances; the others get all k distances (one product on the
    gathered rows), exact bounds and their nearest center, first minimum
    winning as in :func:`_nearest`. ``slack`` widens the test by the
    largest float32 error of a computed distance, so that a row is skipped
    only when the label Lloyd's full pass would compute cannot change
    either. ``fresh=True`` (no labels yet) computes every row. Bounds,
    labels and ``sums`` are updated in place; the number of rows whose
    label changed is returned. CPU only (numpy finds the rows). ``xw``
    (n, d), optional: the rows times their sample weights ``w`` (n,),
    summed in their stead (weighted sums). ``moves`` (k,), optional: how
    far each center moved since the bounds were last updated, in x's dtype;
    before the rows are screened, each upper bound grows by its center's
    move and each lower bound shrinks by the largest. Where the C
    extension's SIMD loop runs (``_SIMD``), it makes the pass
    (:func:`_hamerly_compiled`), updating the bounds as it screens them.
    """
    k, d = centers.shape
    half = _half_gaps(centers)  # (k,)
    if _compiled(x, w):
        return _hamerly_compiled(
            x, x_sq, centers, half, labels, upper, lower, sums, w, chunk,
            incremental=incremental, slack=slack, fresh=fresh, workers=workers,
            moves=None if fresh else moves,
        )  # fmt: skip
    if moves is not None and not fresh:
        upper += moves.index_select(0, labels)
        lower -= moves.max()
    c_t, c_sq, rev = _centers_t(centers)
    inf = float("inf")
    # The rows to recompute go through in pieces whose (rows, k) distances
    # and gathered (rows, d) rows stay cache-sized: in the first passes
    # (nearly every row) a whole block's would be 4x larger, and a constant
    # of tens of MiB a thread.
    piece = max(1024, _CPU_BLOCK // max(k, d, 1))

    def settle(xb, xs, lab, up, low, xwb, rows, delta) -> int:
        """Exact bounds and nearest center of the rows ``rows`` of a block.

        ``rows``: a slice of the block, or the index tensor (m,) of the rows;
        ``xb`` (m, d) and ``xs`` (m,) are those rows and their squared norms,
        ``xwb`` the block's weighted rows (or None). Returns the rows moved.
        """
        dist = torch.addmm(c_sq, xb, c_t, alpha=-2.0)  # (m, k)
        near = dist.amin(1, keepdim=True)  # (m, 1): ||x||^2 left out
        ranks = dist.eq(near).to(dist.dtype).mul_(rev)  # k - j at minima
        first = ranks.amax(1).neg_().add_(rev[0]).long()  # (m,)
        del ranks
        dist.scatter_(1, first[:, None], inf)  # hide the nearest
        _put(up, rows, near[:, 0].add_(xs).clamp_(min=0).sqrt_())
        _put(low, rows, dist.amin(1).add_(xs).clamp_(min=0).sqrt_())
        del dist
        was = lab[rows].clone() if isinstance(rows, slice) else lab[rows]
        moved = torch.from_numpy(np.flatnonzero((first != was).numpy()))
        _put(lab, rows, first)
        if incremental and moved.shape[0]:
            if xwb is None:
                xm = xb.index_select(0, moved).double()  # (c, d)
            else:
                if isinstance(rows, slice):
                    src = moved + rows.start
                else:
                    src = rows.index_select(0, moved)
                xm = xwb.index_select(0, src).double()  # (c, d)
            delta.index_add_(0, first.index_select(0, moved), xm)
            delta.index_add_(0, was.index_select(0, moved), xm, alpha=-1)
        return moved.shape[0]

    def work(blocks: list[slice]) -> tuple[torch.Tensor, int]:
        part = x.new_empty((k, d))
        delta = torch.zeros_like(sums)  # (k, d) float64
        n_changed = 0
        for sl in blocks:
            xb, lab, up, low = x[sl], labels[sl], upper[sl], lower[sl]
            xsb, xwb = x_sq[sl], None if xw is None else xw[sl]
            if fresh:  # no labels yet: every row gets its distances
                for start in range(0, xb.shape[0], piece):
                    rows = slice(start, start + piece)
                    n_changed += settle(
                        xb[rows], xsb[rows], lab, up, low, xwb, rows, delta
                    )
            else:
                bound = torch.maximum(low, half.index_select(0, lab))  # (B,)
                need = up.add(slack).ge_(bound).numpy()  # (B,) 1: may change
                # numpy's flatnonzero is ~8x faster than torch.nonzero here
                need_rows = torch.from_numpy(np.flatnonzero(need))  # (m,)
                for start in range(0, need_rows.shape[0], piece):
                    rows = need_rows[start : start + piece]
                    xr = xb.index_select(0, rows)  # (p, d)
                    xs = xsb.index_select(0, rows)  # (p,)
                    n_changed += settle(xr, xs, lab, up, low, xwb, rows, delta)
            if not incremental:
                delta += part.zero_().index_add_(0, lab, xb if xw is None else xwb)
        return delta, n_changed

    return _pool(workers.map(work, x.shape[0], chunk), sums, incremental)


def _compiled(x: torch.Tensor, w: torch.Tensor | None) -> bool:
    """Whether :func:`_hamerly_compiled` can run the pass on x (and w)."""
    return (
        _SIMD
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.is_contiguous()
        and (w is None or (w.dtype == torch.float32 and w.is_contiguous()))
    )


def _hamerly_compiled(
    x, x_sq, centers, half, labels, upper, lower, sums, w, chunk, *,
    incremental: bool, slack: float, fresh: bool, workers: _Workers,
    moves: torch.Tensor | None = None,
) -> int:  # fmt: skip
    """:func:`_assign_and_sum_bounded` in one C loop a block (``_kernels``).

    The same pass, row for row: the rows the bounds cannot settle get all
    k distances ``||c||^2 - 2 x.c`` in float32 (first minimum winning),
    their exact bounds and their label; rows are summed in float64 (all of
    them, or incrementally those that moved), weighted by ``w`` (n,) if
    given. Each row of x is read once, and no (rows, k) block of distances
    is written to memory. The bounds are moved by ``moves`` as each row is
    screened (one trip over them, shared among the threads, instead of two
    tensor operations before the pass). The dot products are summed in
    another order than torch's matrix product, so a distance may differ
    from it in the last bits.
    """
    k, d = centers.shape
    c_t, c_sq = _padded_centers(centers)
    half_np = np.ascontiguousarray(half.numpy())
    xn, x_sqn, labn, upn, lown = (t.numpy() for t in (x, x_sq, labels, upper, lower))
    wn = None if w is None else w.numpy()
    mn = None if moves is None else np.ascontiguousarray(moves.numpy())

    def work(blocks: list[slice]) -> tuple[torch.Tensor, int]:
        delta = np.zeros((k, d))  # float64
        n_changed = 0
        for sl in blocks:
            n_changed += _kernels.hamerly_pass(
                xn[sl], x_sqn[sl], c_t, c_sq, half_np, labn[sl], upn[sl],
                lown[sl], mn, None if wn is None else wn[sl], delta, slack,
                fresh, incremental,
            )  # fmt: skip
        return torch.from_numpy(delta), n_changed

    return _pool(workers.map(work, x.shape[0], chunk), sums, incremental)
