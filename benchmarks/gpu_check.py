"""The GPU proof run: every public estimator on a CUDA device, and K-means speed.

Each check prints one line: its name, PASS, FAIL or SKIP (with the reason),
its seconds and its key numbers; a failing check prints the end of its
traceback and the next check still runs. A summary line comes last, and the
exit status is non-zero when any check failed. The checks:

1. ``fit[<estimator>]``: every public estimator of ``sk_replearn.__all__``
   fitted and transformed on the device at small size (digits as
   ``input_shape=(1, 8, 8)`` images for the neural image estimators, digits
   rows for PCA, K-means and CMC, short strings for GPT and BERT, labels for
   the fine-tuners, a small CNN for ``PretrainedTransformer``): the output
   shape, its finiteness, and that the network's parameters live on the
   device (for PCA and K-means: that the result agrees with numpy).
2. ``precision[<estimator>,<p>]``: SimCLR, MAE and BERT with
   ``precision="bf16"`` and ``"16"`` (float16 with a gradient scaler). The
   package refuses ``"16"`` without CUDA, so on the CPU it is skipped.
3. ``device_auto``: ``device="auto"`` trains on CUDA when there is one, else
   on the CPU; ``early_stopping``: MAE at ``lr=0`` with early stopping gets
   the same validation loss at every epoch (the validation pass seeds the
   device's generators alike each time).
4. ``save_load[<estimator>]``: each estimator of check 1 saved from the
   device and loaded with ``load(path, device="cpu")`` (skipped where a
   parameter is code, which ``save`` refuses); its CPU ``transform`` must
   match the device's to ``1e-3`` of the output's scale.
5. ``finetune[<estimator>]``: ``FineTuner`` and ``FineTunerRegressor``
   ``fit`` / ``predict`` on the device.
6. ``accelerate_two_process``: a two-process ``accelerate launch`` run on two
   GPUs (skipped with fewer than two; ``tests/test_distributed.py`` runs the
   two-process CPU version).
7. ``kmeans_speed``: milliseconds per Lloyd iteration of ``KMeansTransformer``
   (``--size full``: n=10M, d=128, k=1000, float32), timed as the difference
   of two fits from the same initial centres (``n_init=1``, ``tol=0``,
   ``max_iter`` 1 and 31, fastest of 2), so that copying X to the device is
   not counted.
   Printed beside it: the physical floor (``2 n d k`` flops an iteration over
   the peak matmul rate, TF32 and FP32, measured with ``torch.mm`` and, for
   known GPUs, the data-sheet figure) and the speed-up over scikit-learn's
   ``KMeans`` on this machine's CPU, timed the same way at a smaller n
   (``--size full``: 200k) and scaled linearly in n.

8. ``kmeans_small_k``: milliseconds per Lloyd iteration with k=8 (at most
   2M samples), and those of the cluster sums alone: on CUDA the
   deterministic ``index_put_`` adds a cluster's rows one after another, so
   a few large clusters may make the sums, not the products, the cost.

Run on a GPU machine (43 s on an H200, 26 of them K-means, before check 8):
``python benchmarks/gpu_check.py --size full | tee benchmarks/results/gpu_check.txt``.
On the CPU (as the test suite does): ``python benchmarks/gpu_check.py --size
tiny --device cpu``, a few dozen samples and one epoch, under a minute.
``--only kmeans_speed`` runs just the named checks (``*`` stands for any
characters: ``--only 'fit[*]' '*MAE*'``).
``benchmarks/run_all.py`` does not run this script (it runs ``bench_*.py``).
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from functools import partial

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits
from torch import nn

import sk_replearn
from sk_replearn.classical._moments import _no_tf32, _tf32

SIZES = {
    # n: samples of the estimator checks; kmeans: (n, d, k); *_iters: the two
    # max_iter whose difference is timed, best of ``repeats``; sklearn_n:
    # scikit-learn's n.
    "tiny": {
        "n": 48,
        "max_epochs": 1,
        "batch_size": 16,
        "kmeans": (20_000, 16, 8),
        "kmeans_iters": (1, 21),
        "sklearn_iters": (1, 21),
        "sklearn_n": 20_000,
        "repeats": 3,
    },
    "full": {
        "n": 1797,  # all of digits
        "max_epochs": 2,
        "batch_size": 64,
        "kmeans": (10_000_000, 128, 1000),
        "kmeans_iters": (1, 31),
        "sklearn_iters": (1, 11),
        "sklearn_n": 200_000,
        "repeats": 2,
    },
}

#: Data-sheet dense peaks (TFLOP/s) of known GPUs: (TF32 tensor cores, FP32).
NOMINAL_PEAKS = {
    "H100 PCIe": (378.0, 51.2),
    "H100": (494.7, 66.9),  # SXM; HBM3 "80GB" boards
    "H200": (494.7, 66.9),
    "A100": (156.0, 19.5),
}

IMAGE = (1, 8, 8)
_CNN = {"encoder": "cnn", "encoder_kwargs": {"channels": (4, 8)}, "input_shape": IMAGE}
_TWO_VIEW = {**_CNN, "projection_dim": 8, "hidden_dim": 16}
_AE = {"n_components": 4, **_CNN}
_TOKENS = {"embed_dim": 8, "depth": 1, "num_heads": 2, "max_length": 32}
_MAE = {
    "input_shape": IMAGE,
    "patch_size": "auto",
    "embed_dim": 8,
    "depth": 1,
    "num_heads": 2,
    "decoder_embed_dim": 8,
    "decoder_depth": 1,
    "decoder_num_heads": 2,
}


def small_cnn() -> nn.Module:
    """A network "pre-trained elsewhere" for ``PretrainedTransformer``."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 8, 3, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


