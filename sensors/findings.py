"""drift_findings_sensor: a new drift partition with breaches -> one planning run per finding.

Every tick reads the ``drift_scores`` materialisations recorded after the cursor (the last event
storage id seen), oldest first, at most ``EVENTS_PER_TICK`` of them. For each materialised day x
platform partition (the newest event per partition in the batch) it reads ``drift_scores`` and
``vm_drift`` from the warehouse and computes the findings (qlrf.remediation.findings.findings_from_partition,
DuckDB over Parquet): a site x environment above its environment's drift threshold, or below it
but running a revoked image. Each finding becomes a RunRequest for ``remediation_planning_job``
with ``run_key = "<date>|<platform>|<finding fingerprint>"``: re-materialising a partition with
the same facts asks for nothing new (Dagster drops a run key it has seen), changed facts make new
keys. The run config carries the finding's scope and fingerprint; the job re-reads its targets.

With no cursor yet (first start) it plans only the newest day: of the newest ``EVENTS_PER_TICK``
materialisations it keeps those of the newest partition date, and the cursor moves past all of them.
The backlog of older days is not planned (a note says how many partitions it skipped): a first
start on an estate with history would otherwise fill the approval queue with stale plans, each
superseded by the next day's. To plan an older day, run ``qlrf plan propose --date D``.

Side effects, each at most once per run key: a ``sensor_request`` audit record, and one alert per
partition summarising its findings (threshold breaches and revoked images).

A plain ``@sensor`` over ``instance.fetch_materializations`` (rather than ``@asset_sensor``, which
hands over one event per tick, or ``@multi_asset_sensor``): it needs each event's partition and a
storage-id cursor, both public in 1.13.
"""


import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from assets.partitions import daily_platform
from jobs.remediation import PLANNING_JOB, planning_run_config, remediation_planning_job
from qlrf.alerts.dispatch import Dispatcher
from qlrf.alerts.model import Alert
from qlrf.events.emit import drift_detected
from qlrf.events.outbox import Outbox
from qlrf.remediation.findings import Finding, findings_from_partition
from qlrf.remediation.policy import RemediationPolicy
from qlrf.tenancy.scope import acts_for_every_org
from qlrf.warehouse import PartitionMissing, Warehouse
from resources.alerts import AlertsResource
from resources.remediation import RemediationResource
from resources.warehouse import WarehouseResource

SENSOR_NAME = "drift_findings_sensor"
WATCHED = AssetKey("drift_scores")
EVENTS_PER_TICK = 200


