"""MAETransformer quality and fit time: linear probes on digits and MNIST-1D.

For each case, ``MAETransformer`` is fitted on the training split with the
parameters shown (``random_state=0``), then a linear probe,
``StandardScaler`` + ``LogisticRegression`` on ``transform``, is fitted on
the training split and scored on the test split. Raw-input baselines (the
same probe on the input, and 1-nearest-neighbours) are printed beside.

* digits: ``load_digits``, stratified 75/25 split, ``random_state=0``,
  defaults with ``input_shape=(1, 8, 8)``; and the defaults with tabular
  tokens (no ``input_shape``: two pixels per token), as the user's default
  Pipeline runs (no target: a table's tokens know nothing of the image).
* MNIST-1D: generated offline with
  ``mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())`` (its 4000 /
  1000 split), ``input_shape=(1, 40)`` and the defaults, whose "auto"
  settings pick the short-signal recipe of the user guide for signals
  (``embed_dim=192, depth=2, mlp_ratio=3, mask_ratio=0.85, max_epochs=32``;
  ``pooling="blocks"``, ``pooling_regions=4``).

Columns: probe accuracy, its target, whether it is met (accuracy and a fit
of at most 300 s wall-clock), the fit's wall-clock seconds and the CPU
seconds of this process (the steadier figure on a shared machine), the raw
baselines, and ``MAETransformer.score`` on the test split.

A second table weighs the default readout, ``pooling="blocks"`` (the class
token and the patch mean after every block), against ``pooling="mean"``
(the last block's patch mean alone) where labels are few: a
``LogisticRegression(max_iter=2000)`` trained on 2, 5 and 10 labels a
class (five seeded draws, :func:`sk_replearn.evaluation.few_label_scores`),
scored on the test split, for each case whose fit read every block. The
"mean" readout is the same fit's encoder read by the last block's patch
mean over all tokens, which is what ``pooling="mean"`` and
``pooling_regions=1`` return after the same training (pooling does not
enter the loss; ``tests/test_mae.py`` checks both). On signals the
default reads the patch means over the quarters of the signal
(``pooling_regions="auto"``), so the two rows differ in regions as well
as in blocks.

A third table fine-tunes the same fit on the same draws of 2, 5 and 10
labels a class (``FineTuner(mae, random_state=0)``, every weight trained):
through the last block's patch mean, which is how a fine-tuner reads an
encoder whose ``pooling`` is "auto", against every block (the same fit
with ``pooling="blocks"`` set, which a fine-tuner then keeps).

Run: ``python benchmarks/bench_mae.py [--only digits|mnist1d] [--set k=v ...]``.
Targets: probe accuracy >= 0.95 on digits and >= 0.72 on MNIST-1D with the
defaults, each fit within 5 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import ast
import copy
import time

import numpy as np
import torch
from _data import load_digits_split, load_mnist1d_split
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_replearn import FineTuner
from sk_replearn.evaluation import few_label_scores
from sk_replearn.methods import MAETransformer

#: Labels a class in the few-label comparison of the readouts.
FEW_LABELS = (2, 5, 10)


def probe(Z_train, Z_test, y_train, y_test) -> float:
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return clf.fit(Z_train, y_train).score(Z_test, y_test)


def knn(X_train, X_test, y_train, y_test) -> float:
    clf = KNeighborsClassifier(n_neighbors=1)
    return clf.fit(X_train, y_train).score(X_test, y_test)


#: name: (loader, parameters, target probe accuracy or None)
CASES = {
    "digits (1, 8, 8)": (load_digits_split, {"input_shape": (1, 8, 8)}, 0.95),
    "digits tabular": (load_digits_split, {}, None),
    # "auto" resolves to the short-signal recipe (see the user guide)
    "mnist1d defaults": (load_mnist1d_split, {"input_shape": (1, 40)}, 0.72),
}


def run_case(name: str, overrides: dict) -> tuple:
    """The table's row for one case, and the readouts for the few-label table."""
    load, params, target = CASES[name]
    X_train, X_test, y_train, y_test = load()
    mae = MAETransformer(**params, random_state=0).set_params(**overrides)
    start, cpu_start = time.perf_counter(), time.process_time()
    mae.fit(X_train)
    fit_s = time.perf_counter() - start
    cpu_s = time.process_time() - cpu_start
    Z_train, Z_test = mae.transform(X_train), mae.transform(X_test)
    acc = probe(Z_train, Z_test, y_train, y_test)
    raw = probe(X_train, X_test, y_train, y_test)
    raw_knn = knn(X_train, X_test, y_train, y_test)
    row = (name, acc, target, fit_s, cpu_s, raw, raw_knn, mae.score(X_test))
    readouts = None
    if mae.pooling_ == "blocks":
        mean_train, mean_test = last_mean(mae, X_train), last_mean(mae, X_test)
        readouts = {
            f"blocks ({Z_train.shape[1]})": (Z_train, Z_test),
            f"mean ({mean_train.shape[1]})": (mean_train, mean_test),
        }
    split = (X_train, y_train, X_test, y_test)
    return row, (readouts, y_train, y_test), (mae, split)


