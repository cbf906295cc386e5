"""K-means in PyTorch: Lloyd's algorithm, k-means++ and mini-batch updates.

The estimator, :class:`KMeansTransformer`, follows
:class:`sklearn.cluster.KMeans`; the number crunching lives in the pure tensor
functions of :mod:`sk_replearn.classical._lloyd`, which run on whatever device
their inputs are on.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import ClusterMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_is_fitted,
)

from .._validation import float_dtypes, positive_strides
from .._warn import warn_user
from ..base import BaseRepresentation, fit_context, no_autocast
from ..data import batch_slices
from ..data._precision import _float32_square_limit
from . import _hamerly as _hamerly_module
from ._hamerly import (
    _CPU_BLOCK,
    _DEVICE_BLOCK,
    _kernels,
    _nearest_fn,
    _padded_centers,
)
from ._lloyd import _KMEANSPP_MAX_SAMPLES, _kmeans_plusplus, _lloyd, _minibatch_step
from ._moments import _acc_dtype, _no_tf32
from ._threads import _Workers

#: torch's out-of-memory error (``torch.OutOfMemoryError`` since torch 2.5).
_OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)

__all__ = ["KMeansTransformer"]


def _shift(
    xb: torch.Tensor, offset: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Rows minus the float32 ``offset``, as float32 (fit, predict, transform).

    float64 rows are shifted in float64 and then rounded, so that data far
    from the origin (timestamps, say: float32 steps of 128 at 1.7e9) lose
    nothing to the offset; float32 rows are shifted in float32. ``out``, a
    float32 tensor of ``xb``'s shape, receives the result.
    """
    if xb.dtype == torch.float64:
        shifted = xb - offset.double()
        return shifted.float() if out is None else out.copy_(shifted)
    return torch.sub(xb, offset, out=out)


#: The least spread about the offset that ``fit`` takes (see ``_check_range``).
_SPREAD_FLOOR = 1e-15


