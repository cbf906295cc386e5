"""The GPU proof run (``benchmarks/gpu_check.py``) keeps working on the CPU.

It runs once on a GPU machine; here its tiny size runs on the CPU, one
thread, so that a change in the package that breaks one of its checks shows
up before that run (about 10 s; the subprocess timeout is a safety net).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
CHECK_LINE = re.compile(r"^(\S+)\s+(PASS|FAIL|SKIP)\s+[\d.]+ s")


def _run(args: list[str], cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--size", "tiny", "--device", "cpu", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_gpu_check_tiny_on_cpu_passes_every_check(tmp_path):
    proc = _run([], tmp_path)
    output = proc.stdout + proc.stderr[-3000:]
    assert proc.returncode == 0, output
    lines = [m.groups() for m in map(CHECK_LINE.match, proc.stdout.splitlines()) if m]
    names = {name for name, _ in lines}
    assert {"device_auto", "kmeans_speed", "fit[SimCLRTransformer]"} <= names, output
    assert all(status in ("PASS", "SKIP") for _, status in lines), output
    assert proc.stdout.splitlines()[-1].startswith("summary: "), output
    assert " 0 failed" in proc.stdout.splitlines()[-1], output


def test_gpu_check_only_runs_the_matching_checks(tmp_path):
    # A short GPU run times K-means alone, or one family of checks.
    proc = _run(["--only", "kmeans_speed", "fit[PCA*]"], tmp_path)
    output = proc.stdout + proc.stderr[-3000:]
    assert proc.returncode == 0, output
    names = [m.group(1) for m in map(CHECK_LINE.match, proc.stdout.splitlines()) if m]
    assert names == ["fit[PCATransformer]", "kmeans_speed"], output
    assert "of 2 checks" in proc.stdout.splitlines()[-1], output


def test_gpu_check_only_without_a_match_says_so(tmp_path):
    proc = _run(["--only", "no_such_check"], tmp_path)
    assert proc.returncode == 2
    assert "--only no_such_check matches no check" in proc.stderr
