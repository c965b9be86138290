"""Benchmark: what launching through the code location costs `qlrf run` against the in-process runs it replaced.

Side by side, interleaved, each run a fresh process in a fresh QLRF_HOME over one pre-generated sample
estate: the base side is a source tree of the commit before the change (default eab270a, extracted with
`git archive`, run with this checkout's virtualenv), the other side is this checkout. Prints each run
and the medians with their ratio, plus the load average, because a shared machine moves both sides.

    python bench/bench_run_launch.py [--rounds N] [--base COMMIT] [--platform P ...]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAY = "2026-11-20"


def extract(commit: str, into: Path) -> Path:
    archive = into / "base.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), commit], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "base", filter="data")
    return into / "base"


def one_run(source: Path, estate: Path, home: Path, platforms: list[str]) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QLRF_", "DAGSTER_"))}
    env.update(QLRF_HOME=str(home), QLRF_ESTATE_DIR=str(estate), PYTHONPATH=str(source))
    argv = [sys.executable, "-m", "pipelines.run", "--date", DAY, *(a for p in platforms for a in ("--platform", p))]
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=source, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{source}: exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    graph = re.search(r"graph complete in ([\d.]+)s", proc.stdout)
    return took, graph.group(1) if graph else "?"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--base", default="eab270a")
    parser.add_argument("--platform", action="append", default=None)
    args = parser.parse_args()
    platforms = args.platform or ["vsphere"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        base = extract(args.base, tmp_path)
        sys.path.insert(0, str(ROOT))
        from qlrf.inventory.sample import ensure_estate

        estate = tmp_path / "estate"
        ensure_estate(estate, __import__("datetime").date.fromisoformat(DAY))
        sides = {"in-process (base)": base, "launched (this tree)": ROOT}
        times: dict[str, list[float]] = {name: [] for name in sides}
        for round_ in range(args.rounds):
            order = list(sides.items()) if round_ % 2 == 0 else list(reversed(sides.items()))
            for name, source in order:
                home = tmp_path / f"home-{round_}-{name.split()[0]}"
                took, graph = one_run(source, estate, home, platforms)
                times[name].append(took)
                print(f"round {round_ + 1} {name:<22} {took:6.1f} s wall (graph {graph} s), load {os.getloadavg()[0]:.1f}",
                      flush=True)
        medians = {name: statistics.median(values) for name, values in times.items()}
        base_median, ours = medians["in-process (base)"], medians["launched (this tree)"]
        print(f"median wall, {', '.join(platforms)} + golden images + fleet report: in-process {base_median:.1f} s, "
              f"launched {ours:.1f} s, ratio {ours / base_median:.2f}x over {args.rounds} round(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
