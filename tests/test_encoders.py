"""Tests of the building blocks: sk_replearn.nn (encoders, patches, heads)."""

import math
from fractions import Fraction

import pytest
import torch
from torch import nn

from sk_replearn.nn import (
    DECODER_NAMES,
    ENCODER_NAMES,
    CNNEncoder,
    ConvDecoder,
    MLPDecoder,
    MLPEncoder,
    ProjectionHead,
    Prototypes,
    ResNetEncoder,
    SignalAvgPool,
    SignalBatchNorm,
    SignalConv,
    ViTDecoder,
    ViTEncoder,
    _signal_layers,
    auto_encoder_kwargs,
    build_decoder,
    build_encoder,
    patchify,
    random_masking,
    resolve_encoder,
    sincos_pos_embed_1d,
    sincos_pos_embed_2d,
    unpatchify,
)
from sk_replearn.nn.sequence import TokenEncoder
from sk_replearn.nn.surgery import TransferEncoder, encoder_blocks

TABULAR_SHAPES = [(64,), (5,)]
SIGNAL_SHAPES = [(1, 40), (2, 37)]
IMAGE_SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]
ALL_SHAPES = TABULAR_SHAPES + SIGNAL_SHAPES + IMAGE_SHAPES
ROUND_TRIP_SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 40), (2, 37), (64,)]
NAMED_ENCODERS = [n for n in ENCODER_NAMES if n != "auto"]
ENCODER_CLASSES = {
    "mlp": MLPEncoder,
    "cnn": CNNEncoder,
    "resnet": ResNetEncoder,
    "vit": ViTEncoder,
}
SPATIAL_ENCODERS = ["cnn", "resnet", "vit"]
MASK_RATIOS = [0.25, 0.5, 0.75, 0.9]
BATCH = 3


def _applicable(name, shape):
    return name in ("mlp", "auto") or len(shape) > 1


ENCODER_CASES = [
    (name, shape)
    for name in ENCODER_NAMES
    for shape in ALL_SHAPES
    if _applicable(name, shape)
]
ROUND_TRIP_CASES = [
    (name, shape)
    for name in ENCODER_NAMES
    for shape in ROUND_TRIP_SHAPES
    if _applicable(name, shape)
]


@pytest.fixture(autouse=True)
def _seed_one_thread():
    # Tensors here are tiny: extra threads only add overhead, and on a busy
    # machine oversubscribed threads slow these tests several-fold.
    torch.manual_seed(0)
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


# -- build_encoder -------------------------------------------------------------
@pytest.mark.parametrize(("name", "shape"), ENCODER_CASES)
def test_build_encoder_output_shape(name, shape):
    enc = build_encoder(name, shape)
    z = enc(torch.randn(BATCH, *shape))
    assert isinstance(enc.out_features, int)
    assert z.shape == (BATCH, enc.out_features)
    assert torch.isfinite(z).all()


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((64,), MLPEncoder), ((1, 40), ResNetEncoder), ((1, 8, 8), CNNEncoder)],
)
def test_build_encoder_auto_picks_by_shape(shape, expected):
    assert type(build_encoder("auto", shape)) is expected


@pytest.mark.parametrize(
    ("shape", "expected"), [((64,), "mlp"), ((1, 40), "cnn"), ((1, 8, 8), "cnn")]
)
def test_resolve_encoder_mirrored_auto_has_a_mirror_decoder(shape, expected):
    assert resolve_encoder("auto", shape, mirrored=True) == expected
    assert resolve_encoder("vit", shape, mirrored=True) == "vit"


def _assert_every_parameter_learns(model: torch.nn.Module, loss) -> None:
    """Every parameter gets a gradient that is not zero, from the first step on.

    A gradient of zeros is no flow (a detached output gives one). The
    ResNet's residual branches start as the identity (their last batch
    norm's scale is zero, Goyal et al. 2017), so their weights get zeros at
    the first step by design: the check reads the gradients of the second.
    """
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    loss().backward()
    opt.step()
    opt.zero_grad()
    loss().backward()
    for pname, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", NAMED_ENCODERS)
def test_build_encoder_gradients_flow(name):
    shape = (1, 8, 8)
    enc = build_encoder(name, shape)
    x = torch.randn(BATCH, *shape, requires_grad=True)
    enc(x).pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    _assert_every_parameter_learns(enc, lambda: enc(x).pow(2).mean())


@pytest.mark.parametrize("name", NAMED_ENCODERS)
def test_build_encoder_passes_kwargs(name):
    kwargs = {
        "mlp": {"hidden_sizes": (32, 8)},
        "cnn": {"channels": (4, 8), "pool_size": 1},
        "resnet": {"channels": (4, 8), "blocks_per_stage": 2},
        "vit": {"embed_dim": 16, "depth": 1, "num_heads": 2},
    }[name]
    enc = build_encoder(name, (1, 8, 8), **kwargs)
    assert isinstance(enc, ENCODER_CLASSES[name])
    assert enc.out_features in (8, 16)
    assert enc(torch.randn(2, 1, 8, 8)).shape == (2, enc.out_features)


@pytest.mark.parametrize("name", SPATIAL_ENCODERS)
@pytest.mark.parametrize("shape", TABULAR_SHAPES)
def test_build_encoder_spatial_on_tabular_raises(name, shape):
    with pytest.raises(ValueError, match=r"input_shape.*encoder='mlp'"):
        build_encoder(name, shape)


@pytest.mark.parametrize("name", ["cnn", "vit"])
def test_a_spatial_decoder_on_tabular_names_the_decoder(name):
    # The hint said encoder='mlp' to a user who had set decoder=.
    with pytest.raises(ValueError, match=r"input_shape.*use decoder='mlp'"):
        build_decoder(name, "mlp", (10,), 3)


def test_build_encoder_unknown_name_raises():
    with pytest.raises(ValueError, match=r"encoder='resnt'.*Did you mean 'resnet'"):
        build_encoder("resnt", (1, 8, 8))


def test_build_encoder_bad_kwarg_raises():
    with pytest.raises(TypeError, match=r"'chanels'.*Did you mean 'channels'"):
        build_encoder("cnn", (1, 8, 8), chanels=(4, 8))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"channels": ()}, "channels"),
        ({"channels": (4, -1)}, "channels"),
        ({"kernel_size": 0}, "kernel_size"),
        ({"activation": "tanhh"}, "activation"),
    ],
)
def test_build_encoder_bad_value_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_encoder("cnn", (1, 8, 8), **kwargs)


@pytest.mark.parametrize("shape", [(), (0, 8), (1, 2, 3, 4), "abc"])
def test_build_encoder_bad_input_shape_raises(shape):
    with pytest.raises(ValueError, match="input_shape"):
        build_encoder("mlp", shape)


def test_build_encoder_bad_type_raises():
    with pytest.raises(TypeError, match="encoder"):
        build_encoder(42, (8,))


class _WithOut(nn.Module):
    def __init__(self, input_shape, width=7):
        super().__init__()
        self.fc = nn.Linear(math.prod(input_shape), width)
        self.out_features = width

    def forward(self, x):
        return self.fc(x.flatten(1))


class _WithoutOut(nn.Module):
    def __init__(self, input_shape, width=5):
        super().__init__()
        self.fc = nn.Linear(math.prod(input_shape), width)
        self.bn = nn.BatchNorm1d(width)

    def forward(self, x):
        return self.bn(self.fc(x.flatten(1)))


class _BadOutput(nn.Module):
    def __init__(self, input_shape):
        super().__init__()
        self.fc = nn.Linear(input_shape[-1], 4)

    def forward(self, x):
        return self.fc(x)  # keeps the extra dims of image input


def test_build_encoder_user_class_with_out_features():
    enc = build_encoder(_WithOut, (1, 8, 8), width=9)
    assert isinstance(enc, _WithOut) and enc.out_features == 9


def test_build_encoder_user_class_infers_out_features():
    enc = build_encoder(_WithoutOut, (1, 8, 8), width=6)
    assert enc.out_features == 6
    assert enc.training  # the probe ran in eval mode and restored the mode
    assert enc.bn.num_batches_tracked.item() == 0  # BN statistics untouched
    assert enc(torch.randn(BATCH, 1, 8, 8)).shape == (BATCH, 6)


def test_build_encoder_user_instance_is_copied_not_changed():
    module = _WithoutOut((4,))
    enc = build_encoder(module, (4,))
    assert enc is not module and enc.out_features == 5
    assert not hasattr(module, "out_features")  # the caller's module untouched
    for a, b in zip(enc.parameters(), module.parameters()):
        assert a is not b and torch.equal(a, b)
    with torch.no_grad():
        enc.fc.weight.add_(1.0)  # training the copy leaves the original as it was
    assert not torch.equal(enc.fc.weight, module.fc.weight)


def test_build_encoder_zero_argument_factory():
    enc = build_encoder(
        lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), (1, 8, 8)
    )
    assert enc.out_features == 3
    assert enc(torch.randn(BATCH, 1, 8, 8)).shape == (BATCH, 3)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: "not a module", "must return an nn.Module; it returned str"),
        (lambda width: nn.Linear(4, width), "called with no arguments"),
    ],
)
def test_build_encoder_bad_factory_raises(factory, match):
    with pytest.raises(TypeError, match=match):
        build_encoder(factory, (4,))


def test_build_encoder_module_with_kwargs_raises():
    with pytest.raises(TypeError, match="encoder_kwargs.*cannot be applied"):
        build_encoder(nn.Linear(4, 2), (4,), width=3)


def test_build_encoder_user_class_bad_output_raises():
    with pytest.raises(ValueError, match=r"\(B, out_features\)"):
        build_encoder(_BadOutput, (1, 8, 8))


class _WrongOut(_WithOut):
    def __init__(self, input_shape, width=5):
        super().__init__(input_shape, width)
        self.out_features = width + 2  # declared, but not what forward returns


@pytest.mark.parametrize("given", ["instance", "class"])
def test_build_encoder_checks_a_module_that_declares_out_features(given):
    # nn.Linear declares out_features (for its own input width); it skipped the
    # probe, and a mismatch failed inside the training loop, batch after batch.
    linear = nn.Linear(64, 6) if given == "instance" else _WrongOut
    match = (
        r"failed on a zero batch of shape \(2, 10\)"
        if given == "instance"
        else r"has out_features=7 but returns 5 features"
    )
    with pytest.raises(ValueError, match=match):
        build_encoder(linear, (10,))
    assert build_encoder(nn.Linear(10, 6), (10,)).out_features == 6


def test_build_encoder_user_class_bad_kwarg_raises():
    with pytest.raises(TypeError, match="'widht'.*Did you mean 'width'"):
        build_encoder(_WithOut, (4,), widht=3)


# -- build_decoder -------------------------------------------------------------
@pytest.mark.parametrize(("name", "shape"), ROUND_TRIP_CASES)
def test_build_decoder_auto_round_trips_shape(name, shape):
    enc = build_encoder(name, shape)
    dec = build_decoder("auto", enc, shape, in_features=enc.out_features)
    x = torch.randn(BATCH, *shape)
    assert dec(enc(x)).shape == x.shape


@pytest.mark.parametrize(("name", "shape"), ROUND_TRIP_CASES)
def test_build_decoder_auto_from_name_round_trips_shape(name, shape):
    dec = build_decoder("auto", name, shape, in_features=10)
    assert dec(torch.randn(BATCH, 10)).shape == (BATCH, *shape)


