"""AutoencoderTransformer and, through it, the training engine."""

import copy
import pickle
import sys
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from sk_replearn import AutoencoderTransformer, FineTuner, PCATransformer
from sk_replearn.training import NonFiniteLossError

IMAGE = dict(n_components=8, input_shape=(1, 8, 8), max_epochs=3, random_state=0)


# The scikit-learn common checks run on the row of tests/_instances.py, in
# tests/test_common.py.


def test_autoencoder_beats_pca_on_digits(digits_split):
    """The issue's bar: probe accuracy >= PCA(16)'s, held-out MSE below it."""
    X_train, X_test, y_train, y_test = digits_split
    ae = AutoencoderTransformer(n_components=16, input_shape=(1, 8, 8), random_state=0)
    pca = PCATransformer(n_components=16)
    scores = {}
    for name, rep in [("ae", ae), ("pca", pca)]:
        pipe = Pipeline([(name, rep), ("clf", LogisticRegression(max_iter=5000))])
        scores[name] = pipe.fit(X_train, y_train).score(X_test, y_test)
    mse_ae = mean_squared_error(X_test, ae.inverse_transform(ae.transform(X_test)))
    mse_pca = mean_squared_error(X_test, pca.inverse_transform(pca.transform(X_test)))
    assert scores["ae"] >= scores["pca"], scores
    assert mse_ae < mse_pca, (mse_ae, mse_pca)
    assert ae.score(X_test) == pytest.approx(-mse_ae, rel=1e-4)


def test_autoencoder_beats_its_untrained_encoder(digits_split):
    # The same MLP at lr=0 (the same passes, batch-norm statistics fitted
    # alike), standardised logistic regression on held-out digits. At seeds
    # 0, 1, 2: 0.942, 0.944, 0.936 against 0.784, 0.709, 0.718.
    X_train, X_test, y_train, y_test = digits_split
    scores = {}
    for lr in (3e-3, 0.0):
        ae = AutoencoderTransformer(16, max_epochs=30, lr=lr, random_state=0)
        Z_train, Z_test = ae.fit_transform(X_train), ae.transform(X_test)
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        scores[lr] = probe.fit(Z_train, y_train).score(Z_test, y_test)
    assert scores[3e-3] > scores[0.0] + 0.1, scores


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_autoencoder_grid_search_in_pipeline(small_digits, n_jobs):
    X, y = small_digits
    pipe = Pipeline(
        [
            (
                "ae",
                AutoencoderTransformer(
                    input_shape=(1, 8, 8), max_epochs=2, random_state=0
                ),
            ),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    )
    grid = GridSearchCV(
        pipe, {"ae__n_components": [4, 8], "ae__lr": [1e-3, 3e-3]}, cv=2, n_jobs=n_jobs
    )
    grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    assert grid.best_estimator_.named_steps["ae"].n_components in (4, 8)


def test_autoencoder_loss_is_the_error_on_the_standardised_input():
    # The reconstruction is scored in the units it is made in: each column
    # less its mean over the fit, over its standard deviation. Against the
    # raw input the loss was caught only by the quality test above.
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(64, 5)) * [1, 2, 3, 4, 5] + 50).astype(np.float32)
    ae = AutoencoderTransformer(n_components=2, max_epochs=1, random_state=0)
    obj = ae.fit(X).net_.module_.eval()
    x = torch.from_numpy(X)
    standard = torch.from_numpy((X - X.mean(0)) / X.std(0, ddof=1))
    with torch.no_grad():
        out = obj(x)
        torch.testing.assert_close(obj.loss(out, x), ((out - standard) ** 2).mean())


def test_autoencoder_training_lowers_the_loss(small_digits):
    X, _ = small_digits
    ae = AutoencoderTransformer(**{**IMAGE, "max_epochs": 10}).fit(X)
    assert ae.n_epochs_ == 10 == len(ae.loss_curve_)
    assert ae.loss_curve_[-1] < 0.7 * ae.loss_curve_[0]
    untrained = AutoencoderTransformer(**{**IMAGE, "max_epochs": 1}).fit(X)
    assert ae.score(X) > untrained.score(X)


def test_autoencoder_random_state_makes_training_repeatable(small_digits):
    X, _ = small_digits
    # to the bit on the CPU; CUDA's kernels (cuDNN's convolutions) may add in
    # another order each run (docs/design.rst, Reproducibility)
    on_cpu = {**IMAGE, "device": "cpu"}
    a = AutoencoderTransformer(**on_cpu).fit(X).transform(X)
    b = AutoencoderTransformer(**on_cpu).fit(X).transform(X)
    c = AutoencoderTransformer(**{**on_cpu, "random_state": 1}).fit(X).transform(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_autoencoder_leaves_global_torch_rng_alone(small_digits):
    import torch

    X, _ = small_digits
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    AutoencoderTransformer(**IMAGE).fit(X)
    np.testing.assert_array_equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    "dump, load",
    [
        (pickle.dumps, pickle.loads),
        (lambda est: _joblib_bytes(est), lambda b: _joblib_load(b)),
    ],
)
def test_autoencoder_pickle_round_trip(small_digits, dump, load):
    X, _ = small_digits
    ae = AutoencoderTransformer(**IMAGE).fit(X)
    again = load(dump(ae))
    np.testing.assert_array_equal(again.transform(X), ae.transform(X))
    np.testing.assert_array_equal(
        again.inverse_transform(ae.transform(X[:5])),
        ae.inverse_transform(ae.transform(X[:5])),
    )


def _joblib_bytes(est):
    import io

    buf = io.BytesIO()
    joblib.dump(est, buf)
    return buf.getvalue()


def _joblib_load(data):
    import io

    return joblib.load(io.BytesIO(data))