#: ``estimator -> (data, constructor arguments)``; ``data`` is "images" (digits
#: rows with an ``input_shape``), "rows", "text", "labels" or "targets". The
#: engine arguments (epochs, batch size, device, seed) are added by
#: :func:`make`. A public estimator without a row fails its check.
TABLE: dict[str, tuple[str, dict]] = {
    "AutoencoderTransformer": ("images", _AE),
    "BERTTransformer": ("text", _TOKENS),
    "BYOLTransformer": ("images", _TWO_VIEW),
    "BarlowTwinsTransformer": ("images", _TWO_VIEW),
    # views "auto": the two halves of the columns of a digits row
    "CMCTransformer": (
        "rows",
        {
            "encoder": "mlp",
            "encoder_kwargs": {"hidden_sizes": (16, 8)},
            "projection_dim": 8,
            "hidden_dim": 16,
            "transform_view": 0,
        },
    ),
    "ContextEncoderTransformer": ("images", _AE),
    "DINOTransformer": ("images", {**_TWO_VIEW, "bottleneck_dim": 4}),
    "FineTuner": ("labels", {}),
    "FineTunerRegressor": ("targets", {}),
    "GPTTransformer": ("text", _TOKENS),
    "KMeansTransformer": ("rows", {"n_clusters": 8, "n_init": 1, "max_iter": 5}),
    "MAETransformer": ("images", _MAE),
    "MoCoTransformer": ("images", {**_TWO_VIEW, "queue_size": 32}),
    "PCATransformer": ("rows", {"n_components": 4}),
    "PretrainedTransformer": ("images", {"model": small_cnn, "input_shape": IMAGE}),
    "SimCLRTransformer": ("images", _TWO_VIEW),
    "SimSiamTransformer": ("images", {**_TWO_VIEW, "predictor_dim": 4}),
    "SwAVTransformer": (
        "images",
        {**_TWO_VIEW, "n_prototypes": 4, "queue_length": 16},
    ),
    "VICRegTransformer": ("images", _TWO_VIEW),
}

PRECISION_ESTIMATORS = ("SimCLRTransformer", "MAETransformer", "BERTTransformer")


class Skip(Exception):
    """A check that does not apply here; its message is the reason."""


class Context:
    """What every check reads: the device, the sizes, the data, fitted models."""

    def __init__(self, device: torch.device, size: str) -> None:
        self.device = device
        self.size = size
        self.sizes = SIZES[size]
        n = self.sizes["n"]
        X, y = load_digits(return_X_y=True)
        self.X = (X[:n] / 16.0).astype(np.float32)  # (n, 64)
        self.y = y[:n]
        self.text = [
            "ACGT"[i % 4] * (2 + i % 5) + "GATTACA"[: 1 + i % 7] + " tac" * (i % 3)
            for i in range(n)
        ]
        self.fitted: dict[str, tuple[object, object]] = {}  # name -> (est, X)


# -- building -------------------------------------------------------------------
def public_estimators() -> dict[str, type]:
    """Every public estimator class of ``sk_replearn.__all__``, by name."""
    return {
        name: getattr(sk_replearn, name)
        for name in sorted(sk_replearn.__all__)
        if isinstance(getattr(sk_replearn, name), type)
        and hasattr(getattr(sk_replearn, name), "fit")
    }


def _accepted(cls: type, params: dict) -> dict:
    names = inspect.signature(cls).parameters
    return {k: v for k, v in params.items() if k in names}