@pytest.mark.parametrize(
    ("encoder", "expected"),
    [
        ("mlp", MLPDecoder),
        ("cnn", ConvDecoder),
        ("resnet", ConvDecoder),
        ("vit", ViTDecoder),
        (_WithOut, MLPDecoder),
    ],
)
def test_build_decoder_auto_mirrors_encoder(encoder, expected):
    assert type(build_decoder("auto", encoder, (1, 8, 8), 16)) is expected


def test_build_decoder_auto_mirrors_built_encoder_sizes():
    mlp = build_encoder("mlp", (64,), hidden_sizes=(48, 24, 12))
    dec = build_decoder("auto", mlp, (64,), in_features=12)
    widths = [m.out_features for m in dec.layers if isinstance(m, nn.Linear)]
    assert widths == [12, 24, 48, 64]
    vit = build_encoder("vit", (1, 8, 8), patch_size=4, embed_dim=32, num_heads=2)
    vdec = build_decoder("auto", vit, (1, 8, 8), in_features=32)
    assert vdec.patch_size == 4 and vdec.proj.out_features == 32


@pytest.mark.parametrize("kernel_size", [2, 3, 4, 5])
@pytest.mark.parametrize("shape", [(1, 7, 9), (1, 1, 1), (2, 3), (1, 40)])
def test_conv_decoder_exact_size_any_kernel(kernel_size, shape):
    enc = CNNEncoder(shape, channels=(4, 8, 8), kernel_size=kernel_size)
    dec = build_decoder("auto", enc, shape, enc.out_features)
    assert dec(enc(torch.randn(2, *shape))).shape == (2, *shape)


@pytest.mark.parametrize("name", [n for n in DECODER_NAMES if n != "auto"])
def test_build_decoder_named(name):
    dec = build_decoder(name, "mlp", (1, 8, 8), in_features=4)
    assert dec(torch.randn(2, 4)).shape == (2, 1, 8, 8)


def test_build_decoder_unknown_name_raises():
    with pytest.raises(ValueError, match=r"decoder='cnnn'.*Did you mean 'cnn'"):
        build_decoder("cnnn", "cnn", (1, 8, 8), 4)


class _UserDecoder(nn.Module):
    def __init__(self, input_shape, in_features, scale=1.0):
        super().__init__()
        self.input_shape = input_shape
        self.fc = nn.Linear(in_features, math.prod(input_shape))

    def forward(self, z):
        return self.fc(z).reshape(-1, *self.input_shape)


def test_build_decoder_user_class():
    dec = build_decoder(_UserDecoder, "cnn", (1, 8, 8), in_features=4, scale=2.0)
    assert dec(torch.randn(2, 4)).shape == (2, 1, 8, 8)


class _WrongDecoder(_UserDecoder):
    def forward(self, z):
        return super().forward(z).flatten(1)  # (B, prod(input_shape))


def test_build_decoder_user_class_wrong_shape_raises():
    with pytest.raises(ValueError, match=r"expected \(2, 1, 8, 8\)"):
        build_decoder(_WrongDecoder, "cnn", (1, 8, 8), in_features=4)


@pytest.mark.parametrize("name", NAMED_ENCODERS)
@pytest.mark.parametrize("shape", [(1, 8, 8), (2, 37)])
def test_build_decoder_gradients_flow(name, shape):
    enc = build_encoder(name, shape)
    dec = build_decoder("auto", enc, shape, enc.out_features)
    x = torch.randn(2, *shape)
    model = torch.nn.Sequential(enc, dec)
    _assert_every_parameter_learns(model, lambda: ((model(x) - x) ** 2).mean())


