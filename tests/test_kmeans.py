"""Tests of KMeansTransformer: sklearn API checks, agreement with sklearn's
KMeans (Lloyd) from the same start, encodings, partial_fit, edge cases."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_replearn.classical.kmeans import KMeansTransformer

# small problems so the whole file runs in seconds on 2 cores
N_SAMPLES, N_FEATURES, N_CLUSTERS = 3000, 8, 5


@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(
        n_samples=N_SAMPLES,
        n_features=N_FEATURES,
        centers=N_CLUSTERS,
        cluster_std=2.0,
        random_state=0,
    )
    return X.astype(np.float32)


@pytest.fixture(params=[False, True], ids=["torch", "compiled"])
def compiled(request, monkeypatch):
    """The test on the torch loop, then on the compiled one where it is built."""
    from sk_replearn.classical import _hamerly as hamerly_module

    if request.param and hamerly_module._kernels is None:
        pytest.skip("the C extension is not built")
    monkeypatch.setattr(hamerly_module, "_SIMD", request.param)
    return request.param


def _init_from(X, k, seed=0):
    return X[np.random.default_rng(seed).choice(len(X), k, replace=False)]


# tests/test_common.py runs the scikit-learn common checks on the small row of
# tests/_instances.py (2 clusters, one init, 5 iterations); here they run on
# the defaults (8 clusters, n_init="auto", max_iter=300), a configuration the
# table does not have.
_SAMPLE_WEIGHT_XFAIL = {
    # as scikit-learn's own KMeans, which fails it alike and lists it among
    # its expected failures: the random seeds depend on the order and number
    # of the rows, so repeated rows (in their order) and integer weights (on
    # shuffled rows) start from different seeds and may end in different
    # local optima; with the same start they agree (see
    # test_kmeans_integer_weights_equal_repeated_rows)
    "check_sample_weight_equivalence_on_dense_data": (
        "sample_weight is not equivalent to removing/repeating samples."
    ),
}


@parametrize_with_checks(
    [KMeansTransformer()], expected_failed_checks=lambda est: _SAMPLE_WEIGHT_XFAIL
)
def test_kmeans_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_size", [None, 257])
def test_kmeans_matches_sklearn_lloyd(blobs, dtype, batch_size):
    X = blobs.astype(dtype)
    init = _init_from(X, 8)
    ours = KMeansTransformer(
        n_clusters=8, init=init, max_iter=100, batch_size=batch_size, device="cpu"
    ).fit(X)
    ref = KMeans(n_clusters=8, init=init, n_init=1, max_iter=100, algorithm="lloyd")
    ref.fit(X)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-4)
    assert np.mean(ours.labels_ == ref.labels_) >= 0.99
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, atol=1e-3)
    assert ours.n_iter_ == ref.n_iter_
    # labels as scikit-learn types them, from every path that gives them
    assert ours.labels_.dtype == ref.labels_.dtype == np.int32
    assert ours.predict(X).dtype == ref.predict(X).dtype
    assert ours.predict(torch.from_numpy(X)).dtype == np.int32
    assert -ours.score(X) == pytest.approx(ref.inertia_, rel=1e-4)
    np.testing.assert_allclose(ours.transform(X), ref.transform(X), atol=1e-3)


def test_kmeans_matches_sklearn_exact_iterations(blobs):
    # tol=0 and few iterations: the same number of Lloyd steps as sklearn
    init = _init_from(blobs, 16, seed=3)
    kw = {"n_clusters": 16, "init": init, "max_iter": 7, "tol": 0.0}
    ours = KMeansTransformer(**kw, device="cpu").fit(blobs)
    ref = KMeans(**kw, n_init=1, algorithm="lloyd").fit(blobs)
    assert ours.n_iter_ == ref.n_iter_ == 7
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-4)
    assert np.mean(ours.labels_ == ref.labels_) >= 0.99


def test_kmeans_tolerance_is_the_variance_of_all_rows_as_in_sklearn():
    # Beyond 65,536 rows the centring offset is the mean of a spread subsample,
    # here the even rows only, which miss the odd rows' second square; the
    # tolerance must still be tol times the variance of all of X, as in
    # scikit-learn, so that both stop after the same Lloyd iterations.
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(2 * 65_536, 2)).astype(np.float32)
    X[1::2, 0] += 3.0
    init = X[rng.choice(len(X), 8, replace=False)]
    for tol in [1e-5, 1e-3]:
        kw = {"n_clusters": 8, "init": init, "tol": tol, "max_iter": 300}
        ref = KMeans(**kw, n_init=1, algorithm="lloyd").fit(X)
        ours = KMeansTransformer(**kw, device="cpu").fit(X)
        assert ours.n_iter_ == ref.n_iter_ < 300


def test_kmeans_kmeanspp_and_random_init_quality(blobs):
    ref = KMeans(n_clusters=N_CLUSTERS, n_init=10, random_state=0).fit(blobs).inertia_
    for init in ["k-means++", "random"]:
        km = KMeansTransformer(n_clusters=N_CLUSTERS, init=init, random_state=0)
        km.fit(blobs)
        assert km.inertia_ <= 1.05 * ref
    assert km._n_init == 10  # n_init="auto" with init="random"


def test_kmeans_kmeanspp_subsample_on_large_n(blobs, monkeypatch):
    import sk_replearn.classical._kmeans_blocks as mod

    monkeypatch.setattr(mod, "_KMEANSPP_MAX_SAMPLES", 100)
    seen = []  # rows each k-means++ draw reads: a subsample of max(100, 16 k)
    kmeanspp = mod._kmeans_plusplus

    def counted(x, *args):
        seen.append(len(x))
        return kmeanspp(x, *args)

    monkeypatch.setattr(mod, "_kmeans_plusplus", counted)
    km = KMeansTransformer(n_clusters=N_CLUSTERS, random_state=0).fit(blobs)
    assert len(blobs) > max(100, 16 * N_CLUSTERS)
    assert seen and set(seen) == {max(100, 16 * N_CLUSTERS)}
    ref = KMeans(n_clusters=N_CLUSTERS, n_init=10, random_state=0).fit(blobs)
    assert km.inertia_ <= 1.05 * ref.inertia_


def test_kmeans_onehot_encoding_and_inverse(blobs):
    km = KMeansTransformer(
        n_clusters=N_CLUSTERS, encoding="onehot", random_state=0, batch_size=1000
    ).fit(blobs)
    code = km.transform(blobs)
    assert code.dtype == np.float32 and code.shape == (N_SAMPLES, N_CLUSTERS)
    np.testing.assert_array_equal(code.sum(axis=1), 1.0)
    np.testing.assert_array_equal(code.argmax(axis=1), km.labels_)
    np.testing.assert_array_equal(
        km.inverse_transform(code), km.cluster_centers_[km.labels_]
    )


def test_kmeans_distance_encoding_and_inverse(blobs):
    km = KMeansTransformer(n_clusters=N_CLUSTERS, random_state=0).fit(blobs)
    code = km.transform(blobs)
    assert code.dtype == np.float32 and (code >= 0).all()
    np.testing.assert_array_equal(km.predict(blobs), km.labels_)
    np.testing.assert_array_equal(
        km.inverse_transform(code), km.cluster_centers_[code.argmin(axis=1)]
    )
    with pytest.raises(ValueError, match="n_clusters=5"):
        km.inverse_transform(code[:, :3])
    # Fitted on N-D samples, it decodes to N-D samples (as fit was given).
    signals = blobs.reshape(len(blobs), 1, -1)
    km_nd = KMeansTransformer(n_clusters=N_CLUSTERS, random_state=0).fit(signals)
    centers = km_nd.inverse_transform(km_nd.transform(signals))
    assert centers.shape == signals.shape
    np.testing.assert_array_equal(
        centers.reshape(len(blobs), -1), km_nd.cluster_centers_[km_nd.labels_]
    )


def test_kmeans_random_state_determinism(blobs, device):
    # to the bit on CUDA too, where index_add_'s atomics would reorder sums
    a = KMeansTransformer(n_clusters=N_CLUSTERS, random_state=7, device=device)
    b = clone(a)
    a.fit(blobs)
    b.fit(blobs)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.inertia_ == b.inertia_


def test_kmeans_pickle_roundtrip(blobs):
    km = KMeansTransformer(n_clusters=N_CLUSTERS, random_state=0).fit(blobs)
    back = pickle.loads(pickle.dumps(km))
    np.testing.assert_array_equal(back.transform(blobs), km.transform(blobs))
    np.testing.assert_array_equal(back.predict(blobs), km.predict(blobs))


def test_kmeans_clone():
    km = KMeansTransformer(n_clusters=4, encoding="onehot", random_state=3)
    twin = clone(km)
    assert twin.get_params() == km.get_params()
    assert not hasattr(twin, "cluster_centers_")


def test_kmeans_set_output_pandas(blobs):
    km = KMeansTransformer(n_clusters=3, random_state=0).set_output(transform="pandas")
    out = km.fit_transform(pd.DataFrame(blobs, columns=[f"f{i}" for i in range(8)]))
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(km.get_feature_names_out())
    assert list(out.columns) == [f"kmeanstransformer{i}" for i in range(3)]


@pytest.mark.parametrize(
    "X, match",
    [
        (np.array([[0.0, 1.0], [np.nan, 1.0], [2.0, 3.0]]), "NaN"),
        (np.array([[0.0, 1.0], [np.inf, 1.0], [2.0, 3.0]]), "infinity"),
        (np.arange(5.0), "Expected 2D array"),
        (np.empty((0, 3)), "0 sample"),
        (np.array([["a", "b"], ["c", "d"]]), "could not convert|dtype"),
        (np.ones((2, 3)), "n_clusters=3 is larger .* n_samples=2"),
    ],
)
def test_kmeans_bad_input_fit(X, match):
    with pytest.raises(ValueError, match=match):
        KMeansTransformer(n_clusters=3).fit(X)


def test_kmeans_bad_input_transform(blobs):
    km = KMeansTransformer(n_clusters=3, random_state=0).fit(blobs)
    with pytest.raises(ValueError, match="X has 4 features"):
        km.transform(blobs[:, :4])
    with pytest.raises(ValueError, match="NaN"):
        km.predict(np.full((2, 8), np.nan))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"encoding": "sparse"}, "encoding"),
        ({"init": "kmeans"}, "init"),
        ({"n_clusters": 0}, "n_clusters"),
        ({"n_init": 0}, "n_init"),
        ({"tol": -1.0}, "tol"),
        ({"batch_size": 0}, "batch_size"),
        ({"device": "gpu0"}, "device"),
        ({"init": np.zeros((3, 5))}, r"init has shape \(3, 5\)"),
        ({"init": np.zeros((2, 8))}, r"init has shape \(2, 8\)"),
        ({"init": np.zeros((3, 2, 4))}, r"init has shape \(3, 2, 4\).*\(3, 8\)"),
        ({"init": np.full((3, 8), np.nan)}, "init"),
        ({"max_iter": 0}, "max_iter"),
    ],
)
def test_kmeans_bad_params(blobs, params, match):
    with pytest.raises(ValueError, match=match):
        KMeansTransformer(**{"n_clusters": 3, **params}).fit(blobs)


def test_kmeans_array_init_runs_once(blobs):
    init = _init_from(blobs, 3)
    km = KMeansTransformer(n_clusters=3, init=init, n_init=4)
    with pytest.warns(RuntimeWarning, match="only one init"):
        km.fit(blobs)
    assert km._n_init == 1 and km.n_init == 4


def test_kmeans_partial_fit_close_to_fit(blobs):
    full = KMeansTransformer(n_clusters=N_CLUSTERS, random_state=0).fit(blobs)
    mb = KMeansTransformer(n_clusters=N_CLUSTERS, random_state=0)
    rng = np.random.default_rng(0)
    for _ in range(3):
        for chunk in np.array_split(blobs[rng.permutation(N_SAMPLES)], 10):
            mb.partial_fit(chunk)
    assert mb.n_iter_ == 30 and mb.labels_.shape == (N_SAMPLES // 10,)
    assert -mb.score(blobs) <= 1.05 * full.inertia_
    with pytest.raises(ValueError, match="X has 3 features"):
        mb.partial_fit(blobs[:, :3])


def test_kmeans_partial_fit_says_how_large_a_first_batch_must_be(blobs):
    km = KMeansTransformer(n_clusters=8, random_state=0, device="cpu")
    with pytest.raises(ValueError, match=r"first batch.*at least 8 samples"):
        km.partial_fit(blobs[:3])
    km.partial_fit(blobs[:8]).partial_fit(blobs[8:9])  # later: any size
    assert km.cluster_centers_.shape == (8, blobs.shape[1])


def test_kmeans_partial_fit_continues_fit(blobs):
    km = KMeansTransformer(n_clusters=N_CLUSTERS, random_state=0).fit(blobs)
    before = -km.score(blobs)
    km.partial_fit(blobs[:500])
    assert -km.score(blobs) <= 1.01 * before
    np.testing.assert_allclose(km._counts.sum(), N_SAMPLES + 500)


def test_kmeans_empty_cluster_relocation(blobs):
    init = _init_from(blobs, 6)
    init[2] = 1e3  # far from every sample: empty after the first assignment
    ours = KMeansTransformer(n_clusters=6, init=init, device="cpu").fit(blobs)
    ref = KMeans(n_clusters=6, init=init, n_init=1, algorithm="lloyd").fit(blobs)
    assert np.abs(ours.cluster_centers_[2]).max() < 100  # moved into the data
    assert np.bincount(ours.labels_, minlength=6).min() > 0
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-4)
    assert np.mean(ours.labels_ == ref.labels_) >= 0.99


def test_kmeans_relocation_takes_the_row_out_of_its_old_cluster(compiled, blobs):
    # The iteration that relocates: the farthest row becomes the empty
    # cluster's center and leaves its old cluster's mean, as in scikit-learn.
    # Compared after that one iteration (later ones recompute every sum and
    # hid a row left in both).
    init = _init_from(blobs, 6)
    init[2] = 1e3  # far from every sample: empty after the first assignment
    ours = KMeansTransformer(6, init=init, max_iter=1, device="cpu").fit(blobs)
    ref = KMeans(6, init=init, n_init=1, max_iter=1, algorithm="lloyd").fit(blobs)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-5)


def test_kmeans_duplicate_points_warn():
    X = np.repeat(np.arange(3.0)[:, None], 10, axis=0)  # 3 distinct points
    with pytest.warns(Warning, match="distinct clusters"):
        KMeansTransformer(n_clusters=4, random_state=0).fit(X)


def test_kmeans_nd_input_equals_flattened():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 1, 8, 8)).astype(np.float32)
    a = KMeansTransformer(n_clusters=4, random_state=0).fit(X)
    b = KMeansTransformer(n_clusters=4, random_state=0).fit(X.reshape(300, -1))
    assert a.input_shape_ == (1, 8, 8) and b.input_shape_ == (64,)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.transform(X), b.transform(X.reshape(300, -1)))
    np.testing.assert_array_equal(a.transform(X), a.transform(X.reshape(300, -1)))
    init = a.cluster_centers_.reshape(4, 1, 8, 8)  # init in the sample shape
    c = KMeansTransformer(n_clusters=4, init=init).fit(X)
    np.testing.assert_allclose(c.cluster_centers_, a.cluster_centers_, atol=1e-6)


def test_kmeans_threads_do_not_change_result(blobs):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    results = []
    for n_threads in [1, 2]:
        torch.set_num_threads(n_threads)
        try:
            km = KMeansTransformer(n_clusters=5, random_state=0, batch_size=100)
            results.append(km.fit(blobs))
        finally:
            torch.set_num_threads(before)
        assert torch.get_num_threads() == before
    np.testing.assert_array_equal(results[0].labels_, results[1].labels_)
    np.testing.assert_allclose(
        results[0].cluster_centers_, results[1].cluster_centers_, rtol=1e-6
    )


def test_kmeans_transform_batches_match_one_block(blobs):
    # On the CPU. On CUDA cuBLAS picks its kernel by the block's shape, so
    # distances differ by the float32 rounding of ||c||^2 - 2 x.c + ||x||^2
    # (up to 1.8e-5 at distances of 2.5 to 5 on an H200).
    km = KMeansTransformer(n_clusters=N_CLUSTERS, random_state=0, device="cpu")
    km.fit(blobs)
    whole, labels = km.transform(blobs), km.predict(blobs)
    km.set_params(batch_size=7)  # only changes the blocks of transform
    np.testing.assert_allclose(km.transform(blobs), whole, atol=1e-5)
    np.testing.assert_array_equal(km.predict(blobs), labels)


def _grid_with_ties(n=3000, seed=0, d=3):
    """Integer points, many exactly halfway between integer centers."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 6, size=(n, d)).astype(np.float32)


