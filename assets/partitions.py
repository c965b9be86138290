"""Partitions: daily x platform for per-platform assets, daily for fleet-wide ones."""

from __future__ import annotations

import warnings

from dagster import (
    DailyPartitionsDefinition,
    MultiPartitionsDefinition,
    MultiToSingleDimensionPartitionMapping,
    StaticPartitionsDefinition,
    TimeWindowPartitionMapping,
)

from qlrf.dates import END_OFFSET_DAYS, FIRST_PARTITION
from qlrf.platforms import REGISTRY, Registry


def platform_partitions(registry: Registry = REGISTRY) -> StaticPartitionsDefinition:
    """One partition per registered platform, in registry order (a new record is a new partition)."""
    return StaticPartitionsDefinition(list(registry.names()))


# end_offset=1: today's partition exists today, so the daily run reports on the estate as it is now.
# Both numbers live in qlrf.dates, which the CLI uses to refuse a --date outside these partitions.
daily = DailyPartitionsDefinition(start_date=FIRST_PARTITION.isoformat(), end_offset=END_OFFSET_DAYS)
platforms = platform_partitions()
daily_platform = MultiPartitionsDefinition({"date": daily, "platform": platforms})

# A platform partition reads the same day's fleet-wide asset; a fleet asset reads every platform of its day.
with warnings.catch_warnings():  # beta in 1.13, but the documented way to map date x platform to date
    warnings.simplefilter("ignore")
    by_date = MultiToSingleDimensionPartitionMapping(partition_dimension_name="date")


def trailing_days(days: int) -> TimeWindowPartitionMapping:
    """A daily asset reading the `days` daily partitions up to its own (missing early days are allowed).

    Dagster 1.13's TimeWindowPartitionMapping maps time-window partitions onto time-window partitions
    only (a date x platform MultiPartitionsDefinition on either side is refused, and custom mappings
    are deprecated), so a window is declared between daily assets: see drift_trends.
    """
    with warnings.catch_warnings():  # the parameter is beta in 1.13; without it the first days would not map
        warnings.simplefilter("ignore")
        return TimeWindowPartitionMapping(
            start_offset=-(days - 1), end_offset=0, allow_nonexistent_upstream_partitions=True
        )
