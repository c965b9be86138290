"""vSphere drills through pyVmomi against vcsim: clone from the newest snapshot (or the golden
template) into the DR datacenter, power on, prove it runs, measure, destroy the clones.

vcsim 0.24.2 copies a clone's NICs from the source and ignores ``spec.location.deviceChange``, so a
NIC on DC0's distributed switch cannot be cloned into DC1 (InvalidArgument switchUuid). The estate
here therefore puts the protected VMs on the standard "VM Network" (a port group name both
datacenters have), the usual DR set-up; a real vCenter also honours the plan's ``target.network``."""

from __future__ import annotations

import json
from datetime import date

import pytest

pytest.importorskip("pyVim.connect")
from pyVmomi import vim  # noqa: E402

from qlrf.dr.drivers.vsphere import VsphereDrillConfig, VsphereDrillDriver  # noqa: E402
from qlrf.dr.records import drill_history  # noqa: E402
from qlrf.dr.runner import DrillRunner  # noqa: E402
from qlrf.dr.scope import resolve_scope  # noqa: E402
from qlrf.inventory.connectors.vsphere import VcenterConfig  # noqa: E402
from qlrf.remediation.audit import AuditLog  # noqa: E402
from qlrf.warehouse import Warehouse  # noqa: E402
from tests.dr.support import drill_plan  # noqa: E402
from tests.servers.vcsim import _wait_task, retrieve_vms, start_vcsim  # noqa: E402

pytestmark = pytest.mark.slow
GOLDEN = "rhel9-golden-2026.11"


@pytest.fixture(scope="module")
def vcsim():
    with start_vcsim(vms=8, datacenters=2) as server:
        si = server.connect()
        rows = sorted((r for r in retrieve_vms(si, ["name", "config.instanceUuid"]) if r["name"].startswith("DC0_")),
                      key=lambda r: r["name"])
        content = si.RetrieveContent()
        dc0 = next(e for e in content.rootFolder.childEntity if isinstance(e, vim.Datacenter) and e.name == "DC0")
        for r in rows:
            standard_network(r["obj"], dc0)
        for r in rows[:-1]:  # the last DC0 VM has no snapshot: no restore point
            _wait_task(r["obj"].CreateSnapshot_Task(name="nightly", description="", memory=False, quiesce=False))
        spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(), powerOn=False, template=True)
        _wait_task(rows[0]["obj"].CloneVM_Task(folder=dc0.vmFolder, name=GOLDEN, spec=spec))
        vc = VcenterConfig(host=server.host, port=server.port, user=server.user, password=server.password,
                           protocol=server.protocol, verify_tls=False)
        yield si, vc, rows


def standard_network(vm, dc):
    net = next(n for n in dc.network if n.name == "VM Network")
    changes = []
    for dev in vm.config.hardware.device:
        if isinstance(dev, vim.vm.device.VirtualEthernetCard):
            dev.backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=net.name, network=net)
            changes.append(vim.vm.device.VirtualDeviceSpec(operation="edit", device=dev))
    _wait_task(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=changes)))


def inventory(vc, rows):
    return [{"asset_id": r["config.instanceUuid"], "platform": "vsphere", "account": vc.label, "region": "DC0",
             "name": r["name"], "state": "running", "site": "syd1"} for r in rows]


def clones(si):
    return sorted(r["name"] for r in retrieve_vms(si, ["name"]) if r["name"].startswith("qlrf-drill-"))


def run(vc, rows, tmp_path, plan):
    audit = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}")
    runner = DrillRunner(VsphereDrillDriver(VsphereDrillConfig(vcenters=[vc])), audit=audit,
                         warehouse=Warehouse(str(tmp_path / "wh")), actor="cli:tester", poll_interval=0.05)
    vms = resolve_scope(plan, inventory(vc, rows))
    return runner.run(plan, vms), audit


def test_vms_are_cloned_from_their_newest_snapshot_into_the_dr_datacenter_and_destroyed(vcsim, tmp_path):
    si, vc, rows = vcsim
    seen = []
    plan = drill_plan("vsphere", target="DC1")
    audit = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}")
    runner = DrillRunner(VsphereDrillDriver(VsphereDrillConfig(vcenters=[vc])), audit=audit,
                         warehouse=Warehouse(str(tmp_path / "wh")), actor="cli:tester", poll_interval=0.05)
    result = runner.run(plan, resolve_scope(plan, inventory(vc, rows)),
                        on_step=lambda step, _n: seen.append((step, clones(si))))
    by_asset = {r["asset_id"]: r for r in drill_history(Warehouse(str(tmp_path / "wh")), date.today(), days=1).to_pylist()}
    protected, missing = rows[:-1], rows[-1]
    for r in protected:
        row = by_asset[r["config.instanceUuid"]]
        assert row["outcome"] == "passed", row["reason"]
        assert row["restore_point_id"] == f"{r['name']}/nightly" and row["target"] == "DC1"
        assert row["rto_seconds"] > 0 and row["rpo_achieved_seconds"] >= 0
        assert [s["status"] for s in json.loads(row["steps"])] == ["ok", "skipped", "ok", "ok", "ok", "ok"]
        assert [e["kind"] for e in json.loads(row["cleanup"])] == ["vm"] and row["cleaned_up"]
    row = by_asset[missing["config.instanceUuid"]]
    assert row["outcome"] == "failed" and row["reason"] == f"locate: no restore point: VM '{missing['name']}' has no snapshot"
    # while it ran, the clones existed in DC1 under the drill's names; afterwards none is left
    during = dict(seen)["verify"]
    assert len(during) == len(protected) and all(n.startswith(f"qlrf-drill-{result.drill_id}-") for n in during)
    assert clones(si) == []
    assert result.outcome == "failed"  # one VM had no restore point


def test_restore_from_the_golden_template_has_no_rpo_and_says_so(vcsim, tmp_path):
    si, vc, rows = vcsim
    plan = drill_plan("vsphere", target="DC1", scope={"vms": [rows[0]["config.instanceUuid"]]},
                      restore_from={"kind": "template", "template": GOLDEN})
    result, _ = run(vc, rows, tmp_path, plan)
    row = result.rows[0]
    assert row["outcome"] == "deviated" and row["rpo_achieved_seconds"] is None and row["healthy_at"] is not None
    assert row["reason"] == "steady_state_after: rpo_within_objective: no restore point time: RPO unknown"
    assert clones(si) == []
