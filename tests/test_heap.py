"""glibc's heap kept between training steps on the CPU (sk_replearn._heap)."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import platform
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from sk_replearn import (
    AutoencoderTransformer,
    BERTTransformer,
    MAETransformer,
    _heap,
)

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
needs_glibc = pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")


def _huge_pages_always() -> bool:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return "[always]" in f.read()
    except OSError:
        return False


# A "step" as training has one: ten 2 MiB blocks alive at once, then all
# freed. glibc's default maps such blocks and unmaps them when freed, so the
# next step faults every page in again. The default's threshold is fixed at
# its initial 128 KiB first: left dynamic, glibc raises it after the first
# free, the blocks then come from the heap, and whether their freed pages go
# back to the kernel depends on what else the heap holds above them (one CI
# run counted 26 faults a step for the default, where 5,088 are usual).
_STEPS = textwrap.dedent(
    """
    import ctypes, json, resource, sys
    import torch
    from sk_replearn._heap import _M_MMAP_THRESHOLD, retain_heap

    ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, 128 * 1024)  # held fixed
    retained = retain_heap() if sys.argv[1] == "1" else False

    def step():
        blocks = [torch.ones(512 * 1024) for _ in range(10)]
        return float(sum(b[-1] for b in blocks))

    for _ in range(3):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        step()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    print(json.dumps({"retained": retained, "faults": (after - before) / 20}))
    """
)


def _faults_per_step(retain: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("GLIBC_TUNABLES", None)
    env.pop("SK_REPLEARN_RETAIN_HEAP", None)
    # One thread: with torch's intra-op threads the fills sometimes run (and
    # fault) in other threads' arenas, and the count drops to a fifth.
    env["OMP_NUM_THREADS"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", _STEPS, "1" if retain else "0"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@needs_glibc
@pytest.mark.skipif(
    _huge_pages_always(), reason="the heap faults in 2 MiB pages: too few to count"
)
def test_retained_heap_stops_every_step_faulting_its_memory_in_again():
    default = _faults_per_step(retain=False)
    kept = _faults_per_step(retain=True)
    assert kept["retained"] and not default["retained"]
    # 20 MiB a step is 5,120 pages of 4 KiB: glibc's default faults most in.
    assert default["faults"] > 2000
    assert kept["faults"] < 0.05 * default["faults"]


@needs_glibc
@pytest.mark.parametrize(
    "env",
    [
        {"SK_REPLEARN_RETAIN_HEAP": "0"},
        {"MALLOC_TRIM_THRESHOLD_": "131072"},
        {"MALLOC_MMAP_THRESHOLD_": "131072"},
        {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"},
    ],
)
def test_the_user_s_own_malloc_settings_are_left_alone(monkeypatch, env):
    calls = []

    class FakeLibc:
        def mallopt(self, *args):
            calls.append(("mallopt", *args))
            return 1

        def malloc_trim(self, *args):
            calls.append(("malloc_trim", *args))
            return 1

    monkeypatch.setitem(_heap._state, "libc", FakeLibc())
    monkeypatch.setitem(_heap._state, "retained", False)
    for name in (*_heap._USER_SETTINGS, "GLIBC_TUNABLES", "SK_REPLEARN_RETAIN_HEAP"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _heap.retain_heap() is False
    monkeypatch.setitem(_heap._state, "retained", True)
    _heap.release_heap()
    assert calls == []
    # without the user's settings, the same calls reach the C library
    for name in env:
        monkeypatch.delenv(name)
    monkeypatch.setitem(_heap._state, "retained", False)
    assert _heap.retain_heap() is True
    _heap.release_heap()
    assert [c[0] for c in calls] == ["mallopt", "mallopt", "malloc_trim"]


def test_retain_heap_reports_whether_the_thresholds_are_set(monkeypatch):
    for name in (*_heap._USER_SETTINGS, "GLIBC_TUNABLES", "SK_REPLEARN_RETAIN_HEAP"):
        monkeypatch.delenv(name, raising=False)
    assert _heap.retain_heap() is GLIBC
    assert _heap.retain_heap() is GLIBC  # once a process; later calls agree


class _Interrupt(Callback):
    """Interrupt training at the end of the first epoch, as Ctrl-C would."""

    def on_epoch_end(self, net, **kwargs):
        raise KeyboardInterrupt


@pytest.mark.parametrize("interrupt", [False, True])
def test_fit_on_the_cpu_retains_the_heap_and_releases_it_at_the_end(
    monkeypatch, interrupt
):
    calls = []
    monkeypatch.setattr(_heap, "retain_heap", lambda: calls.append("retain"))
    monkeypatch.setattr(_heap, "release_heap", lambda: calls.append("release"))
    X = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)
    rep = AutoencoderTransformer(
        2,
        max_epochs=3,
        device="cpu",
        random_state=0,
        callbacks=[_Interrupt()] if interrupt else None,
    )
    if interrupt:  # the heap is released however the loop ends
        with pytest.warns(RuntimeWarning, match="interrupted"):
            rep.fit(X)
        assert len(rep.net_.history) == 1
    else:
        rep.fit(X)
    assert calls == ["retain", "release"]


# -- transform on the CPU: batches within a memory budget, the heap kept ----------
def test_widest_output_measures_the_largest_submodule_output_and_unhooks():
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 100), torch.nn.ReLU(), torch.nn.Linear(100, 2)
    )
    x = torch.zeros(3, 4)
    assert _heap.widest_output(net, lambda: net(x)) == 3 * 100 * 4  # float32
    assert _heap.widest_output(net.double(), lambda: net(x.double())) == 3 * 100 * 8
    assert all(not m._forward_hooks for m in net.modules())
    with pytest.raises(RuntimeError):  # hooks come off on an error too
        _heap.widest_output(net, lambda: net(torch.zeros(3, 5, dtype=torch.float64)))
    assert all(not m._forward_hooks for m in net.modules())


def test_batch_within_budget_keeps_the_batch_that_fits_and_cuts_the_rest():
    budget = _heap.BATCH_BYTES
    assert _heap.batch_within_budget(budget / 2000, 1024) == 1024
    assert _heap.batch_within_budget(budget / 128, 1024) == 128
    assert _heap.batch_within_budget(10 * budget, 1024) == 1  # never empty
    assert _heap.batch_within_budget(0, 1024) == 1024


@pytest.mark.parametrize("fail", [False, True])
def test_kept_heap_retains_and_releases_only_when_enabled(monkeypatch, fail):
    calls = []
    monkeypatch.setattr(_heap, "retain_heap", lambda: calls.append("retain"))
    monkeypatch.setattr(_heap, "release_heap", lambda: calls.append("release"))
    with contextlib.suppress(ValueError), _heap.kept_heap(True):
        calls.append("work")
        if fail:
            raise ValueError
    with _heap.kept_heap(False):
        calls.append("alone")
    assert calls == ["retain", "work", "release", "alone"]


def _batch_rows(monkeypatch, module) -> list[int]:
    rows = []
    encode = module.encode
    monkeypatch.setattr(module, "encode", lambda xb: rows.append(len(xb)) or encode(xb))
    return rows


@pytest.fixture(scope="module")
def mae_and_signals():
    X = np.random.default_rng(0).normal(size=(600, 16)).astype(np.float32)
    mae = MAETransformer(
        input_shape=(1, 16), embed_dim=16, depth=1, max_epochs=1, random_state=0,
        device="cpu",  # the heap and the batch cuts are the CPU's
    )  # fmt: skip
    return mae.fit(X[:64]), X


def test_transform_on_the_cpu_cuts_batches_by_their_widest_activation(
    monkeypatch, mae_and_signals
):
    mae, X = mae_and_signals
    # 8 tokens of a 64-wide MLP hidden a row: 2 KiB; a budget of 64 KiB -> 32 rows
    widest = _heap.widest_output(
        mae._module(),
        lambda: mae._module().encode(torch.from_numpy(X[:2]).view(2, 1, 16)),
    )
    per_row = widest // 2
    monkeypatch.setattr(_heap, "BATCH_BYTES", 32 * per_row)
    rows = _batch_rows(monkeypatch, mae._module())
    Z = mae.transform(X)
    assert rows[0] == 2  # the probe
    assert set(rows[1:-1]) == {32} and sum(rows[1:]) == len(X)
    monkeypatch.setattr(_heap, "BATCH_BYTES", 1 << 40)  # one batch, as on a GPU
    np.testing.assert_allclose(mae.transform(X), Z, rtol=1e-5, atol=1e-6)
    rows.clear()
    mae.transform(X[:200])  # one batch: no probe
    assert rows == [200]


def test_transform_keeps_the_heap_across_batches_only(monkeypatch, mae_and_signals):
    mae, X = mae_and_signals
    calls = []
    monkeypatch.setattr(_heap, "retain_heap", lambda: calls.append("retain"))
    monkeypatch.setattr(_heap, "release_heap", lambda: calls.append("release"))
    monkeypatch.setattr(_heap, "BATCH_BYTES", 1 << 40)
    mae.transform(X)  # 600 rows: one batch of up to 1,024
    assert calls == []
    monkeypatch.setattr(_heap, "BATCH_BYTES", 1)  # a row a batch
    mae.transform(X[:300])
    assert calls == ["retain", "release"]


def test_random_masks_of_score_and_reconstruct_are_not_re_batched(
    monkeypatch, mae_and_signals
):
    mae, X = mae_and_signals
    score, (pred, mask) = mae.score(X), mae.reconstruct(X, random_state=0)
    monkeypatch.setattr(_heap, "BATCH_BYTES", 1)
    assert mae.score(X) == score
    again = mae.reconstruct(X, random_state=0)
    np.testing.assert_array_equal(again[0], pred)
    np.testing.assert_array_equal(again[1], mask)


def test_sequence_transform_on_the_cpu_cuts_batches_by_tokens(monkeypatch):
    rng = np.random.default_rng(0)
    seqs = [
        "".join(rng.choice(list("ACDEFGHIK"), rng.integers(5, 30))) for _ in range(400)
    ]
    bert = BERTTransformer(
        embed_dim=16, depth=1, num_heads=2, max_epochs=1, random_state=0, device="cpu"
    )
    bert.fit(seqs[:50])
    Z = bert.transform(seqs)
    module = bert._module()
    ids = bert._token_data(seqs, owner="test").take(torch.arange(2))
    widest = _heap.widest_output(module, lambda: module.encode(ids))
    monkeypatch.setattr(_heap, "BATCH_BYTES", 300 * widest // ids.numel())
    shapes = []
    encode = module.encode
    monkeypatch.setattr(module, "encode", lambda i: shapes.append(i.shape) or encode(i))
    np.testing.assert_allclose(bert.transform(seqs), Z, rtol=1e-5, atol=1e-6)
    assert len(shapes) > 3  # the probe, then several batches
    assert all(rows * length <= 300 for rows, length in shapes[1:-1])


def test_an_inner_transform_layer_is_measured_on_the_encoder_it_runs(monkeypatch):
    from sk_replearn.methods import _layers

    X = np.random.default_rng(1).normal(size=(400, 16)).astype(np.float32)
    mae = MAETransformer(
        input_shape=(1, 16), embed_dim=16, depth=2, max_epochs=1, random_state=0,
        device="cpu",
    ).fit(X[:64])  # fmt: skip
    mae.set_params(transform_layer=0)
    Z = mae.transform(X)
    rows = []
    features = _layers.block_features
    monkeypatch.setattr(
        _layers,
        "block_features",
        lambda e, xb, layer: rows.append(len(xb)) or features(e, xb, layer),
    )
    monkeypatch.setattr(_heap, "BATCH_BYTES", 1)  # a row a batch, if measured
    np.testing.assert_allclose(mae.transform(X), Z, rtol=1e-5, atol=1e-6)
    assert rows[0] == 2 and set(rows[1:]) == {1} and len(rows) == 1 + len(X)


@needs_glibc
def test_retain_heap_moves_the_thresholds_to_glibc_s_own_ceiling(monkeypatch):
    # The ceiling glibc's own adjustment reaches (malloc.h: M_MMAP_THRESHOLD
    # is -3, M_TRIM_THRESHOLD -1): blocks of up to 4 MiB a byte of a long (32
    # MiB on 64-bit machines) come from the heap, twice that of free heap is
    # kept, and a transform batch's widest tensor takes a quarter of the first.
    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

    monkeypatch.setitem(_heap._state, "libc", FakeLibc())
    monkeypatch.setitem(_heap._state, "retained", False)
    for name in (*_heap._USER_SETTINGS, "GLIBC_TUNABLES", "SK_REPLEARN_RETAIN_HEAP"):
        monkeypatch.delenv(name, raising=False)
    mmap_threshold = 4 * 1024 * 1024 * ctypes.sizeof(ctypes.c_long)
    assert _heap.retain_heap() is True
    assert sorted(calls) == [(-3, mmap_threshold), (-1, 2 * mmap_threshold)]
    assert _heap.BATCH_BYTES == mmap_threshold // 4
