"""Tests of the batched augmentations in ``sk_replearn.views``."""

import copy
import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, clone

from sk_replearn.views import ImageViews, SequenceViews, TabularViews, make_views

DTYPES = [torch.float32, torch.float64]
# (views factory, batch shape): every family, images with 1 and 3 channels
CASES = [
    (lambda: ImageViews(blur_prob=0.5, noise_std=0.1, flip_prob=0.5), (6, 3, 12, 10)),
    (lambda: ImageViews(), (6, 1, 8, 8)),
    (lambda: make_views("auto", (1, 8, 8)), (6, 1, 8, 8)),
    (lambda: SequenceViews(mask_fraction=0.2), (6, 2, 40)),
    (lambda: TabularViews(noise_std=0.1), (6, 10)),
]
CASE_IDS = ["image-rgb", "image-gray", "image-warps", "sequence", "tabular"]
# everything off, so that one augmentation can be switched on alone
IMAGE_OFF = dict(crop_scale=None, jitter_prob=0.0, grayscale_prob=0.0)
SEQUENCE_OFF = dict(crop_scale=None, max_shift=0.0, scale_range=(1, 1), noise_std=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("make", "shape"), CASES, ids=CASE_IDS)
def test_views_keep_shape_dtype_device(make, shape, dtype, device):
    x = torch.randn(shape, dtype=dtype, device=device)
    out = make()(x)
    assert out.shape == x.shape
    assert out.dtype == dtype
    assert out.device == x.device
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("make", "shape"), CASES, ids=CASE_IDS)
def test_views_two_calls_differ(make, shape):
    views, x = make(), torch.randn(shape)
    assert not torch.equal(views(x), views(x))


@pytest.mark.parametrize(("make", "shape"), CASES, ids=CASE_IDS)
def test_views_reproducible_under_manual_seed(make, shape):
    views, x = make(), torch.randn(shape)
    torch.manual_seed(3)
    first = views(x)
    torch.manual_seed(3)
    assert torch.equal(views(x), first)


@pytest.mark.parametrize(("make", "shape"), CASES, ids=CASE_IDS)
def test_views_leave_input_untouched_and_allow_empty_batch(make, shape):
    x = torch.randn(shape)
    before = x.clone()
    make()(x)
    assert torch.equal(x, before)
    assert make()(x[:0]).shape == x[:0].shape


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_batches_are_augmented_as_float32(dtype):
    # torch's CPU grid_sample read out of bounds in half precision on large
    # images (NaN and 1e37 in a flipped image of ones), and bfloat16 cannot
    # hold the sample positions of a signal longer than 256 steps.
    flip = ImageViews(**IMAGE_OFF, flip_prob=1.0)
    ones = torch.ones(1, 1, 224, 224, dtype=dtype)
    out = flip(ones)
    assert out.dtype == dtype and torch.equal(out, ones)
    assert flip.local(ones).dtype == dtype
    signal = torch.randn(2, 1, 300).to(dtype)
    same = SequenceViews(**{**SEQUENCE_OFF, "crop_scale": (1.0, 1.0)})
    assert torch.equal(same(signal), signal)
    torch.manual_seed(0)
    half = ImageViews()(torch.rand(2, 3, 40, 40).to(dtype))
    torch.manual_seed(0)
    full = ImageViews()(torch.rand(2, 3, 40, 40))
    torch.testing.assert_close(half.float(), full, atol=2e-2, rtol=0)


def test_an_empty_batch_still_checks_the_parameters():
    bad = ImageViews(crop_scale=(0.5, 2.0))
    for batch in (torch.zeros(0, 3, 8, 8), torch.zeros(1, 3, 8, 8)):
        with pytest.raises(ValueError, match="crop_scale"):
            bad(batch)
    with pytest.raises(ValueError, match="local_crop_scale"):
        ImageViews(local_crop_scale=(0.0, 0.5)).local(torch.zeros(0, 3, 8, 8))


@pytest.mark.parametrize(("make", "shape"), CASES, ids=CASE_IDS)
def test_views_clone_pickle_deepcopy(make, shape):
    views = make()
    pickled = pickle.loads(pickle.dumps(views))
    for copied in (clone(views), pickled, copy.deepcopy(views)):
        assert type(copied) is type(views)
        assert copied.get_params() == views.get_params()
        assert repr(copied) == repr(views)


def test_imageviews_get_set_params_and_repr():
    views = ImageViews(crop_scale=(0.5, 1.0))
    assert repr(views) == "ImageViews(crop_scale=(0.5, 1.0))"
    assert views.get_params()["crop_scale"] == (0.5, 1.0)
    assert views.set_params(flip_prob=0.5) is views
    assert views.flip_prob == 0.5
    with pytest.raises(ValueError, match="crop_size"):
        views.set_params(crop_size=3)


def test_views_nested_params_reach_grid_search():
    class Holder(BaseEstimator):
        def __init__(self, views="auto"):
            self.views = views

    est = Holder(views=SequenceViews())
    assert est.get_params(deep=True)["views__crop_scale"] == (0.8, 1.0)
    est.set_params(views__crop_scale=(0.8, 1.0))
    copied = clone(est)
    assert copied.views is not est.views
    assert copied.views.crop_scale == (0.8, 1.0)


# -- each augmentation alone -------------------------------------------------
def test_imageviews_flip_alone_mirrors_width():
    x = torch.randn(4, 3, 5, 7)
    out = ImageViews(**IMAGE_OFF, flip_prob=1.0)(x)
    torch.testing.assert_close(out, x.flip(-1))


def test_imageviews_full_crop_is_identity():
    x = torch.randn(4, 2, 5, 7)
    views = ImageViews(**IMAGE_OFF | dict(crop_scale=(1, 1), crop_ratio=(1.4, 1.4)))
    out = views(x)  # crop of the whole 5 x 7 image
    torch.testing.assert_close(out, x)


def test_imageviews_crop_zooms_into_the_image():
    ramp = torch.linspace(-1, 1, 32).expand(64, 1, 32, 32)  # value = column
    out = ImageViews(**IMAGE_OFF | dict(crop_scale=(0.2, 0.3)))(ramp)
    span = out.amax(dim=(1, 2, 3)) - out.amin(dim=(1, 2, 3))  # (B,)
    assert (out >= -1).all() and (out <= 1).all()
    assert (span < 2 * 0.75).all()  # crop width <= sqrt(0.3 * 4/3) of the image
    assert (out.diff(dim=-1) >= -1e-6).all()  # not flipped: still increasing


