"""ContextEncoderTransformer, its objective and its masks."""

import numpy as np
import pytest
import torch
from test_mae import _signals  # noisy sines, (n, 1, 40)

from sk_replearn import ContextEncoderTransformer
from sk_replearn.objectives.context import (
    ContextEncoderObjective,
    context_mask,
    resolve_block_size,
)

IMAGE = dict(n_components=16, input_shape=(1, 8, 8), max_epochs=2, random_state=0)
SHAPES = [(1, 28, 28), (3, 12, 10), (2, 40)]

# The scikit-learn common checks, persistence, fuzzing and checkpoint tests
# run on the row of tests/_instances.py (a table, MLP encoder and decoder).


@pytest.mark.parametrize("context_weight", [0.0, 0.3])
def test_context_encoder_loss_is_the_squared_error_on_the_hidden_region(
    context_weight,
):
    obj = ContextEncoderObjective(
        (2, 6, 5), n_components=4, mask="regions", context_weight=context_weight
    )
    obj.set_input_scale(torch.randn(50, 2, 6, 5) * 3 + 1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 6, 5, generator=g)
    pred = torch.randn(3, 2, 6, 5, generator=g)
    mask = context_mask(3, (2, 6, 5), "regions", 0.4, 2, generator=g)
    xn = ((x - obj.input_shift) / obj.input_scale).tolist()
    hidden_sum = hidden_n = visible_sum = visible_n = 0.0
    for i in range(3):
        for c in range(2):
            for h in range(6):
                for w in range(5):
                    sq = (pred[i, c, h, w].item() - xn[i][c][h][w]) ** 2
                    if mask[i, 0, h, w] == 1:
                        hidden_sum, hidden_n = hidden_sum + sq, hidden_n + 1
                    else:
                        visible_sum, visible_n = visible_sum + sq, visible_n + 1
    expected = hidden_sum / hidden_n + context_weight * visible_sum / visible_n
    got = obj.forward_loss(x, pred, mask).item()
    assert got == pytest.approx(expected, rel=1e-5)


def test_context_encoder_loss_is_finite_when_nothing_is_visible():
    obj = ContextEncoderObjective((1, 4, 4), n_components=2, context_weight=0.5)
    x = torch.randn(2, 1, 4, 4)
    loss = obj.forward_loss(x, torch.zeros_like(x), torch.ones(2, 1, 4, 4))
    assert loss.item() == pytest.approx(obj.normalize(x).pow(2).mean().item())


def test_context_encoder_encoder_sees_the_hidden_region_at_the_mean():
    obj = ContextEncoderObjective((1, 8, 8), n_components=4, mask="center")
    obj.eval()
    x = torch.randn(2, 1, 8, 8)
    code, mask = obj.forward_encoder(x)
    blanked = obj.normalize(x) * (1 - mask)
    assert torch.allclose(code, obj.bottleneck(obj.backbone(blanked)))
    assert not torch.allclose(code, obj.encode(x))  # encode sees everything


@pytest.mark.parametrize("shape", SHAPES)
def test_context_encoder_center_mask_is_the_central_block(shape):
    mask = context_mask(4, shape, "center", 0.25)
    assert mask.shape == (4, 1, *shape[1:])
    assert torch.equal(mask[0], mask[3])  # the same for every sample
    hidden = mask[0, 0].nonzero()
    lo, hi = hidden.min(0).values, hidden.max(0).values
    for axis, size in enumerate(shape[1:]):
        # one box, centred: as many rows or columns before it as after it
        assert abs(lo[axis].item() - (size - 1 - hi[axis].item())) <= 1
    box = torch.prod(hi - lo + 1).item()
    assert box == mask[0].sum().item()  # one solid box
    assert mask.mean().item() == pytest.approx(0.25, abs=0.03)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("ratio", [0.1, 0.4])
