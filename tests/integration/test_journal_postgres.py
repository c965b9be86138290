"""The execution journal on the machine's PostgreSQL (own database, created and dropped)."""

from __future__ import annotations

import pytest

from tests.remediation.test_journal import journal_checks

pytestmark = pytest.mark.postgres


def test_journal_on_postgres(pg_url):
    journal_checks(pg_url)
