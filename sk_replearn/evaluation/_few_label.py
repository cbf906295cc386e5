"""The few-label protocol: ``k`` labels a class drawn at random, and scores.

:func:`few_label_indices` draws ``n_per_class`` labelled samples of every
class; :func:`few_label_scores` trains a clone of any classifier on each of
several draws and scores it on a held-out split, its outcome a
:class:`FewLabelResult` (the scores, their mean and standard deviation).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np
from sklearn.base import clone
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    validate_params,
)
from sklearn.utils.validation import check_consistent_length, column_or_1d

from ._common import _a_classifier, _checked_labels, _class_counts


@validate_params(
    {
        "y": ["array-like"],
        "n_per_class": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def few_label_indices(y, n_per_class: int, *, random_state=None) -> np.ndarray:
    """Indices of ``n_per_class`` samples of every class, drawn at random.

    The few-label protocol of semi-supervised learning (e.g. 4 labels a
    class on CIFAR-10 in Sohn et al., FixMatch, 2020): every class gets the
    same number of labels, drawn without replacement.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels of the pool to draw from.
    n_per_class : int
        Labels drawn from every class; each class must have that many.
    random_state : int, RandomState instance or None, default=None
        Seeds the draw.

    Returns
    -------
    ndarray of shape (n_classes * n_per_class,)
        Sorted indices into ``y``.

    Raises
    ------
    ValueError
        If a class has fewer than ``n_per_class`` samples.

    Examples
    --------
    >>> from sk_replearn.evaluation import few_label_indices
    >>> y = [0, 0, 0, 1, 1, 1, 2, 2, 2]
    >>> idx = few_label_indices(y, 2, random_state=0)
    >>> len(idx), sorted(set(int(c) for c in [y[i] for i in idx]))
    (6, [0, 1, 2])
    """
    if isinstance(n_per_class, bool):  # Interval(Integral) takes True as 1
        raise InvalidParameterError(
            f"The 'n_per_class' parameter of few_label_indices must be an int, "
            f"not a bool; got {n_per_class!r}."
        )
    y = _checked_labels(y)
    classes, counts = _class_counts(y)
    if (counts < n_per_class).any():
        short = classes[np.argmin(counts)].tolist()
        raise ValueError(
            f"n_per_class={n_per_class} but class {short!r} has only "
            f"{counts.min()} samples; use n_per_class <= {counts.min()}."
        )
    rng = check_random_state(random_state)
    picks = [
        rng.choice(np.flatnonzero(y == c), n_per_class, replace=False) for c in classes
    ]
    return np.sort(np.concatenate(picks))


@dataclass
class FewLabelResult:
    """Outcome of :func:`few_label_scores`.

    Attributes
    ----------
    n_per_class : int
        Labels a class in every draw.
    scores : ndarray of shape (n_draws,)
        Test score of the model trained on each draw.
    """

    n_per_class: int
    scores: np.ndarray

    @property
    def mean(self) -> float:
        """Mean score over the draws."""
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        """Standard deviation of the scores over the draws (``ddof=0``)."""
        return float(np.std(self.scores))

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.std:.3f}"

    def __eq__(self, other) -> bool:
        """Equal draws: the same ``n_per_class`` and the same scores."""
        if not isinstance(other, FewLabelResult):
            return NotImplemented
        return self.n_per_class == other.n_per_class and np.array_equal(
            self.scores, other.scores
        )


@validate_params(
    {
        "model": [HasMethods(["fit", "score"])],
        "X_train": ["array-like"],
        "y_train": ["array-like"],
        "X_test": ["array-like"],
        "y_test": ["array-like"],
        "n_per_class": [Interval(Integral, 1, None, closed="left")],
        "n_draws": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def few_label_scores(
    model,
    X_train,
    y_train,
    X_test,
    y_test,
    *,
    n_per_class: int,
    n_draws: int = 5,
    random_state=0,
) -> FewLabelResult:
    """Test score of a classifier trained on ``n_per_class`` labels a class.

    ``n_draws`` times, :func:`few_label_indices` draws ``n_per_class``
    labelled samples of every class from the training split; a clone of
    ``model`` is fitted on them and scored on the whole test split. The
    representation inside ``model`` decides what the unlabelled rest of the
    training split contributes: pre-train it on ``X_train`` without labels
    and wrap it in :class:`sklearn.frozen.FrozenEstimator` (its clone stays
    fitted), or pass a :class:`~sk_replearn.FineTuner` of the fitted
    representation (its clone keeps a fitted copy).

    Parameters
    ----------
    model : classifier
        Cloned for every draw, e.g. ``Pipeline([("rep",
        FrozenEstimator(rep)), ("clf", LogisticRegression())])``.
    X_train, y_train : array-like
        The pool the labels are drawn from. ``X_train`` is an array, a
        DataFrame or a list (of strings, or of token-id sequences of any
        lengths); its rows are picked by position, and a list stays a list.
    X_test, y_test : array-like
        The held-out split every draw is scored on.
    n_per_class : int
        Labels a class in every draw.
    n_draws : int, default=5
        Number of draws.
    random_state : int, RandomState instance or None, default=0
        Seeds the draws (one generator for all of them, so the draws differ).

    Returns
    -------
    FewLabelResult
        The scores of the draws, their ``mean`` and ``std``.

    See Also
    --------
    ProbeScorer : The same protocol inside a grid search.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sk_replearn.evaluation import few_label_scores
    >>> X, y = load_digits(return_X_y=True)
    >>> result = few_label_scores(
    ...     LogisticRegression(max_iter=5000), X[:1000], y[:1000], X[1000:], y[1000:],
    ...     n_per_class=2, n_draws=3)
    >>> result.scores.shape
    (3,)
    >>> 0.5 < result.mean < 0.9
    True
    """
    if not _a_classifier(model):
        raise ValueError(
            f"model={type(model).__name__} is not a classifier: few_label_scores "
            "reports a classifier's accuracy on the test split (its score); pass "
            "one, e.g. Pipeline([('rep', FrozenEstimator(rep)), ('clf', "
            "LogisticRegression())])."
        )
    if isinstance(n_draws, bool):  # Interval(Integral) takes True as 1
        raise InvalidParameterError(
            f"The 'n_draws' parameter of few_label_scores must be an int, not a "
            f"bool; got {n_draws!r}."
        )
    X_train, y_train = _indexable(X_train), column_or_1d(np.asarray(y_train))
    check_consistent_length(X_train, y_train)  # named, not an IndexError later
    rng = check_random_state(random_state)
    scores = []
    for _ in range(n_draws):
        idx = few_label_indices(y_train, n_per_class, random_state=rng)
        fitted = clone(model).fit(_safe_indexing(X_train, idx), y_train[idx])
        scores.append(fitted.score(X_test, y_test))
    return FewLabelResult(n_per_class=n_per_class, scores=np.asarray(scores))


def _indexable(X):
    """``X`` as ``_safe_indexing`` takes it, rows picked by position.

    Arrays and DataFrames are kept as given; any other sequence (a list of
    strings, a ragged list of token-id sequences) becomes a list, whose
    items are picked as they are, never stacked into one array.
    """
    if hasattr(X, "shape") and hasattr(X, "__getitem__"):
        return X
    return X if isinstance(X, list) else list(X)
