"""Few-label evaluation: draws, kNN and cross-validated linear probes, scorer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import log_loss
from sklearn.model_selection import (
    GridSearchCV,
    RepeatedStratifiedKFold,
    StratifiedKFold,
    cross_val_score,
    cross_validate,
    train_test_split,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

from sk_replearn import PCATransformer
from sk_replearn.__main__ import _probes
from sk_replearn.evaluation import (
    KNNProbe,
    LinearProbeCV,
    ProbeScorer,
    few_label_indices,
    few_label_scores,
    linear_probe,
)

X_DIGITS, Y_DIGITS = load_digits(return_X_y=True)
X_TRAIN, Y_TRAIN = X_DIGITS[:1000], Y_DIGITS[:1000]
X_TEST, Y_TEST = X_DIGITS[1000:], Y_DIGITS[1000:]
LABELS_PER_CLASS = [1, 2, 5]


def _lr():
    return LogisticRegression(max_iter=5000)


# -- few_label_indices -----------------------------------------------------------
@pytest.mark.parametrize("n_per_class", LABELS_PER_CLASS)
def test_few_label_indices_draws_n_of_every_class(n_per_class):
    idx = few_label_indices(Y_TRAIN, n_per_class, random_state=0)
    assert np.array_equal(idx, np.sort(idx))
    assert len(np.unique(idx)) == len(idx) == 10 * n_per_class
    np.testing.assert_array_equal(
        np.bincount(Y_TRAIN[idx], minlength=10), np.full(10, n_per_class)
    )


def test_few_label_indices_seeded_like_numpy_choice():
    y = np.array([2, 0, 2, 1, 0, 2, 1, 0, 1, 2])
    rng = np.random.RandomState(7)
    expected = np.sort(
        np.concatenate(
            [rng.choice(np.flatnonzero(y == c), 2, replace=False) for c in (0, 1, 2)]
        )
    )
    np.testing.assert_array_equal(few_label_indices(y, 2, random_state=7), expected)
    np.testing.assert_array_equal(
        few_label_indices(y, 2, random_state=7), few_label_indices(y, 2, random_state=7)
    )
    draws = {tuple(few_label_indices(Y_TRAIN, 2, random_state=s)) for s in range(5)}
    assert len(draws) == 5


def test_few_label_indices_errors_name_the_parameter():
    for bad in (0, True):  # True passed as 1, then numpy's own TypeError
        with pytest.raises(InvalidParameterError, match="n_per_class"):
            few_label_indices(Y_TRAIN, bad)
    with pytest.raises(ValueError, match="n_per_class=3 but class 1 has only 2"):
        few_label_indices([0, 0, 0, 1, 1], 3)


# -- few_label_scores ------------------------------------------------------------
def test_few_label_scores_equal_a_loop_over_the_draws():
    result = few_label_scores(
        _lr(), X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, n_per_class=2, n_draws=3
    )
    rng = check_random_state(0)
    expected = []
    for _ in range(3):
        idx = few_label_indices(Y_TRAIN, 2, random_state=rng)
        expected.append(_lr().fit(X_TRAIN[idx], Y_TRAIN[idx]).score(X_TEST, Y_TEST))
    np.testing.assert_array_equal(result.scores, expected)
    assert result.mean == pytest.approx(np.mean(expected))
    assert result.std == pytest.approx(np.std(expected))
    assert result.n_per_class == 2
    assert str(result) == f"{np.mean(expected):.3f} ± {np.std(expected):.3f}"
    # deterministic, and more labels help a logistic regression on digits
    again = few_label_scores(
        _lr(), X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, n_per_class=2, n_draws=3
    )
    np.testing.assert_array_equal(result.scores, again.scores)
    more = few_label_scores(
        _lr(), X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, n_per_class=20, n_draws=3
    )
    assert more.mean > result.mean + 0.1


def test_few_label_scores_pick_dataframe_rows_by_position():
    # X_train[idx] on a DataFrame looked the indices up as columns (KeyError).
    pd = pytest.importorskip("pandas")
    columns = [f"p{i}" for i in range(64)]
    frame = pd.DataFrame(X_TRAIN, columns=columns)
    frame.index = frame.index[::-1]  # an index that is not the positions
    test = pd.DataFrame(X_TEST, columns=columns)
    result = few_label_scores(
        _lr(), frame, Y_TRAIN, test, Y_TEST, n_per_class=2, n_draws=2
    )
    arrays = few_label_scores(
        _lr(), X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, n_per_class=2, n_draws=2
    )
    np.testing.assert_array_equal(result.scores, arrays.scores)


def _sequence_features(sequences) -> np.ndarray:
    """Length and mean token id of each sequence, whatever its length."""
    return np.array([[len(s), np.mean(s)] for s in sequences])


def test_few_label_scores_take_ragged_lists_of_token_id_sequences():
    # The sequence estimators take token-id sequences of different lengths;
    # stacking them into one numpy array raised "inhomogeneous shape".
    rng = np.random.default_rng(0)
    y = np.arange(40) % 2
    seqs = [list(rng.integers(3 * c, 3 * c + 5, size=rng.integers(2, 6))) for c in y]
    seen = []

    def features(sequences):
        seen.append(sequences)
        return _sequence_features(sequences)

    model = make_pipeline(FunctionTransformer(features), _lr())
    result = few_label_scores(
        model, seqs[:30], y[:30], seqs[30:], y[30:], n_per_class=3, n_draws=2
    )
    rng = check_random_state(0)
    expected = []
    for _ in range(2):
        idx = few_label_indices(y[:30], 3, random_state=rng)
        fitted = make_pipeline(FunctionTransformer(_sequence_features), _lr())
        fitted.fit([seqs[i] for i in idx], y[idx])
        expected.append(fitted.score(seqs[30:], y[30:]))
    np.testing.assert_array_equal(result.scores, expected)
    # every draw's training rows reach the model as the sequences given
    assert isinstance(seen[0], list) and len(seen[0]) == 6
    assert all(any(s is seq for seq in seqs) for s in seen[0])


def test_few_label_scores_keep_a_frozen_representation_fitted():
    pca = PCATransformer(n_components=16, random_state=0).fit(X_TRAIN)
    model = Pipeline([("rep", FrozenEstimator(pca)), ("clf", _lr())])
    result = few_label_scores(
        model, X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, n_per_class=5, n_draws=2
    )
    Z_train, Z_test = pca.transform(X_TRAIN), pca.transform(X_TEST)
    direct = few_label_scores(
        _lr(), Z_train, Y_TRAIN, Z_test, Y_TEST, n_per_class=5, n_draws=2
    )
    np.testing.assert_allclose(result.scores, direct.scores)


def test_few_label_scores_errors_name_the_parameter():
    with pytest.raises(InvalidParameterError, match="n_draws"):
        few_label_scores(
            _lr(), X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, n_per_class=2, n_draws=0
        )
    with pytest.raises(InvalidParameterError, match="model"):
        few_label_scores("lr", X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, n_per_class=2)
    with pytest.raises(ValueError, match="n_per_class=500"):
        few_label_scores(_lr(), X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, n_per_class=500)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        few_label_scores(_lr(), X_TRAIN[:50], Y_TRAIN, X_TEST, Y_TEST, n_per_class=2)


# -- KNNProbe ---------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("standardize", [False, True])
def test_knn_probe_equals_scikit_learn_neighbours(metric, standardize):
    idx = few_label_indices(Y_TRAIN, 5, random_state=0)
    probe = KNNProbe(n_neighbors=3, metric=metric, standardize=standardize)
    probe.fit(X_TRAIN[idx], Y_TRAIN[idx])
    knn = KNeighborsClassifier(n_neighbors=3, metric=metric, weights="distance")
    reference = make_pipeline(StandardScaler(), knn) if standardize else knn
    reference.fit(X_TRAIN[idx], Y_TRAIN[idx])
    np.testing.assert_array_equal(probe.predict(X_TEST), reference.predict(X_TEST))
    np.testing.assert_allclose(
        probe.predict_proba(X_TEST), reference.predict_proba(X_TEST)
    )
    assert (probe.scaler_ is not None) == standardize


@pytest.mark.parametrize(
    "n_per_class, k", [(1, 1), (2, 1), (5, 2), (10, 3), (50, 7), (90, 9)]
)
def test_knn_probe_auto_neighbours_grow_as_the_root_of_the_smallest_class(
    n_per_class, k
):
    idx = few_label_indices(Y_TRAIN, n_per_class, random_state=0)
    probe = KNNProbe().fit(X_TRAIN[idx], Y_TRAIN[idx])
    assert probe.n_neighbors_ == k == max(1, round(math.sqrt(n_per_class)))


def test_knn_probe_auto_neighbours_stop_at_20():
    rng = np.random.RandomState(0)
    X, y = rng.randn(1000, 3), np.repeat([0, 1], 500)
    assert KNNProbe().fit(X, y).n_neighbors_ == 20
    # the smallest class decides
    assert KNNProbe().fit(X[:509], y[:509]).n_neighbors_ == 3


def test_knn_probe_errors_name_the_parameter():
    with pytest.raises(ValueError, match="n_neighbors=30 but there are only 20"):
        idx = few_label_indices(Y_TRAIN, 2, random_state=0)
        KNNProbe(n_neighbors=30).fit(X_TRAIN[idx], Y_TRAIN[idx])
    with pytest.raises(InvalidParameterError, match="'metric' parameter"):
        KNNProbe(metric="manhattan").fit(X_TRAIN, Y_TRAIN)
    with pytest.raises(ValueError, match="y has 1 class"):
        KNNProbe().fit(X_TRAIN[:5], np.zeros(5))


# -- LinearProbeCV ----------------------------------------------------------------
def _hand_chosen_C(X, y, Cs, splits, standardize=False) -> float:
    """The C of the best mean log-loss over the folds, each fit on its own."""
    losses = []
    for C in Cs:
        fold = []
        for train, test in splits:
            lr = LogisticRegression(C=C, max_iter=1000)
            if standardize:
                lr = make_pipeline(StandardScaler(), lr)
            lr.fit(X[train], y[train])
            fold.append(
                log_loss(y[test], lr.predict_proba(X[test]), labels=lr.classes_)
            )
        losses.append(np.mean(fold))
    return Cs[int(np.argmin(losses))]


@pytest.mark.parametrize("n_per_class, n_splits, n_repeats", [(2, 2, 5), (5, 5, 2)])
def test_linear_probe_cv_chooses_C_as_cross_validation_by_hand(
    n_per_class, n_splits, n_repeats
):
    idx = few_label_indices(Y_TRAIN, n_per_class, random_state=1)
    X, y = X_TRAIN[idx] / 16, Y_TRAIN[idx]
    Cs = [1e-3, 1e-2, 1e-1, 1.0, 10.0]
    probe = LinearProbeCV(Cs=Cs, random_state=3).fit(X, y)
    cv = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=3)
    assert probe.cv_.get_n_splits() == n_splits * n_repeats
    splits = list(cv.split(X, y))
    for (a_train, a_test), (b_train, b_test) in zip(probe.cv_.split(X, y), splits):
        np.testing.assert_array_equal(a_train, b_train)
        np.testing.assert_array_equal(a_test, b_test)
    assert probe.C_ == _hand_chosen_C(X, y, Cs, splits)
    # refitted on every label at that C: scikit-learn's own regression
    reference = LogisticRegression(C=probe.C_, max_iter=1000).fit(X, y)
    np.testing.assert_array_equal(
        probe.predict_proba(X_TEST / 16), reference.predict_proba(X_TEST / 16)
    )
    np.testing.assert_array_equal(
        probe.predict(X_TEST / 16), reference.predict(X_TEST / 16)
    )


@pytest.mark.parametrize("random_state", [None, "instance"])
def test_linear_probe_cv_folds_are_the_ones_used_whatever_the_random_state(
    random_state,
):
    # cv_ is "the split used to choose C": with None or a RandomState it
    # must still give those folds, each time it is asked.
    idx = few_label_indices(Y_TRAIN, 3, random_state=2)
    X, y = X_TRAIN[idx] / 16, Y_TRAIN[idx]
    Cs = [1e-3, 1e-2, 1e-1, 1.0, 10.0]
    if random_state == "instance":
        random_state = check_random_state(5)
    probe = LinearProbeCV(Cs=Cs, random_state=random_state).fit(X, y)
    splits = list(probe.cv_.split(X, y))
    for (a_train, a_test), (b_train, b_test) in zip(probe.cv_.split(X, y), splits):
        np.testing.assert_array_equal(a_train, b_train)
        np.testing.assert_array_equal(a_test, b_test)
    assert probe.C_ == _hand_chosen_C(X, y, Cs, splits)


@pytest.mark.parametrize("n_per_class, draw", [(2, 1), (5, 4)])
def test_linear_probe_cv_standardizes_each_fold_by_its_training_rows(n_per_class, draw):
    # standardize=True is a Pipeline of StandardScaler and the regression
    # inside the cross-validation (no statistics of a fold's held-out rows
    # in its features), then refitted on every label. On these draws,
    # scaling by every label before the folds chooses another C.
    idx = few_label_indices(Y_TRAIN, n_per_class, random_state=draw)
    X, y = X_TRAIN[idx], Y_TRAIN[idx]
    Cs = [1e-3, 1e-2, 1e-1, 1.0, 10.0]
    probe = LinearProbeCV(Cs=Cs, standardize=True, random_state=0).fit(X, y)
    splits = list(probe.cv_.split(X, y))
    assert probe.C_ == _hand_chosen_C(X, y, Cs, splits, standardize=True)
    refit = make_pipeline(
        StandardScaler(), LogisticRegression(C=probe.C_, max_iter=1000)
    ).fit(X, y)
    np.testing.assert_allclose(
        probe.predict_proba(X_TEST), refit.predict_proba(X_TEST), atol=1e-12
    )


def test_linear_probe_cv_errors_name_the_parameter():
    idx = few_label_indices(Y_TRAIN, 1, random_state=0)
    with pytest.raises(ValueError, match="at least 2 labels of every class"):
        LinearProbeCV().fit(X_TRAIN[idx], Y_TRAIN[idx])
    with pytest.raises(InvalidParameterError, match="'n_splits' parameter"):
        LinearProbeCV(n_splits=1).fit(X_TRAIN, Y_TRAIN)
    with pytest.raises(InvalidParameterError, match="'n_repeats' parameter"):
        LinearProbeCV(n_repeats="many").fit(X_TRAIN, Y_TRAIN)
    # a C <= 0 had fitted C_=-1 silently, or divided by zero in scikit-learn
    for Cs in ([-1.0], [0.0, 1.0], [], [np.inf]):
        with pytest.raises(InvalidParameterError, match="'Cs' parameter"):
            LinearProbeCV(Cs=Cs).fit(X_TRAIN, Y_TRAIN)


@parametrize_with_checks([KNNProbe(), LinearProbeCV(n_splits=2, n_repeats=1)])
def test_probes_pass_the_scikit_learn_checks(estimator, check):
    check(estimator)


# -- ProbeScorer ------------------------------------------------------------------
def test_probe_scorer_few_labels_equals_draws_within_the_scored_data():
    pca = PCATransformer(n_components=16, random_state=0).fit(X_TRAIN)
    scorer = ProbeScorer("linear", n_per_class=2, n_draws=3, random_state=4)
    Z = pca.transform(X_TEST)
    rng = check_random_state(4)
    expected = []
    for _ in range(3):
        labelled = few_label_indices(Y_TEST, 2, random_state=rng)
        rest = np.setdiff1d(np.arange(len(Y_TEST)), labelled)
        probe = LinearProbeCV().fit(Z[labelled], Y_TEST[labelled])
        expected.append(probe.score(Z[rest], Y_TEST[rest]))
    assert scorer(pca, X_TEST, Y_TEST) == pytest.approx(np.mean(expected))


def test_probe_scorer_all_labels_equals_stratified_cross_validation():
    pca = PCATransformer(n_components=16, random_state=0).fit(X_TRAIN)
    Z = pca.transform(X_TEST)
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    expected = cross_val_score(KNNProbe(), Z, Y_TEST, cv=cv).mean()
    assert ProbeScorer("knn")(pca, X_TEST, Y_TEST) == pytest.approx(expected)
    # any classifier as the probe, and a pipeline ending in a classifier
    lr = ProbeScorer(_lr())(pca, X_TEST, Y_TEST)
    expected_lr = cross_val_score(_lr(), Z, Y_TEST, cv=cv).mean()
    assert lr == pytest.approx(expected_lr)
    pipe = Pipeline([("rep", FrozenEstimator(pca)), ("clf", _lr())]).fit(
        X_TRAIN, Y_TRAIN
    )
    assert ProbeScorer(_lr())(pipe, X_TEST, Y_TEST) == pytest.approx(expected_lr)


def test_probe_scorer_judges_the_steps_before_a_classifier_with_transform():
    # A pipeline ending in a classifier is represented by its other steps,
    # even when that classifier transforms too: LDA's projection was learned
    # from the labels, and has 9 columns where the PCA has 16.
    X, y = X_TRAIN[:500], Y_TRAIN[:500]
    pipe = make_pipeline(
        PCATransformer(n_components=16, random_state=0), LinearDiscriminantAnalysis()
    ).fit(X, y)
    seen = []
    probe = make_pipeline(
        FunctionTransformer(lambda Z: seen.append(Z.shape[1]) or Z), _lr()
    )
    expected = ProbeScorer(probe)(pipe[0], X_TEST, Y_TEST)
    assert seen and set(seen) == {16}
    assert ProbeScorer(probe)(pipe, X_TEST, Y_TEST) == pytest.approx(expected)
    assert set(seen) == {16}


def test_probe_scorer_selects_a_representation_in_grid_search():
    scorer = ProbeScorer("knn", n_per_class=2)
    search = GridSearchCV(
        PCATransformer(random_state=0),
        {"n_components": [1, 2, 32]},
        scoring=scorer,
        cv=2,
    ).fit(X_DIGITS, Y_DIGITS)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"n_components": 32}
    assert scores[0] < scores[1] < scores[2]
    both = cross_validate(
        PCATransformer(n_components=16, random_state=0),
        X_DIGITS,
        Y_DIGITS,
        cv=2,
        scoring={"knn": scorer, "linear": ProbeScorer("linear", n_per_class=2)},
    )
    assert set(both) >= {"test_knn", "test_linear"}
    assert (both["test_knn"] > 0.5).all() and (both["test_linear"] > 0.5).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"probe": "svm"}, "probe='svm'"),
        ({"n_per_class": 0}, "n_per_class=0"),
        ({"n_per_class": 2.0}, "n_per_class=2.0"),
        ({"n_draws": 0}, "n_draws=0"),
        ({"cv": 1}, "cv=1"),
        ({"n_draws": None}, "n_draws=None"),
        ({"cv": None}, "cv=None"),
        ({"random_state": np.random.RandomState(0)}, "random_state="),
    ],
)
def test_probe_scorer_errors_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ProbeScorer(**kwargs)


def test_probe_scorer_refuses_what_it_cannot_score():
    with pytest.raises(TypeError, match="has no transform"):
        ProbeScorer()(_lr().fit(X_TRAIN, Y_TRAIN), X_TEST, Y_TEST)
    pca = PCATransformer(n_components=4, random_state=0).fit(X_TRAIN)
    with pytest.raises(ValueError, match="n_per_class=2 leaves nothing"):
        ProbeScorer(n_per_class=2)(pca, X_TEST[:30], np.repeat(np.arange(15), 2))


def test_linear_probe_takes_a_frozen_pretrained_representation():
    # FrozenEstimator has no fit_transform; linear_probe raised
    # AttributeError instead of probing the pre-trained representation.
    pca = PCATransformer(n_components=8, random_state=0).fit(X_TRAIN[:200])
    fitted = {k: np.copy(v) for k, v in vars(pca).items() if k.endswith("_")}
    result = linear_probe(
        FrozenEstimator(pca), X_TRAIN[200:], Y_TRAIN[200:], X_TEST, Y_TEST
    )
    for name, value in fitted.items():  # not refitted on X_TRAIN[200:]
        np.testing.assert_array_equal(getattr(pca, name), value, err_msg=name)
    expected = linear_probe(
        None, pca.transform(X_TRAIN[200:]), Y_TRAIN[200:], pca.transform(X_TEST), Y_TEST
    )
    assert result.accuracy == expected.accuracy
    refitted = linear_probe(
        PCATransformer(n_components=8, random_state=0),
        X_TRAIN[200:],
        Y_TRAIN[200:],
        X_TEST,
        Y_TEST,
    )
    assert refitted.accuracy != result.accuracy  # fitting again would differ


@pytest.mark.parametrize("standardize", [True, False])
def test_linear_probe_is_logistic_regression_with_or_without_scaling(standardize):
    # The protocol by hand: scaled (the default) or on the features as they are.
    pca = PCATransformer(n_components=8, random_state=0)
    result = linear_probe(
        pca, X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, standardize=standardize
    )
    fitted = PCATransformer(n_components=8, random_state=0).fit(X_TRAIN)
    Z_train, Z_test = fitted.transform(X_TRAIN), fitted.transform(X_TEST)
    if standardize:
        scaler = StandardScaler().fit(Z_train)
        Z_train, Z_test = scaler.transform(Z_train), scaler.transform(Z_test)
    expected = _lr().fit(Z_train, Y_TRAIN).score(Z_test, Y_TEST)
    assert result.accuracy == expected
    if standardize:  # the default
        assert linear_probe(pca, X_TRAIN, Y_TRAIN, X_TEST, Y_TEST).accuracy == expected


def test_linear_probe_refuses_a_standardize_that_is_not_a_bool():
    with pytest.raises(TypeError, match="standardize='yes' must be True or False"):
        linear_probe(None, X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, standardize="yes")


# -- the main job's few-label column ------------------------------------------------
def test_main_job_columns_are_the_all_label_probe_and_few_label_scores():
    pca = PCATransformer(n_components=16, random_state=0)
    fit_time, everything, few = _probes(pca, X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, None)
    assert fit_time > 0
    assert everything == linear_probe(pca, X_TRAIN, Y_TRAIN, X_TEST, Y_TEST).accuracy
    fitted = PCATransformer(n_components=16, random_state=0).fit(X_TRAIN)
    expected = few_label_scores(
        LogisticRegression(max_iter=5000),
        fitted.transform(X_TRAIN),
        Y_TRAIN,
        fitted.transform(X_TEST),
        Y_TEST,
        n_per_class=2,
        n_draws=5,
        random_state=0,
    )
    assert few == pytest.approx(expected.mean)
    raw = _probes(None, X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, None)
    assert raw[0] == 0.0
    assert raw[2] == pytest.approx(
        few_label_scores(
            LogisticRegression(max_iter=5000),
            X_TRAIN,
            Y_TRAIN,
            X_TEST,
            Y_TEST,
            n_per_class=2,
            n_draws=5,
        ).mean
    )


# a test sample whose neighbours carry no label yet divides 0 by 0 in
# scikit-learn's label spreading (and is then predicted as the first class)
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_unlabelled_samples_reach_a_frozen_representation_semi_supervised():
    # The semi-supervised learners of scikit-learn take a frozen
    # representation in a pipeline: the unlabelled samples (label -1) shape
    # the label spreading, which then beats a classifier on the labels alone.
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    rep = FrozenEstimator(PCATransformer(n_components=16).fit(X_tr))
    labelled = few_label_indices(y_tr, 2, random_state=0)
    partial = np.full_like(y_tr, -1)
    partial[labelled] = y_tr[labelled]
    spreading = Pipeline(
        [("rep", rep), ("spread", LabelSpreading(kernel="knn", n_neighbors=7))]
    ).fit(X_tr, partial)
    self_training = Pipeline(
        [("rep", rep), ("clf", SelfTrainingClassifier(LogisticRegression()))]
    ).fit(X_tr, partial)
    supervised = Pipeline([("rep", rep), ("clf", LogisticRegression())])
    supervised.fit(X_tr[labelled], y_tr[labelled])
    assert spreading.score(X_te, y_te) > supervised.score(X_te, y_te) + 0.05
    assert self_training.named_steps["clf"].labeled_iter_.max() > 0  # it self-labelled
    assert self_training.score(X_te, y_te) > supervised.score(X_te, y_te)


def test_few_label_indices_refuses_nan_labels():
    with pytest.raises(ValueError, match="NaN or infinite labels"):
        few_label_indices([0.0, np.nan, 1.0, 1.0], 1)
    # an infinite label is no class either (it would be drawn as one)
    with pytest.raises(ValueError, match="NaN or infinite labels"):
        few_label_indices([0.0, np.inf, 1.0, 1.0], 1)
    # missing strings: pandas' NA had raised "boolean value of NA is ambiguous"
    pd = pytest.importorskip("pandas")
    for labels in (
        pd.Series(["a", pd.NA, "a", "b"], dtype="string"),
        np.array(["a", None, "a", "b"], dtype=object),
    ):
        with pytest.raises(ValueError, match="missing ones"):
            few_label_indices(labels, 1)


def test_few_label_indices_refuses_empty_and_mixed_labels():
    # numpy's errors before: "need at least one array to concatenate" and
    # "'<' not supported between instances of 'str' and 'int'"
    with pytest.raises(ValueError, match="y is empty"):
        few_label_indices([], 1)
    with pytest.raises(ValueError, match=r"mixes label types.*astype\(str\)"):
        few_label_indices(np.array([1, "a", 1, "a"], dtype=object), 1)


def test_probe_scorer_and_linear_probe_check_the_labels_first():
    pca = PCATransformer(n_components=4, random_state=0).fit(X_TRAIN)
    missing = np.array([None, *Y_TEST[1:].astype(str)], dtype=object)
    # The all-label path sorted them (a TypeError); the few-label path blamed
    # n_per_class for class nan.
    for scorer in (ProbeScorer(), ProbeScorer(n_per_class=2)):
        with pytest.raises(ValueError, match="missing ones"):
            scorer(pca, X_TEST, missing)
        with pytest.raises(ValueError, match="missing ones"):
            scorer(pca, X_TEST, np.r_[np.nan, Y_TEST[1:]])
    with pytest.raises(ValueError, match="y_train holds NaN or infinite labels, or"):
        linear_probe(None, X_TRAIN[:100], missing[:100], X_TEST, Y_TEST)


def test_probe_scorer_refuses_a_class_of_one_sample():
    # The all-label linear probe's cross-validation returned NaN (a fold
    # without the class failed, with a FitFailedWarning).
    pca = PCATransformer(n_components=4, random_state=0).fit(X_TRAIN)
    y = Y_TEST.copy()
    y[0] = 10
    for scorer in (ProbeScorer(), ProbeScorer("knn"), ProbeScorer(n_per_class=1)):
        with pytest.raises(ValueError, match="class 10 has 1 sample in the scored"):
            scorer(pca, X_TEST, y)


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_the_command_line_refuses_a_job_count_joblib_cannot_run(value, capsys):
    # --n-jobs 0 reached joblib, whose traceback said "n_jobs == 0 has no meaning"
    from sk_replearn.__main__ import main

    with pytest.raises(SystemExit):
        main(["--n-jobs", value])
    assert "argument --n-jobs" in capsys.readouterr().err


def test_the_command_line_help_is_plain_text(capsys):
    # It had printed the module docstring's reST (``...``, **...**, :func:)
    # with argparse's reflow running the list into one paragraph.
    from sk_replearn.__main__ import main

    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "``" not in text and "**" not in text and ":func:" not in text
    assert "\n* all labels:" in text and "linear_probe" in text


def test_the_command_line_runs_digits_by_default_two_estimators_at_a_time(
    monkeypatch,
):
    # python -m sk_replearn: the digits table, random_state 0, 2 fits at a
    # time; --n-jobs -1 (every core, as joblib's) is a valid count.
    from sk_replearn import __main__ as job

    calls = []
    monkeypatch.setattr(job, "digits", lambda *args: calls.append(("digits", *args)))
    monkeypatch.setattr(
        job, "sequences", lambda *args: calls.append(("sequences", *args))
    )
    assert job.main([]) == 0
    assert job.main(["--n-jobs", "-1"]) == 0
    assert job.main(["sequences", "--random-state", "3", "--n-jobs", "1"]) == 0
    assert calls == [("digits", 0, 2), ("digits", 0, -1), ("sequences", 3, 1)]


def test_main_job_table_lists_every_image_method_once_by_family():
    # Raw pixels, K-means, PCA and the autoencoder, then every self-supervised
    # method that takes images (not GPT and BERT: strings), family by family.
    from sk_replearn import methods
    from sk_replearn.__main__ import estimators

    ests = estimators(random_state=3)
    names = list(ests)
    assert names[:4] == [
        "raw pixels",
        "KMeansTransformer(k=64)",
        "PCATransformer(32)",
        "AutoencoderTransformer(32)",
    ]
    not_ssl_images = {"AutoencoderTransformer", "BERTTransformer", "GPTTransformer"}
    image_methods = {n for n in methods.__all__ if n.endswith("Transformer")}
    assert sorted(names[4:]) == sorted(image_methods - not_ssl_images)
    families = ["contrastive", "noncontrastive", "redundancy", "dino", "clustering"]
    families += ["cmc", "masked", "context"]
    order = [families.index(type(ests[n]).__module__.split(".")[-1]) for n in names[4:]]
    assert order == sorted(order)
    assert all(est.random_state == 3 for est in list(ests.values())[1:])
    assert all(ests[n].input_shape == (1, 8, 8) for n in names[3:])


def test_main_job_digits_table_gives_each_row_its_own_scores(monkeypatch, capsys):
    # The fits start from the end of the table and the rows are printed in
    # its order: each row must still show its own representation's scores.
    import torch

    from sk_replearn import __main__ as job

    monkeypatch.setattr(
        job,
        "estimators",
        lambda random_state: {
            "raw pixels": None,
            "PCATransformer(2)": PCATransformer(2, random_state=random_state),
        },
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert job.main(["--n-jobs", "1"]) == 0
        # one fit at a time runs in this process, its threads left as they were
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "1347 training / 450 held-out" in out  # a quarter of digits held out
    rows = {
        line[:34].strip(): [float(v) for v in line[34:].split()]
        for line in out.splitlines()
        if line.startswith(("raw pixels", "PCATransformer(2)"))
    }
    assert rows["raw pixels"][0] == 0.0  # nothing to fit
    assert rows["raw pixels"][1] > 0.9
    assert rows["PCATransformer(2)"][1] < 0.8  # 2 components lose most digits


# -- what a scikit-learn user passes besides arrays and labels ---------------------
@pytest.mark.parametrize("standardize", [False, True])
def test_linear_probe_takes_sparse_features(standardize):
    # np.asarray made a 0-d object array of a sparse matrix: "setting an
    # array element with a sequence", even where LogisticRegression takes it.
    sparse = pytest.importorskip("scipy.sparse")
    Xs_train, Xs_test = sparse.csr_matrix(X_TRAIN), sparse.csr_matrix(X_TEST)
    result = linear_probe(
        None, Xs_train, Y_TRAIN, Xs_test, Y_TEST, standardize=standardize
    )
    scaler = StandardScaler(with_mean=False) if standardize else "passthrough"
    by_hand = make_pipeline(scaler, _lr()).fit(X_TRAIN, Y_TRAIN)
    assert result.accuracy == pytest.approx(by_hand.score(X_TEST, Y_TEST), abs=0.01)


def test_a_bag_of_words_representation_is_probed_and_scored():
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = ["apple banana", "car bus", "banana cherry", "truck train"] * 25
    labels = np.array([0, 1, 0, 1] * 25)
    result = linear_probe(
        TfidfVectorizer(), texts[:60], labels[:60], texts[60:], labels[60:]
    )
    assert result.accuracy == 1.0
    scorer = ProbeScorer(_lr())
    assert scorer(TfidfVectorizer().fit(texts), texts, labels) == 1.0
    for probe in ("knn", "linear"):  # the built-in probes take dense features
        with pytest.raises(ValueError, match="gives sparse features.*LogisticRegr"):
            ProbeScorer(probe)(TfidfVectorizer().fit(texts), texts, labels)


def test_probe_scorer_knows_what_the_linear_probe_needs():
    # A class of 2 in the scored fold left LinearProbeCV one label of it in
    # each training part: every fit failed inside cross_val_score; and
    # n_per_class=1 was accepted, then failed at every call.
    with pytest.raises(ValueError, match="n_per_class=1 leaves LinearProbeCV"):
        ProbeScorer("linear", n_per_class=1)
    with pytest.raises(ValueError, match="n_per_class=1 leaves LinearProbeCV"):
        ProbeScorer(LinearProbeCV(), n_per_class=1)
    ProbeScorer("knn", n_per_class=1)  # kNN needs no more than one
    pca = PCATransformer(n_components=4, random_state=0).fit(X_TRAIN)
    keep = np.r_[np.flatnonzero(Y_TEST != 9)[:200], np.flatnonzero(Y_TEST == 9)[:2]]
    with pytest.raises(ValueError, match="class 9 has 2 samples.*LinearProbeCV"):
        ProbeScorer("linear")(pca, X_TEST[keep], Y_TEST[keep])
    assert 0 < ProbeScorer("knn")(pca, X_TEST[keep], Y_TEST[keep]) <= 1


def test_probe_scorer_without_labels_says_it_needs_them():
    pca = PCATransformer(n_components=4, random_state=0).fit(X_TRAIN)
    with pytest.raises(ValueError, match="needs y, the labels of X"):
        ProbeScorer()(pca, X_TEST, None)


@pytest.mark.parametrize(
    "probe", [PCATransformer(n_components=2), LogisticRegression, ["knn"]]
)
def test_probe_scorer_takes_a_classifier_instance_only(probe):
    # A PCA's log-likelihood came back as "accuracy"; a class failed at call
    # time; a list raised "unhashable type".
    with pytest.raises(ValueError, match="must be 'knn', 'linear' or a classifier"):
        ProbeScorer(probe)


def test_few_label_scores_takes_a_classifier_only():
    with pytest.raises(ValueError, match="model=PCATransformer is not a classifier"):
        few_label_scores(
            PCATransformer(n_components=5),
            X_TRAIN,
            Y_TRAIN,
            X_TEST,
            Y_TEST,
            n_per_class=2,
        )
    with pytest.raises(InvalidParameterError, match="'n_draws' parameter.*not a bool"):
        few_label_scores(
            _lr(), X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, n_per_class=2, n_draws=True
        )


@pytest.mark.parametrize("Cs", [[[0.1, 1.0]], True, "many"])
def test_linear_probe_cv_refuses_a_grid_that_is_not_one_list_of_values(Cs):
    # [[0.1, 1.0]] passed the check and failed inside LogisticRegressionCV;
    # True tried the one value 1e-4.
    with pytest.raises(InvalidParameterError, match="'Cs' parameter"):
        LinearProbeCV(Cs=Cs).fit(X_TRAIN[:100], Y_TRAIN[:100])


def test_linear_probe_cv_has_the_logistic_regressions_scores():
    idx = few_label_indices(Y_TRAIN, 3, random_state=0)
    for standardize in (False, True):
        probe = LinearProbeCV(standardize=standardize).fit(X_TRAIN[idx], Y_TRAIN[idx])
        scores = probe.decision_function(X_TEST)
        assert scores.shape == (len(X_TEST), 10)
        np.testing.assert_array_equal(
            probe.classes_[scores.argmax(axis=1)], probe.predict(X_TEST)
        )
        np.testing.assert_allclose(
            np.exp(probe.predict_log_proba(X_TEST)), probe.predict_proba(X_TEST)
        )
    binary = Y_TRAIN < 5
    probe = LinearProbeCV().fit(X_TRAIN[idx], binary[idx])
    assert probe.decision_function(X_TEST).shape == (len(X_TEST),)


def test_few_label_results_of_the_same_draws_are_equal():
    # The dataclass's == compared the score arrays and raised ValueError.
    first, again = (
        few_label_scores(_lr(), X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, n_per_class=2)
        for _ in range(2)
    )
    assert first == again
    other = few_label_scores(
        _lr(), X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, n_per_class=2, random_state=1
    )
    assert first != other and first != "0.5"


def test_knn_probe_auto_rounds_the_square_root_of_the_smallest_class():
    # 3 labels a class: round(sqrt(3)) = 2 neighbours (a floor gives 1).
    X, y = load_digits(return_X_y=True)
    idx = few_label_indices(y, 3, random_state=0)
    assert KNNProbe().fit(X[idx], y[idx]).n_neighbors_ == 2


def test_knn_probe_takes_as_many_neighbours_as_labelled_samples():
    X = np.array([[0.0, 1.0], [0.1, 1.0], [1.0, 0.0], [1.0, 0.1]])
    y = np.array([0, 0, 1, 1])
    probe = KNNProbe(n_neighbors=4).fit(X, y)
    assert probe.n_neighbors_ == 4
    with pytest.raises(ValueError, match="n_neighbors"):
        KNNProbe(n_neighbors=5).fit(X, y)


def test_linear_probe_auto_repeats_reach_ten_fits_with_three_folds():
    X, y = load_digits(return_X_y=True)
    idx = few_label_indices(y, 3, random_state=0)
    probe = LinearProbeCV(Cs=2).fit(X[idx], y[idx])
    assert probe.cv_.get_n_splits() == 12  # 4 repeats of 3 folds


def test_few_label_indices_takes_a_class_of_exactly_n():
    idx = few_label_indices([0, 0, 1, 1, 1], 2, random_state=0)
    assert idx[:2].tolist() == [0, 1] and len(idx) == 4
    with pytest.raises(ValueError):
        few_label_indices([0, 1, 1, 1], 2, random_state=0)


# -- what the protocols promise beyond the score ------------------------------------
def test_labels_given_as_a_column_are_read_with_scikit_learns_warning():
    """A column vector of labels is read as 1-D, with scikit-learn's warning."""
    from sklearn.exceptions import DataConversionWarning

    with pytest.warns(DataConversionWarning, match="column-vector y"):
        idx = few_label_indices(Y_TRAIN[:, None], 2, random_state=0)
    np.testing.assert_array_equal(idx, few_label_indices(Y_TRAIN, 2, random_state=0))


