"""Lloyd's algorithm, k-means++ and mini-batch updates as pure tensor functions.

The number crunching of :class:`~sk_replearn.KMeansTransformer`:
``_nearest``, ``_assign_and_sum``, ``_lloyd``, ``_minibatch_step`` and
``_kmeans_plusplus`` run on whatever device their inputs are on, a block of
rows at a time.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data import batch_slices
from ._threads import _SERIAL, _one_torch_thread, _Workers

try:  # the fused Lloyd pass, where a C compiler built it
    from . import _kernels
except ImportError:  # pragma: no cover - torch's tensor operations instead
    _kernels = None
#: Whether the compiled pass runs its SIMD loop here (x86-64 with AVX2 and
#: FMA); elsewhere torch's matrix products beat its portable loop.
_SIMD = _kernels is not None and _kernels.hamerly_simd()

# k-means++ looks at no more rows than this (or 16 per cluster, if more): its
# cost is n_local_trials distance passes per center, so on the full data it
# would cost several Lloyd iterations (see the class Notes).
_KMEANSPP_MAX_SAMPLES = 65_536
# Elements (rows x max(n_clusters, n_features)) of one block of rows when
# ``batch_size=None``, on the CPU and on an accelerator.
_CPU_BLOCK = 2**19
_DEVICE_BLOCK = 2**24


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


def _assign(x, centers, labels, chunk: int, workers: _Workers = _SERIAL) -> None:
    """Write the nearest center of every row of x (n, d) into labels (n,)."""
    c_t, c_sq, rev = _centers_t(centers)

    def work(blocks: list[slice]) -> None:
        buf = x.new_empty((min(chunk, x.shape[0]), centers.shape[0]))
        for sl in blocks:
            xb = x[sl]
            _nearest(xb, c_t, c_sq, rev, out=labels[sl], buf=buf[: xb.shape[0]])

    workers.map(work, x.shape[0], chunk)


def _sq_dist_to_own(x, centers, labels, chunk: int) -> torch.Tensor:
    """Exact squared distance (n,) of each row to the center it is labelled with."""
    out = x.new_empty(x.shape[0])
    for sl in batch_slices(x.shape[0], chunk):
        out[sl] = (x[sl] - centers[labels[sl]]).square_().sum(1)
    return out


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
    """:func:`_assign_and_sum` that skips the rows whose label cannot change.

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


def _pool(results: list, sums: torch.Tensor, incremental: bool) -> int:
    """Add the threads' ``(delta, n_changed)`` to ``sums``; the total changed."""
    if not incremental:
        sums.zero_()
    for delta, _ in results:
        sums += delta
    return int(sum(n for _, n in results))  # one wait for the device per pass


