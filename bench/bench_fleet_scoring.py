"""Benchmark: drift + compliance for 1,000,000 VMs from the Parquet warehouse (goal ≤ 2 s, ≤ 1 GiB peak).

Builds a synthetic one-million-VM partition (columnar, not timed), then runs the same stage code the
assets run (qlrf.scoring.stages: Parquet in, DuckDB, Parquet out, scores) in a fresh child process per
repetition, so the peak RSS printed is that of the scoring alone, imports included.
Also prints DR readiness, which the asset graph runs next, for completeness.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 27)
N = 1_000_000

CHILD = """
import json, sys, time
from datetime import datetime, UTC, date
from qlrf.scoring import compliance
from qlrf.scoring.stages import run_compliance, run_dr, run_drift
from qlrf.warehouse import Warehouse
wh, day, as_of = Warehouse(sys.argv[1]), date.fromisoformat(sys.argv[2]), datetime.fromisoformat(sys.argv[3])
def hwm():  # VmHWM is per address space, so unlike ru_maxrss it does not inherit the parent's peak
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
cat = compliance.load_catalogue(); waivers = compliance.load_waivers(catalogue=cat)
t0 = time.perf_counter(); d = run_drift(wh, day, "aws", as_of)
t1 = time.perf_counter(); c = run_compliance(wh, day, "aws", as_of, cat, waivers)
t2 = time.perf_counter(); rss = hwm()
r = run_dr(wh, day, "aws", as_of)
t3 = time.perf_counter()
print(json.dumps({"drift": t1 - t0, "compliance": t2 - t1, "dr": t3 - t2, "rss_mb": rss,
                  "rss_all_mb": hwm(),
                  "rows": [d.rows, c.rows, r.rows], "status": d.breakdown}))
"""


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from bench.fleet_gen import build

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        wh = build(Path(tmp), DAY, N)
        print(f"built a {N:,}-VM partition in {time.perf_counter() - started:.1f} s (not timed below)")
        as_of = datetime(2026, 11, 27, 12, tzinfo=UTC).isoformat()
        base = subprocess.run([sys.executable, "-c", "import duckdb, pyarrow, qlrf.scoring.stages, qlrf.scoring.compliance; "
                               "print(int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024)"],
                              capture_output=True, text=True, cwd=ROOT, check=True)
        runs = []
        for _ in range(3):
            proc = subprocess.run([sys.executable, "-c", CHILD, wh.root, DAY.isoformat(), as_of],
                                  capture_output=True, text=True, cwd=ROOT)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return 1
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    runs.sort(key=lambda r: r["drift"] + r["compliance"])
    med = runs[1]
    total = med["drift"] + med["compliance"]
    print(f"rows: vm_drift {med['rows'][0]:,}, vm_compliance {med['rows'][1]:,}, vm_dr {med['rows'][2]:,}; status {med['status']}")
    print(f"drift {med['drift']:.2f} s + compliance {med['compliance']:.2f} s = {total:.2f} s (median of 3) [goal ≤ 2 s]")
    print(f"peak RSS through compliance {med['rss_mb']:.0f} MiB (imports alone {float(base.stdout):.0f} MiB) [goal ≤ 1024 MiB]")
    print(f"DR readiness next: {med['dr']:.2f} s, peak RSS for all three {med['rss_all_mb']:.0f} MiB")
    return 0 if total <= 2 and med["rss_mb"] <= 1024 else 1


if __name__ == "__main__":
    sys.exit(main())
