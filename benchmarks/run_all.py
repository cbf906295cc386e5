"""Run every benchmark and save what each prints, for the documentation.

Each ``benchmarks/bench_*.py`` runs, one after the other, as its own process
with its default arguments and ``OMP_NUM_THREADS=1``; its standard output is
saved verbatim to ``benchmarks/results/<stem>.txt`` under one header line
(date, machine, CPU count and model, torch version, wall time, exit
status). The benchmarks page of the documentation (``docs/benchmarks.rst``)
shows these files as they are, so its tables are never typed by hand.

Run: ``python benchmarks/run_all.py [--only bench_ssl bench_mae ...]``.
All of them take two to three hours on 2 CPU cores. A benchmark that fails
still gets its file (what it printed, then its exit status and the end of
its standard error), the others still run, and the exit status of this
script is non-zero.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def benchmarks() -> list[str]:
    """Stems of the benchmark scripts, in name order."""
    return sorted(p.stem for p in HERE.glob("bench_*.py"))


def cpu_model() -> str:
    """The processor's name as Linux reports it, else :func:`platform.processor`.

    Two machines of one architecture can differ twofold in speed, so a
    results file names the processor it was measured on.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown processor"


def header(stem: str, seconds: float, returncode: int) -> str:
    """One line saying when, where and with what the benchmark ran."""
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = "not installed"
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return (
        f"# {stem}.py, {now}, {platform.machine()} {platform.system()}, "
        f"{os.cpu_count()} CPUs ({cpu_model()}), python {platform.python_version()}, "
        f"torch {torch_version}, OMP_NUM_THREADS=1, {seconds:.0f} s, "
        f"exit status {returncode}\n"
    )


def run(stem: str) -> int:
    """Run one benchmark; write its results file; return its exit status."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    print(f"{stem} ...", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(HERE / f"{stem}.py")],
        cwd=HERE.parent,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    text = header(stem, seconds, proc.returncode) + proc.stdout
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.splitlines()[-30:])
        text += f"\n# FAILED with exit status {proc.returncode}; end of stderr:\n"
        text += tail + "\n"
    RESULTS.mkdir(exist_ok=True)
    partial = RESULTS / f"{stem}.txt.partial"
    partial.write_text(text, encoding="utf-8")
    partial.replace(RESULTS / f"{stem}.txt")  # never leave a half-written file
    status = "ok" if proc.returncode == 0 else f"FAILED ({proc.returncode})"
    print(f"{stem}: {status}, {seconds:.0f} s", flush=True)
    return proc.returncode


def main() -> None:
    available = benchmarks()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", nargs="+", choices=available, help="run these benchmarks only"
    )
    args = parser.parse_args()
    failures = [stem for stem in args.only or available if run(stem) != 0]
    if failures:
        sys.exit(f"failed: {', '.join(failures)}")


if __name__ == "__main__":
    main()
