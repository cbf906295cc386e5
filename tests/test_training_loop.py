"""What the training loop promises, each pinned by its own numbers.

Early stopping stops after exactly ``n_iter_no_change`` epochs without
improvement (that it keeps the best epoch's weights is in
``test_autoencoder.py``); the held-out part is ``validation_fraction`` of
the rows rounded, as the checks before the fit round it; the cosine schedule
spans the training part's steps; ``precision`` picks its dtype; a refused
warm start leaves the optimiser as it was; a Dataset's last batch of one is
dropped in training, as an array's is; and a refit without ``warm_start``
starts anew. Each was unguarded: a one-line bug planted there passed every
test.
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback, EarlyStopping
from torch import nn

from sk_replearn import AutoencoderTransformer, FineTuner, SimCLRTransformer
from sk_replearn._callbacks import StopOnNonFiniteLoss
from sk_replearn.data import ArrayDataset, WeightedTargets
from sk_replearn.objectives.reconstruction import AutoencoderObjective
from sk_replearn.tokens import PAD, TokenDataset, pad_sequences
from sk_replearn.training import (
    NonFiniteLossError,
    RandomSplit,
    RepresentationNet,
    SupervisedNet,
    WarmupCosine,
)


def _table(n: int, d: int = 8) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)


@pytest.mark.parametrize("patience", [1, 2, 3])
def test_early_stopping_waits_n_iter_no_change_epochs(patience):
    # lr=0: the validation loss is the same every epoch, so epoch 1 stays the
    # best and the fit stops n_iter_no_change epochs after it (it waited one
    # more, against scikit-learn's meaning of the parameter).
    ae = AutoencoderTransformer(
        3,
        max_epochs=20,
        batch_size=16,
        lr=0.0,
        early_stopping=True,
        n_iter_no_change=patience,
        random_state=0,
        device="cpu",
    ).fit(_table(64))
    assert len(set(ae.history_[:, "valid_loss"])) == 1
    assert ae.n_epochs_ == 1 + patience


@pytest.mark.parametrize(
    "fraction, n, held", [(0.1, 96, 10), (0.15, 10, 2), (0.3, 9, 3)]
)
def test_the_held_out_part_is_the_fraction_rounded(fraction, n, held):
    _, valid = RandomSplit(fraction)(ArrayDataset(torch.zeros(n, 2)))
    assert len(valid) == held == round(fraction * n)


def test_a_contrastive_fit_holds_out_what_its_check_counted():
    # 10 samples at 0.15: the check before the fit counted round(1.5) = 2
    # held-out samples, enough for a contrastive loss; a split that floored
    # held out 1 and the fit failed in its first validation pass.
    est = SimCLRTransformer(
        input_shape=(1, 8, 8),
        max_epochs=2,
        batch_size=8,
        early_stopping=True,
        validation_fraction=0.15,
        random_state=0,
        device="cpu",
    ).fit(_table(10, 64))
    assert np.isfinite(est.history_[:, "valid_loss"]).all()


class _LearningRates(Callback):
    def initialize(self):
        self.lrs = []
        return self

    def on_batch_begin(self, net, training=None, **kwargs):
        if training:
            self.lrs.append(net.optimizer_.param_groups[0]["lr"])


def test_the_cosine_schedule_spans_the_training_parts_steps():
    # With 10 of 100 rows held out, 3 epochs are 27 steps of 10: the cosine
    # ends near 0 at the last of them. Counting the held-out rows too, it
    # planned 30 steps and ended at 4 % of lr.
    rates = _LearningRates()
    AutoencoderTransformer(
        2,
        max_epochs=3,
        batch_size=10,
        lr=1e-3,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=50,
        callbacks=[rates],
        random_state=0,
        device="cpu",
    ).fit(_table(100, 6))
    assert len(rates.lrs) == 27
    assert rates.lrs[-1] / 1e-3 < 0.01


class _Dtypes(nn.Module):
    """A linear encoder that records the dtype of its training outputs."""

    seen: set = set()

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 4)
        self.out_features = 4

    def forward(self, x):
        out = self.lin(x.flatten(1))
        if torch.is_grad_enabled():
            _Dtypes.seen.add(out.dtype)
        return out


@pytest.mark.parametrize(
    "precision, dtype, device",
    [
        ("bf16", torch.bfloat16, "cpu"),
        pytest.param(
            "16",
            torch.float16,
            "cuda",
            marks=pytest.mark.skipif(
                not torch.cuda.is_available(), reason="float16 training needs CUDA"
            ),
        ),
    ],
)
def test_precision_trains_in_its_own_dtype(precision, dtype, device):
    # "bf16" had run float16 (on a GPU: without the loss scaling float16
    # needs) and "16" bfloat16.
    _Dtypes.seen = set()
    AutoencoderTransformer(
        encoder=_Dtypes(), max_epochs=1, precision=precision, random_state=0
    ).set_params(device=device).fit(_table(64))
    assert _Dtypes.seen == {dtype}


def test_a_refused_warm_start_leaves_the_optimiser_as_it_was():
    # A continuation that diverges is refused and the model kept; its
    # optimiser's moments must be kept too: left holding the diverged
    # step, the next continuation at a sane lr failed at once, blaming it.
    X = _table(40, 6)
    ae = AutoencoderTransformer(
        2, max_epochs=2, batch_size=10, warm_start=True, random_state=0, device="cpu"
    ).fit(X)
    before = copy.deepcopy(ae.net_.optimizer_.state_dict()["state"])
    with pytest.raises(NonFiniteLossError):
        ae.set_params(lr=1e12, lr_schedule=None).fit(X)
    after = ae.net_.optimizer_.state_dict()["state"]
    for key, state in before.items():
        for name, value in state.items():
            assert torch.equal(
                torch.as_tensor(value), torch.as_tensor(after[key][name])
            )
    ae.set_params(lr=1e-3, lr_schedule="cosine").fit(X)
    assert np.isfinite(ae.loss_curve_).all()


class _BatchSizes(Callback):
    def initialize(self):
        self.sizes = []
        return self

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if training:
            self.sizes.append(len(batch[0]))


def test_a_datasets_last_batch_of_one_is_dropped_in_training():
    # 33 samples in batches of 16: two batches, as for an array; a batch of
    # one broke batch norm and the contrastive losses.
    data = torch.utils.data.TensorDataset(torch.from_numpy(_table(33, 64)))
    sizes = _BatchSizes()
    AutoencoderTransformer(
        input_shape=(64,),
        max_epochs=1,
        batch_size=16,
        callbacks=[sizes],
        random_state=0,
        device="cpu",
    ).fit(data)
    assert sizes.sizes == [16, 16]
    SimCLRTransformer(
        input_shape=(1, 8, 8), max_epochs=1, batch_size=16, random_state=0, device="cpu"
    ).fit(data)


def test_a_refit_without_warm_start_starts_anew():
    # A second fit trains a new network from the seed: the same model as the
    # first fit, and on other data the model a fresh estimator fits there.
    # Continuing the old network on every refit was caught only by one of
    # scikit-learn's common checks.
    X, other = _table(64), _table(64) + 1.0
    ae = AutoencoderTransformer(3, max_epochs=3, random_state=0, device="cpu")
    first = ae.fit(X).transform(X)
    again = ae.fit(X)
    assert again.n_epochs_ == 3
    np.testing.assert_array_equal(again.transform(X), first)
    fresh = AutoencoderTransformer(3, max_epochs=3, random_state=0, device="cpu")
    np.testing.assert_array_equal(
        ae.fit(other).transform(other), fresh.fit(other).transform(other)
    )


def test_a_representation_net_trains_on_every_sample_with_adamw_by_default():
    """RepresentationNet alone holds no sample out and steps with AdamW."""
    sizes = _BatchSizes()
    net = RepresentationNet(
        AutoencoderObjective(input_shape=(4,), n_components=2),
        max_epochs=1,
        batch_size=8,
        callbacks=[sizes],
        verbose=0,
    ).fit(torch.from_numpy(_table(30, 4)), None)
    assert sizes.sizes and sum(sizes.sizes) == 30
    assert "valid_loss" not in net.history[-1]
    assert type(net.optimizer_) is torch.optim.AdamW


def test_a_bf16_fit_on_the_cpu_gives_no_warning():
    """bfloat16 needs no gradient scaler: precision="bf16" on the CPU warns nothing."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ae = AutoencoderTransformer(
            3, max_epochs=1, precision="bf16", random_state=0, device="cpu"
        ).fit(_table(64))
    assert np.isfinite(ae.loss_curve_).all()


