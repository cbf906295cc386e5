"""Lloyd's algorithm, k-means++ and mini-batch updates as pure tensor functions.

The number crunching of :class:`~sk_replearn.KMeansTransformer`:
``_lloyd``, ``_minibatch_step`` and ``_kmeans_plusplus`` run on whatever
device their inputs are on, a block of rows at a time. Each Lloyd iteration
is an assignment pass (``_assign``'s, or on the CPU ``_hamerly``'s bounded
one) and a centre update (``_update_centers``, which relocates empty
clusters as scikit-learn does).
"""

from __future__ import annotations

import numpy as np
import torch

from ..data import batch_slices
from ._assign import _assign, _assign_and_sum, _sum_rows_by_label
from ._hamerly import _assign_and_sum_bounded, _compiled, _inertia
from ._threads import _SERIAL, _Workers

# k-means++ looks at no more rows than this (or 16 per cluster, if more): its
# cost is n_local_trials distance passes per center, so on the full data it
# would cost several Lloyd iterations (see the class Notes).
_KMEANSPP_MAX_SAMPLES = 65_536


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


def _sq_dist_to_own(x, centers, labels, chunk: int) -> torch.Tensor:
    """Exact squared distance (n,) of each row to the center it is labelled with."""
    out = x.new_empty(x.shape[0])
    for sl in batch_slices(x.shape[0], chunk):
        out[sl] = (x[sl] - centers[labels[sl]]).square_().sum(1)
    return out


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
