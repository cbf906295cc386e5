"""The two probes, scikit-learn classifiers to put after a representation.

:class:`KNNProbe` (a k-nearest-neighbour vote, k chosen from the number of
labels) and :class:`LinearProbeCV` (a logistic regression whose ``C`` is
chosen by cross-validation on the few labels it gets), and their private
base ``_Probe``: validation, optional standardisation, prediction.
"""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import RepeatedStratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._seeding import seed_from_random_state
from ..base import fit_context
from ._common import _class_counts

#: Largest ``k`` of ``KNNProbe(n_neighbors="auto")``: the k=20 of the
#: k-NN evaluation of Wu et al. (2018) and Caron et al. (DINO, 2021).
_MAX_AUTO_NEIGHBORS = 20
#: Fits that ``LinearProbeCV(n_repeats="auto")`` aims at: folds x repeats.
_AUTO_CV_FITS = 10


class _Probe(ClassifierMixin, BaseEstimator):
    """What the two probes share: validation, optional scaling, prediction."""

    def _fit_scaled(self, X, y) -> tuple[np.ndarray, np.ndarray]:
        X, y = self._fit_checked(X, y)
        return self._scaled(X), y

    def _fit_checked(self, X, y) -> tuple[np.ndarray, np.ndarray]:
        """``X`` and ``y`` validated, ``classes_`` and ``scaler_`` set."""
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes; y "
                "has 1 class."
            )
        self.scaler_ = StandardScaler().fit(X) if self.standardize else None
        return X, y

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
        labelled samples) before the regression; in the cross-validation,
        each fold by the statistics of its training samples, as a
        :class:`~sklearn.pipeline.Pipeline` would be. Off by default for the
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
        The split used to choose it: ``cv_.split(X, y)`` gives its folds
        again. Its seed is ``random_state``, or an int drawn from it when
        ``random_state`` is None or a RandomState instance.
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
        X, y = self._fit_checked(X, y)
        Z = self._scaled(X)
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
        seed = self.random_state
        if not isinstance(seed, Integral):
            # A RandomState (or None: numpy's global one) would be drawn from
            # anew at each split(): fix one seed so that cv_ gives the folds
            # used here again.
            seed = seed_from_random_state(seed)
        self.cv_ = RepeatedStratifiedKFold(
            n_splits=n_splits, n_repeats=n_repeats, random_state=seed
        )
        folds = list(self.cv_.split(Z, y))
        if self.scaler_ is None:
            Cs_, scores = self._cv_scores(Cs, Z, y, folds)
        else:
            # Each fold scaled by the statistics of its own training rows,
            # as a Pipeline in a cross-validation would: scaling by all the
            # labels would let a fold's held-out rows shape its features.
            per_fold = []
            for train, test in folds:
                Z_fold = StandardScaler().fit(X[train]).transform(X)
                Cs_, fold_scores = self._cv_scores(Cs, Z_fold, y, [(train, test)])
                per_fold.append(fold_scores)
            scores = np.concatenate(per_fold)
        # The C of the best mean score over the folds (the first, i.e. the
        # strongest regularisation, of equals); with refit=False,
        # LogisticRegressionCV's own C_ is the mean of each fold's best C.
        mean_scores = scores.mean(axis=0).ravel()  # (n_Cs,)
        self.C_ = float(Cs_[int(np.argmax(mean_scores))])
        self.estimator_ = LogisticRegression(C=self.C_, max_iter=self.max_iter)
        self.estimator_.fit(Z, y)
        self.n_iter_ = int(np.max(self.estimator_.n_iter_))
        return self

    def _cv_scores(self, Cs, Z, y, folds) -> tuple[np.ndarray, np.ndarray]:
        """The values of ``C`` and their log-loss scores, one row a fold."""
        search = LogisticRegressionCV(
            Cs=Cs,
            l1_ratios=(0.0,),
            cv=folds,
            scoring="neg_log_loss",
            max_iter=self.max_iter,
            refit=False,
            use_legacy_attributes=False,
        ).fit(Z, y)
        return search.Cs_, search.scores_

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