@pytest.mark.parametrize("fraction, held", [(0.01, 1), (0.99, 9)])
def test_the_held_out_part_is_at_least_one_sample_and_never_all(fraction, held):
    """A fraction that rounds to none holds out one sample; to all, leaves one."""
    train, valid = RandomSplit(fraction)(ArrayDataset(torch.zeros(10, 2)))
    assert (len(train), len(valid)) == (10 - held, held)


def test_a_datasets_held_out_samples_are_not_trained_on():
    """Split from a Dataset, training and validation share no sample and miss none."""
    data = torch.utils.data.TensorDataset(torch.arange(20.0)[:, None])
    torch.manual_seed(0)
    train, valid = RandomSplit(0.25)(data)
    rows = [int(train[i][0]) for i in range(len(train))]
    held = [int(valid[i][0]) for i in range(len(valid))]
    assert len(held) == 5 and len(rows) == 15
    assert sorted(rows + held) == list(range(20))


def test_the_cosine_factor_stays_at_zero_past_the_planned_steps():
    """Steps beyond total_steps keep the decayed rate, not a rising cosine."""
    factor = WarmupCosine(total_steps=10, warmup_steps=2)
    assert [factor(s) for s in (10, 12, 14, 18)] == [0.0, 0.0, 0.0, 0.0]


