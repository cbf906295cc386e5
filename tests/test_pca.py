"""Tests of PCATransformer against scikit-learn's PCA and a float64 reference."""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from scipy.linalg import LinAlgWarning
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_replearn.classical.pca import PCATransformer

SOLVERS = ["covariance_eigh", "full", "randomized"]
N_COMPONENTS = [5, 0.8, None]
CPU = {"device": "cpu"}


def _data(n=500, d=30, mean=1.0, seed=0, dtype=np.float64):
    """Well-conditioned data: distinct variances 9 ... 0.01 on random axes."""
    rng = np.random.default_rng(seed)
    axes, _ = np.linalg.qr(rng.standard_normal((d, d)))
    scales = np.linspace(3.0, 0.1, d)
    return ((rng.standard_normal((n, d)) * scales) @ axes.T + mean).astype(dtype)


def _power_law(n, d, seed=0):
    """The hard float32 case: mean 3.0, standard deviations k ** -1."""
    rng = np.random.default_rng(seed)
    axes, _ = np.linalg.qr(rng.standard_normal((d, d)))
    z = rng.standard_normal((n, d)) * np.arange(1, d + 1) ** -1.0
    return (z @ axes.T + 3.0).astype(np.float32)


def _close(actual, desired, rtol=1e-4):
    """allclose relative to the overall scale of ``desired``."""
    desired = np.asarray(desired, dtype=np.float64)
    atol = rtol * max(np.abs(desired).max(), 1e-12)
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol)


# tests/test_common.py runs the scikit-learn common checks on the row of
# tests/_instances.py (n_components=1, the default solver); here they run on
# configurations the table does not have: every component (the defaults),
# whitening with the randomized solver, and a variance fraction fitted in
# mini-batches.
@pytest.mark.parametrize("batch_size", [None, 50])
def test_pca_randomized_total_variance_streamed_in_batches(batch_size):
    # The randomized solver's total variance (explained_variance_ratio_,
    # noise_variance_) comes from per-feature moments streamed batch by batch,
    # each batch's squares taken about the running mean: without the shift
    # correction of the later batches the ratios were 2.5 % low and the noise
    # variance 5 % high, while one batch (the test above) hid it.
    X = _data(n=300, d=20, mean=5.0)
    ours = PCATransformer(
        n_components=3,
        svd_solver="randomized",
        iterated_power=7,
        batch_size=batch_size,
        random_state=0,
        **CPU,
    ).fit(X)
    theirs = PCA(n_components=3, svd_solver="full").fit(X)
    _close(ours.explained_variance_ratio_, theirs.explained_variance_ratio_, 1e-3)
    assert ours.noise_variance_ == pytest.approx(theirs.noise_variance_, rel=1e-3)


@parametrize_with_checks(
    [
        PCATransformer(**CPU),
        PCATransformer(n_components=2, whiten=True, svd_solver="randomized", **CPU),
        PCATransformer(n_components=0.9, svd_solver="covariance_eigh", batch_size=7),
    ]
)
def test_pca_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _cases():
    for solver in SOLVERS:
        for whiten in (False, True):
            for k in N_COMPONENTS if solver != "randomized" else [5]:
                yield solver, whiten, k


@pytest.mark.parametrize("solver, whiten, n_components", list(_cases()))
def test_pca_matches_sklearn(solver, whiten, n_components):
    X = _data()
    params = dict(n_components=n_components, whiten=whiten, svd_solver=solver)
    ours = PCATransformer(random_state=0, **params, **CPU)
    rtol = 1e-4
    if solver == "randomized":
        # Approximate for both libraries (each ~1e-3 off with 4 power
        # iterations here): compare 7 iterations with sklearn's exact solver.
        ours.set_params(iterated_power=7)
        params["svd_solver"] = "full"
        rtol = 1e-3
    ours.fit(X)
    theirs = PCA(random_state=0, **params).fit(X)

    assert ours.n_components_ == theirs.n_components_
    assert ours.components_.shape == theirs.components_.shape
    _close(ours.components_, theirs.components_, rtol)
    _close(ours.explained_variance_, theirs.explained_variance_, rtol)
    _close(ours.explained_variance_ratio_, theirs.explained_variance_ratio_, rtol)
    _close(ours.singular_values_, theirs.singular_values_, rtol)
    _close(ours.mean_, theirs.mean_, 1e-10)
    assert ours.noise_variance_ == pytest.approx(theirs.noise_variance_, rel=rtol)
    assert ours.n_samples_ == theirs.n_samples_ == X.shape[0]

    Z = ours.transform(X)
    assert Z.dtype == np.float32
    _close(Z, theirs.transform(X), rtol)
    _close(
        ours.inverse_transform(Z), theirs.inverse_transform(theirs.transform(X)), rtol
    )
    # The probabilistic PCA density does not depend on whitening; sklearn's
    # get_covariance rescales components when whiten=True (its issue #13898),
    # so the reference is always the unwhitened sklearn model.
    reference = PCA(random_state=0, **{**params, "whiten": False}).fit(X)
    assert ours.score(X) == pytest.approx(reference.score(X), rel=rtol)
    _close(ours.score_samples(X[:20]), reference.score_samples(X[:20]), rtol)
    if not whiten:
        _close(ours.get_covariance(), theirs.get_covariance(), rtol)
        _close(ours.get_precision(), theirs.get_precision(), rtol)


@pytest.mark.parametrize(
    "shape, n_components, expected",
    [
        ((2000, 20), 5, "covariance_eigh"),  # tall and narrow
        ((300, 40), 5, "full"),  # small
        ((600, 700), 10, "randomized"),  # large, few components
        ((600, 700), 500, "full"),  # large, many components
        ((600, 700), 0.5, "full"),  # a variance fraction
    ],
)
def test_pca_auto_solver_follows_sklearn_rule(shape, n_components, expected):
    pca = PCATransformer(n_components=n_components, **CPU)
    assert pca._resolve_solver(*shape) == expected
    assert pca.svd_solver == "auto"  # the user's setting is kept
    if expected != "full" or shape == (300, 40):  # skip the slow large SVDs
        X = np.random.default_rng(0).standard_normal(shape)
        theirs = PCA(n_components=n_components, random_state=0).fit(X)
        assert theirs._fit_svd_solver == expected
        pca.fit(X)
        assert pca._fit_svd_solver == expected


def test_pca_float32_large_mean_robust():
    X = _power_law(20_000, 256)
    ours = PCATransformer(n_components=32, svd_solver="covariance_eigh", **CPU).fit(X)
    X64 = X.astype(np.float64)
    Xc = X64 - X64.mean(0)
    reference = np.linalg.eigvalsh(Xc.T @ Xc / (len(X) - 1))[::-1][:32]
    rel = np.abs(ours.explained_variance_ - reference) / reference
    assert rel.max() < 1e-4
    np.testing.assert_allclose(ours.mean_, X64.mean(0), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["read-only", "fortran", "reversed"])
