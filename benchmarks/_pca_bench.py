"""Benchmark: PCATransformer against scikit-learn's PCA (covariance_eigh).

The data are the hard case for float32 PCA: mean 3.0 and a power-law
spectrum (standard deviations ``k ** -1`` along random orthonormal axes).
Reported: fit times and their ratio, and the largest relative difference of
the top explained variances between ours and scikit-learn's, fitted on a
float64 copy of the data (accurate) and on the float32 data itself (where
scikit-learn's ``X.T @ X - n mean meanᵀ`` loses the small eigenvalues).

Run alone: ``python benchmarks/_pca_bench.py``.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from _timing import timed
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from sk_replearn.classical.pca import PCATransformer


def _power_law_data(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    axes, _ = np.linalg.qr(rng.standard_normal((d, d)))
    scales = np.arange(1, d + 1, dtype=np.float64) ** -1.0
    X = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 50_000):  # build in chunks to bound float64 memory
        z = rng.standard_normal((min(50_000, n - start), d)) * scales
        X[start : start + len(z)] = z @ axes.T + 3.0
    return X


def _paired_times(ours, theirs, repeats: int) -> tuple[float, float, float]:
    """Best times of two callables, run alternately, and the median ratio.

    Alternating the runs and taking the median of the per-pair ratios keeps
    the ratio honest on a shared machine whose load drifts during the run;
    each run starts after a pause (:func:`_timing.timed`), so neither pays
    for the other's spinning threads.
    """
    pairs = [(timed(ours), timed(theirs)) for _ in range(repeats)]
    mine, other = zip(*pairs)
    return min(mine), min(other), float(np.median([a / b for a, b in pairs]))


def _max_rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.abs(b)))


def bench_pca(
    n: int = 200_000,
    d: int = 256,
    n_components: int = 32,
    *,
    repeats: int = 5,
    seed: int = 0,
    n_threads: int | None = None,
) -> dict:
    """Time PCATransformer and sklearn PCA(svd_solver="covariance_eigh").

    Parameters
    ----------
    n, d : int
        Shape of the float32 data.
    n_components : int
        Components to fit.
    repeats : int
        Alternating (ours, sklearn) pairs of timed runs.
    seed : int
        Seed of the synthetic data.
    n_threads : int or None
        Threads for both (torch's and the BLAS's); None uses every core.

    Returns
    -------
    dict
        ``time_ours_s``, ``time_sklearn_s`` (best fit times),
        ``time_ratio_median`` (ours / sklearn, fit only: the median over
        ``repeats`` alternating pairs), ``transform_time_ours_s``,
        ``transform_time_sklearn_s`` and ``transform_time_ratio_median``
        (likewise);
        the largest relative difference of ``explained_variance_`` between
        ours and sklearn fitted on a float64 copy of X
        (``ev_max_rel_diff_vs_sklearn_float64``, the agreement figure) and
        on X itself (``ev_max_rel_diff_vs_sklearn_float32``), and sklearn's
        own float32 error (``sklearn_float32_ev_max_rel_err``); plus the
        problem size and ``device``.
    """
    X = _power_law_data(n, d, seed)
    ours = PCATransformer(n_components=n_components, svd_solver="covariance_eigh")
    theirs = PCA(n_components=n_components, svd_solver="covariance_eigh")
    n_threads = n_threads or os.cpu_count() or 1
    old_threads = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        with threadpool_limits(limits=n_threads):
            for est in (ours, theirs):  # warm up both
                est.fit(X[:1000])
            time_ours, time_sklearn, ratio = _paired_times(
                lambda: ours.fit(X), lambda: theirs.fit(X), repeats
            )
            tr_ours, tr_sklearn, transform_ratio = _paired_times(
                lambda: ours.transform(X), lambda: theirs.transform(X), repeats
            )
    finally:
        torch.set_num_threads(old_threads)
    # Reference: the same solver on a float64 copy, where X.T @ X - n m mᵀ
    # loses only ~1e-12 of the smallest kept eigenvalue.
    reference = PCA(n_components=n_components, svd_solver="covariance_eigh")
    reference = reference.fit(X.astype(np.float64)).explained_variance_
    return {
        "n": n,
        "d": d,
        "n_components": n_components,
        "device": str(ours._device()),
        "n_threads": n_threads,
        "time_ours_s": time_ours,
        "time_sklearn_s": time_sklearn,
        "time_ratio_median": ratio,
        "transform_time_ours_s": tr_ours,
        "transform_time_sklearn_s": tr_sklearn,
        "transform_time_ratio_median": transform_ratio,
        "ev_max_rel_diff_vs_sklearn_float64": _max_rel(
            ours.explained_variance_, reference
        ),
        "ev_max_rel_diff_vs_sklearn_float32": _max_rel(
            ours.explained_variance_, theirs.explained_variance_
        ),
        "sklearn_float32_ev_max_rel_err": _max_rel(
            theirs.explained_variance_.astype(np.float64), reference
        ),
    }


if __name__ == "__main__":
    result = bench_pca()
    print(
        f"PCA n={result['n']} d={result['d']} k={result['n_components']} float32 "
        f"on {result['device']}"
    )
    print(
        f"  fit: ours {result['time_ours_s']:.3f} s, sklearn covariance_eigh "
        f"{result['time_sklearn_s']:.3f} s (best), median ratio "
        f"{result['time_ratio_median']:.2f}"
    )
    print(f"  transform time ratio {result['transform_time_ratio_median']:.2f}")
    print(
        "  explained variance, max relative difference, ours vs sklearn on "
        f"float64 X: {result['ev_max_rel_diff_vs_sklearn_float64']:.2e}; "
        f"vs sklearn on the float32 X: "
        f"{result['ev_max_rel_diff_vs_sklearn_float32']:.2e} (sklearn's own "
        f"float32 error: {result['sklearn_float32_ev_max_rel_err']:.2e})"
    )