#: Data for the tests that hold one Lloyd pass to another: blobs, uniform
#: rows, and a grid whose rows are often equidistant from two centers.
_LLOYD_DATA = pytest.mark.parametrize(
    "make",
    [
        lambda: _blobs_like(4000, 8, 0),
        lambda: np.random.default_rng(1).random((4000, 5)).astype(np.float32),
        _grid_with_ties,
    ],
    ids=["blobs", "uniform", "ties"],
)


@_LLOYD_DATA
@pytest.mark.parametrize("n_threads", [1, 2])
# blocks of 257 rows; or of 4000, whose rows to recompute (all at first) go
# through in pieces of 1024
@pytest.mark.parametrize("chunk", [257, 4000])
# the bounded pass in torch, or in the compiled loop where it is built
@pytest.mark.parametrize("compiled", [False, True], ids=["torch", "compiled"])
def test_kmeans_bounds_give_the_same_iterations_as_full_lloyd(
    make, n_threads, chunk, compiled, monkeypatch
):
    """Hamerly's bounds skip rows, never change a label Lloyd would compute."""
    from sk_replearn.classical import _hamerly as hamerly_module
    from sk_replearn.classical._lloyd import _lloyd
    from sk_replearn.classical._threads import _Workers

    if compiled and not hamerly_module._SIMD:
        pytest.skip("the C extension's SIMD loop does not run here")
    if not compiled:
        monkeypatch.setattr(hamerly_module, "_SIMD", False)
    monkeypatch.setattr(hamerly_module, "_CPU_BLOCK", 1)  # pieces of 1024 rows
    x = torch.from_numpy(make())
    init = x[torch.from_numpy(np.random.default_rng(2).choice(len(x), 12, False))]
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        runs = []
        for bounds in (False, True):
            with _Workers(x.device) as workers:
                runs.append(
                    _lloyd(
                        x,
                        init.clone(),
                        max_iter=60,
                        tol=0.0,
                        chunk=chunk,
                        workers=workers,
                        bounds=bounds,
                    )
                )
    finally:
        torch.set_num_threads(previous)
    (lab0, in0, c0, it0), (lab1, in1, c1, it1) = runs
    assert it0 == it1
    torch.testing.assert_close(lab1, lab0, rtol=0, atol=0)
    assert in1 == pytest.approx(in0, rel=1e-6)
    if not compiled:  # the same sums, in the same order
        torch.testing.assert_close(c1, c0, rtol=0, atol=1e-6)
        return
    # The compiled pass sums in float64 where the full pass sums float32
    # within a block: its centers are the exact means of their clusters
    # (converged, so the labels are the centers'), rounded once to float32.
    assert it1 < 60
    sizes = torch.bincount(lab1, minlength=12).double()[:, None]
    means = torch.zeros(12, x.shape[1], dtype=torch.float64)
    means = means.index_add_(0, lab1, x.double()) / sizes
    assert np.all(
        np.abs(c1.double().numpy() - means.numpy())
        <= np.spacing(np.abs(means.numpy()).astype(np.float32)) / 2
    )


