"""Fault catalogue, reproducible partitions: a day's results depend on its inputs and its date, never on the hour it ran."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from assets.common import as_of

pytestmark = pytest.mark.fault


def test_a_partition_is_evaluated_at_its_days_end_whatever_the_hour():
    # Today's and future partitions too: a re-run later the same day must give identical ages and scores.
    for day in (date(2026, 11, 20), date(2099, 1, 1)):
        assert as_of(day) == datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=UTC)
