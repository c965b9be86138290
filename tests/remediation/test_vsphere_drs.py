"""vSphere VMs inside a DRS cluster through pyVmomi against vcsim: the clones take the old VMs'
place in the cluster's VM groups, anti-affinity rule and per-VM override, a mandatory VM-host rule
and a manual DRS level pin placement, a failing canary gives the place back, and a checkpoint
loaded into a fresh driver rolls back."""

from __future__ import annotations

import json
from datetime import date

import pytest

pytest.importorskip("pyVim.connect")

from pyVmomi import vim  # noqa: E402

from qlrf.inventory.connectors.vsphere import VcenterConfig  # noqa: E402
from qlrf.remediation.drivers.vsphere import VsphereDriverConfig  # noqa: E402
from qlrf.remediation.drivers.vsphere_drs import VsphereDrsDriver  # noqa: E402
from qlrf.remediation.executor import execute_plan  # noqa: E402
from qlrf.remediation.gate import Gate  # noqa: E402
from tests.remediation.support import NOW, AfterWave, audit_log, dry_run_first, kinds, plan_for  # noqa: E402
from tests.servers.vcsim import _wait_task, retrieve_vms, start_vcsim, vcsim_needs_build  # noqa: E402

pytestmark = [pytest.mark.slow] if vcsim_needs_build() else []
GOLDEN = "rhel9-golden-2026.11"
TODAY = date(2026, 11, 28)


@pytest.fixture()
def cluster():
    """4 VMs in one DRS cluster of 2 hosts; VM0+VM1 in VM group "app" that must run on host group
    "app-hosts" (the second host), VM0 and VM2 kept apart by anti-affinity rule "spread", VM1 with a
    per-VM override "manual"."""
    with start_vcsim(vms=4, clusters=1, hosts_per_cluster=2) as server:
        si = server.connect()
        rows = sorted(retrieve_vms(si, ["name", "config.instanceUuid"]), key=lambda r: r["name"])
        content = si.RetrieveContent()
        dc = next(e for e in content.rootFolder.childEntity if isinstance(e, vim.Datacenter))
        spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(), powerOn=False, template=True)
        _wait_task(rows[0]["obj"].CloneVM_Task(folder=dc.vmFolder, name=GOLDEN, spec=spec))
        ccr = next(e for e in dc.hostFolder.childEntity if isinstance(e, vim.ClusterComputeResource))
        vms = [r["obj"] for r in rows]
        hosts = sorted(ccr.host, key=lambda h: h.name)
        cfg = vim.cluster.ConfigSpecEx(
            groupSpec=[vim.cluster.GroupSpec(operation="add", info=vim.cluster.VmGroup(name="app", vm=vms[:2])),
                       vim.cluster.GroupSpec(operation="add", info=vim.cluster.HostGroup(name="app-hosts", host=hosts[1:]))],
            rulesSpec=[vim.cluster.RuleSpec(operation="add", info=vim.cluster.VmHostRuleInfo(
                           name="app-on-app-hosts", enabled=True, mandatory=True, vmGroupName="app",
                           affineHostGroupName="app-hosts")),
                       vim.cluster.RuleSpec(operation="add", info=vim.cluster.AntiAffinityRuleSpec(
                           name="spread", enabled=True, vm=[vms[0], vms[2]]))],
            drsVmConfigSpec=[vim.cluster.DrsVmConfigSpec(operation="add", info=vim.cluster.DrsVmConfigInfo(
                key=vms[1], enabled=True, behavior="manual"))])
        _wait_task(ccr.ReconfigureComputeResource_Task(spec=cfg, modify=True))
        vc = VcenterConfig(host=server.host, port=server.port, user=server.user, password=server.password,
                           protocol=server.protocol, verify_tls=False)
        yield si, vc, rows[:3], ccr, hosts


def make_driver(vc):
    return VsphereDrsDriver(VsphereDriverConfig(vcenters=[vc], poll_interval=0.05, power_on_timeout=10, task_timeout=30,
                                                today=lambda: TODAY))


def make_plan(vc, rows, **over):
    uuids = [r["config.instanceUuid"] for r in rows]
    instances = [{"asset_id": r["config.instanceUuid"], "platform": "vsphere", "account": vc.label, "region": "DC0",
                  "name": r["name"]} for r in rows]
    waves = [{"name": "canary", "canary": True, "instances": uuids[:1]}, {"name": "rest", "instances": uuids[1:]}]
    kwargs = {"instances": instances, "waves": waves, "to_image": GOLDEN, "platform": "vsphere",
              "rollback": {"strategy": "restore_clone"}, "max_unavailable": 2}
    kwargs.update(over)
    return plan_for(**kwargs)


def run(plan, driver, audit, **kw):
    return execute_plan(plan, driver=driver, gate=Gate.embedded(), audit=audit, requested_by="sensor:drift_findings_sensor",
                        fleet_size=100, now=NOW, poll_interval=0.05, log=lambda _m: None, **kw)


