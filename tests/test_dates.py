"""--date parsing: real ISO days inside the daily partitions, today injected."""

from __future__ import annotations

from datetime import date

import pytest

from qlrf.dates import FIRST_PARTITION, last_partition, partition_date

TODAY = date(2026, 11, 30)


def test_the_partition_window_is_first_partition_to_today():
    assert partition_date(FIRST_PARTITION.isoformat(), TODAY) == FIRST_PARTITION
    assert partition_date("2026-11-30", TODAY) == TODAY == last_partition(TODAY)


@pytest.mark.parametrize("text", ["2026-1-5", "2026-11-30T00:00", " 2026-11-30", "２０２６-11-30", "2026-13-01", "2026-11-31"])
def test_anything_but_a_real_calendar_day_is_refused(text):
    with pytest.raises(ValueError, match="not a date"):
        partition_date(text, TODAY)


def test_the_window_moves_with_the_injected_today():
    with pytest.raises(ValueError, match="after 2026-11-29"):
        partition_date("2026-11-30", date(2026, 11, 29))
