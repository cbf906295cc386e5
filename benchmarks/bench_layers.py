"""Linear probe of every encoder layer: ``transform_layer`` on MNIST-1D.

``SimCLRTransformer`` and ``MAETransformer`` are each fitted ONCE with their
defaults (only ``input_shape=(1, 40)`` and ``random_state=0`` given) on the
4000 MNIST-1D training signals without labels. Then, for every block of the
encoder (the blocks ``FineTuner``'s ``freeze_layers`` counts), the fitted
estimator is set to that block with ``set_params(transform_layer=k)`` (no
refit) and a linear probe, :func:`sk_replearn.evaluation.linear_probe` on
the features (``StandardScaler`` + ``LogisticRegression``, fitted on the
training split, scored on the 1000 test signals), is printed per block.
Inner ConvNet blocks are averaged over time (global average pooling);
transformer blocks are pooled as MAE's default ``pooling="blocks"`` says:
the class token and the patch mean of every block up to this one.

Anchors: the MNIST-1D paper's SimCLR notebook (Greydanus 2020) probes 82.1%
on a middle layer of its CNN against 75.0% on the projector's output; an
earlier measurement of the default MAE here gave 0.708 on its first block
against 0.666 on the last. Raw-signal logistic regression is printed for
reference.

Run: ``python benchmarks/bench_layers.py [--only simclr mae] [--threads N]
[--epochs N]``; ``--epochs`` sets ``max_epochs`` of both methods instead of
their defaults, for a quick look.
"""

from __future__ import annotations

import argparse
import time

import torch
from _data import load_mnist1d_split

from sk_replearn import MAETransformer, SimCLRTransformer
from sk_replearn.evaluation import linear_probe
from sk_replearn.nn.surgery import encoder_blocks

METHODS = {"simclr": SimCLRTransformer, "mae": MAETransformer}


def _describe(block) -> str:
    """A block by the kinds of its layers, e.g. ``Conv1d+BatchNorm1d+ReLU``."""
    names = [type(m).__name__.lstrip("_") for m in block.modules] or ["weights"]
    return "+".join(names)


def probe_layers(rep, X_tr, y_tr, X_te, y_te) -> None:
    """Print the probe of every block of the fitted ``rep``, one row each."""
    blocks = encoder_blocks(rep._transfer_encoder())
    n = len(blocks)
    print(f"{'layer':>5} {'= k':>4} {'block':<44} {'width':>5} {'accuracy':>8}")
    for k in range(n):
        rep.set_params(transform_layer=k)
        start = time.perf_counter()
        Z_tr, Z_te = rep.transform(X_tr), rep.transform(X_te)
        seconds = time.perf_counter() - start
        acc = linear_probe(None, Z_tr, y_tr, Z_te, y_te).accuracy
        kind = _describe(blocks[k])
        kind = kind if len(kind) <= 44 else kind[:41] + "..."
        print(
            f"{k:>5} {k - n:>4} {kind:<44} {Z_tr.shape[1]:>5} {acc:>8.3f}"
            f"   (transform {seconds:.1f} s)",
            flush=True,
        )
    rep.set_params(transform_layer=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(METHODS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {} if args.epochs is None else {"max_epochs": args.epochs}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if overrides:
        print(f"overrides: {overrides}")

    X_tr, X_te, y_tr, y_te = load_mnist1d_split()
    print(f"MNIST-1D, {len(X_tr)} train / {len(X_te)} test, input_shape=(1, 40)")
    raw = linear_probe(None, X_tr, y_tr, X_te, y_te).accuracy
    print(f"raw logistic regression: {raw:.3f}")
    for name in args.only or METHODS:
        cls = METHODS[name]
        rep = cls(input_shape=(1, 40), random_state=0, **overrides)
        start = time.perf_counter()
        rep.fit(X_tr)
        fit_time = time.perf_counter() - start
        print(f"\n{cls.__name__} (defaults), fitted once in {fit_time:.0f} s")
        probe_layers(rep, X_tr, y_tr, X_te, y_te)


if __name__ == "__main__":
    main()
