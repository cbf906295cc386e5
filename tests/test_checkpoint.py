"""checkpoint_dir: a killed fit resumes and ends with an uninterrupted fit's weights."""

from __future__ import annotations

import os
import random
import shutil
import warnings

import numpy as np
import pytest
import torch
from _damage import flip_a_bit_of
from _instances import make
from skorch.callbacks import Callback

from sk_replearn import AutoencoderTransformer, FineTuner
from sk_replearn.persistence._files import _atomic_save

MAX_EPOCHS = 4
KILL_AFTER = 2


class Killed(Exception):
    """What kills the fit: not KeyboardInterrupt, which the engine catches."""


class KillAfterEpoch(Callback):
    """Raise at the end of epoch ``epoch``, as a crash or a lost node would."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise Killed(f"killed after epoch {self.epoch}")


class InterruptMidEpoch(Callback):
    """Ctrl-C in the middle of epoch ``epoch`` (caught by the engine)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_batch_end(self, net, training=False, **kwargs):
        if training and len(net.history) == self.epoch:
            raise KeyboardInterrupt


class CountEpochs(Callback):
    """Append to ``epochs`` at the end of every epoch that runs."""

    def __init__(self, epochs: list) -> None:
        self.epochs = epochs

    def on_epoch_end(self, net, **kwargs):
        self.epochs.append(len(net.history))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(160, 8)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return X, y


#: What the checkpoint tests change in the table's rows: several epochs of
#: 5 batches, and networks a little wider than the table's.
_EPOCHS = {"max_epochs": MAX_EPOCHS, "batch_size": 32}
_TWO_VIEW = {
    "encoder_kwargs": {"hidden_sizes": (16, 8)},
    "projection_dim": 8,
    "hidden_dim": 16,
    **_EPOCHS,
}


def _ae(**kw):
    return make(
        "AutoencoderTransformer",
        **{
            "n_components": 3,
            "encoder_kwargs": {"hidden_sizes": (16,)},
            **_EPOCHS,
            **kw,
        },
    )


def _ae_early(**kw):
    return _ae(early_stopping=True, validation_fraction=0.2, n_iter_no_change=10, **kw)


def _simclr(**kw):
    return make("SimCLRTransformer", **{**_TWO_VIEW, **kw})


def _moco(**kw):
    return make("MoCoTransformer", **{**_TWO_VIEW, "queue_size": 64, **kw})


_PRETRAINED = {}


def _finetuner(**kw):
    if "ae" not in _PRETRAINED:
        X = np.random.default_rng(1).normal(size=(100, 8)).astype(np.float32)
        _PRETRAINED["ae"] = _ae(max_epochs=1).fit(X)
    # set_params, not make: make would clone the fitted representation unfitted.
    est = make("FineTuner", **{**_EPOCHS, **kw})
    return est.set_params(representation=_PRETRAINED["ae"])


FACTORIES = {
    "autoencoder": _ae,
    "autoencoder-early-stopping": _ae_early,
    "simclr": _simclr,
    "moco": _moco,
    "finetuner": _finetuner,
}


def _fit(est, data):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # collapse warnings of tiny SSL runs
        return est.fit(X, y) if isinstance(est, FineTuner) else est.fit(X)


def _assert_same_weights(a, b):
    sa, sb = a.net_.module_.state_dict(), b.net_.module_.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_checkpoint_resume_equals_uninterrupted_fit(name, data, tmp_path):
    factory = FACTORIES[name]
    reference = _fit(factory(), data)

    with pytest.raises(Killed):
        _fit(
            factory(checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(KILL_AFTER)]),
            data,
        )
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert len(saved["history"]) == KILL_AFTER and not saved["finished"]

    resumed = _fit(factory(checkpoint_dir=str(tmp_path)), data)
    assert resumed.n_epochs_ == MAX_EPOCHS
    # The net trains its remaining epochs, then says max_epochs as it was
    # (a net fitted again would otherwise train only those that were left).
    assert resumed.net_.max_epochs == reference.net_.max_epochs == MAX_EPOCHS
    # Only the remaining epochs ran: the first two came from the checkpoint.
    np.testing.assert_array_equal(resumed.loss_curve_, reference.loss_curve_)
    _assert_same_weights(resumed, reference)
    X = data[0]
    np.testing.assert_array_equal(resumed.transform(X), reference.transform(X))


def test_a_compiled_fit_resumes_from_its_checkpoint(data, tmp_path, monkeypatch):
    # compile=True trains torch.compile's wrapper, whose state dict names
    # every weight "_orig_mod.<name>": the checkpoint holds the module's own
    # names, which the resumed fit loads. Dynamo's eager backend (no code
    # generation) keeps the test fast; the wrapper is the same.
    compile_ = torch.compile

    def eager(module, **kwargs):
        return compile_(module, backend="eager")

    monkeypatch.setattr(torch, "compile", eager)
    reference = _fit(_ae(compile=True), data)
    assert isinstance(reference.net_.module_, torch._dynamo.eval_frame.OptimizedModule)
    with pytest.raises(Killed):
        _fit(
            _ae(compile=True, checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(2)]),
            data,
        )
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert saved["module"].keys() == _ae().fit(data[0]).net_.module_.state_dict().keys()
    resumed = _fit(_ae(compile=True, checkpoint_dir=tmp_path), data)
    np.testing.assert_array_equal(resumed.loss_curve_, reference.loss_curve_)
    _assert_same_weights(resumed, reference)


def test_checkpoint_resume_after_keyboard_interrupt_mid_epoch(data, tmp_path):
    reference = _fit(_ae(), data)
    # The warning said "trained further with warm_start=True", which goes on
    # from the half-finished epoch and overwrites the run saved to resume.
    with pytest.warns(RuntimeWarning, match="interrupted.*warm_start=False resumes"):
        _ae(checkpoint_dir=tmp_path, callbacks=[InterruptMidEpoch(2)]).fit(data[0])
    # The half-trained epoch 2 was not saved; epoch 1 is resumed.
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert len(saved["history"]) == 1 and not saved["finished"]
    resumed = _fit(_ae(checkpoint_dir=tmp_path), data)
    _assert_same_weights(resumed, reference)


