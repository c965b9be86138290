"""Azure: `az vm list --show-details -o json` (and `az snapshot list -o json`) to contract rows.

Also accepts the ARM REST shape (fields under `properties`, power state in
`properties.instanceView.statuses`), which is what the SDK models' `as_dict()` returns, so the live
connector feeds this same module; Uniform scale-set instances (`az vmss list-instances`) too.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from qlrf.inventory.contract import Normalised, RecordError
from qlrf.inventory.normalize.common import (
    RECORD_FAULTS,
    as_dict,
    as_str_map,
    parse_time,
    reject,
    require,
    require_id,
    screened,
)
from qlrf.inventory.tags import TagMapping

_POWER = {
    "running": "running",
    "starting": "other",
    "stopped": "stopped",
    "stopping": "stopped",
    "deallocated": "stopped",
    "deallocating": "stopped",
}

VM_TYPE = "microsoft.compute/virtualmachines"
# Uniform scale-set instances (`az vmss list-instances`, ARM .../virtualMachineScaleSets/{n}/virtualMachines):
# not in the VM list, same shape, scale set only in their id.
VMSS_VM_TYPE = "microsoft.compute/virtualmachinescalesets/virtualmachines"
SNAPSHOT_TYPE = "microsoft.compute/snapshots"


def _flat(record: dict) -> dict:
    """Merge REST `properties` into the record so both shapes read alike."""
    props = record.get("properties")
    if isinstance(props, dict):
        merged = dict(props)
        merged.update({k: v for k, v in record.items() if k != "properties"})
        return merged
    return record


def power_state(vm: dict) -> str:
    text = vm.get("powerState")  # az --show-details: "VM running"
    if not text:
        statuses = (vm.get("instanceView") or {}).get("statuses") or []
        codes = [s.get("code", "") for s in statuses if str(s.get("code", "")).startswith("PowerState/")]
        text = codes[0].split("/", 1)[1] if codes else ""
    word = str(text).lower().removeprefix("vm ").strip()
    return _POWER.get(word, "other")


def image_ref(storage: dict) -> str | None:
    ref = storage.get("imageReference") or {}
    if ref.get("id"):
        return str(ref["id"])
    if ref.get("publisher"):
        version = ref.get("exactVersion") or ref.get("version")
        return f"{ref['publisher']}:{ref['offer']}:{ref['sku']}:{version}"
    return None


def subscription_of(resource_id: str) -> str:
    parts = resource_id.split("/")
    try:
        return parts[parts.index("subscriptions") + 1]
    except (ValueError, IndexError):
        raise ValueError(f"resource id has no subscription: {resource_id!r}") from None


def scale_set_of(resource_id: str) -> str | None:
    """Name of the scale set a Uniform instance id (.../virtualMachineScaleSets/{name}/virtualMachines/{n}) is in."""
    parts = resource_id.split("/")
    lowered = [p.lower() for p in parts]
    if "virtualmachinescalesets" in lowered[:-1]:
        return parts[lowered.index("virtualmachinescalesets") + 1]
    return None


def vm_row(record: dict, mapping: TagMapping, discovered_at: datetime) -> dict:
    vm = _flat(as_dict(record, "Azure VM"))
    resource_id = require_id(vm, "id", kind="Azure VM")
    vm_id = require_id(vm, "vmId", kind="Azure VM")
    location = str(require(vm, "location", kind="Azure VM"))
    tags = as_str_map(vm.get("tags"), "tags")
    site, env, owner = mapping.derive(tags)
    storage = as_dict(vm.get("storageProfile"), "storageProfile")
    zones = vm.get("zones") or []
    scale_set = (vm.get("virtualMachineScaleSet") or {}).get("id")
    return {
        "asset_id": vm_id,
        "platform": "azure",
        "account": subscription_of(resource_id),
        "region": location,
        "zone": f"{location}-{zones[0]}" if zones else None,
        "name": str(vm.get("name") or vm_id),
        "state": power_state(vm),
        "image_ref": image_ref(storage),
        "instance_type": (vm.get("hardwareProfile") or {}).get("vmSize"),
        "launched_at": parse_time(vm.get("timeCreated"), "timeCreated"),
        "tags": tags,
        "group": scale_set.rsplit("/", 1)[-1] if scale_set else scale_set_of(resource_id),
        "site": site,
        "environment": env,
        "owner": owner,
        "public_ip": bool(vm.get("publicIps")),
        "discovered_at": discovered_at,
    }


def _records(doc: object) -> list:
    if isinstance(doc, dict) and isinstance(doc.get("value"), list):
        return doc["value"]
    if isinstance(doc, list):
        return doc
    raise ValueError("expected a JSON array (az ... -o json) or an ARM list page {value: [...]}")


def normalise(
    docs: Iterable[tuple[str, object]],
    *,
    mapping: TagMapping,
    discovered_at: datetime,
    account: str | None = None,
    region: str | None = None,
    suspect: frozenset[str] = frozenset(),
) -> Normalised:
    out = Normalised()
    disks: dict[str, str] = {}
    snapshots: list[tuple[str, int, dict]] = []
    for source, doc in docs:
        try:
            records = _records(doc)
        except ValueError as exc:
            out.errors.append(RecordError(str(exc), source=source))
            continue
        for index, record in enumerate(records):
            try:
                kind = str(as_dict(screened(record, source, suspect), "record").get("type", VM_TYPE)).lower()
                if kind == SNAPSHOT_TYPE:
                    snapshots.append((source, index, record))
                    continue
                if kind not in (VM_TYPE, VMSS_VM_TYPE):
                    raise ValueError(f"unexpected resource type {record.get('type')!r}")
                row = vm_row(record, mapping, discovered_at)
                out.add_vm(row, source, index)
                os_disk = ((_flat(record).get("storageProfile") or {}).get("osDisk") or {}).get("managedDisk") or {}
                if os_disk.get("id"):
                    disks[str(os_disk["id"]).lower()] = row["asset_id"]
            except RECORD_FAULTS as exc:
                reject(out.errors, exc, source, index, _flat(record) if isinstance(record, dict) else record, "vmId")
    for source, index, record in snapshots:
        try:
            snap = _flat(record)
            disk_id = str((snap.get("creationData") or {}).get("sourceResourceId") or "").lower()
            if disk_id in disks:
                out.snapshots.append(
                    {
                        "asset_id": disks[disk_id],
                        "platform": "azure",
                        "snapshot_id": require_id(snap, "id", kind="Azure snapshot"),
                        "source_id": disk_id,
                        "region": snap.get("location"),
                        "created_at": parse_time(require(snap, "timeCreated", kind="Azure snapshot"), "timeCreated"),
                    }
                )
        except RECORD_FAULTS as exc:
            reject(out.errors, exc, source, index, record, "id")
    return out
