"""drift_findings_sensor over a real materialised partition: run keys, cursor, audit, alerts."""

from __future__ import annotations

from dagster import AssetMaterialization, MultiPartitionKey, build_sensor_context

from jobs.remediation import PLAN_OP, PLANNING_JOB
from qlrf.remediation.audit import AuditLog
from qlrf.remediation.findings import findings_from_partition
from qlrf.remediation.policy import RemediationPolicy
from qlrf.warehouse import Warehouse
from resources.remediation import RemediationResource
from resources.warehouse import WarehouseResource
from sensors.findings import build_drift_findings_sensor
from tests.sensors.support import DAY, CapturingAlerts

PARTITION = f"{DAY}|aws"


def _resources(root, url, policy_path=None):
    return {
        "warehouse": WarehouseResource(root=str(root)),
        "remediation": RemediationResource(database_url=url, policy_path=str(policy_path) if policy_path else None),
        "alerts": CapturingAlerts(database_url=url),
    }


def _tick(instance, resources, cursor=None):
    sensor = build_drift_findings_sensor()
    with build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        return sensor.evaluate_tick(context)


def _expected_findings(root, policy=None):
    wh = Warehouse(str(root))
    return findings_from_partition(
        wh.source("drift_scores", DAY, "aws"), wh.source("vm_drift", DAY, "aws"), policy or RemediationPolicy.load(), DAY
    )


def test_new_partition_requests_one_planning_run_per_finding(drift_day, db_url, captured):
    root, instance = drift_day
    findings = _expected_findings(root)
    assert {f.kind for f in findings} == {"drift_threshold", "revoked_image"}

    result = _tick(instance, _resources(root, db_url))
    requests = result.run_requests
    assert [r.run_key for r in requests] == [f"{PARTITION}|{f.fingerprint()}" for f in findings]
    assert len(set(r.run_key for r in requests)) == len(findings)
    first, finding = requests[0], findings[0]
    assert first.job_name == PLANNING_JOB
    config = first.run_config["ops"][PLAN_OP]["config"]
    assert config == {
        "partition": PARTITION, "day": DAY, "platform": "aws", "site": finding.site, "environment": finding.environment,
        "kind": finding.kind, "fingerprint": finding.fingerprint(), "requested_by": "sensor:drift_findings_sensor",
    }
    assert first.tags["qlrf/scope"] == finding.scope and first.tags["qlrf/partition"] == PARTITION
    assert int(result.cursor) > 0

    audit = AuditLog(db_url)
    records = audit.records(kind="sensor_request")
    assert [r.subject for r in records] == [r.run_key for r in requests]
    assert records[0].data["finding"]["kind"] == finding.kind and records[0].data["targets"] == len(finding.asset_ids)
    assert audit.verify().ok

    # One alert for the partition: threshold breaches and revoked images together.
    [alert] = captured
    breaches = sum(f.kind == "drift_threshold" for f in findings)
    assert alert.kind == "drift_findings" and alert.severity == "critical"  # prod scopes breach
    assert alert.title.startswith(f"aws {DAY}: {breaches} scope(s) above the drift threshold")

    # The next tick, from the cursor, has nothing new.
    again = _tick(instance, _resources(root, db_url), cursor=result.cursor)
    assert again.run_requests == []
    assert again.cursor == result.cursor
    assert "no new drift partition" in again.skip_message


def test_rematerialising_the_same_facts_asks_for_nothing_new(drift_day, db_url, captured):
    root, _ = drift_day
    from dagster import DagsterInstance

    instance = DagsterInstance.ephemeral()  # its own event log: a runless re-materialisation of the partition
    for _ in range(2):
        instance.report_runless_asset_event(
            AssetMaterialization("drift_scores", partition=MultiPartitionKey({"date": DAY, "platform": "aws"}))
        )
    first = _tick(instance, _resources(root, db_url))
    keys = [r.run_key for r in first.run_requests]
    assert len(keys) == len(set(keys)) == len(_expected_findings(root))  # two events, one partition: once

    instance.report_runless_asset_event(AssetMaterialization("drift_scores", partition=MultiPartitionKey({"date": DAY, "platform": "aws"})))
    second = _tick(instance, _resources(root, db_url), cursor=first.cursor)
    assert [r.run_key for r in second.run_requests] == keys  # same facts, same keys: Dagster launches none again
    assert len(AuditLog(db_url).records(kind="sensor_request")) == len(keys)  # audited once per key
    assert len(captured) == 1  # the partition's alert is deduplicated too