def test_checkpoint_resume_with_random_state_none(data, tmp_path):
    """The generator's state is saved too: the resumed fit is the killed one's."""
    torch.manual_seed(123)
    with pytest.raises(Killed):
        _fit(
            _ae(
                random_state=None,
                checkpoint_dir=tmp_path,
                callbacks=[KillAfterEpoch(3)],
            ),
            data,
        )
    killed_curve = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["history"]
    resumed = _fit(_ae(random_state=None, checkpoint_dir=tmp_path), data)
    assert resumed.loss_curve_[:3] == [e["train_loss"] for e in killed_curve]
    assert resumed.n_epochs_ == MAX_EPOCHS


def test_checkpoint_of_finished_fit_starts_over(data, tmp_path):
    first = _fit(_ae(checkpoint_dir=tmp_path), data)
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert saved["finished"] and len(saved["history"]) == MAX_EPOCHS

    again = _fit(_ae(checkpoint_dir=tmp_path), data)
    assert again.n_epochs_ == MAX_EPOCHS  # not MAX_EPOCHS more, nor zero
    _assert_same_weights(again, first)
    # A finished checkpoint of other parameters is overwritten, not an error.
    other = _fit(_ae(n_components=2, checkpoint_dir=tmp_path), data)
    assert other.transform(data[0]).shape == (len(data[0]), 2)


def test_checkpoint_early_stopped_fit_is_finished(data, tmp_path):
    est = _ae(
        max_epochs=30,
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=1,
        lr=1e-6,
        checkpoint_dir=tmp_path,
    )
    _fit(est, data)
    assert est.n_epochs_ < 30
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["finished"]


def test_a_fit_killed_in_the_epoch_that_stopped_it_early_resumes_to_that_end(
    data, tmp_path
):
    # The checkpoint of that epoch held EarlyStopping's misses at the
    # patience: a resumed epoch counted one more, which skorch never stops
    # on, and the fit ran to max_epochs (30 epochs against 27) with other
    # weights.
    settings = dict(max_epochs=30, early_stopping=True, n_iter_no_change=2, lr=1e-6)
    reference = _fit(_ae(**settings), data)
    assert reference.n_epochs_ < 30
    with pytest.raises(Killed):
        _fit(
            _ae(
                **settings,
                checkpoint_dir=tmp_path,
                callbacks=[KillAfterEpoch(reference.n_epochs_)],
            ),
            data,
        )
    ran = []
    resumed = _fit(
        _ae(**settings, checkpoint_dir=tmp_path, callbacks=[CountEpochs(ran)]), data
    )
    assert ran == [] and resumed.n_epochs_ == reference.n_epochs_
    assert resumed.net_.max_epochs == reference.net_.max_epochs
    X = data[0]
    np.testing.assert_array_equal(resumed.transform(X), reference.transform(X))
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["finished"]


@pytest.mark.parametrize(
    "change, match",
    [
        ({"n_components": 2}, "n_components=3"),
        ({"lr": 1e-2}, "lr="),
    ],
)
def test_checkpoint_of_other_parameters_is_refused(data, tmp_path, change, match):
    with pytest.raises(Killed):
        _fit(_ae(checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(1)]), data)
    with pytest.raises(ValueError, match=f"checkpoint_dir=.*{match}"):
        _fit(_ae(checkpoint_dir=tmp_path, **change), data)


def test_checkpoint_of_other_data_is_refused(data, tmp_path):
    X, y = data
    with pytest.raises(Killed):
        _fit(_ae(checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(1)]), data)
    with pytest.raises(ValueError, match="data of shape"):
        _ae(checkpoint_dir=tmp_path).fit(X[:100])


def test_checkpoint_of_a_network_of_other_shapes_is_refused(data, tmp_path):
    # Same parameters, other weights' shapes: what a checkpoint written under
    # another default network (Barlow Twins' former hidden_dim=None) holds.
    with pytest.raises(Killed):
        _fit(_simclr(checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(1)]), data)
    path = tmp_path / "checkpoint.pt"
    checkpoint = torch.load(path, weights_only=True)
    weight = checkpoint["module"]["projector.layers.0.weight"]
    checkpoint["module"]["projector.layers.0.weight"] = weight.repeat(2, 1)
    del checkpoint["checksum"]
    _atomic_save(checkpoint, path)  # as it was written, with its checksum
    with pytest.raises(ValueError, match="network of other shapes"):
        _fit(_simclr(checkpoint_dir=tmp_path), data)


def test_checkpoint_with_a_flipped_bit_is_refused(data, tmp_path):
    # torch.load does not check the zip's CRCs: the damaged weights resumed.
    with pytest.raises(Killed):
        _fit(_ae(checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(1)]), data)
    path = tmp_path / "checkpoint.pt"
    checkpoint = torch.load(path, weights_only=True)
    flip_a_bit_of(next(iter(checkpoint["module"].values())), path)
    with pytest.raises(ValueError, match="cannot be resumed.*is damaged.*Delete"):
        _fit(_ae(checkpoint_dir=tmp_path), data)


def test_checkpoint_unreadable_file_is_a_clear_error(data, tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a file written by sk_replearn"):
        _fit(_ae(checkpoint_dir=tmp_path), data)


def test_checkpoint_dir_is_created(data, tmp_path):
    target = tmp_path / "a" / "b"
    _fit(_ae(max_epochs=1, checkpoint_dir=os.fspath(target)), data)
    assert (target / "checkpoint.pt").exists()
    assert not [p for p in os.listdir(target) if ".tmp" in p]


def test_checkpoint_of_other_data_of_the_same_shape_is_refused(data, tmp_path):
    # Two folds of a cross-validation have data of one shape: a fold running
    # beside another resumed the other's checkpoint and trained on its rows.
    X, y = data
    with pytest.raises(Killed):
        _fit(
            FACTORIES[next(iter(FACTORIES))](
                checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(KILL_AFTER)]
            ),
            (X, y),
        )
    other = (X[::-1].copy(), y[::-1].copy())
    with pytest.raises(ValueError, match="other data of the same shape"):
        _fit(FACTORIES[next(iter(FACTORIES))](checkpoint_dir=tmp_path), other)


def test_checkpoint_of_data_differing_in_its_last_row_is_refused(data, tmp_path):
    # The digest reads rows spread over the data, the first and last included.
    X, _ = data
    other = X.copy()
    other[-1] += 1.0
    with pytest.raises(Killed):
        _ae(checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(KILL_AFTER)]).fit(X)
    with pytest.raises(ValueError, match="other data of the same shape"):
        _ae(checkpoint_dir=tmp_path).fit(other)