def make(name: str, ctx: Context, device=None, **overrides):
    """A small instance of estimator ``name`` on ``device`` (the check's)."""
    cls = public_estimators()[name]
    if name not in TABLE:
        raise KeyError(f"{name} has no row in gpu_check.py's TABLE; add one")
    kind, row = TABLE[name]
    engine = {
        "max_epochs": ctx.sizes["max_epochs"],
        "batch_size": ctx.sizes["batch_size"],
        "device": str(ctx.device if device is None else device),
        "random_state": 0,
    }
    params = {**row, **_accepted(cls, engine), **overrides}
    if kind in ("labels", "targets") and "representation" not in params:
        rep = make("AutoencoderTransformer", ctx, device=device)
        params["representation"] = rep
    return cls(**params)


def data(name: str, ctx: Context):
    """``(X, y)`` for estimator ``name``: y is None unless it is supervised."""
    kind = TABLE[name][0]
    if kind == "text":
        return ctx.text, None
    if kind == "labels":
        return ctx.X, ctx.y
    if kind == "targets":
        return ctx.X, ctx.X.mean(1) * 10.0
    return ctx.X, None


def module_devices(est) -> set[str]:
    """Device types of the fitted network's parameters (empty: no network)."""
    net = getattr(est, "net_", None)
    module = getattr(net, "module_", None) or getattr(est, "encoder_", None)
    if module is None:
        return set()
    return {p.device.type for p in module.parameters()}


def _check_output(Z, n: int, est) -> None:
    if not isinstance(Z, np.ndarray) or Z.ndim != 2 or Z.shape[0] != n:
        raise AssertionError(f"transform returned {type(Z).__name__} {Z.shape}")
    if Z.dtype != np.float32:
        raise AssertionError(f"transform returned dtype {Z.dtype}, not float32")
    if hasattr(est, "get_feature_names_out"):
        width = len(est.get_feature_names_out())
        if Z.shape[1] != width:
            raise AssertionError(f"width {Z.shape[1]} != {width} feature names")
    if not np.isfinite(Z).all():
        raise AssertionError("transform output is not finite")


def _check_device(est, device: torch.device) -> str:
    found = module_devices(est)
    if found != {device.type}:
        raise AssertionError(f"parameters on {sorted(found)}, not {device.type}")
    return device.type


def _last_loss(est) -> str:
    curve = getattr(est, "loss_curve_", None)
    if not curve:
        return ""
    if not np.isfinite(curve).all():
        raise AssertionError(f"non-finite loss curve {curve}")
    return f" loss {curve[-1]:.4g}"


# -- the checks ---------------------------------------------------------------------
def check_fit(name: str, ctx: Context) -> str:
    """Fit and transform ``name`` on the device; shape, finiteness, device."""
    est = make(name, ctx)
    X, y = data(name, ctx)
    if ctx.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(ctx.device)
    est.fit(X, y)
    Z = est.transform(X)
    _check_output(Z, len(X), est)
    ctx.fitted[name] = (est, X)
    if name in ("PCATransformer", "KMeansTransformer"):
        check = _check_pca if name == "PCATransformer" else _check_kmeans
        out = check(est, X, Z)
        if ctx.device.type == "cuda":  # no network: its memory shows where it ran
            peak = torch.cuda.max_memory_allocated(ctx.device)
            if peak == 0:
                raise AssertionError("nothing was allocated on the GPU")
            out += f", {peak / 2**20:.2f} MiB peak on the GPU"
        return out
    where = _check_device(est, ctx.device)
    return f"Z {Z.shape} on {where}{_last_loss(est)}"


def _check_pca(est, X, Z) -> str:
    ref = PCA(n_components=est.n_components, svd_solver="full").fit(X)
    err = np.abs(est.explained_variance_ - ref.explained_variance_).max()
    if err > 1e-4 * ref.explained_variance_.max():
        raise AssertionError(f"explained variance off scikit-learn's by {err:.3g}")
    recon = np.abs(np.abs(Z) - np.abs(ref.transform(X))).max()
    if recon > 1e-3 * max(1.0, np.abs(Z).max()):
        raise AssertionError(f"|Z| off scikit-learn's by {recon:.3g}")
    return f"Z {Z.shape}, explained variance off scikit-learn's by {err:.2g}"


def _check_kmeans(est, X, Z) -> str:
    C = est.cluster_centers_.astype(np.float64)
    dist = np.sqrt(((X[:, None, :].astype(np.float64) - C[None]) ** 2).sum(-1))
    err = np.abs(Z - dist).max()
    if err > 1e-3 * max(1.0, dist.max()):
        raise AssertionError(f"transform off numpy's distances by {err:.3g}")
    labels = est.predict(X)
    rows = np.arange(len(X))
    # float32 on the device against float64 here: only near-ties may differ
    gap = dist[rows, labels] - dist.min(1)
    if gap.max() > 1e-4 * max(1.0, dist.max()):
        raise AssertionError(f"predict is not the nearest centre (gap {gap.max():.3g})")
    return f"Z {Z.shape}, distances off numpy's by {err:.2g}"


