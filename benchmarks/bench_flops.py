"""Achieved FLOP rate of a training step, and where the rest of the time goes.

For every self-supervised estimator (the defaults plus ``input_shape=(1, 40)``)
on MNIST-1D, at each thread count in this one process:

* **peak**: the best of several ``torch.mm`` of two square float32 matrices
  (2048 x 2048), in GFLOP/s: what this machine's float32 matrix kernels reach
  when nothing else is in the way.
* **FLOPs of a step**: one batch of the default batch size through the
  objective's forward, loss and backward, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (matrix products, convolutions
  and attention; element-wise work and the optimiser count nothing, as in
  the usual model-FLOPs convention). Its counter has no formula for the CPU
  attention kernel, so the benchmark adds the one it uses for the others.
* **time of a step**: the estimator's own ``fit`` (skorch's loop, AdamW, the
  cosine schedule) on ``--batches`` full batches of the training split, one
  epoch of warm-up and then ``--epochs`` timed epochs; the best epoch's time
  divided by its steps. Achieved GFLOP/s = FLOPs / time, and its share of
  the peak.
* **where it goes**: one more epoch under ``torch.profiler``, read twice.
  By region, opened by wrappers that this script puts on the fitted net's
  methods (the package is unchanged): ``views`` (the objective's
  ``draw_views`` / ``draw_local_views``; MAE's ``random_masking``),
  ``forward`` (``infer`` minus the views, plus ``get_loss``), ``backward``
  (``train_step_single`` minus both), ``optim`` (``train_step`` minus
  ``train_step_single``: zeroing the gradients and AdamW's update),
  ``data`` (the next batch from the iterator: shuffle and gather) and
  ``other``, the rest of the epoch (skorch's loop, history and callbacks,
  ``loss.item()``). By kind of kernel (each ``aten::`` op's self time):
  ``gemm`` (the matrix-product, convolution and attention kernels that do
  the counted FLOPs), ``norm`` (batch and layer norm, both directions),
  ``copy`` (layout copies, concatenation, gathers), ``other ops``
  (element-wise, reductions, random numbers, AdamW's arithmetic) and ``no
  op``, the time inside no kernel: Python, skorch, autograd's bookkeeping
  and the profiler's own. ``gemm %peak`` is the FLOP rate inside the gemm
  kernels as a share of the peak: a low ``gemm`` share means the time goes
  elsewhere, a low ``gemm %peak`` that the kernels themselves run far from
  the peak (small matrices). All shares are of the profiled epoch, which
  runs slower than the timed ones by the profiler's cost per op (printed).

With 2 threads on a machine whose cores other jobs also use, a thread that
waits for a descheduled partner spins: compare the load averages printed.

Run: ``python benchmarks/bench_flops.py [--threads 1 2] [--batches 8]
[--epochs 3] [--only SimCLR MAE]``. About 4 minutes on 2 quiet CPU cores
(estimated from quiet step times); 10 minutes when other jobs share them.
Prints two tables per thread count: rates and regions, then kinds of kernel.
"""

from __future__ import annotations

import argparse
import copy
import functools
import os
import time

import torch
from _data import load_mnist1d_split
from skorch.callbacks import Callback
from torch.profiler import ProfilerActivity, profile, record_function
from torch.utils.flop_counter import (
    FlopCounterMode,
    sdpa_backward_flop_count,
    sdpa_flop_count,
)

import sk_replearn

ESTIMATORS = [
    "SimCLRTransformer",
    "MoCoTransformer",
    "BYOLTransformer",
    "SimSiamTransformer",
    "BarlowTwinsTransformer",
    "VICRegTransformer",
    "DINOTransformer",
    "SwAVTransformer",
    "MAETransformer",
    "AutoencoderTransformer",
]
#: Objective methods that draw the views (MAE's view is its random mask).
VIEW_METHODS = ("draw_views", "draw_local_views", "random_masking")
#: Kernels that do the counted FLOPs: matrix products, convolutions, attention.
GEMM_OPS = {
    "aten::mm",
    "aten::addmm",
    "aten::bmm",
    "aten::baddbmm",
    "aten::mkldnn_convolution",
    "aten::convolution_backward",
    "aten::_scaled_dot_product_flash_attention_for_cpu",
    "aten::_scaled_dot_product_flash_attention_for_cpu_backward",
}
#: Kernels that only move memory: layout copies, concatenation, gathers.
COPY_OPS = {
    "aten::copy_",
    "aten::cat",
    "aten::gather",
    "aten::index",
    "aten::index_select",
    "aten::index_put_",
    "aten::_index_put_impl_",
    "aten::scatter",
    "aten::scatter_add_",
}
REGIONS = ("views", "forward", "backward", "optim", "data", "other")
KINDS = ("gemm", "norm", "copy", "other ops", "no op")


