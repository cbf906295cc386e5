"""Scaling out: data-parallel training with accelerate, grid search on dask.

The multi-process tests launch a real two-process run on the CPU (gloo
backend) with ``accelerate launch``; each rank writes what it computed and
the tests here compare the ranks with each other and with one process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from _processes import free_port
from skorch.callbacks import Callback

from sk_replearn import (
    AutoencoderTransformer,
    FineTuner,
    PCATransformer,
    SimCLRTransformer,
)
from sk_replearn.distributed import (
    AcceleratedRepresentationNet,
    _ShardedBatches,
    _ShardedTokenBatches,
    accelerated_net_class,
    shared_seed,
    world_size,
)
from sk_replearn.losses.contrastive import NTXentLoss
from sk_replearn.training import RepresentationNet, SupervisedNet

accelerate = pytest.importorskip("accelerate")

WORLD = 2
N_GLOBAL = 8  # samples of the global contrastive batch (4 per rank)
TEMPERATURE = 0.5

_SCRIPT = """
import os, sys
import numpy as np
import torch
from accelerate import Accelerator
from sk_replearn import AutoencoderTransformer, FineTuner, PCATransformer
from sk_replearn import BERTTransformer, SimCLRTransformer, SwAVTransformer
from sk_replearn.losses.contrastive import NTXentLoss

out = sys.argv[1]
acc = Accelerator(cpu=True)
rank, world = acc.process_index, acc.num_processes
res = {"world": world}

# 1. NT-Xent on the global batch: each rank holds its rows.
g = torch.Generator().manual_seed(0)
z1, z2 = torch.randn(N_GLOBAL, 5, generator=g), torch.randn(N_GLOBAL, 5, generator=g)
n = N_GLOBAL // world
rows = slice(rank * n, (rank + 1) * n)
a, b = z1[rows].clone().requires_grad_(), z2[rows].clone().requires_grad_()
loss = NTXentLoss(TEMPERATURE)(a, b)
loss.backward()
res["loss"], res["grad_z1"], res["grad_z2"] = loss.detach(), a.grad, b.grad

# 2. The same through a DistributedDataParallel linear layer.
torch.manual_seed(0)
layer = acc.prepare(torch.nn.Linear(5, 3))
x1, x2 = z1[rows], z2[rows]
loss = NTXentLoss(TEMPERATURE)(layer(x1), layer(x2))
acc.backward(loss)
res["ddp_weight_grad"] = acc.unwrap_model(layer).weight.grad.clone()

# 2b. SwAV's loss: Sinkhorn-Knopp codes over the global batch.
from sk_replearn.losses.clustering import SwAVLoss
swav_scores = [torch.randn(N_GLOBAL, 4, generator=g) for _ in range(3)]
mine = [s[rows].clone().requires_grad_() for s in swav_scores]
loss = SwAVLoss()(mine, n_global=2)
loss.backward()
res["swav_loss"], res["swav_grads"] = loss.detach(), [m.grad for m in mine]

# 3. Estimators trained on both ranks on the same data.
X = np.random.default_rng(0).normal(size=(N_FIT, 6)).astype(np.float32)
X[:, :3] += 3 * np.random.default_rng(1).normal(size=(N_FIT, 1)).astype(np.float32)
common = dict(max_epochs=6, batch_size=8, lr=1e-2, random_state=0, accelerator=acc)
sim = SimCLRTransformer(
    encoder="mlp", encoder_kwargs={"hidden_sizes": (16, 4)}, views=None,
    projection_dim=4, temperature=TEMPERATURE, **common
).fit(X)
ae = AutoencoderTransformer(
    n_components=2, encoder_kwargs={"hidden_sizes": (16,)}, **common
).fit(X)
y = (X[:, 0] > X[:, 0].mean()).astype(int)
ft = FineTuner(PCATransformer(n_components=3).fit(X), **{**common, "lr": 3e-2})
ft.fit(X, y)
words = ["ACGT"[i % 4] * (2 + i % 5) + "GATTACA"[: 1 + i % 7] for i in range(N_FIT)]
bert = BERTTransformer(
    embed_dim=8, depth=1, num_heads=2, **{**common, "lr": 3e-3}
).fit(words)
res["bert_transform"] = bert.transform(words)
# Fewer token batches (one) than processes: each process still takes a step.
few = BERTTransformer(
    embed_dim=8, depth=1, num_heads=2, **{**common, "max_epochs": 2}
).fit(words[:4])
swav = SwAVTransformer(
    encoder="mlp", encoder_kwargs={"hidden_sizes": (16, 4)}, views=None,
    projection_dim=4, n_prototypes=4, **common
).fit(X)
for name, est in [
    ("simclr", sim), ("ae", ae), ("finetuner", ft), ("bert", bert), ("swav", swav),
    ("bert_one_batch", few),
]:
    res[name + "_loss_curve"] = est.loss_curve_
    res[name + "_state"] = {
        k: v.detach().cpu() for k, v in est.net_.module_.state_dict().items()
    }
    res[name + "_samples_per_epoch"] = [
        sum(b["train_batch_size"] for b in epoch["batches"]) for epoch in est.history_
    ]
