"""drift_findings_sensor's first tick plans only the newest day, not the backlog (issue 12 item 8)."""

from __future__ import annotations

from dagster import AssetKey, AssetMaterialization, DagsterInstance

from qlrf.remediation.policy import RemediationPolicy
from qlrf.warehouse import Warehouse
from sensors.findings import evaluate_findings
from tests.sensors.support import DAY

OLDER = ("2026-11-18", "2026-11-19")  # no warehouse data: planning them would note a missing partition


def _report(instance: DagsterInstance, partition: str) -> None:
    instance.report_runless_asset_event(AssetMaterialization(asset_key="drift_scores", partition=partition))


def test_first_tick_starts_at_the_newest_partition(drift_day):
    root, _ = drift_day
    instance = DagsterInstance.ephemeral()
    for day in OLDER:
        _report(instance, f"{day}|aws")
    _report(instance, f"{DAY}|aws")
    _report(instance, f"{OLDER[0]}|gcp")  # a late backfill of an old day, still before the first start
    wh, policy = Warehouse(str(root)), RemediationPolicy.load()

    first = evaluate_findings(instance, wh, policy, None)
    assert first.partitions == [f"{DAY}|aws"]
    assert first.requests and {r.tags["qlrf/partition"] for r in first.requests} == {f"{DAY}|aws"}
    assert first.notes == [f"first start: planning only the newest day {DAY}; 3 older partition(s) not planned "
                           "(qlrf plan propose --date D plans one)"]
    latest = instance.fetch_materializations(AssetKey("drift_scores"), limit=1, ascending=False).records[0].storage_id
    assert first.cursor == str(latest)

    assert evaluate_findings(instance, wh, policy, first.cursor).requests == []  # nothing new
    _report(instance, f"{OLDER[1]}|gcp")  # after the first start, every new event is read
    later = evaluate_findings(instance, wh, policy, first.cursor)
    assert later.partitions == [] and later.notes and later.notes[0].startswith(f"{OLDER[1]}|gcp: ")
