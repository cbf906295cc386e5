"""Views of images ``(B, C, H, W)``: :class:`ImageViews` and its batched helpers."""

from __future__ import annotations

import functools
import math
from numbers import Real

import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval

from ._base import _coin, _compiling, _MultiCrop, _NonNeg, _Prob, _uniform

__all__ = ["ImageViews"]

_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 weights, as PIL / torchvision use
_CROP_TRIES = 10  # candidate crops drawn per sample, as torchvision's 10 tries


class ImageViews(_MultiCrop):
    """Random views of a batch of images ``(B, C, H, W)``, as SimCLR draws them.

    SimCLR's sequence of transformations (Chen et al. 2020, appendix A) at
    MoCo v2's milder strengths (Chen, Fan, Girshick and He 2020): crops of
    0.2 to 1 of the area and colour jitter of 0.4, 0.4, 0.4 and 0.1, where
    SimCLR's are 0.08 to 1 and 0.8, 0.8, 0.8 and 0.2. In order: a random
    resized crop, optionally flipped and warped (a random
    rotation, shear, zoom, translation and elastic distortion), all in one
    :func:`~torch.nn.functional.grid_sample` for the batch, brightness and
    contrast jitter (with saturation and a hue rotation for 3-channel input),
    random grayscale (3 channels only), Gaussian blur and Gaussian noise. The
    output has the input's height and width.

    Parameters
    ----------
    crop_scale : pair of float or None, default=(0.2, 1.0)
        Range of the crop's area as a fraction of the image's. ``None`` turns
        cropping off.
    crop_ratio : pair of float, default=(3/4, 4/3)
        Range of the crop's aspect ratio (width / height), drawn log-uniformly.
    flip_prob : float, default=0.0
        Probability of a horizontal flip. Off by default because for digits
        and text a mirrored sample is a different (or no) class; set 0.5 for
        natural images.
    rotation : float, default=0.0
        Maximum rotation, in degrees: an image turns by ``U(-rotation,
        rotation)``.
    shear : float, default=0.0
        Maximum horizontal shear factor: ``x -> x + s y`` with ``s ~
        U(-shear, shear)`` (0.3 slants a stroke by about 17 degrees).
    zoom : pair of float, default=(1.0, 1.0)
        Range of the zoom factor, drawn log-uniformly; above 1 enlarges the
        content, below 1 shrinks it inside a border of edge pixels. Unlike
        the crop, it can shrink.
    translate : float, default=0.0
        Maximum shift along each axis, as a fraction of the image's side.
    elastic : float, default=0.0
        Strength of an elastic distortion (Simard et al. 2003): a smooth
        random displacement field, drawn on a 3x3 grid of control points
        with this standard deviation (a fraction of the image's side) and
        interpolated bicubically to every pixel. Small warps like these,
        with ``rotation``, ``shear``, ``zoom`` and ``translate``, are the
        variations of handwriting and of biomedical images (Ronneberger et
        al. 2015); ``views="auto"`` uses them for single-channel images (see
        :func:`make_views`).
    brightness : float, default=0.4
        Maximum additive shift, in standardised units (data standard
        deviations): an image gets ``x + b`` with ``b ~ U(-brightness,
        brightness)``. torchvision's multiplicative factor assumes ``[0, 1]``
        pixels; on zero-mean data it would only rescale about 0, which is
        what ``contrast`` already does.
    contrast : float, default=0.4
        Contrast factor range: ``x -> (x - m) * c + m`` with ``m`` the image
        mean and ``c ~ U(1 - contrast, 1 + contrast)``. Works for any scale.
    saturation : float, default=0.4
        For 3 channels: blend with the image's luma by a factor ``U(1 -
        saturation, 1 + saturation)``. Ignored for other channel counts.
    hue : float, default=0.1
        For 3 channels: rotate the colours about the gray axis by up to ``hue
        * 360`` degrees (a linear stand-in for a hue shift that needs no
        ``[0, 1]`` range). Ignored for other channel counts.
    jitter_prob : float, default=0.8
        Probability that an image gets the colour jitter above.
    grayscale_prob : float, default=0.2
        For 3 channels: probability of replacing every channel by the luma.
    blur_prob : float, default=0.0
        Probability of a Gaussian blur. SimCLR blurs ImageNet images (224 px)
        with probability 0.5 but leaves CIFAR-10 unblurred: a sigma of a
        pixel or two erases most of an 8 to 32 px image.
    blur_sigma : pair of float, default=(0.1, 2.0)
        Range of the blur's standard deviation, in pixels.
    noise_std : float, default=0.0
        Standard deviation of additive Gaussian noise, in standardised units.
    local_crop_scale : pair of float, default=(0.1, 0.4)
        Range of the crop's area of the local views (:meth:`local`, used by
        multi-crop), as a fraction of the image's. DINO uses (0.05, 0.4) on
        224-pixel images; a small image has fewer pixels to lose.
    local_size : float, default=0.5
        Side of the local views as a fraction of the image's (DINO: 96 of
        224 pixels).

    See Also
    --------
    SequenceViews : Views of 1-D signals.
    TabularViews : Views of tabular rows.
    make_views : Pick the family that fits the input.

    References
    ----------
    .. [1] T. Chen, S. Kornblith, M. Norouzi and G. Hinton, "A Simple
       Framework for Contrastive Learning of Visual Representations", ICML
       2020, appendix A.
    .. [2] P. Y. Simard, D. Steinkraus and J. C. Platt, "Best Practices for
       Convolutional Neural Networks Applied to Visual Document Analysis",
       ICDAR 2003.
    .. [3] O. Ronneberger, P. Fischer and T. Brox, "U-Net: Convolutional
       Networks for Biomedical Image Segmentation", MICCAI 2015.

    Examples
    --------
    >>> import torch
    >>> from sk_replearn.views import ImageViews
    >>> views = ImageViews(crop_scale=(0.5, 1.0))
    >>> views
    ImageViews(crop_scale=(0.5, 1.0))
    >>> x = torch.randn(16, 3, 32, 32)
    >>> views(x).shape
    torch.Size([16, 3, 32, 32])
    >>> bool((views(x) != views(x)).any())
    True
    >>> views.local(x).shape  # multi-crop's small views
    torch.Size([16, 3, 16, 16])
    >>> digits = ImageViews(crop_scale=None, rotation=15, elastic=0.04)
    >>> digits(torch.randn(16, 1, 8, 8)).shape
    torch.Size([16, 1, 8, 8])
    """

    _ndim, _layout = 4, "C, H, W"
    _pairs = {
        "crop_scale": (0.0, 1.0, True),
        "crop_ratio": (0.0, math.inf, False),
        "zoom": (0.0, math.inf, False),
        "blur_sigma": (0.0, math.inf, False),
        "local_crop_scale": (0.0, 1.0, False),
    }
    _parameter_constraints: dict = {
        "crop_scale": ["array-like", None],
        "crop_ratio": ["array-like"],
        "flip_prob": [_Prob],
        "rotation": [Interval(Real, 0, 180, closed="both")],
        "shear": [_NonNeg],
        "zoom": ["array-like"],
        "translate": [Interval(Real, 0, 1, closed="both")],
        "elastic": [_NonNeg],
        "brightness": [_NonNeg],
        "contrast": [Interval(Real, 0, 1, closed="both")],
        "saturation": [Interval(Real, 0, 1, closed="both")],
        "hue": [Interval(Real, 0, 0.5, closed="both")],
        "jitter_prob": [_Prob],
        "grayscale_prob": [_Prob],
        "blur_prob": [_Prob],
        "blur_sigma": ["array-like"],
        "noise_std": [_NonNeg],
        "local_crop_scale": ["array-like"],
        "local_size": [Interval(Real, 0, 1, closed="right")],
    }

    def __init__(
        self,
        *,
        crop_scale: tuple[float, float] | None = (0.2, 1.0),
        crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip_prob: float = 0.0,
        rotation: float = 0.0,
        shear: float = 0.0,
        zoom: tuple[float, float] = (1.0, 1.0),
        translate: float = 0.0,
        elastic: float = 0.0,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.4,
        hue: float = 0.1,
        jitter_prob: float = 0.8,
        grayscale_prob: float = 0.2,
        blur_prob: float = 0.0,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        noise_std: float = 0.0,
        local_crop_scale: tuple[float, float] = (0.1, 0.4),
        local_size: float = 0.5,
    ) -> None:
        self.crop_scale = crop_scale
        self.crop_ratio = crop_ratio
        self.flip_prob = flip_prob
        self.rotation = rotation
        self.shear = shear
        self.zoom = zoom
        self.translate = translate
        self.elastic = elastic
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue = hue
        self.jitter_prob = jitter_prob
        self.grayscale_prob = grayscale_prob
        self.blur_prob = blur_prob
        self.blur_sigma = blur_sigma
        self.noise_std = noise_std
        self.local_crop_scale = local_crop_scale
        self.local_size = local_size

    def _augment(self, x, *, crop_scale, crop_ratio, zoom, blur_sigma, size=None):
        B, C = x.shape[:2]
        zoom = zoom if self._warps(zoom) else None  # None: no warp
        moved = crop_scale is not None or self.flip_prob > 0 or zoom is not None
        if moved or size is not None:
            x = self._crop_and_flip(x, crop_scale, crop_ratio, size, zoom)
        # one coin per image for the whole jitter, as torchvision's RandomApply
        on = _coin(B, self.jitter_prob, x).to(x.dtype)  # (B,)
        if self.jitter_prob > 0 and (self.brightness > 0 or self.contrast > 0):
            x = self._brightness_contrast(x, on)
        colour = self.jitter_prob > 0 and (self.saturation > 0 or self.hue > 0)
        if C == 3 and (colour or self.grayscale_prob > 0):
            x = self._colour(x, on)
        if self.blur_prob > 0:
            x = self._blur(x, blur_sigma)
        if self.noise_std > 0:
            x = x + self.noise_std * torch.randn_like(x)
        return x

    def _warps(self, zoom) -> bool:
        """Whether any of the warp parameters moves a pixel."""
        moves = self.rotation, self.shear, self.translate, self.elastic
        return any(v > 0 for v in moves) or zoom != (1.0, 1.0)

    def _crop_and_flip(self, x, crop_scale, crop_ratio, size=None, zoom=None):
        B, _, H, W = x.shape
        if crop_scale is None:
            fw = fh = torch.ones(B, device=x.device, dtype=x.dtype)
        else:
            fw, fh = _crop_sizes(B, H, W, crop_scale, crop_ratio, x)  # (B,) each
        cx = _uniform((B,), -1, 1, x) * (1 - fw)  # crop centre, in [-1, 1] units
        cy = _uniform((B,), -1, 1, x) * (1 - fh)
        sign = 1 - 2 * _coin(B, self.flip_prob, x).to(x.dtype)  # -1 flips
        # The crop is the axis-aligned affine map theta = [[sign*fw, 0, cx],
        # [0, fh, cy]], so its grid is an outer broadcast; built directly, as
        # F.affine_grid's batched matmul is 6x slower on the CPU and costs more
        # than grid_sample itself (7 ms and 6 ms for 256 x 3 x 32 x 32).
        # Sample centres of an output of (h, w) pixels (the input's unless a
        # local view asks for fewer), in [-1, 1] units of the crop.
        h, w = (H, W) if size is None else size
        u = (2 * torch.arange(w, device=x.device, dtype=x.dtype) + 1) / w - 1  # (w,)
        v = (2 * torch.arange(h, device=x.device, dtype=x.dtype) + 1) / h - 1  # (h,)
        if zoom is None:  # the crop alone: an outer broadcast
            gx = (sign * fw)[:, None, None] * u + cx[:, None, None]  # (B, 1, w)
            gy = fh[:, None, None] * v[:, None] + cy[:, None, None]  # (B, h, 1)
            grid = torch.stack(torch.broadcast_tensors(gx, gy), dim=-1)
        else:  # warp the crop's own coordinates, then crop: one product
            scale = torch.stack([sign * fw, fh], dim=-1)[:, None, :]  # (B, 1, 2)
            offset = torch.stack([cx, cy], dim=-1)  # (B, 2)
            grid = self._warp(B, u, v, W / H, zoom, scale, offset, x)
        return F.grid_sample(
            x, grid, mode="bilinear", padding_mode="border", align_corners=False
        )

    def _warp(self, B, u, v, aspect, zoom, scale, offset, like):
        """The sampling grid ``(B, h, w, 2)`` of a warp followed by the crop.

        Each output pixel ``(u, v)`` reads where the inverse of a random
        rotation, shear and zoom about the centre puts it (computed in units
        where the width is ``aspect`` times the height, so that angles stay
        true), shifted, moved by the elastic field, then mapped into the crop
        (``* scale + offset``, per image). All of it is linear in a few
        weights per image, so the grid is one ``(h w, K) @ (B, K, 2)``
        product in ``grid_sample``'s layout: K = 3 affine terms (``aspect *
        u``, ``v``, 1) plus 9 elastic control points. Building x and y
        planes and stacking them cost 3 ms of 4 for 256 images of 28 x 28.
        """
        h, w = len(v), len(u)
        angle = _uniform((B,), -self.rotation, self.rotation, like) * (math.pi / 180)
        s = _uniform((B,), -self.shear, self.shear, like)
        z = _uniform((B,), math.log(zoom[0]), math.log(zoom[1]), like).exp()
        cos, sin = angle.cos() / z, angle.sin() / z
        shift = _uniform((2, B), -self.translate, self.translate, like).T * 2
        # (rotation @ shear) / zoom maps (aspect * u, v); x comes back / aspect
        weights = [
            torch.stack([cos / aspect, sin], dim=-1),  # of aspect * u
            torch.stack([(cos * s - sin) / aspect, sin * s + cos], dim=-1),  # of v
            shift,  # of 1
        ]
        terms = [
            (aspect * u).expand(h, w).reshape(h * w),
            v[:, None].expand(h, w).reshape(h * w),
            torch.ones(h * w, device=like.device, dtype=like.dtype),
        ]
        weights = torch.stack(weights, dim=1)  # (B, 3, 2)
        points = torch.stack(terms, dim=-1)  # (h w, 3)
        if self.elastic > 0:
            knots = torch.randn(B, 2, 9, device=like.device, dtype=like.dtype)
            knots = knots.transpose(1, 2) * (2 * self.elastic)  # (B, 9, 2)
            weights = torch.cat([weights, knots], dim=1)  # (B, 12, 2)
            points = torch.cat([points, _bicubic_basis(h, w, like).T], dim=1)
        weights = weights * scale  # the crop, folded into the weights
        weights[:, 2] += offset
        return (points @ weights).view(B, h, w, 2)

    def _brightness_contrast(self, x, on):
        B = x.shape[0]
        on = on.view(B, 1, 1, 1)
        b = _uniform((B, 1, 1, 1), -self.brightness, self.brightness, x) * on
        c = 1 + _uniform((B, 1, 1, 1), -self.contrast, self.contrast, x) * on
        m = x.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
        return torch.addcmul(m * (1 - c) + b, x, c)  # (x - m) * c + m + b

    def _colour(self, x, on):
        """Saturation, hue and grayscale as one ``(B, 3, 3)`` matrix per image."""
        B = x.shape[0]
        eye = torch.eye(3, device=x.device, dtype=x.dtype)
        luma = torch.tensor(_LUMA, device=x.device, dtype=x.dtype)
        to_gray = torch.ones(3, 1, device=x.device, dtype=x.dtype) * luma  # 1 w^T
        on = on.view(B, 1, 1)
        s = 1 + _uniform((B, 1, 1), -self.saturation, self.saturation, x) * on
        sat = s * eye + (1 - s) * to_gray  # (B, 3, 3)
        angle = _uniform((B,), -self.hue, self.hue, x) * (2 * math.pi) * on.view(B)
        k = torch.full((3,), 3**-0.5, device=x.device, dtype=x.dtype)  # gray axis
        cross = [[0, -1, 1], [1, 0, -1], [-1, 1, 0]]  # [k]_x times sqrt(3)
        cross = torch.tensor(cross, device=x.device, dtype=x.dtype) * 3**-0.5
        cos, sin = angle.cos().view(B, 1, 1), angle.sin().view(B, 1, 1)
        rot = cos * eye + sin * cross + (1 - cos) * torch.outer(k, k)  # Rodrigues
        gray = _coin(B, self.grayscale_prob, x).view(B, 1, 1)
        mat = torch.where(gray, to_gray @ rot @ sat, rot @ sat)  # (B, 3, 3)
        return (mat @ x.reshape(B, 3, -1)).view_as(x)

    def _blur(self, x, blur_sigma):
        """Separable blur as two batched matmuls with per-image band matrices."""
        B, C, H, W = x.shape
        radius = math.ceil(3 * blur_sigma[1])
        taps = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
        sigma = _uniform((B, 1), *blur_sigma, x).clamp_min(1e-3)
        kernel = torch.exp(-0.5 * (taps / sigma) ** 2)  # (B, K)
        kernel = kernel / kernel.sum(1, keepdim=True)
        delta = (taps == 0).to(x.dtype)
        kernel = torch.where(_coin(B, self.blur_prob, x)[:, None], kernel, delta)
        # Blur the last axis with one bmm over (B, C * n, n); the transposes
        # put each axis last, a copy each, cheaper than a broadcast matmul.
        x = x.transpose(2, 3).reshape(B, C * W, H) @ _band_matrices(kernel, H, radius)
        x = x.view(B, C, W, H).transpose(2, 3).reshape(B, C * H, W)  # (B, C*H, W)
        return (x @ _band_matrices(kernel, W, radius)).view(B, C, H, W)