def test_cnn_autoencoder_reduces_reconstruction_loss():
    shape = (1, 8, 8)
    enc = CNNEncoder(shape, channels=(8, 16))
    dec = build_decoder("auto", enc, shape, enc.out_features)
    x = torch.rand(32, *shape)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-2)
    losses = []
    for _ in range(20):
        loss = ((dec(enc(x)) - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_cnn_strides_keep_resolution_where_they_are_one():
    x = torch.randn(3, 1, 8, 8)
    default = CNNEncoder((1, 8, 8), channels=(4, 8))
    assert default.strides == (2, 2)
    assert default.features(x).shape == (3, 8, 2, 2)
    small = CNNEncoder((1, 8, 8), (4, 8, 16), strides=(1, 2, 2), pool_size=1)
    assert small.features(x).shape == (3, 16, 2, 2)
    assert small(x).shape == (3, small.out_features) == (3, 16)


@pytest.mark.parametrize("strides", [(1,), (1, 3), (2.0, 2), "12", 2])
def test_cnn_bad_strides_raise_naming_the_parameter(strides):
    with pytest.raises(ValueError, match=r"strides must give one stride, 1 or 2"):
        CNNEncoder((1, 8, 8), channels=(4, 8), strides=strides)


def test_auto_encoder_keeps_small_images_at_full_resolution():
    enc = build_encoder("auto", (1, 8, 8))
    assert isinstance(enc, CNNEncoder)
    assert (enc.channels, enc.strides, enc.pool_size) == ((16, 32, 64), (1, 2, 2), 2)
    assert enc.features(torch.randn(2, 1, 8, 8)).shape == (2, 64, 2, 2)
    assert enc(torch.randn(2, 1, 8, 8)).shape == (2, 256)
    assert build_encoder("auto", (3, 16, 16)).strides == (1, 2, 2)
    # larger images and explicit kwargs keep the strided CNN's defaults
    assert build_encoder("auto", (1, 17, 17)).strides == (2, 2)
    assert build_encoder("auto", (1, 28, 28)).strides == (2, 2)
    given = build_encoder("auto", (1, 8, 8), channels=(4, 8))
    assert (given.channels, given.strides, given.pool_size) == ((4, 8), (2, 2), 2)
    assert build_encoder("cnn", (1, 8, 8)).strides == (2, 2)
    # a mirrored encoder (the autoencoder's) and signals are left alone
    assert auto_encoder_kwargs((1, 8, 8), mirrored=True) == {}
    assert auto_encoder_kwargs((1, 8)) == {}


# -- ViT -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "patch_size"),
    [((1, 8, 8), 2), ((1, 28, 28), 4), ((3, 32, 32), 4), ((1, 40), 2), ((2, 37), 1)],
)
def test_vit_encoder_auto_patch_size(shape, patch_size):
    enc = ViTEncoder(shape, depth=1)
    assert enc.patch_size == patch_size
    assert enc.num_patches == math.prod(s // patch_size for s in shape[1:])
    assert 1 <= enc.num_patches <= 64


@pytest.mark.parametrize("shape", SIGNAL_SHAPES + IMAGE_SHAPES)
def test_vit_encoder_stages_compose(shape):
    enc = ViTEncoder(shape, depth=2).eval()
    x = torch.randn(BATCH, *shape)
    tokens = enc.embed(x)
    assert tokens.shape == (BATCH, enc.num_patches, enc.embed_dim)
    full = enc.forward_tokens(tokens)
    assert full.shape == (BATCH, 1 + enc.num_patches, enc.embed_dim)
    torch.testing.assert_close(enc.pool(full), enc(x))


@pytest.mark.parametrize("shape", [(2, 40), (1, 8, 8), (3, 32, 32)])
def test_vit_encoder_embedding_is_its_strided_convolution(shape):
    # Stored as a convolution (the layout of published ViT weights), applied
    # as a matrix product to patchify's patches: the same map, any channels.
    torch.manual_seed(0)
    enc = ViTEncoder(shape, depth=1)
    x = torch.randn(BATCH, *shape)
    conv = enc.patch_embed(x).flatten(2).transpose(1, 2) + enc.pos_embed
    torch.testing.assert_close(enc.embed(x), conv)
    # A subset of the patches, with their positions: those tokens alone.
    keep = torch.stack([torch.randperm(enc.num_patches)[:3] for _ in range(BATCH)])
    patches = patchify(x, enc.patch_size)
    visible = patches.gather(1, keep[:, :, None].expand(-1, -1, patches.shape[2]))
    expected = conv.gather(1, keep[:, :, None].expand(-1, -1, enc.embed_dim))
    torch.testing.assert_close(enc.embed_patches(visible, keep), expected)


def test_vit_encoder_forward_tokens_on_visible_subset():
    enc = ViTEncoder((1, 28, 28), depth=1)
    visible, mask, _ = random_masking(enc.embed(torch.randn(BATCH, 1, 28, 28)), 0.75)
    latent = enc.forward_tokens(visible)
    assert latent.shape == (BATCH, 1 + 12, enc.embed_dim)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_vit_encoder_pooling(pooling):
    enc = ViTEncoder((1, 8, 8), depth=1, pooling=pooling).eval()
    x = torch.randn(BATCH, 1, 8, 8)
    tokens = enc.forward_tokens(enc.embed(x))
    expected = tokens[:, 0] if pooling == "cls" else tokens[:, 1:].mean(1)
    torch.testing.assert_close(enc(x), expected)


def test_vit_encoder_mean_over_regions():
    enc = ViTEncoder((1, 40), embed_dim=16, depth=1, regions=4).eval()  # 20 tokens
    x = torch.randn(BATCH, 1, 40)
    patches = enc.forward_tokens(enc.embed(x))[:, 1:]
    expected = torch.cat([patches[:, k : k + 5].mean(1) for k in (0, 5, 10, 15)], 1)
    assert enc.out_features == 4 * 16
    torch.testing.assert_close(enc(x), expected)
    # An encoder pickled before regions existed averages over every token.
    del enc.regions
    torch.testing.assert_close(enc(x), patches.mean(1))
    assert enc.set_pooling("blocks").out_features == 2 * 16


def test_vit_encoder_positions_are_fixed_buffer():
    enc = ViTEncoder((1, 8, 8), embed_dim=32, num_heads=2, depth=1)
    assert "pos_embed" in dict(enc.named_buffers())
    assert "pos_embed" not in dict(enc.named_parameters())
    torch.testing.assert_close(enc.pos_embed[0], sincos_pos_embed_2d(32, 4, 4))
    assert enc.cls_token.shape == (1, 1, 32)
    assert 0 < enc.cls_token.std() < 0.1  # truncated normal, std 0.02


@pytest.mark.parametrize(
    ("shape", "kwargs", "match"),
    [
        ((1, 28, 28), {"patch_size": 3}, r"patch_size=3.*\[1, 2, 4, 7, 14, 28\]"),
        ((1, 40), {"patch_size": 7}, "patch_size=7"),
        ((1, 8, 8), {"embed_dim": 30, "num_heads": 3}, "embed_dim=30"),
        ((1, 8, 8), {"embed_dim": 64, "num_heads": 5}, "num_heads=5"),
        ((1, 8, 8), {"pooling": "max"}, "pooling"),
        ((1, 8, 8), {"regions": 17}, "regions=17 is more than the 16 patch tokens"),
        ((1, 8, 8), {"regions": 2, "pooling": "cls"}, "pooling='cls' does not read"),
        ((1, 8, 8), {"regions": 0}, "regions=0 must be an int >= 1"),
        ((64,), {}, "input_shape"),
    ],
)
def test_vit_encoder_bad_config_raises(shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_encoder("vit", shape, **kwargs)


def test_vit_encoder_auto_patch_size_impossible_raises():
    with pytest.raises(ValueError, match="patch_size"):
        ViTEncoder((1, 1009))  # prime and too long for one token per step


# -- vit.py tensor functions ---------------------------------------------------
def test_patchify_matches_naive_loop():
    x = torch.randn(2, 3, 6, 4)
    p = 2
    patches = patchify(x, p)
    assert patches.shape == (2, 6, p * p * 3)
    for i in range(3):
        for j in range(2):
            naive = x[:, :, i * p : (i + 1) * p, j * p : (j + 1) * p]  # (N, C, p, p)
            expected = naive.permute(0, 2, 3, 1).reshape(2, -1)  # (p, q, c) order
            torch.testing.assert_close(patches[:, i * 2 + j], expected)


def test_patchify_1d_matches_naive_loop():
    x = torch.randn(2, 3, 12)
    patches = patchify(x, 4)
    assert patches.shape == (2, 3, 12)
    for i in range(3):
        expected = x[:, :, i * 4 : (i + 1) * 4].permute(0, 2, 1).reshape(2, -1)
        torch.testing.assert_close(patches[:, i], expected)


@pytest.mark.parametrize(
    ("shape", "p"), [((1, 8, 8), 2), ((3, 32, 32), 4), ((2, 12, 6), 3), ((2, 40), 5)]
)
def test_unpatchify_inverts_patchify(shape, p):
    x = torch.randn(BATCH, *shape)
    assert torch.equal(unpatchify(patchify(x, p), p, shape), x)


def test_patchify_bad_patch_size_raises():
    with pytest.raises(ValueError, match="patch_size=3"):
        patchify(torch.zeros(1, 1, 8, 8), 3)
    with pytest.raises(ValueError, match="expected"):
        unpatchify(torch.zeros(1, 4, 5), 2, (1, 4, 4))


@pytest.mark.parametrize(("dim", "length"), [(8, 10), (64, 49), (2, 3)])
def test_sincos_pos_embed_1d_shape_and_distinct(dim, length):
    emb = sincos_pos_embed_1d(dim, length)
    assert emb.shape == (length, dim) and emb.dtype == torch.float32
    assert emb.abs().max() <= 1.0
    assert torch.cdist(emb, emb).add(torch.eye(length)).min() > 1e-3
    torch.testing.assert_close(
        emb[0], torch.cat([torch.zeros(dim // 2), torch.ones(dim // 2)])
    )


@pytest.mark.parametrize(("dim", "gh", "gw"), [(16, 4, 4), (64, 7, 7), (8, 2, 5)])
def test_sincos_pos_embed_2d_shape_and_distinct(dim, gh, gw):
    emb = sincos_pos_embed_2d(dim, gh, gw)
    assert emb.shape == (gh * gw, dim)
    assert torch.cdist(emb, emb).add(torch.eye(gh * gw)).min() > 1e-3
    grid = emb.reshape(gh, gw, dim)
    # First half encodes the row only, second half the column only.
    torch.testing.assert_close(
        grid[:, :1, : dim // 2].expand(-1, gw, -1), grid[..., : dim // 2]
    )
    torch.testing.assert_close(
        grid[:1, :, dim // 2 :].expand(gh, -1, -1), grid[..., dim // 2 :]
    )


@pytest.mark.parametrize(
    "call", [lambda: sincos_pos_embed_1d(7, 4), lambda: sincos_pos_embed_2d(6, 2, 2)]
)
def test_sincos_pos_embed_bad_dim_raises(call):
    with pytest.raises(ValueError, match="embed_dim"):
        call()


@pytest.mark.parametrize("mask_ratio", MASK_RATIOS)
@pytest.mark.parametrize("length", [10, 16, 49])
def test_random_masking_counts_and_restore(mask_ratio, length):
    n, d = 4, 6
    x = torch.randn(n, length, d)
    visible, mask, ids_restore = random_masking(x, mask_ratio)
    # Exact floor of L * (1 - ratio): 10 * (1 - 0.9) keeps 1 token, not 0.
    n_keep = math.floor(length * (1 - Fraction(str(mask_ratio))))
    assert visible.shape == (n, n_keep, d)
    assert mask.shape == (n, length)
    assert (mask.sum(1) == length - n_keep).all()
    # Visible tokens are exactly the rows where mask == 0.
    for i in range(n):
        kept = x[i][mask[i] == 0]
        assert sorted(map(tuple, kept.tolist())) == sorted(
            map(tuple, visible[i].tolist())
        )
    # Appending placeholders and gathering with ids_restore restores order.
    filler = torch.full((n, length - n_keep, d), float("nan"))
    restored = torch.gather(
        torch.cat([visible, filler], 1), 1, ids_restore[..., None].expand(-1, -1, d)
    )
    keep = mask == 0
    torch.testing.assert_close(restored[keep], x[keep])
    assert restored[~keep].isnan().all()


def test_random_masking_generator_is_reproducible():
    x = torch.randn(2, 16, 4)
    a = random_masking(x, 0.5, generator=torch.Generator().manual_seed(1))
    b = random_masking(x, 0.5, generator=torch.Generator().manual_seed(1))
    for t, u in zip(a, b):
        assert torch.equal(t, u)


@pytest.mark.parametrize("mask_ratio", [0.0, 1.0, -0.1, 1.5, True, "0.5"])
def test_random_masking_bad_ratio_raises(mask_ratio):
    with pytest.raises(ValueError, match="mask_ratio"):
        random_masking(torch.zeros(1, 8, 2), mask_ratio)


def test_random_masking_noise_of_another_shape_raises():
    # a (2, 7) draw for 10 tokens gave a mask over 7 of them, silently
    with pytest.raises(ValueError, match=r"noise has shape \(2, 7\)"):
        random_masking(torch.zeros(2, 10, 3), 0.5, noise=torch.rand(2, 7))


def test_random_masking_keeps_nothing_raises():
    with pytest.raises(ValueError, match="keeps no token"):
        random_masking(torch.zeros(1, 4, 2), 0.9)


# -- heads ---------------------------------------------------------------------
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("last_bn", [False, True])
def test_projection_head_shape_and_layers(num_layers, last_bn):
    head = ProjectionHead(
        32, hidden_features=16, out_features=8, num_layers=num_layers, last_bn=last_bn
    )
    assert head(torch.randn(BATCH, 32)).shape == (BATCH, 8)
    linears = [m for m in head.layers if isinstance(m, nn.Linear)]
    norms = [m for m in head.layers if isinstance(m, nn.BatchNorm1d)]
    assert len(linears) == num_layers
    assert len(norms) == num_layers - 1 + last_bn
    assert linears[-1].out_features == 8


def test_projection_head_defaults_and_no_bn():
    head = ProjectionHead(64)
    assert [m.out_features for m in head.layers if isinstance(m, nn.Linear)] == [
        64,
        128,
    ]
    plain = ProjectionHead(64, batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in plain.layers)


def test_projection_head_biases_and_norms_as_the_papers():
    # A hidden linear followed by batch norm has no bias (the norm's shift
    # replaces it); without batch norm it has one. SimSiam's and MoCo v3's
    # projector ends in a batch norm without scale or shift.
    def hidden(head):
        return [m for m in head.layers if isinstance(m, nn.Linear)][:-1]

    with_bn = ProjectionHead(6, 5, 4, num_layers=3)
    without = ProjectionHead(6, 5, 4, num_layers=3, batch_norm=False)
    assert all(m.bias is None for m in hidden(with_bn))
    assert all(m.bias is not None for m in hidden(without))
    last_bn = ProjectionHead(6, 5, 4, num_layers=3, last_bn=True)
    last = last_bn.layers[-1]
    assert isinstance(last, nn.BatchNorm1d) and not list(last.parameters())
    assert last_bn.layers[-2].bias is None


def test_prototypes_give_cosine_similarities():
    # DINO's logits: the cosine of each embedding with each prototype.
    protos = Prototypes(8, 5)
    z = torch.randn(3, 8)
    weight = protos.weight.detach()
    by_hand = torch.stack(
        [torch.cosine_similarity(z[i : i + 1], weight, dim=1) for i in range(3)]
    )
    torch.testing.assert_close(protos(z), by_hand)
    along = protos(3.0 * weight)  # each prototype's own direction
    torch.testing.assert_close(along.diagonal(), torch.ones(5))


def test_projection_head_bad_value_raises():
    with pytest.raises(ValueError, match="num_layers"):
        ProjectionHead(8, num_layers=0)


def test_build_encoder_accepts_numpy_ints():
    np = pytest.importorskip("numpy")
    enc = build_encoder("vit", (1, 8, 8), patch_size=np.int64(4), depth=np.int64(1))
    assert enc.patch_size == 4 and type(enc.patch_size) is int
    cnn = build_encoder("cnn", (1, 8, 8), channels=np.array([4, 8]))
    assert cnn.channels == (4, 8) and cnn.out_features == 32
    assert ProjectionHead(np.int64(8), out_features=np.int64(4)).out_features == 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"activation": "swish"}, "activation"), ({"norm": "group"}, "norm")],
)
def test_mlp_encoder_single_layer_still_validates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLPEncoder((8,), hidden_sizes=(4,), **kwargs)


def _block_inputs(masks: str, length: int) -> tuple[torch.Tensor, dict]:
    x = torch.randn(3, length, 16, dtype=torch.float64)
    if masks == "causal":
        mask = nn.Transformer.generate_square_subsequent_mask(length)
        return x, {"src_mask": mask.double(), "is_causal": True}
    if masks == "padding":
        pad = torch.zeros(3, length, dtype=torch.bool)
        pad[0, -2:] = True
        return x, {"src_key_padding_mask": pad}
    if masks == "per_head":  # (batch * heads, n, n): one mask per sample and head
        mask = torch.randn(3 * 4, length, length, dtype=torch.float64)
        return x, {"src_mask": mask}
    return x, {}


def test_transformer_blocks_are_pre_norm():
    # Pre-norm (GPT-2's and ViT's layout, the docs' "pre-norm" token
    # encoder): x + attn(norm1(x)), then + mlp(norm2(.)). A post-norm block
    # was caught only by MAE's learning test. By hand with the block's own
    # sub-layers, in evaluation mode (no dropout).
    from sk_replearn.nn import transformer

    torch.manual_seed(0)
    block = transformer.transformer_blocks(16, 1, 4, 2.0, 0.0)[0].eval()
    assert block.norm_first
    x = torch.randn(2, 5, 16)
    h = block.norm1(x)
    y = x + block.self_attn(h, h, h, need_weights=False)[0]
    h = block.norm2(y)
    want = y + block.linear2(block.activation(block.linear1(h)))
    with torch.no_grad():
        torch.testing.assert_close(block(x), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("masks", ["none", "causal", "padding", "per_head"])
def test_transformer_block_explicit_attention_matches_default(masks):
    # Short sequences on the CPU take the block's own attention (the masks
    # in the float form the layer gives them): the same function and
    # gradients as torch's default kernel, with every kind of mask.
    from sk_replearn.nn import _block, transformer

    torch.manual_seed(0)
    block = transformer.transformer_blocks(16, 1, 4, 2.0, 0.0)[0].double()
    x, kw = _block_inputs(masks, 7)
    own, calls = block._attend, []

    def spy(*args):
        calls.append(args)
        return own(*args)

    block._attend = spy  # the short path is the block's own, masks and all

    def run(short):
        block.zero_grad()
        xi = x.clone().requires_grad_(True)
        before, _block._SHORT_SEQUENCE = _block._SHORT_SEQUENCE, short
        try:
            out = block(xi, **kw)
        finally:
            _block._SHORT_SEQUENCE = before
        out.square().sum().backward()
        return out, xi.grad, block.self_attn.in_proj_weight.grad.clone()

    short, default = run(32), run(0)
    assert len(calls) == 1
    for a, b in zip(short, default):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("length, explicit", [(5, True), (32, True), (33, False)])
@pytest.mark.parametrize("batch_first", [True, False])
def test_transformer_block_explicit_attention_for_short_cpu_sequences(
    length, explicit, batch_first
):
    # At most 32 tokens on the CPU: batch-first blocks attend with their own
    # matrix products, others through the attention module's explicit path
    # (asked for by need_weights=True); longer sequences keep torch's choice.
    from sk_replearn.nn import transformer

    block = transformer.TransformerBlock(16, 4, 32, batch_first=batch_first)
    calls = []
    attend, own = block.self_attn.forward, block._attend

    def spy(*args, **kwargs):
        calls.append(kwargs["need_weights"])
        return attend(*args, **kwargs)

    def spy_own(*args, **kwargs):
        calls.append("own")
        return own(*args, **kwargs)

    block.self_attn.forward, block._attend = spy, spy_own
    x = torch.randn(2, length, 16)
    block(x if batch_first else x.transpose(0, 1))
    expected = ("own" if batch_first else True) if explicit else False
    assert calls == [expected]
    # off the CPU (here "meta", as a GPU would be) torch keeps its choice
    assert not block._short_on_cpu(torch.randn(2, 5, 16, device="meta"))


def test_transformer_block_own_attention_matches_module_with_dropout():
    # With attention dropout in training, the block's own attention draws the
    # same dropout mask from the same seed as the attention module's path.
    from sk_replearn.nn import transformer

    torch.manual_seed(0)
    block = transformer.TransformerBlock(16, 4, 32, dropout=0.3, batch_first=True)
    block = block.double().train()
    x = torch.randn(3, 6, 16, dtype=torch.float64)
    torch.manual_seed(1)
    own = block._attend(x, None, None)
    torch.manual_seed(1)
    module, _ = block.self_attn(x, x, x, need_weights=True)
    torch.testing.assert_close(own, module, rtol=1e-10, atol=1e-10)
    assert block._plain_attention(None, None, False)
    assert not block._plain_attention(None, None, True)  # causal hint, no mask
    # masks not in the additive float form the layer's forward gives
    assert not block._plain_attention(torch.zeros(6, 6, dtype=torch.bool), None, False)
    assert not block._plain_attention(None, torch.zeros(3, 6, dtype=torch.bool), False)


# -- signal layers in the channels-last layout --------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 3, "padding": 1},
        {"kernel_size": 3, "stride": 2, "padding": 1},
        {"kernel_size": 1, "stride": 2},
        {"kernel_size": 5, "padding": "same", "bias": True},
        {"kernel_size": 3, "dilation": 2, "padding": 2},
        {"kernel_size": 3, "groups": 2, "padding": 1},
    ],
)
def test_signal_conv_computes_conv1d(kwargs):
    torch.manual_seed(0)
    kwargs = {"bias": False, **kwargs}
    ours = SignalConv(4, 6, **kwargs).double()
    ref = nn.Conv1d(4, 6, **kwargs).double()
    ref.load_state_dict(ours.state_dict())  # the same parameters, the same keys
    x = torch.randn(5, 4, 17, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    y, y_ref = ours(x), ref(x_ref)
    assert y.shape == y_ref.shape
    assert y.stride(1) == 1  # channels last: the next layer reads it as a view
    torch.testing.assert_close(y, y_ref)
    g = torch.randn_like(y)
    y.backward(g)
    y_ref.backward(g)
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad)


def test_signal_conv_of_one_channel_returns_channels_last():
    # A network's input has one channel, whose strides torch reads as channels
    # first; the output must still come back channels last, or the batch norm
    # after the first convolution copies it at every step.
    torch.manual_seed(0)
    ours = SignalConv(1, 6, 3, padding=1).double()
    ref = nn.Conv1d(1, 6, 3, padding=1).double()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(5, 1, 17, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    y, y_ref = ours(x), ref(x_ref)
    assert y.stride(1) == 1
    torch.testing.assert_close(y, y_ref)
    y.backward(torch.ones_like(y))
    y_ref.backward(torch.ones_like(y_ref))
    torch.testing.assert_close(x.grad, x_ref.grad)
    assert ours(x[:, :, ::2]).stride(1) == 1  # a strided input too


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"momentum": None}, {"affine": False}, {"track_running_stats": False}],
)
def test_signal_batch_norm_computes_batch_norm_1d(kwargs):
    torch.manual_seed(0)
    ours = SignalBatchNorm(6, **kwargs).double()
    ref = nn.BatchNorm1d(6, **kwargs).double()
    ref.load_state_dict(ours.state_dict())
    for step in range(3):  # training: outputs, gradients, running statistics
        x = torch.randn(5, 6, 9, dtype=torch.float64).mul_(step + 1).add_(step)
        x.requires_grad_()
        x_ref = x.detach().clone().requires_grad_()
        y, y_ref = ours(x), ref(x_ref)
        torch.testing.assert_close(y, y_ref)
        y.square().sum().backward()
        y_ref.square().sum().backward()
        torch.testing.assert_close(x.grad, x_ref.grad)
    for name, buffer in ref.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[name], buffer, msg=name)
    ours.eval(), ref.eval()
    x = torch.randn(3, 6, 9, dtype=torch.float64)
    torch.testing.assert_close(ours(x), ref(x))
    x2 = torch.randn(3, 6, dtype=torch.float64)  # (B, C) as BatchNorm1d
    torch.testing.assert_close(ours(x2), ref(x2))


