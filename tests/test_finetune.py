"""FineTuner / FineTunerRegressor: transfer strategies, sklearn contract, errors."""

from __future__ import annotations

import copy
import pickle
import warnings

import numpy as np
import pytest
import torch
from _instances import (
    EXPECTED_FAILED_CHECKS,
    ROUNDING_DEPENDENT_CHECKS,
    make,
    only_checks,
)
from sklearn.base import clone
from sklearn.datasets import make_blobs, make_friedman1, make_regression
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.multioutput import MultiOutputClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from sk_replearn import (
    AutoencoderTransformer,
    BarlowTwinsTransformer,
    BYOLTransformer,
    CollapseWarning,
    DINOTransformer,
    FineTuner,
    FineTunerRegressor,
    GPTTransformer,
    KMeansTransformer,
    MAETransformer,
    MoCoTransformer,
    PCATransformer,
    SimCLRTransformer,
    SimSiamTransformer,
)
from sk_replearn.base import is_fitted
from sk_replearn.evaluation import few_label_indices
from sk_replearn.nn import CentredLayerNorm, CentredScale
from sk_replearn.nn.surgery import encoder_blocks
from sk_replearn.persistence import load, save
from sk_replearn.transfer._encoder import transfer_encoder
from sk_replearn.transfer._head import build_head
from sk_replearn.views import ImageViews


def _tiny_ae(**kw):
    params = {
        "n_components": 4,
        "encoder": "mlp",
        "encoder_kwargs": {"hidden_sizes": (16,)},
        "max_epochs": 2,
        "batch_size": 32,
        "device": "cpu",
        "random_state": 0,
    }
    return AutoencoderTransformer(**{**params, **kw})


# tests/test_common.py runs the scikit-learn common checks on the rows of
# tests/_instances.py, whose one epoch cannot reach the accuracy / R^2 the
# training checks ask for; those checks (and only those) run here on 20 epochs.
# (Weights are not repeated rows at any epoch count: see the tests below.
# Nor is the float32 rounding of one row against many a matter of epochs:
# test_predictions_do_not_depend_on_the_batch checks it to float32 precision.)
_WEIGHTS_CHECK = "check_sample_weight_equivalence_on_dense_data"
# class_weight={0: 1000, 1: 1e-4} leaves class 0 alone in the loss; the
# head's bias, moved by AdamW at most ~lr a step, needs lr=0.05 to predict
# it for 87% of the check's noisy blobs in 20 epochs (lr=0.01: 82% in 50;
# sample_weight of the same values gives the same fit).
_CLASS_WEIGHT_CHECK = "check_class_weight_classifiers"


@pytest.mark.parametrize(
    "estimator, check",
    [
        *only_checks(
            FineTuner(_tiny_ae(), max_epochs=20, batch_size=32, device="cpu"),
            set(EXPECTED_FAILED_CHECKS["FineTuner"])
            - {_WEIGHTS_CHECK, _CLASS_WEIGHT_CHECK, *ROUNDING_DEPENDENT_CHECKS},
        ),
        *only_checks(
            FineTuner(_tiny_ae(), max_epochs=20, lr=0.05, batch_size=32, device="cpu"),
            {_CLASS_WEIGHT_CHECK},
        ),
        *only_checks(
            FineTunerRegressor(_tiny_ae(), max_epochs=20, batch_size=32, device="cpu"),
            set(EXPECTED_FAILED_CHECKS["FineTunerRegressor"])
            - {_WEIGHTS_CHECK, *ROUNDING_DEPENDENT_CHECKS},
        ),
    ],
)
def test_finetuner_sklearn_training_checks_pass_in_20_epochs(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits_ae(small_digits):
    X, _ = small_digits
    return AutoencoderTransformer(
        n_components=16, max_epochs=5, device="cpu", random_state=0
    ).fit(X)


def _state(est):
    return {k: v.clone() for k, v in est.net_.module_.state_dict().items()}


# -- the encoder copied out of every representation ---------------------------------
_FAST = {"max_epochs": 1, "batch_size": 64, "device": "cpu", "random_state": 0}


@pytest.mark.parametrize(
    "rep",
    [
        AutoencoderTransformer(n_components=8, **_FAST),
        AutoencoderTransformer(n_components=8, input_shape=(1, 8, 8), **_FAST),
        SimCLRTransformer(input_shape=(1, 8, 8), **_FAST),
        SimCLRTransformer(6, input_shape=(1, 8, 8), **_FAST),
        MoCoTransformer(input_shape=(1, 8, 8), queue_size=128, **_FAST),
        BYOLTransformer(5, **_FAST),
        BYOLTransformer(**_FAST),
        SimSiamTransformer(**_FAST),
        BarlowTwinsTransformer(**_FAST),
        DINOTransformer(input_shape=(1, 8, 8), **_FAST),
        MAETransformer(input_shape=(1, 8, 8), **_FAST),
        MAETransformer(6, input_shape=(1, 8, 8), **_FAST),
        MAETransformer(**_FAST),
        PCATransformer(n_components=8),
        PCATransformer(n_components=8, whiten=True),
    ],
    ids=lambda r: type(r).__name__,
)
def test_transfer_encoder_reproduces_transform(rep, small_digits):
    X, _ = small_digits
    rep.fit(X)
    encoder = transfer_encoder(rep).eval()
    with torch.no_grad():
        Z = encoder(torch.as_tensor(X[:50], dtype=torch.float32)).numpy()
    np.testing.assert_allclose(Z, rep.transform(X[:50]), rtol=1e-4, atol=1e-4)
    # A copy: training it leaves the representation alone.
    before = rep.transform(X[:5])
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(1.0)
    np.testing.assert_array_equal(rep.transform(X[:5]), before)


def test_transfer_encoder_buffers_are_copies(small_digits):
    # Loading other values into the copy's buffers (its input
    # standardisation, batch-norm statistics) leaves the representation alone.
    X, _ = small_digits
    rep = AutoencoderTransformer(n_components=4, **_FAST).fit(X[:64])
    before = rep.transform(X[:5])
    encoder = transfer_encoder(rep)
    state = encoder.state_dict()
    encoder.load_state_dict(
        {k: v * 2 + 1 if v.is_floating_point() else v for k, v in state.items()}
    )
    np.testing.assert_array_equal(rep.transform(X[:5]), before)


def test_mae_auto_pooling_fine_tunes_the_last_block_mean(small_digits):
    """MAE's "auto" readout concatenates every block for ``transform`` and a
    frozen fine-tuner, but a fine-tuner that trains the encoder reads the
    last block's patch mean, which fine-tuned better (the pooling docstring):
    the same as fine-tuning MAE(pooling="mean"), whose weights are the same
    (pooling does not enter the pre-training). An explicit "blocks" stays."""
    X, y = small_digits
    tiny = {"embed_dim": 16, "depth": 2, "decoder_embed_dim": 8, "decoder_depth": 1}
    tiny = {**tiny, "decoder_num_heads": 2, "input_shape": (1, 8, 8), **_FAST}
    reps = {p: MAETransformer(pooling=p, **tiny).fit(X) for p in ("auto", "mean")}
    blocks = MAETransformer(pooling="blocks", **tiny).fit(X)
    assert reps["auto"].transform(X[:3]).shape == (3, 2 * 2 * 16)  # every block
    fine = {p: FineTuner(r, max_epochs=2, random_state=0) for p, r in reps.items()}
    for model in fine.values():
        model.fit(X, y)
    assert fine["auto"].transform(X[:3]).shape == (3, 16)
    np.testing.assert_array_equal(
        fine["auto"].predict_proba(X[:20]), fine["mean"].predict_proba(X[:20])
    )
    frozen = FineTuner(reps["auto"], strategy="frozen", max_epochs=1, random_state=0)
    assert frozen.fit(X, y).transform(X[:3]).shape == (3, 64)
    explicit = FineTuner(blocks, max_epochs=1, random_state=0).fit(X, y)
    assert explicit.transform(X[:3]).shape == (3, 64)
    # transfer_encoder without trained=True still reproduces transform
    assert transfer_encoder(reps["auto"]).out_features == 64
    assert transfer_encoder(reps["auto"], trained=True).out_features == 16


def test_kmeans_cannot_be_fine_tuned(small_digits):
    X, y = small_digits
    km = KMeansTransformer(n_clusters=5, random_state=0).fit(X)
    with pytest.raises(TypeError, match="KMeansTransformer.*PCATransformer"):
        FineTuner(km, max_epochs=1).fit(X, y)


# -- the pre-trained estimator is never changed -------------------------------------
@pytest.mark.parametrize("strategy", ["full", "frozen"])
def test_fit_leaves_pretrained_representation_unchanged(
    digits_ae, small_digits, strategy
):
    X, y = small_digits
    state, params = _state(digits_ae), digits_ae.get_params()
    Z = digits_ae.transform(X)
    clf = FineTuner(digits_ae, strategy=strategy, max_epochs=3, random_state=0)
    clf.fit(X, y)
    assert clf.representation_ is not digits_ae  # a copy the fine-tuner owns
    np.testing.assert_array_equal(clf.representation_.transform(X), Z)
    assert digits_ae.get_params() == params
    for k, v in _state(digits_ae).items():
        torch.testing.assert_close(v, state[k], rtol=0, atol=0)
    np.testing.assert_array_equal(digits_ae.transform(X), Z)
    if strategy == "full":  # while the fine-tuned copy did move
        assert not np.allclose(clf.transform(X), Z, atol=1e-3)
    else:  # frozen features are the pre-trained ones
        np.testing.assert_allclose(clf.transform(X), Z, atol=1e-5)


def test_unfitted_representation_is_pretrained_on_pretrain_X(small_digits):
    X, y = small_digits
    rep = _tiny_ae()
    clf = FineTuner(rep, max_epochs=2, random_state=0)
    clf.fit(X[:100], y[:100], pretrain_X=X)
    assert not hasattr(rep, "net_")  # the given estimator stays unfitted
    assert clf.representation_ is not rep
    assert clf.representation_.n_features_in_ == X.shape[1]
    # pre-trained on all of X: its loss curve has ceil(n/batch) steps' worth
    assert clf.representation_.n_epochs_ == rep.max_epochs


def test_pretrain_X_of_other_samples_is_refused_before_pre_training(
    small_digits, monkeypatch
):
    # Found only after the whole pre-training, when X met the representation.
    X, y = small_digits
    clf = FineTuner(_tiny_ae(), max_epochs=1, random_state=0)

    def no_training(*args, **kwargs):
        raise AssertionError("pre-training ran")

    monkeypatch.setattr(type(clf.representation), "fit", no_training)
    with pytest.raises(ValueError, match=r"pretrain_X has samples of shape \(60,\)"):
        clf.fit(X[:100], y[:100], pretrain_X=X[:, :60])
    with pytest.raises(ValueError, match=r"shape \(1, 8, 7\).*shape \(64,\)"):
        clf.fit(X[:100], y[:100], pretrain_X=X.reshape(-1, 1, 8, 8)[:, :, :, :7])


def test_pretrain_X_with_a_fitted_representation_warns_that_it_is_not_used(
    digits_ae, small_digits
):
    X, y = small_digits
    clf = FineTuner(digits_ae, max_epochs=1, random_state=0)
    with pytest.warns(UserWarning, match="pretrain_X is not used"):
        clf.fit(X[:100], y[:100], pretrain_X=X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        clf.fit(X[:100], y[:100])  # no pretrain_X, no warning


def test_a_representation_that_cannot_pre_train_is_named_before_it_tries(
    small_digits,
):
    X, y = small_digits
    # Its device, not the fine-tuner's: the error quoted device='cuda' of a
    # FineTuner(device='cpu').
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="pre-train cannot run.*representation__"):
            FineTuner(_tiny_ae(device="cuda"), device="cpu", max_epochs=1).fit(X, y)
    # An unfitted supervised estimator: "fit() missing 1 required positional
    # argument: 'y'" from inside.
    with pytest.raises(TypeError, match=r"representation=FineTuner\(...\) is unfit"):
        FineTuner(FineTuner(_tiny_ae()), max_epochs=1).fit(X, y)


def test_clone_copies_a_fitted_representation_still_fitted(digits_ae, small_digits):
    X, _ = small_digits
    clf = FineTuner(digits_ae, lr=0.5)
    twin = clone(clf)
    assert twin.representation is not digits_ae and is_fitted(twin.representation)
    np.testing.assert_array_equal(
        twin.representation.transform(X), digits_ae.transform(X)
    )
    assert twin.lr == 0.5
    unfitted = FineTuner(_tiny_ae())
    assert clone(unfitted).representation is not unfitted.representation


# -- strategies ----------------------------------------------------------------------
def test_freeze_layers_keeps_first_blocks(digits_ae, small_digits):
    X, y = small_digits
    clf = FineTuner(digits_ae, freeze_layers=1, max_epochs=3, random_state=0)
    clf.fit(X, y)
    assert clf.n_blocks_ == 3  # two MLP layers + the bottleneck
    first = transfer_encoder(digits_ae).body.layers[0].weight
    tuned = clf.net_.module_.encoder.body.layers[0].weight
    torch.testing.assert_close(tuned.detach().cpu(), first.detach())
    top = transfer_encoder(digits_ae).head.weight
    assert not torch.allclose(clf.net_.module_.encoder.head.weight.cpu(), top)


def test_frozen_batchnorm_statistics_stay_fixed(small_digits):
    X, y = small_digits
    rep = AutoencoderTransformer(n_components=8, input_shape=(1, 8, 8), **_FAST).fit(
        X
    )  # CNN encoder with BatchNorm
    before = transfer_encoder(rep).state_dict()
    clf = FineTuner(rep, strategy="full", freeze_layers=1, max_epochs=2, random_state=0)
    clf.fit(X, y)
    after = clf.net_.module_.encoder.state_dict()
    for key in ("body.features.1.running_mean", "body.features.1.running_var"):
        torch.testing.assert_close(after[key].cpu(), before[key])
    assert not torch.allclose(
        after["body.features.4.running_mean"].cpu(),
        before["body.features.4.running_mean"],
    )


@pytest.mark.parametrize(
    "reinit_layers, rates",
    [
        # the top block (bottleneck) at 0.1*0.25, then each block below halves
        (0, (0.025, 0.0125, 0.00625)),
        # a re-drawn top is new: it learns at the head's rate, and the decay
        # starts at the top pre-trained block below it (a scale of 0.5 would
        # give the re-drawn block the head's rate had it been decayed as
        # pre-trained: 0.1 * 0.5 / 0.5)
        (1, (0.1, 0.025, 0.0125)),
    ],
)
def test_learning_rates_per_block(reinit_layers, rates, digits_ae, small_digits):
    X, y = small_digits
    clf = FineTuner(
        digits_ae,
        lr=0.1,
        encoder_lr_scale=0.25,
        layer_decay=0.5,
        reinit_layers=reinit_layers,
        lr_schedule=None,
        max_epochs=1,
    ).fit(X, y)
    net = clf.net_
    names = {id(p): n for n, p in net.module_.named_parameters()}
    lr_of = {
        names[id(p)]: g["lr"] for g in net.optimizer_.param_groups for p in g["params"]
    }
    blocks = ("encoder.head", "encoder.body.layers.3", "encoder.body.layers.0")
    for block, rate in zip(blocks, rates):
        assert lr_of[f"{block}.weight"] == pytest.approx(rate), block
    assert lr_of["head.1.weight"] == pytest.approx(0.1)


def test_reinit_layers_redraws_the_top(digits_ae, small_digits):
    X, y = small_digits
    clf = FineTuner(digits_ae, reinit_layers=1, max_epochs=1, lr=1e-9, random_state=0)
    clf.fit(X, y)
    old = transfer_encoder(digits_ae)
    new = clf.net_.module_.encoder
    # lr ~ 0: the re-drawn bottleneck differs from the pre-trained one, the
    # block below it is (almost) the pre-trained one
    assert not torch.allclose(new.head.weight.cpu(), old.head.weight, atol=1e-3)
    torch.testing.assert_close(
        new.body.layers[0].weight.cpu(), old.body.layers[0].weight, atol=1e-6, rtol=0
    )
    scratch = FineTuner(digits_ae, reinit_layers="all", max_epochs=1).fit(X, y)
    assert scratch.n_blocks_ == 3


def test_custom_head_class(digits_ae, small_digits):
    X, y = small_digits

    class TwoLayer(torch.nn.Sequential):
        def __init__(self, n_in, n_out):
            super().__init__(
                torch.nn.Linear(n_in, 8), torch.nn.Tanh(), torch.nn.Linear(8, n_out)
            )

    clf = FineTuner(digits_ae, head=TwoLayer, max_epochs=2, random_state=0).fit(X, y)
    assert isinstance(clf.net_.module_.head, TwoLayer)
    assert clf.predict_proba(X[:3]).shape == (3, 10)


def test_samples_of_another_shape_than_the_representation_s_are_refused_at_fit(
    small_digits,
):
    # 64 values either way: fit reread them as 8x8 images without a word, and
    # predict on the very X it was fitted on was then refused.
    X, y = small_digits
    rep = PCATransformer(n_components=4, random_state=0).fit(X.reshape(-1, 1, 8, 8))
    with pytest.raises(
        ValueError,
        match=r"samples of shape \(1, 4, 16\), but the representation was fitted "
        r"on samples of shape \(1, 8, 8\); pass X as \(n_samples, \*\(1, 8, 8\)\)",
    ):
        FineTuner(rep, max_epochs=1).fit(X.reshape(-1, 1, 4, 16), y)
    flat = FineTuner(rep, max_epochs=1, random_state=0).fit(X, y)  # flat is fine
    assert flat.predict(X).shape == (len(X),)
    # Fewer values: images are named by their shapes, as predict names them
    # (the fit spoke of 16 and 64 "features").
    with pytest.raises(
        ValueError,
        match=r"X has samples of shape \(1, 4, 4\), but the representation was "
        r"fitted on samples of shape \(1, 8, 8\); fine-tune on data",
    ):
        FineTuner(rep, max_epochs=1).fit(X[:, :16].reshape(-1, 1, 4, 4), y)
    with pytest.raises(ValueError, match="X has 16 features, but the repr"):
        FineTuner(rep, max_epochs=1).fit(X[:, :16], y)


class _NotAnArray:
    """An array-like without a dtype, as scikit-learn's estimator checks use."""

    def __init__(self, data):
        self.data = np.asarray(data)

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)


