"""Peak memory of ``fit`` and ``transform``: flat in ``n_samples`` but for the data.

Every measurement runs in a fresh process, so that no peak carries over,
and reports two peaks over the call, both above the process's memory just
before it:

* **anonymous** memory (``RssAnon``: heap, tensors, numpy arrays), sampled
  every millisecond (a spike shorter than that can be missed);
* **total** RSS (``VmHWM``, the kernel's exact high-water mark), which also
  counts file pages mapped in during the call (a memmap's rows, code).

**fit** (issue: "peak RSS of fit on n and 10n samples of MNIST-1D, tensor
input; training memory should not grow with n beyond the data itself").
MNIST-1D's 4000 training signals (40 values each, float32) are tiled to
``n`` and ``10 n`` rows, each row plus N(0, 0.05²) noise so that no two are
equal, and passed as a torch tensor ``(n, 1, 40)`` (and, for the fast
estimators, as the numpy array ``(n, 40)`` the tensor shares its memory
with). Each estimator runs with its defaults plus ``input_shape=(1, 40)``,
``random_state=0``, ``device="cpu"`` (so that training memory is host
memory) and, for the neural ones, ``max_epochs=1``: memory is about a pass
over the data, not about convergence. The process first fits on 32 rows
(lazy imports, first-call allocations; too few rows to pre-grow the heap by
a full batch's activations), then builds the data, then measures the fit
above the memory at that point, so the data are not counted. A fit that
takes under 5 seconds is measured in three such processes and the median
peak kept: on a base of a few MiB, allocator jitter alone once moved a
ratio from about 1 to 1.5. Per estimator
the verdict is the ratio of the total peaks at ``10 n`` and at ``n`` (the
data being excluded from both, there is no extra data to subtract), net of
the output, as for ``transform``: K-means' ``labels_``, the one fitted
attribute with a value per sample (8 B); and the growth per sample in
bytes, against a row of data (160 B). Memory a fit
needs whatever ``n`` is (activations of a batch, the model) makes the ratio
about 1; a copy of the data (or a list of per-sample values) makes it up to
10 once the copy outweighs that constant. Copies inherent to an estimator
are listed under the table. K-means runs on 25 times more rows (100k and
1M at the default ``--fit-n``; see ``SCALE``), with ``copy_x`` at its
default and at ``False``.

**transform** on a memmap. A float32 memmap of ``10 n`` rows is written to a
temporary folder, an ``AutoencoderTransformer`` and a ``PCATransformer`` are
fitted on its first rows, and each then transforms the first ``n`` and all
``10 n`` rows. The anonymous peak should be the output
(``n_samples x n_components x 4`` bytes) plus a constant; the total RSS
also counts the memmap's file pages, which are page cache, dropped under
memory pressure, so they grow with the file without being allocated. The
verdict is the ratio of the anonymous peaks net of the output.
``PCATransformer`` runs with ``batch_size=4096``: its default batches hold
16 M values (64 MiB), a constant that only ``n >= 65536`` rows of 256
features would reach, so at the default size the ratio would reflect the
batch, not ``n``.

Target for both ratios: at most 1.25 (flat memory gives about 1, memory
that grows with ``n`` up to 10).

Run: ``python benchmarks/bench_memory.py [--n 20000] [--features 256]
[--fit-n 4000] [--fit-estimators LABEL ...] [--sections transform fit]``
(Linux >= 4.0; with one torch thread on 2 CPU cores about 6 minutes, of
which the one-epoch fits of the self-supervised estimators on 40000 rows
take most, transform about 20 seconds).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
from _process import child_json, status_kib
from _targets import verdict

_MIB = 2**20
#: The most the working memory of ``transform`` (anonymous peak less the
#: output) or of ``fit`` (peak RSS above the data) may grow when
#: ``n_samples`` grows tenfold.
TARGET = 1.25


def _reset_peak() -> None:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peaks(call) -> dict:
    """Run ``call()``; its peaks above the memory just before, and its time.

    ``anon_mib``: anonymous memory (``RssAnon``) sampled every millisecond;
    ``total_mib``: the high-water mark of the whole RSS (``VmHWM``), reset
    first; ``seconds``; and ``result``, what ``call`` returned.
    """
    base_anon, base_rss = status_kib("RssAnon"), status_kib("VmRSS")
    _reset_peak()
    peak, done = [base_anon], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], status_kib("RssAnon"))
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    peak[0] = max(peak[0], status_kib("RssAnon"))
    return {
        "anon_mib": (peak[0] - base_anon) / 1024,
        "total_mib": (status_kib("VmHWM") - base_rss) / 1024,
        "seconds": seconds,
        "result": result,
    }


def _child(model_path: str, data_path: str, rows: int, features: int) -> None:
    """Transform the first ``rows`` rows of the memmap; print the peaks as JSON."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with open(model_path, "rb") as f:
        model = pickle.load(f)
    X = np.memmap(data_path, dtype=np.float32, mode="r", shape=(rows, features))
    model.transform(np.array(X[:8]))  # warm up lazy imports and allocations
    peaks = _peaks(lambda: model.transform(X))
    Z = peaks.pop("result")
    print(json.dumps({**peaks, "output_mib": Z.nbytes / _MIB}))