def test_signal_batch_norm_still_refuses_other_shapes():
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        SignalBatchNorm(6)(torch.randn(2, 6, 3, 3))


@pytest.mark.parametrize("output_size", [1, 2])
@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("shape", [(5, 6, 9), (3, 1, 40), (2, 128, 1000)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_signal_avg_pool_is_adaptive_avg_pool_bit_for_bit(
    shape, channels_last, output_size, dtype
):
    torch.manual_seed(0)
    n, c, length = shape
    x = torch.randn(n, length, c).mul_(3).add_(1).to(dtype).transpose(1, 2)
    if not channels_last:
        x = x.contiguous()
    x.requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    y, y_ref = SignalAvgPool(output_size)(x), nn.AdaptiveAvgPool1d(output_size)(x_ref)
    assert torch.equal(y, y_ref)
    g = torch.randn_like(y)
    y.backward(g)
    y_ref.backward(g)
    assert torch.equal(x.grad, x_ref.grad)
    if channels_last and output_size == 1 and c > 1 and dtype != torch.bfloat16:
        # the gradient reaching the layers before keeps their layout
        activations = torch.relu(x)
        (grad,) = torch.autograd.grad(SignalAvgPool(1)(activations).sum(), activations)
        assert grad.stride(1) == 1


@pytest.mark.parametrize("name", ["cnn", "resnet"])
def test_signal_encoders_compute_what_conv1d_layers_compute(monkeypatch, name):
    torch.manual_seed(0)
    enc = build_encoder(name, (2, 40)).double()
    assert any(isinstance(m, SignalConv) for m in enc.modules())
    assert any(isinstance(m, SignalBatchNorm) for m in enc.modules())
    assert any(isinstance(m, SignalAvgPool) for m in enc.modules())
    x = torch.randn(8, 2, 40, dtype=torch.float64)
    out = enc(x)
    # the same encoder in Conv1d's and BatchNorm1d's own layout
    monkeypatch.setattr(_signal_layers, "_CHANNELS_LAST_SIGNALS", False)
    torch.testing.assert_close(out, enc(x))
    enc.eval()
    ref = enc(x)
    monkeypatch.setattr(_signal_layers, "_CHANNELS_LAST_SIGNALS", True)
    torch.testing.assert_close(enc(x), ref)


def test_image_encoders_keep_torch_s_layers():
    enc = build_encoder("resnet", (1, 8, 8))
    assert not any(
        isinstance(m, SignalConv | SignalBatchNorm | SignalAvgPool)
        for m in enc.modules()
    )


class _AttentionBody(nn.Module):
    """A user's module of torch's layers, blocks found by its children.

    ``nn.MultiheadAttention`` draws its output projection as an
    ``nn.Linear`` and then zeroes that layer's bias: a re-draw that reset
    the attention before its child left the bias drawn.
    """

    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(128, 4, 256, batch_first=True)
        self.out = nn.Linear(128, 128)
        self.out_features = 128

    def forward(self, x):
        return self.out(self.layer(x.unsqueeze(1)).squeeze(1))


@pytest.mark.parametrize(
    "body, shape",
    [
        (lambda: ResNetEncoder((1, 40)), (1, 40)),
        (lambda: CNNEncoder((1, 8, 8)), (1, 8, 8)),
        (lambda: ViTEncoder((1, 8, 8), patch_size=2, embed_dim=128), (1, 8, 8)),
        (lambda: TokenEncoder(30, 20, embed_dim=128, depth=2, num_heads=4), None),
        (_AttentionBody, (128,)),
    ],
    ids=["resnet", "cnn", "vit", "tokens", "torch-attention"],
)
def test_redrawn_blocks_are_drawn_as_at_construction(body, shape):
    # reinit_layers promises the architecture from scratch: torch's default
    # initialisations are not the encoders' (a ResNet's residual branches
    # start at 0, token embeddings at N(0, 0.02²), not N(0, 1)).
    torch.manual_seed(0)
    enc = TransferEncoder(body(), shape, 0)
    fresh = {k: v.detach().clone() for k, v in enc.named_parameters()}
    with torch.no_grad():
        for p in enc.parameters():
            p.mul_(3.0).add_(0.5)
    for block in encoder_blocks(enc):
        block.reset_parameters()
    for name, p in enc.named_parameters():
        new, old = p.detach(), fresh[name]
        if old.std() == 0 or old.numel() == 1:  # constants: exactly
            torch.testing.assert_close(new, old, msg=name)
        else:  # random draws: the same spread about the same mean
            assert float(new.std()) == pytest.approx(float(old.std()), rel=0.2), name
            assert abs(float(new.mean() - old.mean())) < 0.2 * float(old.std()), name


def test_blocks_of_a_users_module_are_its_children_loose_weights_first():
    # A module the library does not know: each child with weights is a block,
    # in registration order, and its own loose parameters (an input scale)
    # run first, so they join the first block (freeze_layers=1 freezes
    # them, layer_decay gives them the lowest rate).
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(6))
            self.first = nn.Linear(6, 5)
            self.act = nn.ReLU()
            self.last = nn.Linear(5, 4)

        def forward(self, x):
            return self.last(self.act(self.first(x * self.scale)))

    body = Scaled()
    blocks = encoder_blocks(TransferEncoder(body, (6,), 4))
    assert [[id(p) for p in b.params] for b in blocks] == [
        [id(p) for p in [*body.first.parameters(), body.scale]],
        [id(p) for p in body.last.parameters()],
    ]


def test_sincos_position_frequencies_are_the_transformers():
    # Position p, frequency k of D/2: sin(p * 10000^(-k / (D/2))) then cos.
    import math

    pe = sincos_pos_embed_1d(8, 3)
    for k in range(4):
        w = 10000 ** (-k / 4)
        assert pe[2, k].item() == pytest.approx(math.sin(2 * w), abs=1e-6)
        assert pe[2, 4 + k].item() == pytest.approx(math.cos(2 * w), abs=1e-6)


def test_resnet_strides_in_the_first_block_of_each_stage_only():
    # 32 steps, two later stages: 32 -> 16 -> 8, whatever the blocks a stage.
    enc = ResNetEncoder((1, 32), channels=(8, 16, 32), blocks_per_stage=2)
    assert enc.features(torch.randn(2, 1, 32)).shape == (2, 32, 8)


def test_conv_decoder_biases_only_its_output_layer():
    # Only the output layer has a bias, with or without batch norm after the
    # hidden transposed convolutions (off by default).
    dec = ConvDecoder((1, 8, 8), in_features=4)
    convs = [m for m in dec.layers if isinstance(m, nn.ConvTranspose2d)]
    assert convs[-1].bias is not None
    assert all(c.bias is None for c in convs[:-1])


def test_vit_pooled_inner_blocks_are_read_before_the_final_norm():
    # pooling="blocks" cut at block 2 of 3: the final norm belongs to the
    # last block's output only.
    torch.manual_seed(0)
    enc = ViTEncoder(
        (1, 16), patch_size=2, embed_dim=8, depth=3, num_heads=2, pooling="blocks"
    ).eval()
    tokens = enc.embed(torch.randn(3, 1, 16))
    with torch.no_grad():
        got = enc.forward_pooled(tokens, 2)
        expected = enc.pool(enc.forward_tokens(tokens, 2))
    torch.testing.assert_close(got[:, -expected.shape[1] :], expected)


def test_auto_decoder_mirrors_the_encoders_dropout_and_kernel_size():
    mlp = MLPEncoder((10,), hidden_sizes=(16, 8), dropout=0.3)
    dec = build_decoder("auto", mlp, (10,), in_features=4)
    assert any(isinstance(m, nn.Dropout) and m.p == 0.3 for m in dec.modules())
    cnn = CNNEncoder((1, 8, 8), channels=(4, 8), kernel_size=5)
    dec = build_decoder("auto", cnn, (1, 8, 8), in_features=4)
    convs = [m for m in dec.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert convs and all(c.kernel_size == (5, 5) for c in convs)


def test_an_encoder_that_changes_the_batch_size_is_refused():
    class DropsRows(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(5, 3)

        def forward(self, x):
            return self.fc(x)[:1]

    with pytest.raises(ValueError, match="out_features"):
        build_encoder(DropsRows(), (5,))


# -- MLP options, transformer blocks and the input standardisation ------------
def test_mlp_codes_and_reconstructions_are_unconstrained():
    # The last Linear of the encoder and of the decoder is bare: no norm or
    # activation clips the code or the reconstruction (both take signs).
    torch.manual_seed(0)
    enc = MLPEncoder((8,), hidden_sizes=(16, 4))
    dec = MLPDecoder((8,), in_features=4, hidden_sizes=(16,))
    assert isinstance(enc.layers[-1], nn.Linear)
    assert isinstance(dec.layers[-1], nn.Linear)
    with torch.no_grad():
        z = enc(torch.randn(64, 8))
        x = dec(torch.randn(64, 4))
    assert (z < 0).any() and (z > 0).any()
    assert (x < 0).any() and (x > 0).any()


def test_mlp_decoder_without_hidden_sizes_is_linear():
    # hidden_sizes=() is documented: a linear decoder, one Linear layer.
    dec = MLPDecoder((2, 3), in_features=4, hidden_sizes=())
    assert [type(m) for m in dec.layers] == [nn.Linear]
    assert dec(torch.randn(5, 4)).shape == (5, 2, 3)


def test_mlp_default_widths_mirror_each_other():
    # The documented defaults: encoder (256, 128), decoder (128, 256).
    enc, dec = MLPEncoder((10,)), MLPDecoder((10,), in_features=128)
    assert enc.hidden_sizes == (256, 128) and enc.out_features == 128
    enc_widths = [m.out_features for m in enc.modules() if isinstance(m, nn.Linear)]
    dec_widths = [m.out_features for m in dec.modules() if isinstance(m, nn.Linear)]
    assert enc_widths == [256, 128] and dec_widths == [128, 256, 10]


@pytest.mark.parametrize("cls", ["encoder", "decoder"])
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"hidden_sizes": (True, 4)}, "hidden_sizes"),
        ({"hidden_sizes": (0, 4)}, "hidden_sizes"),
    ],
)
def test_mlp_refuses_a_dropout_of_one_bool_or_zero_widths(cls, kwargs, match):
    # Every sample dropped, a bool or a zero width is a mistake, named as a
    # ValueError for the argument (not built into a network that cannot learn).
    with pytest.raises(ValueError, match=match):
        if cls == "encoder":
            MLPEncoder((8,), **kwargs)
        else:
            MLPDecoder((8,), in_features=4, **kwargs)


