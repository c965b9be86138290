"""Azure drills through azure-mgmt-compute against the in-repo ARM fake (HTTPS): snapshot -> copy in
the paired location -> managed disk -> VM, measured and removed; the DR region without quota (ARM's
409 QuotaExceeded) fails at launch and removes the copy and the disk."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from qlrf.dr.drivers.azure import AzureDrillConfig, AzureDrillDriver
from qlrf.dr.runner import DrillRunner
from qlrf.dr.scope import resolve_scope
from qlrf.inventory.connectors.azure import AzureConfig
from qlrf.remediation.audit import AuditLog
from qlrf.warehouse import Warehouse
from tests.dr.support import drill_plan
from tests.fakes.azure_fake import start_azure_fake
from tests.fakes.fixtures import REFERENCE_TIME, azure_fixture

pytestmark = pytest.mark.slow
START = REFERENCE_TIME + timedelta(hours=1)


@pytest.fixture()
def arm():
    fx = azure_fixture(subscriptions=1, vms_per_sub=4, vmss_uniform_size=0, snapshot_ratio=1.0)
    sub = next(iter(fx["subscriptions"]))
    with start_azure_fake(fx) as fake:
        yield fake, sub, fx["subscriptions"][sub]


def protected(data):
    """Standalone VMs whose OS disk has a snapshot."""
    sources = {s["properties"]["creationData"]["sourceResourceId"].lower() for s in data["snapshots"]}
    return [v for v in data["virtualMachines"]
            if v["properties"]["storageProfile"]["osDisk"]["managedDisk"]["id"].lower() in sources][:2]


def inventory(sub, vms):
    return [{"asset_id": v["properties"]["vmId"], "platform": "azure", "account": sub, "region": v["location"],
             "name": v["name"], "state": "running", "site": "syd1"} for v in vms]


def run(fake, sub, vms, tmp_path):
    config = AzureConfig(base_url=fake.base_url, connection_verify=fake.ca_path, retry_total=0, subscriptions=[sub])
    driver = AzureDrillDriver(AzureDrillConfig(azure=config, credential=fake.credential(), lro_polling_interval=0.01))
    runner = DrillRunner(driver, audit=AuditLog(f"sqlite:///{tmp_path / 'audit.db'}"), warehouse=Warehouse(str(tmp_path / "wh")),
                         actor="cli:tester", now=lambda: START, poll_interval=0.01)
    plan = drill_plan("azure", target="australiasoutheast", scope={"site": "syd1"}, rpo=30 * 86400)
    plan = plan.model_copy(update={"spec": plan.spec.model_copy(update={"target": plan.spec.target.model_copy(
        update={"resource_group": "rg-dr"})})}).sealed()
    return runner.run(plan, resolve_scope(plan, inventory(sub, vms)))


def drill_resources(fake, sub):
    return sorted(r["name"] for r in fake.state.by_sub[sub.lower()] if "qlrf:drill" in (r.get("tags") or {}))


def test_vms_are_restored_in_the_paired_location_measured_and_removed(arm, tmp_path):
    fake, sub, data = arm
    vms = protected(data)
    assert len(vms) == 2
    before = len(fake.state.by_sub[sub.lower()])
    result = run(fake, sub, vms, tmp_path)
    for row in result.rows:
        assert row["outcome"] == "passed", row["reason"]
        assert row["target"] == "australiasoutheast" and row["rto_seconds"] > 0 and row["rpo_achieved_seconds"] > 0
        assert [s["status"] for s in json.loads(row["steps"])] == ["ok"] * 6
        assert sorted(e["kind"] for e in json.loads(row["cleanup"])) == ["disk", "snapshot", "vm"] and row["cleaned_up"]
    assert drill_resources(fake, sub) == [] and len(fake.state.by_sub[sub.lower()]) == before


def test_a_paired_location_without_quota_fails_at_launch_and_removes_the_copy_and_disk(arm, tmp_path):
    fake, sub, data = arm
    fake.exhaust_quota(sub)
    result = run(fake, sub, protected(data), tmp_path)
    for row in result.rows:
        assert row["outcome"] == "failed"
        assert row["reason"].startswith("launch: no capacity in australiasoutheast (QuotaExceeded)")
        assert sorted(e["kind"] for e in json.loads(row["cleanup"])) == ["disk", "snapshot"] and row["cleaned_up"]
    assert drill_resources(fake, sub) == []
