"""Partition dates as the CLI accepts them: real ISO days inside the daily partitions, nothing else.

A `--date` becomes part of a warehouse path (`<table>/date=<day>/`), so text like `../../etc` must
never get that far; and a day outside the partitions can only ever answer "not found". Checking it
once, here, gives every command the same one-line refusal. `today` is an input (tests pin it).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import date, timedelta

# The first daily partition; assets/partitions.py builds its DailyPartitionsDefinition from it.
FIRST_PARTITION = date(2026, 1, 1)
# end_offset=1 in the partitions definition: today's partition (covering today..today+1) exists
# today, so the accepted range is [FIRST_PARTITION, today + END_OFFSET_DAYS), today included.
END_OFFSET_DAYS = 1
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def last_partition(today: date) -> date:
    """The newest daily partition key Dagster knows on `today` (UTC)."""
    return today + timedelta(days=END_OFFSET_DAYS - 1)


def partition_date(text: str, today: date) -> date:
    """The day `text` names, if it is a real YYYY-MM-DD from FIRST_PARTITION to today (the window ends at today+1); else ValueError."""
    if not _ISO_DAY.fullmatch(text or ""):
        raise ValueError(f"{text!r} is not a date: expected YYYY-MM-DD")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date on the calendar") from None
    if day < FIRST_PARTITION:
        raise ValueError(f"{text} is before {FIRST_PARTITION}, the first daily partition")
    if day > last_partition(today):
        raise ValueError(f"{text} is after {last_partition(today)}, the newest daily partition")
    return day


def argparse_date(today: date) -> Callable[[str], date]:
    """An argparse `type=` that refuses anything partition_date refuses, in argparse's own words."""

    def parse(text: str) -> date:
        try:
            return partition_date(text, today)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = "date"
    return parse
