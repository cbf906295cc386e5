"""Contrastive Multiview Coding: linear-probe accuracy of two views of a sample.

CMC (Tian, Krishnan and Isola, 2019) trains one encoder per view and makes
the views of a sample agree. Here the views are parts of one sample, so the
question is whether what one part says about the other is what the class
is: each representation is fitted without labels on the training split,
then probed by :func:`sk_replearn.evaluation.linear_probe` (a standardised
``LogisticRegression`` on ``transform``, scored on the test split).

* digits: ``load_digits``, stratified 75/25 split with ``random_state=0``;
  the two views are the left and right four pixel columns of each 8×8
  image (two 8×4 images, a CNN each), with CMC's defaults. Targets: a probe
  accuracy >= 0.95 and >= that of ``SimCLRTransformer(input_shape=(1, 8, 8),
  random_state=0)`` fitted on the same data, in the same run. The rows
  "left view only" and "right view only" probe one view's encoding of the
  same fitted CMC (``transform_view``), beside raw logistic regression on
  that half's pixels: what the other half taught each encoder.
* MNIST-1D: ``mnist1d``'s 4000 / 1000 split generated offline, samples of
  length 40 as ``input_shape=(1, 40)``, with two choices of views: the
  first and second half of the signal (``views="auto"``) and its even and
  odd steps (two signals of length 20, a ResNet each), each without
  augmentation (the default) and with ``augmentation="auto"`` (the
  ``SequenceViews`` of each view). No target: reported beside the raw
  baselines (SimCLR's probe, with views that are random augmentations of
  the whole signal, is in ``bench_ssl``).

Run: ``python benchmarks/bench_cmc.py [--only digits mnist1d] [--threads N]``
(torch on one thread by default, as in ``bench_ssl``). Fit times are wall
clock on a machine that may be shared: compare them within one run only.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _data import load_digits_split, load_mnist1d_split
from _targets import verdict
from sklearn.neighbors import KNeighborsClassifier

from sk_replearn import CMCTransformer, SimCLRTransformer
from sk_replearn.evaluation import linear_probe

DIGITS_FLOOR = 0.95
_COLS = np.arange(64).reshape(8, 8)
#: The left and right four pixel columns of a flattened 8×8 digit.
DIGITS_VIEWS = [_COLS[:, :4].ravel().tolist(), _COLS[:, 4:].ravel().tolist()]
#: The even and odd steps of a MNIST-1D signal of length 40.
EVEN_ODD = [list(range(0, 40, 2)), list(range(1, 40, 2))]


def _row(name: str, acc: float, fit_time: float, note: str = "") -> str:
    return f"{name:<30} {acc:>8.3f} {fit_time:>9.1f}  {note}"


def _header(title: str) -> None:
    print(f"\n{title}")
    print(f"{'representation':<30} {'accuracy':>8} {'fit (s)':>9}")


def _probe_views(cmc, views, X_tr, y_tr, X_te, y_te) -> dict:
    """Probe accuracy of the fitted ``cmc``'s encoding of each of ``views``.

    ``transform_view`` is set on the fitted estimator (no refit): None is
    every view side by side, an int that view alone.
    """
    accuracy = {}
    for view in views:
        cmc.set_params(transform_view=view)
        Z_tr, Z_te = cmc.transform(X_tr), cmc.transform(X_te)
        accuracy[view] = linear_probe(None, Z_tr, y_tr, Z_te, y_te).accuracy
    cmc.set_params(transform_view=None)
    return accuracy


def digits() -> None:
    X_tr, X_te, y_tr, y_te = load_digits_split()
    _header(f"digits, {len(X_tr)} train / {len(X_te)} test, views: left | right")
    raw = linear_probe(None, X_tr, y_tr, X_te, y_te).accuracy
    print(_row("raw logistic", raw, 0.0))
    simclr = SimCLRTransformer(input_shape=(1, 8, 8), random_state=0)
    base = linear_probe(simclr, X_tr, y_tr, X_te, y_te)
    print(_row("SimCLR (whole image)", base.accuracy, base.fit_time), flush=True)
    cmc = CMCTransformer(views=DIGITS_VIEWS, input_shape=(1, 8, 8), random_state=0)
    start = time.perf_counter()
    cmc.fit(X_tr)
    fit_time = time.perf_counter() - start
    accuracy = _probe_views(cmc, [None, 0, 1], X_tr, y_tr, X_te, y_te)
    met = [
        verdict(accuracy[None], DIGITS_FLOOR, at_most=False),
        verdict(accuracy[None], base.accuracy, at_most=False) + " (SimCLR)",
    ]
    print(_row("CMC (left | right)", accuracy[None], fit_time, "; ".join(met)))
    for view, side in enumerate(("left", "right")):
        cols = DIGITS_VIEWS[view]
        pixels = linear_probe(None, X_tr[:, cols], y_tr, X_te[:, cols], y_te)
        print(_row(f"raw logistic, {side} half", pixels.accuracy, 0.0))
        print(_row(f"CMC, {side} view only", accuracy[view], 0.0), flush=True)


def mnist1d() -> None:
    X_tr, X_te, y_tr, y_te = load_mnist1d_split()
    _header(f"MNIST-1D, {len(X_tr)} train / {len(X_te)} test, input_shape=(1, 40)")
    raw = linear_probe(None, X_tr, y_tr, X_te, y_te).accuracy
    print(_row("raw logistic", raw, 0.0))
    knn = KNeighborsClassifier().fit(X_tr, y_tr).score(X_te, y_te)
    print(_row("raw kNN (k=5)", knn, 0.0))
    for name, views in [("halves", "auto"), ("even | odd", EVEN_ODD)]:
        for augmentation in (None, "auto"):
            cmc = CMCTransformer(
                views=views,
                augmentation=augmentation,
                input_shape=(1, 40),
                random_state=0,
            )
            result = linear_probe(cmc, X_tr, y_tr, X_te, y_te)
            label = f"CMC ({name}{', augmented' if augmentation else ''})"
            print(_row(label, result.accuracy, result.fit_time), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=["digits", "mnist1d"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    only = set(args.only or ["digits", "mnist1d"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if "digits" in only:
        digits()
    if "mnist1d" in only:
        mnist1d()


if __name__ == "__main__":
    main()
