"""vSphere: `govc vm.info -json -r <paths>` to contract rows.

We chose `govc vm.info -json` over `govc object.collect -json` because it returns each VM whole
(config, runtime, guest, custom values and the snapshot tree) in one document. govc emits PascalCase
keys up to v0.29 and camelCase after, so keys are matched case-insensitively. vm.info does not say
which vCenter or datacenter a VM lives in, so those come from the caller (`--account vcenter
--region datacenter`) unless the record carries `Datacenter`/`Vcenter` (the live connector adds them).
The golden template a VM was cloned from is read from a custom attribute (default `template`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from qlrf.inventory.contract import Normalised, RecordError
from qlrf.inventory.normalize.common import RECORD_FAULTS, as_list, parse_time, reject, screened, tag_text
from qlrf.inventory.tags import TagMapping

_POWER = {"poweredon": "running", "poweredoff": "stopped", "suspended": "stopped"}
TEMPLATE_ATTRIBUTE = "template"
GROUP_ATTRIBUTE = "group"


def get(d: dict | None, key: str, default: object = None) -> object:
    if not isinstance(d, dict):
        return default
    if key in d:
        return d[key]
    lower = key[0].lower() + key[1:]
    return d.get(lower, default)


def custom_attributes(vm: dict) -> dict[str, str]:
    names = {str(get(f, "Key")): str(get(f, "Name")) for f in as_list(get(vm, "AvailableField"), "AvailableField")}
    out: dict[str, str] = {}
    for cv in as_list(get(vm, "CustomValue"), "CustomValue"):
        key = str(get(cv, "Key"))
        name = names.get(key, key)
        out[name] = tag_text(get(cv, "Value", ""), name)
    return out


def snapshot_times(vm: dict) -> Iterator[tuple[str, datetime]]:
    stack = list(get(get(vm, "Snapshot"), "RootSnapshotList") or [])
    while stack:
        node = stack.pop()
        ref = get(node, "Snapshot") or {}
        created = parse_time(get(node, "CreateTime"), "snapshot CreateTime")
        if created is not None:
            yield str(get(ref, "Value") or get(node, "Name") or ""), created
        stack.extend(get(node, "ChildSnapshotList") or [])


def vm_row(vm: dict, vcenter: str, datacenter: str, mapping: TagMapping, discovered_at: datetime) -> dict:
    config = get(vm, "Config")
    if not isinstance(config, dict):
        raise ValueError("VM has no Config (was it collected with vm.info -json?)")
    asset_id = get(config, "InstanceUuid")
    if not asset_id:
        raise ValueError("Config.InstanceUuid is missing")
    if not isinstance(asset_id, str):
        raise ValueError(f"Config.InstanceUuid must be text, got {type(asset_id).__name__}")
    attrs = custom_attributes(vm)
    site, env, owner = mapping.derive(attrs)
    runtime = get(vm, "Runtime") or {}
    hardware = get(config, "Hardware") or {}
    cpus, mem = get(hardware, "NumCPU"), get(hardware, "MemoryMB")
    guest_ip = get(get(vm, "Guest"), "IpAddress")
    return {
        "asset_id": str(asset_id),
        "platform": "vsphere",
        "account": vcenter,
        "region": datacenter,
        "zone": str(get(vm, "Cluster") or "") or None,
        "name": str(get(config, "Name") or asset_id),
        "state": _POWER.get(str(get(runtime, "PowerState", "")).lower(), "other"),
        "image_ref": attrs.get(TEMPLATE_ATTRIBUTE),
        "instance_type": f"{cpus}vCPU-{mem}MB" if cpus and mem else None,
        "launched_at": parse_time(get(config, "CreateDate"), "Config.CreateDate"),
        "tags": attrs,
        "group": attrs.get(GROUP_ATTRIBUTE),
        "site": site,
        "environment": env,
        "owner": owner,
        "public_ip": bool(guest_ip) and not _private(str(guest_ip)),
        "discovered_at": discovered_at,
    }


def _private(ip: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(ip).is_private
    except ValueError:
        return True


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
    for source, doc in docs:
        vms = get(doc, "VirtualMachines") if isinstance(doc, dict) else None
        if not isinstance(vms, list):
            out.errors.append(RecordError("not a `govc vm.info -json` document (no VirtualMachines)", source=source))
            continue
        for index, vm in enumerate(vms):
            try:
                screened(vm, source, suspect)
                if get(get(vm, "Config"), "Template"):
                    continue  # templates are images, not VMs
                vcenter = str(get(vm, "Vcenter") or account or "")
                datacenter = str(get(vm, "Datacenter") or region or "")
                if not vcenter or not datacenter:
                    raise ValueError("vCenter and datacenter unknown: pass --account VCENTER --region DATACENTER")
                row = vm_row(vm, vcenter, datacenter, mapping, discovered_at)
                out.add_vm(row, source, index)
                for snap_id, created in snapshot_times(vm):
                    out.snapshots.append(
                        {
                            "asset_id": row["asset_id"],
                            "platform": "vsphere",
                            "snapshot_id": snap_id,
                            "source_id": None,
                            "region": datacenter,
                            "created_at": created,
                        }
                    )
            except RECORD_FAULTS as exc:
                reject(out.errors, exc, source, index, get(vm, "Config") or {}, "InstanceUuid")
    return out
