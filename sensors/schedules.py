"""The daily schedule: every platform partition of the day, one run each, keyed so reruns dedupe."""

from __future__ import annotations

from dagster import DefaultScheduleStatus, MultiPartitionKey, RunRequest, ScheduleEvaluationContext, schedule

from jobs.assets import platform_job, quality_job
from qlrf.inventory.contract import PLATFORMS


def _every_platform(context: ScheduleEvaluationContext, run_key_prefix: str = ""):
    """One run request per platform partition of the tick's day, keyed so a repeated tick dedupes."""
    day = context.scheduled_execution_time.date().isoformat()
    for platform in PLATFORMS:
        key = MultiPartitionKey({"date": day, "platform": platform})
        yield RunRequest(run_key=f"{run_key_prefix}{day}|{platform}", partition_key=key)


@schedule(
    job=platform_job,
    cron_schedule="0 1 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="01:00 UTC: discover and score today's partition of every platform.",
)
def daily_platform_schedule(context: ScheduleEvaluationContext):
    yield from _every_platform(context)


@schedule(
    job=quality_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="03:00 UTC: the great-expectations suite over today's inventory of every platform.",
)
def inventory_quality_schedule(context: ScheduleEvaluationContext):
    yield from _every_platform(context, run_key_prefix="quality|")
