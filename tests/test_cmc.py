"""Contrastive Multiview Coding: the multi-view loss and CMCTransformer."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from _processes import run_ranks
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_replearn import CMCTransformer
from sk_replearn.losses import InfoNCELoss
from sk_replearn.losses.multiview import MultiViewInfoNCELoss, view_pairs
from sk_replearn.nn import MLPEncoder
from sk_replearn.objectives.cmc import MultiViewEncoder
from sk_replearn.views import ImageViews

#: Left and right four pixel columns of a flattened 8×8 image.
_COLS = np.arange(64).reshape(8, 8)
HALVES = [_COLS[:, :4].ravel().tolist(), _COLS[:, 4:].ravel().tolist()]
SMALL = dict(
    encoder_kwargs={"channels": (4, 8)},
    projection_dim=8,
    hidden_dim=16,
    max_epochs=2,
    batch_size=64,
    device="cpu",
    random_state=0,
)


def _cmc(*args, **params):
    return CMCTransformer(*args, **{**SMALL, **params})


# -- the loss ---------------------------------------------------------------------
def _naive_loss(zs, temperature, pairs):
    """The paper's eq. (2), one anchor at a time, in float64 Python."""
    z = [[row / np.linalg.norm(row) for row in v.double().numpy()] for v in zs]
    terms = []
    for a, b in pairs:
        for i in range(len(z[a])):
            sims = [float(z[a][i] @ z[b][j]) / temperature for j in range(len(z[b]))]
            terms.append(-sims[i] + math.log(sum(math.exp(s) for s in sims)))
    return sum(terms) / len(terms)


@pytest.mark.parametrize(
    "graph, core_view, pairs",
    [
        ("full", 0, [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)]),
        ("core", 1, [(1, 0), (0, 1), (1, 2), (2, 1)]),
    ],
)
def test_cmc_loss_equals_a_naive_loop_over_pairs(graph, core_view, pairs):
    g = torch.Generator().manual_seed(0)
    zs = [torch.randn(6, 5, generator=g) for _ in range(3)]
    assert sorted(view_pairs(3, graph, core_view)) == sorted(pairs)
    loss = MultiViewInfoNCELoss(0.3, graph, core_view)(zs)
    assert float(loss) == pytest.approx(_naive_loss(zs, 0.3, pairs), rel=1e-5)


@pytest.mark.parametrize("graph", ["full", "core"])
def test_cmc_loss_with_two_views_is_the_symmetric_infonce(graph):
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g)
    infonce = InfoNCELoss(0.2)
    expected = (infonce(z1, z2) + infonce(z2, z1)) / 2
    got = MultiViewInfoNCELoss(0.2, graph, core_view=1)([z1, z2])
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize(
    "zs, params, match",
    [
        ([torch.ones(4, 3)], {}, "at least 2"),
        ([torch.ones(4, 3)] * 3, {"graph": "core", "core_view": 3}, "core_view=3"),
        ([torch.ones(1, 3)] * 2, {}, "N >= 2"),
        ([torch.ones(4, 3), torch.ones(4, 2)], {}, "views 0 and 1"),
    ],
)
def test_cmc_loss_bad_input_raises(zs, params, match):
    with pytest.raises(ValueError, match=match):
        MultiViewInfoNCELoss(**params)(zs)


# -- views ------------------------------------------------------------------------
_BAD_VIEWS = [
    ({"views": [HALVES[0]]}, "needs at least 2"),
    (
        {"views": [[0, 1, 2], [2, 3]]},
        r"views\[0\] and views\[1\] share the columns \[2\]",
    ),
    ({"views": [[0, 1], [2, 64]]}, "column 64, out of range for X with 64 features"),
    ({"views": [[0, 1], [-65, 2]]}, r"column -65, out of range .* -64 to -1"),
    ({"views": [[0, 0], [2, 3]]}, "lists a column twice"),
    ({"views": [[0.5, 1.0], [2, 3]]}, "must hold column indices"),
    ({"views": [3, [2, 4]]}, r"views\[0\]=3 is not a non-empty group"),
    ({"views": [[True, False], [2]]}, "boolean mask of 2 entries"),
    ({"views": [["a"], ["b"]]}, "X has no column names"),
    ({"graph": "core", "core_view": 2}, "core_view=2 is out of range for 2 views"),
    ({"transform_view": 2}, "transform_view=2 is out of range"),
    ({"view_shapes": [(1, 8, 4)]}, "view_shapes has 1 entries for 2 views"),
    ({"view_shapes": [(1, 8, 3), None]}, r"view_shapes\[0\]=\(1, 8, 3\) does not fit"),
    ({"graph": "ring"}, "graph"),
]