def test_mlp_hidden_sizes_may_be_a_single_int():
    # An int is one layer's width, as (int,).
    enc = MLPEncoder((8,), hidden_sizes=16)
    assert enc.hidden_sizes == (16,) and enc(torch.randn(3, 8)).shape == (3, 16)
    dec = MLPDecoder((8,), in_features=4, hidden_sizes=16)
    assert dec(torch.randn(3, 4)).shape == (3, 8)


@pytest.mark.parametrize(
    ("norm", "layer"),
    [
        (True, nn.LayerNorm),
        ("layer", nn.LayerNorm),
        ("batch", nn.BatchNorm1d),
        (False, None),
        (None, None),
        ("none", None),
    ],
)
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_mlp_norm_and_activation_options_build_the_named_layers(
    norm, layer, activation
):
    # Each documented option gives its own layer between the hidden widths.
    enc = MLPEncoder((8,), hidden_sizes=(16, 4), norm=norm, activation=activation)
    norms = [m for m in enc.modules() if isinstance(m, nn.LayerNorm | nn.BatchNorm1d)]
    assert [type(m) for m in norms] == ([] if layer is None else [layer])
    kind = {"relu": nn.ReLU, "gelu": nn.GELU}[activation]
    assert [type(m) for m in enc.modules() if isinstance(m, nn.ReLU | nn.GELU)] == [
        kind
    ]
    assert enc(torch.randn(3, 8)).shape == (3, 4)


def test_transformer_blocks_use_gelu():
    # The blocks' MLP is Linear -> GELU -> Linear (GPT-2's, ViT's, MAE's).
    from sk_replearn.nn import transformer

    torch.manual_seed(0)
    block = transformer.transformer_blocks(16, 1, 4, 2.0, 0.0)[0].eval()
    h = torch.randn(2, 5, 16)
    want = block.linear2(nn.functional.gelu(block.linear1(h)))
    with torch.no_grad():
        got = block.linear2(block.activation(block.linear1(h)))
    torch.testing.assert_close(got, want.detach())
    assert block.linear1.out_features == 32  # embed_dim * mlp_ratio


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"depth": 0}, "depth"), ({"mlp_ratio": 0}, "mlp_ratio")]
)
def test_vit_encoder_refuses_zero_depth_or_mlp_ratio(kwargs, match):
    # No blocks, or a feed-forward of no width, is a mistake named as such.
    with pytest.raises(ValueError, match=match):
        build_encoder("vit", (1, 8, 8), patch_size=4, **kwargs)


def test_transformer_initialisation_zeroes_biases_and_sets_unit_norms():
    # The ViT / MAE initialisation: zero biases, LayerNorms at (1, 0).
    from sk_replearn.nn import transformer

    enc = ViTEncoder((1, 8, 8), patch_size=4, embed_dim=16, depth=1, num_heads=2)
    linears = [m for m in enc.modules() if isinstance(m, nn.Linear)]
    norms = [m for m in enc.modules() if isinstance(m, nn.LayerNorm)]
    assert linears and norms
    with torch.no_grad():
        for m in linears + norms:
            m.bias.fill_(0.5)
    transformer.init_transformer(enc)
    assert all(not m.bias.any() for m in linears + norms)
    assert all((m.weight == 1).all() for m in norms)


def test_standardize_follows_its_module_and_is_saved():
    # shift and scale are buffers: .to() moves and casts them with the
    # module, and its state_dict restores them.
    from sk_replearn.nn import Standardize

    std = Standardize(1.0, 2.0).to(torch.float64)
    assert std.shift.dtype == std.scale.dtype == torch.float64
    assert Standardize(1.0, 2.0).to("meta").shift.device.type == "meta"
    other = Standardize(0.0, 1.0)
    other.load_state_dict(Standardize(3.0, 4.0).state_dict())
    assert other(torch.tensor([[7.0]])).item() == 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dropout": None}, r"dropout=None must be a float in \[0, 1\)"),
        ({"dropout": "0.1"}, r"dropout='0.1' must be a float in \[0, 1\)"),
        ({"dropout": float("nan")}, r"dropout=nan must be a float"),
        ({"activation": ["relu"]}, r"activation=\['relu'\] is not supported"),
    ],
)
def test_mlp_arguments_of_the_wrong_type_are_named(kwargs, match):
    # Not a bare float() or hashing error from deep inside: the argument,
    # its value and what is allowed, also through an estimator's encoder_kwargs.
    import numpy as np

    from sk_replearn import AutoencoderTransformer

    with pytest.raises(ValueError, match=match):
        MLPEncoder((8,), **kwargs)
    ae = AutoencoderTransformer(2, encoder="mlp", encoder_kwargs=kwargs, max_epochs=1)
    with pytest.raises(ValueError, match=match):
        ae.fit(np.zeros((8, 8), dtype=np.float32))


def test_the_first_block_of_a_token_encoder_holds_its_embeddings_dropout():
    """Putting the first block's layers in eval mode (what freezing it does)
    turns off the dropout on the token and position embeddings."""
    torch.manual_seed(0)
    body = TokenEncoder(30, 6, embed_dim=8, depth=1, num_heads=2, dropout=0.5)
    first = encoder_blocks(TransferEncoder(body, None, 8))[0]
    body.train()
    for module in first.modules:
        module.eval()
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        embedded = body.forward_tokens(ids, n_blocks=0)
        expected = body.token_embed(ids) + body.pos_embed[:, :4]
    torch.testing.assert_close(embedded, expected)


def test_a_single_linear_layer_is_one_block_redrawn_as_nn_linear_draws_it():
    """PCA's encoder, one Linear layer, is one block holding that layer; it
    is re-drawn as nn.Linear draws its weights, not from a small normal."""
    import numpy as np

    from sk_replearn.nn.surgery import linear_encoder

    torch.manual_seed(0)
    enc = linear_encoder(np.eye(16, 48), np.ones(48))
    blocks = encoder_blocks(enc)
    assert len(blocks) == 1 and blocks[0].modules == [enc.body]
    blocks[0].reset_parameters()
    weight, bias = enc.body.weight.detach(), enc.body.bias.detach()
    bound = 1 / 48**0.5  # nn.Linear's for 48 inputs
    assert float(weight.abs().max()) <= bound
    assert float(weight.std()) == pytest.approx(bound / 3**0.5, rel=0.1)
    assert float(bias.abs().max()) <= bound
    assert float(bias.std()) > 0.5 * bound / 3**0.5


def test_trainable_makes_every_floating_and_complex_weight_train_again():
    """trainable re-enables gradients on real and complex weights alike."""
    from sk_replearn.nn.surgery import trainable

    module = nn.Module()
    module.real = nn.Parameter(torch.zeros(3), requires_grad=False)
    module.phase = nn.Parameter(torch.zeros(3, dtype=torch.cfloat), requires_grad=False)
    assert trainable(module) is module
    assert module.real.requires_grad and module.phase.requires_grad


