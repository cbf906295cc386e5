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

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from torch import nn

from sk_replearn import AutoencoderTransformer, SimCLRTransformer
from sk_replearn.data import ArrayDataset
from sk_replearn.training import NonFiniteLossError, RandomSplit


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
