"""AWS: the JSON of `aws ec2 describe-instances --output json` (and `describe-snapshots`) to contract rows.

boto3's describe_instances pages have the same shape, so the live connector reuses this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from qlrf.inventory.contract import Normalised, RecordError
from qlrf.inventory.normalize.common import parse_time, reject, require
from qlrf.inventory.tags import TagMapping

_STATES = {
    "running": "running",
    "stopped": "stopped",
    "stopping": "stopped",
    "terminated": "terminated",
    "shutting-down": "terminated",
    "pending": "other",
}


def region_from_az(az: str) -> str:
    """us-east-1a -> us-east-1; local/wavelength zones (us-west-2-lax-1a) -> us-west-2."""
    parts = az.split("-")
    if len(parts) > 3:
        return "-".join(parts[:3])
    return az[:-1] if az and az[-1].isalpha() else az


def _tags(instance: dict) -> dict[str, str]:
    raw = instance.get("Tags") or []
    if not isinstance(raw, list):
        raise ValueError("Tags must be a list of {Key, Value}")
    return {str(t["Key"]): str(t.get("Value", "")) for t in raw}


def instance_row(instance: dict, owner_id: str, mapping: TagMapping, discovered_at: datetime) -> dict:
    instance_id = str(require(instance, "InstanceId", kind="EC2 instance"))
    placement = instance.get("Placement") or {}
    az = str(require(placement, "AvailabilityZone", kind=f"EC2 instance {instance_id} Placement"))
    state_name = str((instance.get("State") or {}).get("Name", ""))
    if not state_name:
        raise ValueError("State.Name is missing")
    tags = _tags(instance)
    site, env, owner = mapping.derive(tags)
    return {
        "asset_id": instance_id,
        "platform": "aws",
        "account": owner_id,
        "region": region_from_az(az),
        "zone": az,
        "name": tags.get("Name") or instance_id,
        "state": _STATES.get(state_name, "other"),
        "image_ref": instance.get("ImageId"),
        "instance_type": instance.get("InstanceType"),
        "launched_at": parse_time(instance.get("LaunchTime"), "LaunchTime"),
        "tags": tags,
        "group": tags.get("aws:autoscaling:groupName"),
        "site": site,
        "environment": env,
        "owner": owner,
        "public_ip": bool(instance.get("PublicIpAddress")),
        "discovered_at": discovered_at,
    }


def volume_owners(instance: dict) -> Iterable[tuple[str, str]]:
    for mapping in instance.get("BlockDeviceMappings") or []:
        volume_id = (mapping.get("Ebs") or {}).get("VolumeId")
        if volume_id:
            yield volume_id, instance["InstanceId"]


def normalise(
    docs: Iterable[tuple[str, object]],
    *,
    mapping: TagMapping,
    discovered_at: datetime,
    account: str | None = None,
    region: str | None = None,
) -> Normalised:
    out = Normalised()
    volumes: dict[str, str] = {}
    snapshot_docs: list[tuple[str, list]] = []
    for source, doc in docs:
        if not isinstance(doc, dict) or not ({"Reservations", "Snapshots"} & doc.keys()):
            out.errors.append(RecordError("not an `aws ec2 describe-instances` or `describe-snapshots` document", source=source))
            continue
        if "Snapshots" in doc:
            snapshot_docs.append((source, doc["Snapshots"]))
        index = 0
        for reservation in doc.get("Reservations") or []:
            owner_id = account or str(reservation.get("OwnerId") or "")
            for instance in reservation.get("Instances") or []:
                try:
                    if not owner_id:
                        raise ValueError("reservation has no OwnerId (pass --account)")
                    out.vms.append(instance_row(instance, owner_id, mapping, discovered_at))
                    volumes.update(volume_owners(instance))
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    reject(out.errors, exc, source, index, instance, "InstanceId")
                index += 1
    for source, snaps in snapshot_docs:
        for index, snap in enumerate(snaps):
            try:
                row = snapshot_row(snap, volumes, region)
                if row is not None:
                    out.snapshots.append(row)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                reject(out.errors, exc, source, index, snap, "SnapshotId")
    return out


def snapshot_row(snap: dict, volumes: dict[str, str], region: str | None) -> dict | None:
    """A snapshot of a volume attached to a known instance; snapshots of other volumes are skipped."""
    snapshot_id = str(require(snap, "SnapshotId", kind="EBS snapshot"))
    if snap.get("State", "completed") != "completed":
        return None
    asset_id = volumes.get(str(snap.get("VolumeId", "")))
    if asset_id is None:
        return None
    return {
        "asset_id": asset_id,
        "platform": "aws",
        "snapshot_id": snapshot_id,
        "source_id": snap.get("VolumeId"),
        "region": region,
        "created_at": parse_time(require(snap, "StartTime", kind="EBS snapshot"), "StartTime"),
    }