def _update_centers(
    x: torch.Tensor,
    centers: torch.Tensor,
    labels: torch.Tensor,
    sums: torch.Tensor,
    chunk: int,
    *,
    relocate: bool,
    w: torch.Tensor | None = None,
    xw: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Cluster means (k, d) from ``sums``, and the cluster sizes (k,) in float64.

    With ``relocate``, an empty cluster gets the row farthest from its
    center (that row leaves its old cluster; ``sums`` then no longer matches
    ``labels``, which the third return value, ``relocated``, says), as
    scikit-learn does; otherwise, and for a cluster emptied by relocation, it
    keeps its center. With sample weights ``w`` (n,) and the weighted rows
    ``xw`` (n, d) the sizes are the clusters' total weights, and a cluster
    of total weight 0 counts as empty, as in scikit-learn.
    """
    counts = _cluster_sizes(labels, centers.shape[0], w)  # (k,)
    relocated = relocate and bool((counts == 0).any())
    if relocated:
        _relocate_empty_clusters(x, centers, labels, sums, counts, chunk, w, xw)
    # Sizes are integers without weights; with weights, (0, 1) is possible.
    means = sums / torch.where(counts > 0, counts, 1.0)[:, None]
    new = torch.where((counts > 0)[:, None], means, centers.double())
    return new.to(x.dtype), counts, relocated


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


def _cluster_sizes(labels: torch.Tensor, k: int, w: torch.Tensor | None):
    """Float64 size (k,) of each cluster: its rows, or their total weight ``w``."""
    if w is None:
        return torch.bincount(labels, minlength=k).double()
    if labels.device.type == "cuda":  # bincount's weights add with atomics there
        return _sum_rows_by_label(
            labels.new_zeros(k, dtype=torch.float64), labels, w.double()
        )
    return torch.bincount(labels, weights=w.double(), minlength=k)


def _relocate_empty_clusters(
    x, centers, labels, sums, counts, chunk, w=None, xw=None
) -> None:
    """Give each empty cluster one of the rows farthest from their centers.

    Updates ``sums`` (k, d) and ``counts`` (k,) in place; labels are left as
    they are (the next iteration relabels). With sample weights ``w`` (n,)
    a row carries its weight and its weighted row along: ``xw`` (n, d)'s,
    or (``xw`` None, as the compiled pass sums) the row times its weight.
    """
    empty = torch.nonzero(counts == 0).flatten().tolist()
    far = torch.topk(_sq_dist_to_own(x, centers, labels, chunk), len(empty)).indices
    for new, i in zip(empty, far.tolist()):
        old = int(labels[i])
        wi = 1.0 if w is None else float(w[i])
        # the row as summed: weighted in float32 (xw), or in float64
        xi = xw[i].double() if xw is not None else x[i].double() * wi
        sums[old] -= xi
        counts[old] -= wi
        sums[new] = xi
        counts[new] = wi


def _lloyd(
    x: torch.Tensor,
    centers: torch.Tensor,
    *,
    max_iter: int,
    tol: float,
    chunk: int,
    workers: _Workers = _SERIAL,
    bounds: bool | None = None,
    w: torch.Tensor | None = None,
) -> tuple[torch.Tensor, float, torch.Tensor, int]:
    """Lloyd's algorithm from ``centers`` (k, d) on ``x`` (n, d).

    Stops when no label changes or when the squared center shift, summed
    over centers, is at most ``tol``. The returned labels are those of the
    returned centers. ``bounds`` (default: on the CPU) skips the rows whose
    label cannot change (:func:`_assign_and_sum_bounded`); the iterations
    are Lloyd's either way. ``w`` (n,), optional: sample weights, in x's
    dtype; the centers are then weighted means and the inertia is weighted
    (the tolerance is the caller's). Returns labels (n,), inertia, centers
    (k, d), n_iter.
    """
    n = x.shape[0]
    labels = torch.full((n,), -1, dtype=torch.long, device=x.device)
    sums = torch.zeros(centers.shape, dtype=torch.float64, device=x.device)
    n_changed, strict = n, False
    # On the CPU, Hamerly's bounds skip the rows that cannot change label;
    # on an accelerator the gathers would wait for the device at every
    # block, and the full product is cheap there.
    bounded = x.device.type == "cpu" if bounds is None else bounds
    # the weighted rows (n, d), which the compiled pass weighs as it sums
    weigh = w is not None and not (bounded and _compiled(x, w))
    xw = x * w[:, None] if weigh else None
    if bounded:
        x_sq = _row_sq_norms(x, chunk, workers)  # (n,)
        upper = torch.full((n,), float("inf"), dtype=x.dtype)
        lower = torch.zeros(n, dtype=x.dtype)
        slack = _distance_slack(x, x_sq)

    moves = None  # (k,) how far the centers moved since the bounds were moved

    def assign(
        centers: torch.Tensor, sums: torch.Tensor, incremental: bool, fresh=False
    ) -> int:
        if not bounded:
            return _assign_and_sum(
                x,
                centers,
                labels,
                sums,
                chunk,
                incremental=incremental,
                workers=workers,
                xw=xw,
            )
        return _assign_and_sum_bounded(
            x,
            x_sq,
            centers,
            labels,
            upper,
            lower,
            sums,
            chunk,
            incremental=incremental,
            slack=slack,
            fresh=fresh,
            workers=workers,
            xw=xw,
            w=w,
            moves=moves,
        )

    for i in range(max_iter):  # noqa: B007 (i is n_iter - 1 after the loop)
        # moving rows one by one beats summing all once a quarter or less move
        n_changed = assign(centers, sums, n_changed <= n // 4, fresh=i == 0)
        new, _, relocated = _update_centers(
            x, centers, labels, sums, chunk, relocate=True, w=w, xw=xw
        )
        if relocated:
            n_changed = n  # sums no longer match labels: recompute next time
        shifts = (new.double() - centers.double()).square().sum(1)  # (k,)
        shift = float(shifts.sum())
        moves = None
        if bounded:
            if relocated:  # rows changed cluster outside the bounds' view
                upper.fill_(float("inf"))
            else:  # the next pass moves the bounds as it screens the rows
                moves = shifts.sqrt_().to(x.dtype)
        centers = new
        if n_changed == 0:
            strict = True  # the labels are those of ``new`` already
            break
        if shift <= tol:
            break
    if not strict:
        if bounded:  # relabel for the final centers; these sums are not used
            assign(centers, torch.zeros_like(sums), True)
        else:
            _assign(x, centers, labels, chunk, workers)
    inertia = _inertia(x, centers, labels, chunk, workers, w)
    return labels, inertia, centers, i + 1


def _row_sq_norms(x: torch.Tensor, chunk: int, workers: _Workers) -> torch.Tensor:
    """Squared norm of every row of x (n, d), in x's dtype."""
    out = x.new_empty(x.shape[0])

    def work(blocks: list[slice]) -> None:
        for sl in blocks:
            torch.linalg.vector_norm(x[sl], dim=1, out=out[sl]).square_()

    workers.map(work, x.shape[0], chunk)
    return out


def _distance_slack(x: torch.Tensor, x_sq: torch.Tensor) -> float:
    """Twice the largest float error of a distance computed from the product.

    ``||x||^2 - 2 x.c + ||c||^2`` in the dtype of x (d products summed) errs
    by at most ``(d + 2) eps (||x|| + ||c||)^2`` (Higham's gamma_d bound);
    centers are means of rows, so ``||c|| <= R``, the largest row norm, and
    the distance, a square root, errs by at most the root of that. Twice
    it covers both bounds of a comparison.
    """
    if x.shape[0] == 0:
        return 0.0
    eps = torch.finfo(x.dtype).eps
    radius = float(x_sq.max()) ** 0.5
    return 2.0 * 2.0 * radius * ((x.shape[1] + 2) * eps) ** 0.5


def _minibatch_step(
    x: torch.Tensor,
    centers: torch.Tensor,
    counts: torch.Tensor,
    chunk: int,
    workers: _Workers = _SERIAL,
    w: torch.Tensor | None = None,
) -> tuple[torch.Tensor, float, torch.Tensor, torch.Tensor]:
    """One mini-batch k-means step (Sculley 2010) on the batch x (n, d).

    Each center moves to the running mean of every sample ever assigned to
    it: ``c <- (count * c + sum of its new samples) / (count + n_new)``, i.e.
    a per-sample learning rate of ``1 / count``. ``counts`` (k,) are the
    float64 cluster sizes so far (total weights, with sample weights ``w``
    (n,), as MiniBatchKMeans keeps them). Returns the labels (n,) and inertia of the
    batch under the moved centers, the centers (k, d) and the new counts.
    """
    labels = torch.full((x.shape[0],), -1, dtype=torch.long, device=x.device)
    sums = torch.zeros(centers.shape, dtype=torch.float64, device=x.device)
    xw = None if w is None else x * w[:, None]  # (n, d) weighted rows
    _assign_and_sum(
        x, centers, labels, sums, chunk, incremental=False, workers=workers, xw=xw
    )
    n_new = _cluster_sizes(labels, centers.shape[0], w)  # (k,)
    total = counts + n_new
    denom = total.clamp(min=1) if w is None else torch.where(total > 0, total, 1.0)
    moved = (centers.double() * counts[:, None] + sums) / denom[:, None]
    centers = torch.where((n_new > 0)[:, None], moved, centers.double()).to(x.dtype)
    _assign(x, centers, labels, chunk, workers)
    return labels, _inertia(x, centers, labels, chunk, workers, w), centers, total


def _kmeans_plusplus(
    x: torch.Tensor, n_clusters: int, rng, w: torch.Tensor | None = None
) -> torch.Tensor:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007) on x (n, d).

    Each new center is the best, by resulting potential, of
    ``2 + int(log(n_clusters))`` candidates drawn with probability
    proportional to the squared distance to the nearest chosen center.
    Random draws come from the numpy ``rng`` so the choice is the same on
    every device. With sample weights ``w`` (n,), as scikit-learn's
    ``_kmeans_plusplus``: the first center is drawn with probability
    proportional to the weight, the candidates to the weight times the
    squared distance, and the potential is weighted.
    """
    n = x.shape[0]
    n_trials = 2 + int(np.log(n_clusters))
    x_sq = _row_sq_norms(x, max(1, 2**16 // max(x.shape[1], 1)), _SERIAL)  # (n,)

    def sq_dist(c: torch.Tensor) -> torch.Tensor:  # (t, d) -> (n, t)
        d2 = torch.addmm(x_sq[:, None], x, c.T, alpha=-2.0).add_(c.square().sum(1))
        return d2.clamp_(min=0)

    idx = torch.empty(n_clusters, dtype=torch.long, device=x.device)
    if w is None:
        idx[0] = int(rng.randint(n))
    else:
        w = w.double()
        p = w.cpu().numpy()
        idx[0] = int(rng.choice(n, p=p / p.sum()))
    closest = sq_dist(x[idx[:1]])[:, 0]  # (n,) squared distance to the chosen
    for c in range(1, n_clusters):
        if w is None:
            cum = torch.cumsum(closest, 0, dtype=torch.float64)  # (n,)
        else:
            cum = torch.cumsum(closest.double() * w, 0)  # (n,)
        draws = torch.as_tensor(rng.uniform(size=n_trials), device=x.device)
        cand = torch.searchsorted(cum, draws * cum[-1]).clamp_(max=n - 1)  # (t,)
        d_cand = sq_dist(x[cand])  # (n, t)
        d_cand = torch.minimum(d_cand, closest[:, None], out=d_cand)
        if w is None:
            best = int(d_cand.sum(0, dtype=torch.float64).argmin())
        else:
            best = int((w @ d_cand.double()).argmin())  # weighted potentials
        idx[c], closest = cand[best], d_cand[:, best].contiguous()
    return x[idx]


# -- estimator --------------------------------------------------------------
