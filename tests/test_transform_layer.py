"""``transform_layer``: features from any block of every kind of encoder.

One small fitted estimator per kind of encoder (an MLP on a table, a CNN on
images, a ResNet on signals, a ViT, a token transformer, a fine-tuned
encoder). For each: the width of every block's features, the last block
equal to the default ``transform`` bit for bit, an inner block equal to a
computation by hand through the encoder's first blocks, ``set_params``
after ``fit`` with no refit and the weights untouched, a grid search over
the layer, and the errors of values that are no block.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import torch
from _instances import PUBLIC_ESTIMATORS, make
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from sk_replearn import CollapseWarning, FineTuner
from sk_replearn.methods.base import NeuralRepresentation
from sk_replearn.nn.layers import block_features, block_widths, cut_encoder
from sk_replearn.nn.sequence import pool_tokens
from sk_replearn.nn.surgery import encoder_blocks
from sk_replearn.tokens import PAD

_RNG = np.random.default_rng(0)
TABLE = _RNG.normal(size=(40, 8)).astype(np.float32)
IMAGES = _RNG.normal(size=(40, 64)).astype(np.float32)  # (1, 8, 8)
SIGNALS = _RNG.normal(size=(40, 16)).astype(np.float32)  # (1, 16)
LABELS = np.arange(40) % 2
TEXTS = [
    "".join(_RNG.choice(list("abcd"), size=_RNG.integers(3, 12))) for _ in range(40)
]
_TINY = {"max_epochs": 1, "batch_size": 16, "device": "cpu", "random_state": 0}
_PROJ = {"projection_dim": 4, "hidden_dim": 8}


def _normalized(est, X) -> torch.Tensor:
    """X standardised as the objective does, one sample shaped ``input_shape_``."""
    x = torch.as_tensor(X).reshape(len(X), *est.input_shape_)
    return est.net_.module_.normalize(x)


def _mlp_by_hand(est, X, k):
    obj = est.net_.module_  # an autoencoder: backbone MLP (8, 4), bottleneck
    layers = obj.backbone.layers  # Linear, LayerNorm, ReLU, Linear
    return layers[: [3, 4][k]](_normalized(est, X))


def _cnn_by_hand(est, X, k):
    features = est.net_.module_.backbone.features  # (Conv, BN, ReLU) x 2
    return features[: 3 * (k + 1)](_normalized(est, X)).mean(dim=(2, 3))


def _resnet_by_hand(est, X, k):
    resnet = est.net_.module_.backbone.encoder  # under the n_components layer
    h = resnet.features[: 3 + k](_normalized(est, X))  # the stem, then k blocks
    return h.mean(dim=2)  # global average pooling over time


def _vit_by_hand(est, X, k):
    obj = est.net_.module_
    vit = obj.encoder
    x = _normalized(est, X).reshape(len(X), *obj.token_shape)
    tokens = vit.patch_embed(x).flatten(2).transpose(1, 2) + vit.pos_embed
    tokens = torch.cat([vit.cls_token.expand(len(X), -1, -1), tokens], dim=1)
    pooled = []  # "blocks": class token and patch mean after each block
    for block in vit.blocks[:k]:
        tokens = block(tokens)
        pooled += [tokens[:, 0], tokens[:, 1:].mean(dim=1)]
    if vit.pooling == "blocks":
        return torch.cat(pooled, dim=1) if k else tokens[:, 1:].mean(dim=1)
    return tokens[:, 0] if vit.pooling == "cls" else tokens[:, 1:].mean(dim=1)


def _tokens_by_hand(est, X, k):
    enc = est.net_.module_.encoder
    data = est._token_data(X)
    ids = data.take(torch.arange(len(data)))  # (B, T), padded to the longest
    T = ids.shape[1]
    h = enc.token_embed(ids) + enc.pos_embed[:, :T]
    causal = torch.ones(T, T, dtype=torch.bool).triu(1)
    for block in enc.blocks[:k]:
        h = block(h, src_mask=causal, src_key_padding_mask=ids == PAD)
    return pool_tokens(h, ids, enc.pooling)


def _finetuned_by_hand(est, X, k):
    enc = est.net_.module_.encoder  # the fine-tuned copy of the MLP
    return enc.body.layers[:3](enc.prep(torch.as_tensor(X)))


#: kind -> (estimator, its data, its widths per block, (inner block, by hand)).
CASES = {
    "mlp": (
        lambda: make("AutoencoderTransformer"),
        TABLE,
        [8, 4, 2],
        (0, _mlp_by_hand),
    ),
    "cnn": (
        lambda: make(
            "SimCLRTransformer",
            encoder="cnn",
            encoder_kwargs={"channels": (4, 6)},
            input_shape=(1, 8, 8),
        ),
        IMAGES,
        [4, 24],  # the last stage pooled to 2 x 2 by the encoder itself
        (0, _cnn_by_hand),
    ),
    "resnet": (
        lambda: make(
            "SimCLRTransformer",
            n_components=3,
            encoder="resnet",
            encoder_kwargs={"channels": (4, 6)},
            input_shape=(1, 16),
        ),
        SIGNALS,
        [4, 4, 6, 3],  # stem, two residual blocks, the n_components layer
        (1, _resnet_by_hand),
    ),
    "vit": (
        lambda: make("MAETransformer", depth=2, input_shape=(1, 16), pooling_regions=1),
        SIGNALS,
        # patch embedding (its mean), then "auto" pooling's class token and
        # patch mean of each transformer block run so far (over all tokens:
        # tests/test_mae.py checks the means over regions)
        [8, 16, 32],
        (1, _vit_by_hand),
    ),
    "vit-mean": (
        lambda: make(
            "MAETransformer",
            depth=2,
            pooling="mean",
            input_shape=(1, 16),
            pooling_regions=1,
        ),
        SIGNALS,
        [8, 8, 8],  # patch embedding, two transformer blocks
        (1, _vit_by_hand),
    ),
    "vit-cls": (
        lambda: make("MAETransformer", depth=2, pooling="cls", input_shape=(1, 16)),
        SIGNALS,
        [8, 8, 8],
        (1, _vit_by_hand),
    ),
    "tokens": (
        lambda: make("GPTTransformer", tokenizer="char", depth=2),
        TEXTS,
        [8, 8, 8],  # token embedding, two transformer blocks
        (1, _tokens_by_hand),
    ),
    "finetuned": (
        lambda: make("FineTuner"),
        TABLE,
        [8, 4, 2],  # the autoencoder's MLP (8, 4) and bottleneck, fine-tuned
        (0, _finetuned_by_hand),
    ),
}


def _fit(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollapseWarning)  # 1 epoch, tiny data
        return est.fit(X, LABELS)  # the labels of the fine-tuner; others ignore y


@pytest.fixture(scope="module", params=sorted(CASES))
def fitted(request):
    build, X, widths, by_hand = CASES[request.param]
    return _fit(build(), X), X, widths, by_hand


def test_transform_layer_is_a_parameter_of_every_neural_estimator():
    neural = [
        c for c in PUBLIC_ESTIMATORS.values() if issubclass(c, NeuralRepresentation)
    ]
    assert len(neural) >= 12
    for cls in neural:
        param = inspect.signature(cls).parameters["transform_layer"]
        assert param.default == -1 and param.kind is param.KEYWORD_ONLY, cls
        assert cls().get_params()["transform_layer"] == -1
        assert cls(transform_layer=2).transform_layer == 2


def test_transform_layer_width_of_every_block(fitted):
    est, X, widths, _ = fitted
    n = len(widths)
    assert len(encoder_blocks(est._transfer_encoder())) == n
    for k in range(-n, n):
        est.set_params(transform_layer=k)
        Z = est.transform(X)
        assert Z.shape == (len(X), widths[k]) and Z.dtype == np.float32
        assert np.isfinite(Z).all()
        names = est.get_feature_names_out()
        assert len(names) == widths[k]
    est.set_params(transform_layer=-1)


def test_transform_layer_last_block_is_the_default_transform_exactly(fitted):
    est, X, widths, _ = fitted
    default = est.set_params(transform_layer=-1).transform(X)
    last = est.set_params(transform_layer=len(widths) - 1).transform(X)
    est.set_params(transform_layer=-1)
    assert np.array_equal(last, default)
    assert default.shape[1] == est._n_features_out


def test_transform_layer_inner_block_equals_the_first_blocks_by_hand(fitted):
    est, X, _, (k, by_hand) = fitted
    Z = est.set_params(transform_layer=k).transform(X)
    default = est.set_params(transform_layer=-1).transform(X)
    with torch.no_grad():
        expected = by_hand(est, X, k).numpy()
    np.testing.assert_allclose(Z, expected, rtol=1e-5, atol=1e-5)
    assert Z.shape != default.shape or not np.allclose(Z, default)


def test_transform_layer_set_after_fit_needs_no_refit(fitted):
    est, X, widths, _ = fitted
    net, n_epochs = est.net_, est.n_epochs_
    before = {k: v.clone() for k, v in est.net_.module_.state_dict().items()}
    default = est.transform(X)
    for k in range(len(widths)):
        est.set_params(transform_layer=k).transform(X)
    est.set_params(transform_layer=-1)
    assert est.net_ is net and est.n_epochs_ == n_epochs
    after = est.net_.module_.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert np.array_equal(est.transform(X), default)


def test_transform_layer_does_not_change_what_fit_learns():
    inner = make("AutoencoderTransformer", transform_layer=0).fit(TABLE)
    default = make("AutoencoderTransformer").fit(TABLE)
    assert inner.transform(TABLE).shape == (40, 8)
    inner.set_params(transform_layer=-1)
    assert np.array_equal(inner.transform(TABLE), default.transform(TABLE))


def test_transform_layer_set_output_follows_the_block():
    pytest.importorskip("pandas")
    est = make("AutoencoderTransformer", transform_layer=1).fit(TABLE)
    frame = est.set_output(transform="pandas").transform(TABLE)
    assert list(frame.columns) == [f"autoencodertransformer{i}" for i in range(4)]
    assert list(est.get_feature_names_out()) == list(frame.columns)


def test_transform_layer_grid_search_in_a_pipeline():
    pipe = make_pipeline(make("AutoencoderTransformer"), LogisticRegression())
    grid = {"autoencodertransformer__transform_layer": [0, 1, -1]}
    search = GridSearchCV(pipe, grid, cv=2, error_score="raise").fit(TABLE, LABELS)
    assert len(search.cv_results_["mean_test_score"]) == 3
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_params_["autoencodertransformer__transform_layer"]
    assert best in (0, 1, -1)
    width = {0: 8, 1: 4, -1: 2}[best]
    assert search.best_estimator_[0].transform(TABLE).shape == (40, width)


def test_transform_layer_counts_the_blocks_freeze_layers_counts():
    clf = make("FineTuner", freeze_layers=3).fit(TABLE, LABELS)
    assert clf.n_blocks_ == 3
    assert clf.set_params(transform_layer=clf.n_blocks_ - 1).transform(TABLE).shape
    with pytest.raises(ValueError, match="has 3 blocks"):
        clf.set_params(transform_layer=clf.n_blocks_).transform(TABLE)


@pytest.mark.parametrize("bad", [3, -4, 1.0, "0", True, None])
def test_transform_layer_not_a_block_raises(bad):
    est = make("AutoencoderTransformer").fit(TABLE)  # 3 blocks
    est.set_params(transform_layer=bad)
    message = rf"transform_layer={bad!r} .* has 3 blocks .* from -3 to 2"
    with pytest.raises(ValueError, match=message):
        est.transform(TABLE)
    with pytest.raises(ValueError, match=message):
        est.get_feature_names_out()


def test_transform_layer_message_counts_one_block_in_the_singular():
    est = make("CMCTransformer").fit(TABLE)  # its views' encoders: one block
    with pytest.raises(ValueError, match=r"which has 1 block \(those .* -1 to 0"):
        est.set_params(transform_layer=1).transform(TABLE)


def test_transform_layer_not_a_block_raises_at_fit_before_training():
    est = make("AutoencoderTransformer", transform_layer=7)
    with pytest.raises(ValueError, match=r"transform_layer=7 .* has 3 blocks"):
        est.fit(TABLE)
    assert not hasattr(est, "net_")
    clf = make("FineTuner", transform_layer=-9)
    with pytest.raises(ValueError, match=r"transform_layer=-9 .* has 3 blocks"):
        clf.fit(TABLE, LABELS)


def _raw_batch(est, X) -> torch.Tensor:
    """X as the estimator's TransferEncoder takes it (padded ids for tokens)."""
    if hasattr(est, "_token_data"):
        data = est._token_data(X)
        return data.take(torch.arange(len(data)))
    return torch.as_tensor(X)


