"""Run a whole day of the graph on the current instance: what `qlrf run` and `make run` call.

Each partition is its own run (golden images, then every platform, then the fleet roll-up), all
recorded in the Dagster instance so they show in the UI. A failing platform does not stop the
others; the run exits non-zero and says which failed and why.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from datetime import UTC, date, datetime

from dagster import DagsterInstance, MultiPartitionKey

from pipelines.instance import prepare_dagster_home
from qlrf.ai.summary import stored_summary
from qlrf.dates import argparse_date
from qlrf.inventory.contract import PLATFORMS
from qlrf.scoring.report import report_text
from qlrf.settings import Settings, shown
from qlrf.warehouse import Warehouse

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _failure_text(result) -> str:
    """The root cause of the first failed step, in one line (the full trace is in the Dagster UI)."""
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None) if event.is_step_failure else None
        if error is not None:
            while error.cause is not None:
                error = error.cause
            return f"{event.step_key}: {error.message.strip().splitlines()[-1]}"
    return "failed (see the Dagster UI for the run's logs)"


def run_day(day: date, platforms: list[str], instance: DagsterInstance, log=print) -> list[str]:
    """Materialise every asset for `day`; returns failure messages (empty when all succeeded)."""
    from pipelines.definitions import defs

    plan = [("golden_images_job", day.isoformat(), "golden images")]
    plan += [("platform_daily_job", MultiPartitionKey({"date": day.isoformat(), "platform": p}), p) for p in platforms]
    plan += [("fleet_report_job", day.isoformat(), "fleet report")]
    failures = []
    for job_name, key, label in plan:
        started = time.perf_counter()
        job = defs.resolve_job_def(job_name)
        result = job.execute_in_process(
            run_config=QUIET, instance=instance, partition_key=key, raise_on_error=False, tags={"qlrf/trigger": "qlrf run"}
        )
        took = time.perf_counter() - started
        if result.success:
            log(f"  ok    {label:<14} {took:5.1f}s  run {result.run_id[:8]}")
        else:
            message = _failure_text(result)
            failures.append(f"{label}: {message}")
            log(f"  FAIL  {label:<14} {took:5.1f}s  run {result.run_id[:8]}  {message}")
    return failures


def main(argv: list[str] | None = None, *, today: date | None = None) -> int:
    """`today` bounds the dates --date accepts (a real ISO day in the partitions); tests pin it."""
    today = today or datetime.now(UTC).date()
    parser = argparse.ArgumentParser(prog="qlrf run")
    parser.add_argument("--date", default=today.isoformat(), type=argparse_date(today))
    parser.add_argument("--platform", action="append", choices=PLATFORMS)
    args = parser.parse_args(argv)
    # Dagster 1.13 itself passes its beta `owners` parameter when it resolves any sensor; the warning
    # it prints says nothing about this project, so keep it out of the report.
    warnings.filterwarnings("ignore", message="Parameter `owners`")
    day = args.date
    settings = Settings.from_env()
    home = prepare_dagster_home(settings)
    started = time.perf_counter()
    print(f"Resilience Fabric: materialising {day} for {', '.join(args.platform or PLATFORMS)}")
    print(f"  Dagster instance: {'postgres' if settings.postgres_url else 'sqlite'} at {shown(home)}")
    with DagsterInstance.get() as instance:
        failures = run_day(day, list(args.platform or PLATFORMS), instance)
    total = time.perf_counter() - started
    print(f"  graph complete in {total:.1f}s" + (f" with {len(failures)} failure(s)" if failures else ""))
    print()
    try:
        print(report_text(Warehouse(settings.warehouse), day))
    except FileNotFoundError as exc:
        print(f"no report: {exc}", file=sys.stderr)
        return 1
    summary = stored_summary(Warehouse(settings.warehouse), day)
    if summary:
        print(f"Summary ({summary['source']}): {summary['headline']}")
        for action in summary["actions"][:3]:
            print(f"  - [{action['urgency']}] {action['title']}")
        print()
    print(f"Dagster runs: DAGSTER_HOME={shown(home)} (`make serve` opens the UI)")
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
