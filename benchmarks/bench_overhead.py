"""Engine overhead: our skorch engine against a plain PyTorch loop.

The same objective (an autoencoder on 8×8 digits), the same data, batch size,
optimiser and number of epochs, trained once by ``AutoencoderTransformer``
(skorch's loop with our callbacks) and once by the hand-written loop below,
in this one process. Runs alternate and the median epoch time of each is
compared, so a slow moment of the machine hits both sides alike.

Run: ``python benchmarks/bench_overhead.py [--epochs 20] [--repeats 3]``.
Prints one row per configuration: epoch time of each and their ratio
(target: ≤ 1.10 on CPU).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from _targets import verdict
from sklearn.datasets import load_digits
from skorch.callbacks import Callback

from sk_replearn import AutoencoderTransformer
from sk_replearn.objectives.reconstruction import AutoencoderObjective

#: The most an epoch of the engine may take, relative to the plain loop.
TARGET = 1.10


class _EpochTimes(Callback):
    def initialize(self):
        self.times = []
        return self

    def on_epoch_begin(self, net, **kwargs):
        self._start = time.perf_counter()

    def on_epoch_end(self, net, **kwargs):
        self.times.append(time.perf_counter() - self._start)


def plain_loop(X: torch.Tensor, config: dict, epochs: int, seed: int) -> list[float]:
    """What a user would write by hand: shuffle, slice, forward, backward, step."""
    torch.manual_seed(seed)
    module = AutoencoderObjective(
        input_shape=tuple(X.shape[1:]), n_components=16, encoder=config["encoder"]
    )
    module.set_input_scale(X)
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3, weight_decay=1e-4)
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
    """The same work through AutoencoderTransformer."""
    timer = _EpochTimes()
    AutoencoderTransformer(
        n_components=16,
        encoder=config["encoder"],
        max_epochs=epochs,
        batch_size=config["batch_size"],
        lr=1e-3,
        weight_decay=1e-4,
        lr_schedule=None,
        callbacks=[timer],
        device="cpu",
        random_state=seed,
    ).fit(X.numpy())
    return timer.times


CONFIGS = [
    {"name": "cnn AE, digits 1x8x8, batch 128", "encoder": "cnn", "batch_size": 128},
    {
        "name": "mlp AE, digits 64-d, batch 128",
        "encoder": "mlp",
        "batch_size": 128,
        "flat": True,
    },
    {"name": "cnn AE, digits 1x8x8, batch 32", "encoder": "cnn", "batch_size": 32},
]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    X, _ = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    cols = f"{'plain ms/epoch':>15} {'engine ms/epoch':>16} {'ratio':>7}  verdict"
    print(f"{'configuration':<36} {cols}")
    for config in CONFIGS:
        Xt = torch.from_numpy(X if config.get("flat") else X.reshape(-1, 1, 8, 8))
        plain, ours = [], []
        for r in range(args.repeats):
            # drop the first epoch of each run: allocator and thread warm-up
            plain += plain_loop(Xt, config, args.epochs, seed=r)[1:]
            ours += engine(Xt, config, args.epochs, seed=r)[1:]
        p, o = statistics.median(plain) * 1e3, statistics.median(ours) * 1e3
        print(
            f"{config['name']:<36} {p:>15.1f} {o:>16.1f} {o / p:>7.3f}  "
            f"{verdict(o / p, TARGET, at_most=True)}",
            flush=True,
        )


if __name__ == "__main__":
    main()