def test_an_array_like_without_dtype_is_read_as_the_array_it_holds():
    # Validation turned it into float32 where the float64 array stays float64:
    # predictions 0.2 apart after 3 epochs (scikit-learn's
    # check_regressor_data_not_an_array).
    X, y = make_regression(200, 10, random_state=0)
    reg = FineTunerRegressor(PCATransformer(2), max_epochs=3, random_state=0)
    expected = clone(reg).fit(X, y).predict(X)
    got = clone(reg).fit(_NotAnArray(X), y).predict(_NotAnArray(X))
    np.testing.assert_array_equal(got, expected)


def test_a_head_module_instance_is_copied_and_trained_as_the_head(small_digits):
    # A module is callable: it was called as head(n_in, n_out), which ran its
    # forward and failed deep inside torch.
    X, y = small_digits
    rep = PCATransformer(n_components=8, random_state=0).fit(X)
    head = torch.nn.Linear(8, 10)
    before = copy.deepcopy(head.state_dict())
    clf = FineTuner(rep, head=head, max_epochs=2, random_state=0).fit(X, y)
    trained = clf.net_.module_.head
    assert isinstance(trained, torch.nn.Linear) and trained is not head
    assert not torch.equal(trained.weight.cpu(), before["weight"])
    for name, value in head.state_dict().items():  # the caller's never trained
        assert torch.equal(value, before[name]), name
    assert clone(clf).fit(X, y).net_.module_.head is not trained
    with pytest.raises(ValueError, match=r"must map \(batch, 8\) to \(batch, 10\)"):
        FineTuner(rep, head=torch.nn.Linear(8, 3), max_epochs=1).fit(X, y)


def _batch_norm_head():
    return torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16), torch.nn.Linear(16, 10)
    )


def _batch_norm_encoder():
    enc = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.BatchNorm1d(16)
    )
    enc.out_features = 16
    return enc


@pytest.mark.parametrize(
    "make_estimator",
    [
        lambda: FineTuner(
            PCATransformer(n_components=8, random_state=0).fit(
                np.random.default_rng(0).normal(size=(40, 64))
            ),
            head=_batch_norm_head(),
            batch_size=1,
            max_epochs=1,
        ),
        lambda: AutoencoderTransformer(
            encoder=_batch_norm_encoder(), batch_size=1, max_epochs=1
        ),
    ],
    ids=["FineTuner-head", "Autoencoder-encoder"],
)
def test_a_user_batch_norm_given_batches_of_one_names_batch_size(
    small_digits, make_estimator
):
    # BatchNorm1d on (1, C) in training: torch's "Expected more than 1 value
    # per channel" alone named neither the layer's cause nor the fix.
    X, y = small_digits
    with pytest.raises(ValueError, match=r"batch of one.*set batch_size to 2"):
        make_estimator().fit(X, y)
    fitted = make_estimator().set_params(batch_size=2).fit(X, y)
    assert np.isfinite(fitted.transform(X)).all()


# -- learning happens; determinism; persistence ---------------------------------------
def test_fine_tuning_learns_digits(digits_split):
    X_tr, X_te, y_tr, y_te = digits_split
    rep = AutoencoderTransformer(
        n_components=16, max_epochs=20, device="cpu", random_state=0
    )
    rep.fit(X_tr)
    tuned = FineTuner(rep, max_epochs=30, random_state=0).fit(X_tr, y_tr)
    frozen = FineTuner(rep, strategy="frozen", max_epochs=30, random_state=0)
    frozen.fit(X_tr, y_tr)
    assert tuned.score(X_te, y_te) >= 0.95
    assert tuned.score(X_te, y_te) > frozen.score(X_te, y_te)


def test_pre_training_helps_with_few_labels(digits_split):
    # Transfer learning's claim: a representation pre-trained on the
    # unlabelled images, fine-tuned on 5 labels a class, beats the same
    # encoder untrained (SimCLR at lr=0: the same passes, batch-norm
    # statistics fitted alike) fine-tuned alike. Held-out accuracy at seeds
    # 0, 1, 2: 0.764, 0.816, 0.802 against 0.696, 0.698, 0.736 (frozen:
    # 0.727, 0.798, 0.802 against 0.660, 0.667, 0.724).
    X_tr, X_te, y_tr, y_te = digits_split
    labelled = few_label_indices(y_tr, 5, random_state=0)
    scores = {}
    for name, lr in [("pre-trained", 3e-3), ("untrained", 0.0)]:
        rep = SimCLRTransformer(
            input_shape=(1, 8, 8),
            encoder_kwargs={"channels": (8, 16)},
            max_epochs=10,
            lr=lr,
            random_state=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CollapseWarning)  # lr=0 may look so
            rep.fit(X_tr)
        clf = FineTuner(rep, max_epochs=30, random_state=0)
        scores[name] = clf.fit(X_tr[labelled], y_tr[labelled]).score(X_te, y_te)
    assert scores["pre-trained"] > scores["untrained"] + 0.04, scores


