"""Benchmark: a whole daily graph on a generated N-VM estate (issue 16 "a million-VM day end to end").

1. `qlrf estate generate --scale F` writes the estate in the platform export shapes (EC2
   DescribeInstances pages, Azure VM lists, GCE aggregated lists, vSphere exports) with F chosen so
   the four platforms hold about `--vms` VMs (default 1,000,000). Timed and printed, not part of the
   graph. `--keep DIR` keeps the estate (and reuses it on the next run: generating a million VMs
   takes about two minutes).
2. `python -m pipelines.run --in-process` runs the day as `qlrf run --in-process` does (golden
   images, every platform partition, the fleet roll-up) in a fresh process on a fresh QLRF_HOME,
   while a sampler reads the resident memory of that process and its children from /proc every
   0.1 s.
3. The Dagster instance the run wrote holds every step's start and end: the bench prints each
   stage's time (summed over the platform partitions) and the peak memory seen while it ran, the
   slowest steps, and the whole day's wall time and peak against the goals (< 5 min, < 6 GiB).

    .venv/bin/python bench/bench_day.py [--vms 1000000] [--keep DIR] [--date 2026-11-30]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sidebyside import PYTHON, goal, load_line  # noqa: E402

SAMPLE_VMS = 12_200  # the sample estate at --scale 1 (qlrf.inventory.sample.DEFAULT_COUNTS)
GOAL_SECONDS = 300.0
GOAL_GIB = 6.0
PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss_bytes(root_pid: int) -> int:
    """Resident memory of `root_pid` and all its descendants (what the day holds at this instant)."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    pids, frontier = {root_pid}, [root_pid]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in pids:
                pids.add(child)
                frontier.append(child)
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


class Sampler(threading.Thread):
    """(epoch seconds, bytes) every `period` seconds until the process ends."""

    def __init__(self, pid: int, period: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.samples: list[tuple[float, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.append((time.time(), tree_rss_bytes(self.pid)))
            self.done.wait(self.period)

    def peak(self, start: float | None = None, end: float | None = None) -> int:
        window = [b for t, b in self.samples if (start is None or t >= start) and (end is None or t <= end)]
        return max(window, default=0)


def generate(estate: Path, day: date, vms: int) -> float:
    """Write the estate unless `estate` already holds one for `day`; seconds taken (0 when reused)."""
    target = estate / day.isoformat()
    if (target / "manifest.json").exists():
        return 0.0
    started = time.perf_counter()
    subprocess.run([PYTHON, "-m", "qlrf.cli", "estate", "generate", "--out", str(target),
                    "--scale", f"{vms / SAMPLE_VMS:.4f}", "--date", day.isoformat()],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def run_day(home: Path, estate: Path, day: date) -> tuple[float, Sampler, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QLRF_", "DAGSTER_"))}
    env.update(QLRF_HOME=str(home), QLRF_ESTATE_DIR=str(estate))
    started = time.perf_counter()
    proc = subprocess.Popen([PYTHON, "-m", "pipelines.run", "--date", day.isoformat(), "--in-process"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = Sampler(proc.pid)
    sampler.start()
    out, _ = proc.communicate()
    took = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    if proc.returncode != 0:
        print(out, file=sys.stderr)
        raise SystemExit(f"the day failed (exit {proc.returncode})")
    return took, sampler, out


def steps(home: Path) -> list[tuple[str, str, float, float]]:
    """(step key, partition, start, end) of every step the day ran, from the instance it wrote."""
    from dagster import DagsterInstance

    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    rows = []
    with DagsterInstance.get() as instance:
        for run in instance.get_runs():
            partition = run.tags.get("dagster/partition", "-")
            for stat in instance.get_run_step_stats(run.run_id):
                if stat.start_time and stat.end_time:
                    rows.append((stat.step_key, partition, stat.start_time, stat.end_time))
    return sorted(rows, key=lambda r: r[2])


def report(rows: list[tuple[str, str, float, float]], sampler: Sampler) -> None:
    by_stage: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for key, _partition, start, end in rows:
        by_stage[key.split("[", 1)[0]].append((end - start, sampler.peak(start, end)))  # fan-out steps as one stage
    print(f"\n{'stage (Dagster step, all partitions)':<40}{'steps':>6}{'seconds':>10}{'peak MiB':>10}")
    for key, runs in sorted(by_stage.items(), key=lambda kv: -sum(s for s, _ in kv[1])):
        print(f"{key:<40}{len(runs):>6}{sum(s for s, _ in runs):>10.1f}{max(p for _, p in runs) / 2**20:>10.0f}")
    print(f"{'(sum of steps)':<40}{len(rows):>6}{sum(e - s for _, _, s, e in rows):>10.1f}")
    print("\nslowest steps:")
    for key, partition, start, end in sorted(rows, key=lambda r: r[2] - r[3])[:8]:
        print(f"  {key.split('[', 1)[0]:<38} {partition:<20} {end - start:6.1f} s {sampler.peak(start, end) / 2**20:7.0f} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=1_000_000)
    parser.add_argument("--date", type=date.fromisoformat, default=date(2026, 11, 30))
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the generated estate here")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="qlrf-day-"))
    estate = args.keep or scratch / "estate"
    try:
        generated = generate(estate, args.date, args.vms)
        print(f"estate: {args.vms:,} VMs asked, "
              + (f"generated in {generated:.1f} s" if generated else f"reused from {estate}"))
        print(f"day: {load_line()}")
        took, sampler, out = run_day(scratch / "home", estate, args.date)
        vms = next((line.split()[1] for line in out.splitlines() if line.startswith("all ")), "?")
        rows = steps(scratch / "home")
        report(rows, sampler)
        peak_gib = sampler.peak() / 2**30
        print(f"\nwhole day: {vms} VMs, {took:.1f} s wall, peak {peak_gib:.2f} GiB (process tree RSS, "
              f"sampled every 0.1 s); {load_line()}")
        print(goal(f"goal < {GOAL_SECONDS:.0f} s", took < GOAL_SECONDS) + "; "
              + goal(f"peak < {GOAL_GIB:.0f} GiB", peak_gib < GOAL_GIB))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