def test_pca_fit_same_for_any_memory_layout(layout, dtype):
    # a joblib memory map is read-only, and slicing can lay rows out backwards:
    # the covariance pass reads such X through NumPy rather than in place
    X = _power_law(3000, 40).astype(dtype)
    if layout == "read-only":
        other = X.copy()
        other.flags.writeable = False
    elif layout == "fortran":
        other = np.asfortranarray(X)
    else:
        other = X[::-1].copy()[::-1]  # X's rows, negative stride
        assert other.strides[0] < 0
    kw = dict(n_components=5, svd_solver="covariance_eigh", batch_size=256, **CPU)
    ours = PCATransformer(**kw).fit(X)
    theirs = PCATransformer(**kw).fit(other)
    np.testing.assert_allclose(theirs.mean_, ours.mean_, rtol=1e-12)
    np.testing.assert_allclose(
        theirs.explained_variance_, ours.explained_variance_, rtol=1e-5
    )
    np.testing.assert_allclose(theirs.transform(other), ours.transform(X), atol=1e-5)


def _compiler_present() -> bool:
    import shutil
    import sysconfig

    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) is not None


def test_pca_compiled_pass_is_built_where_a_compiler_is():
    # The fused shift-and-sum loop is an optional extension: an install
    # without a C compiler runs NumPy's passes instead (same results, ~10%
    # slower at one thread). Where a compiler exists the build must succeed.
    from sk_replearn.classical import _moments

    if not _compiler_present():
        pytest.skip("no C compiler: the package runs NumPy's passes")
    assert _moments._kernels is not None


@pytest.fixture
def kernels():
    """The compiled loop's module; skips where the build had no C compiler."""
    from sk_replearn.classical import _moments

    if _moments._kernels is None:
        pytest.skip("built without a C compiler: only NumPy's passes exist")
    return _moments._kernels


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_pca_compiled_pass_matches_numpy(monkeypatch, kernels, dtype, threads):
    from sk_replearn.classical import _moments

    X = _power_law(3000, 40).astype(dtype)
    kw = dict(n_components=5, svd_solver="covariance_eigh", batch_size=256, **CPU)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        ours = PCATransformer(**kw).fit(X)
        monkeypatch.setattr(_moments, "_kernels", None)
        numpy = PCATransformer(**kw).fit(X)
    finally:
        torch.set_num_threads(before)
    np.testing.assert_allclose(ours.mean_, X.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(ours.mean_, numpy.mean_, rtol=1e-14)
    np.testing.assert_allclose(ours._scatter, numpy._scatter, rtol=1e-12, atol=0)
    np.testing.assert_allclose(ours.components_, numpy.components_, atol=1e-10)


def test_pca_compiled_pass_checks_buffer_sizes(kernels):
    x = np.ones((4, 3), dtype=np.float32)
    out, sums = np.empty((3, 3), dtype=np.float32), np.zeros(3)
    with pytest.raises(ValueError, match="buffer sizes"):
        kernels.shift_sum(x, np.zeros(3, np.float32), out, sums, 3, False)
    kernels.shift_sum(x[:3], np.ones(3, np.float32), out, sums, 3, False)
    np.testing.assert_array_equal(out, 0.0)
    np.testing.assert_array_equal(sums, 3.0)


def test_pca_float64_huge_mean_robust():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5000, 5)) * np.array([3, 2, 1, 0.5, 0.2]) * 1e-3 + 1e4
    ours = PCATransformer(n_components=3, **CPU).fit(X)
    Xc = X - X.mean(0)  # two-pass reference: exact enough in float64
    reference = np.linalg.eigvalsh(Xc.T @ Xc / (len(X) - 1))[::-1][:3]
    np.testing.assert_allclose(ours.explained_variance_, reference, rtol=1e-6)
    Z = ours.transform(X)  # centred in float64 before the float32 output
    np.testing.assert_allclose(Z.var(0, ddof=1), reference, rtol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pca_partial_fit_matches_fit(dtype):
    X = _data(n=900, mean=3.0, dtype=dtype)
    full = PCATransformer(n_components=6, svd_solver="covariance_eigh", **CPU).fit(X)
    inc = PCATransformer(n_components=6, **CPU)
    for chunk in np.array_split(X, [7, 100, 101, 400, 650]):  # uneven, one of 1 row
        inc.partial_fit(chunk)
    assert inc.n_samples_ == len(X)
    np.testing.assert_allclose(inc.components_, full.components_, atol=1e-4)
    np.testing.assert_allclose(
        inc.explained_variance_, full.explained_variance_, rtol=1e-4
    )
    np.testing.assert_allclose(inc.mean_, full.mean_, rtol=1e-10)
    assert inc.noise_variance_ == pytest.approx(full.noise_variance_, rel=1e-4)


def test_pca_partial_fit_says_how_large_a_first_chunk_must_be():
    # The message named svd_solver='covariance_eigh', which the user never
    # chose, and did not say that only the first chunk is bound.
    X = _data(n=40)
    model = PCATransformer(n_components=5, **CPU)
    with pytest.raises(ValueError, match=r"seen 3 sample.*first chunk of at least 5"):
        model.partial_fit(X[:3])
    # One component needs two samples (a variance), and says so.
    with pytest.raises(ValueError, match=r"first chunk of at least 2"):
        PCATransformer(n_components=1, **CPU).partial_fit(X[:1])
    assert not hasattr(model, "n_features_in_")  # the refused chunk is not kept
    model.partial_fit(X[:5])
    for row in X[5:]:  # later chunks of any size
        model.partial_fit(row[None])
    assert model.n_samples_ == len(X) and model.n_components_ == 5


@pytest.mark.parametrize("solver", ["covariance_eigh", "full"])
def test_pca_partial_fit_continues_after_fit(solver):
    X = _data()
    whole = PCATransformer(n_components=4, svd_solver=solver, **CPU).fit(X)
    model = PCATransformer(n_components=4, svd_solver=solver, **CPU)
    model.fit(X[:200]).partial_fit(X[200:])  # continues from fit's statistics
    assert model.n_samples_ == len(X)
    np.testing.assert_allclose(model.components_, whole.components_, atol=1e-10)
    np.testing.assert_allclose(model.mean_, whole.mean_, rtol=1e-12)


def test_pca_partial_fit_after_randomized_fit_keeps_new_data():
    X = _data()
    model = PCATransformer(n_components=4, svd_solver="randomized", **CPU)
    model.fit(X[:200]).partial_fit(X[200:])
    alone = PCATransformer(n_components=4, **CPU).partial_fit(X[200:])
    assert model.n_samples_ == len(X) - 200
    np.testing.assert_allclose(model.components_, alone.components_, atol=1e-10)


@pytest.mark.parametrize("solver", SOLVERS)
def test_pca_components_orthonormal(solver):
    W = PCATransformer(n_components=7, svd_solver=solver, random_state=0, **CPU)
    W = W.fit(_data()).components_
    np.testing.assert_allclose(W @ W.T, np.eye(7), atol=1e-10)


def test_pca_inverse_transform_answers_in_the_layout_fit_was_given():
    # As the neural estimators do: images in, images back.
    X = _data(n=300, d=12)
    images = X.reshape(300, 1, 3, 4)
    pca = PCATransformer(n_components=None, **CPU).fit(images)
    back = pca.inverse_transform(pca.transform(images))
    assert back.shape == (300, 1, 3, 4)
    np.testing.assert_allclose(back, images, atol=1e-4)
    flat = PCATransformer(n_components=None, input_shape=(1, 3, 4), **CPU).fit(X)
    assert flat.inverse_transform(flat.transform(X)).shape == (300, 12)


def test_pca_decoder_inverts_encoder_on_subspace():
    X = _data(n=300, d=10)
    pca = PCATransformer(n_components=None, whiten=True, **CPU).fit(X)
    np.testing.assert_allclose(pca.inverse_transform(pca.transform(X)), X, atol=1e-4)
    Z = pca.transform(X)  # whitened codes have unit variance
    np.testing.assert_allclose(Z.var(0, ddof=1), 1.0, rtol=1e-4)


def test_pca_whitens_a_component_of_zero_variance_to_zero_codes():
    # A constant column: the fourth component has variance exactly 0. Its
    # codes are 0 (the scale floored at eps), the others unit-variance; the
    # scale sqrt(0) divided 0 by 0 and transform refused its own codes.
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(size=(50, 3)), np.zeros(50)]
    pca = PCATransformer(n_components=4, whiten=True, **CPU).fit(X)
    assert pca.explained_variance_[3] == 0
    Z = pca.transform(X)
    assert np.isfinite(Z).all() and np.abs(Z[:, 3]).max() == 0
    np.testing.assert_allclose(Z[:, :3].var(0, ddof=1), 1.0, rtol=1e-5)