def test_kmeans_bounds_survive_empty_cluster_relocation():
    """Duplicate initial centers empty a cluster: relocation resets the bounds."""
    from sk_replearn.classical._lloyd import _lloyd

    x = torch.from_numpy(_blobs_like(2000, 4, 3))
    init = x[:6].clone()
    init[1] = init[0]  # cluster 1 is empty after the first pass (ties go to 0)
    runs = [
        _lloyd(x, init.clone(), max_iter=40, tol=0.0, chunk=300, bounds=b)
        for b in (False, True)
    ]
    torch.testing.assert_close(runs[1][0], runs[0][0], rtol=0, atol=0)
    assert runs[1][3] == runs[0][3]
    assert len(torch.unique(runs[1][0])) == 6


def _blobs_like(n, d, seed):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((6, d)) * 3
    X = centers[rng.integers(0, 6, n)] + rng.standard_normal((n, d))
    return X.astype(np.float32)


def _timestamps():
    """Three bursts of timestamps 100 s apart at 1.7e9 s, and their starts."""
    rng = np.random.default_rng(0)
    truth = np.repeat([0, 1, 2], 100)
    X = (1.7e9 + truth * 100.0 + rng.normal(0, 15, 300))[:, None]
    return truth, X, np.array([[1.7e9], [1.7e9 + 100], [1.7e9 + 200]])


def test_float64_data_far_from_the_origin_keep_their_precision():
    # Timestamps: float32 steps are 128 s at 1.7e9 s, so casting each block
    # before subtracting the offset merged three bursts 100 s apart.
    truth, X, init = _timestamps()
    km = KMeansTransformer(3, init=init, device="cpu").fit(X)
    np.testing.assert_array_equal(km.labels_, truth)
    np.testing.assert_array_equal(km.predict(X), truth)
    means = np.array([X[truth == j, 0].mean() for j in range(3)])
    exact = np.abs((X - 1.7e9) - (means - 1.7e9)[None, :])
    np.testing.assert_allclose(km.transform(X), exact, atol=0.05)
    assert -km.score(X) == pytest.approx((exact[np.arange(300), truth] ** 2).sum())


def test_the_batched_path_shifts_float64_rows_as_the_cpu_path_does():
    # On an accelerator (or for a Dataset) blocks go through _map_batches:
    # there too float64 rows must be shifted before rounding, or predict
    # disagrees with fit's labels far from the origin.
    from sk_replearn.classical.kmeans import _nearest_fn

    truth, X, init = _timestamps()
    km = KMeansTransformer(3, init=init, device="cpu").fit(X)
    nearest = _nearest_fn(km._device_centers())
    for rows in (X, X.astype(np.float32)):
        dataset = torch.utils.data.TensorDataset(
            torch.from_numpy(rows), torch.zeros(len(rows))
        )
        batched = km._map_blocks(dataset, nearest, 0, np.int64)
        np.testing.assert_array_equal(
            batched, km._map_blocks(rows, nearest, 0, np.int64)
        )
    np.testing.assert_array_equal(km.predict(X), km.labels_)


def test_integer_input_is_read_as_float64_as_scikit_learn_reads_it():
    # Integer timestamps near 1.7e9 became float32, whose steps there are
    # 128: 38 distinct times collapsed to 2 values and 5% of the labels
    # differed from scikit-learn's.
    rng = np.random.default_rng(0)
    t = 1_700_000_000 + np.r_[rng.integers(0, 20, 50), rng.integers(60, 80, 50)]
    X = np.c_[t, rng.integers(0, 5, 100)].astype(np.int64)
    init = X[[0, 99]].astype(np.float64)
    km = KMeansTransformer(2, init=init, device="cpu").fit(X)
    ref = KMeansTransformer(2, init=init, device="cpu").fit(X.astype(np.float64))
    np.testing.assert_array_equal(km.labels_, ref.labels_)
    assert km.inertia_ == ref.inertia_
    np.testing.assert_array_equal(km.predict(X), ref.predict(X.astype(np.float64)))


def _two_bursts():
    """float64 timestamps near 1.7e9 s in two groups 1000 s apart."""
    rng = np.random.default_rng(0)
    truth = np.repeat([0, 1], 200)
    X = (1.7e9 + truth * 1000.0 + rng.normal(0, 20, 400))[:, None]
    return truth, X


def test_float64_centers_keep_the_digits_of_data_far_from_the_origin():
    # Centers were float32 (steps of 128 at 1.7e9): +0 and +1024 instead of
    # the group means, and the inertia they give disagreed with inertia_.
    truth, X = _two_bursts()
    init = X[[0, -1]]
    km = KMeansTransformer(2, init=init, device="cpu").fit(X)
    ref = KMeans(2, init=init, n_init=1).fit(X)
    assert km.cluster_centers_.dtype == np.float64
    means = np.array([[X[truth == j, 0].mean()] for j in range(2)])
    np.testing.assert_allclose(km.cluster_centers_, means, rtol=0, atol=1e-3)
    np.testing.assert_allclose(km.cluster_centers_, ref.cluster_centers_, atol=1e-3)
    recomputed = ((X - km.cluster_centers_[km.labels_]) ** 2).sum()
    assert recomputed == pytest.approx(km.inertia_, rel=1e-6)
    onehot = np.eye(2)[km.labels_]
    decoded = km.set_params(encoding="onehot").inverse_transform(onehot)
    np.testing.assert_allclose(decoded, means[truth], rtol=0, atol=1e-3)
    # float32 fits keep float32 centers, as scikit-learn does
    km32 = KMeansTransformer(2, device="cpu", random_state=0).fit(X.astype(np.float32))
    assert km32.cluster_centers_.dtype == np.float32


def test_float64_distances_near_the_centers_are_accurate():
    # The expanded |c|^2 - 2 x.c + |x|^2 in float32 put the centers 0.25 from
    # themselves on data of spread 100.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 20)) * 100
    km = KMeansTransformer(5, device="cpu", random_state=0).fit(X)
    near = km.cluster_centers_ + 1e-3 * rng.normal(size=km.cluster_centers_.shape)
    exact = np.sqrt(((near[:, None, :] - km.cluster_centers_[None]) ** 2).sum(-1))
    np.testing.assert_allclose(km.transform(near), exact, rtol=1e-5, atol=1e-9)
    np.testing.assert_array_equal(np.diag(km.transform(km.cluster_centers_)), 0)
    ref = KMeans(5, init=km.cluster_centers_, n_init=1, max_iter=1).fit(X)
    ref.cluster_centers_ = km.cluster_centers_
    np.testing.assert_allclose(km.transform(X), ref.transform(X), rtol=1e-6)