def test_autoencoder_clone_is_unfitted_with_same_params(small_digits):
    X, _ = small_digits
    ae = AutoencoderTransformer(**IMAGE).fit(X)
    copy = clone(ae)
    assert copy.get_params() == ae.get_params()
    assert not hasattr(copy, "net_")


def test_autoencoder_nd_input_round_trips_in_its_shape(small_digits):
    X, _ = small_digits
    X4 = X.reshape(-1, 1, 8, 8)
    ae = AutoencoderTransformer(**{**IMAGE, "input_shape": None}).fit(X4)
    assert ae.input_shape_ == (1, 8, 8)
    Z = ae.transform(X4)
    assert Z.shape == (len(X), 8) and Z.dtype == np.float32
    np.testing.assert_allclose(Z, ae.transform(X), rtol=1e-6)
    assert ae.inverse_transform(Z).shape == X4.shape
    assert ae.reconstruct(X4).shape == X4.shape


def test_autoencoder_reconstructs_in_the_layout_of_the_x_given(small_digits):
    # It answered in the layout of the fit's data, so that X - reconstruct(X)
    # failed on rows after a fit on images and on images after one on rows.
    X, _ = small_digits
    X4 = X.reshape(-1, 1, 8, 8)
    on_rows = AutoencoderTransformer(**IMAGE).fit(X)
    on_images = AutoencoderTransformer(**{**IMAGE, "input_shape": None}).fit(X4)
    for ae in (on_rows, on_images):
        for data in (X[:5], X4[:5]):
            rec = ae.reconstruct(data)
            assert rec.shape == data.shape and rec.dtype == np.float32
        np.testing.assert_array_equal(
            ae.reconstruct(X4[:5]).reshape(5, -1), ae.reconstruct(X[:5])
        )


def test_autoencoder_inverse_transform_decodes_the_fitted_width(small_digits):
    # set_params after fit changes the next fit, not the fitted bottleneck:
    # inverse_transform asked for codes of the new n_components.
    X, _ = small_digits
    ae = AutoencoderTransformer(**IMAGE).fit(X)
    Z = ae.transform(X[:4])
    expected = ae.inverse_transform(Z)
    ae.set_params(n_components=2)
    np.testing.assert_array_equal(ae.inverse_transform(Z), expected)
    with pytest.raises(ValueError, match="codes of width 8, the fitted bottleneck"):
        ae.inverse_transform(Z[:, :2])


@pytest.mark.parametrize("noise, noise_type", [(0.3, "gaussian"), (0.5, "mask")])
def test_autoencoder_denoising_trains_and_differs(small_digits, noise, noise_type):
    X, _ = small_digits
    plain = AutoencoderTransformer(**IMAGE).fit(X)
    denoising = AutoencoderTransformer(**IMAGE, noise=noise, noise_type=noise_type).fit(
        X
    )
    assert np.isfinite(denoising.loss_curve_).all()
    assert not np.allclose(plain.transform(X), denoising.transform(X))


@pytest.mark.parametrize("encoder", ["mlp", "cnn", "resnet", "vit"])
def test_autoencoder_each_encoder_trains(small_digits, encoder):
    X, _ = small_digits
    kwargs = {"patch_size": 4, "depth": 1} if encoder == "vit" else None
    ae = AutoencoderTransformer(
        **{**IMAGE, "max_epochs": 2}, encoder=encoder, encoder_kwargs=kwargs
    ).fit(X)
    assert ae.transform(X[:7]).shape == (7, 8)
    assert np.isfinite(ae.loss_curve_).all()


def test_autoencoder_signal_input(small_digits):
    X, _ = small_digits
    ae = AutoencoderTransformer(n_components=4, input_shape=(1, 64), max_epochs=2).fit(
        X
    )
    assert ae.reconstruct(X[:3]).shape == (3, 64)


def test_autoencoder_cosine_schedule_decays_to_zero(small_digits):
    X, _ = small_digits
    ae = AutoencoderTransformer(**IMAGE, warmup_epochs=1).fit(X)
    lrs = ae.history_[:, "batches", :, "event_lr"]
    assert lrs[0][0] < ae.lr / 2  # warm-up starts low
    assert ae.net_.optimizer_.param_groups[0]["lr"] < 1e-5


def test_warmup_without_a_schedule_rises_then_holds_lr(small_digits):
    # lr_schedule=None keeps lr constant after the warm-up it is given (the
    # warm-up lived in the cosine schedule only, so it was silently dropped).
    X, _ = small_digits
    params = {**IMAGE, "max_epochs": 4, "lr_schedule": None}
    ae = AutoencoderTransformer(**params, warmup_epochs=2).fit(X)
    lrs = ae.history_[:, "batches", :, "event_lr"]
    assert lrs[0][0] < ae.lr / 2 and lrs[0][0] < lrs[0][-1] < ae.lr
    assert all(lr == ae.lr for epoch in lrs[2:] for lr in epoch)
    constant = AutoencoderTransformer(**params).fit(X)  # no warm-up: no schedule
    assert "lr_schedule" not in dict(constant.net_.callbacks_)
    assert constant.net_.optimizer_.param_groups[0]["lr"] == ae.lr


def test_autoencoder_refuses_a_decoder_it_cannot_build():
    from sklearn.utils._param_validation import InvalidParameterError

    # "resnet" is an encoder, not a decoder: refused with the others' errors,
    # not accepted by the constraints and refused later in fit.
    with pytest.raises(InvalidParameterError, match="'decoder' parameter"):
        AutoencoderTransformer(decoder="resnet").fit(np.ones((4, 3)))


