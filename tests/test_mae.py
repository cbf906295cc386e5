"""MAETransformer and its objective, MAEObjective."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from skorch.callbacks import Callback

from sk_replearn import FineTuner
from sk_replearn.evaluation import KNNProbe, few_label_indices
from sk_replearn.methods import MAETransformer
from sk_replearn.objectives.masked import MAEObjective, resolve_patch_size

TINY = dict(
    embed_dim=8,
    depth=1,
    num_heads=2,
    decoder_embed_dim=8,
    decoder_depth=1,
    decoder_num_heads=2,
    mlp_ratio=2.0,
    max_epochs=2,
    batch_size=32,
    warmup_epochs=0,
    random_state=0,
    # The tests call the fitted modules with CPU tensors; the CUDA paths are
    # benchmarks/gpu_check.py's.
    device="cpu",
)
IMAGE = dict(TINY, embed_dim=16, decoder_embed_dim=16, input_shape=(1, 8, 8))


def _signals(n=120, length=40, seed=0):
    """Noisy sines of random frequency and phase, (n, 1, length)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, length)
    freq = rng.uniform(1, 4, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    x = np.sin(2 * np.pi * freq * t + phase) + 0.1 * rng.standard_normal((n, length))
    return x[:, None, :].astype(np.float32)


@pytest.mark.parametrize("input_shape", [None, (1, 8, 8)])
def test_mae_user_pipeline_runs_as_written(input_shape):
    X, y = load_digits(return_X_y=True)
    if input_shape is None:
        pipe = Pipeline([("rep", MAETransformer()), ("clf", LogisticRegression())])
    else:
        pipe = Pipeline(
            [
                ("rep", MAETransformer(input_shape=input_shape)),
                ("clf", LogisticRegression()),
            ]
        )
    # The defaults train for minutes; the line itself is what is tested.
    pipe.set_params(
        rep__max_epochs=3, rep__warmup_epochs=0, rep__random_state=0, clf__max_iter=500
    )
    pipe.fit(X[:600], y[:600])
    rep = pipe.named_steps["rep"]
    if input_shape is None:  # a table: tokens of 2 pixels, never guessed 8x8
        assert rep.input_shape_ == (64,) and rep.n_tokens_ == 32
    else:
        assert rep.input_shape_ == (1, 8, 8) and rep.n_tokens_ == 16
    # That the line runs and predicts (chance is 0.1); whether 3 epochs
    # learned anything is not this test's: an untrained encoder's features
    # score as well here (test_mae_beats_its_untrained_encoder is that test).
    assert pipe.score(X[600:], y[600:]) > 0.2


def test_mae_grid_search_over_mask_ratio(small_digits):
    X, y = small_digits
    pipe = Pipeline(
        [("rep", MAETransformer(**IMAGE)), ("clf", LogisticRegression(max_iter=300))]
    )
    grid = GridSearchCV(
        pipe,
        {"rep__mask_ratio": [0.5, 0.75], "rep__patch_size": [2, 4]},
        cv=2,
    )
    grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    assert grid.best_params_["rep__mask_ratio"] in (0.5, 0.75)


def test_mae_held_out_reconstruction_improves_with_training(digits_split):
    X_train, X_test, _, _ = digits_split
    params = dict(IMAGE, embed_dim=32, decoder_embed_dim=32, lr=3e-3)
    short = MAETransformer(**{**params, "max_epochs": 1}).fit(X_train)
    long = MAETransformer(**{**params, "max_epochs": 12}).fit(X_train)
    assert long.loss_curve_[-1] < 0.8 * long.loss_curve_[0]
    # Scored on held-out digits, with the hidden patches in pixel units.
    assert long.score(X_test) > 1.15 * short.score(X_test)  # scores are < 0
    assert long.score(X_test) == long.score(X_test)  # fixed masks


def test_mae_beats_its_untrained_encoder(digits_split):
    # Held-out digits, 5 labels a class (5 draws), k-NN on the features: 12
    # epochs against the same encoder untrained (lr=0). Measured at seeds
    # 0, 1, 2: 0.310 / 0.249, 0.328 / 0.267, 0.325 / 0.239. (With every
    # label, a linear probe of a random ViT is as good: MAE's features are
    # for fine-tuning, He et al. 2022.)
    X_train, X_test, y_train, y_test = digits_split
    params = dict(IMAGE, embed_dim=32, decoder_embed_dim=32, max_epochs=12)
    scores = {}
    for name, lr in [("trained", 3e-3), ("untrained", 0.0)]:
        rep = MAETransformer(**{**params, "lr": lr}).fit(X_train)
        Z_train, Z_test = rep.transform(X_train), rep.transform(X_test)
        draws = [few_label_indices(y_train, 5, random_state=d) for d in range(5)]
        scores[name] = np.mean(
            [
                KNNProbe().fit(Z_train[idx], y_train[idx]).score(Z_test, y_test)
                for idx in draws
            ]
        )
    assert scores["trained"] > scores["untrained"] + 0.03, scores


def test_mae_encoder_never_sees_masked_tokens(small_digits):
    X, _ = small_digits
    mae = MAETransformer(**IMAGE, mask_ratio=0.75).fit(X)
    module = mae.net_.module_
    seen = []
    hook = module.encoder.blocks[0].register_forward_pre_hook(
        lambda block, args: seen.append(args[0].shape[1])
    )
    try:
        mae.set_params(warm_start=True, max_epochs=1).fit(X)
        n_train = len(seen)
        mae.transform(X[:5])
    finally:
        hook.remove()
    # 16 patches of 2x2, a quarter kept, plus the class token.
    assert n_train > 0 and set(seen[:n_train]) == {1 + 16 // 4}
    assert seen[n_train:] == [1 + 16]  # transform sees every token

    # What is hidden cannot change the encoding; what is visible does.
    module.eval()
    x = torch.from_numpy(X[:4]).reshape(4, 1, 8, 8)
    gen = torch.Generator().manual_seed(0)
    latent, mask, _ = module.forward_encoder(x, 0.75, gen)
    hidden = module.unpatchify(mask[:, :, None].expand(-1, -1, 4).contiguous())
    noise = 100 * torch.randn_like(x)
    latent_h, mask_h, _ = module.forward_encoder(
        x + noise * hidden, 0.75, torch.Generator().manual_seed(0)
    )
    latent_v, _, _ = module.forward_encoder(
        x + noise * (1 - hidden), 0.75, torch.Generator().manual_seed(0)
    )
    assert torch.equal(mask, mask_h)
    torch.testing.assert_close(latent, latent_h)
    assert not torch.allclose(latent, latent_v)

    # Only the visible patches are embedded: the same as embedding every
    # patch and keeping the visible tokens, in the masking's order.
    tokens = module.encoder.embed(module._signal(x))
    _, _, ids_restore = module.forward_encoder(
        x, 0.75, torch.Generator().manual_seed(0)
    )
    keep = ids_restore.argsort(dim=1)[:, : latent.shape[1] - 1]
    assert torch.equal(mask.gather(1, keep), torch.zeros_like(keep, dtype=mask.dtype))
    visible = tokens.gather(1, keep[:, :, None].expand(-1, -1, tokens.shape[2]))
    torch.testing.assert_close(latent, module.encoder.forward_tokens(visible))


@pytest.mark.parametrize("nd", [False, True])
def test_mae_reconstruct_shapes_and_mask_fraction(small_digits, nd):
    X, _ = small_digits
    X_in = X.reshape(-1, 1, 8, 8) if nd else X
    params = {**IMAGE, "input_shape": None} if nd else IMAGE
    mae = MAETransformer(**params).fit(X_in)
    rec, mask = mae.reconstruct(X_in[:6], random_state=0)
    assert rec.shape == mask.shape == X_in[:6].shape
    assert rec.dtype == mask.dtype == np.float32
    assert set(np.unique(mask)) == {0.0, 1.0}
    np.testing.assert_allclose(mask.reshape(6, -1).mean(axis=1), 0.75)
    np.testing.assert_array_equal(rec[mask == 0], X_in[:6][mask == 0])  # pasted
    # One mask value per 2x2 patch.
    m = mask.reshape(6, 4, 2, 4, 2)
    assert (m == m[:, :, :1, :, :1]).all()
    rec_half, mask_half = mae.reconstruct(X_in[:6], mask_ratio=0.5, random_state=0)
    np.testing.assert_allclose(mask_half.mean(), 0.5)
    again = mae.reconstruct(X_in[:6], random_state=0)
    np.testing.assert_array_equal(again[0], rec)
    np.testing.assert_array_equal(again[1], mask)
    other = mae.reconstruct(X_in[:6], random_state=1)
    assert not np.array_equal(other[1], mask)
    # ContextEncoderTransformer's keyword: the fill alone, or with its mask.
    alone = mae.reconstruct(X_in[:6], random_state=0, return_mask=False)
    np.testing.assert_array_equal(alone, rec)
    pair = mae.reconstruct(X_in[:6], random_state=0, return_mask=True)
    np.testing.assert_array_equal(pair[1], mask)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"mask_ratio": 0.0}, "'mask_ratio' parameter"),
        ({"mask_ratio": 1.0}, "'mask_ratio' parameter"),
        ({"mask_ratio": 1.5}, "'mask_ratio' parameter"),
        ({"patch_size": 3}, r"patch_size=3 must divide .* one of \[1, 2, 4, 8\]"),
        ({"patch_size": 0}, "'patch_size' parameter"),
        ({"input_shape": (1, 8, 9)}, "input_shape=.* 72 values .* X has 64"),
        ({"input_shape": (1, 2, 4, 8)}, r"input_shape=\(1, 2, 4, 8\)"),
        ({"embed_dim": 6}, "embed_dim=6 must be a multiple of 4"),
        ({"decoder_embed_dim": 12, "decoder_num_heads": 8}, "decoder_num_heads=8"),
        ({"pooling": "max"}, "'pooling' parameter"),
        (
            {"input_shape": None, "patch_size": 1, "norm_pix_loss": True},
            "norm_pix_loss=True .* patch_size=1",
        ),
        ({"input_shape": (1, 8, 8), "patch_size": 8}, "at least 2 tokens"),
        ({"pooling_regions": 0}, "'pooling_regions' parameter"),
        ({"pooling_regions": 17}, "pooling_regions=17 is more than the 16 tokens"),
        ({"pooling_regions": 2, "pooling": "cls"}, "pooling='cls' does not read"),
        ({"pooling_regions": 2, "n_components": 3}, "n_components=3 code does not"),
        ({"decoder_depth": 0}, "'decoder_depth' parameter"),
        ({"num_heads": 0}, "'num_heads' parameter"),
        ({"mlp_ratio": 0.0}, "'mlp_ratio' parameter"),
    ],
)
def test_mae_bad_parameters_fail_at_fit(small_digits, params, match):
    X, _ = small_digits
    with pytest.raises(ValueError, match=match):
        MAETransformer(**{**IMAGE, **params}).fit(X)


