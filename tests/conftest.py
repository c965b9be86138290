from __future__ import annotations

import pytest

DAY = "2026-11-20"


@pytest.fixture(scope="session")
def materialized_day(tmp_path_factory):
    """One full day of the graph over the default sample estate (12,200 VMs), shared by a worker's tests."""
    from tests.helpers import materialize_day

    base = tmp_path_factory.mktemp("day")
    results = materialize_day(base / "warehouse", base / "estate", DAY)
    assert all(r.success for r in results)
    return base / "warehouse", DAY


@pytest.fixture()
def isolated_env(monkeypatch, tmp_path):
    """QLRF_HOME in a temp dir so nothing touches the project's var/."""
    monkeypatch.setenv("QLRF_HOME", str(tmp_path / "home"))
    for var in ("QLRF_WAREHOUSE", "QLRF_ESTATE_DIR", "QLRF_POSTGRES_URL", "DAGSTER_HOME", "QLRF_GOLDEN_DIR"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "home"


# Slow = Dagster runs, CLI subprocesses and loopback-cloud integration. `make test` runs everything;
# `make test-fast` (and CI's shifted-clock pass) runs the rest.
SLOW_DIRS = ("connectors", "integration")
SLOW_FIXTURES = {"materialized_day", "drift_day", "built_day"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = item.path.relative_to(config.rootpath).parts[:-1]
        if set(SLOW_DIRS) & set(parts) or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _audit_anchor_dir(tmp_path_factory, monkeypatch):
    """Each test's audit key and head files in its own folder, never the project's var/audit."""
    monkeypatch.setenv("QLRF_AUDIT_DIR", str(tmp_path_factory.mktemp("audit-anchor")))
