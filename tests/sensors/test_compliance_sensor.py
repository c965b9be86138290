"""compliance_breach_sensor: sites under their floor alert once per partition; the cursor moves on."""

from __future__ import annotations

from dagster import build_sensor_context

from qlrf.remediation.policy import RemediationPolicy
from qlrf.warehouse import Warehouse
from sensors.compliance import breaches, build_compliance_breach_sensor, evaluate_compliance


def test_breaches_follow_the_environment_floor():
    policy = RemediationPolicy.load()
    rows = [
        {"site": "a", "environment": "prod", "compliance_score": 89.9, "vms": 10, "non_compliant_vms": 3},
        {"site": "b", "environment": "dev", "compliance_score": 75.0, "vms": 10, "non_compliant_vms": 2},
        {"site": "c", "environment": "unknown", "compliance_score": 85.0, "vms": 10, "non_compliant_vms": 1},
        {"site": "d", "environment": "staging", "compliance_score": 60.0, "vms": 10, "non_compliant_vms": 8},
    ]
    assert [(r["site"], r["floor"]) for r in breaches(rows, policy)] == [("d", 80), ("c", 90), ("a", 90)]


def test_tick_alerts_for_the_materialised_partition_and_then_nothing(drift_day):
    root, instance = drift_day
    wh = Warehouse(str(root))
    policy = RemediationPolicy.load()
    expected = breaches(wh.read("compliance_scores", "2026-11-20", "aws").to_pylist(), policy)
    alerts, cursor, notes = evaluate_compliance(instance, wh, policy, None)
    assert not notes and cursor is not None
    assert len(alerts) == (1 if expected else 0)
    if expected:
        assert alerts[0].title.startswith(f"aws 2026-11-20: {len(expected)} site(s) below")
        assert alerts[0].severity == ("critical" if any(r["environment"] == "prod" for r in expected) else "warning")
    again, cursor2, _ = evaluate_compliance(instance, wh, policy, cursor)
    assert again == [] and cursor2 == cursor


def test_sensor_definition_skips_with_a_reason_and_stores_the_cursor(drift_day, db_url, monkeypatch):
    from resources.alerts import AlertsResource
    from resources.remediation import RemediationResource
    from resources.warehouse import WarehouseResource

    root, instance = drift_day
    sensor = build_compliance_breach_sensor()
    context = build_sensor_context(
        instance=instance,
        resources={"warehouse": WarehouseResource(root=str(root)), "remediation": RemediationResource(database_url=db_url),
                   "alerts": AlertsResource()},
    )
    result = sensor(context)
    assert "compliance alert(s)" in result.skip_message
    assert context.cursor is not None