@pytest.mark.parametrize("params, match", _BAD_VIEWS)
def test_cmc_bad_views_raise_a_value_error_naming_the_parameter(
    params, match, small_digits
):
    X, _ = small_digits
    with pytest.raises(ValueError, match=match):
        _cmc(**{"input_shape": (1, 8, 8), **params}).fit(X[:40])


def test_cmc_negative_view_indices_count_from_the_end(small_digits):
    # As numpy's and ColumnTransformer's do; they were refused as out of range.
    X, _ = small_digits
    back = [list(range(-64, -32)), list(range(-32, 0))]
    est = _cmc(input_shape=(1, 8, 8), views=back, random_state=0).fit(X[:40])
    front = [list(range(32)), list(range(32, 64))]
    assert est.views_ == front
    again = _cmc(input_shape=(1, 8, 8), views=front, random_state=0).fit(X[:40])
    np.testing.assert_array_equal(est.transform(X[:40]), again.transform(X[:40]))
    with pytest.raises(ValueError, match=r"views\[0\] and views\[1\] share .*\[0\]"):
        _cmc(input_shape=(1, 8, 8), views=[[0, 1], [-64]]).fit(X[:40])


def test_cmc_auto_views_need_two_features():
    with pytest.raises(ValueError, match=r"X has 1 feature\(s\);"):
        _cmc(encoder="mlp", encoder_kwargs=None).fit(np.ones((10, 1)))


def test_cmc_auto_views_of_one_pixel_wide_images_say_what_is_1_wide():
    # The error said "pass data with at least 2 features" of samples with 7.
    X = np.random.default_rng(0).random((20, 1, 7, 1))
    with pytest.raises(
        ValueError, match=r"shape \(1, 7, 1\) are 1 wide there.*range\(3, 7\)"
    ):
        _cmc().fit(X)
    assert _cmc(views=[range(0, 3), range(3, 7)]).fit(X).transform(X).shape[0] == 20
    # One value a sample: no views= can help, and the error suggested an
    # empty one (views=[range(0, 0), range(0, 1)]).
    with pytest.raises(ValueError, match=r"shape \(1, 1, 1\) hold 1 value; CMC needs"):
        _cmc().fit(X[:, :, :1, :])


def test_cmc_list_of_arrays_rules(small_digits):
    X, _ = small_digits
    arrays = [X[:40, :32], X[:40, 32:]]
    with pytest.raises(ValueError, match="views must be 'auto'"):
        _cmc(views=HALVES).fit(arrays)
    with pytest.raises(ValueError, match="leave input_shape=None"):
        _cmc(input_shape=(1, 8, 8)).fit(arrays)
    with pytest.raises(ValueError, match="same samples"):
        _cmc().fit([X[:40, :32], X[:30, 32:]])
    with pytest.raises(ValueError, match="list of 1 array"):
        _cmc().fit([X[:40]])
    cmc = _cmc(encoder="mlp", encoder_kwargs={"hidden_sizes": (8,)}).fit(arrays)
    assert cmc.views_ == [list(range(32)), list(range(32, 64))]
    with pytest.raises(ValueError, match=r"fitted on views of \[32, 32\] columns"):
        cmc.transform([X[:5, :16], X[:5, 16:]])


@pytest.mark.parametrize(
    "shape, views, expected",
    [
        ((7,), [[0, 1, 2], [3, 4, 5, 6]], [(3,), (4,)]),
        ((1, 8, 8), HALVES, [(1, 8, 4), (1, 8, 4)]),
        ((3, 2, 2), [[0, 1, 2, 3], list(range(4, 12))], [(1, 2, 2), (2, 2, 2)]),
        ((1, 10), [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]], [(1, 5), (1, 5)]),
        # two channels (two sensors, say): a channel each, not the two halves
        # of the length with both channels
        ((2, 4), [[0, 1, 2, 3], [4, 5, 6, 7]], [(1, 4), (1, 4)]),
    ],
)
def test_cmc_auto_views_split_columns_channels_or_width(shape, views, expected):
    X = np.random.default_rng(0).normal(size=(20, math.prod(shape)))
    encoder = "mlp" if len(shape) == 1 else "cnn"
    kwargs = {"hidden_sizes": (4,)} if encoder == "mlp" else {"channels": (2,)}
    input_shape = None if len(shape) == 1 else shape
    cmc = _cmc(encoder=encoder, encoder_kwargs=kwargs, input_shape=input_shape)
    cmc.set_params(max_epochs=1).fit(X)
    assert cmc.views_ == views and cmc.view_shapes_ == expected