def test_runtime_settings_of_a_nested_estimator_are_not_fingerprinted():
    # verbose, device, ... say how a fit runs, for the representation too: a
    # fine-tuning resumed with representation__verbose=1 is the same run.
    from sk_replearn import AutoencoderTransformer
    from sk_replearn.checkpoint import fingerprint

    a = FineTuner(AutoencoderTransformer(verbose=0, device="auto"))
    b = FineTuner(AutoencoderTransformer(verbose=1, device="cpu"))
    assert fingerprint(a) == fingerprint(b)
    c = FineTuner(AutoencoderTransformer(n_components=3))
    assert fingerprint(a) != fingerprint(c)


def test_a_fine_tuning_resumes_on_a_representation_pre_trained_again(data, tmp_path):
    # The script run again pre-trains the same representation (same seed,
    # same weights) in other times: its history_ is not its learned state.
    X, y = data
    P = np.random.default_rng(1).normal(size=(100, 8)).astype(np.float32)

    def tuner(**kw):
        est = make("FineTuner", **{**_EPOCHS, **kw})
        return est.set_params(representation=_ae(max_epochs=1).fit(P))

    reference = _fit(tuner(), data)
    with pytest.raises(Killed):
        _fit(
            tuner(checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(KILL_AFTER)]), data
        )
    resumed = _fit(tuner(checkpoint_dir=tmp_path), data)
    _assert_same_weights(resumed, reference)


def test_checkpoint_of_a_fine_tuning_of_another_representation_is_refused(
    data, tmp_path
):
    # Two pre-trained representations of equal parameters, fitted on other
    # data: a fine-tuning of one resumed the other's killed run, weights and all.
    import copy

    rng = np.random.default_rng(2)
    X_a = rng.normal(size=(100, 8)).astype(np.float32)
    ae_a = _ae(max_epochs=1).fit(X_a)
    ae_b = _ae(max_epochs=1).fit(3 * X_a)
    with pytest.raises(Killed):
        _fit(
            make("FineTuner", **_EPOCHS).set_params(
                representation=ae_a,
                checkpoint_dir=tmp_path,
                callbacks=[KillAfterEpoch(KILL_AFTER)],
            ),
            data,
        )
    other = make("FineTuner", **_EPOCHS).set_params(
        representation=ae_b, checkpoint_dir=tmp_path
    )
    with pytest.raises(
        ValueError, match="checkpoint_dir=.*representation=a fitted Autoencoder"
    ):
        _fit(other, data)
    # The same representation (here an equal copy of it) resumes the run:
    # only the epochs left run.
    ran = []
    same = make("FineTuner", **_EPOCHS).set_params(
        representation=copy.deepcopy(ae_a),
        checkpoint_dir=tmp_path,
        callbacks=[CountEpochs(ran)],
    )
    reference = make("FineTuner", **_EPOCHS).set_params(representation=ae_a)
    resumed, reference = _fit(same, data), _fit(reference, data)
    assert len(ran) == MAX_EPOCHS - KILL_AFTER
    np.testing.assert_array_equal(resumed.loss_curve_, reference.loss_curve_)
    _assert_same_weights(resumed, reference)


def test_checkpoint_of_a_fine_tuning_pre_trained_on_other_data_is_refused(
    data, tmp_path
):
    # An unfitted representation counted by its parameters alone: a killed
    # fine-tuning pre-trained on pretrain_X A was resumed by one asked to
    # pre-train on B, keeping A's pre-training.
    X, y = data
    rng = np.random.default_rng(3)
    pre_a = rng.normal(size=(80, X.shape[1])).astype(np.float32)
    pre_b = 2 * pre_a

    def tuner(**kw):
        return make("FineTuner", **_EPOCHS).set_params(
            representation=_ae(max_epochs=1), checkpoint_dir=tmp_path, **kw
        )

    with pytest.raises(Killed):
        tuner(callbacks=[KillAfterEpoch(KILL_AFTER)]).fit(X, y, pretrain_X=pre_a)
    with pytest.raises(ValueError, match="checkpoint_dir=.*pretrain_X=data of digest"):
        tuner().fit(X, y, pretrain_X=pre_b)
    ran = []
    tuner(callbacks=[CountEpochs(ran)]).fit(X, y, pretrain_X=pre_a)  # resumes
    assert len(ran) == MAX_EPOCHS - KILL_AFTER


class _Silent:
    """An EarlyStopping sink that prints nothing."""

    def __call__(self, *args, **kwargs) -> None:
        return None


@pytest.mark.parametrize("kind", ["lr_scheduler", "early_stopping"])
def test_checkpoint_resume_with_the_users_callbacks_equals_uninterrupted_fit(
    kind, data, tmp_path
):
    # The checkpoint restored the user's callbacks before their own
    # on_train_begin: a StepLR got an 'lr_scheduler' argument, and an
    # EarlyStopping started counting its misses again (and saved before it
    # counted an epoch).
    from skorch.callbacks import EarlyStopping, LRScheduler

    def users():
        if kind == "lr_scheduler":
            policy = torch.optim.lr_scheduler.StepLR
            return [("sched", LRScheduler(policy, step_size=1, gamma=0.5))]
        # Every epoch is a miss after the first: it stops at epoch 1 + 3.
        stop = EarlyStopping(
            monitor="train_loss", patience=3, threshold=0.9, sink=_Silent()
        )
        return [("stop", stop)]

    def ae(**kw):
        return _ae(max_epochs=8, lr_schedule=None, lr=0.05, **kw)

    reference = _fit(ae(callbacks=users()), data)
    with pytest.raises(Killed):
        _fit(
            ae(checkpoint_dir=tmp_path, callbacks=[*users(), KillAfterEpoch(2)]),
            data,
        )
    resumed = _fit(ae(checkpoint_dir=tmp_path, callbacks=users()), data)
    assert resumed.n_epochs_ == reference.n_epochs_
    assert reference.n_epochs_ == (4 if kind == "early_stopping" else 8)
    np.testing.assert_array_equal(resumed.loss_curve_, reference.loss_curve_)
    _assert_same_weights(resumed, reference)