def test_pca_precision_and_score_are_gaussian():
    X = _data(n=400, d=12)
    pca = PCATransformer(n_components=4, **CPU).fit(X)
    cov, prec = pca.get_covariance(), pca.get_precision()
    np.testing.assert_allclose(cov @ prec, np.eye(12), atol=1e-10)
    diff = X - pca.mean_
    _, logdet = np.linalg.slogdet(cov)
    naive = -0.5 * (
        np.einsum("ij,jk,ik->i", diff, np.linalg.inv(cov), diff)
        + 12 * np.log(2 * np.pi)
        + logdet
    )
    np.testing.assert_allclose(pca.score_samples(X), naive, rtol=1e-8)
    assert pca.score(X) == pytest.approx(naive.mean())


def test_pca_singular_model_score_raises():
    Z = np.random.default_rng(0).standard_normal((100, 3))
    Z = np.hstack([Z, Z])  # rank 3 in 6 features
    with pytest.raises(ValueError, match="covariance is singular"):
        PCATransformer(**CPU).fit(Z).score(Z)
    assert np.isfinite(PCATransformer(n_components=2, **CPU).fit(Z).score(Z))


def test_pca_singular_score_of_full_rank_badly_scaled_data_names_the_solver():
    # Rank 6, but features 1e18 apart in variance: the covariance solver
    # cannot resolve the smallest, and the error said only "fit with
    # n_components below the rank", which lowering n_components never meets.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6))
    assert np.linalg.matrix_rank(X) == 6  # and still so once its columns scale
    X *= np.array([1e-9, 1, 1, 1, 1, 1e9])
    with pytest.raises(ValueError, match=r"rescale X.*svd_solver='full'"):
        PCATransformer(n_components=3, **CPU).fit(X).score(X)
    with pytest.warns(LinAlgWarning, match="ill-conditioned"):
        full = PCATransformer(n_components=3, svd_solver="full", **CPU).fit(X)
        assert np.isfinite(full.score(X))


@pytest.mark.parametrize("solver", SOLVERS)
def test_pca_deterministic(solver):
    X = _data()
    a = PCATransformer(n_components=5, svd_solver=solver, random_state=3, **CPU)
    b = clone(a)
    np.testing.assert_array_equal(a.fit_transform(X), b.fit(X).transform(X))
    np.testing.assert_array_equal(a.components_, b.components_)


def test_pca_batches_do_not_change_result():
    X = _data()
    one = PCATransformer(n_components=5, svd_solver="covariance_eigh", **CPU).fit(X)
    many = clone(one).set_params(batch_size=13).fit(X)
    np.testing.assert_allclose(many.components_, one.components_, atol=1e-10)
    np.testing.assert_allclose(many.transform(X), one.transform(X), atol=1e-5)


def test_pca_pickle_and_clone():
    X = _data()
    pca = PCATransformer(n_components=3, whiten=True, **CPU).fit(X)
    restored = pickle.loads(pickle.dumps(pca))
    np.testing.assert_array_equal(restored.transform(X), pca.transform(X))
    fresh = clone(pca)
    assert fresh.get_params() == pca.get_params()
    assert not hasattr(fresh, "components_")


def test_pca_set_output_pandas():
    pd = pytest.importorskip("pandas")
    X = _data()
    pca = PCATransformer(n_components=3, **CPU).set_output(transform="pandas")
    out = pca.fit_transform(X)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == [f"pcatransformer{i}" for i in range(3)]
    np.testing.assert_array_equal(out.to_numpy(), pca.transform(X).to_numpy())


def test_pca_nd_input_equals_flattened():
    X = _data(n=200, d=64).reshape(200, 1, 8, 8)
    nd = PCATransformer(n_components=5, **CPU).fit(X)
    flat = PCATransformer(n_components=5, **CPU).fit(X.reshape(200, -1))
    assert nd.input_shape_ == (1, 8, 8)
    np.testing.assert_array_equal(nd.components_, flat.components_)
    np.testing.assert_array_equal(nd.transform(X), flat.transform(X.reshape(200, -1)))
    shaped = PCATransformer(n_components=5, input_shape=(1, 8, 8), **CPU)
    assert shaped.fit(X.reshape(200, -1)).input_shape_ == (1, 8, 8)


_TF32_PROBE = """
import torch
from sk_replearn.classical.pca import _no_tf32
matmul = torch.backends.cuda.matmul
{setting}
def state():  # what the user reads: each getter's value, or that it raises
    out = [matmul.fp32_precision]
    for read in (torch.get_float32_matmul_precision, lambda: matmul.allow_tf32):
        try:
            out.append(read())
        except RuntimeError:  # the legacy and new APIs mixed by the user
            out.append("raises")
    return out
before = state()
with _no_tf32(torch.device("cuda")):
    inside = matmul.fp32_precision
print(inside, before == state())
"""