def test_cmc_view_shapes_auto_finds_boxes_else_flat(small_digits):
    X, _ = small_digits
    even, odd = _COLS[:, ::2].ravel(), _COLS[:, 1::2].ravel()
    cmc = _cmc(views=[odd, even], input_shape=(1, 8, 8)).fit(X[:40])
    assert cmc.view_shapes_ == [(1, 8, 4), (1, 8, 4)]  # strided columns: a box
    assert cmc.views_[0] == sorted(odd.tolist())
    diagonal, rest = np.eye(8, dtype=bool).ravel(), ~np.eye(8, dtype=bool).ravel()
    cmc = _cmc(views=[diagonal, rest], input_shape=(1, 8, 8), encoder="mlp")
    cmc.set_params(encoder_kwargs={"hidden_sizes": (4,)}).fit(X[:40])
    assert cmc.view_shapes_ == [(8,), (56,)]  # no box: flat vectors, MLPs
    assert all(isinstance(e, MLPEncoder) for e in cmc.net_.module_.backbone.encoders)


def test_cmc_views_by_dataframe_column_names():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(30, 4)), columns=["a", "b", "c", "d"])
    cmc = _cmc(views=[["c", "a"], ["d"]], encoder="mlp")
    cmc.set_params(encoder_kwargs={"hidden_sizes": (4,)}).fit(df)
    assert cmc.views_ == [[0, 2], [3]]