def test_checkpoint_of_a_warm_start_continuation_is_resumed_only_by_one(data, tmp_path):
    # A script fits, then trains on with warm_start=True; killed in the
    # second round, run again from the start: its first fit resumed the
    # second round's checkpoint (4 epochs where it asked for 2).
    import copy

    X = data[0]

    def round_one(**kw):
        return _ae(max_epochs=2, warm_start=True, **kw).fit(X)

    first = round_one()
    reference = copy.deepcopy(first).fit(X)
    assert reference.n_epochs_ == 4
    with pytest.raises(Killed):
        round_one(checkpoint_dir=tmp_path).set_params(
            callbacks=[KillAfterEpoch(3)]
        ).fit(X)

    again = round_one(checkpoint_dir=tmp_path)  # the script run again
    assert again.n_epochs_ == 2
    _assert_same_weights(again, first)
    again.fit(X)
    assert again.n_epochs_ == 4
    _assert_same_weights(again, reference)

    # A continuation of the same fitted model from the same epoch resumes.
    with pytest.raises(Killed):
        copy.deepcopy(first).set_params(
            checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(3)]
        ).fit(X)
    ran = []
    resumed = copy.deepcopy(first).set_params(
        checkpoint_dir=tmp_path, callbacks=[CountEpochs(ran)]
    )
    resumed.fit(X)
    assert ran == [4]
    np.testing.assert_array_equal(resumed.loss_curve_, reference.loss_curve_)
    _assert_same_weights(resumed, reference)
    # One of another fitted model (other weights, same parameters) is refused.
    with pytest.raises(Killed):
        copy.deepcopy(first).set_params(
            checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(3)]
        ).fit(X)
    other = _ae(max_epochs=2, warm_start=True, random_state=1).fit(X)
    with pytest.raises(ValueError, match="warm start of another fitted model"):
        other.set_params(random_state=0, checkpoint_dir=tmp_path).fit(X)


def _views_function():
    """A new function object each call, of one name: as in a new process."""

    def views(batch):
        return batch + 0.1 * torch.randn_like(batch)

    return views


def test_checkpoint_fingerprint_holds_no_memory_address(data, tmp_path):
    # random_state=RandomState(0) or a views function counted by their repr,
    # "<... at 0x7f...>": in a new process the run was "of other parameters".
    from sk_replearn.checkpoint import fingerprint

    def simclr(seed=0, **kw):
        return _simclr(
            random_state=np.random.RandomState(seed), views=_views_function(), **kw
        )

    text = repr(fingerprint(simclr()))
    assert " at 0x" not in text and "RandomState(state" in text
    reference = _fit(simclr(), data)
    with pytest.raises(Killed):
        _fit(simclr(checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(1)]), data)
    resumed = _fit(simclr(checkpoint_dir=tmp_path), data)  # new objects
    _assert_same_weights(resumed, reference)
    # A value that differs is still refused.
    with pytest.raises(Killed):
        _fit(simclr(checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(1)]), data)
    with pytest.raises(ValueError, match=r"other parameters \(random_state=Random"):
        _fit(simclr(seed=1, checkpoint_dir=tmp_path), data)
    a, b = fingerprint(_simclr(views=lambda x: x)), fingerprint(_simclr(views=abs))
    assert a["params"]["views"] != b["params"]["views"]
    # Lambdas of one scope share a name: their code tells them apart.
    a = fingerprint(_simclr(views=lambda x: x * 1.0))
    b = fingerprint(_simclr(views=lambda x: x + 0.5))
    assert a["params"]["views"] != b["params"]["views"]


def test_checkpoint_of_another_dataset_is_refused(data, tmp_path):
    # A Dataset's fingerprint had no shape and no digest: a fit on another
    # Dataset resumed the run; one of another sample width blamed "a version
    # of sk_replearn with other defaults".
    from torch.utils.data import TensorDataset

    X = torch.from_numpy(data[0])
    with pytest.raises(Killed):
        _ae(checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(1)]).fit(
            TensorDataset(X)
        )
    with pytest.raises(ValueError, match="other data of the same shape"):
        _ae(checkpoint_dir=tmp_path).fit(TensorDataset(X.flip(0)))
    with pytest.raises(ValueError, match=r"data of shape \(160, 8\)"):
        _ae(checkpoint_dir=tmp_path).fit(TensorDataset(X[:100]))
    with pytest.raises(ValueError, match=r"data of shape \(160, 8\)"):
        _ae(checkpoint_dir=tmp_path).fit(TensorDataset(X[:, :6].contiguous()))
    ran = []
    _ae(checkpoint_dir=tmp_path, callbacks=[CountEpochs(ran)]).fit(TensorDataset(X))
    assert ran == [2, 3, 4]  # the same Dataset resumes


def test_checkpoint_of_a_fine_tuning_pre_trained_on_another_dataset_is_refused(
    data, tmp_path
):
    from torch.utils.data import TensorDataset

    X, y = data
    pre = torch.from_numpy(np.random.default_rng(3).normal(size=(80, 8)))
    pre = pre.float()

    def tuner(**kw):
        return make("FineTuner", **_EPOCHS).set_params(
            representation=_ae(max_epochs=1), checkpoint_dir=tmp_path, **kw
        )

    with pytest.raises(Killed):
        tuner(callbacks=[KillAfterEpoch(KILL_AFTER)]).fit(
            X, y, pretrain_X=TensorDataset(pre)
        )
    with pytest.raises(ValueError, match="checkpoint_dir=.*pretrain_X=data of digest"):
        tuner().fit(X, y, pretrain_X=TensorDataset(2 * pre))


@pytest.mark.parametrize("how", ["below_a_file", "read_only"])
def test_checkpoint_dir_that_cannot_be_written_fails_before_training(
    how, data, tmp_path, monkeypatch
):
    # It failed after the first epoch: NotADirectoryError, or torch's
    # "[enforce fail at inline_container.cc] open file failed".
    (tmp_path / "a-file").write_text("")
    folder = tmp_path / "a-file" / "run"
    reason = "Not a directory"
    if how == "read_only":  # as root, chmod does not stop writes: pretend
        import tempfile

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied", kwargs.get("dir"))

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
        folder, reason = tmp_path / "read-only", "Permission denied"
    ran = []
    est = _ae(checkpoint_dir=folder, callbacks=[CountEpochs(ran)])
    with pytest.raises(ValueError, match=f"checkpoint_dir=.*{reason}") as info:
        _fit(est, data)
    assert str(folder) in str(info.value)
    assert ran == []


def test_checkpoint_messages_read_well(data, tmp_path):
    # "a AutoencoderTransformer"; and a truncated file said only that it was
    # not sk_replearn's, not what to do.
    with pytest.raises(Killed):
        _fit(_ae(checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(1)]), data)
    with pytest.raises(ValueError, match="run of an AutoencoderTransformer,"):
        _fit(_simclr(checkpoint_dir=tmp_path), data)
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(
        ValueError, match="is damaged.*cut off.*Delete .*checkpoint_dir"
    ):
        _fit(_ae(checkpoint_dir=tmp_path), data)
    saved = tmp_path / "simclr.pt"
    _fit(_simclr(max_epochs=1), data).save(saved)
    with pytest.raises(TypeError, match="not an AutoencoderTransformer"):
        type(_ae()).load(saved)