def test_float32_distances_near_the_centers_are_accurate():
    # The same cancellation in float32 put repeated digits 0.0156 from their
    # own centers (scikit-learn's transform: 3e-6), now recomputed as |x - c|.
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(2000, 20)) * 100).astype(np.float32)
    km = KMeansTransformer(5, device="cpu", random_state=0).fit(X)
    centers = km.cluster_centers_.astype(np.float32)
    # 0 to the rounding of a center shifted by the data's mean in float32
    # (4e-6 at this scale of 100), not the 0.02 of the expanded form
    assert np.diag(km.transform(centers)).max() < 1e-5
    near = centers + np.float32(1e-2) * rng.normal(size=centers.shape).astype(
        np.float32
    )
    exact = np.sqrt(
        ((near[:, None, :].astype(np.float64) - centers[None]) ** 2).sum(-1)
    )
    np.testing.assert_allclose(km.transform(near), exact, rtol=1e-4)
    ref = KMeans(5, init=km.cluster_centers_, n_init=1, max_iter=1).fit(X)
    ref.cluster_centers_ = km.cluster_centers_
    np.testing.assert_allclose(km.transform(X), ref.transform(X), rtol=2e-5)


def test_float64_centers_survive_save_and_load(tmp_path):
    from sk_replearn.persistence import load, save

    rng = np.random.default_rng(0)
    X = 1.7e9 + np.r_[rng.normal(0, 1, (50, 2)), rng.normal(1000, 1, (50, 2))]
    km = KMeansTransformer(2, random_state=0, device="cpu").fit(X)
    save(km, tmp_path / "km.skr")
    again = load(tmp_path / "km.skr").partial_fit(X[:10].astype(np.float32))
    assert again.cluster_centers_.dtype == np.float64
    assert km.cluster_centers_.dtype == np.float64


# -- sample_weight ---------------------------------------------------------
def _weights(n, seed=0):
    return np.random.default_rng(seed).exponential(size=n).astype(np.float64)


@pytest.mark.parametrize("bounds", [None, False])  # Hamerly path, plain path
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kmeans_sample_weight_matches_sklearn(
    blobs, dtype, bounds, compiled, monkeypatch
):
    # compiled: Hamerly's torch loop (machines without AVX2) and the C one.
    import sk_replearn.classical.kmeans as km

    if bounds is False:
        lloyd = km._lloyd
        monkeypatch.setattr(km, "_lloyd", lambda *a, **k: lloyd(*a, bounds=False, **k))
    X = blobs.astype(dtype)
    w = _weights(len(X))
    init = _init_from(X, 8)
    ours = KMeansTransformer(n_clusters=8, init=init, max_iter=100, device="cpu")
    ours.fit(X, sample_weight=w)
    ref = KMeans(n_clusters=8, init=init, n_init=1, max_iter=100, algorithm="lloyd")
    ref.fit(X, sample_weight=w)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-4)
    assert np.mean(ours.labels_ == ref.labels_) >= 0.99
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, atol=1e-3)
    assert ours.n_iter_ == ref.n_iter_
    # weights change the answer: the unweighted fit is elsewhere
    plain = KMeansTransformer(n_clusters=8, init=init, max_iter=100, device="cpu")
    assert plain.fit(X).inertia_ != pytest.approx(ours.inertia_, rel=1e-3)


def test_kmeans_sample_weight_relocation_matches_sklearn(blobs):
    init = _init_from(blobs, 6)
    init[2] = 1e3  # empty after the first assignment
    w = _weights(len(blobs), seed=1)
    ours = KMeansTransformer(n_clusters=6, init=init, device="cpu")
    ours.fit(blobs, sample_weight=w)
    ref = KMeans(n_clusters=6, init=init, n_init=1, algorithm="lloyd")
    ref.fit(blobs, sample_weight=w)
    assert np.abs(ours.cluster_centers_[2]).max() < 100
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-4)
    assert np.mean(ours.labels_ == ref.labels_) >= 0.99


def test_kmeans_integer_weights_equal_repeated_rows(blobs):
    X = blobs[:600]
    w = np.random.default_rng(0).integers(1, 4, size=len(X))
    init = _init_from(X, 5)
    kw = {"n_clusters": 5, "init": init, "tol": 0.0, "device": "cpu"}
    weighted = KMeansTransformer(**kw).fit(X, sample_weight=w)
    repeated = KMeansTransformer(**kw).fit(np.repeat(X, w, axis=0))
    np.testing.assert_allclose(
        weighted.cluster_centers_, repeated.cluster_centers_, atol=1e-4
    )
    assert weighted.inertia_ == pytest.approx(repeated.inertia_, rel=1e-5)
    np.testing.assert_array_equal(weighted.labels_, repeated.labels_[np.cumsum(w) - 1])


def test_kmeans_zero_weights_ignore_rows(blobs):
    X = blobs[:600]
    outliers = np.full((50, X.shape[1]), 500.0, dtype=X.dtype)
    w = np.r_[np.ones(len(X)), np.zeros(len(outliers))]
    init = _init_from(X, 5)
    kw = {"n_clusters": 5, "init": init, "tol": 0.0, "device": "cpu"}
    weighted = KMeansTransformer(**kw).fit(np.vstack([X, outliers]), sample_weight=w)
    alone = KMeansTransformer(**kw).fit(X)
    np.testing.assert_allclose(
        weighted.cluster_centers_, alone.cluster_centers_, atol=1e-4
    )
    assert weighted.inertia_ == pytest.approx(alone.inertia_, rel=1e-5)
    # no zero-weight row is ever a seed either
    for init in ("k-means++", "random"):
        for seed in range(5):
            est = KMeansTransformer(5, init=init, n_init=1, max_iter=1, device="cpu")
            est.set_params(random_state=seed).fit(
                np.vstack([X, outliers]), sample_weight=w
            )
            assert np.abs(est.cluster_centers_).max() < 100


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_kmeans_weighted_init_is_deterministic(blobs, init):
    w = _weights(len(blobs))
    kw = {"n_clusters": 5, "init": init, "n_init": 1, "max_iter": 1, "device": "cpu"}
    a = KMeansTransformer(**kw, random_state=7).fit(blobs, sample_weight=w)
    b = KMeansTransformer(**kw, random_state=7).fit(blobs, sample_weight=w)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    # the weights take part in the draws
    w2 = w.copy()
    w2[a.labels_ == 0] *= 1e-6
    c = KMeansTransformer(**kw, random_state=7).fit(blobs, sample_weight=w2)
    assert not np.array_equal(a.cluster_centers_, c.cluster_centers_)


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_kmeans_weighted_seeding_draws_as_sklearn(blobs, init):
    # with weights the draws are scikit-learn's: the same seeds, hence one
    # Lloyd step lands on the same centers
    w = _weights(len(blobs))
    for seed in range(3):
        kw = {"n_clusters": 8, "init": init, "n_init": 1, "max_iter": 1}
        ours = KMeansTransformer(**kw, random_state=seed, device="cpu")
        ours.fit(blobs, sample_weight=w)
        ref = KMeans(**kw, random_state=seed).fit(blobs, sample_weight=w)
        np.testing.assert_allclose(
            ours.cluster_centers_, ref.cluster_centers_, atol=1e-4
        )
        np.testing.assert_array_equal(ours.labels_, ref.labels_)


def test_kmeans_score_with_weights(blobs):
    init = _init_from(blobs, 8)
    w = _weights(len(blobs))
    ours = KMeansTransformer(n_clusters=8, init=init, device="cpu").fit(blobs)
    ref = KMeans(n_clusters=8, init=init, n_init=1, algorithm="lloyd").fit(blobs)
    ref.cluster_centers_ = ours.cluster_centers_.copy()
    assert ours.score(blobs, sample_weight=w) == pytest.approx(
        ref.score(blobs, sample_weight=w), rel=1e-5
    )
    assert ours.score(blobs, sample_weight=2 * w) == pytest.approx(
        2 * ours.score(blobs, sample_weight=w), rel=1e-6
    )
    fitted = KMeansTransformer(n_clusters=8, init=init, device="cpu")
    fitted.fit(blobs, sample_weight=w)
    assert -fitted.score(blobs, sample_weight=w) == pytest.approx(
        fitted.inertia_, rel=1e-5
    )