# -- the estimator ----------------------------------------------------------------
def test_cmc_random_state_makes_training_repeatable(small_digits):
    X, _ = small_digits
    params = dict(views=HALVES, input_shape=(1, 8, 8))
    a = _cmc(**params).fit(X).transform(X)
    b = _cmc(**params).fit(X).transform(X)
    c = _cmc(**params, random_state=1).fit(X).transform(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_cmc_transform_shapes_and_feature_names(small_digits):
    X, _ = small_digits
    cmc = _cmc(5, views=HALVES, input_shape=(1, 8, 8)).fit(X[:100])
    Z = cmc.transform(X[:30])
    assert Z.shape == (30, 10) and Z.dtype == np.float32 and cmc.n_components_ == 10
    names = cmc.get_feature_names_out()
    assert names[0] == "cmctransformer_view0_0" and names[9] == "cmctransformer_view1_4"
    # One view's encoding: the second half of the concatenation, no refit.
    cmc.set_params(transform_view=1)
    np.testing.assert_array_equal(cmc.transform(X[:30]), Z[:, 5:])
    assert cmc.get_feature_names_out().tolist() == [
        f"cmctransformer_view1_{j}" for j in range(5)
    ]
    # The fine-tuners' copy of the encoder gives what transform gives.
    encoder = cmc._transfer_encoder()
    with torch.no_grad():
        copied = encoder(torch.from_numpy(X[:30]).view(-1, 1, 8, 8)).numpy()
    np.testing.assert_allclose(copied, Z[:, 5:], rtol=1e-5, atol=1e-6)
    cmc.set_params(transform_view=2)
    with pytest.raises(ValueError, match="transform_view=2 is out of range"):
        cmc.transform(X[:5])


def test_cmc_exported_encoder_keeps_a_dynamic_batch_size(small_digits):
    # The views are split with a symbolic batch size, so torch.export
    # does not pin the batch to the example's.
    X, _ = small_digits
    cmc = _cmc(5, views=HALVES, input_shape=(1, 8, 8)).fit(X[:100])
    encoder = cmc.export_encoder()
    batch = torch.export.Dim("batch", min=1)
    example = torch.from_numpy(X[:4]).view(-1, 1, 8, 8)
    program = torch.export.export(encoder, (example,), dynamic_shapes=({0: batch},))
    for n in (1, 7):
        x = torch.from_numpy(X[:n]).view(-1, 1, 8, 8)
        with torch.no_grad():
            got = program.module()(x).numpy()
        np.testing.assert_allclose(got, cmc.transform(X[:n]), rtol=1e-5, atol=1e-6)


def test_cmc_list_of_arrays_equals_the_joined_columns(small_digits):
    X, _ = small_digits
    images = X.reshape(-1, 1, 8, 8)
    halves = [images[..., :4], images[..., 4:]]
    listed = _cmc().fit(halves)
    assert listed.view_shapes_ == [(1, 8, 4), (1, 8, 4)]
    joined = np.hstack([h.reshape(len(X), -1) for h in halves])
    flat = _cmc(views=listed.views_, view_shapes=listed.view_shapes_).fit(joined)
    np.testing.assert_array_equal(listed.transform(halves), flat.transform(joined))
    np.testing.assert_array_equal(listed.transform(joined), flat.transform(joined))
    assert listed.score(halves) == flat.score(joined)


def test_cmc_augmentation_and_many_views_in_a_grid_search(small_digits):
    X, y = small_digits
    thirds = [_COLS[:, :3].ravel(), _COLS[:, 3:6].ravel(), _COLS[:, 6:].ravel()]
    rep = _cmc(views=thirds, input_shape=(1, 8, 8), max_epochs=1)
    pipe = Pipeline([("rep", rep), ("clf", LogisticRegression(max_iter=300))])
    grid = GridSearchCV(
        pipe,
        {
            "rep__graph": ["full", "core"],
            "rep__augmentation": [None, ImageViews(crop_scale=None, noise_std=0.1)],
        },
        cv=2,
    ).fit(X[:120], y[:120])
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    best = grid.best_estimator_.named_steps["rep"]
    assert best.view_shapes_ == [(1, 8, 3), (1, 8, 3), (1, 8, 2)]
    assert best.transform(X[:4]).shape == (4, 3 * 32)  # 8 channels x 2 x 2


def test_cmc_trains_on_the_views_of_the_standardised_input():
    # Each view in training is its columns of X standardised by the fit's
    # mean and standard deviation, as transform reads them; views drawn from
    # the raw columns were caught only by the learning test below.
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(60, 6)) * np.arange(1, 7) + 100).astype(np.float32)
    views = [[4, 0, 2], [1, 5, 3]]
    est = _cmc(views=views, encoder="mlp", encoder_kwargs=None, max_epochs=1)
    obj = est.set_params(random_state=0).fit(X).net_.module_
    standard = (X - X.mean(0)) / X.std(0, ddof=1)
    with torch.no_grad():
        drawn = obj.draw_views(torch.from_numpy(X))
    for got, cols in zip(drawn, est.views_):
        np.testing.assert_allclose(got.numpy(), standard[:, cols], rtol=0, atol=1e-5)


def test_cmc_learns_a_better_representation_than_random_init(digits_split):
    """A few epochs of CMC on the halves of digits beat the same encoders untrained.

    The untrained encoders get the same passes at ``lr=0``, so that their
    batch-norm statistics fit the data as well.
    """
    X_train, X_test, y_train, y_test = digits_split
    scores = {}
    for name, lr in [("trained", 3e-3), ("untrained", 0)]:
        rep = _cmc(
            16, views=HALVES, input_shape=(1, 8, 8), temperature=0.5, max_epochs=8
        ).set_params(lr=lr, encoder_kwargs={"channels": (8, 16)})
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        probe.fit(rep.fit_transform(X_train), y_train)
        scores[name] = probe.score(rep.transform(X_test), y_test)
    assert scores["trained"] > scores["untrained"] + 0.02, scores


# -- distributed: negatives from every process ---------------------------------------
def _rank(rank: int, world: int, out) -> None:
    """One gloo process: the loss and its gradients on this rank's rows."""
    zs, n = _embeddings(), 8 // world
    res = {}
    for graph in ("full", "core"):
        mine = [z[rank * n : (rank + 1) * n].clone().requires_grad_() for z in zs]
        loss = MultiViewInfoNCELoss(0.5, graph, core_view=2)(mine)
        loss.backward()
        res[graph] = (loss.detach(), [z.grad for z in mine])
    torch.save(res, out / f"rank{rank}.pt")


def _embeddings() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(8, 5, generator=g) for _ in range(3)]