@pytest.mark.parametrize(
    ("shape", "params", "match"),
    [
        # The fixes these name exist: the errors said "a smaller patch_size"
        # at patch_size=1 and "a larger patch_size" where none leaves 2 tokens.
        ((8, 1), {}, r"Even one value a token.*input_shape=\(1, 8\)"),
        ((1, 5), {"norm_pix_loss": True}, r"False \(no larger patch_size leaves"),
        ((1, 8), {"norm_pix_loss": True, "patch_size": 1}, r"or patch_size=2\."),
        # the largest common divisor of the sides is itself a fix: 1 x 2 tokens
        ((1, 2, 4), {"norm_pix_loss": True, "patch_size": 1}, r"or patch_size=2\."),
    ],
)
def test_mae_token_errors_name_a_fix_that_exists(shape, params, match):
    X = np.random.default_rng(0).standard_normal((16, *shape)).astype(np.float32)
    with pytest.raises(ValueError, match=match):
        if shape[0] > shape[1]:  # the layout is warned of first, with the fix
            with pytest.warns(UserWarning, match=r"X.transpose\(0, 2, 1\)"):
                MAETransformer(max_epochs=1, **params).fit(X)
        else:
            MAETransformer(max_epochs=1, **params).fit(X)


def test_mae_bad_reconstruct_arguments(small_digits):
    X, _ = small_digits
    mae = MAETransformer(**IMAGE).fit(X)
    for ratio in (0, 1.0, -0.5):
        with pytest.raises(ValueError, match="mask_ratio=.* strictly between 0 and 1"):
            mae.reconstruct(X[:2], mask_ratio=ratio)
    with pytest.raises(ValueError, match="expecting 64 features"):
        mae.reconstruct(X[:2, :10])
    with pytest.raises(TypeError, match="return_mask='no' must be True or False"):
        mae.reconstruct(X[:2], return_mask="no")