def test_context_encoder_random_masks_hide_the_requested_fraction(shape, ratio):
    g = torch.Generator().manual_seed(0)
    area = np.prod(shape[1:])
    block = resolve_block_size("auto", shape)
    regions = context_mask(8, shape, "regions", ratio, generator=g)
    assert regions.shape == (8, 1, *shape[1:])
    np.testing.assert_array_equal(
        regions.flatten(1).sum(1).numpy(), np.full(8, round(ratio * area))
    )
    blocks = context_mask(8, shape, "blocks", ratio, generator=g)
    n_hidden = blocks.flatten(1).sum(1).numpy()
    # at least the fraction, overshooting by less than one more block
    assert np.all(n_hidden >= round(ratio * area))
    assert np.all(n_hidden < round(ratio * area) + block ** (len(shape) - 1))
    # random: samples differ
    assert not torch.equal(regions[0], regions[1])
    assert not torch.equal(blocks[0], blocks[1])


def test_context_encoder_table_masks_hide_random_features():
    g = torch.Generator().manual_seed(0)
    mask = context_mask(50, (10,), "regions", 0.3, generator=g)
    assert mask.shape == (50, 10)
    np.testing.assert_array_equal(mask.sum(1).numpy(), np.full(50, 3))
    assert (mask.mean(0) > 0).all()  # every feature gets hidden sometimes


@pytest.mark.parametrize("kind", ["blocks", "regions"])
def test_context_encoder_masks_are_deterministic_under_a_seed(kind):
    def draw(seed):
        g = torch.Generator().manual_seed(seed)
        return context_mask(6, (1, 28, 28), kind, 0.25, generator=g)

    assert torch.equal(draw(0), draw(0))
    assert not torch.equal(draw(0), draw(1))


def test_context_encoder_reconstruct_uses_the_estimators_seeded_masks(small_digits):
    X, _ = small_digits
    ce = ContextEncoderTransformer(**IMAGE).fit(X)
    filled, mask = ce.reconstruct(X[:20], return_mask=True)
    again, mask_again = ce.reconstruct(X[:20], return_mask=True)
    np.testing.assert_array_equal(mask, mask_again)
    np.testing.assert_array_equal(filled, again)
    other = ce.set_params(random_state=1).reconstruct(X[:20], return_mask=True)[1]
    assert not np.array_equal(mask, other)
    # "no" is truthy: a flag that is not a bool is refused, as MAE's is.
    with pytest.raises(TypeError, match="return_mask='no' must be True or False"):
        ce.reconstruct(X[:2], return_mask="no")


def test_context_encoder_fit_is_repeatable(small_digits):
    X, _ = small_digits
    # to the bit on the CPU; CUDA's kernels (cuDNN's convolutions) may add in
    # another order each run (docs/design.rst, Reproducibility)
    a = ContextEncoderTransformer(**IMAGE, device="cpu").fit(X).transform(X)
    b = ContextEncoderTransformer(**IMAGE, device="cpu").fit(X).transform(X)
    np.testing.assert_array_equal(a, b)
    # and random_state is read: another seed, another fit
    other = {**IMAGE, "random_state": 1}
    c = ContextEncoderTransformer(**other, device="cpu").fit(X).transform(X)
    assert not np.allclose(c, a)


def test_context_encoder_learns_to_fill_in_better_than_the_mean(digits_split):
    """Held-out squared error on the hidden block, against the pixel means."""
    X_train, X_test, _, _ = digits_split
    X_train, X_test = X_train.astype(np.float32), X_test.astype(np.float32)
    ce = ContextEncoderTransformer(
        32, mask="center", input_shape=(1, 8, 8), max_epochs=10, random_state=0
    ).fit(X_train)
    filled, mask = ce.reconstruct(X_test, return_mask=True)
    error = ((filled - X_test) ** 2 * mask).sum() / mask.sum()
    mean_fill = np.where(mask > 0, X_train.mean(0), X_test)
    baseline = ((mean_fill - X_test) ** 2 * mask).sum() / mask.sum()
    assert error < 0.6 * baseline, (error, baseline)
    assert ce.score(X_test) == pytest.approx(-error, rel=1e-4)  # center: same mask
    assert ce.loss_curve_[-1] < 0.7 * ce.loss_curve_[0]