def test_autoencoder_early_stopping_stops_and_records_validation(small_digits):
    X, _ = small_digits
    ae = AutoencoderTransformer(
        **{**IMAGE, "max_epochs": 300},
        lr_schedule=None,
        lr=3e-2,
        early_stopping=True,
        n_iter_no_change=2,
        validation_fraction=0.2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stopping early is no interrupt
        ae.fit(X)
    assert ae.n_epochs_ < 300
    assert "valid_loss" in ae.history_[-1]


def test_autoencoder_warm_start_continues_training(small_digits):
    X, _ = small_digits
    ae = AutoencoderTransformer(**IMAGE, warm_start=True).fit(X)
    first_net = ae.net_
    ae.fit(X)
    assert ae.net_ is first_net
    assert ae.n_epochs_ == 2 * IMAGE["max_epochs"]
    # a max_epochs set between fits applies to the next one
    ae.set_params(max_epochs=IMAGE["max_epochs"] + 3).fit(X)
    assert ae.n_epochs_ == 3 * IMAGE["max_epochs"] + 3


def test_autoencoder_user_callbacks_run(small_digits):
    X, _ = small_digits

    class Count(Callback):
        def initialize(self):
            self.epochs = 0
            return self

        def on_epoch_end(self, net, **kwargs):
            self.epochs += 1

    ae = AutoencoderTransformer(**IMAGE, callbacks=[Count()]).fit(X)
    assert dict(ae.net_.callbacks_)["user_0"].epochs == IMAGE["max_epochs"]
    # A name one of the fit's own callbacks has is refused, naming the fix
    # (skorch's own error said "duplicate user-set callback name"); skorch's
    # defaults are read from skorch, so that a new one of theirs fails here.
    skorch_defaults = [name for name, _ in ae.net_.get_default_callbacks()]
    for name in ("lr_schedule", *skorch_defaults):
        taken = AutoencoderTransformer(**IMAGE, callbacks=[(name, Count())])
        with pytest.raises(ValueError, match=f"callbacks\\[0\\] is named '{name}'"):
            taken.fit(X)
    # A warm start that swaps the callbacks leaves the old ones as they were
    # (skorch's set_params had initialised them again, emptying their record).
    first = Count()
    warm = AutoencoderTransformer(**IMAGE, warm_start=True, callbacks=[first]).fit(X)
    second = Count()
    warm.set_params(callbacks=[second]).fit(X)
    assert first.epochs == IMAGE["max_epochs"] and second.epochs == IMAGE["max_epochs"]
    # Free once the fit has no callback of that name.
    free = AutoencoderTransformer(
        **IMAGE, lr_schedule=None, callbacks=[("lr_schedule", Count())]
    ).fit(X)
    assert dict(free.net_.callbacks_)["lr_schedule"].epochs == IMAGE["max_epochs"]


def test_autoencoder_non_finite_loss_is_a_clear_error(small_digits):
    X, _ = small_digits
    ae = AutoencoderTransformer(**IMAGE, optimizer="sgd", lr=1e30, lr_schedule=None)
    with pytest.raises(
        NonFiniteLossError, match=r"in epoch \d+.*lr=1e\+30.*too high"
    ) as e:
        ae.fit(X)
    assert not hasattr(ae, "net_")
    assert "precision=" not in str(e.value)  # it is float32 already
    with pytest.raises(NonFiniteLossError, match=r"warmup_epochs>0\) or use precision"):
        ae.set_params(precision="bf16").fit(X)


def test_weights_the_last_step_makes_non_finite_are_an_error(small_digits):
    # The loss is computed before each step: only the end-of-training check
    # sees weights that the very last step made NaN.
    X, _ = small_digits

    class SpoilLastStep(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 2:
                with torch.no_grad():  # one weight is enough
                    next(net.module_.parameters()).view(-1)[0] = float("nan")

    ae = AutoencoderTransformer(
        **{**IMAGE, "max_epochs": 2}, callbacks=[SpoilLastStep()]
    )
    with pytest.raises(NonFiniteLossError, match=r"NaN or infinite weights.*lr="):
        ae.fit(X)
    assert not hasattr(ae, "net_")


def test_a_model_that_overflows_is_blamed_not_the_data():
    # One step (60 rows < batch_size) at an absurd lr leaves finite but huge
    # weights and a finite loss curve; every output is then an error that
    # points at the fit, never NaN and never "rescale X" alone.
    X = np.random.default_rng(0).normal(size=(60, 10)).astype(np.float32)
    ae = AutoencoderTransformer(n_components=4, max_epochs=1, lr=1e30, random_state=0)
    ae.fit(X)
    with pytest.raises(ValueError, match=r"up to 3\.\d+ .*model itself.*lower lr"):
        ae.transform(X)
    with pytest.raises(ValueError, match="model itself"):
        ae.inverse_transform(np.zeros((2, 4)))


def test_inverse_transform_of_huge_codes_is_an_error_not_nan():
    X = np.random.default_rng(0).normal(size=(60, 10)).astype(np.float32)
    ae = AutoencoderTransformer(n_components=4, max_epochs=1, random_state=0).fit(X)
    assert np.isfinite(ae.inverse_transform(ae.transform(X))).all()
    with pytest.raises(ValueError, match=r"up to 1e\+30"):
        ae.inverse_transform(np.full((2, 4), 1e30))


def test_nan_in_a_dataset_is_named_as_such(monkeypatch):
    # A Dataset is read as it trains, not checked ahead like an array: the
    # samples read to set the standardisation are checked, then each batch
    # whose loss is not finite.
    X = np.random.default_rng(0).normal(size=(64, 10)).astype(np.float32)
    bad = X.copy()
    bad[50, 3] = np.nan
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(bad))
    ae = AutoencoderTransformer(max_epochs=1, random_state=0)
    with pytest.raises(ValueError, match="NaN or infinite.*input standardisation"):
        ae.fit(dataset)
    # A Dataset too large to be read whole for the standardisation: its
    # sample missed the NaN, which the batch that holds it then names.
    import sk_replearn.methods.base as methods_base

    head = methods_base.scale_sample
    monkeypatch.setattr(methods_base, "scale_sample", lambda X_t: head(X_t, 20))
    with pytest.raises(NonFiniteLossError, match="batch holds NaN or infinite"):
        ae.fit(dataset)
    ae.fit(X)
    with pytest.raises(ValueError, match="1 of 64 samples. X is a Dataset"):
        ae.transform(dataset)


@pytest.mark.parametrize(
    "name", ["AutoencoderTransformer", "ContextEncoderTransformer", "MAETransformer"]
)
def test_values_past_float32_in_a_dataset_are_refused_not_learned(name, monkeypatch):
    # An array holding 1e30 is refused ahead of training; a Dataset holding
    # it made the standardisation's scale huge, and these models fitted
    # without a word a code that was the same for every other sample.
    import sk_replearn
    import sk_replearn.methods.base as methods_base

    X = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
    bad = X.copy()
    bad[50] *= 1e30
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(bad))
    est = getattr(sk_replearn, name)(max_epochs=1, batch_size=16, random_state=0)
    with pytest.raises(ValueError, match=r"up to \d.*e\+30.*input standardisation"):
        est.fit(dataset)
    # Too large a Dataset to be read whole: the batch that holds it says so.
    head = methods_base.scale_sample
    monkeypatch.setattr(methods_base, "scale_sample", lambda X_t: head(X_t, 16))
    with pytest.raises(NonFiniteLossError, match=r"values up to .*e\+30.*Rescale X"):
        est.fit(dataset)
    # At 1e19 the squares overflow to inf (the autoencoder's loss is inf, not
    # NaN, which a check for NaN alone let train on): the same stop.
    bad[50] = X[50] * 1e19
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(bad))
    match = r"became (inf|nan).*values up to .*e\+19"
    with pytest.raises(NonFiniteLossError, match=match):
        est.fit(dataset)


