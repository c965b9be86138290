"""`qlrf score`: re-score one partition of an existing warehouse through the assets' own stage code.

No Dagster: the stages run in this process (qlrf.scoring.rescore) and each prints its wall time, so
this is also the entry point the scoring benchmark times. Imports stay inside the command, so
`qlrf --help` does not pay for DuckDB or pyarrow.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def _stages(text: str) -> tuple[str, ...]:
    from qlrf.scoring.rescore import parse_stages

    try:
        return parse_stages(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_score(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    from qlrf.scoring.rescore import score_partition
    from qlrf.scoring.stages import BaselineMissing
    from qlrf.settings import Settings, shown
    from qlrf.warehouse import PartitionMissing, Warehouse

    imported = time.perf_counter() - started
    wh = Warehouse(Settings.from_env().warehouse)
    try:
        timings = score_partition(wh, args.date, args.platform, args.stage, catalogue_path=args.controls,
                                  waivers_path=args.waivers, threads=args.threads)
    except (PartitionMissing, BaselineMissing) as exc:
        print(f"error: {exc}; run `qlrf run --date {args.date}` first", file=sys.stderr)
        return 2
    total = time.perf_counter() - started
    if args.json:
        print(json.dumps({"date": args.date.isoformat(), "platform": args.platform, "imports_s": round(imported, 3),
                          "total_s": round(total, 3),
                          "stages": [{"stage": t.stage, "seconds": round(t.seconds, 3), "rows": t.outcome.rows,
                                      "path": t.outcome.path} for t in timings]}))
        return 0
    print(f"scored {args.date}|{args.platform} in {shown(wh.root)}")
    for t in timings:
        print(f"  {t.line()}")
    parts = ", ".join(f"{t.stage} {t.seconds:.2f}" for t in timings)
    print(f"total {total:.2f} s in this process (imports {imported:.2f}, {parts})")
    return 0


def register(sub, day) -> None:
    """Add `qlrf score`; `day` is the CLI's --date type (a real day inside the partitions)."""
    from qlrf.inventory.contract import PLATFORMS

    score = sub.add_parser("score", help="re-score one partition of the warehouse (drift, compliance, dr) "
                                         "with the assets' own code, printing time per stage")
    score.add_argument("--date", required=True, type=day, help="YYYY-MM-DD: the partition day")
    score.add_argument("--platform", required=True, choices=PLATFORMS)
    score.add_argument("--stage", type=_stages, default=("drift", "compliance", "dr"),
                       help="comma-separated, run in graph order: drift,compliance,dr (default: all three)")
    score.add_argument("--controls", help="control catalogue YAML (default: policy/controls.yaml)")
    score.add_argument("--waivers", help="waiver file YAML (default: policy/waivers.yaml)")
    score.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's, all cores)")
    score.add_argument("--json", action="store_true", help="one JSON object instead of the lines")
    score.set_defaults(func=cmd_score)