@pytest.mark.parametrize(
    "setting",
    [
        "",  # torch's defaults: fp32_precision "none", inheriting the global one
        "torch.set_float32_matmul_precision('medium')",
        "torch.set_float32_matmul_precision('highest')",
        "matmul.allow_tf32 = True",  # the legacy flag
        "matmul.fp32_precision = 'tf32'",
        "torch.backends.fp32_precision = 'tf32'",
    ],
)
def test_pca_tf32_switched_off_and_restored(setting):
    # Each user's setting in a fresh process (torch's precision state cannot
    # be reset): TF32 off inside the block, the setting as it was after,
    # and torch.get_float32_matmul_precision() still answering.
    code = _TF32_PROBE.format(setting=setting)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["ieee", "True"], out.stderr


def _bad_fit_inputs():
    X = _data(n=20, d=5)
    nan, inf = X.copy(), X.copy()
    nan[3, 2], inf[0, 0] = np.nan, np.inf
    return [
        (nan, {}, "NaN"),
        (inf, {}, "infinity"),
        (X[:, 0], {}, "Expected 2D array"),
        (np.empty((0, 5)), {}, "0 sample"),
        (np.array([["a", "b"], ["c", "d"]], dtype=object), {}, "could not convert"),
        (X, {"n_components": 6}, r"n_components=6 .*min\(n_samples, n_features\)=5"),
        (X[:1], {"n_components": 1}, "n_samples=1"),
        (X, {"n_components": 0.5, "svd_solver": "randomized"}, "variance fraction"),
        (X, {"svd_solver": "arpack"}, "svd_solver"),
        (X, {"device": "not-a-device"}, "device="),
        (X, {"n_components": 0}, "n_components"),
    ]


@pytest.mark.parametrize("X, params, match", _bad_fit_inputs())
def test_pca_bad_input_raises(X, params, match):
    with pytest.raises(ValueError, match=match):
        PCATransformer(**{**CPU, **params}).fit(X)


def test_pca_bad_input_after_fit_raises():
    X = _data(n=50, d=6)
    pca = PCATransformer(n_components=2, **CPU).fit(X)
    with pytest.raises(ValueError, match="X has 5 features.*expecting 6"):
        pca.transform(X[:, :5])
    with pytest.raises(ValueError, match="n_components_=2"):
        pca.inverse_transform(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="X has 5 features"):
        pca.partial_fit(X[:, :5])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_pca_cpu_one_pass_moments_match_batched_moments(dtype, n_threads):
    """The CPU pass (blocks in cache, syrk) equals the device path's moments."""
    from sk_replearn.classical._moments import (
        _batch_moments,
        _merge_moments,
        _numpy_moments,
    )
    from sk_replearn.classical._threads import _Workers

    X = _data(n=1003, d=17, mean=50.0, dtype=dtype)
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        with _Workers(torch.device("cpu"), blas=True) as workers:
            fast = _numpy_moments(X, None, workers, rows=64)
    finally:
        torch.set_num_threads(previous)
    assert torch.get_num_threads() == previous
    x = torch.from_numpy(X)
    shift = x[:64].double().mean(0)
    batched = None
    for chunk in torch.split(x, 300):
        moments = _batch_moments(chunk, shift, diagonal=False)
        batched = moments if batched is None else _merge_moments(batched, moments)
    assert fast.n == batched.n == len(X)
    np.testing.assert_allclose(fast.mean, X.astype(np.float64).mean(0), rtol=1e-13)
    scale = float(batched.m2.abs().max())
    np.testing.assert_allclose(fast.m2, batched.m2, atol=1e-5 * scale)
    np.testing.assert_allclose(fast.m2, fast.m2.T)  # symmetric


@pytest.mark.parametrize("n_threads", [1, 2])
def test_pca_default_cpu_blocks_keep_the_float64_answer(n_threads):
    """The default cache blocks (larger for one thread) split 10,000 rows into
    several, and the fit still agrees with scikit-learn in float64."""
    from sk_replearn.classical._moments import _covariance_block_rows

    X = _power_law(10_000, 256).astype(np.float32)
    assert len(X) > 2 * _covariance_block_rows(X.shape[1], n_threads)
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        ours = PCATransformer(n_components=32, svd_solver="covariance_eigh", **CPU)
        ours.fit(X)
    finally:
        torch.set_num_threads(previous)
    reference = PCA(n_components=32, svd_solver="covariance_eigh")
    reference.fit(X.astype(np.float64))
    np.testing.assert_allclose(
        ours.explained_variance_, reference.explained_variance_, rtol=1e-5
    )
    np.testing.assert_allclose(ours.mean_, reference.mean_, rtol=1e-12)
    np.testing.assert_allclose(
        np.abs(np.sum(ours.components_[:8] * reference.components_[:8], axis=1)),
        1.0,
        atol=1e-5,
    )


def test_pca_overflow_inside_the_covariance_is_an_error_not_nan():
    """Values within float32's range whose products overflow: a clear error."""
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((3000, 4)) * 1e18).astype(np.float32)
    with pytest.raises(ValueError, match="overflowed.*rescale X"):
        PCATransformer(n_components=2, svd_solver="covariance_eigh", **CPU).fit(X)


@pytest.mark.parametrize("solver", ["full", "randomized"])
def test_pca_svd_solvers_refuse_data_whose_squares_overflow(solver):
    # Finite float64 values above 1e154: the SVD solvers' variances came
    # out inf and NaN with only a RuntimeWarning, as a "fitted" model.
    X = _data(n=200, d=6, dtype=np.float64) * 1e160
    pca = PCATransformer(n_components=2, svd_solver=solver, **CPU)
    with pytest.raises(ValueError, match="rescale X"):
        pca.fit(X)
    assert not hasattr(pca, "components_")


def test_pca_float32_data_whose_squares_underflow_are_refused():
    # At 1e-25 the float32 products of the covariance rounded to 0: every
    # explained variance ratio was 0 and the components arbitrary, silently.
    X = _data(n=500, d=4, dtype=np.float64) @ np.diag([3.0, 2.0, 1.0, 0.5])
    pca = PCATransformer(n_components=2, svd_solver="covariance_eigh", **CPU)
    with pytest.raises(ValueError, match=r"squares round to 0 in float32.*float64"):
        pca.fit((X * 1e-25).astype(np.float32))
    reference = pca.fit(X).explained_variance_ratio_
    for tiny in ((X * 1e-25), (X * 1e-18).astype(np.float32)):  # float64; float32
        np.testing.assert_allclose(
            pca.fit(tiny).explained_variance_ratio_, reference, rtol=1e-5
        )
    constant = np.ones((10, 3), dtype=np.float32)  # no spread: no error
    assert not pca.fit(constant).explained_variance_.any()