res["ae_transform"] = ae.transform(X)
torch.save(res, os.path.join(out, f"rank{rank}.pt"))
# without it, a gloo thread can abort the process at exit
acc.end_training()
"""

N_FIT = 64


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Results of a two-process ``accelerate launch`` run, one dict per rank."""
    launcher = shutil.which("accelerate", path=os.path.dirname(sys.executable))
    if launcher is None:  # pragma: no cover - accelerate installs its CLI
        pytest.skip("the accelerate command-line launcher is not installed")
    tmp = tmp_path_factory.mktemp("launch")
    script = tmp / "train.py"
    constants = f"N_GLOBAL, TEMPERATURE, N_FIT = {N_GLOBAL}, {TEMPERATURE}, {N_FIT}\n"
    script.write_text(constants + textwrap.dedent(_SCRIPT))
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HOME": str(tmp / "hf"),  # no user accelerate config
        "PYTHONWARNINGS": "ignore",
        # A CPU run on a GPU machine too: accelerate's barrier otherwise
        # names one CUDA device per rank (invalid with fewer GPUs than ranks).
        "CUDA_VISIBLE_DEVICES": "",
    }
    # accelerate's --cpu launcher needs MPI for several processes; --multi_gpu
    # runs torch.distributed.run, and Accelerator(cpu=True) in the script then
    # trains on the CPU with the gloo backend.
    cmd = [
        launcher, "launch", "--multi_gpu", "--num_processes", str(WORLD),
        "--num_machines", "1", "--mixed_precision", "no",
        "--dynamo_backend", "no", "--main_process_port", str(free_port()),
        str(script), str(tmp),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def _single_process_ntxent():
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(N_GLOBAL, 5, generator=g).requires_grad_()
    z2 = torch.randn(N_GLOBAL, 5, generator=g).requires_grad_()
    loss = NTXentLoss(TEMPERATURE)(z1, z2)
    loss.backward()
    return z1.detach(), z2.detach(), loss.detach(), z1.grad, z2.grad


def test_ntxent_gathered_equals_single_process(ranks):
    assert [r["world"] for r in ranks] == [WORLD, WORLD]
    _, _, loss, g1, g2 = _single_process_ntxent()
    mean_rank_loss = torch.stack([r["loss"] for r in ranks]).mean()
    torch.testing.assert_close(mean_rank_loss, loss, rtol=1e-6, atol=1e-6)
    # The gather's backward sums every rank's gradient into each rank's rows;
    # the loss of one process is the mean of the ranks': divide by WORLD.
    torch.testing.assert_close(
        torch.cat([r["grad_z1"] for r in ranks]) / WORLD, g1, rtol=1e-5, atol=1e-7
    )
    torch.testing.assert_close(
        torch.cat([r["grad_z2"] for r in ranks]) / WORLD, g2, rtol=1e-5, atol=1e-7
    )


def test_ntxent_ddp_weight_gradient_equals_single_process(ranks):
    z1, z2, *_ = _single_process_ntxent()
    torch.manual_seed(0)
    layer = torch.nn.Linear(5, 3)
    NTXentLoss(TEMPERATURE)(layer(z1), layer(z2)).backward()
    for r in ranks:  # DistributedDataParallel averaged the ranks' gradients
        torch.testing.assert_close(
            r["ddp_weight_grad"], layer.weight.grad, rtol=1e-5, atol=1e-7
        )


def test_swav_codes_over_the_global_batch_equal_single_process(ranks):
    from sk_replearn.losses.clustering import SwAVLoss

    g = torch.Generator().manual_seed(0)
    torch.randn(N_GLOBAL, 5, generator=g), torch.randn(N_GLOBAL, 5, generator=g)
    scores = [torch.randn(N_GLOBAL, 4, generator=g).requires_grad_() for _ in range(3)]
    loss = SwAVLoss()(scores, n_global=2)
    loss.backward()
    # each rank's codes are its rows of the global codes, so the ranks' mean
    # loss is the global one, and each rank's gradient WORLD times its rows'
    mean_rank_loss = torch.stack([r["swav_loss"] for r in ranks]).mean()
    torch.testing.assert_close(mean_rank_loss, loss.detach(), rtol=1e-5, atol=1e-6)
    for v, s in enumerate(scores):
        got = torch.cat([r["swav_grads"][v] for r in ranks]) / WORLD
        torch.testing.assert_close(got, s.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["simclr", "ae", "finetuner", "bert", "swav"])
def test_accelerated_fit_identical_weights_on_ranks(ranks, name):
    first, second = (r[name + "_state"] for r in ranks)
    assert first.keys() == second.keys()
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0)
    for r in ranks:
        curve = r[name + "_loss_curve"]
        assert len(curve) == 6 and curve[-1] < curve[0], curve
        # Each rank trained on its half of every epoch, not on all of it
        # (token batches: every other one of the epoch's batches of 8).
        assert set(r[name + "_samples_per_epoch"]) == {N_FIT // WORLD}


def test_fewer_token_batches_than_processes_train_on_every_process(ranks):
    # Four sequences make one batch of 8 for two processes: the second had
    # no step, and the launch failed (its empty epoch crashed, the first
    # lost its peer). Both now train on that batch, in step.
    first, second = (r["bert_one_batch_state"] for r in ranks)
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0)
    for r in ranks:
        assert r["bert_one_batch_samples_per_epoch"] == [4, 4]
        assert np.isfinite(r["bert_one_batch_loss_curve"]).all()


