"""The ARM fake's write side for standalone VMs (the rebuild of the Azure VM driver).

Routes on ``.../resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}``:

* ``POST .../deallocate``: ``PowerState/deallocated`` (202, async);
* ``PATCH`` (JSON merge patch on ``properties``, arrays replace; ``tags`` replaced as a whole, ARM's
  rule for tags, so a key left out is removed): 200 with
  ``provisioningState: Updating`` (the SDK's body polling then GETs ``Succeeded``);
* ``DELETE``: honours each ``deleteOption``: the OS disk and data disks are deleted (``Delete``) or
  left with ``managedBy`` cleared (``Detach``); a NIC with ``Delete`` is gone (later creates that name
  it fail 400 ``NotFound``), ``Detach`` keeps it. 202 with ``Azure-AsyncOperation`` + ``Location``;
* ``PUT`` (create): the name must be free (409 ``Conflict`` otherwise: ARM would update in place, a
  rebuild must never do that by accident); the OS disk ``FromImage`` becomes a new managed disk
  with ``creationData.imageReference``; data disks ``Attach`` must exist and be unattached (409
  ``OperationNotAllowed`` otherwise); NICs must exist and be free. A new ``vmId`` is issued, the VM
  runs (``PowerState/running``). 201 with ``provisioningState: Creating``.

``fake.vm_nics`` (lower-cased NIC id -> the VM id using it, or None) is the NIC side of the estate,
seeded from the fixture's VMs.
"""

from __future__ import annotations

import copy
import re
import time
import uuid
from typing import Any

_VM_RE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.compute/"
    r"virtualmachines/(?P<name>[^/]+)(?P<action>/deallocate)?$"
)


def seed_nics(state: Any) -> None:
    """Every NIC the fixture's VMs name, attached to its VM."""
    state.nics = {}
    for data in state.fixture["subscriptions"].values():
        for vm in data.get("virtualMachines", []):
            for nic in vm["properties"].get("networkProfile", {}).get("networkInterfaces", []):
                state.nics[nic["id"].lower()] = vm["id"]


def _disk(state: Any, disk_id: str) -> dict[str, Any] | None:
    return state.by_id.get((disk_id or "").lower())


def _add(state: Any, sub: str, key: str, res: dict[str, Any]) -> None:
    state.fixture["subscriptions"][_real_sub(state, sub)].setdefault(key, []).append(res)
    state.by_id[res["id"].lower()] = res
    state.by_sub[sub].append(res)


def _remove(state: Any, sub: str, key: str, res: dict[str, Any]) -> None:
    data = state.fixture["subscriptions"][_real_sub(state, sub)]
    data[key] = [r for r in data.get(key, []) if r is not res]
    state.by_id.pop(res["id"].lower(), None)
    state.by_sub[sub] = [r for r in state.by_sub[sub] if r is not res]


def _real_sub(state: Any, sub: str) -> str:
    return next(s for s in state.fixture["subscriptions"] if s.lower() == sub)


def _async(handler: Any, location: str, sub: str, rec: Any, status: int = 202) -> None:
    op = str(uuid.uuid4())
    now = time.strftime("%Y-%m-%dT%H:%M:%S.0000000+00:00", time.gmtime())
    handler.state.operations[op] = {"status": "Succeeded", "polls": handler.state.operation_polls, "start": now}
    url = (f"{handler.state.base_url}/subscriptions/{sub}/providers/Microsoft.Compute/locations/{location}/operations/"
           f"{op}?api-version={rec.param('api-version')}")
    handler._send(status, b"", {"Azure-AsyncOperation": url, "Location": url + "&monitor=true", "Retry-After": "0"}, rec)


def vm_write_route(handler: Any, method: str, path: str, sub: str, rec: Any, body: Any) -> bool:
    """Answer PATCH / DELETE / PUT on a virtual machine; False: not a VM path."""
    m = _VM_RE.match(path.lower())
    if not m:
        return False
    state = handler.state
    with state.lock:
        if m.group("action"):
            vm = state.by_id.get(path.lower()[: -len("/deallocate")])
            if vm is None or method != "POST":
                handler._arm_error(404, "ResourceNotFound", f"No VM at {path}", rec)
                return True
            statuses = [s for s in vm["properties"].get("instanceView", {}).get("statuses", [])
                        if not s["code"].startswith("PowerState/")]
            statuses.append({"code": "PowerState/deallocated", "level": "Info", "displayStatus": "VM deallocated"})
            vm["properties"].setdefault("instanceView", {})["statuses"] = statuses
            _async(handler, vm["location"], sub, rec)
            return True
        vm = state.by_id.get(path.lower())
        if method == "PATCH":
            if vm is None:
                handler._arm_error(404, "ResourceNotFound", f"The Resource 'Microsoft.Compute/virtualMachines/"
                                   f"{m.group('name')}' under resource group '{m.group('rg')}' was not found.", rec)
                return True
            from tests.fakes.azure_fake import _merge_patch

            if "properties" in (body or {}):
                vm["properties"] = _merge_patch(vm.get("properties"), body["properties"])
            if "tags" in (body or {}):
                vm["tags"] = dict(body["tags"] or {})
            vm["properties"]["provisioningState"] = "Succeeded"
            answer = copy.deepcopy(vm)
            answer["properties"].pop("instanceView", None)
            answer["properties"]["provisioningState"] = "Updating"
            handler._send(200, answer, rec=rec)
            return True
        if method == "DELETE":
            if vm is None:
                handler._send(204, b"", rec=rec)
                return True
            _delete_vm(state, sub, vm)
            _async(handler, vm["location"], sub, rec)
            return True
        if method == "PUT":
            if vm is not None:
                handler._arm_error(409, "Conflict", f"VM {m.group('name')} exists: the fake only creates VMs", rec)
                return True
            return _create_vm(handler, path, sub, m.group("name"), body or {}, rec)
    return False