def test_pca_overflow_of_float64_data_names_what_overflowed():
    # Float64 data are computed in float64: the messages blamed float32
    # squares "above 5.83e+18" for data of 1e100 and 1e160, which fit takes
    # at 1e20 and 1e100.
    X = _data(n=300, d=10, dtype=np.float64)
    pca = PCATransformer(n_components=3, **CPU).fit(X * 1e100)
    with pytest.raises(ValueError, match=r"codes .* overflowed float32 \(above 3.4e38"):
        pca.transform(X * 1e100)
    with pytest.raises(ValueError, match="covariance .* overflowed float64"):
        PCATransformer(n_components=3, **CPU).fit(X * 1e160)
    with pytest.raises(ValueError, match="5.83e"):  # float32 data: float32 squares
        PCATransformer(n_components=3, **CPU).fit((X * 1e20).astype(np.float32))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_pca_fit_and_transform_name_nan_and_inf(bad):
    X = _data(n=200, d=6, dtype=np.float32)
    pca = PCATransformer(n_components=2, svd_solver="covariance_eigh", **CPU).fit(X)
    X_bad = X.copy()
    X_bad[150, 3] = bad
    word = "NaN" if np.isnan(bad) else "infinity"
    with pytest.raises(ValueError, match=word):
        PCATransformer(n_components=2, svd_solver="covariance_eigh", **CPU).fit(X_bad)
    with pytest.raises(ValueError, match=word):
        pca.transform(X_bad)


@pytest.mark.parametrize("tf32_on", ["new_api", "legacy_api"])
def test_no_tf32_restores_the_users_setting_through_either_api(tf32_on):
    # After TF32 is set through fp32_precision (torch >= 2.9), reading the
    # legacy allow_tf32 raises: K-means and PCA on CUDA failed at every call.
    from types import SimpleNamespace

    from sk_replearn.classical._moments import _no_tf32

    matmul = torch.backends.cuda.matmul
    if not hasattr(matmul, "fp32_precision"):
        pytest.skip("this torch has only the legacy allow_tf32 flag")
    saved = matmul.fp32_precision
    try:
        if tf32_on == "new_api":
            matmul.fp32_precision = "tf32"  # now allow_tf32 cannot be read
        else:
            matmul.allow_tf32 = True
        before = matmul.fp32_precision
        with _no_tf32(SimpleNamespace(type="cuda")):
            assert matmul.fp32_precision == "ieee"
        assert matmul.fp32_precision == before == "tf32"
        if tf32_on == "legacy_api":
            assert matmul.allow_tf32 is True
    finally:  # back through the API that set it: mixing them is what raises
        if tf32_on == "new_api":
            matmul.fp32_precision = saved
        else:
            matmul.allow_tf32 = False


@pytest.mark.parametrize("solver", ["full", "randomized", "covariance_eigh"])
def test_pca_solvers_agree_on_values_too_large_for_float32_squares(solver):
    # The SVD solvers compute in float64, yet refused what "covariance_eigh"
    # fits: which data passed depended on the solver "auto" picked.
    X = np.random.default_rng(0).normal(size=(200, 10)) * 1e19
    ours = PCATransformer(3, svd_solver=solver, random_state=0, device="cpu").fit(X)
    ref = PCA(3, svd_solver="full").fit(X)
    np.testing.assert_allclose(
        ours.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-6
    )
    with pytest.raises(ValueError, match="NaN"):
        PCATransformer(3, svd_solver=solver, device="cpu").fit(
            np.full((20, 10), np.nan)
        )


def test_pca_full_solver_reads_a_read_only_memmap_without_a_warning(tmp_path):
    X = np.random.default_rng(0).normal(size=(50, 6))
    np.save(tmp_path / "x.npy", X)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's "array is not writable"
        pca = PCATransformer(2, svd_solver="full", device="cpu").fit(mapped)
    np.testing.assert_allclose(
        pca.explained_variance_, PCA(2, svd_solver="full").fit(X).explained_variance_
    )


def test_integer_input_is_read_as_float64_as_scikit_learn_reads_it():
    # Integer timestamps near 1.7e9 became float32 (steps of 128): the first
    # explained variance came out as 4096 against 1000.9.
    rng = np.random.default_rng(0)
    t = 1_700_000_000 + np.r_[rng.integers(0, 20, 50), rng.integers(60, 80, 50)]
    X = np.c_[t, rng.integers(0, 5, 100)].astype(np.int64)
    pca = PCATransformer(2, device="cpu").fit(X)
    ref = PCATransformer(2, device="cpu").fit(X.astype(np.float64))
    np.testing.assert_allclose(pca.explained_variance_, ref.explained_variance_)
    assert abs(pca.explained_variance_[0] - 1000.93) < 0.01


def _timestamp_columns(n=500, seed=0):
    """A column of timestamps near 1.7e9 s (spread 100 s) beside two noise columns."""
    rng = np.random.default_rng(seed)
    return np.c_[1.7e9 + rng.normal(0, 100, n), rng.normal(size=(n, 2))]


def test_pca_inverse_transform_keeps_float64_data_far_from_the_origin():
    # mean_ used to be added in float32 (steps of 128 at 1.7e9) and the
    # reconstruction returned as float32: up to 66.7 off, where scikit-learn
    # is 5e-7 off.
    X = _timestamp_columns()
    pca = PCATransformer(n_components=None, **CPU).fit(X)
    back = pca.inverse_transform(pca.transform(X))
    assert back.dtype == np.float64
    ref = PCA(n_components=None).fit(X)
    np.testing.assert_allclose(ref.inverse_transform(ref.transform(X)), X, atol=1e-5)
    np.testing.assert_allclose(back, X, rtol=0, atol=1e-3)
    # exact float64 codes decode to distinct timestamps, not 6 float32 values
    codes = (X - pca.mean_) @ pca.components_.T
    exact = pca.inverse_transform(codes)
    np.testing.assert_allclose(exact, X, rtol=0, atol=1e-6)
    assert len(np.unique(exact[:, 0])) == len(X)


def test_pca_inverse_transform_keeps_the_fit_dtype_float32():
    X = _data(n=200, d=6, dtype=np.float32)
    pca = PCATransformer(n_components=3, **CPU).fit(X)
    assert pca.inverse_transform(pca.transform(X)).dtype == np.float32
    ref = PCA(n_components=3).fit(X)
    assert ref.inverse_transform(ref.transform(X)).dtype == np.float32


def test_pca_score_accepts_float64_data_beyond_float32_range():
    # fit and transform accept it; scoring computes in float64 but used to
    # reject X for overflowing float32.
    X = np.random.default_rng(0).normal(size=(200, 5)) * 1e20
    pca = PCATransformer(**CPU).fit(X)
    ref = PCA().fit(X)
    assert pca.score(X) == pytest.approx(ref.score(X), rel=1e-8)
    np.testing.assert_allclose(pca.score_samples(X), ref.score_samples(X), rtol=1e-8)


