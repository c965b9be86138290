"""Benchmark: `qlrf run`'s two modes side by side, launched through the code location vs in process.

Interleaved (A B A B ...), each run a fresh `python -m pipelines.run` process of this checkout in a
fresh QLRF_HOME over one pre-generated sample estate. Prints each run, the medians with their ratio,
and the load average, because a shared machine moves both sides.

    python bench/bench_run_launch.py [--rounds N] [--platform P ...]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAY = "2026-11-20"
MODES = {"in-process": "--in-process", "launched": "--launch"}


def one_run(flag: str, estate: Path, home: Path, platforms: list[str]) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QLRF_", "DAGSTER_"))}
    env.update(QLRF_HOME=str(home), QLRF_ESTATE_DIR=str(estate))
    argv = [sys.executable, "-m", "pipelines.run", "--date", DAY, flag, *(a for p in platforms for a in ("--platform", p))]
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{flag}: exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    graph = re.search(r"graph complete in ([\d.]+)s", proc.stdout)
    return took, graph.group(1) if graph else "?"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--platform", action="append", default=None)
    args = parser.parse_args()
    platforms = args.platform or ["vsphere"]
    sys.path.insert(0, str(ROOT))
    from qlrf.inventory.sample import ensure_estate

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        estate = tmp_path / "estate"
        ensure_estate(estate, date.fromisoformat(DAY))
        times: dict[str, list[float]] = {name: [] for name in MODES}
        for round_ in range(args.rounds):
            for name, flag in MODES.items():
                took, graph = one_run(flag, estate, tmp_path / f"home-{round_}-{name}", platforms)
                times[name].append(took)
                print(f"round {round_ + 1} {name:<10} {took:6.1f} s wall (graph {graph} s), load {os.getloadavg()[0]:.1f}",
                      flush=True)
        medians = {name: statistics.median(values) for name, values in times.items()}
        inproc, launched = medians["in-process"], medians["launched"]
        print(f"median wall, {', '.join(platforms)} + golden images + fleet report: in-process {inproc:.1f} s, "
              f"launched {launched:.1f} s, ratio {launched / inproc:.2f}x over {args.rounds} round(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
