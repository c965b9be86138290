"""compliance_breach_sensor: a new compliance partition with a site below its floor -> an alert.

Compliance failures are not all fixable by re-imaging (missing tags, a public IP on prod), so this
sensor does not plan: image-related controls already reach the drift plans. It alerts the owners,
once per partition and set of breaches (the alert key carries a digest, the dispatcher de-duplicates),
and keeps a storage-id cursor over ``compliance_scores`` materialisations like the finding sensor.
"""

import hashlib
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

from assets.partitions import daily_platform
from qlrf.alerts.model import Alert
from qlrf.events.emit import compliance_breached
from qlrf.events.outbox import Outbox
from qlrf.remediation.policy import RemediationPolicy
from qlrf.tenancy.scope import acts_for_every_org
from qlrf.warehouse import PartitionMissing, Warehouse
from resources.alerts import AlertsResource
from resources.remediation import RemediationResource
from resources.warehouse import WarehouseResource

SENSOR_NAME = "compliance_breach_sensor"
WATCHED = AssetKey("compliance_scores")


def breaches(scores: list[dict], policy: RemediationPolicy) -> list[dict]:
    """Scopes whose compliance score is under their environment's floor (unknown environments: prod's)."""
    out = []
    for row in scores:
        env = row["environment"] if row["environment"] in policy.environments else "prod"
        floor = policy.for_env(env).compliance_floor
        if row["compliance_score"] is not None and row["compliance_score"] < floor:
            out.append({**row, "floor": floor})
    return sorted(out, key=lambda r: r["compliance_score"])


def breach_alert(partition: str, found: list[dict]) -> Alert:
    dims = daily_platform.get_partition_key_from_str(partition).keys_by_dimension
    digest = hashlib.sha256(repr([(r["site"], r["environment"], r["compliance_score"]) for r in found]).encode()).hexdigest()[:16]
    lines = [
        f"• {r['site']} {r['environment']}: {r['compliance_score']:.1f} < {r['floor']:.0f} "
        f"({r['non_compliant_vms']} of {r['vms']} VMs fail a control)"
        for r in found[:15]
    ]
    return Alert(
        kind="compliance_breach",
        severity="critical" if any(r["environment"] == "prod" for r in found) else "warning",
        title=f"{dims['platform']} {dims['date']}: {len(found)} site(s) below their compliance floor",
        text="\n".join(lines),
        key=f"compliance_breach|{partition}|{digest}",
        fields={"platform": dims["platform"], "date": dims["date"], "scopes": len(found)},
    )


def evaluate_compliance(instance: DagsterInstance, wh: Warehouse, policy: RemediationPolicy, cursor: str | None,
                        limit: int = 200, breached: list | None = None) -> tuple[list[Alert], str | None, list[str]]:
    """The tick as a plain function: (alerts, new cursor, notes); `breached` collects (date, platform, rows)."""
    after = int(cursor) if cursor else None
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=WATCHED, after_storage_id=after), limit=limit, ascending=True
    ).records
    alerts, notes, newest = [], [], {}
    for record in records:
        cursor = str(record.storage_id)
        if record.partition_key is not None:
            newest[str(record.partition_key)] = record.storage_id
    for partition in sorted(newest, key=newest.get):
        dims = daily_platform.get_partition_key_from_str(partition).keys_by_dimension
        try:
            scores = wh.read("compliance_scores", dims["date"], dims["platform"]).to_pylist()
        except PartitionMissing as exc:
            notes.append(f"{partition}: {exc}")
            continue
        found = breaches(scores, policy)
        if found:
            alerts.append(breach_alert(partition, found))
            if breached is not None:
                breached.append((dims["date"], dims["platform"], found))
    return alerts, cursor, notes


def build_compliance_breach_sensor(default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING) -> SensorDefinition:
    @sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=60,
        default_status=default_status,
        description="New compliance_scores partitions -> an alert for every site x environment under its compliance floor.",
    )
    @acts_for_every_org("compliance_breach_sensor")
    def _compliance_breach_sensor(
        context: SensorEvaluationContext, warehouse: WarehouseResource, remediation: RemediationResource, alerts: AlertsResource
    ):
        audit = remediation.audit()
        breached: list = []
        found, cursor, notes = evaluate_compliance(context.instance, warehouse.get(), remediation.policy(), context.cursor,
                                                   breached=breached)
        outbox, now = Outbox(remediation.database_url), datetime.now(UTC)
        outbox.write([e for day, platform, rows in breached for e in compliance_breached(day, platform, rows, now)])
        for note in notes:
            context.log.warning(note)
        dispatcher = alerts.dispatcher(audit=audit, log=context.log.error, strict=False)
        for alert in found:
            context.log.info(alert.title)
            dispatcher.send(alert)  # with no channel it keeps the alert (channel "none")
        context.update_cursor(cursor)
        return SkipReason(f"{len(found)} compliance alert(s); this sensor alerts, it launches no runs")

    return _compliance_breach_sensor