def test_images_in_their_own_shape(small_digits):
    X, y = small_digits
    images = X.reshape(-1, 1, 8, 8)
    rep = AutoencoderTransformer(n_components=8, **_FAST)
    clf = FineTuner(rep, max_epochs=2, random_state=0).fit(images, y)
    assert clf.input_shape_ == (1, 8, 8)
    assert clf.predict(images[:4]).shape == (4,)
    np.testing.assert_array_equal(clf.predict(images[:4]), clf.predict(X[:4]))


def test_pca_fitted_on_images_fine_tunes_images(small_digits):
    X, y = small_digits
    images = X.reshape(-1, 1, 8, 8)
    pca = PCATransformer(n_components=8).fit(images)
    clf = FineTuner(pca, max_epochs=3, random_state=0).fit(images, y)
    assert clf.input_shape_ == (1, 8, 8)
    np.testing.assert_array_equal(clf.predict(images[:5]), clf.predict(X[:5]))
    assert clf.transform(images[:5]).shape == (5, 8)


def test_random_state_makes_fit_deterministic(small_digits):
    X, y = small_digits

    def fit(cls=FineTuner, seed=7, target=y):
        return cls(_tiny_ae(random_state=None), max_epochs=3, random_state=seed).fit(
            X, target
        )

    np.testing.assert_array_equal(fit().predict_proba(X), fit().predict_proba(X))
    # and random_state is read: another seed, another fit
    assert not np.allclose(fit(seed=8).predict_proba(X), fit().predict_proba(X))
    target = y.astype(np.float32)
    first = fit(FineTunerRegressor, target=target).predict(X)
    again = fit(FineTunerRegressor, target=target).predict(X)
    np.testing.assert_array_equal(again, first)
    other = fit(FineTunerRegressor, seed=8, target=target).predict(X)
    assert not np.allclose(other, first)


def test_fits_in_threads_give_the_models_of_serial_fits(small_digits):
    # torch's generator is one per process: fits running at once in threads
    # (joblib's threading backend) drew from one stream and gave other
    # models for the same random_state. The pre-training inside each
    # fine-tuner's fit takes the same lock again.
    from concurrent.futures import ThreadPoolExecutor

    X, y = small_digits

    def fit(seed):
        rep = _tiny_ae(random_state=seed)
        return (
            FineTuner(rep, max_epochs=2, random_state=seed).fit(X, y).predict_proba(X)
        )

    seeds = [0, 1, 0, 1]
    serial = [fit(s) for s in seeds]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(fit, seeds))
    for a, b in zip(serial, threaded):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(serial[0], serial[1])


def test_pickle_round_trip(digits_ae, small_digits):
    X, y = small_digits
    clf = FineTuner(digits_ae, max_epochs=2, random_state=0).fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(again.transform(X), clf.transform(X))


def test_string_labels_round_trip(digits_ae, small_digits):
    X, y = small_digits
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
    clf = FineTuner(digits_ae, max_epochs=5, random_state=0).fit(X, names[y])
    assert set(clf.classes_) == set(names)
    assert set(clf.predict(X)) <= set(names)
    assert clf.score(X, names[y]) > 0.5


def test_regressor_multi_output(small_digits):
    X, y = small_digits
    Y = np.column_stack([y, X[:, 20], -y])
    reg = FineTunerRegressor(
        PCATransformer(n_components=16), max_epochs=150, random_state=0
    )
    reg.fit(X, Y)
    assert reg.predict(X[:5]).shape == (5, 3)
    assert reg.score(X, Y) > 0.8
    reg1 = clone(reg).fit(X, y.astype(float))
    assert reg1.predict(X[:5]).shape == (5,)


# -- model selection -------------------------------------------------------------------
def test_grid_search_over_strategy_and_lr(digits_ae, small_digits):
    X, y = small_digits
    search = GridSearchCV(
        FineTuner(digits_ae, max_epochs=3, random_state=0),
        {"strategy": ["full", "frozen"], "lr": [1e-2, 3e-3]},
        cv=2,
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    best = search.best_estimator_.representation  # a fitted copy, not refitted
    assert best.n_epochs_ == digits_ae.n_epochs_
    np.testing.assert_array_equal(best.transform(X), digits_ae.transform(X))
    assert search.score(X, y) > 0.3


def test_grid_search_over_the_default_representations_parameters(small_digits):
    # representation=None stands for an AutoencoderTransformer: a grid over
    # representation__n_components sets one up (it was an AttributeError on
    # None.set_params deep in scikit-learn).
    X, y = small_digits
    search = GridSearchCV(
        FineTuner(**_FAST),
        {"representation__n_components": [4, 8]},
        cv=2,
        error_score="raise",
    ).fit(X, y)
    best = search.best_estimator_
    assert type(best.representation).__name__ == "AutoencoderTransformer"
    assert best.representation_.n_components == best.transform(X[:2]).shape[1]
    assert {p["representation__n_components"] for p in search.cv_results_["params"]}
    assert FineTuner().representation is None  # the default object is untouched


def test_cross_val_score_on_pipeline_with_scaler(small_digits):
    X, y = small_digits
    rep = AutoencoderTransformer(n_components=16, max_epochs=10, random_state=0)
    pipe = make_pipeline(
        StandardScaler(), FineTuner(rep, max_epochs=20, random_state=0)
    )
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.85)