def _fit_offset(X: np.ndarray) -> np.ndarray:
    """The float64 mean of at most 65,536 rows spread over X, as float32."""
    sample = X[:: max(1, X.shape[0] // _KMEANSPP_MAX_SAMPLES)]
    return sample.mean(axis=0, dtype=np.float64).astype(np.float32)


def _shift_numpy(xb: np.ndarray, offset: np.ndarray, out: np.ndarray) -> None:
    """:func:`_shift` of numpy rows into ``out``: the same float operations."""
    if xb.dtype == np.float64:
        out[...] = xb - offset.astype(np.float64)  # rounded once, as _shift
    else:
        np.subtract(xb, offset, out=out)


def _compiled_rows(X, device: torch.device) -> bool:
    """Whether the compiled loop can read the rows of X as they are.

    A C-contiguous float32 array on the CPU, where the C extension's SIMD
    loop runs.
    """
    return (
        _hamerly_module._SIMD
        and device.type == "cpu"
        and isinstance(X, np.ndarray)
        and X.dtype == np.float32
        and X.flags.c_contiguous
    )


def _shift64(xb: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """Rows minus the float32 ``offset``, in float64 (float64 distances)."""
    return xb.double() - offset.double()


def _exact_distances_fn(centers: torch.Tensor):
    """Euclidean distances to ``centers`` (k, d) of float32 or float64 rows (B, d).

    The expanded ``‖c‖² - 2 x·c + ‖x‖²`` is one float32 matmul, but
    cancels when x is near a center (repeated float32 digits were 0.0156
    from their own centers); the entries it puts below ``_RECOMPUTE``
    times ``‖x‖² + max ‖c‖²`` are recomputed from the rows, in their own
    precision, as ``‖x - c‖²``, whose subtraction does not cancel: small
    distances are exact too (a center's distance to itself is 0, to the
    rounding of the center for float32 rows) at the cost of one gather per
    near pair, few beside the nearest center.
    """
    centers32 = centers.float()
    c_sq = centers32.square().sum(1)  # (k,)
    c_max = c_sq.max() if len(c_sq) else c_sq.new_zeros(())

    def fn(rows_in: torch.Tensor) -> torch.Tensor:  # (B, d) -> (B, k) float32
        xb = rows_in.float()
        x_sq = xb.square().sum(1, keepdim=True)  # (B, 1)
        d2 = torch.addmm(c_sq, xb, centers32.T, alpha=-2.0).add_(x_sq)
        near = d2 < x_sq.add(c_max).mul_(_RECOMPUTE)  # (B, k) < (B, 1)
        rows, cols = torch.nonzero(near, as_tuple=True)
        if len(rows):
            diff = rows_in[rows] - centers[cols].to(rows_in.dtype)  # (P, d)
            d2[rows, cols] = diff.square().sum(1).to(d2.dtype)
        return d2.clamp_(min=0).sqrt_()

    return fn


#: Squared distances below this fraction of ``‖x‖² + max ‖c‖²`` are recomputed
#: from the rows by ``transform`` (see _exact_distances_fn); above
#: it, float32's cancellation costs at most about 1e-3 of the distance.
_RECOMPUTE = 1e-2


class KMeansTransformer(ClusterMixin, BaseRepresentation):
    """K-means clustering in PyTorch, as a transformer.

    The code of a sample is its vector of Euclidean distances to the
    ``n_clusters`` centers (``encoding="distance"``, as
    :meth:`sklearn.cluster.KMeans.transform`) or the one-hot vector of its
    nearest center (``encoding="onehot"``). The decoder maps a code back to
    its center. Fitting runs Lloyd's algorithm on the GPU when there is one.
    X is dense: sparse matrices are refused (scikit-learn's
    :class:`~sklearn.cluster.KMeans` takes them).

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters, and width of the code.
    init : {"k-means++", "random"} or array-like of shape (n_clusters, n_features), \
            default="k-means++"
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
    copy_x : bool, default=True
        ``fit`` works on X minus a mean (distances between centred rows
        lose less to rounding). ``True`` centres a float32 copy of X.
        ``False`` centres X itself, in place, and adds the mean back before
        ``fit`` returns (or raises), saving the copy, as
        :class:`sklearn.cluster.KMeans` does: X may then differ from the
        original in the last bit of some values. X is copied all the same
        unless it is a writable, C-contiguous float32 array (or CPU tensor)
        and ``device`` is the CPU.
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
    cluster_centers_ : ndarray of shape (n_clusters, n_features_in_)
        The centers: float64 when fitted on float64 (or integer) data,
        float32 when fitted on float32, as scikit-learn keeps X's dtype.
    labels_ : ndarray of shape (n_samples,) of int32
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
        Shape of one sample: ``input_shape`` if given, the trailing shape of
        N-D input, else ``(n_features_in_,)`` (tabular data).

    See Also
    --------
    sklearn.cluster.KMeans : The NumPy / Cython original.
    sklearn.cluster.MiniBatchKMeans : What :meth:`partial_fit` follows.
    sk_replearn.PCATransformer : The other closed-form encoder.

    Notes
    -----
    Distances are computed in blocks of ``batch_size`` rows as
    ``||c||^2 - 2 x c^T`` (one matrix product; ``||x||^2`` does not change
    the argmin). Centers are updated with ``index_add_`` (on CUDA with the
    sort-based ``index_put_(accumulate=True)``, whose order of additions is
    fixed, so that a fit repeats to the bit there too), summed in float32
    within a block and in float64 across blocks; once at most a quarter of
    the labels change per iteration, only the samples that changed cluster
    are moved between the sums. The final inertia is computed directly as
    ``||x - c||^2`` (no cancellation), summed in float32 within a block and
    in float64 across blocks. X is shifted by a mean and copied to the
    device once as float32; ``predict``, ``transform`` and ``score`` move
    one block at a time (memory flat in ``n_samples``). Data far from the
    origin are therefore fine (timestamps in nanoseconds, 1e18), but X
    whose values spread so widely about their mean that their squared
    distances overflow float32, or so narrowly (by less than 1e-15) that
    they fall below its precision, is refused with a ValueError: rescale
    it. Empty clusters are relocated to the samples farthest from their
    centers, as in scikit-learn (with sample weights, a cluster given a row
    of weight 0 stays empty and keeps its center). Products run with TF32
    disabled on CUDA.

    On the CPU, ``fit`` keeps Hamerly's bounds (Hamerly 2010) on each
    sample's distance to its own center and to the others: a sample whose
    bounds prove its label cannot change costs no distances, so after the
    first few iterations a pass computes distances for a small share of
    the rows. The bounds are widened by the largest float32 rounding error
    of a distance, so the iterations, labels and centers are those of the
    full Lloyd pass (tested to be identical, ties included); it is
    ``algorithm="lloyd"``'s result at a fraction of its cost, not Elkan's
    k x k bounds. On an accelerator every pass computes all distances.
    On x86-64 CPUs with AVX2 and FMA, where the package's optional C
    extension is built, the CPU pass is one compiled loop that reads each
    row once and sums in float64, and ``predict`` runs its distances over
    every row of a float32 X, shifting and checking each row as it reads it
    (so a training sample keeps its fitted label); elsewhere they run as
    torch operations (on the real data of ``benchmarks/bench_classical.py``,
    at one thread, the fit took 1.15 to 2.2 times scikit-learn's time that
    way, against 0.43 to 0.86 with the compiled loop).

    On the CPU, ``fit``, ``partial_fit``, ``predict``, ``transform`` and
    ``score`` split the blocks among ``torch.get_num_threads()`` Python
    threads, each running torch with one thread (torch's thread count is
    set to 1 meanwhile and restored after): one join per pass instead of a
    barrier per tensor operation, which keeps them fast when other
    processes share the cores.

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
    array([ 1., 10.])
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
           [1., 2.]])
    """

    #: Integer X becomes float64, as in scikit-learn: the float32 rounding
    #: of integers beyond 2**24 (timestamps) would defeat the float64 paths.
    _integers_as = np.float64
    _reads_layout = False  # flat rows: the axes' meaning changes nothing
    _parameter_constraints: dict = {
        **BaseRepresentation._parameter_constraints,
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"k-means++", "random"}), "array-like"],
        "n_init": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "copy_x": ["boolean"],
        "encoding": [StrOptions({"distance", "onehot"})],
    }

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init="k-means++",
        n_init: str | int = "auto",
        max_iter: int = 300,
        tol: float = 1e-4,
        copy_x: bool = True,
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
        self.copy_x = copy_x
        self.encoding = encoding
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.input_shape = input_shape

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None) -> KMeansTransformer:
        """Compute the k-means clustering of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Training samples.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample, as in
            :meth:`sklearn.cluster.KMeans.fit`: centers are weighted means,
            ``inertia_`` is weighted, k-means++ draws samples with
            probability proportional to weight times squared distance and
            ``init="random"`` with probability proportional to weight. The
            tolerance is not weighted. ``None`` weighs all samples equally.

        Returns
        -------
        self : KMeansTransformer
            The fitted estimator.
        """
        X = self._validate_X(X, reset=True)
        sw = self._check_weights(sample_weight, X)
        self._fit_dtype = X.dtype.name  # the dtype of cluster_centers_
        init = self._check_params_vs_data(X)
        rng = check_random_state(self.random_state)
        in_place = self._in_place(X)
        x, tol = self._to_device(X, fit=True, in_place=in_place)
        try:
            w = None if sw is None else torch.as_tensor(sw, device=x.device)
            w = None if w is None else w.to(x.dtype)
            # TF32 would round the distances to 10-bit mantissas: labels flip
            with _no_tf32(x.device):
                starts = [
                    self._init_centers(x, init, rng, w) for _ in range(self._n_init)
                ]
                with _Workers(x.device) as workers:
                    runs = (
                        _lloyd(
                            x,
                            centers,
                            max_iter=self.max_iter,
                            tol=tol,
                            chunk=self._lloyd_rows(),
                            workers=workers,
                            w=w,
                        )
                        for centers in starts
                    )
                    best = min(runs, key=lambda run: run[1])  # lowest inertia
        finally:
            if in_place:  # X back as it came, but for rounding
                x.add_(torch.as_tensor(self._offset))
        self._set_fitted(*best, full_fit=True, weights=sw)
        return self

    @fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None) -> KMeansTransformer:
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
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample of the batch, as in
            :meth:`sklearn.cluster.MiniBatchKMeans.partial_fit`: the cluster
            sizes that set the learning rate are total weights, and
            ``inertia_`` is weighted. ``None`` weighs all samples equally.

        Returns
        -------
        self : KMeansTransformer
            The updated estimator.
        """
        first = not hasattr(self, "cluster_centers_")
        X = self._validate_X(X, reset=first)
        sw = self._check_weights(sample_weight, X)
        if first or X.dtype == np.float64:  # float64 once any batch is
            self._fit_dtype = X.dtype.name
        if first and len(X) < self.n_clusters:
            raise ValueError(
                f"n_clusters={self.n_clusters} is larger than the {len(X)} "
                "samples of partial_fit's first batch, which initialises the "
                f"centers; pass a first batch of at least {self.n_clusters} "
                "samples (later batches may be of any size)."
            )
        init = self._check_params_vs_data(X) if first else None
        x, _ = self._to_device(X, fit=first)
        w = None if sw is None else torch.as_tensor(sw, device=x.device).to(x.dtype)
        with _no_tf32(x.device):
            if first:
                rng = check_random_state(self.random_state)
                centers = self._init_centers(x, init, rng, w)
                self._counts, self.n_iter_ = np.zeros(self.n_clusters), 0
            else:
                centers = torch.as_tensor(self._centers, device=x.device)
            counts = torch.as_tensor(self._counts, device=x.device)  # (k,) float64
            with _Workers(x.device) as workers:
                labels, inertia, centers, counts = _minibatch_step(
                    x, centers, counts, self._chunk_rows(), workers, w
                )
        self._counts = counts.cpu().numpy()
        self._set_fitted(labels, inertia, centers, self.n_iter_ + 1, full_fit=False)
        return self

    def fit_predict(self, X, y=None, sample_weight=None) -> np.ndarray:
        """Fit, then return the cluster index of each training sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Training samples.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample (see :meth:`fit`). ``None``
            weighs all samples equally.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            ``labels_``.
        """
        return self.fit(X, sample_weight=sample_weight).labels_

    def predict(self, X) -> np.ndarray:
        """Index of the nearest center of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Samples.

        Returns
        -------
        labels : ndarray of shape (n_samples,) of int32
            Cluster indices (int32, as scikit-learn's ``KMeans.predict``).
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False, check_values=False)
        centers = self._device_centers()
        if _compiled_rows(X, self._device()):
            return self._predict_compiled(X, centers)
        self._check_values(X)
        return self._map_blocks(X, _nearest_fn(centers), 0, np.int32)

    def _predict_compiled(self, X: np.ndarray, centers: torch.Tensor) -> np.ndarray:
        """:meth:`predict` by the compiled loop, which shifts each row as it reads it.

        The same float32 shift and distances as ``fit`` (so a training sample
        keeps its label), without a shifted copy of each block in memory. X's
        values are checked in the same read, not in passes of their own: the
        loop counts the rows whose distances are NaN or infinite (a NaN or
        infinite value makes them so) and returns the largest magnitude of
        the shifted values; only then, if either is out of bounds, is X
        checked for the error that names the cause, as in ``fit``.
        """
        n = X.shape[0]
        out = np.empty(n, dtype=np.int64)
        with _Workers(self._device()) as workers:
            # torch on one thread, as in fit: at two, its threads woke for
            # these small products and took 6 ms of a 30 ms predict
            c_t, c_sq = _padded_centers(centers)

            def work(blocks: list[slice]) -> tuple[int, float]:
                bad, peak = 0, 0.0
                for sl in blocks:
                    b, p = _kernels.nearest_labels(
                        X[sl], self._offset, c_t, c_sq, out[sl]
                    )
                    bad, peak = bad + b, max(peak, p)
                return bad, peak

            results = workers.map(work, n, self._chunk_rows())
        bad = sum(b for b, _ in results)
        peak = max((p for _, p in results), default=0.0)
        if bad or peak > _float32_square_limit(X.shape[1]):
            self._raise_not_finite(X, "distances to the centers")
        return out.astype(np.int32)

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
            Computed in float32 from ``‖c‖² - 2 x·c + ‖x‖²``; the small
            ones, where that form cancels, are recomputed as ``‖x - c‖``
            (in float64 for float64 X), so a center's distance to itself
            is 0 (for float32 X, to the rounding of the center: about 4e-6
            on data of spread 100, where the expanded form gave 0.02).
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        k = self.cluster_centers_.shape[0]
        centers = self._device_centers()
        if self.encoding == "onehot":
            nearest = _nearest_fn(centers)

            def fn(xb):  # shifted (B, d) -> (B, k)
                return torch.nn.functional.one_hot(nearest(xb), k).float()
        elif X.dtype == np.float64 and _acc_dtype(centers.device) == torch.float64:
            fn = _exact_distances_fn(centers)  # (not on MPS: it has no float64)
            return self._map_blocks(X, fn, k, np.float32, shift=_shift64)
        else:
            fn = _exact_distances_fn(centers)  # shifted float32 rows
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
        X_centers : ndarray of shape (n_samples, n_features_in_) or (n, *input_shape_)
            The center of each code, in the dtype of ``cluster_centers_`` and
            the layout of the data ``fit`` was given (N-D samples when it was
            given them, else 2-D).
        """
        check_is_fitted(self)
        codes = check_array(X, dtype=float_dtypes(X, self._integers_as))
        k = self.cluster_centers_.shape[0]
        if codes.shape[1] != k:
            raise ValueError(
                f"X has {codes.shape[1]} columns but inverse_transform expects "
                f"codes of width n_clusters={k}."
            )
        pick = codes.argmax(1) if self.encoding == "onehot" else codes.argmin(1)
        return self._output_layout(self.cluster_centers_[pick])

    def score(self, X, y=None, sample_weight=None) -> float:
        """Opposite of the inertia of X under the fitted centers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, *input_shape)
            Samples.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample. ``None`` weighs all samples
            equally.

        Returns
        -------
        score : float
            Minus the sum of squared distances of the samples to their
            nearest centers, times their weights (higher is better).
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        sw = self._check_weights(sample_weight, X)
        centers = self._device_centers()
        nearest = _nearest_fn(centers)

        def fn(xb):  # shifted (B, d) -> (B,)
            return (xb - centers[nearest(xb)]).square_().sum(1)

        if sw is None:
            return -float(self._map_blocks(X, fn, 0, np.float64).sum())
        return -float(self._map_blocks(X, fn, 0, np.float64) @ sw)

    # -- private helpers ------------------------------------------------------
    def _transfer_encoder(self):
        raise TypeError(
            "KMeansTransformer's code (distances to centres, or one-hot) has no "
            "weights to fine-tune; use PCATransformer or a neural estimator "
            "(AutoencoderTransformer, SimCLRTransformer, MAETransformer, ...) "
            "as the representation."
        )

    def _check_range(self, X: np.ndarray, *, reset: bool) -> None:
        """Refuse X whose shifted values float32 cannot square and sum.

        The distances are computed from ``X - _offset``, so a large common
        offset, such as timestamps in nanoseconds, is fine; values spread
        too widely about it overflow float32, and values spread too narrowly
        (below 1e-15 from the offset, squares below 1e-30) underflow it:
        their squared distances lose their digits and round to 0, and every
        sample fell into one cluster, reported as "duplicate points". With
        ``reset`` (``fit``), the offset is computed here from this X and
        stored once X passes, for :meth:`_to_device` to shift X by.
        """
        offset32 = _fit_offset(X) if reset and X.size else self._offset
        if X.size:
            self._check_spread(X, offset32.astype(np.float64), reset=reset)
        if reset:
            self._offset = offset32

    def _check_spread(self, X: np.ndarray, offset: np.ndarray, *, reset: bool):
        name, d = type(self).__name__, X.shape[1]
        limit = _float32_square_limit(d)
        # A bound first, from X's extremes (a third of the time of the
        # columns' own, on 200,000 x 64): no value lies farther than it from
        # its column's offset; only near a limit are the columns read.
        hi, lo = float(X.max()), float(X.min())
        bound = max(hi - offset.min(), offset.max() - lo)
        if bound <= limit and (not reset or bound >= _SPREAD_FLOOR):
            return
        spread = float(
            np.maximum(
                np.abs(X.max(axis=0) - offset), np.abs(X.min(axis=0) - offset)
            ).max()
        )
        mean = "their mean" if reset else "the mean of the data fit saw"
        if spread > limit:
            raise ValueError(
                f"X holds values up to {spread:.3g} from {mean}: squared and "
                f"summed over its {d} features they overflow float32 (above "
                f"{limit:.3g}), the precision in which {name} computes; rescale "
                "X (e.g. with StandardScaler)."
            )
        if reset and 0 < spread < _SPREAD_FLOOR:
            raise ValueError(
                f"X's values lie at most {spread:.3g} from their mean: their "
                f"squared distances (at most {spread**2:.1g}) fall to the bottom "
                f"of the range of float32, in which {name} computes, where they "
                "lose their digits or round to 0; rescale X (e.g. with "
                "StandardScaler)."
            )

    @staticmethod
    def _check_weights(sample_weight, X: np.ndarray) -> np.ndarray | None:
        """Validated float64 sample weights (n,), or None for equal weights.

        Weights of 1 everywhere are the same as none, and take the same
        code (and random draws) as ``sample_weight=None``.
        """
        if sample_weight is None:
            return None
        sw = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        return None if np.all(sw == 1) else sw

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
            warn_user(
                "Explicit initial center position passed: performing only one "
                f"init in {type(self).__name__} instead of n_init={self._n_init}.",
                RuntimeWarning,
            )
            self._n_init = 1
        init = np.asarray(self.init)
        if init.ndim > 2:
            if init.shape[1:] != tuple(self.input_shape_):
                raise ValueError(
                    f"init has shape {init.shape}, but N-D initial centers must "
                    f"have shape (n_clusters, *input_shape) = "
                    f"{(k, *self.input_shape_)}, or pass them flat, "
                    f"({k}, {d})."
                )
            init = init.reshape(init.shape[0], -1)
        init = positive_strides(
            check_array(init, dtype=[np.float64, np.float32], input_name="init")
        )
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

    def _lloyd_rows(self) -> int:
        """Rows per block of a Lloyd pass.

        4x :meth:`_chunk_rows`. On the CPU the bounds skip most rows after
        the first passes, so a block's distances are few, and fewer, larger
        blocks cost less Python per pass and share better between threads
        (measured at 200k x 64, k=32: fit 0.83 -> 0.67x scikit-learn's time
        at 1 thread, 1.13 -> 0.85x at 2). On an accelerator too: fewer
        launches, each longer, and 2**26 distances (256 MiB in float32) a
        block. The size matters little there: on an H200 (n=10M, d=128,
        k=1000) blocks of 16,777 to 1,048,576 rows took 86 to 107 ms an
        iteration, within the 20% spread of repeated runs.
        """
        if self.batch_size is not None:
            return self._chunk_rows()
        return 4 * self._chunk_rows()

    def _in_place(self, X: np.ndarray) -> bool:
        """Whether ``fit`` may centre X itself (``copy_x=False``, see there)."""
        return (
            not self.copy_x
            and self._device().type == "cpu"
            and X.dtype == np.float32
            and X.flags.c_contiguous
            and X.flags.writeable
        )

    def _to_device(self, X: np.ndarray, *, fit: bool = False, in_place: bool = False):
        """X minus an offset, as a float32 tensor (n, d) on the device.

        The offset, ``_offset``, is the float64 mean of at most 65,536 rows
        spread over the X that ``fit`` validated (:meth:`_check_range` sets
        it; a centre for conditioning: any point near the data serves, and
        this one costs a fraction of a pass), as float32. With ``fit`` the
        tolerance ``tol * mean(var(X, axis=0))`` is returned as well (0 when
        ``tol=0``, as scikit-learn's); otherwise it is None. Blocks are shifted
        exactly as in ``predict``, so fit and predict label a sample alike.
        ``in_place`` (see :meth:`_in_place`) shifts X itself and returns it
        as the tensor.
        """
        device = self._device()
        n, d = X.shape
        cpu = device.type == "cpu"
        # the device's copy of the offset (the CPU shifts with numpy's)
        offset = None if cpu else torch.as_tensor(self._offset, device=device)
        if in_place:
            x = torch.from_numpy(X)  # X itself
        elif cpu:
            # numpy asks Linux for huge pages for large arrays, torch does not:
            # shifting 20,000 x 784 rows into torch.empty's pages took 31 ms
            # of page faults, into numpy's 9 ms
            x = torch.from_numpy(np.empty((n, d), dtype=np.float32))
        else:
            try:
                x = torch.empty((n, d), dtype=torch.float32, device=device)
            except _OUT_OF_MEMORY:
                raise MemoryError(
                    f"KMeansTransformer keeps X on the device for its "
                    f"iterations: {n} x {d} float32 values ({4 * n * d / 2**30:.3g} "
                    f"GiB) do not fit on {device}. Use device='cpu', fewer "
                    "samples, or partial_fit on batches of X."
                ) from None
        moments = fit and self.tol > 0
        s1 = torch.zeros(d, dtype=torch.float64, device=device)
        s2 = torch.zeros(d, dtype=torch.float64, device=device)
        for sl in batch_slices(n, self._chunk_rows()):
            if cpu:
                # numpy's one thread: torch's two, writing fresh pages, wait
                # for each other's page faults (the shift took 90 ms, not 12)
                xs = x[sl]
                _shift_numpy(X[sl], self._offset, xs.numpy())
            else:
                xb = torch.as_tensor(np.require(X[sl], requirements="W")).to(device)
                xs = _shift(xb, offset, out=x[sl])
            if moments:  # float32 within a block is plenty for a tolerance
                s1 += xs.sum(0)
                s2 += xs.square().sum(0)
        if not fit:
            return x, None
        if not moments:
            return x, 0.0
        variance = s2 / n - (s1 / n).square()  # (d,), about a near-zero mean
        return x, float(variance.mean()) * self.tol

    def _init_centers(self, x: torch.Tensor, init, rng, w=None) -> torch.Tensor:
        """Initial centers (k, d) in the shifted coordinates of x.

        With sample weights ``w`` (n,), ``"random"`` draws rows with
        probability proportional to their weight, as scikit-learn, and
        k-means++ weighs its draws and potentials.
        """
        n, k = x.shape[0], self.n_clusters
        if init is not None:
            shifted = (init - self._offset).astype(np.float32)
            return torch.as_tensor(shifted, device=x.device)
        if self.init == "random":
            if w is None:
                idx = torch.as_tensor(rng.permutation(n)[:k], device=x.device)
            else:
                p = w.double().cpu().numpy()
                if np.count_nonzero(p) < k:
                    raise ValueError(
                        f"init='random' draws n_clusters={k} distinct samples "
                        "with probabilities proportional to sample_weight, but "
                        f"only {np.count_nonzero(p)} sample(s) have a positive "
                        "weight; use init='k-means++', fewer clusters, or weigh "
                        "more samples."
                    )
                seeds = rng.choice(n, size=k, replace=False, p=p / p.sum())
                idx = torch.as_tensor(seeds, device=x.device)
            return x[idx].clone()
        m = max(_KMEANSPP_MAX_SAMPLES, 16 * k)
        if n > m:
            sub = np.sort(rng.choice(n, m, replace=False))
            x = x[torch.as_tensor(sub, device=x.device)]
            if w is not None:
                w = w[torch.as_tensor(sub, device=w.device)]
        return _kmeans_plusplus(x, k, rng, w)

    def _set_fitted(
        self, labels, inertia, centers, n_iter, *, full_fit, weights=None
    ) -> None:
        self._centers = centers.cpu().numpy()  # (k, d) float32, shifted
        if getattr(self, "_fit_dtype", "float32") == "float64":
            # float64 data keep their digits: float32 steps are 128 at 1.7e9
            self.cluster_centers_ = self._centers.astype(np.float64) + self._offset
        else:
            self.cluster_centers_ = (self._centers + self._offset).astype(np.float32)
        self.labels_ = labels.cpu().numpy().astype(np.int32)  # as scikit-learn's
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
        if weights is not None:  # total weights, as partial_fit keeps them
            self._counts = np.bincount(
                self.labels_, weights=weights, minlength=self.n_clusters
            )
        if distinct < self.n_clusters:
            warn_user(
                f"Number of distinct clusters ({distinct}) found smaller than "
                f"n_clusters ({self.n_clusters}). Possibly due to duplicate "
                "points in X.",
                ConvergenceWarning,
            )

    def _device_centers(self) -> torch.Tensor:
        """Shifted centers (k, d), float32 on the device."""
        return torch.as_tensor(self._centers, device=self._device())

    def _map_blocks(self, X, fn, n_out, dtype, shift=_shift) -> np.ndarray:
        """``fn`` on blocks of X minus the offset, into one output array.

        ``shift`` subtracts the offset from a block: :func:`_shift` gives
        float32 blocks, :func:`_shift64` (the float64 distances of
        ``transform``) float64 ones.

        On the CPU the blocks are shared among torch's threads by
        :class:`_Workers` (one join per call, not one barrier per operation);
        elsewhere they go to the device one after the other.
        """
        device = self._device()
        offset = torch.as_tensor(self._offset, device=device)
        if device.type != "cpu" or not isinstance(X, np.ndarray):
            with _no_tf32(device):
                return self._map_batches(
                    X,
                    lambda xb: fn(shift(xb, offset)),
                    n_out,
                    batch_size=self._chunk_rows(),
                    dtype=dtype,
                    in_dtype=None,
                )
        n = X.shape[0]
        out = np.empty((n, n_out) if n_out else (n,), dtype=dtype)

        def work(blocks: list[slice]) -> None:
            with no_autocast(device):  # in each worker thread (autocast is per thread)
                for sl in blocks:
                    xb = torch.from_numpy(np.require(X[sl], requirements="W"))
                    out[sl] = fn(shift(xb, offset)).numpy()

        with _Workers(device) as workers, torch.inference_mode():
            workers.map(work, n, self._chunk_rows())
        return out
