"""Ways to judge a representation: linear probes on held-out data."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["ProbeResult", "linear_probe"]


@dataclass
class ProbeResult:
    """Outcome of :func:`linear_probe`."""

    fit_time: float
    accuracy: float


def linear_probe(representation, X_train, y_train, X_test, y_test) -> ProbeResult:
    """Fit a representation without labels, then a linear classifier on it.

    The representation (an unfitted estimator, or None for the raw input) is
    fitted on ``X_train`` alone; a standardised ``LogisticRegression`` is
    fitted on its output for the training labels and scored on the
    held-out split: the linear evaluation protocol of the self-supervised
    literature (e.g. Chen et al., SimCLR, 2020), a test of what a
    representation makes linearly available.

    Parameters
    ----------
    representation : transformer or None
        Cloned before fitting; None probes the raw features.
    X_train, y_train, X_test, y_test : array-like
        The split.

    Returns
    -------
    ProbeResult
        ``fit_time`` of the representation in seconds and held-out
        ``accuracy`` of the probe.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_replearn.evaluation import linear_probe
    >>> X, y = load_digits(return_X_y=True)
    >>> result = linear_probe(None, X[:1000], y[:1000], X[1000:], y[1000:])
    >>> result.accuracy > 0.85
    True
    """
    Z_train, Z_test, fit_time = X_train, X_test, 0.0
    if representation is not None:
        rep = clone(representation)
        start = time.perf_counter()
        Z_train = rep.fit_transform(X_train)
        fit_time = time.perf_counter() - start
        Z_test = rep.transform(X_test)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    probe.fit(np.asarray(Z_train), y_train)
    return ProbeResult(
        fit_time=fit_time, accuracy=float(probe.score(np.asarray(Z_test), y_test))
    )
