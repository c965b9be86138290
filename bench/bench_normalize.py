"""Benchmark: `qlrf inventory normalize` over 100,000 EC2 instances (goal: under 5 s).

Generates `aws ec2 describe-instances` exports for 100k instances with the sample generator, then
times the real command end to end (process start, JSON parse, normalise, JSON-lines out).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from qlrf.inventory.sample import generate_estate

N = 100_000


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        generate_estate(Path(tmp), date(2026, 11, 27), counts={"aws": N})
        files = sorted(str(p) for p in (Path(tmp) / "raw").glob("aws-*-instances.json"))
        size = sum(Path(f).stat().st_size for f in files) / 2**20
        times = []
        for _ in range(3):
            started = time.perf_counter()
            with open(Path(tmp) / "out.jsonl", "wb") as out:
                proc = subprocess.run([sys.executable, "-m", "qlrf.cli", "inventory", "normalize", "--platform", "aws", *files], stdout=out)
            times.append(time.perf_counter() - started)
            if proc.returncode != 0:
                print("normalize failed", file=sys.stderr)
                return 1
        with open(Path(tmp) / "out.jsonl", "rb") as out:
            rows = sum(1 for _ in out)
    best, median = min(times), sorted(times)[1]
    print(f"normalize: {rows:,} EC2 instances from {len(files)} files ({size:.0f} MiB JSON)")
    print(f"normalize: median {median:.2f} s, best {best:.2f} s ({rows / median:,.0f} rows/s) [goal < 5 s]")
    return 0 if median < 5 else 1


if __name__ == "__main__":
    sys.exit(main())
