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
  (``embed_dim=192, depth=2, mlp_ratio=3, mask_ratio=0.85, max_epochs=40``;
  ``pooling="blocks"``).

Columns: probe accuracy, its target, whether it is met (accuracy and a fit
of at most 300 s wall-clock), the fit's wall-clock seconds and the CPU
seconds of this process (the steadier figure on a shared machine), the raw
baselines, and ``MAETransformer.score`` on the test split.

Run: ``python benchmarks/bench_mae.py [--only digits|mnist1d] [--set k=v ...]``.
Targets: probe accuracy >= 0.95 on digits and >= 0.72 on MNIST-1D with the
defaults, each fit within 5 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import ast
import time

import torch
from _data import load_digits_split, load_mnist1d_split
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_replearn.methods import MAETransformer


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
    load, params, target = CASES[name]
    X_train, X_test, y_train, y_test = load()
    mae = MAETransformer(**params, random_state=0).set_params(**overrides)
    start, cpu_start = time.perf_counter(), time.process_time()
    mae.fit(X_train)
    fit_s = time.perf_counter() - start
    cpu_s = time.process_time() - cpu_start
    acc = probe(mae.transform(X_train), mae.transform(X_test), y_train, y_test)
    raw = probe(X_train, X_test, y_train, y_test)
    raw_knn = knn(X_train, X_test, y_train, y_test)
    return name, acc, target, fit_s, cpu_s, raw, raw_knn, mae.score(X_test)


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
    for name in CASES:
        if args.only and args.only not in name:
            continue
        name, acc, target, fit_s, cpu_s, raw, raw_knn, score = run_case(name, overrides)
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


if __name__ == "__main__":
    main()
