"""vSphere drill driver (pyVmomi): clone the VM from its newest snapshot (or the golden template) into
the DR datacenter, power the clone on, prove it runs.

- ``locate``: the VM by instanceUuid (the inventory's asset id; else by name), then the newest
  snapshot of its snapshot tree (``createTime``). ``restore_from.kind: template``: the golden template
  by name (no point in time: the RPO is unknown and the ``rpo_within_objective`` check says so).
- ``copy``: nothing to copy on vSphere (skipped).
- ``provision``: ``CloneVM_Task`` (full clone, from the snapshot when there is one) into the DR
  datacenter's VM folder and resource pool (the plan's, else the first cluster's), powered off,
  named ``qlrf-drill-<drill>-<vm>``; once done, the drill's tags become custom attributes on the clone.
- ``launch``: ``PowerOnVM_Task``.
- ``verify``: ``poweredOn``, ``connected`` and not ``red``.
- ``leftovers``: VMs named ``qlrf-drill-*`` in the DR datacenter; ``remove``: power off, ``Destroy_Task``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from qlrf.dr.drivers import (
    NAME_PREFIX,
    TAG_DRILL,
    TAG_VM,
    DrillContext,
    DrillStepError,
    Resource,
    RestorePoint,
    VmRun,
)
from qlrf.dr.plans import Target
from qlrf.envparse import environ
from qlrf.inventory.connectors.vsphere import VcenterConfig, connect, disconnect
from qlrf.inventory.connectors.vsphere import config_from_env as _vsphere_from_env

# qlrf-drill-<plan id>-<YYYYmmdd>-<HHMMSS>-<6 hex>-<vm name>: the drill id, from a name alone
_DRILL_NAME = re.compile(rf"^{NAME_PREFIX}(.+?-\d{{8}}-\d{{6}}-[0-9a-f]{{6}})-")


def drill_of_name(name: str) -> str | None:
    hit = _DRILL_NAME.match(name or "")
    return hit.group(1) if hit else None


@dataclass
class VsphereDrillConfig:
    vcenters: list[VcenterConfig] = field(default_factory=list)
    connect_timeout: float = 10.0
    http_timeout: float = 300.0
    destroy_timeout: float = 300.0


def config_from_env(env: Mapping[str, str] | None = None) -> VsphereDrillConfig:
    """The discovery connector's variables (QLRF_VSPHERE_HOSTS, _USER, _PASSWORD, ...); read when called."""
    return VsphereDrillConfig(vcenters=_vsphere_from_env(environ(env)).vcenters)


def _walk(snapshots: Any) -> list[Any]:
    out = []
    for s in snapshots or ():
        out.append(s)
        out.extend(_walk(s.childSnapshotList))
    return out


