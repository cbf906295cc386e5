"""glibc's heap kept between training steps on the CPU (sk_replearn._heap)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from skorch.callbacks import Callback

from sk_replearn import AutoencoderTransformer, _heap, training

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
needs_glibc = pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")


def _huge_pages_always() -> bool:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return "[always]" in f.read()
    except OSError:
        return False


# A "step" as training has one: ten 2 MiB blocks alive at once, then all
# freed. glibc's default gives the freed top of the heap back to the kernel,
# so the next step faults every page in again.
_STEPS = textwrap.dedent(
    """
    import json, resource, sys
    import torch
    from sk_replearn._heap import retain_heap

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
    monkeypatch.setattr(training, "retain_heap", lambda: calls.append("retain"))
    monkeypatch.setattr(training, "release_heap", lambda: calls.append("release"))
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