# -- peak ------------------------------------------------------------------------
def matmul_peak(size: int = 2048, repeats: int = 10) -> float:
    """Best GFLOP/s of ``torch.mm`` of two ``(size, size)`` float32 matrices."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm-up: thread pool, packing buffers
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


# -- FLOPs -----------------------------------------------------------------------
def _cpu_sdpa(q, k, v, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(q, k, v)


def _cpu_sdpa_backward(grad_out, q, k, v, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, q, k, v)


_CPU_ATTENTION = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: (
        _cpu_sdpa_backward
    ),
}


def step_flops(module: torch.nn.Module, xb: torch.Tensor) -> int:
    """FLOPs of forward, loss and backward of a copy of ``module`` on ``xb``."""
    module = copy.deepcopy(module).train()  # its queues and counters stay put
    with FlopCounterMode(display=False, custom_mapping=_CPU_ATTENTION) as counter:
        module.loss(module(xb), xb).backward()
    return counter.get_total_flops()


# -- timing and profile ----------------------------------------------------------
class _Regions:
    """Wrappers that open a profiler region around a method while profiling."""

    def __init__(self) -> None:
        self.active = False

    def wrap(self, owner, method: str, region: str) -> None:
        fn = getattr(owner, method)

        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            if not self.active:
                return fn(*args, **kwargs)
            with record_function(region):
                return fn(*args, **kwargs)

        setattr(owner, method, wrapped)  # on the instance: the class is untouched


class _TimedBatches:
    """The net's batches, each fetch in the region ``data`` while profiling.

    An iterable, not a generator: skorch iterates the same object every epoch.
    """

    def __init__(self, iterable, regions: _Regions) -> None:
        self.iterable, self.regions = iterable, regions

    def __len__(self) -> int:
        return len(self.iterable)

    def __iter__(self):
        it = iter(self.iterable)
        while True:
            if not self.regions.active:
                batch = next(it, None)
            else:
                with record_function("data"):
                    batch = next(it, None)
            if batch is None:
                return
            yield batch


class StepProfile(Callback):
    """Times every epoch; profiles the last one inside named regions."""

    def __init__(self, profiled_epoch: int) -> None:
        self.profiled_epoch = profiled_epoch

    def initialize(self):
        self.times, self.regions, self.epoch = [], _Regions(), 0
        self.profiler = self.key_averages = None
        return self

    def on_train_begin(self, net, **kwargs):
        regions, objective = self.regions, net.module_
        for method in VIEW_METHODS:
            if hasattr(objective, method):
                regions.wrap(objective, method, "views")
        for method in ("infer", "get_loss", "train_step_single", "train_step"):
            regions.wrap(net, method, method)
        get_iterator = net.get_iterator
        net.get_iterator = lambda *a, **k: _TimedBatches(get_iterator(*a, **k), regions)

    def on_epoch_begin(self, net, **kwargs):
        self.epoch += 1
        if self.epoch == self.profiled_epoch:
            self.profiler = profile(activities=[ProfilerActivity.CPU])
            self.profiler.start()
            self.regions.active = True
        self._start = time.perf_counter()

    def on_epoch_end(self, net, **kwargs):
        self.times.append(time.perf_counter() - self._start)
        if self.profiler is not None and self.regions.active:
            self.regions.active = False
            self.profiler.stop()
            self.key_averages = self.profiler.key_averages()


def region_shares(events, wall_s: float) -> dict[str, float]:
    """Each region's share of the profiled epoch (see the module docstring)."""
    total = {e.key: e.cpu_time_total / 1e6 for e in events}  # inclusive, s
    t = {k: total.get(k, 0.0) for k in ("views", "infer", "get_loss", "data")}
    single = total["train_step_single"]
    seconds = {
        "views": t["views"],
        "forward": t["infer"] - t["views"] + t["get_loss"],
        "backward": single - t["infer"] - t["get_loss"],
        "optim": total["train_step"] - single,
        "data": t["data"],
        "other": wall_s - total["train_step"] - t["data"],
    }
    return {k: v / wall_s for k, v in seconds.items()}


def kind_shares(events, wall_s: float) -> dict[str, float]:
    """Share of the profiled epoch inside each kind of kernel (self times).

    Every ``aten::`` op's self time excludes the ops it calls, so they add up
    without double counting; ``no op`` is the time inside none of them:
    Python, skorch, the autograd engine's bookkeeping and the profiler's own.
    """
    seconds = dict.fromkeys(KINDS, 0.0)
    for e in events:
        if not e.key.startswith("aten::"):
            continue
        if e.key in GEMM_OPS:
            kind = "gemm"
        elif "batch_norm" in e.key or "layer_norm" in e.key:
            kind = "norm"
        elif e.key in COPY_OPS:
            kind = "copy"
        else:
            kind = "other ops"
        seconds[kind] += e.self_cpu_time_total / 1e6
    seconds["no op"] = wall_s - sum(seconds.values())
    return {k: v / wall_s for k, v in seconds.items()}