def test_projection_head_is_linear_relu_linear_without_batch_norm():
    """Two layers without batch norm compute Linear, ReLU, Linear by hand."""
    torch.manual_seed(0)
    head = ProjectionHead(6, 5, 4, num_layers=2, batch_norm=False)
    first, last = [m for m in head.layers if isinstance(m, nn.Linear)]
    x = torch.randn(7, 6)
    hidden = torch.clamp(x @ first.weight.T + first.bias, min=0.0)
    by_hand = hidden @ last.weight.T + last.bias
    torch.testing.assert_close(head(x), by_hand)


@pytest.mark.parametrize("n_components", [0, -2, 2.5, "3", True])
def test_bottleneck_refuses_a_width_that_is_not_a_positive_int(n_components):
    """Bottleneck names n_components when the width is not an int >= 1."""
    from sk_replearn.nn import Bottleneck, MLPEncoder

    with pytest.raises(ValueError, match="n_components="):
        Bottleneck(MLPEncoder((6,), hidden_sizes=(8,)), n_components)


def test_bottleneck_trains_its_encoder():
    """The gradient of a Bottleneck's output reaches the encoder's weights."""
    from sk_replearn.nn import Bottleneck, MLPEncoder

    torch.manual_seed(0)
    enc = Bottleneck(MLPEncoder((6,), hidden_sizes=(8,)), 3)
    enc(torch.randn(5, 6)).square().sum().backward()
    grads = [p.grad for p in enc.encoder.parameters()]
    assert grads and all(g is not None for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_projection_head_hidden_batch_norms_learn_a_scale_and_shift():
    """A 3-layer projector: weights, the hidden norms' scale and shift, a last bias."""
    head = ProjectionHead(6, 5, 4, num_layers=3)
    # 6*5 + (5 + 5) + 5*5 + (5 + 5) + 5*4 + 4: no hidden biases, affine norms
    assert sum(p.numel() for p in head.parameters()) == 99
    norms = [m for m in head.layers if isinstance(m, nn.BatchNorm1d)]
    assert len(norms) == 2 and all(m.affine for m in norms)


_PATCH_CALLS = [
    lambda p: patchify(torch.zeros(1, 1, 4, 4), p),
    lambda p: patchify(torch.zeros(1, 1, 4), p),
    lambda p: unpatchify(torch.zeros(1, 4, 4), p, (1, 4, 4)),
]


@pytest.mark.parametrize("call", _PATCH_CALLS)
def test_a_patch_size_of_zero_is_a_clear_error(call):
    """patch_size=0 is refused by name, not left to a division by zero."""
    with pytest.raises(ValueError, match="patch_size=0"):
        call(0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: sincos_pos_embed_1d(8, 0), "length=0"),
        (lambda: sincos_pos_embed_2d(8, 2, 0), "grid_w=0"),
        (lambda: sincos_pos_embed_2d(8, 0, 2), "grid_h=0"),
    ],
)
def test_sincos_pos_embed_of_no_position_raises(call, match):
    """An empty sequence or grid side is refused rather than embedded as nothing."""
    with pytest.raises(ValueError, match=match):
        call()


def test_random_masking_keeps_the_tokens_of_the_lowest_noise():
    """Given noise, the tokens of the smallest draws are kept, smallest first."""
    x = torch.arange(5.0)[None, :, None].expand(1, 5, 2)
    noise = torch.tensor([[0.9, 0.1, 0.5, 0.2, 0.7]])
    visible, mask, ids_restore = random_masking(x, 0.6, noise=noise)
    torch.testing.assert_close(visible[0, :, 0], torch.tensor([1.0, 3.0]))
    torch.testing.assert_close(mask, torch.tensor([[1.0, 0.0, 1.0, 0.0, 1.0]]))
    assert ids_restore.tolist() == [[4, 0, 2, 1, 3]]


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_random_masking_mask_has_the_dtype_of_the_tokens(dtype):
    """The 0/1 mask comes in the tokens' dtype, ready to weigh their losses."""
    _, mask, _ = random_masking(torch.zeros(2, 8, 3, dtype=dtype), 0.5)
    assert mask.dtype == dtype


@pytest.mark.parametrize("shape", [(4,), (1, 4, 4, 4)])
def test_unpatchify_refuses_a_sample_shape_that_is_not_an_image_or_signal(shape):
    """input_shape must be (C, H, W) or (C, L): others are refused by name."""
    with pytest.raises(ValueError, match="input_shape="):
        unpatchify(torch.zeros(1, 2, 2), 2, shape)


def test_bottleneck_of_none_says_to_leave_it_out_not_that_none_is_taken():
    """Bottleneck(encoder, None) points to the encoder alone, the estimators' None."""
    from sk_replearn.nn import Bottleneck, MLPEncoder

    with pytest.raises(ValueError, match="n_components=None") as error:
        Bottleneck(MLPEncoder((6,), hidden_sizes=(8,)), None)
    assert "leave out the Bottleneck" in str(error.value)
    assert "or None" not in str(error.value)


@pytest.mark.parametrize("call", _PATCH_CALLS)
def test_a_patch_size_that_is_no_int_is_refused_by_name(call):
    """patch_size=2.0 gets a ValueError naming it, not an error from inside torch."""
    with pytest.raises(ValueError, match=r"patch_size=2\.0 must be a positive int"):
        call(2.0)


def test_mlp_layers_run_linear_norm_activation_dropout_then_a_bare_linear():
    """Both MLPs apply each option between their widths, in the documented order."""
    enc = MLPEncoder(
        (8,), hidden_sizes=(16, 4), activation="gelu", norm="batch", dropout=0.25
    )
    dec = MLPDecoder(
        (8,),
        in_features=4,
        hidden_sizes=(16,),
        activation="gelu",
        norm="batch",
        dropout=0.25,
    )
    for mlp, widths in ((enc, [16, 4]), (dec, [16, 8])):
        assert [type(m) for m in mlp.layers] == [
            nn.Linear,
            nn.BatchNorm1d,
            nn.GELU,
            nn.Dropout,
            nn.Linear,
        ]
        assert mlp.layers[3].p == 0.25
        assert [
            m.out_features for m in mlp.layers if isinstance(m, nn.Linear)
        ] == widths


@pytest.mark.parametrize(("norm", "layer"), [(False, None), ("batch", nn.BatchNorm1d)])
def test_auto_decoder_mirrors_the_mlp_encoders_norm_and_activation(norm, layer):
    """The decoder built for an MLPEncoder uses its norm and activation."""
    enc = MLPEncoder((10,), hidden_sizes=(16, 8), activation="gelu", norm=norm)
    dec = build_decoder("auto", enc, (10,), in_features=8)
    norms = [m for m in dec.modules() if isinstance(m, nn.LayerNorm | nn.BatchNorm1d)]
    # hidden widths (8, 16): a norm and an activation after each
    assert [type(m) for m in norms] == ([] if layer is None else [layer, layer])
    acts = [type(m) for m in dec.modules() if isinstance(m, nn.ReLU | nn.GELU)]
    assert acts == [nn.GELU, nn.GELU]


@pytest.mark.parametrize("input_shape", [(0, 8), (1, 2, 3, 4), 8, "ab"])
@pytest.mark.parametrize("cls", ["encoder", "decoder"])
def test_mlp_refuses_an_input_shape_that_is_no_sample_shape(cls, input_shape):
    """A zero size, four dimensions or no tuple of ints is named as input_shape."""
    with pytest.raises(ValueError, match="input_shape="):
        if cls == "encoder":
            MLPEncoder(input_shape)
        else:
            MLPDecoder(input_shape, in_features=4)


@pytest.mark.parametrize("in_features", [0, 2.5, "4", True])
def test_mlp_decoder_refuses_an_in_features_that_is_no_positive_int(in_features):
    """The code width must be a positive int, named in the error."""
    with pytest.raises(ValueError, match=r"in_features=.* must be an int >= 1"):
        MLPDecoder((8,), in_features=in_features)


# -- convolutional encoders and decoder: less common options -------------------
def test_signal_layers_take_an_unbatched_signal_as_torch_s_layers_do():
    """A single (C, L) signal is convolved and pooled as Conv1d and pooling do it."""
    ours = SignalConv(2, 3, 3, padding=1).double()
    ref = nn.Conv1d(2, 3, 3, padding=1).double()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 11, dtype=torch.float64)
    torch.testing.assert_close(ours(x), ref(x))
    assert ours(x).shape == (3, 11)
    assert torch.equal(SignalAvgPool(1)(x), nn.AdaptiveAvgPool1d(1)(x))


@pytest.mark.parametrize("padding_mode", ["circular", "reflect", "replicate"])
def test_signal_conv_pads_as_its_padding_mode_says(padding_mode):
    """Circular, reflect and replicate padding give Conv1d's result, not zeros'."""
    ours = SignalConv(2, 3, 3, padding=1, padding_mode=padding_mode).double()
    ref = nn.Conv1d(2, 3, 3, padding=1, padding_mode=padding_mode).double()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(4, 2, 9, dtype=torch.float64)
    torch.testing.assert_close(ours(x), ref(x))


@pytest.mark.parametrize(
    "make, ndim",
    [
        (lambda: CNNEncoder((1, 40), channels=(64, 128)), 1),
        (lambda: CNNEncoder((1, 8, 8), channels=(64, 128)), 2),
        (lambda: ResNetEncoder((1, 40), channels=(64, 128)), 1),
    ],
    ids=["cnn-signal", "cnn-image", "resnet-signal"],
)
def test_conv_encoders_draw_kaiming_fan_out_weights_and_unit_norms(make, ndim):
    """Convolutions start at N(0, 2 / (out_channels * kernel area)), norms at 1, 0."""
    enc = make()
    zeroed = {id(m.bn2.weight) for m in enc.modules() if hasattr(m, "bn2")}
    for name, m in enc.named_modules():
        if isinstance(m, nn.Conv1d | nn.Conv2d) and m.weight.numel() >= 20000:
            fan_out = m.out_channels * m.kernel_size[0] ** ndim
            std = float(m.weight.detach().std())
            assert std == pytest.approx(math.sqrt(2 / fan_out), rel=0.05), name
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            want = 0.0 if id(m.weight) in zeroed else 1.0
            assert torch.equal(m.weight, torch.full_like(m.weight, want)), name
            assert torch.equal(m.bias, torch.zeros_like(m.bias)), name


@pytest.mark.parametrize(
    "shape, strides, sizes",
    [
        ((1, 8, 8), (1, 2, 2), [(8, 8), (4, 4), (2, 2)]),
        ((1, 40), (1, 1, 2), [(40,), (40,), (20,)]),
    ],
)
def test_cnn_strides_apply_to_their_blocks_in_order(shape, strides, sizes):
    """The i-th stride is the i-th block's: each block's output has its size."""
    enc = CNNEncoder(shape, channels=(4, 8, 16), strides=strides)
    x = torch.randn(2, *shape)
    for i, (c, size) in enumerate(zip((4, 8, 16), sizes)):
        assert enc.features[: 3 * (i + 1)](x).shape == (2, c, *size)


def _block_lengths(enc, x):
    lengths, h = [], enc.features[:3](x)  # the stem
    for block in enc.features[3:]:
        h = block(h)
        lengths.append(h.shape[-1])
    return lengths


def test_resnet_halves_in_the_first_block_of_each_later_stage():
    """With two blocks a stage, the first block of stages 2 and 3 halves the length."""
    enc = ResNetEncoder((1, 32), channels=(4, 8, 16), blocks_per_stage=2)
    assert _block_lengths(enc, torch.randn(2, 1, 32)) == [32, 32, 16, 16, 8, 8]


