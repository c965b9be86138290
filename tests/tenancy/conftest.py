"""The access attack suite's tally in pytest's terminal summary (in-process runs; under xdist each
worker keeps its own, and the suite's last test prints it with ``-s``)."""

from __future__ import annotations

from tests.integration.conftest import pg_url  # noqa: F401 - a fresh Postgres database per test
from tests.tenancy.support import ATTACKS


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if ATTACKS["attempts"]:
        terminalreporter.write_line(f"access attacks: {ATTACKS['attempts']} attempts, {ATTACKS['refused']} refused")
