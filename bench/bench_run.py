"""Benchmark: `qlrf run` for the full sample estate on the embedded default (goal: under 30 s), then start-up.

Runs twice in a fresh QLRF_HOME: the first run includes generating the sample estate, the second is
the steady state (same day, partitions replaced). Then start-up, each a fresh process, interleaved
(issue 18 goals: `qlrf --help` < 0.3 s, `qlrf report` < 1 s on the sample estate), next to a bare
`python -c pass` as the interpreter's floor.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sidebyside import PYTHON, Side, goal, interleave, load_line  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QLRF_", "DAGSTER_"))}
        env["QLRF_HOME"] = home
        for label in ("first run (generates the estate)", "second run (same day)"):
            started = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "qlrf.cli", "run"], env=env, capture_output=True, text=True)
            took = time.perf_counter() - started
            if proc.returncode != 0:
                print(proc.stdout + proc.stderr, file=sys.stderr)
                return 1
            graph = re.search(r"graph complete in ([\d.]+)s", proc.stdout)
            vms = re.search(r"^all\s+(\d+)", proc.stdout, re.M)
            print(f"qlrf run, {label}: {took:.1f} s wall, graph {graph.group(1)} s, {vms.group(1)} VMs [goal < 30 s]")
        qlrf = [PYTHON, "-m", "qlrf.cli"]
        sides = [Side("python -c pass (floor)", [PYTHON, "-c", "pass"], env=env),
                 Side("qlrf --help", [*qlrf, "--help"], env=env),
                 Side("qlrf report", [*qlrf, "report"], env=env)]
        print(f"start-up, fresh processes, interleaved ({load_line()})")
        result = interleave(sides, rounds=5)
        for summary in result.values():
            print(summary.line())
        print(goal("goal qlrf --help < 0.3 s", result["qlrf --help"].median < 0.3) + "; "
              + goal("qlrf report < 1 s", result["qlrf report"].median < 1.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
