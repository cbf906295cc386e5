"""KMeansTransformer's data in blocks of rows, shifted by an offset.

KMeansTransformer computes on X minus an offset near the data (a mean), in
float32. The functions here shift rows by that offset (:func:`_shift`,
:func:`_shift_numpy`, :func:`_shift64`), compute it (:func:`_fit_offset`)
and give exact distances (:func:`_exact_distances_fn`).
:class:`KMeansBlocksMixin` sizes the blocks, copies X shifted to the
device for ``fit``, draws the initial centers and sets the fitted ones in
the shifted coordinates, and maps a function over shifted blocks of X for
``predict``, ``transform`` and ``score`` (on the CPU, ``predict`` by the
compiled loop).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from .._device import no_autocast
from .._warn import warn_user
from ..data import batch_slices
from ..data._precision import _float32_square_limit
from . import _hamerly as _hamerly_module
from ._hamerly import _CPU_BLOCK, _DEVICE_BLOCK, _kernels, _padded_centers
from ._lloyd import _KMEANSPP_MAX_SAMPLES, _kmeans_plusplus
from ._moments import _no_tf32
from ._threads import _Workers

#: torch's out-of-memory error (``torch.OutOfMemoryError`` since torch 2.5).
_OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


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


def _fit_offset(X: np.ndarray) -> np.ndarray:
    """The float64 mean of at most 65,536 rows spread over X, as float32.

    A mean beyond float32's range comes back as inf, without numpy's
    overflow warning: the caller refuses such an X by name.
    """
    sample = X[:: max(1, X.shape[0] // _KMEANSPP_MAX_SAMPLES)]
    with np.errstate(over="ignore"):
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


class KMeansBlocksMixin:
    """X shifted to the device in blocks, and the centers in those coordinates.

    Mixed into :class:`~sk_replearn.classical.kmeans.KMeansTransformer`:
    it reads the estimator's parameters, ``_device()``, ``_map_batches``,
    ``_raise_not_finite`` and the ``_offset`` that
    :meth:`~sk_replearn.classical._kmeans_checks.KMeansChecksMixin._check_range`
    sets.
    """

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