def test_mae_random_state_makes_training_repeatable(small_digits):
    X, _ = small_digits
    a = MAETransformer(**IMAGE).fit(X)
    b = MAETransformer(**IMAGE).fit(X)
    c = MAETransformer(**{**IMAGE, "random_state": 1}).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert a.loss_curve_ == b.loss_curve_
    assert not np.allclose(a.transform(X), c.transform(X))
    assert a.score(X) == b.score(X)


def test_mae_pickle_round_trip(small_digits):
    X, _ = small_digits
    mae = MAETransformer(**IMAGE).fit(X)
    again = pickle.loads(pickle.dumps(mae))
    np.testing.assert_array_equal(again.transform(X), mae.transform(X))
    for a, b in zip(
        again.reconstruct(X[:5], random_state=3), mae.reconstruct(X[:5], random_state=3)
    ):
        np.testing.assert_array_equal(a, b)
    copy = clone(mae)
    assert copy.get_params() == mae.get_params() and not hasattr(copy, "net_")


def test_mae_nd_images_match_2d_with_input_shape(small_digits):
    X, _ = small_digits
    X4 = X.reshape(-1, 1, 8, 8)
    nd = MAETransformer(**{**IMAGE, "input_shape": None}).fit(X4)
    flat = MAETransformer(**IMAGE).fit(X)
    assert nd.input_shape_ == (1, 8, 8) and nd.patch_size_ == 2
    np.testing.assert_allclose(nd.transform(X4), flat.transform(X), rtol=1e-5)
    np.testing.assert_allclose(nd.transform(X), nd.transform(X4))


@pytest.mark.parametrize("layout", ["nd", "2d"])
def test_mae_signals(layout):
    X = _signals()
    params = {**TINY, "embed_dim": 16, "decoder_embed_dim": 16, "max_epochs": 3}
    if layout == "2d":
        X, params = X.reshape(len(X), -1), {**params, "input_shape": (1, 40)}
    mae = MAETransformer(**params).fit(X)
    assert mae.input_shape_ == (1, 40)
    assert (mae.patch_size_, mae.n_tokens_) == (2, 20)
    # "auto" pooling of a signal: the class token and the patch means over
    # its quarters, of the one block: (1 + 4) x 16
    assert (mae.pooling_, mae.pooling_regions_) == ("blocks", 4)
    assert mae.transform(X).shape == (len(X), 80)
    rec, mask = mae.reconstruct(X, random_state=0)
    assert rec.shape == mask.shape == X.shape
    # "auto" picks the short-signal recipe's ratio: 17 of 20 segments hidden
    assert mae.mask_ratio_ == 0.85
    np.testing.assert_allclose(mask.mean(), 0.85)
    assert np.isfinite(mae.loss_curve_).all()


def test_mae_tables(small_digits):
    X, _ = small_digits
    rng = np.random.default_rng(0)
    # Columns in wildly different units: each is standardised on its own.
    table = X[:, :12] * np.logspace(-3, 3, 12, dtype=np.float32)
    mae = MAETransformer(**{**TINY, "max_epochs": 3}).fit(table)
    assert mae.input_shape_ == (12,) and (mae.patch_size_, mae.n_tokens_) == (1, 12)
    scale = mae.net_.module_.input_scale.numpy()
    expected = np.where(table.std(0) > 0, table.std(0, ddof=1), 1)
    np.testing.assert_allclose(scale, expected, rtol=1e-5)
    assert mae.transform(table).shape == (len(table), 16)  # 2 x 8, one block
    rec, mask = mae.reconstruct(table, random_state=0)
    assert rec.shape == table.shape
    np.testing.assert_allclose(mask.mean(axis=1), 9 / 12)  # floor(12 * 0.25) kept
    grouped = MAETransformer(**TINY, patch_size=3, norm_pix_loss=True).fit(table)
    assert grouped.n_tokens_ == 4
    wide = rng.standard_normal((40, 100)).astype(np.float32)
    assert MAETransformer(**{**TINY, "max_epochs": 1}).fit(wide).patch_size_ == 4


@pytest.mark.parametrize("n_features", [2, 3])
def test_mae_keeps_at_least_one_token(n_features):
    X = np.random.default_rng(0).standard_normal((30, n_features))
    mae = MAETransformer(**TINY).fit(X)
    _, mask = mae.reconstruct(X, random_state=0)
    np.testing.assert_array_equal(mask.sum(axis=1), n_features - 1)


def test_a_tiny_mask_ratio_still_hides_one_token(small_digits):
    # Below about 1e-6 / n_tokens no token was hidden: the loss on the
    # hidden tokens was 0 / 0, and the fit stopped on a NaN loss that it
    # blamed on the learning rate.
    X, _ = small_digits
    mae = MAETransformer(**{**IMAGE, "mask_ratio": 1e-9}).fit(X[:64])
    assert np.isfinite(mae.loss_curve_).all()
    _, mask = mae.reconstruct(X[:5], random_state=0)
    np.testing.assert_array_equal(mask.sum(axis=1), 2 * 2)  # one 2x2 patch
    assert np.isfinite(mae.score(X[:5]))


def test_score_and_reconstruct_use_the_fitted_mask_ratio(small_digits):
    # set_params(mask_ratio=...) after fit changed score (and reconstruct's
    # masks) of the same weights, while mask_ratio_ kept the fitted value.
    X, _ = small_digits
    mae = MAETransformer(**IMAGE).fit(X[:64])
    score = mae.score(X[64:96])
    _, mask = mae.reconstruct(X[:4], random_state=0)
    mae.set_params(mask_ratio=0.25)
    assert mae.score(X[64:96]) == score
    np.testing.assert_array_equal(mae.reconstruct(X[:4], random_state=0)[1], mask)
    asked = mae.reconstruct(X[:4], mask_ratio=0.25, random_state=0)[1]
    assert asked.mean() == pytest.approx(0.25)


def test_mae_pooling_cls_or_mean(small_digits):
    X, _ = small_digits
    mean = MAETransformer(**IMAGE, pooling="mean").fit(X)
    cls = MAETransformer(**IMAGE, pooling="cls").fit(X)
    module = mean.net_.module_.eval()  # as transform runs it
    with torch.no_grad():
        tokens = module.encoder.forward_tokens(
            module.encoder.embed(module._signal(torch.tensor(X[:3])))
        )
    np.testing.assert_allclose(
        mean.transform(X[:3]), tokens[:, 1:].mean(1).numpy(), rtol=1e-5
    )
    assert not np.allclose(mean.transform(X[:3]), cls.transform(X[:3]))
    # The same training (pooling does not enter the loss) gives the same net
    assert mean.loss_curve_ == cls.loss_curve_


