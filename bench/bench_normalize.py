"""Benchmark: `qlrf inventory normalize` over 1,000,000 EC2 instances, side by side with jq.

Goal (issue 18): under 30 s and bounded memory (peak < 2 GiB) for ~860 MiB of JSON across files.

Generates `aws ec2 describe-instances` exports for 100,000 instances with the sample generator, then
writes --copies of them with the instance ids rewritten (so every id is unique: 1,000,000 instances
in 30 files by default; not timed). Then, interleaved A B A B A B, each a fresh process:

- ours: `qlrf inventory normalize --platform aws FILES > out.jsonl` (parse, normalise, JSON lines out);
- reference: `jq -c '.Reservations[].Instances[]' FILES > out.jsonl` (parse and re-print each instance,
  no normalising), jq from Debian (scripts/system-deps.sh installs it when missing).

    .venv/bin/python bench/bench_normalize.py [--copies 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sidebyside import PYTHON, Side, goal, interleave, load_line, ratio  # noqa: E402
from qlrf.inventory.sample import generate_estate  # noqa: E402

BASE = 100_000


def exports(tmp: Path, copies: int) -> list[Path]:
    generate_estate(tmp, date(2026, 11, 27), counts={"aws": BASE})
    originals = sorted((tmp / "raw").glob("aws-*-instances.json"))
    files = []
    for copy in range(copies):
        for original in originals:
            target = tmp / f"copy{copy:02d}-{original.name}"
            text = original.read_bytes().replace(b'"InstanceId":"i-', b'"InstanceId":"i-%02x' % copy)
            target.write_bytes(text)
            files.append(target)
    for original in originals:
        original.unlink()
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    subprocess.run([str(ROOT / "scripts" / "system-deps.sh"), "jq:jq"], check=True)
    with tempfile.TemporaryDirectory(prefix="qlrf-bench-normalize-") as tmp:
        started = time.perf_counter()
        files = exports(Path(tmp), args.copies)
        size = sum(f.stat().st_size for f in files) / 2**20
        expected = BASE * args.copies
        print(f"{expected:,} EC2 instances in {len(files)} files, {size:,.0f} MiB of JSON "
              f"(generated in {time.perf_counter() - started:.0f} s, not timed)")
        out = str(Path(tmp) / "out.jsonl")

        def lines(count_what: str):
            def check(_stdout: str) -> None:
                with open(out, "rb") as handle:
                    found = sum(1 for _ in handle)
                if found != expected:
                    raise RuntimeError(f"{count_what}: {found:,} lines, expected {expected:,}")
            return check

        names = [str(f) for f in files]
        ours = Side("ours (qlrf inventory normalize)", [PYTHON, "-m", "qlrf.cli", "inventory", "normalize", "--platform", "aws",
                                                        *names], stdout_path=out, check=lines("qlrf"))
        jq = Side("reference (jq -c)", ["jq", "-c", ".Reservations[].Instances[]", *names], stdout_path=out, check=lines("jq"))
        print(f"normalise, fresh processes, interleaved ({load_line()})")
        result = interleave([ours, jq], rounds=args.rounds)
        a, b = result[ours.name], result[jq.name]
        print(a.line(34))
        print(b.line(34))
        print(f"ratio ours/jq {ratio(a, b):.2f}x (medians); ours {expected / a.median:,.0f} rows/s")
        print(goal("goal < 30 s", a.median < 30) + "; " + goal("peak < 2 GiB", a.peak_mib < 2048))
        print(f"after: {load_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