@dataclass
class FindingTick:
    """What one evaluation decided: the run requests, the new cursor, what it skipped and why."""

    requests: list[RunRequest] = field(default_factory=list)
    cursor: str | None = None
    partitions: list[str] = field(default_factory=list)
    findings: list[tuple[str, Finding]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


def run_key(partition: str, finding: Finding) -> str:
    return f"{partition}|{finding.fingerprint()}"


def _day_platform(partition: str) -> tuple[str, str]:
    key = daily_platform.get_partition_key_from_str(str(partition))
    dims = key.keys_by_dimension
    return dims["date"], dims["platform"]


def findings_alert(partition: str, findings: list[Finding]) -> Alert:
    """One alert per partition: its threshold breaches and revoked images."""
    day, platform = _day_platform(partition)
    breaches = [f for f in findings if f.kind == "drift_threshold"]
    revoked = [f for f in findings if f.revoked > 0]
    prod = any(f.environment == "prod" for f in findings)
    digest = hashlib.sha256("\n".join(sorted(f.fingerprint() for f in findings)).encode()).hexdigest()[:16]
    lines = [f"• {f.summary()}" for f in sorted(findings, key=lambda f: (f.kind != "drift_threshold", -f.drift_score))[:15]]
    if len(findings) > 15:
        lines.append(f"… and {len(findings) - 15} more")
    return Alert(
        kind="drift_findings",
        severity="critical" if prod else "warning",
        title=f"{platform} {day}: {len(breaches)} scope(s) above the drift threshold, {len(revoked)} running revoked images",
        text="\n".join(lines) + "\nPlanning runs were requested; plans needing a human wait on the Approvals page.",
        key=f"drift_findings|{partition}|{digest}",
        fields={"platform": platform, "date": day, "threshold_breaches": len(breaches), "revoked_image_scopes": len(revoked),
                "revoked_vms": sum(f.revoked for f in findings)},
    )


def evaluate_findings(
    instance: DagsterInstance,
    wh: Warehouse,
    policy: RemediationPolicy,
    cursor: str | None,
    *,
    audit: Any = None,
    dispatcher: Dispatcher | None = None,
    limit: int = EVENTS_PER_TICK,
    sensor_name: str = SENSOR_NAME,
    log: Callable[[str], None] = lambda _m: None,
) -> FindingTick:
    """The sensor's tick as a plain function (tests and bench/bench_sensor_tick.py call it)."""
    tick = FindingTick(cursor=cursor)
    records = _first_start(instance, limit, tick) if not cursor else instance.fetch_materializations(
        AssetRecordsFilter(asset_key=WATCHED, after_storage_id=int(cursor)), limit=limit, ascending=True
    ).records
    newest: dict[str, int] = {}
    for record in records:
        tick.cursor = str(max(record.storage_id, int(tick.cursor or 0)))
        if record.partition_key is None:
            tick.notes.append(f"event {record.storage_id}: drift_scores without a partition, ignored")
            continue
        newest[str(record.partition_key)] = record.storage_id
    requested_by = f"sensor:{sensor_name}"
    for partition, storage_id in sorted(newest.items(), key=lambda kv: kv[1]):
        try:
            day, platform = _day_platform(partition)
        except Exception:  # noqa: BLE001 - not one of ours
            tick.notes.append(f"{partition}: not a date|platform partition, ignored")
            continue
        try:
            findings = findings_from_partition(
                wh.source("drift_scores", day, platform), wh.source("vm_drift", day, platform), policy, day
            )
        except PartitionMissing as exc:
            tick.notes.append(f"{partition}: {exc}")
            continue
        tick.partitions.append(partition)
        for finding in findings:
            key = run_key(partition, finding)
            tick.findings.append((partition, finding))
            tick.requests.append(
                RunRequest(
                    run_key=key,
                    job_name=PLANNING_JOB,
                    run_config=planning_run_config(partition, finding, requested_by),
                    tags={
                        "qlrf/partition": partition,
                        "qlrf/scope": finding.scope,
                        "qlrf/finding_kind": finding.kind,
                        "qlrf/finding": finding.fingerprint()[:16],
                        "qlrf/trigger": sensor_name,
                    },
                )
            )
            if audit is not None:
                audit.append_once("sensor_request", requested_by, key, {
                    "job": PLANNING_JOB, "run_key": key, "partition": partition, "event_storage_id": storage_id,
                    "finding": {k: v for k, v in finding.to_dict().items() if k != "asset_ids"},
                    "fingerprint": finding.fingerprint(), "targets": len(finding.asset_ids),
                })
        if findings:
            alert = findings_alert(partition, findings)
            tick.alerts.append(alert)
            if dispatcher is not None:  # with no channel it keeps the alert (channel "none")
                dispatcher.send(alert)
        log(f"{partition}: {len(findings)} finding(s)")
    return tick


def _first_start(instance: DagsterInstance, limit: int, tick: FindingTick) -> list:
    """The newest partition date's records (oldest first); the cursor moves past every record read."""
    records = instance.fetch_materializations(AssetRecordsFilter(asset_key=WATCHED), limit=limit, ascending=False).records
    if not records:
        return []
    tick.cursor = str(max(r.storage_id for r in records))
    days: dict[int, str] = {}
    for record in records:
        try:
            days[record.storage_id] = _day_platform(str(record.partition_key))[0]
        except Exception:  # noqa: BLE001 - no or foreign partition: reported by the caller
            days[record.storage_id] = ""
    newest_day = max(days.values())
    kept = [r for r in records if days[r.storage_id] in (newest_day, "")]
    backlog = {str(r.partition_key) for r in records if days[r.storage_id] not in (newest_day, "")}
    if backlog:
        tick.notes.append(f"first start: planning only the newest day {newest_day}; {len(backlog)} older partition(s) "
                          "not planned (qlrf plan propose --date D plans one)")
    return sorted(kept, key=lambda r: r.storage_id)


def build_drift_findings_sensor(
    default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
    *,
    name: str = SENSOR_NAME,
    minimum_interval_seconds: int = 60,
) -> SensorDefinition:
    """The finding sensor with the given default status (pipelines/definitions.py decides it)."""

    @sensor(
        name=name,
        job=remediation_planning_job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            "New drift_scores partitions -> one remediation_planning_job run per finding (threshold breach or "
            "revoked image), run key <date>|<platform>|<fingerprint>; audits sensor_request, alerts per partition."
        ),
    )
    @acts_for_every_org("drift_findings_sensor")
    def _drift_findings_sensor(
        context: SensorEvaluationContext,
        warehouse: WarehouseResource,
        remediation: RemediationResource,
        alerts: AlertsResource,
    ):
        audit = remediation.audit()
        tick = evaluate_findings(
            context.instance, warehouse.get(), remediation.policy(), context.cursor,
            audit=audit, dispatcher=alerts.dispatcher(audit=audit, log=context.log.error, strict=False),
            sensor_name=name, log=context.log.info,
        )
        for note in tick.notes:
            context.log.warning(note)
        # drift.detected events (stable ids: a re-read partition writes nothing new) for the relay to publish
        Outbox(remediation.database_url).write(drift_detected((f for _, f in tick.findings), datetime.now(UTC)))
        if tick.requests:
            return SensorResult(run_requests=tick.requests, cursor=tick.cursor)
        reason = f"no finding in {len(tick.partitions)} new partition(s)" if tick.partitions else "no new drift partition"
        return SensorResult(skip_reason=SkipReason(reason), cursor=tick.cursor)

    return _drift_findings_sensor


__all__ = ["EVENTS_PER_TICK", "SENSOR_NAME", "FindingTick", "build_drift_findings_sensor", "evaluate_findings", "run_key"]