def last_mean(mae: MAETransformer, X: np.ndarray) -> np.ndarray:
    """``X`` read by ``mae``'s encoder as ``pooling="mean"`` would read it.

    The last block's patch mean over all tokens: what a fit with
    ``pooling="mean"`` and ``pooling_regions=1`` returns after the same
    training, since pooling does not enter it (``set_params`` after the fit
    would not change the fitted encoder's readout).
    """
    encoder = mae._transfer_encoder(pooling="mean", regions=1).eval()
    cpu = torch.device("cpu")  # where _transfer_encoder puts its copy
    return mae._map_batches(X, encoder, encoder.out_features, device=cpu)


def fine_tuning_table(fits: dict) -> None:
    """Fine-tune each "auto" fit through the last block's mean and every block."""
    if not fits:
        return
    cols = "".join(f"{f'{k} a class':>16}" for k in FEW_LABELS)
    header = f"{'data set, fine-tuned through':<34}{cols}"
    print("\nfine-tuned: FineTuner(mae, random_state=0) on the same draws, mean ± std")
    print(header)
    print("-" * len(header))
    for name, (mae, split) in fits.items():
        every_block = copy.deepcopy(mae).set_params(pooling="blocks")
        for readout, rep in (("last mean", mae), ("every block", every_block)):
            scores = [
                few_label_scores(
                    FineTuner(rep, random_state=0), *split, n_per_class=k
                ).scores
                for k in FEW_LABELS
            ]
            cells = "".join(f"{s.mean():>8.3f} ± {s.std():.3f}" for s in scores)
            print(f"{f'{name}, {readout}':<34}{cells}", flush=True)


def few_label_table(results: dict) -> None:
    """Print the few-label scores of each case's two readouts."""
    if not results:
        return
    cols = "".join(f"{f'{k} a class':>16}" for k in FEW_LABELS)
    header = f"{'data set, readout (columns)':<34}{cols}"
    print(
        "\nfew labels: LogisticRegression(max_iter=2000) on k labels a class, "
        "5 draws, mean ± std"
    )
    print(header)
    print("-" * len(header))
    for name, (readouts, y_train, y_test) in results.items():
        for readout, (Z_train, Z_test) in readouts.items():
            scores = [
                few_label_scores(
                    LogisticRegression(max_iter=2000),
                    Z_train,
                    y_train,
                    Z_test,
                    y_test,
                    n_per_class=k,
                ).scores
                for k in FEW_LABELS
            ]
            cells = "".join(f"{s.mean():>8.3f} ± {s.std():.3f}" for s in scores)
            print(f"{f'{name}, {readout}':<34}{cells}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run cases containing this")
    parser.add_argument(
        "--set", nargs="*", action="extend", default=[], help="param=value overrides"
    )
    args = parser.parse_args()
    overrides = {}
    for item in args.set:
        key, value = item.split("=", 1)
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name, (_, params, _) in CASES.items():
        if not args.only or args.only in name:
            print(f"{name}: {params}")
    if overrides:
        print(f"overrides: {overrides}")
    header = (
        f"{'data set':<18} {'probe acc':>9} {'target':>6} {'met':>4} "
        f"{'fit s':>7} {'cpu s':>7} {'raw LR':>7} {'raw 1NN':>7} {'score':>8}"
    )
    print(header)
    print("-" * len(header))
    few, fits = {}, {}
    for name in CASES:
        if args.only and args.only not in name:
            continue
        row, (readouts, y_train, y_test), fit = run_case(name, overrides)
        name, acc, target, fit_s, cpu_s, raw, raw_knn, score = row
        if target is None:
            met, target_text = "-", "-"
        else:
            met = "yes" if acc >= target and fit_s <= 300 else "no"
            target_text = f"{target:.2f}"
        print(
            f"{name:<18} {acc:>9.4f} {target_text:>6} {met:>4} {fit_s:>7.1f} "
            f"{cpu_s:>7.1f} {raw:>7.4f} {raw_knn:>7.4f} {score:>8.4f}",
            flush=True,
        )
        if readouts is not None:
            few[name] = (readouts, y_train, y_test)
            if overrides.get("pooling", "auto") == "auto":
                fits[name] = fit
    few_label_table(few)
    fine_tuning_table(fits)


if __name__ == "__main__":
    main()