def test_cut_encoder_keeps_the_first_blocks_and_computes_their_features(fitted):
    est, X, widths, _ = fitted
    x = _raw_batch(est, X)
    whole = est._transfer_encoder().eval()
    blocks = encoder_blocks(whole)
    for k in range(len(widths) - 1):
        with torch.no_grad():
            expected = block_features(whole, x, k)
        cut = cut_encoder(est._transfer_encoder(), k).eval()
        assert cut.out_features == widths[k]
        assert block_widths(cut) == widths[: k + 1]
        assert len(encoder_blocks(cut)) == k + 1
        kept = sum(p.numel() for b in blocks[: k + 1] for p in b.params)
        assert sum(p.numel() for p in cut.parameters()) == kept
        with torch.no_grad():
            torch.testing.assert_close(cut(x), expected, rtol=1e-5, atol=1e-5)
    assert cut_encoder(whole, len(widths) - 1) is whole


def test_a_fine_tuner_reads_the_block_its_representation_transforms_from(fitted):
    est, X, widths, _ = fitted
    k = len(widths) - 2
    rep = est.set_params(transform_layer=k)
    try:
        expected = rep.transform(X)
        ft = FineTuner(rep, strategy="frozen", **_TINY).fit(X, LABELS)
    finally:
        est.set_params(transform_layer=-1)
    assert ft.n_blocks_ == k + 1
    np.testing.assert_allclose(ft.transform(X), expected, rtol=1e-5, atol=1e-5)