class VsphereDrillDriver:
    platform = "vsphere"

    def __init__(self, config: VsphereDrillConfig | None = None):
        self.config = config or VsphereDrillConfig()
        self._sis: dict[str, Any] = {}
        self._lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------------------------
    def _vcenter(self, account: str | None) -> VcenterConfig:
        for vc in self.config.vcenters:
            if account in (vc.label, vc.host, vc.scope):
                return vc
        if len(self.config.vcenters) == 1:
            return self.config.vcenters[0]
        raise DrillStepError(f"no vCenter configured for {account!r} (have {[vc.label for vc in self.config.vcenters]})")

    def si(self, account: str | None = None) -> Any:
        vc = self._vcenter(account)
        with self._lock:
            if vc.label not in self._sis:
                self._sis[vc.label] = connect(vc, connect_timeout=self.config.connect_timeout,
                                              http_timeout=self.config.http_timeout)
            return self._sis[vc.label]

    def close(self) -> None:
        with self._lock:
            for si in self._sis.values():
                disconnect(si)
            self._sis.clear()

    def _datacenter(self, si: Any, name: str) -> Any:
        from pyVmomi import vim

        for dc in si.RetrieveContent().rootFolder.childEntity:
            if isinstance(dc, vim.Datacenter) and dc.name == name:
                return dc
        raise DrillStepError(f"DR datacenter {name!r} not found")

    def _pool(self, dc: Any, target: Target) -> Any:
        from pyVmomi import vim

        pools = []
        for entity in dc.hostFolder.childEntity:
            if isinstance(entity, vim.ComputeResource) and entity.resourcePool is not None:
                pools.append(entity.resourcePool)
                pools.extend(entity.resourcePool.resourcePool or ())
        if target.resource_pool:
            named = [p for p in pools if p.name == target.resource_pool]
            if not named:
                raise DrillStepError(f"resource pool {target.resource_pool!r} not found in datacenter {dc.name}")
            return named[0]
        if not pools:
            raise DrillStepError(f"datacenter {dc.name} has no cluster resource pool to restore into")
        return pools[0]

    def _find(self, si: Any, name: str, *, template: bool) -> list[Any]:
        from pyVmomi import vim

        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        try:
            return [vm for vm in view.view if vm.name == name and bool(vm.config and vm.config.template) == template]
        finally:
            view.DestroyView()

    @staticmethod
    def _task_done(task: Any, what: str) -> bool:
        from pyVmomi import vim

        info = task.info
        if info.state == vim.TaskInfo.State.error:
            raise DrillStepError(f"{what} failed: {getattr(info.error, 'msg', None) or info.error}")
        return info.state == vim.TaskInfo.State.success

    # -- locate -----------------------------------------------------------------------------------
    def locate(self, ctx: DrillContext, run: VmRun) -> RestorePoint:
        vm = run.vm
        si = self.si(vm.account)
        source = si.RetrieveContent().searchIndex.FindByUuid(None, vm.asset_id, True, True)
        if source is None:
            hits = self._find(si, vm.name, template=False)
            source = hits[0] if len(hits) == 1 else None
        if source is None:
            raise DrillStepError(f"VM {vm.name!r} ({vm.asset_id}) not found on vCenter {self._vcenter(vm.account).label}")
        run.state["source"] = source
        spec = ctx.plan.spec.restore_from
        if spec.kind == "template":
            hits = self._find(si, spec.template, template=True)
            if not hits:
                raise DrillStepError(f"no restore point: golden template {spec.template!r} not found")
            run.state["clone_from"], run.state["snapshot"] = hits[0], None
            return RestorePoint(spec.template, None, "template")
        snaps = _walk(source.snapshot.rootSnapshotList if source.snapshot else None)
        if not snaps:
            raise DrillStepError(f"no restore point: VM {vm.name!r} has no snapshot")
        newest = max(snaps, key=lambda s: s.createTime)
        run.state["clone_from"], run.state["snapshot"] = source, newest.snapshot
        return RestorePoint(f"{vm.name}/{newest.name}", newest.createTime.astimezone(UTC), "snapshot",
                            {"snapshot": newest.snapshot._moId})

    # -- phases -----------------------------------------------------------------------------------
    def start(self, step: str, ctx: DrillContext, run: VmRun) -> bool:
        from pyVmomi import vim

        if step == "copy":
            return False
        if step == "provision":
            si = self.si(run.vm.account)
            dc = self._datacenter(si, ctx.target.region)
            folder = dc.vmFolder
            if ctx.target.folder:
                named = [f for f in dc.vmFolder.childEntity if isinstance(f, vim.Folder) and f.name == ctx.target.folder]
                if not named:
                    raise DrillStepError(f"VM folder {ctx.target.folder!r} not found in datacenter {dc.name}")
                folder = named[0]
            location = vim.vm.RelocateSpec(pool=self._pool(dc, ctx.target),
                                           deviceChange=self._nics(dc, run.state["clone_from"], ctx.target.network))
            spec = vim.vm.CloneSpec(location=location, powerOn=False, template=False)
            if run.state.get("snapshot") is not None:
                spec.snapshot = run.state["snapshot"]
            name = ctx.resource_name(run.vm)
            run.state["clone_name"] = name
            run.state["task"] = run.state["clone_from"].CloneVM_Task(folder=folder, name=name, spec=spec)
            return True
        if step == "launch":
            run.state["task"] = run.state["clone"].PowerOnVM_Task()
            return True
        return step == "verify"

    @staticmethod
    def _nics(dc: Any, source: Any, network: str | None) -> list[Any]:
        """Every NIC of the clone moved to the DR datacenter's ``network`` (none: the NICs stay as they
        are, which works where the source's networks exist in the DR datacenter too)."""
        from pyVmomi import vim

        if not network:
            return []
        nets = [n for n in dc.network if n.name == network]
        if not nets:
            raise DrillStepError(f"network {network!r} not found in datacenter {dc.name}")
        net = nets[0]
        changes = []
        for dev in source.config.hardware.device:
            if not isinstance(dev, vim.vm.device.VirtualEthernetCard):
                continue
            if isinstance(net, vim.dvs.DistributedVirtualPortgroup):
                dev.backing = vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(port=vim.dvs.PortConnection(
                    portgroupKey=net.key, switchUuid=net.config.distributedVirtualSwitch.uuid))
            else:
                dev.backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=net.name, network=net)
            changes.append(vim.vm.device.VirtualDeviceSpec(operation="edit", device=dev))
        return changes

    def ready(self, step: str, ctx: DrillContext, run: VmRun) -> bool:
        if step == "provision":
            if not self._task_done(run.state["task"], f"cloning {run.vm.name} into {ctx.target.region}"):
                return False
            clone = run.state["task"].info.result
            run.state["clone"] = clone
            run.resources.append(Resource("vm", clone._moId, ctx.target.region, run.vm.asset_id, ctx.drill_id,
                                          {"name": clone.name}))
            self._tag(run.vm.account, clone, ctx.tags(run.vm))
            return True
        if step == "launch":
            return self._task_done(run.state["task"], f"powering on the restored {run.vm.name}")
        if step == "verify":
            problem = self._health(run.state["clone"])
            if problem and "poweredOff" in problem:
                raise DrillStepError(f"restored VM {run.state['clone_name']} is {problem}, it will not become healthy")
            return problem is None
        return True

    def _tag(self, account: str, clone: Any, tags: Mapping[str, str]) -> None:
        from pyVmomi import vim

        cfm = self.si(account).RetrieveContent().customFieldsManager
        keys = {f.name: f.key for f in cfm.field or ()}
        for name, value in tags.items():
            if name not in keys:
                try:
                    keys[name] = cfm.AddCustomFieldDef(name=name, moType=vim.VirtualMachine).key
                except vim.fault.DuplicateName:
                    keys[name] = next(f.key for f in cfm.field if f.name == name)
            cfm.SetField(entity=clone, key=keys[name], value=value)

    @staticmethod
    def _health(clone: Any) -> str | None:
        from pyVmomi import vim

        rt = clone.runtime
        if rt.powerState != vim.VirtualMachine.PowerState.poweredOn:
            return f"power {rt.powerState}"
        if rt.connectionState != vim.VirtualMachine.ConnectionState.connected:
            return f"connection {rt.connectionState}"
        if clone.overallStatus == vim.ManagedEntity.Status.red:
            return "overall status red"
        return None

    def _attributes(self, account: str | None, vm: Any) -> dict[str, str]:
        cfm = self.si(account).RetrieveContent().customFieldsManager
        names = {f.key: f.name for f in (cfm.field if cfm else None) or ()}
        return {names.get(v.key, str(v.key)): v.value for v in vm.customValue or ()}

    def check(self, name: str, ctx: DrillContext, run: VmRun) -> str | None:
        clone = run.state.get("clone")
        if clone is None:
            return "no restored VM"
        if name == "running":
            return None if str(clone.runtime.powerState) == "poweredOn" else f"power {clone.runtime.powerState}"
        if name == "status_checks":
            return self._health(clone)
        if name == "tagged":
            value = self._attributes(run.vm.account, clone).get(TAG_DRILL)
            return None if value == ctx.drill_id else f"clone lacks {TAG_DRILL}={ctx.drill_id}"
        raise ValueError(f"unknown check {name!r}")

    def would_create(self, ctx: DrillContext, run: VmRun) -> list[str]:
        t = ctx.target
        source = f"snapshot {run.restore_point.id}" if run.restore_point.kind == "snapshot" else f"template {run.restore_point.id}"
        return [f"vm: {ctx.resource_name(run.vm)}, a full clone of {source} in datacenter {t.region}"
                f"{' pool ' + t.resource_pool if t.resource_pool else ''}{' folder ' + t.folder if t.folder else ''}, "
                f"tagged {TAG_DRILL}=<drill-id>",
                "power on: that clone (then destroyed by cleanup)"]

    # -- cleanup ----------------------------------------------------------------------------------
    def leftovers(self, target: Target, keep_drill: str | None = None) -> list[Resource]:
        from pyVmomi import vim

        found = []
        for vc in self.config.vcenters or [None]:
            si = self.si(vc.label if vc else None)
            dc = self._datacenter(si, target.region)
            content = si.RetrieveContent()
            view = content.viewManager.CreateContainerView(dc.vmFolder, [vim.VirtualMachine], True)
            try:
                vms = [vm for vm in view.view if vm.name.startswith(NAME_PREFIX)]
            finally:
                view.DestroyView()
            for vm in vms:
                attrs = self._attributes(vc.label if vc else None, vm)
                drill = attrs.get(TAG_DRILL) or drill_of_name(vm.name) or "?"
                found.append(Resource("vm", vm._moId, target.region, attrs.get(TAG_VM), drill,
                                      {**attrs, "name": vm.name, "vcenter": vc.label if vc else None}))
        return [r for r in found if keep_drill is None or r.drill_id != keep_drill]

    def remove(self, resources: list[Resource]) -> list[dict[str, Any]]:
        from pyVmomi import vim

        done = []
        for r in resources:
            entry = r.as_dict()
            try:
                si = self.si((r.detail or {}).get("vcenter"))
                vm = vim.VirtualMachine(r.id, si._stub)
                if vm.runtime.powerState == vim.VirtualMachine.PowerState.poweredOn:
                    self._wait(vm.PowerOffVM_Task(), f"powering off {r.id}")
                self._wait(vm.Destroy_Task(), f"destroying {r.id}")
                entry["removed"] = True
            except vim.fault.ManagedObjectNotFound:
                entry["removed"] = True
            except Exception as exc:  # noqa: BLE001 - try every resource, report each
                entry["removed"], entry["error"] = False, f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            done.append(entry)
        return done

    def _wait(self, task: Any, what: str) -> None:
        deadline = time.monotonic() + self.config.destroy_timeout
        delay = 0.02
        while not self._task_done(task, what):
            if time.monotonic() > deadline:
                raise DrillStepError(f"{what}: not finished after {self.config.destroy_timeout:g}s")
            time.sleep(delay)
            delay = min(1.0, delay * 2)


__all__ = ["VsphereDrillConfig", "VsphereDrillDriver", "config_from_env", "drill_of_name"]