def test_autoencoder_keyboard_interrupt_keeps_a_usable_model(small_digits):
    X, _ = small_digits

    class Interrupt(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 2:
                raise KeyboardInterrupt

    ae = AutoencoderTransformer(**{**IMAGE, "max_epochs": 10}, callbacks=[Interrupt()])
    with pytest.warns(RuntimeWarning, match="interrupted after epoch 2.*warm_start"):
        ae.fit(X)
    assert ae.n_epochs_ == 2
    assert np.isfinite(ae.transform(X)).all()
    # A fine-tuner has no warm_start: its warning says how it can go on.
    clf = FineTuner(ae, max_epochs=5, callbacks=[Interrupt()])
    with pytest.warns(RuntimeWarning, match="when checkpoint_dir is set") as record:
        clf.fit(X, np.arange(len(X)) % 3)
    assert not any("warm_start" in str(w.message) for w in record)
    assert "warm_start" not in clf.get_params()


@pytest.mark.parametrize("epoch", [1, 3])
def test_keyboard_interrupt_mid_epoch_records_the_finished_epochs(small_digits, epoch):
    # Ctrl-C inside an epoch: the fit ends fitted, and its record holds the
    # finished epochs only (in the first epoch the loss curve's read of the
    # unfinished row raised a KeyError and left the estimator half-fitted).
    X, y = small_digits

    class CtrlC(Callback):
        def on_batch_end(self, net, training=False, **kwargs):
            if training and len(net.history) == epoch:
                raise KeyboardInterrupt

    params = {**IMAGE, "max_epochs": 5, "batch_size": 16}
    ae = AutoencoderTransformer(**params, callbacks=[CtrlC()])
    with pytest.warns(RuntimeWarning, match=f"during epoch {epoch}.*{epoch - 1} fin"):
        ae.fit(X)
    assert ae.n_epochs_ == len(ae.loss_curve_) == len(ae.history_) == epoch - 1
    assert np.isfinite(ae.transform(X)).all()
    # Trained further, the record goes on from the finished epochs.
    ae.set_params(warm_start=True, callbacks=None, max_epochs=2).fit(X)
    assert ae.n_epochs_ == len(ae.loss_curve_) == epoch + 1
    # The fine-tuner's fit ends the same way.
    clf = FineTuner(ae, max_epochs=3, batch_size=16, callbacks=[CtrlC()])
    with pytest.warns(RuntimeWarning, match=f"during epoch {epoch}"):
        clf.fit(X, y)
    assert clf.n_epochs_ == len(clf.loss_curve_) == epoch - 1
    assert clf.predict(X).shape == (len(X),)


def test_autoencoder_verbose_prints_epochs(small_digits, capsys):
    X, _ = small_digits
    AutoencoderTransformer(**{**IMAGE, "max_epochs": 2}, verbose=1).fit(X)
    out = capsys.readouterr().out
    assert "train_loss" in out and out.count("\n") >= 2


def test_autoencoder_bf16_precision_on_cpu(small_digits):
    X, _ = small_digits
    ae = AutoencoderTransformer(**IMAGE, precision="bf16").fit(X)
    assert np.isfinite(ae.loss_curve_).all()
    assert ae.transform(X[:4]).dtype == np.float32


def test_autoencoder_pandas_output(small_digits):
    pd = pytest.importorskip("pandas")
    X, _ = small_digits
    out = (
        AutoencoderTransformer(**IMAGE).set_output(transform="pandas").fit_transform(X)
    )
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == [f"autoencodertransformer{i}" for i in range(8)]


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_components": -1}, "'n_components' parameter"),
        ({"input_shape": (1, 8, 9)}, "holds 72 values per sample but X has 64"),
        ({"encoder": "transformer"}, "'encoder' parameter"),
        ({"batch_size": 0}, "'batch_size' parameter"),
        ({"precision": "8"}, "'precision' parameter"),
        ({"precision": "16", "device": "cpu"}, "needs a CUDA device"),
        ({"optimizer": "lbfgs"}, "'optimizer' parameter"),
        ({"device": "tpu:0"}, "is not a device name"),
        ({"noise": 1.5, "noise_type": "mask"}, r"noise=1.5 with noise_type='mask'"),
        ({"n_components": 0}, "'n_components' parameter"),
        ({"noise": -0.1}, "'noise' parameter"),
        ({"noise_type": "salt"}, "'noise_type' parameter"),
    ],
)
def test_autoencoder_bad_parameters_fail_at_fit(small_digits, params, match):
    X, _ = small_digits
    with pytest.raises(ValueError, match=match):
        AutoencoderTransformer(**{**IMAGE, **params}).fit(X)