def _graded_data():
    """Full-rank data on scales 1e6, 3e5 and 1e-3 (eigenvalues 1e12 ... 1e-6)."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(300, 3)) * [1e6, 3e5, 1e-3]


def _reference_score(pca, X):
    """Mean log-likelihood from the model's spectrum, with an exact complement."""
    d = X.shape[1]
    W = pca.components_
    complete = np.linalg.qr(W.T, mode="complete")[0]  # (d, d)
    variances = np.r_[
        np.maximum(pca.explained_variance_, pca.noise_variance_),
        np.full(d - len(W), pca.noise_variance_),
    ]
    z = (X - pca.mean_) @ complete  # coordinates along every axis
    quad = (z**2 / variances).sum(1)
    return np.mean(-0.5 * (d * np.log(2 * np.pi) + np.log(variances).sum() + quad))


@pytest.mark.parametrize("n_components", [2, None])
def test_pca_score_of_full_rank_data_on_very_different_scales(n_components):
    # The cut-off eps * d * max(eigenvalue) called the 1e-6 eigenvalue zero
    # and refused to score ("covariance is singular").
    X = _graded_data()
    pca = PCATransformer(n_components=n_components, **CPU).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ill-conditioned, as scikit-learn warns
        score = pca.score(X)
        ref = PCA(n_components=None).fit(X).score(X)
    # with 2 components the noise variance is the third eigenvalue: the same
    # model as n_components=None (scikit-learn's inv() loses it there)
    assert score == pytest.approx(ref, rel=1e-9)
    assert score == pytest.approx(_reference_score(pca, X), rel=1e-9)


def test_pca_full_solver_does_not_keep_a_d_by_d_matrix():
    # A wide "full" fit kept the d x d scatter: 293 MB pickled at
    # 100 x 6000, where scikit-learn's PCA pickles to 4.9 MB.
    X = np.random.default_rng(0).normal(size=(50, 2000))
    pca = PCATransformer(n_components=None, svd_solver="full", **CPU).fit(X)
    size = len(pickle.dumps(pca))
    assert size < 2 * len(pickle.dumps(PCA(svd_solver="full").fit(X)))
    assert size < 2000 * 2000 * 8 / 4


@pytest.mark.parametrize("n_components", [3, None])
def test_pca_partial_fit_after_full_fit_from_an_earlier_pickle(n_components):
    # Estimators pickled before the full solver stopped keeping the scatter
    # matrix hold ``_scatter``; they must still load and continue exactly.
    X = _data(n=300, d=8)
    kw = dict(n_components=n_components, svd_solver="full", **CPU)
    old = PCATransformer(**kw).fit(X[:100])
    Xc = X[:100] - X[:100].mean(0)
    state = {k: v for k, v in old.__getstate__().items() if k != "_full_spectrum"}
    state["_scatter"] = Xc.T @ Xc
    restored = PCATransformer.__new__(PCATransformer)
    restored.__setstate__(pickle.loads(pickle.dumps(state)))
    assert not hasattr(restored, "_full_spectrum")
    restored.partial_fit(X[100:])
    new = pickle.loads(pickle.dumps(PCATransformer(**kw).fit(X[:100])))
    new.partial_fit(X[100:])
    whole = PCATransformer(**kw).fit(X)
    for model in (restored, new):
        np.testing.assert_allclose(model.mean_, whole.mean_, rtol=1e-12)
        np.testing.assert_allclose(
            model.explained_variance_, whole.explained_variance_, rtol=1e-10
        )
        np.testing.assert_allclose(
            np.abs(model.components_), np.abs(whole.components_), atol=1e-8
        )


def test_pca_score_of_samples_whose_likelihood_overflows_is_an_error():
    # Finite float64 values whose squares overflow: -inf came back silently.
    X = np.random.default_rng(0).normal(size=(50, 4))
    pca = PCATransformer(2).fit(X)
    far = X[:2].copy()
    far[1, 1] = 1e300
    with pytest.raises(ValueError, match="1 of the 2 samples of X overflows float64"):
        pca.score(far)
    assert np.isfinite(pca.score_samples(X[:2])).all()


def test_a_float64_fit_decodes_in_float64_after_save_and_load(tmp_path):
    from sk_replearn.persistence import load, save

    rng = np.random.default_rng(0)
    X = np.c_[1.7e9 + rng.normal(0, 100, 200), rng.normal(size=(200, 2))]
    pca = PCATransformer(3, svd_solver="full").fit(X)
    save(pca, tmp_path / "pca.skr")
    again = load(tmp_path / "pca.skr")
    Z = pca.transform(X)
    np.testing.assert_array_equal(again.inverse_transform(Z), pca.inverse_transform(Z))
    assert again.inverse_transform(Z).dtype == np.float64


def test_pca_partial_fit_turns_float64_with_a_float64_chunk():
    # As for fit: float64 data gives a float64 model, here once any chunk is.
    X = _data(n=40, d=4)
    model = PCATransformer(n_components=2, **CPU)
    model.partial_fit(X[:20].astype(np.float32))
    assert model.inverse_transform(np.zeros((1, 2))).dtype == np.float32
    model.partial_fit(X[20:])
    assert model.inverse_transform(np.zeros((1, 2))).dtype == np.float64


def test_pca_inverse_transform_refuses_codes_of_another_width():
    X = _data(n=40, d=4)
    model = PCATransformer(n_components=3, **CPU).fit(X)
    for width in (2, 4):
        with pytest.raises(ValueError, match="n_components_=3"):
            model.inverse_transform(np.zeros((2, width)))


@pytest.mark.parametrize("n_components", [1.0, 0.0, 1.5])
def test_pca_variance_fraction_must_lie_strictly_between_0_and_1(n_components):
    # As scikit-learn's: 1.0 is not "all the variance" but refused.
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="n_components"):
        PCATransformer(n_components=n_components, **CPU).fit(_data(n=40, d=4))


def test_pca_whitens_data_of_tiny_scale_to_unit_variance():
    """Whitening divides by sqrt(variance) floored at float64's eps only, as
    scikit-learn does: data in units of 1e-9 still get unit-variance codes."""
    X = _data(n=300, d=6) * 1e-9
    ours = PCATransformer(n_components=3, whiten=True, **CPU).fit(X)
    theirs = PCA(n_components=3, whiten=True).fit(X)
    Z = ours.transform(X)
    np.testing.assert_allclose(Z.var(0, ddof=1), 1.0, rtol=1e-4)
    _close(Z, theirs.transform(X), 1e-4)


def test_pca_float64_codes_are_the_float64_projection_rounded_once():
    """float64 X is centred and projected in float64; only the codes are
    rounded to float32. A small component beside a large one keeps its
    digits (a float32 projection is off by float32's eps times the large one)."""
    rng = np.random.default_rng(0)
    axes, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    X = (rng.standard_normal((200, 3)) * [1e4, 1.0, 1e-2]) @ axes.T + 5.0
    pca = PCATransformer(n_components=3, **CPU).fit(X)
    Z = pca.transform(X)
    reference = (X - pca.mean_) @ pca.components_.T  # float64
    error = np.abs(Z - reference).max(axis=0) / reference.std(axis=0)
    assert error.max() < 1e-6, error