def check_precision(name: str, precision: str, ctx: Context) -> str:
    """Fit ``name`` in mixed precision; the loss and output stay finite."""
    if precision == "16" and ctx.device.type != "cuda":
        raise Skip("precision='16' (float16 with a gradient scaler) is CUDA-only")
    est = make(name, ctx, precision=precision)
    X, y = data(name, ctx)
    est.fit(X, y)
    Z = est.transform(X)
    _check_output(Z, len(X), est)
    where = _check_device(est, ctx.device)
    return f"Z {Z.shape} on {where}{_last_loss(est)}"


def check_device_auto(ctx: Context) -> str:
    """``device="auto"`` trains on CUDA when there is one."""
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    est = make("SimCLRTransformer", ctx, device="auto")
    est.fit(ctx.X)
    found = module_devices(est)
    if found != {expected}:
        raise AssertionError(f"device='auto' trained on {sorted(found)}")
    return f"trained on {expected}"


def check_early_stopping(ctx: Context) -> str:
    """The validation pass draws the same masks every epoch, on the device too.

    MAE at ``lr=0`` (nothing learns, and its layer norms keep no running
    statistics) with ``early_stopping=True``: every epoch's validation loss
    must be the same, as the validation pass seeds the generators of the
    net's device alike at every epoch.
    """
    est = make("MAETransformer", ctx, lr=0.0, early_stopping=True, max_epochs=3)
    est.fit(ctx.X)
    losses = [float(v) for v in est.history_[:, "valid_loss"]]
    if len(set(losses)) != 1:
        raise AssertionError(f"validation losses differ at lr=0: {losses}")
    where = _check_device(est, ctx.device)
    return f"{len(losses)} equal validation losses ({losses[0]:.4f}) on {where}"


def check_save_load(name: str, ctx: Context) -> str:
    """Save from the device, load on the CPU, compare ``transform``."""
    if name not in ctx.fitted:
        raise Skip("its fit check failed")
    est, X = ctx.fitted[name]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.pt")
        try:
            est.save(path)
        except TypeError as exc:  # a parameter that is code: pickle it instead
            raise Skip(" ".join(str(exc).split())[:200]) from exc
        loaded = type(est).load(path, device="cpu")
    if module_devices(est):  # KMeans and PCA keep numpy arrays, no module
        _check_device(loaded, torch.device("cpu"))
    a, b = est.transform(X), loaded.transform(X)
    err = float(np.abs(a - b).max())
    scale = max(1.0, float(np.abs(a).max()))
    rtol = _device_rtol(ctx.device)
    if err > rtol * scale:
        raise AssertionError(
            f"CPU transform off the device's by {err:.3g} > {rtol} * {scale:.3g}"
        )
    out = f"max |device - cpu| {err:.2g} (allowed {rtol} * {scale:.3g})"
    if hasattr(est, "predict"):
        if name == "FineTuner":  # labels may flip at near ties: compare probabilities
            pa, pb = est.predict_proba(X), loaded.predict_proba(X)
            agree = float(np.mean(est.predict(X) == loaded.predict(X)))
            out += f", labels agree {agree:.1%}"
        else:
            pa, pb = est.predict(X), loaded.predict(X)
        scale = max(1.0, float(np.abs(pa).max()))
        if np.abs(pa - pb).max() > rtol * scale:
            raise AssertionError("CPU predictions differ from the device's")
    return out


def _device_rtol(device: torch.device) -> float:
    """Tolerance of device against CPU outputs, relative to their scale.

    1e-3; 1e-2 on CUDA, where cuDNN runs float32 convolutions in TF32 by
    default (its 10-bit mantissa alone errs by about 5e-4 a product). The
    setting is not read: after TF32 is set through torch's newer
    ``fp32_precision`` API, reading the legacy flags raises.
    """
    return 1e-2 if device.type == "cuda" else 1e-3