def test_autoencoder_bad_input_is_a_clear_error(small_digits):
    X, _ = small_digits
    with pytest.raises(ValueError, match="at least 2 samples"):
        AutoencoderTransformer(**IMAGE).fit(X[:1])
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        AutoencoderTransformer(**IMAGE).fit(X_nan)
    ae = AutoencoderTransformer(**IMAGE).fit(X)
    with pytest.raises(ValueError, match="expecting 64 features"):
        ae.transform(X[:, :10])
    with pytest.raises(ValueError, match="n_components=8"):
        ae.inverse_transform(np.zeros((2, 3)))


def test_autoencoder_unfitted_transform_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        AutoencoderTransformer().transform(np.zeros((2, 4)))


def test_tables_are_standardised_per_column():
    # Wine's 13 columns range from ~0.1 to ~1000: with one global scale the
    # proline column alone fills the code (probe 0.67 before per-column
    # scaling); per column, every measurement counts.
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    X, y = load_wine(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    ae = AutoencoderTransformer(max_epochs=60, random_state=0).fit(X_tr)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    probe.fit(ae.transform(X_tr), y_tr)
    assert probe.score(ae.transform(X_te), y_te) >= 0.95
    module = ae.net_.module_
    shift, scale = module.input_shift.cpu().numpy(), module.input_scale.cpu().numpy()
    np.testing.assert_allclose(shift, X_tr.mean(0), rtol=1e-5)
    np.testing.assert_allclose(scale, X_tr.std(0, ddof=1), rtol=1e-5)
    # Images keep one scalar shift and scale.
    images = AutoencoderTransformer(input_shape=(1, 2, 2), max_epochs=1).fit(
        np.random.default_rng(0).random((20, 4))
    )
    assert images.net_.module_.input_shift.shape == ()


def test_autoencoder_verbose_log_has_epoch_lines_and_no_bar_fragments(capsys):
    X = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)
    AutoencoderTransformer(n_components=2, max_epochs=3, verbose=1).fit(X)
    out, err = capsys.readouterr()  # captured: not a terminal, like a log file
    assert "%|" not in out + err and "\r" not in out + err
    epochs = [line.split()[0] for line in out.splitlines()[2:]]
    assert epochs == ["1", "2", "3"]


def test_autoencoder_verbose_in_a_terminal_draws_a_progress_bar(monkeypatch):
    X = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    ae = AutoencoderTransformer(n_components=2, max_epochs=1, verbose=1).fit(X)
    assert "progress_bar" in dict(ae.net_.callbacks)


@pytest.mark.parametrize("shape", [(5000, 40), (5000, 1, 40), (3, 7)])
def test_input_scale_matches_float64_over_many_blocks(shape):
    """Blockwise float64 sums (a last partial block, a constant column)."""
    import torch

    from sk_replearn.objectives.base import Objective

    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3 + 1e3).astype(np.float32)
    table = len(shape) == 2
    if table:
        x[:, 1] = 7.0  # constant: keeps a scale of 1
    obj = Objective(input_shape=shape[1:])
    obj.set_input_scale(torch.from_numpy(x))
    ref = x.reshape(len(x), -1).astype(np.float64)
    mean = ref.mean(0) if table else ref.mean()
    std = ref.std(0, ddof=1) if table else ref.std(ddof=1)
    if table:
        std[1] = 1.0
    np.testing.assert_allclose(obj.input_shift.numpy(), mean, rtol=1e-7)
    np.testing.assert_allclose(obj.input_scale.numpy(), std, rtol=1e-6)


def test_autoencoder_keeps_the_strided_cnn_on_small_images():
    # encoder="auto" gives two-view methods a full-resolution CNN on small
    # images; the autoencoder keeps the strided CNN its decoder mirrors.
    X = np.random.default_rng(0).random((32, 64), dtype=np.float32)
    ae = AutoencoderTransformer(input_shape=(1, 8, 8), max_epochs=1, random_state=0)
    assert ae.fit(X).net_.module_.backbone.strides == (2, 2)


def test_inverse_transform_says_why_an_inner_layer_does_not_decode(small_digits):
    X, _ = small_digits
    ae = AutoencoderTransformer(**{**IMAGE, "max_epochs": 1}, transform_layer=0).fit(X)
    with pytest.raises(ValueError, match="transform_layer=0 makes transform return"):
        ae.inverse_transform(ae.transform(X))


def test_warm_start_applies_the_engine_parameters_set_since(small_digits):
    X, _ = small_digits
    ae = AutoencoderTransformer(
        **{**IMAGE, "max_epochs": 1}, lr_schedule=None, warm_start=True
    ).fit(X)
    optimizer = ae.net_.optimizer_
    ae.set_params(lr=0.01, weight_decay=0.3, batch_size=7, early_stopping=True).fit(X)
    assert ae.net_.optimizer_ is optimizer  # continued, with its state
    assert [(g["lr"], g["weight_decay"]) for g in optimizer.param_groups] == [
        (0.01, 0.3)
    ]
    assert ae.net_.batch_size == 7
    assert "valid_loss" in ae.history_[-1] and "valid_loss" not in ae.history_[0]
    ae.fit(X)  # early stopping reads only the epochs that have a validation loss
    assert ae.n_epochs_ == 3


