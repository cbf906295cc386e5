"""``python -m sk_replearn``: every representation of images on digits, one table.

Fits each representation of the package that takes images (K-means, PCA,
the autoencoder and the self-supervised methods; the fine-tuners build on
them, and ``sequences`` runs the sequence models) on the training part of
scikit-learn's 8×8 digits (no labels), then prints its fit time and two held-out
accuracies beside raw pixels:

* **all labels**: a standardised logistic regression trained on the
  representation of the 1,347 labelled training images
  (:func:`~sk_replearn.evaluation.linear_probe`);
* **2 labels/class**: ``LogisticRegression(max_iter=5000)`` trained on 20 of
  them, two of each digit, the mean over 5 seeded draws
  (:func:`~sk_replearn.evaluation.few_label_scores`), the regime that
  learning without labels is for. It is not standardised: the statistics
  of 20 samples would inflate features that hardly vary.

The estimators are fitted ``--n-jobs`` at a time (2 by default, one torch
thread each), the slowest first, which keeps the run under 3 minutes on 2
free cores; the table is printed when every fit is done.
``python -m sk_replearn sequences`` does the same for the sequence models on
5,200 peptides labelled antimicrobial or not (the ``modlamp`` wheel must be
installed), beside TF-IDF of character n-grams.
"""

from __future__ import annotations

import argparse
import re
import sys
import time

from joblib import Parallel, delayed
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.utils import get_tags

from . import AutoencoderTransformer, KMeansTransformer, PCATransformer, methods
from .evaluation import few_label_scores, linear_probe
from .evaluation._scoring import _fit_represent, _probe_accuracy

#: Labels a class, and draws, of the few-label column.
_FEW_LABELS, _FEW_DRAWS = 2, 5

#: The families of :mod:`sk_replearn.methods` in the order the table shows them.
_FAMILIES = [
    "contrastive",
    "noncontrastive",
    "redundancy",
    "dino",
    "clustering",
    "cmc",
    "masked",
    "context",
]


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


def _probes(est, X_train, y_train, X_test, y_test, threads: int | None):
    """Fit time, all-label and few-label accuracy of one representation."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    Z_train, Z_test, fit_time = _fit_represent(est, X_train, X_test)
    everything = _probe_accuracy(Z_train, y_train, Z_test, y_test)
    few = few_label_scores(
        LogisticRegression(max_iter=5000),
        Z_train,
        y_train,
        Z_test,
        y_test,
        n_per_class=_FEW_LABELS,
        n_draws=_FEW_DRAWS,
        random_state=0,
    )
    return fit_time, everything, few.mean


def _plain(doc: str) -> str:
    """The module docstring for a terminal: no reST markup, lists kept."""
    doc = re.sub(r":\w+:`~?([\w.]+)`", lambda m: m.group(1).rsplit(".", 1)[-1], doc)
    return doc.replace("``", "").replace("**", "")


def _n_jobs(text: str) -> int:
    """``--n-jobs``: a positive int, or -1 for every core (as joblib's)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an int") from None
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError(
            f"{value} estimators at a time: pass 1 or more, or -1 for every core"
        )
    return value


def digits(random_state: int, n_jobs: int = 2) -> None:
    """Every method on digits: the package's main table."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=random_state
    )
    print(
        f"digits: {len(X_train)} training / {len(X_test)} held-out images of 8x8; "
        "probes: StandardScaler + LogisticRegression on all the training\n"
        f"labels, and LogisticRegression on {_FEW_LABELS} labels a class (mean of "
        f"{_FEW_DRAWS} draws); every representation is fitted without labels\n"
    )
    few = f"{_FEW_LABELS} labels/class"
    header = f"{'method':<34} {'fit time (s)':>12} {'all labels':>11} {few:>15}"
    ests = estimators(random_state)
    print(f"fitting {len(ests)} representations, {n_jobs} at a time ...\n", flush=True)
    threads = 1 if n_jobs != 1 else None
    # Started from the end of the table, where the slowest fits are (MAE
    # alone takes a third of the run), so that no process waits idle at the
    # end for one long fit; the rows are printed in the table's order.
    results = Parallel(n_jobs=n_jobs)(
        delayed(_probes)(est, X_train, y_train, X_test, y_test, threads)
        for est in reversed(ests.values())
    )
    print(header)
    print("-" * len(header))
    for name, (fit_time, everything, few_mean) in zip(ests, reversed(results)):
        print(
            f"{name:<34} {fit_time:>12.2f} {everything:>11.3f} {few_mean:>15.3f}",
            flush=True,
        )


def _sequence_probe(cls, random_state, X_train, y_train, X_test, y_test, threads):
    """Fit time and linear-probe accuracy of one sequence model."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    rep = cls(random_state=random_state)
    result = linear_probe(rep, X_train, y_train, X_test, y_test)
    return result.fit_time, result.accuracy


def sequences(random_state: int, n_jobs: int = 2) -> None:
    """GPT and BERT on peptides, beside character n-gram counts."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from . import BERTTransformer, GPTTransformer
    from .datasets import load_peptides

    X, y = load_peptides(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=random_state
    )
    print(
        f"peptides: {len(X_train)} training / {len(X_test)} held-out amino-acid "
        "sequences, antimicrobial or not; linear probe = StandardScaler + "
        "LogisticRegression on the representation\n"
    )
    print(f"fitting BERT and GPT, {n_jobs} at a time ...\n", flush=True)
    tfidf = make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3)),
        LogisticRegression(C=10.0, max_iter=5000),
    )
    start = time.perf_counter()
    tfidf.fit(X_train, y_train)
    rows = [("TF-IDF of character 1-3-grams", time.perf_counter() - start)]
    rows[0] += (tfidf.score(X_test, y_test),)
    threads = 1 if n_jobs != 1 else None
    models = {"BERTTransformer()": BERTTransformer, "GPTTransformer()": GPTTransformer}
    results = Parallel(n_jobs=n_jobs)(
        delayed(_sequence_probe)(
            cls, random_state, X_train, y_train, X_test, y_test, threads
        )
        for cls in models.values()
    )
    rows += [(name, *result) for name, result in zip(models, results)]
    header = f"{'method':<34} {'fit time (s)':>12} {'probe accuracy':>15}"
    print(header)
    print("-" * len(header))
    for name, fit_time, accuracy in rows:
        print(f"{name:<34} {fit_time:>12.2f} {accuracy:>15.3f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the demo and print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m sk_replearn",
        description=_plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "data",
        nargs="?",
        default="digits",
        choices=["digits", "sequences"],
        help="digits (every method, the default) or sequences (GPT and BERT "
        "on peptides)",
    )
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument(
        "--n-jobs",
        type=_n_jobs,
        default=2,
        help="estimators fitted at a time, one torch thread each (2)",
    )
    args = parser.parse_args(argv)
    if args.data == "digits":
        digits(args.random_state, args.n_jobs)
    else:
        sequences(args.random_state, args.n_jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