def test_cmc_loss_on_two_gloo_processes_equals_one_process(tmp_path):
    """Two processes on halves of a batch: the loss and gradients of the whole.

    As tests/test_distributed.py does for NT-Xent, with two processes forked
    from this one (they start with the package imported).
    """
    world = 2
    run_ranks(_rank, tmp_path, world)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(world)]
    zs = [z.requires_grad_() for z in _embeddings()]
    for graph in ("full", "core"):
        loss = MultiViewInfoNCELoss(0.5, graph, core_view=2)(zs)
        grads = torch.autograd.grad(loss, zs)
        mean = torch.stack([r[graph][0] for r in ranks]).mean()
        torch.testing.assert_close(mean, loss.detach(), rtol=1e-6, atol=1e-6)
        for v in range(3):
            # The gather's backward sums every rank's gradient into each
            # rank's rows; one process's loss is the mean of the ranks'.
            rows = torch.cat([r[graph][1][v] for r in ranks]) / world
            torch.testing.assert_close(rows, grads[v], rtol=1e-5, atol=1e-7)


def test_transform_view_set_after_fit_moves_n_components_and_warm_starts(
    small_digits,
):
    X = small_digits[0][:64]
    cmc = _cmc(
        input_shape=(1, 8, 8), transform_view=1, warm_start=True, max_epochs=1
    ).fit(X)
    width = cmc.transform(X[:2]).shape[1]
    assert cmc.n_components_ == width
    cmc.set_params(transform_view=None)
    assert cmc.n_components_ == cmc.transform(X[:2]).shape[1] == 2 * width
    cmc.fit(X)  # transform_view needs no refit: a warm start takes it


def test_a_bad_augmentation_is_named_augmentation_not_views():
    # views are CMC's column groups: the error sent users to the wrong one.
    X = np.random.default_rng(0).normal(size=(32, 8)).astype(np.float32)
    with pytest.raises(ValueError, match=r"augmentation=ImageViews\(\) augments"):
        _cmc(encoder="mlp", encoder_kwargs=None, augmentation=ImageViews()).fit(X)


# -- what reaches the loss ---------------------------------------------------------
_THIRDS = [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
_MLP = dict(encoder="mlp", encoder_kwargs={"hidden_sizes": (4,)}, max_epochs=1)


def _table(n=40, d=9):
    return np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)


def test_cmc_loss_is_the_papers_formula_of_each_views_networks():
    """The objective's loss on a batch: eq. (2) over the graph's pairs of views.

    Each view is its standardised columns through its own encoder and its own
    head (of ``projection_dim`` outputs), with the user's temperature, graph
    and core view; computed here by hand from those sub-networks.
    """
    X = _table()
    est = _cmc(
        views=_THIRDS,
        graph="core",
        core_view=2,
        temperature=0.3,
        projection_dim=6,
        hidden_dim=5,
        **_MLP,
    ).fit(X)
    obj = est.net_.module_.eval()
    x = torch.from_numpy(X[:8])
    standard = (X[:8] - X.mean(0)) / X.std(0, ddof=1)
    with torch.no_grad():
        loss = float(obj.loss(obj(x), x))
        by_hand = [
            obj.projectors[v](
                obj.backbone.encoders[v](torch.from_numpy(standard[:, c]))
            )
            for v, c in enumerate(_THIRDS)
        ]
    assert all(z.shape == (8, 6) for z in by_hand)
    pairs = [(2, 0), (0, 2), (2, 1), (1, 2)]
    assert loss == pytest.approx(_naive_loss(by_hand, 0.3, pairs), rel=1e-4)


def test_cmc_full_graph_ignores_core_view():
    # core_view only names the core of graph="core"; with every pair
    # contrasted, an index past the views is no error.
    est = _cmc(graph="full", core_view=5, **_MLP).fit(_table(d=4))
    assert est.transform(_table(5, 4)).shape == (5, 8)


def _negate(views):
    return -views


def test_cmc_augmentation_is_applied_to_each_standardised_view():
    X = _table()
    est = _cmc(views=_THIRDS, augmentation=_negate, **_MLP).fit(X)
    standard = (X - X.mean(0)) / X.std(0, ddof=1)
    with torch.no_grad():
        drawn = est.net_.module_.draw_views(torch.from_numpy(X))
    for got, cols in zip(drawn, _THIRDS):
        np.testing.assert_allclose(got.numpy(), -standard[:, cols], atol=1e-5)