def test_a_warm_start_schedules_from_its_own_lr():
    """A warm start given a new lr starts its cosine schedule over from that lr."""
    X = _table(40, 6)
    ae = AutoencoderTransformer(
        2, max_epochs=2, batch_size=10, lr=1e-3, warm_start=True, device="cpu"
    ).fit(X)
    rates = _LearningRates()
    ae.set_params(lr=1e-2, callbacks=[rates]).fit(X)
    assert len(rates.lrs) == 8
    assert rates.lrs[0] == pytest.approx(1e-2)
    assert rates.lrs[-1] < 0.1 * 1e-2


@pytest.mark.parametrize(
    "n, batch_size, extra, steps",
    [
        (95, 10, {"max_epochs": 2}, 20),  # 9 batches of 10 and one of 5 an epoch
        # 10 of 95 held out (9.5 rounded), 85 in batches of 4: 21, one dropped
        (95, 4, {"early_stopping": True, "validation_fraction": 0.1}, 21),
    ],
)
def test_the_cosine_schedule_ends_at_the_last_step_taken(n, batch_size, extra, steps):
    """The cosine's last rate is the one a schedule of the steps taken gives."""
    rates = _LearningRates()
    AutoencoderTransformer(
        2,
        **{"max_epochs": 1, **extra},
        batch_size=batch_size,
        lr=1e-3,
        n_iter_no_change=50,
        callbacks=[rates],
        random_state=0,
        device="cpu",
    ).fit(_table(n, 6))
    assert len(rates.lrs) == steps
    last = 0.5 * (1 + math.cos(math.pi * (steps - 1) / steps))
    assert rates.lrs[-1] == pytest.approx(1e-3 * last)


def _initialized_net():
    objective = AutoencoderObjective(input_shape=(4,), n_components=2)
    return RepresentationNet(objective, lr=0.5, verbose=0).initialize()


