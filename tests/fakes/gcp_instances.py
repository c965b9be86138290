"""The GCE fake's write side for standalone instances (the boot-disk swap of the GCP instance driver).

Routes (zonal; every change answers a ``compute#operation`` polled like the MIG ones):

* ``POST .../zones/{z}/instances/{name}/stop`` -> ``TERMINATED``; ``.../start`` -> ``RUNNING``
  (a start with no boot disk attached fails with 400, as GCE refuses it);
* ``POST .../zones/{z}/instances/{name}/detachDisk?deviceName=d``: a boot disk can only be
  detached from a stopped instance (400 ``resourceInUseByAnotherResource``-style otherwise);
* ``POST .../zones/{z}/instances/{name}/attachDisk`` (an ``AttachedDisk`` body, ``boot: true``
  for the boot disk, only on a stopped instance; 400 if the disk is attached elsewhere);
* ``POST .../zones/{z}/instances/{name}/setLabels`` (``labels`` replace the instance's labels when
  ``labelFingerprint`` is the current one; 412 ``conditionNotMet`` otherwise, as GCE answers);
* ``POST .../zones/{z}/instances/{name}/deleteAccessConfig?accessConfig=a&networkInterface=n``: the
  NIC loses that access config; a static address it used goes back to ``RESERVED``;
* ``POST .../zones/{z}/instances/{name}/addAccessConfig?networkInterface=n`` (an ``AccessConfig``):
  a ``natIP`` must be a static address of the project that is ``RESERVED`` (400 otherwise, as GCE
  refuses an address in use or not reserved); without one an ephemeral address is made up;
* ``POST .../zones/{z}/disks`` (insert; ``sourceImage`` must name an image the fake knows, 409
  on a duplicate name) and ``DELETE .../zones/{z}/disks/{name}`` (400 while attached).

``users`` on disks follow the attachments, as GCE keeps them.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

GCE = "https://www.googleapis.com/compute/v1"


def _tail(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _known_image(fixture: dict[str, Any], url: str) -> bool:
    m = re.search(r"projects/([^/]+)/global/images/(family/)?([^/]+)$", url or "")
    if not m:
        return False
    images = fixture["projects"].get(m.group(1), {}).get("images", [])
    if m.group(2):
        return any(i.get("family") == m.group(3) for i in images)
    return any(i["name"] == m.group(3) for i in images)


def instance_write_route(handler: Any, method: str, project: str, parts: list[str], body: Any, rec: Any) -> bool:
    """Answer the standalone-instance routes above; False: not one of them."""
    n = len(parts)
    if n < 3 or parts[0] != "zones" or parts[2] not in ("instances", "disks"):
        return False
    pdata = handler.state.fixture["projects"][project]
    zone = parts[1]
    scope = f"zones/{zone}"
    if parts[2] == "disks":
        if method == "POST" and n == 3 and isinstance(body, dict) and body.get("sourceSnapshot"):
            return False  # a disk restored from a snapshot (a DR drill): tests.fakes.gcp_fake._insert_zonal
        if method == "POST" and n == 3:
            _insert_disk(handler, project, pdata, zone, body, rec)
            return True
        if method == "DELETE" and n == 4:
            _delete_disk(handler, project, pdata, zone, parts[3], rec)
            return True
        return False
    if method != "POST" or n != 5 or parts[4] not in ("stop", "start", "detachDisk", "attachDisk", "setLabels",
                                                           "deleteAccessConfig", "addAccessConfig"):
        return False
    inst = next((i for i in pdata["instances"] if i["name"] == parts[3] and _tail(i["zone"]) == zone), None)
    if inst is None:
        handler._not_found(f"projects/{project}/zones/{zone}/instances/{parts[3]}", rec)
        return True
    action = parts[4]
    if action in ("deleteAccessConfig", "addAccessConfig"):
        if not _access_config(handler, pdata, inst, action, body, rec):
            return True
    elif action == "setLabels":
        if (body or {}).get("labelFingerprint") != inst.get("labelFingerprint"):
            handler._error(412, "Labels fingerprint either invalid or resource labels have changed",
                           "conditionNotMet", rec)
            return True
        inst["labels"] = dict(body.get("labels") or {})
        inst["labelFingerprint"] = hashlib.sha256(repr(sorted(inst["labels"].items())).encode()).hexdigest()[:12]
    elif action == "stop":
        inst["status"] = "TERMINATED"
    elif action == "start":
        if not any(d.get("boot") for d in inst.get("disks", [])):
            handler._error(400, f"Instance '{inst['name']}' has no boot disk.", "invalid", rec)
            return True
        inst["status"] = "RUNNING"
    elif action == "detachDisk":
        device = rec.param("deviceName")
        disk = next((d for d in inst.get("disks", []) if d.get("deviceName") == device), None)
        if disk is None:
            handler._error(400, f"No attached disk found with device name '{device}'", "invalid", rec)
            return True
        if disk.get("boot") and inst["status"] != "TERMINATED":
            handler._error(400, f"The boot disk of instance '{inst['name']}' can only be detached when the "
                                "instance is stopped.", "resourceNotReady", rec)
            return True
        inst["disks"] = [d for d in inst["disks"] if d is not disk]
        _users(pdata, disk.get("source", ""), remove=inst["selfLink"])
    else:
        source = (body or {}).get("source", "")
        target = next((d for d in pdata["disks"] if d["selfLink"] == source or source.endswith(
            f"zones/{zone}/disks/{_tail(d['selfLink'])}")), None)
        if target is None:
            handler._error(400, f"Invalid value for field 'resource.source': '{source}'. The disk does not exist.",
                           "invalid", rec)
            return True
        if target.get("users"):
            handler._error(400, f"The disk resource '{target['selfLink']}' is already being used by "
                                f"'{target['users'][0]}'", "resourceInUseByAnotherResource", rec)
            return True
        boot = bool(body.get("boot"))
        if boot and (inst["status"] != "TERMINATED" or any(d.get("boot") for d in inst.get("disks", []))):
            handler._error(400, f"Instance '{inst['name']}' must be stopped with no boot disk to attach one.",
                           "resourceNotReady", rec)
            return True
        attached = {"kind": "compute#attachedDisk", "type": "PERSISTENT", "mode": body.get("mode", "READ_WRITE"),
                    "source": target["selfLink"], "deviceName": body.get("deviceName") or target["name"],
                    "boot": boot, "autoDelete": bool(body.get("autoDelete", False)), "interface": "SCSI",
                    "diskSizeGb": target.get("sizeGb", "10")}
        inst["disks"] = ([attached] if boot else []) + list(inst.get("disks", [])) + ([] if boot else [attached])
        for index, d in enumerate(inst["disks"]):
            d["index"] = index
        target["users"] = [inst["selfLink"]]
    handler._operation(project, scope, action, inst["selfLink"], rec)
    return True


def _access_config(handler: Any, pdata: dict[str, Any], inst: dict[str, Any], action: str, body: Any,
                   rec: Any) -> bool:
    """Apply delete/addAccessConfig to `inst`; False when an error was already answered."""
    nic = next((n for n in inst.get("networkInterfaces", []) if n.get("name") == rec.param("networkInterface")), None)
    if nic is None:
        handler._error(400, f"Invalid value for field 'networkInterface': '{rec.param('networkInterface')}'",
                       "invalid", rec)
        return False
    addresses = pdata.setdefault("addresses", [])
    if action == "deleteAccessConfig":
        gone = [a for a in nic.get("accessConfigs", []) if a.get("name") == rec.param("accessConfig")]
        if not gone:
            handler._error(400, f"No access config named '{rec.param('accessConfig')}'", "invalid", rec)
            return False
        nic["accessConfigs"] = [a for a in nic["accessConfigs"] if a not in gone]
        for a in addresses:
            if a["address"] == gone[0].get("natIP"):
                a["status"], a["users"] = "RESERVED", []
        return True
    if nic.get("accessConfigs"):
        handler._error(400, "At most one access config per network interface", "invalid", rec)
        return False
    nat = (body or {}).get("natIP")
    if nat:
        static = next((a for a in addresses if a["address"] == nat), None)
        if static is None or static.get("status") != "RESERVED":
            handler._error(400, f"The IP address '{nat}' is not a reserved, unused static address", "invalid", rec)
            return False
        static["status"], static["users"] = "IN_USE", [inst["selfLink"]]
    else:
        nat = f"34.1.{len(addresses)}.{len(nic.get('accessConfigs', [])) + 7}"
    nic["accessConfigs"] = [{"kind": "compute#accessConfig", "type": "ONE_TO_ONE_NAT", "name": body.get("name") or
                             "External NAT", "natIP": nat, "networkTier": body.get("networkTier") or "PREMIUM"}]
    return True


def _users(pdata: dict[str, Any], source: str, *, remove: str) -> None:
    for d in pdata["disks"]:
        if d["selfLink"] == source:
            d["users"] = [u for u in d.get("users", []) if u != remove]


def _insert_disk(handler: Any, project: str, pdata: dict[str, Any], zone: str, body: Any, rec: Any) -> None:
    name = (body or {}).get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", name):
        return handler._error(400, f"Invalid value for field 'resource.name': '{name}'.", "invalid", rec)
    url = f"{GCE}/projects/{project}/zones/{zone}/disks/{name}"
    if any(d["selfLink"] == url for d in pdata["disks"]):
        return handler._error(409, f"The resource 'projects/{project}/zones/{zone}/disks/{name}' already exists",
                              "alreadyExists", rec)
    image = body.get("sourceImage", "")
    if not _known_image(handler.state.fixture, image):
        return handler._error(400, f"Invalid value for field 'resource.sourceImage': '{image}'. The referenced image "
                                   "resource cannot be found.", "invalid", rec)
    disk = {"kind": "compute#disk", "id": str(8000000000000000000 + len(pdata["disks"])), "name": name,
            "sizeGb": str(body.get("sizeGb") or "10"), "zone": f"{GCE}/projects/{project}/zones/{zone}",
            "status": "READY", "selfLink": url, "sourceImage": image,
            "type": body.get("type") or f"{GCE}/projects/{project}/zones/{zone}/diskTypes/pd-balanced",
            "creationTimestamp": "2026-11-27T12:00:00.000-08:00", "labels": dict(body.get("labels") or {}),
            "users": []}
    pdata["disks"].append(disk)
    return handler._operation(project, f"zones/{zone}", "insert", url, rec)


def _delete_disk(handler: Any, project: str, pdata: dict[str, Any], zone: str, name: str, rec: Any) -> None:
    url = f"{GCE}/projects/{project}/zones/{zone}/disks/{name}"
    disk = next((d for d in pdata["disks"] if d["selfLink"] == url), None)
    if disk is None:
        return handler._not_found(f"projects/{project}/zones/{zone}/disks/{name}", rec)
    if disk.get("users"):
        return handler._error(400, f"The disk resource '{url}' is already being used by '{disk['users'][0]}'",
                              "resourceInUseByAnotherResource", rec)
    pdata["disks"].remove(disk)
    return handler._operation(project, f"zones/{zone}", "delete", url, rec)


__all__ = ["instance_write_route"]