def _delete_vm(state: Any, sub: str, vm: dict[str, Any]) -> None:
    props = vm["properties"]
    storage = props.get("storageProfile", {})
    for d in [storage.get("osDisk", {}), *storage.get("dataDisks", [])]:
        disk = _disk(state, d.get("managedDisk", {}).get("id", ""))
        if disk is None:
            continue
        if d.get("deleteOption", "Detach") == "Delete":
            _remove(state, sub, "disks", disk)
        else:
            disk.pop("managedBy", None)
            disk.setdefault("properties", {})["diskState"] = "Unattached"
    for nic in props.get("networkProfile", {}).get("networkInterfaces", []):
        option = nic.get("properties", {}).get("deleteOption", "Detach")
        state.nics[nic["id"].lower()] = "deleted" if option == "Delete" else None
    _remove(state, sub, "virtualMachines", vm)


def _creation_data(ref: dict[str, Any], sub: str, location: str) -> dict[str, Any]:
    """A managed disk's creationData as ARM writes it: gallery images by ``galleryImageReference``,
    marketplace images by their platform-image id (ImageDiskReference has no publisher/offer/sku)."""
    if "/galleries/" in str(ref.get("id", "")).lower():
        return {"createOption": "FromImage", "galleryImageReference": {"id": ref["id"]}}
    if ref.get("id"):
        return {"createOption": "FromImage", "imageReference": {"id": ref["id"]}}
    platform_id = (f"/Subscriptions/{sub}/Providers/Microsoft.Compute/Locations/{location}/Publishers/"
                   f"{ref.get('publisher')}/ArtifactTypes/VMImage/Offers/{ref.get('offer')}/Skus/{ref.get('sku')}/"
                   f"Versions/{ref.get('version')}")
    return {"createOption": "FromImage", "imageReference": {"id": platform_id}}


def _create_vm(handler: Any, path: str, sub: str, name: str, body: dict[str, Any], rec: Any) -> bool:
    state = handler.state
    props = copy.deepcopy(body.get("properties") or {})
    storage = props.get("storageProfile") or {}
    vm_id = path  # the caller's casing, as ARM keeps it
    for nic in props.get("networkProfile", {}).get("networkInterfaces", []):
        owner = state.nics.get(nic["id"].lower(), "missing")
        if owner in ("missing", "deleted"):
            handler._arm_error(400, "NotFound", f"Resource {nic['id']} not found.", rec)
            return True
        if owner is not None:
            handler._arm_error(400, "NicInUse", f"Network interface {nic['id']} is used by {owner}.", rec)
            return True
    for d in storage.get("dataDisks", []):
        disk = _disk(state, d.get("managedDisk", {}).get("id", ""))
        if d.get("createOption") == "Attach" and (disk is None or disk.get("managedBy")):
            why = "not found" if disk is None else f"attached to {disk['managedBy']}"
            handler._arm_error(409, "OperationNotAllowed", f"Disk {d.get('managedDisk', {}).get('id')} is {why}.", rec)
            return True
    os_disk = storage.get("osDisk") or {}
    ref = storage.get("imageReference")
    if os_disk.get("createOption") != "FromImage" or not ref:
        handler._arm_error(400, "InvalidParameter", "The fake creates VMs from an imageReference only.", rec)
        return True
    rg_id = vm_id.split("/providers/")[0]
    disk_name = os_disk.get("name") or f"{name}_OsDisk_{uuid.uuid4().hex[:8]}"
    disk_id = f"{rg_id}/providers/Microsoft.Compute/disks/{disk_name}"
    if _disk(state, disk_id) is not None:
        handler._arm_error(409, "Conflict", f"Disk {disk_name} already exists.", rec)
        return True
    _add(state, sub, "disks", {
        "id": disk_id, "name": disk_name, "type": "Microsoft.Compute/disks", "location": body.get("location"),
        "managedBy": vm_id, "properties": {"osType": os_disk.get("osType"), "diskSizeGB": os_disk.get("diskSizeGB"),
                                           "creationData": _creation_data(ref, sub, body.get("location") or ""),
                                           "diskState": "Attached", "provisioningState": "Succeeded"}})
    os_disk["managedDisk"] = {**os_disk.get("managedDisk", {}), "id": disk_id}
    os_disk["name"] = disk_name
    for d in storage.get("dataDisks", []):
        disk = _disk(state, d["managedDisk"]["id"])
        disk["managedBy"] = vm_id
        disk.setdefault("properties", {})["diskState"] = "Attached"
        d.setdefault("name", disk["name"])
    for nic in props.get("networkProfile", {}).get("networkInterfaces", []):
        state.nics[nic["id"].lower()] = vm_id
    now = time.strftime("%Y-%m-%dT%H:%M:%S.0000000+00:00", time.gmtime())
    props.update(vmId=str(uuid.uuid4()), provisioningState="Succeeded", timeCreated=now, instanceView={"statuses": [
        {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded", "time": now},
        {"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"}]})
    vm = {"id": vm_id, "name": name, "type": "Microsoft.Compute/virtualMachines", "location": body.get("location"),
          "tags": dict(body.get("tags") or {}), "properties": props}
    if body.get("zones"):
        vm["zones"] = list(body["zones"])
    _add(state, sub, "virtualMachines", vm)
    answer = copy.deepcopy(vm)
    answer["properties"].pop("instanceView")
    answer["properties"]["provisioningState"] = "Creating"
    handler._send(201, answer, rec=rec)
    return True


__all__ = ["seed_nics", "vm_write_route"]
