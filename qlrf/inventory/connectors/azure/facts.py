"""ARM ids and fact rows: images (managed, gallery definitions and versions, which version is latest)
and scale sets, as pure functions over the ARM REST JSON."""

from __future__ import annotations

from datetime import datetime

from qlrf.inventory.connectors.common import (
    image_fact_row,
    scaling_group_row,
)
from qlrf.inventory.normalize import azure as normalize_azure
from qlrf.inventory.normalize.common import parse_time


def arm_props(resource: dict) -> dict:
    return resource.get("properties") or {}


def arm_segment(resource_id: str, name: str) -> str | None:
    """The value after `name` in an ARM id (case-insensitive): arm_segment(id, "resourceGroups")."""
    parts = resource_id.split("/")
    lowered = [p.lower() for p in parts]
    try:
        return parts[lowered.index(name.lower()) + 1]
    except (ValueError, IndexError):
        return None


def _version_key(name: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in name.split("."))


def image_fact(
    resource: dict | None,
    image_id: str,
    image_type: str,
    discovered_at: datetime,
    *,
    found: bool | None = True,
    error: str | None = None,
) -> dict:
    """One image as a fact row; keys shared with the AWS connector's image facts plus Azure's own."""
    resource = resource or {}
    props = arm_props(resource)
    publishing = props.get("publishingProfile") or {}
    created = publishing.get("publishedDate") or props.get("timeCreated")
    deprecated = publishing.get("endOfLifeDate") or props.get("endOfLifeDate")
    subscription = arm_segment(image_id, "subscriptions")
    version = image_type == "gallery_image_version"
    return image_fact_row(
        image_id=resource.get("id") or image_id,
        image_type=image_type,  # managed_image | gallery_image | gallery_image_version
        account=subscription,
        region=resource.get("location"),
        found=found,
        name=resource.get("name"),
        description=props.get("description"),
        owner_id=subscription,
        created_at=parse_time(created, "publishedDate"),
        deprecated_at=parse_time(deprecated, "endOfLifeDate"),
        state=props.get("provisioningState"),
        public=False if resource else None,
        tags={str(k): "" if v is None else str(v) for k, v in (resource.get("tags") or {}).items()},
        discovered_at=discovered_at,
        gallery_image=image_id.rsplit("/versions/", 1)[0] if version else None,
        version=resource.get("name") if version else None,
        exclude_from_latest=publishing.get("excludeFromLatest") if version else None,
        latest=None,  # set for gallery versions: the one a reference to the definition resolves to now
        latest_version=None,  # set for gallery image definitions
        os_type=props.get("osType")
        or ((props.get("storageProfile") or {}).get("osDisk") or {}).get("osType"),
        error=error,
    )


def image_type_of(image_id: str) -> str:
    low = image_id.lower()
    if "/galleries/" in low:
        return "gallery_image_version" if "/versions/" in low else "gallery_image"
    return "managed_image"


def mark_latest(rows: list[dict]) -> None:
    """Gallery: a reference to an image definition launches its highest version not excluded from latest."""
    by_definition: dict[str, list[dict]] = {}
    for row in rows:
        if row["image_type"] == "gallery_image_version" and row["found"]:
            by_definition.setdefault(row["gallery_image"].lower(), []).append(row)
    latest: dict[str, str] = {}
    for definition, versions in by_definition.items():
        eligible = [v for v in versions if not v["exclude_from_latest"]]
        best = max(eligible, key=lambda v: _version_key(v["version"] or ""), default=None)
        for version in versions:
            version["latest"] = version is best
        if best is not None:
            latest[definition] = best["image_id"]
    for row in rows:
        if row["image_type"] == "gallery_image" and row["found"]:
            row["latest_version"] = latest.get(row["image_id"].lower())


def scaling_group_rows(
    scale_sets: list[dict],
    members: dict[str, list[str]],
    images_of: dict[str, str | None],
    discovered_at: datetime,
) -> list[dict]:
    """One row per scale set: capacity, model image, and members (asset ids) with how many run another image."""
    rows = []
    for vmss in scale_sets:
        props = arm_props(vmss)
        profile = props.get("virtualMachineProfile") or {}
        image = normalize_azure.image_ref(profile.get("storageProfile") or {})
        ids = members.get(str(vmss["id"]).lower(), [])
        rows.append(
            scaling_group_row(
                account=arm_segment(str(vmss["id"]), "subscriptions"),
                region=vmss.get("location"),
                group_name=vmss.get("name"),
                group_id=vmss.get("id"),
                orchestration_mode=props.get("orchestrationMode") or "Uniform",
                desired_capacity=(vmss.get("sku") or {}).get("capacity"),
                members=ids,
                would_launch_image=image,
                members_on_other_image=(
                    sum(1 for m in ids if (images_of.get(m) or "").lower() != image.lower())
                    if image
                    else None
                ),
                upgrade_mode=(props.get("upgradePolicy") or {}).get("mode"),
                discovered_at=discovered_at,
            )
        )
    return rows
