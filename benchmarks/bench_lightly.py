"""SimCLR: our estimator against a plain loop on lightly's loss and head.

The same SimCLR twice, on the MNIST-1D training split without labels:

* ours: ``SimCLRTransformer(input_shape=(1, 40))`` with its defaults (a
  small 1-D ResNet, :class:`~sk_replearn.views.SequenceViews`, a 2-layer
  projection head to 128, NT-Xent at temperature 0.2, batch 128, AdamW at
  lr 3e-3 and weight decay 1e-4 with a per-step cosine decay), trained by
  skorch through ``fit``;
* the loop: what a user of lightly (the self-supervised library of
  Susmelj et al., 2020) writes by hand: the same encoder built by
  :func:`~sk_replearn.nn.build_encoder`, lightly's
  ``SimCLRProjectionHead`` of the same widths and its ``NTXentLoss`` at the
  same temperature, the same views function on batches drawn the same way
  (a new permutation each epoch) from the same standardised data, the same
  optimiser (AdamW with its fused step, as the estimator uses it), learning
  rate, weight decay, cosine schedule
  (``CosineAnnealingLR`` stepped every batch), batch size and number of
  epochs. The two views go through the network as one batch, as in
  SimCLR's implementation (Chen et al., 2020) and ours, so that batch
  normalisation sees both (lightly's examples call the model once per view
  instead). Every setting is read from the estimator's parameters, so the
  loop follows its defaults, and torch's generator is seeded as ``fit``
  seeds it, so that both sides start from the same encoder weights (the
  heads then draw different numbers, and so do the views and batches).

lightly's head ends in a ``BatchNorm1d`` of the output (SimCLR v2's
choice, Chen et al., "Big Self-Supervised Models are Strong
Semi-Supervised Learners", 2020) where ours ends in a biased ``Linear``: 256
parameters against 128, the one architectural difference.

The two train in step, in this one process: after each epoch of ``fit``
(a skorch callback), one epoch of the loop, each on its own random stream,
so that ``fit`` draws the numbers it draws alone and a busy or quiet
minute of the machine falls on both sides alike (on a shared machine,
whole runs one after the other differed by up to several-fold at 2
threads). Each side is timed per epoch (the median of its epochs after
the first, which pays for allocations and thread start-up) and as a whole
(ours: the ``fit`` call, which also checks the representation for
collapse, less the loop's epochs; the loop: from standardising the data
and building the network to its last step). Then the encoder's output on
the training and test splits (``transform`` for ours, the encoder on the
standardised data for the loop) gets the same linear probe,
:func:`sk_replearn.evaluation.linear_probe`. Pairs run at 1 and then 2
torch threads, with new seeds at each thread count.

Targets: epoch time of ours / the loop <= 1.0 at each thread count (over
the epochs of all its seeds), and mean probe accuracies (over all runs)
within 0.02 of each other. After 20 epochs the probe varies by a few
points between seeds (0.91 to 0.93 in this benchmark's recent runs), and the two
sides share only the encoder's initial weights, so a few seeds cannot show
a closer agreement. With our head and loss in the loop and the same seed, the
loop's losses equal ``fit``'s to float rounding, and after 20 epochs its
probe is 0.881 against ``fit``'s 0.883 (seed 0): the engine trains what
the loop trains.

Where the time goes: the encoder is the same module on both sides and
takes over 90% of a step. Beside it, lightly's ``NTXentLoss`` forms four
``(N, N)`` similarity blocks and drops two diagonals by boolean indexing
(a ``nonzero`` forward, an ``index_put`` backward), where ours forms one
``(2N, 2N)`` product and masks its diagonal: forward and backward at
``N = 256``, ``D = 128``, one thread, 8.8 against 6.4 ms for the same
loss value. Trained in step with a linear encoder instead of the ResNet,
at one thread, the loop with lightly's head and loss took 14.1 and 15.2 ms
a step against ours' 10.2 and 10.8; with our head and loss in the loop,
9.8 and 11.3 against ours' 10.4 and 11.8: skorch's loop costs about half
a millisecond a step, under 0.5% of a ResNet step. At the ResNet's size
the ratio still moves by a few percent between runs (0.97 to 1.06), with
the memory allocator: glibc hands large activation buffers back to the
system and maps them again, 40 to 80 thousand page faults an epoch on
either side, more or fewer from epoch to epoch. With
``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824
MALLOC_TOP_PAD_=268435456`` they stop after the first epoch, epochs get
faster on both sides and the two took the same time (2.02 and 1.93 s
against 2.01 and 1.93 s).

Needs lightly (``pip install --no-deps lightly``: the loss and head import
with torch and torchvision alone); without it the script says so and exits
with status 0.

Run: ``python benchmarks/bench_lightly.py [--epochs 20] [--seeds 2]
[--threads 1 2]`` (``--seeds`` at each thread count). About 8 minutes on
two CPU cores with the defaults: 4 pairs of 20-epoch trainings, an epoch
taking 0.7 to 2 s at one thread, by the machine. The estimator's default,
``max_epochs="auto"``, gives these 4,000 signals 30 epochs; 20 keep the run
short, and both sides train for the same number.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch
from _data import load_mnist1d_split
from _targets import verdict
from skorch.callbacks import Callback

from sk_replearn import SimCLRTransformer
from sk_replearn.base import seed_from_random_state
from sk_replearn.evaluation import linear_probe
from sk_replearn.methods.base import OPTIMIZERS
from sk_replearn.nn import build_encoder
from sk_replearn.views import make_views

try:
    import lightly
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead
except ImportError as exc:  # the benchmark is optional: say why, succeed
    lightly = None
    LIGHTLY_ERROR = exc

#: The most an epoch of ours may take, relative to the loop.
TARGET_RATIO = 1.0
#: The largest difference of the mean probe accuracies.
TARGET_PROBE = 0.02
INPUT_SHAPE = (1, 40)
#: Rows per forward pass when encoding for the probe.
ENCODE_BATCH = 1024


class LightlyLoop:
    """The estimator's SimCLR as a plain loop on lightly's head and loss.

    Built from ``est``'s parameters; each :meth:`epoch` call trains one
    epoch. The loop keeps its own torch random state, so that its epochs
    can run between those of ``fit`` without changing the numbers either
    side draws.
    """

    def __init__(self, est: SimCLRTransformer, X_tr, X_te) -> None:
        p = est.get_params()
        start = time.perf_counter()
        torch.manual_seed(seed_from_random_state(p["random_state"]))  # as fit
        shape = tuple(p["input_shape"])
        self.X, self.X_test = standardize(X_tr, X_te, shape)  # (n, *shape) each
        self.backbone = build_encoder(
            p["encoder"], shape, **(p["encoder_kwargs"] or {})
        )
        width = self.backbone.out_features
        head = SimCLRProjectionHead(
            width, p["hidden_dim"] or width, p["projection_dim"]
        )
        self.criterion = NTXentLoss(temperature=p["temperature"])
        self.views = make_views(p["views"], shape)
        self.model = torch.nn.Sequential(self.backbone, head)
        # The fused Adam/AdamW step, as the estimator's (torch >= 2.4).
        fused = {"fused": True} if p["optimizer"] in ("adam", "adamw") else {}
        self.optimizer = OPTIMIZERS[p["optimizer"]](
            self.model.parameters(),
            lr=p["lr"],
            weight_decay=p["weight_decay"],
            **fused,
        )
        self.batch_size = p["batch_size"]
        steps = p["max_epochs"] * math.ceil(len(self.X) / self.batch_size)
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, steps
        )
        self.rng = torch.get_rng_state()
        self.setup_time = time.perf_counter() - start
        self.times: list[float] = []

    def epoch(self) -> None:
        """Train one epoch (on the loop's random stream) and record its time."""
        outer = torch.get_rng_state()
        torch.set_rng_state(self.rng)
        start = time.perf_counter()
        X, bs = self.X, self.batch_size
        self.model.train()
        order = torch.randperm(len(X))
        for k in range(0, len(X), bs):
            idx = order[k : k + bs]
            if len(idx) < 2:  # batch norm needs two samples, NT-Xent a negative
                continue
            x = X[idx]  # (B, *shape)
            views = torch.cat([self.views(x), self.views(x)])  # (2B, *shape)
            z0, z1 = self.model(views).chunk(2)  # 2 x (B, projection_dim)
            loss = self.criterion(z0, z1)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.schedule.step()
            loss.item()  # what a user logs; skorch records it too
        self.times.append(time.perf_counter() - start)
        self.rng = torch.get_rng_state()
        torch.set_rng_state(outer)

    @torch.no_grad()
    def encode(self, X: torch.Tensor) -> np.ndarray:
        """The encoder's output ``(n, D)`` on standardised ``X``, in eval mode."""
        self.backbone.eval()
        rows = range(0, len(X), ENCODE_BATCH)
        return torch.cat([self.backbone(X[k : k + ENCODE_BATCH]) for k in rows]).numpy()


class InStep(Callback):
    """One epoch of the loop after each epoch of ``fit``.

    skorch's epoch timer (the ``dur`` of the history) stops before this
    callback runs and starts again after it, so neither side's epoch time
    holds the other's.
    """

    def __init__(self, loop: LightlyLoop) -> None:
        self.loop = loop

    def on_epoch_end(self, net, **kwargs) -> None:
        self.loop.epoch()


def standardize(X_tr, X_te, shape: tuple[int, ...]):
    """Both splits in units of the training data, as the estimator does.

    One shift and scale for every value of a signal (the estimator's
    ``set_input_scale``: mean and unbiased standard deviation, in float64).
    """
    X64 = X_tr.astype(np.float64)
    mean, std = X64.mean(), X64.std(ddof=1)
    out = [((X - mean) / std).astype(np.float32) for X in (X_tr, X_te)]
    return [torch.from_numpy(X).reshape(-1, *shape) for X in out]


def run_pair(seed: int, epochs: int, data) -> tuple[dict, dict]:
    """Ours and the loop trained in step; epoch times, fit time, probe of each."""
    X_tr, X_te, y_tr, y_te = data
    est = SimCLRTransformer(
        input_shape=INPUT_SHAPE, max_epochs=epochs, device="cpu", random_state=seed
    )
    loop = LightlyLoop(est, X_tr, X_te)
    est.set_params(callbacks=[InStep(loop)])
    start = time.perf_counter()
    est.fit(X_tr)
    fit_time = time.perf_counter() - start - sum(loop.times)
    ours = {
        "epochs": list(est.net_.history[:, "dur"]),
        "fit": fit_time,
        "probe": linear_probe(
            None, est.transform(X_tr), y_tr, est.transform(X_te), y_te
        ).accuracy,
    }
    theirs = {
        "epochs": loop.times,
        "fit": loop.setup_time + sum(loop.times),
        "probe": linear_probe(
            None, loop.encode(loop.X), y_tr, loop.encode(loop.X_test), y_te
        ).accuracy,
    }
    return ours, theirs


def _median_epoch(runs: list[dict]) -> float:
    """Median epoch time over the runs, each run's first epoch left out."""
    return statistics.median(t for run in runs for t in run["epochs"][1:])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    if lightly is None:
        print(
            f"lightly is not installed ({LIGHTLY_ERROR}); this benchmark compares "
            "against it: `pip install --no-deps lightly` in an environment with "
            "torchvision, then run it again. Nothing measured."
        )
        return
    X_tr, X_te, y_tr, y_te = load_mnist1d_split()
    print(
        f"torch {torch.__version__}, lightly {lightly.__version__}, CPU; MNIST-1D "
        f"{len(X_tr)} train / {len(X_te)} test; SimCLRTransformer(input_shape="
        f"{INPUT_SHAPE}) defaults, max_epochs={args.epochs}; {args.seeds} seeds "
        "at each thread count"
    )
    head = (
        f"{'threads':>7} {'seed':>4} {'ours s/ep':>9} {'loop s/ep':>9} "
        f"{'ratio':>6} {'ours fit s':>10} {'loop fit s':>10} "
        f"{'ours probe':>10} {'loop probe':>10}"
    )
    print(head)
    probes = {"ours": [], "loop": []}
    for t, threads in enumerate(args.threads):
        torch.set_num_threads(threads)
        runs = {"ours": [], "loop": []}
        for i in range(args.seeds):
            seed = t * args.seeds + i  # new seeds at each thread count
            o, lo = run_pair(seed, args.epochs, (X_tr, X_te, y_tr, y_te))
            for side, run in (("ours", o), ("loop", lo)):
                runs[side].append(run)
                probes[side].append(run["probe"])
            eo, el = _median_epoch([o]), _median_epoch([lo])
            print(
                f"{threads:>7} {seed:>4} {eo:>9.3f} {el:>9.3f} {eo / el:>6.3f} "
                f"{o['fit']:>10.1f} {lo['fit']:>10.1f} {o['probe']:>10.3f} "
                f"{lo['probe']:>10.3f}",
                flush=True,
            )
        eo, el = _median_epoch(runs["ours"]), _median_epoch(runs["loop"])
        print(
            f"{threads:>7} {'all':>4} {eo:>9.3f} {el:>9.3f} {eo / el:>6.3f}  "
            f"{verdict(eo / el, TARGET_RATIO, at_most=True)}",
            flush=True,
        )
    mo, ml = statistics.mean(probes["ours"]), statistics.mean(probes["loop"])
    print(
        f"probe, mean of {len(probes['ours'])} runs: ours {mo:.3f}, loop {ml:.3f}, "
        f"|difference| {abs(mo - ml):.3f}  "
        f"{verdict(abs(mo - ml), TARGET_PROBE, at_most=True)}"
    )


if __name__ == "__main__":
    main()