def check_queries(ctx: Context) -> str:
    """GPT's ``predict_next`` and BERT's ``fill_mask`` on the device.

    The fitted models' candidates against those of their copies loaded on
    the CPU: the same probabilities to float32 precision.
    """
    parts = []
    for name, query in (
        ("GPTTransformer", "predict_next"),
        ("BERTTransformer", "fill_mask"),
    ):
        if name not in ctx.fitted:
            raise Skip(f"the fit check of {name} failed")
        est, X = ctx.fitted[name]
        texts = [t[:2] + "[MASK]" + t[3:] for t in X[:16]]  # prompts for GPT
        # Four candidates, so that the third can be checked for a tie with
        # the next one down.
        got = getattr(est, query)(texts, top_k=4)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.pt")
            est.save(path)
            cpu = type(est).load(path, device="cpu")
        want = getattr(cpu, query)(texts, top_k=4)
        # (queries, 4, 2): a prompt's or a mask's candidates, best first.
        flats = (np.array(c, dtype=object).reshape(-1, 4, 2) for c in (got, want))
        (n_got, p_got), (n_want, p_want) = (
            (flat[..., 0], flat[..., 1].astype(float)) for flat in flats
        )
        err = np.abs(p_got - p_want).max()
        if err > 1e-3:
            raise AssertionError(f"{query} off the CPU copy's by {err:.3g}")
        # Another of the first three tokens only where its probability ties
        # with another candidate of the same query to that precision.
        for q, rank in zip(*np.nonzero(n_got[:, :3] != n_want[:, :3])):
            if np.isclose(p_want[q], p_got[q, rank], atol=1e-3).sum() < 2:
                raise AssertionError(
                    f"{query} lists {n_got[q, rank]} for {n_want[q, rank]}"
                )
        parts.append(f"{query} off the CPU's by {err:.2g}")
    return ", ".join(parts)


def check_finetune(name: str, ctx: Context) -> str:
    """The fine-tuner trains and predicts on the device."""
    est = make(name, ctx)
    X, y = data(name, ctx)
    est.fit(X, y)
    pred = est.predict(X)
    if pred.shape != (len(X),):
        raise AssertionError(f"predict returned shape {pred.shape}")
    where = _check_device(est, ctx.device)
    if name == "FineTuner":
        if not set(np.unique(pred)) <= set(est.classes_):
            raise AssertionError("predict returned labels outside classes_")
        proba = est.predict_proba(X)
        if not np.allclose(proba.sum(1), 1.0, atol=1e-4):
            raise AssertionError("predict_proba rows do not sum to 1")
        return f"on {where}, training accuracy {np.mean(pred == y):.2f}"
    if not np.isfinite(pred).all():
        raise AssertionError("predict is not finite")
    return f"on {where}, training R^2 {est.score(X, y):.3f}"