def test_kmeans_fit_predict_and_fit_transform_take_weights(blobs):
    init = _init_from(blobs, 8)
    w = _weights(len(blobs))
    kw = {"n_clusters": 8, "init": init, "device": "cpu"}
    fitted = KMeansTransformer(**kw).fit(blobs, sample_weight=w)
    labels = KMeansTransformer(**kw).fit_predict(blobs, sample_weight=w)
    codes = KMeansTransformer(**kw).fit_transform(blobs, sample_weight=w)
    np.testing.assert_array_equal(labels, fitted.labels_)
    np.testing.assert_array_equal(codes, fitted.transform(blobs))


def test_kmeans_partial_fit_with_weights(blobs):
    from sklearn.cluster import MiniBatchKMeans

    init = _init_from(blobs, 5)
    w = _weights(len(blobs))
    ours = KMeansTransformer(n_clusters=5, init=init, device="cpu")
    ref = MiniBatchKMeans(n_clusters=5, init=init, n_init=1, reassignment_ratio=0)
    for sl in (slice(0, 1000), slice(1000, 2000), slice(2000, 3000)):
        ours.partial_fit(blobs[sl], sample_weight=w[sl])
        ref.partial_fit(blobs[sl], sample_weight=w[sl])
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, atol=1e-3)
    np.testing.assert_allclose(ours._counts, ref._counts, rtol=1e-5)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-4)


@pytest.mark.parametrize(
    "method", ["fit", "fit_predict", "fit_transform", "partial_fit", "score"]
)
def test_kmeans_bad_sample_weight(blobs, method):
    est = KMeansTransformer(n_clusters=3, device="cpu", random_state=0)
    if method == "score":
        est.fit(blobs)
    with pytest.raises(ValueError, match=r"sample_weight.shape"):
        getattr(est, method)(blobs, sample_weight=np.ones(len(blobs) - 1))
    negative = np.ones(len(blobs))
    negative[3] = -1.0
    with pytest.raises(ValueError, match="Negative values in data passed"):
        getattr(est, method)(blobs, sample_weight=negative)


def test_kmeans_random_init_with_fewer_weighted_samples_than_clusters(blobs):
    # numpy's "Fewer non-zero entries in p than size" named neither parameter.
    w = np.zeros(len(blobs))
    w[:2] = 1.0
    est = KMeansTransformer(n_clusters=4, init="random", device="cpu", random_state=0)
    with pytest.raises(ValueError, match=r"n_clusters=4.*only 2 sample\(s\).*k-means"):
        est.fit(blobs, sample_weight=w)
    w[:4] = 1.0
    assert est.fit(blobs, sample_weight=w).cluster_centers_.shape[0] == 4


def test_kmeans_unit_weights_are_no_weights(blobs):
    kw = {"n_clusters": 5, "n_init": 2, "random_state": 0, "device": "cpu"}
    a = KMeansTransformer(**kw).fit(blobs)
    b = KMeansTransformer(**kw).fit(blobs, sample_weight=np.ones(len(blobs)))
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.inertia_ == b.inertia_


# -- copy_x ---------------------------------------------------------------
def _far_blobs(blobs):
    return blobs + np.float32(1000.0)  # centring matters far from the origin


def test_copy_x_false_gives_the_same_clustering_and_gives_x_back(blobs):
    X = _far_blobs(blobs)
    original = X.copy()
    ref = KMeansTransformer(n_clusters=4, random_state=0, device="cpu").fit(X)
    np.testing.assert_array_equal(X, original)  # copy_x=True leaves X alone
    est = KMeansTransformer(n_clusters=4, copy_x=False, random_state=0, device="cpu")
    est.fit(X)
    np.testing.assert_array_equal(est.labels_, ref.labels_)
    np.testing.assert_array_equal(est.cluster_centers_, ref.cluster_centers_)
    assert est.inertia_ == ref.inertia_
    # X is given back, but for the rounding of (x - mean) + mean: two
    # roundings, each at most a float32 step of the larger of x and the mean
    step = np.spacing(np.maximum(np.abs(original), np.abs(est._offset)))
    assert np.all(np.abs(X - original) <= 2 * step)


def test_copy_x_false_centres_x_itself_and_copy_x_true_a_copy(blobs, monkeypatch):
    import sk_replearn.classical.kmeans as kmeans_module

    seen = []
    lloyd = kmeans_module._lloyd

    def spy(x, centers, **kwargs):
        seen.append(x.data_ptr())
        return lloyd(x, centers, **kwargs)

    monkeypatch.setattr(kmeans_module, "_lloyd", spy)
    X = _far_blobs(blobs)
    for copy_x in (False, True):
        KMeansTransformer(
            n_clusters=3, copy_x=copy_x, random_state=0, device="cpu"
        ).fit(X)
    assert seen == [X.ctypes.data, seen[1]] and seen[1] != X.ctypes.data
    # a tensor sharing the memory is centred in place alike
    T = torch.from_numpy(X.copy())
    KMeansTransformer(n_clusters=3, copy_x=False, random_state=0, device="cpu").fit(T)
    assert seen[2] == T.data_ptr()


def _read_only(X):
    X = X.copy()
    X.setflags(write=False)
    return X


@pytest.mark.parametrize(
    "make",
    [lambda X: X.astype(np.float64), np.asfortranarray, _read_only],
    ids=["float64", "fortran", "read-only"],
)
def test_copy_x_false_copies_what_it_cannot_centre_in_place(blobs, make):
    X = make(_far_blobs(blobs))
    original = X.copy()
    est = KMeansTransformer(n_clusters=3, copy_x=False, random_state=0, device="cpu")
    est.fit(X)
    np.testing.assert_array_equal(X, original)  # untouched, not even rounded
    ref = KMeansTransformer(n_clusters=3, random_state=0, device="cpu").fit(original)
    np.testing.assert_array_equal(est.labels_, ref.labels_)


