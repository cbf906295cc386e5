"""``transform`` on the CPU against a plain PyTorch loop over the same encoder.

On the CPU, ``transform`` of more than 256 rows cuts its batches so that the
widest activation of a batch stays within 8 MiB (a two-row probe measures
it) and keeps glibc's heap between batches (``sk_replearn/_heap.py``). The
reference is what a user writes by hand: the fitted encoder
(``_module().encode``) on the same float32 tensor, under
``torch.inference_mode``, in batches of 1,024 rows (the package's former
batch), in a process with glibc's own malloc settings.

Estimators, fitted once (2 epochs, defaults, ``random_state=0``) and
pickled: SimCLR (a 1-D ResNet) and MAE (the short-signal transformer) on
MNIST-1D, ``input_shape=(1, 40)``, transforming its 4,000 training signals
tiled to 40,000 (MAE: 8,000); BERT on the 5,200 peptides of modlamp's
``AMPvsUniProt.csv`` twice (skipped without modlamp), where the loop pads
batches of 1,024 sequences in the estimator's length order. Each side runs
in its own process (the heap setting belongs to the process), in
alternation, ``--pairs`` times per estimator and thread count; each process
times ``--repeats`` calls after one warm-up call and reports the median.
Printed per row: the median time of each side, their ratio (ours / the loop;
below 1 is faster) and its range over the pairs, each side's minor page
faults per call and peak RSS (the process's own high-water mark,
``VmHWM``: loading, the warm-up and the timed calls), and whether the
outputs agree (max absolute difference).

Run: ``python benchmarks/bench_transform.py [--pairs 3] [--repeats 3]
[--threads 1 2] [--only SimCLR MAE BERT]``. About 15 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import csv
import json
import pickle
import statistics
import tempfile
from pathlib import Path

import numpy as np
from _process import child_json, status_kib

ESTIMATORS = ["SimCLR", "MAE", "BERT"]
LOOP_BATCH = 1024


def peptides() -> list[str] | None:
    """modlamp's 5,200 labelled peptides, or None without modlamp."""
    try:
        import modlamp
    except ImportError:
        return None
    path = Path(modlamp.__file__).parent / "data" / "AMPvsUniProt.csv"
    with open(path) as f:
        return [row[0] for row in list(csv.reader(f))[1:]]


def prepare(name: str, folder: Path) -> Path | None:
    """Fit ``name`` once; pickle it with its input; return the file."""
    import torch
    from _data import load_mnist1d_split

    import sk_replearn

    torch.set_num_threads(2)
    if name == "BERT":
        seqs = peptides()
        if seqs is None:
            return None
        est = sk_replearn.BERTTransformer(max_epochs=2, random_state=0).fit(seqs)
        X = seqs * 2
    else:
        X = load_mnist1d_split()[0]
        est = getattr(sk_replearn, f"{name}Transformer")(
            input_shape=(1, 40), max_epochs=2, random_state=0
        ).fit(X)
        X = np.tile(X, (10 if name == "SimCLR" else 2, 1))
    path = folder / f"{name}.pkl"
    with open(path, "wb") as f:
        pickle.dump((est, X), f)
    return path


def child(path: str, side: str, repeats: int, out: str) -> None:
    """Time one side in this process; print its figures as one JSON line."""
    import resource
    import time

    import torch

    with open(path, "rb") as f:
        est, X = pickle.load(f)

    if side == "ours":

        def run():
            return est.transform(X)

    else:
        module = est._module()
        if isinstance(X, list):  # sequences: padded batches in length order
            data = est._token_data(X, owner="bench")
            order = torch.sort(data.lengths, stable=True).indices
            batches = [order[i : i + LOOP_BATCH] for i in range(0, len(X), LOOP_BATCH)]

            def run():
                Z = torch.empty(len(X), est.embed_dim)
                with torch.inference_mode():
                    for idx in batches:
                        Z[idx] = module.encode(data.take(idx))
                return Z.numpy()

        else:
            x = torch.from_numpy(X).view(-1, *est.input_shape_)

            def run():
                with torch.inference_mode():
                    return torch.cat(
                        [
                            module.encode(x[i : i + LOOP_BATCH])
                            for i in range(0, len(x), LOOP_BATCH)
                        ]
                    ).numpy()

    run()  # warm-up
    times, faults = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        Z = run()
        times.append(time.perf_counter() - start)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    np.save(out, Z)
    print(
        json.dumps(
            {
                "seconds": statistics.median(times),
                "faults": statistics.median(faults),
                "rss_mib": status_kib("VmHWM") / 1024,
            }
        )
    )


def run_side(path: Path, side: str, threads: int, repeats: int, out: Path) -> dict:
    args = ["--child", str(path), side, str(repeats), str(out)]
    return child_json(__file__, args, threads=threads, retain_heap=side == "ours")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--only", nargs="+", default=None)
    parser.add_argument("--child", nargs=4, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        path, side, repeats, out = args.child
        child(path, side, int(repeats), out)
        return

    names = [n for n in ESTIMATORS if args.only is None or n in args.only]
    print(
        f"transform on the CPU: ours (batches within 8 MiB of activation, heap "
        f"kept) against a plain loop (batches of {LOOP_BATCH}, glibc's defaults); "
        f"{args.pairs} pairs of processes a row, sides alternating, median of "
        f"{args.repeats} calls each"
    )
    print(
        f"{'estimator':<10}{'rows':>7}{'threads':>8}{'loop s':>8}{'ours s':>8}"
        f"{'ratio':>7}{'range':>12}{'faults loop -> ours':>22}"
        f"{'peak RSS MiB':>16}  max |diff|"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in names:
            path = prepare(name, folder)
            if path is None:
                print(f"{name:<10} skipped: modlamp is not installed")
                continue
            with open(path, "rb") as f:
                n_rows = len(pickle.load(f)[1])
            for threads in args.threads:
                runs = {"loop": [], "ours": []}
                for i in range(args.pairs):
                    # alternate which side goes first, so drift favours neither
                    for side in ("loop", "ours") if i % 2 else ("ours", "loop"):
                        out = folder / f"{side}.npy"
                        runs[side].append(
                            run_side(path, side, threads, args.repeats, out)
                        )
                diff = float(
                    np.abs(
                        np.load(folder / "ours.npy") - np.load(folder / "loop.npy")
                    ).max()
                )
                loop = [r["seconds"] for r in runs["loop"]]
                ours = [r["seconds"] for r in runs["ours"]]
                ratios = [o / lo for o, lo in zip(ours, loop, strict=True)]
                faults = [
                    statistics.median(r["faults"] for r in runs[s])
                    for s in ("loop", "ours")
                ]
                rss = [
                    statistics.median(r["rss_mib"] for r in runs[s])
                    for s in ("loop", "ours")
                ]
                print(
                    f"{name:<10}{n_rows:>7}{threads:>8}"
                    f"{statistics.median(loop):>8.2f}{statistics.median(ours):>8.2f}"
                    f"{statistics.median(ratios):>7.2f}"
                    f"{f'{min(ratios):.2f}-{max(ratios):.2f}':>12}"
                    f"{f'{faults[0]:.0f} -> {faults[1]:.0f}':>22}"
                    f"{f'{rss[0]:.0f} -> {rss[1]:.0f}':>16}  {diff:.1e}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
