"""Standalone Azure VMs through azure-mgmt-compute against the HTTPS ARM fake: each VM is rebuilt
from the golden image keeping its NICs and data disks, a failing canary is rebuilt again from its
previous image, and a checkpoint loaded into a fresh driver rolls back; one plan may also carry a
scale set (the split between the two drivers)."""

from __future__ import annotations

import json

import pytest

from qlrf.inventory.connectors.azure import AzureConfig
from qlrf.remediation.drivers.azure import AzureDriverConfig, same_image
from qlrf.remediation.drivers.azure_vm import AzurePlanDriver
from qlrf.remediation.executor import execute_plan
from qlrf.remediation.gate import Gate
from tests.fakes.azure_fake import start_azure_fake
from tests.fakes.fixtures import azure_fixture
from tests.remediation.support import NOW, AfterWave, audit_log, dry_run_first, kinds, plan_for, sent


def _linux(vm) -> bool:
    props = vm["properties"]
    return "linuxConfiguration" in props.get("osProfile", {}) and not props.get("virtualMachineScaleSet")


@pytest.fixture()
def estate():
    fx = azure_fixture(subscriptions=1, vms_per_sub=14, vmss_uniform_size=4, vmss_flex_members=0, snapshot_ratio=0)
    sub = next(iter(fx["subscriptions"]))
    data = fx["subscriptions"][sub]
    by_loc: dict[str, list] = {}
    for vm in data["virtualMachines"]:
        if _linux(vm):
            by_loc.setdefault(vm["location"], []).append(vm)
    location, vms = max(by_loc.items(), key=lambda kv: len(kv[1]))
    vms = vms[:3]
    # the first VM has a data disk (attached, deleteOption Delete): a rebuild must keep it
    rg_id = vms[0]["id"].split("/providers/")[0]
    disk_id = f"{rg_id}/providers/Microsoft.Compute/disks/{vms[0]['name']}-data0"
    data["disks"].append({"id": disk_id, "name": f"{vms[0]['name']}-data0", "type": "Microsoft.Compute/disks",
                          "location": location, "managedBy": vms[0]["id"],
                          "properties": {"diskSizeGB": 64, "diskState": "Attached"}})
    vms[0]["properties"]["storageProfile"]["dataDisks"] = [
        {"lun": 0, "name": f"{vms[0]['name']}-data0", "createOption": "Attach", "caching": "ReadOnly",
         "deleteOption": "Delete", "managedDisk": {"id": disk_id, "storageAccountType": "Premium_LRS"}}]
    golden = next(v["id"] for v in reversed(data["galleryImageVersions"]) if "/images/rf-win" not in v["id"])
    with start_azure_fake(fx) as fake:
        fake.set_operation_polls(0)
        yield fake, sub, location, vms, golden


def make_driver(fake) -> AzurePlanDriver:
    config = AzureConfig(base_url=fake.base_url, connection_verify=fake.ca_path, retry_total=0)
    return AzurePlanDriver(AzureDriverConfig(azure=config, credential=fake.credential(), lro_polling_interval=0.01))


def make_plan(sub, location, vms, golden, **over):
    targets = [{"asset_id": vm["properties"]["vmId"], "platform": "azure", "account": sub, "region": location,
                "name": vm["name"]} for vm in vms]
    ids = [t["asset_id"] for t in targets]
    waves = [{"name": "canary", "canary": True, "instances": ids[:1]}, {"name": "batch-1", "instances": ids[1:]}]
    kwargs = {"instances": targets, "waves": waves, "to_image": golden, "platform": "azure",
              "rollback": {"strategy": "previous_image"}, "max_unavailable": 2}
    kwargs.update(over)
    return plan_for(**kwargs)


def run(plan, driver, audit, **kw):
    return execute_plan(plan, driver=driver, gate=Gate.embedded(), audit=audit, requested_by="sensor:drift_findings_sensor",
                        fleet_size=100, now=NOW, poll_interval=0.05, log=lambda _m: None, **kw)


def look(fake, vm):
    """(imageReference, NIC ids, data disk ids, power state) of the VM the fake now serves under that id."""
    now = fake.resource(vm["id"])
    props = now["properties"]
    storage = props["storageProfile"]
    power = next(s["code"] for s in props["instanceView"]["statuses"] if s["code"].startswith("PowerState/"))
    ref = {k: v for k, v in storage["imageReference"].items() if k != "exactVersion"}  # read-only, never sent
    return (ref, [n["id"] for n in props["networkProfile"]["networkInterfaces"]],
            [d["managedDisk"]["id"] for d in storage.get("dataDisks", [])], power)