def test_copy_x_false_gives_x_back_when_fit_fails(blobs, monkeypatch):
    import sk_replearn.classical.kmeans as kmeans_module

    def broken(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(kmeans_module, "_lloyd", broken)
    X = _far_blobs(blobs)
    original = X.copy()
    est = KMeansTransformer(n_clusters=3, copy_x=False, random_state=0, device="cpu")
    with pytest.raises(RuntimeError, match="interrupted"):
        est.fit(X)
    assert not hasattr(est, "_offset")  # a fit that raised keeps no state
    # the offset the fit subtracted: the mean, up to rounding
    step = np.spacing(np.maximum(np.abs(original), np.abs(original.mean(0)) * 2))
    assert np.all(np.abs(X - original) <= 2 * step)  # not left centred


class _Portable:
    """The compiled pass, forced onto its portable loop."""

    def __init__(self, kernels):
        self.kernels = kernels

    def hamerly_pass(self, *args):
        return self.kernels.hamerly_pass(*args, True)


@_LLOYD_DATA
# one center; eight at a time; sixteen; twenty-four; twenty-four then sixteen
@pytest.mark.parametrize("k", [1, 5, 12, 20, 40])
def test_the_compiled_pass_agrees_with_its_portable_loop(make, k, monkeypatch):
    """The AVX2 loop (where the CPU has it) and the plain C loop agree."""
    from sk_replearn.classical import _hamerly as hamerly_module
    from sk_replearn.classical._lloyd import _lloyd

    kernels = hamerly_module._kernels
    if kernels is None:
        pytest.skip("the C extension is not built")
    monkeypatch.setattr(hamerly_module, "_SIMD", True)  # the compiled pass
    x = torch.from_numpy(make())
    init = x[torch.from_numpy(np.random.default_rng(3).choice(len(x), k, False))]
    runs = []
    for portable in (False, True):
        if portable:
            monkeypatch.setattr(hamerly_module, "_kernels", _Portable(kernels))
        # blocks of 999 rows: screened 512 then 487 rows, 8 at a time and a
        # tail of 7 one at a time
        runs.append(_lloyd(x, init.clone(), max_iter=40, tol=0.0, chunk=999))
    (lab0, in0, c0, it0), (lab1, in1, c1, it1) = runs
    assert it0 == it1
    torch.testing.assert_close(lab1, lab0, rtol=0, atol=0)
    torch.testing.assert_close(c1, c0, rtol=0, atol=0)  # same rows, same sums
    assert in1 == in0


@pytest.mark.parametrize("incremental", [False, True])
@pytest.mark.parametrize("moved", [False, True], ids=["still", "moved"])
@pytest.mark.parametrize("portable", [False, True], ids=["simd", "portable"])
def test_the_compiled_pass_screens_the_rows_its_bounds_cannot_settle(
    incremental, moved, portable
):
    """A row is recomputed exactly when its moved bounds cannot keep its label.

    Against numpy, on one block of 1,003 rows (screened 512 then 491: eight
    at a time and a tail of 3): the bounds move by the centers' moves, the
    rows whose upper bound (plus the slack) reaches max(lower bound, half
    gap) get their exact bounds and nearest center, the others keep their
    label and moved bounds; the sums hold every row's final label (or, when
    incremental, the rows that moved).
    """
    from sk_replearn.classical import _hamerly as hamerly_module

    kernels = hamerly_module._kernels
    if kernels is None:
        pytest.skip("the C extension is not built")
    rng = np.random.default_rng(0)
    n, d, k = 1003, 5, 6
    x = rng.standard_normal((n, d)).astype(np.float32)
    x_sq = np.square(x).sum(1, dtype=np.float32)
    centers = rng.standard_normal((k, d)).astype(np.float32)
    c_t = np.zeros((d, 8), np.float32)
    c_t[:, :k] = centers.T
    c_sq = np.full(8, np.inf, np.float32)
    c_sq[:k] = np.square(centers).sum(1)
    half = rng.uniform(0.2, 1.0, k).astype(np.float32)
    labels = rng.integers(0, k, n)
    upper = rng.uniform(0.0, 2.0, n).astype(np.float32)
    lower = rng.uniform(0.0, 2.0, n).astype(np.float32)
    moves = rng.uniform(0.0, 0.3, k).astype(np.float32) if moved else None
    slack = np.float32(0.01)
    up, low, lab = upper.copy(), lower.copy(), labels.copy()
    delta = np.zeros((k, d))
    n_changed = kernels.hamerly_pass(
        x, x_sq, c_t, c_sq, half, lab, up, low, moves, None, delta, float(slack),
        False, incremental, portable,
    )  # fmt: skip

    if moved:
        upper = upper + moves[labels]
        lower = lower - moves.max()
    need = upper + slack >= np.maximum(lower, half[labels])
    assert 0.2 < need.mean() < 0.8  # both kinds of row, in the tail too
    assert need[-3:].any() and not need[-3:].all()
    np.testing.assert_array_equal(up[~need], upper[~need])  # moved, kept
    np.testing.assert_array_equal(low[~need], lower[~need])
    np.testing.assert_array_equal(lab[~need], labels[~need])
    dist = c_sq[:k] - 2 * x[need] @ centers.T  # recomputed: exact
    nearest = dist.argmin(1)
    np.testing.assert_array_equal(lab[need], nearest)
    dist.sort(1)
    np.testing.assert_allclose(up[need], np.sqrt(dist[:, 0] + x_sq[need]), 1e-5)
    np.testing.assert_allclose(low[need], np.sqrt(dist[:, 1] + x_sq[need]), 1e-5)
    changed = lab != labels
    assert n_changed == changed.sum() > 0
    expected = np.zeros((k, d))
    if incremental:
        np.add.at(expected, lab[changed], x[changed].astype(np.float64))
        np.add.at(expected, labels[changed], -x[changed].astype(np.float64))
    else:
        np.add.at(expected, lab, x.astype(np.float64))
    np.testing.assert_allclose(delta, expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_shifts_rows_bit_for_bit_as_predict_does(dtype):
    """The fit's numpy shift and predict's torch shift give the same floats."""
    from sk_replearn.classical._kmeans_blocks import _shift, _shift_numpy

    rng = np.random.default_rng(0)
    X = (1.7e9 + rng.normal(0, 1e3, (257, 6))).astype(dtype)  # far out
    offset = X.mean(0).astype(np.float32)
    out = np.empty(X.shape, np.float32)
    _shift_numpy(X, offset, out)
    ref = _shift(torch.from_numpy(X), torch.from_numpy(offset)).numpy()
    assert ref.dtype == np.float32
    np.testing.assert_array_equal(out, ref)


# centers 8, 16, 24 at a time and their mixes (kp = 8, 8, 16, 24, 32, 40, 64)
@pytest.mark.parametrize("k", [1, 5, 12, 20, 30, 40, 64])
# rows read whole, or in blocks of 128 values and a tail of 44
@pytest.mark.parametrize("d", [3, 300])
@pytest.mark.parametrize("shifted", [False, True], ids=["as is", "offset"])
@pytest.mark.parametrize("portable", [False, True], ids=["simd", "portable"])
def test_the_compiled_nearest_labels_are_the_first_nearest_centers(
    k, d, shifted, portable
):
    """nearest_labels against numpy, ties to the lowest index, tail rows too."""
    from sk_replearn.classical import _hamerly as hamerly_module

    kernels = hamerly_module._kernels
    if kernels is None:
        pytest.skip("the C extension is not built")
    X = _grid_with_ties(1003, d=d) - 2.0  # 125 tiles of 8, and 3 rows
    X[5, 2] = -7.0  # the largest magnitude, shifted to -9 (offset 2.0)
    offset = np.resize(np.float32([0.5, -1.0, 2.0]), d) if shifted else None
    rows = X - offset if shifted else X  # the float32 shift
    centers = np.random.default_rng(k).integers(-2, 4, (k, d)).astype(np.float32)
    if d > 3:  # every center twice, so that every row's nearest is a tie
        centers[k // 2 :] = centers[: k - k // 2]
    if shifted:
        centers -= offset
    c_t, c_sq = hamerly_module._padded_centers(torch.from_numpy(centers))
    labels = np.full(len(X), -1)
    bad, peak = kernels.nearest_labels(X, offset, c_t, c_sq, labels, portable)
    assert bad == 0
    # measured on the shifted values, which the distances square
    assert peak == (9.0 if shifted else 0.0)
    assert not shifted or peak == np.abs(rows).max()
    dist = np.square(centers).sum(1) - 2 * rows @ centers.T  # exact here
    np.testing.assert_array_equal(labels, dist.argmin(1))  # first minimum
    if k > 1:
        assert (dist.min(1)[:, None] == dist).sum(1).max() > 1  # ties were there

    X[[0, 500, 1002], [0, 1, 2]] = [np.nan, np.inf, -np.inf]
    bad, _ = kernels.nearest_labels(X, offset, c_t, c_sq, labels, portable)
    assert bad == 3


@pytest.mark.parametrize("k", [1, 5, 12, 20, 40])
def test_the_compiled_loops_label_rows_of_non_finite_distances_alike(k):
    """NaN or infinite distances: both loops name the same real center.

    A row no distance can rank (NaN and infinite values) keeps the first
    center, as the portable loop's strict comparison does; the labels stay
    indices of the k centers (so the pass's sums stay inside their array),
    which the data checks make sure no fit relies on.
    """
    from sk_replearn.classical import _hamerly as hamerly_module

    kernels = hamerly_module._kernels
    if kernels is None:
        pytest.skip("the C extension is not built")
    rng = np.random.default_rng(k)
    n, d = 29, 3
    X = rng.standard_normal((n, d)).astype(np.float32)
    X[[0, 9, 17, 28], [0, 1, 2, 0]] = [np.nan, np.inf, -np.inf, np.nan]
    centers = rng.standard_normal((k, d)).astype(np.float32)
    runs = []
    for overflow in (False, True):  # then centers whose squares overflow
        cents = np.full((k, d), 3e19, np.float32) if overflow else centers
        rows = X * np.float32(3e19) if overflow else X
        c_t, c_sq = hamerly_module._padded_centers(torch.from_numpy(cents))
        for portable in (False, True):
            labels = np.full(n, -1)
            bad, _ = kernels.nearest_labels(rows, None, c_t, c_sq, labels, portable)
            assert bad == (n if overflow else 4)
            runs.append(labels)
    for simd, portable in zip(runs[::2], runs[1::2]):
        np.testing.assert_array_equal(simd, portable)
        assert simd.min() >= 0 and simd.max() < k
    assert runs[2].max() == 0  # no distance ranks: the first center
    c_t, c_sq = hamerly_module._padded_centers(torch.from_numpy(centers))
    passes = []
    for portable in (False, True):
        lab = np.zeros(n, np.int64)
        up, low = np.zeros(n, np.float32), np.zeros(n, np.float32)
        delta = np.zeros((k, d))
        x_sq = np.square(X).sum(1, dtype=np.float32)
        half = np.zeros(k, np.float32)
        kernels.hamerly_pass(
            X, x_sq, c_t, c_sq, half, lab, up, low, None, None, delta, 0.0,
            True, False, portable,
        )  # fmt: skip
        passes.append(lab)
    np.testing.assert_array_equal(passes[0], passes[1])
    assert passes[0].min() >= 0 and passes[0].max() < k


def test_predict_gives_the_training_samples_their_fitted_labels(blobs, compiled):
    """float32 data far from the origin: predict(X) is labels_, bit for bit."""
    X = np.ascontiguousarray(_far_blobs(blobs), dtype=np.float32)
    km = KMeansTransformer(n_clusters=5, random_state=0, device="cpu").fit(X)
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    np.testing.assert_array_equal(km.predict(X[::-1]), km.labels_[::-1])


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e30])
def test_predict_names_bad_values(blobs, compiled, value):
    """NaN, infinity or a value too large for float32 squares: a clear error."""
    X = np.ascontiguousarray(blobs, dtype=np.float32)
    km = KMeansTransformer(n_clusters=3, random_state=0, device="cpu").fit(X)
    bad = X.copy()
    bad[7, 1] = value
    with pytest.raises(ValueError, match="NaN|infinity|rescale X"):
        km.predict(bad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_large_common_offset_is_shifted_away_not_refused(compiled, dtype):
    # Timestamps in nanoseconds (1.7e18) spread by 1e13 over 200 features: the
    # values' squares overflow float32, the shifted ones' do not, and fit
    # refused what the docstring offers to handle.
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(3), 100)
    X = 1.7e18 + rng.normal(size=(300, 200)) * 1e12 + groups[:, None] * 1e13
    X = X.astype(dtype)
    km = KMeansTransformer(3, random_state=0, device="cpu").fit(X)
    assert adjusted_rand_score(groups, km.labels_) == 1.0
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    assert np.isfinite(km.transform(X)).all() and np.isfinite(km.score(X))
    with pytest.raises(ValueError, match="from the mean of the data fit saw"):
        km.predict(X * 10)  # spread by 1.5e19 about the fitted offset


@pytest.mark.parametrize("rows", ["one", "all"])
def test_float64_values_beyond_float32_are_refused_by_their_size(rows):
    # The float32 mean overflowed to inf: numpy warned of the overflow and
    # the message said "values up to inf" of data holding none.
    X, _ = make_blobs(60, n_features=6, centers=3, random_state=0)
    if rows == "one":
        X[7] = 1e300
    else:
        X[:] = 1e300  # no spread at all, and a mean float32 cannot hold
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match=r"up to 1e\+300, beyond the range"):
            KMeansTransformer(3, random_state=0, device="cpu").fit(X)


