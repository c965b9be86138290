"""outbound_events_sensor: new inventory and golden_images partitions -> events in the outbox.

``inventory.discovered`` per written inventory partition (VMs, sites, the run that wrote it) and
``image.revoked`` per revoked image in a new golden_images partition (with the VMs still running it
that day). Derived here, from the asset records, rather than inside the assets: an asset's job is to
write its partition, and a partition that failed its checks was never written, so it is never
announced. The cursor is the newest storage id per watched asset; event ids are stable (per
partition and run, per image), so a repeated tick writes nothing new. The relay publishes the outbox.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from qlrf.events.emit import image_revoked, inventory_discovered
from qlrf.events.outbox import Outbox
from qlrf.inventory.contract import PLATFORMS
from qlrf.tenancy.scope import acts_for_every_org
from qlrf.warehouse import PartitionMissing, Warehouse
from resources.remediation import RemediationResource
from resources.warehouse import WarehouseResource

SENSOR_NAME = "outbound_events_sensor"
INVENTORY, IMAGES = "inventory", "golden_images"


def _cursor(text: str | None) -> dict[str, int]:
    try:
        found = json.loads(text) if text else {}
    except ValueError:
        return {}
    return {k: int(v) for k, v in found.items() if isinstance(v, int)} if isinstance(found, dict) else {}


def _records(instance: DagsterInstance, asset: str, after: int | None, limit: int) -> list:
    return instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), after_storage_id=after), limit=limit, ascending=True).records


def _row_count(record) -> int:
    meta = record.asset_materialization.metadata if record.asset_materialization else {}
    value = meta.get("dagster/row_count")
    return int(getattr(value, "value", value) or 0)


def inventory_events(wh: Warehouse, records: list, now: datetime) -> tuple[list, list[str]]:
    events, notes = [], []
    for record in records:
        key = str(record.partition_key or "")
        day, _, platform = key.partition("|")
        if not platform:
            continue
        try:
            sites = len({s for s in wh.read(INVENTORY, day, platform, columns=["site"]).column("site").to_pylist() if s})
        except PartitionMissing as exc:
            notes.append(f"{key}: {exc}")
            continue
        events += inventory_discovered(day, platform, _row_count(record), now, sites=sites, run_id=record.run_id)
    return events, notes


def revocation_events(wh: Warehouse, records: list, now: datetime) -> tuple[list, list[str]]:
    events, notes = [], []
    for day in sorted({str(r.partition_key) for r in records if r.partition_key}):
        try:
            rows = [r for r in wh.read(IMAGES, day).to_pylist() if r.get("revoked") and r.get("image_ref")]
        except PartitionMissing as exc:
            notes.append(f"{day}: {exc}")
            continue
        if not rows:
            continue
        running = _vms_by_image(wh, day, {r["image_ref"] for r in rows})
        events += image_revoked([{"image_id": r["image_ref"], "platform": r["platform"], "reason": r.get("revoked_reason"),
                                  "affected_vms": running.get(r["image_ref"], 0)} for r in rows], now)
    return events, notes


def _vms_by_image(wh: Warehouse, day: str, images: set[str]) -> dict[str, int]:
    """VMs per image in `images`, over the day's inventory partitions that exist."""
    counts: dict[str, int] = {}
    for platform in PLATFORMS:
        if not wh.exists(INVENTORY, day, platform):
            continue
        for ref in wh.read(INVENTORY, day, platform, columns=["image_ref"]).column("image_ref").to_pylist():
            if ref in images:
                counts[ref] = counts.get(ref, 0) + 1
    return counts


def evaluate_outbound(instance: DagsterInstance, wh: Warehouse, cursor: str | None, now: datetime,
                      limit: int = 200) -> tuple[list, str, list[str]]:
    """The tick as a plain function: (events, new cursor, notes)."""
    seen = _cursor(cursor)
    builders: dict[str, Callable] = {INVENTORY: inventory_events, IMAGES: revocation_events}
    events, notes = [], []
    for asset, build in builders.items():
        records = _records(instance, asset, seen.get(asset), limit)
        if not records:
            continue
        found, problems = build(wh, records, now)
        events += found
        notes += problems
        seen[asset] = records[-1].storage_id
    return events, json.dumps(seen, sort_keys=True), notes


def build_outbound_events_sensor(default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING) -> SensorDefinition:
    @sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=60,
        default_status=default_status,
        description="New inventory / golden_images partitions -> inventory.discovered and image.revoked in the outbox.",
    )
    @acts_for_every_org("outbound_events_sensor")
    def _outbound_events_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource,
                                remediation: RemediationResource):
        events, cursor, notes = evaluate_outbound(context.instance, warehouse.get(), context.cursor, datetime.now(UTC))
        for note in notes:
            context.log.warning(note)
        added = Outbox(remediation.database_url).write(events)
        context.update_cursor(cursor)
        return SkipReason(f"{added} new event(s) in the outbox ({len(events)} derived); this sensor launches no runs")

    return _outbound_events_sensor


__all__ = ["SENSOR_NAME", "build_outbound_events_sensor", "evaluate_outbound"]