@pytest.mark.parametrize("kind", ["parameter", "buffer"])
def test_non_finite_weights_at_the_end_of_training_are_refused(kind):
    """A weight or a running statistic gone NaN after the last loss fails the fit."""
    net = _initialized_net()
    if kind == "parameter":
        with torch.no_grad():
            next(net.module_.parameters()).view(-1)[0] = float("nan")
    else:
        net.module_.register_buffer("running", torch.tensor([float("nan")]))
    StopOnNonFiniteLoss().on_train_end(_initialized_net())  # finite: no error
    with pytest.raises(NonFiniteLossError, match="left NaN or infinite weights"):
        StopOnNonFiniteLoss().on_train_end(net)


def test_a_non_finite_loss_names_its_pass_and_reads_every_input_tensor():
    """The error says validation or training and reads each tensor of a batch's X."""
    net, check = _initialized_net(), StopOnNonFiniteLoss()
    nan = torch.tensor(float("nan"))
    small, large = torch.full((2, 4), 1e20), torch.full((2, 4), 3e25)
    with pytest.raises(
        NonFiniteLossError, match=r"The validation loss became nan.* up to 3e\+25"
    ):
        check.on_batch_end(net, batch=((small, large), None), training=False, loss=nan)
    with pytest.raises(NonFiniteLossError, match="training loss.*NaN or infinite"):
        check.on_batch_end(
            net, batch=((small, large * float("inf")), None), training=True, loss=nan
        )


def test_a_fit_on_few_samples_without_early_stopping_holds_none_out():
    """validation_fraction counts only with early stopping: 4 samples train."""
    ae = AutoencoderTransformer(
        2, max_epochs=2, batch_size=2, validation_fraction=0.1, device="cpu"
    ).fit(_table(4))
    assert ae.n_epochs_ == 2 and "valid_loss" not in ae.history_[-1]


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_a_weight_decay_that_grows_the_weights_is_named_as_the_cause(optimizer):
    """Weights gone non-finite under an absurd weight_decay blame it, not lr."""
    X = _table(32, 6)
    ae = AutoencoderTransformer(
        2,
        max_epochs=3,
        batch_size=8,
        optimizer=optimizer,
        lr=1e-2,
        weight_decay=1e30,
        random_state=0,
        device="cpu",
    )
    with pytest.raises(NonFiniteLossError) as error:
        ae.fit(X)
    message = str(error.value)
    assert "weight_decay=1e+30" in message and "lr=0.01" in message
    assert "1 - lr * weight_decay = -1e+28" in message
    assert "learning rate (lr=0.01) is most likely too high" not in message


def test_a_huge_lr_with_a_usual_weight_decay_keeps_the_learning_rate_advice():
    """lr=1e12 with weight_decay=0.05 (their product far above 2) blames lr."""
    net = _initialized_net()
    net.optimizer_.param_groups[0].update(lr=1e12, initial_lr=1e12, weight_decay=0.05)
    nan = torch.tensor(float("nan"))
    batch = (torch.zeros(2, 4), None)
    with pytest.raises(NonFiniteLossError, match=r"learning rate \(lr=0.5\)") as e:
        StopOnNonFiniteLoss().on_batch_end(net, batch=batch, training=True, loss=nan)
    assert "weight decay" not in str(e.value)
    net.optimizer_.param_groups[0].update(weight_decay=1e13)
    with pytest.raises(NonFiniteLossError, match=r"weight_decay=1e\+13\) is too high"):
        StopOnNonFiniteLoss().on_batch_end(net, batch=batch, training=True, loss=nan)


@pytest.mark.parametrize(
    "estimator, name",
    [
        (AutoencoderTransformer(lr=1e39, optimizer="sgd"), "lr"),
        (AutoencoderTransformer(weight_decay=1e300, optimizer="sgd"), "weight_decay"),
        (FineTuner(lr=1e300, optimizer="sgd"), "lr"),
    ],
)
def test_a_rate_or_decay_past_float32_is_refused_by_name(estimator, name):
    """Values SGD cannot convert to the weights' float32 are refused up front."""
    X, y = _table(8, 3), np.arange(8) % 2
    with pytest.raises(ValueError, match=rf"'{name}' parameter .* 3\.40*28"):
        estimator.fit(X, y)
    limit = float(np.finfo(np.float32).max)
    estimator.set_params(**{name: limit})._validate_params()  # the largest float32