# -- bad input -------------------------------------------------------------------------
def test_bad_targets(digits_ae, small_digits):
    X, y = small_digits
    clf = FineTuner(digits_ae, max_epochs=1)
    with pytest.raises(ValueError, match=r"at least 2 classes .* 1 class \(0\.0\)"):
        clf.fit(X, np.zeros(len(X)))  # the label as written, not np.float64(0.0)
    y_nan = y.astype(float)
    y_nan[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.fit(X, y_nan)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.fit(X, y[:-1])
    with pytest.raises(ValueError, match="Unknown label type"):
        clf.fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(ValueError, match="NaN"):
        FineTunerRegressor(digits_ae, max_epochs=1).fit(X, y_nan)


@pytest.mark.parametrize("dtype", [str, object])
def test_regressor_refuses_class_labels_naming_y(dtype, digits_ae, small_digits):
    # numpy's "could not convert string to float" named neither y nor the
    # fix; with a sequence model the message was scikit-learn's, another one.
    X, _ = small_digits
    labels = np.array(["cat", "dog"] * (len(X) // 2), dtype=dtype)
    match = r"y holds values that are not numbers \('cat' among them\).* FineTuner"
    with pytest.raises(ValueError, match=match):
        FineTunerRegressor(digits_ae, max_epochs=1).fit(X, labels)
    with pytest.raises(ValueError, match=match):
        FineTunerRegressor(GPTTransformer(max_epochs=1), max_epochs=1).fit(
            ["ACGT", "GATT"] * (len(X) // 2), labels
        )
    mixed = np.array(["1.5", "cat"] * (len(X) // 2), dtype=object)  # names the word
    with pytest.raises(ValueError, match=match):
        FineTunerRegressor(digits_ae, max_epochs=1).fit(X, mixed)
    numbers = np.array(["1.5", 2.0] * (len(X) // 2), dtype=object)  # as numpy reads
    reg = FineTunerRegressor(digits_ae, max_epochs=1, random_state=0).fit(X, numbers)
    assert np.isfinite(reg.predict(X[:3])).all()
    # No y at all, or a missing value, gets scikit-learn's message naming it.
    with pytest.raises(ValueError, match="requires y to be passed"):
        FineTunerRegressor(digits_ae, max_epochs=1).fit(X, None)
    # scikit-learn reads an object y as floats after its finiteness check: a
    # None or "nan" reached the loss as NaN and was blamed on lr.
    for missing in [1.5, None], ["1.5", "nan"], [1.5, "inf"]:
        y_missing = np.array(missing * (len(X) // 2), dtype=object)
        with pytest.raises(ValueError, match="Input y contains (NaN|infinity)"):
            FineTunerRegressor(digits_ae, max_epochs=1).fit(X, y_missing)


def test_bad_parameters(digits_ae, small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match="freeze_layers=5 but the encoder has only 3"):
        FineTuner(digits_ae, freeze_layers=5, max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="overlap"):
        FineTuner(digits_ae, freeze_layers=2, reinit_layers=2, max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="strategy='frozen'"):
        FineTuner(digits_ae, strategy="frozen", reinit_layers=1).fit(X, y)
    with pytest.raises(ValueError, match="strategy"):
        FineTuner(digits_ae, strategy="partial").fit(X, y)
    with pytest.raises(ValueError, match="X has 10 features, but the representation"):
        FineTuner(digits_ae, max_epochs=1).fit(X[:, :10], y)
    with pytest.raises(TypeError, match="must return a torch.nn.Module"):
        FineTuner(digits_ae, head=lambda i, o: "linear", max_epochs=1).fit(X, y)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="needs a CUDA device"):
            FineTuner(digits_ae, precision="16", max_epochs=1).fit(X, y)
    with pytest.raises(TypeError, match="cannot be fine-tuned"):
        FineTuner(StandardScaler(), max_epochs=1).fit(X, y)


def test_predict_checks_features(digits_ae, small_digits):
    X, y = small_digits
    clf = FineTuner(copy.deepcopy(digits_ae), max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :10])


def test_finetuner_counts_the_bottleneck_of_n_components_as_a_block(small_digits):
    X, y = small_digits
    plain = SimCLRTransformer(input_shape=(1, 8, 8), **_FAST).fit(X)
    narrow = SimCLRTransformer(4, input_shape=(1, 8, 8), **_FAST).fit(X)
    ft_plain = FineTuner(plain, **_FAST).fit(X, y)
    ft_narrow = FineTuner(narrow, reinit_layers=1, **_FAST).fit(X, y)
    assert ft_narrow.n_blocks_ == ft_plain.n_blocks_ + 1
    assert ft_narrow.transform(X[:5]).shape == (5, 4)


# -- augmentation while fine-tuning (views) ------------------------------------
def _tiny_simclr(**kw):
    return SimCLRTransformer(
        input_shape=(1, 8, 8),
        encoder_kwargs={"channels": (4, 8)},
        projection_dim=4,
        hidden_dim=8,
        **{**_FAST, **kw},
    )


def test_views_auto_reuses_the_pretraining_views(small_digits):
    X, y = small_digits
    simclr = _tiny_simclr().fit(X)
    tuned = FineTuner(simclr, views="auto", max_epochs=1, random_state=0)
    tuned.fit(X, y)
    # the views SimCLR augmented with (a copy): the single-channel warps
    views = tuned.net_.module_.views
    assert repr(views) == repr(simclr.net_.module_.views)
    assert tuned.net_.module_.views.elastic > 0
    # nothing to reuse: reconstruction, or views switched off in pre-training
    ae = FineTuner(_tiny_ae(), views="auto", max_epochs=1, random_state=0)
    assert ae.fit(X, y).net_.module_.views is None
    plain = _tiny_simclr(views=None).fit(X)
    again = FineTuner(plain, views="auto", max_epochs=1).fit(X, y)
    assert again.net_.module_.views is None


def test_views_none_frozen_and_explicit(small_digits):
    X, y = small_digits
    simclr = _tiny_simclr().fit(X)
    off = FineTuner(simclr, max_epochs=1).fit(X, y)
    assert off.views is None and off.net_.module_.views is None  # the default
    frozen = FineTuner(simclr, strategy="frozen", views="auto", max_epochs=1)
    assert frozen.fit(X, y).net_.module_.views is None  # features computed once
    mine = ImageViews(crop_scale=None, rotation=10)
    own = FineTuner(simclr, views=mine, max_epochs=1).fit(X, y)
    assert own.net_.module_.views is mine
    with pytest.raises(ValueError, match=r"views=ImageViews\(\).*input_shape=\(64,\)"):
        FineTuner(_tiny_ae(), views=ImageViews(), max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="views"):
        FineTuner(simclr, views="simclr", max_epochs=1).fit(X, y)


def test_views_change_training_and_stay_deterministic(small_digits):
    X, y = small_digits
    simclr = _tiny_simclr().fit(X)

    def proba(views):
        clf = FineTuner(
            simclr, views=views, max_epochs=2, random_state=3, device="cpu"
        )  # to the bit on the CPU (CUDA may add in another order each run)
        return clf.fit(X, y).predict_proba(X)

    augmented = proba("auto")
    np.testing.assert_array_equal(augmented, proba("auto"))
    assert not np.allclose(augmented, proba(None))


def test_views_apply_in_training_mode_only(small_digits):
    X, y = small_digits
    clf = FineTuner(
        _tiny_simclr().fit(X), views="auto", max_epochs=1, random_state=0,
        device="cpu",
    )  # fmt: skip
    module = clf.fit(X, y).net_.module_.eval()
    x = torch.as_tensor(X[:8]).view(8, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(module(x), module(x))  # eval: no views
        torch.testing.assert_close(module(x), module.head(module.encoder(x)))
        module.train()
        module.head.eval()  # its running mean would move with each call
        assert not torch.allclose(module(x), module(x))  # train: fresh views
        module.views = None
        torch.testing.assert_close(module(x), module(x))


_SPREADS = torch.tensor([1.0, 1e-2, 10.0, 1.0, 0.1, 5.0])


@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_default_heads_centre_features_without_scaling_them(head):
    # Pre-trained features come at any scale and with an offset every sample
    # shares (a ViT's do): the head sees neither. A few labels must not
    # standardise the features with their own spread: a feature that hardly
    # varies stays small instead of being inflated to unit variance.
    torch.manual_seed(0)
    h = build_head(head, 6, 3).train()
    x = torch.randn(5, 6) * _SPREADS
    moved = copy.deepcopy(h)
    out = h(x)
    offset = torch.tensor([100.0, -30.0, 7.0, 0.0, 50.0, -2.0])
    torch.testing.assert_close(moved(100.0 * x + offset), out, rtol=1e-4, atol=1e-4)
    flat = x.clone()
    flat[:, 1] = x[:, 1].mean()
    assert (h[0](x) - h[0](flat)).abs().max() < 1e-2
    assert torch.nn.BatchNorm1d(6, affine=False)(x)[:, 1].abs().max() > 0.5
    # Once trained, every sample is centred on the running mean: the same
    # output in training and in evaluation, and a sample's output is its own
    # (no noise from the batch it comes in).
    h.eval()
    torch.testing.assert_close(h(x), out, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(h(x[:1]), out[:1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls", [FineTuner, FineTunerRegressor])
def test_predictions_do_not_depend_on_the_batch(cls, digits_ae, small_digits):
    # Each sample's prediction is its own: predicting one sample at a time,
    # or in subsets, gives the whole batch's outputs up to float32 rounding.
    X, y = small_digits
    est = cls(digits_ae, max_epochs=2, random_state=0).fit(X, y)
    method = est.predict_proba if cls is FineTuner else est.predict
    whole = method(X[:40])
    parts = np.concatenate([method(X[i : min(i + 7, 40)]) for i in range(0, 40, 7)])
    ones = np.concatenate([method(X[i : i + 1]) for i in range(40)])
    np.testing.assert_allclose(parts, whole, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ones, whole, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(est.transform(X[:1]), est.transform(X)[:1], rtol=1e-5)


def test_fine_tuners_heads(digits_ae, small_digits):
    X, y = small_digits
    clf = FineTuner(digits_ae, max_epochs=1, random_state=0).fit(X, y)
    reg = FineTunerRegressor(digits_ae, max_epochs=1, random_state=0)
    reg.fit(X, y.astype(np.float32))
    for est in (clf, reg):
        assert isinstance(est.net_.module_.head[0], CentredLayerNorm)


def test_centred_layer_norm_gradient_has_no_shared_direction():
    # In training the gradient is that of centring on the batch mean: a
    # loss that rewards moving every sample the same way gets no gradient,
    # so the features cannot drift together (a layer normalisation alone
    # lets them).
    x = torch.randn(8, 5, requires_grad=True)
    norm = CentredLayerNorm(5).train()
    norm(x.detach())  # a running mean that is not this batch's
    direction = torch.randn(5)
    (norm(x) @ direction).sum().backward()
    torch.testing.assert_close(x.grad.sum(dim=0), torch.zeros(5), atol=1e-5, rtol=0)
    y = torch.randn(8, 5, requires_grad=True)
    layer = torch.nn.functional.layer_norm(y, (5,))
    (layer @ direction).sum().backward()
    assert y.grad.sum(dim=0).abs().max() > 1e-2


def test_centred_layer_norm_running_mean():
    # The first batch's mean is taken whole (a short training must not end
    # with a mean shrunk towards zero); later ones by the momentum; a lone
    # training sample, which has no batch mean, is centred on the running one.
    norm = CentredLayerNorm(3, momentum=0.25)
    a, b = torch.randn(4, 3) + 10.0, torch.randn(4, 3) - 10.0
    norm(a)
    torch.testing.assert_close(norm.running_mean, a.mean(0))
    norm(b)
    torch.testing.assert_close(norm.running_mean, 0.5 * a.mean(0) + 0.5 * b.mean(0))
    for _ in range(8):  # weights 1/3, then max(1/t, 0.25) = 0.25
        norm(b)
    left = 0.5 * (2 / 3) * 0.75**7  # what remains of the first batch's weight
    expected = b.mean(0) + left * (a.mean(0) - b.mean(0))
    torch.testing.assert_close(norm.running_mean, expected)
    before = norm.running_mean.clone()
    lone = norm(b[:1])
    torch.testing.assert_close(norm.running_mean, before)
    centred = b[:1] - before
    expected = (centred - centred.mean()) / (centred.var(unbiased=False) + 1e-5).sqrt()
    torch.testing.assert_close(lone, expected)
    assert torch.isfinite(norm(torch.zeros(2, 3))).all()  # constant: no NaN


def test_frozen_head_centred_on_the_features_mean(digits_ae, small_digits):
    # Trained on fixed features, the head's running mean is their mean (up
    # to the noise of the last batch means), and it is saved with the model.
    X, y = small_digits
    features = digits_ae.transform(X)
    clf = FineTuner(digits_ae, strategy="frozen", max_epochs=20, random_state=0)
    clf.fit(X, y)
    mean = clf.net_.module_.head[0].running_mean.cpu().numpy()
    assert np.abs(features.mean(0)).max() > 0.1  # the codes are offset
    tol = 0.1 * features.std(0).max()
    np.testing.assert_allclose(mean, features.mean(0), atol=tol)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


def test_finetuner_refuses_columns_the_representation_did_not_see_in_that_order():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        rng.normal(size=(100, 5)) * [10, 5, 1, 0.1, 0.01], columns=list("abcde")
    )
    y = (df["a"] > 0).astype(int)
    rep = PCATransformer(n_components=2).fit(df)
    ft = FineTuner(rep, strategy="frozen", max_epochs=1, random_state=0)
    with pytest.raises(ValueError, match=r"X: e, d, c, b, a; the representation: a, b"):
        ft.fit(df[list("edcba")], y)
    ft.fit(df, y)
    np.testing.assert_allclose(
        ft.transform(df), rep.transform(df), rtol=1e-5, atol=1e-4
    )
    with pytest.warns(
        UserWarning,
        match="X has no feature names, but the representation was fitted with",
    ):
        FineTuner(rep, strategy="frozen", max_epochs=1, random_state=0).fit(
            df.to_numpy(), y
        )
    # A representation the fine-tuner fits itself reads the same X: no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FineTuner(PCATransformer(2), strategy="frozen", max_epochs=1).fit(df, y)


def test_finetuner_regressor_learns_what_a_linear_model_cannot():
    # Friedman's #1 (sin, square and linear terms), held out: the fine-tuned
    # network against scikit-learn's LinearRegression on the raw features.
    # R^2 at seeds 0, 1, 2: 0.931, 0.930, 0.927 against 0.795.
    X, y = make_friedman1(n_samples=1200, noise=0.5, random_state=0)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0)
    rep = AutoencoderTransformer(8, max_epochs=20, random_state=0).fit(X_tr)
    reg = FineTunerRegressor(rep, max_epochs=60, random_state=0).fit(X_tr, y_tr)
    linear = LinearRegression().fit(X_tr, y_tr).score(X_te, y_te)
    assert reg.score(X_te, y_te) > linear + 0.08, (reg.score(X_te, y_te), linear)


def test_finetuner_regressor_standardises_targets_too_large_to_square():
    # y above ~1e154 overflows y.std() in float64: the scale must stay finite
    # and so must the predictions.
    X = np.random.default_rng(0).normal(size=(100, 5))
    y = np.r_[1e200, np.arange(99.0)]
    reg = FineTunerRegressor(PCATransformer(2), max_epochs=1, random_state=0).fit(X, y)
    assert np.isfinite(reg.y_scale_).all() and np.isfinite(reg.y_mean_).all()
    np.testing.assert_allclose(reg.y_mean_, [y.mean()], rtol=1e-12)
    np.testing.assert_allclose(reg.y_scale_, [np.std(y / 1e200) * 1e200], rtol=1e-12)
    assert np.isfinite(reg.predict(X)).all()


def test_finetuner_regressor_learns_targets_too_small_to_square():
    # A spread of 1e-170 squares to 0 in float64: the targets must still be
    # scaled to unit spread, and learned as those of 1e170 times the size.
    X, y = make_regression(n_samples=200, n_features=5, noise=0.1, random_state=0)
    rep = PCATransformer(n_components=5).fit(X)
    kw = dict(strategy="frozen", max_epochs=30, random_state=0)
    small = FineTunerRegressor(rep, **kw).fit(X, y * 1e-170)
    np.testing.assert_allclose(small.y_scale_, [y.std() * 1e-170], rtol=1e-12)
    unit = FineTunerRegressor(rep, **kw).fit(X, y)
    np.testing.assert_allclose(small.predict(X) * 1e170, unit.predict(X), rtol=1e-6)
    assert unit.score(X, y) > 0.9  # what the tiny targets get too; constant: 0


def test_finetuner_regressor_learns_a_constant_target_column():
    # A target column of spread 0 (a constant output, or a constant fold in
    # cross-validation) keeps a scale of 1 and is learned as that constant.
    # Its scale of 0 divided 0 by 0: a NaN loss, blamed on lr.
    X = np.random.default_rng(0).normal(size=(80, 5)).astype(np.float32)
    Y = np.c_[2 * X[:, 0], np.full(len(X), 7.0)]
    reg = FineTunerRegressor(PCATransformer(3), max_epochs=100, random_state=0)
    reg.fit(X, Y)
    assert reg.y_scale_[1] == 1 and reg.y_mean_[1] == 7
    pred = reg.predict(X)[:, 1]
    assert np.isfinite(pred).all()
    np.testing.assert_allclose(pred, 7.0, rtol=0, atol=0.01)  # 2.5e-4 here


@pytest.mark.parametrize(
    "head, match",
    [
        (lambda i, o: torch.nn.Linear(i + 1, o), "fails on the encoder's 4 features"),
        (
            lambda i, o: torch.nn.Linear(i, o + 1),
            r"must map \(batch, 4\) to \(batch, 3\)",
        ),
        (lambda i, o: torch.nn.Linear(i, 1), r"returned \(2, 1\)"),
        (
            lambda i, o: torch.nn.Sequential(
                torch.nn.Linear(i, o), torch.nn.Unflatten(1, (1, o))
            ),
            r"returned \(2, 1, 3\)",
        ),
    ],
)
def test_a_head_of_the_wrong_shape_is_refused_before_training(head, match):
    X = np.random.default_rng(0).normal(size=(60, 10)).astype(np.float32)
    y = np.arange(60) % 3
    with pytest.raises(ValueError, match=match):
        FineTuner(PCATransformer(4), head=head, max_epochs=1).fit(X, y)


def test_a_fitted_representation_is_copied_not_shared(small_digits):
    # Refitting the caller's object, or a set_params on a clone (as a grid
    # search does), must change nothing of a fitted fine-tuner or the caller.
    X, y = small_digits
    rep = PCATransformer(n_components=4, random_state=0).fit(X)
    ft = FineTuner(rep, strategy="frozen", max_epochs=1, random_state=0).fit(X, y)
    assert ft.representation_ is not rep
    before = ft.predict_proba(X[:20])
    rep.set_params(n_components=6).fit(X[::-1] * 2)
    np.testing.assert_array_equal(ft.predict_proba(X[:20]), before)

    rep = PCATransformer(n_components=4, random_state=0).fit(X)
    twin = clone(FineTuner(rep).set_output(transform="pandas"))
    twin.set_params(representation__n_components=7)
    assert rep.n_components == 4 and rep.transform(X[:2]).shape == (2, 4)
    # A new value of what it learns: an unfitted clone with it, pre-trained
    # by fit (test_a_new_setting_of_a_fitted_representation_is_pre_trained).
    assert not is_fitted(twin.representation) and twin.representation is not rep
    assert twin.representation.n_components == 7
    assert twin._sklearn_output_config == {"transform": "pandas"}


def test_fine_tuning_a_frozen_fine_tuner_trains_all_its_weights(
    digits_ae, small_digits
):
    # The copy of a fine-tuner's encoder kept its frozen weights'
    # requires_grad=False: "full" fine-tuning from it trained nothing but
    # the head, and a re-drawn block stayed random.
    X, y = small_digits
    probe = FineTuner(digits_ae, strategy="frozen", max_epochs=1, random_state=0)
    probe.fit(X, y)
    assert all(p.requires_grad for p in probe.export_encoder().parameters())
    before = transfer_encoder(probe)
    assert all(p.requires_grad for p in before.parameters())
    full = FineTuner(probe, reinit_layers=1, max_epochs=2, random_state=0).fit(X, y)
    after = full.net_.module_.encoder
    for (name, old), new in zip(before.named_parameters(), after.parameters()):
        assert new.requires_grad, name
        assert not torch.equal(old, new.detach().cpu()), name  # trained (or re-drawn)


def test_fine_tuning_starts_from_the_representations_transform_layer(
    digits_ae, small_digits, tmp_path
):
    # The head reads what the representation's transform gives: a probe that
    # chose an inner block is fine-tuned from that block, the blocks above
    # dropped. (The whole encoder was fine-tuned before, with a warning.)
    X, y = small_digits
    rep = copy.deepcopy(digits_ae).set_params(transform_layer=0)
    whole = encoder_blocks(transfer_encoder(digits_ae))
    assert len(whole) == 3  # MLP (256, 128), then the 16-wide bottleneck
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frozen = FineTuner(
            rep, strategy="frozen", max_epochs=2, random_state=0, device="cpu"
        )  # on the CPU, as rep: the two transforms are held to the bit
        frozen.fit(X, y)
    assert frozen.n_blocks_ == 1
    np.testing.assert_array_equal(frozen.transform(X), rep.transform(X))
    encoder = frozen.net_.module_.encoder
    n_kept = sum(p.numel() for p in whole[0].params)
    assert sum(p.numel() for p in encoder.parameters()) == n_kept
    # Partial transfer re-draws the top of the kept blocks, which it counts.
    with pytest.raises(ValueError, match="the encoder has only 1 blocks"):
        FineTuner(rep, reinit_layers=2, max_epochs=1).fit(X, y)
    full = FineTuner(rep, max_epochs=2, random_state=0).fit(X, y)
    assert full.transform(X).shape == (len(X), 256)
    save(full, tmp_path / "ft.pkl")
    again = load(tmp_path / "ft.pkl")
    np.testing.assert_array_equal(again.predict_proba(X), full.predict_proba(X))
    # The default, transform_layer=-1, still fine-tunes the whole encoder.
    assert FineTuner(digits_ae, max_epochs=1, random_state=0).fit(X, y).n_blocks_ == 3


def test_an_encoder_of_unknown_layers_is_not_cut_but_refused(small_digits):
    X, y = small_digits
    enc = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(64, 8),
        torch.nn.ReLU(),
        torch.nn.Linear(8, 4),
    )
    rep = AutoencoderTransformer(encoder=enc, max_epochs=1, random_state=0).fit(X)
    rep.set_params(transform_layer=0)
    assert rep.transform(X).shape == (len(X), 8)  # read by a hook, all blocks run
    with pytest.raises(ValueError, match="Sequential cannot be cut after block 0"):
        FineTuner(rep, max_epochs=1).fit(X, y)


def test_a_new_setting_of_a_fitted_representation_is_pre_trained(small_digits):
    # A grid over representation__n_components reused the fitted weights
    # whatever the value: every candidate scored the same and
    # best_estimator_ transformed to the fitted width.
    X, y = small_digits
    pca = PCATransformer(5).fit(X)
    search = GridSearchCV(
        FineTuner(pca, max_epochs=2, random_state=0),
        {"representation__n_components": [3, 5]},
        cv=2,
    ).fit(X, y)
    assert search.cv_results_["mean_test_score"][0] != pytest.approx(
        search.cv_results_["mean_test_score"][1]
    )
    best = search.best_params_["representation__n_components"]
    assert search.best_estimator_.representation_.n_components_ == best
    assert pca.n_components == 5 and pca.n_components_ == 5  # left as it was

    ft = FineTuner(pca).set_params(representation__n_components=3)
    assert ft.representation is not pca and not is_fitted(ft.representation)
    assert ft.fit(X, y).representation_.n_components_ == 3
    # The same value, or a setting of how it runs, keeps it fitted.
    ft = FineTuner(pca).set_params(representation__n_components=5)
    assert ft.representation is pca
    ae = _tiny_ae().fit(X)
    ft = FineTuner(ae).set_params(
        representation__verbose=0, representation__device="cpu"
    )
    assert ft.representation is ae and is_fitted(ft.representation)


def test_fine_tuner_of_a_string_model_given_ids_names_its_representation():
    # The message blamed the fine-tuner: "FineTuner was fitted on strings".
    strings = ["abcab", "bcabc", "cabca", "aabbc"] * 4
    rep = make("GPTTransformer").fit(strings)
    with pytest.raises(
        TypeError,
        match="FineTuner's representation, a GPTTransformer, was fitted on "
        "strings but X holds integer token ids",
    ):
        FineTuner(rep, max_epochs=1, random_state=0).fit([[1, 2], [3, 4]], [0, 1])


def test_a_head_on_one_feature_tells_the_classes_apart():
    # Three classes along one PCA feature: a per-sample normalisation of one
    # feature is 0 for every sample ("layer", one prediction for all), so
    # "auto" scales a representation of fewer than 3 features instead.
    X, y = make_blobs(
        n_samples=300, centers=[[-4, 0], [0, 0], [4, 0]], cluster_std=0.7,
        random_state=0,
    )  # fmt: skip
    X = X.astype(np.float32)
    rep = PCATransformer(n_components=1).fit(X)
    clf = FineTuner(rep, max_epochs=30, random_state=0).fit(X[::2], y[::2])
    assert isinstance(clf.net_.module_.head[0], CentredScale)
    assert clf.score(X[1::2], y[1::2]) > 0.85
    layer = clone(clf).set_params(head_norm="layer").fit(X[::2], y[::2])
    assert len(np.unique(layer.predict_proba(X[1::2]).round(6), axis=0)) == 1
    frozen = clone(clf).set_params(strategy="frozen").fit(X[::2], y[::2])
    assert frozen.score(X[1::2], y[1::2]) > 0.85


def test_frozen_linear_head_is_a_linear_probe():
    # With a frozen encoder the default head is an affine map of the
    # features: its predictions are a linear function of lossless PCA
    # features, and it fits a linear target. A per-sample normalisation
    # ("layer") sees only each sample's direction and cannot.
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(400, 5)) * [5, 3, 2, 1, 0.5] + 10).astype(np.float32)
    t = X @ np.array([1.0, -2.0, 0.5, 3.0, 1.0])
    rep = PCATransformer(n_components=5).fit(X)
    for norm, fits in (("auto", True), ("layer", False)):
        reg = FineTunerRegressor(
            rep, strategy="frozen", head_norm=norm, max_epochs=50, random_state=0
        ).fit(X[:300], t[:300])
        pred = reg.predict(X)
        affine = LinearRegression().fit(X, pred).score(X, pred)
        assert (affine > 1 - 1e-6) is fits, (norm, affine)
        assert (reg.score(X[300:], t[300:]) > 0.98) is fits, norm


@pytest.mark.parametrize(
    "params, n_components, expected",
    [
        ({}, 16, CentredLayerNorm),  # a trained encoder of 3 features or more
        ({}, 2, CentredScale),  # fewer: a sample's direction is a sign
        ({"strategy": "frozen"}, 16, CentredScale),
        ({"freeze_layers": 2}, 16, CentredScale),  # every block of the MLP
        ({"freeze_layers": 1}, 16, CentredLayerNorm),
        ({"encoder_lr_scale": 0.0}, 16, CentredScale),  # trains at a rate of 0
        ({"strategy": "frozen", "head_norm": "layer"}, 16, CentredLayerNorm),
        ({"head_norm": "scale"}, 16, CentredScale),
        ({"head_norm": None, "head": "mlp"}, 16, torch.nn.Identity),
    ],
)
def test_head_norm_auto_follows_what_trains(params, n_components, expected):
    X, y = make_blobs(n_samples=60, n_features=6, centers=3, random_state=0)
    rep = _tiny_ae(n_components=n_components, max_epochs=1).fit(X)
    clf = FineTuner(rep, max_epochs=1, random_state=0, **params).fit(X, y)
    assert clf.n_blocks_ == 2
    assert type(clf.net_.module_.head[0]) is expected


def test_head_norm_with_a_head_of_ones_own_is_refused(digits_ae, small_digits):
    X, y = small_digits
    head = lambda n_in, n_out: torch.nn.Linear(n_in, n_out)  # noqa: E731
    clf = FineTuner(digits_ae, head=head, head_norm="scale", max_epochs=1)
    with pytest.raises(ValueError, match=r"head_norm='scale' normalises the input"):
        clf.fit(X, y)
    for norm in ("auto", None):  # the head as it is, as given
        clf.set_params(head_norm=norm).fit(X, y)
        assert isinstance(clf.net_.module_.head, torch.nn.Linear)


def test_centred_scale_is_one_affine_map_for_every_sample():
    # Centred on the running mean, divided by the running root mean square
    # (first batch whole, then the momentum); a lone sample, evaluation, and
    # a constant batch (no NaN) change nothing.
    norm = CentredScale(3, momentum=0.25)
    a, b = torch.randn(6, 3) * 4.0 + 10.0, torch.randn(6, 3) - 10.0
    out = norm(a)
    sq = (a - a.mean(0)).square().mean()
    torch.testing.assert_close(out, (a - a.mean(0)) / (sq + 1e-5).sqrt())
    norm(b)
    sq = 0.5 * sq + 0.5 * (b - b.mean(0)).square().mean()
    torch.testing.assert_close(norm.running_sq, sq)
    before = (norm.running_mean.clone(), norm.running_sq.clone())
    lone = norm(b[:1])
    torch.testing.assert_close(lone, (b[:1] - before[0]) / (before[1] + 1e-5).sqrt())
    torch.testing.assert_close(
        norm.eval()(b), (b - before[0]) / (before[1] + 1e-5).sqrt()
    )
    torch.testing.assert_close((norm.running_mean, norm.running_sq), before)
    assert torch.isfinite(CentredScale(3)(torch.zeros(2, 3))).all()


def _split(labels, fraction=0.1, weight=None, seed=0, stratify=True):
    from sk_replearn.data import ArrayDataset, WeightedTargets
    from sk_replearn.training import RandomSplit

    n = len(labels)
    targets = labels if weight is None else WeightedTargets(labels, weight)
    torch.manual_seed(seed)
    return RandomSplit(fraction, stratify=stratify)(
        ArrayDataset(torch.arange(float(n))[:, None], targets)
    )


@pytest.mark.parametrize("seed", range(5))
def test_early_stopping_holds_out_each_class_in_its_share(seed):
    # As MLPClassifier's early stopping: a tenth of each class (60, 48, 12:
    # 6, 4.8, 1.2), the sample left to draw from the largest remainder; a
    # random tenth of 120 holds none of the 12 in 28% of draws. The rest
    # train, in the random order; the draw follows the seed.
    y = torch.tensor([0] * 60 + [1] * 48 + [2] * 12)
    train, valid = _split(y, seed=seed)
    assert torch.bincount(valid.y, minlength=3).tolist() == [6, 5, 1]
    together = torch.cat([train.X[:, 0], valid.X[:, 0]]).sort().values
    torch.testing.assert_close(together, torch.arange(120.0))
    again, _ = _split(y, seed=seed)
    torch.testing.assert_close(again.X, train.X)
    plain, held = _split(y, seed=seed, stratify=False)  # the draw as it was
    torch.manual_seed(seed)
    torch.testing.assert_close(held.X[:, 0], torch.randperm(120)[:12].float())


def test_early_stopping_breaks_ties_at_random_and_trains_every_class():
    # Four classes of 5 and a tenth held out: two samples, from two classes
    # that the seed picks. A class of one sample always trains.
    tied = torch.tensor([0, 1, 2, 3] * 5)
    picked = []
    for seed in range(20):
        _, valid = _split(tied, seed=seed)
        assert len(valid) == 2 and len(set(valid.y.tolist())) == 2
        picked += valid.y.tolist()
    assert set(picked) == {0, 1, 2, 3}
    lone = torch.tensor([0] + [1] * 19)
    for seed in range(20):
        train, valid = _split(lone, seed=seed)
        assert 0 in train.y.tolist() and valid.y.tolist() == [1, 1]
    with pytest.raises(ValueError, match="every class has a single sample"):
        _split(torch.arange(10), fraction=0.3)


@pytest.mark.parametrize("stratify", [True, False])
def test_early_stopping_holds_out_only_samples_of_positive_weight(stratify):
    # Held out, a sample of weight 0 adds nothing to the validation loss: a
    # split of such samples only scored 0 at every epoch and stopped early.
    y = torch.arange(100) % 2
    weight = (torch.arange(100) < 20).float()  # 20 samples count
    for seed in range(10):
        train, valid = _split(y, weight=weight, seed=seed, stratify=stratify)
        assert len(valid) == 2 and (valid.y.weight > 0).all()
        assert len(train) == 98
    with pytest.raises(ValueError, match="1 of them has one"):
        _split(y, weight=(torch.arange(100) == 0).float(), stratify=stratify)


def test_only_the_classifier_stratifies_its_early_stopping(digits_ae, small_digits):
    X, y = small_digits
    kw = dict(early_stopping=True, max_epochs=1, random_state=0)
    clf = FineTuner(digits_ae, **kw).fit(X, y)
    reg = FineTunerRegressor(digits_ae, **kw).fit(X, y.astype(float))
    assert clf.net_.train_split.stratify and not reg.net_.train_split.stratify
    ae = AutoencoderTransformer(**kw).fit(X)
    assert not ae.net_.train_split.stratify


@pytest.mark.parametrize(
    "y, kind",
    [
        (np.eye(3, dtype=int)[np.arange(30) % 3], "multilabel-indicator"),
        (np.c_[np.arange(30) % 3, np.arange(30) % 2], "multiclass-multioutput"),
    ],
)
def test_finetuner_names_the_wrappers_for_several_label_columns(y, kind):
    X = np.random.default_rng(0).normal(size=(30, 4))
    rep = PCATransformer(n_components=2)
    with pytest.raises(ValueError, match=rf"y has {y.shape[1]} columns \({kind}\)"):
        FineTuner(rep, max_epochs=1).fit(X, y)
    wrapped = MultiOutputClassifier(FineTuner(rep, max_epochs=1, random_state=0))
    assert wrapped.fit(X, y).predict(X).shape == y.shape


def test_sample_weight_weighs_each_samples_loss():
    # The batch loss is the mean of each sample's loss times its weight; a
    # sample's loss over several targets is their mean, as unweighted.
    from sk_replearn.data import WeightedTargets
    from sk_replearn.training import SupervisedNet

    torch.manual_seed(0)
    logits, labels = torch.randn(5, 3), torch.tensor([0, 2, 1, 1, 0])
    weight = torch.tensor([0.5, 2.0, 0.0, 1.0, 1.5])
    clf = SupervisedNet(torch.nn.Linear(2, 3), criterion=torch.nn.CrossEntropyLoss)
    clf.initialize()
    per_sample = -torch.log_softmax(logits, dim=1)[torch.arange(5), labels]
    torch.testing.assert_close(
        clf.get_loss(logits, WeightedTargets(labels, weight)),
        (per_sample * weight).mean(),
    )
    pred, target = torch.randn(5, 2), torch.randn(5, 2)
    reg = SupervisedNet(torch.nn.Linear(2, 2), criterion=torch.nn.MSELoss)
    reg.initialize()
    expected = ((pred - target) ** 2).mean(dim=1) @ weight / 5
    torch.testing.assert_close(
        reg.get_loss(pred, WeightedTargets(target, weight)), expected
    )
    torch.testing.assert_close(
        reg.get_loss(pred, WeightedTargets(target, torch.ones(5))),
        reg.get_loss(pred, target),
    )


def test_sample_weights_are_scaled_to_a_mean_of_1():
    # Weights 3, 1, 3, 1, ... weigh the loss as 1.5, 0.5, ...: their mean is
    # 1, so that lr keeps its meaning. They were left divided by their
    # maximum (1, 1/3, ...), which shrank SGD's steps and the reported loss
    # by mean(w) / max(w) = 2/3. lr=1e-12: the one step leaves the model as
    # it was, so its probabilities give the loss of that step.
    X, y = make_blobs(n_samples=60, centers=3, n_features=4, random_state=0)
    X = X.astype(np.float32)
    w = np.where(np.arange(60) % 2, 1.0, 3.0)
    rep = PCATransformer(n_components=3).fit(X)
    clf = FineTuner(
        rep,
        strategy="frozen",
        head_norm=None,
        optimizer="sgd",
        lr=1e-12,
        weight_decay=0,
        max_epochs=1,
        batch_size=60,
        lr_schedule=None,
        random_state=0,
    ).fit(X, y, sample_weight=w)
    P = clf.predict_proba(X)
    expected = np.mean(-np.log(P[np.arange(60), y]) * w / w.mean())
    np.testing.assert_allclose(clf.history_[-1]["train_loss"], expected, rtol=1e-5)


@pytest.mark.parametrize("cls", [FineTuner, FineTunerRegressor])
def test_equal_sample_weights_are_no_weights(cls):
    X, y = make_blobs(n_samples=80, centers=3, n_features=4, random_state=0)
    rep = PCATransformer(n_components=3).fit(X)
    method = "predict_proba" if cls is FineTuner else "predict"
    kw = dict(max_epochs=3, random_state=0)
    plain = getattr(cls(rep, **kw).fit(X, y), method)(X)
    weighted = getattr(cls(rep, **kw).fit(X, y, sample_weight=np.full(80, 3.0)), method)
    np.testing.assert_array_equal(weighted(X), plain)


def test_labels_of_zero_weight_are_not_learned():
    # Half the samples of class 0 are labelled 1: fitted as they are, they
    # pull the boundary into class 0; given weight 0, they are ignored.
    X, y = make_blobs(
        n_samples=400, centers=[[-2, 0], [2, 0]], cluster_std=1.0, random_state=0
    )  # fmt: skip
    noisy = y.copy()
    wrong = np.flatnonzero(y == 0)[::2]
    noisy[wrong] = 1
    weight = np.ones(len(y))
    weight[wrong] = 0.0
    rep = PCATransformer(n_components=2).fit(X)
    kw = dict(max_epochs=30, random_state=0)
    X_test, y_test = X[1::2], y[1::2]
    plain = FineTuner(rep, **kw).fit(X[::2], noisy[::2])
    weighted = FineTuner(rep, **kw).fit(X[::2], noisy[::2], sample_weight=weight[::2])
    assert weighted.score(X_test, y_test) > 0.93  # the Bayes rate: 0.977
    assert plain.score(X_test, y_test) < weighted.score(X_test, y_test) - 0.1


def test_sample_weight_reaches_the_fit_through_scikit_learn():
    from sklearn import config_context

    X, y = make_blobs(n_samples=90, centers=3, n_features=4, random_state=0)
    weight = np.where(y == 0, 5.0, 1.0)
    rep = PCATransformer(n_components=3).fit(X)
    ft = FineTuner(rep, max_epochs=2, random_state=0)
    direct = clone(ft).fit(X, y, sample_weight=weight).predict_proba(X)
    pipe = make_pipeline(FunctionTransformer(), clone(ft))
    pipe.fit(X, y, finetuner__sample_weight=weight)
    np.testing.assert_array_equal(pipe.predict_proba(X), direct)
    scores = cross_val_score(clone(ft), X, y, cv=3, params={"sample_weight": weight})
    assert np.isfinite(scores).all()
    with config_context(enable_metadata_routing=True):
        routed = clone(ft).set_fit_request(sample_weight=True)
        pipe = make_pipeline(FunctionTransformer(), routed)
        pipe.fit(X, y, sample_weight=weight)
        np.testing.assert_array_equal(pipe.predict_proba(X), direct)


@pytest.mark.parametrize(
    "weight, match",
    [
        (np.r_[-1.0, np.ones(29)], "Negative values in data passed to `sample_weight`"),
        (np.ones(10), r"sample_weight.shape == \(10,\), expected \(30,\)"),
        (np.r_[np.nan, np.ones(29)], "sample_weight contains NaN"),
        (np.zeros(30), "Sample weights must contain at least one non-zero"),
    ],
)
def test_bad_sample_weight_is_refused_by_name(weight, match):
    X, y = make_blobs(n_samples=30, centers=2, n_features=4, random_state=0)
    with pytest.raises(ValueError, match=match):
        FineTuner(PCATransformer(n_components=2), max_epochs=1).fit(
            X, y, sample_weight=weight
        )


def _imbalanced(n=300, seed=0):
    """Two overlapping classes, "rare" a sixth of the samples."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = np.where(X[:, 0] + 0.8 * rng.normal(size=n) > 1.2, "rare", "common")
    return X, y


def test_class_weight_is_the_sample_weight_of_each_class():
    # As scikit-learn's classifiers: "balanced" and a dict weigh each sample
    # by its class, times sample_weight when both are given.
    from sklearn.utils.class_weight import compute_sample_weight

    X, y = _imbalanced(120)
    rep = PCATransformer(n_components=3).fit(X)
    kw = dict(max_epochs=3, random_state=0)
    per_sample = np.arange(1.0, 121.0) % 5
    for class_weight in ("balanced", {"rare": 4.0}, {"rare": 2.0, "common": 0.5}):
        expected = compute_sample_weight(class_weight, y)
        by_class = FineTuner(rep, class_weight=class_weight, **kw).fit(X, y)
        by_sample = FineTuner(rep, **kw).fit(X, y, sample_weight=expected)
        np.testing.assert_array_equal(
            by_class.predict_proba(X), by_sample.predict_proba(X)
        )
        both = FineTuner(rep, class_weight=class_weight, **kw)
        both.fit(X, y, sample_weight=per_sample)
        product = FineTuner(rep, **kw).fit(X, y, sample_weight=expected * per_sample)
        np.testing.assert_array_equal(both.predict_proba(X), product.predict_proba(X))


def test_balanced_class_weight_finds_the_rare_class():
    from sklearn.metrics import balanced_accuracy_score, recall_score

    X, y = _imbalanced()
    X_test, y_test = _imbalanced(seed=1)
    rep = PCATransformer(n_components=4).fit(X)
    kw = dict(strategy="frozen", max_epochs=30, random_state=0)
    plain = FineTuner(rep, **kw).fit(X, y)
    balanced = FineTuner(rep, class_weight="balanced", **kw).fit(X, y)
    recall = [
        recall_score(y_test, m.predict(X_test), pos_label="rare")
        for m in (plain, balanced)
    ]
    assert recall[1] > recall[0] + 0.25, recall  # 0.51 -> 0.84
    assert balanced_accuracy_score(
        y_test, balanced.predict(X_test)
    ) > balanced_accuracy_score(y_test, plain.predict(X_test))


@pytest.mark.parametrize(
    "class_weight, error, match",
    [
        ({"rare": -1.0}, ValueError, r"class_weight\['rare'\]=-1.0 must be a finite"),
        ({"rare": np.nan}, ValueError, r"class_weight\['rare'\]=nan must be a finite"),
        ({"rare": "3"}, TypeError, r"class_weight\['rare'\]='3' must be a number"),
        ({"rare": True}, TypeError, r"class_weight\['rare'\]=True must be a number"),
        ({0: 1.0, 1: 5.0}, ValueError, "names none of the classes of y.*'common'"),
        ({"rare": 0, "common": 0}, ValueError, "every sample a weight of 0"),
        ("auto", ValueError, "'class_weight' parameter of FineTuner must be"),
    ],
)
def test_bad_class_weight_is_refused_by_name(class_weight, error, match):
    X, y = _imbalanced(60)
    with pytest.raises(error, match=match):
        FineTuner(PCATransformer(n_components=2), class_weight=class_weight).fit(X, y)


def test_class_weight_is_saved_searched_and_defaults_for_older_files(tmp_path):
    X, y = make_blobs(n_samples=90, centers=3, n_features=4, random_state=0)
    rep = PCATransformer(n_components=3).fit(X)
    # numpy labels as keys, as np.unique gives them, are saved as numbers
    class_weight = {np.int64(0): 3.0, 2: 0.5}
    clf = FineTuner(rep, class_weight=class_weight, max_epochs=2, random_state=0)
    clf.fit(X, y)
    save(clf, tmp_path / "clf.pt")
    loaded = load(tmp_path / "clf.pt")
    assert loaded.class_weight == {0: 3.0, 2: 0.5}
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    # a loss weight, as lr: set after fit, it is saved as set
    save(clf.set_params(class_weight="balanced"), tmp_path / "set.pt")
    assert load(tmp_path / "set.pt").class_weight == "balanced"
    search = GridSearchCV(
        FineTuner(rep, max_epochs=2, random_state=0),
        {"class_weight": [None, "balanced"]},
        cv=3,
    ).fit(X, y)
    assert search.best_params_["class_weight"] in (None, "balanced")
    # a pickle from before the parameter weighed every class 1
    state = pickle.loads(pickle.dumps(clf)).__dict__
    del state["class_weight"]
    old = FineTuner.__new__(FineTuner)
    old.__setstate__(state)
    assert old.class_weight is None and "class_weight" in old.get_params()


def test_a_checkpoint_counts_the_sample_weights_as_data():
    # A fit resumed from a checkpoint must have the same weights: another
    # weighting is other data.
    from sk_replearn._fingerprint import _data_fingerprint
    from sk_replearn.data import WeightedTargets

    X, y = torch.randn(20, 3), torch.arange(20) % 2
    ones, twos = torch.ones(20), torch.ones(20).index_fill(0, torch.tensor([3]), 2.0)
    fingerprints = [
        _data_fingerprint(X, y),
        _data_fingerprint(X, WeightedTargets(y, ones)),
        _data_fingerprint(X, WeightedTargets(y, twos)),
    ]
    assert len({f["data_digest"] for f in fingerprints}) == 3
    again = _data_fingerprint(X, WeightedTargets(y, twos.clone()))
    assert again == fingerprints[2]


def test_fine_tuning_under_a_float64_default_dtype():
    # torch.set_default_dtype(torch.float64) made the head float64 and the
    # first product failed (Float and Double); the network is float32.
    X, y = make_blobs(n_samples=60, centers=2, n_features=4, random_state=0)
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        clf = FineTuner(PCATransformer(n_components=2), random_state=0)
        clf.fit(X, y)
    finally:
        torch.set_default_dtype(before)
    assert {p.dtype for p in clf.net_.module_.parameters()} == {torch.float32}
    assert clf.score(X, y) > 0.9


def test_regression_targets_are_standardised_with_their_weights():
    # Ten targets of 1e6 with weight 0: the scale is the other samples'
    # (it was the outliers', which squeezed every other target to ~0).
    X, y = make_regression(n_samples=200, n_features=5, noise=0.1, random_state=0)
    noisy = y.copy()
    noisy[:10] = 1e6
    weight = np.r_[np.zeros(10), np.ones(190)]
    rep = PCATransformer(n_components=5).fit(X)
    kw = dict(strategy="frozen", max_epochs=30, random_state=0)
    reg = FineTunerRegressor(rep, **kw).fit(X, noisy, sample_weight=weight)
    np.testing.assert_allclose(reg.y_mean_, [y[10:].mean()], rtol=1e-12)
    np.testing.assert_allclose(reg.y_scale_, [y[10:].std()], rtol=1e-12)
    assert reg.score(X[10:], y[10:]) > 0.9


def test_callbacks_see_the_targets_of_weighted_batches():
    # skorch's EpochScoring reads each batch's targets as an array: it failed
    # on the weighted targets ("Cannot convert this data type").
    from skorch.callbacks import EpochScoring

    def accuracy(net, X, y):  # X: the validation Dataset; y: its targets
        return float((net.forward(X).argmax(1).numpy() == np.asarray(y)).mean())

    X, y = make_blobs(n_samples=90, centers=3, n_features=4, random_state=0)
    score = EpochScoring(accuracy, lower_is_better=False, name="valid_acc")
    clf = FineTuner(
        PCATransformer(n_components=3), max_epochs=3, early_stopping=True,
        callbacks=[score], random_state=0,
    )  # fmt: skip
    clf.fit(X, y, sample_weight=np.where(y == 0, 2.0, 1.0))
    assert all(0 <= a <= 1 for a in clf.history_[:, "valid_acc"])


def test_weighted_targets_go_to_the_device_with_their_batch():
    # The accelerated validation batches moved plain targets only: weighted
    # ones stayed on the CPU, beside predictions on the GPU.
    from sk_replearn.data import WeightedTargets
    from sk_replearn.distributed import _on_device

    batch = (torch.zeros(2, 3), WeightedTargets(torch.tensor([0, 1]), torch.ones(2)))
    ((xb, yb),) = _on_device([batch], torch.device("meta"))
    assert xb.device.type == yb.y.device.type == yb.weight.device.type == "meta"


def test_centred_scale_keeps_float16_features_of_any_spread():
    # Features of spread 400 in float16 (a fine-tuning under precision="16"):
    # their squares overflow float16, so the statistics are float32.
    x = (torch.randn(32, 2) * 400.0).half()
    norm = CentredScale(2)
    out = norm(x)
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
    assert torch.isfinite(norm.running_sq) and norm.running_sq > 65504
    reference = CentredScale(2).eval()
    reference.load_state_dict(norm.state_dict())
    torch.testing.assert_close(
        norm.eval()(x).float(), reference(x.float()), rtol=2e-3, atol=2e-3
    )


def test_a_fine_tuner_pickled_before_head_norm_has_the_layer_it_was_fitted_with(
    digits_ae, small_digits
):
    X, y = small_digits
    clf = FineTuner(digits_ae, head_norm="layer", max_epochs=1, random_state=0)
    state = clf.fit(X, y).__getstate__()
    del state["head_norm"]  # as a pickle of then holds it
    old = FineTuner.__new__(FineTuner)
    old.__setstate__(state)
    assert old.get_params()["head_norm"] == "layer"
    np.testing.assert_array_equal(clone(old).fit(X, y).predict(X), clf.predict(X))


def test_an_unfitted_representation_pre_trains_on_pretrain_x(small_digits):
    X, y = small_digits
    clf = FineTuner(PCATransformer(n_components=4), max_epochs=1, random_state=0)
    clf.fit(X[:100], y[:100], pretrain_X=X)
    assert clf.representation_.n_samples_ == len(X)


def test_pretrain_x_of_shaped_samples_where_x_is_flat(small_digits):
    # The same values per sample, (1, 8, 8) against 64: the same samples.
    X, y = small_digits
    rep = AutoencoderTransformer(
        n_components=4, input_shape=(1, 8, 8), max_epochs=1, batch_size=32,
        random_state=0,
    )  # fmt: skip
    clf = FineTuner(rep, max_epochs=1, random_state=0)
    clf.fit(X[:60], y[:60], pretrain_X=X[:120].reshape(-1, 1, 8, 8))
    assert clf.predict(X[:5]).shape == (5,)


def test_the_criterion_scores_bf16_predictions_in_float32():
    """Under precision="bf16" the fine-tuning loss is the float32 criterion's."""
    from sk_replearn.training import SupervisedNet

    torch.manual_seed(0)
    logits = torch.randn(6, 3).to(torch.bfloat16)
    labels = torch.tensor([0, 2, 1, 1, 0, 2])
    clf = SupervisedNet(
        torch.nn.Linear(2, 3), criterion=torch.nn.CrossEntropyLoss, precision="bf16"
    ).initialize()
    loss = clf.get_loss(logits, labels)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(
        loss, torch.nn.functional.cross_entropy(logits.float(), labels)
    )


def test_an_empty_x_gets_scikit_learns_message():
    """An empty X is refused by scikit-learn's check of X, not an IndexError."""
    with pytest.raises(ValueError, match="2D array"):
        FineTuner(max_epochs=1).fit([], [])


def test_an_array_setting_of_a_fitted_representation_replaces_it(small_digits):
    """An array-valued nested parameter, not comparable by ==, counts as a change."""
    ae = _tiny_ae().fit(small_digits[0][:64])
    ft = FineTuner(ae).set_params(representation__input_shape=np.array([8, 8]))
    assert ft.representation is not ae and not is_fitted(ft.representation)
    np.testing.assert_array_equal(ft.representation.input_shape, [8, 8])
    assert ae.input_shape is None and is_fitted(ae)


def test_sample_weights_of_any_magnitude_weigh_the_same():
    """Only the ratios of the sample weights count, even near float64's largest."""
    X, y = make_blobs(n_samples=60, centers=3, n_features=4, random_state=0)
    rep = PCATransformer(n_components=3).fit(X)
    w = np.where(np.arange(60) % 2, 1.0, 3.0)
    kw = dict(strategy="frozen", max_epochs=2, random_state=0)
    ref = FineTuner(rep, **kw).fit(X, y, sample_weight=w)
    huge = FineTuner(rep, **kw).fit(X, y, sample_weight=w * 1e307)
    np.testing.assert_allclose(huge.predict_proba(X), ref.predict_proba(X), rtol=1e-6)
    np.testing.assert_allclose(
        huge.history_[:, "train_loss"], ref.history_[:, "train_loss"], rtol=1e-6
    )


def test_pretrain_x_with_the_columns_of_x_in_another_order_is_refused():
    """A representation pre-trained on reordered columns of X is refused at fit."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(40, 3)), columns=list("abc"))
    y = (df["a"] > 0).astype(int)
    ft = FineTuner(PCATransformer(n_components=2), max_epochs=1, random_state=0)
    with pytest.raises(ValueError, match=r"X: a, b, c; the representation: c, b, a"):
        ft.fit(df, y, pretrain_X=df[list("cba")])


def test_frozen_features_of_an_encoder_with_batch_norm_are_its_transform(small_digits):
    """A frozen fine-tuning reads a batch-norm encoder as transform does, stats kept."""
    X, y = small_digits
    X, y = X[:100], y[:100]
    rep = AutoencoderTransformer(n_components=8, input_shape=(1, 8, 8), **_FAST).fit(X)
    clf = FineTuner(rep, strategy="frozen", max_epochs=1, random_state=0).fit(X, y)
    np.testing.assert_allclose(clf.transform(X), rep.transform(X), atol=1e-5)


def test_regressor_standardises_each_target_by_its_own_magnitude():
    """Targets of far-apart magnitudes, and a zero column, are standardised apart."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    a, b = rng.normal(size=40) + 2, rng.normal(size=40) - 3
    Y = np.c_[a * 1e200, b * 1e-200, np.zeros(40)]
    reg = FineTunerRegressor(
        PCATransformer(n_components=2), strategy="frozen", max_epochs=1, random_state=0
    ).fit(X, Y)
    np.testing.assert_allclose(
        reg.y_mean_[:2], [a.mean() * 1e200, b.mean() * 1e-200], rtol=1e-12
    )
    np.testing.assert_allclose(
        reg.y_scale_, [a.std() * 1e200, b.std() * 1e-200, 1.0], rtol=1e-12
    )
    assert reg.y_mean_[2] == 0
    assert np.isfinite(reg.predict(X)).all()


def test_predict_proba_is_float64_and_its_rows_sum_to_one():
    """Class probabilities come in float64, rows summing to 1 to float64 precision."""
    X, y = make_blobs(n_samples=60, centers=3, n_features=4, random_state=0)
    clf = FineTuner(PCATransformer(n_components=3), max_epochs=1, random_state=0)
    proba = clf.fit(X, y).predict_proba(X)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_both_fine_tuners_have_the_same_defaults():
    """FineTuner and FineTunerRegressor default alike: the encoder at a tenth of lr."""
    clf, reg = FineTuner().get_params(), FineTunerRegressor().get_params()
    assert clf.pop("class_weight") is None
    assert clf == reg
    assert reg["encoder_lr_scale"] == 0.1 and reg["layer_decay"] == 1.0
    assert reg["strategy"] == "full" and reg["head"] == "linear"
    assert reg["head_norm"] == "auto"


def test_the_mlp_head_is_one_hidden_relu_layer_of_256():
    """head="mlp" is normalisation, Linear(d, 256), ReLU, Linear(256, k)."""
    head = build_head("mlp", 6, 3)
    kinds = [type(m) for m in head]
    assert kinds == [CentredLayerNorm, torch.nn.Linear, torch.nn.ReLU, torch.nn.Linear]
    assert (head[1].in_features, head[1].out_features) == (6, 256)
    assert (head[3].in_features, head[3].out_features) == (256, 3)


def test_checking_a_users_head_leaves_its_batch_norm_statistics_alone():
    """The width check runs the head in eval mode and gives back its mode."""
    mine = torch.nn.Sequential(torch.nn.BatchNorm1d(6), torch.nn.Linear(6, 3))
    built = build_head(lambda d, k: mine, 6, 3)
    assert built is mine and mine.training
    assert int(mine[0].num_batches_tracked) == 0
    torch.testing.assert_close(mine[0].running_mean, torch.zeros(6))


def test_transform_of_a_fine_tuner_with_views_is_not_augmented(small_digits):
    """Views augment training batches only: transform is the encoder's output."""
    X, y = small_digits
    noisy = ImageViews(crop_scale=None, rotation=30)
    tuned = FineTuner(_tiny_simclr(), views=noisy, max_epochs=1, random_state=0)
    Z = tuned.fit(X, y).transform(X)
    np.testing.assert_array_equal(tuned.transform(X), Z)
    encoder = tuned.net_.module_.encoder.eval()
    with torch.no_grad():
        plain = encoder(torch.as_tensor(X, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(Z, plain, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", [CentredLayerNorm, CentredScale])
def test_centred_norms_track_a_training_batch_of_two(cls):
    """Two samples have a batch mean: the first such batch sets the running mean."""
    norm = cls(3)
    x = torch.tensor([[1.0, 2.0, 3.0], [5.0, -2.0, 9.0]])
    norm(x)
    torch.testing.assert_close(norm.running_mean, x.mean(0))
    assert int(norm.num_batches_tracked) == 1


@pytest.mark.parametrize("cls", [CentredLayerNorm, CentredScale])
def test_centred_norms_default_momentum_weighs_batches_as_documented(cls):
    """By default the t-th training batch weighs max(0.1, 1 / t) in the running mean."""
    norm = cls(2)
    expected = torch.zeros(2)
    for t in range(1, 13):
        batch = torch.tensor([[t, -t], [t + 2.0, 2.0 - t]])
        norm(batch)
        expected += max(0.1, 1 / t) * (batch.mean(0) - expected)
    torch.testing.assert_close(norm.running_mean, expected)


def test_centred_layer_norm_trains_on_the_running_mean_it_evaluates_with():
    """A later training batch is centred on the running mean it has just updated."""
    norm = CentredLayerNorm(3, momentum=0.25)
    a, b = torch.randn(4, 3) + 10.0, torch.randn(4, 3) - 10.0
    norm(a)
    out = norm(b)
    running = 0.5 * a.mean(0) + 0.5 * b.mean(0)
    expected = torch.nn.functional.layer_norm(b - running, (3,), eps=1e-5)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(norm.eval()(b), expected)


def test_untrained_centred_norms_centre_on_zero_and_scale_by_one():
    """Before any training batch the statistics are BatchNorm's: mean 0, square 1."""
    x = torch.tensor([[1.0, 2.0, 4.0], [-3.0, 0.5, 2.0]])
    torch.testing.assert_close(
        CentredLayerNorm(3).eval()(x),
        torch.nn.functional.layer_norm(x, (3,), eps=1e-5),
    )
    torch.testing.assert_close(CentredScale(3).eval()(x), x / (1.0 + 1e-5) ** 0.5)


def test_centred_layer_norm_keeps_the_dtype_of_its_input():
    """bfloat16 features come back in bfloat16, in training and in evaluation."""
    norm = CentredLayerNorm(3)
    x = torch.randn(4, 3).bfloat16()
    assert norm(x).dtype == torch.bfloat16
    assert norm.eval()(x).dtype == torch.bfloat16


def test_centred_norms_show_their_settings():
    """The printed module gives the width, momentum and eps it was built with."""
    assert repr(CentredScale(3, momentum=0.25, eps=1e-3)) == (
        "CentredScale(3, momentum=0.25, eps=0.001)"
    )
    assert repr(CentredLayerNorm(4)) == "CentredLayerNorm(4, momentum=0.1, eps=1e-05)"


def test_an_unfitted_regressor_is_refused_as_the_representation(small_digits):
    """An unfitted regressor learns from labels, which pre-training lacks: refused."""
    X, y = small_digits
    match = r"representation=FineTunerRegressor\(...\) is unfitted, and it learns"
    with pytest.raises(TypeError, match=match):
        FineTuner(FineTunerRegressor(_tiny_ae()), max_epochs=1).fit(X, y)


def test_a_dataset_pretrain_X_of_other_samples_is_refused_before_pre_training(
    small_digits, monkeypatch
):
    """A torch Dataset as pretrain_X is checked on its first sample's shape,
    before any pre-training; an empty one is left to the representation."""
    from torch.utils.data import TensorDataset

    X, y = small_digits
    clf = FineTuner(_tiny_ae(), max_epochs=1, random_state=0)

    def no_training(*args, **kwargs):
        raise AssertionError("pre-training ran")

    monkeypatch.setattr(type(clf.representation), "fit", no_training)
    narrow = TensorDataset(torch.zeros(10, 60))
    with pytest.raises(ValueError, match=r"pretrain_X has samples of shape \(60,\)"):
        clf.fit(X[:100], y[:100], pretrain_X=narrow)
    empty = TensorDataset(torch.zeros(0, 64))
    with pytest.raises(AssertionError, match="pre-training ran"):
        clf.fit(X[:100], y[:100], pretrain_X=empty)
    images = TensorDataset(torch.zeros(10, 1, 8, 8))  # 64 values, as X's rows
    with pytest.raises(AssertionError, match="pre-training ran"):
        clf.fit(X[:100], y[:100], pretrain_X=images)


def test_a_fitted_representation_that_cannot_be_copied_is_shared(small_digits):
    """A fitted representation holding an object that cannot be copied is
    fine-tuned from as it is, not refused."""
    import threading

    X, y = small_digits
    rep = PCATransformer(n_components=4).fit(X)
    rep.lock_ = threading.Lock()  # as an accelerator's handle: no deepcopy
    clf = FineTuner(rep, max_epochs=1, random_state=0).fit(X, y)
    assert clf.representation_ is rep
    assert clf.predict(X[:5]).shape == (5,)


def test_a_user_head_that_fails_in_any_way_is_named_with_the_widths_it_must_map():
    """A head whose forward pass raises (here an AttributeError) is reported as
    a ValueError naming the encoder's width and the mapping it must make."""

    class ReadsAField(torch.nn.Module):  # written for a batch object
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(6, 3)

        def forward(self, batch):
            return self.fc(batch.features)

    match = r"fails on the encoder's 6 features \(AttributeError.*\(batch, 6\) to"
    with pytest.raises(ValueError, match=match):
        build_head(ReadsAField(), 6, 3)
    with pytest.raises(ValueError, match=match):
        build_head(lambda d, k: ReadsAField(), 6, 3)


def test_a_representation_pre_trains_with_the_seed_of_the_fine_tuner_or_its_own(
    small_digits,
):
    """An unfitted representation without a random_state is pre-trained with
    the seed the fine-tuner draws from its random_state, one with its own keeps it."""
    from sk_replearn._seeding import seed_from_random_state

    X, y = small_digits
    clf = FineTuner(_tiny_ae(random_state=None), max_epochs=1, random_state=7)
    rep = clf.fit(X, y).representation_
    seed = seed_from_random_state(7)
    assert rep.random_state == seed
    alone = _tiny_ae(random_state=seed).fit(X)
    np.testing.assert_array_equal(rep.transform(X[:20]), alone.transform(X[:20]))
    own = FineTuner(_tiny_ae(random_state=3), max_epochs=1, random_state=7)
    assert own.fit(X, y).representation_.random_state == 3


def test_transfer_encoder_cuts_at_a_negative_or_the_last_transform_layer(
    digits_ae, small_digits
):
    """A negative transform_layer counts blocks from the top and the last
    block's index keeps them all: the copy gives that transform's output."""
    X, _ = small_digits
    x = torch.as_tensor(X[:20], dtype=torch.float32)
    for layer, width in ((-2, 128), (-3, 256), (2, 16)):  # blocks: 256, 128, 16
        rep = copy.deepcopy(digits_ae).set_params(transform_layer=layer)
        encoder = transfer_encoder(rep).eval()
        with torch.no_grad():
            Z = encoder(x).numpy()
        assert Z.shape == (20, width)
        np.testing.assert_allclose(Z, rep.transform(X[:20]), rtol=1e-5, atol=1e-5)