@pytest.mark.parametrize("name", ["ae", "bert"])
def test_accelerated_transform_same_on_ranks(ranks, name):
    first, second = (r[name + "_transform"] for r in ranks)
    np.testing.assert_array_equal(first, second)


# -- in one process ------------------------------------------------------------
class _FakeAccelerator:
    device = torch.device("cpu")

    def __init__(self, rank: int, world: int) -> None:
        self.process_index, self.num_processes = rank, world


def test_sharded_batches_are_disjoint_and_cover_the_epoch(monkeypatch):
    monkeypatch.setattr(
        "sk_replearn.distributed.shared_seed", lambda accelerator, seed: seed
    )
    X = torch.arange(23.0)[:, None]  # 23 // 2 = 11 per rank, one left out
    seen = []
    for rank in range(2):
        torch.manual_seed(0)  # fit seeds every rank alike
        batches = _ShardedBatches(X, 4, _FakeAccelerator(rank, 2))
        rows = [xb[:, 0].long() for xb, _ in batches]
        assert len(rows) == len(batches) == 3  # 4 + 4 + 3
        seen.append(torch.cat(rows))
    assert len(seen[0]) == len(seen[1]) == 11
    assert not set(seen[0].tolist()) & set(seen[1].tolist())


def _token_batches(rank, world, n, batch_size):
    from sk_replearn.tokens import TokenDataset

    data = TokenDataset(
        torch.arange(1, n + 1)[:, None], torch.ones(n, dtype=torch.long)
    )
    torch.manual_seed(0)  # fit seeds every rank alike
    batches = _ShardedTokenBatches(data, batch_size, _FakeAccelerator(rank, world))
    return len(batches), [xb[:, 0].tolist() for xb, _ in batches]


def test_sharded_token_batches_are_disjoint_and_equal_in_number(monkeypatch):
    monkeypatch.setattr(
        "sk_replearn.distributed.shared_seed", lambda accelerator, seed: seed
    )
    seen = []
    for rank in range(2):  # 5 batches of 2: 2 a process, one left out
        length, batches = _token_batches(rank, 2, n=10, batch_size=2)
        assert length == len(batches) == 2
        seen.append({token for batch in batches for token in batch})
    assert len(seen[0]) == len(seen[1]) == 4 and not seen[0] & seen[1]


@pytest.mark.parametrize(
    ("n", "batch_size", "world"), [(4, 4, 2), (3, 2, 2), (5, 4, 3)]
)
def test_fewer_token_batches_than_processes_still_give_each_a_step(
    n, batch_size, world, monkeypatch
):
    # A process without a step leaves the others waiting for its gradients.
    monkeypatch.setattr(
        "sk_replearn.distributed.shared_seed", lambda accelerator, seed: seed
    )
    for rank in range(world):
        length, batches = _token_batches(rank, world, n, batch_size)
        assert length == len(batches) == 1