def _tokens_of_two_blocks(mae, X):
    """A fitted 2-block MAE's tokens after each block (the last one normed)."""
    enc = mae.net_.module_.eval().encoder
    with torch.no_grad():
        tokens = enc.embed(mae.net_.module_._signal(torch.tensor(X)))
        tokens = torch.cat([enc.cls_token.expand(len(X), -1, -1), tokens], dim=1)
        first = enc.blocks[0](tokens)
        return first, enc.norm(enc.blocks[1](first))


def test_mae_pooling_blocks_concatenates_every_block_by_hand(small_digits):
    """'blocks': class token and patch mean after each block, the last normed."""
    X, _ = small_digits
    params = {**IMAGE, "depth": 2, "max_epochs": 2}
    blocks = MAETransformer(**params).fit(X)  # "auto": blocks, no n_components
    mean = MAETransformer(**params, pooling="mean").fit(X)
    assert blocks.pooling_ == "blocks" and mean.pooling_ == "mean"
    assert blocks.n_components_ == 2 * 2 * 16 and mean.n_components_ == 16
    assert blocks.get_feature_names_out().shape == (64,)
    first, last = _tokens_of_two_blocks(blocks, X[:5])
    expected = torch.cat(
        [first[:, 0], first[:, 1:].mean(1), last[:, 0], last[:, 1:].mean(1)], dim=1
    )
    np.testing.assert_allclose(blocks.transform(X[:5]), expected.numpy(), atol=1e-5)
    # Pooling does not enter training: the same seed trains the same net, and
    # the last block's patch mean is what pooling="mean" returns
    assert blocks.loss_curve_ == mean.loss_curve_
    np.testing.assert_allclose(
        blocks.transform(X[:5])[:, 48:], mean.transform(X[:5]), atol=1e-5
    )


def test_mae_pooling_regions_averages_contiguous_parts_by_hand():
    """Each block: class token, then the patch mean of each part, in order."""
    X = _signals(n=48).reshape(48, -1)  # 20 tokens of 2 steps
    params = {**TINY, "input_shape": (1, 40), "depth": 2, "max_epochs": 1}
    whole = MAETransformer(**params, pooling_regions=1).fit(X)
    parts = MAETransformer(**params, pooling_regions=3).fit(X)  # 7 + 7 + 6 tokens
    assert parts.n_components_ == 2 * (1 + 3) * 8
    assert parts.get_feature_names_out().shape == (64,)
    first, last = _tokens_of_two_blocks(parts, X[:5])
    expected = [
        t
        for out in (first, last)
        for t in (
            out[:, 0],
            out[:, 1:8].mean(1),
            out[:, 8:15].mean(1),
            out[:, 15:].mean(1),
        )
    ]
    np.testing.assert_allclose(
        parts.transform(X[:5]), torch.cat(expected, dim=1).numpy(), atol=1e-5
    )
    # Pooling does not enter training: the same net, read two ways.
    assert parts.loss_curve_ == whole.loss_curve_
    widths = [
        parts.set_params(transform_layer=k).transform(X[:2]).shape[1] for k in (0, 1)
    ]
    assert widths == [3 * 8, (1 + 3) * 8]  # the embedding's parts, one block's
    # A fine-tuner that trains an "auto" encoder reads the last block's mean
    # over all tokens; a frozen one reads what transform reads.
    parts.set_params(transform_layer=-1)
    y = np.arange(48) % 2
    full = FineTuner(parts, max_epochs=1, random_state=0).fit(X, y)
    frozen = FineTuner(parts, strategy="frozen", max_epochs=1, random_state=0).fit(X, y)
    assert full.transform(X[:2]).shape == (2, 8)
    np.testing.assert_allclose(
        frozen.transform(X[:5]), parts.transform(X[:5]), atol=1e-5
    )


@pytest.mark.parametrize(
    "params, regions",
    [
        ({}, 4),
        ({"pooling": "mean"}, 4),
        ({"pooling": "cls"}, 1),
        ({"n_components": 3}, 1),
        ({"patch_size": 20}, 2),  # two tokens: one region each
        ({"input_shape": (1, 5, 8)}, 1),  # an image
        ({"input_shape": None}, 1),  # a table
    ],
)
def test_mae_auto_pooling_regions_are_the_quarters_of_a_signal(params, regions):
    X = _signals(n=32).reshape(32, -1)
    kwargs = {**TINY, "input_shape": (1, 40), "max_epochs": 1, **params}
    mae = MAETransformer(**kwargs).fit(X)
    assert mae.pooling_regions_ == regions
    if regions > 1:  # the same net as with pooling_regions=regions set
        explicit = MAETransformer(**kwargs, pooling_regions=regions).fit(X)
        np.testing.assert_array_equal(mae.transform(X), explicit.transform(X))


def test_a_fine_tuner_reads_auto_regions_as_one():
    """Training the encoder, a fine-tuner reads set regions, never "auto"'s."""
    X = _signals(n=48).reshape(48, -1)
    y = np.arange(48) % 2
    params = {**TINY, "input_shape": (1, 40), "max_epochs": 1}
    widths = {}
    # transform's width, then what a fine-tuner that trains the encoder reads
    for pooling, regions, read in [
        ("auto", "auto", (1 + 4) * 8),  # "blocks" over quarters
        ("mean", "auto", 4 * 8),
        ("mean", 4, 4 * 8),
    ]:
        mae = MAETransformer(**params, pooling=pooling, pooling_regions=regions)
        assert mae.fit(X).transform(X[:2]).shape == (2, read)
        tuner = FineTuner(mae, max_epochs=1, random_state=0).fit(X, y)
        widths[pooling, regions] = tuner.transform(X[:2]).shape[1]
    assert widths == {("auto", "auto"): 8, ("mean", "auto"): 8, ("mean", 4): 4 * 8}


def test_mae_pooling_auto_is_mean_with_n_components(small_digits):
    X, _ = small_digits
    coded = MAETransformer(**IMAGE, n_components=6).fit(X)
    assert coded.pooling_ == "mean" and coded.transform(X[:4]).shape == (4, 6)
    with pytest.raises(ValueError, match="pooling='blocks'.*n_components=6"):
        MAETransformer(**IMAGE, n_components=6, pooling="blocks").fit(X)