def test_vms_are_rebuilt_from_the_golden_image_keeping_nics_and_data_disks(estate, tmp_path):
    fake, sub, location, vms, golden = estate
    plan = make_plan(sub, location, vms, golden)
    before = {vm["name"]: look(fake, vm) for vm in vms}
    old_os_disks = {vm["name"]: vm["properties"]["storageProfile"]["osDisk"]["managedDisk"]["id"] for vm in vms}
    dry_driver = make_driver(fake)
    dry, _ = dry_run_first(plan, dry_driver, tmp_path)
    # the canary, then the batch's two VMs down together (max_unavailable 2) before both are created
    assert [c.operation for c in dry.calls if c.operation != "Deallocate"] == [
        "Update", "Delete", "CreateOrUpdate", "Update", "Delete", "Update", "Delete", "CreateOrUpdate", "CreateOrUpdate"]
    stopped = sum(1 for b in before.values() if b[3] not in ("PowerState/running", "PowerState/starting"))  # Azure starts what it creates
    assert [c.operation for c in dry.calls].count("Deallocate") == stopped
    assert {vm["name"]: look(fake, vm) for vm in vms} == before

    audit = audit_log(f"sqlite:///{tmp_path / 'audit.db'}")
    driver = make_driver(fake)
    result = run(plan, driver, audit)
    assert result.state == "succeeded", result.reason
    assert sent(driver, params=False) == sent(dry_driver, params=False)
    for vm in vms:
        ref, nics, data_disks, power = look(fake, vm)
        was = before[vm["name"]][3]
        assert same_image(ref, {"id": golden})
        assert power == ("PowerState/running" if was in ("PowerState/running", "PowerState/starting")
                         else "PowerState/deallocated")  # Azure starts what it creates; a stopped VM is stopped again
        assert (nics, data_disks) == before[vm["name"]][1:3]  # same NICs, same data disks
        now = fake.resource(vm["id"])
        assert now["tags"]["qlrf:rebuilt-from"] == vm["properties"]["vmId"] != now["properties"]["vmId"]
        assert now["tags"]["site"] == vm["tags"]["site"]
        assert "managedBy" not in fake.resource(old_os_disks[vm["name"]])  # the old OS disk is kept, detached
    assert [len(w.details) - ("prepare" in w.details) for w in result.waves] == [1, 2]
    assert kinds(audit).count("health_gate") == 2 and audit.verify().ok


def test_failing_canary_is_rebuilt_from_its_previous_image(estate, tmp_path):
    fake, sub, location, vms, golden = estate
    plan = make_plan(sub, location, vms, golden, timeout_seconds=1)
    before = {vm["name"]: look(fake, vm) for vm in vms}
    audit = audit_log(f"sqlite:///{tmp_path / 'audit.db'}")
    stop = lambda index, _d: index == 0 and fake.set_power_state(vms[0]["id"], "PowerState/stopped")  # noqa: E731
    result = run(plan, AfterWave(make_driver(fake), stop), audit)

    assert result.state == "rolled_back" and "PowerState/stopped" in result.reason
    assert {vm["name"]: look(fake, vm) for vm in vms} == before  # previous image, same NICs and data disks, running
    canary = fake.resource(vms[0]["id"])
    assert canary["tags"]["qlrf:restores"] == vms[0]["properties"]["vmId"]
    disks = {d["name"] for d in fake.fixture["subscriptions"][sub]["disks"]}
    assert not any("-osdisk-q" in d for d in disks)  # the plan's OS disk went with the rebuilt VM
    assert kinds(audit)[-3:] == ["policy_decision", "rollback", "execution_end"]


def test_rollback_from_a_checkpoint_in_a_fresh_driver(estate, tmp_path):
    fake, sub, location, vms, golden = estate
    plan = make_plan(sub, location, vms, golden)
    before = {vm["name"]: look(fake, vm) for vm in vms}
    first = make_driver(fake)
    paused = run(plan, first, audit_log(f"sqlite:///{tmp_path / 'audit.db'}"), stop_after=0)
    assert paused.state == "paused" and same_image(look(fake, vms[0])[0], {"id": golden})
    state = json.loads(json.dumps(first.checkpoint()))

    fresh = make_driver(fake)
    fresh.restore(state)
    details = fresh.rollback(plan, [0])
    assert details[vms[0]["properties"]["vmId"]]["steps"][0] == "deleted the rebuilt VM"
    assert {vm["name"]: look(fake, vm) for vm in vms} == before


def test_a_windows_vm_is_refused_with_the_reason(estate):
    fake, sub, location, vms, golden = estate
    data = fake.fixture["subscriptions"][sub]
    win = next(vm for vm in data["virtualMachines"] if "windowsConfiguration" in vm["properties"]["osProfile"])
    plan = make_plan(sub, win["location"], [win], golden)
    with pytest.raises(Exception, match="Windows VM: its admin password cannot be read back"):
        make_driver(fake).prepare(plan)


def test_a_rebuild_cut_off_after_the_delete_is_rolled_back_from_the_checkpoint(estate):
    """The crash a journal exists for: the VM is deleted (NICs and disks detached), not yet created."""
    fake, sub, location, vms, golden = estate
    plan = make_plan(sub, location, vms[:1], golden, waves=[{"name": "canary", "canary": True,
                                                              "instances": [vms[0]["properties"]["vmId"]]}])
    before = look(fake, vms[0])
    first = make_driver(fake)
    first.prepare(plan)
    r = first.instances.rebuilds[vms[0]["properties"]["vmId"]]
    first.instances._delete(r, os_disk_option="Detach")
    assert vms[0]["id"].lower() not in fake.state.by_id
    state = json.loads(json.dumps(first.checkpoint()))

    fresh = make_driver(fake)
    fresh.restore(state)
    steps = fresh.rollback(plan, [0])[vms[0]["properties"]["vmId"]]["steps"]
    assert len(steps) == 1 and steps[0].startswith("created from")
    assert look(fake, vms[0])[:3] == before[:3]  # the previous image, the same NICs and data disks
