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
