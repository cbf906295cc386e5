"""K-means in PyTorch: Lloyd's algorithm, k-means++ and mini-batch updates.

The estimator, :class:`KMeansTransformer`, follows
:class:`sklearn.cluster.KMeans`; the number crunching lives in the pure tensor
functions above it (``_nearest``, ``_assign_and_sum``, ``_lloyd``,
``_minibatch_step``, ``_kmeans_plusplus``), which run on whatever device their
inputs are on.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral, Real
from typing import TypeVar

import numpy as np
import torch
from sklearn.base import ClusterMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from ..base import BaseRepresentation
from ..data import batch_slices

__all__ = ["KMeansTransformer"]

T = TypeVar("T")

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
    """A function mapping a block (B, d) to the nearest of ``centers`` (B,)."""
    c_t, c_sq, rev = _centers_t(centers)
    return lambda xb: _nearest(xb, c_t, c_sq, rev)


class _Workers:
    """Share the row blocks of a pass among threads that run torch serially.

    torch's own CPU threads meet at a barrier after every operation; a Lloyd
    iteration runs ~10 small operations per block, so thousands of barriers.
    That is cheap on an idle machine, but when other processes compete for
    the cores each barrier waits for a time slice (measured: a 2-thread fit
    50x slower than a 1-thread one). With ``torch.get_num_threads()`` Python
    threads, each running torch single-threaded on a contiguous share of the
    blocks, a pass has one join, as scikit-learn's OpenMP loop does. Torch
    ops release the GIL, so the threads run in parallel. On an accelerator,
    or with one thread, blocks run in order in the calling thread.
    """

    def __init__(self, device: torch.device):
        self.n = torch.get_num_threads() if device.type == "cpu" else 1
        self._pool = None

    def __enter__(self) -> _Workers:
        if self.n > 1:
            torch.set_num_threads(1)
            # MKL's thread count is per thread: set it in each worker too
            self._pool = ThreadPoolExecutor(
                self.n, initializer=torch.set_num_threads, initargs=(1,)
            )
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
            torch.set_num_threads(self.n)

    def map(self, fn: Callable[[list[slice]], T], n_rows: int, chunk: int) -> list[T]:
        """``fn(blocks)`` for each thread's share of the blocks of ``range(n_rows)``."""
        blocks = list(batch_slices(n_rows, chunk))
        if self._pool is None or len(blocks) == 1:
            return [fn(blocks)]
        bounds = np.linspace(0, len(blocks), min(self.n, len(blocks)) + 1).astype(int)
        shares = [blocks[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])]
        return list(self._pool.map(fn, shares))


_SERIAL = _Workers(torch.device("meta"))


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


def _inertia(x, centers, labels, chunk: int, workers: _Workers = _SERIAL) -> float:
    """Sum of squared distances to the assigned centers, accumulated in float64."""

    def work(blocks: list[slice]) -> float:
        total = torch.zeros((), dtype=torch.float64, device=x.device)
        for sl in blocks:
            diff = x[sl] - centers[labels[sl]]  # (B, d)
            total += diff.square_().sum(dtype=torch.float64)
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
) -> int:
    """Relabel every row of x (n, d) and bring the per-cluster sums up to date.

    ``labels`` (n,) and ``sums`` (k, d, float64) are updated in place and the
    number of rows whose label changed is returned. ``incremental=False``
    recomputes ``sums`` from scratch; ``incremental=True`` assumes ``sums``
    matches the old ``labels`` and only moves the rows that changed cluster
    (after the first few Lloyd iterations few do, so this skips most of the
    update).
    """
    k, d = centers.shape
    c_t, c_sq, rev = _centers_t(centers)

    def work(blocks: list[slice]) -> tuple[torch.Tensor, int]:
        buf = x.new_empty((min(chunk, x.shape[0]), k))
        part = x.new_empty((k, d))
        delta = torch.zeros_like(sums)  # (k, d) float64
        n_changed = 0
        for sl in blocks:
            xb, old = x[sl], labels[sl]  # (B, d), (B,)
            new = _nearest(xb, c_t, c_sq, rev, buf=buf[: xb.shape[0]])  # (B,)
            moved = torch.nonzero(new != old)[:, 0]  # (m,)
            n_changed += moved.shape[0]
            if not incremental:
                # float32 sums within a block, float64 across blocks: as exact
                # as sklearn's (float32 over each thread's share of X).
                delta += part.zero_().index_add_(0, new, xb)  # no (B, k) one-hot
            elif moved.shape[0]:
                xm = xb[moved].double()  # (m, d)
                delta.index_add_(0, new[moved], xm)
                delta.index_add_(0, old[moved], xm, alpha=-1)
            old.copy_(new)
        return delta, n_changed

    results = workers.map(work, x.shape[0], chunk)
    if not incremental:
        sums.zero_()
    for delta, _ in results:
        sums += delta
    return sum(n for _, n in results)


