"""Transfer learning on MNIST-1D: pre-train without labels, fine-tune with few.

``SimCLRTransformer`` (defaults, ``input_shape=(1, 40)``) is pre-trained on
the 4000 training signals without their labels. Then ``FineTuner`` trains
on a stratified 10% of the labels (400) and on all of them, with each
transfer strategy:

* ``full``: fine-tune every weight, the encoder at ``lr * 0.1``;
* ``frozen``: the linear probe (head only, on fixed features);
* ``partial``: re-initialise the top two encoder blocks, fine-tune the rest;
* ``scratch``: the same encoder and head from random weights
  (``reinit_layers="all"``), the no-transfer baseline.

Every fine-tuner has the same training budget (``max_epochs`` passes over
its labels). Test accuracy on the 1000 test signals is printed as a
strategy x label-fraction table, with the targets of the transfer issue:
full fine-tuning at 10% at least 10 points above scratch and above the
frozen probe, and at least 0.94 with all labels.

Then the same for an ``MAETransformer`` (a Vision Transformer for signals,
its "auto" encoder, a decoder of 4 blocks 64 wide, 60 epochs): a ViT from
scratch has no convolutional prior, so on 400 labels transfer matters more.
The targets above are SimCLR's; MAE's table prints the same differences
without them.

Run: ``python benchmarks/bench_transfer.py [--methods simclr mae] [--epochs N]``
(about 10 minutes on 2 cores at one thread).
"""

from __future__ import annotations

import argparse
import time

import torch
from _data import load_mnist1d_split
from _targets import verdict
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from sk_replearn import FineTuner, MAETransformer, SimCLRTransformer

STRATEGIES = {
    "full": {},
    "frozen": {"strategy": "frozen"},
    "partial": {"reinit_layers": 2},
    "scratch": {"reinit_layers": "all"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50, help="fine-tuning epochs")
    parser.add_argument("--pretrain-epochs", type=int, default=None)
    parser.add_argument("--fractions", default="0.1,1.0")
    parser.add_argument(
        "--encoder", default="auto", help="SimCLR encoder: auto (ResNet), cnn, mlp"
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["simclr", "mae"],
        choices=["simclr", "mae"],
        help="pre-training: SimCLR (ResNet), MAE (ViT, decoder 4 x 64, 60 epochs)",
    )
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    args = parser.parse_args()
    data = load_mnist1d_split()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"MNIST-1D: {len(data[0])} train / {len(data[1])} test signals of length 40")
    for method in args.methods:
        print(f"\n== {method}")
        transfer(method, args, data)


def transfer(method: str, args: argparse.Namespace, data: tuple) -> None:
    """Pre-train ``method`` on the signals; fine-tune with every strategy."""
    X_tr, X_te, y_tr, y_te = data
    if method == "mae":
        rep = MAETransformer(
            input_shape=(1, 40),
            decoder_embed_dim=64,
            decoder_depth=4,
            max_epochs=60,
            random_state=0,
        )
    else:
        rep = SimCLRTransformer(
            input_shape=(1, 40), encoder=args.encoder, random_state=0
        )
    if args.pretrain_epochs:
        rep.set_params(max_epochs=args.pretrain_epochs)
    start = time.perf_counter()
    rep.fit(X_tr)
    print(
        f"{type(rep).__name__} pre-training ({rep.n_epochs_} epochs, no labels): "
        f"{time.perf_counter() - start:.0f} s"
    )

    fractions = [float(f) for f in args.fractions.split(",")]
    strategies = args.strategies.split(",")
    results: dict[tuple[str, float], float] = {}
    header = f"{'strategy':<10}" + "".join(
        f"{f'{f:.0%} labels':>14}{'fit s':>8}" for f in fractions
    )
    rows = {s: f"{s:<10}" for s in strategies}
    raw_row = f"{'raw LR':<10}"
    for fraction in fractions:
        if fraction < 1:
            X_l, _, y_l, _ = train_test_split(
                X_tr, y_tr, train_size=fraction, stratify=y_tr, random_state=0
            )
        else:
            X_l, y_l = X_tr, y_tr
        raw = LogisticRegression(max_iter=2000).fit(X_l, y_l).score(X_te, y_te)
        raw_row += f"{raw:>14.3f}{'':>8}"
        for name in strategies:
            clf = FineTuner(
                rep, max_epochs=args.epochs, random_state=0, **STRATEGIES[name]
            )
            start = time.perf_counter()
            clf.fit(X_l, y_l)
            fit_s = time.perf_counter() - start
            acc = clf.score(X_te, y_te)
            results[name, fraction] = acc
            rows[name] += f"{acc:>14.3f}{fit_s:>8.0f}"
            print(
                f"  {name} at {fraction:.0%} ({len(y_l)} labels): {acc:.3f} "
                f"in {fit_s:.0f} s",
                flush=True,
            )
    print()
    print(header)
    print("-" * len(header))
    for name in strategies:
        print(rows[name])
    print(raw_row)
    print()
    low = min(fractions)
    targets = method == "simclr"  # the transfer issue's targets are SimCLR's

    def judged(text: str, verdict_text: str) -> str:
        return f"{text} ({verdict_text})" if targets else text

    if {("full", low), ("scratch", low), ("frozen", low)} <= results.keys():
        gain = results["full", low] - results["scratch", low]
        gain_verdict = verdict(100 * gain, 10, at_most=False)
        print(
            judged(
                f"full - scratch at {low:.0%}: {100 * gain:+.1f} points", gain_verdict
            )
        )
        lead = results["full", low] - results["frozen", low]
        lead_verdict = verdict(100 * lead, 0, at_most=False, strict=True)
        print(
            judged(
                f"full - frozen at {low:.0%}: {100 * lead:+.1f} points", lead_verdict
            )
        )
    if ("full", 1.0) in results:
        full = results["full", 1.0]
        print(judged(f"full at 100%: {full:.3f}", verdict(full, 0.94, at_most=False)))


if __name__ == "__main__":
    main()
