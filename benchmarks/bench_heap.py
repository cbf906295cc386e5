"""Training on the CPU with and without glibc keeping its heap between steps.

During ``fit`` on the CPU under glibc the package moves ``malloc``'s trim
and mmap thresholds to the ceiling glibc's own adjustment would reach, so
that the memory a step frees is reused by the next one instead of going back
to the kernel and faulting in again (``sk_replearn/_heap.py`` explains it).
The setting belongs to the whole process, so the two sides cannot share one:
each fit runs in its own process, ``SK_REPLEARN_RETAIN_HEAP=0`` (glibc's
defaults) and ``=1`` (the package's default) in alternation, ``--pairs``
times per estimator and thread count.

Every fit is an estimator's defaults with ``input_shape=(1, 40)`` on the
4,000 MNIST-1D training signals for ``--epochs`` epochs. Printed per row:
the median fit time of each side, their ratio (retained / glibc's default;
below 1 is faster), the ratios' spread over the pairs, and the minor page
faults and kernel (system) time a training step of the last epoch costs on
each side (medians).

Run: ``python benchmarks/bench_heap.py [--pairs 4] [--epochs 3]
[--threads 1 2] [--only SimCLR DINO]``. About 11 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import statistics

from _process import child_json

ESTIMATORS = ["SimCLRTransformer", "DINOTransformer", "MAETransformer"]


def child(name: str, epochs: int) -> None:
    """One fit in this process; print its figures as one JSON line."""
    import resource
    import time

    import torch
    from _data import load_mnist1d_split
    from skorch.callbacks import Callback

    import sk_replearn

    class Usage(Callback):
        """Page faults and kernel time at the end of every epoch."""

        def initialize(self):
            self.ends = []
            return self

        def on_epoch_end(self, net, **kwargs):
            self.ends.append(resource.getrusage(resource.RUSAGE_SELF))

    X = load_mnist1d_split()[0]
    usage = Usage()
    est = getattr(sk_replearn, name)(
        input_shape=(1, 40),
        max_epochs=epochs,
        device="cpu",
        random_state=0,
        callbacks=[usage],
    )
    start = time.perf_counter()
    est.fit(X)
    seconds = time.perf_counter() - start
    # the last epoch: the steady state, past the first steps' one-off faults
    before, after = usage.ends[-2], usage.ends[-1]
    steps = -(-len(X) // est.batch_size)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "faults_per_step": (after.ru_minflt - before.ru_minflt) / steps,
                "sys_ms_per_step": 1e3 * (after.ru_stime - before.ru_stime) / steps,
                "threads": torch.get_num_threads(),
            }
        )
    )


def fit_in_process(name: str, epochs: int, threads: int, retain: bool) -> dict:
    args = ["--child", name, "--epochs", str(epochs)]
    return child_json(__file__, args, threads=threads, retain_heap=retain)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--only", nargs="+", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the last epoch is measured alone")
    if args.child:
        child(args.child, args.epochs)
        return

    only = tuple(args.only or ("",))
    names = [n for n in ESTIMATORS if n.startswith(only)]
    print(
        f"MNIST-1D, 4000 signals, input_shape=(1, 40), {args.epochs} epochs, "
        f"defaults; {args.pairs} pairs of processes a row, sides alternating"
    )
    print(
        f"{'estimator':<24}{'threads':>8}{'glibc s':>9}{'kept s':>8}"
        f"{'ratio':>7}{'range':>13}   faults/step   sys ms/step"
    )
    for threads in args.threads:
        for name in names:
            runs = {False: [], True: []}
            for i in range(args.pairs):
                # alternate which side goes first, so drift favours neither
                for retain in (i % 2 == 1, i % 2 == 0):
                    runs[retain].append(
                        fit_in_process(name, args.epochs, threads, retain)
                    )
            base = [r["seconds"] for r in runs[False]]
            kept = [r["seconds"] for r in runs[True]]
            ratios = [k / b for k, b in zip(kept, base, strict=True)]
            faults = [
                statistics.median(r["faults_per_step"] for r in runs[side])
                for side in (False, True)
            ]
            sys_ms = [
                statistics.median(r["sys_ms_per_step"] for r in runs[side])
                for side in (False, True)
            ]
            print(
                f"{name:<24}{threads:>8}{statistics.median(base):>9.2f}"
                f"{statistics.median(kept):>8.2f}"
                f"{statistics.median(ratios):>7.2f}"
                f"{f'{min(ratios):.2f}-{max(ratios):.2f}':>13}"
                f"   {faults[0]:>5.0f} -> {faults[1]:<4.0f}"
                f"  {sys_ms[0]:>4.1f} -> {sys_ms[1]:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