def test_an_encoder_rate_past_float32_is_refused_naming_both_factors():
    """lr * encoder_lr_scale past float32's range names both and the fix."""
    X, y = _table(8, 3), np.arange(8) % 2
    tuner = FineTuner(lr=1e37, encoder_lr_scale=1e3, optimizer="sgd", max_epochs=1)
    with pytest.raises(ValueError, match=r"lr \* encoder_lr_scale = 1e\+40 .*lower"):
        tuner.fit(X, y)
    tuner.set_params(lr=1e-2).fit(X, y)  # the same scale at a usual rate
    assert hasattr(tuner, "classes_")


def _quiet(*args, **kwargs):
    pass


class _EpochsSeen(Callback):
    def initialize(self):
        self.seen = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.seen.append(len(net.history))


class _RaiseAtEpochEnd(Callback):
    def __init__(self, epoch, exc):
        self.epoch, self.exc = epoch, exc

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise self.exc


def _still_net(*callbacks, **kwargs):
    """A net at lr=0: its train_loss is the same every epoch."""
    return RepresentationNet(
        AutoencoderObjective(input_shape=(4,), n_components=2),
        lr=0.0,
        max_epochs=5,
        batch_size=8,
        callbacks=list(callbacks),
        verbose=0,
        **kwargs,
    )


def _stopper():
    return EarlyStopping(monitor="train_loss", patience=1, sink=_quiet)


def test_early_stopping_ends_quietly_after_every_callback_saw_its_last_epoch():
    """The epoch early stopping ends at reaches the later callbacks; no warning."""
    epochs = _EpochsSeen()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = _still_net(_stopper(), epochs).fit(torch.from_numpy(_table(32, 4)))
    assert len(net.history) == 2
    assert epochs.seen == [1, 2]


def test_the_first_callback_error_at_the_epoch_early_stopping_ends_is_raised():
    """Errors raised beside early stopping's stop win over it, the first of them."""
    X = torch.from_numpy(_table(32, 4))
    first, second = RuntimeError("first"), ValueError("second")
    net = _still_net(
        _stopper(), _RaiseAtEpochEnd(2, first), _RaiseAtEpochEnd(2, second)
    )
    with pytest.raises(RuntimeError, match="first"):
        net.fit(X)


def test_a_ctrl_c_at_an_epochs_end_wins_over_a_later_callbacks_error():
    """The first exception of the epoch's end is the one raised: an interrupt."""
    X = torch.from_numpy(_table(32, 4))
    net = _still_net(
        _RaiseAtEpochEnd(1, KeyboardInterrupt()),
        _RaiseAtEpochEnd(1, RuntimeError("later")),
    )
    with pytest.warns(RuntimeWarning, match="interrupted after epoch 1"):
        net.fit(X)
    assert len(net.history) == 1


def _interrupting_split(dataset, y=None, **fit_params):
    raise KeyboardInterrupt


def test_an_interrupt_before_the_first_epoch_says_so_and_names_no_checkpoint():
    """Ctrl-C before any epoch: "before epoch 1", no checkpoint_dir to resume."""
    net = _still_net(train_split=_interrupting_split)
    with pytest.warns(RuntimeWarning, match="interrupted before epoch 1") as caught:
        net.fit(torch.from_numpy(_table(32, 4)))
    (message,) = [str(w.message) for w in caught if "interrupted" in str(w.message)]
    assert "records the 0 finished epoch(s)" in message
    assert "checkpoint_dir" not in message
    assert len(net.history) == 0


def test_training_draws_fresh_noise_at_every_epoch():
    """Each epoch corrupts the samples anew: at lr=0 every epoch's loss differs."""
    ae = AutoencoderTransformer(
        3, noise=0.5, max_epochs=3, lr=0.0, random_state=0, device="cpu"
    ).fit(_table(64))
    assert len(set(ae.loss_curve_)) == 3


