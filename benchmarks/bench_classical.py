"""KMeansTransformer and PCATransformer against scikit-learn, in one process.

Same data, same initial centres, same thread count for torch and for
scikit-learn's OpenMP and BLAS, at 1 and at 2 threads. For K-means (n=200k,
d=64, k=32, float32, 50 Lloyd iterations from the same centres) it prints
the fit, ``transform`` (distances to the centres) and ``predict`` times
against ``sklearn.cluster.KMeans``, and the inertia ratio; for PCA (n=200k, d=256,
32 components, float32, mean 3 and a power-law spectrum) the fit and
``transform`` times against ``sklearn.decomposition.PCA(
svd_solver="covariance_eigh")`` and the explained-variance agreement with a
float64 reference. Our runs and scikit-learn's alternate, each after a
0.3 s pause so that neither pays for the other's spinning threads, both
after a warm-up fit, and the targets read the median of the back-to-back
pairs' ratios (``*_ratio_median``), so load that drifts during the run
cancels out; the ratio of the best times (``*_ratio_best``) is printed
beside it.

K-means is also fitted on real data (MNIST-1D and the 8x8 digits tiled to
200k rows, 20k MNIST digits of 784 pixels; k = 10 and 100) and on noise
without clusters (200k x 40 standard normal values) from the same initial
rows with both estimators' default tolerance, as a user would run it: blobs
let the distance bounds skip most rows, real data less so, noise least; the
fitted estimators' ``predict`` on the same rows is timed too.

Run: ``python benchmarks/bench_classical.py`` (about five minutes on 2 CPU
cores). Targets: at most 1.0 times scikit-learn's time for every fit,
transform and predict at both thread counts, with the accuracy kept (explained
variances within 1e-5 of the float64 reference, inertia within 1e-4 of
scikit-learn's).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from _kmeans_bench import REAL_SETS, bench_kmeans, bench_kmeans_real  # noqa: E402
from _pca_bench import bench_pca  # noqa: E402
from _targets import verdict  # noqa: E402

#: ``(estimator, row) -> (target, at_most)``.
TARGETS = {
    ("KMeans", "time_ratio_median"): (1.0, True),
    ("KMeans", "transform_time_ratio_median"): (1.0, True),
    ("KMeans", "predict_time_ratio_median"): (1.0, True),
    ("KMeans", "inertia_ratio"): (1.0001, True),
    ("PCA", "time_ratio_median"): (1.0, True),
    ("PCA", "transform_time_ratio_median"): (1.0, True),
    ("PCA", "ev_max_rel_diff_vs_sklearn_float64"): (1e-5, True),
}


def main() -> None:
    print(f"torch {torch.__version__}")
    for n_threads in (1, 2):
        runs = [
            ("KMeans", bench_kmeans(n_threads=n_threads)),
            ("PCA", bench_pca(n_threads=n_threads)),
        ]
        for name, result in runs:
            print(f"\n{name}, {n_threads} thread{'s' if n_threads > 1 else ''}")
            for key, value in result.items():
                shown = f"{value:.6g}" if isinstance(value, float) else value
                target = TARGETS.get((name, key))
                note = (
                    ""
                    if target is None
                    else f"  ({verdict(value, *target[:1], at_most=target[1])})"
                )
                print(f"  {key:<36} {shown}{note}")
        real_data_table(n_threads)


def real_data_table(n_threads: int) -> None:
    """K-means fits on real data and noise, same start, default tol."""
    print(
        f"\nKMeans on real data and noise, {n_threads} "
        f"thread{'s' if n_threads > 1 else ''}: "
        "fits from the same k rows, tol=1e-4, at most 100 iterations"
    )
    header = (
        f"  {'data':<9}{'n':>8}{'d':>5}{'k':>5}{'iters':>10}{'ms/iter':>16}"
        f"{'ratio median':>13}{'best/iter':>10}{'predict':>9}{'inertia ratio':>15}"
    )
    print(header)
    for name in REAL_SETS:
        for k in (10, 100):
            r = bench_kmeans_real(name, k, n_threads=n_threads)
            ratio, predict = r["time_ratio_median"], r["predict_ratio_median"]
            print(
                f"  {name:<9}{r['n']:>8}{r['d']:>5}{k:>5}"
                f"{r['n_iter_ours']:>5}/{r['n_iter_sklearn']:<4}"
                f"{r['ms_per_iter_ours']:>7.1f}/{r['ms_per_iter_sklearn']:<8.1f}"
                f"{ratio:>9.2f}    {r['ms_per_iter_ratio_best']:>10.2f}"
                f"{predict:>9.2f}{r['inertia_ratio']:>15.5f}"
                f"  (fit {verdict(ratio, 1.0, at_most=True)}; "
                f"predict {verdict(predict, 1.0, at_most=True)})"
            )


if __name__ == "__main__":
    main()