def test_context_encoder_shapes_of_transform_and_reconstruct(small_digits):
    X, _ = small_digits
    ce = ContextEncoderTransformer(**IMAGE).fit(X)
    Z = ce.transform(X)
    assert Z.shape == (len(X), 16) == (len(X), ce.n_components_)
    assert Z.dtype == np.float32
    assert ce.block_size_ == 2
    filled, mask = ce.reconstruct(X[:5], return_mask=True)
    assert filled.shape == mask.shape == (5, 64)
    assert set(np.unique(mask)) == {0.0, 1.0}
    np.testing.assert_array_equal(filled[mask == 0], X[:5][mask == 0])
    X4 = X.reshape(-1, 1, 8, 8)
    assert ce.reconstruct(X4[:5]).shape == (5, 1, 8, 8)
    np.testing.assert_allclose(ce.transform(X4), Z, rtol=1e-6)


def test_context_encoder_on_signals():
    X = _signals()
    ce = ContextEncoderTransformer(
        8, mask="blocks", max_epochs=2, batch_size=32, random_state=0
    ).fit(X)
    assert ce.input_shape_ == (1, 40) and ce.block_size_ == 10
    assert ce.transform(X).shape == (len(X), 8)
    filled, mask = ce.reconstruct(X[:4], return_mask=True)
    assert filled.shape == mask.shape == (4, 1, 40)
    assert np.all(mask.mean(axis=(1, 2)) >= 0.4)
    centre = ContextEncoderTransformer(8, mask="center", max_epochs=1, random_state=0)
    mask = centre.fit(X).reconstruct(X[:1], return_mask=True)[1][0, 0]
    np.testing.assert_array_equal(np.flatnonzero(mask), np.arange(12, 28))


def test_context_encoder_on_a_table(small_digits):
    X, _ = small_digits
    ce = ContextEncoderTransformer(4, max_epochs=1, random_state=0).fit(X)
    assert ce.input_shape_ == (64,)
    filled, mask = ce.reconstruct(X[:5], return_mask=True)
    np.testing.assert_array_equal(mask.sum(1), np.full(5, round(0.4 * 64)))
    assert filled.shape == (5, 64)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"mask_ratio": 1.5}, "mask_ratio"),
        ({"mask_ratio": 0.0}, "mask_ratio"),
        ({"mask": "middle"}, "'mask' parameter"),
        ({"block_size": 8}, "block_size=8 is not smaller"),
        ({"mask": "center", "mask_ratio": 0.99}, "mask_ratio=0.99 makes the central"),
        ({"block_size": 0}, "'block_size' parameter"),
        ({"context_weight": -0.1}, "'context_weight' parameter"),
    ],
)
def test_context_encoder_bad_parameters_raise_naming_them(small_digits, params, match):
    X, _ = small_digits
    ce = ContextEncoderTransformer(**{**IMAGE, **params})
    with pytest.raises(ValueError, match=match):
        ce.fit(X)


def test_context_encoder_one_feature_is_refused():
    X = np.arange(20, dtype=np.float32).reshape(-1, 1)
    with pytest.raises(ValueError, match="at least 2; got 1 feature"):
        ContextEncoderTransformer(2, max_epochs=1).fit(X)


def test_images_with_a_side_of_one_are_told_to_be_signals():
    X = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    with pytest.raises(ValueError, match=r"side of 1.*signals are \(C, L\)"):
        ContextEncoderTransformer(max_epochs=1).fit(X.reshape(40, 1, 1, 8))
    ContextEncoderTransformer(max_epochs=1).fit(X.reshape(40, 1, 8))  # a signal


