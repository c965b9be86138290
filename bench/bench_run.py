"""Benchmark: `qlrf run` for the full sample estate on the embedded default (goal: under 30 s).

Runs twice in a fresh QLRF_HOME: the first run includes generating the sample estate, the second is
the steady state (same day, partitions replaced).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time


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
    return 0


if __name__ == "__main__":
    sys.exit(main())