def test_a_non_finite_loss_names_the_epoch_it_happened_in_and_the_precision_fix():
    """The message counts epochs from 1; precision='32' is advised only below it."""
    net, check = _initialized_net(), StopOnNonFiniteLoss()
    net.history.new_epoch()
    nan, batch = torch.tensor(float("nan")), (torch.zeros(2, 4), None)
    with pytest.raises(NonFiniteLossError, match="became nan in epoch 1. ") as error:
        check.on_batch_end(net, batch=batch, training=True, loss=nan)
    assert "precision='32'" not in str(error.value)
    net.precision = "bf16"
    with pytest.raises(
        NonFiniteLossError, match=r"warmup_epochs>0\) or use precision='32'"
    ):
        check.on_batch_end(net, batch=batch, training=True, loss=nan)


def test_non_finite_weights_at_the_end_name_the_last_epoch():
    """The end-of-training error names the epoch of the last step, counted from 1."""
    net = _initialized_net()
    net.history.new_epoch()
    with torch.no_grad():
        next(net.module_.parameters()).view(-1)[0] = float("inf")
    with pytest.raises(NonFiniteLossError, match=r"last step \(epoch 1\)"):
        StopOnNonFiniteLoss().on_train_end(net)


def test_a_weight_decay_that_only_shrinks_the_weights_keeps_the_learning_rate_advice():
    """lr * weight_decay = 1.5 flips the weights' sign yet shrinks them: lr is named."""
    net = _initialized_net()
    net.optimizer_.param_groups[0].update(lr=1.0, initial_lr=1.0, weight_decay=1.5)
    nan, batch = torch.tensor(float("nan")), (torch.zeros(2, 4), None)
    with pytest.raises(NonFiniteLossError, match=r"learning rate \(lr=0.5\)") as e:
        StopOnNonFiniteLoss().on_batch_end(net, batch=batch, training=True, loss=nan)
    assert "weight decay" not in str(e.value)


def test_the_weight_decay_advice_names_the_group_that_grows_fastest():
    """Of two parameter groups whose decay grows the weights, the worst is named."""
    net = _initialized_net()
    net.optimizer_.param_groups[0].update(lr=1.0, initial_lr=1.0, weight_decay=100.0)
    net.optimizer_.add_param_group(
        {
            "params": [torch.zeros(1, requires_grad=True)],
            "lr": 1.0,
            "weight_decay": 10.0,
        }
    )
    nan, batch = torch.tensor(float("nan")), (torch.zeros(2, 4), None)
    with pytest.raises(NonFiniteLossError, match=r"weight_decay=100\) is too high"):
        StopOnNonFiniteLoss().on_batch_end(net, batch=batch, training=True, loss=nan)


def test_a_negative_warmup_is_no_warmup():
    """WarmupCosine counts a negative warmup_steps as none: the same schedule."""
    negative, none = WarmupCosine(10, -3), WarmupCosine(10, 0)
    assert [negative(s) for s in range(12)] == [none(s) for s in range(12)]


def test_the_split_trains_on_the_rest_of_its_random_order():
    """Held out are the permutation's first rows; the rest train in its order."""
    torch.manual_seed(0)
    order = torch.randperm(20).float()
    torch.manual_seed(0)
    train, valid = RandomSplit(0.25)(ArrayDataset(torch.arange(20.0)[:, None]))
    torch.testing.assert_close(valid.X[:, 0], order[:5])
    torch.testing.assert_close(train.X[:, 0], order[5:])


@pytest.mark.parametrize("weighted, held", [(False, [6, 4]), (True, [6, 2])])
def test_a_stratified_split_holds_out_each_class_of_the_given_or_weighted_y(
    weighted, held
):
    """Classes come from y when given; with weights, each class's share of the
    samples of positive weight (here 60 and 20 of them) is held out."""
    y = torch.tensor([0] * 60 + [1] * 40)
    weight = (torch.arange(100) < 80).float()
    targets = WeightedTargets(y, weight) if weighted else y
    for seed in range(5):
        torch.manual_seed(seed)
        _, valid = RandomSplit(0.1, stratify=True)(
            ArrayDataset(torch.arange(100.0)[:, None]), targets
        )
        rows = valid.X[:, 0].long()
        assert torch.bincount(y[rows], minlength=2).tolist() == held
        assert not weighted or bool((weight[rows] > 0).all())