@pytest.mark.parametrize("mask_ratio", [0.4, 0.01])
def test_center_mask_on_one_value_a_channel_says_to_pass_rows(mask_ratio):
    # It said "lower mask_ratio", which no ratio satisfies on length 1.
    X = np.random.default_rng(0).normal(size=(40, 2, 1)).astype(np.float32)
    ce = ContextEncoderTransformer(mask="center", mask_ratio=mask_ratio, max_epochs=1)
    with pytest.raises(ValueError, match=r"one value a channel.*at any mask_ratio"):
        ce.fit(X)
    assert ce.fit(X.reshape(40, -1)).transform(X.reshape(40, -1)).shape[0] == 40


def test_center_mask_ignores_block_size_as_documented(small_digits):
    # "Ignored by 'center'", yet a block_size as large as the image raised.
    X, _ = small_digits
    ce = ContextEncoderTransformer(
        4,
        mask="center",
        block_size=8,
        input_shape=(1, 8, 8),
        max_epochs=1,
        random_state=0,
    ).fit(X[:64])
    assert ce.block_size_ == 2  # "auto"'s value: center draws no blocks
    with pytest.raises(ValueError, match="block_size"):
        ce.set_params(mask="blocks").fit(X[:64])


@pytest.mark.parametrize("name", ["context", "mae"])
def test_validation_loss_draws_the_same_masks_every_epoch(small_digits, name):
    # The masks of the validation pass were drawn afresh at each epoch: at
    # lr=0 (nothing learns; no batch norm to move) the validation loss moved
    # by 3% with the draws, and early stopping kept the luckiest epoch.
    from sk_replearn import MAETransformer

    X, _ = small_digits
    common = {"lr": 0.0, "early_stopping": True, "max_epochs": 4, "random_state": 0}
    if name == "context":
        est = ContextEncoderTransformer(8, encoder="mlp", **common)
    else:
        est = MAETransformer(input_shape=(1, 8, 8), patch_size=4, **common)
    valid = est.fit(X).history_[:, "valid_loss"]
    assert len(set(valid)) == 1, valid


def test_score_is_the_mean_over_all_hidden_values(small_digits):
    # "blocks" hides more values in some samples than in others: the score
    # averaged each sample's mean, where its docstring promises the mean
    # over the hidden values.
    from sk_replearn.methods.context import _SCORE_SEED
    from sk_replearn.objectives.masked import KeyedNoise

    X, _ = small_digits
    ce = ContextEncoderTransformer(**{**IMAGE, "mask": "blocks"}).fit(X[:100])
    xb = torch.as_tensor(X[:50].reshape(-1, 1, 8, 8), dtype=torch.float32)
    module = ce.net_.module_.eval()
    with torch.no_grad():
        filled, mask = module.fill(xb, KeyedNoise(_SCORE_SEED))
    assert len(set(mask.flatten(1).sum(1).tolist())) > 1  # counts differ
    pooled = (((filled - xb) ** 2 * mask).sum() / mask.sum()).item()
    assert ce.score(X[:50]) == pytest.approx(-pooled, rel=1e-5)


@pytest.mark.parametrize("mask", ["regions", "blocks"])
def test_score_and_reconstruct_mask_each_sample_by_itself(small_digits, mask):
    # One generator per call drew the regions batch by batch: a row's mask,
    # and the score, depended on the other rows and their order.
    X, _ = small_digits
    ce = ContextEncoderTransformer(**{**IMAGE, "mask": mask, "max_epochs": 1}).fit(
        X[:100]
    )
    order = np.random.default_rng(0).permutation(100)
    assert ce.score(X[:100][order]) == pytest.approx(ce.score(X[:100]), rel=1e-6)
    _, masks = ce.reconstruct(X[:100], return_mask=True)
    _, shuffled = ce.reconstruct(X[:100][order], return_mask=True)
    np.testing.assert_array_equal(shuffled, masks[order])
    _, one = ce.reconstruct(X[7:8], return_mask=True)
    np.testing.assert_array_equal(one[0], masks[7])
    assert len({m.tobytes() for m in masks[:10]}) > 1  # rows differ