@pytest.mark.parametrize(
    "change, match",
    [
        ({"n_components": 5}, "fitted with n_components=8"),
        ({"optimizer": "sgd"}, "AdamW optimiser"),
        ({"noise": 0.5}, "fitted with noise=0.0"),
        ({"precision": "bf16"}, "fitted with precision='32'"),
    ],
)
def test_warm_start_refuses_what_the_fitted_network_cannot_continue(
    small_digits, change, match
):
    X, _ = small_digits
    ae = AutoencoderTransformer(**{**IMAGE, "max_epochs": 1}, warm_start=True).fit(X)
    with pytest.raises(ValueError, match=match):
        ae.set_params(**change).fit(X)
    if "n_components" in change:  # fitted by a version that kept no parameters
        del ae._fitted_params
        with pytest.raises(ValueError, match="other shapes"):
            ae.fit(X)


def test_bf16_on_a_gpu_without_bfloat16_warns_before_training(
    small_digits, monkeypatch
):
    # A V100 or T4 has no bfloat16 products: torch emulates them, slowly.
    # The check read torch.cuda.is_bf16_supported(), which counts emulation
    # (so it never fired) and asks about the current GPU, not the device.
    X, _ = small_digits
    ae = AutoencoderTransformer(**IMAGE, precision="bf16", device="cuda:1")
    monkeypatch.setattr(type(ae), "_device", lambda self: torch.device("cuda:1"))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    capabilities = {1: (7, 0)}  # cuda:0 would be an Ampere GPU
    monkeypatch.setattr(
        torch.cuda, "get_device_capability", lambda d: capabilities.get(d.index, (8, 0))
    )
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Tesla V100")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stop at the warning: there is no GPU
        with pytest.raises(UserWarning, match=r"Tesla V100.*emulated.*'16'"):
            ae.fit(X)


class _LrRecorder(Callback):
    """The learning rate of every training batch of a fit, and all calls."""

    def __init__(self) -> None:
        self.calls = 0  # over every fit: initialize does not reset it

    def initialize(self):
        self.lrs = []
        return self

    def on_batch_begin(self, net, training=None, **kwargs):
        if training:
            self.calls += 1
            self.lrs.append(net.optimizer_.param_groups[0]["lr"])


def _lr_factors(recorder: _LrRecorder, lr: float) -> list[float]:
    return [round(v / lr, 4) for v in recorder.lrs]


_COSINE_3x4 = [1.0, 0.983, 0.933, 0.8536, 0.75, 0.6294, 0.5, 0.3706, 0.25, 0.1464]


def test_warm_start_starts_the_schedule_and_the_callbacks_afresh():
    # skorch resumed the cosine where the last fit ended (its last epoch at
    # lr 0), kept the first fit's initial lr, and kept the first fit's
    # callbacks: new ones were never called, early stopping never switched.
    X = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    first, second = _LrRecorder(), _LrRecorder()
    run = dict(max_epochs=3, batch_size=10, random_state=0, device="cpu")
    ae = AutoencoderTransformer(2, lr=1e-2, warm_start=True, callbacks=[first], **run)
    ae.fit(X)
    assert _lr_factors(first, 1e-2)[:10] == _COSINE_3x4
    ae.set_params(lr=1e-1, callbacks=[second]).fit(X)
    assert first.calls == 12  # the first fit's batches only: not called again
    assert _lr_factors(second, 1e-1)[:10] == _COSINE_3x4  # from the new lr
    ae.set_params(
        lr_schedule=None, early_stopping=True, n_iter_no_change=1, max_epochs=30
    ).fit(X)
    assert set(second.lrs) == {1e-1}  # constant, as asked
    assert "valid_loss" in ae.history_[-1] and ae.n_epochs_ < 30


def test_the_cosine_ends_at_zero_when_a_last_batch_of_one_is_dropped():
    # 41 samples in batches of 10: training drops the batch of one, so the
    # schedule, counting 5 steps an epoch, ended at 0.21 lr.
    X = np.random.default_rng(0).normal(size=(41, 6)).astype(np.float32)
    rec = _LrRecorder()
    AutoencoderTransformer(
        2, max_epochs=2, batch_size=10, lr=1e-3, callbacks=[rec], device="cpu"
    ).fit(X)
    factors = _lr_factors(rec, 1e-3)
    assert len(factors) == 8 and factors[-1] < 0.05


def test_a_warm_up_longer_than_the_fit_is_cut_to_half_of_it():
    from sk_replearn import MAETransformer

    X = np.random.default_rng(0).normal(size=(40, 16)).astype(np.float32)
    rec = _LrRecorder()
    MAETransformer(
        input_shape=(1, 16), max_epochs=4, batch_size=20, callbacks=[rec], device="cpu"
    ).fit(X)  # warmup_epochs=10 by default
    factors = _lr_factors(rec, 1e-3)
    assert factors == [0.25, 0.5, 0.75, 1.0, 1.0, 0.8536, 0.5, 0.1464]


def test_a_warm_start_that_diverges_leaves_the_fitted_model_as_it_was():
    X = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    ae = AutoencoderTransformer(
        2, max_epochs=2, batch_size=10, warm_start=True, random_state=0, device="cpu"
    ).fit(X)
    before, n_epochs = ae.transform(X), ae.n_epochs_
    with pytest.raises(NonFiniteLossError):
        ae.set_params(lr=1e12, lr_schedule=None).fit(X)
    assert ae.n_epochs_ == n_epochs == len(ae.history_)
    np.testing.assert_array_equal(ae.transform(X), before)


class _EpochsSeen(Callback):
    def initialize(self):
        self.epochs = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.epochs.append(len(net.history))


