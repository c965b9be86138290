"""Partitions: daily x platform for per-platform assets, daily for fleet-wide ones."""

from __future__ import annotations

import warnings
from datetime import date

from dagster import (
    AssetSpec,
    DailyPartitionsDefinition,
    Definitions,
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


def daily_from(start: date) -> DailyPartitionsDefinition:
    """Daily partitions from `start`; end_offset=1: today's partition exists today, so the daily run
    reports on the estate as it is now. Both numbers live in qlrf.dates, which the CLI uses to refuse
    a --date outside these partitions."""
    return DailyPartitionsDefinition(start_date=start.isoformat(), end_offset=END_OFFSET_DAYS)


# What the asset modules declare at import (no environment read): the default start, the estate's
# first day. build_definitions moves every asset to QLRF_PARTITIONS_START with starting_on().
daily = daily_from(FIRST_PARTITION)
platforms = platform_partitions()
daily_platform = MultiPartitionsDefinition({"date": daily, "platform": platforms})


def starting_on(defs: Definitions, start: date) -> Definitions:
    """`defs` with every daily (and daily x platform) asset starting on `start` instead of the default.

    The assets are declared at import, before any configuration can be read, so the configured start
    is applied to the built definitions; jobs take their partitions from their assets, and the sensors
    only parse keys, so nothing else holds a partitions definition.
    """
    if start == FIRST_PARTITION:
        return defs
    moved = daily_from(start)
    replacement = {daily: moved, daily_platform: MultiPartitionsDefinition({"date": moved, "platform": platforms})}

    def move(spec: AssetSpec) -> AssetSpec:
        new = replacement.get(spec.partitions_def) if spec.partitions_def is not None else None
        return spec.replace_attributes(partitions_def=new) if new is not None else spec

    with warnings.catch_warnings():  # map_asset_specs is "preview" in 1.13: the documented way to rewrite specs
        warnings.simplefilter("ignore")
        return defs.map_asset_specs(func=move)

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
