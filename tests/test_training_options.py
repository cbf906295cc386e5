"""Training options a user sets that the fit's own settings would defeat.

A views callable that works in place, a user's learning-rate scheduler under
the built-in schedule, a callback that monitors a validation score with no
validation split, local views an encoder maps to another width, float64 data
that float32 blurs, and the interrupt's message: each is refused or named
before training, where it had silently trained something else or failed
inside skorch or torch.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import Callback, Checkpoint, EarlyStopping, LRScheduler
from torch import nn

from sk_replearn import (
    AutoencoderTransformer,
    DINOTransformer,
    FineTuner,
    PCATransformer,
    SimCLRTransformer,
    SwAVTransformer,
)
from sk_replearn.training import FreshLRScheduler
from sk_replearn.views import make_views

SMALL = {"input_shape": (1, 8, 8), "max_epochs": 1, "batch_size": 32}


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:96], y[:96]


def _add_noise_in_place(x):
    return x.add_(0.1 * torch.randn_like(x))


def test_views_that_change_their_batch_in_place_are_refused(digits):
    # The two views are two calls on one batch: an in-place callable made
    # them one and the same, and training ran with no augmentation.
    with pytest.raises(ValueError, match=r"in place.*x \+ noise"):
        make_views(_add_noise_in_place, (1, 8, 8))
    with pytest.raises(ValueError, match="changed the batch it was given in place"):
        SimCLRTransformer(views=_add_noise_in_place, **SMALL).fit(digits[0])
    # Out of place, or the batch as it is (no augmentation), is fine.
    for views in (lambda x: x + 0.1 * torch.randn_like(x), lambda x: x):
        assert make_views(views, (1, 8, 8)) is views
    rep = SimCLRTransformer(
        views=lambda x: x + 0.1 * torch.randn_like(x), random_state=0, **SMALL
    ).fit(digits[0])
    assert rep.transform(digits[0][:2]).shape == (2, rep.n_components_)


@pytest.mark.parametrize(
    "settings, named",
    [
        ({}, "lr_schedule='cosine'"),
        ({"lr_schedule": None, "warmup_epochs": 2}, "warmup_epochs=2"),
    ],
)
def test_a_users_lr_scheduler_under_the_built_in_schedule_is_refused(
    digits, settings, named
):
    # The built-in LambdaLR wrote its rate back at every batch: a StepLR's
    # decay showed for one batch only, and nothing said so.
    step = LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.1)
    rep = AutoencoderTransformer(callbacks=[step], **{**SMALL, "max_epochs": 4})
    with pytest.raises(ValueError, match=rf"callbacks\[0\] is an LRScheduler.*{named}"):
        rep.set_params(**settings).fit(digits[0])


def test_a_users_lr_scheduler_runs_alone_without_the_built_in_one(digits):
    class Rates(Callback):
        def on_epoch_end(self, net, **kwargs):
            net.history.record("lr", net.optimizer_.param_groups[0]["lr"])

    step = LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.1)
    rep = AutoencoderTransformer(
        callbacks=[step, Rates()],
        lr_schedule=None,
        lr=1e-3,
        **{**SMALL, "max_epochs": 3},
    ).fit(digits[0])
    np.testing.assert_allclose(rep.history_[:, "lr"], [1e-4, 1e-5, 1e-6])


@pytest.mark.parametrize(
    "callback",
    [
        EarlyStopping(),
        EarlyStopping,
        Checkpoint(dirname="never-written"),
    ],
    ids=["EarlyStopping()", "EarlyStopping", "Checkpoint"],
)
def test_a_callback_on_a_validation_score_needs_early_stopping(digits, callback):
    # skorch raised KeyError: 'valid_loss' from inside its callback after
    # the first epoch, with no hint that early_stopping=True makes the split.
    with pytest.raises(ValueError, match=r"monitors 'valid_loss.*early_stopping=True"):
        AutoencoderTransformer(callbacks=[callback], **SMALL).fit(digits[0])
    with pytest.raises(ValueError, match="monitors 'valid_loss"):
        FineTuner(
            AutoencoderTransformer(**SMALL), callbacks=[callback], max_epochs=1
        ).fit(*digits)


def test_a_callback_on_a_validation_score_runs_with_early_stopping(digits):
    watch = EarlyStopping(patience=50, sink=lambda *a: None)
    rep = AutoencoderTransformer(
        callbacks=[("watch", watch)],
        early_stopping=True,
        **{**SMALL, "max_epochs": 2},
    ).fit(digits[0])
    assert rep.n_epochs_ == 2 and "valid_loss" in rep.history_[-1]
    on_train = EarlyStopping(monitor="train_loss", patience=50, sink=lambda *a: None)
    AutoencoderTransformer(callbacks=[on_train], **SMALL).fit(digits[0])


@pytest.mark.parametrize("cls", [DINOTransformer, SwAVTransformer])
def test_local_views_an_encoder_maps_to_another_width_are_refused(digits, cls):
    # A convolution and a flatten run on the smaller crops too, but give
    # them 128 features against 512: training failed in torch.cat.
    encoder = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.Flatten())
    with pytest.raises(
        ValueError,
        match=r"maps the local views of shape \(1, 4, 4\).*\(128,\), not to the "
        "512 features.*global pooling",
    ):
        cls(encoder=encoder, n_local_views=2, **SMALL).fit(digits[0])


@pytest.mark.filterwarnings("ignore::sk_replearn.CollapseWarning")  # its result
def test_float64_values_that_float32_blurs_get_a_warning(digits):
    # An offset of 1e9 merged the digits' 17 pixel levels into 1 in the
    # cast to float32, and the only message blamed the training settings.
    X = digits[0]
    rep = SimCLRTransformer(random_state=0, **SMALL)
    with pytest.warns(UserWarning, match=r"feature 1 of X has values around 1e\+09"):
        rep.fit(X + 1e9)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rep.fit(X + 1e4)  # float32 still resolves a tenth of a pixel level
        rep.fit((X + 1e9).astype(np.float32))  # the user's own cast: no check
    assert not any("Standardise X" in str(w.message) for w in caught)
    # Once a fit: a fine-tuner pre-training on X does not repeat its warning;
    # one fine-tuning a fitted representation gives it itself.
    fitted = SimCLRTransformer(random_state=0, **SMALL).fit(X)
    for given, owner in [(clone(rep), "SimCLRTransformer"), (fitted, "FineTuner")]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            FineTuner(given, max_epochs=1).fit(X + 1e9, digits[1])
        blurred = [str(w.message) for w in caught if "Standardise X" in str(w.message)]
        assert len(blurred) == 1 and blurred[0].startswith(owner + ":")


def test_an_interrupt_at_an_epochs_end_says_after_it(digits):
    class CtrlC(Callback):
        def on_epoch_end(self, net, **kwargs):
            raise KeyboardInterrupt

    rep = AutoencoderTransformer(callbacks=[CtrlC()], **{**SMALL, "max_epochs": 3})
    with pytest.warns(RuntimeWarning, match="interrupted after epoch 1;.* 1 finished"):
        rep.fit(digits[0])


def test_a_collapse_on_identical_samples_blames_the_data():
    # The CollapseWarning told the user to try other views, a lower lr or
    # more epochs, where no training could tell the samples apart.
    X = np.ones((64, 64))
    with pytest.warns(UserWarning, match="Every sample of X is the same"):
        SimCLRTransformer(random_state=0, **SMALL).fit(X)


def test_a_warm_start_that_raises_keeps_the_fitted_model(digits):
    # Only a non-finite loss put the weights back: a user's callback failing
    # mid-continuation left them trained and the history longer, while the
    # estimator's attributes (n_epochs_, loss_curve_) were restored.
    class Fail(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 3:
                raise RuntimeError("callback failed")

    X = digits[0]
    ae = AutoencoderTransformer(**{**SMALL, "max_epochs": 2}).fit(X)
    before, curve = ae.transform(X), list(ae.loss_curve_)
    ae.set_params(warm_start=True, callbacks=[Fail()])
    with pytest.raises(RuntimeError, match="callback failed"):
        ae.fit(X)
    assert ae.n_epochs_ == 2 and len(ae.history_) == 2
    assert list(ae.loss_curve_) == curve
    np.testing.assert_array_equal(ae.transform(X), before)


def test_a_cpu_fit_load_and_score_leave_the_accelerators_generators_alone(
    digits, monkeypatch, tmp_path
):
    # torch.manual_seed would seed every GPU (queued until CUDA starts) and
    # MPS: a user's own seeded GPU code after our CPU fit would then draw
    # from our seed. Only the CPU generator is seeded, and restored.
    X, y = digits[0][:64], digits[1][:64]
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    calls = []
    for module, name in [
        (torch.cuda, "manual_seed_all"),
        (torch.cuda, "manual_seed"),
        (torch.mps, "manual_seed"),
    ]:
        monkeypatch.setattr(module, name, lambda seed, n=name: calls.append(n))
    est = SimCLRTransformer(**SMALL, random_state=0, device="cpu").fit(X)
    est.score(X)
    est.save(tmp_path / "simclr.pt")
    SimCLRTransformer.load(tmp_path / "simclr.pt")
    FineTuner(est, max_epochs=1, random_state=0, device="cpu").fit(X, y)
    assert calls == []
    assert torch.equal(torch.get_rng_state(), before)


def test_fits_train_inside_the_callers_inference_mode(digits):
    # As under torch.no_grad(): a fit made inside torch.inference_mode()
    # trains the same network (it failed inside skorch's backward pass).
    X, y = digits
    kw = dict(**SMALL, random_state=0, device="cpu")
    plain = SimCLRTransformer(**kw).fit(X).transform(X)
    with torch.inference_mode():
        inside = SimCLRTransformer(**kw).fit(X)
        features = inside.transform(X)
        clf = FineTuner(inside, max_epochs=1, random_state=0, device="cpu").fit(X, y)
        inside.set_params(warm_start=True).fit(X)  # one epoch more
    np.testing.assert_array_equal(features, plain)
    assert clf.predict(X).shape == (len(X),) and inside.n_epochs_ == 2


#: The training flags of _ModeRecorder's forward passes (the estimator
#: trains a copy of the encoder it is given, so the record is global).
_SEEN: list[tuple[bool, bool]] = []
_GRAD: list[bool] = []


class _ModeRecorder(nn.Module):
    """An MLP encoder that records the training flag of every forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.Dropout(0.1))
        self.out_features = 8

    def forward(self, x):
        _SEEN.append((self.training, self.net[2].training))
        _GRAD.append(torch.is_grad_enabled())
        return self.net(x)


