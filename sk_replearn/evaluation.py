"""Ways to judge a representation: linear and k-nearest-neighbour probes.

:func:`linear_probe` is the linear evaluation protocol of the
self-supervised literature with every label. For few labels, the case a
representation learned without labels is meant for, the module offers:

* two probes, scikit-learn classifiers to put after a frozen representation:
  :class:`KNNProbe` (a k-nearest-neighbour vote, k chosen from the number of
  labels) and :class:`LinearProbeCV` (a logistic regression whose inverse
  regularisation ``C`` is chosen by stratified cross-validation on the few
  labels themselves);
* :class:`ProbeScorer`, a ``scorer(estimator, X, y)`` that probes a fitted
  representation (or pipeline) with either probe, for ``GridSearchCV`` and
  ``cross_validate``;
* :func:`few_label_indices` and :func:`few_label_scores`: ``k`` labels per
  class drawn at random, several times, and the test accuracy of any
  classifier trained on each draw (mean and standard deviation).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    clone,
    is_classifier,
)
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import (
    RepeatedStratifiedKFold,
    StratifiedKFold,
    cross_val_score,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_params,
)
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from .base import fit_context

__all__ = [
    "FewLabelResult",
    "KNNProbe",
    "LinearProbeCV",
    "ProbeResult",
    "ProbeScorer",
    "few_label_indices",
    "few_label_scores",
    "linear_probe",
]

#: Largest ``k`` of ``KNNProbe(n_neighbors="auto")``: the k=20 of the
#: k-NN evaluation of Wu et al. (2018) and Caron et al. (DINO, 2021).
_MAX_AUTO_NEIGHBORS = 20
#: Fits that ``LinearProbeCV(n_repeats="auto")`` aims at: folds x repeats.
_AUTO_CV_FITS = 10


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


# -- few labels: which, and how well -------------------------------------------
def _missing_label(value) -> bool:
    """None, a float NaN or pandas' NA (whose truth value is an error)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return type(value).__name__ == "NAType"


def _class_counts(y) -> tuple[np.ndarray, np.ndarray]:
    classes, counts = np.unique(y, return_counts=True)
    return classes, counts


def _checked_labels(y, name: str = "y") -> np.ndarray:
    """``y`` as a 1-D array of class labels, or a ValueError that says why not.

    Empty, missing (NaN, None, pd.NA) and mixed (strings and numbers) labels
    are refused with a message that names them, before numpy's sorting fails
    on them with a TypeError.
    """
    y = column_or_1d(np.asarray(y), warn=True)
    if y.size == 0:
        raise ValueError(f"{name} is empty; pass one class label a sample.")
    if y.dtype.kind in "fc":
        missing = not np.isfinite(y).all()
    else:  # None, NaN or pd.NA among objects
        missing = y.dtype.kind == "O" and any(_missing_label(v) for v in y)
    if missing:
        raise ValueError(
            f"{name} holds NaN or infinite labels, or missing ones (None, "
            "pd.NA); drop those samples (or give them a class) first."
        )
    if y.dtype.kind == "O" and len({isinstance(v, str) for v in y}) > 1:
        raise ValueError(
            f"{name} mixes label types (strings and numbers), which do not sort "
            f"together; make them one type (e.g. {name}.astype(str))."
        )
    return y


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