def test_pca_covariance_of_more_rows_than_one_float64_pooling():
    """Past 2**16 rows the CPU pass pools its float32 block products into
    float64 more than once: every row counts once, in the variances and the
    mean alike."""
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((70_000, 16)) * np.linspace(3.0, 0.5, 16) + 2.0).astype(
        np.float32
    )
    pca = PCATransformer(n_components=4, svd_solver="covariance_eigh", **CPU).fit(X)
    X64 = X.astype(np.float64)
    reference = np.linalg.eigvalsh(np.cov(X64, rowvar=False))[::-1][:4]
    np.testing.assert_allclose(pca.explained_variance_, reference, rtol=1e-5)
    np.testing.assert_allclose(pca.mean_, X64.mean(0), rtol=1e-12)
    assert pca.n_samples_ == len(X)


@pytest.mark.parametrize("solver", SOLVERS)
def test_pca_every_solver_gives_the_float64_mean_of_float32_data(solver):
    """mean_ is float64 and exact for float32 X whatever the solver (the
    SVD solvers take it from their own pass over X)."""
    X = _data(n=500, d=30, mean=1000.0, dtype=np.float32)
    pca = PCATransformer(n_components=5, svd_solver=solver, random_state=0, **CPU)
    pca.fit(X)
    assert pca.mean_.dtype == np.float64
    np.testing.assert_allclose(pca.mean_, X.astype(np.float64).mean(0), rtol=1e-12)


def test_pca_fit_leaves_torch_and_blas_thread_settings_as_they_were():
    """The CPU passes hold torch and numpy's BLAS to one thread per worker
    while they run, and give the user's settings back afterwards."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    X = _data(n=3000, d=8, dtype=np.float32)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with threadpool_limits(limits=2, user_api="blas"):
            before = blas_threads()
            pca = PCATransformer(n_components=3, batch_size=256, **CPU).fit(X)
            pca.transform(X)
            assert torch.get_num_threads() == 2
            assert blas_threads() == before
    finally:
        torch.set_num_threads(previous)


# -- behaviour pinned down against scikit-learn and by hand ---------------
def test_pca_random_state_seeds_the_randomized_solver():
    """random_state seeds the randomized solver: an int or a RandomState."""
    X = np.random.default_rng(0).standard_normal((200, 40))  # no dominant axes
    kw = {"n_components": 3, "svd_solver": "randomized", "iterated_power": 0, **CPU}
    a = PCATransformer(**kw, random_state=0).fit(X).components_
    b = PCATransformer(**kw, random_state=1).fit(X).components_
    c = PCATransformer(**kw, random_state=np.random.RandomState(1)).fit(X).components_
    assert np.abs(a - b).max() > 0.1  # without power iterations, the seed shows
    np.testing.assert_array_equal(b, c)


@pytest.mark.parametrize("n_components, n_iter", [(3, 7), (5, 4)])
def test_pca_iterated_power_auto_is_7_for_few_components_else_4(n_components, n_iter):
    """'auto' runs 7 power iterations when n_components < 0.1 * min(X.shape), else 4."""
    X = _data(n=300, d=40)  # 0.1 * min(X.shape) = 4
    kw = {"svd_solver": "randomized", "random_state": 0, **CPU}
    auto = PCATransformer(n_components, **kw).fit(X)
    explicit = PCATransformer(n_components, iterated_power=n_iter, **kw).fit(X)
    other = PCATransformer(n_components, iterated_power=11 - n_iter, **kw).fit(X)
    np.testing.assert_array_equal(auto.components_, explicit.components_)
    assert not np.array_equal(auto.components_, other.components_)


@pytest.mark.parametrize("solver", ["full", "randomized"])
def test_pca_refit_with_another_solver_forgets_the_earlier_fit(solver):
    """partial_fit after a refit continues from the refit, not the first fit."""
    X = _data()
    model = PCATransformer(4, svd_solver="covariance_eigh", random_state=0, **CPU)
    model.fit(X[:100]).set_params(svd_solver=solver).fit(X[100:300])
    model.partial_fit(X[300:])
    if solver == "full":  # continues exactly from the refit
        expected = PCATransformer(4, svd_solver="covariance_eigh", **CPU).fit(X[100:])
    else:  # its discarded spectrum is unknown: the new data alone
        expected = PCATransformer(4, **CPU).partial_fit(X[300:])
    assert model.n_samples_ == expected.n_samples_
    np.testing.assert_allclose(model.components_, expected.components_, atol=1e-10)


def test_pca_partial_fit_after_randomized_fit_answers_in_the_new_chunks_dtype():
    """After a randomized fit, partial_fit on float32 data decodes in float32."""
    X = _data()
    model = PCATransformer(3, svd_solver="randomized", random_state=0, **CPU)
    model.fit(X[:200]).partial_fit(X[200:].astype(np.float32))
    assert model.inverse_transform(model.transform(X[:3])).dtype == np.float32


@pytest.mark.parametrize("solver", ["covariance_eigh", "full"])
def test_pca_variance_fraction_reached_exactly_keeps_one_more_component(solver):
    """A fraction met exactly is not exceeded: one more component, as scikit-learn."""
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])  # ratios 1/2
    ours = PCATransformer(0.5, svd_solver=solver, **CPU).fit(X)
    np.testing.assert_array_equal(ours.explained_variance_ratio_, [0.5, 0.5])
    assert ours.n_components_ == PCA(0.5, svd_solver=solver).fit(X).n_components_ == 2


@pytest.mark.parametrize("solver", SOLVERS)
def test_pca_constant_data_explain_no_variance(solver):
    """Constant data give explained variance ratios of 0, not NaN."""
    pca = PCATransformer(2, svd_solver=solver, random_state=0, **CPU)
    pca.fit(np.full((10, 4), 3.0))
    np.testing.assert_array_equal(pca.explained_variance_ratio_, [0.0, 0.0])
    np.testing.assert_array_equal(pca.explained_variance_, [0.0, 0.0])


def test_pca_randomized_solver_centres_data_far_from_the_origin():
    """The randomized solver finds the axes of float64 data at 1e9 as the full one."""
    X = _data(n=300, d=30, mean=1e9)
    kw = {"n_components": 3, "random_state": 0, **CPU}
    rand = PCATransformer(svd_solver="randomized", iterated_power=7, **kw).fit(X)
    full = PCATransformer(svd_solver="full", **kw).fit(X)
    np.testing.assert_allclose(
        rand.explained_variance_, full.explained_variance_, rtol=1e-5
    )
    np.testing.assert_allclose(rand.components_, full.components_, atol=1e-3)


def test_pca_full_solver_centres_float32_data_in_float64():
    """The full solver's variances of float32 data at 3000 are those of float64."""
    X = _data(n=200, d=10, mean=3000.0, dtype=np.float32)
    pca = PCATransformer(svd_solver="full", **CPU).fit(X)
    reference = np.linalg.eigvalsh(np.cov(X.astype(np.float64).T))[::-1]
    np.testing.assert_allclose(pca.explained_variance_, reference, rtol=1e-10)