_LAUNCHED = """
import sys
import numpy as np
import torch
from accelerate import Accelerator
from sk_replearn import SimCLRTransformer

acc = Accelerator()
X = np.random.default_rng(0).normal(size=(128, 16)).astype(np.float32)
est = SimCLRTransformer(
    encoder="mlp", encoder_kwargs={"hidden_sizes": (32, 8)}, views=None,
    projection_dim=8, max_epochs=2, batch_size=16, random_state=0, accelerator=acc,
).fit(X)
# parameters only: each rank updates its own BatchNorm running statistics
state = {k: v.detach().cpu() for k, v in est.net_.module_.named_parameters()}
devices = sorted({str(p.device) for p in est.net_.module_.parameters()})
torch.save(
    {"state": state, "devices": devices, "loss": est.loss_curve_},
    f"{sys.argv[1]}/rank{acc.process_index}.pt",
)
acc.end_training()  # destroys the process group before exit
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_accelerate(ctx: Context) -> str:
    """Two processes on two GPUs train one SimCLR with ``accelerate``."""
    if ctx.device.type != "cuda":
        raise Skip("a CUDA check (tests/test_distributed.py runs it on the CPU)")
    if torch.cuda.device_count() < 2:
        raise Skip(f"needs 2 CUDA devices, found {torch.cuda.device_count()}")
    launcher = shutil.which("accelerate", path=os.path.dirname(sys.executable))
    if launcher is None:
        raise Skip("the accelerate launcher is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "train.py")
        with open(script, "w") as f:
            f.write(textwrap.dedent(_LAUNCHED))
        env = {**os.environ, "HF_HOME": os.path.join(tmp, "hf")}
        cmd = [
            launcher, "launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
            script, tmp,
        ]  # fmt: skip
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise AssertionError(
                f"accelerate launch exited {proc.returncode}:\n{proc.stderr[-2000:]}"
            )
        ranks = [
            torch.load(os.path.join(tmp, f"rank{r}.pt"), weights_only=False)
            for r in range(2)
        ]
    devices = [r["devices"] for r in ranks]
    if devices[0] == devices[1] or not all(d[0].startswith("cuda") for d in devices):
        raise AssertionError(f"ranks trained on {devices}")
    diff = max(
        float((ranks[0]["state"][k].float() - ranks[1]["state"][k].float()).abs().max())
        for k in ranks[0]["state"]
    )
    if diff > 1e-5:
        raise AssertionError(f"the ranks' weights differ by {diff:.3g}")
    return f"ranks on {devices}, weights agree to {diff:.1g}, loss {ranks[0]['loss']}"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _mm_peak(device: torch.device, tf32: bool) -> float:
    """Measured float32 ``torch.mm`` rate, TFLOP/s, with or without TF32."""
    m, reps = (8192, 50) if device.type == "cuda" else (512, 20)
    with _tf32(device, on=tf32):
        a = torch.randn(m, m, device=device)
        b = torch.randn(m, m, device=device)
        torch.mm(a, b)  # warm up
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b)
        _sync(device)
        return 2 * m**3 * reps / (time.perf_counter() - t0) / 1e12


def _timed_iterations(fit, n_iter: tuple[int, int], repeats: int, device):
    """Seconds per iteration: the difference of two fits of ``n_iter`` steps.

    ``fit(max_iter)`` returns the iterations it ran. Each fit is timed
    ``repeats`` times and the fastest counts (a busy machine adds time, never
    removes it). Returns the seconds per iteration and the iterations counted.
    """
    best, done = [np.inf, np.inf], [0, 0]
    for _ in range(repeats):
        for i, max_iter in enumerate(n_iter):
            _sync(device)
            t0 = time.perf_counter()
            done[i] = fit(max_iter)
            _sync(device)
            best[i] = min(best[i], time.perf_counter() - t0)
    if done[1] <= done[0]:
        raise AssertionError(f"converged after {done[1]} iterations: nothing to time")
    return (best[1] - best[0]) / (done[1] - done[0]), done[1] - done[0]


def _cores() -> int:
    """CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _blobs(n: int, d: int, k: int, device: torch.device) -> np.ndarray:
    """float32 blobs (n, d), drawn on the device (fast at n=10M), on the host."""
    g = torch.Generator(device=device).manual_seed(0)
    # Centres close together: Lloyd keeps moving labels for many iterations.
    centers = 0.1 * torch.randn(k, d, generator=g, device=device)  # (k, d)
    Xt = torch.randn(n, d, generator=g, device=device)  # (n, d)
    Xt += centers[torch.randint(0, k, (n,), generator=g, device=device)]
    X = Xt.cpu().numpy()
    del Xt, centers
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return X


