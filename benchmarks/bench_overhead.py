"""Engine overhead: our skorch engine against a plain PyTorch loop.

The same objective, the same data, batch size, optimiser (AdamW with its
fused step on both sides) and number of epochs, trained once by the
estimator (skorch's loop with our callbacks) and once by the hand-written
loop below, in this one process, at 1 and at 2
torch threads. Runs alternate and the median epoch time of each is compared,
so a slow moment of the machine hits both sides alike. Configurations:

* an autoencoder on the 8×8 digits (a CNN at batches of 128 and 32, an MLP);
* MAE's short-signal recipe on MNIST-1D (``MAETransformer(input_shape=(1,
  40))``, its "auto" settings: 192 wide, 2 blocks, MLPs 3x, 85% hidden),
  with a constant learning rate on both sides. MAE's fit was the one that
  missed its 45 s on two cores (before the 32-epoch defaults); this row
  says how much of an epoch the engine adds to the network's own work.

Run: ``python benchmarks/bench_overhead.py [--epochs 15] [--mae-epochs 6]
[--repeats 3] [--threads 1 2]``. Prints one row per configuration and thread
count: epoch time of each and their ratio (target: ≤ 1.10 on CPU). About 3
minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from _data import load_mnist1d_split
from _targets import verdict
from sklearn.datasets import load_digits
from skorch.callbacks import Callback

from sk_replearn import AutoencoderTransformer, MAETransformer
from sk_replearn.objectives.masked import MAEObjective
from sk_replearn.objectives.reconstruction import AutoencoderObjective

#: The most an epoch of the engine may take, relative to the plain loop.
TARGET = 1.10
#: MAE's "auto" settings for 1-D signals, written out as a user would; the
#: engine's fitted values are checked against them.
MAE_SIGNAL = {
    "patch_size": 2,
    "mask_ratio": 0.85,
    "embed_dim": 192,
    "depth": 2,
    "num_heads": 4,
    "decoder_embed_dim": 32,
    "decoder_depth": 2,
    "decoder_num_heads": 4,
    "mlp_ratio": 3,
    "pooling": "blocks",
    "pooling_regions": 4,
}
MAE_LR, MAE_WEIGHT_DECAY = 1e-3, 0.05


class _EpochTimes(Callback):
    def initialize(self):
        self.times = []
        return self

    def on_epoch_begin(self, net, **kwargs):
        self._start = time.perf_counter()

    def on_epoch_end(self, net, **kwargs):
        self.times.append(time.perf_counter() - self._start)


def _plain_module(X: torch.Tensor, config: dict) -> torch.nn.Module:
    if config["kind"] == "mae":
        return MAEObjective(tuple(X.shape[1:]), **MAE_SIGNAL)
    return AutoencoderObjective(
        input_shape=tuple(X.shape[1:]), n_components=16, encoder=config["encoder"]
    )


def plain_loop(X: torch.Tensor, config: dict, epochs: int, seed: int) -> list[float]:
    """What a user would write by hand: shuffle, slice, forward, backward, step."""
    torch.manual_seed(seed)
    module = _plain_module(X, config)
    module.set_input_scale(X)
    mae = config["kind"] == "mae"
    # The fused step (one kernel for every tensor), as the engine's: what a
    # user writes with torch >= 2.4 (``fused=True``), so that the ratio is
    # the engine's overhead, not the optimiser's kernel.
    opt = torch.optim.AdamW(
        module.parameters(),
        lr=MAE_LR if mae else 1e-3,
        weight_decay=MAE_WEIGHT_DECAY if mae else 1e-4,
        fused=True,
    )
    bs = config["batch_size"]
    times = []
    module.train()
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(X))
        for k in range(0, len(X), bs):
            xb = X[order[k : k + bs]]
            if len(xb) < 2:
                continue
            opt.zero_grad()
            loss = module.loss(module(xb), xb)
            loss.backward()
            opt.step()
            loss.item()  # what a user logs; skorch records it too
        times.append(time.perf_counter() - start)
    return times


def engine(X: torch.Tensor, config: dict, epochs: int, seed: int) -> list[float]:
    """The same work through the estimator."""
    timer = _EpochTimes()
    common = {
        "max_epochs": epochs,
        "batch_size": config["batch_size"],
        "lr_schedule": None,
        "callbacks": [timer],
        "device": "cpu",
        "random_state": seed,
    }
    if config["kind"] == "mae":
        est = MAETransformer(
            input_shape=tuple(X.shape[1:]),
            lr=MAE_LR,
            weight_decay=MAE_WEIGHT_DECAY,
            warmup_epochs=0,
            **common,
        ).fit(X.numpy().reshape(len(X), -1))
        fitted = {k: getattr(est, f"{k}_", getattr(est, k)) for k in MAE_SIGNAL}
        fitted["patch_size"] = est.net_.module_.patch_size
        assert fitted == MAE_SIGNAL, f"MAE's auto recipe changed: {fitted}"
    else:
        AutoencoderTransformer(
            n_components=16,
            encoder=config["encoder"],
            lr=1e-3,
            weight_decay=1e-4,
            **common,
        ).fit(X.numpy())
    return timer.times


CONFIGS = [
    {
        "name": "cnn AE, digits 1x8x8, batch 128",
        "kind": "ae",
        "encoder": "cnn",
        "batch_size": 128,
    },
    {
        "name": "mlp AE, digits 64-d, batch 128",
        "kind": "ae",
        "encoder": "mlp",
        "batch_size": 128,
        "flat": True,
    },
    {
        "name": "cnn AE, digits 1x8x8, batch 32",
        "kind": "ae",
        "encoder": "cnn",
        "batch_size": 32,
    },
    {"name": "MAE, MNIST-1D 1x40, batch 128", "kind": "mae", "batch_size": 128},
]


def _inputs(config: dict) -> torch.Tensor:
    if config["kind"] == "mae":
        X = load_mnist1d_split()[0]
        return torch.from_numpy(X.reshape(-1, 1, 40))
    X = load_digits(return_X_y=True)[0].astype(np.float32)
    return torch.from_numpy(X if config.get("flat") else X.reshape(-1, 1, 8, 8))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--mae-epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, CPU")
    cols = f"{'plain ms/epoch':>15} {'engine ms/epoch':>16} {'ratio':>7}  verdict"
    print(f"{'configuration':<36} {'threads':>7} {cols}")
    for config in CONFIGS:
        Xt = _inputs(config)
        epochs = args.mae_epochs if config["kind"] == "mae" else args.epochs
        for threads in args.threads:
            torch.set_num_threads(threads)
            plain, ours = [], []
            for r in range(args.repeats):
                # drop the first epoch of each run: allocator and thread warm-up
                plain += plain_loop(Xt, config, epochs, seed=r)[1:]
                ours += engine(Xt, config, epochs, seed=r)[1:]
            p, o = statistics.median(plain) * 1e3, statistics.median(ours) * 1e3
            print(
                f"{config['name']:<36} {threads:>7} {p:>15.1f} {o:>16.1f} "
                f"{o / p:>7.3f}  {verdict(o / p, TARGET, at_most=True)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