def _stopped_early(callback: Callback) -> AutoencoderTransformer:
    """A fit whose validation loss turns up after epoch 6 of 8, at lr=0.5."""
    X = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
    return AutoencoderTransformer(
        3,
        max_epochs=30,
        batch_size=16,
        lr=0.5,
        lr_schedule=None,
        early_stopping=True,
        n_iter_no_change=2,
        validation_fraction=0.25,
        callbacks=[callback],
        random_state=0,
        device="cpu",
    ).fit(X)


def test_callbacks_see_the_epoch_early_stopping_stops_at():
    # Early stopping stopped by raising in on_epoch_end, before the user's
    # callbacks, the checkpoint and the printed log saw that epoch.
    seen = _EpochsSeen()
    ae = _stopped_early(seen)
    assert ae.n_epochs_ < 30  # it stopped early
    assert seen.epochs == list(range(1, ae.n_epochs_ + 1))


class _Snapshots(Callback):
    """The module's weights at the end of every epoch."""

    def initialize(self):
        self.states = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.states.append(copy.deepcopy(net.module_.state_dict()))


def test_early_stopping_keeps_the_best_epochs_weights():
    # The weights kept are the best validation epoch's, not the last's; no
    # test compared them, and keeping the last passed every one.
    snapshots = _Snapshots()
    ae = _stopped_early(snapshots)
    best = int(np.argmin(ae.history_[:, "valid_loss"]))
    assert best < ae.n_epochs_ - 1  # the check has teeth: the last is not the best
    kept = ae.net_.module_.state_dict()
    for name, value in kept.items():
        assert torch.equal(value, snapshots.states[best][name]), name
    assert not all(torch.equal(v, snapshots.states[-1][k]) for k, v in kept.items())


@pytest.mark.parametrize(
    ("noise_type", "noise"), [("mask", 1.0), ("gaussian", 2.0)]
)  # at most 1 for a fraction masked; any standard deviation
def test_autoencoder_noise_at_its_bounds_is_accepted(noise_type, noise, small_digits):
    X, _ = small_digits
    ae = AutoencoderTransformer(
        n_components=4, noise=noise, noise_type=noise_type, max_epochs=1,
        random_state=0,
    ).fit(X[:64])  # fmt: skip
    assert np.isfinite(ae.loss_curve_).all()


def test_autoencoder_noise_type_reaches_the_objective(small_digits):
    # "mask" zeroes a fraction of the inputs, "gaussian" adds noise: left
    # out, both trained the objective's default (the same loss curve).
    X, _ = small_digits
    kw = dict(n_components=4, noise=0.5, max_epochs=2, random_state=0)
    mask = AutoencoderTransformer(noise_type="mask", **kw).fit(X[:64])
    gauss = AutoencoderTransformer(noise_type="gaussian", **kw).fit(X[:64])
    assert mask.net_.module_.noise_type == "mask"
    assert mask.loss_curve_ != gauss.loss_curve_


def test_reconstruct_answers_in_the_shape_it_is_given(small_digits):
    # Images as nested lists come back as images; rows as lists, as rows.
    X, _ = small_digits
    ae = AutoencoderTransformer(
        n_components=4, input_shape=(1, 8, 8), max_epochs=1, random_state=0
    ).fit(X[:64])
    assert ae.reconstruct(X[:3].reshape(3, 1, 8, 8).tolist()).shape == (3, 1, 8, 8)
    assert ae.reconstruct(X[:3].tolist()).shape == (3, 64)


def test_gaussian_corruption_has_the_given_standard_deviation():
    # noise is the standard deviation of the added noise (Vincent et al.).
    from sk_replearn.objectives.reconstruction import corrupt

    torch.manual_seed(0)
    x = torch.full((4, 5000), 2.0)
    added = corrupt(x, 0.25, "gaussian") - x
    assert abs(float(added.mean())) < 0.01
    assert float(added.std()) == pytest.approx(0.25, rel=0.02)


def test_autoencoder_keeps_the_strided_cnn_on_signals():
    # encoder="auto" gives two-view methods a ResNet on 1-D signals; the
    # autoencoder keeps the strided CNN its decoder mirrors.
    from sk_replearn.nn.conv import CNNEncoder

    X = np.random.default_rng(0).random((32, 16), dtype=np.float32)
    ae = AutoencoderTransformer(input_shape=(1, 16), max_epochs=1, random_state=0)
    assert isinstance(ae.fit(X).net_.module_.backbone, CNNEncoder)
    assert ae.reconstruct(X[:3]).shape == (3, 16)


def test_input_scale_of_samples_wider_than_a_block():
    # One sample of more values than a block of the float64 pass (an RGB
    # image of 100 x 240): blocks of one sample, not of none.
    from sk_replearn.objectives.base import Objective

    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 3, 100, 240)) * 2 + 5).astype(np.float32)
    obj = Objective(input_shape=(3, 100, 240))
    obj.set_input_scale(torch.from_numpy(x))
    ref = x.astype(np.float64)
    np.testing.assert_allclose(float(obj.input_shift), ref.mean(), rtol=1e-6)
    np.testing.assert_allclose(float(obj.input_scale), ref.std(ddof=1), rtol=1e-6)


def test_a_warm_start_refuses_columns_of_other_names():
    """A warm start reads X as the fitted model did: renamed columns are refused."""
    pd = pytest.importorskip("pandas")
    X = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    ae = AutoencoderTransformer(
        2, max_epochs=1, batch_size=10, warm_start=True, random_state=0, device="cpu"
    ).fit(pd.DataFrame(X, columns=list("abcdef")))
    with pytest.raises(ValueError, match="feature names should match"):
        ae.fit(pd.DataFrame(X, columns=list("uvwxyz")))
    assert list(ae.feature_names_in_) == list("abcdef") and ae.n_epochs_ == 1


