"""The vSphere driver through pyVmomi against vcsim: clone from the golden template, power on,
swap names (the old VM kept, powered off), and the rollback that undoes the swap."""

from __future__ import annotations

import json
from datetime import date

import pytest

pytest.importorskip("pyVim.connect")

from pyVmomi import vim  # noqa: E402

from qlrf.inventory.connectors.vsphere import VcenterConfig  # noqa: E402
from qlrf.remediation.drivers.vsphere import VsphereDriver, VsphereDriverConfig, config_from_env  # noqa: E402
from qlrf.remediation.executor import execute_plan  # noqa: E402
from qlrf.remediation.gate import Gate  # noqa: E402
from tests.remediation.support import NOW, audit_log, dry_run_first, kinds, plan_for, sent  # noqa: E402
from tests.servers.vcsim import _wait_task, retrieve_vms, start_vcsim, vcsim_needs_build  # noqa: E402

pytestmark = [pytest.mark.slow] if vcsim_needs_build() else []
GOLDEN = "rhel9-golden-2026.11"
TODAY = date(2026, 11, 28)


@pytest.fixture(scope="module")
def vcsim():
    with start_vcsim(vms=7) as server:
        si = server.connect()
        rows = sorted(retrieve_vms(si, ["name", "config.instanceUuid"]), key=lambda r: r["name"])
        content = si.RetrieveContent()
        dc = next(e for e in content.rootFolder.childEntity if isinstance(e, vim.Datacenter))
        spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(), powerOn=False, template=True)
        _wait_task(rows[0]["obj"].CloneVM_Task(folder=dc.vmFolder, name=GOLDEN, spec=spec))
        cfm = content.customFieldsManager
        keys = {name: cfm.AddCustomFieldDef(name=name, moType=vim.VirtualMachine).key for name in ("site", "template")}
        for row in rows:
            cfm.SetField(entity=row["obj"], key=keys["site"], value="fra1")
            cfm.SetField(entity=row["obj"], key=keys["template"], value="rhel9-golden-2026.05")
        vc = VcenterConfig(host=server.host, port=server.port, user=server.user, password=server.password,
                           protocol=server.protocol, verify_tls=False)
        yield server, si, vc, rows, keys


@pytest.fixture(scope="module")
def gate():
    return Gate.embedded()


def make_driver(vc):
    return VsphereDriver(VsphereDriverConfig(vcenters=[vc], poll_interval=0.05, power_on_timeout=10, task_timeout=30,
                                             today=lambda: TODAY))


def make_plan(vc, rows, waves, **over):
    instances = [{"asset_id": r["config.instanceUuid"], "platform": "vsphere", "account": vc.label, "region": "DC0",
                  "name": r["name"]} for r in rows]
    kwargs = {"instances": instances, "waves": waves, "to_image": GOLDEN, "platform": "vsphere",
              "rollback": {"strategy": "restore_clone"}, "max_unavailable": 2}
    kwargs.update(over)
    return plan_for(**kwargs)


def by_name(si):
    return {r["name"]: r for r in retrieve_vms(si, ["name", "runtime.powerState", "config.instanceUuid", "customValue"])}


def vm_states(si):
    return {name: (r["runtime.powerState"], r["config.instanceUuid"]) for name, r in by_name(si).items()}


def run(plan, driver, gate, audit):
    return execute_plan(plan, driver=driver, gate=gate, audit=audit, requested_by="sensor:drift_findings_sensor",
                        fleet_size=100, now=NOW, poll_interval=0.1, log=lambda _m: None)


def test_clone_and_swap_in_two_waves(vcsim, gate, tmp_path):
    server, si, vc, rows, keys = vcsim
    targets = rows[:3]
    uuids = [r["config.instanceUuid"] for r in targets]
    waves = [{"name": "canary", "canary": True, "instances": uuids[:1]}, {"name": "rest", "instances": uuids[1:]}]
    audit = audit_log(f"sqlite:///{tmp_path / 'audit.db'}")
    driver = make_driver(vc)
    result = run(make_plan(vc, targets, waves), driver, gate, audit)
    driver.close()

    assert result.state == "succeeded", result.reason
    vms = by_name(si)
    for row in targets:
        name = row["name"]
        new, old = vms[name], vms[f"{name}-replaced-20261128"]
        assert new["runtime.powerState"] == "poweredOn" and old["runtime.powerState"] == "poweredOff"
        assert old["config.instanceUuid"] == row["config.instanceUuid"]  # the old VM, kept for rollback
        assert new["config.instanceUuid"] != row["config.instanceUuid"]
        values = {v.key: v.value for v in new["customValue"]}  # last value wins (vcsim appends)
        assert values[keys["site"]] == "fra1" and values[keys["template"]] == GOLDEN
    assert [sorted(w.details) for w in result.waves][1] == sorted(uuids[1:])
    assert kinds(audit).count("health_gate") == 2 and audit.verify().ok