def test_shared_seed_is_the_main_processs(monkeypatch):
    import accelerate.utils

    sent = []

    def broadcast(objects, from_process):
        sent.append((list(objects), from_process))
        return [42]  # what process 0 drew

    monkeypatch.setattr(accelerate.utils, "broadcast_object_list", broadcast)
    assert shared_seed(_FakeAccelerator(1, 2), 7) == 42
    assert sent == [([7], 0)]
    assert shared_seed(_FakeAccelerator(0, 1), 7) == 7  # one process: its own


def test_validation_batches_go_to_the_accelerators_device():
    from sk_replearn.objectives.reconstruction import AutoencoderObjective

    net = AcceleratedRepresentationNet(
        AutoencoderObjective(input_shape=(4,), n_components=2),
        accelerator=accelerate.Accelerator(cpu=True),
        device=None,
    )
    assert net._dev() == torch.device("cpu")


def test_accelerated_net_class_and_world_size():
    acc = accelerate.Accelerator(cpu=True)
    assert accelerated_net_class(RepresentationNet, acc) is AcceleratedRepresentationNet
    assert accelerated_net_class(SupervisedNet, None) is SupervisedNet
    assert world_size(acc) == 1 and world_size(None) == 1


def test_accelerator_refuses_precision():
    X = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    ae = AutoencoderTransformer(
        max_epochs=1, precision="bf16", accelerator=accelerate.Accelerator(cpu=True)
    )
    with pytest.raises(ValueError, match="precision='bf16' cannot be combined"):
        ae.fit(X)


def test_an_accelerator_lacking_what_training_calls_is_refused_by_name():
    # prepare and backward were all the check asked for; the rest failed
    # inside skorch's loop.
    class Half:
        def prepare(self, *objects):
            return objects

        def backward(self, loss):
            loss.backward()

    X = np.zeros((32, 4), np.float32)
    with pytest.raises(ValueError, match="'accelerator' parameter.*'gather_for_m"):
        AutoencoderTransformer(max_epochs=1, accelerator=Half()).fit(X)


@pytest.mark.parametrize(
    "attribute",
    ["device", "device_placement", "is_main_process", "num_processes", "process_index"],
)
def test_an_accelerator_lacking_an_attribute_training_reads_is_refused_by_name(
    attribute,
):
    """An object with every method but not an attribute training reads is
    refused by validation, naming the attribute, not inside the fit."""
    real = accelerate.Accelerator(cpu=True)

    class Lacking:
        def __getattr__(self, name):
            if name == attribute:
                raise AttributeError(name)
            return getattr(real, name)

    X = np.zeros((32, 4), np.float32)
    with pytest.raises(ValueError, match=f"'accelerator' parameter.*{attribute!r}"):
        AutoencoderTransformer(max_epochs=1, accelerator=Lacking()).fit(X)
    with pytest.raises(ValueError, match=f"'accelerator' parameter.*{attribute!r}"):
        FineTuner(max_epochs=1, accelerator=Lacking()).fit(X, np.arange(32) % 2)


def test_accelerated_one_process_trains_and_continues():
    X = np.random.default_rng(0).normal(size=(48, 6)).astype(np.float32)
    sim = SimCLRTransformer(
        encoder="mlp", encoder_kwargs={"hidden_sizes": (16, 4)},
        projection_dim=4, max_epochs=2, batch_size=8, random_state=0,
        warm_start=True, accelerator=accelerate.Accelerator(cpu=True),
    )  # fmt: skip
    sim.fit(X).fit(X)  # warm start re-prepares the unwrapped model
    assert sim.n_epochs_ == 4 and np.isfinite(sim.loss_curve_).all()
    assert type(sim.net_.module_).__name__ == "SimCLRObjective"  # unwrapped
    assert sim.transform(X).shape == (48, 4)