def _crop_boxes(views, H, W, n=512):
    """Each view's crop (fw, fh, cx, cy), read off coordinate ramps.

    Channel 0 holds each pixel's x in grid_sample's [-1, 1] units, channel 1
    its y; bilinear sampling reproduces them exactly between the first and
    last pixel centres, so two output samples near the middle of each axis
    give the crop's width fraction and centre.
    """
    xs = (2 * torch.arange(W) + 1) / W - 1
    ys = (2 * torch.arange(H) + 1) / H - 1
    image = torch.stack(torch.broadcast_tensors(xs[None, :], ys[:, None]))
    torch.manual_seed(0)
    out = views(image.expand(n, 2, H, W).contiguous())

    def line(values, size):  # the crop's (fraction, centre) along one axis
        a, b = size // 2 - 3, size // 2 + 3
        ua, ub = (2 * a + 1) / size - 1, (2 * b + 1) / size - 1
        frac = (values[:, b] - values[:, a]) / (ub - ua)
        return frac, values[:, a] - frac * ua

    fw, cx = line(out[:, 0, H // 2, :], W)
    fh, cy = line(out[:, 1, :, W // 2], H)
    return fw, fh, cx, cy


@pytest.mark.parametrize("H, W", [(32, 32), (24, 48)])
def test_imageviews_crops_have_the_drawn_area_and_aspect(H, W):
    # RandomResizedCrop's law: area a uniform in crop_scale, aspect
    # (width / height, in pixels) log-uniform in crop_ratio. A crop's height
    # computed with the ratio multiplied rather than divided made every
    # crop of a square image square and its area a * r; the tests above
    # only bound the crop from above.
    views = ImageViews(**IMAGE_OFF | dict(crop_scale=(0.1, 0.2)))
    fw, fh, _, _ = _crop_boxes(views, H, W)
    area = fw * fh
    assert area.min() >= 0.1 - 1e-4 and area.max() <= 0.2 + 1e-4
    log_aspect = torch.log(fw * W / (fh * H))
    low, high = math.log(3 / 4), math.log(4 / 3)
    assert log_aspect.min() >= low - 1e-4 and log_aspect.max() <= high + 1e-4
    # log-uniform over [low, high]: standard deviation (high - low) / sqrt(12)
    assert log_aspect.std() == pytest.approx((high - low) / math.sqrt(12), rel=0.1)


@pytest.mark.parametrize("ratio", [(2.0, 2.0), (0.5, 0.5)], ids=["wide", "tall"])
def test_imageviews_crops_stay_inside_the_image(ratio):
    # A crop's centre is drawn where the whole crop fits, along each axis by
    # its own extent: with the height's extent for x, wide crops ran off the
    # edge (grid_sample then repeats the border pixels) and tall ones never
    # reached it.
    views = ImageViews(**IMAGE_OFF | dict(crop_scale=(0.2, 0.3), crop_ratio=ratio))
    fw, fh, cx, cy = _crop_boxes(views, 32, 32)
    torch.testing.assert_close(fw / fh, torch.full_like(fw, ratio[0]))
    assert (cx.abs() + fw).max() <= 1 + 1e-4 and (cy.abs() + fh).max() <= 1 + 1e-4
    # and reaches the edges: the centre uniform over the room left
    assert (cx.abs() / (1 - fw)).max() > 0.95 and (cy.abs() / (1 - fh)).max() > 0.95


def _centroid(x):
    """Intensity-weighted (row, column) centre of each image, from the middle."""
    H, W = x.shape[-2:]
    rows = torch.arange(H, dtype=x.dtype) - (H - 1) / 2
    cols = torch.arange(W, dtype=x.dtype) - (W - 1) / 2
    mass = x.sum(dim=(1, 2, 3))
    r = (x.sum(dim=(1, 3)) * rows).sum(-1) / mass
    c = (x.sum(dim=(1, 2)) * cols).sum(-1) / mass
    return r, c


def test_imageviews_rotation_alone_turns_about_the_centre():
    x = torch.zeros(64, 1, 33, 33)
    x[:, :, 6:10, 14:19] = 1.0  # a blob 8.5 pixels straight above the centre
    out = ImageViews(**IMAGE_OFF, rotation=60)(x)
    r, c = _centroid(out)
    r0, c0 = _centroid(x)
    radius = (r**2 + c**2).sqrt()
    torch.testing.assert_close(radius, (r0**2 + c0**2).sqrt(), atol=0.3, rtol=0)
    angle = torch.rad2deg(torch.atan2(c, -r))  # 0: straight up
    assert angle.abs().max() <= 60 + 1 and angle.abs().max() > 30
    torch.testing.assert_close(
        out.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)), rtol=0.05, atol=0
    )


def test_imageviews_shear_alone_moves_columns_by_row():
    rows = torch.linspace(-1, 1, 16)[:, None].expand(8, 1, 16, 16)  # value = row
    out = ImageViews(**IMAGE_OFF, shear=0.5)(rows)
    torch.testing.assert_close(out, rows)  # a horizontal shear keeps every row
    cols = rows.transpose(-1, -2).contiguous()  # value = column
    out = ImageViews(**IMAGE_OFF, shear=0.5)(cols)
    shift = (out - cols)[:, 0, :, 4:12]  # away from the clamped borders
    slope = shift[:, -1].mean(-1) - shift[:, 0].mean(-1)  # bottom row - top row
    # rows 15/16 of a half-height from the middle, values 16/15 a grid unit: 2 s
    assert slope.abs().max() > 0.1 and slope.abs().max() <= 2 * 0.5 + 1e-4


def test_imageviews_zoom_alone_scales_about_the_centre():
    ramp = torch.linspace(-1, 1, 32).expand(4, 1, 32, 32)  # value = column
    out = ImageViews(**IMAGE_OFF, zoom=(2.0, 2.0))(ramp)
    torch.testing.assert_close(out, ramp / 2)  # twice as large: half the span
    out = ImageViews(**IMAGE_OFF, zoom=(0.5, 0.5))(ramp)
    centre = out[..., 8:24]  # the image shrunk into the middle half
    torch.testing.assert_close(centre, 2 * ramp[..., 8:24], atol=1e-5, rtol=0)
    assert (out[..., :4] == ramp[..., :1]).all()  # edge pixels around it


def test_imageviews_translate_alone_shifts_each_image():
    ramp = torch.linspace(-1, 1, 32).expand(16, 1, 32, 32)
    out = ImageViews(**IMAGE_OFF, translate=0.1)(ramp)
    shift = (out - ramp)[..., 5:27]  # interior: no clamping at a shift <= 3.2 px
    per_image = shift.mean(dim=(1, 2, 3))
    torch.testing.assert_close(shift, per_image.view(-1, 1, 1, 1).expand_as(shift))
    # 2 * 0.1 in grid units (2 / 32 a pixel) is a value shift of 0.2 * 32 / 31
    assert per_image.abs().max() <= 0.2 * 32 / 31 + 1e-5 and per_image.std() > 0.01


def test_imageviews_elastic_alone_is_a_small_smooth_warp():
    ramp = torch.linspace(-1, 1, 32).expand(16, 1, 32, 32)
    out = ImageViews(**IMAGE_OFF, elastic=0.02)(ramp)
    moved = out - ramp
    assert moved.abs().amax(dim=(1, 2, 3)).min() > 0  # every image is warped
    assert moved.abs().mean() < 0.2  # by about a pixel, not a scramble
    # smooth: neighbouring pixels move alike (inside, away from the clamped edge)
    inner = moved[..., 4:28, 4:28]
    assert inner.diff(dim=-1).abs().max() < 0.3 * inner.abs().max()
    assert out.min() >= -1 - 1e-6 and out.max() <= 1 + 1e-6


def test_imageviews_warps_reach_local_views():
    x = torch.randn(5, 1, 28, 20)
    views = ImageViews(crop_scale=None, rotation=15, elastic=0.04, zoom=(0.8, 1.2))
    assert views.local(x).shape == (5, 1, 14, 10)


def test_imageviews_brightness_alone_shifts_each_image():
    x = torch.randn(64, 3, 6, 6)
    jitter = dict(jitter_prob=1.0, contrast=0, saturation=0, hue=0)
    shift = ImageViews(**IMAGE_OFF | jitter)(x) - x
    per_image = shift.mean(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(shift, per_image.expand_as(shift))
    assert (per_image.abs() <= 0.4 + 1e-6).all() and per_image.std() > 0.05


def test_imageviews_contrast_alone_scales_about_the_mean():
    x = torch.randn(64, 1, 6, 6)
    out = ImageViews(**IMAGE_OFF | dict(jitter_prob=1.0), brightness=0)(x)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(out.mean(dim=(1, 2, 3), keepdim=True), mean)
    factor = (out - mean).flatten(1).norm(dim=1) / (x - mean).flatten(1).norm(dim=1)
    assert (factor >= 0.6 - 1e-5).all() and (factor <= 1.4 + 1e-5).all()


def test_imageviews_grayscale_alone_copies_luma_to_all_channels():
    x = torch.randn(8, 3, 5, 5)
    out = ImageViews(**IMAGE_OFF | dict(grayscale_prob=1.0))(x)
    luma = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    for c in range(3):
        torch.testing.assert_close(out[:, c], luma)


def test_imageviews_saturation_and_hue_keep_gray_images():
    gray = torch.randn(16, 1, 5, 5).expand(16, 3, 5, 5)
    views = ImageViews(**IMAGE_OFF | dict(jitter_prob=1.0), brightness=0, contrast=0)
    torch.testing.assert_close(views(gray), gray)
    colour = torch.randn(16, 3, 5, 5)
    assert not torch.allclose(views(colour), colour)


def test_imageviews_hue_turns_colours_by_up_to_hue_of_a_full_turn():
    # hue=h rotates each image's colours about the gray axis by an angle
    # uniform in [-h, h] turns (the docstring's "up to hue * 360 degrees");
    # the test above only saw that colours change. Read the angle off a
    # red image: its chroma (its colour less its gray) turns in the plane
    # orthogonal to the gray axis.
    hue = 0.25
    off = dict(brightness=0, contrast=0, saturation=0, hue=hue)
    views = ImageViews(**IMAGE_OFF | dict(jitter_prob=1.0), **off)
    red = torch.zeros(4000, 3, 1, 1)
    red[:, 0] = 1.0
    torch.manual_seed(0)
    out = views(red)[:, :, 0, 0]  # (B, 3)
    gray = torch.full((3,), 3**-0.5)
    before = red[0, :, 0, 0] - red[0, :, 0, 0].mean()
    after = out - out.mean(dim=1, keepdim=True)
    torch.testing.assert_close(after.norm(dim=1), before.norm().expand(len(out)))
    sine = torch.linalg.cross(before.expand_as(after), after, dim=1) @ gray
    angle = torch.atan2(sine, after @ before)
    turn = hue * 2 * math.pi
    assert angle.abs().max() <= turn + 1e-5 and angle.abs().max() > 0.98 * turn
    assert angle.std() == pytest.approx(2 * turn / math.sqrt(12), rel=0.05)


def test_imageviews_colour_ops_skip_other_channel_counts():
    x = torch.randn(8, 2, 5, 5)
    colour_only = dict(jitter_prob=1.0, grayscale_prob=1.0, brightness=0, contrast=0)
    torch.testing.assert_close(ImageViews(crop_scale=None, **colour_only)(x), x)


def _unit_gaussian(dtype) -> torch.Tensor:
    """The 7 taps of a Gaussian of std 1, summing to 1."""
    kernel = torch.exp(-0.5 * torch.arange(-3, 4, dtype=dtype) ** 2)
    return kernel / kernel.sum()


def test_imageviews_blur_alone_matches_reflect_padded_convolution():
    x = torch.randn(3, 2, 9, 7, dtype=torch.float64)
    out = ImageViews(**IMAGE_OFF | dict(blur_prob=1.0, blur_sigma=(1.0, 1.0)))(x)
    kernel = _unit_gaussian(x.dtype)
    padded = F.pad(x, (3, 3, 3, 3), mode="reflect").view(6, 1, 15, 13)
    expected = F.conv2d(padded, kernel.view(1, 1, 1, 7))
    expected = F.conv2d(expected, kernel.view(1, 1, 7, 1)).view_as(x)
    torch.testing.assert_close(out, expected)


def test_imageviews_blur_keeps_constant_images():
    x = torch.full((4, 1, 8, 8), 3.0)
    out = ImageViews(**IMAGE_OFF | dict(blur_prob=1.0))(x)
    torch.testing.assert_close(out, x)


def test_imageviews_noise_alone_has_noise_std():
    x = torch.randn(32, 1, 16, 16)
    out = ImageViews(**IMAGE_OFF | dict(noise_std=0.3))(x)
    assert abs((out - x).std().item() - 0.3) < 0.02


def test_sequenceviews_shift_alone_is_a_circular_roll():
    x = torch.randn(32, 2, 40)
    out = SequenceViews(**SEQUENCE_OFF | dict(max_shift=0.25))(x)
    shifts = set()
    for xi, oi in zip(x, out):
        match = [k for k in range(-10, 11) if torch.equal(oi, xi.roll(k, dims=-1))]
        assert match, "each signal must be x rolled by at most 10 steps"
        shifts.add(match[0])
    assert len(shifts) > 3
    torch.testing.assert_close(out.sort(-1).values, x.sort(-1).values)


def test_sequenceviews_crop_alone_stretches_part_of_the_signal():
    ramp = torch.linspace(0, 1, 40).expand(32, 1, 40)
    out = SequenceViews(**SEQUENCE_OFF | dict(crop_scale=(0.5, 0.6)))(ramp)
    span = out[..., -1] - out[..., 0]  # (B, 1)
    assert (span > 0.5 * 39 / 40 - 0.05).all() and (span < 0.6).all()
    assert (out.diff(dim=-1) > 0).all()


def test_sequenceviews_scale_alone_multiplies_each_signal():
    x = torch.randn(32, 2, 40)
    out = SequenceViews(**SEQUENCE_OFF | dict(scale_range=(0.5, 2.0)))(x)
    ratio = out / x
    torch.testing.assert_close(ratio, ratio[:, :1, :1].expand_as(ratio))
    assert (ratio >= 0.5 - 1e-5).all() and (ratio <= 2.0 + 1e-5).all()


def test_sequenceviews_mask_alone_zeroes_one_contiguous_span():
    x = torch.rand(32, 2, 40) + 1  # no zeros of its own
    out = SequenceViews(**SEQUENCE_OFF | dict(mask_fraction=0.25))(x)
    zero = out[:, 0] == 0  # (B, L)
    assert (zero.sum(-1) == 10).all()
    assert (zero.int().diff(dim=-1).abs().sum(-1) <= 2).all()  # one run
    assert torch.equal(out[:, 0] == 0, out[:, 1] == 0)
    torch.testing.assert_close(out[out != 0], x[out != 0])


@pytest.mark.parametrize(("noise_sigma", "min_corr"), [(0.0, -0.1), (3.0, 0.8)])
def test_sequenceviews_noise_alone_has_noise_std_and_correlation(noise_sigma, min_corr):
    x = torch.randn(256, 2, 40)
    views = SequenceViews(**SEQUENCE_OFF | dict(noise_std=0.5, noise_sigma=noise_sigma))
    noise = views(x) - x
    assert abs(noise.std().item() - 0.5) < 0.02
    pairs = torch.stack([noise[..., 0].ravel(), noise[..., 1].ravel()])  # (2, B*C)
    assert min_corr < torch.corrcoef(pairs)[0, 1] < min_corr + 0.2


def test_tabularviews_zero_corruption_is_identity():
    x = torch.randn(16, 7)
    assert torch.equal(TabularViews(corruption_rate=0.0)(x), x)


def test_tabularviews_full_corruption_draws_every_value_from_its_column():
    x = torch.randn(16, 7)  # distinct values, so a donor row always differs
    out = TabularViews(corruption_rate=1.0)(x)
    assert (out != x).all()
    for j in range(x.shape[1]):
        assert set(out[:, j].tolist()) <= set(x[:, j].tolist())


def test_tabularviews_corrupts_the_given_fraction_of_each_row():
    x = torch.randn(64, 10)
    out = TabularViews(corruption_rate=0.3)(x)
    assert ((out != x).sum(1) == 3).all()


def test_tabularviews_rounds_the_number_of_features_to_corrupt():
    # round(corruption_rate * d), as documented: 0.6 * 3 = 1.8 corrupts 2
    # values per row. It was floored to 1, most visible on narrow tables.
    x = torch.arange(3.0) + 100 * torch.arange(50.0)[:, None]  # all distinct
    out = TabularViews(corruption_rate=0.6)(x)
    assert ((out != x).sum(1) == 2).all()


def test_tabularviews_single_row_is_left_unchanged():
    x = torch.randn(1, 5)
    assert torch.equal(TabularViews(corruption_rate=1.0)(x), x)


# -- make_views and errors ---------------------------------------------------
@pytest.mark.parametrize(
    ("input_shape", "family"),
    [((3, 8, 8), ImageViews), ((1, 40), SequenceViews), ((10,), TabularViews)],
)
def test_make_views_auto_picks_family_from_input_shape(input_shape, family):
    views = make_views("auto", input_shape)
    assert type(views) is family
    assert views.get_params() == family().get_params()


def test_make_views_auto_warps_single_channel_images_instead_of_cropping():
    views = make_views("auto", (1, 28, 28))
    assert views.crop_scale is None
    assert views.rotation > 0 and views.shear > 0 and views.elastic > 0
    assert views.translate > 0 and views.zoom[0] < 1 < views.zoom[1]
    assert views.brightness == ImageViews().brightness  # the rest as default


def test_make_views_passes_objects_through_and_none_is_identity():
    views = SequenceViews(max_shift=0.1)
    assert make_views(views, (1, 40)) is views
    x = torch.randn(4, 10)
    assert torch.equal(make_views(None, (10,))(x), x)
    assert make_views(torch.neg, (10,)) is torch.neg


@pytest.mark.parametrize(
    ("views", "input_shape", "match"),
    [
        ("simclr", (1, 40), r"views='simclr'.*'auto', None"),
        ("none", (10,), r"views='none'.*'auto', None"),
        (3, (10,), r"views=3 .*callable"),
        ("auto", (1, 2, 3, 4), r"input_shape=\(1, 2, 3, 4\)"),
        (ImageViews(), (64,), r"views=ImageViews\(\).*input_shape=\(64,\)"),
        (TabularViews(), (1, 40), r"views=TabularViews\(\).*input_shape=\(1, 40\)"),
        (ImageViews(crop_scale=(0.9, 0.2)), (1, 8, 8), r"crop_scale=\(0.9, 0.2\)"),
        (ImageViews(flip_prob=2.0), (1, 8, 8), "flip_prob"),
        (ImageViews(zoom=(0.0, 1.0)), (1, 8, 8), r"zoom=\(0.0, 1.0\)"),
        (ImageViews(rotation=-5), (1, 8, 8), "rotation"),
        (SequenceViews(scale_range=1.0), (1, 40), "scale_range"),
        (TabularViews(corruption_rate=-0.1), (10,), "corruption_rate"),
        (lambda b: b.double(), (10,), r"dtype it is given \(torch.float32\)"),
    ],
)
def test_make_views_rejects_invalid_views(views, input_shape, match):
    with pytest.raises(ValueError, match=match):
        make_views(views, input_shape)


def test_make_views_names_a_class_given_for_an_instance():
    # The class was called with the batch mid-training: "__init__() takes 1
    # positional argument but 2 were given".
    with pytest.raises(TypeError, match=r"views=ImageViews is a class.*ImageViews\(\)"):
        make_views(ImageViews, (1, 8, 8))


@pytest.mark.parametrize(
    ("views", "x", "match"),
    [
        (ImageViews(), torch.randn(4, 64), r"ImageViews.*\(B, C, H, W\)"),
        (SequenceViews(), torch.zeros(4, 1, 40, dtype=torch.long), "floating"),
        (ImageViews(blur_sigma=(2.0, 1.0)), torch.randn(2, 1, 8, 8), "blur_sigma"),
    ],
)
def test_views_call_rejects_bad_batches_and_params(views, x, match):
    with pytest.raises(ValueError, match=match):
        views(x)


@pytest.mark.parametrize(
    "views, x",
    [
        (ImageViews(flip_prob=3), torch.zeros(4, 1, 8, 8)),
        (SequenceViews(mask_fraction=2.0), torch.zeros(4, 1, 40)),
        (SequenceViews(noise_std=-1), torch.zeros(4, 1, 40)),
        (SequenceViews(max_shift=1.5), torch.zeros(4, 1, 40)),
        (SequenceViews(local_size=0.0), torch.zeros(4, 1, 40)),
        (TabularViews(corruption_rate=1.5), torch.zeros(4, 6)),
    ],
)
def test_a_views_object_called_directly_checks_its_parameters(views, x):
    # Only make_views checked them: called directly (to look at the views),
    # a flip probability of 3 or a mask of 200% of the signal went through.
    with pytest.raises(ValueError, match="parameter of"):
        views(x)


@pytest.mark.parametrize(
    ("views", "x"),
    [
        (ImageViews(), torch.zeros(2, 1, 8, 8, 1)),
        (SequenceViews(), torch.zeros(2, 1, 2, 40)),
        (TabularViews(), torch.zeros(4, 2, 10)),
    ],
    ids=["image", "sequence", "tabular"],
)
def test_views_reject_batches_of_too_many_dimensions(views, x):
    with pytest.raises(ValueError, match="augments batches of shape"):
        views(x)


@pytest.mark.parametrize(
    ("views", "x"),
    [
        (ImageViews(zoom=(0.5, math.inf)), torch.zeros(2, 1, 8, 8)),
        (ImageViews(blur_sigma=(0.1, math.inf)), torch.zeros(2, 1, 8, 8)),
        (SequenceViews(scale_range=(1.0, math.inf)), torch.zeros(2, 1, 40)),
    ],
    ids=["zoom", "blur_sigma", "scale_range"],
)
def test_views_refuse_an_infinite_upper_bound(views, x):
    # An infinite bound draws infinite or NaN views.
    with pytest.raises(ValueError, match=r"\(finite\)"):
        views(x)


@pytest.mark.parametrize(
    ("views", "shape"),
    [(ImageViews(), (1, 3, 16, 16)), (SequenceViews(), (1, 2, 40))],
    ids=["image", "sequence"],
)
def test_a_batch_of_one_sample_is_augmented(views, shape):
    # Only an empty batch comes back as it is (a row of tabular data has no
    # other rows to draw from, and is left alone: see above).
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    assert not torch.equal(views(x), x)


def test_a_views_object_checks_parameters_set_after_a_call():
    views = SequenceViews()
    x = torch.zeros(4, 1, 40)
    views(x)
    views.set_params(mask_fraction=2.0)
    with pytest.raises(ValueError, match="'mask_fraction' parameter"):
        views(x)
    with pytest.raises(ValueError, match="'mask_fraction' parameter"):
        views.local(x)


def test_sequenceviews_crops_start_anywhere_and_shifts_go_both_ways():
    # A half-length crop starts uniformly in [0, L / 2] and a shift is a whole
    # number of steps uniform in [-max_shift L, max_shift L]; read off a ramp.
    # A start drawn in [0, 1 / 2] and shifts drawn in [0, max_shift L] were
    # caught only by the behaviour record, which any new draw would rewrite.
    L = 40
    ramp = torch.arange(float(L)).expand(2000, 1, L).contiguous()
    off = dict(max_shift=0.0, scale_range=(1.0, 1.0), noise_std=0.0)
    torch.manual_seed(0)
    crops = SequenceViews(**off | dict(crop_scale=(0.5, 0.5)))(ramp)
    start = crops[:, 0, 0] + 0.25  # the first sample centre of a crop x2
    assert start.min() < 1 and start.max() > L / 2 - 1
    assert start.mean() == pytest.approx(L / 4, abs=0.5)
    torch.manual_seed(0)
    shifted = SequenceViews(**off | dict(crop_scale=None, max_shift=0.25))(ramp)
    shift = (-shifted[:, 0, 0]).remainder(L).round()  # view[0] = x[-shift mod L]
    shift = torch.where(shift > L / 2, shift - L, shift)
    assert shift.min() == -L / 4 and shift.max() == L / 4
    assert shift.mean().abs() < 0.5


def test_tabularviews_noise_has_the_given_standard_deviation():
    # Gaussian noise of std noise_std, in standardised units, on every value.
    torch.manual_seed(0)
    x = torch.randn(256, 20)
    noise = TabularViews(corruption_rate=0.0, noise_std=0.1)(x) - x
    assert abs(noise.std().item() - 0.1) < 0.005
    assert (noise != 0).all()


# -- laws of the draws, and the augmentations combined -------------------------
def _unchanged_share(out, x):
    """Share of the images of ``out`` equal to those of ``x``."""
    same = [torch.allclose(o, xi, rtol=0, atol=1e-6) for o, xi in zip(out, x)]
    return sum(same) / len(same)


@pytest.mark.parametrize(
    ("params", "changed"),
    [
        (dict(flip_prob=0.5), None),
        (dict(blur_prob=0.5, blur_sigma=(1.0, 1.0)), None),
        (dict(jitter_prob=0.5, brightness=0.4), "brightness"),
        (dict(jitter_prob=0.5, brightness=0, contrast=0.4), "contrast"),
        (dict(jitter_prob=0.5, brightness=0, contrast=0, saturation=0.4), "saturation"),
        (dict(jitter_prob=0.5, brightness=0, contrast=0, saturation=0, hue=0.1), "hue"),
    ],
    ids=["flip", "blur", "brightness", "contrast", "saturation", "hue"],
)
def test_imageviews_each_image_draws_its_own_coin(params, changed):
    """flip_prob, blur_prob and jitter_prob each apply their augmentation to
    that share of the images, one coin per image; the others are unchanged."""
    x = torch.randn(400, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    off = IMAGE_OFF | dict(brightness=0, contrast=0, saturation=0, hue=0)
    torch.manual_seed(0)
    out = ImageViews(**off | params)(x)
    assert 0.4 < _unchanged_share(out, x) < 0.6


def test_imageviews_contrast_scales_about_the_mean_of_the_whole_image():
    """Contrast is x -> (x - m) c + m with m the mean over every channel and
    pixel of the image (not a mean per channel), one c per image."""
    g = torch.Generator().manual_seed(0)
    offsets = torch.tensor([3.0, 0.0, -2.0]).view(1, 3, 1, 1)  # channel means apart
    x = torch.randn(32, 3, 6, 6, generator=g) + offsets
    off = dict(brightness=0, saturation=0, hue=0)
    torch.manual_seed(0)
    out = ImageViews(**IMAGE_OFF | dict(jitter_prob=1.0), **off)(x)
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    c = ((out - m) * (x - m)).sum(dim=(1, 2, 3), keepdim=True) / (x - m).pow(2).sum(
        dim=(1, 2, 3), keepdim=True
    )
    torch.testing.assert_close(out, m + c * (x - m))
    assert c.min() < 0.8 and c.max() > 1.2


def test_imageviews_saturation_scales_the_chroma_both_ways():
    """Saturation blends with the luma by a factor s ~ U(1 - saturation,
    1 + saturation): it keeps the luma and scales the chroma by s, below and
    above 1."""
    x = torch.randn(400, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    off = dict(brightness=0, contrast=0, hue=0, saturation=0.4)
    torch.manual_seed(0)
    out = ImageViews(**IMAGE_OFF | dict(jitter_prob=1.0), **off)(x)
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    gray_x = (x * luma).sum(1, keepdim=True)
    gray_out = (out * luma).sum(1, keepdim=True)
    torch.testing.assert_close(gray_out, gray_x)
    chroma_x, chroma_out = (x - gray_x).flatten(1), (out - gray_out).flatten(1)
    s = (chroma_out * chroma_x).sum(1, keepdim=True) / chroma_x.pow(2).sum(1, True)
    torch.testing.assert_close(chroma_out, s * chroma_x)  # one s per image
    assert s.min() >= 0.6 - 1e-4 and s.max() <= 1.4 + 1e-4
    assert s.min() < 0.65 and s.max() > 1.35


def test_imageviews_grayscale_comes_after_the_colour_jitter():
    """A grayscale image is the luma of the jittered image (as torchvision's
    ColorJitter then RandomGrayscale), with the same draws otherwise."""
    x = torch.randn(16, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    jitter = IMAGE_OFF | dict(jitter_prob=1.0, brightness=0, contrast=0, hue=0.2)
    torch.manual_seed(0)
    coloured = ImageViews(**jitter)(x)
    torch.manual_seed(0)
    gray = ImageViews(**jitter | dict(grayscale_prob=1.0))(x)
    luma = 0.299 * coloured[:, 0] + 0.587 * coloured[:, 1] + 0.114 * coloured[:, 2]
    for c in range(3):
        torch.testing.assert_close(gray[:, c], luma)


def _slope(out, ramp):
    """Per image, d out / d ramp along the width through the middle."""
    mid = out.shape[-1] // 2
    return (out[:, 0, :, mid + 1] - out[:, 0, :, mid - 1]).mean(-1) / (
        ramp[0, 0, 0, mid + 1] - ramp[0, 0, 0, mid - 1]
    )


def test_imageviews_warps_compose_with_the_crop_and_the_flip():
    """A warp acts inside the crop, mirrored when flipped: a half-width crop
    zoomed 2x and flipped shows a quarter of the width, reversed."""
    ramp = torch.linspace(-1, 1, 32).expand(16, 1, 32, 32).contiguous()
    crop = dict(crop_scale=(0.25, 0.25), crop_ratio=(1.0, 1.0), zoom=(2.0, 2.0))
    for flip, sign in [(0.0, 1.0), (1.0, -1.0)]:
        out = ImageViews(**IMAGE_OFF | crop, flip_prob=flip)(ramp)
        torch.testing.assert_close(_slope(out, ramp), torch.full((16,), sign * 0.25))


@pytest.mark.parametrize("zoom", [(0.5, 2.0), (1.0, 1.5)])
def test_imageviews_zoom_is_log_uniform_in_its_range(zoom):
    """The zoom factor is drawn log-uniformly in the range, one endpoint at 1
    included (a range like (1, 1.5) zooms too)."""
    ramp = torch.linspace(-1, 1, 32).expand(2000, 1, 32, 32).contiguous()
    torch.manual_seed(0)
    out = ImageViews(**IMAGE_OFF, zoom=zoom)(ramp)
    log_z = -torch.log(_slope(out, ramp))  # a zoom z scales the content by z
    low, high = math.log(zoom[0]), math.log(zoom[1])
    assert log_z.min() >= low - 1e-4 and log_z.max() <= high + 1e-4
    assert log_z.mean() == pytest.approx((low + high) / 2, abs=0.02 * (high - low))
    assert log_z.std() == pytest.approx((high - low) / math.sqrt(12), rel=0.05)


def test_imageviews_rotation_keeps_distances_on_a_wide_image():
    """On an image wider than high a rotation keeps a blob's distance to the
    centre in pixels: angles are taken in pixel units, not per axis."""
    x = torch.zeros(64, 1, 25, 41)
    x[:, :, 11:14, 26:29] = 1.0  # a blob 7 pixels right of the centre
    torch.manual_seed(0)
    out = ImageViews(**IMAGE_OFF, rotation=60)(x)
    r, c = _centroid(out)
    r0, c0 = _centroid(x)
    radius = (r0**2 + c0**2).sqrt().expand(64)
    torch.testing.assert_close((r**2 + c**2).sqrt(), radius, atol=0.3, rtol=0)
    assert r.abs().max() > 4  # turned by up to 60 degrees: up to 6 pixels


def test_imageviews_shear_and_translate_reach_both_ways_to_their_maximum():
    """The shear factor is uniform in [-shear, shear] and each shift in
    [-translate, translate] of the side: both signs, up to the bound."""
    cols = torch.linspace(-1, 1, 16).expand(64, 1, 16, 16).contiguous()  # column
    torch.manual_seed(0)
    shift = (ImageViews(**IMAGE_OFF, shear=0.5)(cols) - cols)[:, 0, :, 4:12]
    slope = shift[:, -1].mean(-1) - shift[:, 0].mean(-1)
    assert slope.min() < -0.5 and slope.max() > 0.5
    ramp = torch.linspace(-1, 1, 32).expand(256, 1, 32, 32).contiguous()
    torch.manual_seed(0)
    moved = (ImageViews(**IMAGE_OFF, translate=0.1)(ramp) - ramp)[..., 5:27]
    per_image = moved.mean(dim=(1, 2, 3))
    bound = 0.2 * 32 / 31  # 0.1 of the side, in value units of the ramp
    assert per_image.min() < -0.9 * bound and per_image.max() > 0.9 * bound


def test_imageviews_elastic_moves_each_control_point_by_its_std():
    """The elastic field's control points sit on a 3x3 grid over the image,
    corners included, each displaced by N(0, elastic) of the side (2 elastic
    in grid units): read at the centre and at the middle of the left edge of
    a wide image."""
    H, W, n = 25, 41, 4000
    xs = (2 * torch.arange(W) + 1) / W - 1
    ys = (2 * torch.arange(H) + 1) / H - 1
    image = torch.stack(torch.broadcast_tensors(xs[None, :], ys[:, None]))
    torch.manual_seed(0)
    out = ImageViews(**IMAGE_OFF, elastic=0.03)(image.expand(n, 2, H, W).contiguous())
    dx_centre = out[:, 0, H // 2, W // 2] - xs[W // 2]
    dy_edge = out[:, 1, H // 2, 0] - ys[H // 2]  # vertical: no clamping there
    for d in (dx_centre, dy_edge):
        assert d.std() == pytest.approx(2 * 0.03, rel=0.05)


def test_imageviews_crops_stay_inside_at_the_default_scale():
    """At the default crop_scale (up to the whole image) every crop lies
    inside the image, as RandomResizedCrop's ten tries ensure."""
    views = ImageViews(**IMAGE_OFF | dict(crop_scale=(0.2, 1.0)))
    fw, fh, cx, cy = _crop_boxes(views, 32, 32)
    assert fw.max() <= 1 + 1e-4 and fh.max() <= 1 + 1e-4
    assert (cx.abs() + fw).max() <= 1 + 1e-4 and (cy.abs() + fh).max() <= 1 + 1e-4
    assert (fw * fh).max() > 0.9  # large crops are drawn too


def test_imageviews_crop_that_cannot_fit_takes_the_whole_side_at_the_nearest_ratio():
    """When no drawn crop fits, the crop is the whole image cut to the
    nearest allowed aspect ratio, as torchvision's fallback."""
    too_wide = dict(crop_scale=(0.95, 1.0), crop_ratio=(2.0, 2.0))
    views = ImageViews(**IMAGE_OFF | too_wide)
    fw, fh, _, _ = _crop_boxes(views, 32, 32, n=64)
    torch.testing.assert_close(fw, torch.ones(64), atol=1e-4, rtol=0)
    torch.testing.assert_close(fh, torch.full((64,), 0.5), atol=1e-4, rtol=0)


def test_imageviews_blur_sigma_is_drawn_per_image():
    """Each image gets its own blur sigma from blur_sigma: the blurred spread
    of a point differs between images over the whole range."""
    x = torch.zeros(200, 1, 31, 31, dtype=torch.float64)
    x[:, :, 15, 15] = 1.0
    views = ImageViews(**IMAGE_OFF | dict(blur_prob=1.0, blur_sigma=(0.5, 2.0)))
    torch.manual_seed(0)
    out = views(x)[:, 0]
    taps = torch.arange(31, dtype=x.dtype) - 15
    sigma = (out.sum(1) * taps**2).sum(-1).sqrt()  # the kernel's std, per image
    assert sigma.min() < 0.7 and sigma.max() > 1.8


def test_imageviews_blur_of_one_pixel_high_images():
    """A one-pixel-high image is blurred along its width only."""
    x = torch.randn(3, 2, 1, 9, dtype=torch.float64)
    out = ImageViews(**IMAGE_OFF | dict(blur_prob=1.0, blur_sigma=(1.0, 1.0)))(x)
    kernel = _unit_gaussian(x.dtype)
    padded = F.pad(x.view(6, 1, 9), (3, 3), mode="reflect")
    expected = F.conv1d(padded, kernel.view(1, 1, 7)).view_as(x)
    torch.testing.assert_close(out, expected)


def test_sequenceviews_mask_span_is_the_rounded_fraction_of_the_length():
    """The masked span is mask_fraction * L rounded to the nearest whole step."""
    x = torch.rand(64, 1, 10) + 1  # no zeros of its own
    out = SequenceViews(**SEQUENCE_OFF | dict(mask_fraction=0.22))(x)
    assert ((out[:, 0] == 0).sum(-1) == 2).all()  # 2.2 steps: 2


def test_sequenceviews_mask_starts_anywhere_ends_included():
    """The masked span starts uniformly: it can cover the first and the last step."""
    torch.manual_seed(0)
    x = torch.rand(400, 1, 10) + 1
    zero = SequenceViews(**SEQUENCE_OFF | dict(mask_fraction=0.3))(x)[:, 0] == 0
    starts = zero.int().argmax(-1)  # first masked step of each view
    assert set(starts.tolist()) == set(range(8))  # 0 ... L - span


def test_sequenceviews_crops_of_a_ramp_stay_increasing_up_to_the_last_step():
    """A crop never reads past the signal's end: a ramp's crops keep increasing."""
    torch.manual_seed(0)
    ramp = torch.arange(40.0).expand(2000, 1, 40)
    out = SequenceViews(**SEQUENCE_OFF | dict(crop_scale=(0.5, 0.5)))(ramp)
    assert (out.diff(dim=-1) > 0).all()
    assert out.min() >= 0 and out.max() <= 39


def test_sequenceviews_smooth_noise_on_signals_shorter_than_its_kernel():
    """Smooth noise on a short signal keeps its shape and its standard deviation."""
    torch.manual_seed(0)
    x = torch.zeros(2000, 1, 5)
    noise = SequenceViews(**SEQUENCE_OFF | dict(noise_std=0.5, noise_sigma=2.0))(x)
    assert noise.shape == x.shape
    assert abs(noise.std().item() - 0.5) < 0.02


def test_sequenceviews_scale_draws_each_signals_factor_from_scale_range():
    """Each signal is multiplied by its own factor drawn uniformly in scale_range."""
    torch.manual_seed(0)
    x = torch.rand(500, 2, 40) + 1  # no zeros of its own
    ratio = SequenceViews(**SEQUENCE_OFF | dict(scale_range=(2.0, 3.0)))(x) / x
    factor = ratio[:, 0, 0]
    torch.testing.assert_close(ratio, factor[:, None, None].expand_as(ratio))
    assert factor.min() >= 2.0 - 1e-5 and factor.max() <= 3.0 + 1e-5
    assert factor.mean() == pytest.approx(2.5, abs=0.05)
    assert factor.std() == pytest.approx(1 / math.sqrt(12), abs=0.03)


def test_sequenceviews_mask_span_rounds_up_past_half_a_step():
    """A mask_fraction of 2.8 steps masks 3 steps, the nearest whole number."""
    x = torch.rand(64, 1, 10) + 1  # no zeros of its own
    out = SequenceViews(**SEQUENCE_OFF | dict(mask_fraction=0.28))(x)
    assert ((out[:, 0] == 0).sum(-1) == 3).all()


def test_sequenceviews_noise_is_white_noise_smoothed_by_a_three_sigma_gaussian():
    """The noise is white noise convolved circularly with a unit-norm Gaussian
    of noise_sigma cut at three sigma."""
    x = torch.zeros(4, 2, 40, dtype=torch.float64)
    views = SequenceViews(**SEQUENCE_OFF | dict(noise_std=0.5, noise_sigma=1.5))
    torch.manual_seed(0)
    noise = views(x)
    torch.manual_seed(0)
    white = torch.randn_like(x).view(8, 1, 40)
    taps = torch.arange(-5.0, 6.0, dtype=x.dtype)  # radius ceil(3 * 1.5) = 5
    kernel = torch.exp(-0.5 * (taps / 1.5) ** 2)
    kernel = kernel / kernel.norm()
    padded = torch.cat([white[..., -5:], white, white[..., :5]], dim=-1)
    expected = 0.5 * F.conv1d(padded, kernel.view(1, 1, 11)).view_as(x)
    torch.testing.assert_close(noise, expected)


def test_tabularviews_draws_each_value_from_its_own_random_other_row():
    """Every corrupted value comes from an independently drawn other row."""
    B, d = 16, 7
    x = torch.arange(float(B * d)).view(B, d)  # x[i, j] = i * d + j
    torch.manual_seed(0)
    out = TabularViews(corruption_rate=1.0)(x)
    donor = (out - torch.arange(float(d))) / d  # the row each value came from
    assert torch.equal(donor, donor.round())  # still in its own column
    rows = torch.arange(float(B))[:, None]
    assert (donor != rows).all()
    # not one donor row per row (a blend of two rows) ...
    distinct_per_row = torch.tensor([len(set(r.tolist())) for r in donor])
    assert distinct_per_row.float().mean() > 4  # about 5.7 expected of 7
    # ... nor one shift of the rows per feature (a permuted column)
    shift = (donor - rows).remainder(B)
    assert all(len(set(shift[:, j].tolist())) > 1 for j in range(d))


def test_tabularviews_defaults_corrupt_sixty_percent_without_noise():
    """TabularViews() corrupts round(0.6 * d) values of each row and adds no noise."""
    views = TabularViews()
    assert views.get_params() == {"corruption_rate": 0.6, "noise_std": 0.0}
    x = torch.arange(10.0) + 100 * torch.arange(32.0)[:, None]  # all distinct
    out = views(x)
    assert ((out != x).sum(1) == 6).all()
    for j in range(10):  # replaced by values of the column, nothing added
        assert set(out[:, j].tolist()) <= set(x[:, j].tolist())


def test_tabularviews_noise_std_may_exceed_one():
    """Noise of a standard deviation above one (in standardised units) is allowed."""
    torch.manual_seed(0)
    x = torch.randn(256, 20)
    noise = TabularViews(corruption_rate=0.0, noise_std=2.0)(x) - x
    assert abs(noise.std().item() - 2.0) < 0.1


@pytest.mark.parametrize(
    "x", [torch.zeros(4, 6).numpy(), [[0.0] * 6] * 4], ids=["ndarray", "list"]
)
def test_views_refuse_a_batch_that_is_not_a_tensor(x):
    """A NumPy array or a list is refused with a ValueError naming the layout."""
    with pytest.raises(ValueError, match=r"TabularViews augments batches of shape"):
        TabularViews()(x)


@pytest.mark.parametrize(
    ("views", "match"),
    [
        (ImageViews(zoom=(0.5, 1.0, 2.0)), r"zoom=\(0.5, 1.0, 2.0\) must be a pair"),
        (ImageViews(blur_sigma=("a", "b")), r"blur_sigma=\('a', 'b'\) must be a pair"),
        (SequenceViews(scale_range=(1.0,)), r"scale_range=\(1.0,\) must be a pair"),
    ],
    ids=["three-values", "strings", "one-value"],
)
def test_views_name_a_range_that_is_not_a_pair_of_numbers(views, match):
    """A range of three values, one value or strings is refused naming the parameter."""
    x = (
        torch.zeros(2, 1, 8, 8)
        if isinstance(views, ImageViews)
        else torch.zeros(2, 1, 40)
    )
    with pytest.raises(ValueError, match=match):
        views(x)


def test_make_views_auto_gives_single_channel_images_the_documented_warps():
    """views='auto' on (1, H, W) is ImageViews with make_views' documented warps."""
    expected = ImageViews(
        crop_scale=None,
        rotation=15,
        shear=0.2,
        zoom=(0.8, 1.2),
        translate=0.15,
        elastic=0.04,
    )
    assert make_views("auto", (1, 8, 8)).get_params() == expected.get_params()


def test_make_views_reads_an_input_shape_of_numpy_integers():
    """input_shape may hold numpy integers; messages show it as plain integers."""
    assert type(make_views("auto", np.array([1, 40]))) is SequenceViews
    with pytest.raises(ValueError, match=r"input_shape=\(1, 2, 3, 4\);"):
        make_views("auto", np.array([1, 2, 3, 4]))


def test_make_views_names_a_torch_module_class_given_for_an_instance():
    """A torch module class passed as views is a TypeError asking for an instance."""
    with pytest.raises(TypeError, match=r"views=Identity is a class.*Identity\(\)"):
        make_views(torch.nn.Identity, (10,))


@pytest.mark.parametrize(
    "in_place",
    [lambda x: x.mul_(0.9), lambda x: x.clamp_(-0.5, 0.5), lambda x: x.add_(0.1)],
    ids=["scale", "clamp", "shift"],
)
def test_make_views_refuses_any_callable_that_changes_its_batch_in_place(in_place):
    """Scaling, clipping or shifting the given batch in place is refused."""
    with pytest.raises(ValueError, match="changed the batch it was given in place"):
        make_views(in_place, (1, 8, 8))


def test_make_views_draws_nothing_from_the_global_generator():
    """Checking a random views callable leaves torch's random stream as it was."""
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    make_views(lambda x: x + torch.randn_like(x), (4,))
    assert torch.equal(torch.rand(3), expected)


def test_make_views_returns_a_callable_that_fails_on_the_cpu_probe():
    """A callable that only runs on an accelerator is returned for training to run."""

    def cuda_only(x):
        if not x.is_cuda:
            raise RuntimeError("Expected all tensors to be on the same device")
        return x

    assert make_views(cuda_only, (4,)) is cuda_only


def test_make_views_names_what_a_callable_returned_instead_of_a_batch():
    """A callable returning a list is refused with the type it returned."""
    with pytest.raises(ValueError, match=r"same shape, \(2, 4\).*it returned list\."):
        make_views(lambda x: x.tolist(), (4,))