def test_cmc_auto_augmentation_fits_each_views_own_shape(small_digits):
    # An image view and a flat one: each gets the family of its own shape.
    X, _ = small_digits
    left = _COLS[:, :4].ravel().tolist()
    right = _COLS[:, 4:].ravel().tolist()[1:]  # no box: a flat vector
    est = _cmc(views=[left, right], input_shape=(1, 8, 8), augmentation="auto")
    est.set_params(encoder_kwargs=None, max_epochs=1).fit(X[:40])
    assert est.view_shapes_ == [(1, 8, 4), (31,)]
    assert np.isfinite(est.loss_curve_).all() and np.isfinite(est.score(X[:40]))


def test_cmc_augmentation_object_is_copied_at_fit(small_digits):
    # Changing the object passed in after fit leaves the fitted model (its
    # score, whose views use the augmentation) as it was fitted.
    X, _ = small_digits
    aug = ImageViews(crop_scale=None, noise_std=0.1)
    est = _cmc(views=HALVES, input_shape=(1, 8, 8), augmentation=aug, max_epochs=1)
    before = est.fit(X[:40]).score(X[:40])
    aug.set_params(noise_std=3.0)
    assert est.score(X[:40]) == before


def test_multiview_encoder_takes_each_views_values_in_the_given_order():
    # View v is x.flatten(1)[:, views[v]], in the order views[v] lists them.
    enc = MultiViewEncoder(
        [MLPEncoder((3,), hidden_sizes=(2,)), MLPEncoder((3,), hidden_sizes=(2,))],
        views=[[4, 0, 2], [1, 5, 3]],
        view_shapes=[(3,), (3,)],
    )
    x = torch.arange(12.0).reshape(2, 6)
    first, second = enc.split(x)
    torch.testing.assert_close(first, x[:, [4, 0, 2]])
    torch.testing.assert_close(second, x[:, [1, 5, 3]])


def test_cmc_loss_checks_its_graph_when_built():
    with pytest.raises(ValueError, match=r"graph='ring' is not one of"):
        MultiViewInfoNCELoss(0.1, graph="ring")


# -- errors that name what is wrong ------------------------------------------------
def test_cmc_one_view_is_refused_as_a_views_error(small_digits):
    X, _ = small_digits
    with pytest.raises(ValueError, match=r"views holds 1 group\(s\) of columns"):
        _cmc(views=[HALVES[0]], input_shape=(1, 8, 8)).fit(X[:40])


def test_cmc_overlapping_views_error_names_both_views():
    with pytest.raises(
        ValueError, match=r"views\[0\] and views\[2\] share the columns \[1\]"
    ):
        _cmc(views=[[0, 1], [2, 3], [1, 4]], **_MLP).fit(_table(d=6))


def test_cmc_list_of_wrong_arrays_error_names_the_fitted_columns():
    X = _table(d=6)
    cmc = _cmc(**_MLP).fit([X[:, :2], X[:, 2:]])
    with pytest.raises(
        ValueError, match=r"\[2, 4\] columns at columns 0\.\.1, 2\.\.5;"
    ):
        cmc.transform([X[:, :3], X[:, 3:]])


def test_cmc_early_stopping_leaves_a_validation_batch_the_loss_can_score(
    small_digits,
):
    # One validation sample has no negatives: refused before training, not
    # in the validation step after an epoch.
    X, _ = small_digits
    est = _cmc(views=HALVES, input_shape=(1, 8, 8), early_stopping=True)
    with pytest.raises(ValueError, match=r"validation_fraction=0.1 leaves 1 valid"):
        est.fit(X[:12])
    est.set_params(validation_fraction=0.2).fit(X[:12])