def _update_centers(
    x: torch.Tensor,
    centers: torch.Tensor,
    labels: torch.Tensor,
    sums: torch.Tensor,
    chunk: int,
    *,
    relocate: bool,
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Cluster means (k, d) from ``sums``, and the cluster sizes (k,) in float64.

    With ``relocate``, an empty cluster gets the row farthest from its
    center (that row leaves its old cluster; ``sums`` then no longer matches
    ``labels``, which the third return value, ``relocated``, says), as
    scikit-learn does; otherwise, and for a cluster emptied by relocation, it
    keeps its center.
    """
    counts = torch.bincount(labels, minlength=centers.shape[0]).double()  # (k,)
    relocated = relocate and bool((counts == 0).any())
    if relocated:
        _relocate_empty_clusters(x, centers, labels, sums, counts, chunk)
    means = sums / counts.clamp(min=1)[:, None]
    new = torch.where((counts > 0)[:, None], means, centers.double())
    return new.to(x.dtype), counts, relocated


def _relocate_empty_clusters(x, centers, labels, sums, counts, chunk) -> None:
    """Give each empty cluster one of the rows farthest from their centers.

    Updates ``sums`` (k, d) and ``counts`` (k,) in place; labels are left as
    they are (the next iteration relabels).
    """
    empty = torch.nonzero(counts == 0).flatten().tolist()
    far = torch.topk(_sq_dist_to_own(x, centers, labels, chunk), len(empty)).indices
    for new, i in zip(empty, far.tolist()):
        old = int(labels[i])
        sums[old] -= x[i].double()
        counts[old] -= 1
        sums[new] = x[i].double()
        counts[new] = 1


def _lloyd(
    x: torch.Tensor,
    centers: torch.Tensor,
    *,
    max_iter: int,
    tol: float,
    chunk: int,
    workers: _Workers = _SERIAL,
) -> tuple[torch.Tensor, float, torch.Tensor, int]:
    """Lloyd's algorithm from ``centers`` (k, d) on ``x`` (n, d).

    Stops when no label changes or when the squared center shift, summed
    over centers, is at most ``tol``. The returned labels are those of the
    returned centers. Returns labels (n,), inertia, centers (k, d), n_iter.
    """
    n = x.shape[0]
    labels = torch.full((n,), -1, dtype=torch.long, device=x.device)
    sums = torch.zeros(centers.shape, dtype=torch.float64, device=x.device)
    n_changed, strict = n, False
    for i in range(max_iter):  # noqa: B007 (i is n_iter - 1 after the loop)
        # moving rows one by one beats summing all once a quarter or less move
        n_changed = _assign_and_sum(
            x,
            centers,
            labels,
            sums,
            chunk,
            incremental=n_changed <= n // 4,
            workers=workers,
        )
        new, _, relocated = _update_centers(
            x, centers, labels, sums, chunk, relocate=True
        )
        if relocated:
            n_changed = n  # sums no longer match labels: recompute next time
        shift = float((new.double() - centers.double()).square().sum())
        centers = new
        if n_changed == 0:
            strict = True  # the labels are those of ``new`` already
            break
        if shift <= tol:
            break
    if not strict:
        _assign(x, centers, labels, chunk, workers)
    return labels, _inertia(x, centers, labels, chunk, workers), centers, i + 1


def _minibatch_step(
    x: torch.Tensor,
    centers: torch.Tensor,
    counts: torch.Tensor,
    chunk: int,
    workers: _Workers = _SERIAL,
) -> tuple[torch.Tensor, float, torch.Tensor, torch.Tensor]:
    """One mini-batch k-means step (Sculley 2010) on the batch x (n, d).

    Each center moves to the running mean of every sample ever assigned to
    it: ``c <- (count * c + sum of its new samples) / (count + n_new)``, i.e.
    a per-sample learning rate of ``1 / count``. ``counts`` (k,) are the
    float64 cluster sizes so far. Returns the labels (n,) and inertia of the
    batch under the moved centers, the centers (k, d) and the new counts.
    """
    labels = torch.full((x.shape[0],), -1, dtype=torch.long, device=x.device)
    sums = torch.zeros(centers.shape, dtype=torch.float64, device=x.device)
    _assign_and_sum(x, centers, labels, sums, chunk, incremental=False, workers=workers)
    n_new = torch.bincount(labels, minlength=centers.shape[0]).double()  # (k,)
    total = counts + n_new
    moved = (centers.double() * counts[:, None] + sums) / total.clamp(min=1)[:, None]
    centers = torch.where((n_new > 0)[:, None], moved, centers.double()).to(x.dtype)
    _assign(x, centers, labels, chunk, workers)
    return labels, _inertia(x, centers, labels, chunk, workers), centers, total


def _kmeans_plusplus(x: torch.Tensor, n_clusters: int, rng) -> torch.Tensor:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007) on x (n, d).

    Each new center is the best, by resulting potential, of
    ``2 + int(log(n_clusters))`` candidates drawn with probability
    proportional to the squared distance to the nearest chosen center.
    Random draws come from the numpy ``rng`` so the choice is the same on
    every device.
    """
    n = x.shape[0]
    n_trials = 2 + int(np.log(n_clusters))
    x_sq = x.square().sum(1)  # (n,)

    def sq_dist(c: torch.Tensor) -> torch.Tensor:  # (t, d) -> (n, t)
        d2 = torch.addmm(x_sq[:, None], x, c.T, alpha=-2.0).add_(c.square().sum(1))
        return d2.clamp_(min=0)

    idx = torch.empty(n_clusters, dtype=torch.long, device=x.device)
    idx[0] = int(rng.randint(n))
    closest = sq_dist(x[idx[:1]])[:, 0]  # (n,) squared distance to the chosen
    for c in range(1, n_clusters):
        cum = torch.cumsum(closest, 0, dtype=torch.float64)  # (n,)
        draws = torch.as_tensor(rng.uniform(size=n_trials), device=x.device)
        cand = torch.searchsorted(cum, draws * cum[-1]).clamp_(max=n - 1)  # (t,)
        d_cand = sq_dist(x[cand])  # (n, t)
        d_cand = torch.minimum(d_cand, closest[:, None], out=d_cand)
        best = int(d_cand.sum(0, dtype=torch.float64).argmin())
        idx[c], closest = cand[best], d_cand[:, best].contiguous()
    return x[idx]


# -- estimator --------------------------------------------------------------
class KMeansTransformer(ClusterMixin, BaseRepresentation):
    """K-means clustering in PyTorch, as a transformer.

    The code of a sample is its vector of Euclidean distances to the
    ``n_clusters`` centers (``encoding="distance"``, as
    :meth:`sklearn.cluster.KMeans.transform`) or the one-hot vector of its
    nearest center (``encoding="onehot"``). The decoder maps a code back to
    its center. Fitting runs Lloyd's algorithm on the GPU when there is one.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters, and width of the code.
    init : {"k-means++", "random"} or array-like of shape (n_clusters, n_features)
        Initial centers. ``"k-means++"``: greedy k-means++ with
        ``2 + int(log(n_clusters))`` candidates per center, as scikit-learn.
        ``"random"``: ``n_clusters`` distinct rows of X. An array: these
        centers (``(n_clusters, *input_shape)`` is accepted too).
    n_init : "auto" or int, default="auto"
        Number of initialisations; the run with the lowest inertia is kept.
        ``"auto"`` is 10 for ``init="random"`` and 1 otherwise; an array
        ``init`` always gives 1.
    max_iter : int, default=300
        Maximum number of Lloyd iterations per initialisation.
    tol : float, default=1e-4
        Convergence tolerance on the squared center shift (summed over
        centers), relative to the mean variance of the features of X.
        Lloyd also stops as soon as no label changes.
    encoding : {"distance", "onehot"}, default="distance"
        What :meth:`transform` returns.
    batch_size : int or None, default=None
        Rows per block, in ``fit`` as in ``transform``. ``None`` picks
        ``2**19 / max(n_clusters, n_features)`` rows on the CPU (the block of
        distances stays in cache) and ``2**24 / max(n_clusters, n_features)``
        on an accelerator, at least 1024.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation. An int makes results repeatable.
    input_shape : tuple of int or None, default=None
        Shape of one sample, e.g. ``(1, 8, 8)``, for 2-D X holding
        flattened samples. Not used by the algorithm.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features_in_), float32
        The centers.
    labels_ : ndarray of shape (n_samples,)
        Index of the center of each training sample (after ``partial_fit``:
        of each sample of the last batch).
    inertia_ : float
        Sum of squared distances of the samples of ``labels_`` to their
        centers.
    n_iter_ : int
        Lloyd iterations of the kept run; each ``partial_fit`` adds one
        (mini-batch step).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.
    input_shape_ : tuple of int
        Shape of one sample (see :class:`~sk_replearn.base.BaseRepresentation`).

    See Also
    --------
    sklearn.cluster.KMeans : The NumPy / Cython original.
    sklearn.cluster.MiniBatchKMeans : What :meth:`partial_fit` follows.
    sk_replearn.classical.PCATransformer : The other closed-form encoder.

    Notes
    -----
    Distances are computed in blocks of ``batch_size`` rows as
    ``||c||^2 - 2 x c^T`` (one matrix product; ``||x||^2`` does not change
    the argmin). Centers are updated with ``index_add_``, summed in float32
    within a block and in float64 across blocks; once at most a quarter of
    the labels change per iteration, only the samples that changed cluster
    are moved between the sums. The final inertia is computed directly as
    ``||x - c||^2`` (no cancellation) and summed in float64. X is shifted
    by its mean and copied to the device once as float32; ``predict``,
    ``transform`` and ``score`` move one block at a time (memory flat in
    ``n_samples``). Empty clusters are relocated to the samples farthest
    from their centers, as in scikit-learn.

    On the CPU, ``fit`` and ``partial_fit`` split the blocks among
    ``torch.get_num_threads()`` Python threads, each running torch with one
    thread (torch's thread count is set to 1 meanwhile and restored after):
    one join per pass instead of a barrier per tensor operation, which keeps
    the fit fast when other processes share the cores.

    On more than ``max(65536, 16 * n_clusters)`` samples, k-means++ seeds
    from a random subsample of that size (as MiniBatchKMeans does with
    ``init_size``). Its cost, ``n_clusters`` passes over the rows it sees,
    then no longer grows with ``n_samples``: a few Lloyd iterations' worth
    at ``2 * 10**5`` samples, a fraction of one from a few million. Seeding
    from all of X, as KMeans does, costs as much as ``2 + log(n_clusters)``
    Lloyd iterations or more.

    :meth:`partial_fit` is mini-batch k-means (Sculley 2010): each center
    moves to the running mean of all samples ever assigned to it, i.e. with
    learning rate ``1 / count``. It does not reassign small clusters at
    random as MiniBatchKMeans does.

    References
    ----------
    .. [1] S. Lloyd, "Least squares quantization in PCM", IEEE Trans.
       Information Theory 28(2), 1982.
    .. [2] D. Arthur and S. Vassilvitskii, "k-means++: the advantages of
       careful seeding", SODA 2007.
    .. [3] D. Sculley, "Web-scale k-means clustering", WWW 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_replearn.classical import KMeansTransformer
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> km = KMeansTransformer(n_clusters=2, random_state=0, device="cpu").fit(X)
    >>> np.sort(km.cluster_centers_[:, 0])
    array([ 1., 10.], dtype=float32)
    >>> km.transform(X).shape
    (6, 2)
    >>> bool(km.predict([[0, 0]])[0] == km.labels_[0])
    True
    >>> onehot = km.set_params(encoding="onehot").transform(X)
    >>> onehot.sum(axis=1)
    array([1., 1., 1., 1., 1., 1.], dtype=float32)
    >>> km.inverse_transform(onehot)[:3]
    array([[1., 2.],
           [1., 2.],
           [1., 2.]], dtype=float32)
    """

    _parameter_constraints: dict = {
        **BaseRepresentation._parameter_constraints,
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"k-means++", "random"}), "array-like"],
        "n_init": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "encoding": [StrOptions({"distance", "onehot"})],
    }

    def __init__(
        self,
        *,
        n_clusters: int = 8,
        init="k-means++",
        n_init: str | int = "auto",
        max_iter: int = 300,
        tol: float = 1e-4,
        encoding: str = "distance",
        batch_size: int | None = None,
        device: str | torch.device = "auto",
        random_state=None,
        input_shape: tuple[int, ...] | None = None,
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.encoding = encoding
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.input_shape = input_shape

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None) -> KMeansTransformer:
        """Compute the k-means clustering of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Training samples.
        y : None
            Ignored.

        Returns
        -------
        self : KMeansTransformer
            The fitted estimator.
        """
        X = self._validate_X(X, reset=True)
        init = self._check_params_vs_data(X)
        rng = check_random_state(self.random_state)
        x, tol = self._to_device(X, fit=True)
        starts = [self._init_centers(x, init, rng) for _ in range(self._n_init)]
        with _Workers(x.device) as workers:
            runs = (
                _lloyd(
                    x,
                    centers,
                    max_iter=self.max_iter,
                    tol=tol,
                    chunk=self._chunk_rows(),
                    workers=workers,
                )
                for centers in starts
            )
            best = min(runs, key=lambda run: run[1])  # lowest inertia, first wins
        self._set_fitted(*best, full_fit=True)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None) -> KMeansTransformer:
        """Update the centers with one mini-batch (mini-batch k-means).

        The first call (on an unfitted estimator) initialises the centers
        from this batch with ``init``; every call then assigns the batch to
        the nearest centers and moves each center to the running mean of all
        samples assigned to it so far. After :meth:`fit`, ``partial_fit``
        continues from the fitted centers and cluster sizes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            One batch of samples.
        y : None
            Ignored.

        Returns
        -------
        self : KMeansTransformer
            The updated estimator.
        """
        first = not hasattr(self, "cluster_centers_")
        X = self._validate_X(X, reset=first)
        if first:
            init = self._check_params_vs_data(X)
            x, _ = self._to_device(X, fit=True)
            rng = check_random_state(self.random_state)
            centers = self._init_centers(x, init, rng)
            self._counts, self.n_iter_ = np.zeros(self.n_clusters), 0
        else:
            x, _ = self._to_device(X)
            centers = torch.as_tensor(self._centers, device=x.device)
        counts = torch.as_tensor(self._counts, device=x.device)  # (k,) float64
        with _Workers(x.device) as workers:
            labels, inertia, centers, counts = _minibatch_step(
                x, centers, counts, self._chunk_rows(), workers
            )
        self._counts = counts.cpu().numpy()
        self._set_fitted(labels, inertia, centers, self.n_iter_ + 1, full_fit=False)
        return self

    def fit_predict(self, X, y=None) -> np.ndarray:
        """Fit, then return the cluster index of each training sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Training samples.
        y : None
            Ignored.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            ``labels_``.
        """
        return self.fit(X).labels_

    def predict(self, X) -> np.ndarray:
        """Index of the nearest center of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Samples.

        Returns
        -------
        labels : ndarray of shape (n_samples,) of int64
            Cluster indices.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        centers, offset = self._device_centers()
        nearest = _nearest_fn(centers)
        return self._map_blocks(X, lambda xb: nearest(xb - offset), 0, np.int64)

    def transform(self, X) -> np.ndarray:
        """Encode X: distances to the centers, or one-hot nearest center.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Samples.

        Returns
        -------
        codes : ndarray of shape (n_samples, n_clusters), float32
            Euclidean distances to every center (``encoding="distance"``),
            or the one-hot code of the nearest center (``encoding="onehot"``).
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        k = self.cluster_centers_.shape[0]
        centers, offset = self._device_centers()
        if self.encoding == "onehot":
            nearest = _nearest_fn(centers)

            def fn(xb):  # (B, d) -> (B, k)
                return torch.nn.functional.one_hot(nearest(xb - offset), k).float()
        else:
            c_sq = centers.square().sum(1)

            def fn(xb):  # (B, d) -> (B, k)
                xb = xb - offset
                d2 = torch.addmm(c_sq, xb, centers.T, alpha=-2.0)
                return d2.add_(xb.square().sum(1, keepdim=True)).clamp_(min=0).sqrt_()

        return self._map_blocks(X, fn, k, np.float32)

    def inverse_transform(self, X) -> np.ndarray:
        """Decode codes to centers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_clusters)
            Codes as returned by :meth:`transform`: a one-hot (or any score)
            code decodes to its argmax center, a distance code to its argmin.

        Returns
        -------
        X_centers : ndarray of shape (n_samples, n_features_in_), float32
            The center of each code.
        """
        check_is_fitted(self)
        codes = check_array(X, dtype=[np.float32, np.float64])
        k = self.cluster_centers_.shape[0]
        if codes.shape[1] != k:
            raise ValueError(
                f"X has {codes.shape[1]} columns but inverse_transform expects "
                f"codes of width n_clusters={k}."
            )
        pick = codes.argmax(1) if self.encoding == "onehot" else codes.argmin(1)
        return self.cluster_centers_[pick]

    def score(self, X, y=None) -> float:
        """Opposite of the inertia of X under the fitted centers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Samples.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Minus the sum of squared distances of the samples to their
            nearest centers (higher is better).
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        centers, offset = self._device_centers()
        nearest = _nearest_fn(centers)

        def fn(xb):  # (B, d) -> (B,)
            xb = xb - offset
            return (xb - centers[nearest(xb)]).square_().sum(1)

        return -float(self._map_blocks(X, fn, 0, np.float64).sum())

    # -- private helpers ------------------------------------------------------
    def _transfer_encoder(self):
        raise TypeError(
            "KMeansTransformer's code (distances to centres, or one-hot) has no "
            "weights to fine-tune; use PCATransformer or a neural estimator "
            "(AutoencoderTransformer, SimCLRTransformer, MAETransformer, ...) "
            "as the representation."
        )

    def _check_params_vs_data(self, X: np.ndarray) -> np.ndarray | None:
        """Check n_clusters and init against X; resolve ``_n_init``."""
        n, d = X.shape
        k = self.n_clusters
        if self._device().type == "mps":
            raise ValueError(
                f"device={self.device!r}: KMeansTransformer sums in float64, "
                "which Apple MPS lacks; use device='cpu' (or 'cuda')."
            )
        if k > n:
            raise ValueError(
                f"n_clusters={k} is larger than the number of samples, "
                f"n_samples={n}; use n_clusters <= n_samples."
            )
        is_array = not isinstance(self.init, str)
        if self.n_init == "auto":
            self._n_init = 10 if not is_array and self.init == "random" else 1
        else:
            self._n_init = self.n_init
        if not is_array:
            return None
        if self._n_init != 1:
            warnings.warn(
                "Explicit initial center position passed: performing only one "
                f"init in {type(self).__name__} instead of n_init={self._n_init}.",
                RuntimeWarning,
                stacklevel=3,
            )
            self._n_init = 1
        init = np.asarray(self.init)
        if init.ndim > 2 and init.shape[1:] == tuple(self.input_shape_):
            init = init.reshape(init.shape[0], -1)
        init = check_array(init, dtype=[np.float64, np.float32], input_name="init")
        if init.shape != (k, d):
            raise ValueError(
                f"init has shape {init.shape}, but the initial centers must have "
                f"shape (n_clusters, n_features) = ({k}, {d})."
            )
        return init

    def _chunk_rows(self) -> int:
        """Rows per block: ``batch_size``, or what suits the device."""
        if self.batch_size is not None:
            return int(self.batch_size)
        # CPU: keep a (rows, n_clusters) block of distances in L2 cache (2 MiB);
        # an accelerator wants few, large blocks (64 MiB).
        cpu = self._device().type == "cpu"
        width = max(self.n_clusters, getattr(self, "n_features_in_", 1))
        return max(1024, (_CPU_BLOCK if cpu else _DEVICE_BLOCK) // width)

    def _to_device(self, X: np.ndarray, *, fit: bool = False):
        """X minus an offset, as a float32 tensor (n, d) on the device.

        With ``fit`` the offset is the (float32) mean of X, stored in
        ``_offset``, and the tolerance ``tol * mean(var(X, axis=0))`` is
        returned as well; otherwise the stored offset is used and the
        tolerance is None. Blocks are shifted exactly as in ``predict``, so
        fit and predict label a sample alike.
        """
        device = self._device()
        n, d = X.shape
        if fit:
            self._offset = X.mean(axis=0, dtype=np.float64).astype(np.float32)
        offset = torch.as_tensor(self._offset, device=device)
        x = torch.empty((n, d), dtype=torch.float32, device=device)
        s1 = torch.zeros(d, dtype=torch.float64, device=device)
        s2 = torch.zeros(d, dtype=torch.float64, device=device)
        for sl in batch_slices(n, self._chunk_rows()):
            xb = torch.as_tensor(np.require(X[sl], requirements="W")).to(
                device, torch.float32
            )
            x[sl] = xb - offset
            if fit:
                s1 += x[sl].sum(0, dtype=torch.float64)
                s2 += x[sl].square().sum(0, dtype=torch.float64)
        if not fit:
            return x, None
        variance = s2 / n - (s1 / n).square()  # (d,), about a near-zero mean
        return x, float(variance.mean()) * self.tol

    def _init_centers(self, x: torch.Tensor, init, rng) -> torch.Tensor:
        """Initial centers (k, d) in the shifted coordinates of x."""
        n, k = x.shape[0], self.n_clusters
        if init is not None:
            shifted = (init - self._offset).astype(np.float32)
            return torch.as_tensor(shifted, device=x.device)
        if self.init == "random":
            idx = torch.as_tensor(rng.permutation(n)[:k], device=x.device)
            return x[idx].clone()
        m = max(_KMEANSPP_MAX_SAMPLES, 16 * k)
        if n > m:
            sub = np.sort(rng.choice(n, m, replace=False))
            x = x[torch.as_tensor(sub, device=x.device)]
        return _kmeans_plusplus(x, k, rng)

    def _set_fitted(self, labels, inertia, centers, n_iter, *, full_fit) -> None:
        self._centers = centers.cpu().numpy()  # (k, d) float32, shifted
        self.cluster_centers_ = (self._centers + self._offset).astype(np.float32)
        self.labels_ = labels.cpu().numpy()
        self.inertia_ = float(inertia)
        self.n_iter_ = int(n_iter)
        self._n_features_out = self.cluster_centers_.shape[0]
        if not full_fit:
            return
        # cluster sizes let partial_fit continue from a fit
        self._counts = np.bincount(self.labels_, minlength=self.n_clusters).astype(
            np.float64
        )
        distinct = int((self._counts > 0).sum())
        if distinct < self.n_clusters:
            warnings.warn(
                f"Number of distinct clusters ({distinct}) found smaller than "
                f"n_clusters ({self.n_clusters}). Possibly due to duplicate "
                "points in X.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _device_centers(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Shifted centers (k, d) and the offset (d,), float32 on the device."""
        device = self._device()
        centers = torch.as_tensor(self._centers, device=device)
        return centers, torch.as_tensor(self._offset, device=device)

    def _map_blocks(self, X, fn, n_out, dtype) -> np.ndarray:
        return self._map_batches(
            X, fn, n_out, batch_size=self._chunk_rows(), dtype=dtype
        )