class _Augmented(torch.utils.data.Dataset):
    """Rows of X, each read with a random change drawn from ``draw``'s source."""

    def __init__(self, X: torch.Tensor, source: str) -> None:
        self.X, self.source = X, source
        self.own = np.random.default_rng()  # a generator of its own, unseeded

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i):
        if self.source == "torch":  # as torchvision's transforms draw
            return self.X[i] + 0.01 * torch.randn(self.X.shape[1])
        if self.source == "python":  # as albumentations draws
            return self.X[i].flip(0) if random.random() < 0.5 else self.X[i]
        return self.X[i] + float(self.own.normal(0, 0.01))


def test_a_dataset_that_draws_from_torch_trains_as_without_a_checkpoint(data, tmp_path):
    # The digest read its samples after the fit had seeded torch: their
    # draws moved the generator, and checkpoint_dir alone changed the weights.
    X = torch.from_numpy(data[0])
    plain = _ae().fit(_Augmented(X, "torch"))
    kept = _ae(checkpoint_dir=tmp_path).fit(_Augmented(X, "torch"))
    np.testing.assert_array_equal(kept.transform(data[0]), plain.transform(data[0]))


@pytest.mark.parametrize("source", ["python", "own"])
def test_a_dataset_that_draws_at_random_resumes(source, data, tmp_path):
    # Each fit read other samples for the digest: refused as "other data".
    X = torch.from_numpy(data[0])
    with pytest.raises(Killed):
        _ae(checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(KILL_AFTER)]).fit(
            _Augmented(X, source)
        )
    ran = []
    _ae(checkpoint_dir=tmp_path, callbacks=[CountEpochs(ran)]).fit(
        _Augmented(X, source)
    )
    assert ran == [3, 4]


def test_an_interrupted_fine_tuner_says_fit_again_resumes_its_checkpoint(
    data, tmp_path
):
    """A fine-tuner has no warm_start: its interrupt warning says fit again resumes."""
    est = _finetuner(checkpoint_dir=tmp_path, callbacks=[InterruptMidEpoch(2)])
    with pytest.warns(RuntimeWarning, match="interrupted during epoch 2") as caught:
        est.fit(*data)
    (message,) = [str(w.message) for w in caught if "interrupted" in str(w.message)]
    assert "resumed by fit again when checkpoint_dir is set" in message
    assert "warm_start" not in message


class _CountedAE(AutoencoderTransformer):
    """An autoencoder that counts its fits (its clones included)."""

    fits: list = []

    def fit(self, X, y=None, **kwargs):
        type(self).fits.append(len(X))
        return super().fit(X, y, **kwargs)


