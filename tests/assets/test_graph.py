"""Materialise the whole daily graph in-process and check what lands in the warehouse."""

from __future__ import annotations

import pytest
from dagster import AssetKey, DagsterInstance, MultiPartitionKey

from qlrf.inventory.contract import INVENTORY_SCHEMA, PLATFORMS
from qlrf.scoring.report import report_text
from qlrf.warehouse import Warehouse
from tests.helpers import materialize_day


def test_every_partition_lands_with_passing_checks(materialized_day):
    root, day = materialized_day
    wh = Warehouse(str(root))
    orgs: set[str] = set()
    for platform in PLATFORMS:
        inv = wh.read("inventory", day, platform)
        assert inv.schema.remove_metadata().equals(INVENTORY_SCHEMA.remove_metadata())
        orgs |= set(inv["org"].to_pylist())  # stamped by the inventory asset (contract 1.1)
        assert set(wh.read("vm_drift", day, platform)["org"].to_pylist()) <= {"acme", "initech"}
        assert wh.read("vm_drift", day, platform).num_rows == inv.num_rows
        assert wh.run_metadata("inventory", day, platform)["complete"] is True
    summary = {r["platform"]: r for r in wh.read("fleet_report", day).to_pylist()}
    assert summary["all"]["vms"] == 12_200
    assert sum(summary[p]["vms"] for p in PLATFORMS) == 12_200
    for row in summary.values():
        assert 0 <= row["compliance_score"] <= 100 and 0 <= row["dr_readiness"] <= 100
    sites = wh.read("fleet_sites", day).to_pylist()
    assert sites == sorted(sites, key=lambda r: (-r["drift_score"], r["site"]))
    text = report_text(wh, day)
    assert "Most drifted sites" in text and sites[0]["site"] in text
    assert orgs == {"acme", "initech"}  # every sample VM has a real organisation: none "unassigned"
    by_org = [line.split() for line in text.split("By organisation:")[1].split("\n\n")[0].splitlines()[3:]]
    assert {r[0] for r in by_org} == orgs and sum(int(r[2]) for r in by_org) == 12_200


@pytest.mark.slow
def test_rerun_same_day_replaces_without_duplicates(tmp_path):
    instance = DagsterInstance.ephemeral()
    day = "2026-11-21"
    for _ in range(2):
        results = materialize_day(tmp_path / "wh", tmp_path / "estate", day, platforms=("vsphere",), instance=instance)
        assert all(r.success for r in results)
    wh = Warehouse(str(tmp_path / "wh"))
    inv = wh.read("inventory", day, "vsphere")
    assert inv.num_rows == 1400 and len(set(inv["asset_id"].to_pylist())) == 1400
    assert list((tmp_path / "wh" / "inventory" / f"date={day}" / "platform=vsphere").iterdir())[0].name == "part.parquet"
    key = MultiPartitionKey({"date": day, "platform": "vsphere"})
    events = instance.fetch_materializations(AssetKey("inventory"), limit=10).records
    assert [e.partition_key for e in events] == [str(key), str(key)]


@pytest.mark.slow
def test_a_failing_platform_writes_nothing_and_names_the_problem(tmp_path):
    from dagster import AssetSelection, materialize

    from resources.estate import EstateResource
    from tests.helpers import all_assets

    empty = tmp_path / "exports"
    empty.mkdir()
    (empty / "broken.json").write_text("[")
    from tests.helpers import resources_for

    res = {**resources_for(tmp_path / "wh", tmp_path / "estate"),
           "estate": EstateResource(estate_dir=str(tmp_path / "estate"), sources={"gcp": f"files:{empty}"})}
    result = materialize(all_assets(), selection=AssetSelection.assets("discovered_inventory", "inventory", "vm_snapshots", "cloud_images", "scaling_groups"),
                         partition_key=MultiPartitionKey({"date": "2026-11-22", "platform": "gcp"}), resources=res,
                         raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message + str(failure.step_failure_data.user_failure_data)
    assert "no VMs discovered, nothing written" in message and "broken.json" in message
    assert not Warehouse(str(tmp_path / "wh")).exists("inventory", "2026-11-22", "gcp")


def test_quality_job_runs_great_expectations(materialized_day):
    from pipelines.definitions import defs
    from resources.estate import EstateResource
    from resources.warehouse import WarehouseResource

    root, day = materialized_day
    result = defs.resolve_job_def("inventory_quality_job").execute_in_process(
        partition_key=MultiPartitionKey({"date": day, "platform": "azure"}),
        resources={"warehouse": WarehouseResource(root=str(root)), "estate": EstateResource()},
    )
    evaluations = [e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert [(ev.check_name, ev.passed) for ev in evaluations] == [("expectations_pass", True)]
    assert evaluations[0].metadata["expectations"].value == 13
    assert Warehouse(str(root)).read("inventory_quality", day, "azure").num_rows == 0


@pytest.mark.slow
def test_rejected_contract_keeps_the_previous_baseline_in_force(tmp_path):
    from datetime import date

    from qlrf.inventory.sample import ensure_estate

    estate = tmp_path / "estate"
    first = materialize_day(tmp_path / "wh", estate, "2026-11-10", platforms=("vsphere",))
    assert all(r.success for r in first)
    contract = ensure_estate(estate, date(2026, 11, 11)) / "golden" / "rhel-9.yaml"
    contract.write_text(contract.read_text().replace("channel: staging", "channel: prod", 1))  # tampered after signing
    second = materialize_day(tmp_path / "wh", estate, "2026-11-11", platforms=("vsphere",))
    golden, platform, _fleet = second
    assert not golden.success
    failure = next(e for e in golden.all_events if e.is_step_failure)
    assert "rhel-9.yaml" in str(failure.step_failure_data.user_failure_data.description)
    assert platform.success
    wh = Warehouse(str(tmp_path / "wh"))
    assert not wh.exists("golden_images", "2026-11-11")
    drift_meta = [m for m in platform.asset_materializations_for_node("drift_assets") if m.asset_key == AssetKey("vm_drift")][0]
    assert drift_meta.metadata["baseline_date"].value == "2026-11-10"