def place(ccr):
    """Who is where: group/rule name -> VM names, overrides -> {VM name: behavior}."""
    config = ccr.configurationEx
    out = {g.name: sorted(v.name for v in g.vm or []) for g in config.group if isinstance(g, vim.cluster.VmGroup)}
    out.update({r.name: sorted(v.name for v in r.vm or []) for r in config.rule if not isinstance(r, vim.cluster.VmHostRuleInfo)})
    out["overrides"] = {o.key.name: o.behavior for o in config.drsVmConfig or []}
    return out


def test_clones_take_the_old_vms_place_in_the_drs_cluster(cluster, tmp_path):
    si, vc, rows, ccr, hosts = cluster
    plan = make_plan(vc, rows)
    before = place(ccr)
    dry_driver = make_driver(vc)
    dry, _ = dry_run_first(plan, dry_driver, tmp_path)
    assert [c.operation for c in dry.calls].count("ReconfigureComputeResource_Task") == 3
    assert place(ccr) == before  # the dry run changed nothing

    audit = audit_log(f"sqlite:///{tmp_path / 'audit.db'}")
    driver = make_driver(vc)
    result = run(plan, driver, audit)
    assert result.state == "succeeded", result.reason
    prep = result.waves[0].details["prepare"]
    drs = {prep[r["config.instanceUuid"]]["name"]: prep[r["config.instanceUuid"]]["drs"] for r in rows}
    vm0, vm1, vm2 = (r["name"] for r in rows)
    assert drs[vm1]["automation"] == "manual" and drs[vm2]["automation"] == "fullyAutomated"
    assert drs[vm0]["pin_host"] == hosts[1]._moId and drs[vm2]["pin_host"] is None
    after = place(ccr)
    # same names: the clones, renamed, now hold the places; the kept old VM keeps its own override
    assert after.pop("overrides") == {**before.pop("overrides"), f"{vm1}-replaced-20261128": "manual"}
    assert after == before
    config = ccr.configurationEx
    group = next(g for g in config.group if g.name == "app")
    new = {v.name: v for v in si.RetrieveContent().viewManager.CreateContainerView(
        si.RetrieveContent().rootFolder, [vim.VirtualMachine], True).view}
    assert {v._moId for v in group.vm} == {new[vm0]._moId, new[vm1]._moId}
    assert all(new[n].config.instanceUuid != r["config.instanceUuid"] for n, r in zip((vm0, vm1), rows, strict=False))
    assert new[vm0].runtime.host._moId == hosts[1]._moId  # the mandatory VM-host rule's host
    assert new[f"{vm0}-replaced-20261128"].runtime.powerState == "poweredOff"
    assert kinds(audit).count("health_gate") == 2 and audit.verify().ok
    driver.close()


def test_failing_canary_gives_the_place_back(cluster, tmp_path):
    si, vc, rows, ccr, hosts = cluster
    plan = make_plan(vc, rows, timeout_seconds=1)
    groups_before = {g.name: sorted(v._moId for v in g.vm or []) for g in ccr.configurationEx.group
                     if isinstance(g, vim.cluster.VmGroup)}
    spread_before = sorted(v._moId for r in ccr.configurationEx.rule if r.name == "spread" for v in r.vm)
    audit = audit_log(f"sqlite:///{tmp_path / 'audit.db'}")
    driver = make_driver(vc)
    def power_off_canary(index, _details):
        for s in driver.swaps.values():
            if index == 0 and s.clone is not None:
                _wait_task(s.clone.PowerOffVM_Task())

    result = run(plan, AfterWave(driver, power_off_canary), audit)
    assert result.state == "rolled_back" and "poweredOff" in result.reason
    assert {g.name: sorted(v._moId for v in g.vm or []) for g in ccr.configurationEx.group
            if isinstance(g, vim.cluster.VmGroup)} == groups_before
    assert sorted(v._moId for r in ccr.configurationEx.rule if r.name == "spread" for v in r.vm) == spread_before
    assert rows[0]["obj"].name == rows[0]["name"] and rows[0]["obj"].runtime.powerState == "poweredOn"
    assert kinds(audit)[-3:] == ["policy_decision", "rollback", "execution_end"]
    driver.close()


def test_rollback_from_a_checkpoint_in_a_fresh_driver(cluster, tmp_path):
    si, vc, rows, ccr, hosts = cluster
    plan = make_plan(vc, rows)
    before = {g.name: sorted(v._moId for v in g.vm or []) for g in ccr.configurationEx.group
              if isinstance(g, vim.cluster.VmGroup)}
    first = make_driver(vc)
    assert run(plan, first, audit_log(f"sqlite:///{tmp_path / 'audit.db'}"), stop_after=0).state == "paused"
    assert {v._moId for g in ccr.configurationEx.group if g.name == "app" for v in g.vm} != set(before["app"])
    state = json.loads(json.dumps(first.checkpoint()))
    first.close()

    fresh = make_driver(vc)
    fresh.restore(state)
    fresh.rollback(plan, [0])
    fresh.close()
    assert {g.name: sorted(v._moId for v in g.vm or []) for g in ccr.configurationEx.group
            if isinstance(g, vim.cluster.VmGroup)} == before
    assert rows[0]["obj"].name == rows[0]["name"] and rows[0]["obj"].runtime.powerState == "poweredOn"