def test_auto_block_size_is_a_quarter_of_the_smallest_side():
    from sk_replearn.objectives.context import resolve_block_size

    assert resolve_block_size("auto", (1, 8, 28)) == 2


def test_random_blocks_reach_every_position():
    from sk_replearn.objectives.context import context_mask

    g = torch.Generator().manual_seed(0)
    mask = context_mask(500, (1, 8), "blocks", 0.25, block_size=2, generator=g)
    assert mask[..., -1].any() and mask[..., 0].any()


def test_a_centre_block_may_span_one_whole_side():
    from sk_replearn.objectives.context import center_extent

    assert center_extent((2, 100), 0.6) == (2, 77)


def test_context_encoder_reconstruct_returns_the_fill_by_default(small_digits):
    """Without return_mask, reconstruct returns the filled samples alone."""
    X, _ = small_digits
    ce = ContextEncoderTransformer(**{**IMAGE, "max_epochs": 1}).fit(X[:64])
    filled, mask = ce.reconstruct(X[:5], return_mask=True)
    np.testing.assert_array_equal(ce.reconstruct(X[:5]), filled)
    assert not np.array_equal(filled, mask)


def test_context_encoder_refuses_samples_of_more_than_three_axes():
    """Samples of (d,), (C, L) or (C, H, W) only; the error names input_shape."""
    X = np.random.default_rng(0).normal(size=(20, 1, 2, 4, 4)).astype(np.float32)
    with pytest.raises(ValueError, match=r"got input_shape=\(1, 2, 4, 4\)"):
        ContextEncoderTransformer(4, max_epochs=1).fit(X)


def test_context_encoder_trains_with_its_block_size_and_context_weight(small_digits):
    """block_size and context_weight reach the objective the fit trains."""
    X, _ = small_digits
    params = {**IMAGE, "mask": "blocks", "max_epochs": 1}
    plain = ContextEncoderTransformer(**params).fit(X[:64])
    sized = ContextEncoderTransformer(**params, block_size=3).fit(X[:64])
    assert (plain.block_size_, sized.block_size_) == (2, 3)
    weighted = ContextEncoderTransformer(**params, context_weight=0.5).fit(X[:64])
    assert weighted.loss_curve_[0] > plain.loss_curve_[0]  # the context is added


def test_context_encoder_builds_the_decoder_asked_for(small_digits):
    """decoder="mlp" replaces the image's transposed convolutions by an MLP."""
    X, _ = small_digits
    ce = ContextEncoderTransformer(**{**IMAGE, "max_epochs": 1}, decoder="mlp")
    kinds = {type(m) for m in ce.fit(X[:64]).net_.module_.decoder.modules()}
    assert torch.nn.Linear in kinds and torch.nn.ConvTranspose2d not in kinds


def test_context_encoder_on_a_table_resolves_block_size_to_one(small_digits):
    """A table has no blocks: block_size_ is 1, whatever block_size says."""
    X, _ = small_digits
    ce = ContextEncoderTransformer(4, mask="blocks", max_epochs=1, random_state=0)
    assert ce.fit(X[:64]).block_size_ == 1
    assert resolve_block_size(5, (64,)) == 1


def test_centre_mask_on_images_one_row_high_says_to_pass_signals():
    """With mask="center" too, a side of 1 is told to be a signal (C, L)."""
    from sk_replearn.objectives.context import center_extent

    X = np.random.default_rng(0).normal(size=(40, 3, 1, 8)).astype(np.float32)
    with pytest.raises(ValueError, match=r"side of 1.*signals are \(C, L\)"):
        ContextEncoderTransformer(mask="center", max_epochs=1).fit(X)
    assert center_extent((1, 8), 0.25) == (1, 4)  # the block itself exists


