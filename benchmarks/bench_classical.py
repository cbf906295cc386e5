"""KMeansTransformer and PCATransformer against scikit-learn, in one process.

Same data, same initial centres, same thread count. Prints, for K-means
(n=200k, d=64, k=32, float32, 50 Lloyd iterations) the time ratio to
``sklearn.cluster.KMeans`` and the inertia ratio, and for PCA (n=200k, d=256,
32 components, float32) the time ratio to ``sklearn.decomposition.PCA(
svd_solver="covariance_eigh")`` and the explained-variance agreement.

Run: ``python benchmarks/bench_classical.py``. Targets: K-means ≤ 1.5×,
PCA ≤ 1.3× scikit-learn's time.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from _kmeans_bench import bench_kmeans  # noqa: E402
from _pca_bench import bench_pca  # noqa: E402
from _targets import verdict  # noqa: E402

#: ``(estimator, row) -> the most the ratio to scikit-learn may be``.
TARGETS = {("KMeans", "time_ratio"): 1.5, ("PCA", "time_ratio"): 1.3}


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name, result in [("KMeans", bench_kmeans()), ("PCA", bench_pca())]:
        print(f"\n{name}")
        for key, value in result.items():
            shown = f"{value:.6g}" if isinstance(value, float) else value
            target = TARGETS.get((name, key))
            note = (
                "" if target is None else f"  ({verdict(value, target, at_most=True)})"
            )
            print(f"  {key:<32} {shown}{note}")


if __name__ == "__main__":
    main()