class _EvalAfterEveryBatch(Callback):
    """Puts the whole network in evaluation mode after each step."""

    def on_batch_end(self, net, training=None, **kwargs):
        if training:
            net.module_.eval()


def test_validation_passes_run_in_evaluation_mode(digits):
    # Early stopping's validation passes switch to evaluation mode (dropout
    # off, batch norm's running statistics read, not updated with held-out
    # data). The mode cache below once skipped the switch whenever the flags
    # were as the last training step left them; only training passes were
    # checked.
    X, _ = digits
    _SEEN[:], _GRAD[:] = [], []
    AutoencoderTransformer(
        encoder=_ModeRecorder(),
        max_epochs=3,
        batch_size=16,
        early_stopping=True,
        random_state=0,
        device="cpu",
    ).fit(X)
    training = [s for s, grad in zip(_SEEN, _GRAD) if grad]
    evaluation = [s for s, grad in zip(_SEEN, _GRAD) if not grad]
    assert len(training) == 3 * 6  # 86 training rows in batches of 16
    assert all(s == (True, True) for s in training)
    assert len(evaluation) >= 3  # a validation pass an epoch, at least
    assert all(s == (False, False) for s in evaluation)


def test_training_steps_run_in_training_mode_without_resetting_it_each_step(
    digits,
):
    # skorch sets the training mode before every step; walking the module
    # tree each time cost a tenth of a small network's step. The walk is
    # skipped while the flags are as it left them, and runs again when
    # anything changed them, so every training step still sees train mode.
    X, _ = digits
    calls = []
    original = nn.Module.train

    def counting_train(module, mode=True):
        if mode:  # the walks to training mode, not the callback's eval()
            calls.append(module)
        return original(module, mode)

    for callbacks in ([], [_EvalAfterEveryBatch()]):
        _SEEN[:], calls[:] = [], []
        est = AutoencoderTransformer(
            encoder=_ModeRecorder(),
            max_epochs=2,
            batch_size=16,
            callbacks=callbacks,
            random_state=0,
            device="cpu",
        )
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(nn.Module, "train", counting_train)
            est.fit(X)
        steps = 2 * len(X) // 16
        training = [s for s in _SEEN if s[0]]
        assert len(training) == steps and all(s == (True, True) for s in training)
        module = est.net_.module_
        walks = sum(m is module for m in calls)
        if callbacks:  # every step finds the flags changed: a walk each
            assert walks >= steps
        else:  # the first step's walk, and one after each epoch's end
            assert walks <= 2 * 2