@pytest.mark.parametrize("norm_pix_loss", [False, True])
def test_mae_forward_loss_matches_naive_loop(norm_pix_loss):
    torch.manual_seed(0)
    obj = MAEObjective(
        (2, 8, 8), patch_size=4, depth=1, decoder_depth=1, norm_pix_loss=norm_pix_loss
    )
    x = torch.randn(3, 2, 8, 8) * 5 + 2
    obj.set_input_scale(x)
    latent, mask, ids_restore = obj.forward_encoder(x, 0.5)
    pred = obj.forward_decoder(latent, ids_restore)  # (3, 4, 32)
    xn = (x - x.mean()) / x.std()
    total, count = 0.0, 0
    for n in range(3):
        for i in range(2):
            for j in range(2):
                token = i * 2 + j  # row-major patch order
                if mask[n, token] == 0:
                    continue
                patch = xn[n, :, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4]
                target = patch.permute(1, 2, 0).reshape(-1)  # (p, q, c) layout
                if norm_pix_loss:
                    target = (target - target.mean()) / (target.var() + 1e-6).sqrt()
                total += ((pred[n, token] - target) ** 2).mean()
                count += 1
    torch.testing.assert_close(obj.forward_loss(x, pred, mask), total / count)
    assert count == 3 * 2  # half of the 4 patches hidden in each sample


def test_resolve_patch_size_rules():
    assert resolve_patch_size("auto", (1, 8, 8)) == 2
    assert resolve_patch_size("auto", (1, 28, 28)) == 4
    assert resolve_patch_size("auto", (1, 40)) == 2
    assert resolve_patch_size("auto", (32,)) == 1
    assert resolve_patch_size("auto", (64,)) == 2
    assert resolve_patch_size("auto", (100,)) == 4
    assert resolve_patch_size("auto", (784,)) == 28
    assert resolve_patch_size("auto", (67,)) == 1  # prime: one token per feature
    # ... up to 256 features, as signals: beyond, 997 took 13 s an epoch for
    # 256 rows, and about 5 GB, with no word said.
    assert resolve_patch_size("auto", (251,)) == 1
    with pytest.raises(ValueError, match=r"997 features.*patch_size=1 to accept"):
        resolve_patch_size("auto", (997,))
    with pytest.raises(ValueError, match=r"another divisor of 526: \[2, 263\]"):
        resolve_patch_size("auto", (526,))
    assert resolve_patch_size(1, (997,)) == 1  # asked for: as asked
    # Signals with no patch of 4 to 64 tokens: the smallest giving up to 256,
    # where 262 = 2 x 131 was refused and 254 took 254 tokens of one value.
    assert resolve_patch_size("auto", (1, 127)) == 1
    assert resolve_patch_size("auto", (1, 262)) == 2
    assert resolve_patch_size("auto", (1, 254)) == 2
    assert resolve_patch_size("auto", (1, 2000)) == 40  # 50 tokens, as before
    with pytest.raises(ValueError, match=r"no patch gives 4 to 256 tokens.*\[1, 997\]"):
        resolve_patch_size("auto", (1, 997))
    with pytest.raises(ValueError, match="patch_size=3 must divide"):
        resolve_patch_size(3, (64,))


def test_mae_trains_and_transforms_under_torch_compile(small_digits):
    # The masking noise is drawn for a batch size torch.compile treats as
    # symbolic (the last batch is smaller); rand(..., generator=None) used
    # to make the trace fail.
    X, _ = small_digits
    mae = MAETransformer(**{**IMAGE, "compile": True, "batch_size": 48}).fit(X[:100])
    assert len(mae.loss_curve_) == 2 and np.isfinite(mae.loss_curve_).all()
    module = mae.net_.module_
    eager = getattr(module, "_orig_mod", module)
    with torch.no_grad():
        expected = eager.eval().encode(torch.as_tensor(X[:20]).reshape(-1, 1, 8, 8))
    np.testing.assert_allclose(mae.transform(X[:20]), expected.numpy(), atol=1e-5)