def test_few_label_scores_read_a_column_of_labels_over_five_draws_by_default():
    """y_train as a column scores as 1-D labels, silently; 5 draws by default."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        column = few_label_scores(
            _lr(), X_TRAIN, Y_TRAIN[:, None], X_TEST, Y_TEST, n_per_class=2
        )
    flat = few_label_scores(
        _lr(), X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, n_per_class=2, n_draws=5
    )
    assert column.scores.shape == (5,)
    assert column == flat


def test_few_label_scores_take_the_values_of_a_dict_as_samples():
    """X_train as any sized collection (a dict's values) is read as its list."""
    from sklearn.feature_extraction.text import CountVectorizer

    texts = ["apple banana", "car bus", "banana cherry", "truck train"] * 10
    y = np.array([0, 1, 0, 1] * 10)

    model = make_pipeline(CountVectorizer(), _lr())
    by_name = {f"doc{i}": text for i, text in enumerate(texts[:30])}
    result = few_label_scores(
        model, by_name.values(), y[:30], texts[30:], y[30:], n_per_class=2, n_draws=2
    )
    as_list = few_label_scores(
        model, texts[:30], y[:30], texts[30:], y[30:], n_per_class=2, n_draws=2
    )
    assert result == as_list


def test_linear_probe_takes_a_numpy_boolean_standardize():
    """standardize=np.False_ (a value read from an array) is False."""
    split = (X_TRAIN[:200], Y_TRAIN[:200], X_TEST[:200], Y_TEST[:200])
    as_numpy = linear_probe(None, *split, standardize=np.False_)
    assert as_numpy.accuracy == linear_probe(None, *split, standardize=False).accuracy


def test_linear_probe_refuses_missing_held_out_labels_by_name():
    """A NaN among y_test is refused naming y_test, before anything is fitted."""
    y_test = Y_TEST.astype(float)
    y_test[3] = np.nan
    with pytest.raises(ValueError, match="y_test holds NaN or infinite labels"):
        linear_probe(None, X_TRAIN, Y_TRAIN, X_TEST, y_test)


def test_probe_scorer_repr_shows_its_settings():
    """The repr (a search's scoring in a log) shows every setting as given."""
    scorer = ProbeScorer("linear", n_per_class=2, n_draws=3, cv=4, random_state=1)
    assert repr(scorer) == (
        "ProbeScorer('linear', n_per_class=2, n_draws=3, cv=4, random_state=1)"
    )


def test_probe_scorer_folds_follow_random_state_and_the_smallest_class():
    """All-label folds: cv (fewer for a small class), shuffled by random_state."""
    pca = PCATransformer(n_components=8, random_state=0).fit(X_TRAIN)
    keep = np.r_[np.flatnonzero(Y_TEST != 9)[:150], np.flatnonzero(Y_TEST == 9)[:3]]
    X, y = X_TEST[keep], Y_TEST[keep]
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=3)  # class 9 has 3
    expected = cross_val_score(KNNProbe(), pca.transform(X), y, cv=cv).mean()
    assert ProbeScorer("knn", random_state=3)(pca, X, y) == pytest.approx(expected)
    # a numpy integer seeds as the int it equals
    numpy_seed = ProbeScorer("knn", random_state=np.int64(3))(pca, X, y)
    assert numpy_seed == pytest.approx(expected)


