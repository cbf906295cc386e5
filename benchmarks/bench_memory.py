"""Memory of ``transform`` on a memmap: flat in ``n_samples`` but for the output.

A float32 memmap of ``10 n`` rows is written to a temporary folder, an
``AutoencoderTransformer`` and a ``PCATransformer`` are fitted on its first
rows, and each then transforms the first ``n`` and all ``10 n`` rows of the
memmap, each run in a fresh process so that no peak carries over. A process
reports two peaks over its ``transform`` call, both above its memory just
before the call:

* **anonymous** memory (``RssAnon``: heap, tensors, numpy arrays), sampled
  every millisecond; this is the memory ``transform`` allocates, and should
  be the output (``n_samples x n_components x 4`` bytes) plus a constant;
* **total** RSS (``VmHWM``), which also counts the memmap's file pages the
  kernel mapped in while reading them; they are page cache, dropped under
  memory pressure, so they grow with the file without being allocated.

``PCATransformer`` runs with ``batch_size=4096``: its default batches hold
16 M values (64 MiB), a constant that only ``n >= 65536`` rows of 256
features would reach, so at the default size the ratio would reflect the
batch, not ``n``.

Run: ``python benchmarks/bench_memory.py [--n 20000] [--features 256]``
(Linux; about a minute). Prints one row per estimator and size and, per
estimator, the ratio of the anonymous peaks net of the output at ``10 n``
and ``n`` (flat memory: about 1; target at most 1.25, where memory that grew
with ``n`` would give 10).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
from _targets import verdict

_MIB = 2**20
#: The most the working memory (anonymous peak less the output) of
#: ``transform`` may grow when ``n_samples`` grows tenfold.
TARGET = 1.25


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def _child(model_path: str, data_path: str, rows: int, features: int) -> None:
    """Transform the first ``rows`` rows of the memmap; print the peaks as JSON."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with open(model_path, "rb") as f:
        model = pickle.load(f)
    X = np.memmap(data_path, dtype=np.float32, mode="r", shape=(rows, features))
    model.transform(np.array(X[:8]))  # warm up lazy imports and allocations
    base_anon, base_rss = _status_kib("RssAnon"), _status_kib("VmRSS")
    peak, done = [base_anon], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _status_kib("RssAnon"))
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    Z = model.transform(X)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    peak[0] = max(peak[0], _status_kib("RssAnon"))
    print(
        json.dumps(
            {
                "anon_mib": (peak[0] - base_anon) / 1024,
                "total_mib": (_status_kib("VmHWM") - base_rss) / 1024,
                "output_mib": Z.nbytes / _MIB,
                "seconds": seconds,
            }
        )
    )


def _run_child(model_path, data_path, rows, features) -> dict:
    cmd = [sys.executable, __file__, "--child", model_path, data_path, str(rows)]
    cmd += ["--features", str(features)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model_path, data_path, rows = args.child
        _child(model_path, data_path, int(rows), args.features)
        return

    from sk_replearn import AutoencoderTransformer, PCATransformer

    n, d = args.n, args.features
    with tempfile.TemporaryDirectory() as tmp:
        data_path = os.path.join(tmp, "X.dat")
        X = np.memmap(data_path, dtype=np.float32, mode="w+", shape=(10 * n, d))
        rng = np.random.default_rng(0)
        for start in range(0, 10 * n, n):  # written in chunks, never whole
            X[start : start + n] = rng.normal(size=(n, d))
        X.flush()
        fit_rows = np.array(X[:2000])
        del X
        models = {
            "AutoencoderTransformer": AutoencoderTransformer(
                n_components=16,
                encoder_kwargs={"hidden_sizes": (64,)},
                max_epochs=1,
                random_state=0,
                device="cpu",
            ).fit(fit_rows),
            # PCA's default batches hold 16 M values (64 MiB of float32, for
            # speed): a constant that 10 n rows would only reach for
            # n >= 65536 at 256 features. Smaller batches show the trend here.
            "PCATransformer": PCATransformer(
                n_components=16, batch_size=4096, device="cpu"
            ).fit(fit_rows),
        }
        print(
            f"transform of a float32 memmap, {d} features ({d * 4 / 1024:.0f} KiB "
            "per row); MiB above the memory before the call"
        )
        header = (
            f"{'estimator':<24}{'n_samples':>10}{'file':>8}{'output':>8}"
            f"{'anon peak':>11}{'total RSS':>11}{'time s':>8}"
        )
        print(header)
        print("-" * len(header))
        for name, model in models.items():
            model_path = os.path.join(tmp, name + ".pkl")
            with open(model_path, "wb") as f:
                pickle.dump(model, f)
            res = {}
            for rows in (n, 10 * n):
                res[rows] = r = _run_child(model_path, data_path, rows, d)
                print(
                    f"{name:<24}{rows:>10}{rows * d * 4 / _MIB:>8.1f}"
                    f"{r['output_mib']:>8.1f}{r['anon_mib']:>11.1f}"
                    f"{r['total_mib']:>11.1f}{r['seconds']:>8.2f}"
                )
            net = [max(res[k]["anon_mib"] - res[k]["output_mib"], 0.0) for k in res]
            ratio = net[1] / max(net[0], 1e-9)
            print(
                f"  anon peak - output at 10n / at n: {net[1]:.1f} / {net[0]:.1f} "
                f"MiB = {ratio:.2f} ({verdict(ratio, TARGET, at_most=True)})"
            )


if __name__ == "__main__":
    main()