def test_a_fine_tuners_checkpoint_dir_that_cannot_be_written_fails_before_pre_training(
    tmp_path,
):
    """A fine-tuner's unwritable checkpoint_dir is refused before any pre-training."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 8)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    (tmp_path / "a-file").write_text("")
    folder = tmp_path / "a-file" / "run"
    params = make("AutoencoderTransformer", n_components=3).get_params()
    rep = _CountedAE(**params)
    _CountedAE.fits.clear()
    with pytest.raises(ValueError, match="checkpoint_dir=.*Not a directory"):
        FineTuner(rep, checkpoint_dir=folder, max_epochs=1).fit(X, y)
    assert _CountedAE.fits == []
    FineTuner(rep, max_epochs=1).fit(X, y)
    assert _CountedAE.fits == [40]  # where it can, the same one pre-trains


# -- what a fingerprint tells apart ---------------------------------------------------
def _linear_encoder(width, activation=torch.nn.Tanh):
    return torch.nn.Sequential(torch.nn.LazyLinear(width), activation())


class _EncoderFactory:
    """An encoder factory object with its settings as attributes."""

    def __init__(self, width=4, skip=()):
        self.width = width
        self.skip = skip

    def build(self):
        return _linear_encoder(self.width)


def _encoder_text(encoder) -> str:
    from sk_replearn.checkpoint import fingerprint

    return fingerprint(AutoencoderTransformer(encoder=encoder))["params"]["encoder"]


def test_fingerprint_tells_partials_of_other_arguments_apart():
    """A partial counts by its positional arguments as well as its keywords."""
    import functools

    four = _encoder_text(functools.partial(_linear_encoder, 4))
    assert four == _encoder_text(functools.partial(_linear_encoder, 4))
    assert four != _encoder_text(functools.partial(_linear_encoder, 3))


def test_fingerprint_tells_bound_methods_of_other_objects_apart():
    """A bound method counts by the settings of the object it is bound to."""
    four = _encoder_text(_EncoderFactory(4).build)
    assert four == _encoder_text(_EncoderFactory(4).build)  # another object
    assert four != _encoder_text(_EncoderFactory(3).build)


def test_fingerprint_reads_equal_sets_alike_whatever_their_order():
    """Equal sets read alike, in whatever order their items were added."""
    first, second = {8, 0}, {0, 8}
    assert list(first) != list(second)  # the orders they iterate in differ
    assert _encoder_text(_EncoderFactory(skip=first)) == _encoder_text(
        _EncoderFactory(skip=second)
    )
    assert _encoder_text(_EncoderFactory(skip=first)) != _encoder_text(
        _EncoderFactory(skip={0, 9})
    )


def test_fingerprint_counts_what_a_fitted_representation_learned_as_a_float():
    """A fitted representation counts by its learned values, floats included."""
    from sklearn.base import BaseEstimator, TransformerMixin

    from sk_replearn.checkpoint import fingerprint

    class _Shift(TransformerMixin, BaseEstimator):
        """A representation that learns one float: the mean of X."""

        def fit(self, X, y=None):
            self.shift_ = float(np.mean(X))
            return self

        def transform(self, X):
            return np.asarray(X) - self.shift_

    X = np.arange(12.0).reshape(6, 2)
    a = fingerprint(FineTuner(_Shift().fit(X)))
    assert a == fingerprint(FineTuner(_Shift().fit(X.copy())))
    assert a != fingerprint(FineTuner(_Shift().fit(X + 1.0)))


def test_pretrain_digest_reads_a_dataframe_as_its_values():
    """A DataFrame pretrain_X counts by its values, as the array it holds."""
    pd = pytest.importorskip("pandas")
    from sk_replearn._fingerprint import pretrain_digest

    X = np.arange(24.0).reshape(6, 4)
    assert pretrain_digest(pd.DataFrame(X)) == pretrain_digest(X)
    assert pretrain_digest(pd.DataFrame(X)) != pretrain_digest(pd.DataFrame(X + 1.0))


def test_a_small_dataset_counts_by_every_sample():
    """A Dataset of 16 samples or fewer counts by each of them, not only its ends."""
    from torch.utils.data import TensorDataset

    from sk_replearn._fingerprint import _data_fingerprint

    X = torch.arange(48.0).reshape(16, 3)
    other = X.clone()
    other[7] += 1.0
    assert _data_fingerprint(TensorDataset(X)) == _data_fingerprint(
        TensorDataset(X.clone())
    )
    assert _data_fingerprint(TensorDataset(X)) != _data_fingerprint(
        TensorDataset(other)
    )


def test_checkpoint_resume_keeps_the_scores_and_callbacks_bookkeeping(data, tmp_path):
    """A resumed fit ends with the best scores, "best" flags, early-stopping and
    learning-rate schedule counters of an uninterrupted fit."""
    # At this learning rate the validation loss is lowest at epoch 2 of 4:
    # what epochs 3 and 4 compare against is all in the checkpoint.
    settings = dict(lr=0.3, lr_schedule="cosine")
    reference = _fit(_ae_early(**settings), data)
    assert reference.net_.history[:, "valid_loss_best"] == [True, True, False, False]
    with pytest.raises(Killed):
        _fit(
            _ae_early(
                **settings,
                checkpoint_dir=tmp_path,
                callbacks=[KillAfterEpoch(KILL_AFTER)],
            ),
            data,
        )
    resumed = _fit(_ae_early(**settings, checkpoint_dir=tmp_path), data)

    def bookkeeping(est):
        attrs = ("best_score_", "best_epoch_", "misses_", "batch_idx_")
        return {
            (name, attr): getattr(cb, attr)
            for name, cb in est.net_.callbacks_
            for attr in attrs
            if hasattr(cb, attr)
        }

    expected = bookkeeping(reference)
    assert expected[("early_stopping", "best_epoch_")] == 2
    assert expected[("lr_schedule", "batch_idx_")] == 16  # 4 epochs of 4 batches
    assert bookkeeping(resumed) == expected
    for key in ("train_loss_best", "valid_loss_best"):
        assert resumed.net_.history[:, key] == reference.net_.history[:, key]


@pytest.mark.parametrize(
    "legacy",
    ["no start_epoch", "no data_digest", "no data_shape"],
)
def test_checkpoint_written_before_newer_fields_still_resumes(legacy, data, tmp_path):
    """A checkpoint of an earlier version, without the fields added since, resumes."""
    reference = _fit(_ae(), data)
    with pytest.raises(Killed):
        _fit(_ae(checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(KILL_AFTER)]), data)
    path = tmp_path / "checkpoint.pt"
    checkpoint = torch.load(path, weights_only=True)
    if legacy == "no start_epoch":  # every run then began at epoch 0
        del checkpoint["start_epoch"]
    elif legacy == "no data_digest":  # the data then checked by shape only
        del checkpoint["fingerprint"]["data_digest"]
    else:  # a Dataset's shape was not recorded
        checkpoint["fingerprint"]["data_shape"] = []
    del checkpoint["checksum"]
    _atomic_save(checkpoint, path)  # as it was written, with its checksum
    ran = []
    resumed = _fit(_ae(checkpoint_dir=tmp_path, callbacks=[CountEpochs(ran)]), data)
    assert ran == [3, 4]
    _assert_same_weights(resumed, reference)


def test_checkpoint_resume_with_random_state_none_holds_out_the_same_samples(
    data, tmp_path
):
    """Unseeded, a resumed fit validates on the samples the killed fit held out."""

    def ae(folder, **kw):
        return _ae_early(random_state=None, checkpoint_dir=tmp_path / folder, **kw)

    def seed(value):  # random_state=None draws from numpy's and torch's
        np.random.seed(value)  # noqa: NPY002
        torch.manual_seed(value)

    seed(123)
    reference = _fit(ae("whole"), data)
    seed(123)
    with pytest.raises(Killed):
        _fit(ae("killed", callbacks=[KillAfterEpoch(KILL_AFTER)]), data)
    seed(456)  # the new process's generators are anywhere
    resumed = _fit(ae("killed"), data)
    history = resumed.net_.history
    assert history[:, "valid_loss"] == reference.net_.history[:, "valid_loss"]
    _assert_same_weights(resumed, reference)


def test_checkpoint_of_a_warm_start_from_another_optimizer_state_is_refused(
    data, tmp_path
):
    """Two fitted models of equal weights but other optimizer states (Adam's
    moments) are two models: one's warm start does not resume the other's."""
    X = data[0]
    # lr=0 leaves the weights as initialised; the optimizer state still moves.
    one = _ae(max_epochs=1, lr=0.0, warm_start=True, batch_size=32).fit(X)
    two = _ae(max_epochs=1, lr=0.0, warm_start=True, batch_size=16).fit(X)
    _assert_same_weights(one, two)
    more = dict(lr=0.01, batch_size=32, checkpoint_dir=tmp_path)
    with pytest.raises(Killed):
        one.set_params(**more, callbacks=[KillAfterEpoch(2)]).fit(X)
    with pytest.raises(ValueError, match="warm start of another fitted model"):
        two.set_params(**more).fit(X)


class _HalvingRule:
    """A learning-rate rule object that holds a function: not plain data."""

    def __init__(self) -> None:
        self.rule = lambda epoch: 0.5**epoch

    def __call__(self, epoch: int) -> float:
        return self.rule(epoch)


def test_a_users_scheduler_whose_state_is_not_data_does_not_stop_the_checkpoint(
    data, tmp_path
):
    """A user's scheduler whose state is not all data (a rule object holding a
    function) neither fails the fit nor changes it; a killed fit resumes on
    its schedule, to the same weights."""
    from skorch.callbacks import LRScheduler

    def ae(**kw):
        sched = LRScheduler(torch.optim.lr_scheduler.LambdaLR, lr_lambda=_HalvingRule())
        callbacks = [("sched", sched), *kw.pop("callbacks", [])]
        return _ae(lr_schedule=None, lr=0.05, callbacks=callbacks, **kw)

    reference = _fit(ae(), data)
    kept = _fit(ae(checkpoint_dir=tmp_path / "whole"), data)
    _assert_same_weights(kept, reference)
    assert torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)[
        "finished"
    ]
    with pytest.raises(Killed):
        _fit(ae(checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(KILL_AFTER)]), data)
    ran = []
    resumed = _fit(ae(checkpoint_dir=tmp_path, callbacks=[CountEpochs(ran)]), data)
    assert ran == [3, 4]
    assert resumed.loss_curve_ == reference.loss_curve_
    _assert_same_weights(resumed, reference)
    rates = [g["lr"] for g in resumed.net_.optimizer_.param_groups]
    assert rates == [g["lr"] for g in reference.net_.optimizer_.param_groups]


# -- callbacks' bookkeeping, refusals and what is written ----------------------
class _Record:
    """A user's own object, not data a checkpoint can hold."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch


class _BestAsAnObject(Callback):
    """A user's callback whose best_score_ is an object of its own."""

    def on_epoch_end(self, net, **kwargs):
        self.best_score_ = _Record(len(net.history))


def test_a_users_callback_whose_best_score_is_not_data_does_not_stop_the_checkpoint(
    data, tmp_path
):
    """A user's callback keeping a best_score_ that is not data neither fails
    the fit nor its resume: the checkpoint leaves that callback out."""
    reference = _fit(_ae(callbacks=[("best", _BestAsAnObject())]), data)
    with pytest.raises(Killed):
        _fit(
            _ae(
                checkpoint_dir=tmp_path,
                callbacks=[("best", _BestAsAnObject()), KillAfterEpoch(KILL_AFTER)],
            ),
            data,
        )
    ran = []
    resumed = _fit(
        _ae(
            checkpoint_dir=tmp_path,
            callbacks=[("best", _BestAsAnObject()), CountEpochs(ran)],
        ),
        data,
    )
    assert ran == [3, 4]
    _assert_same_weights(resumed, reference)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["finished"]


class _BestLoss(Callback):
    """A user's callback that keeps the lowest training loss as best_score_."""

    def on_epoch_end(self, net, **kwargs):
        loss = net.history[-1, "train_loss"]
        self.best_score_ = min(getattr(self, "best_score_", loss), loss)


class _BestLossPerEpoch(Callback):
    """A user's callback that keeps the training losses so far as an array."""

    def on_epoch_end(self, net, **kwargs):
        self.best_score_ = np.asarray(net.history[:, "train_loss"])


def _halving_schedule():
    from skorch.callbacks import LRScheduler

    policy = torch.optim.lr_scheduler.StepLR
    return ("sched", LRScheduler(policy, step_size=1, gamma=0.5))


def test_a_resumed_fit_without_a_callback_of_the_killed_fit_restores_the_others(
    data, tmp_path
):
    """A callback the killed fit had and the resumed fit has not is skipped;
    the bookkeeping of the callbacks after it (a user's schedule) is restored."""

    def ae(callbacks):
        return _ae(
            lr_schedule=None, lr=0.05, checkpoint_dir=tmp_path, callbacks=callbacks
        )

    def sched():  # a rate of the epoch's count, not of the rate before
        from skorch.callbacks import LRScheduler

        policy = torch.optim.lr_scheduler.LambdaLR
        return ("sched", LRScheduler(policy, lr_lambda=_HalvingRule()))

    reference = _fit(_ae(lr_schedule=None, lr=0.05, callbacks=[sched()]), data)
    with pytest.raises(Killed):
        _fit(ae([("best", _BestLoss()), sched(), KillAfterEpoch(KILL_AFTER)]), data)
    resumed = _fit(ae([sched()]), data)
    np.testing.assert_array_equal(resumed.loss_curve_, reference.loss_curve_)
    _assert_same_weights(resumed, reference)


def test_checkpoint_resume_gives_a_users_array_best_score_back_as_an_array(
    data, tmp_path
):
    """A user's callback whose best_score_ is a numpy array has it back, equal."""
    callbacks = [("best", _BestLossPerEpoch()), KillAfterEpoch(KILL_AFTER)]
    with pytest.raises(Killed):
        _fit(_ae(checkpoint_dir=tmp_path, callbacks=callbacks), data)
    seen = {}

    class _Peek(Callback):
        def on_epoch_begin(self, net, **kwargs):
            seen.setdefault("best", dict(net.callbacks_)["best"].best_score_)

    _fit(
        _ae(
            checkpoint_dir=tmp_path, callbacks=[("best", _BestLossPerEpoch()), _Peek()]
        ),
        data,
    )
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["history"]
    assert isinstance(seen["best"], np.ndarray)
    np.testing.assert_array_equal(
        seen["best"], [e["train_loss"] for e in saved[:KILL_AFTER]]
    )


def test_a_resumed_fit_with_a_users_scheduler_fits_again_as_a_new_fit(data, tmp_path):
    """After resuming with a user's LRScheduler, the same estimator fits again
    (starting over) to the weights of an uninterrupted fit."""

    def ae(**kw):
        return _ae(lr_schedule=None, lr=0.05, **kw)

    reference = _fit(ae(callbacks=[_halving_schedule()]), data)
    with pytest.raises(Killed):
        _fit(
            ae(
                checkpoint_dir=tmp_path,
                callbacks=[_halving_schedule(), KillAfterEpoch(KILL_AFTER)],
            ),
            data,
        )
    est = ae(checkpoint_dir=tmp_path, callbacks=[_halving_schedule()])
    _fit(est, data)
    _fit(est, data)  # the checkpoint is finished: this fit starts over
    _assert_same_weights(est, reference)


def test_checkpoint_of_a_warm_start_from_other_weights_is_refused(data, tmp_path):
    """Two fitted models of one optimizer state (plain SGD keeps none) but
    other weights are two models: one's warm start does not resume the other's."""
    X = data[0]
    one = _ae(max_epochs=1, optimizer="sgd", warm_start=True, random_state=0).fit(X)
    two = _ae(max_epochs=1, optimizer="sgd", warm_start=True, random_state=1).fit(X)
    more = dict(random_state=0, checkpoint_dir=tmp_path)
    with pytest.raises(Killed):
        one.set_params(**more, callbacks=[KillAfterEpoch(2)]).fit(X)
    with pytest.raises(
        ValueError,
        match=r"warm start of another fitted model \(other weights or optimizer "
        r"state at epoch 1\)",
    ):
        two.set_params(**more).fit(X)