def _run_child(model_path, data_path, rows, features) -> dict:
    args = ["--child", model_path, data_path, str(rows), "--features", str(features)]
    return child_json(__file__, args, threads=1)


# -- fit ----------------------------------------------------------------------
#: Noise added to each tiled MNIST-1D signal, so that no two rows are equal.
JITTER = 0.05
#: Rows of the warm-up fit: enough to pay the lazy imports and first-call
#: allocations, too few for its batches to pre-grow the heap by what
#: training on full batches needs.
WARMUP_ROWS = 32
#: Estimator label -> keyword arguments beyond the shared ones (defaults,
#: ``input_shape=(1, 40)``, ``random_state=0``, ``device="cpu"``).
FIT_ESTIMATORS = {
    "KMeansTransformer": {},
    "KMeansTransformer(copy_x=False)": {"copy_x": False},
    "PCATransformer": {},
    # PCA's CPU pass sums and shifts X in cache-sized buffers of 2**18
    # values (3 MiB: float64 and float32) a worker, min(n, 2**18 / 40) rows
    # here (one worker takes at least 4096 rows: the same at 40 features):
    # they grow with n up to that cap. Blocks of 4096 rows (batch_size)
    # show the rest is flat.
    "PCATransformer(batch_size=4096)": {"batch_size": 4096},
    "AutoencoderTransformer": {"max_epochs": 1},
    "MAETransformer": {"max_epochs": 1},
    "SimCLRTransformer": {"max_epochs": 1},
    "BYOLTransformer": {"max_epochs": 1},
    "DINOTransformer": {"max_epochs": 1},
}
#: Estimators also fitted on the numpy array (the same memory as the
#: tensor); the others would only repeat their seconds-long fits.
NUMPY_TOO = (
    "KMeansTransformer",
    "KMeansTransformer(copy_x=False)",
    "PCATransformer",
    "AutoencoderTransformer",
)
#: Estimators measured on ``SCALE`` times more rows (n and 10 n rows then
#: being 100k and 1M at the default ``--fit-n``): K-means' constants, a
#: Lloyd block of 52,428 rows and k-means++'s sample of 65,536, reach their
#: full size only beyond 65,536 rows, so below that they grow with n too,
#: and a fit on a million rows takes about 3 seconds.
SCALE = {"KMeansTransformer": 25, "KMeansTransformer(copy_x=False)": 25}
#: Fits quicker than this (seconds) are measured ``REPEATS`` times, each in a
#: fresh process, and the median peak kept (see :func:`_measure_fit`); the
#: slower ones (the self-supervised fits, on bases of 50 MiB and more) once.
QUICK_FIT_SECONDS = 5.0
REPEATS = 3
#: What an estimator's fit keeps per sample by design, printed with the table.
BY_DESIGN = {
    "KMeansTransformer": (
        "keeps labels_ (8 B a sample) and, on the CPU, each sample's squared "
        "norm and Hamerly's upper and lower distance bounds (3 float32, 12 B "
        "a sample); with copy_x=True (the default, as scikit-learn's KMeans) "
        "it also holds X minus its mean as one float32 copy (4 B a value, "
        "160 B a row here) that every Lloyd iteration reads, where "
        "copy_x=False centres X itself and adds the mean back at the end; "
        "k-means++ seeding keeps a few values a sample for at most 65536 "
        "samples"
    ),
    "PCATransformer": (
        "sums and shifts X in buffers of at most 2**18 values (3 MiB as "
        "float64 and float32) a worker, or on one thread at least 4096 rows "
        "within 2**20 values (12 MiB; at 40 features 6553 rows either way), "
        "so its peak grows with n only until the buffers are full"
    ),
}