def test_mae_auto_settings_follow_the_kind_of_sample():
    """Signals get the short-signal recipe; images and tables the defaults."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((24, 40)).astype(np.float32)
    tiny = {"num_heads": 2, "decoder_embed_dim": 8, "decoder_depth": 1}
    signal = MAETransformer(input_shape=(1, 40), **tiny, max_epochs=1).fit(X)
    image = MAETransformer(input_shape=(1, 8, 5), **tiny, max_epochs=1).fit(X)
    table = MAETransformer(**tiny, max_epochs=1).fit(X)
    recipe = (signal.mask_ratio_, signal.embed_dim_, signal.depth_, signal.mlp_ratio_)
    assert recipe == (0.85, 192, 2, 3.0)
    for est in (image, table):
        assert (est.mask_ratio_, est.embed_dim_, est.depth_) == (0.75, 128, 3)
        assert est.mlp_ratio_ == 4.0 and est.pooling_ == "blocks"
        assert est.pooling_regions_ == 1
    # Class token and patch means of every block: (1 + regions) x depth x
    # embed_dim, the signal's patches averaged over its quarters
    assert signal.pooling_regions_ == 4
    assert signal.transform(X).shape == (24, (1 + 4) * 2 * 192)
    assert table.transform(X).shape == (24, 2 * 3 * 128)
    encoder = signal.net_.module_.encoder
    assert len(encoder.blocks) == 2
    assert encoder.blocks[0].linear1.out_features == 3 * 192  # mlp_ratio_ = 3
    # "auto" resolves to the epochs actually run
    auto = MAETransformer(input_shape=(1, 40), **tiny, embed_dim=8, depth=1)
    assert auto.get_params()["max_epochs"] == "auto"
    assert auto.fit(X).max_epochs_ == len(auto.history_) == 32
    explicit = MAETransformer(input_shape=(1, 40), **tiny, mask_ratio=0.5, depth=1)
    explicit.set_params(embed_dim=8, max_epochs=2).fit(X)
    assert (explicit.mask_ratio_, explicit.depth_, explicit.max_epochs_) == (0.5, 1, 2)
    assert len(explicit.history_) == 2


def test_score_and_reconstruct_mask_each_sample_by_itself(small_digits):
    # One generator per call masked the rows batch by batch: a row's mask,
    # and the score, depended on the other rows and their order.
    X, _ = small_digits
    mae = MAETransformer(
        input_shape=(1, 8, 8),
        embed_dim=16,
        depth=1,
        decoder_embed_dim=16,
        decoder_depth=1,
        max_epochs=1,
        random_state=0,
    ).fit(X[:100])
    order = np.random.default_rng(0).permutation(100)
    assert mae.score(X[:100][order]) == pytest.approx(mae.score(X[:100]), rel=1e-6)
    rec, mask = mae.reconstruct(X[:100], random_state=3)
    rec_p, mask_p = mae.reconstruct(X[:100][order], random_state=3)
    np.testing.assert_array_equal(mask_p, mask[order])
    np.testing.assert_allclose(rec_p, rec[order], rtol=1e-5, atol=1e-5)
    _, one = mae.reconstruct(X[7:8], random_state=3)
    np.testing.assert_array_equal(one[0], mask[7])
    assert not np.array_equal(mae.reconstruct(X[:1], random_state=4)[1], mask[:1])


def test_score_is_the_same_on_every_call_without_a_random_state(small_digits):
    # Its masks come from a fixed seed, not from random_state: a model's
    # score does not change from call to call (nor with the fit's seed).
    X, _ = small_digits
    mae = MAETransformer(**{**TINY, "random_state": None}).fit(X[:64])
    assert mae.score(X[:64]) == mae.score(X[:64])


def test_resolve_patch_size_of_a_table_takes_a_divisor_giving_exactly_4_tokens():
    # 148 = 4 x 37: no divisor gives 5 to 32 tokens, 37 gives 4 (the least
    # "auto" accepts), where one token per feature would make 148.
    assert resolve_patch_size("auto", (148,)) == 37


def test_mae_forward_decoder_matches_a_naive_assembly_token_by_token():
    """The decoder reads the class token, then at each position the encoded
    visible token that was there (ids_restore undoes the shuffle) or the mask
    token, plus that position's embedding; it predicts every token but the
    class token, in the original order."""
    torch.manual_seed(0)
    obj = MAEObjective((1, 8, 8), patch_size=2, depth=1, decoder_depth=1).eval()
    x = torch.randn(3, 1, 8, 8)
    latent, _, ids_restore = obj.forward_encoder(
        x, 0.75, torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        pred = obj.forward_decoder(latent, ids_restore)
        embedded = obj.decoder_embed(obj.bottleneck(latent))  # (3, 1 + 4, Dd)
        n_visible = latent.shape[1] - 1
        for n in range(3):
            rows = [embedded[n, 0]]  # the class token, no position
            for position in range(obj.num_patches):
                j = int(ids_restore[n, position])  # its place in the shuffle
                token = embedded[n, 1 + j] if j < n_visible else obj.mask_token[0, 0]
                rows.append(token + obj.decoder_pos_embed[0, position])
            h = torch.stack(rows)[None]
            for block in obj.decoder_blocks:
                h = block(h)
            expected = obj.decoder_pred(obj.decoder_norm(h))[0, 1:]
            torch.testing.assert_close(pred[n], expected, rtol=1e-5, atol=1e-5)


def test_mae_reconstruct_maps_norm_pix_predictions_back_per_true_token():
    """With norm_pix_loss the decoder predicts each token normalised by its
    own mean and standard deviation; reconstruct maps it back with those of
    the true token, sqrt(var + 1e-6), then to the input's units."""
    torch.manual_seed(0)
    obj = MAEObjective(
        (1, 8, 8), patch_size=2, depth=1, decoder_depth=1, norm_pix_loss=True
    ).eval()
    x = torch.randn(2, 1, 8, 8) * 5 + 2
    obj.set_input_scale(x)
    prediction, _, _ = obj.reconstruct(x, 0.5, torch.Generator().manual_seed(0))
    with torch.no_grad():
        latent, _, ids_restore = obj.forward_encoder(
            x, 0.5, torch.Generator().manual_seed(0)
        )
        pred = obj.forward_decoder(latent, ids_restore)  # (2, 16, 4)
    xn = (x - x.mean()) / x.std()
    expected = torch.empty_like(x)
    for n in range(2):
        for i in range(4):
            for j in range(4):
                patch = xn[n, 0, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].reshape(-1)
                std = (patch.var() + 1e-6).sqrt()
                values = pred[n, 4 * i + j] * std + patch.mean()
                raw = values * x.std() + x.mean()
                expected[n, 0, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2] = raw.reshape(2, 2)
    torch.testing.assert_close(prediction, expected, rtol=1e-4, atol=1e-4)


def test_mae_norm_pix_loss_takes_one_position_tokens_of_several_channels():
    # With patch_size=1 a token of a 3-channel signal still holds 3 values,
    # enough to normalise by its own mean and variance: the fit goes ahead.
    X = _signals(n=24, length=8)
    X = np.concatenate([X, 2 * X, -X], axis=1)  # (24, 3, 8)
    params = {**TINY, "max_epochs": 1, "patch_size": 1, "norm_pix_loss": True}
    mae = MAETransformer(**params).fit(X)
    assert (mae.input_shape_, mae.n_tokens_) == ((3, 8), 8)
    assert np.isfinite(mae.loss_curve_).all()


def test_mae_signal_widths_need_only_be_even():
    # Sin-cos positions along one axis need widths that are multiples of 2
    # (not of 4, as images need): a width of 6 fits a 1-D signal.
    X = _signals(n=24, length=16)
    widths = {"embed_dim": 6, "num_heads": 2, "decoder_embed_dim": 6}
    mae = MAETransformer(**{**TINY, **widths, "max_epochs": 1}).fit(X)
    assert np.isfinite(mae.loss_curve_).all()


def test_mae_decoder_width_not_a_multiple_of_4_fails_at_fit_by_name(small_digits):
    # The decoder's sin-cos positions over an image need a multiple of 4 too;
    # the error names the parameter to change.
    X, _ = small_digits
    params = {**IMAGE, "decoder_embed_dim": 6, "decoder_num_heads": 2}
    with pytest.raises(ValueError, match="decoder_embed_dim=6 must be a multiple of 4"):
        MAETransformer(**params).fit(X)


def test_mae_num_heads_shapes_the_encoder(small_digits):
    # num_heads is the encoder's own number of heads, not the decoder's:
    # changing it alone changes the learned representation.
    X, _ = small_digits
    X = X[:64]
    params = {**IMAGE, "max_epochs": 1, "decoder_num_heads": 2}
    one = MAETransformer(**{**params, "num_heads": 1}).fit(X).transform(X)
    two = MAETransformer(**{**params, "num_heads": 2}).fit(X).transform(X)
    assert not np.allclose(one, two)


