"""KMeansTransformer and PCATransformer against scikit-learn, in one process.

Same data, same initial centres, same thread count for torch and for
scikit-learn's OpenMP and BLAS, at 1 and at 2 threads. For K-means (n=200k,
d=64, k=32, float32, 50 Lloyd iterations from the same centres) it prints
the fit and ``transform`` (distances to the centres) times against
``sklearn.cluster.KMeans``, and the inertia ratio; for PCA (n=200k, d=256,
32 components, float32, mean 3 and a power-law spectrum) the fit and
``transform`` times against ``sklearn.decomposition.PCA(
svd_solver="covariance_eigh")`` and the explained-variance agreement with a
float64 reference. Our runs and scikit-learn's alternate, each after a
0.3 s pause so that neither pays for the other's spinning threads, and the
ratio is the median of the back-to-back pairs, so load that drifts during
the run cancels out.

Run: ``python benchmarks/bench_classical.py`` (about a minute on 2 CPU
cores). Targets: at most 1.0 times scikit-learn's time for every fit and
transform at both thread counts, with the accuracy kept (explained
variances within 1e-5 of the float64 reference, inertia within 1e-4 of
scikit-learn's).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from _kmeans_bench import bench_kmeans  # noqa: E402
from _pca_bench import bench_pca  # noqa: E402
from _targets import verdict  # noqa: E402

#: ``(estimator, row) -> (target, at_most)``.
TARGETS = {
    ("KMeans", "time_ratio_median"): (1.0, True),
    ("KMeans", "transform_time_ratio_median"): (1.0, True),
    ("KMeans", "inertia_ratio"): (1.0001, True),
    ("PCA", "time_ratio"): (1.0, True),
    ("PCA", "transform_time_ratio"): (1.0, True),
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


if __name__ == "__main__":
    main()