def test_data_spread_below_float32_squares_is_refused_not_merged():
    # At 1e-25 every squared distance rounded to 0 in float32: all samples
    # fell into one cluster, reported as "duplicate points".
    X, _ = make_blobs(200, n_features=4, centers=3, random_state=0)
    with pytest.raises(ValueError, match=r"lie at most .* round to 0; rescale X"):
        KMeansTransformer(3, random_state=0, device="cpu").fit(X * 1e-25)
    km = KMeansTransformer(3, random_state=0, device="cpu").fit(X * 1e-13)
    assert len(np.unique(km.labels_)) == 3
    labels = km.predict(X * 1e-13)
    for refused in (X * 1e-25, X * 1e30):  # a refit refused keeps the model
        with pytest.raises(ValueError, match="rescale X"):
            km.fit(refused)
        np.testing.assert_array_equal(km.predict(X * 1e-13), labels)


def test_nearest_gives_ties_to_the_first_center_on_every_device(device):
    # Each device has its own route to the first minimum (CUDA's argmin, the
    # CPU's comparison with the row minimum): rows equidistant from several
    # centers must get the lowest index on both, as scikit-learn gives them.
    from sk_replearn.classical._assign import _centers_t, _nearest

    centers = torch.tensor(
        [[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0], [0.0, -2.0], [2.0, 0.0]],
        device=device,
    )  # (5, 2): centers 0 and 4 coincide
    x = torch.tensor(
        [[0.0, 0.0], [1.0, 1.0], [-1.0, 1.0], [3.0, 0.0], [0.0, -3.0]],
        device=device,
    )  # tied with all four; 0 and 1; 1 and 2; 0 and 4; 3 alone
    labels = _nearest(x, *_centers_t(centers))
    assert labels.device.type == device
    assert labels.tolist() == [0, 0, 1, 0, 3]
    out = torch.full((5,), -1, dtype=torch.int64, device=device)
    _nearest(x, *_centers_t(centers), out=out)
    assert out.tolist() == [0, 0, 1, 0, 3]


def test_x_too_large_for_the_device_says_so(blobs, monkeypatch):
    import sk_replearn.classical._kmeans_blocks as blocks_module

    # K-means keeps X on the device for its iterations: torch's
    # OutOfMemoryError named neither X's size nor another way to fit it.
    km = KMeansTransformer(n_clusters=3, random_state=0)
    monkeypatch.setattr(type(km), "_device", lambda self: torch.device("meta"))
    empty = torch.empty

    def full_device(*args, device=None, **kwargs):
        if torch.device(device or "cpu").type == "meta":
            raise blocks_module._OUT_OF_MEMORY("CUDA out of memory.")
        return empty(*args, device=device, **kwargs)

    monkeypatch.setattr(torch, "empty", full_device)
    with pytest.raises(MemoryError, match=r"\d+ x \d+ float32.*device='cpu'.*partial"):
        km.fit(blobs)
    assert not hasattr(km, "cluster_centers_")


def test_kmeans_partial_fit_turns_float64_with_a_float64_batch(blobs):
    # As scikit-learn's MiniBatchKMeans: the model is float64 once any batch is.
    km = KMeansTransformer(n_clusters=3, random_state=0, device="cpu")
    km.partial_fit(blobs[:300].astype(np.float32))
    assert km.cluster_centers_.dtype == np.float32
    km.partial_fit(blobs[300:600].astype(np.float64))
    assert km.cluster_centers_.dtype == np.float64


def test_kmeans_onehot_code_is_n_clusters_wide_for_any_batch(blobs):
    # A batch whose samples all lie in cluster 0 once gave a code one column
    # wide, which numpy broadcast into a row of ones.
    km = KMeansTransformer(
        n_clusters=N_CLUSTERS, encoding="onehot", random_state=0, device="cpu"
    ).fit(blobs)
    first = blobs[km.labels_ == 0][:2]
    expected = np.zeros((2, N_CLUSTERS), np.float32)
    expected[:, 0] = 1
    np.testing.assert_array_equal(km.transform(first), expected)


def test_random_init_with_fewer_positive_weights_than_clusters_says_so():
    X = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    w = np.zeros(20)
    w[:2] = 1.0  # 2 samples of weight > 0 for 3 clusters
    km = KMeansTransformer(n_clusters=3, init="random", n_init=1, random_state=0)
    with pytest.raises(ValueError, match="init='random' draws n_clusters=3"):
        km.fit(X, sample_weight=w)