def test_an_infinite_loss_stops_training_as_a_nan_one_does():
    """A loss of inf (an overflow, not a NaN) is refused, naming its value."""
    inf, batch = torch.tensor(float("inf")), (torch.zeros(2, 4), None)
    with pytest.raises(NonFiniteLossError, match="training loss became inf"):
        StopOnNonFiniteLoss().on_batch_end(
            _initialized_net(), batch=batch, training=True, loss=inf
        )


def test_token_training_batches_group_lengths_and_evaluation_keeps_the_order():
    """In training, sequences of near lengths share a batch; evaluated, in order."""
    rng = np.random.default_rng(0)
    encoded = [[5] * int(n) for n in rng.integers(1, 100, size=320)]
    data = TokenDataset(*pad_sequences(encoded, 128, "GPT"))
    net = _still_net()
    net.set_params(batch_size=32)
    torch.manual_seed(0)
    training = list(net.get_iterator(data, training=True))
    real = sum(int((xb != PAD).sum()) for xb, _ in training)
    assert real / sum(xb.numel() for xb, _ in training) > 0.9
    evaluated = torch.cat([xb[:, :1] for xb, _ in net.get_iterator(data)])
    assert len(evaluated) == 320
    lengths = [int((xb != PAD).sum(1)[0]) for xb, _ in net.get_iterator(data)]
    assert lengths == [int(n) for n in data.lengths[::32]]


def test_a_batch_norm_given_batches_of_one_says_batch_size_is_1():
    """Batches of one sample in training name batch_size and its value."""
    X, y = torch.from_numpy(_table(8, 3)), torch.arange(8) % 2
    net = SupervisedNet(
        nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)),
        criterion=nn.CrossEntropyLoss,
        batch_size=1,
        max_epochs=1,
        verbose=0,
    )
    with pytest.raises(ValueError, match=r"set batch_size to 2 or more \(it is 1\)\."):
        net.fit(X, y)


def test_weighted_targets_score_bf16_predictions_in_float32():
    """Under precision="bf16" the weighted loss is the float32 criterion's too."""
    torch.manual_seed(0)
    logits = torch.randn(6, 3).to(torch.bfloat16)
    labels = torch.tensor([0, 2, 1, 1, 0, 2])
    weight = torch.tensor([0.5, 2.0, 1.0, 1.0, 1.5, 0.0])
    clf = SupervisedNet(
        nn.Linear(2, 3), criterion=nn.CrossEntropyLoss, precision="bf16"
    ).initialize()
    loss = clf.get_loss(logits, WeightedTargets(labels, weight))
    per_sample = nn.functional.cross_entropy(logits.float(), labels, reduction="none")
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, (per_sample * weight).mean())


def test_a_dataset_of_one_sample_trains_on_it():
    """A lone sample is a batch of its own in training, not a dropped remainder."""
    data = torch.utils.data.TensorDataset(torch.randn(1, 4), torch.zeros(1))
    net = _still_net()
    net.set_params(lr=1e-2, max_epochs=1)
    net.fit(data)
    assert np.isfinite(net.history[-1]["train_loss"])


class _FirstRows(Callback):
    def initialize(self):
        self.rows = []
        return self

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if training:
            self.rows.append(batch[0][:, 0].tolist())


def test_an_arrays_training_batches_are_reshuffled_and_drop_a_last_batch_of_one():
    """Each epoch draws a new order; 33 rows in batches of 16 train as 16 and 16."""
    rows = _FirstRows()
    X = torch.arange(33.0)[:, None].repeat(1, 4)
    _still_net(rows).set_params(max_epochs=2, batch_size=16).fit(X)
    assert [len(r) for r in rows.rows] == [16, 16, 16, 16]
    assert rows.rows[0] != rows.rows[2]
    assert rows.rows[0] != sorted(rows.rows[0])