def _products_alone(n: int, rows: int, d: int, k: int, device, repeats: int) -> float:
    """Seconds of one iteration's distance products, nothing else.

    The ``addmm`` of :func:`sk_replearn.classical._assign._nearest` on blocks
    of ``rows`` rows (those of ``fit``'s Lloyd pass), enough blocks to cover
    n rows, float32 without TF32 as in ``fit``; fastest of ``repeats``. What
    a Lloyd iteration takes beyond this goes to the argmin, the sums and
    Python.
    """
    rows = min(n, rows)
    g = torch.Generator(device=device).manual_seed(0)
    xb = torch.randn(rows, d, generator=g, device=device)
    c_t = torch.randn(d, k, generator=g, device=device)
    c_sq = c_t.square().sum(0)
    buf = xb.new_empty(rows, k)
    blocks = -(-n // rows)
    best = np.inf
    with _no_tf32(device):
        torch.addmm(c_sq, xb, c_t, alpha=-2.0, out=buf)  # warm up
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(blocks):
                torch.addmm(c_sq, xb, c_t, alpha=-2.0, out=buf)
            _sync(device)
            best = min(best, time.perf_counter() - t0)
    return best * n / (blocks * rows)


def check_kmeans_speed(ctx: Context) -> str:
    """Milliseconds per Lloyd iteration, the floor, and scikit-learn's CPU time."""
    n, d, k = ctx.sizes["kmeans"]
    device, repeats = ctx.device, ctx.sizes["repeats"]
    X = _blobs(n, d, k, device)
    init = X[np.random.default_rng(1).choice(n, k, replace=False)]  # (k, d)

    last = {}  # the estimator ours() fitted last (its fitted state is large)

    def ours(max_iter: int, rows: int = n) -> int:
        est = sk_replearn.KMeansTransformer(
            n_clusters=k, init=init, n_init=1, max_iter=max_iter, tol=0.0,
            device=str(device),
        )  # fmt: skip
        last["est"] = est.fit(X[:rows])
        return est.n_iter_

    ours(2, min(n, 50_000))  # warm up the kernels
    per_iter, counted = _timed_iterations(
        ours, ctx.sizes["kmeans_iters"], repeats, device
    )

    block = last["est"]._lloyd_rows()
    products = _products_alone(n, block, d, k, device, repeats)

    n_sk = min(n, ctx.sizes["sklearn_n"])
    threads = _cores() if ctx.size == "full" else torch.get_num_threads()

    def sklearn(max_iter: int) -> int:
        ref = KMeans(
            n_clusters=k, init=init, n_init=1, max_iter=max_iter, tol=0.0,
            algorithm="lloyd",
        )  # fmt: skip
        return int(ref.fit(X[:n_sk]).n_iter_)

    with threadpool_limits(limits=threads):
        sklearn(2)  # warm up, as ours
        per_iter_sk, counted_sk = _timed_iterations(
            sklearn, ctx.sizes["sklearn_iters"], repeats, torch.device("cpu")
        )
    per_iter_sk_scaled = per_iter_sk * n / n_sk

    flops = 2.0 * n * d * k  # the distance matmul of one iteration
    line = (
        f"n={n} d={d} k={k} float32: {1e3 * per_iter:.3g} ms/iteration "
        f"({counted} iterations timed, best of {repeats}; "
        f"{flops / per_iter / 1e12:.3g} TFLOP/s); the distance products of "
        f"every row, alone, {1e3 * products:.3g} ms"
    )
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        tf32, fp32 = _mm_peak(device, True), _mm_peak(device, False)
        line += (
            f"; floor {1e3 * flops / (tf32 * 1e12):.3g} ms at the measured TF32 "
            f"mm rate {tf32:.0f} TFLOP/s, {1e3 * flops / (fp32 * 1e12):.3g} ms "
            f"at FP32 {fp32:.0f} TFLOP/s (torch float32 matmul precision "
            f"{torch.get_float32_matmul_precision()!r})"
        )
        nominal = next((v for key, v in NOMINAL_PEAKS.items() if key in name), None)
        if nominal:
            line += (
                f"; {name} data sheet {nominal[0]:.0f} / {nominal[1]:.0f} "
                f"TFLOP/s: floor {flops / nominal[0] / 1e9:.3g} ms TF32, "
                f"{flops / nominal[1] / 1e9:.3g} ms FP32"
            )
    else:
        peak = _mm_peak(device, False)
        line += (
            f"; floor {1e3 * flops / (peak * 1e12):.3g} ms at the measured "
            f"float32 mm rate {peak:.3g} TFLOP/s"
        )
    return line + (
        f"; scikit-learn KMeans on the CPU ({threads} threads): "
        f"{1e3 * per_iter_sk:.3g} ms/iteration at n={n_sk} ({counted_sk} timed), "
        f"scaled linearly in n to n={n}: {1e3 * per_iter_sk_scaled:.4g} ms, "
        f"speed-up {per_iter_sk_scaled / per_iter:.3g}x"
    )


def _sums_alone(n: int, d: int, k: int, device, repeats: int) -> float:
    """Seconds of one iteration's cluster sums, nothing else.

    :func:`sk_replearn.classical._assign._sum_rows_by_label` of n rows with
    uniform labels into (k, d) float64 sums, as a Lloyd pass calls it. On
    CUDA it is the sort-based ``index_put_(accumulate=True)``, which adds
    the rows of one cluster one after another: with few clusters and many
    rows, the sums may take longer than the distance products.
    """
    from sk_replearn.classical._assign import _sum_rows_by_label

    g = torch.Generator(device=device).manual_seed(0)
    rows = torch.randn(n, d, generator=g, device=device, dtype=torch.float64)
    labels = torch.randint(0, k, (n,), generator=g, device=device)
    out = rows.new_zeros(k, d)
    _sum_rows_by_label(out, labels, rows)  # warm up
    best = np.inf
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        _sum_rows_by_label(out.zero_(), labels, rows)
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def check_kmeans_small_k(ctx: Context) -> str:
    """Milliseconds per Lloyd iteration with 8 clusters, and the sums' share."""
    n, d, _ = ctx.sizes["kmeans"]
    n = min(n, 2_000_000)  # (n, d) float64 rows for the sums alone
    k, device, repeats = 8, ctx.device, ctx.sizes["repeats"]
    X = _blobs(n, d, k, device)
    init = X[np.random.default_rng(1).choice(n, k, replace=False)]  # (k, d)

    def ours(max_iter: int) -> int:
        est = sk_replearn.KMeansTransformer(
            n_clusters=k, init=init, n_init=1, max_iter=max_iter, tol=0.0,
            device=str(device),
        )  # fmt: skip
        return est.fit(X).n_iter_

    ours(2)  # warm up the kernels
    per_iter, counted = _timed_iterations(
        ours, ctx.sizes["kmeans_iters"], repeats, device
    )
    sums = _sums_alone(n, d, k, device, repeats)
    return (
        f"n={n} d={d} k={k} float32: {1e3 * per_iter:.3g} ms/iteration "
        f"({counted} iterations timed, best of {repeats}), of which the "
        f"cluster sums alone {1e3 * sums:.3g} ms"
    )


# -- running ------------------------------------------------------------------------
def checks(ctx: Context) -> list[tuple[str, callable]]:
    """``(name, thunk)`` of every check, in the order they run."""
    out = []
    for name in public_estimators():
        out.append((f"fit[{name}]", lambda n=name: check_fit(n, ctx)))
    for name in PRECISION_ESTIMATORS:
        for p in ("bf16", "16"):
            thunk = partial(check_precision, name, p, ctx)
            out.append((f"precision[{name},{p}]", thunk))
    out.append(("device_auto", lambda: check_device_auto(ctx)))
    out.append(("early_stopping", lambda: check_early_stopping(ctx)))
    for name in public_estimators():
        out.append((f"save_load[{name}]", lambda n=name: check_save_load(n, ctx)))
    out.append(("queries", lambda: check_queries(ctx)))
    for name in ("FineTuner", "FineTunerRegressor"):
        out.append((f"finetune[{name}]", lambda n=name: check_finetune(n, ctx)))
    out.append(("accelerate_two_process", lambda: check_accelerate(ctx)))
    out.append(("kmeans_speed", lambda: check_kmeans_speed(ctx)))
    out.append(("kmeans_small_k", lambda: check_kmeans_small_k(ctx)))
    return out


def _matches(name: str, pattern: str) -> bool:
    """Whether a check's name matches ``pattern``, where ``*`` is any text.

    Brackets are literal (the names hold them: ``fit[PCATransformer]``).
    """
    regex = ".*".join(map(re.escape, pattern.split("*")))
    return re.fullmatch(regex, name) is not None


def run_check(name: str, thunk) -> str:
    """Run one check, print its line (and a failure's traceback tail)."""
    t0 = time.perf_counter()
    try:
        info, status = thunk(), "PASS"
    except Skip as reason:
        info, status = f"({reason})", "SKIP"
    except Exception as exc:  # noqa: BLE001 - one failure must not stop the rest
        info, status = f"{type(exc).__name__}: {exc}".splitlines()[0], "FAIL"
        tail = traceback.format_exc().rstrip().splitlines()[-12:]
    seconds = time.perf_counter() - t0
    print(f"{name:<44} {status}  {seconds:7.2f} s  {info}", flush=True)
    if status == "FAIL":
        print(textwrap.indent("\n".join(tail), "    | "), flush=True)
    return status


def header(device: torch.device, size: str) -> str:
    """One line: versions, the device and its settings."""
    gpu = (
        f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(device)}"
        f" (capability {'.'.join(map(str, torch.cuda.get_device_capability(device)))})"
        if device.type == "cuda"
        else "no GPU used"
    )
    return (
        f"# gpu_check.py --size {size} --device {device}: sk_replearn "
        f"{sk_replearn.__version__}, torch {torch.__version__} (CUDA "
        f"{torch.version.cuda}), {gpu}, CUDA available "
        f"{torch.cuda.is_available()}, {os.cpu_count()} CPUs, "
        f"{torch.get_num_threads()} torch threads"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="PATTERN",
        help="run only the checks whose names match one of these patterns, "
        "where * stands for any characters: kmeans_speed, 'fit[*]', '*MAE*'",
    )
    args = parser.parse_args(argv)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu")
        if args.device == "auto"
        else args.device
    )
    if device.type == "cuda" and not torch.cuda.is_available():
        print("--device cuda but torch sees no CUDA device", file=sys.stderr)
        return 2
    print(header(device, args.size), flush=True)
    ctx = Context(device, args.size)
    t0 = time.perf_counter()
    selected = [
        (name, thunk)
        for name, thunk in checks(ctx)
        if args.only is None or any(_matches(name, p) for p in args.only)
    ]
    if not selected:
        print(f"--only {' '.join(args.only)} matches no check", file=sys.stderr)
        return 2
    statuses = [run_check(name, thunk) for name, thunk in selected]
    counts = {s: statuses.count(s) for s in ("PASS", "FAIL", "SKIP")}
    print(
        f"summary: {counts['PASS']} passed, {counts['FAIL']} failed, "
        f"{counts['SKIP']} skipped of {len(statuses)} checks on {device} in "
        f"{time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
