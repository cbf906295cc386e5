"""Batched augmentation speed: sk_replearn's ``ImageViews`` against kornia.

The same work on the same batch in this one process: a random resized crop
(scale (0.2, 1), ratio (3/4, 4/3), output the input's size), alone and then
followed by colour jitter with probability 0.8 (brightness and contrast 0.4;
for 3 channels also saturation 0.4 and hue 0.1). Calls of the two libraries
alternate and the median time of each is reported, so a slow moment of the
machine hits both sides alike. A last row times what ``views="auto"``
gives single-channel images (the warps: rotation, shear, zoom, shift and an
elastic field, then the jitter), ours alone.

Run: ``python benchmarks/bench_views.py [--repeats 30] [--threads 1 2]``.
Needs ``pip install kornia`` for the kornia column (skipped without it).
Prints, at each thread count, one row per (batch shape, pipeline): ms per
batch of each and their ratio kornia / ours (> 1: ours is faster).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sk_replearn.views import ImageViews, make_views

SHAPES = [(256, 1, 28, 28), (256, 3, 32, 32)]
SCALE, RATIO = (0.2, 1.0), (3 / 4, 4 / 3)


def ours(shape, jitter: bool) -> ImageViews:
    """Our pipeline, with everything but crop (and jitter) switched off."""
    return ImageViews(
        crop_scale=SCALE,
        crop_ratio=RATIO,
        jitter_prob=0.8 if jitter else 0.0,
        grayscale_prob=0.0,
    )


def kornia_pipeline(shape, jitter: bool):
    """kornia's equivalent, or None if kornia is not installed."""
    try:
        import kornia.augmentation as K
    except ImportError:
        return None
    rgb = shape[1] == 3
    steps = [K.RandomResizedCrop(shape[2:], scale=SCALE, ratio=RATIO)]
    if jitter:
        steps.append(
            K.ColorJitter(0.4, 0.4, 0.4 if rgb else 0.0, 0.1 if rgb else 0.0, p=0.8)
        )
    return torch.nn.Sequential(*steps)


def median_ms(fns, x, repeats: int) -> list[float]:
    """Median ms per call of each function, calls interleaved."""
    times = [[] for _ in fns]
    for fn in fns:  # warm-up
        fn(x)
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            start = time.perf_counter()
            fn(x)
            ts.append(time.perf_counter() - start)
    return [1e3 * statistics.median(ts) for ts in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    try:
        import kornia

        versions = f"kornia {kornia.__version__}"
    except ImportError:
        versions = "kornia not installed"
    print(f"torch {torch.__version__}, {versions}, CPU")
    for threads in args.threads:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        print(f"\n{torch.get_num_threads()} thread(s)")
        table(args.repeats)


def table(repeats: int) -> None:
    """One row per batch shape and pipeline, at the present thread count."""
    header = ("batch", "pipeline", "ours ms", "kornia ms", "ratio")
    print("{:<18} {:<12} {:>8} {:>10} {:>6}".format(*header))
    for shape in SHAPES:
        x = torch.rand(shape)  # [0, 1]: kornia's colour ops expect that range
        for jitter in (False, True):
            name = "crop+jitter" if jitter else "crop"
            fns = [ours(shape, jitter)]
            kornia = kornia_pipeline(shape, jitter)
            if kornia is not None:
                fns.append(kornia)
            with torch.no_grad():
                ms = median_ms(fns, x, repeats)
            row = f"{str(shape):<18} {name:<12} {ms[0]:>8.2f}"
            if kornia is not None:
                row += f" {ms[1]:>10.2f} {ms[1] / ms[0]:>6.2f}"
            else:
                row += f" {'n/a':>10}"
            print(row)
    # views="auto" on single-channel images: warps (rotation, shear, zoom,
    # shift, elastic field) and jitter in one resampling; ours only
    shape = SHAPES[0]
    with torch.no_grad():
        (ms,) = median_ms([make_views("auto", shape[1:])], torch.rand(shape), repeats)
    print(f"{str(shape):<18} {'auto warps':<12} {ms:>8.2f} {'n/a':>10}")


if __name__ == "__main__":
    main()
