"""Benchmark the canary judgement: 10 metrics x 200 data points per side (goal < 50 ms).

    .venv/bin/python bench/bench_canary.py [--processes 3] [--runs 50]

Each of ``--processes`` fresh Python processes builds the config and the series (2 canary and 2
baseline targets x 100 points per metric, two metrics clearly worse on the canary), judges once
(that first call pays scipy's import and is reported apart), then times ``--runs`` judgements and
prints their median. The parent prints every process's line and the median of the medians with
the load average: this machine is shared and its other work moves the numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_MS = 50.0
METRICS, TARGETS, POINTS = 10, 2, 100  # 2 targets x 100 points = 200 points per side


def child(runs: int) -> None:
    import numpy as np

    from qlrf.remediation.canary.config import parse_canary
    from qlrf.remediation.canary.judge import MetricData, Series, judge

    rng = np.random.default_rng(12)
    times = tuple(1_795_900_000.0 + 60 * i for i in range(POINTS))
    config = parse_canary({"metrics": [{"name": f"m{i}", "source": "cloudwatch", "metric": f"M{i}",
                                        "critical": i == 0, "group": "a" if i < 5 else "b"} for i in range(METRICS)],
                           "groups": {"a": 1, "b": 2}})

    def side(mu: float, tag: str) -> dict[str, Series]:
        return {f"{tag}{k}": Series(times, tuple(rng.normal(mu, 5, POINTS))) for k in range(TARGETS)}

    data = {f"m{i}": MetricData(side(80.0 if i in (3, 7) else 50.0, "c"), side(50.0, "b")) for i in range(METRICS)}
    t0 = time.perf_counter()
    first = judge(config, data)
    first_ms = (time.perf_counter() - t0) * 1000
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        judge(config, data)
        samples.append((time.perf_counter() - t0) * 1000)
    n = sum(m.n_canary for m in first.metrics) // METRICS
    print(f"{statistics.median(samples):.2f} {first_ms:.1f} {first.verdict} {first.score:.1f} {n}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.runs)
    medians = []
    for p in range(args.processes):
        out = subprocess.run([sys.executable, __file__, "--child", "--runs", str(args.runs)], capture_output=True,
                             text=True, check=True).stdout.split()
        median, first, verdict, score, n = float(out[0]), float(out[1]), out[2], float(out[3]), int(out[4])
        medians.append(median)
        print(f"process {p + 1}: median {median:.2f} ms over {args.runs} judgements ({METRICS} metrics x {n} points "
              f"per side); first call {first:.0f} ms (scipy import); verdict {verdict}, score {score:.1f}")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    overall = statistics.median(medians)
    print(f"canary judgement, {METRICS} metrics x {TARGETS * POINTS} points per side: median {overall:.2f} ms "
          f"(goal < {GOAL_MS:g} ms: {'met' if overall < GOAL_MS else 'NOT met'}); load average {load} "
          f"({os.cpu_count()} cores, shared machine)")


if __name__ == "__main__":
    main()