def test_revoked_image_below_the_threshold_still_requests_a_plan(drift_day, db_url, tmp_path, captured):
    root, instance = drift_day
    lenient = tmp_path / "remediation.yaml"
    lenient.write_text("version: 1\nenvironments:\n  dev: {drift_threshold: 100}\n  staging: {drift_threshold: 100}\n"
                       "  prod: {drift_threshold: 100}\n")
    policy = RemediationPolicy.load(lenient)
    findings = _expected_findings(root, policy)
    assert findings and all(f.kind == "revoked_image" and f.drift_score <= f.threshold and f.revoked > 0 for f in findings)

    result = _tick(instance, _resources(root, db_url, lenient))
    assert [r.run_key for r in result.run_requests] == [f"{PARTITION}|{f.fingerprint()}" for f in findings]
    assert {r.tags["qlrf/finding_kind"] for r in result.run_requests} == {"revoked_image"}

    # With revoked_image_always_breaches off and nothing above the threshold, nothing is requested.
    off = tmp_path / "off.yaml"
    off.write_text(lenient.read_text() + "revoked_image_always_breaches: false\n")
    quiet = _tick(instance, _resources(root, db_url, off))
    assert quiet.run_requests == [] and "no finding in 1 new partition(s)" in quiet.skip_message


def test_a_partition_missing_from_the_warehouse_is_skipped_not_fatal(drift_day, db_url, tmp_path, captured):
    _, instance = drift_day
    result = _tick(instance, _resources(tmp_path / "empty-warehouse", db_url))
    assert result.run_requests == [] and result.cursor is not None


def test_a_bad_alert_setting_does_not_stop_planning(drift_day, db_url, monkeypatch):
    from resources.alerts import AlertsResource

    root, instance = drift_day
    monkeypatch.setenv("QLRF_ALERT_SLACK_URL", "not-a-url")
    resources = {**_resources(root, db_url), "alerts": AlertsResource(database_url=db_url)}
    result = _tick(instance, resources)
    assert len(result.run_requests) == len(_expected_findings(root))


def test_the_next_day_plans_the_same_scopes_again(drift_day, db_url, tmp_path, captured):
    """Plans the queue's limit deferred are not lost: the next day's partition asks for every finding again."""
    import shutil

    from dagster import DagsterInstance

    source, _ = drift_day
    root, next_day = tmp_path / "warehouse", "2026-11-21"
    shutil.copytree(source, root)
    for day_dir in list(root.glob(f"*/date={DAY}")):  # the same facts, one day later (findings persist)
        shutil.copytree(day_dir, day_dir.parent / f"date={next_day}")
    instance = DagsterInstance.ephemeral()
    instance.report_runless_asset_event(AssetMaterialization("drift_scores", partition=MultiPartitionKey({"date": DAY, "platform": "aws"})))
    first = _tick(instance, _resources(root, db_url))
    instance.report_runless_asset_event(
        AssetMaterialization("drift_scores", partition=MultiPartitionKey({"date": next_day, "platform": "aws"})))
    second = _tick(instance, _resources(root, db_url), cursor=first.cursor)
    scopes = [r.tags["qlrf/scope"] for r in first.run_requests]
    assert scopes and [r.tags["qlrf/scope"] for r in second.run_requests] == scopes  # every scope planned again
    assert all(r.run_key.startswith(f"{next_day}|aws|") for r in second.run_requests)
    assert not {r.run_key for r in second.run_requests} & {r.run_key for r in first.run_requests}  # new keys: Dagster launches them
    assert {r.run_config["ops"][PLAN_OP]["config"]["day"] for r in second.run_requests} == {next_day}