def test_accelerated_fit_writes_and_resumes_a_checkpoint(tmp_path):
    # The accelerator places the model (the net's device is None): the
    # checkpoint read the device from the net and failed at the first epoch.
    X = np.random.default_rng(0).normal(size=(48, 6)).astype(np.float32)

    def make(max_epochs, folder, callbacks=None):
        return AutoencoderTransformer(
            n_components=2, encoder="mlp", encoder_kwargs={"hidden_sizes": (8,)},
            max_epochs=max_epochs, batch_size=8, random_state=0,
            checkpoint_dir=folder, callbacks=callbacks,
            accelerator=accelerate.Accelerator(cpu=True),
        )  # fmt: skip

    class Killed(Exception):
        pass

    class KillAfterEpoch2(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 2:
                raise Killed

    whole = make(3, tmp_path / "whole").fit(X)
    state = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)
    assert state["finished"] and len(state["history"]) == 3
    assert not any(k.startswith("module.") for k in state["module"])  # unwrapped
    with pytest.raises(Killed):
        make(3, tmp_path / "killed", callbacks=[KillAfterEpoch2()]).fit(X)
    resumed = make(3, tmp_path / "killed").fit(X)
    assert resumed.loss_curve_ == whole.loss_curve_
    np.testing.assert_array_equal(resumed.transform(X), whole.transform(X))


def test_accelerated_fit_with_early_stopping_validates_every_epoch():
    # The accelerator places the model (the net's device is None): the
    # seeded validation pass read the device from the net, and raised a
    # TypeError at the first epoch of every accelerated early-stopping fit.
    X = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)

    def fit():
        return AutoencoderTransformer(
            n_components=2, encoder="mlp", encoder_kwargs={"hidden_sizes": (8,)},
            max_epochs=3, batch_size=8, random_state=0, early_stopping=True,
            accelerator=accelerate.Accelerator(cpu=True),
        ).fit(X)  # fmt: skip

    first, second = fit(), fit()
    valid = first.history_[:, "valid_loss"]
    assert len(valid) == 3 and np.isfinite(valid).all()
    assert second.history_[:, "valid_loss"] == valid


# -- dask ------------------------------------------------------------------------
def test_gridsearch_on_dask_equals_sequential():
    distributed = pytest.importorskip("distributed")
    from joblib import parallel_backend
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 10)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    pipe = Pipeline(
        [("rep", PCATransformer(n_components=2)), ("clf", LogisticRegression())]
    )
    grid = [
        {"rep": [PCATransformer(n_components=2)], "rep__n_components": [2, 5]},
        {
            "rep": [
                AutoencoderTransformer(
                    encoder_kwargs={"hidden_sizes": (8,)},
                    max_epochs=2,
                    batch_size=16,
                    random_state=0,
                )
            ],
            "rep__n_components": [2, 4],
        },
    ]
    sequential = GridSearchCV(pipe, grid, cv=3).fit(X, y)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            env={"OMP_NUM_THREADS": "1"},
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with parallel_backend("dask"):
            on_dask = GridSearchCV(pipe, grid, cv=3, n_jobs=-1).fit(X, y)
        workers = client.run(os.getpid)
    assert len(workers) == 2 and os.getpid() not in workers.values()
    np.testing.assert_array_equal(
        on_dask.cv_results_["mean_test_score"],
        sequential.cv_results_["mean_test_score"],
    )
    assert on_dask.best_params_.keys() == sequential.best_params_.keys()
    assert repr(on_dask.best_params_) == repr(sequential.best_params_)
    assert on_dask.best_score_ == sequential.best_score_


@pytest.mark.parametrize(("n", "world"), [(1, 2), (2, 3), (3, 4)])
def test_fewer_samples_than_processes_still_give_each_a_step(n, world, monkeypatch):
    # A process without a step leaves the others waiting for its gradients;
    # each takes one sample, the processes' samples as different as n allows.
    monkeypatch.setattr(
        "sk_replearn.distributed.shared_seed", lambda accelerator, seed: seed
    )
    X = torch.arange(float(n))[:, None]
    seen = []
    for rank in range(world):
        torch.manual_seed(0)  # fit seeds every rank alike
        batches = _ShardedBatches(X, 4, _FakeAccelerator(rank, world))
        rows = [xb[:, 0].long().tolist() for xb, _ in batches]
        assert len(batches) == len(rows) == 1 and len(rows[0]) == 1
        seen.append(rows[0][0])
    assert set(seen) == set(range(n))


def test_the_schedules_span_each_processs_share_of_the_samples(monkeypatch):
    """Over two processes, an epoch's optimiser steps are those of half the samples."""
    monkeypatch.setattr("sk_replearn.methods._engine.world_size", lambda acc: 2)
    est = AutoencoderTransformer(max_epochs=3, batch_size=10)
    assert est._optimizer_steps(100) == 3 * 5
    assert est._samples_per_epoch(100) == 50 and est._samples_per_epoch(1) == 1


def _token_data(n):
    from sk_replearn.tokens import TokenDataset

    return TokenDataset(
        torch.arange(1, n + 1)[:, None], torch.ones(n, dtype=torch.long)
    )