def _warm_profiler() -> None:
    """Start and stop the profiler once: its first start in a process is slow.

    Measured: without this the first estimator's profiled epoch took 5 times
    its timed ones (and its table rows read 80% "optim"), the others' 1.1.
    """
    with profile(activities=[ProfilerActivity.CPU]):
        torch.mm(torch.ones(64, 64), torch.ones(64, 64))


def measure(name: str, X, batches: int, epochs: int) -> dict:
    """One estimator: FLOPs, best time per step and the profile of a step."""
    cls = getattr(sk_replearn, name)
    batch_size = cls().batch_size
    X = X[: batches * batch_size]  # full batches only: every step the same work
    timer = StepProfile(profiled_epoch=epochs + 2)
    est = cls(
        input_shape=(1, 40),
        max_epochs=epochs + 2,
        callbacks=[timer],
        device="cpu",
        random_state=0,
    ).fit(X)
    xb = torch.from_numpy(X[:batch_size]).reshape(batch_size, 1, 40)
    profiled_s = timer.times[-1]
    return {
        "name": name,
        "batch": batch_size,
        "flops": step_flops(est.net_.module_, xb),
        "step_s": min(timer.times[1:-1]) / batches,  # epoch 1 is warm-up
        "profiled_step_s": profiled_s / batches,
        "regions": region_shares(timer.key_averages, profiled_s),
        "kinds": kind_shares(timer.key_averages, profiled_s),
    }


def _pct(share: float) -> str:
    return f"{100 * share:>5.1f}%"


def print_rates(rows: list[dict], peak: float, *, header: bool = False) -> None:
    """Table 1: rate and regions, one row per estimator (rows as they come)."""
    if header:
        cols = " ".join(f"{c:>8}" for c in REGIONS)
        print(
            f"{'estimator':<23} {'batch':>5} {'MFLOP':>6} {'ms/step':>7} "
            f"{'GFLOP/s':>7} {'%peak':>6} | {cols}"
        )
    for r in rows:
        gflops = r["flops"] / r["step_s"] / 1e9
        cells = " ".join(f"{_pct(r['regions'][c]):>8}" for c in REGIONS)
        print(
            f"{r['name']:<23} {r['batch']:>5} {r['flops'] / 1e6:>6.0f} "
            f"{1e3 * r['step_s']:>7.1f} {gflops:>7.1f} {_pct(gflops / peak)} | "
            f"{cells}",
            flush=True,
        )


def print_kinds(rows: list[dict], peak: float) -> None:
    """Table 2: the same profiled epochs by kind of kernel."""
    slower = [r["profiled_step_s"] / r["step_s"] - 1 for r in rows]
    print(
        "\nBy kind of kernel (self time, in the same profiled epochs, which took "
        f"{100 * min(slower):+.0f}% to {100 * max(slower):+.0f}% longer than the "
        "best timed one); gemm %peak: the FLOP rate inside the gemm kernels"
    )
    cols = " ".join(f"{c:>9}" for c in KINDS)
    print(f"{'estimator':<23} {cols} {'gemm %peak':>10}")
    for r in rows:
        gemm_s = r["kinds"]["gemm"] * r["profiled_step_s"]
        in_kernel = r["flops"] / gemm_s / 1e9 / peak
        cells = " ".join(f"{_pct(r['kinds'][c]):>9}" for c in KINDS)
        print(f"{r['name']:<23} {cells} {_pct(in_kernel):>10}", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batches", type=int, default=8, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs")
    parser.add_argument(
        "--only", nargs="+", help="estimators whose name starts with one of these"
    )
    args = parser.parse_args(argv)
    names = [n for n in ESTIMATORS if not args.only or n.startswith(tuple(args.only))]
    X = load_mnist1d_split()[0]
    _warm_profiler()
    print(
        f"torch {torch.__version__}, CPU, MNIST-1D {X.shape[0]} x {X.shape[1]}, "
        f"input_shape=(1, 40); {args.batches} full batches an epoch, best of "
        f"{args.epochs} timed epochs after one of warm-up; load average "
        f"{os.getloadavg()[0]:.1f} at the start"
    )
    for threads in args.threads:
        torch.set_num_threads(threads)
        peak = matmul_peak()
        print(
            f"\n{threads} thread(s): float32 matmul peak {peak:.1f} GFLOP/s "
            "(torch.mm 2048 x 2048, best of 10)",
            flush=True,
        )
        rows = []
        for name in names:
            rows.append(measure(name, X, args.batches, args.epochs))
            print_rates(rows[-1:], peak, header=len(rows) == 1)
        print_kinds(rows, peak)
        print(f"(load average {os.getloadavg()[0]:.1f} at the end of this table)")


if __name__ == "__main__":
    main()
