"""GCP: `gcloud compute instances list --format=json` to contract rows.

A GCE instance does not carry its source image: the boot disk does. So this module also reads
`gcloud compute disks list --format=json` (kind compute#disk) and follows each instance's boot disk
to its `sourceImage`; `gcloud compute snapshots list --format=json` gives snapshot times.
REST aggregated-list pages ({items: {"zones/z": {instances|disks: [...]}}}) are accepted too.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from qlrf.inventory.contract import Normalised, RecordError
from qlrf.inventory.normalize.common import (
    RECORD_FAULTS,
    as_dict,
    as_list,
    as_str_map,
    last_segment,
    parse_time,
    reject,
    require,
    require_id,
    screened,
)
from qlrf.inventory.tags import TagMapping

_STATUS = {
    "RUNNING": "running",
    "TERMINATED": "stopped",  # GCE's TERMINATED means stopped; deleted instances are simply gone
    "STOPPED": "stopped",
    "STOPPING": "stopped",
    "SUSPENDED": "stopped",
    "SUSPENDING": "stopped",
}


def resource_path(url: str) -> str:
    """Compare GCE links regardless of host or API version: keep from 'projects/' on."""
    i = url.find("projects/")
    return url[i:] if i >= 0 else url


def region_from_zone(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


def _project(instance: dict) -> str:
    link = str(instance.get("selfLink") or instance.get("zone") or "")
    parts = resource_path(link).split("/")
    if len(parts) < 2 or parts[0] != "projects":
        raise ValueError("cannot tell the project: selfLink/zone missing")
    return parts[1]


def _group(instance: dict) -> str | None:
    for item in (instance.get("metadata") or {}).get("items") or []:
        if item.get("key") == "created-by":
            return last_segment(item.get("value"))
    return None


def _public_ip(instance: dict) -> bool:
    return any(
        ac.get("natIP")
        for nic in instance.get("networkInterfaces") or []
        for ac in nic.get("accessConfigs") or []
    )


def instance_row(instance: dict, disk_images: dict[str, str], mapping: TagMapping, discovered_at: datetime) -> dict:
    asset_id = require_id(instance, "id", kind="GCE instance")
    zone = last_segment(str(require(instance, "zone", kind="GCE instance")))
    labels = as_str_map(instance.get("labels"), "labels")
    site, env, owner = mapping.derive(labels)
    boot = next((d for d in as_list(instance.get("disks"), "disks") if as_dict(d, "disks[]").get("boot")), None)
    image = disk_images.get(resource_path(boot["source"])) if boot and boot.get("source") else None
    return {
        "asset_id": asset_id,
        "platform": "gcp",
        "account": _project(instance),
        "region": region_from_zone(zone),
        "zone": zone,
        "name": str(instance.get("name") or asset_id),
        "state": _STATUS.get(str(instance.get("status", "")), "other"),
        "image_ref": image,
        "instance_type": last_segment(instance.get("machineType")),
        "launched_at": parse_time(instance.get("creationTimestamp"), "creationTimestamp"),
        "tags": labels,
        "group": _group(instance),
        "site": site,
        "environment": env,
        "owner": owner,
        "public_ip": _public_ip(instance),
        "discovered_at": discovered_at,
    }


def _records(doc: object) -> list:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict) and isinstance(doc.get("items"), dict):
        return [
            r
            for scope, scoped in doc["items"].items()
            for key in ("instances", "disks")
            for r in as_list(as_dict(scoped, f"items.{scope}").get(key), f"items.{scope}.{key}")
        ]
    if isinstance(doc, dict) and isinstance(doc.get("items"), list):
        return doc["items"]
    raise ValueError("expected a JSON array (gcloud ... --format=json) or a REST list page")


def _kind(record: dict) -> str:
    kind = record.get("kind")
    if kind:
        return str(kind)
    if "sourceDisk" in record:
        return "compute#snapshot"
    if "sizeGb" in record and "disks" not in record:
        return "compute#disk"
    return "compute#instance"


def _follow_source_snapshots(disks: list, snapshots: list, disk_images: dict[str, str], max_hops: int = 5) -> None:
    """A disk restored from a snapshot carries `sourceSnapshot`, not `sourceImage`. When that snapshot
    and the disk it was taken from are both in the input, the restored disk inherits that disk's image
    (its content's lineage); otherwise it stays unknown (None): a snapshot itself does not name an image.
    Chains of restores are followed up to max_hops."""
    snap_disk = {
        resource_path(str(s["selfLink"])): resource_path(str(s["sourceDisk"]))
        for _, _, s in snapshots
        if s.get("selfLink") and s.get("sourceDisk")
    }
    restored = {
        resource_path(str(d["selfLink"])): resource_path(str(d["sourceSnapshot"]))
        for _, _, d in disks
        if d.get("selfLink") and d.get("sourceSnapshot") and not d.get("sourceImage")
    }
    for _ in range(max_hops):
        found = {
            disk: disk_images[snap_disk[snap]]
            for disk, snap in restored.items()
            if disk not in disk_images and snap_disk.get(snap) in disk_images
        }
        if not found:
            return
        disk_images.update(found)


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
    by_kind: dict[str, list[tuple[str, int, dict]]] = {"compute#instance": [], "compute#disk": [], "compute#snapshot": []}
    for source, doc in docs:
        try:
            records = _records(doc)
        except RECORD_FAULTS as exc:
            out.errors.append(RecordError(str(exc), source=source))
            continue
        for index, record in enumerate(records):
            try:
                kind = _kind(as_dict(screened(record, source, suspect), "record"))
                if kind not in by_kind:
                    raise ValueError(f"unexpected kind {kind!r}")
            except RECORD_FAULTS as exc:
                reject(out.errors, exc, source, index, record, "id")
                continue
            by_kind[kind].append((source, index, record))
    disk_images = {
        resource_path(str(d["selfLink"])): str(d["sourceImage"])
        for _, _, d in by_kind["compute#disk"]
        if d.get("selfLink") and d.get("sourceImage")
    }
    _follow_source_snapshots(by_kind["compute#disk"], by_kind["compute#snapshot"], disk_images)
    disk_owner: dict[str, str] = {}
    for source, index, record in by_kind["compute#instance"]:
        try:
            row = instance_row(record, disk_images, mapping, discovered_at)
            out.add_vm(row, source, index)
            for disk in record.get("disks") or []:
                if disk.get("source"):
                    disk_owner[resource_path(disk["source"])] = row["asset_id"]
        except RECORD_FAULTS as exc:
            reject(out.errors, exc, source, index, record, "id")
    for source, index, snap in by_kind["compute#snapshot"]:
        try:
            owner = disk_owner.get(resource_path(str(snap.get("sourceDisk", ""))))
            if owner and snap.get("status", "READY") == "READY":
                out.snapshots.append(
                    {
                        "asset_id": owner,
                        "platform": "gcp",
                        "snapshot_id": str(require(snap, "name", kind="GCE snapshot")),
                        "source_id": snap.get("sourceDisk"),
                        "region": None,
                        "created_at": parse_time(require(snap, "creationTimestamp", kind="GCE snapshot"), "creationTimestamp"),
                    }
                )
        except RECORD_FAULTS as exc:
            reject(out.errors, exc, source, index, snap, "name")
    return out