def test_cmc_views_as_lists_or_1d_arrays_are_read_as_rows_with_a_warning():
    # A list's items are samples, as scikit-learn reads a list; per-view data
    # given as nested lists or 1-D arrays would be 2 samples: said, with the fix.
    X = _table(d=6)
    for views in ([X[:, :3].tolist(), X[:, 3:].tolist()], [X[:, 0], X[:, 1]]):
        with (
            warnings.catch_warnings(),
            pytest.warns(UserWarning, match=r"read as 2 samples of one X.*np\.asarray"),
        ):
            # (the nested lists are also samples of 40 channels by 3 steps)
            warnings.filterwarnings("ignore", "X's samples have shape")
            _cmc(**_MLP).fit(views)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")  # once a fit, not again at its end
        _cmc(**_MLP).fit([X[:, 0], X[:, 1]])
    assert sum("read as 2 samples" in str(w.message) for w in seen) == 1
    as_arrays = _cmc(**_MLP).fit([X[:, :3], X[:, 3:4]])  # a column as (n, 1)
    assert as_arrays.views_ == [[0, 1, 2], [3]] and as_arrays.n_features_in_ == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _cmc(**_MLP).fit(X.tolist())  # rows of one X, as lists or arrays
        _cmc(**_MLP).fit(list(X))


def test_cmc_list_mixing_views_and_a_1d_array_is_refused_by_name():
    X = _table(d=6)
    with pytest.raises(ValueError, match=r"\(X\[1\]\).*\(n_samples, 1\) array"):
        _cmc(**_MLP).fit([X[:, :3], X[:, 3]])


def test_cmc_hidden_dim_is_the_hidden_width_of_every_views_head():
    """hidden_dim sets the hidden layer of each view's projection head."""
    est = _cmc(views=_THIRDS, hidden_dim=5, projection_dim=6, **_MLP).fit(_table())
    for head in est.net_.module_.projectors:
        linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
        assert [(m.in_features, m.out_features) for m in linears] == [(4, 5), (5, 6)]


def test_cmc_an_encoder_that_cannot_read_a_view_is_named_by_its_view():
    """An encoder that cannot be built for one view's shape names that view."""
    X = np.random.default_rng(0).normal(size=(16, 12)).astype(np.float32)
    views = [list(range(8)), list(range(8, 12))]
    with pytest.raises(ValueError, match=r"^The encoder of view 1 \(shape \(4,\)\): "):
        _cmc(
            views=views, view_shapes=[(1, 8), (4,)], encoder="resnet", max_epochs=1
        ).fit(X)


def test_an_augmentation_class_is_named_augmentation_not_views():
    """A views class passed as augmentation is a TypeError naming augmentation=."""
    X = np.random.default_rng(0).normal(size=(32, 8)).astype(np.float32)
    with pytest.raises(TypeError, match=r"^augmentation=ImageViews is a class"):
        _cmc(encoder="mlp", encoder_kwargs=None, augmentation=ImageViews).fit(X)


# -- the graph of views, and what the loss refuses -------------------------------
@pytest.mark.parametrize(
    "args, match",
    [
        ((3, "ring"), r"graph='ring' is not one of \['full', 'core'\]"),
        ((3, "core", -1), r"core_view=-1 is out of range for 3 views"),
        ((3, "core", 3), r"core_view=3 is out of range for 3 views"),
    ],
)
def test_view_pairs_refuses_an_unknown_graph_or_a_core_view_out_of_range(args, match):
    """view_pairs names a graph it does not know, or a core view not in [0, V)."""
    with pytest.raises(ValueError, match=match):
        view_pairs(*args)


def test_cmc_loss_refuses_a_negative_core_view():
    """A negative core_view is refused, not read from the end (view 2 with itself)."""
    zs = [torch.randn(4, 3) for _ in range(3)]
    with pytest.raises(ValueError, match=r"core_view=-1 is out of range"):
        MultiViewInfoNCELoss(0.5, graph="core", core_view=-1)(zs)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: view_pairs(2.7), r"n_views=2.7 must be an int"),
        (lambda: view_pairs(3, "core", 1.5), r"core_view=1.5 must be an int"),
        (lambda: view_pairs(3, "core", True), r"core_view=True must be an int"),
        (lambda: MultiViewInfoNCELoss(core_view=1.5), r"core_view=1.5 is out of"),
        (lambda: MultiViewInfoNCELoss(core_view=-1), r"core_view=-1 is out of"),
    ],
)
def test_view_counts_and_indices_that_are_no_ints_are_refused_not_rounded(call, match):
    """2.7 views or core view 1.5 are refused by name, not rounded down; the
    loss refuses a core view it can never use when it is built."""
    with pytest.raises(ValueError, match=match):
        call()


def test_view_pairs_takes_numpy_ints():
    """A core view and a count of views from numpy (a grid's values) are ints."""
    assert view_pairs(np.int64(3), "core", np.int64(1)) == view_pairs(3, "core", 1)