# -- probes ------------------------------------------------------------------
class _Probe(ClassifierMixin, BaseEstimator):
    """What the two probes share: validation, optional scaling, prediction."""

    def _fit_scaled(self, X, y) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes; y "
                "has 1 class."
            )
        self.scaler_ = StandardScaler().fit(X) if self.standardize else None
        return self._scaled(X), y

    def _scaled(self, X) -> np.ndarray:
        return X if self.scaler_ is None else self.scaler_.transform(X)

    def _input(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self._scaled(validate_data(self, X, reset=False))

    def predict(self, X) -> np.ndarray:
        """Predicted class of each row of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Representations (or any features).

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return self._answer("predict", X)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities of each row of ``X``, in the order of ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return self._answer("predict_proba", X)

    def _answer(self, method: str, X) -> np.ndarray:
        """``estimator_``'s ``method`` on ``X``, validated and scaled."""
        Z = self._input(X)
        return getattr(self.estimator_, method)(Z)


class KNNProbe(_Probe):
    """k-nearest-neighbour classifier on a (standardised) representation.

    The k-NN evaluation of self-supervised features (Wu et al. 2018; Caron
    et al., DINO, 2021) needs no training and no hyperparameter search,
    which makes it the probe of choice when labels are too few to choose a
    regularisation strength. The neighbours are searched among the
    labelled samples, by cosine or Euclidean distance, after an optional
    standardisation of each feature, and vote weighted by the inverse of
    their distance.

    Parameters
    ----------
    n_neighbors : int or "auto", default="auto"
        Number of neighbours. ``"auto"`` takes ``round(sqrt(m))`` with ``m``
        the labels of the smallest class, between 1 and 20: one neighbour
        with 2 labels a class (a larger vote would be outnumbered by the
        other classes), 3 with 10, and the k=20 of the papers above from
        400 labels a class on.
    metric : {"cosine", "euclidean"}, default="cosine"
        Distance between representations. Contrastive objectives compare
        embeddings by cosine similarity.
    standardize : bool, default=False
        Scale each feature to zero mean and unit variance before measuring
        distances. The statistics come from the labelled samples only, which
        are too few to estimate them with 2 labels a class: the scaling then
        inflates features that barely vary. Measured on digits (1,347
        training images, 5 draws of 2 labels a class), the cosine vote falls
        from 0.74 to 0.68 on raw pixels and from 0.85 to 0.73 on SimCLR
        features when standardised.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_neighbors_ : int
        The number of neighbours used.
    scaler_ : StandardScaler or None
        The fitted scaling, None when ``standardize=False``.
    estimator_ : KNeighborsClassifier
        The fitted neighbour search.
    n_features_in_ : int
        Number of features seen in ``fit``.

    See Also
    --------
    LinearProbeCV : A linear probe whose regularisation is cross-validated.
    ProbeScorer : Either probe as a scorer of a representation.

    References
    ----------
    .. [1] Z. Wu, Y. Xiong, S. X. Yu and D. Lin, "Unsupervised Feature
       Learning via Non-Parametric Instance Discrimination", CVPR 2018.
    .. [2] M. Caron et al., "Emerging Properties in Self-Supervised Vision
       Transformers", ICCV 2021.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_replearn.evaluation import KNNProbe, few_label_indices
    >>> X, y = load_digits(return_X_y=True)
    >>> idx = few_label_indices(y[:1000], 2, random_state=0)
    >>> probe = KNNProbe().fit(X[idx], y[idx])
    >>> probe.n_neighbors_
    1
    >>> 0.5 < probe.score(X[1000:], y[1000:]) < 0.95
    True
    """

    _parameter_constraints: dict = {
        "n_neighbors": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "metric": [StrOptions({"cosine", "euclidean"})],
        "standardize": ["boolean"],
    }

    def __init__(
        self,
        *,
        n_neighbors: int | str = "auto",
        metric: str = "cosine",
        standardize: bool = False,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.standardize = standardize

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y) -> KNNProbe:
        """Store the labelled samples (scaled) for the neighbour search.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Representations of the labelled samples.
        y : array-like of shape (n_samples,)
            Their classes.

        Returns
        -------
        self : KNNProbe
        """
        Z, y = self._fit_scaled(X, y)
        smallest = int(_class_counts(y)[1].min())
        if self.n_neighbors == "auto":
            k = min(_MAX_AUTO_NEIGHBORS, max(1, round(math.sqrt(smallest))))
        else:
            k = int(self.n_neighbors)
        if k > len(y):
            raise ValueError(
                f"n_neighbors={self.n_neighbors} but there are only {len(y)} "
                f"labelled samples; use n_neighbors <= {len(y)} or 'auto'."
            )
        self.n_neighbors_ = k
        self.estimator_ = KNeighborsClassifier(
            n_neighbors=k, metric=self.metric, weights="distance"
        ).fit(Z, y)
        return self


class LinearProbeCV(_Probe):
    """Logistic regression whose ``C`` is chosen by CV on the labels it gets.

    A linear probe trained on 20 labels is only as good as its
    regularisation strength, and no held-out set is there to choose it:
    ``LinearProbeCV`` chooses ``C`` by repeated stratified k-fold
    cross-validation on the labels themselves, with as many folds as the
    smallest class allows (2 with 2 labels a class, in which each fold
    trains on one label a class), then refits on all of them. The
    cross-validation scores by log-loss, which still ranks the values of
    ``C`` where a fold of ten samples gives only a few distinct accuracies.

    Parameters
    ----------
    Cs : int or array-like of float, default=10
        Values of ``C`` to try; an int ``n`` tries ``n`` values on a log
        grid from 1e-4 to 1e4, as :class:`~sklearn.linear_model.LogisticRegressionCV`.
    n_splits : int, default=5
        Most folds; fewer when the smallest class has fewer labels.
    n_repeats : int or "auto", default="auto"
        Repetitions of the k-fold split, each shuffled anew. ``"auto"``
        repeats until about 10 fits per value of ``C`` (5 repeats of 2 folds,
        2 of 5).
    standardize : bool, default=False
        Scale each feature to zero mean and unit variance (statistics of the
        labelled samples) before the regression. Off by default for the
        reason given in :class:`KNNProbe`: on digits with 2 labels a class,
        standardising costs 6 points on raw pixels (0.70 against 0.76) and
        8 on SimCLR features (0.79 against 0.87); with all labels it is
        harmless, and it helps when features have very different scales.
    max_iter : int, default=1000
        Iterations of the L-BFGS solver.
    random_state : int, RandomState instance or None, default=0
        Seeds the shuffling of the folds.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    C_ : float
        The chosen inverse regularisation strength.
    cv_ : RepeatedStratifiedKFold
        The split used to choose it.
    scaler_ : StandardScaler or None
        The fitted scaling, None when ``standardize=False``.
    estimator_ : LogisticRegression
        The regression fitted with ``C_`` on every label.
    n_iter_ : int
        Iterations of the solver in that fit.
    n_features_in_ : int
        Number of features seen in ``fit``.

    See Also
    --------
    KNNProbe : A probe with nothing to choose.
    ProbeScorer : Either probe as a scorer of a representation.
    sklearn.linear_model.LogisticRegressionCV : The regression inside.

    References
    ----------
    .. [1] A. Oliver, A. Odena, C. Raffel, E. D. Cubuk and I. J. Goodfellow,
       "Realistic Evaluation of Deep Semi-Supervised Learning Algorithms",
       NeurIPS 2018 (hyperparameters of a few-label model must be chosen
       on those few labels).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_replearn.evaluation import LinearProbeCV, few_label_indices
    >>> X, y = load_digits(return_X_y=True)
    >>> idx = few_label_indices(y[:1000], 2, random_state=0)
    >>> probe = LinearProbeCV().fit(X[idx], y[idx])
    >>> probe.cv_.get_n_splits()  # 5 repeats of 2 folds
    10
    >>> 0.5 < probe.score(X[1000:], y[1000:]) < 0.95
    True
    """

    _parameter_constraints: dict = {
        "Cs": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "n_splits": [Interval(Integral, 2, None, closed="left")],
        "n_repeats": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "standardize": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        Cs=10,
        n_splits: int = 5,
        n_repeats: int | str = "auto",
        standardize: bool = False,
        max_iter: int = 1000,
        random_state=0,
    ) -> None:
        self.Cs = Cs
        self.n_splits = n_splits
        self.n_repeats = n_repeats
        self.standardize = standardize
        self.max_iter = max_iter
        self.random_state = random_state

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y) -> LinearProbeCV:
        """Choose ``C`` by cross-validation, then fit on every label.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Representations of the labelled samples.
        y : array-like of shape (n_samples,)
            Their classes; every class needs at least 2.

        Returns
        -------
        self : LinearProbeCV
        """
        Cs = self.Cs
        if isinstance(Cs, bool) or not isinstance(Cs, Integral):
            try:
                Cs = np.asarray(Cs, dtype=float)
            except (TypeError, ValueError):
                Cs = np.zeros(0)
            if (
                isinstance(self.Cs, bool)
                or Cs.ndim != 1
                or not len(Cs)
                or not (np.isfinite(Cs) & (Cs > 0)).all()
            ):
                raise InvalidParameterError(
                    f"The 'Cs' parameter of LinearProbeCV must be an int >= 1 "
                    f"or a non-empty 1-D list of finite floats > 0 (inverse "
                    f"regularisation strengths); got {self.Cs!r}."
                )
        Z, y = self._fit_scaled(X, y)
        classes, counts = _class_counts(y)
        if counts.min() < 2:
            raise ValueError(
                f"LinearProbeCV chooses C by cross-validation, which needs at "
                f"least 2 labels of every class in y; class "
                f"{classes[np.argmin(counts)].tolist()!r} has 1. Use KNNProbe or a "
                "LogisticRegression of fixed C."
            )
        n_splits = min(self.n_splits, int(counts.min()))
        n_repeats = self.n_repeats
        if n_repeats == "auto":
            n_repeats = math.ceil(_AUTO_CV_FITS / n_splits)
        self.cv_ = RepeatedStratifiedKFold(
            n_splits=n_splits, n_repeats=n_repeats, random_state=self.random_state
        )
        search = LogisticRegressionCV(
            Cs=Cs,
            l1_ratios=(0.0,),
            cv=list(self.cv_.split(Z, y)),
            scoring="neg_log_loss",
            max_iter=self.max_iter,
            refit=False,
            use_legacy_attributes=False,
        ).fit(Z, y)
        # The C of the best mean score over the folds (the first, i.e. the
        # strongest regularisation, of equals); with refit=False,
        # LogisticRegressionCV's own C_ is the mean of each fold's best C.
        mean_scores = search.scores_.mean(axis=0).ravel()  # (n_Cs,)
        self.C_ = float(search.Cs_[int(np.argmax(mean_scores))])
        self.estimator_ = LogisticRegression(C=self.C_, max_iter=self.max_iter)
        self.estimator_.fit(Z, y)
        self.n_iter_ = int(np.max(self.estimator_.n_iter_))
        return self

    def decision_function(self, X) -> np.ndarray:
        """Confidence scores of the regression, as ``LogisticRegression``'s.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The score of ``classes_[1]`` for 2 classes, else one a class.
        """
        return self._answer("decision_function", X)

    def predict_log_proba(self, X) -> np.ndarray:
        """Log of :meth:`predict_proba`, as ``LogisticRegression``'s.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        return self._answer("predict_log_proba", X)


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
            if not isinstance(value, Integral) or isinstance(value, bool):
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


def _a_classifier(obj) -> bool:
    """Whether ``obj`` is a classifier instance, as scikit-learn's tags say."""
    if isinstance(obj, (str, type)):
        return False
    try:
        return is_classifier(obj)
    except (AttributeError, TypeError):  # an object without tags
        return False


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