def test_checkpoint_dir_that_is_a_file_is_refused_saying_so(tmp_path):
    """A checkpoint_dir that is a file is refused, naming the path and the reason."""
    from sk_replearn.checkpoint import check_checkpoint_dir

    path = tmp_path / "a-file"
    path.write_text("")
    with pytest.raises(
        ValueError, match="checkpoint_dir=.*NotADirectoryError: .*is a file"
    ):
        check_checkpoint_dir(path)
    assert path.read_text() == ""


def test_checkpoint_dir_check_leaves_no_file_behind_nor_open(tmp_path):
    """The write test removes its probe file and closes it."""
    from sk_replearn.checkpoint import check_checkpoint_dir

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to count the open files")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        check_checkpoint_dir(tmp_path / "run")
    assert os.listdir(tmp_path / "run") == []
    assert len(os.listdir("/proc/self/fd")) == before


def test_training_checkpoint_adds_the_datas_shape_over_the_fingerprint_given(
    tmp_path,
):
    """The data's shape and digest are added to the fingerprint passed, over
    any entry of that name in it; the rest of it is kept as given."""
    from sk_replearn.checkpoint import TrainingCheckpoint
    from sk_replearn.objectives.reconstruction import AutoencoderObjective
    from sk_replearn.training import RepresentationNet

    given = {"estimator": "mine", "data_shape": [1]}
    net = RepresentationNet(
        AutoencoderObjective(input_shape=(4,), n_components=2),
        max_epochs=1,
        callbacks=[("checkpoint", TrainingCheckpoint(tmp_path, fingerprint=given))],
        verbose=0,
    )
    net.fit(torch.randn(16, 4), None)
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["fingerprint"]
    assert saved["estimator"] == "mine"
    assert tuple(saved["data_shape"]) == (16, 4) and "data_digest" in saved


def test_a_resumed_warm_start_keeps_its_max_epochs_for_the_next_round(data, tmp_path):
    """A resumed warm-start round ends with max_epochs as set, so the next
    round trains that many epochs again, as after an uninterrupted round."""
    import copy

    X = data[0]
    first = _ae(max_epochs=2, warm_start=True).fit(X)
    reference = copy.deepcopy(first).fit(X).fit(X)
    assert reference.n_epochs_ == 6
    with pytest.raises(Killed):
        copy.deepcopy(first).set_params(
            checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(3)]
        ).fit(X)
    resumed = copy.deepcopy(first).set_params(checkpoint_dir=tmp_path).fit(X)
    assert resumed.n_epochs_ == 4 and resumed.net_.max_epochs == 2
    resumed.set_params(checkpoint_dir=None).fit(X)
    assert resumed.n_epochs_ == 6
    _assert_same_weights(resumed, reference)


def test_a_fit_killed_twice_resumes_twice_to_the_uninterrupted_weights(data, tmp_path):
    """A resumed fit killed again resumes again: its checkpoints carry on the
    killed run's state, down to the split drawn when training began."""

    def ae(**kw):
        return _ae_early(random_state=None, **kw)

    torch.manual_seed(0)
    np.random.seed(0)  # noqa: NPY002
    whole = _fit(ae(), data)
    torch.manual_seed(0)
    np.random.seed(0)  # noqa: NPY002
    with pytest.raises(Killed):
        _fit(ae(checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(1)]), data)
    with pytest.raises(Killed):
        _fit(ae(checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(3)]), data)
    ran = []
    resumed = _fit(ae(checkpoint_dir=tmp_path, callbacks=[CountEpochs(ran)]), data)
    assert ran == [4]
    assert resumed.net_.history[:, "valid_loss"] == whole.net_.history[:, "valid_loss"]
    _assert_same_weights(resumed, whole)


def test_an_unreadable_checkpoint_names_the_file_to_delete(data, tmp_path):
    """The refusal of an unreadable checkpoint names the file to delete."""
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError) as info:
        _fit(_ae(max_epochs=1, checkpoint_dir=tmp_path), data)
    assert f"Delete {str(path)!r} to start over" in str(info.value)


def test_an_unfinished_run_from_scratch_is_overwritten_by_a_warm_start(data, tmp_path):
    """A warm start from a fitted model does not resume (nor refuse) the
    unfinished run from scratch in its checkpoint_dir: it trains all its
    epochs, as without one."""
    import copy

    X = data[0]
    first = _ae(max_epochs=2, warm_start=True).fit(X)
    reference = copy.deepcopy(first).fit(X)
    with pytest.raises(Killed):
        _ae(checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(1)]).fit(X)
    ran = []
    more = copy.deepcopy(first).set_params(
        checkpoint_dir=tmp_path, callbacks=[CountEpochs(ran)]
    )
    more.fit(X)
    assert ran == [3, 4]
    _assert_same_weights(more, reference)


class _RemoveDir(Callback):
    """Remove ``path`` (a cleanup job, say) at the end of epoch ``epoch``."""

    def __init__(self, path, epoch: int) -> None:
        self.path, self.epoch = path, epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            shutil.rmtree(self.path)


def test_a_checkpoint_dir_removed_during_the_fit_is_made_again(data, tmp_path):
    """A checkpoint_dir removed while the fit runs is made again at the next save."""
    folder = tmp_path / "run"
    _fit(_ae(checkpoint_dir=folder, callbacks=[_RemoveDir(folder, 2)]), data)
    saved = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert saved["finished"] and len(saved["history"]) == MAX_EPOCHS


def test_interrupt_warning_names_a_path_checkpoint_dir_as_text(data, tmp_path):
    """checkpoint_dir given as a Path reads as its text in the interrupt warning."""
    with pytest.warns(RuntimeWarning) as caught:
        _ae(checkpoint_dir=tmp_path, callbacks=[InterruptMidEpoch(2)]).fit(data[0])
    (message,) = [str(w.message) for w in caught if "interrupted" in str(w.message)]
    assert f"checkpoint_dir={str(tmp_path)!r}" in message


def test_checkpoint_of_a_parameter_this_version_lacks_says_unset(data, tmp_path):
    """A parameter set in only one of the checkpoint and the fit reads <unset>."""
    with pytest.raises(Killed):
        _fit(_ae(checkpoint_dir=tmp_path, callbacks=[KillAfterEpoch(1)]), data)
    path = tmp_path / "checkpoint.pt"
    checkpoint = torch.load(path, weights_only=True)
    del checkpoint["fingerprint"]["params"]["n_components"]
    del checkpoint["checksum"]
    _atomic_save(checkpoint, path)  # as it was written, with its checksum
    with pytest.raises(ValueError, match=r"other parameters \(n_components=<unset>\)"):
        _fit(_ae(checkpoint_dir=tmp_path), data)