def _bicubic_basis(h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """``(9, h * w)``: each of the 3x3 control points' field, bicubically spread.

    Bicubic interpolation is linear in the control values, so a field is
    ``knots (B, 9) @ basis``: one small matrix product instead of
    :func:`~torch.nn.functional.interpolate` on the batch (6 ms for 256 x 2
    fields of 28 x 28 on one CPU thread). Built once per size, device and
    dtype: every batch of a fit asks for the same one. Traced by
    :func:`torch.compile`, it is built in the graph (whose compilation
    caches it) rather than looked up.
    """
    if _compiling():
        return _cached_basis.__wrapped__(h, w, like.device, like.dtype)
    return _cached_basis(h, w, like.device, like.dtype)


@functools.lru_cache(maxsize=16)
def _cached_basis(h: int, w: int, device: torch.device, dtype: torch.dtype):
    eye = torch.eye(9, device=device, dtype=dtype).view(9, 1, 3, 3)
    basis = F.interpolate(eye, size=(h, w), mode="bicubic", align_corners=True)
    return basis.view(9, h * w)


def _crop_sizes(B, H, W, scale, ratio, like):
    """Crop width and height as fractions of ``W`` and ``H``, each ``(B,)``.

    Draws ``_CROP_TRIES`` (area, ratio) candidates per image and keeps the
    first that fits in the image; if none fits, the whole image cropped to the
    nearest allowed ratio, as torchvision's ``RandomResizedCrop`` does.
    """
    area = _uniform((B, _CROP_TRIES), *scale, like)
    log_r = _uniform((B, _CROP_TRIES), math.log(ratio[0]), math.log(ratio[1]), like)
    r = log_r.exp()
    fw = (area * r * H / W).sqrt()  # (B, T)
    fh = (area / r * W / H).sqrt()
    fits = (fw <= 1) & (fh <= 1)
    first = fits.to(torch.uint8).argmax(1, keepdim=True)  # (B, 1)
    r_fb = min(max(W / H, ratio[0]), ratio[1])
    fw_fb, fh_fb = min(1.0, r_fb * H / W), min(1.0, W / (r_fb * H))
    ok = fits.any(1)
    fw = torch.where(ok, fw.gather(1, first).squeeze(1), fw_fb)
    fh = torch.where(ok, fh.gather(1, first).squeeze(1), fh_fb)
    return fw, fh


def _band_matrices(kernel: torch.Tensor, n: int, radius: int) -> torch.Tensor:
    """``(B, n, n)`` matrices ``M`` with ``(x @ M)[i] = sum_t kernel[t] x[i+t]``.

    ``kernel`` is ``(B, 2 * radius + 1)``. Reflect padding (``d c b | a b c d
    | c b a``) is folded into the index, so no padded copy of the batch is
    made.
    """
    t = torch.arange(-radius, radius + 1, device=kernel.device)  # (K,)
    i = torch.arange(n, device=kernel.device)  # (n,)
    j = i[None, :] + t[:, None]  # (K, n): input read by tap t of output i
    if n > 1:
        period = 2 * (n - 1)
        j = j.remainder(period)
        j = torch.where(j > n - 1, period - j, j)
    else:
        j = torch.zeros_like(j)
    taps = torch.zeros(len(t), n, n, device=kernel.device, dtype=kernel.dtype)
    taps.scatter_(1, j[:, None, :], 1.0)  # taps[t, j[t, i], i] = 1
    return (kernel @ taps.view(len(t), n * n)).view(-1, n, n)