def test_token_shape_refuses_samples_of_more_than_three_axes():
    """Samples are (d,), (C, L) or (C, H, W); a fourth axis is refused by name."""
    from sk_replearn.objectives.masked import token_shape

    assert token_shape((64,)) == (1, 64) and token_shape((2, 40)) == (2, 40)
    with pytest.raises(ValueError, match=r"input_shape=\(1, 2, 4, 8\) must be \(d,\)"):
        token_shape((1, 2, 4, 8))


def test_keyed_masks_show_and_hide_every_token_across_samples():
    """Masks drawn from each sample's values treat every position alike."""
    from sk_replearn.objectives.masked import KeyedNoise

    torch.manual_seed(0)
    obj = MAEObjective((1, 8, 8), patch_size=2, depth=1, decoder_depth=1)
    x = torch.randn(40, 1, 8, 8)
    _, mask, _ = obj.forward_encoder(x, 0.75, KeyedNoise(0))
    assert mask.sum(1).tolist() == [12.0] * 40
    # each of the 16 tokens is hidden in some samples and visible in others
    assert (mask.amax(0) == 1).all() and (mask.amin(0) == 0).all()


@pytest.mark.parametrize("mask_ratio", [0.5, 0.875])
def test_mae_training_pass_hides_the_objectives_mask_ratio(mask_ratio):
    """The training pass hides mask_ratio of the tokens; the encoder sees the rest."""
    torch.manual_seed(0)
    obj = MAEObjective(
        (1, 8, 8), patch_size=2, mask_ratio=mask_ratio, depth=1, decoder_depth=1
    )
    seen = []
    hook = obj.encoder.blocks[0].register_forward_pre_hook(
        lambda block, args: seen.append(args[0].shape[1])
    )
    try:
        pred, mask = obj(torch.randn(3, 1, 8, 8))
    finally:
        hook.remove()
    hidden = round(16 * mask_ratio)
    assert mask.sum(1).tolist() == [hidden] * 3
    assert seen == [1 + 16 - hidden]  # the class token and the visible tokens
    assert pred.shape == (3, 16, 4)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"pooling": "blocks", "n_components": 3}, "pooling='blocks'"),
        ({"pooling_regions": 2, "n_components": 3}, "pooling_regions=2"),
    ],
)
def test_mae_objective_refuses_poolings_its_code_does_not_see(params, match):
    """The n_components code is per token: block and region poolings are refused."""
    with pytest.raises(ValueError, match=match):
        MAEObjective((1, 8, 8), depth=1, decoder_depth=1, **params)


