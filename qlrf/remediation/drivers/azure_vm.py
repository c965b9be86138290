"""Azure standalone VMs (azure-mgmt-compute): rebuild each VM from the golden image, keeping its NICs and data disks.

Why a rebuild and not a swap: Azure cannot change a VM's ``imageReference`` in place (reimage only
restores the *same* image), and an OS-disk swap onto a disk made from a *generalized* golden image
boots an unprovisioned OS while ``imageReference`` keeps naming the old image, so discovery would
never see the change. A new VM with a new NIC ("swap") would change the VM's IPs. So, per VM:

1. ``virtualMachines.Update`` (PATCH): ``deleteOption: Detach`` on the OS disk, every data disk and
   every NIC, so deleting the VM deletes none of them;
2. ``virtualMachines.Delete`` (waited for);
3. ``virtualMachines.CreateOrUpdate`` with the same name, location, zones, size, tags (plus
   ``qlrf:plan`` and ``qlrf:rebuilt-from`` = the old ``vmId``), OS profile, NICs (same ids, same
   deleteOption), data disks (``Attach``, same LUNs/caching/deleteOption), security and
   diagnostics profiles, from the golden ``imageReference``; the OS disk is new
   (``<name>-osdisk-q<plan hash>``); the old OS disk is kept, detached, and named in the details.

The VM gets a new ``vmId`` (Azure issues one per create): discovery sees a new asset with the same
name, and the ``qlrf:rebuilt-from`` tag links the two. A VM whose OS profile cannot be recreated
(password authentication: ARM never returns the password, Windows included) is refused in
``prepare`` with that reason, as is a VM inside a scale set (a group target's business).

Azure starts every VM it creates: one not running before the plan (stopped or deallocated) is
deallocated after each create.

``health``: the VM shows ``ProvisioningState/succeeded``, its power state from before the plan
(``PowerState/running`` for a running VM), the golden
``imageReference`` and the same NICs. ``rollback`` reads each touched VM back from ARM: a rebuilt
VM is deleted (NICs and data disks detached, the plan's OS disk deleted) and created again from
the previous ``imageReference`` (or the plan's ``rollback.image_ref``) with the saved
configuration; a VM the crash left deleted is just created; one never rebuilt gets its original
deleteOptions back. Everything rollback needs is in ``checkpoint()`` (JSON).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from qlrf.remediation.calls import CallRecorder, CloudCall
from qlrf.remediation.drivers import DriverError, chunks, instances_through
from qlrf.remediation.drivers.azure import (
    AzureDriver,
    AzureDriverConfig,
    _statuses,
    config_from_env,
    image_reference,
    same_image,
)
from qlrf.remediation.drivers.split import OnBase, SplitDriver, standalone_health, undo_each
from qlrf.remediation.executor import HealthReport
from qlrf.remediation.plans import PatchPlan

KIND = "vm"
# VM properties a rebuild carries over as they are (storageProfile is rebuilt, the rest is read-only)
_CARRIED = ("hardwareProfile", "osProfile", "networkProfile", "diagnosticsProfile", "securityProfile",
            "availabilitySet", "proximityPlacementGroup", "licenseType", "priority", "evictionPolicy",
            "billingProfile", "additionalCapabilities", "scheduledEventsProfile", "host", "hostGroup",
            "capacityReservation", "applicationProfile")


@dataclass
class _Rebuild:
    asset_id: str  # the vmId before the plan
    subscription: str
    resource_group: str
    name: str
    original: dict[str, Any]  # the VM as ARM returned it before the plan (REST JSON)
    rollback_ref: dict[str, Any]
    was_running: bool = True  # a VM deallocated before the plan is deallocated again after each create
    touched: bool = False  # deleteOptions changed (or more)
    new_vm_id: str = ""
    kept_os_disk: str = ""

    @property
    def previous_ref(self) -> dict[str, Any]:
        return dict(self.original["properties"]["storageProfile"].get("imageReference") or {})


def _nics(vm: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(vm.get("properties", {}).get("networkProfile", {}).get("networkInterfaces") or [])


def _storage(vm: Mapping[str, Any]) -> dict[str, Any]:
    return dict(vm.get("properties", {}).get("storageProfile") or {})


def _not_rebuildable(vm: Mapping[str, Any]) -> str | None:
    props = vm.get("properties", {})
    if props.get("virtualMachineScaleSet"):
        return "it belongs to a scale set (plan the scale set as a group)"
    os_profile = props.get("osProfile") or {}
    if not os_profile:
        return "it has no osProfile (attached OS disk): there is no image to rebuild from"
    if os_profile.get("windowsConfiguration") is not None:
        return "it is a Windows VM: its admin password cannot be read back from ARM to recreate it"
    if not (os_profile.get("linuxConfiguration") or {}).get("disablePasswordAuthentication", False):
        return "it allows password authentication: the password cannot be read back from ARM to recreate it"
    if not _storage(vm).get("imageReference"):
        return "it names no imageReference"
    return None


def detach_patch(vm: Mapping[str, Any], os_disk_option: str = "Detach") -> dict[str, Any]:
    """A PATCH body that keeps the NICs and data disks when the VM is deleted (arrays are whole, as ARM replaces them)."""
    storage = _storage(vm)
    data = [{**copy.deepcopy(d), "deleteOption": "Detach"} for d in storage.get("dataDisks") or []]
    nics = [{**copy.deepcopy(n), "properties": {**n.get("properties", {}), "deleteOption": "Detach"}} for n in _nics(vm)]
    return {"properties": {"storageProfile": {"osDisk": {"deleteOption": os_disk_option}, "dataDisks": data},
                           "networkProfile": {"networkInterfaces": nics}}}


def restore_patch(original: Mapping[str, Any]) -> dict[str, Any]:
    """The original deleteOptions back (a VM the plan touched but never rebuilt)."""
    storage = _storage(original)
    return {"properties": {"storageProfile": {"osDisk": {"deleteOption": storage.get("osDisk", {}).get("deleteOption",
                                                                                                        "Delete")},
                                              "dataDisks": copy.deepcopy(storage.get("dataDisks") or [])},
                           "networkProfile": {"networkInterfaces": copy.deepcopy(_nics(original))}}}


def create_body(original: Mapping[str, Any], image: Mapping[str, Any], os_disk_name: str,
                tags: Mapping[str, str]) -> dict[str, Any]:
    """The VM again, from ``image``: same configuration, NICs and data disks attached, a new OS disk."""
    props = original["properties"]
    storage = _storage(original)
    old_os = storage.get("osDisk") or {}
    os_disk = {"name": os_disk_name, "createOption": "FromImage", "osType": old_os.get("osType"),
               "caching": old_os.get("caching"), "diskSizeGB": old_os.get("diskSizeGB"),
               "deleteOption": old_os.get("deleteOption", "Delete"),
               "managedDisk": {k: v for k, v in (old_os.get("managedDisk") or {}).items() if k != "id"}}
    data = [{"lun": d["lun"], "name": d.get("name"), "createOption": "Attach", "caching": d.get("caching"),
             "deleteOption": d.get("deleteOption", "Detach"), "managedDisk": {"id": d["managedDisk"]["id"]}}
            for d in storage.get("dataDisks") or []]
    new_storage = {"imageReference": {k: v for k, v in image.items() if k != "exactVersion"},
                   "osDisk": {k: v for k, v in os_disk.items() if v is not None}, "dataDisks": data}
    if storage.get("diskControllerType"):
        new_storage["diskControllerType"] = storage["diskControllerType"]
    body: dict[str, Any] = {
        "location": original["location"],
        "tags": dict(tags),
        "properties": {**{k: copy.deepcopy(props[k]) for k in _CARRIED if props.get(k) is not None},
                       "storageProfile": new_storage},
    }
    for key in ("zones", "identity", "plan", "extendedLocation"):
        if original.get(key):
            body[key] = copy.deepcopy(original[key])
    return body


class AzureVmDriver(OnBase):
    """Executes one plan's standalone Azure VMs; see the module docstring."""

    def __init__(self, config: AzureDriverConfig | None = None, recorder: CallRecorder | None = None,
                 base: AzureDriver | None = None):
        self.base = base or AzureDriver(config, recorder)  # clients, credential and the LRO wait
        self.rebuilds: dict[str, _Rebuild] = {}
        self.golden: dict[str, str] = {}
        self.plan_id = ""
        self.digest = ""

    def _vms(self, r: _Rebuild) -> Any:
        return self.base.client(r.subscription).virtual_machines

    def _send(self, operation: str, r: _Rebuild, params: dict[str, Any], start: Any, what: str) -> Any:
        poller = self.recorder.send(CloudCall("azure", "virtualMachines", operation, r.name,
                                              {"resourceGroup": r.resource_group, **params}), start)
        return None if poller is None else self.base._wait(poller, what)

    def _get(self, r: _Rebuild) -> dict[str, Any] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._vms(r).get(r.resource_group, r.name, expand="instanceView").as_dict()
        except ResourceNotFoundError:
            return None

    # -- prepare ----------------------------------------------------------------------------------
    def prepare(self, plan: PatchPlan) -> dict[str, Any]:
        self.golden = image_reference(plan.spec.to_image.image_ref)
        self.plan_id = plan.metadata.id
        self.digest = (plan.content_hash or plan.compute_hash())[7:15]
        rollback = plan.spec.rollback
        details: dict[str, Any] = {}
        for target in plan.spec.targets.instances:
            if target.platform != "azure":
                raise DriverError(f"instance {target.asset_id!r}: platform {target.platform} is not azure")
            vm = self._find(target.account, target.region, target.name, target.asset_id)
            why = _not_rebuildable(vm)
            if why:
                raise DriverError(f"Azure VM {target.name} ({target.asset_id}) cannot be rebuilt: {why}")
            previous = dict(_storage(vm).get("imageReference") or {})
            back = (image_reference(rollback.image_ref)
                    if rollback.strategy == "previous_image" and rollback.image_ref else previous)
            power = next((c for c in _statuses(vm) if c.startswith("PowerState/")), "PowerState/running")
            vm["properties"].pop("instanceView", None)  # the saved configuration, not a moment's state
            r = _Rebuild(target.asset_id, target.account, vm["id"].split("/")[4], vm["name"], vm, back,
                         was_running=power in ("PowerState/running", "PowerState/starting"))
            r.kept_os_disk = (_storage(vm).get("osDisk") or {}).get("managedDisk", {}).get("id", "")
            self.rebuilds[target.asset_id] = r
            details[target.asset_id] = {"kind": KIND, "id": vm["id"], "previous_image": previous,
                                        "rollback_image": back, "nics": [n["id"] for n in _nics(vm)],
                                        "data_disks": [d.get("managedDisk", {}).get("id") for d in
                                                       _storage(vm).get("dataDisks") or []]}
        return details

    def _find(self, subscription: str, region: str, name: str, asset_id: str) -> dict[str, Any]:
        client = self.base.client(subscription)
        vms = [v.as_dict() for v in client.virtual_machines.list_all()]
        found = [v for v in vms if str(v.get("properties", {}).get("vmId", "")).lower() == str(asset_id).lower()]
        if not found:  # a checkpoint taken after a rebuild names the old vmId: the name stays
            found = [v for v in vms if v["name"] == name and str(v.get("location", "")).lower() == region.lower()]
        if len(found) != 1:
            raise DriverError(f"Azure VM {name} ({asset_id}) in {region} of subscription {subscription}: "
                              f"{'not found' if not found else f'{len(found)} matches'}")
        rg, vm_name = found[0]["id"].split("/")[4], found[0]["name"]  # the model and its power state, in one read
        return client.virtual_machines.get(rg, vm_name, expand="instanceView").as_dict()

    # -- waves ------------------------------------------------------------------------------------
    def run_wave(self, plan: PatchPlan, index: int) -> dict[str, Any]:
        details: dict[str, Any] = {}
        for chunk in chunks(plan.spec.waves[index].instances, plan.spec.max_unavailable):
            rebuilds = [self.rebuilds[a] for a in chunk]
            for r in rebuilds:  # every VM of the chunk is down at once, at most max_unavailable
                self._delete(r, os_disk_option="Detach")
            for r in rebuilds:
                tags = {**(r.original.get("tags") or {}), "qlrf:plan": self.plan_id, "qlrf:rebuilt-from": r.asset_id}
                made = self._create(r, self.golden, f"{r.name[:60]}-osdisk-q{self.digest}", tags)
                r.new_vm_id = (made or {}).get("properties", {}).get("vmId", "")
                details[r.asset_id] = {"kind": KIND, "name": r.name, "new_vm_id": r.new_vm_id,
                                       "kept_os_disk": r.kept_os_disk}
        return details

    def _delete(self, r: _Rebuild, *, os_disk_option: str, current: Mapping[str, Any] | None = None) -> None:
        vms = self._vms(r)
        body = detach_patch(current or r.original, os_disk_option)
        r.touched = True
        self._send("Update", r, {"deleteOption": f"NICs and data disks Detach, OS disk {os_disk_option}"},
                   lambda: vms.begin_update(r.resource_group, r.name, body, **self.base._lro_kwargs()),
                   f"keeping the NICs and disks of {r.name}")
        self._send("Delete", r, {}, lambda: vms.begin_delete(r.resource_group, r.name, **self.base._lro_kwargs()),
                   f"deleting {r.name}")

    def _create(self, r: _Rebuild, image: Mapping[str, Any], os_disk: str, tags: Mapping[str, str]) -> dict | None:
        vms = self._vms(r)
        body = create_body(r.original, image, os_disk, tags)
        made = self._send("CreateOrUpdate", r, {"imageReference": dict(image), "osDisk": os_disk},
                          lambda: vms.begin_create_or_update(r.resource_group, r.name, body, **self.base._lro_kwargs()),
                          f"creating {r.name} from {dict(image)}")
        if not r.was_running:  # Azure starts every VM it creates: put it back as it was
            self._send("Deallocate", r, {"only_if": "it was deallocated before the plan"},
                       lambda: vms.begin_deallocate(r.resource_group, r.name, **self.base._lro_kwargs()),
                       f"deallocating {r.name}")
        if made is None:
            return None
        made = made.as_dict()
        got = _storage(made).get("imageReference")
        if not same_image(got, image):
            raise DriverError(f"VM {r.name}: created with imageReference {got}, expected {dict(image)}")
        return made

    # -- health -----------------------------------------------------------------------------------
    def members(self, plan: PatchPlan, index: int) -> tuple[list[str], list[str]]:
        """For canary analysis: (canary, baseline) ARM ids (what Azure Monitor takes; a rebuilt VM keeps its name, so its id): the VMs of waves 0..index
        against those of later waves."""
        done = set(instances_through(plan, index))
        changed = [r.original.get("id") or r.asset_id for a, r in self.rebuilds.items() if a in done and r.touched]
        baseline = [r.original.get("id") or r.asset_id for a, r in self.rebuilds.items() if a not in done]
        return changed, baseline

    def health(self, plan: PatchPlan, index: int) -> HealthReport:
        def look(asset: str) -> tuple[str, str | None]:
            r = self.rebuilds[asset]
            return r.name, self._problem(r, self._get(r))

        return standalone_health(plan, index, look)

    def _problem(self, r: _Rebuild, vm: Mapping[str, Any] | None) -> str | None:
        if vm is None:
            return "VM gone"
        if not same_image(_storage(vm).get("imageReference"), self.golden):
            return "not on the golden image"
        if sorted(n["id"].lower() for n in _nics(vm)) != sorted(n["id"].lower() for n in _nics(r.original)):
            return "NICs differ from the original VM's"
        codes = _statuses(vm)
        prov = next((c for c in codes if c.startswith("ProvisioningState/")), "ProvisioningState/unknown")
        if prov != "ProvisioningState/succeeded":
            return prov
        power = next((c for c in codes if c.startswith("PowerState/")), "PowerState/unknown")
        wanted = "PowerState/running" if r.was_running else "PowerState/deallocated"
        return None if power == wanted else power

    # -- rollback ---------------------------------------------------------------------------------
    def rollback(self, plan: PatchPlan, waves_done: list[int]) -> dict[str, Any]:
        def pick(asset: str) -> _Rebuild | None:
            r = self.rebuilds.get(asset)
            return r if r is not None and r.touched else None

        return undo_each(plan, waves_done, pick, self._restore_one, lambda r: f"VM {r.name}")

    def _restore_one(self, r: _Rebuild) -> dict[str, Any]:
        vm = self._get(r)
        steps: list[str] = []
        if vm is not None and same_image(_storage(vm).get("imageReference"), r.previous_ref) \
                and _storage(vm).get("osDisk", {}).get("name") == _storage(r.original).get("osDisk", {}).get("name"):
            vms = self._vms(r)
            body = restore_patch(r.original)
            self._send("Update", r, {"deleteOption": "as before the plan"},
                       lambda: vms.begin_update(r.resource_group, r.name, body, **self.base._lro_kwargs()),
                       f"restoring the deleteOptions of {r.name}")
            return {"name": r.name, "steps": ["deleteOptions restored"]}
        if vm is not None:  # rebuilt (or half-built): its NICs and data disks are kept, its new OS disk is not
            self._delete(r, os_disk_option="Delete", current=vm)
            steps.append("deleted the rebuilt VM")
        made = self._create(r, r.rollback_ref, f"{r.name[:60]}-osdisk-r{self.digest}",
                            {**(r.original.get("tags") or {}), "qlrf:restores": r.asset_id})
        steps.append(f"created from {r.rollback_ref}")
        return {"name": r.name, "steps": steps, "vm_id": (made or {}).get("properties", {}).get("vmId"),
                "kept_os_disk": r.kept_os_disk}

    # -- the journal's state protocol -------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        return {"kind": KIND, "golden": dict(self.golden), "plan_id": self.plan_id, "digest": self.digest,
                "rebuilds": {a: asdict(r) for a, r in self.rebuilds.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        self.golden = dict(state["golden"])
        self.plan_id, self.digest = state["plan_id"], state["digest"]
        self.rebuilds = {a: _Rebuild(**r) for a, r in state["rebuilds"].items()}


class AzurePlanDriver(SplitDriver):
    """The registry's Azure driver: Uniform scale sets through :class:`AzureDriver`, standalone VMs
    through :class:`AzureVmDriver`, sharing the credential, clients and recorder."""

    def __init__(self, config: AzureDriverConfig | None = None, recorder: CallRecorder | None = None):
        sets = AzureDriver(config, recorder)
        super().__init__(sets, AzureVmDriver(base=sets))


__all__ = ["KIND", "AzurePlanDriver", "AzureVmDriver", "config_from_env", "create_body", "detach_patch"]