def test_kmeans_leaves_torchs_thread_count_as_the_user_set_it(blobs):
    """The threaded passes run torch single-threaded in each worker, then
    give the caller's thread count back: fit and predict leave it as set."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        km = KMeansTransformer(n_clusters=5, random_state=0, batch_size=100)
        km.fit(blobs)
        assert torch.get_num_threads() == 2
        km.predict(blobs)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


# -- behaviour pinned down against scikit-learn and by hand ---------------
def test_kmeans_relocation_takes_the_farthest_row_in_euclidean_distance(compiled):
    """An empty cluster takes the row farthest (Euclidean) from its center."""
    # Around the first center, (3, 0) is the farthest row; (2, 2) would be by
    # the sum of absolute differences. One iteration, as scikit-learn's.
    X = np.r_[
        [[0.0, 0.0], [0.5, 0.0], [0.0, 0.5], [3.0, 0.0], [2.0, 2.0]],
        10.0 + np.random.default_rng(0).normal(scale=0.3, size=(6, 2)),
    ]
    init = np.array([[0.0, 0.0], [10.0, 10.0], [100.0, 100.0]])
    weights = np.random.default_rng(1).uniform(0.5, 3.0, len(X))
    for sample_weight in (None, weights):
        kw = {"n_clusters": 3, "init": init, "max_iter": 1}
        ours = KMeansTransformer(**kw, device="cpu").fit(X, sample_weight=sample_weight)
        ref = KMeans(**kw, n_init=1, algorithm="lloyd")
        ref.fit(X, sample_weight=sample_weight)
        np.testing.assert_allclose(ours.cluster_centers_[2], [3.0, 0.0], atol=1e-5)
        np.testing.assert_allclose(
            ours.cluster_centers_, ref.cluster_centers_, rtol=0, atol=1e-5
        )


def test_kmeans_cluster_given_a_row_of_weight_zero_keeps_its_center():
    """A cluster relocated to a row of weight 0 stays empty and keeps its center."""
    X = np.r_[
        [[0.0, 0.0], [0.5, 0.0], [0.0, 0.5], [3.0, 0.0], [2.0, 2.0]],
        10.0 + np.random.default_rng(0).normal(scale=0.3, size=(6, 2)),
    ]
    w = np.ones(len(X))
    w[3] = 0.0  # the row farthest from its center, which relocation takes
    init = np.array([[0.0, 0.0], [10.0, 10.0], [100.0, 100.0]])
    km = KMeansTransformer(3, init=init, max_iter=1, device="cpu")
    with pytest.warns(Warning, match="distinct clusters"):
        km.fit(X, sample_weight=w)
    np.testing.assert_allclose(km.cluster_centers_[2], [100.0, 100.0], atol=1e-4)
    assert not (km.labels_ == 2).any()


@pytest.mark.parametrize("seed", [430, 487])
def test_kmeans_tol_zero_runs_to_sklearns_fixed_point(compiled, seed):
    """With tol=0, Lloyd runs until no label changes, through a late relocation."""
    # Ten clusters on 30 rows: a cluster empties in the second iteration,
    # when few labels change, and the last iteration but one changes a
    # single label.
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(30, 2))
    init = X[rng.choice(30, 10, replace=False)] + rng.normal(scale=0.3, size=(10, 2))
    kw = {"n_clusters": 10, "init": init, "tol": 0.0}
    ours = KMeansTransformer(**kw, device="cpu").fit(X)
    ref = KMeans(**kw, n_init=1, algorithm="lloyd").fit(X)
    assert ours.n_iter_ == ref.n_iter_
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, atol=1e-6)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-6)


def test_kmeans_partial_fit_matches_minibatch_kmeans_without_weights():
    """Mini-batch steps give MiniBatchKMeans' centers, labels and inertia."""
    from sklearn.cluster import MiniBatchKMeans

    # First batch: one cluster gets a single row, one none, and the row
    # (1.4, 1.4) changes cluster once the first center has moved.
    first = np.array(
        [[0, 0], [-2, -2], [-2, -1.8], [1.4, 1.4], [6, 6], [6.2, 5.8], [3.1, 3.0]]
    )
    rng = np.random.default_rng(0)
    later = np.r_[rng.normal(0, 1, (10, 2)), rng.normal(6, 1, (10, 2))]
    init = np.array([[0.0, 0.0], [6.0, 6.0], [3.0, 3.0], [50.0, 50.0]])
    ours = KMeansTransformer(4, init=init, device="cpu")
    ref = MiniBatchKMeans(4, init=init, n_init=1, reassignment_ratio=0.0)
    for batch in (first, later[rng.permutation(20)]):
        ours.partial_fit(batch)
        ref.partial_fit(batch)
        np.testing.assert_allclose(
            ours.cluster_centers_, ref.cluster_centers_, rtol=0, atol=1e-5
        )
        np.testing.assert_array_equal(ours.labels_, ref.labels_)
        assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-6)
    np.testing.assert_allclose(ours.cluster_centers_[2:], [[3.1, 3.0], [50, 50]])


def test_kmeans_weighted_seeding_draws_as_sklearn_with_heavy_tailed_weights():
    """Weighted k-means++ picks each seed by weighted potential, as scikit-learn."""
    X, _ = make_blobs(n_samples=300, n_features=2, centers=6, random_state=0)
    for seed in range(3):
        w = np.random.default_rng(seed).exponential(size=len(X)) ** 3
        kw = {"n_clusters": 6, "init": "k-means++", "n_init": 1, "max_iter": 1}
        ours = KMeansTransformer(**kw, random_state=seed, device="cpu")
        ours.fit(X, sample_weight=w)
        ref = KMeans(**kw, random_state=seed).fit(X, sample_weight=w)
        np.testing.assert_allclose(
            ours.cluster_centers_, ref.cluster_centers_, atol=1e-5
        )


def test_kmeans_plusplus_seeds_a_far_outlier_on_its_own():
    """k-means++ makes a far outlier, here the last row, one of the seeds."""
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(50, 2)), [[1000.0, 1000.0]]]
    for seed in range(5):
        km = KMeansTransformer(2, n_init=1, max_iter=1, random_state=seed)
        km.set_params(device="cpu").fit(X)
        assert np.abs(km.cluster_centers_ - 1000.0).max(axis=1).min() < 1e-3


def test_float64_value_beyond_float32_in_one_feature_is_refused_by_its_size():
    """One value beyond float32's range, in one feature, is named by its size."""
    X, _ = make_blobs(60, n_features=6, centers=3, random_state=0)
    X[7, 2] = 1e300
    with pytest.raises(ValueError, match=r"up to 1e\+300, beyond the range"):
        KMeansTransformer(3, random_state=0, device="cpu").fit(X)


def test_a_feature_spread_too_widely_is_refused_beside_features_far_apart():
    """One feature spread beyond float32's squares is refused, whatever the others."""
    # The other two features lie narrowly about +2**70 and -2**70: X's
    # extremes then lie close to their own features' means.
    rng = np.random.default_rng(0)
    X = np.c_[
        rng.normal(size=40) * 1e20,
        2.0**70 + rng.normal(size=40) * 1e6,
        -(2.0**70) + rng.normal(size=40) * 1e6,
    ]
    with pytest.raises(ValueError, match=r"from their mean: squared .* overflow"):
        KMeansTransformer(3, random_state=0, device="cpu").fit(X)


def test_values_far_below_the_mean_are_refused_as_far_above_are():
    """A value far below its feature's mean overflows float32 and is refused too."""
    X, _ = make_blobs(60, n_features=3, centers=3, random_state=0)
    wide = X.copy()
    wide[5, 1] = -1e20
    with pytest.raises(ValueError, match=r"up to 9.83e\+19 from their mean"):
        KMeansTransformer(3, random_state=0, device="cpu").fit(wide)
    km = KMeansTransformer(3, random_state=0, device="cpu").fit(X)
    Y = X[:4].copy()
    Y[2, 0] = -1e20
    for method in ("predict", "transform", "score"):
        with pytest.raises(ValueError, match="from the mean of the data fit saw"):
            getattr(km, method)(Y)


def test_data_spread_by_less_than_1e_15_is_refused():
    """Values within 1e-15 of their mean are refused, as the class Notes say."""
    X, _ = make_blobs(200, n_features=4, centers=3, random_state=0)
    X = (X - X.mean(axis=0)) / np.abs(X - X.mean(axis=0)).max() * 5e-16
    with pytest.raises(ValueError, match=r"lie at most 5e-16 from their mean"):
        KMeansTransformer(3, random_state=0, device="cpu").fit(X)


def test_explicit_float64_init_keeps_the_digits_of_data_far_from_the_origin():
    """Initial centers at 1.7e9 keep their float64 digits, as in scikit-learn."""
    _, X, init = _timestamps()  # three bursts 100 s apart, the float32 steps 128 s
    ours = KMeansTransformer(3, init=init, max_iter=1, device="cpu").fit(X)
    ref = KMeans(3, init=init, n_init=1, max_iter=1, algorithm="lloyd").fit(X)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, atol=1e-3)


def test_kmeans_partial_fit_after_a_weighted_fit_counts_the_fitted_weights():
    """After fit with weights, partial_fit weighs each center by its total weight."""
    X = np.random.default_rng(0).normal(size=(200, 3))
    init = X[:4]
    kw = {"n_clusters": 4, "init": init, "tol": 0.0, "device": "cpu"}
    weighted = KMeansTransformer(**kw).fit(X, sample_weight=np.full(len(X), 3.0))
    repeated = KMeansTransformer(**kw).fit(np.repeat(X, 3, axis=0))
    batch = np.random.default_rng(1).normal(size=(50, 3)) + 1.0
    weighted.partial_fit(batch)
    repeated.partial_fit(batch)
    np.testing.assert_allclose(
        weighted.cluster_centers_, repeated.cluster_centers_, atol=1e-5
    )


def test_kmeans_inverse_transform_refuses_codes_wider_than_n_clusters():
    """Codes of another width than n_clusters are refused, wider ones too."""
    X, _ = make_blobs(60, n_features=3, centers=3, random_state=0)
    km = KMeansTransformer(n_clusters=3, random_state=0, device="cpu").fit(X)
    codes = np.c_[km.transform(X[:5]), np.zeros(5, np.float32)]
    with pytest.raises(ValueError, match="n_clusters=3"):
        km.inverse_transform(codes)


def test_values_whose_squares_just_overflow_float32_are_refused():
    """Values spread twice as far as float32 can square and sum are refused."""
    X, _ = make_blobs(60, n_features=3, centers=3, random_state=0)
    X[5, 0] = 2 * np.sqrt(np.finfo(np.float32).max / 3)
    with pytest.raises(ValueError, match="overflow float32"):
        KMeansTransformer(3, random_state=0, device="cpu").fit(X)