def test_a_users_fresh_lr_scheduler_runs_without_early_stopping(digits):
    """FreshLRScheduler watches train_loss, as skorch's LRScheduler: no split needed."""
    step = FreshLRScheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.1)
    rep = AutoencoderTransformer(
        callbacks=[step], lr_schedule=None, lr=1e-3, **{**SMALL, "max_epochs": 2}
    ).fit(digits[0])
    assert rep.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(1e-5)


def test_a_users_callback_named_checkpoint_is_refused_with_checkpoint_dir(
    digits, tmp_path
):
    """With checkpoint_dir set, "checkpoint" is the fit's own callback's name."""
    with pytest.raises(ValueError, match=r"callbacks\[0\] is named 'checkpoint'"):
        AutoencoderTransformer(
            callbacks=[("checkpoint", Callback())], checkpoint_dir=tmp_path, **SMALL
        ).fit(digits[0])


@pytest.mark.parametrize(
    "policy", [torch.optim.lr_scheduler.ReduceLROnPlateau, "ReduceLROnPlateau"]
)
def test_a_users_fresh_lr_scheduler_can_reduce_on_plateau(digits, policy):
    """ReduceLROnPlateau takes no last_epoch: it follows the monitored loss."""
    plateau = FreshLRScheduler(policy, patience=0, factor=0.5, threshold=10.0)
    rep = AutoencoderTransformer(
        callbacks=[plateau], lr_schedule=None, lr=1e-3, **{**SMALL, "max_epochs": 3}
    ).fit(digits[0])
    # no loss improves by 1000 %, so lr halves after each of the 3 epochs
    assert rep.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(1.25e-4)


def test_x_whose_squares_overflow_float32_is_refused_beside_a_fitted_representation():
    """X too large for float32 arithmetic is refused by name, not trained into NaN."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.arange(40) % 2
    rep = PCATransformer(n_components=2).fit(X)
    with pytest.raises(ValueError, match="overflow float32.*FineTuner computes"):
        FineTuner(rep, max_epochs=1).fit(X * 1e20, y)


def test_labelled_x_that_float32_blurs_gets_a_warning_beside_a_pretrain_x():
    """Labelled X blurred by float32 is warned of when pretrain_X is pre-trained on."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 16, size=(40, 3)).astype(np.float64)
    y = np.arange(40) % 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        FineTuner(PCATransformer(n_components=2), max_epochs=1).fit(
            X + 1e9, y, pretrain_X=X
        )
    blurred = [str(w.message) for w in caught if "Standardise X" in str(w.message)]
    assert len(blurred) == 1 and blurred[0].startswith("FineTuner:")