def test_mae_decoder_positions_follow_the_grid_of_a_non_square_image():
    """Token ``row * grid_w + col``: the sin-cos of its row, then of its column."""
    from sk_replearn.nn.patches import sincos_pos_embed_1d

    obj = MAEObjective(
        (1, 8, 4), patch_size=2, depth=1, decoder_depth=1, decoder_embed_dim=16
    )
    rows, cols = sincos_pos_embed_1d(8, 4), sincos_pos_embed_1d(8, 2)  # grid 4 x 2
    expected = torch.stack([torch.cat([rows[t // 2], cols[t % 2]]) for t in range(8)])
    torch.testing.assert_close(obj.decoder_pos_embed[0], expected)


def test_mae_decoder_has_its_own_depth_and_mlp_width():
    """decoder_depth blocks, each with decoder_embed_dim * mlp_ratio hidden units."""
    obj = MAEObjective(
        (1, 8, 8), depth=1, decoder_depth=3, decoder_embed_dim=16, mlp_ratio=2.0
    )
    assert len(obj.encoder.blocks) == 1 and len(obj.decoder_blocks) == 3
    assert [b.linear1.out_features for b in obj.decoder_blocks] == [32] * 3


def test_mae_objective_reconstruct_returns_no_graph():
    """reconstruct is inference: its tensors carry no autograd graph."""
    torch.manual_seed(0)
    obj = MAEObjective((1, 8, 8), patch_size=2, depth=1, decoder_depth=1)
    outputs = obj.reconstruct(torch.randn(2, 1, 8, 8), 0.5)
    assert [t.requires_grad for t in outputs] == [False] * 3
    outputs[0].numpy()  # usable as is


def test_mae_score_is_the_squared_error_over_hidden_values_by_hand(small_digits):
    """-mean of (X - prediction)^2 over the hidden values, mask_ratio_ of them."""
    from sk_replearn.methods.masked import _SCORE_SEED
    from sk_replearn.objectives.masked import KeyedNoise

    X, _ = small_digits
    mae = MAETransformer(**{**IMAGE, "max_epochs": 1, "mask_ratio": 0.5}).fit(X[:64])
    module = mae.net_.module_.eval()
    xb = torch.as_tensor(X[:20]).reshape(-1, 1, 8, 8)
    prediction, _, mask = module.reconstruct(xb, 0.5, KeyedNoise(_SCORE_SEED))
    assert mask.sum().item() == 20 * 32  # half the values of every sample
    expected = (((prediction - xb) ** 2) * mask).sum() / mask.sum()
    assert mae.score(X[:20]) == pytest.approx(-expected.item(), rel=1e-5)


def test_mae_objective_of_one_token_names_the_patch_size():
    """One token leaves nothing to hide: the objective says so when built."""
    with pytest.raises(ValueError, match=r"at least 2 tokens.*patch_size=8"):
        MAEObjective((1, 8, 8), patch_size=8)
    assert MAEObjective((1, 8, 8), patch_size=4).num_patches == 4


class _PlanThenStop(Callback):
    """Records the epochs the net plans to run, then stops after the first."""

    def on_epoch_end(self, net, **kwargs):
        self.planned = net.max_epochs
        raise KeyboardInterrupt


@pytest.mark.parametrize("input_shape", [None, (1, 2, 4)])
def test_mae_auto_max_epochs_of_images_and_tables_is_150(input_shape):
    """max_epochs="auto" trains images and tables for 150 epochs (the docstring's)."""
    X = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
    params = {k: v for k, v in TINY.items() if k != "max_epochs"}
    stop = _PlanThenStop()
    mae = MAETransformer(**params, input_shape=input_shape, callbacks=[stop])
    with pytest.warns(RuntimeWarning, match="interrupted after epoch 1"):
        mae.fit(X)
    assert stop.planned == mae.max_epochs_ == 150


def test_mae_norm_pix_loss_reaches_the_training_loss(small_digits):
    """norm_pix_loss=True trains on per-token normalised targets, not raw ones."""
    X = small_digits[0][:64]
    params = {**IMAGE, "max_epochs": 1}
    raw = MAETransformer(**params).fit(X)
    normed = MAETransformer(**params, norm_pix_loss=True).fit(X)
    assert normed.net_.module_.norm_pix_loss and not raw.net_.module_.norm_pix_loss
    assert normed.loss_curve_ != raw.loss_curve_


def test_mae_masking_of_two_tokens_hides_one_at_a_tiny_ratio():
    """Of two tokens, a ratio too small to hide any still hides exactly one."""
    obj = MAEObjective((1, 8, 8), patch_size=2, depth=1, decoder_depth=1)
    tokens = torch.randn(5, 2, 4)
    gen = torch.Generator().manual_seed(0)
    visible, mask, _ = obj.random_masking(tokens, 1e-9, gen)
    assert visible.shape == (5, 1, 4)
    assert mask.sum(1).tolist() == [1.0] * 5


def test_mae_decoder_is_deterministic_in_training_mode():
    """The decoder has no dropout: in training mode the same latent and
    order give the same prediction twice."""
    torch.manual_seed(0)
    obj = MAEObjective((1, 8, 8), patch_size=2, depth=1, decoder_depth=2).train()
    x = torch.randn(3, 1, 8, 8)
    latent, _, ids_restore = obj.forward_encoder(
        x, 0.75, torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        first = obj.forward_decoder(latent, ids_restore)
        second = obj.forward_decoder(latent, ids_restore)
    assert torch.equal(first, second)


def test_mae_decoder_starts_from_the_mae_initialisation():
    """Every decoder linear, the prediction head included, starts with zero
    biases; the mask token is drawn with a standard deviation of 0.02."""
    torch.manual_seed(0)
    obj = MAEObjective(
        (1, 8, 8), patch_size=2, depth=1, decoder_depth=1, decoder_embed_dim=64
    )
    for linear in (obj.decoder_embed, obj.decoder_pred):
        assert torch.equal(linear.bias, torch.zeros_like(linear.bias))
    assert 0.01 < obj.mask_token.std().item() < 0.04


def test_keyed_masks_depend_on_the_raw_sample_not_on_the_standardisation():
    """KeyedNoise draws a sample's mask from its raw values: objectives fitted
    to different input scales hide the same tokens of the same sample, the
    ones the noise of KeyedNoise.uniform puts first."""
    from sk_replearn.objectives.masked import KeyedNoise

    torch.manual_seed(0)
    x = torch.randn(6, 1, 8, 8)
    plain = MAEObjective((1, 8, 8), patch_size=2, depth=1, decoder_depth=1)
    scaled = MAEObjective((1, 8, 8), patch_size=2, depth=1, decoder_depth=1)
    scaled.set_input_scale(x * 7 + 3)
    _, mask, _ = plain.forward_encoder(x, 0.75, KeyedNoise(4))
    _, mask_scaled, _ = scaled.forward_encoder(x, 0.75, KeyedNoise(4))
    assert torch.equal(mask, mask_scaled)
    noise = KeyedNoise(4).uniform(x, 16)
    _, expected, _ = plain.random_masking(plain.patchify(x), 0.75, noise=noise)
    assert torch.equal(mask, expected)


def test_keyed_noise_reads_values_whatever_their_dtype_or_graph():
    """The draws of a sample depend on its values alone: a float64 copy or
    a tensor that requires grad gets the same draws as the float32 one."""
    from sk_replearn.objectives.masked import KeyedNoise

    x = torch.randn(3, 1, 4, 4)
    draws = KeyedNoise(2).uniform(x, 5)
    assert torch.equal(KeyedNoise(2).uniform(x.double(), 5), draws)
    assert torch.equal(KeyedNoise(2).uniform(x.clone().requires_grad_(), 5), draws)
    # every value counts, the last one included
    changed = x.clone()
    changed[:, 0, -1, -1] += 1.0
    other = KeyedNoise(2).uniform(changed, 5)
    assert all(not torch.equal(a, b) for a, b in zip(other, draws))


def test_keyed_noise_generators_and_uniform_draw_from_the_given_seed():
    """KeyedNoise(seed) keeps seed as given; its per-sample generators start
    the same stream as its uniform draws, and another seed draws others."""
    from sk_replearn.objectives.masked import KeyedNoise

    x = torch.randn(3, 6)
    noise = KeyedNoise(np.int64(5))
    assert noise.seed == 5 and type(noise.seed) is int
    draws = noise.uniform(x, 4)
    for row, gen in zip(draws, noise.generators(x)):
        assert torch.equal(row, torch.rand(4, generator=gen))
    assert not torch.equal(KeyedNoise(6).uniform(x, 4), draws)


def test_mae_objective_refuses_a_batch_of_samples_of_another_shape():
    """A batch whose samples are not input_shape is an error, not a batch of
    twice as many samples."""
    obj = MAEObjective((1, 8, 8), patch_size=2, depth=1, decoder_depth=1)
    assert obj.encode(torch.randn(3, 1, 8, 8)).shape == (3, 64)
    with pytest.raises(RuntimeError, match="invalid for input of size"):
        obj.encode(torch.randn(3, 2, 8, 8))


@pytest.mark.parametrize("n_components, width", [(None, 16), (6, 6)])
def test_mae_transfer_encoder_reports_the_width_it_outputs(n_components, width):
    """The copy's out_features is its output's width: the n_components code
    where there is one, else the encoder's tokens."""
    obj = MAEObjective(
        (1, 8, 8),
        patch_size=2,
        embed_dim=16,
        depth=1,
        decoder_depth=1,
        n_components=n_components,
    )
    encoder = obj.transfer_encoder((1, 8, 8)).eval()
    with torch.no_grad():
        out = encoder(torch.randn(2, 1, 8, 8))
    assert encoder.out_features == out.shape[1] == width


def test_mae_transfer_encoder_given_regions_alone_keeps_the_pooling():
    """transfer_encoder(regions=...) without pooling keeps the encoder's own
    pooling: a class-token encoder's copy still reads the class token."""
    torch.manual_seed(0)
    obj = MAEObjective(
        (1, 8, 8), patch_size=2, embed_dim=16, depth=1, decoder_depth=1, pooling="cls"
    ).eval()
    encoder = obj.transfer_encoder((1, 8, 8), regions=1).eval()
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(encoder(x), obj.encode(x))