def test_probe_scorer_judges_every_step_before_the_classifier():
    """A pipeline of steps and a classifier is represented by all steps but the last."""
    X, y = X_TRAIN[:300], Y_TRAIN[:300]
    pipe = make_pipeline(
        StandardScaler(), PCATransformer(n_components=4, random_state=0), _lr()
    ).fit(X, y)
    scorer = ProbeScorer("knn")
    expected = scorer(pipe[:-1], X_TEST, Y_TEST)
    assert scorer(pipe, X_TEST, Y_TEST) == pytest.approx(expected)


def test_probe_scorer_leaves_the_classifier_it_is_given_unfitted():
    """The probe is cloned for every fit; the classifier passed stays unfitted."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    pca = PCATransformer(n_components=4, random_state=0).fit(X_TRAIN)
    given = _lr()
    ProbeScorer(given, n_per_class=2, n_draws=1)(pca, X_TEST, Y_TEST)
    with pytest.raises(NotFittedError):
        check_is_fitted(given)


def test_linear_probe_cv_max_iter_bounds_the_search_and_the_refit():
    """max_iter caps the solver in the cross-validation of C and in the final fit."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegressionCV

    idx = few_label_indices(Y_TRAIN, 2, random_state=0)
    X, y = X_TRAIN[idx], Y_TRAIN[idx]
    Cs = [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe = LinearProbeCV(Cs=Cs, max_iter=3).fit(X, y)
        search = LogisticRegressionCV(
            Cs=Cs,
            l1_ratios=(0.0,),
            cv=list(probe.cv_.split(X, y)),
            scoring="neg_log_loss",
            max_iter=3,
            refit=False,
            use_legacy_attributes=False,
        ).fit(X, y)
        refit = LogisticRegression(C=probe.C_, max_iter=3).fit(X, y)
    # on these labels, converged fits choose C=10 and 3-iteration fits C=100
    mean_scores = search.scores_.mean(axis=0).ravel()
    assert probe.C_ == search.Cs_[int(np.argmax(mean_scores))]
    np.testing.assert_array_equal(
        probe.predict_proba(X_TEST), refit.predict_proba(X_TEST)
    )
    assert probe.n_iter_ == 3


def test_linear_probe_cv_reports_the_iterations_of_its_final_fit():
    """n_iter_ is the iterations the final regression took, not the cap."""
    idx = few_label_indices(Y_TRAIN, 3, random_state=0)
    probe = LinearProbeCV(Cs=[0.1, 1.0]).fit(X_TRAIN[idx] / 16, Y_TRAIN[idx])
    assert probe.n_iter_ == int(np.max(probe.estimator_.n_iter_))
    assert probe.n_iter_ < probe.max_iter


def test_few_label_results_of_other_label_counts_differ():
    """Results are equal only for the same n_per_class as well as the same scores."""
    from unittest.mock import ANY

    from sk_replearn.evaluation import FewLabelResult

    scores = np.array([0.5, 0.75])
    assert FewLabelResult(2, scores) == FewLabelResult(2, scores.copy())
    assert FewLabelResult(2, scores) != FewLabelResult(3, scores)
    # other types compare by their own rules (a test's ANY matches a result)
    assert FewLabelResult(2, scores) == ANY


def test_main_job_rows_fit_the_sizes_their_names_state():
    """K-means with 64 clusters, PCA and the autoencoder with 32 components."""
    from sk_replearn.__main__ import estimators

    ests = estimators(random_state=0)
    assert ests["KMeansTransformer(k=64)"].n_clusters == 64
    assert ests["PCATransformer(32)"].n_components == 32
    assert ests["AutoencoderTransformer(32)"].n_components == 32


def test_main_job_lists_each_family_in_the_order_its_module_defines_it():
    """Within a family the self-supervised methods keep their source order."""
    import inspect

    from sk_replearn.__main__ import estimators

    ssl = list(estimators(random_state=0).values())[4:]
    for before, after in zip(ssl, ssl[1:]):
        if type(before).__module__ == type(after).__module__:
            first = inspect.getsourcelines(type(before))[1]
            assert first < inspect.getsourcelines(type(after))[1]


def test_main_job_few_label_column_is_logistic_regression_of_5000_iterations(
    monkeypatch,
):
    """Few-label column: LogisticRegression(max_iter=5000), 2 a class, 5 draws."""
    from sk_replearn import __main__ as job

    calls = []

    def record(estimator, *args, **kwargs):
        calls.append((estimator.get_params(), kwargs))
        return few_label_scores(estimator, *args, **kwargs)

    monkeypatch.setattr(job, "few_label_scores", record)
    job._probes(None, X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, None)
    [(params, kwargs)] = calls
    assert params == LogisticRegression(max_iter=5000).get_params()
    assert kwargs == {"n_per_class": 2, "n_draws": 5, "random_state": 0}


def test_main_job_digits_split_is_stratified_and_seeded(monkeypatch, capsys):
    """--random-state seeds a stratified split of a quarter of digits."""
    from sk_replearn import __main__ as job

    seen = []
    monkeypatch.setattr(job, "estimators", lambda random_state: {"raw pixels": None})
    monkeypatch.setattr(
        job, "_probes", lambda est, *data: seen.append(data[:4]) or (0.0, 1.0, 1.0)
    )
    assert job.main(["--random-state", "5", "--n-jobs", "1"]) == 0
    [(X_train, y_train, X_test, y_test)] = seen
    expected = train_test_split(
        X_DIGITS, Y_DIGITS, test_size=0.25, stratify=Y_DIGITS, random_state=5
    )
    for got, want in zip((X_train, X_test, y_train, y_test), expected):
        np.testing.assert_array_equal(got, want)
    capsys.readouterr()


# -- what the probes keep, take and say ---------------------------------------
def test_linear_probe_leaves_the_representation_it_is_given_unfitted():
    """The representation is cloned before its fit: the one passed stays unfitted."""
    pca = PCATransformer(n_components=4, random_state=0)
    linear_probe(pca, X_TRAIN[:300], Y_TRAIN[:300], X_TEST[:200], Y_TEST[:200])
    with pytest.raises(NotFittedError):
        check_is_fitted(pca)


def test_linear_probe_standardizes_raw_features_as_standard_scaler_does():
    """Dense features are centred and scaled (StandardScaler()), not only scaled."""
    result = linear_probe(None, X_TRAIN, Y_TRAIN, X_TEST, Y_TEST)
    by_hand = make_pipeline(StandardScaler(), _lr()).fit(X_TRAIN, Y_TRAIN)
    assert result.accuracy == by_hand.score(X_TEST, Y_TEST)


def test_probe_scorer_takes_two_folds():
    """cv=2, the fewest folds, is taken and gives 2-fold cross-validation."""
    pca = PCATransformer(n_components=8, random_state=0).fit(X_TRAIN)
    X, y = X_TEST[:300], Y_TEST[:300]
    cv = StratifiedKFold(n_splits=2, shuffle=True, random_state=0)
    expected = cross_val_score(KNNProbe(), pca.transform(X), y, cv=cv).mean()
    assert ProbeScorer("knn", cv=2)(pca, X, y) == pytest.approx(expected)
    with pytest.raises(ValueError, match="cv=1 must be an int >= 2"):
        ProbeScorer(cv=1)


def test_probe_scorer_error_quotes_a_count_given_as_text():
    """A count given as a string is refused, shown quoted as it was given."""
    with pytest.raises(ValueError, match=r"n_draws='3' must be an int >= 1"):
        ProbeScorer(n_draws="3")


def test_probe_scorer_takes_random_state_none():
    """random_state=None is taken: draws and folds then vary from call to call."""
    pca = PCATransformer(n_components=8, random_state=0).fit(X_TRAIN)
    scorer = ProbeScorer("knn", n_per_class=2, n_draws=2, random_state=None)
    assert scorer.random_state is None
    assert 0 < scorer(pca, X_TEST, Y_TEST) <= 1


def test_probe_scorer_reads_a_dataframe_representation_as_its_values():
    """A representation giving DataFrames (set_output) scores as its arrays do."""
    pytest.importorskip("pandas")

    as_array = PCA(n_components=8, random_state=0).fit(X_TRAIN)
    as_frame = PCA(n_components=8, random_state=0).set_output(transform="pandas")
    as_frame.fit(X_TRAIN)
    for scorer in (ProbeScorer("knn", n_per_class=2, n_draws=2), ProbeScorer("knn")):
        expected = scorer(as_array, X_TEST[:300], Y_TEST[:300])
        assert scorer(as_frame, X_TEST[:300], Y_TEST[:300]) == expected


@pytest.mark.parametrize("probe", ["knn", "linear"])
def test_probe_scorer_few_labels_names_the_class_left_with_nothing_to_score(probe):
    """n_per_class as large as the smallest class is refused naming that class."""
    pca = PCATransformer(n_components=4, random_state=0).fit(X_TRAIN)
    keep = np.r_[np.flatnonzero(Y_TEST != 9)[:200], np.flatnonzero(Y_TEST == 9)[:2]]
    with pytest.raises(
        ValueError,
        match=r"n_per_class=2 leaves nothing to score class 9, which has 2 "
        r"samples in the scored fold; use n_per_class < 2",
    ):
        ProbeScorer(probe, n_per_class=2)(pca, X_TEST[keep], Y_TEST[keep])


@pytest.mark.parametrize("probe, n, needs", [("knn", 1, 1), ("linear", 2, 2)])
def test_probe_scorer_says_how_many_labels_a_class_its_probe_needs(probe, n, needs):
    """A class too small for the all-label protocol: the message says what the
    probe's training part needs of each class."""

    pca = PCATransformer(n_components=4, random_state=0).fit(X_TRAIN)
    keep = np.r_[np.flatnonzero(Y_TEST != 9)[:200], np.flatnonzero(Y_TEST == 9)[:n]]
    with pytest.raises(
        ValueError, match=rf"class 9 has {n} sample.*needs {needs} a class"
    ):
        ProbeScorer(probe)(pca, X_TEST[keep], Y_TEST[keep])


def test_probe_scorer_judges_the_steps_before_a_last_step_without_transform():
    """A pipeline ending in a step that neither classifies nor transforms (a
    regressor) is represented by the steps before it."""

    X, y = X_TRAIN[:300], Y_TRAIN[:300]
    pipe = make_pipeline(PCATransformer(n_components=4, random_state=0), Ridge())
    pipe.fit(X, y)
    scorer = ProbeScorer("knn")
    assert scorer(pipe, X_TEST, Y_TEST) == scorer(pipe[:-1], X_TEST, Y_TEST)


def test_probe_scorer_refuses_a_pipeline_of_a_classifier_alone():
    """A pipeline of one classifier has no representation to judge."""
    pipe = Pipeline([("clf", _lr())]).fit(X_TRAIN[:300], Y_TRAIN[:300])
    with pytest.raises(TypeError, match="estimator=Pipeline has no transform"):
        ProbeScorer()(pipe, X_TEST, Y_TEST)
