"""outbound_events_sensor: a materialised day announces its inventory and its revoked images once."""

from __future__ import annotations

from datetime import UTC, datetime

from dagster import build_sensor_context

from qlrf.events.contract import short_type, validate_data
from qlrf.events.outbox import Outbox
from qlrf.warehouse import Warehouse
from sensors.outbound import build_outbound_events_sensor, evaluate_outbound

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def test_a_day_announces_its_inventory_and_revoked_images_once(drift_day):
    root, instance = drift_day
    wh = Warehouse(str(root))
    events, cursor, notes = evaluate_outbound(instance, wh, None, NOW)
    assert not notes
    by_type = {}
    for e in events:
        by_type.setdefault(short_type(e.type), []).append(e)
    [found] = by_type["inventory.discovered"]
    inventory = wh.read("inventory", "2026-11-20", "aws")
    assert found.data["vms"] == inventory.num_rows > 0 and found.data["platform"] == "aws"
    assert found.data["sites"] == len(set(inventory.column("site").to_pylist()) - {None})
    revoked = [r for r in wh.read("golden_images", "2026-11-20").to_pylist() if r["revoked"]]
    assert len(by_type.get("image.revoked", [])) == len(revoked) > 0
    on_revoked = {r["image_ref"] for r in revoked}
    running = sum(1 for ref in inventory.column("image_ref").to_pylist() if ref in on_revoked)
    assert sum(e.data["affected_vms"] for e in by_type["image.revoked"]) == running
    for e in events:
        validate_data(short_type(e.type), e.data, e.subject)

    again, cursor2, _ = evaluate_outbound(instance, wh, cursor, NOW)
    assert again == [] and cursor2 == cursor


def test_the_sensor_writes_each_event_once(drift_day, db_url):
    from resources.remediation import RemediationResource
    from resources.warehouse import WarehouseResource

    root, instance = drift_day
    sensor = build_outbound_events_sensor()
    resources = {"warehouse": WarehouseResource(root=str(root)), "remediation": RemediationResource(database_url=db_url)}
    first = sensor(build_sensor_context(instance=instance, resources=resources))
    outbox = Outbox(db_url)
    count = outbox.status()["events"]
    assert count > 0 and f"{count} new event(s)" in first.skip_message
    second = sensor(build_sensor_context(instance=instance, resources=resources))  # no cursor: re-derives, adds nothing
    assert "0 new event(s)" in second.skip_message and outbox.status()["events"] == count