def test_autoencoder_builds_the_encoder_and_decoder_it_is_given():
    """encoder_kwargs, decoder and decoder_kwargs shape the fitted network."""
    X = np.random.default_rng(0).random((32, 64), dtype=np.float32)
    ae = AutoencoderTransformer(
        n_components=3,
        input_shape=(1, 8, 8),
        encoder="cnn",
        encoder_kwargs={"channels": (4, 6)},
        decoder="mlp",
        decoder_kwargs={"hidden_sizes": (7,)},
        max_epochs=1,
        random_state=0,
    ).fit(X)
    module = ae.net_.module_
    convs = [m for m in module.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [conv.out_channels for conv in convs] == [4, 6]
    linears = [m for m in module.decoder.modules() if isinstance(m, torch.nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [
        (3, 7),
        (7, 64),
    ]


def test_mask_corruption_zeroes_the_given_fraction_and_keeps_the_rest():
    """noise_type="mask" zeroes a fraction noise of the values and keeps the others."""
    from sk_replearn.objectives.reconstruction import corrupt

    torch.manual_seed(0)
    x = torch.full((4, 5000), 2.0)
    out = corrupt(x, 0.25, "mask")
    zeroed = out == 0
    assert float(zeroed.float().mean()) == pytest.approx(0.25, abs=0.01)
    assert torch.equal(out[~zeroed], x[~zeroed])


def test_autoencoder_trains_with_adamw_at_its_default_rate():
    """By default the optimiser is AdamW at lr=3e-3 with weight decay 1e-4."""
    X = np.random.default_rng(0).random((16, 4), dtype=np.float32)
    ae = AutoencoderTransformer(
        n_components=2, max_epochs=1, lr_schedule=None, random_state=0
    ).fit(X)
    optimizer = ae.net_.optimizer_
    assert isinstance(optimizer, torch.optim.AdamW)
    assert [(g["lr"], g["weight_decay"]) for g in optimizer.param_groups] == [
        (3e-3, 1e-4)
    ]


def test_inverse_transform_reads_codes_of_object_dtype():
    """Numeric codes held in an object array decode as the same codes in float32."""
    X = np.random.default_rng(0).random((32, 6), dtype=np.float32)
    ae = AutoencoderTransformer(n_components=2, max_epochs=1, random_state=0).fit(X)
    Z = ae.transform(X[:3])
    np.testing.assert_array_equal(
        ae.inverse_transform(Z.astype(object)), ae.inverse_transform(Z)
    )


def test_an_unknown_corruption_is_refused_by_corrupt_and_the_objective():
    """corrupt and AutoencoderObjective name an unknown noise_type, noise or not."""
    from sk_replearn.objectives.reconstruction import AutoencoderObjective, corrupt

    for noise in (0.0, 0.5):
        with pytest.raises(ValueError, match=r"noise_type='salt'.*'gaussian', 'mask'"):
            corrupt(torch.ones(3, 4), noise, "salt")
    with pytest.raises(ValueError, match="noise_type='salt'"):
        AutoencoderObjective((4,), 2, noise=0.1, noise_type="salt")
    assert AutoencoderObjective((4,), 2, noise_type="mask").noise_type == "mask"


@pytest.mark.parametrize("shape", [(3,), (1, 4)])
def test_an_objective_not_yet_standardised_leaves_its_input_unchanged(shape):
    """Before set_input_scale, normalize and denormalize are the identity."""
    from sk_replearn.objectives.base import Objective

    obj = Objective(input_shape=shape)
    x = torch.randn(2, *shape)
    assert torch.equal(obj.normalize(x), x)
    assert torch.equal(obj.denormalize(x), x)


def test_an_objective_without_a_transfer_encoder_says_it_cannot_be_fine_tuned():
    """The base objective's transfer_encoder is a TypeError naming the class."""
    from sk_replearn.objectives.base import Objective

    class Plain(Objective):
        pass

    with pytest.raises(TypeError, match="^Plain does not define transfer_encoder"):
        Plain(input_shape=(4,)).transfer_encoder((4,))


def test_a_transfer_encoder_keeps_its_own_copy_of_the_standardisation():
    """Re-standardising an objective leaves an encoder copied from it unchanged."""
    from sk_replearn.objectives.reconstruction import AutoencoderObjective

    torch.manual_seed(0)
    obj = AutoencoderObjective((6,), 2)
    x = torch.randn(16, 6) * 3 + 5
    obj.set_input_scale(x)
    encoder = obj.transfer_encoder((6,)).eval()
    with torch.no_grad():
        before = encoder(x)
        obj.set_input_scale(x * 10 - 4)
        assert torch.equal(encoder(x), before)


@pytest.mark.parametrize(
    "name, params",
    [
        ("AutoencoderTransformer", {"encoder_kwargs": {"input_shape": (4,)}}),
        ("AutoencoderTransformer", {"decoder_kwargs": {"in_features": 3}}),
        ("AutoencoderTransformer", {"decoder_kwargs": {"input_shape": (4,)}}),
        ("SimCLRTransformer", {"encoder_kwargs": {"input_shape": (4,)}}),
        ("CMCTransformer", {"encoder_kwargs": {"input_shape": (2,)}}),
    ],
)
def test_a_builders_own_keyword_in_encoder_or_decoder_kwargs_is_named(name, params):
    """input_shape (or a decoder's in_features) among encoder_kwargs or
    decoder_kwargs is refused naming that parameter, not as Python's
    "got multiple values" of an internal builder."""
    import sk_replearn

    X = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    est = getattr(sk_replearn, name)(max_epochs=1, random_state=0, **params)
    (param,) = params
    (key,) = params[param]
    with pytest.raises(ValueError, match=rf"{param} sets {key}=.*leave it out of"):
        est.fit(X)