def test_sharded_batches_are_drawn_anew_every_epoch(monkeypatch):
    """A process's share of the samples comes in a new order each epoch."""
    monkeypatch.setattr(
        "sk_replearn.distributed.shared_seed", lambda accelerator, seed: seed
    )
    torch.manual_seed(0)  # fit seeds the generator once, before the first epoch
    arrays = _ShardedBatches(torch.arange(40.0)[:, None], 5, _FakeAccelerator(0, 2))
    first = [xb[:, 0].tolist() for xb, _ in arrays]
    second = [xb[:, 0].tolist() for xb, _ in arrays]
    assert len(first) == len(second) == 4 and first != second
    tokens = _ShardedTokenBatches(_token_data(40), 5, _FakeAccelerator(0, 2))
    first = [xb[:, 0].tolist() for xb, _ in tokens]
    second = [xb[:, 0].tolist() for xb, _ in tokens]
    assert len(first) == len(second) == 4 and first != second


def test_processes_whose_own_draws_differ_still_take_disjoint_shares(monkeypatch):
    """The epoch's order is the main process's, whatever the others' generators hold."""
    monkeypatch.setattr(
        "sk_replearn.distributed.shared_seed", lambda accelerator, seed: 1234
    )
    X = torch.arange(20.0)[:, None]
    arrays, tokens = [], []
    for rank in range(2):
        torch.manual_seed(rank)  # the processes' own streams differ
        batches = _ShardedBatches(X, 4, _FakeAccelerator(rank, 2))
        arrays.append({int(v) for xb, _ in batches for v in xb[:, 0]})
        torch.manual_seed(rank)
        batches = _ShardedTokenBatches(_token_data(20), 2, _FakeAccelerator(rank, 2))
        tokens.append({int(v) for xb, _ in batches for v in xb[:, 0]})
    assert len(arrays[0]) == len(arrays[1]) == 10 and not arrays[0] & arrays[1]
    assert len(tokens[0]) == len(tokens[1]) == 10 and not tokens[0] & tokens[1]


def test_accelerated_training_batches_take_iterator_train_batch_size():
    """iterator_train__batch_size sizes the training batches, as without accelerate."""
    from sk_replearn.data import ArrayDataset
    from sk_replearn.objectives.reconstruction import AutoencoderObjective

    net = AcceleratedRepresentationNet(
        AutoencoderObjective(input_shape=(4,), n_components=2),
        accelerator=accelerate.Accelerator(cpu=True),
        batch_size=16,
        iterator_train__batch_size=4,
    )
    torch.manual_seed(0)
    arrays = net.get_iterator(ArrayDataset(torch.randn(20, 4)), training=True)
    assert [len(xb) for xb, _ in arrays] == [4] * 5
    tokens = net.get_iterator(_token_data(20), training=True)
    assert [len(xb) for xb, _ in tokens] == [4] * 5


def _spied_accelerator(prepared):
    """An accelerator that records what it is asked to prepare."""
    acc = accelerate.Accelerator(cpu=True)
    prepare = acc.prepare

    def spy(*objects):
        prepared.extend(objects)
        return prepare(*objects)

    acc.prepare = spy
    return acc


def test_every_fit_of_a_warm_start_hands_the_model_to_the_accelerator():
    """A warm start prepares the unwrapped model again, so replicas train together."""
    prepared = []
    X = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    ae = AutoencoderTransformer(
        n_components=2, max_epochs=1, batch_size=16, random_state=0,
        warm_start=True, accelerator=_spied_accelerator(prepared),
    )  # fmt: skip
    for fits in (1, 2):
        ae.fit(X)
        objective = ae.net_.module_
        assert sum(obj is objective for obj in prepared) == fits


def test_a_datasets_training_loader_is_handed_to_the_accelerator():
    """A Dataset (not an array) is read by a DataLoader that accelerate shards."""
    from sk_replearn.objectives.reconstruction import AutoencoderObjective

    prepared = []
    net = AcceleratedRepresentationNet(
        AutoencoderObjective(input_shape=(4,), n_components=2),
        accelerator=_spied_accelerator(prepared),
        batch_size=4,
    )
    data = torch.utils.data.TensorDataset(torch.randn(12, 4), torch.zeros(12))
    batches = net.get_iterator(data, training=True)
    assert [type(p) for p in prepared] == [torch.utils.data.DataLoader]
    assert [len(xb) for xb, _ in batches] == [4, 4, 4]