def test_resnet_may_repeat_a_width_across_stages():
    """Stages of equal width still halve the length, shortcut included."""
    enc = ResNetEncoder((1, 32), channels=(8, 8, 16))
    x = torch.randn(2, 1, 32)
    assert _block_lengths(enc, x) == [32, 16, 8]
    assert enc(x).shape == (2, 16)


def test_resnet_block_is_act_of_residual_branch_plus_projected_shortcut():
    """A strided block computes act(bn2(conv2(act(bn1(conv1 x)))) + bn(conv1x1 x))."""
    enc = ResNetEncoder((2, 12), channels=(3, 5), activation="gelu")
    block = enc.features[4]  # the first block of the second stage: stride 2
    with torch.no_grad():
        for m in block.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    block.eval()
    x = torch.randn(4, 3, 12, dtype=torch.float64)
    block.double()
    f = nn.functional

    def bn(m, h):
        return f.batch_norm(h, m.running_mean, m.running_var, m.weight, m.bias)

    h = f.gelu(bn(block.bn1, f.conv1d(x, block.conv1.weight, stride=2, padding=1)))
    h = bn(block.bn2, f.conv1d(h, block.conv2.weight, padding=1))
    conv_s, bn_s = block.shortcut
    want = f.gelu(h + bn(bn_s, f.conv1d(x, conv_s.weight, stride=2)))
    torch.testing.assert_close(block(x), want)
    assert want.shape == (4, 5, 6)


@pytest.mark.parametrize("shape", [(1, 20), (1, 8, 8)])
def test_resnet_kernel_size_and_activation_reach_every_layer(shape):
    """The stem and every block use kernel_size and the activation asked for."""
    enc = ResNetEncoder(shape, channels=(4, 8), kernel_size=5, activation="gelu")
    convs = [m for m in enc.modules() if isinstance(m, nn.Conv1d | nn.Conv2d)]
    shortcuts = [m for m in convs if m.kernel_size[0] == 1]
    assert len(shortcuts) == 1  # the second stage's projection
    assert all(
        m.kernel_size == (5,) * (len(shape) - 1) for m in convs if m.kernel_size[0] != 1
    )
    assert len(convs) == 1 + 2 * 2 + 1
    acts = [type(m) for m in enc.modules() if isinstance(m, nn.ReLU | nn.GELU)]
    assert acts == [nn.GELU] * (1 + 2 * 2)


def test_resnet_pool_size_keeps_a_grid_of_averages():
    """pool_size=2 averages each half of the last feature map, out_features wide."""
    enc = ResNetEncoder((1, 16), channels=(4, 8), pool_size=2).eval()
    x = torch.randn(3, 1, 16)
    h = enc.features(x)  # (3, 8, 8)
    want = torch.stack([h[..., :4].mean(-1), h[..., 4:].mean(-1)], -1).flatten(1)
    assert enc.out_features == 16
    torch.testing.assert_close(enc(x), want)


def test_conv_decoder_is_activated_linear_then_transposed_convolutions():
    """fc, act, then stride-2 transposed convolutions, act between, none at the end."""
    dec = ConvDecoder((2, 10), in_features=3, channels=(4, 3), activation="gelu")
    convs = [m for m in dec.layers if isinstance(m, nn.ConvTranspose1d)]
    z = torch.randn(5, 3) * 3
    f = nn.functional
    # lengths 10 -> 5 -> 3 in the encoder: the grid is (4, 3); 3 -> 5 -> 9 + 1
    h = f.gelu(dec.fc(z)).reshape(5, 4, 3)
    h = f.gelu(f.conv_transpose1d(h, convs[0].weight, None, 2, 1))
    want = f.conv_transpose1d(h, convs[1].weight, convs[1].bias, 2, 1, 1)
    torch.testing.assert_close(dec(z), want)
    assert want.shape == (5, 2, 10) and (want < 0).any()


