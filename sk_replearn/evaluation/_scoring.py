"""Scoring a representation: :func:`linear_probe` and :class:`ProbeScorer`.

:func:`linear_probe` fits a representation without labels on a training
split and scores a logistic regression on its output for a held-out one
(every label); :class:`ProbeScorer` is a ``scorer(estimator, X, y)`` that
scores a fitted representation by either probe (or any classifier), on every
label or on few-label draws, for grid searches and cross-validation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone, is_classifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state

from .._util import is_int
from ._common import _a_classifier, _checked_labels, _class_counts
from ._few_label import few_label_indices
from ._probes import KNNProbe, LinearProbeCV


@dataclass
class ProbeResult:
    """Outcome of :func:`linear_probe`."""

    fit_time: float
    accuracy: float


def linear_probe(
    representation, X_train, y_train, X_test, y_test, *, standardize: bool = True
) -> ProbeResult:
    """Fit a representation without labels, then a linear classifier on it.

    The representation (an unfitted estimator, or None for the raw input) is
    fitted on ``X_train`` alone; a ``LogisticRegression``, standardised by
    default, is fitted on its output for the training labels and scored on
    the held-out split: the linear evaluation protocol of the
    self-supervised literature (e.g. Chen et al., SimCLR, 2020), a test of
    what a representation makes linearly available.

    Parameters
    ----------
    representation : transformer or None
        Cloned, then fitted on ``X_train`` with ``fit`` and applied with
        ``transform``; None probes the raw features. A pre-trained
        representation wrapped in :class:`sklearn.frozen.FrozenEstimator`
        stays as it is (its ``fit`` does nothing).
    X_train, y_train, X_test, y_test : array-like
        The split.
    standardize : bool, default=True
        Scale each feature to unit variance on the training split before
        the logistic regression, as the protocol does for learned features,
        whose scales are arbitrary. Raw pixels are another matter: a border
        pixel that is almost always 0 is scaled up as far as a stroke
        pixel, which can cost a raw-pixel baseline accuracy (4,000 MNIST
        digits scaled to [0, 1], 1,000 held out: 0.885 standardised, 0.896
        not), so compare against raw input both ways. Sparse features (a
        bag of words, say) are kept sparse and scaled without centring.

    Returns
    -------
    ProbeResult
        ``fit_time`` of the representation in seconds and held-out
        ``accuracy`` of the probe.

    See Also
    --------
    few_label_scores : The same question with a few labels per class.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_replearn.evaluation import linear_probe
    >>> X, y = load_digits(return_X_y=True)
    >>> result = linear_probe(None, X[:1000], y[:1000], X[1000:], y[1000:])
    >>> result.accuracy > 0.85
    True
    """
    if not isinstance(standardize, (bool, np.bool_)):
        raise TypeError(f"standardize={standardize!r} must be True or False.")
    y_train = _checked_labels(y_train, "y_train")
    y_test = _checked_labels(y_test, "y_test")
    Z_train, Z_test, fit_time = _fit_represent(representation, X_train, X_test)
    accuracy = _probe_accuracy(
        Z_train, y_train, Z_test, y_test, standardize=bool(standardize)
    )
    return ProbeResult(fit_time=fit_time, accuracy=accuracy)


def _fit_represent(
    representation, X_train, X_test
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(Z_train, Z_test, fit_time)``: a clone fitted on ``X_train`` alone.

    ``fit(X_train, None)`` then ``transform``: a
    :class:`~sklearn.frozen.FrozenEstimator` has no ``fit_transform`` and
    its ``fit`` needs a ``y``. None keeps the raw input (and a fit time
    of 0).
    """
    Z_train, Z_test, fit_time = X_train, X_test, 0.0
    if representation is not None:
        rep = clone(representation)
        start = time.perf_counter()
        rep.fit(X_train, None)  # without labels
        fit_time = time.perf_counter() - start
        Z_train = rep.transform(X_train)
        Z_test = rep.transform(X_test)
    return _features(Z_train), _features(Z_test), fit_time


def _features(Z):
    """``Z`` as an array, or as a CSR matrix if sparse (a bag of words, say)."""
    return sp.csr_matrix(Z) if sp.issparse(Z) else np.asarray(Z)


