"""``python -m sk_replearn``: every method on digits, one table.

Fits each estimator of the package on the training part of scikit-learn's
8×8 digits (no labels), then a logistic-regression probe on its
representation, and prints fit time and held-out accuracy beside raw pixels.
"""

from __future__ import annotations

import argparse
import sys

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import get_tags

from . import AutoencoderTransformer, KMeansTransformer, PCATransformer, methods
from .evaluation import linear_probe

#: The families of :mod:`sk_replearn.methods` in the order the table shows them.
_FAMILIES = ["contrastive", "noncontrastive", "masked"]


def _self_supervised() -> list[type]:
    """Every self-supervised estimator, by family, then as its module defines it."""
    found = [getattr(methods, name) for name in methods.__all__]
    found = [
        cls
        for cls in found
        if isinstance(cls, type) and hasattr(cls, "fit")
        if cls is not AutoencoderTransformer
        and get_tags(cls()).input_tags.two_d_array  # not the sequence models
    ]
    return sorted(
        found,
        key=lambda cls: (
            _FAMILIES.index(cls.__module__.rsplit(".", 1)[1]),
            list(vars(sys.modules[cls.__module__])).index(cls.__name__),
        ),
    )


def estimators(random_state: int = 0) -> dict:
    """The estimators the demo fits, by display name."""
    return {
        "raw pixels": None,
        "KMeansTransformer(k=64)": KMeansTransformer(
            n_clusters=64, random_state=random_state
        ),
        "PCATransformer(32)": PCATransformer(
            n_components=32, random_state=random_state
        ),
        "AutoencoderTransformer(32)": AutoencoderTransformer(
            n_components=32, input_shape=(1, 8, 8), random_state=random_state
        ),
        **{
            f"{cls.__name__}": cls(input_shape=(1, 8, 8), random_state=random_state)
            for cls in _self_supervised()
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Run the demo and print the table."""
    parser = argparse.ArgumentParser(prog="python -m sk_replearn", description=__doc__)
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=args.random_state
    )
    print(
        f"digits: {len(X_train)} training / {len(X_test)} held-out images of 8x8; "
        "linear probe = StandardScaler + LogisticRegression on the representation\n"
    )
    header = f"{'method':<30} {'fit time (s)':>12} {'probe accuracy':>15}"
    print(header)
    print("-" * len(header))
    for name, est in estimators(args.random_state).items():
        result = linear_probe(est, X_train, y_train, X_test, y_test)
        print(
            f"{name:<30} {result.fit_time:>12.2f} {result.accuracy:>15.3f}", flush=True
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
