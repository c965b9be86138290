"""vSphere execution driver (pyVmomi): clone from the golden template and swap.

Targets are standalone VMs (``asset_id`` = the VM's instanceUuid, ``account`` = the vCenter label
the discovery connector gives, ``name`` = the VM name); ``to_image.image_ref`` names the golden
template.

- ``prepare``: finds every target VM (SearchIndex.FindByUuid on the instanceUuid, else by name),
  its folder and resource pool, and the golden template (a VM with ``config.template`` and that name).
- ``run_wave``: per VM, ``max_unavailable`` at a time: ``CloneVM_Task`` of the template into the
  VM's folder and resource pool as ``<name>-qlrf-new``, powered on; wait until it is
  ``poweredOn``; then the swap: power the old VM off, rename it ``<name>-replaced-<YYYYMMDD>`` (it
  is kept for rollback) and rename the clone to ``<name>``; the clone takes the old VM's custom
  attributes, with ``template`` (where discovery reads a VM's image) set to the golden template.
- ``health``: each clone must be ``poweredOn``, ``connected``, not ``red`` and carry the VM's name.
- ``rollback``: power the clone off and destroy it, rename the old VM back and power it on again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from qlrf.envparse import environ
from qlrf.inventory.connectors.vsphere import VcenterConfig, connect, disconnect
from qlrf.inventory.connectors.vsphere import config_from_env as _vsphere_from_env
from qlrf.inventory.normalize.vsphere import TEMPLATE_ATTRIBUTE
from qlrf.remediation.calls import CallRecorder, CloudCall
from qlrf.remediation.drivers import DriverError, chunks, instances_through
from qlrf.remediation.executor import HealthReport
from qlrf.remediation.plans import PatchPlan

NEW_SUFFIX = "-qlrf-new"


@dataclass
class VsphereDriverConfig:
    vcenters: list[VcenterConfig] = field(default_factory=list)
    connect_timeout: float = 10.0
    http_timeout: float = 300.0
    task_timeout: float = 1800.0  # a clone of a large template can take a while
    power_on_timeout: float = 600.0
    poll_interval: float = 2.0
    today: Callable[[], date] = field(default=lambda: datetime.now(UTC).date(), repr=False)


def config_from_env(env: Mapping[str, str] | None = None) -> VsphereDriverConfig:
    """The discovery connector's variables (QLRF_VSPHERE_HOSTS, _USER, _PASSWORD, _INSECURE, _CA_FILE...)
    plus QLRF_REMEDIATION_POLL_SECONDS. Read when called, never at import."""
    env = environ(env)
    config = VsphereDriverConfig(vcenters=_vsphere_from_env(env).vcenters)
    if env.get("QLRF_REMEDIATION_POLL_SECONDS"):
        config.poll_interval = float(env["QLRF_REMEDIATION_POLL_SECONDS"])
    return config


@dataclass
class _Swap:
    asset_id: str
    vcenter: str
    name: str
    vm: Any  # the old VM
    folder: Any
    pool: Any
    was_on: bool
    clone: Any = None
    powered_off: bool = False
    renamed_to: str | None = None
    swapped: bool = False


class VsphereDriver:
    def __init__(self, config: VsphereDriverConfig | None = None, recorder: CallRecorder | None = None):
        self.config = config or VsphereDriverConfig()
        self.recorder = recorder or CallRecorder()
        self._sis: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.swaps: dict[str, _Swap] = {}
        self.template: dict[str, Any] = {}  # vCenter label -> golden template VM
        self.template_name = ""

    # -- state (qlrf.remediation.journal) ---------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        """Each swap's original VM, clone, folder and pool by managed-object id, its names and power
        history, and the golden templates: what rollback() needs to put the original VM back."""
        def moid(obj: Any) -> str | None:
            return None if obj is None else obj._moId

        return {
            "template_name": self.template_name,
            "templates": {label: moid(t) for label, t in self.template.items()},
            "swaps": {a: {"asset_id": s.asset_id, "vcenter": s.vcenter, "name": s.name, "vm": moid(s.vm),
                          "folder": moid(s.folder), "pool": moid(s.pool), "was_on": s.was_on, "clone": moid(s.clone),
                          "powered_off": s.powered_off, "renamed_to": s.renamed_to, "swapped": s.swapped}
                      for a, s in self.swaps.items()},
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Rebuild the managed-object references on this driver's own connections."""
        from pyVmomi import vim

        def ref(kind: Any, label: str, moid: str | None) -> Any:
            if moid is None:
                return None
            _, si = self.si(label)
            return kind(moid, si._stub)

        self.template_name = state["template_name"]
        self.template = {label: ref(vim.VirtualMachine, label, m) for label, m in state["templates"].items()}
        self.swaps = {}
        for asset, s in state["swaps"].items():
            label = s["vcenter"]
            self.swaps[asset] = _Swap(
                s["asset_id"], label, s["name"], ref(vim.VirtualMachine, label, s["vm"]), ref(vim.Folder, label, s["folder"]),
                ref(vim.ResourcePool, label, s["pool"]), s["was_on"], clone=ref(vim.VirtualMachine, label, s["clone"]),
                powered_off=s["powered_off"], renamed_to=s["renamed_to"], swapped=s["swapped"])

    def _orphan_clone(self, s: _Swap) -> Any:
        """A clone ``<name>-qlrf-new`` whose CloneVM_Task result was never recorded (a run killed
        mid-task): found by name so it is reused on resume and destroyed on rollback, never doubled."""
        if self.recorder.dry_run:
            return None
        _, si = self.si(s.vcenter)
        return self._find_by_name(si, f"{s.name}{NEW_SUFFIX}", template=False)

    def _golden(self, label: str) -> Any:
        """The golden template on vCenter ``label`` (looked up once; a restored driver looks it up again)."""
        if label not in self.template:
            _, si = self.si(label)
            tpl = self._find_by_name(si, self.template_name, template=True)
            if tpl is None:
                raise DriverError(f"golden template {self.template_name!r} not found on vCenter {label}")
            self.template[label] = tpl
        return self.template[label]

    # -- plumbing ---------------------------------------------------------------------------------
    def _vcenter(self, account: str) -> VcenterConfig:
        for vc in self.config.vcenters:
            if account in (vc.label, vc.host, vc.scope):
                return vc
        if len(self.config.vcenters) == 1:
            return self.config.vcenters[0]
        raise DriverError(f"no vCenter configured for {account!r} (have {[vc.label for vc in self.config.vcenters]})")

    def si(self, account: str) -> tuple[str, Any]:
        vc = self._vcenter(account)
        with self._lock:
            if vc.label not in self._sis:
                self._sis[vc.label] = connect(vc, connect_timeout=self.config.connect_timeout,
                                              http_timeout=self.config.http_timeout)
            return vc.label, self._sis[vc.label]

    def close(self) -> None:
        with self._lock:
            for si in self._sis.values():
                disconnect(si)
            self._sis.clear()

    def _send(self, operation: str, target: str, params: dict[str, Any], start: Callable[[], Any], what: str) -> Any:
        """Every mutating call goes through here: recorded, then (unless a dry run) started and waited for."""
        return self.recorder.send(CloudCall("vsphere", "VirtualMachine", operation, target, params),
                               lambda: self._task(start(), what))

    def _task(self, task: Any, what: str) -> Any:
        from pyVmomi import vim

        deadline = time.monotonic() + self.config.task_timeout
        delay = 0.05
        while True:
            info = task.info
            if info.state == vim.TaskInfo.State.success:
                return info.result
            if info.state == vim.TaskInfo.State.error:
                fault = info.error
                raise DriverError(f"{what} failed: {getattr(fault, 'msg', None) or fault}")
            if time.monotonic() > deadline:
                raise DriverError(f"{what}: not finished after {self.config.task_timeout:g}s")
            time.sleep(delay)
            delay = min(self.config.poll_interval, delay * 2)

    @staticmethod
    def _find_by_name(si: Any, name: str, *, template: bool) -> Any:
        from pyVmomi import vim

        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        try:
            hits = [vm for vm in view.view if vm.name == name and bool(vm.config and vm.config.template) == template]
        finally:
            view.DestroyView()
        if len(hits) > 1:
            raise DriverError(f"{len(hits)} {'templates' if template else 'VMs'} are named {name!r}")
        return hits[0] if hits else None

    # -- prepare ----------------------------------------------------------------------------------
    def prepare(self, plan: PatchPlan) -> dict[str, Any]:
        from pyVmomi import vim

        if plan.spec.targets.groups:
            raise DriverError("vSphere has no scaling groups: list the VMs as instance targets")
        self.template_name = plan.spec.to_image.image_ref
        details: dict[str, Any] = {}
        for target in plan.spec.targets.instances:
            if target.platform != "vsphere":
                raise DriverError(f"instance {target.asset_id!r}: platform {target.platform} is not vsphere")
            label, si = self.si(target.account)
            self._golden(label)
            vm = si.RetrieveContent().searchIndex.FindByUuid(None, target.asset_id, True, True)
            if vm is None:
                vm = self._find_by_name(si, target.name, template=False)
            if vm is None:
                raise DriverError(f"VM {target.name!r} ({target.asset_id}) not found on vCenter {label}")
            if vm.name != target.name:
                raise DriverError(f"VM {target.asset_id} is named {vm.name!r}, the plan says {target.name!r}")
            if not isinstance(vm.parent, vim.Folder) or vm.resourcePool is None:
                raise DriverError(f"VM {target.name!r} has no folder or resource pool (a vApp member?)")
            on = vm.runtime.powerState == vim.VirtualMachine.PowerState.poweredOn
            self.swaps[target.asset_id] = _Swap(target.asset_id, label, vm.name, vm, vm.parent, vm.resourcePool, on)
            details[target.asset_id] = {"name": vm.name, "moid": vm._moId, "folder": vm.parent.name,
                                        "pool": vm.resourcePool._moId, "powered_on": on}
        return details

    # -- waves ------------------------------------------------------------------------------------
    def run_wave(self, plan: PatchPlan, index: int) -> dict[str, Any]:
        details: dict[str, Any] = {}
        for chunk in chunks(plan.spec.waves[index].instances, plan.spec.max_unavailable):
            swaps = [self.swaps[a] for a in chunk]
            for s in swaps:  # clones of the chunk in flight together
                self._clone(s)
            for s in swaps:
                self._wait_on(s)
            for s in swaps:
                self._swap(s)
                details[s.asset_id] = {"clone": None if s.clone is None else s.clone._moId, "name": s.name, "old_renamed_to": s.renamed_to}
        return details

    def _clone(self, s: _Swap) -> None:
        from pyVmomi import vim

        if s.swapped:  # a resumed wave: this VM was swapped before the crash
            return
        if s.clone is None:
            s.clone = self._orphan_clone(s)
        if s.clone is not None:  # a resumed wave: cloned before the crash; power it on if need be
            if s.clone.runtime.powerState != vim.VirtualMachine.PowerState.poweredOn:
                self._send("PowerOnVM_Task", f"{s.name}{NEW_SUFFIX}", {}, s.clone.PowerOnVM_Task,
                           f"powering on the clone for {s.name}")
            return
        spec = vim.vm.CloneSpec(location=self._relocate_spec(s), powerOn=True, template=False)
        template = self._golden(s.vcenter)
        s.clone = self._send(
            "CloneVM_Task", self.template_name, {"name": f"{s.name}{NEW_SUFFIX}", "folder": s.folder.name, "powerOn": True},
            lambda: template.CloneVM_Task(folder=s.folder, name=f"{s.name}{NEW_SUFFIX}", spec=spec),
            f"cloning {self.template_name} for {s.name}",
        )
        if s.clone is None or s.clone.runtime.powerState != vim.VirtualMachine.PowerState.poweredOn:
            # powerOn is a request, not a promise (a dry run cannot know: it lists the call as conditional)
            self._send("PowerOnVM_Task", f"{s.name}{NEW_SUFFIX}", {"only_if": "the clone did not power on"},
                       lambda: s.clone.PowerOnVM_Task(), f"powering on the clone for {s.name}")

    def _relocate_spec(self, s: _Swap) -> Any:
        """Where the clone goes: the old VM's resource pool (drivers/vsphere_drs.py adds a host in a DRS cluster)."""
        from pyVmomi import vim

        return vim.vm.RelocateSpec(pool=s.pool)

    def _wait_on(self, s: _Swap) -> None:
        from pyVmomi import vim

        if self.recorder.dry_run:
            return
        deadline = time.monotonic() + self.config.power_on_timeout
        while s.clone.runtime.powerState != vim.VirtualMachine.PowerState.poweredOn:
            if time.monotonic() > deadline:
                raise DriverError(f"clone for {s.name} not powered on after {self.config.power_on_timeout:g}s")
            time.sleep(self.config.poll_interval)

    def _swap(self, s: _Swap) -> None:
        from pyVmomi import vim

        if s.swapped:
            return
        if s.vm.runtime.powerState == vim.VirtualMachine.PowerState.poweredOn:
            self._send("PowerOffVM_Task", s.name, {}, s.vm.PowerOffVM_Task, f"powering off {s.name}")
            s.powered_off = True
        s.renamed_to = f"{s.name}-replaced-{self.config.today():%Y%m%d}"
        self._send("Rename_Task", s.name, {"newName": s.renamed_to}, lambda: s.vm.Rename_Task(newName=s.renamed_to),
                   f"renaming {s.name} to {s.renamed_to}")
        self._send("Rename_Task", f"{s.name}{NEW_SUFFIX}", {"newName": s.name}, lambda: s.clone.Rename_Task(newName=s.name),
                   f"renaming the clone to {s.name}")
        s.swapped = True
        self._copy_attributes(s)

    def _copy_attributes(self, s: _Swap) -> None:
        """The clone takes the old VM's custom attributes (site, environment, owner...), and the
        ``template`` attribute discovery reads the image from names the golden template."""
        _, si = self.si(s.vcenter)
        cfm = si.RetrieveContent().customFieldsManager
        if cfm is None:
            return
        names = {f.key: f.name for f in cfm.field or ()}
        values = {v.key: v.value for v in s.vm.customValue or ()}
        for key, name in names.items():
            if name == TEMPLATE_ATTRIBUTE:
                values[key] = self.template_name
        for key, value in values.items():
            self.recorder.send(CloudCall("vsphere", "CustomFieldsManager", "SetField", s.name, {"field": names.get(key, key),
                                                                                           "value": value}),
                            lambda key=key, value=value: cfm.SetField(entity=s.clone, key=key, value=value))

    def health(self, plan: PatchPlan, index: int) -> HealthReport:
        from pyVmomi import vim

        total = healthy = 0
        details: dict[str, Any] = {}
        unhealthy: dict[str, str] = {}
        for asset in instances_through(plan, index):
            s = self.swaps[asset]
            total += 1
            problem = None
            if s.clone is None or not s.swapped:
                problem = "not swapped"
            else:
                rt = s.clone.runtime
                if rt.powerState != vim.VirtualMachine.PowerState.poweredOn:
                    problem = f"power {rt.powerState}"
                elif rt.connectionState != vim.VirtualMachine.ConnectionState.connected:
                    problem = f"connection {rt.connectionState}"
                elif s.clone.overallStatus == vim.ManagedEntity.Status.red:
                    problem = "overall status red"
                elif s.clone.name != s.name:
                    problem = f"named {s.clone.name!r}"
            if problem:
                unhealthy[s.name] = problem
            else:
                healthy += 1
            details[asset] = {"name": s.name, "clone": None if s.clone is None else s.clone._moId, "problem": problem}
        if unhealthy:
            details["unhealthy"] = unhealthy
        return HealthReport(total > 0 and healthy == total, total, healthy, details)

    def members(self, plan: PatchPlan, index: int) -> tuple[list[str], list[str]]:
        """For canary analysis: (canary, baseline) instanceUuids, what the vSphere metric source
        finds VMs by: the clones of waves 0..index against the targets of later waves."""
        done = set(instances_through(plan, index))
        changed = [s.clone.config.instanceUuid for a, s in self.swaps.items() if a in done and s.clone is not None]
        baseline = [a for a in self.swaps if a not in done]
        return changed, baseline

    def rollback(self, plan: PatchPlan, waves_done: list[int]) -> dict[str, Any]:
        from pyVmomi import vim

        details: dict[str, Any] = {}
        errors: list[str] = []
        for asset in instances_through(plan, max(waves_done)) if waves_done else []:
            s = self.swaps.get(asset)
            if s is None:
                continue
            done: dict[str, Any] = {}
            try:
                if s.clone is None and not s.swapped:
                    s.clone = self._orphan_clone(s)
                if s.clone is not None:
                    if s.clone.runtime.powerState == vim.VirtualMachine.PowerState.poweredOn:
                        self._send("PowerOffVM_Task", s.clone.name, {}, s.clone.PowerOffVM_Task,
                                   f"powering off the clone of {s.name}")
                    moid = s.clone._moId
                    self._send("Destroy_Task", s.clone.name, {}, s.clone.Destroy_Task, f"destroying the clone of {s.name}")
                    s.clone, s.swapped = None, False
                    done["destroyed"] = moid
                if s.renamed_to is not None:
                    self._send("Rename_Task", s.renamed_to, {"newName": s.name}, lambda s=s: s.vm.Rename_Task(newName=s.name),
                               f"renaming {s.renamed_to} back to {s.name}")
                    done["renamed_back"] = s.renamed_to
                    s.renamed_to = None
                if s.powered_off or (s.was_on and s.vm.runtime.powerState != vim.VirtualMachine.PowerState.poweredOn):
                    self._send("PowerOnVM_Task", s.name, {}, s.vm.PowerOnVM_Task, f"powering {s.name} back on")
                    s.powered_off = False
                    done["powered_on"] = s.name
                details[asset] = done
            except Exception as exc:  # noqa: BLE001 - restore the others, then report
                errors.append(f"VM {s.name}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
        if errors:
            raise DriverError("rollback incomplete: " + "; ".join(errors))
        return details


__all__ = ["NEW_SUFFIX", "VsphereDriver", "VsphereDriverConfig", "config_from_env"]