@pytest.mark.parametrize("kind", ["center", "blocks", "regions"])
def test_masks_hide_at_least_one_value_at_a_tiny_ratio(kind):
    """However small mask_ratio, every sample hides one value or more."""
    g = torch.Generator().manual_seed(0)
    mask = context_mask(5, (1, 8, 8), kind, 1e-3, block_size=2, generator=g)
    assert (mask.flatten(1).sum(1) >= 1).all()
    table = context_mask(5, (10,), kind, 1e-3, generator=g)
    assert table.sum(1).tolist() == [1.0] * 5


def test_masks_keep_one_value_visible_at_a_ratio_near_one():
    """Random regions, and every kind on a table, hide all but one value."""
    g = torch.Generator().manual_seed(0)
    for kind in ("center", "blocks", "regions"):
        table = context_mask(5, (10,), kind, 0.999, generator=g)
        assert table.sum(1).tolist() == [9.0] * 5
    mask = context_mask(5, (1, 8, 8), "regions", 0.999, generator=g)
    assert mask.flatten(1).sum(1).tolist() == [63.0] * 5


def test_one_random_block_is_a_square_of_side_block_size():
    """At a small ratio, each sample hides one block_size x block_size square."""
    g = torch.Generator().manual_seed(0)
    mask = context_mask(20, (1, 8, 8), "blocks", 0.05, block_size=3, generator=g)
    for m in mask[:, 0]:
        hidden = m.nonzero()
        lo, hi = hidden.min(0).values, hidden.max(0).values
        assert (hi - lo + 1).tolist() == [3, 3] and m.sum().item() == 9


def test_context_mask_refuses_an_unknown_kind():
    """context_mask names the kinds it knows."""
    with pytest.raises(ValueError, match=r"mask='middle' is not one of"):
        context_mask(2, (1, 8, 8), "middle")


def test_context_encoder_draws_masks_for_an_empty_batch():
    """An empty batch gets an empty mask, also under per-sample seeding."""
    from sk_replearn.objectives.masked import KeyedNoise

    obj = ContextEncoderObjective((1, 8, 8), n_components=4, mask="regions")
    mask = obj.draw_mask(torch.empty(0, 1, 8, 8), KeyedNoise(0))
    assert mask.shape == (0, 1, 8, 8)


def test_context_encoder_loss_with_nothing_hidden_is_the_weighted_context():
    """A mask hiding nothing scores the visible values alone, finitely."""
    obj = ContextEncoderObjective((1, 4, 4), n_components=2, context_weight=0.5)
    x = torch.randn(2, 1, 4, 4)
    loss = obj.forward_loss(x, torch.zeros_like(x), torch.zeros(2, 1, 4, 4))
    expected = 0.5 * obj.normalize(x).pow(2).mean().item()
    assert loss.item() == pytest.approx(expected)


def test_context_encoder_fill_returns_no_graph():
    """fill is inference: its tensors carry no autograd graph."""
    obj = ContextEncoderObjective((1, 8, 8), n_components=4, mask="center")
    filled, mask = obj.fill(torch.randn(2, 1, 8, 8))
    assert not filled.requires_grad and not mask.requires_grad


def test_context_mask_center_ignores_block_size_as_the_estimator_does():
    """A block_size no sample could hold is not checked by the central mask."""
    g = torch.Generator().manual_seed(0)
    mask = context_mask(3, (1, 8, 8), "center", 0.25, block_size=8, generator=g)
    expected = torch.zeros(3, 1, 8, 8)
    expected[:, :, 2:6, 2:6] = 1.0  # the central 4 x 4 block
    assert torch.equal(mask, expected)
    X = np.random.default_rng(0).normal(size=(40, 1, 8, 8)).astype(np.float32)
    est = ContextEncoderTransformer(mask="center", block_size=8, max_epochs=1)
    assert est.fit(X).block_size_ == 2  # "auto"'s value, as documented
    with pytest.raises(ValueError, match="block_size=8 is not smaller"):
        context_mask(3, (1, 8, 8), "blocks", 0.25, block_size=8, generator=g)
