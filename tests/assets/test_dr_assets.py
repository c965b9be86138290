"""dr_failover_scenarios and dr_trends over the materialised sample day (no drills: the sample has none),
the fleet report's DR section, and a bad target map failing the asset without touching yesterday's file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
from dagster import AssetSelection, materialize

from qlrf.dr.targets import load_targets
from qlrf.scoring.report import report_text
from qlrf.warehouse import Warehouse
from tests.helpers import all_assets, resources_for


def test_the_daily_graph_evaluates_every_configured_scenario(materialized_day):
    root, day = materialized_day
    wh = Warehouse(str(root))
    rows = {r["scenario"]: r for r in pq.read_table(wh.file("dr_failover_scenarios", day)).to_pylist()}
    assert set(rows) == {s.name for s in load_targets().scenarios}
    syd1 = rows["lose-syd1"]
    vm_dr = [pq.read_table(wh.file("vm_dr", day, p), columns=["site", "state"]).to_pylist()
             for p in ("aws", "azure", "gcp", "vsphere")]
    assert syd1["affected_vms"] == sum(1 for part in vm_dr for r in part if r["site"] == "syd1" and r["state"] != "terminated")
    assert syd1["rto_unmeasured_vms"] == syd1["affected_vms"] and syd1["verdict"] == "breached"  # no drill yet
    assert json.loads(syd1["detail"])["capacity"][0]["target"] == "sin1-dr"
    trends = pq.read_table(wh.file("dr_trends", day)).to_pylist()
    assert trends and all(0 <= t["readiness_score"] <= 70 and t["drill_credit"] == 0 for t in trends)  # no credit without drills
    text = report_text(wh, day)
    assert "Disaster recovery (readiness score 0-100" in text and "lose-syd1" in text and "no drill in 180 days" in text


def test_a_bad_target_map_fails_the_asset_and_keeps_the_previous_partition(materialized_day, tmp_path, monkeypatch):
    root, day = materialized_day
    copy = tmp_path / "warehouse"
    shutil.copytree(root, copy)
    before = Path(Warehouse(str(copy)).file("dr_failover_scenarios", day)).read_bytes()
    bad = tmp_path / "dr_targets.yaml"
    bad.write_text("version: 1\nobjectives: {rto_minutes: {prod: 60}}\ntargets: {t: {vcpu: 1, memory_gib: 1}}\n"
                   "sites: {syd1: nowhere}\n")
    monkeypatch.setenv("QLRF_DR_TARGETS", str(bad))
    result = materialize(all_assets(), selection=AssetSelection.assets("dr_failover_scenarios"), partition_key=day,
                         resources=resources_for(copy, tmp_path / "estate"), raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "sites.syd1: unknown target 'nowhere'" in failure.event_specific_data.error.to_string()
    assert Path(Warehouse(str(copy)).file("dr_failover_scenarios", day)).read_bytes() == before