class PowerOffCanary:
    def __init__(self, inner):
        self.inner = inner

    def prepare(self, plan):
        return self.inner.prepare(plan)

    def run_wave(self, plan, index):
        details = self.inner.run_wave(plan, index)
        if index == 0:
            swap = next(iter(self.inner.swaps.values()))
            _wait_task(swap.clone.PowerOffVM_Task())
        return details

    def health(self, plan, index):
        return self.inner.health(plan, index)

    def rollback(self, plan, waves_done):
        return self.inner.rollback(plan, waves_done)


def test_unhealthy_clone_is_destroyed_and_the_old_vm_restored(vcsim, gate, tmp_path):
    server, si, vc, rows, keys = vcsim
    target = rows[4]
    audit = audit_log(f"sqlite:///{tmp_path / 'audit.db'}")
    waves = [{"name": "canary", "canary": True, "instances": [target["config.instanceUuid"]]}]
    driver = make_driver(vc)
    result = run(make_plan(vc, [target], waves, timeout_seconds=1), PowerOffCanary(driver), gate, audit)
    driver.close()

    assert result.state == "rolled_back" and "power poweredOff" in result.reason
    vms = by_name(si)
    restored = vms[target["name"]]
    assert restored["config.instanceUuid"] == target["config.instanceUuid"] and restored["runtime.powerState"] == "poweredOn"
    assert not [n for n in vms if n.startswith(target["name"] + "-")]  # no clone, no renamed leftover
    assert set(result.rollback[target["config.instanceUuid"]]) == {"destroyed", "renamed_back", "powered_on"}
    assert kinds(audit)[-2:] == ["rollback", "execution_end"]


def test_config_from_env():
    config = config_from_env({"QLRF_VSPHERE_HOSTS": "vc1:8443", "QLRF_VSPHERE_USER": "u", "QLRF_VSPHERE_PASSWORD": "p",
                              "QLRF_REMEDIATION_POLL_SECONDS": "0.5"})
    assert [vc.label for vc in config.vcenters] == ["vc1:8443"] and config.poll_interval == 0.5


@pytest.mark.slow
def test_dry_run_changes_nothing_and_lists_the_calls_the_real_run_makes(vcsim, gate, tmp_path):
    server, si, vc, rows, keys = vcsim
    targets = [rows[3], rows[5]]  # the VMs the other tests of this module leave alone
    uuids = [r["config.instanceUuid"] for r in targets]
    plan = make_plan(vc, targets, [{"name": "canary", "canary": True, "instances": uuids[:1]},
                                     {"name": "rest", "instances": uuids[1:]}])
    before = vm_states(si)
    dry_driver = make_driver(vc)
    dry, audit = dry_run_first(plan, dry_driver, tmp_path)
    dry_driver.close()
    assert vm_states(si) == before
    ops = [c.operation for c in dry.calls]
    assert ops.count("CloneVM_Task") == 2 and ops.count("Rename_Task") == 4 and ops.count("PowerOffVM_Task") == 2
    assert "SetField" in ops
    real = make_driver(vc)
    result = run(plan, real, gate, audit)
    real.close()
    assert result.state == "succeeded", result.reason
    assert sent(real) == sent(dry_driver)


def test_a_clone_whose_result_was_never_recorded_is_found_and_destroyed_on_rollback(vcsim, tmp_path):
    """A run killed while CloneVM_Task ran leaves a clone its checkpoint does not name: a fresh driver
    restored from that checkpoint finds it by name and destroys it, so nothing is left over."""
    server, si, vc, rows, keys = vcsim
    target = rows[6]  # the one VM no other test of this module touches
    plan = make_plan(vc, [target], [{"name": "canary", "canary": True, "instances": [target["config.instanceUuid"]]}])
    first = make_driver(vc)
    first.prepare(plan)
    saved = json.loads(json.dumps(first.checkpoint()))  # before the clone: it names no clone
    swap = first.swaps[target["config.instanceUuid"]]
    spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(pool=swap.pool), powerOn=True, template=False)
    _wait_task(first.template[swap.vcenter].CloneVM_Task(folder=swap.folder, name=f"{swap.name}-qlrf-new", spec=spec))
    first.close()
    assert f"{target['name']}-qlrf-new" in by_name(si)

    fresh = make_driver(vc)
    fresh.restore(saved)
    details = fresh.rollback(plan, [0])
    fresh.close()
    assert "destroyed" in details[target["config.instanceUuid"]]
    vms = by_name(si)
    assert f"{target['name']}-qlrf-new" not in vms and vms[target["name"]]["runtime.powerState"] == "poweredOn"