def test_block_widths_of_a_users_module_leave_its_mode_as_it_was():
    # The widths come from a forward pass in eval mode; a module given in
    # eval mode stayed in training mode (dropout on) after it.
    from torch import nn

    from sk_replearn.nn.surgery import TransferEncoder

    body = nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.5), nn.Linear(8, 4))
    enc = TransferEncoder(body, (6,), 4).eval()
    assert block_widths(enc)[-1] == 4
    assert not enc.training and not body[1].training
    enc.train()
    block_widths(enc)
    assert enc.training and body[1].training


def test_export_encoder_of_a_fine_tuner_at_an_inner_block_is_a_trainable_copy():
    """At an inner transform_layer, a fine-tuner's exported encoder gives its
    transform, with every weight trainable (its frozen blocks too), and is a
    copy: training it changes neither the fine-tuner's output nor which of
    its own weights are frozen."""
    clf = make("FineTuner", freeze_layers=2, transform_layer=1).fit(TABLE, LABELS)
    own = list(clf.net_.module_.encoder.parameters())
    frozen = [p.requires_grad for p in own]
    assert not all(frozen)
    expected = clf.transform(TABLE)
    encoder = clf.export_encoder()
    assert all(p.requires_grad for p in encoder.parameters())
    with torch.no_grad():
        z = encoder(torch.from_numpy(TABLE)).numpy()
    np.testing.assert_allclose(z, expected, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(1.0)
    np.testing.assert_array_equal(clf.transform(TABLE), expected)
    assert [p.requires_grad for p in own] == frozen


def test_block_features_of_a_layer_that_returns_no_tensor_names_the_layer():
    """A block whose last layer returns a tuple (a GRU) is refused with a
    ValueError naming the layer, for its features and for its width."""
    from torch import nn

    from sk_replearn.nn.surgery import TransferEncoder

    class Recurrent(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(3, 5, batch_first=True)
            self.out = nn.Linear(5, 4)

        def forward(self, x):
            h, _ = self.rnn(x)
            return self.out(h[:, -1])

    enc = TransferEncoder(Recurrent(), (6, 3), 4).eval()
    x = torch.randn(2, 6, 3)
    assert block_features(enc, x, 1).shape == (2, 4)
    with pytest.raises(ValueError, match="GRU in Recurrent returned no tensor"):
        block_features(enc, x, 0)
    with pytest.raises(ValueError, match="GRU in Recurrent returned no tensor"):
        block_widths(enc)


def test_block_features_of_a_module_that_lists_its_blocks_read_each_blocks_end():
    """For a module that lists its own blocks, a block's features are the
    output of its last layer (after the activation), not of its first."""
    from torch import nn

    from sk_replearn.nn.surgery import Block, TransferEncoder

    class Listed(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = nn.Linear(6, 5)
            self.act = nn.ReLU()
            self.last = nn.Linear(5, 4)

        def forward(self, x):
            return self.last(self.act(self.first(x)))

        def transfer_blocks(self):
            return [Block.of(self.first, self.act), Block.of(self.last)]

    torch.manual_seed(0)
    body = Listed()
    enc = TransferEncoder(body, (6,), 4).eval()
    x = torch.randn(8, 6)
    assert block_widths(enc) == [5, 4]
    with torch.no_grad():
        inner = block_features(enc, x, 0)
        torch.testing.assert_close(inner, torch.relu(body.first(x)))
    assert (inner == 0).any()  # the activation ran


def test_the_last_block_of_a_convnet_under_a_head_is_the_convnets_own_output():
    """Under a head, a ConvNet's last block gives the ConvNet's own output
    (its pooled grid, flattened), read by block_features and kept by
    cut_encoder, not a plain channel average."""
    import copy

    from torch import nn

    from sk_replearn.nn import CNNEncoder
    from sk_replearn.nn.surgery import TransferEncoder

    torch.manual_seed(0)
    body = CNNEncoder((1, 8, 8), channels=(4, 6))  # pooled to 2 x 2: 24 wide
    head = nn.Linear(body.out_features, 3)
    enc = TransferEncoder(body, (1, 8, 8), 3, head=head).eval()
    x = torch.randn(5, 64)
    assert block_widths(enc) == [4, 24, 3]
    with torch.no_grad():
        expected = body(x.reshape(5, 1, 8, 8))
        torch.testing.assert_close(block_features(enc, x, 1), expected)
        cut = cut_encoder(copy.deepcopy(enc), 1).eval()
        assert cut.out_features == 24
        torch.testing.assert_close(cut(x), expected)


def test_block_features_of_an_mlp_on_images_flatten_each_sample_first():
    """An MLP on samples of several dimensions (images) reads each sample
    flattened, at an inner block as in its own forward pass."""
    from sk_replearn.nn import MLPEncoder
    from sk_replearn.nn.surgery import TransferEncoder

    torch.manual_seed(0)
    body = MLPEncoder((1, 4, 4), hidden_sizes=(5, 3))
    enc = TransferEncoder(body, (1, 4, 4), 3).eval()
    x = torch.randn(6, 16)
    assert block_widths(enc) == [5, 3]
    with torch.no_grad():
        expected = body.layers[:3](x)  # Linear, LayerNorm, ReLU on 16 pixels
        torch.testing.assert_close(block_features(enc, x, 0), expected)


def test_block_features_and_cut_encoder_refuse_a_block_out_of_range():
    """A block index below 0 or past the last block raises IndexError, from
    block_features as from cut_encoder (no negative indexing)."""
    from sk_replearn.nn import MLPEncoder
    from sk_replearn.nn.surgery import TransferEncoder

    enc = TransferEncoder(MLPEncoder((6,), hidden_sizes=(8, 4)), (6,), 4).eval()
    x = torch.randn(3, 6)
    for bad in (-1, 2):
        with pytest.raises(IndexError, match=rf"block={bad} .* 2 blocks"):
            block_features(enc, x, bad)
        with pytest.raises(IndexError, match=rf"block={bad} .* 2 blocks"):
            cut_encoder(enc, bad)
    assert len(encoder_blocks(enc)) == 2  # left as it was


def test_the_head_below_a_block_of_loose_weights_is_read_but_not_cut():
    """With weights outside the body and the head (a trainable input layer),
    the head's block gives head(body(x)); cutting there is refused."""
    from torch import nn

    from sk_replearn.nn import MLPEncoder
    from sk_replearn.nn.surgery import TransferEncoder

    torch.manual_seed(0)
    prep, body, head = nn.Linear(6, 6), MLPEncoder((6,), (8, 4)), nn.Linear(4, 2)
    enc = TransferEncoder(body, (6,), 2, prep=prep, head=head).eval()
    blocks = encoder_blocks(enc)
    assert len(blocks) == 4 and blocks[3].params == list(prep.parameters())
    assert block_widths(enc) == [8, 4, 2, 2]
    x = torch.randn(5, 6)
    with torch.no_grad():
        torch.testing.assert_close(block_features(enc, x, 2), head(body(prep(x))))
        torch.testing.assert_close(block_features(enc, x, 1), body(prep(x)))
    with pytest.raises(ValueError, match="cannot be cut after block 2"):
        cut_encoder(enc, 2)


def test_block_widths_of_a_bottleneck_under_a_head_are_its_blocks_outputs():
    """Under a head, a Bottleneck's blocks are its ConvNet's (the last one
    the ConvNet's own output) and its linear layer, as wide as its
    components; every width is that of block_features' output."""
    from torch import nn

    from sk_replearn.nn import CNNEncoder
    from sk_replearn.nn.heads import Bottleneck
    from sk_replearn.nn.surgery import TransferEncoder

    torch.manual_seed(0)
    body = Bottleneck(CNNEncoder((1, 8, 8), channels=(4, 6)), 3)
    enc = TransferEncoder(body, (1, 8, 8), 2, head=nn.Linear(3, 2)).eval()
    assert block_widths(enc) == [4, 24, 3, 2]
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(block_features(enc, x, 1), body.encoder(x))
        torch.testing.assert_close(block_features(enc, x, 2), body(x))
        measured = [block_features(enc, x, k).shape[1] for k in range(4)]
    assert measured == [4, 24, 3, 2]


def test_block_widths_of_a_users_module_leave_its_norm_statistics_untouched():
    """Measuring the widths of a module with batch norm changes none of its
    running statistics, whatever mode the module is in."""
    from torch import nn

    from sk_replearn.nn.surgery import TransferEncoder

    torch.manual_seed(0)
    body = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Linear(8, 4))
    enc = TransferEncoder(body, (6,), 4).train()
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    assert block_widths(enc) == [8, 8, 4]
    after = enc.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_layer_encoder_is_the_encoder_read_at_one_block():
    """LayerEncoder gives block_features of its block, with that block's
    width as out_features and the encoder's input shape."""
    from sk_replearn.nn import ResNetEncoder
    from sk_replearn.nn.layers import LayerEncoder
    from sk_replearn.nn.surgery import TransferEncoder

    torch.manual_seed(0)
    enc = TransferEncoder(ResNetEncoder((1, 16), channels=(4, 6)), (1, 16), 6)
    enc.eval()
    layer = LayerEncoder(enc, 1).eval()
    assert (layer.out_features, layer.input_shape, layer.block) == (4, (1, 16), 1)
    x = torch.randn(5, 16)
    with torch.no_grad():
        z = layer(x)
        torch.testing.assert_close(z, block_features(enc, x, 1))
    assert z.shape == (5, 4)


@pytest.mark.parametrize("pooling", ["last", "cls"])
def test_inner_block_of_a_token_encoder_pools_as_the_encoder_does(pooling):
    """An inner block of a token transformer is pooled by the encoder's own
    pooling: the first token, or each sequence's last real token."""
    from sk_replearn.nn.sequence import TokenEncoder
    from sk_replearn.nn.surgery import TransferEncoder

    torch.manual_seed(0)
    body = TokenEncoder(30, 6, embed_dim=8, depth=2, num_heads=2, pooling=pooling)
    enc = TransferEncoder(body, None, 8).eval()
    ids = torch.tensor([[5, 6, 7, PAD], [8, 9, PAD, PAD]])
    with torch.no_grad():
        hidden = body.forward_tokens(ids, n_blocks=1)  # (2, 4, 8)
        z = block_features(enc, ids, 1)
    last = [2, 1] if pooling == "last" else [0, 0]
    torch.testing.assert_close(z, hidden[torch.arange(2), last])


def test_a_cut_mlp_describes_the_layers_it_keeps():
    """An MLP cut after an inner block reports the hidden sizes and width of
    the layers it kept (what a decoder mirroring it reads)."""
    from sk_replearn.nn import MLPEncoder
    from sk_replearn.nn.surgery import TransferEncoder

    body = MLPEncoder((6,), hidden_sizes=(8, 5, 3))
    cut = cut_encoder(TransferEncoder(body, (6,), 3), 1)
    assert tuple(cut.body.hidden_sizes) == (8, 5)
    assert cut.body.out_features == cut.out_features == 5
    assert len(cut.body.layers) == 6  # two of Linear, LayerNorm, ReLU


@pytest.mark.parametrize("blocks_per_stage", [1, 2])
def test_a_cut_convnet_lists_the_stage_widths_it_keeps(blocks_per_stage):
    """After a cut, ``channels`` ends at the cut's width, as hidden_sizes does."""
    from sk_replearn.nn import CNNEncoder, ResNetEncoder
    from sk_replearn.nn.surgery import TransferEncoder

    cnn = TransferEncoder(CNNEncoder((1, 8, 8), channels=(4, 6)), (1, 8, 8), 24)
    assert cut_encoder(cnn, 0).body.channels == (4,)
    n_blocks = 1 + 3 * blocks_per_stage  # the stem, then three stages
    for k in range(n_blocks - 1):
        resnet = ResNetEncoder((1, 40), blocks_per_stage=blocks_per_stage)
        cut = cut_encoder(TransferEncoder(resnet, (1, 40), 128), k)
        stages = 1 + max(k - 1, 0) // blocks_per_stage
        assert cut.body.channels == (32, 64, 128)[:stages]
        assert cut.body.channels[-1] == cut.out_features
