"""Benchmark: the 12,200-VM sample day in process vs through two Celery workers over RabbitMQ (issue 16).

Both sides as fresh processes, interleaved (A B A B ...), medians, ratio and load average
(bench/sidebyside.py). In process: `python -m pipelines.run --in-process` (SQLite instance, one
process). Celery: `python -m pipelines.celery_profile run ...` orchestrates golden images, the four
platform runs and the fleet report one after the other, each step executed by one of two
long-lived workers (started and warmed once, as in production) with Postgres run/event storage, on a
private RabbitMQ vhost and database (tests/integration/celery_stack.py; the machine's broker is shared
and never restarted). Every Celery round is checked against the in-process round before it counts:
same partition files, byte for byte but inventory's wall-clock discovered_at.

    python bench/bench_celery.py [--rounds N] [--scale F] [--warm-up]
        --rounds: interleaved rounds (default 2); --scale: the sample's VM counts times F (default 1:
        12,200 VMs; 0.01 is a quick check that the bench itself works)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sidebyside import PYTHON, Side, interleave, load_line, ratio  # noqa: E402
from qlrf.inventory.contract import PLATFORMS  # noqa: E402
from tests.integration.celery_stack import CeleryStack, day_differences  # noqa: E402

DAY = date(2026, 11, 20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_celery.py")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--warm-up", action="store_true",
                        help="one uncounted Celery day first (the workers preload the code location anyway)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-celery-") as tmp:
        root = Path(tmp)
        stack = CeleryStack(root, workers=2, concurrency=1)
        try:
            stack.open()
            from qlrf.inventory.sample import DEFAULT_COUNTS, generate_estate

            started = time.perf_counter()
            counts = {p: max(1, round(n * args.scale)) for p, n in DEFAULT_COUNTS.items()}
            generate_estate(root / "estate" / DAY.isoformat(), DAY, counts=counts)  # shared read-only by both sides
            print(f"sample estate of {sum(counts.values()):,} VMs generated in {time.perf_counter() - started:.1f} s")
            stack.start_workers()
            stack.wait_ready(timeout=120)
            celery_env = stack.env()
            base = {k: v for k, v in celery_env.items() if not k.startswith(("QLRF_", "DAGSTER_"))}
            local_env = {**base, "QLRF_HOME": str(root / "local"), "QLRF_ESTATE_DIR": str(root / "estate"),
                         "QLRF_AUDIT_DIR": str(root / "local-audit")}
            runs = [f"golden_images_job={DAY}", *(f"platform_daily_job={DAY}|{p}" for p in PLATFORMS),
                    f"fleet_report_job={DAY}"]

            def same_as_in_process(_stdout: str) -> None:
                problems = day_differences(root / "warehouse", root / "local" / "warehouse")
                if problems:
                    raise AssertionError("Celery day differs from the in-process day: " + "; ".join(problems[:5]))

            sides = [
                Side("in-process (1 process)", [PYTHON, "-m", "pipelines.run", "--in-process", "--date", DAY.isoformat()],
                     env=local_env),
                Side("celery (2 workers)", [PYTHON, "-m", "pipelines.celery_profile", "run", *runs], env=celery_env,
                     check=same_as_in_process),
            ]
            if args.warm_up:  # a day on the workers before the counted rounds
                warm = interleave([Side("warm-up", sides[1].argv, env=celery_env)], rounds=1, echo=None)
                print(f"warm-up day on the workers: {warm['warm-up'].median:.1f} s (not counted)")
                shutil.rmtree(root / "warehouse", ignore_errors=True)
            summaries = interleave(sides, rounds=args.rounds)
        finally:
            stack.close()
    local, celery = summaries[sides[0].name], summaries[sides[1].name]
    print(local.line())
    print(celery.line() + "  (orchestrator only: the workers' memory is not in it)")
    print(f"celery / in-process: {ratio(celery, local):.2f}x wall time; every Celery round equal to the in-process day")
    print(load_line())
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