def test_cmc_loss_of_one_sample_names_the_multiview_loss():
    """A batch of one sample is refused by MultiViewInfoNCELoss itself, by name."""
    with pytest.raises(ValueError, match=r"^MultiViewInfoNCELoss uses .* got N=1\."):
        MultiViewInfoNCELoss(0.5)([torch.ones(1, 3)] * 3)


def _eval_rank(rank: int, world: int, out) -> None:
    """One gloo process: the evaluated (eval()) loss of this rank's rows."""
    n = 8 // world
    mine = [z[rank * n : (rank + 1) * n] for z in _embeddings()]
    loss = MultiViewInfoNCELoss(0.5, "core", core_view=2).eval()(mine)
    torch.save(loss, out / f"rank{rank}.pt")


def test_cmc_loss_in_eval_mode_under_gloo_scores_each_process_own_rows(tmp_path):
    """Out of training, each process's loss takes its own rows' negatives only."""
    world = 2
    run_ranks(_eval_rank, tmp_path, world)
    n = 8 // world
    for r in range(world):
        rows = [z[r * n : (r + 1) * n] for z in _embeddings()]
        expected = MultiViewInfoNCELoss(0.5, "core", core_view=2)(rows)
        got = torch.load(tmp_path / f"rank{r}.pt")
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)


# -- more views= and X layouts ---------------------------------------------------
def test_cmc_overlapping_views_error_names_the_view_that_took_the_column_first():
    """The overlap error names the two views that share the column."""
    with pytest.raises(
        ValueError, match=r"views\[1\] and views\[2\] share the columns \[2\]"
    ):
        _cmc(views=[[0], [1, 2], [2, 3]], **_MLP).fit(_table(d=6))


@pytest.mark.parametrize("empty", [[], np.array([], dtype=int)])
def test_cmc_an_empty_view_is_refused_by_its_index(empty):
    """An empty group of columns is refused as such, naming the view."""
    with pytest.raises(ValueError, match=r"views\[0\]=.* is not a non-empty group"):
        _cmc(views=[empty, [0, 1]], **_MLP).fit(_table(d=6))


def test_cmc_views_by_dataframe_column_index_slices():
    """views may be slices of df.columns (an object Index of names)."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(30, 4)), columns=["a", "b", "c", "d"])
    cmc = _cmc(views=[df.columns[[2, 0]], df.columns[3:]], **_MLP).fit(df)
    assert cmc.views_ == [[0, 2], [3]]


def test_cmc_views_naming_columns_x_does_not_have_are_refused_by_name():
    """Unknown column names are a ValueError listing them and X's columns."""
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(_table(30, 4), columns=["a", "b", "c", "d"])
    with pytest.raises(
        ValueError, match=r"views\[0\] names columns \['z'\] that X does not have"
    ):
        _cmc(views=[["a", "z"], ["b"]], **_MLP).fit(df)


def test_cmc_an_empty_list_is_refused_as_an_empty_x_not_as_one_view():
    """fit([]) is scikit-learn's error for an X of no rows, not 'list of 1 array'."""
    with pytest.raises(ValueError, match="Expected 2D array"):
        _cmc(**_MLP).fit([])


def test_cmc_rows_read_as_a_list_are_warned_of_in_fit_only():
    """The list-read-as-rows warning comes at fit, not again at transform."""
    X = _table(d=6)
    rows = [X[:, 0], X[:, 1]]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "X's samples have shape")
        with pytest.warns(UserWarning, match="read as 2 samples of one X"):
            cmc = _cmc(**_MLP).fit(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cmc.transform(rows).shape[0] == 2


def test_cmc_views_as_tuples_of_tuples_are_read_as_rows_with_a_warning():
    """Per-view data as tuples of row tuples is warned of as lists of rows are."""
    X = _table(d=6)
    views = [tuple(map(tuple, X[:, :3])), tuple(map(tuple, X[:, 3:]))]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "X's samples have shape")
        with pytest.warns(UserWarning, match=r"read as 2 samples of one X"):
            _cmc(**_MLP).fit(views)


def test_cmc_a_square_list_of_rows_is_not_warned_of():
    """A list of as many 1-D rows as values each is read as rows, with no warning."""
    X = _table(n=6, d=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _cmc(**_MLP).fit(list(X)).n_features_in_ == 6
