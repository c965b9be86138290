from __future__ import annotations

import pytest
from dagster import DagsterInstance

from tests.sensors.support import DAY


@pytest.fixture(scope="session")
def drift_day(tmp_path_factory):
    """A real aws partition of DAY (golden images -> inventory -> drift ...) materialised into a temp
    warehouse, with its events in an ephemeral Dagster instance the sensors read."""
    from tests.helpers import materialize_day

    base = tmp_path_factory.mktemp("sensor-day")
    instance = DagsterInstance.ephemeral()
    results = materialize_day(base / "warehouse", base / "estate", DAY, platforms=("aws",), instance=instance)
    assert all(r.success for r in results)
    return base / "warehouse", instance


@pytest.fixture()
def db_url(tmp_path, monkeypatch):
    """A fresh task/audit database; QLRF_HOME in tmp so nothing touches var/."""
    monkeypatch.setenv("QLRF_HOME", str(tmp_path / "home"))
    for var in ("QLRF_POSTGRES_URL", "QLRF_OPA_URL", "QLRF_SENSOR_STATUS", "QLRF_ALERT_WEBHOOK_URL", "QLRF_ALERT_SLACK_URL",
                "QLRF_SMTP_HOST"):
        monkeypatch.delenv(var, raising=False)
    return f"sqlite:///{tmp_path / 'qlrf.db'}"


@pytest.fixture()
def captured():
    from tests.sensors.support import CAPTURE

    CAPTURE.sent.clear()
    return CAPTURE.sent
