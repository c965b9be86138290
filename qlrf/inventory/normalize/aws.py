"""AWS: the JSON of `aws ec2 describe-instances --output json` (and `describe-snapshots`) to contract rows.

boto3's describe_instances pages have the same shape, so the live connector reuses this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from qlrf.inventory.contract import Normalised, RecordError
from qlrf.inventory.normalize.common import (
    RECORD_FAULTS,
    as_dict,
    as_list,
    parse_time,
    reject,
    require,
    require_id,
    screened,
    tag_text,
)
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
    """{Key: Value}; the common case (both text) is checked inline, as this runs for every tag of a
    100k-instance export; anything else takes the checking path that names the faulty tag."""
    tags = {}
    for i, tag in enumerate(as_list(instance.get("Tags"), "Tags")):
        if type(tag) is dict:
            key, value = tag.get("Key"), tag.get("Value", "")
            if type(key) is str and key and type(value) is str:
                tags[key] = value
                continue
        tag = as_dict(tag, f"Tags[{i}]")
        key = require_id(tag, "Key", kind=f"Tags[{i}]")
        tags[key] = tag_text(tag.get("Value", ""), key)
    return tags


def instance_row(instance: dict, owner_id: str, mapping: TagMapping, discovered_at: datetime) -> dict:
    instance = as_dict(instance, "EC2 instance")
    instance_id = require_id(instance, "InstanceId", kind="EC2 instance")
    placement = as_dict(instance.get("Placement"), "Placement")
    az = str(require(placement, "AvailabilityZone", kind=f"EC2 instance {instance_id} Placement"))
    state_name = str(as_dict(instance.get("State"), "State").get("Name", ""))
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


def owned_instance_row(owner: object, instance: object, account: str | None, mapping: TagMapping,
                       discovered_at: datetime) -> dict:
    """The row of one instance of a reservation owned by `owner` (or --account); raises a RECORD_FAULT
    naming the field when the record is unusable. Shared by `normalise` and the streaming reader."""
    owner_id = account or (require_id({"OwnerId": owner}, "OwnerId", kind="reservation") if owner else "")
    if not owner_id:
        raise ValueError("reservation has no OwnerId (pass --account)")
    return instance_row(instance, owner_id, mapping, discovered_at)


def volume_owners(instance: dict) -> Iterable[tuple[str, str]]:
    for i, mapping in enumerate(as_list(instance.get("BlockDeviceMappings"), "BlockDeviceMappings")):
        volume_id = as_dict(as_dict(mapping, f"BlockDeviceMappings[{i}]").get("Ebs"), "Ebs").get("VolumeId")
        if volume_id:
            yield volume_id, instance["InstanceId"]


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
    volumes: dict[str, str] = {}
    snapshot_docs: list[tuple[str, list]] = []
    for source, doc in docs:
        if not isinstance(doc, dict) or not ({"Reservations", "Snapshots"} & doc.keys()):
            out.errors.append(RecordError("not an `aws ec2 describe-instances` or `describe-snapshots` document", source=source))
            continue
        try:
            reservations = _reservations(doc, source, out.errors)
            if "Snapshots" in doc:
                snapshot_docs.append((source, as_list(doc["Snapshots"], "Snapshots")))
        except RECORD_FAULTS as exc:
            out.errors.append(RecordError(str(exc), source=source))
            continue
        for index, (owner, instance) in enumerate(reservations):
            try:
                if source in suspect:
                    screened({"OwnerId": owner}, source, suspect)
                    screened(instance, source, suspect)
                out.add_vm(owned_instance_row(owner, instance, account, mapping, discovered_at), source, index)
                volumes.update(volume_owners(instance))
            except RECORD_FAULTS as exc:
                reject(out.errors, exc, source, index, instance, "InstanceId")
    for source, snaps in snapshot_docs:
        for index, snap in enumerate(snaps):
            try:
                row = snapshot_row(as_dict(screened(snap, source, suspect), "snapshot"), volumes, region)
                if row is not None:
                    out.snapshots.append(row)
            except RECORD_FAULTS as exc:
                reject(out.errors, exc, source, index, snap, "SnapshotId")
    return out


def _reservations(doc: dict, source: str, errors: list[RecordError]) -> list[tuple[object, object]]:
    """(raw OwnerId, instance) for every instance, numbered across reservations as `record #i` in errors.
    A reservation of the wrong shape is one error: its instances cannot be numbered or owned."""
    out = []
    for r, reservation in enumerate(as_list(doc.get("Reservations"), "Reservations")):
        try:
            reservation = as_dict(reservation, f"Reservations[{r}]")
            instances = as_list(reservation.get("Instances"), f"Reservations[{r}].Instances")
        except ValueError as exc:
            errors.append(RecordError(str(exc), source=source))
            continue
        out += [(reservation.get("OwnerId"), i) for i in instances]
    return out


def snapshot_row(snap: dict, volumes: dict[str, str], region: str | None) -> dict | None:
    """A snapshot of a volume attached to a known instance; snapshots of other volumes are skipped."""
    snapshot_id = require_id(snap, "SnapshotId", kind="EBS snapshot")
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