def _fit_estimator(label: str):
    import sk_replearn

    cls = getattr(sk_replearn, label.split("(")[0])
    return cls(
        input_shape=(1, 40), random_state=0, device="cpu", **FIT_ESTIMATORS[label]
    )


def _jittered(signals: np.ndarray, rows: int, seed: int) -> np.ndarray:
    """``rows`` copies of the signals in turn, each plus N(0, JITTER²) noise.

    Written in place one block of ``len(signals)`` rows at a time, so that no
    temporary as large as the result exists before the fit.
    """
    rng = np.random.default_rng(seed)
    X = np.empty((rows, signals.shape[1]), dtype=np.float32)  # (rows, 40)
    for start in range(0, rows, len(signals)):
        block = X[start : start + len(signals)]
        rng.standard_normal(out=block, dtype=np.float32)
        block *= JITTER
        block += signals[: len(block)]
    return X


def _fit_input(X: np.ndarray, kind: str):
    """The rows as the estimator gets them: a tensor (n, 1, 40) or the array."""
    if kind == "tensor":
        import torch

        return torch.from_numpy(X).reshape(len(X), 1, X.shape[1])  # no copy
    return X


def _fit_child(label: str, rows: int, kind: str, signals_path: str) -> None:
    """Fit on ``rows`` jittered signals; print the peaks above the data, as JSON."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import warnings

    warnings.simplefilter("ignore")  # a 1-epoch fit may warn of collapse
    signals = np.load(signals_path)
    _fit_estimator(label).fit(_fit_input(_jittered(signals, WARMUP_ROWS, 1), kind))
    X = _jittered(signals, rows, seed=0)
    data = _fit_input(X, kind)
    gc.collect()
    estimator = _fit_estimator(label)
    peaks = _peaks(lambda: estimator.fit(data))
    del peaks["result"]
    print(
        json.dumps(
            {
                **peaks,
                "data_mib": X.nbytes / _MIB,
                "output_mib": _outputs_mib(estimator),
            }
        )
    )


def _outputs_mib(estimator) -> float:
    """MiB of ``labels_``, the one fitted attribute with a value per sample.

    It is part of what ``fit`` returns, as ``transform``'s output is, so the
    verdict leaves it out.
    """
    labels = getattr(estimator, "labels_", None)
    return 0.0 if labels is None else labels.nbytes / _MIB


def _run_fit_child(label: str, rows: int, kind: str, signals_path: str) -> dict:
    cmd = [sys.executable, __file__, "--fit-child", label, str(rows), kind]
    cmd.append(signals_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": tail}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure_fit(label: str, rows: int, kind: str, signals_path: str) -> dict:
    """The fit's peaks: one run, or for a quick fit the median of ``REPEATS``.

    A quick fit's peak sits on a base of a few MiB, where the allocator's
    jitter (an arena grown a little earlier or later) moved a ratio by up
    to half on its own (1.52, then 0.91 and 0.99, for the same row). Each
    run is a fresh process; the run with the median peak RSS is kept,
    with ``runs`` saying how many there were.
    """
    first = _run_fit_child(label, rows, kind, signals_path)
    if "error" in first or first["seconds"] > QUICK_FIT_SECONDS:
        return {**first, "runs": 1}
    runs = [first]
    for _ in range(REPEATS - 1):
        r = _run_fit_child(label, rows, kind, signals_path)
        if "error" in r:
            return {**r, "runs": len(runs) + 1}
        runs.append(r)
    runs.sort(key=lambda r: r["total_mib"])
    return {**runs[len(runs) // 2], "runs": len(runs)}


def fit_section(n: int, labels) -> None:
    """Peak memory of ``fit`` on ``n`` and ``10 n`` jittered MNIST-1D signals."""
    from _data import load_mnist1d_split

    signals = load_mnist1d_split()[0]  # (4000, 40) float32
    d = signals.shape[1]
    row_bytes = d * 4
    print(
        f"\nfit on MNIST-1D: its {len(signals)} training signals tiled to n rows, "
        f"each plus N(0, {JITTER}^2) noise, float32 ({row_bytes} B a row), as a "
        "tensor (n, 1, 40) or a numpy array (n, 40); defaults, input_shape=(1, 40), "
        "random_state=0, device='cpu', max_epochs=1; MiB above the memory once the "
        "data were made (so the data are not counted); fits under "
        f"{QUICK_FIT_SECONDS:g} s: the median of {REPEATS} fresh processes (runs)"
    )
    header = (
        f"{'estimator':<32}{'input':>7}{'n_samples':>10}{'data':>7}{'output':>8}"
        f"{'anon peak':>11}{'peak RSS':>10}{'time s':>8}{'runs':>6}"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        signals_path = os.path.join(tmp, "signals.npy")
        np.save(signals_path, signals)
        for label in labels:
            kinds = ("tensor", "numpy") if label in NUMPY_TOO else ("tensor",)
            scaled = n * SCALE.get(label, 1)
            for kind in kinds:
                res = {}
                for rows in (scaled, 10 * scaled):
                    res[rows] = r = _measure_fit(label, rows, kind, signals_path)
                    if "error" in r:
                        print(f"{label:<32}{kind:>7}{rows:>10}  FAILED: {r['error']}")
                        break
                    print(
                        f"{label:<32}{kind:>7}{rows:>10}{r['data_mib']:>7.1f}"
                        f"{r['output_mib']:>8.1f}{r['anon_mib']:>11.1f}"
                        f"{r['total_mib']:>10.1f}{r['seconds']:>8.2f}"
                        f"{r['runs']:>6}"
                    )
                if any("error" in r for r in res.values()):
                    continue
                small, large = (
                    res[r]["total_mib"] - res[r]["output_mib"]
                    for r in (scaled, 10 * scaled)
                )
                ratio = large / max(small, 1e-9)
                per_row = (large - small) * _MIB / (9 * scaled)
                print(
                    f"  peak RSS - output at 10n / at n: {large:.1f} / {small:.1f} MiB "
                    "= "
                    f"{ratio:.2f} ({verdict(ratio, TARGET, at_most=True)}); "
                    f"{per_row:+.0f} B a sample more (a row of data: {row_bytes} B)"
                )
    notes = {label.split("(")[0] for label in labels} & set(BY_DESIGN)
    print("copies made by design (their cost is in the rows above):")
    for name in sorted(notes):
        print(f"  {name} {BY_DESIGN[name]}.")
    print(
        "  numpy float64 input (not measured here: MNIST-1D is float32) is first "
        "copied to float32 by the neural estimators (4 B a value)."
    )
    print(
        "  the neural estimators shuffle through a permutation of the sample "
        "indices, drawn each epoch (int32 below 2**31 samples: 4 B a sample)."
    )


def transform_section(n: int, d: int) -> None:
    """Peak memory of ``transform`` of the first ``n`` and ``10 n`` memmap rows."""
    from sk_replearn import AutoencoderTransformer, PCATransformer

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="transform's n")
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--fit-n", type=int, default=4000, help="fit's n")
    parser.add_argument(
        "--fit-estimators",
        nargs="+",
        choices=list(FIT_ESTIMATORS),
        default=list(FIT_ESTIMATORS),
        metavar="LABEL",
    )
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=("transform", "fit"),
        default=["transform", "fit"],
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--fit-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model_path, data_path, rows = args.child
        _child(model_path, data_path, int(rows), args.features)
        return
    if args.fit_child:
        label, rows, kind, signals_path = args.fit_child
        _fit_child(label, int(rows), kind, signals_path)
        return
    if "transform" in args.sections:
        transform_section(args.n, args.features)
    if "fit" in args.sections:
        fit_section(args.fit_n, args.fit_estimators)


if __name__ == "__main__":
    main()
