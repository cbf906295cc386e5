"""K-means in PyTorch: Lloyd's algorithm, k-means++ and mini-batch updates.

The estimator, :class:`KMeansTransformer`, follows
:class:`sklearn.cluster.KMeans`; the number crunching lives in pure tensor
functions that run on whatever device their inputs are on:
:mod:`sk_replearn.classical._lloyd` (the loop, the centre updates,
k-means++), :mod:`~sk_replearn.classical._hamerly` (assignment with bounds,
and the compiled kernels) and :mod:`~sk_replearn.classical._assign` (plain
assignment). Its input checks come from
:class:`~sk_replearn.classical._kmeans_checks.KMeansChecksMixin`, and the
block-wise movement of X to the device and back from
:class:`~sk_replearn.classical._kmeans_blocks.KMeansBlocksMixin`.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import ClusterMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from .._validation import float_dtypes
from ..base import BaseRepresentation, fit_context
from ._hamerly import _nearest_fn
from ._kmeans_blocks import (
    KMeansBlocksMixin,
    _compiled_rows,
    _exact_distances_fn,
    _shift64,
)
from ._kmeans_checks import KMeansChecksMixin
from ._lloyd import _lloyd, _minibatch_step
from ._moments import _acc_dtype, _no_tf32
from ._threads import _Workers

__all__ = ["KMeansTransformer"]


class KMeansTransformer(
    ClusterMixin, KMeansChecksMixin, KMeansBlocksMixin, BaseRepresentation
):
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