@pytest.mark.parametrize(
    "shape, norm", [((2, 10), nn.BatchNorm1d), ((1, 7, 9), nn.BatchNorm2d)]
)
def test_conv_decoder_normalises_only_when_asked(shape, norm):
    """batch_norm=True puts one norm after each hidden layer; the default none."""
    default = ConvDecoder(shape, in_features=3, channels=(4, 3))
    assert not any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) for m in default.modules()
    )
    dec = ConvDecoder(shape, in_features=3, channels=(4, 3), batch_norm=True)
    norms = [m for m in dec.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert [(type(m), m.num_features) for m in norms] == [(norm, 3)]
    assert dec(torch.randn(4, 3)).shape == (4, *shape)


@pytest.mark.parametrize("input_shape", [(1, 40), (1, 12, 12)])
@pytest.mark.parametrize("kernel_size", [2, 4])
def test_resnet_refuses_an_even_kernel_size_by_name(input_shape, kernel_size):
    """An even kernel would leave a block's output a step longer than its
    shortcut: refused when built, naming kernel_size, not inside torch."""
    with pytest.raises(ValueError, match=rf"kernel_size={kernel_size} must be odd"):
        ResNetEncoder(input_shape, kernel_size=kernel_size)
    odd = ResNetEncoder(input_shape, kernel_size=kernel_size + 1)
    assert odd(torch.randn(2, *input_shape)).shape == (2, odd.out_features)


@pytest.mark.parametrize("shape", [(0, 8), (1, 2, 3, 4), (2, 0, 5)])
def test_resolve_encoder_auto_refuses_a_bad_input_shape(shape):
    """Resolving "auto" refuses a shape that is no sample shape, naming input_shape."""
    with pytest.raises(ValueError, match="input_shape"):
        resolve_encoder("auto", shape)


@pytest.mark.parametrize(
    ("shape", "small"),
    [
        ((32, 8, 8), True),  # many channels, small sides
        ((1, 16, 16), True),
        ((1, 8, 32), False),  # one side above 16
        ((1, 32, 8), False),
    ],
)
def test_auto_small_image_cnn_depends_on_the_spatial_sides_only(shape, small):
    """An image is small when both its sides are at most 16, whatever its channels."""
    expected = {"channels": (16, 32, 64), "strides": (1, 2, 2)} if small else {}
    assert auto_encoder_kwargs(shape) == expected
    enc = build_encoder("auto", shape)
    assert enc.strides == ((1, 2, 2) if small else (2, 2))


def test_auto_encoder_kwargs_are_a_fresh_dict_each_call():
    """Changing the returned kwargs does not change what "auto" builds next."""
    first = auto_encoder_kwargs((1, 8, 8))
    first["channels"] = (4, 8)
    first.pop("strides")
    assert auto_encoder_kwargs((1, 8, 8)) == {
        "channels": (16, 32, 64),
        "strides": (1, 2, 2),
    }
    assert build_encoder("auto", (1, 8, 8)).channels == (16, 32, 64)


class _TakesAnyKwargs(nn.Module):
    def __init__(self, input_shape, **options):
        super().__init__()
        self.options = options
        self.fc = nn.Linear(math.prod(input_shape), options.get("width", 3))

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_build_encoder_user_class_with_var_kwargs_gets_them():
    """A user class taking **kwargs receives every keyword given, unchecked."""
    enc = build_encoder(_TakesAnyKwargs, (1, 4, 4), width=6, scale=0.5)
    assert enc.options == {"width": 6, "scale": 0.5}
    assert enc.out_features == 6


class _NoInputShape(nn.Module):
    def __init__(self, width=3):
        super().__init__()
        self.fc = nn.Linear(4, width)

    def forward(self, x):
        return self.fc(x)


def test_build_encoder_user_class_without_input_shape_is_named():
    """A class that takes no input_shape is told how the builder calls it."""
    with pytest.raises(TypeError, match=r"_NoInputShape must accept.*'input_shape'"):
        build_encoder(_NoInputShape, (4,))
    with pytest.raises(TypeError, match=r"must accept.*'in_features'"):
        build_decoder(_NoInputShape, "mlp", (4,), in_features=4)


def test_build_encoder_bad_kwarg_lists_only_the_keywords_a_user_may_pass():
    """The valid keywords listed leave out input_shape, which the builder sets."""
    with pytest.raises(TypeError, match=r"valid ones are \['width'\]\."):
        build_encoder(_WithOut, (4,), widht=3)
    with pytest.raises(TypeError, match=r"valid ones are \['scale'\]\."):
        build_decoder(_UserDecoder, "mlp", (4,), in_features=2, scael=1.0)


class _NotAModule:
    def __init__(self, input_shape=(4,)):
        self.input_shape = input_shape


def test_build_encoder_class_that_is_no_module_is_a_factory_that_must_return_one():
    """A class that is not an nn.Module is called with no arguments, and refused."""
    with pytest.raises(TypeError, match="must return an nn.Module; it returned _NotA"):
        build_encoder(_NotAModule, (4,))


def _make_encoder(width):
    return nn.Linear(4, width)


def test_a_factory_needing_arguments_is_named_with_the_fix():
    """A function or partial missing arguments is named, with how to complete it."""
    import functools

    with pytest.raises(
        TypeError,
        match=r"encoder=_make_encoder is called with no arguments.*"
        r"functools\.partial\(_make_encoder, \.\.\.\)",
    ):
        build_encoder(_make_encoder, (4,))
    with pytest.raises(
        TypeError,
        match=r"encoder=functools\.partial\(_make_encoder, \.\.\.\) is called.*"
        r"Give the partial every argument",
    ):
        build_encoder(functools.partial(_make_encoder), (4,))


class _ReturnsTuple(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x), x  # (output, hidden states), as many libraries return


def test_build_encoder_and_decoder_refuse_a_module_returning_no_tensor():
    """A module whose forward returns a tuple is refused with a ValueError naming it."""
    with pytest.raises(ValueError, match="encoder _ReturnsTuple must return a tensor"):
        build_encoder(_ReturnsTuple(), (4,))
    with pytest.raises(ValueError, match="decoder _ReturnsTuple must return a tensor"):
        build_decoder(_ReturnsTuple(), "mlp", (3,), in_features=4)


@pytest.mark.parametrize("declared", [5.0, "5", True])
def test_build_encoder_refuses_an_out_features_that_is_no_int(declared):
    """A user encoder declaring a float, str or bool out_features is refused."""
    module = _WithOut((4,), width=5)
    module.out_features = declared
    with pytest.raises(ValueError, match=r"out_features=.*it must be an int"):
        build_encoder(module, (4,))


def _conv_t_widths(module):
    kinds = nn.ConvTranspose1d | nn.ConvTranspose2d
    return [
        (m.in_channels, m.out_channels)
        for m in module.modules()
        if isinstance(m, kinds)
    ]


@pytest.mark.parametrize(
    ("encoder", "widths"),
    [
        ("cnn", [(64, 32), (32, 1)]),
        (CNNEncoder, [(64, 32), (32, 1)]),
        (CNNEncoder((1, 8, 8), channels=(4, 8, 16)), [(16, 8), (8, 4), (4, 1)]),
        ("resnet", [(128, 64), (64, 32), (32, 1)]),
        (ResNetEncoder, [(128, 64), (64, 32), (32, 1)]),
        (ResNetEncoder((1, 8, 8), channels=(4, 8)), [(8, 4), (4, 1)]),
    ],
    ids=["cnn", "cnn-class", "cnn-module", "resnet", "resnet-class", "resnet-module"],
)
def test_auto_conv_decoder_runs_the_encoders_channels_backwards(encoder, widths):
    """The auto decoder of a conv encoder (name, class, module) reverses its widths."""
    dec = build_decoder("auto", encoder, (1, 8, 8), in_features=16)
    assert isinstance(dec, ConvDecoder)
    assert _conv_t_widths(dec) == widths
    assert dec(torch.randn(2, 16)).shape == (2, 1, 8, 8)


@pytest.mark.parametrize("cls", [CNNEncoder, ResNetEncoder])
def test_auto_conv_decoder_uses_the_encoders_activation(cls):
    """The auto decoder of a conv encoder with GELU uses GELU, not the default ReLU."""
    enc = cls((1, 8, 8), channels=(4, 8), activation="gelu")
    dec = build_decoder("auto", enc, (1, 8, 8), in_features=enc.out_features)
    acts = {type(m) for m in dec.modules() if isinstance(m, nn.ReLU | nn.GELU)}
    assert acts == {nn.GELU}


def test_auto_vit_decoder_uses_the_encoders_heads_and_mlp_ratio():
    """The auto decoder of a ViT encoder has its number of heads and MLP width."""
    enc = build_encoder(
        "vit", (1, 8, 8), embed_dim=16, depth=1, num_heads=2, mlp_ratio=2.0
    )
    dec = build_decoder("auto", enc, (1, 8, 8), in_features=enc.out_features)
    assert isinstance(dec, ViTDecoder) and len(dec.blocks) > 0
    for block in dec.blocks:
        assert block.self_attn.num_heads == 2
        assert block.linear1.out_features == 32  # 16 * mlp_ratio


def test_auto_decoder_kwargs_override_the_mirrored_ones():
    """Keywords given with decoder="auto" win over those mirrored from the encoder."""
    enc = MLPEncoder((10,), hidden_sizes=(16, 8))
    dec = build_decoder("auto", enc, (10,), in_features=8, hidden_sizes=(5,))
    widths = [m.out_features for m in dec.modules() if isinstance(m, nn.Linear)]
    assert widths == [5, 10]


def test_build_decoder_bad_kwarg_of_a_named_decoder_raises():
    """A misspelt keyword of a named decoder is a TypeError with a suggestion."""
    with pytest.raises(TypeError, match=r"'hiden_sizes'.*Did you mean 'hidden_sizes'"):
        build_decoder("mlp", "mlp", (10,), in_features=4, hiden_sizes=(8,))


@pytest.mark.parametrize("in_features", [0, 2.5])
def test_build_decoder_refuses_a_bad_in_features_for_a_user_class(in_features):
    """The code width is checked before a user's decoder class is built."""
    with pytest.raises(ValueError, match="in_features="):
        build_decoder(_UserDecoder, "mlp", (1, 4, 4), in_features=in_features)


class _DropsRowsDecoder(_UserDecoder):
    def forward(self, z):
        return super().forward(z)[:1]


def test_build_decoder_refuses_a_decoder_that_changes_the_batch_size():
    """A decoder must give one reconstruction per code: (B, *input_shape)."""
    with pytest.raises(ValueError, match=r"returned \(1, 1, 4, 4\), expected"):
        build_decoder(_DropsRowsDecoder, "mlp", (1, 4, 4), in_features=3)


def test_build_decoder_auto_names_an_unknown_encoder_name():
    """A misspelt encoder name given to the auto decoder gets a suggestion."""
    with pytest.raises(ValueError, match=r"encoder='resnt'.*Did you mean 'resnet'"):
        build_decoder("auto", "resnt", (1, 8, 8), in_features=4)


def test_build_decoder_refuses_an_encoder_only_name():
    """decoder="resnet" (an encoder name only) is a ValueError listing the decoders."""
    with pytest.raises(ValueError, match=r"decoder='resnet' is not a known decoder"):
        build_decoder("resnet", "resnet", (1, 8, 8), in_features=4)


def test_build_decoder_module_with_kwargs_raises():
    """decoder_kwargs cannot be applied to a decoder given as a module."""
    with pytest.raises(TypeError, match="decoder_kwargs.*cannot be applied"):
        build_decoder(_UserDecoder((4,), 2), "mlp", (4,), in_features=2, scale=2.0)


# -- ViT: sizes, positions, pooling and the decoder ---------------------------
def test_vit_encoder_refuses_a_patch_size_that_divides_only_one_side():
    """An explicit patch_size must divide the height and the width alike."""
    with pytest.raises(ValueError, match=r"patch_size=8 must divide.*\[1, 2, 4\]"):
        ViTEncoder((1, 8, 12), patch_size=8)


@pytest.mark.parametrize("patch_size", [2.0, True])
def test_vit_encoder_refuses_a_patch_size_that_is_no_int(patch_size):
    """patch_size=2.0 or True is refused by name, not read as 2 or 1."""
    with pytest.raises(ValueError, match=rf"patch_size={patch_size!r} must divide"):
        ViTEncoder((1, 40), patch_size=patch_size)


def test_vit_signal_embed_dim_needs_to_be_even_only():
    """A signal's 1-D sin-cos positions need an even width, not a multiple of 4."""
    enc = ViTEncoder((1, 40), embed_dim=6, depth=1, num_heads=3)
    assert enc(torch.randn(2, 1, 40)).shape == (2, 6)
    with pytest.raises(ValueError, match=r"embed_dim=5 must be a multiple of 2 "):
        ViTEncoder((1, 40), embed_dim=5, num_heads=5)


def test_vit_positions_of_a_non_square_grid_follow_its_rows_and_columns():
    """A grid of 2 rows and 4 columns gets the positions of a 2 x 4 grid."""
    enc = ViTEncoder((1, 8, 16), patch_size=4, embed_dim=16, depth=1, num_heads=2)
    dec = ViTDecoder((1, 8, 16), 4, patch_size=4, embed_dim=16, depth=1, num_heads=2)
    expected = sincos_pos_embed_2d(16, 2, 4)
    torch.testing.assert_close(enc.pos_embed[0], expected)
    torch.testing.assert_close(dec.pos_embed[0], expected)


def test_vit_unknown_pooling_lists_the_poolings():
    """An unknown pooling is refused with the quoted names of the known ones."""
    with pytest.raises(
        ValueError, match=r"pooling='max' must be one of 'mean', 'cls', 'blocks'\."
    ):
        ViTEncoder((1, 8, 8), pooling="max")


def test_vit_set_pooling_keeps_the_regions_unless_given():
    """set_pooling(pooling) alone keeps the encoder's regions."""
    enc = ViTEncoder((1, 40), embed_dim=16, depth=2, regions=4)
    enc.set_pooling("blocks")
    assert (enc.regions, enc.out_features) == (4, (1 + 4) * 2 * 16)
    assert enc.set_pooling("mean").out_features == 4 * 16
    assert enc.set_pooling("cls", regions=1).out_features == 16


def test_vit_regions_may_be_as_many_as_the_patch_tokens():
    """regions=num_patches gives every patch token its own mean: the tokens."""
    enc = ViTEncoder((1, 8, 8), patch_size=2, embed_dim=16, depth=1, regions=16)
    enc.eval()
    x = torch.randn(3, 1, 8, 8)
    patches = enc.forward_tokens(enc.embed(x))[:, 1:]
    torch.testing.assert_close(enc(x), patches.flatten(1))


def test_vit_regions_are_the_parts_tensor_split_cuts():
    """20 tokens in 6 regions are parts of 4, 4, 3, 3, 3 and 3 tokens."""
    enc = ViTEncoder((1, 40), embed_dim=8, depth=1, num_heads=2, regions=6).eval()
    x = torch.randn(3, 1, 40)
    patches = enc.forward_tokens(enc.embed(x))[:, 1:]
    bounds = [0, 4, 8, 11, 14, 17, 20]
    expected = torch.cat(
        [patches[:, a:b].mean(1) for a, b in zip(bounds, bounds[1:])], dim=1
    )
    assert enc.out_features == 6 * 8
    torch.testing.assert_close(enc(x), expected)


def test_vit_blocks_pooling_before_any_block_is_the_mean_of_each_region():
    """n_blocks=0 reads the embedded patches, one mean per region."""
    enc = ViTEncoder((1, 40), embed_dim=8, depth=2, num_heads=2, regions=4)
    enc.set_pooling("blocks")
    tokens = enc.embed(torch.randn(3, 1, 40))
    expected = torch.cat([part.mean(1) for part in tokens.tensor_split(4, 1)], 1)
    torch.testing.assert_close(enc.forward_pooled(tokens, 0), expected)
    assert enc.pooled_width(0) == 4 * 8


@pytest.mark.parametrize("pooling", ["mean", "cls", "blocks"])
def test_vit_pooled_width_is_the_width_forward_pooled_gives(pooling):
    """pooled_width(n) is the width of forward_pooled(tokens, n), for every n."""
    enc = ViTEncoder((1, 16), patch_size=2, embed_dim=8, depth=3, num_heads=2)
    enc.set_pooling(pooling, regions=1 if pooling == "cls" else 2)
    tokens = enc.embed(torch.randn(2, 1, 16))
    for n in (0, 1, 2, 3, 5, -1, None):
        assert enc.forward_pooled(tokens, n).shape[1] == enc.pooled_width(n), n


def test_vit_decoder_names_itself_when_no_patch_size_fits():
    """The decoder's own name heads the error of an input with no patch size."""
    with pytest.raises(ValueError, match=r"^ViTDecoder could not choose a patch_size"):
        ViTDecoder((1, 1009), 8)


def test_vit_decoder_refuses_a_code_of_no_feature():
    """in_features=0 is refused by name, not built as a layer of no input."""
    with pytest.raises(ValueError, match=r"in_features=0 must be an int >= 1"):
        ViTDecoder((1, 8, 8), 0)


def test_vit_decoder_builds_the_blocks_it_is_asked_for():
    """depth, num_heads and mlp_ratio shape every block of the decoder."""
    dec = ViTDecoder(
        (1, 8, 8), 4, patch_size=2, embed_dim=16, depth=3, num_heads=4, mlp_ratio=2.0
    )
    assert len(dec.blocks) == 3
    for block in dec.blocks:
        assert block.self_attn.num_heads == 4
        assert block.linear1.out_features == 32


def test_vit_decoder_decodes_as_its_layers_say():
    """The code is projected, added to each position, run through the blocks,
    normalised and mapped to the pixels of each patch; its init zeroes the
    biases of its linear layers."""
    torch.manual_seed(0)
    dec = ViTDecoder((2, 8, 8), 6, patch_size=4, embed_dim=16, depth=2, num_heads=2)
    assert all(not m.bias.any() for m in dec.modules() if isinstance(m, nn.Linear))
    dec.eval()
    for p in dec.parameters():  # away from the init: every layer counts
        p.data.normal_(0, 0.5)
    z = torch.randn(3, 6)
    tokens = dec.proj(z)[:, None] + dec.pos_embed
    for block in dec.blocks:
        tokens = block(tokens)
    expected = unpatchify(dec.head(dec.norm(tokens)), 4, (2, 8, 8))
    torch.testing.assert_close(dec(z), expected)
    assert not torch.allclose(expected, unpatchify(dec.head(tokens), 4, (2, 8, 8)))


def test_vit_encoder_refuses_no_attention_head_by_name():
    """num_heads=0 is a ValueError naming it, not a division by zero."""
    with pytest.raises(ValueError, match=r"num_heads=0 must be an int >= 1"):
        ViTEncoder((1, 8, 8), num_heads=0)


@pytest.mark.parametrize("dropout", [1.0, True])
def test_vit_encoder_refuses_a_dropout_outside_zero_to_one(dropout):
    """dropout=1.0 (every unit dropped) or a bool is refused by name."""
    with pytest.raises(ValueError, match=rf"dropout={dropout!r} must be a float"):
        ViTEncoder((1, 8, 8), dropout=dropout)
