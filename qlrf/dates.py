"""Partition dates as the CLI accepts them: real ISO days inside the daily partitions, nothing else.

A `--date` becomes part of a warehouse path (`<table>/date=<day>/`), so text like `../../etc` must
never get that far; and a day outside the partitions can only ever answer "not found". Checking it
once, here, gives every command the same one-line refusal. `today` is an input (tests pin it).

Where the partitions start is configuration (QLRF_PARTITIONS_START, read by :func:`partitions_start`
when called): a partition before the estate's first day can never be filled, so starting earlier only
shows a newcomer hundreds of "missing" partitions in the Dagster UI. The default is the sample
estate's first day.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Mapping
from datetime import date, timedelta

from qlrf.envparse import environ, text

# The sample estate's calendar (qlrf.inventory.sample): its sites' hygiene trends are anchored on
# SAMPLE_ANCHOR and move for SAMPLE_SPAN_DAYS either side of it; before that window every day looks
# the same, so the estate's history (and the default first partition) starts SAMPLE_SPAN_DAYS before.
SAMPLE_ANCHOR = date(2026, 11, 1)
SAMPLE_SPAN_DAYS = 60
ESTATE_FIRST_DAY = SAMPLE_ANCHOR - timedelta(days=SAMPLE_SPAN_DAYS)
# The first daily partition when QLRF_PARTITIONS_START is unset (assets/partitions.py builds from it).
FIRST_PARTITION = ESTATE_FIRST_DAY
PARTITIONS_START_VARIABLE = "QLRF_PARTITIONS_START"
# end_offset=1 in the partitions definition: today's partition (covering today..today+1) exists
# today, so the accepted range is [first partition, today + END_OFFSET_DAYS), today included.
END_OFFSET_DAYS = 1
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def iso_day(value: str) -> date:
    """A real calendar day written YYYY-MM-DD, else ValueError quoting the text."""
    if not _ISO_DAY.fullmatch(value or ""):
        raise ValueError(f"{value!r} is not a date: expected YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date on the calendar") from None


def partitions_start(env: Mapping[str, str] | None = None) -> date:
    """QLRF_PARTITIONS_START (YYYY-MM-DD), default the estate's first day; errors name the variable."""
    value = text(environ(env), PARTITIONS_START_VARIABLE)
    if value is None:
        return FIRST_PARTITION
    try:
        return iso_day(value)
    except ValueError as exc:
        raise ValueError(f"{PARTITIONS_START_VARIABLE}: {exc}") from None


def last_partition(today: date) -> date:
    """The newest daily partition key Dagster knows on `today` (UTC)."""
    return today + timedelta(days=END_OFFSET_DAYS - 1)


def partition_date(value: str, today: date, first: date = FIRST_PARTITION) -> date:
    """The day `value` names, if it is a real YYYY-MM-DD from `first` to today (the window ends at today+1); else ValueError."""
    day = iso_day(value)
    if day < first:
        raise ValueError(f"{value} is before {first}, the first daily partition (set {PARTITIONS_START_VARIABLE} to start earlier)")
    if day > last_partition(today):
        raise ValueError(f"{value} is after {last_partition(today)}, the newest daily partition")
    return day


def argparse_date(today: date, first: date = FIRST_PARTITION) -> Callable[[str], date]:
    """An argparse `type=` that refuses anything partition_date refuses, in argparse's own words."""

    def parse(value: str) -> date:
        try:
            return partition_date(value, today, first)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = "date"
    return parse


def argparse_iso_day(value: str) -> date:
    """An argparse `type=` for any calendar day (a sample estate may be generated for any date)."""
    try:
        return iso_day(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


argparse_iso_day.__name__ = "date"


def partition_as_of(day: date):
    """The instant a day's partition is evaluated at: the end of that day, whatever hour the run starts.

    Ages and expiries (snapshot age, waiver expiry, days behind) then depend only on the partition's
    inputs and its date, so re-running a day gives identical numbers. The assets and `qlrf score`
    share this one definition."""
    from datetime import UTC, datetime, time

    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