@pytest.mark.parametrize(
    "shape, n_components, expected",
    [
        ((10_000, 1_000), 5, "covariance_eigh"),  # n_features at 1000
        ((2_000, 200), 5, "covariance_eigh"),  # n_samples at 10 * n_features
        ((500, 60), 5, "full"),  # the larger side at 500
        ((600, 700), 480, "full"),  # n_components at 0.8 * min(X.shape)
        ((600, 700), 479, "randomized"),
    ],
)
def test_pca_auto_solver_at_the_edges_of_sklearns_rule(shape, n_components, expected):
    """Each bound of scikit-learn's 'auto' rule is inclusive or strict as there."""
    pca = PCATransformer(n_components=n_components, **CPU)
    assert pca._resolve_solver(*shape) == expected


def test_pca_pickled_before_the_fit_dtype_was_kept_decodes_in_float32():
    """A model whose pickle lacks the fit's dtype decodes in float32, as it did then."""
    X = _data(n=100, d=6)
    model = PCATransformer(3, **CPU).fit(X)
    state = {k: v for k, v in model.__getstate__().items() if k != "_fit_dtype"}
    restored = PCATransformer.__new__(PCATransformer)
    restored.__setstate__(pickle.loads(pickle.dumps(state)))
    back = restored.inverse_transform(model.transform(X[:5]))
    assert back.dtype == np.float32
    np.testing.assert_allclose(
        back, model.inverse_transform(model.transform(X[:5])), rtol=1e-5
    )


def test_pca_precision_warns_below_n_features_times_eps():
    """get_precision warns below d * eps times the largest eigenvalue."""
    # One feature's variance about 4 eps times the others' (d = 12): ill-conditioned
    # by the documented threshold, d * eps, though above eps itself.
    rng = np.random.default_rng(0)
    scales = np.r_[np.ones(11), np.sqrt(4 * np.finfo(np.float64).eps)]
    X = rng.normal(size=(300, 12)) * scales
    pca = PCATransformer(svd_solver="full", **CPU).fit(X)
    ratio = pca.explained_variance_.min() / pca.explained_variance_.max()
    assert np.finfo(np.float64).eps < ratio < 12 * np.finfo(np.float64).eps
    with pytest.warns(LinAlgWarning, match="ill-conditioned"):
        pca.get_precision()


def test_pca_rank_deficient_data_give_no_negative_variances():
    """Eigenvalues that round below 0 are 0: finite singular values, no warning."""
    Z = np.random.default_rng(0).standard_normal((100, 3))
    X = np.hstack([Z, Z, Z])  # rank 3 in 9 features
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pca = PCATransformer(svd_solver="covariance_eigh", **CPU).fit(X)
    assert (pca.explained_variance_ >= 0).all()
    assert np.isfinite(pca.singular_values_).all()
    np.testing.assert_allclose(pca.explained_variance_[3:], 0.0, atol=1e-12)


@pytest.mark.parametrize("solver", SOLVERS)
def test_pca_noise_variance_of_fewer_samples_than_features_agrees_across_solvers(
    solver,
):
    """With n < d, every solver averages the n - k discarded variances."""
    X = np.random.default_rng(0).normal(size=(8, 12))
    ours = PCATransformer(3, svd_solver=solver, random_state=0, **CPU).fit(X)
    theirs = PCA(3, svd_solver="full").fit(X)
    assert ours.noise_variance_ == pytest.approx(theirs.noise_variance_, rel=1e-9)


def test_pca_randomized_total_variance_of_float32_data_far_from_the_origin():
    """The randomized total variance of float32 data at 1e5 is exact."""
    X = _data(n=300, d=20, mean=1e5, dtype=np.float32)
    total = np.trace(np.cov(X.astype(np.float64).T))
    pca = PCATransformer(3, svd_solver="randomized", random_state=0, **CPU).fit(X)
    np.testing.assert_allclose(
        pca.explained_variance_ / pca.explained_variance_ratio_, total, rtol=1e-9
    )


def test_pca_each_power_iteration_brings_the_randomized_variances_closer():
    """iterated_power=i runs i power iterations: each one lowers the error."""
    X = _data(n=300, d=60)  # slowly decaying spectrum: 0 iterations are 30 % off
    exact = PCATransformer(3, svd_solver="full", **CPU).fit(X).explained_variance_
    errors = []
    for n_iter in range(4):
        pca = PCATransformer(
            3, svd_solver="randomized", iterated_power=n_iter, random_state=0, **CPU
        ).fit(X)
        errors.append(np.abs(pca.explained_variance_ / exact - 1).max())
    assert errors[0] > 0.1
    assert all(later < earlier for earlier, later in zip(errors, errors[1:]))


def test_pca_randomized_noise_variance_of_data_of_rank_k_is_not_negative():
    """Randomized noise variance of data of rank k is 0, never below."""
    for seed in range(3):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(40, 3)) @ rng.normal(size=(3, 12)) + 5.0  # rank 3
        pca = PCATransformer(3, svd_solver="randomized", random_state=0, **CPU).fit(X)
        assert 0.0 <= pca.noise_variance_ < 1e-12


@pytest.mark.parametrize("solver", ["covariance_eigh", "full"])
def test_pca_noise_variance_of_one_discarded_component(solver):
    """Discarding a single component, noise_variance_ is its variance, as sklearn's."""
    X = _data(n=200, d=6)
    ours = PCATransformer(5, svd_solver=solver, **CPU).fit(X)
    theirs = PCA(5, svd_solver="full").fit(X)
    assert ours.noise_variance_ == pytest.approx(theirs.noise_variance_, rel=1e-9)
    assert ours.noise_variance_ > 0


_READ_ONLY_PROBE = """
import numpy as np
from sk_replearn.classical.pca import PCATransformer
X = np.random.default_rng(0).normal(size=(300, 5)) + 2.0
for dtype in (np.float32, np.float64):
    Xr = X.astype(dtype)
    Xr.flags.writeable = False  # as a joblib memory map is
    pca = PCATransformer(n_components=2, svd_solver="covariance_eigh", device="cpu")
    pca.fit(Xr).transform(Xr)
print("done")
"""


def test_pca_on_read_only_x_emits_no_warning():
    """Fitting and transforming a read-only X (a memory map) warns nothing."""
    # In a fresh process: torch warns about a read-only array once per process.
    out = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-c", _READ_ONLY_PROBE],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and out.stdout.split() == ["done"], out.stderr
