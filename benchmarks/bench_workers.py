"""Reading a torch Dataset in worker processes: ``num_workers`` 0 against 2.

A Dataset whose item decodes a PNG file (a 112 x 112 grey crop of
scikit-learn's sample images) and shrinks it to 28 x 28, as an image
folder's loader would. Per torch thread count: an autoencoder's ``fit``
(defaults, ``--epochs`` epochs) with ``num_workers=0`` and ``=2`` in
alternation, ``--pairs`` times, and the same passes over the Dataset by a
plain :class:`~torch.utils.data.DataLoader` with no training (what reading
alone costs). Printed per row: the median times and their ratio
(``num_workers=2`` / 0; below 1 is faster). A fit also reads every sample
once in the calling process, for its input standardisation (a Dataset of
at most ``SCALE_SAMPLE_VALUES`` values is read whole), whatever
``num_workers`` is: with 3 epochs, a quarter of its reads.

Run: ``python benchmarks/bench_workers.py [--pairs 3] [--epochs 3]
[--threads 1 2]``. About 1.5 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import io
import statistics
from functools import partial

import numpy as np
import torch
from _timing import timed
from PIL import Image
from sklearn.datasets import load_sample_images

from sk_replearn import AutoencoderTransformer

N_IMAGES = 2000


def png_crops(n: int) -> list[bytes]:
    """``n`` random 112 x 112 grey crops of the sample images, as PNG files."""
    rng = np.random.default_rng(0)
    grey = [img.mean(axis=2).astype(np.uint8) for img in load_sample_images().images]
    files = []
    for _ in range(n):
        img = grey[rng.integers(len(grey))]
        top = rng.integers(img.shape[0] - 112)
        left = rng.integers(img.shape[1] - 112)
        buf = io.BytesIO()
        Image.fromarray(img[top : top + 112, left : left + 112]).save(buf, "PNG")
        files.append(buf.getvalue())
    return files


class PngFiles(torch.utils.data.Dataset):
    """PNG files decoded and shrunk to ``(1, 28, 28)`` floats in [0, 1]."""

    def __init__(self, files: list[bytes]) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> np.ndarray:
        img = Image.open(io.BytesIO(self.files[i])).resize((28, 28), Image.BILINEAR)
        return np.asarray(img, dtype=np.float32)[None] / 255  # (1, 28, 28)


def fit(data: PngFiles, workers: int, epochs: int) -> None:
    AutoencoderTransformer(
        max_epochs=epochs, num_workers=workers, device="cpu", random_state=0
    ).fit(data)


def read(data: PngFiles, workers: int, epochs: int) -> None:
    loader = torch.utils.data.DataLoader(
        data, batch_size=128, shuffle=True, num_workers=workers
    )
    for _ in range(epochs):
        for _ in loader:
            pass


WORK = {"AutoencoderTransformer.fit": fit, "DataLoader alone": read}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    data = PngFiles(png_crops(N_IMAGES))
    print(
        f"{N_IMAGES} PNG files, 112x112 grey, decoded and shrunk to 28x28 per "
        f"read; {args.epochs} epochs, {args.pairs} pairs, medians in seconds"
    )
    print(f"{'work':<28}{'threads':>8}{'workers=0':>11}{'workers=2':>11}{'ratio':>8}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for name, work in WORK.items():
            times: dict[int, list[float]] = {0: [], 2: []}
            for _ in range(args.pairs):
                for workers in (0, 2):
                    call = partial(work, data, workers, args.epochs)
                    times[workers].append(timed(call))
            t0, t2 = (statistics.median(times[w]) for w in (0, 2))
            print(f"{name:<28}{threads:>8}{t0:>11.2f}{t2:>11.2f}{t2 / t0:>8.2f}")


if __name__ == "__main__":
    main()