def _probe_accuracy(
    Z_train, y_train, Z_test, y_test, *, standardize: bool = True
) -> float:
    """Held-out accuracy of the logistic-regression probe."""
    # Sparse features are scaled but not centred: centring fills them in.
    scaler = StandardScaler(with_mean=not sp.issparse(Z_train))
    scaler = scaler if standardize else "passthrough"
    probe = make_pipeline(scaler, LogisticRegression(max_iter=5000))
    return float(probe.fit(Z_train, y_train).score(Z_test, y_test))


# -- the scorer ----------------------------------------------------------------
_PROBES = {"knn": KNNProbe, "linear": LinearProbeCV}


class ProbeScorer:
    """Score a fitted representation by a probe on the data it is given.

    A ``scorer(estimator, X, y)`` for :class:`~sklearn.model_selection.GridSearchCV`,
    :func:`~sklearn.model_selection.cross_validate` and friends, where the
    estimator is a representation fitted (without labels) on the training
    folds: ``X`` is represented with ``estimator.transform`` (a pipeline
    ending in a classifier is represented by all its steps but the last),
    then the probe is scored on that representation of ``X``.

    * ``n_per_class=None``: stratified ``cv``-fold cross-validation of the
      probe on the labels of ``X``, the mean accuracy.
    * ``n_per_class=k``: ``n_draws`` times, the probe is trained on ``k``
      labels a class drawn from ``X`` (:func:`few_label_indices`) and
      scored on the other samples of ``X``; the mean accuracy. This selects
      the hyperparameters of a representation for the few-label regime.

    Parameters
    ----------
    probe : {"knn", "linear"} or classifier, default="knn"
        ``"knn"`` is ``KNNProbe()``, ``"linear"`` is ``LinearProbeCV()``;
        any other classifier is cloned for every fit.
    n_per_class : int or None, default=None
        Labels a class of the few-label protocol; None cross-validates on
        every label.
    n_draws : int, default=5
        Draws of the few-label protocol.
    cv : int, default=5
        Most folds of the all-label protocol (fewer when the smallest class
        of ``y`` has fewer samples).
    random_state : int or None, default=0
        Seeds the draws and the folds; an int scores every candidate of a
        search on the same draws.

    See Also
    --------
    few_label_scores : The few-label protocol on a fixed train/test split.
    sklearn.metrics.make_scorer : Scorers from metrics.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sk_replearn import PCATransformer
    >>> from sk_replearn.evaluation import ProbeScorer
    >>> X, y = load_digits(return_X_y=True)
    >>> scorer = ProbeScorer("knn", n_per_class=2)
    >>> search = GridSearchCV(
    ...     PCATransformer(), {"n_components": [2, 32]}, scoring=scorer, cv=2
    ... ).fit(X, y)
    >>> search.best_params_
    {'n_components': 32}
    """

    def __init__(
        self,
        probe="knn",
        *,
        n_per_class: int | None = None,
        n_draws: int = 5,
        cv: int = 5,
        random_state: int | None = 0,
    ) -> None:
        if isinstance(probe, str) and probe in _PROBES:
            pass
        elif not _a_classifier(probe):
            raise ValueError(
                f"probe={probe!r} must be 'knn', 'linear' or a classifier "
                "instance (e.g. LogisticRegression()), whose score is its "
                "accuracy."
            )
        for name, value, low in (
            ("n_per_class", n_per_class, 1),
            ("n_draws", n_draws, 1),
            ("cv", cv, 2),
        ):
            if value is None and name == "n_per_class":
                continue
            if not is_int(value):
                raise ValueError(f"{name}={value!r} must be an int >= {low}.")
            if value < low:
                raise ValueError(f"{name}={value!r} must be an int >= {low}.")
        if n_per_class == 1 and _chooses_by_cv(probe):
            raise ValueError(
                "n_per_class=1 leaves LinearProbeCV one label a class, and it "
                "chooses C by cross-validation on at least 2; use n_per_class "
                ">= 2, or probe='knn'."
            )
        if random_state is not None and not isinstance(random_state, Integral):
            raise ValueError(
                f"random_state={random_state!r} must be an int or None, so that "
                "every candidate of a search is scored on the same draws."
            )
        self.probe = probe
        self.n_per_class = n_per_class
        self.n_draws = n_draws
        self.cv = cv
        self.random_state = random_state

    def __repr__(self) -> str:
        return (
            f"ProbeScorer({self.probe!r}, n_per_class={self.n_per_class}, "
            f"n_draws={self.n_draws}, cv={self.cv}, random_state={self.random_state})"
        )

    def __call__(self, estimator, X, y) -> float:
        """Mean probe accuracy on the representation of ``X`` by ``estimator``.

        Parameters
        ----------
        estimator : fitted transformer or Pipeline
            The representation to judge.
        X : array-like
            Samples, as ``estimator`` takes them.
        y : array-like of shape (n_samples,)
            Their classes.

        Returns
        -------
        float
        """
        if y is None:
            raise ValueError(
                "ProbeScorer scores a representation by how well a probe "
                "predicts the classes of X: it needs y, the labels of X, and "
                "got None (pass y to the search's or cross-validation's fit)."
            )
        y = _checked_labels(y)
        Z = _features(_represent(estimator, X))
        if sp.issparse(Z) and isinstance(self.probe, str):
            raise ValueError(
                f"{type(estimator).__name__} gives sparse features, and "
                f"probe={self.probe!r} takes dense ones: pass a classifier that "
                "takes sparse input, e.g. ProbeScorer(LogisticRegression()), or "
                "densify the features."
            )
        classes, counts = _class_counts(y)
        # LinearProbeCV needs 2 labels a class in each training part: 3 in all.
        least = 3 if self.n_per_class is None and _chooses_by_cv(self.probe) else 2
        if counts.min() < least:
            raise ValueError(
                f"class {classes[np.argmin(counts)].tolist()!r} has "
                f"{counts.min()} sample{'s' if counts.min() > 1 else ''} in the "
                f"scored fold, too few to fit {type(self._probe()).__name__} on "
                f"some of a class (it needs {least - 1} a class) and score it on "
                "others; score on more samples (fewer folds, or shuffled ones "
                "for data sorted by class) or drop the class."
            )
        if self.n_per_class is None:
            smallest = int(counts.min())
            cv = StratifiedKFold(
                n_splits=max(2, min(self.cv, smallest)),
                shuffle=True,
                random_state=self.random_state,
            )
            return float(cross_val_score(self._probe(), Z, y, cv=cv).mean())
        return self._few_label_score(Z, y, classes, counts)

    def _probe(self):
        probe = self.probe
        return _PROBES[probe]() if isinstance(probe, str) else clone(probe)

    def _few_label_score(
        self, Z: np.ndarray, y: np.ndarray, classes: np.ndarray, counts: np.ndarray
    ) -> float:
        """Mean score over ``n_draws`` few-label draws; ``classes, counts``
        are ``_class_counts(y)``, as the caller counted them."""
        if counts.min() <= self.n_per_class:
            raise ValueError(
                f"n_per_class={self.n_per_class} leaves nothing to score class "
                f"{classes[np.argmin(counts)].tolist()!r}, which has {counts.min()} "
                f"samples in the scored fold; use n_per_class < {counts.min()} "
                "or fewer folds."
            )
        rng = check_random_state(self.random_state)
        scores = []
        for _ in range(self.n_draws):
            labelled = few_label_indices(y, self.n_per_class, random_state=rng)
            rest = np.setdiff1d(np.arange(len(y)), labelled)
            probe = self._probe().fit(Z[labelled], y[labelled])
            scores.append(probe.score(Z[rest], y[rest]))
        return float(np.mean(scores))


def _chooses_by_cv(probe) -> bool:
    """Whether ``probe`` is a LinearProbeCV, which cross-validates its labels."""
    if isinstance(probe, str):
        return probe == "linear"
    return isinstance(probe, LinearProbeCV)


def _represent(estimator, X):
    """The representation of ``X`` by ``estimator`` that ProbeScorer judges.

    ``estimator.transform(X)``, except for a pipeline ending in a
    classifier (or in no transformer): all its steps but the last. The
    classifier's own ``transform`` (that of
    :class:`~sklearn.discriminant_analysis.LinearDiscriminantAnalysis`, say)
    was learned from labels and is not the representation being judged.
    """
    if isinstance(estimator, Pipeline) and len(estimator) > 1:
        if is_classifier(estimator[-1]) or not hasattr(estimator, "transform"):
            return estimator[:-1].transform(X)
    if hasattr(estimator, "transform"):
        return estimator.transform(X)
    raise TypeError(
        f"estimator={type(estimator).__name__} has no transform: ProbeScorer "
        "judges a fitted representation or a Pipeline that ends in one (or in "
        "a classifier after one)."
    )
